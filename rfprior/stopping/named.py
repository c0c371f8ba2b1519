"""The stopping rules by name: what ``stop="discrepancy"`` (CLI ``--stop``) and ``reconstruct(stop=None)`` mean."""

from __future__ import annotations

from typing import Any

from .. import defaults
from ..modalities import find, forward_model
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
    name: str | None = None, sigma: float | None = None, average: bool | None = None, op: Any = None
) -> list[StoppingRule]:
    """The deciding rule ``name`` (with the others recorded where cheap), plus a running average.

    ``None`` arguments take :data:`rfprior.defaults.FIT`'s (``stop``, ``average``): the rules
    ``rfprior.reconstruct(y, op)`` and ``rfprior reconstruct`` stop with. With ``op`` given,
    a rule that is not offered for its forward model
    (:attr:`rfprior.modalities.Modality.unsuitable_rules`, e.g. ``"holdout"`` on partial Fourier)
    is refused with a ``ValueError``.
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
    m = find(op)
    why = None if m is None else m.unsuitable_rules.get(name)
    if why is not None:
        raise ValueError(f"stop {name!r} is not offered for {type(forward_model(op)).__name__}: {why}")
    chosen = [rules[name]]
    if name != "discrepancy":
        chosen.append(Discrepancy(sigma=sigma))
    if average:
        chosen.append(RunningAverage(fit.average_weight))
    return chosen
