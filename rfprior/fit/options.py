"""The options of one :func:`rfprior.reconstruct` call, resolved and checked once (:class:`FitOptions`)."""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from .. import defaults
from ..penalty import PENALTIES
from ..result import NetworkState, Result
from ..stopping import FixedIterations, StoppingRule, default_rules
from .nonlinear import check_constraint

__all__ = ["FitOptions"]


@dataclass(frozen=True)
class FitOptions:
    """:func:`rfprior.reconstruct`'s keyword arguments with every default filled in (:mod:`rfprior.defaults`).

    Built once per call by :meth:`build`; a fit of an ensemble or a refit is the same object
    with a few fields replaced (``dataclasses.replace``). ``fit`` and ``desc`` label the
    callbacks' state and the progress bar of one fit.
    """

    prior: str | torch.nn.Module | None
    prior_kwargs: dict[str, Any] | None
    loss: str | Callable[..., torch.Tensor]
    stop: tuple[StoppingRule, ...]
    iterations: int
    lr: float
    seed: int
    device: torch.device | None
    reg_noise_std: float
    sigma: float | None
    truth: torch.Tensor | None
    psnr_peak: float | None
    autoscale: bool
    backtrack_db: float
    max_backtracks: int
    progress: bool
    callbacks: tuple[Callable[..., bool | None], ...]
    checkpoint: Path | None
    checkpoint_every: int
    resume: Path | None
    fits: int
    penalty: str | None  #: resolved: ``"auto"`` became the forward model's default
    penalty_weight: float | str
    init: NetworkState | None  #: a resolved warm start
    constraint: tuple[str, ...]  #: checked names (:data:`rfprior.fit.nonlinear.CONSTRAINTS`)
    hopping: bool | None
    refine: int  #: pixel-refinement steps after frequency hopping (resolved from the forward model's default)
    calibrate: bool  #: fit per-frequency gains (resolved from the forward model's default)
    fit: int = 0
    desc: str = "rfprior"

    @classmethod
    def build(cls, op: Any, **given: Any) -> FitOptions:
        """Check ``reconstruct``'s arguments and fill in the defaults (``None``/``"auto"``) for ``op``."""
        fit = defaults.FIT
        names = {f.name for f in fields(cls)} - {"fit", "desc"}
        unknown = sorted(set(given) - names)
        if unknown:  # pragma: no cover - reconstruct passes exactly its keywords
            raise TypeError(f"unknown reconstruct option(s) {unknown}")
        opt = {k: given.get(k) for k in names}
        for name in (
            "loss", "seed", "reg_noise_std", "autoscale",
            "backtrack_db", "max_backtracks", "checkpoint_every", "fits",
        ):  # fmt: skip
            if opt[name] is None:
                opt[name] = getattr(fit, name)
        for name in ("penalty", "penalty_weight"):  # None is "no penalty": "auto" (the default) is FIT's
            if name not in given or opt[name] == "auto":
                opt[name] = getattr(fit, name)
        opt["progress"] = True if opt["progress"] is None else bool(opt["progress"])

        fits = opt["fits"]
        if isinstance(fits, bool) or not hasattr(type(fits), "__index__") or operator.index(fits) < 1:
            raise ValueError(f"fits must be an integer ≥ 1, got {fits!r}")
        opt["fits"] = operator.index(fits)  # also numpy integers
        if opt["penalty"] == "auto":
            opt["penalty"] = defaults.default_penalty(op)
        if opt["penalty"] is not None and opt["penalty"] not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}, 'auto' or None, got {opt['penalty']!r}")
        opt["init"] = _resolve_init(opt["init"])
        if opt["constraint"] == "auto":
            opt["constraint"] = defaults.default_constraint(op)
        opt["constraint"] = check_constraint(opt["constraint"])
        if opt["hopping"] is not None and not isinstance(opt["hopping"], bool):
            raise ValueError(f"hopping must be None, True or False, got {opt['hopping']!r}")
        if opt["refine"] is None:
            opt["refine"] = defaults.default_refine(op)
        refine = opt["refine"]
        if isinstance(refine, bool) or not hasattr(type(refine), "__index__") or operator.index(refine) < 0:
            raise ValueError(f"refine must be None or an integer ≥ 0, got {refine!r}")
        opt["refine"] = operator.index(refine)
        if opt["calibrate"] is None:
            opt["calibrate"] = defaults.default_calibrate(op)
        if not isinstance(opt["calibrate"], bool):
            raise ValueError(f"calibrate must be None, True or False, got {opt['calibrate']!r}")
        if opt["calibrate"] and getattr(op, "is_linear", True):
            raise ValueError("calibrate=True: per-frequency gains are fitted for nonlinear (full-wave) models only")
        if opt["init"] is not None and opt["fits"] > 1:
            raise ValueError(
                "init: a warm start is not supported with fits > 1 (every fit would start alike); use fits=1"
            )
        if opt["iterations"] is None:
            opt["iterations"] = defaults.default_iterations(op)
        opt["iterations"] = int(opt["iterations"])
        if opt["iterations"] < 1:
            raise ValueError(f"iterations must be ≥ 1, got {opt['iterations']}")
        if opt["lr"] is None:
            opt["lr"] = defaults.default_lr(op)
        opt["lr"] = float(opt["lr"])
        if not (opt["lr"] > 0 and math.isfinite(opt["lr"])):
            raise ValueError(f"lr must be a positive finite number, got {opt['lr']}")
        opt["reg_noise_std"] = float(opt["reg_noise_std"])
        if opt["reg_noise_std"] < 0:
            raise ValueError(f"reg_noise_std must be ≥ 0, got {opt['reg_noise_std']}")
        sigma = opt["sigma"]
        if sigma is not None and not (sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"sigma must be a positive finite number, got {sigma}")
        peak = opt["psnr_peak"]
        if peak is not None and not (peak > 0 and math.isfinite(peak)):
            raise ValueError(f"psnr_peak must be a positive finite number, got {peak}")
        if opt["checkpoint_every"] < 1:
            raise ValueError(f"checkpoint_every must be ≥ 1, got {opt['checkpoint_every']}")
        opt["stop"] = tuple(_as_rules(opt["stop"], sigma))
        opt["device"] = None if opt["device"] is None else torch.device(opt["device"])
        opt["callbacks"] = tuple(opt["callbacks"] or ())
        for name in ("checkpoint", "resume"):
            opt[name] = None if opt[name] is None else Path(opt[name])
        return cls(**opt)


def _as_rules(stop: StoppingRule | Sequence[StoppingRule] | None, sigma: float | None) -> list[StoppingRule]:
    """The stopping rules; ``None``: :func:`rfprior.stopping.default_rules` (``rfprior reconstruct``'s)."""
    if stop is None:
        return default_rules(sigma=sigma)
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


def _resolve_init(init: Any) -> NetworkState | None:
    """``reconstruct``'s ``init`` argument as a :class:`NetworkState` (``None`` for a cold start)."""
    if init is None or isinstance(init, NetworkState):
        return init
    if isinstance(init, Result):
        if init.weights is None:
            raise ValueError("init: this Result carries no network weights (Result.weights is None)")
        return init.weights
    if isinstance(init, (str, os.PathLike)):
        from ..weights import load_weights

        return load_weights(init)
    raise TypeError(f"init must be a Result, a NetworkState or a result file path, got {type(init).__name__}")
