"""A fit around the loop's maths: the rules' monitors, the history, callbacks, progress, signals, checkpoints.

Nothing here depends on which rules run: the first monitor decides, an averaging monitor
(:attr:`Monitor.averages`) supplies the image returned at every choice, and a monitor with
a :attr:`Monitor.fallback` supplies the choice when the deciding rule never chose.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from operators import LinearOperator

from ..files.atomic import atomic_path
from ..metrics import psnr
from ..result import HistoryRecorder, NetworkState, Result
from ..stopping.base import Monitor
from .loop import IterationState, Loop, StopFitError
from .options import FitOptions

__all__ = ["AVERAGE_CHECK", "Run"]

#: every this many iterations the running average's misfit is computed (one forward
#: operator call) and the lowest-misfit average kept: the fallback when the deciding rule
#: never chose. A Deep Decoder fit can spike late and recover; without it the budget's last
#: average, contaminated by the spike, was returned (the measured case: docs/notes.md,
#: "Measurements formerly quoted in code").
AVERAGE_CHECK = 50


class Run(Loop):
    """One fit: the loop plus the rules' monitors and what is recorded per iteration."""

    def __init__(
        self,
        net: torch.nn.Module,
        op: LinearOperator,
        y: torch.Tensor,
        loss_fn: Callable[..., torch.Tensor],
        monitors: list[Monitor],
        opts: FitOptions,
        *,
        scale: float,
        op_norm: float = 1.0,
        penalty: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(net, op, y, loss_fn, opts, scale=scale, op_norm=op_norm, penalty=penalty)
        self.opts, self.monitors = opts, monitors
        self.truth = None if opts.truth is None else opts.truth.to(op.device)
        self.psnr_peak = opts.psnr_peak
        self.state.choices = {m.name: None for m in monitors}

    @property
    def averager(self) -> Monitor | None:
        """The monitor that keeps the running average, if any."""
        return next((m for m in self.monitors if m.averages), None)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "monitors": self.monitors, "history": self.hist}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        super().load_state_dict(d)
        self.monitors[:] = d["monitors"]
        self.hist = d["history"]

    def save_checkpoint(self, path: Path, settings: dict[str, Any]) -> None:
        with atomic_path(path, force=True) as tmp:  # a signal during torch.save leaves no temporary file behind
            torch.save({"settings": settings, **self.state_dict()}, tmp)

    # ------------------------------------------------------------------ bookkeeping of an accepted iterate
    def _accept(self, out: torch.Tensor, loss_value: float, misfit_s: float) -> tuple[IterationState, bool]:
        """Record an accepted iterate; returns the callback state and whether the deciding rule stops."""
        s, it = self.state, self.state.it
        self.keep_good(misfit_s)
        img = out.detach() * self.image_factor
        averager = self.averager
        avg = None if averager is None else averager.update(it, img)
        misfit = misfit_s / self.scale**2
        if avg is not None and (it + 1) % AVERAGE_CHECK == 0:
            m_avg = self.misfit_of(avg)
            if m_avg < s.best_average_misfit:
                s.best_average_misfit, s.best_average_it = m_avg, it
                s.best_average = avg.clone() if s.best_average is None else s.best_average.copy_(avg)
                s.best_average_weights = self.copy_weights(s.best_average_weights)
        src = avg if avg is not None else img
        stats: dict[str, float | None] = {}
        lead_stop = False
        for k, m in enumerate(self.monitors):
            d = m.observe(it, img, misfit)
            stats[m.name] = d.statistic
            if m.name in s.stopped_by:
                continue
            if d.candidate:
                s.choices[m.name] = it
                if k == 0:
                    self.keep_weights()
                prev = s.picked.get(m.name)
                s.picked[m.name] = src.clone() if prev is None else prev.copy_(src)
            if d.stop:
                s.stopped_by[m.name] = it
                lead_stop = lead_stop or k == 0
        rec: dict[str, float | None] = {"loss": loss_value, "misfit": misfit, "time": s.elapsed, "lr": s.lr}
        rec.update(stats)
        if self.truth is not None:
            p_raw = float(psnr(img, self.truth, peak=self.psnr_peak))
            rec["psnr"] = p_raw
            if avg is not None:
                rec["psnr_average"] = float(psnr(avg, self.truth, peak=self.psnr_peak))
            if p_raw > s.best_psnr:
                s.best_psnr, s.oracle_it = p_raw, it
                s.oracle = img.clone() if s.oracle is None else s.oracle.copy_(img)
        self.hist.record(it, rec)
        s.last_img = img
        return IterationState(it, img, loss_value, misfit, stats, self.opts.fit), lead_stop

    # ------------------------------------------------------------------ the run
    def run(self, settings: dict[str, Any]) -> Result:
        s, opts = self.state, self.opts
        iterations, lead = opts.iterations, self.monitors[0].name
        if not hasattr(self, "hist"):
            names = ["loss", "misfit", "time", "lr"] + [m.name for m in self.monitors]
            if self.truth is not None:
                names += ["psnr"] + (["psnr_average"] if self.averager is not None else [])
            self.hist = HistoryRecorder(iterations, names)
        bar = _progress(iterations, opts.progress, s.it, opts.desc)
        t0 = time.perf_counter() - s.elapsed
        interrupted = False
        defer = _DeferSignals()
        defer.install()
        try:
            while not s.done and s.it < iterations:
                out, loss, loss_value, misfit_s, ok = self.evaluate()
                if not ok:
                    self.backtrack()
                    continue
                s.elapsed = time.perf_counter() - t0
                with torch.no_grad(), defer:  # an interrupt lands before or after the bookkeeping, never inside
                    state, lead_stop = self._accept(out, loss_value, misfit_s)
                _tick(bar, s.it, loss_value, lead, state.statistics.get(lead))
                user_stop = any(cb(state) for cb in opts.callbacks)
                if lead_stop:
                    s.reason, s.done = f"{lead} rule decided at iteration {s.it}", True
                    break
                if user_stop:
                    s.reason, s.done = f"a callback stopped the run at iteration {s.it}", True
                    break
                self.step(loss)
                if opts.checkpoint is not None and s.it % opts.checkpoint_every == 0:
                    self.save_checkpoint(opts.checkpoint, settings)
            else:
                if not s.done:
                    s.reason, s.done = f"iteration budget of {iterations} reached", True
        except StopFitError:
            s.done = True
        except KeyboardInterrupt:
            interrupted = True
            s.reason = f"interrupted at iteration {s.it}; returning the best iterate so far"
        finally:
            defer.uninstall()
            if bar is not None:
                bar.close()
        return self._result(settings, interrupted)

    # ------------------------------------------------------------------ result
    def _network_state(self, settings: dict[str, Any], chosen_it: int) -> NetworkState:
        """The kept state at the chosen iteration (the deciding rule's choice, or the checked average the
        fallback chose), else the last accepted iterate's weights."""
        s = self.state
        if s.weights is not None and s.choices.get(self.monitors[0].name) is not None:
            sd, it = s.weights, int(s.choices[self.monitors[0].name])
        elif s.best_average_weights is not None and chosen_it == s.best_average_it:
            sd, it = s.best_average_weights, chosen_it
        else:  # the live parameters may be one step past the last accepted iterate: use its copy
            sd = dict(self.net.state_dict())
            sd.update(zip(self.param_names, self.good, strict=True))
            it = int(self.hist.iteration[self.hist.n - 1])
        return NetworkState(
            state_dict={k: v.detach().to("cpu", copy=True) for k, v in sd.items()},
            prior=dict(settings.get("prior", {})),
            output_scale=1.0 / self.image_factor,
            iteration=it,
        )

    def _choose(self) -> tuple[torch.Tensor, int, str]:
        """The deciding rule's choice, else a fallback: a fallback rule's, the running average, the last iterate."""
        s, lead = self.state, self.monitors[0].name
        if s.choices.get(lead) is not None:
            return s.picked[lead], int(s.choices[lead]), s.reason
        last_it = int(self.hist.iteration[self.hist.n - 1])
        for m in self.monitors[1:]:
            if m.fallback is not None and s.choices.get(m.name) is not None:
                return s.picked[m.name], int(s.choices[m.name]), s.reason + f"; fell back to {m.fallback}"
        averager = self.averager
        avg = None if averager is None else averager.average
        if avg is not None:
            # never reached the decision (e.g. the misfit stayed above τMσ²: still under-fitting):
            # of the last running average, the last iterate and the best checked average, return
            # the one that fits the data best — the average lags behind an iterate that is still
            # improving, and a late spike of the fit spoils both the last iterate and the last average
            m_avg, m_last = self.misfit_of(avg), s.prev_misfit / self.scale**2
            if s.best_average is not None and s.best_average_misfit < min(m_avg, m_last):
                why = (
                    f"; fell back to the running average at iteration {s.best_average_it} (the lowest misfit of "
                    f"those checked every {AVERAGE_CHECK} iterations; the last average and iterate fit worse)"
                )
                return s.best_average.clone(), int(s.best_average_it), s.reason + why
            if m_avg <= m_last:
                return avg.clone(), last_it, s.reason + "; fell back to the last running average (lower misfit)"
            why = "; fell back to the last iterate (lower misfit than the running average)"
            return s.last_img.clone(), last_it, s.reason + why
        return s.last_img.clone(), last_it, s.reason + "; fell back to the last iterate"

    def _result(self, settings: dict[str, Any], interrupted: bool) -> Result:
        s = self.state
        if s.last_img is None:
            raise RuntimeError("no valid iterate: the network output was NaN/Inf from the first step")
        last_it = int(self.hist.iteration[self.hist.n - 1])
        note = self.monitors[0].finish(last_it)
        if note:
            s.reason += f"; {note}"
        chosen, chosen_it, reason = self._choose()
        summaries = {m.name: m.summary() for m in self.monitors}
        sigma = next((v["sigma"] for v in summaries.values() if v.get("sigma") is not None), settings.get("sigma"))
        return Result(
            image=chosen.cpu(),
            chosen_iteration=chosen_it,
            final_image=s.last_img.cpu(),
            final_iteration=last_it,
            history=self.hist.to_dataset({"scale": self.scale}),
            settings=settings,
            seed=settings["seed"],
            stop_reason=reason,
            choices=dict(s.choices),
            sigma=sigma,
            scale=self.scale,
            interrupted=interrupted,
            backtracks=s.backtracks,
            oracle_iteration=s.oracle_it,
            oracle_psnr=None if s.oracle_it is None else s.best_psnr,
            oracle_image=None if s.oracle is None else s.oracle.cpu(),
            rule_summaries=summaries,
            image_psnr=None if self.truth is None else float(psnr(chosen, self.truth, peak=self.psnr_peak)),
            weights=self._network_state(settings, chosen_it),
        )


class _DeferSignals:
    """Hold SIGINT/SIGTERM while the bookkeeping of one iterate runs, then deliver them.

    An interrupt raised half-way through :meth:`Run._accept` would leave a rule's choice
    pointing at an iterate the history never recorded (or an average ahead of it).
    :meth:`install` puts a forwarding handler in front of each Python-level handler
    (Ctrl-C's ``KeyboardInterrupt``, the CLI's SIGTERM handler) once per run; inside
    ``with defer:`` a signal is only noted, and delivered on leaving the block — two
    attribute writes per iteration, no system call. A default SIGTERM still ends the
    process at once. Handlers can only be set from the main thread: elsewhere this is
    a no-op.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.saved: dict[int, Any] = {}
        self.pending: tuple[int, Any] | None = None
        self.busy = False

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in self.SIGNALS:
            handler = signal.getsignal(sig)
            if callable(handler):
                self.saved[sig] = handler
                signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        self.saved.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.busy:
            self.pending = (signum, frame)
        else:
            self.saved[signum](signum, frame)

    def __enter__(self) -> _DeferSignals:
        self.busy = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.busy = False
        if self.pending is not None:
            signum, frame = self.pending
            self.pending = None
            self.saved[signum](signum, frame)  # e.g. raises KeyboardInterrupt, now that the state is whole


def _progress(total: int, enabled: bool, initial: int = 0, desc: str = "rfprior"):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="it", leave=False, dynamic_ncols=True)


def _tick(bar, it: int, loss: float, rule: str, stat: float | None) -> None:
    if bar is None:
        return
    bar.update(1)
    if it % 10 == 0:
        post = {"loss": f"{loss:.3e}"}
        if stat is not None:
            post[rule] = f"{stat:.3g}"
        bar.set_postfix(post, refresh=False)
