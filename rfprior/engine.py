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
restored together with the optimiser's moments from that iterate (a fresh Adam's first
step is a full-size sign step, itself a jump), and the step size is halved. When a
step fails again after ``max_backtracks`` consecutive backtracks, the run stops with
the best valid iterate and a warning; a NaN image never reaches the result.
"""

from __future__ import annotations

import copy
import math
import operator
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from operators import LinearOperator

from ._ensemble import fit_ensemble
from ._loop import IterationState, Run
from ._resolve import default_penalty, resolve_loss, resolve_prior
from .penalty import PENALTIES, Penalty, resolve_penalty
from .result import NetworkState, Result
from .stopping.base import FitContext, FixedIterations, StoppingRule

__all__ = ["IterationState", "reconstruct", "DEFAULTS"]

#: Defaults chosen by measurement (benchmarks/engine.py; see README "Defaults").
DEFAULTS: dict[str, Any] = {
    "prior": "auto",  # per forward model: rfprior.default_prior(op) (Deep Decoder; dip_small for MIMO)
    "iterations": 1500,
    "lr": 0.01,
    "reg_noise_std": 0.0,
}


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
    psnr_peak: float | None = None,
    autoscale: bool = True,
    backtrack_db: float = 5.0,
    max_backtracks: int = 10,
    progress: bool = True,
    callbacks: Sequence[Callable[[IterationState], bool | None]] = (),
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 100,
    resume: str | Path | None = None,
    fits: int = 1,
    penalty: str | None = "auto",
    penalty_weight: float | str = "auto",
    init: Result | NetworkState | str | os.PathLike[str] | None = None,
) -> Result:
    """Reconstruct an image from ``y = A x + n`` with an untrained network prior.

    Parameters
    ----------
    y : complex tensor of shape ``op.out_shape``
        The measurements (data units).
    op : LinearOperator
        Forward model with ``in_shape == (H, W)``.
    prior : name (``"dip"``, ``"deep_decoder"``, ``"controlled"``, ``"complex"``) or a ``Prior`` module
        A name is built with ``prior_kwargs`` and the run's ``seed``; default (or ``"auto"``):
        :func:`rfprior.default_prior` for ``op`` (``"deep_decoder"``; ``"dip_small"`` for MIMO radar).
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
    psnr_peak : peak of the history's PSNR (e.g. 1.0 for images in [0, 1]); default ``max |truth|``.
    autoscale : scale the data so that ``‖A f(z)‖ ≈ ‖y‖`` for the untrained network.
    backtrack_db : misfit jump (dB, one step) that triggers a restore of the last good weights.
    max_backtracks : consecutive backtracks allowed; the next failed step stops the run with the best valid iterate.
    progress : show a tqdm progress bar with the loss and the deciding rule's statistic.
    callbacks : called after each accepted iteration with an :class:`IterationState`;
        returning ``True`` stops the run.
    checkpoint : file to save the full run state to every ``checkpoint_every`` iterations
        (atomically); ``resume`` continues from such a file to exactly the result an
        uninterrupted run with the same inputs and settings gives.
    fits : number of independently seeded fits (seeds ``seed + 1000·k``, so a run seeded
        1000 repeats the second fit of one seeded 0), each stopped by ``stop`` on its own;
        the image is their mean and ``Result.spread`` their per-pixel RMS deviation from it.
        A callback returning ``True`` or an interrupt ends the whole ensemble (the mean is
        then over the fits that were not cut short). ``fits=2`` costs twice the compute; measured on the stopping
        benchmark's 45 shipped-configuration cases: +0.9 dB mean, within 0.5 dB of one
        run's best iterate in 91 % of cases instead of 76 % (README, "Several fits").
        Needs a prior name (not a module); no checkpoints.
    penalty : ``"tv"``, ``None`` or ``"auto"`` (default: :func:`rfprior.default_penalty` for ``op``)
        Image-domain penalty added to the data term (DIP + TV, :mod:`rfprior.penalty`):
        ``½‖A f_θ − y‖² + λ TV(f_θ)``. The stopping rules still judge the data misfit alone.
    penalty_weight : λ in data units, or ``"auto"``: a fixed fraction of the λ that the
        discrepancy principle picks for plain TV on the same data (σ given or estimated),
        computed once per call (a TV solve; recorded in ``settings["penalty"]``).
    init : a previous :class:`Result`, its :class:`NetworkState` (``result.weights``) or a result
        file written with ``save_result(..., weights=True)``: warm start. The network starts
        from that fit's weights and input (at its chosen iteration) and keeps its output scale
        ``s·‖A‖``, so the first iterate is the previous fit's image; the stopping rules are
        unchanged. Default prior: the previous fit's (a given ``prior`` must have the same
        architecture and image size). A fresh Adam state; ``seed`` still seeds the input
        jitter and the rules. Not with ``fits > 1``.

    Returns
    -------
    Result
    """
    if isinstance(fits, bool) or not hasattr(type(fits), "__index__") or operator.index(fits) < 1:
        raise ValueError(f"fits must be an integer ≥ 1, got {fits!r}")
    fits = operator.index(fits)  # also numpy integers
    if penalty == "auto":
        penalty = default_penalty(op)
    if penalty is not None and penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {PENALTIES}, 'auto' or None, got {penalty!r}")
    pen = None if penalty is None else (penalty, penalty_weight)
    warm = _resolve_init(init)
    if warm is not None and fits > 1:
        raise ValueError("init: a warm start is not supported with fits > 1 (every fit would start alike); use fits=1")
    kwargs: dict[str, Any] = dict(
        penalty=pen,
        penalty_cache={},  # the auto weight is solved once per call (per hold-out split), whatever the fits
        prior=prior,
        prior_kwargs=prior_kwargs,
        loss=loss,
        stop=stop,
        iterations=iterations,
        lr=lr,
        device=device,
        reg_noise_std=reg_noise_std,
        sigma=sigma,
        truth=truth,
        psnr_peak=psnr_peak,
        autoscale=autoscale,
        backtrack_db=backtrack_db,
        max_backtracks=max_backtracks,
        progress=progress,
    )
    if fits == 1:
        return _fit_one(
            y,
            op,
            seed=seed,
            callbacks=callbacks,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            resume=resume,
            init=warm,
            **kwargs,
        )
    if checkpoint is not None or resume is not None:
        raise ValueError("checkpoint/resume: not supported with fits > 1 (each fit is its own run); use fits=1")
    if isinstance(prior, torch.nn.Module):
        raise ValueError(
            "prior: fits > 1 builds one network per fit from its seed, so it needs a prior name or None, "
            f"not a {type(prior).__name__} module"
        )
    dev_op = op.to(device=torch.device(device) if device is not None else op.device)
    return fit_ensemble(
        lambda s, k, label, cbs: _fit_one(y, op, seed=s, fit=k, desc=label, callbacks=cbs, **kwargs),
        fits=fits,
        callbacks=callbacks,
        seed=seed,
        op=dev_op,
        y=y,
        truth=truth,
        psnr_peak=psnr_peak,
    )


def _fit_one(
    y: torch.Tensor,
    op: LinearOperator,
    *,
    prior: str | torch.nn.Module | None,
    prior_kwargs: dict[str, Any] | None,
    loss: str | Callable[..., torch.Tensor],
    stop: StoppingRule | Sequence[StoppingRule] | None,
    iterations: int | None,
    lr: float | None,
    seed: int,
    device: torch.device | str | None,
    reg_noise_std: float | None,
    sigma: float | None,
    truth: torch.Tensor | None,
    psnr_peak: float | None,
    autoscale: bool,
    backtrack_db: float,
    max_backtracks: int,
    progress: bool,
    callbacks: Sequence[Callable[[IterationState], bool | None]] = (),
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 100,
    resume: str | Path | None = None,
    fit: int = 0,
    desc: str = "rfprior",
    penalty: tuple[str, float | str] | None = None,
    penalty_cache: dict[Any, Penalty] | None = None,
    init: NetworkState | None = None,
) -> Result:
    """One fit (:func:`reconstruct` with ``fits=1``; its defaults are ``reconstruct``'s).

    ``fit`` and ``desc`` label the callbacks' state and the progress bar; ``init`` is a
    resolved warm start.
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
    if psnr_peak is not None and not (psnr_peak > 0 and math.isfinite(psnr_peak)):
        raise ValueError(f"psnr_peak must be a positive finite number, got {psnr_peak}")
    if truth is not None and tuple(truth.shape) != op.in_shape:
        raise ValueError(f"truth must have the image shape {op.in_shape}, got {tuple(truth.shape)}")

    rules = _as_rules(stop)
    if init is not None and prior is None:
        prior, prior_kwargs = _prior_of(init)
    if isinstance(prior, torch.nn.Module) and any(getattr(r, "refit", False) for r in rules):
        prior_for_refit: Any = copy.deepcopy(prior)  # the refit starts from the same untrained weights
    else:
        prior_for_refit = prior
    net, prior_settings = resolve_prior(prior, op.in_shape, seed, prior_kwargs, op)
    if init is not None:
        _load_init(net, init, prior_settings)
    net = net.to(dev)
    loss_fn, loss_settings = resolve_loss(loss)

    ctx = FitContext(op=op, y=y, seed=seed, iterations=iterations, sigma=sigma)
    ctx.info["prior"] = getattr(net, "name", prior_settings.get("name"))  # per-prior defaults (Discrepancy τ)
    fit_index = None
    for r in rules:
        idx = r.fit_subset(ctx)
        if idx is not None:
            if fit_index is not None:
                raise ValueError("only one hold-out rule may split the measurements")
            fit_index = idx
    ctx.fit_index = fit_index
    # the penalty's auto weight sees only the measurements the network is fitted to (a hold-out split stays unseen)
    pen = None
    if penalty is not None:
        cache = {} if penalty_cache is None else penalty_cache
        key = None if fit_index is None else fit_index.cpu().numpy().tobytes()
        if key not in cache:
            sub_op = op if fit_index is None else op.restrict(fit_index)
            sub_y = y if fit_index is None else y.reshape(-1)[fit_index.to(dev)]
            cache[key] = resolve_penalty(penalty[0], penalty[1], sub_op, sub_y, sigma)
        pen = cache[key]
    monitors = [r.start(ctx) for r in rules]
    # Fit with the operator normalised to ‖A‖ = 1: physical units can make ‖A‖ ~ 1e-13
    # (diffraction tomography), where Adam's ε would swamp the gradients. Images and
    # misfits are reported in data units.
    op_norm = op.opnorm()
    if not (op_norm > 0 and math.isfinite(op_norm)):
        raise ValueError(f"the operator's norm is {op_norm}; it maps every image to zero")
    unit_op = op if op_norm == 1.0 else op * (1.0 / op_norm)
    fit_op = unit_op if fit_index is None else unit_op.restrict(fit_index)
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
        "penalty": None if pen is None else pen.settings,
    }
    if init is not None:
        # the previous fit's output scale: the first iterate is its image, in data units
        scale = init.output_scale / op_norm
        settings["init"] = {"prior": init.prior, "iteration": init.iteration, "output_scale": init.output_scale}
    else:
        scale = _autoscale(net, y, unit_op) if autoscale else 1.0
    ema_rule = next((r for r in rules if r.averages), None)
    run = Run(
        net,
        fit_op,
        y_fit,
        loss_fn,
        monitors,
        None if ema_rule is None else ema_rule.weight,
        seed=seed,
        reg=reg,
        lr=lr,
        truth=truth,
        psnr_peak=psnr_peak,
        backtrack_db=backtrack_db,
        max_backtracks=max_backtracks,
        scale=scale,
        op_norm=op_norm,
        fit=fit,
        desc=desc,
        penalty=None if pen is None else pen.in_fit_units(scale, op_norm, y_fit),
    )
    if resume is not None:
        _resume(run, Path(resume), settings)
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be ≥ 1, got {checkpoint_every}")
    ckpt = None if checkpoint is None else Path(checkpoint)
    result = run.run(iterations, progress, callbacks, settings, ckpt, checkpoint_every)
    refit_rule = next((r for r in rules if getattr(r, "refit", False)), None)
    if refit_rule is None or result.interrupted:
        return result
    return _refit(
        result,
        refit_rule,
        ema_rule,
        y=y,
        op=op,
        prior=prior_for_refit,
        prior_kwargs=prior_kwargs,
        loss=loss,
        lr=lr,
        seed=seed,
        device=dev,
        reg_noise_std=reg,
        sigma=sigma,
        truth=truth,
        psnr_peak=psnr_peak,
        autoscale=autoscale,
        backtrack_db=backtrack_db,
        max_backtracks=max_backtracks,
        progress=progress,
        fit=fit,
        desc=desc,
        penalty=penalty,
        penalty_cache=penalty_cache,
        init=init,
    )


def _resolve_init(init: Any) -> NetworkState | None:
    """``reconstruct``'s ``init`` argument as a :class:`NetworkState` (``None`` for a cold start)."""
    if init is None or isinstance(init, NetworkState):
        return init
    if isinstance(init, Result):
        if init.weights is None:
            raise ValueError("init: this Result carries no network weights (Result.weights is None)")
        return init.weights
    if isinstance(init, (str, os.PathLike)):
        from .io.results import load_weights

        return load_weights(init)
    raise TypeError(f"init must be a Result, a NetworkState or a result file path, got {type(init).__name__}")


def _prior_of(init: NetworkState) -> tuple[str, dict[str, Any]]:
    """The prior name and keyword arguments that rebuild the warm start's architecture."""
    from ._resolve import PRESETS
    from .priors import PRIORS

    name = init.prior.get("preset", init.prior.get("name"))
    if name not in PRIORS and name not in PRESETS:
        raise ValueError(
            f"init: the previous fit's prior {name!r} is not a named prior; "
            "pass prior= a module of the same architecture"
        )
    return str(name), {k: v for k, v in init.prior.items() if k not in ("name", "preset")}


def _load_init(net: torch.nn.Module, init: NetworkState, settings: dict[str, Any]) -> None:
    """Load the warm start's state into ``net``; a different architecture or image size is refused by name."""
    own = net.state_dict()
    theirs = init.state_dict
    bad = sorted(set(own) ^ set(theirs)) or [k for k in own if tuple(own[k].shape) != tuple(theirs[k].shape)]
    if bad:
        label = lambda prior: ", ".join(f"{k}={v}" for k, v in prior.items())  # noqa: E731
        raise ValueError(
            f"init: the previous fit's network ({label(init.prior)}) does not match this run's prior "
            f"({label(settings)}): tensor {bad[0]!r} differs (another prior, size or image shape?)"
        )
    net.load_state_dict(theirs)


def _refit(held: Result, rule: StoppingRule, ema_rule: StoppingRule | None, **kwargs: Any) -> Result:
    """Refit on all measurements for ``t* + 1`` iterations (``t*`` chosen on the hold-out split).

    The hold-out run's choice, history and summary are kept under
    ``rule_summaries["heldout"]["refit_of"]``; the image is the refit's last iterate
    (its running average when a rule averages).
    """
    t_star = held.chosen_iteration
    stop: list[StoppingRule] = [FixedIterations()]
    if ema_rule is not None:
        stop.append(ema_rule)
    res = _fit_one(stop=stop, iterations=t_star + 1, **kwargs)
    res.rule_summaries = {
        **res.rule_summaries,
        rule.name: {
            **held.rule_summaries.get(rule.name, {}),
            "refit_of": {
                "chosen_iteration": t_star,
                "stop_reason": held.stop_reason,
                "final_iteration": held.final_iteration,
            },
        },
    }
    res.choices = {**held.choices, **res.choices}
    res.settings = {**res.settings, "stop": held.settings["stop"], "refit_iterations": t_star + 1}
    res.stop_reason = f"{held.stop_reason}; refit on all measurements for {t_star + 1} iterations"
    return res


def _autoscale(net: torch.nn.Module, y: torch.Tensor, op: LinearOperator) -> float:
    """Data scale ``s = ‖A f(z)‖ / ‖y‖`` for the untrained network (1 when undefined)."""
    with torch.no_grad():
        n_out = float(torch.linalg.vector_norm(op.forward(net()[0])))
    n_y = float(torch.linalg.vector_norm(y))
    return n_out / n_y if n_out > 0 and n_y > 0 and math.isfinite(n_out) else 1.0


def _resume(run: Run, path: Path, settings: dict[str, Any]) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"resume: checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=run.op.device, weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise ValueError(f"resume: {path} is not an rfprior checkpoint ({type(exc).__name__})") from exc
    if not isinstance(ckpt, dict) or "settings" not in ckpt:
        raise ValueError(f"resume: {path} is not an rfprior checkpoint")
    if ckpt["settings"] != settings:
        diff = sorted(k for k in settings if ckpt["settings"].get(k) != settings[k])
        raise ValueError(f"resume: checkpoint {path} was made with different settings ({', '.join(diff)})")
    run.load_state_dict(ckpt)


def _as_rules(stop: StoppingRule | Sequence[StoppingRule] | None) -> list[StoppingRule]:
    if stop is None:
        return [FixedIterations()]
    rules = [stop] if isinstance(stop, StoppingRule) else list(stop)
    if not rules:
        return [FixedIterations()]
    for r in rules:
        if not isinstance(r, StoppingRule):
            raise TypeError(f"stop must be StoppingRule objects, got {type(r).__name__}")
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ValueError(f"stop: each rule may appear once, got {names}")
    return rules
