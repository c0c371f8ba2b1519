r"""Several independently seeded fits of one measurement, averaged (``reconstruct(..., fits=K)``).

Fit ``k`` (``k = 0 … K−1``) is an ordinary run with seed ``seed + 1000·k`` — another network
initialisation, input and jitter — that picks its own iterate with the same stopping rules.
The returned image is the mean of the chosen images,

.. math::

    \bar x = \frac1K \sum_{k=0}^{K-1} x_k^{(t_k)},

which averages out the part of each fit that depends on the initialisation (largely the
noise the network has begun to fit) while keeping what every fit agrees on. The per-pixel
RMS deviation of the ``x_k`` from ``x̄`` (1/K normalisation) is returned as ``Result.spread``:
where the fits disagree, not a calibrated error bar.

How much it helps is measured, not assumed: see docs/guide.md, "Several fits".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from operators import LinearOperator

from ..losses import half_squared_norm
from ..metrics import psnr
from ..result import Result
from .loop import IterationState

__all__ = ["SEED_STRIDE", "fit_seeds", "fit_ensemble"]

#: Seed offset between consecutive fits.
SEED_STRIDE = 1000


def fit_seeds(seed: int, fits: int) -> list[int]:
    """Seeds of the ``fits`` fits of a run seeded ``seed``: ``seed + 1000·k``."""
    return [seed + SEED_STRIDE * k for k in range(fits)]


def fit_ensemble(
    fit_one: Callable[[int, int, str, Sequence[Callable[[IterationState], bool | None]]], Result],
    *,
    fits: int,
    seed: int,
    callbacks: Sequence[Callable[[IterationState], bool | None]],
    op: LinearOperator,
    y: torch.Tensor,
    truth: torch.Tensor | None,
    psnr_peak: float | None,
) -> Result:
    """Run ``fit_one(seed_k, k, label, callbacks)`` for each fit and combine the results.

    A fit cut short — by Ctrl-C / SIGTERM (also between fits) or by a callback returning
    ``True`` — ends the ensemble. The mean is then taken over the fits that ran to their
    own choice (the cut-short fit's image only when no other fit exists), and the result is
    marked interrupted for a signal. ``spread`` needs at least two averaged fits (else ``None``).
    """
    seeds = fit_seeds(seed, fits)
    members: list[Result] = []
    cut: int | None = None  # index of the fit that was cut short
    why = ""
    signalled = False
    stopped = [False]

    def watch(cb: Callable[[IterationState], bool | None]) -> Callable[[IterationState], bool]:
        def wrapped(state: IterationState) -> bool:
            stop = bool(cb(state))
            stopped[0] = stopped[0] or stop
            return stop

        return wrapped

    watched = [watch(cb) for cb in callbacks]
    for k, s in enumerate(seeds):
        try:
            res = fit_one(s, k, f"rfprior fit {k + 1}/{fits}", watched)
        except KeyboardInterrupt:  # outside a fit's loop (set-up, between fits): keep what finished
            if not members:
                raise
            cut, why, signalled = k, f"interrupted before fit {k + 1} of {fits} finished", True
            break
        members.append(res)
        if res.interrupted or stopped[0]:
            cut, signalled = k, res.interrupted
            why = f"{'interrupted' if res.interrupted else 'a callback stopped the run'} during fit {k + 1} of {fits}"
            break
    finished = [m for i, m in enumerate(members) if i != cut] or members
    stack = torch.stack([m.image for m in finished])
    image = stack.mean(0)
    # RMS deviation from the mean (1/K normalisation: |x₀ − x₁|/2 for two fits)
    spread = (stack - image).abs().pow(2).mean(0).sqrt() if len(finished) > 1 else None
    y_dev = y.to(device=op.device, dtype=op.dtype)

    def half_misfit(x: torch.Tensor) -> float:
        with torch.no_grad():
            return float(half_squared_norm(op.forward(x.to(op.device)) - y_dev))

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
        "relative_spread": float(torch.linalg.vector_norm(spread)) / norm
        if spread is not None and norm > 0
        else float("nan"),
    }
    per_fit = "; ".join(f"fit {i + 1}: {m.stop_reason}" for i, m in enumerate(members))
    reason = (
        f"mean of {len(finished)} independently seeded fit{'s' if len(finished) > 1 else ''} "
        f"(seeds {', '.join(str(m.seed) for m in finished)}; chosen iterations "
        f"{', '.join(str(m.chosen_iteration) for m in finished)}); {per_fit}"
    )
    if cut is not None:
        reason = f"{why}; {reason}"
    # the history, choices and oracle are the first fit's: say so where they are stored
    history = first.history.copy()
    history.attrs = {**history.attrs, "fit": 0, "seed": first.seed}
    return Result(
        image=image,
        chosen_iteration=first.chosen_iteration,
        final_image=first.final_image,
        final_iteration=first.final_iteration,
        history=history,
        settings={**first.settings, "seed": seed, "fits": fits},
        seed=seed,
        stop_reason=reason,
        choices=dict(first.choices),
        sigma=first.sigma,
        scale=first.scale,
        interrupted=signalled,
        backtracks=sum(m.backtracks for m in members),
        oracle_iteration=first.oracle_iteration,
        oracle_psnr=first.oracle_psnr,
        oracle_image=first.oracle_image,
        rule_summaries={**first.rule_summaries, "ensemble": summary},
        image_psnr=None if truth is None else float(psnr(image, truth.to(image.device), peak=psnr_peak)),
        members=members,
        spread=spread,
        weights=first.weights,
    )
