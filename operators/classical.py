r"""Classical inverses that every prior-based result is compared against.

* :func:`backproject` — ``Aᴴ y``, optionally normalised by ``diag(AᴴA)`` so that a
  unit point target images to ≈ 1 (matched filter for radar).
* :func:`cg_least_squares` — CGLS for ``min ½‖A x − y‖² + ½ δ ‖x‖²`` on complex data.
* :func:`tv_reconstruct` — ``min ½‖A x − y‖² + λ TV(x)`` with isotropic complex TV,
  by PDHG (Chambolle–Pock) with step sizes from ``‖A‖``.

All functions take measurements of shape ``(..., *op.out_shape)`` and return
images ``(..., *op.in_shape)`` in ``op.dtype``; they run under ``torch.no_grad``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from .base import LinearOperator, _norm
from .parameter_choice import DiscrepancyChoice, discrepancy_target, search_lambda

__all__ = [
    "backproject",
    "cg_least_squares",
    "cgls_discrepancy",
    "divergence2d",
    "gradient2d",
    "tv_discrepancy",
    "tv_reconstruct",
]


def _as_measurements(op: LinearOperator, y: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name}: y must be a torch.Tensor, got {type(y).__name__}")
    return op._check(y.to(op.device), op.out_shape, name)


@torch.no_grad()
def backproject(
    op: LinearOperator, y: torch.Tensor, normalize: bool = False, window: str | None = None
) -> torch.Tensor:
    """Adjoint image ``Aᴴ y`` (the matched filter); optionally windowed and normalised.

    Parameters
    ----------
    op, y : operator and measurements ``(..., *op.out_shape)``
    normalize : divide by ``diag(AᴴA)`` (with the window applied) so that the image
        of a unit point target ``y = A δ_p`` has value ≈ 1 at ``p``.
    window : taper applied to the measurements before the adjoint, e.g. ``"hamming"``;
        supported by operators that define ``measurement_window(kind)`` (MIMO radar:
        over frequency for range sidelobes and over the virtual array for cross-range).
    """
    y = _as_measurements(op, y, "backproject")
    w = None
    if window is not None:
        if not hasattr(op, "measurement_window"):
            raise ValueError(f"backproject: {type(op).__name__} does not support window={window!r}")
        w = op.measurement_window(window)
        y = y * w
    x = op.adjoint(y)
    if normalize:
        if w is None:
            d = op.normal_diagonal().to(x.device)
        else:
            d = op.normal_diagonal(weights=w).to(x.device)
        x = x / d.clamp_min(torch.finfo(d.dtype).tiny)
    return x


@torch.no_grad()
def cg_least_squares(
    op: LinearOperator,
    y: torch.Tensor,
    damping: float = 0.0,
    iters: int = 50,
    tol: float = 1e-10,
    x0: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    stop_misfit: float | None = None,
) -> torch.Tensor:
    """CGLS: minimise ``½‖A x − y‖² + ½ damping ‖x‖²`` over complex ``x``.

    Stops after ``iters`` iterations, when the normal-equation residual norm falls
    below ``tol`` times its initial value, or — with ``stop_misfit`` — at the first
    iterate whose data misfit ``½‖y − A x‖²`` (CGLS's own residual recursion) is at or
    below it (early stopping, as in :func:`cgls_discrepancy`). ``callback(k, x)`` is
    called after every iteration.
    """
    if damping < 0:
        raise ValueError(f"cg_least_squares: damping must be ≥ 0, got {damping}")
    if iters < 0:
        raise ValueError(f"cg_least_squares: iters must be ≥ 0, got {iters}")
    y = _as_measurements(op, y, "cg_least_squares")
    batch = y.shape[: y.ndim - len(op.out_shape)]
    x = torch.zeros(*batch, *op.in_shape, dtype=op.dtype, device=op.device) if x0 is None else x0.clone()
    r = y - op.forward(x)
    s = op.adjoint(r) - damping * x
    p = s.clone()
    gamma = _sqnorm(s)
    gamma0 = gamma
    for k in range(iters):
        if stop_misfit is not None and 0.5 * _sqnorm(r) <= stop_misfit:
            break
        if float(gamma) <= (tol**2) * float(gamma0) or float(gamma) == 0.0:
            break
        q = op.forward(p)
        denom = _sqnorm(q) + damping * _sqnorm(p)
        if denom == 0.0:
            break
        alpha = gamma / denom
        x = x + alpha * p
        r = r - alpha * q
        s = op.adjoint(r) - damping * x
        gamma_new = _sqnorm(s)
        beta = gamma_new / gamma
        p = s + beta * p
        gamma = gamma_new
        if callback is not None:
            callback(k, x)
    return x


@torch.no_grad()
def cgls_discrepancy(
    op: LinearOperator, y: torch.Tensor, sigma: float, tau: float = 1.0, max_iters: int = 200
) -> DiscrepancyChoice:
    """CGLS (no damping) stopped at the first iteration with ``½‖A x_k − y‖² ≤ τ M σ²``.

    CGLS's residual decreases monotonically, so early stopping by the discrepancy
    principle is its regularisation (semi-convergence). ``y``: one measurement
    ``op.out_shape``; ``sigma``: noise σ per real/imag component. ``parameter`` of the
    result is the iteration count (0: the zero image already fits to the noise level).
    """
    y = _as_measurements(op, y, "cgls_discrepancy")
    if y.shape != torch.Size(op.out_shape):
        raise ValueError(
            f"cgls_discrepancy: y must have the shape {op.out_shape} (one measurement), got {tuple(y.shape)}"
        )
    target = discrepancy_target(op.size_out, sigma, tau)
    steps = [0]

    def count(k: int, x: torch.Tensor) -> None:
        steps[0] = k + 1

    x = cg_least_squares(op, y, iters=max_iters, tol=0.0, callback=count, stop_misfit=target)
    misfit = 0.5 * _sqnorm(op.forward(x) - y)
    reached = misfit <= target
    if not reached:
        warnings.warn(
            f"cgls_discrepancy: misfit {misfit:.4g} still above τMσ² = {target:.4g} after {steps[0]} "
            "iterations; returning the last iterate",
            UserWarning,
            stacklevel=2,
        )
    return DiscrepancyChoice(x, float(steps[0]), misfit, target, reached, steps[0])


def _sqnorm(t: torch.Tensor) -> float:
    # A batch is solved as one block-diagonal least-squares problem, so the CG scalars are
    # global; CGLS on the stacked system gives every member's solution. Python floats (float64)
    # avoid float32 underflow for operators in physical units (‖A‖ ~ 1e-13 for diffraction tomography).
    return _norm(t) ** 2


def gradient2d(x: torch.Tensor) -> torch.Tensor:
    """Forward differences with Neumann boundary: ``(..., H, W) → (..., 2, H, W)``."""
    gy = torch.zeros_like(x)
    gx = torch.zeros_like(x)
    gy[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    gx[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return torch.stack((gy, gx), dim=-3)


def divergence2d(g: torch.Tensor) -> torch.Tensor:
    """Negative adjoint of :func:`gradient2d`: ``(..., 2, H, W) → (..., H, W)``."""
    gy, gx = g[..., 0, :, :], g[..., 1, :, :]
    dy = torch.zeros_like(gy)
    dx = torch.zeros_like(gx)
    dy[..., 0, :] = gy[..., 0, :]
    dy[..., 1:-1, :] = gy[..., 1:-1, :] - gy[..., :-2, :]
    dy[..., -1, :] = -gy[..., -2, :]
    dx[..., :, 0] = gx[..., :, 0]
    dx[..., :, 1:-1] = gx[..., :, 1:-1] - gx[..., :, :-2]
    dx[..., :, -1] = -gx[..., :, -2]
    return dy + dx


class _TVState:
    """PDHG iterate of the TV problem on the normalised operator: primal ``x``, duals ``p`` (data), ``q`` (TV)."""

    __slots__ = ("p", "q", "x")

    def __init__(self, x: torch.Tensor, p: torch.Tensor, q: torch.Tensor) -> None:
        self.x, self.p, self.q = x, p, q


def _tv_pdhg(
    unit: LinearOperator,
    y: torch.Tensor,
    lam: float,
    state: _TVState,
    iters: int,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> _TVState:
    """``iters`` PDHG steps for ``½‖A'x − y'‖² + λ' TV(x)`` with ``‖A'‖ = 1`` (all normalised)."""
    big_l = (1.0 + 8.0) ** 0.5
    tau = sigma = 0.99 / big_l
    x, p, q = state.x, state.p, state.q
    x_bar = x.clone()
    for k in range(iters):
        p = (p + sigma * (unit.forward(x_bar) - y)) / (1 + sigma)
        q = q + sigma * gradient2d(x_bar)
        mag = torch.sqrt((q.abs() ** 2).sum(dim=-3, keepdim=True))
        q = q / torch.clamp(mag / lam, min=1.0) if lam > 0 else torch.zeros_like(q)
        x_new = x - tau * (unit.adjoint(p) - divergence2d(q))
        x_bar = 2 * x_new - x
        x = x_new
        if callback is not None:
            callback(k, x)
    return _TVState(x, p, q)


@torch.no_grad()
def tv_reconstruct(
    op: LinearOperator,
    y: torch.Tensor,
    lam: float | str,
    iters: int = 200,
    x0: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    *,
    sigma: float | None = None,
    tau: float = 1.0,
) -> torch.Tensor:
    r"""Isotropic complex total variation by PDHG (Chambolle–Pock).

    Solves :math:`\min_x \tfrac12\|Ax-y\|^2 + \lambda \sum_p \sqrt{|\partial_y x_p|^2+|\partial_x x_p|^2}`
    over complex images of shape ``op.in_shape`` (2-D). The operator is normalised
    internally to ``‖A‖ = 1`` (with ``λ`` rescaled accordingly, so the minimiser is
    unchanged); step sizes ``τ = σ = 0.99/3`` (``‖[A; ∇]‖² ≤ 1 + 8``), extrapolation
    θ = 1, started from the normalised backprojection.

    ``lam="discrepancy"`` chooses λ by the discrepancy principle (largest λ with
    ``½‖Ax−y‖² ≤ τ M σ²``, ``sigma`` per real/imag component required; see
    :func:`tv_discrepancy`, which also returns the chosen λ).
    """
    if isinstance(lam, str):
        if lam != "discrepancy":
            raise ValueError(f"tv_reconstruct: lam must be a number ≥ 0 or 'discrepancy', got {lam!r}")
        if x0 is not None or callback is not None:
            raise ValueError("tv_reconstruct: x0 and callback are not supported with lam='discrepancy'")
        return tv_discrepancy(op, y, sigma=sigma, tau=tau, iters=iters).image  # type: ignore[arg-type]
    if not lam >= 0:
        raise ValueError(f"tv_reconstruct: lam must be ≥ 0, got {lam}")
    unit, y_n, a_norm = _tv_setup(op, y)
    x = backproject(op, y_n * a_norm, normalize=True) if x0 is None else x0.clone()
    state = _tv_pdhg(unit, y_n, lam / a_norm**2, _tv_start(op, y_n, x), iters, callback)
    return state.x


def _tv_setup(op: LinearOperator, y: torch.Tensor) -> tuple[LinearOperator, torch.Tensor, float]:
    if len(op.in_shape) != 2:
        raise ValueError(f"tv_reconstruct: needs 2-D images, op.in_shape is {op.in_shape}")
    y = _as_measurements(op, y, "tv_reconstruct")
    # Solve the equivalent problem with A' = A/‖A‖, y' = y/‖A‖, λ' = λ/‖A‖² so that the data
    # and TV blocks of K = [A'; ∇] are balanced whatever the operator's physical units.
    a_norm = op.opnorm()
    return op * (1.0 / a_norm), y / a_norm, a_norm


def _tv_start(op: LinearOperator, y: torch.Tensor, x: torch.Tensor) -> _TVState:
    batch = y.shape[: y.ndim - len(op.out_shape)]
    q = torch.zeros(*batch, 2, *op.in_shape, dtype=op.dtype, device=op.device)
    return _TVState(x, torch.zeros_like(y), q)


@torch.no_grad()
def tv_discrepancy(
    op: LinearOperator,
    y: torch.Tensor,
    sigma: float,
    tau: float = 1.0,
    iters: int = 200,
    *,
    rtol: float | None = None,
) -> DiscrepancyChoice:
    """TV with λ chosen by the discrepancy principle (:mod:`operators.parameter_choice`).

    ``y`` is one measurement ``op.out_shape`` (no batch); ``sigma`` the noise σ per
    real/imag component. Each λ is solved with ``iters`` PDHG steps, warm-started from
    the nearest λ already solved; the descent starts at ``λ₀ = ‖Aᴴy‖_∞`` (data units),
    where TV flattens the image. ``rtol`` (default ``None``: the full protocol) trades precision
    in λ for fewer solves (see ``operators.parameter_choice.search_lambda``).
    """
    unit, y_n, a_norm = _tv_setup(op, y)
    if y_n.shape != torch.Size(op.out_shape):
        raise ValueError(
            f"tv_discrepancy: y must have the shape {op.out_shape} (one measurement), got {tuple(y.shape)}"
        )
    target = discrepancy_target(op.size_out, sigma, tau)

    def solve(lam: float, state: _TVState | None) -> tuple[torch.Tensor, _TVState, float]:
        if state is None:
            state = _tv_start(op, y_n, backproject(op, y_n * a_norm, normalize=True))
        state = _tv_pdhg(unit, y_n, lam / a_norm**2, state, iters)
        return state.x, state, 0.5 * _norm(op.forward(state.x) - y) ** 2

    lam0 = float(op.adjoint(y).abs().max())
    return search_lambda(solve, lam0, target, name="tv_discrepancy", rtol=rtol)
