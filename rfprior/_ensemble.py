r"""Several independently seeded fits of one measurement, averaged (``reconstruct(..., fits=K)``).

Fit ``k`` (``k = 0 … K−1``) is an ordinary run with seed ``seed + 1000·k`` — another network
initialisation, input and jitter — that picks its own iterate with the same stopping rules.
The returned image is the mean of the chosen images,

.. math::

    \bar x = \frac1K \sum_{k=0}^{K-1} x_k^{(t_k)},

which averages out the part of each fit that depends on the initialisation (largely the
noise the network has begun to fit) while keeping what every fit agrees on. The per-pixel
standard deviation of the ``x_k`` around ``x̄`` is returned as ``Result.spread``.

Measured (``benchmarks/results/ensemble.md``): see the README, "Several fits".
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from operators import LinearOperator

from .metrics import psnr
from .result import Result

__all__ = ["SEED_STRIDE", "fit_seeds", "fit_ensemble"]

#: Seed offset between consecutive fits.
SEED_STRIDE = 1000


def fit_seeds(seed: int, fits: int) -> list[int]:
    """Seeds of the ``fits`` fits of a run seeded ``seed``: ``seed + 1000·k``."""
    return [seed + SEED_STRIDE * k for k in range(fits)]


def fit_ensemble(
    fit_one: Callable[[int, int, str], Result],
    *,
    fits: int,
    seed: int,
    op: LinearOperator,
    y: torch.Tensor,
    truth: torch.Tensor | None,
    psnr_peak: float | None,
) -> Result:
    """Run ``fit_one(seed_k, k, label)`` for each fit and combine the results.

    An interrupted fit (Ctrl-C / SIGTERM) ends the ensemble: the mean is taken over the
    fits that finished (the interrupted fit's best-so-far image only when no fit finished),
    and the result is marked interrupted.
    """
    seeds = fit_seeds(seed, fits)
    members: list[Result] = []
    for k, s in enumerate(seeds):
        members.append(fit_one(s, k, f"rfprior fit {k + 1}/{fits}"))
        if members[-1].interrupted:
            break
    finished = [m for m in members if not m.interrupted] or members
    stack = torch.stack([m.image for m in finished])
    image = stack.mean(0)
    spread = (stack - image).abs().pow(2).mean(0).sqrt()
    y_dev = y.to(device=op.device, dtype=op.dtype)

    def half_misfit(x: torch.Tensor) -> float:
        with torch.no_grad():
            return 0.5 * float(torch.linalg.vector_norm(op.forward(x.to(op.device)) - y_dev) ** 2)

    norm = float(torch.linalg.vector_norm(image))
    first = members[0]
    summary = {
        "fits": fits,
        "seeds": seeds,
        "averaged": [m.seed for m in finished],
        "chosen_iterations": [m.chosen_iteration for m in members],
        "final_iterations": [m.final_iteration for m in members],
        "stop_reasons": [m.stop_reason for m in members],
        "misfit": half_misfit(image),  # ½‖y − A x̄‖², data units, all measurements
        "member_misfits": [half_misfit(m.image) for m in finished],
        # √(mean_k ‖x_k − x̄‖²) / ‖x̄‖: how much the fits disagree
        "relative_spread": float(torch.linalg.vector_norm(spread)) / norm if norm > 0 else float("nan"),
    }
    chosen = ", ".join(str(m.chosen_iteration) for m in finished)
    reason = (
        f"mean of {len(finished)} independently seeded fits (seeds {', '.join(str(m.seed) for m in finished)}; "
        f"chosen iterations {chosen}); fit 1: {first.stop_reason}"
    )
    interrupted = any(m.interrupted for m in members)
    if interrupted:
        reason = f"interrupted during fit {len(members)} of {fits}; " + reason
    return Result(
        image=image,
        chosen_iteration=first.chosen_iteration,
        final_image=first.final_image,
        final_iteration=first.final_iteration,
        history=first.history,
        settings={**first.settings, "seed": seed, "fits": fits},
        seed=seed,
        stop_reason=reason,
        choices=dict(first.choices),
        sigma=first.sigma,
        scale=first.scale,
        interrupted=interrupted,
        backtracks=sum(m.backtracks for m in members),
        oracle_iteration=first.oracle_iteration,
        oracle_psnr=first.oracle_psnr,
        oracle_image=first.oracle_image,
        rule_summaries={**first.rule_summaries, "ensemble": summary},
        image_psnr=None if truth is None else float(psnr(image, truth.to(image.device), peak=psnr_peak)),
        members=members,
        spread=spread,
    )
