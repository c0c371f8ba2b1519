r"""Measurement simulation at a requested SNR: ``y = A x + n``.

Noise is circular complex Gaussian with per-component standard deviation σ
(``E|n|² = 2σ²``). Given an SNR in dB,

.. math::  \mathrm{SNR} = 10\log_{10}\frac{\|Ax\|^2}{E\|n\|^2},\qquad E\|n\|^2 = 2M\sigma^2
           \;\Rightarrow\; \sigma = \sqrt{\|Ax\|^2 / (2M\,10^{\mathrm{SNR}/10})}

with ``M`` the number of complex measurements. Both σ and the SNR are stored.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch
import xarray as xr

from .. import modalities
from ..io import save_measurements, to_dataset, validate
from ..phantoms import generator

__all__ = ["simulate", "default_scene", "noise_sigma_for_snr"]

_UNSET: Any = object()


def noise_sigma_for_snr(clean: torch.Tensor, snr_db: float) -> float:
    """Per-component σ giving ``10 log10(‖clean‖² / (2Mσ²)) = snr_db``."""
    power = float((clean.abs().double() ** 2).sum())
    return math.sqrt(power / (2 * clean.numel() * 10 ** (snr_db / 10)))


def default_scene(modality: str, geometry: dict[str, Any], seed: int = 0, kind: str | None = None) -> torch.Tensor:
    """The default truth of a modality on ``geometry`` (complex128 ``(H, W)``).

    :meth:`rfprior.modalities.Modality.default_scene`: mimo :func:`~rfprior.phantoms.mimo_scene`
    (``kind`` ``"mixed"`` by default); partial Fourier :func:`~rfprior.phantoms.complex_phantom`
    (``"shepp_logan"``); tomography the object function of :func:`~rfprior.phantoms.dielectric_phantom` (m⁻²).
    """
    return modalities.get(modality).default_scene(geometry, seed, kind)


def simulate(
    modality: str,
    *,
    size: int = 64,
    snr_db: float | None = _UNSET,
    seed: int = 0,
    scene: Any = None,
    path: str | os.PathLike[str] | None = None,
    noise_sigma: float | None = None,
    description: str | None = None,
    force: bool = False,
    **geometry_overrides: Any,
) -> xr.Dataset:
    """Simulate a measurement set, optionally writing it as a measurement file.

    Parameters
    ----------
    modality : a registered modality name (``"mimo"``, ``"partial_fourier"``, ``"diffraction_tomography"``, …)
    size : image side in pixels (the default geometry is ``size × size``)
    snr_db : requested SNR in dB (default 20); ``None`` for noiseless data
    seed : seeds the scene, the mask (partial Fourier) and the noise (separate streams)
    scene : ``None`` (the modality's default scene), a scene kind (``"points"``,
        ``"extended"``, ``"mixed"``; ``"shepp_logan"``, ``"ellipses"``; ``"cell"``)
        or a complex array/tensor of the image shape (the operator's input)
    path : write the file there (with ``/truth``); ``force`` replaces an existing one
    noise_sigma : give σ instead of an SNR (then ``snr_db`` is computed and stored)
    **geometry_overrides : passed to :func:`default_geometry`

    Returns
    -------
    xarray.Dataset
        As :func:`rfprior.io.load` returns it (measurements complex64), with
        ``truth`` and the attributes ``noise_sigma`` (the σ used) and ``snr_db``.
    """
    m = modalities.get(modality)
    if noise_sigma is not None and snr_db is not _UNSET and snr_db is not None:
        raise ValueError("give either snr_db or noise_sigma, not both")
    snr = 20.0 if snr_db is _UNSET else snr_db
    geometry = m.default_geometry(size, seed=seed, **geometry_overrides)
    op = m.build_operator(geometry, dtype=torch.complex128)
    if scene is None or isinstance(scene, str):
        truth = m.default_scene(geometry, seed, scene)
    else:
        truth = torch.as_tensor(np.asarray(scene.detach().cpu() if hasattr(scene, "detach") else scene))
        if tuple(truth.shape) != op.in_shape:
            raise ValueError(f"scene must have the image shape {op.in_shape}, got {tuple(truth.shape)}")
        if not (truth.is_complex() or truth.is_floating_point()):
            raise TypeError(f"scene must be a real or complex floating array, got {truth.dtype}")
        if not torch.isfinite(truth).all():
            raise ValueError("scene holds NaN or Inf")
        truth = truth.to(torch.complex128)
    truth = truth.to(torch.complex64).to(torch.complex128)  # what is stored is what was simulated
    with torch.no_grad():
        clean = op.forward(truth)
    if noise_sigma is not None:
        sigma = float(noise_sigma)
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"noise_sigma must be finite and ≥ 0, got {noise_sigma!r}")
        power = float((clean.abs() ** 2).sum())
        snr = 10 * math.log10(power / (2 * clean.numel() * sigma**2)) if sigma > 0 and power > 0 else None
    elif snr is None:
        sigma = 0.0
    else:
        if not math.isfinite(float(snr)):
            raise ValueError(f"snr_db must be finite or None, got {snr_db!r}")
        sigma = noise_sigma_for_snr(clean, float(snr))
    g = generator(seed, 1)
    noise = torch.randn((2, *clean.shape), generator=g, dtype=torch.float64)
    y = clean + sigma * torch.complex(noise[0], noise[1])
    if description is None:
        what = scene if isinstance(scene, str) else ("custom" if scene is not None else "default")
        level = f"SNR {snr:.1f} dB" if snr is not None else "noiseless"
        description = f"simulated {modality}, {what} scene, {size}x{size}, {level}, seed {seed}"
    rec = validate(
        "<simulated>",
        modality,
        y.to(torch.complex64).numpy(),
        geometry,
        truth=truth.to(torch.complex64).numpy(),
        noise_sigma=sigma,
        snr_db=snr,
        description=description,
    )
    ds = to_dataset(rec)
    if path is not None:
        save_measurements(
            path,
            modality,
            rec.measurements,
            rec.geometry,
            truth=rec.truth,
            noise_sigma=sigma,
            snr_db=snr,
            description=description,
            force=force,
        )
        ds.encoding["source"] = os.fspath(path)
    return ds
