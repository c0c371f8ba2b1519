r"""Batched Krylov solvers for many independent systems at once.

:func:`bicgstab` solves ``A x = b`` for a stack of systems that share one matrix-free
operator applied batch-wise: the leading axes of ``b`` index the systems, the trailing
``vector_dims`` axes are each system's unknowns. Every system has its own scalars
(ρ, α, ω), its own convergence test and is frozen once converged, so one slow system
does not change the others' answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["ConvergenceError", "KrylovInfo", "bicgstab"]


class ConvergenceError(RuntimeError):
    """A linear solve stopped before reaching its tolerance.

    Attributes
    ----------
    residual : float
        The worst relative residual ``‖b − A x‖ / ‖b‖`` over the systems when it stopped.
    iterations : int
        Iterations run.
    """

    def __init__(self, message: str, residual: float, iterations: int) -> None:
        super().__init__(message)
        self.residual = residual
        self.iterations = iterations


@dataclass(frozen=True)
class KrylovInfo:
    """What a solve did: ``iterations`` run, the worst relative ``residual`` at the end."""

    iterations: int
    residual: float


def _dot(a: torch.Tensor, b: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    return (a.conj() * b).sum(dim=dims, keepdim=True)


def _norm(a: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """``‖a‖₂`` over ``dims`` (kept). A complex tensor goes through its real view: PyTorch's complex
    ``vector_norm`` is ~60× slower on the CPU (6.3 vs 0.09 ms for 590 k elements, torch 2.13)."""
    if a.is_complex():
        return torch.linalg.vector_norm(torch.view_as_real(a.resolve_conj()), dim=(*dims, -1), keepdim=True).squeeze(-1)
    return torch.linalg.vector_norm(a, dim=dims, keepdim=True)


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    zero = den == 0
    return torch.where(zero, torch.zeros_like(num), num / torch.where(zero, torch.ones_like(den), den))


def bicgstab(
    apply: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    *,
    vector_dims: int = 2,
    tol: float = 1e-6,
    max_iter: int = 500,
    what: str = "bicgstab",
) -> tuple[torch.Tensor, KrylovInfo]:
    r"""Solve ``A x = b`` for a batch of systems by BiCGSTAB (van der Vorst 1992).

    Parameters
    ----------
    apply : ``x ↦ A x`` on tensors shaped like ``b`` (each system's block independently)
    b : complex tensor ``(*systems, *vector)`` — the right-hand sides
    x0 : initial guess of ``b``'s shape (default zero); a previous solution warm-starts the solve
    vector_dims : how many trailing axes form one system's unknowns
    tol : relative residual ``‖b − A x‖ / ‖b‖`` each system must reach
    max_iter : iterations (two applications of ``A`` each) before giving up
    what : the name used in the error message

    Returns
    -------
    (x, info)
        ``x`` of ``b``'s shape and a :class:`KrylovInfo`.

    Raises
    ------
    ConvergenceError
        Some system is above ``tol`` after ``max_iter`` iterations (the message states its residual).
    """
    dims = tuple(range(b.ndim - vector_dims, b.ndim))
    b_norm = _norm(b, dims)
    b_norm = torch.where(b_norm > 0, b_norm, torch.ones_like(b_norm))
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply(x) if x0 is not None else b.clone()
    r_hat = r.clone()
    real = b_norm.dtype
    one = torch.ones_like(b_norm, dtype=b.dtype)
    rho_prev, alpha, omega = one.clone(), one.clone(), one.clone()
    v = torch.zeros_like(b)
    p = torch.zeros_like(b)
    res = _norm(r, dims) / b_norm
    it = 0
    while it < max_iter:
        worst = float(res.max()) if res.numel() else 0.0  # one host sync per iteration
        if not math.isfinite(worst) or worst <= tol:
            break
        active = res > tol
        it += 1
        rho = _dot(r_hat, r, dims)
        breakdown = active & (rho.abs() <= torch.finfo(real).tiny)
        if bool(breakdown.any()):  # restart the shadow residual of the systems that broke down
            r_hat = torch.where(breakdown, r, r_hat)
            rho = torch.where(breakdown, _dot(r, r, dims), rho)
            p = torch.where(breakdown, torch.zeros_like(p), p)
            v = torch.where(breakdown, torch.zeros_like(v), v)
        beta = _safe_div(rho, rho_prev) * _safe_div(alpha, omega)
        p = r + beta * (p - omega * v)
        v = apply(p)
        alpha = torch.where(active, _safe_div(rho, _dot(r_hat, v, dims)), torch.zeros_like(rho))
        s = r - alpha * v
        t = apply(s)
        omega = torch.where(active, _safe_div(_dot(t, s, dims), _dot(t, t, dims)), torch.zeros_like(rho))
        x = x + alpha * p + omega * s
        r = s - omega * t
        rho_prev = torch.where(active, rho, rho_prev)
        res = _norm(r, dims) / b_norm
    worst = float(res.max()) if res.numel() else 0.0
    if not worst <= tol:
        raise ConvergenceError(
            f"{what}: the solve did not converge: relative residual {worst:.3g} > tol {tol:g} after {it} "
            "iterations (contrast or frequency too high for this grid, or raise max_iter)",
            worst,
            it,
        )
    return x, KrylovInfo(it, worst)
