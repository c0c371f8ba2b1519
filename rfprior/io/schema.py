"""Per-modality rules of the measurement format: fields, axes, checks.

For each modality: the geometry fields and their units and checks, the measurement
axes and the image axes. :func:`validate` is shared by reading and writing, so a file
written by rfprior always reads back; it returns a clean :class:`Record`. The
``xarray.Dataset`` layout of a record and its operator are :mod:`rfprior.io.modalities`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import Checker, as_numpy
from .hdf5 import to_complex

__all__ = ["FIELDS", "IMAGE_DIMS", "MISSING_OK", "MODALITIES", "Record", "check_modality", "validate"]

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
