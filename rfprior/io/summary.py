"""A human-readable summary of a loaded measurement Dataset (``rfprior inspect``)."""

from __future__ import annotations

import math
import os

import numpy as np
import xarray as xr

__all__ = ["describe"]

_C = 299_792_458.0


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


def describe(ds: xr.Dataset, path: str | os.PathLike[str] | None = None) -> str:
    """Summarise a Dataset returned by :func:`rfprior.io.load`: modality, shapes, geometry, noise."""
    m = ds.attrs.get("modality", "?")
    src = path if path is not None else ds.encoding.get("source", "<dataset>")
    y = ds["measurements"]
    lines = [
        f"{os.fspath(src)}: rfprior measurement file (format {ds.attrs.get('rfprior_format', '?')}), modality {m}",
        f"  measurements  {dict(y.sizes)}  {y.dtype}  (M = {y.size} complex samples)",
    ]
    if m == "mimo":
        f = ds["freq"].values
        step = float(np.median(np.diff(f))) if f.size > 1 else 0.0
        band = f[-1] - f[0] + step
        lines += [
            f"  array         {ds.sizes['tx']} TX × {ds.sizes['rx']} RX",
            f"  frequencies   {_si(f[0], 'Hz')} – {_si(f[-1], 'Hz')}, {f.size} steps, B = {_si(band, 'Hz')}"
            + (f", range resolution c/2B = {_si(_C / (2 * band), 'm')}" if band > 0 else ""),
            f"  image grid    x {_si(float(ds.x[0]), 'm')} … {_si(float(ds.x[-1]), 'm')} ({ds.sizes['x']}), "
            f"z {_si(float(ds.z[0]), 'm')} … {_si(float(ds.z[-1]), 'm')} ({ds.sizes['z']})",
        ]
    elif m == "partial_fourier":
        mask = ds["mask"].values
        frac = float(mask.mean())
        lines.append(f"  mask          {mask.shape[0]}×{mask.shape[1]}, {frac:.1%} sampled ({1 / frac:.2f}×)")
    elif m == "diffraction_tomography":
        a = ds["angle"].values
        lines += [
            f"  angles        {a.size} from {math.degrees(a.min()):.1f}° to {math.degrees(a.max()):.1f}°",
            f"  optics        λ0 = {_si(float(ds.wavelength), 'm')}, n_m = {float(ds.medium_index):.4g}, "
            f"pixel {_si(float(ds.pixel_size), 'm')}, detector at {_si(float(ds.detector_distance), 'm')}",
            f"  image grid    {ds.sizes.get('y', '?')}×{ds.sizes.get('x', '?')}, "
            f"detector {ds.sizes['detector']} pixels",
        ]
    if "spreading" in ds.variables and m == "mimo":
        lines.append(f"  spreading     {ds['spreading'].values.item()}")
    if "valid" in ds.variables:
        v = ds["valid"].values
        lines.append(f"  missing       {int((~v).sum())} of {v.size} entries not measured ({(~v).mean():.1%}); "
                     f"the operator is restricted to the {int(v.sum())} measured")
    sigma, snr = ds.attrs.get("noise_sigma"), ds.attrs.get("snr_db")
    noise = [f"σ = {sigma:.4g} per component" if sigma is not None else "σ unknown"]
    if snr is not None:
        noise.append(f"SNR {snr:.1f} dB")
    lines.append("  noise         " + ", ".join(noise))
    lines.append("  truth         " + (f"{dict(ds['truth'].sizes)}" if "truth" in ds else "none"))
    if ds.attrs.get("description"):
        lines.append(f"  description   {ds.attrs['description']}")
    return "\n".join(lines)
