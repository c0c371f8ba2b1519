"""Per-modality views of a validated :class:`~rfprior.io.schema.Record`.

The ``xarray.Dataset`` layout returned by :func:`rfprior.io.load` (:func:`to_dataset`,
and back: :func:`record_from_dataset`) and the forward operator of a geometry
(:func:`build_operator`). The format's rules and :func:`validate` are
:mod:`rfprior.io.schema`; their names are importable from here as well.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

from .checks import Checker
from .schema import FIELDS, IMAGE_DIMS, MISSING_OK, MODALITIES, Record, check_modality, validate

__all__ = [
    "MISSING_OK",
    "MODALITIES",
    "Record",
    "validate",
    "to_dataset",
    "geometry_from_dataset",
    "record_from_dataset",
    "valid_from_dataset",
    "build_operator",
]


def _grid(n: int, step: float) -> np.ndarray:
    return (np.arange(n) - n // 2) * step


def to_dataset(rec: Record) -> xr.Dataset:
    """The ``xarray.Dataset`` view of a record (see :func:`rfprior.io.load`)."""
    g, m = rec.geometry, rec.modality
    dims = MODALITIES[m]
    coords: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if m == "mimo":
        coords = {
            "freq": ("freq", g["frequencies"], {"units": "Hz"}),
            "tx_x": ("tx", g["tx"][:, 0], {"units": "m"}),
            "tx_z": ("tx", g["tx"][:, 1], {"units": "m"}),
            "rx_x": ("rx", g["rx"][:, 0], {"units": "m"}),
            "rx_z": ("rx", g["rx"][:, 1], {"units": "m"}),
            "x": ("x", g["x"], {"units": "m", "long_name": "cross-range"}),
            "z": ("z", g["z"], {"units": "m", "long_name": "range"}),
        }
        data["spreading"] = ((), g["spreading"])
    elif m == "partial_fourier":
        h, w = g["mask"].shape
        flat = np.flatnonzero(g["mask"])
        coords = {
            "ky": ("sample", flat // w, {"units": "grid index", "note": f"DC at ky = {h // 2}"}),
            "kx": ("sample", flat % w, {"units": "grid index", "note": f"DC at kx = {w // 2}"}),
        }
        data["mask"] = (("y", "x"), g["mask"])
    else:
        h, w = g["shape"]
        p = g["pixel_size"]
        coords = {
            "angle": ("angle", g["angles"], {"units": "rad"}),
            "detector": ("detector", _grid(g["detector_size"], p), {"units": "m"}),
            "y": ("y", _grid(h, p), {"units": "m"}),
            "x": ("x", _grid(w, p), {"units": "m"}),
        }
        for key in ("wavelength", "medium_index", "pixel_size", "detector_distance"):
            data[key] = ((), g[key], {"units": FIELDS[m][key]})
    data["measurements"] = (dims, rec.measurements)
    if rec.valid is not None:
        data["valid"] = (dims, rec.valid, {"long_name": "measured entries (false: not measured, NaN in measurements)"})
    if rec.truth is not None:
        data["truth"] = (IMAGE_DIMS[m], rec.truth)
    attrs: dict[str, Any] = {"rfprior_format": 1, "modality": m, "description": rec.description}
    if rec.noise_sigma is not None:
        attrs["noise_sigma"] = rec.noise_sigma
    if rec.snr_db is not None:
        attrs["snr_db"] = rec.snr_db
    return xr.Dataset(data, coords=coords, attrs=attrs)


def geometry_from_dataset(ds: xr.Dataset) -> tuple[str, dict[str, Any], np.ndarray]:
    """``(modality, geometry, measurements)`` from a Dataset laid out as :func:`to_dataset` does.

    Unmeasured entries (a ``valid`` variable, or NaN) are NaN in ``measurements``;
    :func:`valid_from_dataset` gives the mask.
    """
    modality, geometry, rec = record_from_dataset(ds)
    return modality, geometry, rec.measurements


def valid_from_dataset(ds: xr.Dataset) -> np.ndarray | None:
    """The boolean mask of measured entries (operator axis order), or ``None`` when all are measured."""
    return record_from_dataset(ds)[2].valid


def record_from_dataset(ds: xr.Dataset) -> tuple[str, dict[str, Any], Record]:
    """``(modality, geometry, validated Record)`` of a Dataset laid out as :func:`to_dataset` does."""
    chk = Checker(ds.encoding.get("source", "<dataset>"))
    modality = check_modality(chk, ds.attrs.get("modality"))
    dims = MODALITIES[modality]

    def var(name: str) -> np.ndarray:
        if name not in ds.variables:
            raise chk.fail(
                name, "nothing (the variable is missing)", f"a {modality} dataset as returned by rfprior.io.load"
            )
        return ds[name].values

    if "measurements" not in ds.data_vars:
        var("measurements")
    y = ds["measurements"]
    if modality == "mimo":
        g = {
            "tx": np.stack((var("tx_x"), var("tx_z")), axis=1),
            "rx": np.stack((var("rx_x"), var("rx_z")), axis=1),
            "frequencies": var("freq"),
            "x": var("x"),
            "z": var("z"),
            "spreading": var("spreading") if "spreading" in ds.variables else False,
        }
    elif modality == "partial_fourier":
        h, w = var("mask").shape
        flat = var("ky").astype(np.int64) * w + var("kx").astype(np.int64)
        if len(np.unique(flat)) != flat.size or (flat < 0).any() or (flat >= h * w).any():
            raise chk.fail(
                "ky/kx", "repeated or out-of-grid sample positions", f"distinct positions on the {h}×{w} grid"
            )
        mask = np.zeros(h * w, dtype=bool)
        mask[flat] = True
        order = np.argsort(flat)
        g = {"mask": mask.reshape(h, w)}
        return modality, g, Record(modality, chk.finite("measurements", y.values[order]), g)
    else:
        g = {
            "angles": var("angle"),
            **{k: float(var(k)) for k in ("wavelength", "medium_index", "pixel_size", "detector_distance")},
            "shape": (ds.sizes["y"], ds.sizes["x"]) if "y" in ds.sizes and "x" in ds.sizes else None,
        }
        if g["shape"] is None:
            g.pop("shape")
    if set(y.dims) != set(dims):
        raise chk.fail("measurements", f"dims {y.dims}", f"dims {dims}")
    values = y.transpose(*dims).values
    valid = None
    if "valid" in ds.variables:
        v = ds["valid"]
        if set(v.dims) != set(dims):
            raise chk.fail("valid", f"dims {v.dims}", f"dims {dims}")
        valid = v.transpose(*dims).values
    rec = validate(chk.source, modality, values, g, valid=valid)
    return modality, rec.geometry, rec


def build_operator(
    modality: str,
    geometry: dict[str, Any],
    *,
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str | None = None,
):
    """The forward operator of a validated geometry (as in :attr:`Record.geometry`)."""
    g = geometry
    if modality == "partial_fourier":
        from operators import PartialFourier

        return PartialFourier(torch.as_tensor(np.asarray(g["mask"], dtype=bool)), dtype=dtype, device=device)
    if modality == "mimo":
        from operators.mimo import MIMORadar

        return MIMORadar(
            g["tx"],
            g["rx"],
            g["frequencies"],
            g["x"],
            g["z"],
            spreading=g.get("spreading", False),
            dtype=dtype,
            device=device,
        )
    if modality == "diffraction_tomography":
        from operators.tomography import DiffractionTomography

        return DiffractionTomography(
            g["angles"],
            tuple(g["shape"]),
            g["wavelength"],
            g["medium_index"],
            g["pixel_size"],
            g.get("detector_distance", 0.0),
            g.get("detector_size"),
            dtype=dtype,
            device=device,
        )
    raise ValueError(f"modality must be one of {sorted(MODALITIES)}, got {modality!r}")
