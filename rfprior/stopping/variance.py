r"""ES-WMV (Wang et al.): stop at the minimum of the windowed moving variance of the outputs.

.. math:: \mathrm{VAR}_t = \frac1W \sum_{w=t-W+1}^{t} \| x_w - \bar x_t \|^2,
          \qquad \bar x_t = \frac1W \sum_{w=t-W+1}^{t} x_w

The iterate at the minimum of ``VAR`` is chosen; the run stops after ``patience``
iterations without a new minimum. The exact window keeps ``W`` images (ring
buffer, running sums: O(1) work per step); the ``ema=True`` variant keeps an
exponential mean and variance with rate ``alpha`` in O(1) memory.
"""

from __future__ import annotations

import math

import torch

from .base import Decision, FitContext, Monitor, StoppingRule

__all__ = ["WindowedVariance"]


class WindowedVariance(StoppingRule):
    """Windowed moving variance of the outputs (ES-WMV), exact or EMA."""

    name = "wmv"

    def __init__(self, window: int = 100, patience: int = 1000, ema: bool = False, alpha: float = 0.1) -> None:
        if not (isinstance(window, int) and window >= 2):
            raise ValueError(f"WindowedVariance: window must be an int ≥ 2, got {window!r}")
        if not (isinstance(patience, int) and patience >= 1):
            raise ValueError(f"WindowedVariance: patience must be a positive int, got {patience!r}")
        if not (0 < alpha < 1):
            raise ValueError(f"WindowedVariance: alpha must lie in (0, 1), got {alpha!r}")
        self.window, self.patience, self.ema, self.alpha = window, patience, bool(ema), float(alpha)

    def start(self, ctx: FitContext) -> Monitor:
        return _EMAVarianceMonitor(self) if self.ema else _WindowMonitor(self)


class _WindowMonitor(Monitor):
    name = "wmv"

    def __init__(self, rule: WindowedVariance) -> None:
        self.rule = rule
        self.buf: torch.Tensor | None = None
        self.s1: torch.Tensor | None = None
        self.s2 = 0.0
        self.count = 0
        self.best = math.inf
        self.best_it = -1

    def _variance(self, x: torch.Tensor) -> float | None:
        w = self.rule.window
        x = x.to(torch.complex128)
        if self.buf is None:
            self.buf = torch.zeros((w, *x.shape), dtype=x.dtype, device=x.device)
            self.s1 = torch.zeros_like(x)
        slot = self.count % w
        if self.count >= w:
            old = self.buf[slot]
            self.s1 -= old
            self.s2 -= float((old.abs() ** 2).sum())
        self.buf[slot] = x
        self.s1 += x
        self.s2 += float((x.abs() ** 2).sum())
        self.count += 1
        if self.count < w:
            return None
        return max(0.0, self.s2 / w - float((self.s1.abs() ** 2).sum()) / w**2)

    def observe(self, iteration: int, image: torch.Tensor, misfit: float) -> Decision:
        var = self._variance(image)
        if var is None:
            return Decision()
        better = var < self.best
        if better:
            self.best, self.best_it = var, iteration
        return Decision(statistic=var, candidate=better, stop=iteration - self.best_it >= self.rule.patience)


class _EMAVarianceMonitor(_WindowMonitor):
    def _variance(self, x: torch.Tensor) -> float | None:
        a = self.rule.alpha
        x = x.to(torch.complex128)
        if self.s1 is None:
            self.s1, self.s2 = x.clone(), 0.0
            self.count = 1
            return None
        d = x - self.s1
        self.s1 += a * d
        self.s2 = (1 - a) * (self.s2 + a * float((d.abs() ** 2).sum()))
        self.count += 1
        return self.s2 if self.count >= self.rule.window else None
