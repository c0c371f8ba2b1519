r"""The Born iterative method with TV steps chosen by the discrepancy principle (:func:`born_iterative_tv`).

The model and the conventions (measurements, ``valid``, σ) are those of :mod:`operators.inverse_scattering`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._scattering_checks import _check_operator, _count, _initial_contrast, _measurements
from .base import LinearOperator
from .classical import tv_discrepancy
from .krylov import ConvergenceError
from .parameter_choice import discrepancy_target

__all__ = ["BIMResult", "born_iterative_tv"]


@dataclass(frozen=True)
class BIMResult:
    """The outcome of :func:`born_iterative_tv`.

    Attributes
    ----------
    chi : complex ``(H, W)`` — the outer iterate of smallest full-wave misfit
    lam : the λ the discrepancy principle chose at each outer iteration (data units)
    misfit : full-wave misfit ``½‖y − A(χ_k)‖²`` over the valid entries of each outer iterate
        (``inf`` where its field solve failed)
    change : relative change ``‖χ_k − χ_{k−1}‖ / ‖χ_k‖`` of each outer iterate
    iteration : the outer iterate returned (1-based, an index into the histories plus one)
    outer : outer iterations run
    stopped : ``"discrepancy"`` (full-wave misfit ≤ ``target``), ``"converged"`` (change below
        ``tol``), ``"outer"`` (budget spent) or ``"field solve failed"``
    target : ``τ M σ²``
    """

    chi: torch.Tensor
    lam: tuple[float, ...]
    misfit: tuple[float, ...]
    change: tuple[float, ...]
    iteration: int
    outer: int
    stopped: str
    target: float


@torch.no_grad()
def born_iterative_tv(
    op: LinearOperator,
    y: torch.Tensor,
    sigma: float,
    *,
    valid: torch.Tensor | None = None,
    outer: int = 8,
    tau: float = 1.0,
    chi0: torch.Tensor | None = None,
    iters: int = 200,
    tol: float = 0.01,
    callback: Callable[[int, torch.Tensor, float], None] | None = None,
) -> BIMResult:
    r"""Born iterative method with total-variation steps chosen by the discrepancy principle.

    Outer iteration ``k = 1, 2, …`` (Wang & Chew 1989, with TV in place of Tikhonov):

    .. math::

        u_{k-1} = u(\chi_{k-1}) \;(\text{op.total\_field}), \qquad
        \chi_k = \arg\min_\chi \tfrac12\|y - G_S(\chi\, u_{k-1})\|^2 + \lambda_k \mathrm{TV}(\chi),

    with ``λ_k`` the largest λ whose linearised misfit is at most ``τ M σ²``
    (:func:`operators.tv_discrepancy` on ``op.born_at(u_{k−1})``; a fresh λ search each outer
    step, as that function takes no warm start). ``χ_0 = 0`` (``u_0 = u_inc``: the first step
    is Born + TV) unless ``chi0`` is given. The full-wave misfit ``½‖y − A(χ_k)‖²`` of every
    iterate comes with the next field solve; the iteration stops when it is at or below
    ``τ M σ²`` (``"discrepancy"``), when ``‖χ_k − χ_{k−1}‖ / ‖χ_k‖ < tol`` (``"converged"``),
    after ``outer`` steps (``"outer"``), or when a field solve fails. The iterate returned is
    the one of smallest full-wave misfit — the last one while the method converges; an earlier
    one when it diverges, as BIM does at high contrast (the Born series behind its fixed-field
    step diverges once ``‖χ G_D‖ > 1``).

    Parameters
    ----------
    op : :class:`~operators.LippmannSchwinger`
    y : complex ``(T, R, F)`` — one measurement in the operator's units
    sigma : noise σ per real/imaginary component (data units), > 0
    valid : bool ``(T, R, F)`` or ``None`` — the measured entries; the linear steps use
        ``op.born_at(u).restrict(valid)`` and the others (which may hold NaN) are never read
    outer : the most outer iterations (each: one field solve and one TV λ search)
    tau : the discrepancy factor ``τ``
    chi0 : complex ``(H, W)`` or ``None`` — a starting contrast
    iters : PDHG iterations per λ (see :func:`operators.tv_discrepancy`)
    tol : relative change of ``χ`` that ends the iteration
    callback : ``callback(k, chi_k, misfit_k)`` after every outer iteration (full-wave misfit)

    Returns
    -------
    BIMResult

    Raises
    ------
    ValueError
        A wrong shape of ``y``, ``valid`` or ``chi0``; ``sigma`` ≤ 0; ``tau`` ≤ 0; ``outer`` < 1.
    operators.ConvergenceError
        If the field solve of ``chi0`` fails (a later failure ends the iteration with a warning).
    """
    name = "born_iterative_tv"
    _check_operator(op, name)
    y, mask, m = _measurements(op, y, valid, name)
    target = discrepancy_target(m, sigma, tau)
    outer = _count(outer, "outer", name, 1)
    iters = _count(iters, "iters", name, 1)
    chi = _initial_contrast(op, chi0, name)
    if chi is None:
        chi = torch.zeros(op.in_shape, dtype=op.dtype, device=op.device)
        u = op.incident
    else:
        u = op.total_field(chi)
    y_fit = y if mask is None else y[mask]
    iterates: list[torch.Tensor] = []
    lams: list[float] = []
    misfits: list[float] = []
    changes: list[float] = []
    stopped = "outer"
    for k in range(1, outer + 1):
        lin = op.born_at(u) if mask is None else op.born_at(u).restrict(mask)
        choice = tv_discrepancy(lin, y_fit, sigma, tau, iters)
        new = choice.image
        norm_new = float(torch.linalg.vector_norm(new))
        changes.append(float(torch.linalg.vector_norm(new - chi)) / norm_new if norm_new > 0 else 0.0)
        chi = new
        iterates.append(chi)
        lams.append(choice.parameter)
        try:
            u = op.total_field(chi)
        except ConvergenceError as err:
            warnings.warn(f"{name}: stopping at outer iteration {k}: {err}", RuntimeWarning, stacklevel=2)
            misfits.append(math.inf)
            stopped = "field solve failed"
            break
        res = op.green_data(chi * u) - y
        misfits.append(0.5 * float((res if mask is None else res * mask).abs().pow(2).sum()))
        if callback is not None:
            callback(k, chi, misfits[-1])
        if misfits[-1] <= target:
            stopped = "discrepancy"
            break
        if changes[-1] < tol:
            stopped = "converged"
            break
    best = min(range(len(misfits)), key=misfits.__getitem__)
    return BIMResult(iterates[best], tuple(lams), tuple(misfits), tuple(changes), best + 1, k, stopped, target)
