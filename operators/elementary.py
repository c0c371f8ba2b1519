"""Elementary operators: identity and pixel-wise (diagonal) multiplication."""

from __future__ import annotations

import torch

from .base import LinearOperator

__all__ = ["Identity", "Diagonal"]


class Identity(LinearOperator):
    """``I`` on images of ``shape``: ``(..., *shape) → (..., *shape)``."""

    def __init__(self, shape: tuple[int, ...], *, dtype: torch.dtype = torch.complex64, device=None) -> None:
        super().__init__(shape, shape, tuple(f"dim_{i}" for i in range(len(shape))), dtype=dtype, device=device)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def opnorm(self, iters: int = 100, tol: float = 1e-6, seed: int = 0) -> float:
        return 1.0


class Diagonal(LinearOperator):
    """Multiplication by fixed complex weights ``w`` (shape = image shape), e.g. a coil map.

    ``forward(x) = w ⊙ x``, ``adjoint(y) = conj(w) ⊙ y``.
    """

    def __init__(self, weights: torch.Tensor, *, dtype: torch.dtype = torch.complex64, device=None) -> None:
        w = torch.as_tensor(weights)
        if not (w.is_complex() or w.is_floating_point()):
            raise TypeError(f"Diagonal: weights must be a real or complex floating tensor, got {w.dtype}")
        if w.ndim == 0 or w.numel() == 0:
            raise ValueError(f"Diagonal: weights must be a non-empty array, got shape {tuple(w.shape)}")
        if not bool(torch.isfinite(torch.view_as_real(w.to(torch.complex128))).all()):
            raise ValueError("Diagonal: weights contain NaN or Inf")
        shape = tuple(w.shape)
        super().__init__(shape, shape, tuple(f"dim_{i}" for i in range(len(shape))), dtype=dtype, device=device)
        self.weights = w.to(device=self.device, dtype=dtype)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weights * x

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.weights.conj() * y

    def normal_diagonal(self) -> torch.Tensor:
        return self.weights.abs() ** 2

    def opnorm(self, iters: int = 100, tol: float = 1e-6, seed: int = 0) -> float:
        return float(self.weights.abs().max())
