r"""Sparse recovery: ℓ1-regularised least squares by FISTA, in pixels or an orthonormal Haar basis.

.. math::  \min_c\ \tfrac12\|A W^{H} c - y\|^2 + \lambda \|c\|_1,\qquad x = W^{H} c

with ``W`` the identity (``basis="pixels"``: point scatterers — the classical radar
competitor for point-like scenes) or the orthonormal 2-D Haar wavelet transform
(``basis="haar"``: piecewise-smooth images — the classical compressed-sensing choice;
the coarsest approximation band is not penalised). The ℓ1 norm of complex
coefficients is ``Σ|c|``; its proximal map is the complex soft threshold
``c · max(0, 1 − t/|c|)``. FISTA (Beck–Teboulle) with step ``1/‖A‖²``.

``lam="discrepancy"`` chooses λ by the discrepancy principle
(:mod:`operators.parameter_choice`): the descent starts at ``λ₀ = ‖W Aᴴ y‖_∞``, where
the solution is zero (pixels) or the approximation band alone (Haar).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .base import LinearOperator, _norm
from .parameter_choice import DiscrepancyChoice, discrepancy_target, search_lambda

__all__ = ["haar2d", "ihaar2d", "haar_levels", "l1_discrepancy", "l1_reconstruct"]

BASES = ("pixels", "haar")


def haar_levels(shape: tuple[int, int], max_levels: int = 4) -> int:
    """Number of Haar levels an ``(H, W)`` image supports (both sides divisible by ``2^L``), at most ``max_levels``."""
    h, w = shape
    levels = 0
    while levels < max_levels and h % 2 == 0 and w % 2 == 0 and min(h, w) >= 4:
        h, w, levels = h // 2, w // 2, levels + 1
    return levels


def haar2d(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Orthonormal 2-D Haar analysis ``(..., H, W) → (..., H, W)`` (Mallat layout: approximation top-left)."""
    c = x.clone()
    h, w = x.shape[-2:]
    s = 1 / math.sqrt(2.0)
    for _ in range(levels):
        blk = c[..., :h, :w]
        lo = (blk[..., 0::2, :] + blk[..., 1::2, :]) * s
        hi = (blk[..., 0::2, :] - blk[..., 1::2, :]) * s
        rows = torch.cat((lo, hi), dim=-2)
        lo = (rows[..., :, 0::2] + rows[..., :, 1::2]) * s
        hi = (rows[..., :, 0::2] - rows[..., :, 1::2]) * s
        c[..., :h, :w] = torch.cat((lo, hi), dim=-1)
        h, w = h // 2, w // 2
    return c


def ihaar2d(c: torch.Tensor, levels: int) -> torch.Tensor:
    """Inverse (= adjoint) of :func:`haar2d`."""
    x = c.clone()
    h, w = c.shape[-2:]
    sizes = [(h >> k, w >> k) for k in range(levels)]
    s = 1 / math.sqrt(2.0)
    for h, w in reversed(sizes):
        blk = x[..., :h, :w]
        lo, hi = blk[..., :, : w // 2], blk[..., :, w // 2 :]
        rows = torch.empty_like(blk)
        rows[..., :, 0::2] = (lo + hi) * s
        rows[..., :, 1::2] = (lo - hi) * s
        lo, hi = rows[..., : h // 2, :], rows[..., h // 2 :, :]
        out = torch.empty_like(blk)
        out[..., 0::2, :] = (lo + hi) * s
        out[..., 1::2, :] = (lo - hi) * s
        x[..., :h, :w] = out
    return x


def _basis(op: LinearOperator, basis: str):
    if basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
    if len(op.in_shape) != 2:
        raise ValueError(f"l1_reconstruct: needs 2-D images, op.in_shape is {op.in_shape}")
    if basis == "pixels":
        return (lambda x: x), (lambda c: c), None
    levels = haar_levels(op.in_shape)
    if levels == 0:
        raise ValueError(f"basis='haar' needs an even image size, op.in_shape is {op.in_shape}")
    h, w = op.in_shape
    weight = torch.ones(op.in_shape, device=op.device)
    weight[: h >> levels, : w >> levels] = 0.0  # the approximation band is not penalised
    return (lambda x: haar2d(x, levels)), (lambda c: ihaar2d(c, levels)), weight


def _soft(c: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    mag = c.abs()
    return c * torch.clamp(1 - t / mag.clamp_min(torch.finfo(mag.dtype).tiny), min=0.0)


class _FistaState:
    __slots__ = ("c", "t", "z")

    def __init__(self, c: torch.Tensor, z: torch.Tensor, t: float) -> None:
        self.c, self.z, self.t = c, z, t


def _fista(
    op: LinearOperator,
    y: torch.Tensor,
    lam: float,
    fwd_w: Callable[[torch.Tensor], torch.Tensor],
    inv_w: Callable[[torch.Tensor], torch.Tensor],
    weight: torch.Tensor | None,
    step: float,
    state: _FistaState,
    iters: int,
) -> _FistaState:
    c, z, t = state.c, state.z, state.t
    thr = lam * step if weight is None else lam * step * weight
    for _ in range(iters):
        grad = fwd_w(op.adjoint(op.forward(inv_w(z)) - y))
        c_new = _soft(z - step * grad, thr)
        t_new = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
        z = c_new + ((t - 1) / t_new) * (c_new - c)
        c, t = c_new, t_new
    return _FistaState(c, z, t)


def _check_y(op: LinearOperator, y: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name}: y must be a torch.Tensor, got {type(y).__name__}")
    y = op._check(y.to(op.device), op.out_shape, name)
    if y.shape != torch.Size(op.out_shape):
        raise ValueError(f"{name}: y must have the shape {op.out_shape} (one measurement), got {tuple(y.shape)}")
    return y


@torch.no_grad()
def l1_reconstruct(
    op: LinearOperator,
    y: torch.Tensor,
    lam: float | str,
    *,
    basis: str = "pixels",
    iters: int = 200,
    sigma: float | None = None,
    tau: float = 1.0,
) -> torch.Tensor:
    """ℓ1-regularised least squares by FISTA; returns the image ``op.in_shape`` in ``op.dtype``.

    Parameters
    ----------
    op, y : operator and one measurement ``op.out_shape``
    lam : λ ≥ 0 in data units, or ``"discrepancy"`` (needs ``sigma``, see :func:`l1_discrepancy`)
    basis : ``"pixels"`` or ``"haar"`` (orthonormal, up to 4 levels; approximation band unpenalised)
    iters : FISTA iterations (per λ for the discrepancy search)
    sigma, tau : noise σ per real/imag component and the discrepancy factor τ
    """
    if isinstance(lam, str):
        if lam != "discrepancy":
            raise ValueError(f"l1_reconstruct: lam must be a number ≥ 0 or 'discrepancy', got {lam!r}")
        return l1_discrepancy(op, y, sigma=sigma, tau=tau, basis=basis, iters=iters).image  # type: ignore[arg-type]
    if not lam >= 0:
        raise ValueError(f"l1_reconstruct: lam must be ≥ 0, got {lam}")
    y = _check_y(op, y, "l1_reconstruct")
    fwd_w, inv_w, weight = _basis(op, basis)
    step = 1.0 / op.opnorm() ** 2
    c0 = torch.zeros(op.in_shape, dtype=op.dtype, device=op.device)
    st = _fista(op, y, float(lam), fwd_w, inv_w, weight, step, _FistaState(c0, c0.clone(), 1.0), iters)
    return inv_w(st.c)


@torch.no_grad()
def l1_discrepancy(
    op: LinearOperator,
    y: torch.Tensor,
    sigma: float,
    tau: float = 1.0,
    *,
    basis: str = "pixels",
    iters: int = 200,
) -> DiscrepancyChoice:
    """ℓ1 (FISTA) with λ chosen by the discrepancy principle; warm starts restart FISTA's momentum."""
    y = _check_y(op, y, "l1_discrepancy")
    fwd_w, inv_w, weight = _basis(op, basis)
    target = discrepancy_target(op.size_out, sigma, tau)
    step = 1.0 / op.opnorm() ** 2

    def solve(lam: float, state: _FistaState | None) -> tuple[torch.Tensor, _FistaState, float]:
        c0 = torch.zeros(op.in_shape, dtype=op.dtype, device=op.device) if state is None else state.c
        st = _fista(op, y, lam, fwd_w, inv_w, weight, step, _FistaState(c0, c0.clone(), 1.0), iters)
        x = inv_w(st.c)
        return x, st, 0.5 * _norm(op.forward(x) - y) ** 2

    g = fwd_w(op.adjoint(y)).abs()
    lam0 = float((g if weight is None else g * weight).max())
    return search_lambda(solve, lam0, target, name="l1_discrepancy")
