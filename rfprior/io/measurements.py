"""Measurement files (HDF5) ⇄ ``xarray.Dataset``, and the operator built from them.

File layout (docs/design.md §6, ``rfprior_format = 1``)::

    /                     attrs: rfprior_format = 1, modality, [noise_sigma], [snr_db], [description]
    /measurements         complex data, attr dims (axis names)
    /geometry/<field>     SI units — mimo: tx (N_T, 2), rx (N_R, 2), frequencies (Hz), x, z, [spreading]
                                     partial_fourier: mask (H, W) bool
                                     diffraction_tomography: angles (rad), wavelength, medium_index,
                                     pixel_size, [detector_distance = 0], [shape (H, W)]
    /valid                optional bool, the shape of /measurements (mimo, diffraction_tomography):
                          false = not measured; NaN in /measurements marks the same
    /truth                optional complex image, attr dims

A sequence file carries a ``frame`` axis: ``/measurements`` dims ``("frame", *one frame's dims)``
(partial Fourier with one mask per frame: ``("frame", "ky", "kx")``, 0 outside each frame's mask),
``/valid`` the same, ``/truth`` ``("frame", row, col)``, optional ``/geometry/times`` (s, one per
frame, strictly increasing); the geometry is shared by all frames except the per-frame sampling
(partial Fourier: ``/geometry/mask`` ``(F, H, W)``).

See ``data/README.md`` for the accepted complex layouts and MATLAB notes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xarray as xr

from .. import modalities
from ..files.atomic import atomic_path
from ..files.checks import MISSING, Checker
from ..files.errors import FormatError
from ..files.hdf5 import open_hdf5, read_array, read_attr, read_dims
from ..modalities.frames import FRAME, TIMES
from .layout import record_from_dataset, to_dataset
from .schema import Record, check_modality, validate

__all__ = ["FORMAT_VERSION", "dataset_of", "load", "read_record", "save_dataset", "save_measurements"]

#: The measurement-file format version this module reads and writes.
FORMAT_VERSION = 1


def _read_raw(p: Path) -> dict[str, Any]:
    """The raw fields of measurement file ``p`` (format and modality checked), for :func:`validate`."""
    chk = Checker(p)
    with open_hdf5(p) as f:
        fmt = read_attr(f, "rfprior_format")
        if fmt is None:
            raise chk.fail("@rfprior_format", MISSING, f"{FORMAT_VERSION} (the format version)")
        if isinstance(fmt, bool) or not isinstance(fmt, (int, float, str)) or str(fmt).strip() not in ("1", "1.0"):
            raise chk.fail(
                "@rfprior_format", repr(fmt), f"{FORMAT_VERSION} (the only format version this rfprior reads)"
            )
        m = check_modality(chk, read_attr(f, "modality"))
        if "measurements" not in f:
            raise chk.fail("/measurements", MISSING, "a complex dataset")
        measurements = read_array(f, "/measurements", p)
        dims = read_dims(f["measurements"], p, "/measurements")
        group = f.get("geometry")
        if not isinstance(group, h5py.Group):
            raise chk.fail("/geometry", MISSING if group is None else "a dataset", "a group of geometry fields")
        geometry = {
            key: read_array(f, f"/geometry/{key}", p) for key in (*m.fields, *m.optional_fields, TIMES) if key in group
        }
        valid = read_array(f, "/valid", p) if "valid" in f else None
        truth = truth_dims = None
        if "truth" in f:
            truth = read_array(f, "/truth", p)
            truth_dims = read_dims(f["truth"], p, "/truth")
        return {
            "modality": m.name,
            "measurements": measurements,
            "geometry": geometry,
            "dims": dims,
            "truth": truth,
            "truth_dims": truth_dims,
            "valid": valid,
            "noise_sigma": read_attr(f, "noise_sigma"),
            "snr_db": read_attr(f, "snr_db"),
            "description": read_attr(f, "description", ""),
            "extra": {k: read_attr(f, k) for k in f.attrs if k not in _RESERVED},
        }


def load(path: str | os.PathLike[str]) -> xr.Dataset:
    """Read and validate a measurement file.

    Returns
    -------
    xarray.Dataset
        ``measurements`` (complex, dims ``("tx", "rx", "freq")``, ``("sample",)`` or
        ``("angle", "detector")``) with SI coordinates; the geometry as coordinates
        and variables — mimo: ``freq`` (Hz), ``tx_x``/``tx_z``/``rx_x``/``rx_z`` (m),
        ``x``/``z`` (m), ``spreading``; partial Fourier: ``mask (y, x)`` and the
        sample positions ``ky``/``kx`` (grid indices, row-major order of the mask);
        diffraction tomography: ``angle`` (rad), ``detector``/``y``/``x`` (m, origin
        at index ``n // 2``), ``wavelength``, ``medium_index``, ``pixel_size``,
        ``detector_distance``; and ``truth`` (dims ``("z", "x")`` for mimo, else
        ``("y", "x")``) when the file has one; ``valid`` (bool, the measurement dims)
        when some entries were not measured (those are NaN in ``measurements``; the
        file marks them by NaN or by a boolean ``/valid``). A sequence file adds a leading
        ``frame`` dimension (coordinate ``frame`` = 0 … F−1, and ``times`` in s when the file
        has ``/geometry/times``) to ``measurements``, ``valid`` and ``truth``; partial Fourier
        with one mask per frame gives ``measurements`` and ``mask`` as ``(frame, ky, kx)``
        (the full grid, 0 outside each frame's mask). Attributes: ``rfprior_format``,
        ``modality``, ``description`` and, when known, ``noise_sigma``, ``snr_db``.
        ``encoding["source"]`` holds the path.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    FormatError
        Anything malformed: not HDF5, unknown modality or format version, a missing
        field, wrong shapes, non-finite values (other than NaN marking an unmeasured
        mimo/tomography entry), no measured entry at all, bad frequencies or mask.
    """
    rec = read_record(path)
    return dataset_of(rec, path)


def read_record(path: str | os.PathLike[str]) -> Record:
    """Read and validate a measurement file into a :class:`~rfprior.io.schema.Record` (one read, one validation).

    What :func:`load` does short of building the Dataset; the file's extra root attributes are in
    ``Record.attrs``. Raises as :func:`load`.
    """
    p = Path(path)
    try:
        raw = _read_raw(p)
    except (FormatError, FileNotFoundError):
        raise
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, UnicodeError) as exc:
        # h5py reports corrupt metadata (overwritten or truncated bytes) with many exception types
        raise FormatError(
            p, "<file>", f"corrupt HDF5 structure ({type(exc).__name__}: {exc})", "a complete, readable HDF5 file"
        ) from None
    extra = raw.pop("extra")
    rec = validate(p, **raw)
    rec.attrs = extra  # e.g. what an importer recorded (rfprior convert)
    return rec


def dataset_of(rec: Record, source: str | os.PathLike[str] | None = None) -> xr.Dataset:
    """The Dataset :func:`load` returns for a validated record (``encoding["source"]`` = ``source``)."""
    ds = to_dataset(rec)
    ds.attrs.update(rec.attrs)
    if source is not None:
        ds.encoding["source"] = str(source)
    return ds


def save_dataset(path: str | os.PathLike[str], dataset: xr.Dataset, *, force: bool = False) -> Path:
    """Write a Dataset laid out as :func:`load` returns (e.g. from :func:`rfprior.io.read_fresnel`) atomically.

    The geometry, measurements, ``valid``, ``truth`` and the format's attributes are
    validated as by :func:`save_measurements`; other root attributes (strings, numbers,
    numeric arrays) are kept.
    """
    if not isinstance(dataset, xr.Dataset):
        raise TypeError(f"dataset must be an xarray.Dataset, got {type(dataset).__name__}")
    modality, geometry, rec = record_from_dataset(dataset)
    a = dataset.attrs
    truth = None
    if "truth" in dataset.data_vars:
        image_dims = modalities.get(modality).image_dims
        truth = dataset["truth"].transpose(*((FRAME, *image_dims) if rec.frames else image_dims)).values
    extra = {k: v for k, v in a.items() if k not in _RESERVED}
    return save_measurements(
        path,
        modality,
        rec.measurements,
        geometry,
        dims=rec.dims,
        truth=truth,
        valid=rec.valid,
        noise_sigma=a.get("noise_sigma"),
        snr_db=a.get("snr_db"),
        description=a.get("description", ""),
        force=force,
        attrs=extra,
    )


def _write(path: Path, rec: Record) -> None:
    opts = {"track_times": False}
    m = modalities.get(rec.modality)
    with h5py.File(path, "w") as f:
        f.attrs["rfprior_format"] = np.int64(FORMAT_VERSION)
        f.attrs["modality"] = rec.modality
        f.attrs["description"] = rec.description
        if rec.noise_sigma is not None:
            f.attrs["noise_sigma"] = np.float64(rec.noise_sigma)
        if rec.snr_db is not None:
            f.attrs["snr_db"] = np.float64(rec.snr_db)
        d = f.create_dataset("measurements", data=rec.measurements, **opts)
        d.attrs["dims"] = np.array(rec.dims, dtype=h5py.string_dtype())
        if rec.valid is not None:
            d = f.create_dataset("valid", data=rec.valid, **opts)
            d.attrs["dims"] = np.array(rec.dims, dtype=h5py.string_dtype())
        g = f.create_group("geometry")
        for key, unit in m.fields.items():
            d = g.create_dataset(key, data=m.encode_field(key, rec.geometry[key]), **opts)
            d.attrs["units"] = unit
        if rec.geometry.get(TIMES) is not None:
            d = g.create_dataset(TIMES, data=np.asarray(rec.geometry[TIMES], dtype=np.float64), **opts)
            d.attrs["units"] = "s"
        if rec.truth is not None:
            d = f.create_dataset("truth", data=rec.truth, **opts)
            image_dims = m.image_dims if rec.frames is None else (FRAME, *m.image_dims)
            d.attrs["dims"] = np.array(image_dims, dtype=h5py.string_dtype())


def save_measurements(
    path: str | os.PathLike[str],
    modality: str,
    measurements: Any,
    geometry: dict[str, Any],
    *,
    truth: Any = None,
    valid: Any = None,
    times: Any = None,
    dims: Any = None,
    noise_sigma: float | None = None,
    snr_db: float | None = None,
    description: str = "",
    force: bool = False,
    attrs: dict[str, Any] | None = None,
) -> Path:
    """Validate and write a measurement file atomically.

    Parameters
    ----------
    path : output file (``.h5``); its directory must exist
    modality : ``"mimo"``, ``"partial_fourier"`` or ``"diffraction_tomography"``
    measurements : complex array or tensor of shape ``op.out_shape`` — mimo
        ``(N_T, N_R, N_f)``; partial Fourier ``(K,)`` (kept samples in row-major
        order of the mask) or the full grid ``(H, W)`` (samples are taken at the
        mask); tomography ``(N_angles, N_det)``. **A sequence**: one axis more in front,
        ``(F, *one frame)`` (partial Fourier with one mask per frame ``(F, H, W)``: the
        full grid ``(F, H, W)``, values outside each frame's mask ignored and stored as 0)
    geometry : dict of the fields listed in the module docstring (SI units); for a sequence
        shared by all frames, except a partial-Fourier ``mask`` ``(F, H, W)`` (one per frame)
    truth : optional complex image ``(H, W)`` (the operator's input); ``(F, H, W)`` for a sequence
    valid : optional boolean array of the measurements' shape (mimo, diffraction
        tomography): false marks an entry that was not measured. NaN in
        ``measurements`` marks one too; the file stores both (NaN and ``/valid``).
    times : a sequence's frame times in s ``(F,)``, strictly increasing (stored as
        ``/geometry/times``); ``geometry["times"]`` is the same field (give one of them)
    dims : the axis names of ``measurements`` (default: the canonical order, a sequence
        recognised by one axis more); e.g. ``("frame", "sample")`` for partial-Fourier samples
        whose frame count happens to equal the mask's height
    noise_sigma : noise σ per real/imaginary component, if known
    snr_db : ``10 log10(‖Ax‖² / E‖n‖²)``, if known
    force : replace an existing file
    attrs : extra root attributes (e.g. what an importer did: calibration, source
        file); names must not clash with the format's own. Values: str, numbers or
        numeric arrays.

    Raises
    ------
    FormatError
        An invalid field (same checks as :func:`load`); nothing is written.
    FileExistsError
        ``path`` exists and ``force`` is false.
    """
    p = Path(path)
    geometry = dict(geometry)
    if times is not None:
        if geometry.get(TIMES) is not None:
            raise FormatError(f"{p} (writing)", f"/geometry/{TIMES}", "times given twice (times= and geometry)", "one")
        geometry[TIMES] = times
    if dims is not None:
        dims = (dims,) if isinstance(dims, str) else tuple(dims)
    rec = validate(
        f"{p} (writing)",
        modality,
        measurements,
        geometry,
        dims=dims,
        truth=truth,
        valid=valid,
        noise_sigma=noise_sigma,
        snr_db=snr_db,
        description=description,
    )
    extra = _extra_attrs(f"{p} (writing)", attrs)
    with atomic_path(p, force=force) as tmp:
        _write(tmp, rec)
        if extra:
            with h5py.File(tmp, "a") as f:
                for k, v in extra.items():
                    f.attrs[k] = v
    return p


_RESERVED = ("rfprior_format", "modality", "description", "noise_sigma", "snr_db")


def _extra_attrs(source: str, attrs: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (attrs or {}).items():
        if not isinstance(k, str) or not k or k in _RESERVED:
            raise FormatError(source, f"@{k}", "a reserved or empty attribute name", f"a name other than {_RESERVED}")
        if isinstance(v, str):
            out[k] = v
        elif isinstance(v, (bool, int, float, np.number)) or (
            isinstance(v, np.ndarray) and v.dtype.kind in "biuf"
        ):
            out[k] = np.asarray(v)
        else:
            raise FormatError(source, f"@{k}", f"a value of type {type(v).__name__}", "a string, number or array")
    return out
