r"""The reconstruction engine: fit an untrained prior to one measurement.

The loop is deliberately plain (prior → operator → loss → step):

.. math::

    \theta_{t+1} = \mathrm{Adam}\big(\theta_t,\ \nabla_\theta\, \mathcal{L}(A f_\theta(z + \eta_t),\ s\,y)\big),
    \qquad \eta_t \sim \mathcal N(0, \sigma_{\text{reg}}^2)

with ``s`` the automatic data scale (so that the untrained output and the data
have comparable size; undone on every returned image). Everything around the loop
— stopping rules, running averages, history, progress bar, callbacks — is plugged
in, never special-cased inside the maths.

Backtracking: when the data misfit becomes non-finite or jumps by more than
``backtrack_db`` decibels in one step, the weights of the last good iterate are
restored, the optimiser state is reset and its step size halved. After
``max_backtracks`` consecutive failures the run stops with the best valid iterate
and a warning; a NaN image never reaches the result.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from operators import LinearOperator

from ._resolve import resolve_loss, resolve_prior
from .result import HistoryRecorder, Result
from .stopping.base import Decision, FitContext, FixedIterations, StoppingRule

__all__ = ["IterationState", "reconstruct", "DEFAULTS"]

#: Defaults chosen by measurement (benchmarks/engine.py; see README "Defaults").
DEFAULTS: dict[str, Any] = {
    "prior": "deep_decoder",
    "iterations": 1500,
    "lr": 0.01,
    "reg_noise_std": 0.0,
}


@dataclass
class IterationState:
    """What a callback sees after each accepted iteration (images in data units)."""

    iteration: int
    image: torch.Tensor
    loss: float
    misfit: float
    statistics: dict[str, float | None]


class _StopError(Exception):
    pass


def reconstruct(
    y: torch.Tensor,
    op: LinearOperator,
    *,
    prior: str | torch.nn.Module | None = None,
    prior_kwargs: dict[str, Any] | None = None,
    loss: str | Callable[..., torch.Tensor] = "mse",
    stop: StoppingRule | Sequence[StoppingRule] | None = None,
    iterations: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    reg_noise_std: float | None = None,
    sigma: float | None = None,
    truth: torch.Tensor | None = None,
    autoscale: bool = True,
    backtrack_db: float = 5.0,
    max_backtracks: int = 10,
    progress: bool = True,
    callbacks: Sequence[Callable[[IterationState], bool | None]] = (),
) -> Result:
    """Reconstruct an image from ``y = A x + n`` with an untrained network prior.

    Parameters
    ----------
    y : complex tensor of shape ``op.out_shape``
        The measurements (data units).
    op : LinearOperator
        Forward model with ``in_shape == (H, W)``.
    prior : name (``"dip"``, ``"deep_decoder"``, ``"controlled"``, ``"complex"``) or a ``Prior`` module
        A name is built with ``prior_kwargs`` and the run's ``seed``; default
        ``DEFAULTS["prior"]``.
    loss : ``"mse"``, ``"dsp"`` or a callable ``loss(pred, y, op) -> scalar``
    stop : a rule or a list of rules; the first decides, the others are recorded.
        Default: fixed iterations.
    iterations : iteration budget (default ``DEFAULTS["iterations"]``).
    lr : Adam step size (default ``DEFAULTS["lr"]``).
    seed : seeds the prior (weights and input), the input jitter and the rules.
    device : where to run (``"cpu"``, ``"cuda"``, …); default: the operator's device.
    reg_noise_std : standard deviation of the input jitter (0 = none).
    sigma : noise σ per real/imag component if known (used by the discrepancy rule).
    truth : ground-truth image ``(H, W)`` for benchmarks; adds ``psnr`` to the history.
    autoscale : scale the data so that ``‖A f(z)‖ ≈ ‖y‖`` for the untrained network.
    backtrack_db : misfit jump (dB, one step) that triggers a restore of the last good weights.
    max_backtracks : consecutive failures after which the run stops with the best valid iterate.
    progress : show a tqdm progress bar with the loss and the deciding rule's statistic.
    callbacks : called after each accepted iteration with an :class:`IterationState`;
        returning ``True`` stops the run.

    Returns
    -------
    Result
    """
    iterations = int(DEFAULTS["iterations"] if iterations is None else iterations)
    if iterations < 1:
        raise ValueError(f"iterations must be ≥ 1, got {iterations}")
    lr = float(DEFAULTS["lr"] if lr is None else lr)
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive finite number, got {lr}")
    reg = float(DEFAULTS["reg_noise_std"] if reg_noise_std is None else reg_noise_std)
    if reg < 0:
        raise ValueError(f"reg_noise_std must be ≥ 0, got {reg}")
    if sigma is not None and not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be a positive finite number, got {sigma}")
    dev = torch.device(device) if device is not None else op.device
    op = op.to(device=dev)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if tuple(y.shape) != op.out_shape:
        raise ValueError(f"y must have the operator's out_shape {op.out_shape}, got {tuple(y.shape)}")
    y = y.to(device=dev, dtype=op.dtype)
    if not bool(torch.isfinite(torch.view_as_real(y)).all()):
        raise ValueError("y contains NaN or Inf")
    if truth is not None and tuple(truth.shape) != op.in_shape:
        raise ValueError(f"truth must have the image shape {op.in_shape}, got {tuple(truth.shape)}")

    rules = _as_rules(stop)
    net, prior_settings = resolve_prior(prior, op.in_shape, seed, prior_kwargs)
    net = net.to(dev)
    loss_fn, loss_settings = resolve_loss(loss)

    ctx = FitContext(op=op, y=y, seed=seed, iterations=iterations, sigma=sigma)
    fit_index = None
    for r in rules:
        idx = r.fit_subset(ctx)
        if idx is not None:
            if fit_index is not None:
                raise ValueError("only one hold-out rule may split the measurements")
            fit_index = idx
    ctx.fit_index = fit_index
    monitors = [r.start(ctx) for r in rules]
    fit_op = op if fit_index is None else op.restrict(fit_index)
    y_fit = y if fit_index is None else y.reshape(-1)[fit_index.to(dev)]

    settings = {
        "prior": prior_settings,
        "loss": loss_settings,
        "stop": [r.settings() for r in rules],
        "iterations": iterations,
        "lr": lr,
        "seed": seed,
        "reg_noise_std": reg,
        "autoscale": autoscale,
        "backtrack_db": backtrack_db,
        "max_backtracks": max_backtracks,
        "sigma": sigma,
        "device": str(dev),
        "dtype": str(op.dtype).replace("torch.", ""),
    }
    run = _Run(net, fit_op, y_fit, loss_fn, monitors, rules, seed, reg, lr, dev, truth, backtrack_db, max_backtracks)
    run.autoscale(y, op, autoscale)
    return run.loop(iterations, progress, callbacks, settings)


def _as_rules(stop: StoppingRule | Sequence[StoppingRule] | None) -> list[StoppingRule]:
    if stop is None:
        return [FixedIterations()]
    rules = [stop] if isinstance(stop, StoppingRule) else list(stop)
    if not rules:
        return [FixedIterations()]
    for r in rules:
        if not isinstance(r, StoppingRule):
            raise TypeError(f"stop must be StoppingRule objects, got {type(r).__name__}")
    names = [m.name for m in rules]
    if len(set(names)) != len(names):
        raise ValueError(f"stop: each rule may appear once, got {names}")
    return rules


class _Run:
    """State of one optimisation run (kept out of the public API)."""

    def __init__(self, net, op, y, loss_fn, monitors, rules, seed, reg, lr, dev, truth, backtrack_db, max_bt):
        self.net, self.op, self.y, self.loss_fn = net, op, y, loss_fn
        self.monitors, self.rules = monitors, rules
        self.reg, self.lr, self.dev = reg, lr, dev
        self.gen = torch.Generator(device=dev).manual_seed(seed + 7919)
        self.truth = None if truth is None else truth.to(dev)
        self.jump = 10 ** (backtrack_db / 10)
        self.max_bt = max_bt
        self.warmup = 20  # early Adam steps from a random init may legitimately raise the misfit
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.good = [p.detach().clone() for p in self.params]
        self.opt = torch.optim.Adam(self.params, lr=lr)
        self.scale = 1.0
        ema_rule = next((r for r in rules if r.averages), None)
        self.ema_weight = None if ema_rule is None else ema_rule.weight

    def autoscale(self, y_full: torch.Tensor, op_full: LinearOperator, enabled: bool) -> None:
        if not enabled:
            return
        with torch.no_grad():
            out = self.net()
            n_out = float(torch.linalg.vector_norm(op_full.forward(out[0])))
            n_y = float(torch.linalg.vector_norm(y_full))
        if n_out > 0 and n_y > 0 and math.isfinite(n_out):
            self.scale = n_out / n_y

    def _output(self) -> torch.Tensor:
        z = self.net.z
        if self.reg > 0:
            z = z + self.reg * torch.randn(z.shape, generator=self.gen, device=z.device, dtype=z.dtype)
        return self.net(z)[0]

    def _restore(self) -> None:
        with torch.no_grad():
            for p, g in zip(self.params, self.good, strict=True):
                p.copy_(g)
        self.lr *= 0.5
        self.opt = torch.optim.Adam(self.params, lr=self.lr)

    def _choose(self, picked, choices, ema, last_img, hist, reason):
        """The deciding rule's choice, else a stated fallback: hold-out choice, running average, last iterate."""
        lead = self.monitors[0].name
        if choices.get(lead) is not None:
            return picked[lead], choices[lead], reason
        last_it = int(hist.iteration[hist.n - 1])
        if choices.get("heldout") is not None:
            return picked["heldout"], choices["heldout"], reason + "; fell back to the hold-out choice"
        if ema is not None:
            return ema.clone(), last_it, reason + "; fell back to the last running average"
        return last_img.clone(), last_it, reason + "; fell back to the last iterate"

    def loop(self, iterations, progress, callbacks, settings) -> Result:
        if self.truth is not None:
            from .metrics import psnr

        names = ["loss", "misfit", "time", "lr"] + [m.name for m in self.monitors]
        if self.truth is not None:
            names += ["psnr"] + (["psnr_average"] if self.ema_weight is not None else [])
        hist = HistoryRecorder(iterations, names)
        bar = _progress(iterations, progress)
        inv_scale, inv_scale2 = 1.0 / self.scale, 1.0 / self.scale**2
        y_s = self.y * self.scale
        ema = oracle = None
        picked: dict[str, torch.Tensor] = {}
        choices: dict[str, int | None] = {m.name: None for m in self.monitors}
        stopped_by: dict[str, int] = {}
        best_psnr, oracle_it, prev_misfit = -math.inf, None, math.inf
        fails = backtracks = it = 0
        last_img = None
        interrupted, reason = False, ""
        t0 = time.perf_counter()
        try:
            while it < iterations:
                out = self._output()
                pred = self.op.forward(out)
                loss = self.loss_fn(pred, y_s, self.op)
                with torch.no_grad():
                    misfit_s = 0.5 * float(torch.linalg.vector_norm(pred - y_s) ** 2)
                loss_value = float(loss.detach())
                ok = math.isfinite(misfit_s) and math.isfinite(loss_value)
                if ok and it >= self.warmup and misfit_s > self.jump * prev_misfit:
                    ok = False  # a jump: the last step overshot
                if not ok:
                    fails += 1
                    backtracks += 1
                    if fails > self.max_bt:
                        warnings.warn(
                            f"stopping after {self.max_bt} consecutive failed steps (NaN/Inf or a loss jump); "
                            "returning the best valid iterate",
                            RuntimeWarning,
                            stacklevel=3,
                        )
                        reason = f"numerical failure: {self.max_bt} consecutive backtracks"
                        raise _StopError
                    self._restore()
                    continue
                fails = 0
                prev_misfit = misfit_s
                with torch.no_grad():
                    for p, g in zip(self.params, self.good, strict=True):
                        g.copy_(p)
                    img = out.detach() * inv_scale
                    if self.ema_weight is not None:
                        w = self.ema_weight
                        ema = img.clone() if ema is None else ema.mul_(w).add_(img, alpha=1 - w)
                    misfit = misfit_s * inv_scale2
                    stats: dict[str, float | None] = {}
                    decisions: list[Decision] = []
                    src = ema if ema is not None else img
                    for m in self.monitors:
                        d = m.observe(it, img, misfit)
                        decisions.append(d)
                        stats[m.name] = d.statistic
                        if d.candidate and m.name not in stopped_by:
                            choices[m.name] = it
                            prev = picked.get(m.name)
                            picked[m.name] = src.clone() if prev is None else prev.copy_(src)
                        if d.stop and m.name not in stopped_by:
                            stopped_by[m.name] = it
                    rec = {"loss": loss_value, "misfit": misfit, "time": time.perf_counter() - t0, "lr": self.lr}
                    rec.update(stats)
                    if self.truth is not None:
                        p_raw = psnr(img, self.truth)
                        rec["psnr"] = p_raw
                        if ema is not None:
                            rec["psnr_average"] = psnr(ema, self.truth)
                        if p_raw > best_psnr:
                            best_psnr, oracle_it = p_raw, it
                            oracle = img.clone() if oracle is None else oracle.copy_(img)
                    hist.record(it, rec)
                    last_img = img
                _tick(bar, it, loss_value, self.monitors[0].name, stats.get(self.monitors[0].name))
                user_stop = any(cb(IterationState(it, img, loss_value, misfit, stats)) for cb in callbacks)
                if decisions[0].stop:
                    reason = f"{self.monitors[0].name} rule decided at iteration {it}"
                    break
                if user_stop:
                    reason = f"a callback stopped the run at iteration {it}"
                    break
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                it += 1
            else:
                reason = f"iteration budget of {iterations} reached"
        except _StopError:
            pass
        except KeyboardInterrupt:
            interrupted, reason = True, f"interrupted at iteration {it}; returning the best iterate so far"
        finally:
            if bar is not None:
                bar.close()
        if last_img is None:
            raise RuntimeError("no valid iterate: the first forward pass already failed (NaN/Inf)")
        for m in self.monitors:
            note = m.finish(hist.iteration[hist.n - 1] if hist.n else 0)
            if note and m is self.monitors[0]:
                reason += f"; {note}"
        chosen, chosen_it, reason = self._choose(picked, choices, ema, last_img, hist, reason)
        summaries = {m.name: m.summary() for m in self.monitors}
        sig = next((s.get("sigma") for s in summaries.values() if s.get("sigma") is not None), settings["sigma"])
        return Result(
            image=chosen.cpu(),
            chosen_iteration=int(chosen_it),
            final_image=last_img.cpu(),
            final_iteration=int(hist.iteration[hist.n - 1]),
            history=hist.to_dataset({"scale": self.scale}),
            settings=settings,
            seed=settings["seed"],
            stop_reason=reason,
            choices=choices,
            sigma=sig,
            scale=self.scale,
            interrupted=interrupted,
            backtracks=backtracks,
            oracle_iteration=oracle_it,
            oracle_psnr=None if oracle_it is None else best_psnr,
            oracle_image=None if oracle is None else oracle.cpu(),
            rule_summaries=summaries,
        )


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="rfprior", unit="it", leave=False, dynamic_ncols=True)


def _tick(bar, it: int, loss: float, rule: str, stat: float | None) -> None:
    if bar is None:
        return
    bar.update(1)
    if it % 10 == 0:
        post = {"loss": f"{loss:.3e}"}
        if stat is not None:
            post[rule] = f"{stat:.3g}"
        bar.set_postfix(post, refresh=False)
