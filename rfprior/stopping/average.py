r"""Running (exponential) average of the iterates.

.. math:: \bar x_t = w_t\,\bar x_{t-1} + (1-w_t)\,x_t,\qquad
          w_t = \min\big(w,\ 1 - \tfrac{1}{1 + 0.1\,t}\big),\qquad \bar x_0 = x_0

The ramp makes the effective window about 10 % of the iterations run (tail
averaging) until it reaches ``1/(1 − w)`` (100 iterations for ``w = 0.99``), so
that a rule stopping after a few hundred iterations does not average in the
untrained network's first outputs; for long runs it is the DIP paper's average.

As a rule on its own it chooses the average at the end of the budget; combined
with other rules (``stop=[Discrepancy(), RunningAverage()]``) the deciding rule
picks the iteration and the returned image is the average at that iteration.
"""

from __future__ import annotations

import torch

from .base import Decision, FitContext, Monitor, StoppingRule

__all__ = ["EMA_RAMP", "RunningAverage"]

#: growth rate of the running average's effective window (fraction of the iterations run)
EMA_RAMP = 0.1


class RunningAverage(StoppingRule):
    """Exponential average of outputs with weight ``weight`` (0.99 in the DIP paper)."""

    name = "average"
    averages = True

    def __init__(self, weight: float = 0.99) -> None:
        if not (isinstance(weight, (int, float)) and 0.0 <= weight < 1.0):
            raise ValueError(f"RunningAverage: weight must lie in [0, 1), got {weight!r}")
        self.weight = float(weight)

    def start(self, ctx: FitContext) -> Monitor:
        return _AverageMonitor(ctx.iterations, self.weight)


class _AverageMonitor(Monitor):
    name = "average"
    averages = True

    def __init__(self, n: int, weight: float) -> None:
        self.n, self.weight = n, weight
        self.average: torch.Tensor | None = None

    def update(self, iteration: int, image: torch.Tensor) -> torch.Tensor:
        # tail averaging: the effective window grows as ~10 % of the iterations run, up to 1/(1 − w),
        # so a rule that stops early does not average in the untrained network's first outputs
        w = min(self.weight, 1.0 - 1.0 / (1.0 + EMA_RAMP * iteration))
        self.average = image.clone() if self.average is None else self.average.mul_(w).add_(image, alpha=1 - w)
        return self.average

    def observe(self, iteration: int, image: torch.Tensor, misfit: float) -> Decision:
        return Decision(statistic=None, candidate=True, stop=iteration + 1 >= self.n)
