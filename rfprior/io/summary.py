"""A human-readable summary of a loaded measurement Dataset (``rfprior inspect``)."""

from __future__ import annotations

import os

import xarray as xr

from .. import modalities

__all__ = ["describe"]

def describe(ds: xr.Dataset, path: str | os.PathLike[str] | None = None) -> str:
    """Summarise a Dataset returned by :func:`rfprior.io.load`: modality, shapes, geometry, noise."""
    m = ds.attrs.get("modality", "?")
    src = path if path is not None else ds.encoding.get("source", "<dataset>")
    y = ds["measurements"]
    lines = [
        f"{os.fspath(src)}: rfprior measurement file (format {ds.attrs.get('rfprior_format', '?')}), modality {m}",
        f"  measurements  {dict(y.sizes)}  {y.dtype}  (M = {y.size} complex samples)",
    ]
    if m in modalities.names():
        lines += modalities.get(m).describe(ds)
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
