"""A human-readable summary of a loaded measurement Dataset (``rfprior inspect``)."""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from .. import modalities
from ..modalities.frames import FRAME, TIMES

__all__ = ["describe"]


def describe(ds: xr.Dataset, path: str | os.PathLike[str] | None = None) -> str:
    """Summarise a Dataset returned by :func:`rfprior.io.load`: modality, shapes, geometry, noise."""
    m = ds.attrs.get("modality", "?")
    src = path if path is not None else ds.encoding.get("source", "<dataset>")
    y = ds["measurements"]
    lines = [f"{os.fspath(src)}: rfprior measurement file (format {ds.attrs.get('rfprior_format', '?')}), modality {m}"]
    if FRAME in y.dims:
        n = y.sizes[FRAME]
        lines.append(f"  measurements  {dict(y.sizes)}  {y.dtype}  ({n} frames of {y.size // max(n, 1)} entries)")
        lines.append("  frames        " + _frames(ds, n))
    else:
        lines.append(f"  measurements  {dict(y.sizes)}  {y.dtype}  (M = {y.size} complex samples)")
    if m in modalities.names():
        lines += modalities.get(m).describe(ds)
    if "valid" in ds.variables:
        v = ds["valid"].values
        what = "each frame's operator is restricted to its" if FRAME in ds["valid"].dims else (
            f"the operator is restricted to the {int(v.sum())}")
        lines.append(f"  missing       {int((~v).sum())} of {v.size} entries not measured ({(~v).mean():.1%}); "
                     f"{what} measured")
    sigma, snr = ds.attrs.get("noise_sigma"), ds.attrs.get("snr_db")
    noise = [f"σ = {sigma:.4g} per component" if sigma is not None else "σ unknown"]
    if snr is not None:
        noise.append(f"SNR {snr:.1f} dB")
    lines.append("  noise         " + ", ".join(noise))
    lines.append("  truth         " + (f"{dict(ds['truth'].sizes)}" if "truth" in ds else "none"))
    if ds.attrs.get("description"):
        lines.append(f"  description   {ds.attrs['description']}")
    return "\n".join(lines)


def _frames(ds: xr.Dataset, n: int) -> str:
    """``"3, t = 0 s … 0.2 s (Δt = 0.1 s)"`` (the frame count and the time span when the file has times)."""
    if TIMES not in ds.variables:
        return f"{n} (no frame times)"
    t = np.asarray(ds[TIMES].values, dtype=float)
    text = f"{n}, t = {t[0]:.4g} s … {t[-1]:.4g} s (span {t[-1] - t[0]:.4g} s"
    if n > 1:
        d = np.diff(t)
        step = f"Δt = {d[0]:.4g} s" if np.allclose(d, d[0]) else f"Δt {d.min():.4g}–{d.max():.4g} s"
        text += f", {step}"
    return text + ")"
