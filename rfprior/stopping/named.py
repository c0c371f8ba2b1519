"""The stopping rules by name: what ``stop="discrepancy"`` (CLI ``--stop``) and ``reconstruct(stop=None)`` mean."""

from __future__ import annotations

from .. import defaults
from .average import RunningAverage
from .base import FixedIterations, StoppingRule
from .discrepancy import Discrepancy
from .holdout import HoldOut
from .sharpness import BlurSharpness
from .variance import WindowedVariance

__all__ = ["RULES", "default_rules"]

#: CLI names of the stopping rules.
RULES = ("discrepancy", "holdout", "fixed", "wmv", "sharpness")


def default_rules(
    name: str | None = None, sigma: float | None = None, average: bool | None = None
) -> list[StoppingRule]:
    """The deciding rule ``name`` (with the others recorded where cheap), plus a running average.

    ``None`` arguments take :data:`rfprior.defaults.FIT`'s (``stop``, ``average``): the rules
    ``rfprior.reconstruct(y, op)`` and ``rfprior reconstruct`` stop with.
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
    chosen = [rules[name]]
    if name != "discrepancy":
        chosen.append(Discrepancy(sigma=sigma))
    if average:
        chosen.append(RunningAverage(fit.average_weight))
    return chosen
