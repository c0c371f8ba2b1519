"""Elementary operators: identity and pixel-wise (diagonal) multiplication.

Both map an image to an image of the same shape (denoising, pixel masks, coil maps),
so by default every axis is declared **spatial** (``spatial_dims == dims``): a
spectral loss such as ``rfprior.DSPLoss`` then compares the image spectra, as in the
Deep Spectral Prior paper. Pass ``spatial=False`` when the operator acts on data
that are already spectral (e.g. k-space weights used on their own).

Composition keeps the meaning of the axes: ``P @ B`` with ``P`` pointwise (an
:class:`Identity` or :class:`Diagonal`) has the axes of ``B``'s measurements, so it
takes ``B``'s ``dims`` and ``spatial_dims`` (``Diagonal(w) @ PartialFourier`` stays
spectral); ``B @ P`` takes ``B``'s as every composition does. ``.H`` of a pointwise
operator is again pointwise with the same axes. ``restrict()`` gives a flat list of
samples with no spatial axes (see :meth:`operators.LinearOperator.restrict`).
"""

from __future__ import annotations

import torch

from .base import ComposedOperator, LinearOperator

__all__ = ["Identity", "Diagonal"]


class _Pointwise(LinearOperator):
    """Shared behaviour of operators that act pixel by pixel (``out_shape == in_shape``)."""

    def __init__(
        self, shape: tuple[int, ...], *, dtype: torch.dtype, device: torch.device | str | None, spatial: bool
    ) -> None:
        if not isinstance(spatial, bool):
            raise TypeError(f"{type(self).__name__}: spatial must be a bool, got {type(spatial).__name__}")
        dims = tuple(f"dim_{i}" for i in range(len(shape)))
        super().__init__(shape, shape, dims, dtype=dtype, device=device, spatial_dims=dims if spatial else ())

    @property
    def spatial(self) -> bool:
        """Whether the axes are declared spatial."""
        return bool(self.spatial_dims)

    def __matmul__(self, other: LinearOperator | torch.Tensor) -> LinearOperator | torch.Tensor:
        if isinstance(other, LinearOperator):
            return _PointwiseAfter(self, other)
        return super().__matmul__(other)


class _PointwiseAfter(ComposedOperator):
    """``P @ B`` for a pointwise ``P``: the axes (``dims``, ``spatial_dims``) are those of ``B``'s output."""

    def __init__(self, outer: LinearOperator, inner: LinearOperator) -> None:
        super().__init__(outer, inner)
        self.dims = inner.dims
        self.spatial_dims = inner.spatial_dims


class Identity(_Pointwise):
    """``I`` on images of ``shape``: ``(..., *shape) → (..., *shape)``.

    ``dims = ("dim_0", …)``; ``spatial_dims = dims`` unless ``spatial=False``.
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        *,
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
        spatial: bool = True,
    ) -> None:
        super().__init__(tuple(shape), dtype=dtype, device=device, spatial=spatial)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y

    @property
    def H(self) -> LinearOperator:  # noqa: N802 - mathematical notation
        """``Iᴴ = I`` (the operator itself)."""
        return self

    def opnorm(self, iters: int = 100, tol: float = 1e-6, seed: int = 0) -> float:
        return 1.0


class Diagonal(_Pointwise):
    """Multiplication by fixed complex weights ``w`` (shape = image shape), e.g. a coil map or a pixel mask.

    ``forward(x) = w ⊙ x``, ``adjoint(y) = conj(w) ⊙ y``. ``dims = ("dim_0", …)``;
    ``spatial_dims = dims`` unless ``spatial=False``.
    """

    def __init__(
        self,
        weights: torch.Tensor,
        *,
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
        spatial: bool = True,
    ) -> None:
        w = torch.as_tensor(weights)
        if not (w.is_complex() or w.is_floating_point()):
            raise TypeError(f"Diagonal: weights must be a real or complex floating tensor, got {w.dtype}")
        if w.ndim == 0 or w.numel() == 0:
            raise ValueError(f"Diagonal: weights must be a non-empty array, got shape {tuple(w.shape)}")
        if not bool(torch.isfinite(torch.view_as_real(w.to(torch.complex128))).all()):
            raise ValueError("Diagonal: weights contain NaN or Inf")
        super().__init__(tuple(w.shape), dtype=dtype, device=device, spatial=spatial)
        self.weights = w.to(device=self.device, dtype=dtype)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weights * x

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.weights.conj() * y

    @property
    def H(self) -> LinearOperator:  # noqa: N802 - mathematical notation
        """``diag(w)ᴴ = diag(conj w)``, with the same axes."""
        return Diagonal(self.weights.conj().resolve_conj(), dtype=self.dtype, device=self.device, spatial=self.spatial)

    def normal_diagonal(self) -> torch.Tensor:
        return self.weights.abs() ** 2

    def opnorm(self, iters: int = 100, tol: float = 1e-6, seed: int = 0) -> float:
        return float(self.weights.abs().max())
