r"""The joint fit of a frame sequence: one network for all frames (:func:`reconstruct_sequence`).

Frame ``t`` of the sequence is ``x_t = f_θ(z(s_t)) / (s‖A‖)`` with one network ``f_θ`` and per-frame
inputs on a smooth path (:class:`rfprior.priors.sequence.FramePath`). Each Adam step takes a
mini-batch of ``batch`` frames (a seeded shuffle, every frame once per epoch; with a spatio-temporal
penalty a window of consecutive frames, every frame in ``batch`` windows per epoch), so memory does
not grow with the number of frames F:

.. math:: \min_θ \; \frac{1}{B}\sum_{t \in \text{batch}} \Big[\tfrac12 \|A_t x_t − y_t\|^2 + λ\,\mathrm{TV}(x_t)\Big]

Every ``every`` steps all frames are evaluated: the sequence's total misfit
``½ Σ_t ‖A_t x_t − y_t‖²`` (and each frame's, recorded), the running average of every frame, and
the **discrepancy principle on the whole sequence**: the first evaluation with total misfit
``≤ τ M σ²`` (M = all measurements of all frames) is chosen, and its running average returned.
The penalty weight λ is the one frame's rule (:func:`rfprior.penalty.resolve_penalty`) on the
middle frame. Checkpoints, resume, interrupts (Ctrl-C: the best so far) and callbacks work as for
one frame.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from operators import LinearOperator

from .. import defaults, modalities
from ..files.atomic import atomic_path
from ..losses import half_squared_norm
from ..metrics import psnr
from ..penalty import resolve_penalty, total_variation
from ..priors.sequence import FramePath, default_anchors
from ..result import Result
from .resolve import resolve_prior

__all__ = ["SequenceState", "next_frames", "reconstruct_sequence", "sequence_sigma"]


@dataclass
class SequenceState:
    """What a sequence fit's callbacks see at each evaluation (all frames)."""

    iteration: int
    misfit: float  #: the sequence's total ``½ Σ ‖A_t x_t − y_t‖²`` (data units)
    frame_misfit: list[float]
    images: torch.Tensor  #: the raw iterate ``(F, H, W)`` in data units (no grad)


def _check(ys: Sequence[torch.Tensor], ops: Sequence[LinearOperator]) -> None:
    if len(ys) != len(ops) or len(ys) < 1:
        raise ValueError(f"a sequence needs one operator per frame: {len(ys)} frames of y, {len(ops)} operators")
    shape = ops[0].in_shape
    for t, (y, op) in enumerate(zip(ys, ops, strict=True)):
        if not isinstance(op, LinearOperator):
            raise TypeError(f"op[{t}] must be a LinearOperator, got {type(op).__name__}")
        if op.in_shape != shape:
            raise ValueError(f"every frame's operator must have the image shape {shape}; op[{t}] has {op.in_shape}")
        if not isinstance(y, torch.Tensor) or tuple(y.shape) != op.out_shape:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"y[{t}] must have op[{t}].out_shape {op.out_shape}, got {got}")
        if not bool(torch.isfinite(torch.view_as_real(y.to(torch.complex128))).all()):
            raise ValueError(f"y[{t}] contains NaN or Inf")


def sequence_sigma(ys: Sequence[torch.Tensor], ops: Sequence[LinearOperator]) -> tuple[float, str]:
    """σ of a sequence: the median of the frames' estimates (one estimate per frame) and its source."""
    found = [modalities.estimate_sigma(op, y) for op, y in zip(ops, ys, strict=True)]
    return float(np.median([s for s, _ in found])), f"median of per-frame {found[0][1]}"


def reconstruct_sequence(
    ys: Sequence[torch.Tensor] | torch.Tensor,
    ops: Sequence[LinearOperator] | LinearOperator,
    *,
    prior: str | torch.nn.Module | None = None,
    prior_kwargs: dict[str, Any] | None = None,
    iterations: int | None = None,
    lr: float | None = None,
    batch: int = 4,
    anchors: int | None = None,
    every: int | None = None,
    times: Sequence[float] | None = None,
    temporal_weight: float | None = None,
    stop: str = "discrepancy",
    tau: float | None = None,
    average: bool | None = None,
    penalty: str | None = "auto",
    penalty_weight: float | str = "auto",
    sigma: float | None = None,
    truth: torch.Tensor | None = None,
    seed: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    callbacks: Sequence[Callable[[SequenceState], bool | None]] = (),
    checkpoint: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: str | Path | None = None,
) -> Result:
    """Reconstruct a whole frame sequence with one untrained network (see the module docstring).

    Parameters
    ----------
    ys : F complex tensors, ``ys[t]`` of shape ``ops[t].out_shape`` (or one tensor ``(F, *op.out_shape)``)
    ops : F operators with one image shape ``(H, W)`` (or one operator shared by all frames)
    prior : a prior name or module (default: the forward model's, :func:`rfprior.default_prior`)
    iterations : Adam steps (default: the forward model's one-frame budget); each step fits ``batch`` frames
    lr : Adam step size (default: the forward model's)
    batch : frames per step (memory ∝ batch, not F)
    anchors : K, the anchors of the input path (default :func:`~rfprior.priors.sequence.default_anchors`)
    every : steps between two evaluations of all frames (default: one epoch, ``ceil(F / batch)``, at least 10)
    times : acquisition times of the frames (default 0, 1, …, F−1)
    temporal_weight : w > 0 makes the image penalty spatio-temporal on each step's frames, which are then
        ``batch`` consecutive frames: ``λ Σ √(|∂_y x|² + |∂_x x|² + w² |x_{t+1} − x_t|²)``; 0: per-frame TV.
        Default: the forward model's (:attr:`~rfprior.modalities.ModalityDefaults.sequence_temporal_weight`:
        2 for partial Fourier, 0 else; chosen on the sequence benchmark's tuning tier)
    stop : ``"discrepancy"`` (the default; on the total misfit) or ``"fixed"`` (the whole budget)
    tau : discrepancy τ (default: the prior's, :data:`rfprior.defaults.TAU`)
    average : return the running average (default :data:`rfprior.defaults.FIT`'s)
    penalty, penalty_weight : as :func:`rfprior.reconstruct` (λ from the middle frame)
    sigma : noise σ per real/imaginary component (default: the median of per-frame estimates)
    truth : ``(F, H, W)``, for benchmarks: PSNR per evaluation (mean over frames)
    seed, device, progress : as :func:`rfprior.reconstruct`
    callbacks : called at each evaluation with a :class:`SequenceState`; ``True`` stops the run
    checkpoint, checkpoint_every, resume : as :func:`rfprior.reconstruct` (``checkpoint_every`` in steps)

    Returns
    -------
    Result
        ``image`` and ``final_image`` ``(F, H, W)``; ``history`` over the evaluated iterations with
        ``misfit`` (total), ``frame_misfit`` (iteration, frame), ``discrepancy`` (``misfit/(Mσ²)``),
        ``psnr``/``psnr_average`` (with a truth); ``settings["sequence"]`` the frames, batch,
        anchors and evaluation interval.
    """
    fit = defaults.FIT
    if isinstance(ops, LinearOperator):
        ops = [ops] * (len(ys) if not isinstance(ys, torch.Tensor) else int(ys.shape[0]))
    ys = list(ys)
    ops = list(ops)
    _check(ys, ops)
    n_frames = len(ys)
    dev = torch.device(device) if device is not None else ops[0].device
    moved: dict[int, LinearOperator] = {}
    ops = [moved.setdefault(id(op), op.to(device=dev)) for op in ops]  # a shared operator stays one object
    ys = [y.to(device=dev, dtype=op.dtype) for y, op in zip(ys, ops, strict=True)]
    seed = fit.seed if seed is None else int(seed)
    iterations = defaults.default_iterations(ops[0]) if iterations is None else int(iterations)
    lr = defaults.default_lr(ops[0]) if lr is None else float(lr)
    average = fit.average if average is None else bool(average)
    if iterations < 1 or not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"iterations must be ≥ 1 and lr a positive number, got {iterations}, {lr}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an int ≥ 1, got {batch!r}")
    if temporal_weight is None:
        temporal_weight = defaults.modality_defaults(ops[0]).sequence_temporal_weight
    temporal_weight = float(temporal_weight)
    if not (temporal_weight >= 0 and math.isfinite(temporal_weight)):
        raise ValueError(f"temporal_weight must be a finite number ≥ 0, got {temporal_weight!r}")
    checkpoint_every = fit.checkpoint_every if checkpoint_every is None else int(checkpoint_every)
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be ≥ 1, got {checkpoint_every}")
    if stop not in ("discrepancy", "fixed"):
        raise ValueError(f"stop must be 'discrepancy' or 'fixed' for a sequence, got {stop!r}")
    batch = min(batch, n_frames)
    every = max(10, math.ceil(n_frames / batch)) if every is None else int(every)
    if every < 1:
        raise ValueError(f"every must be ≥ 1, got {every}")
    times = list(range(n_frames)) if times is None else [float(v) for v in times]
    if len(times) != n_frames:
        raise ValueError(f"times must have one entry per frame ({n_frames}), got {len(times)}")
    if truth is not None and tuple(truth.shape) != (n_frames, *ops[0].in_shape):
        raise ValueError(f"truth must have the shape {(n_frames, *ops[0].in_shape)}, got {tuple(truth.shape)}")
    if sigma is not None:
        source = getattr(sigma, "source", "given")
        sigma_value = float(sigma)
        if not (sigma_value > 0 and math.isfinite(sigma_value)):
            raise ValueError(f"sigma must be a positive finite number, got {sigma!r}")
    else:
        sigma_value, source = sequence_sigma(ys, ops)
    if not sigma_value > 0 and stop == "discrepancy":
        raise ValueError(
            f"the noise σ ({source}) is {sigma_value:g}: noise-free data leave the discrepancy rule undefined; "
            "pass sigma= or stop='fixed'"
        )
    m_total = sum(int(y.numel()) for y in ys)
    noise = m_total * sigma_value**2 if sigma_value > 0 else math.nan

    net, prior_settings = resolve_prior(prior, ops[0].in_shape, seed, prior_kwargs, ops[0])
    net = net.to(dev)
    k = default_anchors(n_frames) if anchors is None else anchors
    path = FramePath(net.z, times, k, seed).to(dev)
    tau = defaults.default_tau(getattr(net, "name", prior_settings.get("name"))) if tau is None else float(tau)
    target = tau * m_total * sigma_value**2

    norms = {id(op): op.opnorm() for op in ops}
    op_norm = max(norms.values())
    unit = {key: None for key in norms}
    unit_ops = []
    for op in ops:
        if unit[id(op)] is None:
            unit[id(op)] = op * (1.0 / op_norm)
        unit_ops.append(unit[id(op)])
    with torch.no_grad():
        num = sum(float(torch.linalg.vector_norm(u.forward(net(path([t]))[0])) ** 2) for t, u in enumerate(unit_ops))
        den = sum(float(torch.linalg.vector_norm(y) ** 2) for y in ys)
    scale = math.sqrt(num / den) if num > 0 and den > 0 else 1.0
    mid = n_frames // 2
    pen_name = defaults.default_penalty(ops[0]) if penalty == "auto" else penalty
    pen = resolve_penalty(pen_name, penalty_weight, ops[mid], ys[mid], sigma_value)
    fit_pen = None if pen is None else pen.in_fit_units(scale, op_norm, ys[mid])
    y_fit = [scale * y for y in ys]
    to_data = 1.0 / (scale * op_norm)

    settings = {
        "prior": prior_settings,
        "loss": {"name": "mse"},
        "stop": [{"rule": "SequenceDiscrepancy" if stop == "discrepancy" else "FixedIterations", "tau": tau}],
        "iterations": iterations,
        "lr": lr,
        "seed": seed,
        "sigma": sigma_value,
        "device": str(dev),
        "penalty": None if pen is None else pen.settings,
        "average": average,
        "sequence": {
            "frames": n_frames,
            "batch": batch,
            "anchors": k,
            "every": every,
            "times": times,
            "temporal_weight": float(temporal_weight),
        },
    }
    windows = temporal_weight > 0 and fit_pen is not None and n_frames > 1
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed + 104729)
    queue: list[int] = []
    ema: torch.Tensor | None = None
    weight = fit.average_weight**every
    keys = ("iteration", "loss", "misfit", "discrepancy", "frame_misfit", "time", "psnr", "psnr_average")
    hist: dict[str, list] = {key: [] for key in keys}
    fired = False
    chosen: int | None = None
    chosen_image: torch.Tensor | None = None
    start, t0, last_loss = 0, time.perf_counter(), math.nan

    inputs = [path.inputs[t : t + 1] for t in range(n_frames)]  # views: no index tensor per step
    truth_dev = None if truth is None else truth.to(dev)

    def images() -> torch.Tensor:
        with torch.no_grad():
            return torch.stack([net(z)[0] for z in inputs]) * to_data

    if resume is not None:
        ckpt = torch.load(Path(resume), map_location=dev, weights_only=False)
        if ckpt.get("settings") != settings:
            diff = sorted(key for key in settings if ckpt.get("settings", {}).get(key) != settings[key])
            raise ValueError(f"resume: checkpoint {resume} was made with different settings ({', '.join(diff)})")
        net.load_state_dict(ckpt["net"])
        opt.load_state_dict(ckpt["opt"])
        order.set_state(ckpt["order"])
        queue, ema, hist, start = ckpt["queue"], ckpt["ema"], ckpt["hist"], ckpt["iteration"]

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=iterations, initial=start, desc="rfprior sequence", unit="it", leave=False)
    interrupted = False
    it = start
    try:
        for it in range(start, iterations):
            opt.zero_grad(set_to_none=True)
            frames, queue = next_frames(queue, order, n_frames, batch, windows)
            if windows:  # a window of consecutive frames, coupled by the spatio-temporal penalty
                u = torch.cat([net(inputs[t]) for t in frames])
                term = sum(half_squared_norm(unit_ops[t].forward(u[i]) - y_fit[t]) for i, t in enumerate(frames))
                term = term + fit_pen.weight * total_variation(u, fit_pen.eps, temporal_weight)
                loss = term.detach() / len(frames)
                (term / len(frames)).backward()
            else:
                loss = 0.0
                for t in frames:
                    u = net(inputs[t])[0]
                    term = half_squared_norm(unit_ops[t].forward(u) - y_fit[t])
                    if fit_pen is not None:
                        term = term + fit_pen(u)
                    (term / len(frames)).backward()
                    loss = loss + term.detach() / len(frames)  # a tensor: no device sync per step
            opt.step()
            last_loss = loss
            if bar is not None:
                bar.update(1)
            if (it + 1) % every and it + 1 != iterations:
                if checkpoint is not None and (it + 1) % checkpoint_every == 0:
                    _save(checkpoint, net, opt, order, queue, ema, hist, it + 1, settings)
                continue
            x = images()
            ema = x.clone() if ema is None else weight * ema + (1 - weight) * x
            per = [float(half_squared_norm(op.forward(x[t]) - ys[t])) for t, op in enumerate(ops)]
            total = float(sum(per))
            hist["iteration"].append(it)
            hist["loss"].append(float(last_loss))
            hist["misfit"].append(total)
            hist["discrepancy"].append(total / noise)
            hist["frame_misfit"].append(per)
            hist["time"].append(time.perf_counter() - t0)
            if truth_dev is not None:
                tr = truth_dev
                hist["psnr"].append(float(np.mean([float(psnr(x[t], tr[t])) for t in range(n_frames)])))
                hist["psnr_average"].append(float(np.mean([float(psnr(ema[t], tr[t])) for t in range(n_frames)])))
            if bar is not None:
                bar.set_postfix({"misfit/(Mσ²)": f"{total / noise:.3f}"}, refresh=False)
            if checkpoint is not None and (it + 1) % checkpoint_every == 0:
                _save(checkpoint, net, opt, order, queue, ema, hist, it + 1, settings)
            state = SequenceState(it, total, per, x)
            if any(cb(state) for cb in callbacks):
                break
            if stop == "discrepancy" and total <= target:
                chosen, chosen_image, fired = it, (ema if average else x).clone(), True
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    final = images()
    if chosen is None:
        chosen = hist["iteration"][-1] if hist["iteration"] else it
        chosen_image = ema if (average and ema is not None) else final
        if interrupted:
            what = "running average" if average else "last iterate"
            reason = f"interrupted at iteration {it}; the best so far ({what})"
        elif stop == "fixed":
            reason = f"fixed budget of {iterations} iterations"
        else:
            low = min(hist["misfit"]) / noise if hist["misfit"] else math.nan
            reason = (
                f"iteration budget of {iterations} reached; the sequence misfit never reached τMσ² (lowest "
                f"½‖r‖²/(Mσ²) = {low:.3g} > τ = {tau:g}; σ = {sigma_value:.3g} {source}); the "
                f"{'running average' if average else 'last iterate'} at the end"
            )
    else:
        reason = (
            f"sequence discrepancy principle: ½Σ‖A_t x_t − y_t‖² ≤ τMσ² (τ = {tau:g}, σ = {sigma_value:.3g} {source}) "
            f"at iteration {chosen}; {'running average' if average else 'raw iterate'}"
        )
    history = _history(hist, n_frames)
    out = Result(
        image=chosen_image.cpu(),
        chosen_iteration=int(chosen),
        final_image=final.cpu(),
        final_iteration=int(it),
        history=history,
        settings=settings,
        seed=seed,
        stop_reason=reason,
        choices={"discrepancy": chosen if fired else None},
        sigma=sigma_value,
        scale=scale,
        interrupted=interrupted,
        rule_summaries={"discrepancy": {"sigma": sigma_value, "sigma_source": source, "tau": tau, "M": m_total}},
    )
    if truth is not None:
        tr = truth.to(device="cpu", dtype=out.image.dtype)
        out.image_psnr = float(np.mean([float(psnr(out.image[t], tr[t])) for t in range(n_frames)]))
        if hist["psnr"]:
            best = int(np.argmax(hist["psnr"]))
            out.oracle_iteration, out.oracle_psnr = hist["iteration"][best], hist["psnr"][best]
    return out


def next_frames(
    queue: list[int], order: torch.Generator, n_frames: int, batch: int, windows: bool
) -> tuple[list[int], list[int]]:
    """The frames of the next step and the rest of the epoch's queue (a seeded shuffle per epoch).

    Without ``windows``: every frame once per epoch, ``batch`` at a time (the epoch's last batch may be
    smaller). With ``windows``: consecutive frames ``[s, s + batch)`` clipped to ``[0, F)`` for the
    starts ``s = −(batch−1) … F−1`` in a shuffled order, so every frame lies in ``batch`` windows of an
    epoch, the first and last frames included.
    """
    if windows:
        if not queue:
            queue = (torch.randperm(n_frames + batch - 1, generator=order) - (batch - 1)).tolist()
        first, queue = queue[0], queue[1:]
        return list(range(max(first, 0), min(first + batch, n_frames))), queue
    if not queue:
        queue = torch.randperm(n_frames, generator=order).tolist()
    return queue[:batch], queue[batch:]


def _history(hist: dict[str, list], n_frames: int) -> xr.Dataset:
    its = np.asarray(hist["iteration"], dtype=np.int64)
    data: dict[str, Any] = {
        "loss": ("iteration", np.asarray(hist["loss"], dtype=np.float64)),
        "misfit": ("iteration", np.asarray(hist["misfit"], dtype=np.float64)),
        "discrepancy": ("iteration", np.asarray(hist["discrepancy"], dtype=np.float64)),
        "time": ("iteration", np.asarray(hist["time"], dtype=np.float64)),
        "frame_misfit": (
            ("iteration", "frame"),
            np.asarray(hist["frame_misfit"], dtype=np.float64).reshape(-1, n_frames),
        ),
    }
    for key in ("psnr", "psnr_average"):
        if hist[key]:
            data[key] = ("iteration", np.asarray(hist[key], dtype=np.float64))
    return xr.Dataset(data, coords={"iteration": its, "frame": np.arange(n_frames)})


def _save(path, net, opt, order, queue, ema, hist, iteration, settings) -> None:
    state = {
        "net": net.state_dict(),
        "opt": opt.state_dict(),
        "order": order.get_state(),
        "queue": list(queue),
        "ema": None if ema is None else ema.clone(),
        "hist": {k: list(v) for k, v in hist.items()},
        "iteration": iteration,
        "settings": settings,
    }
    with atomic_path(path, force=True) as tmp:
        torch.save(state, tmp)

