"""Per-modality rules of the measurement format.

For each modality: the geometry fields and their checks, the measurement axes,
the ``xarray.Dataset`` layout returned by :func:`rfprior.io.load`, and how the
operator is built. :func:`validate` is shared by reading and writing, so a file
written by rfprior always reads back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from .checks import Checker, as_numpy
from .hdf5 import to_complex

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

#: Measurement axes of each modality, in the operator's ``out_shape`` order.
MODALITIES: dict[str, tuple[str, ...]] = {
    "mimo": ("tx", "rx", "freq"),
    "partial_fourier": ("sample",),
    "diffraction_tomography": ("angle", "detector"),
}
IMAGE_DIMS = {"mimo": ("z", "x"), "partial_fourier": ("y", "x"), "diffraction_tomography": ("y", "x")}
#: Geometry fields written to files, with their units.
FIELDS: dict[str, dict[str, str]] = {
    "mimo": {"tx": "m", "rx": "m", "frequencies": "Hz", "x": "m", "z": "m", "spreading": "1"},
    "partial_fourier": {"mask": "1"},
    "diffraction_tomography": {
        "angles": "rad",
        "wavelength": "m",
        "medium_index": "1",
        "pixel_size": "m",
        "detector_distance": "m",
        "shape": "pixels",
    },
}
#: Modalities whose files may mark unmeasured entries (NaN in /measurements or a boolean /valid).
MISSING_OK = ("mimo", "diffraction_tomography")
_SPREADING = ("none", "spherical", "cylindrical", "hankel")
_FULL_GRID = ("ky", "kx")  # partial Fourier data may also be given on the full k-space grid


@dataclass
class Record:
    """A validated measurement set: canonical axis order, clean numpy geometry."""

    modality: str
    measurements: np.ndarray
    geometry: dict[str, Any]
    truth: np.ndarray | None = None
    #: boolean mask of the measured entries (shape of ``measurements``); ``None`` = all measured
    valid: np.ndarray | None = None
    noise_sigma: float | None = None
    snr_db: float | None = None
    description: str = ""

    @property
    def image_shape(self) -> tuple[int, int]:
        g = self.geometry
        if self.modality == "mimo":
            return len(g["z"]), len(g["x"])
        if self.modality == "partial_fourier":
            return tuple(g["mask"].shape)  # type: ignore[return-value]
        return tuple(g["shape"])  # type: ignore[return-value]


def check_modality(chk: Checker, modality: Any) -> str:
    if not isinstance(modality, str) or modality not in MODALITIES:
        raise chk.fail("@modality", repr(modality), f"one of {sorted(MODALITIES)}")
    return modality


def _spreading(chk: Checker, value: Any) -> str:
    """``/geometry/spreading``: a boolean (false = none, true = spherical) or one of the names in :data:`_SPREADING`."""
    field = "/geometry/spreading"
    if isinstance(value, str):
        name = value
    else:
        arr = np.asarray(value.decode() if isinstance(value, bytes) else value)
        if arr.dtype.kind in "SUO" and arr.size == 1:
            item = arr.reshape(-1)[0]
            name = item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
        else:
            return "spherical" if chk.flag(field, value) else "none"
    if name.strip().lower() not in _SPREADING:
        raise chk.fail(field, repr(name), f"a boolean or one of {', '.join(_SPREADING)}")
    return name.strip().lower()


def _valid_mask(
    chk: Checker, modality: str, arr: np.ndarray, valid: Any, dims: tuple[str, ...] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Measured entries: NaN in ``arr`` and/or the optional ``/valid`` (same axes as ``/measurements``).

    Returns ``(arr with NaN + NaN·j at unmeasured entries, mask or None when all are measured)``.
    """
    nan = np.isnan(arr.real) | np.isnan(arr.imag)
    if modality not in MISSING_OK:
        if valid is not None:
            raise chk.fail("/valid", "a mask of measured entries", "no /valid (partial Fourier: use /geometry/mask)")
        return arr, None
    if valid is None:
        mask = ~nan
    else:
        v = as_numpy(valid)
        if v.dtype.kind in "iu" and np.isin(np.unique(v), (0, 1)).all():
            v = v.astype(bool)
        if v.dtype.kind != "b":
            raise chk.fail("/valid", f"data of type {v.dtype}", "a boolean mask (true/false or 0/1) of measured ones")
        if dims is not None and v.ndim == len(dims):
            v = chk.axes("/valid", v, dims, MODALITIES[modality])
        chk.shape("/valid", v, arr.shape, "the shape of /measurements")
        both = v & nan
        if both.any():
            i = np.unravel_index(int(np.flatnonzero(both)[0]), arr.shape)
            raise chk.fail(
                "/measurements", f"NaN at index {i}, an entry /valid marks as measured", "finite measured entries"
            )
        mask = v
    if not mask.any():
        raise chk.fail("/valid" if valid is not None else "/measurements", "no measured entry", "at least one")
    arr = arr.copy()
    arr[~mask] = complex(np.nan, np.nan)
    chk.finite("/measurements", arr[mask])
    return arr, None if mask.all() else mask


def _geometry(chk: Checker, modality: str, g: dict[str, Any]) -> dict[str, Any]:
    def need(key: str, what: str) -> Any:
        return chk.require(g, key, f"/geometry/{key}", what)

    if modality == "mimo":
        return {
            "tx": chk.points("/geometry/tx", need("tx", "(N_T, 2) array"), "transmitter positions", "N_T"),
            "rx": chk.points("/geometry/rx", need("rx", "(N_R, 2) array"), "receiver positions", "N_R"),
            "frequencies": chk.vector(
                "/geometry/frequencies",
                need("frequencies", "frequencies in Hz"),
                "frequencies in Hz",
                positive=True,
                increasing=True,
            ),
            "x": chk.vector(
                "/geometry/x", need("x", "cross-range grid in metres"), "cross-range grid in m", monotonic=True
            ),
            "z": chk.vector("/geometry/z", need("z", "range grid in metres"), "range grid in m", monotonic=True),
            "spreading": _spreading(chk, g.get("spreading", False)),
        }
    if modality == "partial_fourier":
        return {"mask": chk.mask("/geometry/mask", need("mask", "a boolean (H, W) mask"))}
    angles = chk.vector("/geometry/angles", need("angles", "illumination angles in rad"), "angles in rad")
    wrapped = np.sort(np.mod(angles, 2 * np.pi))
    if angles.size > 1 and np.diff(np.concatenate([wrapped, wrapped[:1] + 2 * np.pi])).min() < 1e-9:
        raise chk.fail("/geometry/angles", "duplicate angles (equal modulo 2π)", "distinct illumination angles")
    out: dict[str, Any] = {
        "angles": angles,
        "wavelength": chk.scalar(
            "/geometry/wavelength", need("wavelength", "vacuum wavelength in m"), "wavelength in m", positive=True
        ),
        "medium_index": chk.scalar(
            "/geometry/medium_index", need("medium_index", "refractive index n_m"), "refractive index", positive=True
        ),
        "pixel_size": chk.scalar(
            "/geometry/pixel_size", need("pixel_size", "pixel size in m"), "pixel size in m", positive=True
        ),
        "detector_distance": chk.scalar(
            "/geometry/detector_distance", g.get("detector_distance", 0.0), "detector distance in m"
        ),
    }
    if out["detector_distance"] < 0:
        raise chk.fail("/geometry/detector_distance", f"{out['detector_distance']:g}", "a distance ≥ 0 in metres")
    if g.get("shape") is not None:
        out["shape"] = chk.shape2("/geometry/shape", g["shape"])
    if g.get("detector_size") is not None:
        out["detector_size"] = int(chk.scalar("/geometry/detector_size", g["detector_size"], "detector pixels"))
    return out


def _measurements(chk: Checker, modality: str, arr: np.ndarray, dims: tuple[str, ...] | None, g: dict) -> np.ndarray:
    f = "/measurements"
    if modality == "partial_fourier":
        mask = g["mask"]
        full = dims == _FULL_GRID or (dims is None and arr.ndim == 2)
        if full:
            chk.shape(f, arr, mask.shape, "(H, W) of /geometry/mask")
            return arr[mask]
        arr = chk.axes(f, arr, dims, MODALITIES[modality])
        chk.shape(f, arr, (int(mask.sum()),), "(K,) with K = number of true entries of /geometry/mask")
        return arr
    arr = chk.axes(f, arr, dims, MODALITIES[modality])
    if modality == "mimo":
        chk.shape(f, arr, (len(g["tx"]), len(g["rx"]), len(g["frequencies"])), "(N_T, N_R, N_f)")
        return arr
    if arr.shape[0] != len(g["angles"]) or arr.shape[1] < 2:
        raise chk.fail(f, f"shape {arr.shape}", f"shape ({len(g['angles'])}, N_det) = (N_angles, N_det ≥ 2)")
    if g.setdefault("detector_size", arr.shape[1]) != arr.shape[1]:
        raise chk.fail("/geometry/detector_size", str(g["detector_size"]), f"{arr.shape[1]} (axis 1 of /measurements)")
    return arr


def validate(
    source: str | os.PathLike[str],
    modality: Any,
    measurements: Any,
    geometry: dict[str, Any],
    *,
    dims: tuple[str, ...] | None = None,
    truth: Any = None,
    truth_dims: tuple[str, ...] | None = None,
    valid: Any = None,
    noise_sigma: Any = None,
    snr_db: Any = None,
    description: Any = "",
) -> Record:
    """Check every field; returns a clean :class:`Record` or raises :class:`~rfprior.io.FormatError`."""
    chk = Checker(source)
    modality = check_modality(chk, modality)
    if not isinstance(geometry, dict):
        raise chk.fail("/geometry", type(geometry).__name__, "a group (dict) of geometry fields")
    geom = _geometry(chk, modality, geometry)
    arr, dims = to_complex(
        as_numpy(measurements),
        dims,
        (1, 2) if modality == "partial_fourier" else (len(MODALITIES[modality]),),
        chk.source,
        "/measurements",
    )
    arr = _measurements(chk, modality, arr, dims, geom)
    arr, mask = _valid_mask(chk, modality, arr, valid, dims)
    if mask is None:
        arr = chk.finite("/measurements", arr)
    t = None
    if truth is not None:
        t, tdims = to_complex(as_numpy(truth), truth_dims, (2,), chk.source, "/truth", allow_real=True)
        t = chk.axes("/truth", t, tdims, IMAGE_DIMS[modality])
        if modality == "diffraction_tomography":
            geom.setdefault("shape", t.shape)
    if modality == "diffraction_tomography":
        geom.setdefault("shape", (geom["detector_size"],) * 2)
    rec = Record(modality, np.ascontiguousarray(arr), geom, valid=mask)
    chk.image_size(
        {"mimo": "/geometry/x, /geometry/z", "partial_fourier": "/geometry/mask"}.get(modality, "/geometry/shape"),
        rec.image_shape,
    )
    if t is not None:
        chk.shape("/truth", t, rec.image_shape, f"{IMAGE_DIMS[modality]} image")
        rec.truth = np.ascontiguousarray(chk.finite("/truth", t))
    if noise_sigma is not None:
        rec.noise_sigma = chk.scalar("@noise_sigma", noise_sigma, "noise σ per real/imag component")
        if rec.noise_sigma < 0:
            raise chk.fail("@noise_sigma", f"{rec.noise_sigma:g}", "σ ≥ 0 (per real/imaginary component)")
    if snr_db is not None:
        rec.snr_db = chk.scalar("@snr_db", snr_db, "SNR in dB")
    if not isinstance(description, str):
        raise chk.fail("@description", type(description).__name__, "a string")
    rec.description = description
    return rec


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
