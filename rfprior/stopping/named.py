"""The stopping rules by name: what ``stop="discrepancy"`` (CLI ``--stop``) and ``reconstruct(stop=None)`` mean."""

from __future__ import annotations

from typing import Any

from .. import defaults
from ..defaults import forward_model
from .average import RunningAverage
from .base import FixedIterations, StoppingRule
from .discrepancy import Discrepancy
from .holdout import HoldOut, holdout_unsuitable
from .sharpness import BlurSharpness
from .variance import WindowedVariance

__all__ = ["RULES", "default_rules"]

#: CLI names of the stopping rules.
RULES = ("discrepancy", "holdout", "fixed", "wmv", "sharpness")


def default_rules(
    name: str | None = None, sigma: float | None = None, average: bool | None = None, op: Any = None
) -> list[StoppingRule]:
    """The deciding rule ``name`` (with the others recorded where cheap), plus a running average.

    ``None`` arguments take :data:`rfprior.defaults.FIT`'s (``stop``, ``average``): the rules
    ``rfprior.reconstruct(y, op)`` and ``rfprior reconstruct`` stop with. With ``op`` given,
    a rule that is not offered for its forward model is refused (``"holdout"`` on partial
    Fourier, :func:`rfprior.stopping.holdout.holdout_unsuitable`) with a ``ValueError``.
    """
    fit = defaults.FIT
    name = fit.stop if name is None else name
    average = fit.average if average is None else average
    rules: dict[str, StoppingRule] = {
        "discrepancy": Discrepancy(sigma=sigma),
        "holdout": HoldOut(),
        "fixed": FixedIterations(),
        "wmv": WindowedVariance(),
        "sharpness": BlurSharpness(),
    }
    if name not in rules:
        raise ValueError(f"stop must be one of {', '.join(RULES)}, got {name!r}")
    why = holdout_unsuitable(op) if name == "holdout" and op is not None else None
    if why is not None:
        raise ValueError(f"stop 'holdout' is not offered for {type(forward_model(op)).__name__}: {why}")
    chosen = [rules[name]]
    if name != "discrepancy":
        chosen.append(Discrepancy(sigma=sigma))
    if average:
        chosen.append(RunningAverage(fit.average_weight))
    return chosen
