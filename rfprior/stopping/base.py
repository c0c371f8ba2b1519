"""The stopping-rule protocol shared by the engine and every rule.

A :class:`StoppingRule` is an immutable description (its settings). When a run
starts, the engine calls :meth:`StoppingRule.start` to get a fresh
:class:`Monitor` that holds the run's state, so a rule object can be reused
across runs and never changes its own settings.

Per iteration the engine calls ``monitor.observe(it, image, misfit)`` with the
current image in data units and the data misfit ``½‖y_fit − A_fit x‖²``; the
monitor answers with a :class:`Decision`: its statistic (recorded in the history),
whether this iterate is its current candidate, and whether it would stop here.
The first rule passed to the engine decides; the others are only recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from operators import LinearOperator

__all__ = ["Decision", "FitContext", "FixedIterations", "Monitor", "StoppingRule"]


@dataclass(frozen=True)
class Decision:
    """What a monitor says about one iterate.

    statistic : float or None — the rule's statistic (NaN-free), recorded per iteration
    candidate : bool — this iterate is now the rule's choice
    stop : bool — the rule has decided; a deciding rule ends the run here
    """

    statistic: float | None = None
    candidate: bool = False
    stop: bool = False


@dataclass
class FitContext:
    """What a rule may know about the problem at the start of a run.

    Attributes
    ----------
    op, y : LinearOperator, Tensor
        The full operator and measurements ``y`` (data units, ``op.out_shape``).
    seed : int
        The run's seed (rules derive their own generators from it).
    iterations : int
        The iteration budget.
    fit_index : Tensor or None
        Flat indices of the measurements the network is fitted to (``None`` = all); set by
        :class:`~rfprior.stopping.HoldOut`.
    sigma : float or None
        Noise σ per real/imag component if known (data units).
    info : dict
        Facts the engine passes on to the rules.
    """

    op: LinearOperator
    y: torch.Tensor
    seed: int = 0
    iterations: int = 1000
    fit_index: torch.Tensor | None = None
    sigma: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_fit(self) -> int:
        """Number of complex measurements in the fit set (``M`` of the discrepancy principle)."""
        return self.op.size_out if self.fit_index is None else int(self.fit_index.numel())


class Monitor:
    """Per-run state of a rule. Subclasses implement :meth:`observe`."""

    name: str = "rule"
    #: the monitor keeps a running average of the iterates (:meth:`update`); the run returns it
    #: in place of the raw iterate at every rule's choice
    averages: bool = False
    #: when the deciding rule chose nothing, the run returns this rule's choice instead, saying
    #: "fell back to <fallback>" (e.g. "the hold-out choice"); ``None``: never
    fallback: str | None = None

    def update(self, iteration: int, image: torch.Tensor) -> torch.Tensor | None:
        """Called with each accepted iterate before any monitor observes it; an averaging monitor
        returns its running average (including this iterate), every other monitor ``None``."""
        return None

    def observe(self, iteration: int, image: torch.Tensor, misfit: float) -> Decision:  # pragma: no cover
        """Look at iterate ``iteration`` (its image and misfit ``½‖y − A x‖²`` on the fitted data); decide."""
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """Facts to report in the result (e.g. an estimated σ); JSON-serialisable."""
        return {}

    def finish(self, last_iteration: int) -> str | None:
        """Called when the run ends; returns a message if the rule never decided."""
        return None


class StoppingRule:
    """Base class of rules: immutable settings plus :meth:`start`."""

    #: short name used for the history variable and the CLI
    name: str = "rule"
    #: the chosen image is the running average rather than the raw iterate
    averages: bool = False
    #: after the run, refit on all measurements for ``t* + 1`` iterations (a rule with :meth:`fit_subset`)
    refit: bool = False

    def start(self, ctx: FitContext) -> Monitor:  # pragma: no cover - abstract
        """A fresh :class:`Monitor` for one run on the problem ``ctx``."""
        raise NotImplementedError

    def fit_subset(self, ctx: FitContext) -> torch.Tensor | None:
        """Flat indices of the measurements to fit (``None`` = all). Only hold-out splits."""
        return None

    def settings(self) -> dict[str, Any]:
        """The rule's settings, JSON-serialisable, for the result file."""
        return {"rule": type(self).__name__, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items() if k != "rule")
        return f"{type(self).__name__}({args})"


class FixedIterations(StoppingRule):
    """Stop after exactly ``iterations`` iterations (``None``: the engine's budget); the last iterate is chosen."""

    name = "fixed"

    def __init__(self, iterations: int | None = None) -> None:
        if iterations is not None and (not isinstance(iterations, int) or iterations < 1):
            raise ValueError(f"FixedIterations: iterations must be a positive int, got {iterations!r}")
        self.iterations = iterations

    def start(self, ctx: FitContext) -> Monitor:
        return _FixedMonitor(self.iterations or ctx.iterations)


class _FixedMonitor(Monitor):
    name = "fixed"

    def __init__(self, n: int) -> None:
        self.n = n

    def observe(self, iteration: int, image: torch.Tensor, misfit: float) -> Decision:
        return Decision(statistic=None, candidate=True, stop=iteration + 1 >= self.n)
