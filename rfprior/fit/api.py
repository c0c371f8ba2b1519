r"""The public entry point :func:`reconstruct`: resolve the options once, set up and run each fit.

The maths of one iteration is :mod:`rfprior.fit.loop`; :mod:`rfprior.fit.runner` adds the
stopping rules' monitors, history, callbacks, progress, signals and checkpoints;
:mod:`rfprior.fit.ensemble` combines ``fits=K`` independently seeded fits. Images and misfits
are reported in data units; the fit itself runs with the operator normalised to ``‖A‖ = 1``
and the data scaled by the automatic data scale ``s`` (undone on every returned image).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from operators import LinearOperator

from ..penalty import Penalty, resolve_penalty
from ..result import NetworkState, Result
from ..stopping.base import FitContext, FixedIterations, StoppingRule
from .ensemble import fit_ensemble
from .loop import IterationState
from .nonlinear import (
    CalibratedFitOperator,
    PhysicalFitOperator,
    calibration_report,
    fit_hopping,
    frequency_labels,
    hopping_bands,
    reference_penalty,
    start_scale,
)
from .options import FitOptions
from .resolve import load_init, prior_of, resolve_loss, resolve_prior
from .runner import Run
from .sequence import reconstruct_sequence

__all__ = ["reconstruct"]


def reconstruct(
    y: torch.Tensor,
    op: LinearOperator,
    *,
    prior: str | torch.nn.Module | None = None,
    prior_kwargs: dict[str, Any] | None = None,
    loss: str | Callable[..., torch.Tensor] | None = None,
    stop: StoppingRule | Sequence[StoppingRule] | None = None,
    iterations: int | None = None,
    lr: float | None = None,
    seed: int | None = None,
    device: torch.device | str | None = None,
    reg_noise_std: float | None = None,
    sigma: float | None = None,
    truth: torch.Tensor | None = None,
    psnr_peak: float | None = None,
    autoscale: bool | None = None,
    backtrack_db: float | None = None,
    max_backtracks: int | None = None,
    progress: bool = True,
    callbacks: Sequence[Callable[[IterationState], bool | None]] = (),
    checkpoint: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: str | Path | None = None,
    fits: int | None = None,
    penalty: str | None = "auto",
    penalty_weight: float | str = "auto",
    init: Result | NetworkState | str | os.PathLike[str] | None = None,
    constraint: str | Sequence[str] | None = "auto",
    hopping: bool | None = None,
    refine: int | None = None,
    calibrate: bool | None = None,
) -> Result:
    """Reconstruct an image from ``y = A x + n`` with an untrained network prior.

    Parameters
    ----------
    y : complex tensor of shape ``op.out_shape``
        The measurements (data units). A **frame sequence** — ``y`` of shape ``(F, *op.out_shape)``,
        or a list of F measurement tensors with a list of F operators — is fitted jointly by one
        network (:func:`rfprior.fit.sequence.reconstruct_sequence`; the result's images are ``(F, H, W)``).
    op : LinearOperator
        Forward model with ``in_shape == (H, W)`` (or one per frame).
    prior : name (``"dip"``, ``"deep_decoder"``, ``"controlled"``, ``"complex"``) or a ``Prior`` module
        A name is built with ``prior_kwargs`` and the run's ``seed``; default (or ``"auto"``):
        :func:`rfprior.default_prior` for ``op`` (``"deep_decoder"``; ``"dip_small"`` for MIMO radar).
    loss : ``"mse"``, ``"dsp"`` or a callable ``loss(pred, y, op) -> scalar``
    stop : a rule or a list of rules; the first decides, the others are recorded.
        Default: :func:`rfprior.stopping.default_rules` — the discrepancy principle with a running
        average, as ``rfprior reconstruct`` (``[Discrepancy(sigma=sigma), RunningAverage(0.99)]``);
        ``[]``: a fixed number of iterations.
    iterations : iteration budget (default ``rfprior.defaults.default_iterations(op)``: 3000 for
        partial Fourier and tomography, 800 for radar, 1500 for other forward models).
    lr : Adam step size (default ``rfprior.defaults.default_lr(op)``: 0.02 for radar, ``FIT.lr`` = 0.01 otherwise).
    seed : seeds the prior (weights and input), the input jitter and the rules (default 0).
    device : where to run (``"cpu"``, ``"cuda"``, …); default: the operator's device.
    reg_noise_std : standard deviation of the input jitter (default 0 = none).
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
        then over the fits that were not cut short). ``fits=2`` costs twice the compute; what it gains, with and
        without an image penalty, is measured in docs/guide.md ("Several fits") and docs/notes.md.
        Needs a prior name (not a module); no checkpoints.
    penalty : ``"tv"``, ``None`` or ``"auto"`` (default: :func:`rfprior.defaults.default_penalty` for ``op``)
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
    constraint : ``"auto"`` (the forward model's default: ``("lossy",)`` for full-wave scattering, else
        none), ``None`` or some of ``"real"`` (Im x = 0), ``"nonnegative"`` (Re x ≥ 0), ``"lossy"``
        (Re x ≥ 0, Im x ≤ 0: a passive dielectric contrast in the ``exp(+jωt)`` convention): the
        network's image is projected onto the set at every iteration (:mod:`rfprior.fit.nonlinear`).
    hopping : frequency hopping for a nonlinear multi-frequency model (full-wave scattering): the
        lowest frequency first, then the two lowest, …, each stage warm-started by the last; only
        the last stage (all data) runs ``stop``. ``None`` (default): on for such models; ``False``: one fit.
    refine : after frequency hopping, at most this many TV-regularised steps on the pixels from the
        network's image, until the objective levels off (:func:`rfprior.fit.nonlinear.refine_on_pixels`;
        the same objective and weight rule). ``None`` (default): the forward model's default (1000 for
        full-wave scattering); 0: none.
    calibrate : fit one complex gain per frequency together with the image, normalised to a geometric
        mean of one (:mod:`operators.calibration`: corrects the relative calibration errors between the
        frequencies of measured data); for nonlinear multi-frequency models. ``None`` (default): the
        forward model's default; ``settings["calibration"]`` records the gains of the final image.

    ``None`` (``loss``, ``autoscale``, ``backtrack_db``, ``max_backtracks``, ``checkpoint_every``,
    ``fits`` …) takes :data:`rfprior.defaults.FIT`'s value; the prior and penalty default per
    forward model (:func:`rfprior.defaults.modality_defaults`).

    Returns
    -------
    Result
    """
    given = {k: v for k, v in locals().items() if k not in ("y", "op")}  # every keyword, written once: above
    if is_sequence(y, op):  # y (F, *op.out_shape) or one operator per frame: one network for the whole sequence
        return from_reconstruct(y, op, given)
    opts = FitOptions.build(op, **given)
    result = _fit(y, op, opts)
    if opts.calibrate:  # the gains and per-frequency misfit of the final image: one field solve, once
        result.settings = {**result.settings, "calibration": calibration_report(op, y, result.image)}
    return result


def _fit(y: torch.Tensor, op: LinearOperator, opts: FitOptions) -> Result:
    """One call's fit(s): frequency hopping, one fit or ``fits=K``."""
    bands = None if op.is_linear else hopping_bands(op, opts)
    if bands is not None:
        return fit_hopping(y, op, opts, bands, fit_one)
    penalties: dict[
        Any, Penalty
    ] = {}  # the auto weight is solved once per call (per hold-out split), whatever the fits
    if opts.fits == 1:
        return fit_one(y, op, opts, penalties)
    if opts.checkpoint is not None or opts.resume is not None:
        raise ValueError("checkpoint/resume: not supported with fits > 1 (each fit is its own run); use fits=1")
    if isinstance(opts.prior, torch.nn.Module):
        raise ValueError(
            "prior: fits > 1 builds one network per fit from its seed, so it needs a prior name or None, "
            f"not a {type(opts.prior).__name__} module"
        )
    dev_op = op.to(device=opts.device if opts.device is not None else op.device)

    def one(seed: int, k: int, label: str, cbs: Sequence[Callable[[IterationState], bool | None]]) -> Result:
        return fit_one(y, op, replace(opts, seed=seed, fit=k, desc=label, callbacks=tuple(cbs)), penalties)

    return fit_ensemble(
        one, fits=opts.fits, callbacks=opts.callbacks, seed=opts.seed, op=dev_op, y=y, truth=opts.truth,
        psnr_peak=opts.psnr_peak,
    )  # fmt: skip


def fit_one(y: torch.Tensor, op: LinearOperator, opts: FitOptions, penalties: dict[Any, Penalty]) -> Result:
    """One fit (:func:`reconstruct` with ``fits=1``), then its refit if a rule asks (:attr:`StoppingRule.refit`).

    ``penalties`` caches the resolved penalty per fitted subset across the fits of one call.
    """
    dev = opts.device if opts.device is not None else op.device
    op = op.to(device=dev)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if tuple(y.shape) != op.out_shape:
        raise ValueError(f"y must have the operator's out_shape {op.out_shape}, got {tuple(y.shape)}")
    y = y.to(device=dev, dtype=op.dtype)
    if not bool(torch.isfinite(torch.view_as_real(y)).all()):
        raise ValueError("y contains NaN or Inf")
    truth = opts.truth
    if truth is not None and tuple(truth.shape) != op.in_shape:
        raise ValueError(f"truth must have the image shape {op.in_shape}, got {tuple(truth.shape)}")

    rules = list(opts.stop)
    prior, prior_kwargs, init = opts.prior, opts.prior_kwargs, opts.init
    if init is not None and prior is None:
        prior, prior_kwargs = prior_of(init)
    refit_rule = next((r for r in rules if r.refit), None)
    if isinstance(prior, torch.nn.Module) and refit_rule is not None:
        prior_for_refit: Any = copy.deepcopy(prior)  # the refit starts from the same untrained weights
    else:
        prior_for_refit = prior
    net, prior_settings = resolve_prior(prior, op.in_shape, opts.seed, prior_kwargs, op)
    if init is not None:
        load_init(net, init, prior_settings)
    net = net.to(dev)
    loss_fn, loss_settings = resolve_loss(opts.loss)

    ctx = FitContext(op=op, y=y, seed=opts.seed, iterations=opts.iterations, sigma=opts.sigma)
    ctx.info["prior"] = getattr(net, "name", prior_settings.get("name"))  # per-prior defaults (Discrepancy τ)
    if opts.calibrate:  # the hold-out rule compares after the per-frequency gains as well
        ctx.info["frequency_labels"] = frequency_labels(op)
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
    # a nonlinear model's auto weight is scaled on the starting image (below), not by a TV search:
    # on its Born linearisation that search finds λ ≈ 0 (rfprior.penalty.reference_weight)
    deferred = opts.penalty is not None and not op.is_linear and isinstance(opts.penalty_weight, str)
    if opts.penalty is not None and not deferred:
        key = None if fit_index is None else fit_index.cpu().numpy().tobytes()
        if key not in penalties:
            sub_op = op if fit_index is None else op.restrict(fit_index)
            sub_y = y if fit_index is None else y.reshape(-1)[fit_index.to(dev)]
            penalties[key] = resolve_penalty(opts.penalty, opts.penalty_weight, sub_op, sub_y, opts.sigma)
        pen = penalties[key]
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
        "iterations": opts.iterations,
        "lr": opts.lr,
        "seed": opts.seed,
        "reg_noise_std": opts.reg_noise_std,
        "autoscale": opts.autoscale,
        "backtrack_db": opts.backtrack_db,
        "max_backtracks": opts.max_backtracks,
        "sigma": opts.sigma,
        "device": str(dev),
        "dtype": str(op.dtype).replace("torch.", ""),
        "penalty": None if pen is None else pen.settings,
    }
    if opts.constraint:
        settings["constraint"] = list(opts.constraint)
    if init is not None:
        # the previous fit's output scale: the first iterate is its image, in data units
        scale = init.output_scale / op_norm
        settings["init"] = {"prior": init.prior, "iteration": init.iteration, "output_scale": init.output_scale}
    elif not op.is_linear:  # no data scaling for a nonlinear model: start at a weak contrast instead
        scale = start_scale(net, op_norm, opts.constraint)
    else:
        scale = _autoscale(net, y, unit_op) if opts.autoscale else 1.0
    if deferred:  # scaled on the warm start's image (the previous hopping band's)
        pen = reference_penalty(net, op, y_fit, opts, init)
        settings["penalty"] = None if pen is None else pen.settings
    if not op.is_linear:  # evaluated at the physical image: A(f · image_factor)
        phys = PhysicalFitOperator(op, scale, 1.0 / (scale * op_norm))
        fit_op = phys if fit_index is None else phys.restrict(fit_index)
        if opts.calibrate:  # one complex gain per frequency, fitted with the image (operators.calibration)
            labels, n_freq = ctx.info["frequency_labels"]
            if fit_index is not None:
                labels = labels.reshape(-1)[fit_index.to(labels.device)]
            fit_op = CalibratedFitOperator(fit_op, y_fit * scale, labels, n_freq)
    fit_pen = None if pen is None else pen.in_fit_units(scale, op_norm, y_fit)
    run = Run(net, fit_op, y_fit, loss_fn, monitors, opts, scale=scale, op_norm=op_norm, penalty=fit_pen)
    if opts.resume is not None:
        _resume(run, opts.resume, settings)
    result = run.run(settings)
    if refit_rule is None or result.interrupted:
        return result
    return _refit(result, refit_rule, y, op, replace(opts, prior=prior_for_refit, prior_kwargs=prior_kwargs), penalties)


def _refit(
    held: Result, rule: StoppingRule, y: torch.Tensor, op: LinearOperator, opts: FitOptions, penalties: dict
) -> Result:
    """Refit on all measurements for ``t* + 1`` iterations (``t*`` chosen on ``rule``'s subset).

    The first run's choice, history and summary are kept under ``rule_summaries[rule.name]["refit_of"]``;
    the image is the refit's last iterate (its running average when a rule averages).
    """
    t_star = held.chosen_iteration
    stop: list[StoppingRule] = [FixedIterations()]
    stop += [r for r in opts.stop if r.averages][:1]
    again = replace(
        opts, stop=tuple(stop), iterations=t_star + 1, callbacks=(), checkpoint=None, resume=None
    )  # fmt: skip
    res = fit_one(y, op, again, penalties)
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
    except ModuleNotFoundError as exc:  # pickled classes of rfprior < the solver package (rfprior._loop)
        raise ValueError(
            f"resume: {path} was written by an older rfprior whose checkpoints this version cannot read "
            f"({exc.name}); rerun without --resume"
        ) from exc
    except Exception as exc:  # a truncated or foreign file
        raise ValueError(f"resume: {path} is not an rfprior checkpoint ({type(exc).__name__})") from exc
    if not isinstance(ckpt, dict) or "settings" not in ckpt:
        raise ValueError(f"resume: {path} is not an rfprior checkpoint")
    if ckpt["settings"] != settings:
        diff = sorted(k for k in settings if ckpt["settings"].get(k) != settings[k])
        raise ValueError(f"resume: checkpoint {path} was made with different settings ({', '.join(diff)})")
    run.load_state_dict(ckpt)


def is_sequence(y: Any, op: Any) -> bool:
    """``reconstruct(y, op)`` on a sequence: a list of operators, or ``y`` with a leading frame axis."""
    if isinstance(op, (list, tuple)):
        return True
    return (
        isinstance(op, LinearOperator)
        and isinstance(y, torch.Tensor)
        and y.ndim == len(op.out_shape) + 1
        and tuple(y.shape[1:]) == tuple(op.out_shape)
    )


#: :func:`rfprior.reconstruct` keywords a sequence fit takes as they are
_PASSED = (
    "prior", "prior_kwargs", "iterations", "lr", "seed", "device", "sigma", "truth", "progress", "callbacks",
    "checkpoint", "checkpoint_every", "resume", "penalty", "penalty_weight",
)  # fmt: skip


def from_reconstruct(y: Any, op: Any, given: dict[str, Any]) -> Result:
    """:func:`rfprior.reconstruct` on a sequence: its keywords mapped onto :func:`reconstruct_sequence`.

    ``stop``: ``None`` (the default: discrepancy + running average), ``[]`` / a
    :class:`~rfprior.stopping.FixedIterations` first (the whole budget), or a
    :class:`~rfprior.stopping.Discrepancy` first (its σ and τ); a
    :class:`~rfprior.stopping.RunningAverage` among the rules returns the average. Other rules,
    ``fits > 1``, ``init``, input jitter and a loss other than MSE are single-frame options.
    """
    from ..stopping import Discrepancy, FixedIterations, RunningAverage

    refused = {
        "fits": given.get("fits") not in (None, 1),
        "init": given.get("init") is not None,
        "reg_noise_std": given.get("reg_noise_std") not in (None, 0, 0.0),
        "loss": given.get("loss") not in (None, "mse"),
    }
    bad = [k for k, v in refused.items() if v]
    if bad:
        raise ValueError(f"a frame sequence is fitted jointly; {', '.join(bad)} apply to single frames only")
    kwargs = {k: given[k] for k in _PASSED if k in given and given[k] is not None}
    if "penalty" in given:
        kwargs["penalty"] = given["penalty"]  # None means no penalty, not the default
    stop = given.get("stop")
    if stop is None:
        kwargs["stop"] = "discrepancy"
    else:
        rules = [stop] if not isinstance(stop, (list, tuple)) else list(stop)
        kwargs["average"] = any(isinstance(r, RunningAverage) for r in rules)
        first = rules[0] if rules else FixedIterations()
        if isinstance(first, FixedIterations):
            kwargs["stop"] = "fixed"
        elif isinstance(first, Discrepancy):
            kwargs["stop"] = "discrepancy"
            kwargs["tau"] = first.tau
            if first.sigma is not None and kwargs.get("sigma") is None:
                kwargs["sigma"] = first.sigma
        else:
            raise ValueError(
                f"stop: a frame sequence offers the discrepancy rule (on the whole sequence) or a fixed budget, "
                f"not {type(first).__name__}"
            )
    ys = list(y) if isinstance(y, torch.Tensor) else y
    return reconstruct_sequence(ys, op, **kwargs)
