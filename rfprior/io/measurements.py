"""Measurement files (HDF5) ⇄ ``xarray.Dataset``, and the operator built from them.

File layout (docs/design.md §6, ``rfprior_format = 1``)::

    /                     attrs: rfprior_format = 1, modality, [noise_sigma], [snr_db], [description]
    /measurements         complex data, attr dims (axis names)
    /geometry/<field>     SI units — mimo: tx (N_T, 2), rx (N_R, 2), frequencies (Hz), x, z, [spreading]
                                     partial_fourier: mask (H, W) bool
                                     diffraction_tomography: angles (rad), wavelength, medium_index,
                                     pixel_size, [detector_distance = 0], [shape (H, W)]
    /truth                optional complex image, attr dims

See ``data/README.md`` for the accepted complex layouts and MATLAB notes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import xarray as xr

from .atomic import atomic_path
from .checks import MISSING, Checker
from .errors import FormatError
from .hdf5 import open_hdf5, read_array, read_attr, read_dims
from .modalities import (
    FIELDS,
    IMAGE_DIMS,
    MODALITIES,
    Record,
    build_operator,
    check_modality,
    geometry_from_dataset,
    to_dataset,
    validate,
)

__all__ = ["load", "save_measurements", "operator_from", "FORMAT_VERSION"]

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
        modality = check_modality(chk, read_attr(f, "modality"))
        if "measurements" not in f:
            raise chk.fail("/measurements", MISSING, "a complex dataset")
        measurements = read_array(f, "/measurements", p)
        dims = read_dims(f["measurements"], p, "/measurements")
        group = f.get("geometry")
        if not isinstance(group, h5py.Group):
            raise chk.fail("/geometry", MISSING if group is None else "a dataset", "a group of geometry fields")
        geometry = {
            key: read_array(f, f"/geometry/{key}", p) for key in (*FIELDS[modality], "detector_size") if key in group
        }
        truth = truth_dims = None
        if "truth" in f:
            truth = read_array(f, "/truth", p)
            truth_dims = read_dims(f["truth"], p, "/truth")
        return {
            "modality": modality,
            "measurements": measurements,
            "geometry": geometry,
            "dims": dims,
            "truth": truth,
            "truth_dims": truth_dims,
            "noise_sigma": read_attr(f, "noise_sigma"),
            "snr_db": read_attr(f, "snr_db"),
            "description": read_attr(f, "description", ""),
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
        ``("y", "x")``) when the file has one. Attributes: ``rfprior_format``,
        ``modality``, ``description`` and, when known, ``noise_sigma``, ``snr_db``.
        ``encoding["source"]`` holds the path.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    FormatError
        Anything malformed: not HDF5, unknown modality or format version, a missing
        field, wrong shapes, non-finite values, bad frequencies or mask.
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
    rec = validate(p, **raw)
    ds = to_dataset(rec)
    ds.encoding["source"] = str(p)
    return ds


def _write(path: Path, rec: Record) -> None:
    opts = {"track_times": False}
    with h5py.File(path, "w") as f:
        f.attrs["rfprior_format"] = np.int64(FORMAT_VERSION)
        f.attrs["modality"] = rec.modality
        f.attrs["description"] = rec.description
        if rec.noise_sigma is not None:
            f.attrs["noise_sigma"] = np.float64(rec.noise_sigma)
        if rec.snr_db is not None:
            f.attrs["snr_db"] = np.float64(rec.snr_db)
        d = f.create_dataset("measurements", data=rec.measurements, **opts)
        d.attrs["dims"] = np.array(MODALITIES[rec.modality], dtype=h5py.string_dtype())
        g = f.create_group("geometry")
        for key, unit in FIELDS[rec.modality].items():
            value = rec.geometry[key]
            if key == "shape":
                value = np.asarray(value, dtype=np.int64)
            elif np.asarray(value).dtype == bool:
                value = np.asarray(value, dtype=bool)
            else:
                value = np.asarray(value, dtype=np.float64)
            d = g.create_dataset(key, data=value, **opts)
            d.attrs["units"] = unit
        if rec.truth is not None:
            d = f.create_dataset("truth", data=rec.truth, **opts)
            d.attrs["dims"] = np.array(IMAGE_DIMS[rec.modality], dtype=h5py.string_dtype())


def save_measurements(
    path: str | os.PathLike[str],
    modality: str,
    measurements: Any,
    geometry: dict[str, Any],
    *,
    truth: Any = None,
    noise_sigma: float | None = None,
    snr_db: float | None = None,
    description: str = "",
    force: bool = False,
) -> Path:
    """Validate and write a measurement file atomically.

    Parameters
    ----------
    path : output file (``.h5``); its directory must exist
    modality : ``"mimo"``, ``"partial_fourier"`` or ``"diffraction_tomography"``
    measurements : complex array or tensor of shape ``op.out_shape`` — mimo
        ``(N_T, N_R, N_f)``; partial Fourier ``(K,)`` (kept samples in row-major
        order of the mask) or the full grid ``(H, W)`` (samples are taken at the
        mask); tomography ``(N_angles, N_det)``
    geometry : dict of the fields listed in the module docstring (SI units)
    truth : optional complex image ``(H, W)`` (the operator's input)
    noise_sigma : noise σ per real/imaginary component, if known
    snr_db : ``10 log10(‖Ax‖² / E‖n‖²)``, if known
    force : replace an existing file

    Raises
    ------
    FormatError
        An invalid field (same checks as :func:`load`); nothing is written.
    FileExistsError
        ``path`` exists and ``force`` is false.
    """
    p = Path(path)
    rec = validate(
        f"{p} (writing)",
        modality,
        measurements,
        dict(geometry),
        truth=truth,
        noise_sigma=noise_sigma,
        snr_db=snr_db,
        description=description,
    )
    with atomic_path(p, force=force) as tmp:
        _write(tmp, rec)
    return p


def operator_from(
    dataset: xr.Dataset | str | os.PathLike[str],
    *,
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str | None = None,
) -> tuple[Any, torch.Tensor]:
    """The forward operator and the measurement tensor of a loaded Dataset (or a file path).

    Returns
    -------
    op : LinearOperator
        ``MIMORadar``, ``PartialFourier`` or ``DiffractionTomography`` with ``dtype``/``device``.
    y : complex tensor of shape ``op.out_shape`` (``dtype``, ``device``)
    """
    if isinstance(dataset, (str, os.PathLike)):
        dataset = load(dataset)
    if not isinstance(dataset, xr.Dataset):
        raise TypeError(f"dataset must be an xarray.Dataset or a path, got {type(dataset).__name__}")
    modality, geometry, values = geometry_from_dataset(dataset)
    try:
        op = build_operator(modality, geometry, dtype=dtype, device=device)
    except ValueError as exc:  # a geometry the format accepts but the operator does not
        source = dataset.encoding.get("source", "<dataset>")
        raise FormatError(source, "/geometry", f"a geometry the operator rejects ({exc})", "a valid geometry") from None
    y = torch.as_tensor(np.ascontiguousarray(values)).to(device=op.device, dtype=dtype)
    if tuple(y.shape) != op.out_shape:  # pragma: no cover - guarded by validation
        raise ValueError(f"measurements of shape {tuple(y.shape)} do not match the operator's {op.out_shape}")
    return op, y
