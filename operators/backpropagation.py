r"""Devaney's filtered backpropagation — the classical inverse of 2-D diffraction tomography.

Inverting the Fourier diffraction theorem over the disk ``|K| ≤ √2 k_m`` (each point
covered twice by a full 2π of angles, Jacobian ``k_m |k_x| / γ``) gives

.. math::

    f(r) = -\frac{i k_m}{4\pi^2} \sum_j \Delta\phi_j \int_{|k_x|<k_m} |k_x|\,
           e^{-i(\gamma - k_m) l_D}\, \frac{\hat U_j(k_x)}{u_0(l_D)}\,
           e^{i (k_x t_\perp + (\gamma - k_m) s_0)\cdot r}\, dk_x ,

the formula of Devaney (1982) and of ``odtbrain.backpropagate_2d``. The last factor is
the type-1 (adjoint) transform of :class:`~operators.tomography.DiffractionTomography`,
evaluated exactly at every pixel (no rotation or interpolation). Hence

    ``FBP(u) = A_padᴴ · ifft(fft(pad(u)) · k_m |k_x| γ Δφ_j / (π Δ))``

with ``A_pad`` the operator on the zero-padded detector (padding suppresses the
wrap-around of the ramp filter).

API: :func:`filtered_backpropagation` takes the geometry;
:func:`filtered_backpropagation_op` takes it from an existing operator. Both return the
object function ``f`` (complex, m⁻²) on the operator's grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .tomography import DiffractionTomography

__all__ = ["filtered_backpropagation", "filtered_backpropagation_op", "angle_weights"]


def angle_weights(angles: np.ndarray) -> np.ndarray:
    """Quadrature weights ``Δφ_j`` (radians, summing to 2π) for possibly uneven angles.

    Each angle gets half the distance to its neighbours, with the angles wrapped
    modulo π (opposite views carry similar information; the convention of
    ``odtbrain.util.compute_angle_weights_1d``); the weights are then scaled to sum to 2π.
    Uniform angles over 2π give ``2π/A`` each.
    """
    a = np.mod(np.asarray(angles, dtype=np.float64) - np.min(angles), np.pi)
    uniq, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    if uniq.size == 1:
        return np.full(a.size, 2 * np.pi / a.size)
    da = np.mod(np.roll(uniq, -1) - np.roll(uniq, 1), np.pi) / counts
    da = np.where(da == 0, np.pi / uniq.size, da)  # degenerate: two distinct angles π apart
    w = da[inverse]
    return w / w.sum() * 2 * np.pi


@torch.no_grad()
def filtered_backpropagation(
    data: torch.Tensor | np.ndarray,
    angles: Sequence[float] | np.ndarray | torch.Tensor,
    shape: tuple[int, int],
    wavelength: float,
    medium_index: float,
    pixel_size: float,
    detector_distance: float = 0.0,
    *,
    pad_factor: float = 2.0,
    weight_angles: bool = True,
    method: str = "auto",
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Filtered backpropagation of Born or Rytov data.

    Parameters
    ----------
    data : complex ``(..., A, N)``
        Normalised scattered field ``u_B/u0`` (Born, :func:`~operators.tomography.born_data`)
        or Rytov phase (:func:`~operators.tomography.rytov_data`, refocused to
        ``detector_distance = 0``) on a detector of ``N`` samples with pitch ``pixel_size``.
    angles : ``(A,)`` radians — should cover 2π (the classical full-rotation setting).
    shape : output grid ``(H, W)``
    wavelength, medium_index, pixel_size, detector_distance : as in
        :class:`~operators.tomography.DiffractionTomography` (SI units).
    pad_factor : the detector is zero-padded to ``ceil(pad_factor · N)`` before filtering.
    weight_angles : use :func:`angle_weights` (else ``Δφ = 2π/A``).
    method : NUDFT path of the backpropagation (``"auto"``, ``"nufft"``, ``"dense"``).
    device : torch device (default: that of ``data``).

    Returns
    -------
    torch.Tensor
        Object function ``f`` in m⁻², complex ``(..., H, W)`` (complex128 for
        double-precision data, else complex64).
    """
    t = torch.as_tensor(data) if isinstance(data, np.ndarray) else data
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"filtered_backpropagation: data must be a torch.Tensor or numpy array, got {type(data)}")
    if t.ndim < 2:
        raise ValueError(f"filtered_backpropagation: data must have shape (..., A, N), got {tuple(t.shape)}")
    if not (t.is_complex() or t.is_floating_point()):
        raise TypeError(f"filtered_backpropagation: data must be complex or real floating, got {t.dtype}")
    dtype = torch.complex128 if t.dtype in (torch.complex128, torch.float64) else torch.complex64
    n = t.shape[-1]
    pad = float(pad_factor)
    if not math.isfinite(pad) or pad < 1:
        raise ValueError(f"filtered_backpropagation: pad_factor must be ≥ 1, got {pad_factor}")
    n_pad = max(n, math.ceil(pad * n))
    op = DiffractionTomography(
        angles, shape, wavelength, medium_index, pixel_size, detector_distance, n_pad,
        method=method, dtype=dtype, device=device if device is not None else t.device,
    )
    if t.shape[-2] != op.out_shape[0]:
        raise ValueError(
            f"filtered_backpropagation: data has {t.shape[-2]} angles (axis -2) but angles has {op.out_shape[0]}"
        )
    return _fbp(op, t.to(device=op.device, dtype=dtype), weight_angles)


def _fbp(op: DiffractionTomography, data: torch.Tensor, weight_angles: bool) -> torch.Tensor:
    n, n_pad = data.shape[-1], op.detector_size
    left = n_pad // 2 - n // 2
    u = torch.nn.functional.pad(data, (left, n_pad - n - left))
    kx = op.detector_frequencies
    prop = op.propagating
    gamma = np.sqrt(np.where(prop, op.k_m**2 - kx**2, 0.0))
    dphi = angle_weights(op.angles) if weight_angles else np.full(op.out_shape[0], 2 * np.pi / op.out_shape[0])
    filt = (op.k_m / (math.pi * op.pixel_size)) * dphi[:, None] * (np.abs(kx) * gamma * prop)[None, :]
    filt_t = torch.from_numpy(filt).to(device=op.device, dtype=op.real_dtype)
    spec = torch.fft.fftshift(torch.fft.fft(torch.fft.ifftshift(u, dim=-1), dim=-1), dim=-1) * filt_t
    v = torch.fft.fftshift(torch.fft.ifft(torch.fft.ifftshift(spec, dim=-1), dim=-1), dim=-1)
    return op.adjoint(v)


@torch.no_grad()
def filtered_backpropagation_op(
    op: DiffractionTomography, data: torch.Tensor, *, pad_factor: float = 2.0, weight_angles: bool = True
) -> torch.Tensor:
    """Filtered backpropagation with the geometry, dtype, device and NUDFT path of ``op``.

    ``data`` has shape ``(..., *op.out_shape)``; returns ``f`` in m⁻², ``(..., *op.in_shape)``.
    """
    if not isinstance(op, DiffractionTomography):
        raise TypeError(f"filtered_backpropagation_op: op must be a DiffractionTomography, got {type(op).__name__}")
    data = op._check(torch.as_tensor(data).to(op.device), op.out_shape, "filtered_backpropagation_op")
    return filtered_backpropagation(
        data, op.angles, op.in_shape, op.wavelength, op.medium_index, op.pixel_size, op.detector_distance,
        pad_factor=pad_factor, weight_angles=weight_angles, method=op.method, device=op.device,
    )
