r"""Hold-out cross-validation on the measurements.

A seeded random ``fraction`` of the measurements is held out with
``op.restrict``; the network is fitted to the rest only (the engine fits
``A_fit = op.restrict(fit)``), and every ``every`` iterations the held-out loss

.. math:: \tfrac12\|y_{\text{val}} - A_{\text{val}}\, x_t\|^2

is evaluated (data units). The iterate with the minimum is chosen; the run stops
after ``patience`` iterations without an improvement of more than ``min_delta``
(relative). The split is a pure function of the seed, so fit and validation are
exact complements.

Where it fails: **partial Fourier**. A single-coil k-space sample carries information no
other sample has, so the held-out samples are poorly predicted at every iterate and their
loss bottoms out early; holding them out also removes data the image needs (measured:
docs/notes.md). The rule warns on partial-Fourier data, and the partial-Fourier modality does
not offer it (:func:`holdout_unsuitable`, :attr:`rfprior.modalities.Modality.unsuitable_rules`).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from operators.calibration import calibrated

from ..losses import half_squared_norm
from ..modalities import find
from .base import Decision, FitContext, Monitor, StoppingRule

__all__ = ["HoldOut", "holdout_unsuitable", "split_indices"]


def holdout_unsuitable(op: Any) -> str | None:
    """Why hold-out validation is not offered for ``op``'s forward model (``None``: it is).

    The forward model's :attr:`~rfprior.modalities.Modality.unsuitable_rules` (partial Fourier:
    a held-out k-space sample is not predictable from the others).
    """
    m = find(op)
    return None if m is None else m.unsuitable_rules.get("holdout")


def split_indices(m: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded split of ``range(m)`` into sorted ``(fit, validation)`` flat indices."""
    n_val = max(1, round(fraction * m))
    if n_val >= m:
        raise ValueError(f"HoldOut: fraction {fraction} leaves no measurements to fit (M = {m})")
    perm = torch.randperm(m, generator=torch.Generator().manual_seed(seed))
    val = perm[:n_val].sort().values
    fit = perm[n_val:].sort().values
    return fit, val


class HoldOut(StoppingRule):
    """Hold-out validation on a random subset of the measurements.

    Parameters
    ----------
    fraction : share of measurements held out (0 < fraction < 1; 0.1 default; ZS-SSL uses 0.2).
    patience : iterations without improvement before stopping.
    every : evaluate the held-out loss every ``every`` iterations.
    min_delta : relative improvement needed to count as a new minimum.
    seed : split seed; ``None`` uses the run's seed.
    refit : after choosing ``t*``, refit on all measurements for ``t* + 1`` iterations
        with the same seed and return that (off by default; measured in docs/notes.md).
    """

    name = "heldout"

    def __init__(
        self,
        fraction: float = 0.1,
        patience: int = 200,
        every: int = 1,
        min_delta: float = 0.0,
        seed: int | None = None,
        refit: bool = False,
    ) -> None:
        if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
            raise ValueError(f"HoldOut: fraction must lie in (0, 1), got {fraction!r}")
        if not (isinstance(patience, int) and patience >= 1):
            raise ValueError(f"HoldOut: patience must be a positive int, got {patience!r}")
        if not (isinstance(every, int) and every >= 1):
            raise ValueError(f"HoldOut: every must be a positive int, got {every!r}")
        if not (min_delta >= 0 and math.isfinite(min_delta)):
            raise ValueError(f"HoldOut: min_delta must be ≥ 0, got {min_delta!r}")
        self.fraction, self.patience, self.every = float(fraction), patience, every
        self.min_delta, self.seed, self.refit = float(min_delta), seed, bool(refit)

    def _seed(self, ctx: FitContext) -> int:
        return (ctx.seed if self.seed is None else self.seed) + 104_729

    def fit_subset(self, ctx: FitContext) -> torch.Tensor:
        return split_indices(ctx.op.size_out, self.fraction, self._seed(ctx))[0]

    def start(self, ctx: FitContext) -> Monitor:
        why = holdout_unsuitable(ctx.op)
        if why is not None:
            warnings.warn(f"HoldOut: {why}", RuntimeWarning, stacklevel=2)
        _, val = split_indices(ctx.op.size_out, self.fraction, self._seed(ctx))
        return _HoldOutMonitor(ctx, val, self)


class _HoldOutMonitor(Monitor):
    name = "heldout"
    fallback = "the hold-out choice"

    def __init__(self, ctx: FitContext, val: torch.Tensor, rule: HoldOut) -> None:
        self.val_index = val
        self.val_op = ctx.op.restrict(val)
        self.y_val = ctx.y.reshape(-1)[val.to(ctx.y.device)]
        # a fit with per-frequency gains (reconstruct(calibrate=True)): the held-out misfit after their gains too
        labels = ctx.info.get("frequency_labels")
        self.labels = None
        if labels is not None:  # the held-out entries' frequencies, on the data's device once
            self.labels = (labels[0].reshape(-1)[val.to(labels[0].device)].to(ctx.y.device), labels[1])
        self.rule = rule
        self.best = math.inf
        self.best_it: int | None = None
        self.last_improvement = 0

    def observe(self, iteration: int, image: torch.Tensor, misfit: float) -> Decision:
        if iteration % self.rule.every:
            return Decision(statistic=None)
        with torch.no_grad():
            pred = self.val_op.forward(image)
            if self.labels is not None:
                pred = calibrated(pred, self.y_val, *self.labels)[0]
            value = float(half_squared_norm(pred - self.y_val))
        better = value < self.best * (1 - self.rule.min_delta)
        if better:
            self.best, self.best_it, self.last_improvement = value, iteration, iteration
        stop = iteration - self.last_improvement >= self.rule.patience
        return Decision(statistic=value, candidate=better, stop=stop)

    def summary(self) -> dict[str, Any]:
        return {"best_heldout": self.best, "best_iteration": self.best_it, "n_heldout": int(self.val_index.numel())}
