"""The ``xarray.Dataset`` view of a validated :class:`~rfprior.io.schema.Record`, and back.

:func:`to_dataset` is what :func:`rfprior.io.load` returns; :func:`record_from_dataset`
validates such a Dataset again (e.g. one built or edited in memory) into a Record. The
per-forward-model coordinates and variables are the :class:`~rfprior.modalities.Modality`'s
(:meth:`~rfprior.modalities.Modality.coords`, :meth:`~rfprior.modalities.Modality.geometry_from_dataset`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

from .. import modalities
from ..files.checks import Checker
from ..modalities.frames import FRAME, TIMES
from .schema import Record, check_modality, validate

__all__ = ["build_operator", "geometry_from_dataset", "record_from_dataset", "to_dataset"]


def to_dataset(rec: Record) -> xr.Dataset:
    """The ``xarray.Dataset`` view of a record (see :func:`rfprior.io.load`)."""
    m = modalities.get(rec.modality)
    image_dims: tuple[str, ...] = m.image_dims
    if rec.frames is None:
        coords, data = m.coords(rec.geometry, rec.measurements)
    else:
        coords, data = m.sequence_coords(rec.geometry, rec.measurements)
        coords = {**coords, FRAME: (FRAME, np.arange(rec.frames), {"long_name": "frame index"})}
        if rec.geometry.get(TIMES) is not None:
            coords[TIMES] = (FRAME, np.asarray(rec.geometry[TIMES]), {"units": "s", "long_name": "frame time"})
        image_dims = (FRAME, *image_dims)
    data = dict(data)
    data["measurements"] = (rec.dims, rec.measurements)
    if rec.valid is not None:
        data["valid"] = (
            rec.dims,
            rec.valid,
            {"long_name": "measured entries (false: not measured, NaN in measurements)"},
        )
    if rec.truth is not None:
        data["truth"] = (image_dims, rec.truth)
    attrs: dict[str, Any] = {"rfprior_format": 1, "modality": m.name, "description": rec.description}
    if rec.noise_sigma is not None:
        attrs["noise_sigma"] = rec.noise_sigma
    if rec.snr_db is not None:
        attrs["snr_db"] = rec.snr_db
    return xr.Dataset(data, coords=coords, attrs=attrs)


def record_from_dataset(ds: xr.Dataset) -> tuple[str, dict[str, Any], Record]:
    """``(modality, geometry, validated Record)`` of a Dataset laid out as :func:`to_dataset` does.

    Unmeasured entries (a ``valid`` variable, or NaN) are NaN in ``Record.measurements`` and
    marked in ``Record.valid``. The truth and the noise attributes are not part of the record.
    """
    chk = Checker(ds.encoding.get("source", "<dataset>"))
    m = check_modality(chk, ds.attrs.get("modality"))

    def var(name: str) -> np.ndarray:
        if name not in ds.variables:
            expected = f"a {m.name} dataset as returned by rfprior.io.load"
            raise chk.fail(name, "nothing (the variable is missing)", expected)
        return ds[name].values

    if "measurements" not in ds.data_vars:
        var("measurements")
    g = m.geometry_from_dataset(ds, var)
    if FRAME not in ds["measurements"].dims:
        values, valid = m.measurements_from_dataset(ds, g, chk)
        dims = m.measurement_dims
    else:
        values, valid, dims = m.sequence_from_dataset(ds, g, chk)
        if TIMES in ds.variables:
            g[TIMES] = ds[TIMES].values
    rec = validate(chk.source, m.name, values, g, dims=dims, valid=valid)
    return m.name, rec.geometry, rec


def geometry_from_dataset(ds: xr.Dataset) -> tuple[str, dict[str, Any], np.ndarray]:
    """``(modality, geometry, measurements)`` from a Dataset laid out as :func:`to_dataset` does."""
    modality, geometry, rec = record_from_dataset(ds)
    return modality, geometry, rec.measurements


def build_operator(
    modality: str,
    geometry: dict[str, Any],
    *,
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str | None = None,
):
    """The forward operator of a validated geometry (:meth:`rfprior.modalities.Modality.build_operator`)."""
    return modalities.get(modality).build_operator(geometry, dtype=dtype, device=device)
