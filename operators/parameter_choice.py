r"""Choosing a classical solver's regularisation without ground truth: Morozov's discrepancy principle.

For a noise of σ per real/imaginary component (``E|n|² = 2σ²``, DESIGN.md §2) the
expected data misfit of the truth is ``½ E‖n‖² = M σ²`` (M complex measurements).
The discrepancy principle picks

* for a variational solver ``x_λ = argmin ½‖Ax − y‖² + λ R(x)``: the **largest** λ with
  ``½‖A x_λ − y‖² ≤ τ M σ²`` — the misfit grows monotonically with λ, so a geometric
  descent from a λ that over-smooths (half a decade per step, each solve warm-started
  from the previous one), then a bisection in ``log λ`` between the last failing and the
  first passing λ, finds it;
* for an iterative solver (CGLS, whose residual decreases monotonically): the first
  iteration with ``½‖A x_k − y‖² ≤ τ M σ²``.

``τ ≥ 1`` (default 1). Neither uses the truth: this is how a user without ground truth
tunes a classical baseline. Every result says whether the target misfit was reached.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["DiscrepancyChoice", "discrepancy_target", "search_lambda"]

#: ``rtol`` searches descend a whole decade per solve while the misfit is above this × target.
_COARSE_ABOVE = 4.0


@dataclass(frozen=True)
class DiscrepancyChoice:
    """The outcome of a discrepancy-principle parameter choice.

    Attributes
    ----------
    image : the chosen reconstruction, ``op.in_shape``, ``op.dtype``
    parameter : the chosen λ (data units) or, for CGLS, the iteration count
    misfit : ``½‖A x − y‖²`` of ``image`` (data units squared)
    target : ``τ M σ²``
    reached : whether ``misfit ≤ target`` (False: the solver could not fit the data that
        well — the smallest λ / the last iteration is returned, and a warning said so)
    evaluations : number of solves (λ values) or iterations spent
    """

    image: torch.Tensor
    parameter: float
    misfit: float
    target: float
    reached: bool
    evaluations: int


def discrepancy_target(m: int, sigma: float, tau: float = 1.0) -> float:
    """``τ M σ²`` after checking the inputs (σ per real/imag component, τ ≥ 1 is customary)."""
    if sigma is None or not math.isfinite(float(sigma)) or float(sigma) <= 0:
        raise ValueError(f"sigma: the discrepancy principle needs the noise σ > 0 per component, got {sigma!r}")
    if not math.isfinite(float(tau)) or float(tau) <= 0:
        raise ValueError(f"tau: must be a finite number > 0, got {tau!r}")
    return float(tau) * m * float(sigma) ** 2


def search_lambda(
    solve: Callable[[float, Any], tuple[torch.Tensor, Any, float]],
    lam_start: float,
    target: float,
    *,
    step: float = math.sqrt(10.0),
    bisections: int = 5,
    max_steps: int = 24,
    name: str = "solver",
    rtol: float | None = None,
) -> DiscrepancyChoice:
    """Largest λ with misfit ≤ ``target`` by warm-started descent then log-bisection.

    Parameters
    ----------
    solve : ``solve(lam, state) -> (image, state, misfit)``; ``state`` is ``None`` for a
        cold start or a state returned by an earlier call (warm start).
    lam_start : a λ that should over-regularise (misfit above target); when it already
        passes, larger λ are tried (×``step``) until one fails.
    target : ``τ M σ²``.
    step : factor between consecutive λ of the descent (default half a decade).
    bisections : log-bisection steps between the bracketing λ (precision ``step^(1/2^b)``).
    max_steps : limit of the descent (or ascent).
    rtol : ``None`` (default) for the protocol above. A number in (0, 1) asks for a cheaper
        answer: the descent takes ``step²`` while the misfit is above ``4 × target``, and the
        bracket is refined by regula falsi on ``log misfit`` against ``log λ`` (Illinois
        variant, at most ``bisections`` solves), stopping at the first passing λ whose
        misfit is within ``rtol`` of the target (``misfit ≥ (1 − rtol) target``) or once the
        bracket is as narrow as the bisection's would be. Meant for a λ that is only used
        as a scale (the DIP + TV weight); the baselines keep the protocol above.
    """
    if rtol is not None and not 0 < rtol < 1:
        raise ValueError(f"{name}: rtol must be None or in (0, 1), got {rtol!r}")
    if not (lam_start > 0 and math.isfinite(lam_start)):
        raise ValueError(f"{name}: the starting λ must be finite and > 0, got {lam_start!r}")
    evals = 0

    def run(lam: float, state: Any) -> tuple[torch.Tensor, Any, float]:
        nonlocal evals
        evals += 1
        return solve(lam, state)

    lam = lam_start
    img, state, mis = run(lam, None)
    if mis <= target:  # ascend until a λ fails; the last passing one is the answer's lower end
        good = (lam, img, state, mis)
        for _ in range(max_steps):
            lam_up = good[0] * step
            img, state_up, mis = run(lam_up, good[2])
            if mis > target:
                bad = (lam_up, state_up, mis)
                break
            good = (lam_up, img, state_up, mis)
        else:
            return DiscrepancyChoice(good[1], good[0], good[3], target, True, evals)
    else:
        bad = (lam, state, mis)
        good = None
        for _ in range(max_steps):
            coarse = rtol is not None and mis > _COARSE_ABOVE * target
            lam_dn = bad[0] / (step * step if coarse else step)
            img, state_dn, mis = run(lam_dn, bad[1])
            if mis <= target:
                good = (lam_dn, img, state_dn, mis)
                break
            bad = (lam_dn, state_dn, mis)
        if good is None:
            warnings.warn(
                f"{name}: the discrepancy target ½‖Ax−y‖² ≤ {target:.4g} was not reached down to λ = {bad[0]:.3g} "
                f"(misfit {mis:.4g}); returning that λ — σ may be underestimated",
                UserWarning,
                stacklevel=3,
            )
            return DiscrepancyChoice(img, bad[0], mis, target, False, evals)
    if rtol is not None:
        precision = step ** (1.0 / 2**bisections)  # the bisection's bracket at the end
        good = _refine(run, good, bad, target, rtol, bisections, precision)
        return DiscrepancyChoice(good[1], good[0], good[3], target, True, evals)
    for _ in range(bisections):  # log-bisection between good (passes, smaller λ) and bad (fails, larger λ)
        lam_mid = math.sqrt(good[0] * bad[0])
        img, state_mid, mis = run(lam_mid, good[2])
        if mis <= target:
            good = (lam_mid, img, state_mid, mis)
        else:
            bad = (lam_mid, state_mid, mis)
    return DiscrepancyChoice(good[1], good[0], good[3], target, True, evals)


def _refine(
    run: Callable[[float, Any], tuple[torch.Tensor, Any, float]],
    good: tuple[float, torch.Tensor, Any, float],
    bad: tuple[float, Any, float],
    target: float,
    rtol: float,
    max_solves: int,
    precision: float,
) -> tuple[float, torch.Tensor, Any, float]:
    """Regula falsi (Illinois) on ``log misfit − log target`` over ``log λ`` inside ``[good, bad]``.

    Returns the final passing ``(λ, image, state, misfit)``. Stops when the passing misfit is
    within ``rtol`` of the target, when the bracket is as narrow as ``precision`` (the ratio of
    its ends), or after ``max_solves`` solves.
    """
    lg, lb = math.log(good[0]), math.log(bad[0])
    fg, fb = math.log(max(good[3], 1e-300) / target), math.log(max(bad[2], 1e-300) / target)
    side = 0  # which end was kept last (Illinois: halve the kept end's value when it repeats)
    for _ in range(max_solves):
        if good[3] >= (1.0 - rtol) * target or bad[0] / good[0] <= precision:
            break
        t = fg / (fg - fb) if fb != fg else 0.5
        t = min(max(t, 0.1), 0.9)  # stay inside the bracket, keep shrinking it
        lam = math.exp(lg + t * (lb - lg))
        img, state, mis = run(lam, good[2])
        f = math.log(max(mis, 1e-300) / target)
        if mis <= target:
            good, lg, fg = (lam, img, state, mis), math.log(lam), f
            if side == -1:
                fb *= 0.5
            side = -1
        else:
            bad, lb, fb = (lam, state, mis), math.log(lam), f
            if side == 1:
                fg *= 0.5
            side = 1
    return good
