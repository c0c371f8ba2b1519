r"""Partial Fourier (k-space) sampling: ``y = S F x``.

``F`` is the centred orthonormal 2-D DFT (``ifftshift → fft2(norm="ortho") →
fftshift``), ``S`` keeps the k-space samples where ``mask`` is true, in row-major
order. Measurements are the kept samples only: ``out_shape == (K,)`` with
``K = mask.sum()``; zeros are never carried as data.
"""

from __future__ import annotations

import torch

from .base import LinearOperator

__all__ = ["PartialFourier", "centered_fft2", "centered_ifft2"]


def centered_fft2(x: torch.Tensor) -> torch.Tensor:
    """Centred unitary 2-D DFT over the last two axes (DC at ``(H//2, W//2)``)."""
    dims = (-2, -1)
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=dims), norm="ortho"), dim=dims)


def centered_ifft2(k: torch.Tensor) -> torch.Tensor:
    """Inverse (= adjoint) of :func:`centered_fft2`."""
    dims = (-2, -1)
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(k, dim=dims), norm="ortho"), dim=dims)


class PartialFourier(LinearOperator):
    """Centred orthonormal 2-D DFT followed by sampling on a boolean mask.

    Parameters
    ----------
    mask : bool tensor or array, shape ``(H, W)``
        True where k-space is sampled. DC sits at ``(H//2, W//2)``.
    dtype : complex64 or complex128
    device : torch device

    Notes
    -----
    Shapes: forward: ``(..., H, W) → (..., K)``; adjoint: ``(..., K) → (..., H, W)``;
    ``dims == ("sample",)``. The k-space position of sample ``m`` is
    ``(ky[m], kx[m]) = op.sample_positions[m]`` (integer grid indices).
    """

    def __init__(
        self,
        mask: torch.Tensor,
        *,
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
    ) -> None:
        m = torch.as_tensor(mask)
        if m.dtype != torch.bool:
            raise TypeError(f"PartialFourier: mask must be a boolean tensor, got dtype {m.dtype}")
        if m.ndim != 2:
            raise ValueError(f"PartialFourier: mask must have shape (H, W), got {tuple(m.shape)}")
        if min(m.shape) < 1:
            raise ValueError(f"PartialFourier: mask must be non-empty, got shape {tuple(m.shape)}")
        k = int(m.sum())
        if k == 0:
            raise ValueError("PartialFourier: mask selects no k-space samples (all False)")
        super().__init__(tuple(m.shape), (k,), ("sample",), dtype=dtype, device=device)
        self.mask = m.to(self.device)
        self.index = m.reshape(-1).nonzero().reshape(-1).to(self.device)

    @property
    def sample_positions(self) -> torch.Tensor:
        """Integer ``(ky, kx)`` grid indices of each sample, shape ``(K, 2)``."""
        w = self.in_shape[1]
        return torch.stack((self.index // w, self.index % w), dim=1)

    @property
    def sampling_fraction(self) -> float:
        """Fraction of the k-space grid that is sampled (``1 / acceleration``)."""
        return self.size_out / self.size_in

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        k = centered_fft2(x)
        return k.reshape(*k.shape[:-2], -1)[..., self.index]

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        batch = y.shape[:-1]
        full = y.new_zeros(*batch, self.size_in)
        full = full.index_copy(full.ndim - 1, self.index, y)
        return centered_ifft2(full.reshape(*batch, *self.in_shape))

    def zero_fill(self, y: torch.Tensor) -> torch.Tensor:
        """Scatter samples ``(..., K)`` onto the full k-space grid ``(..., H, W)`` (zeros elsewhere)."""
        y = self._check(y, self.out_shape, "zero_fill")
        batch = y.shape[:-1]
        full = y.new_zeros(*batch, self.size_in)
        return full.index_copy(full.ndim - 1, self.index, y).reshape(*batch, *self.in_shape)

    def normal_diagonal(self) -> torch.Tensor:
        return torch.full(self.in_shape, self.sampling_fraction, dtype=self.real_dtype, device=self.device)

    def opnorm(self, iters: int = 100, tol: float = 1e-6, seed: int = 0) -> float:
        """Exactly 1: a unitary transform followed by a non-empty selection."""
        return 1.0
