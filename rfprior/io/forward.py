"""The forward operators of a measurement set: :func:`operator_from` (one frame), :func:`operators_from` (a sequence).

Both take a loaded Dataset, a validated :class:`~rfprior.io.schema.Record` or a file path. Missing
entries (``valid``) restrict an operator to the measured ones (``op.restrict(valid)``); the operator
itself is the modality's (:meth:`~rfprior.modalities.Modality.build_operator`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import xarray as xr

from .. import modalities
from ..files.errors import FormatError
from .layout import record_from_dataset
from .measurements import read_record
from .schema import Record

__all__ = ["operator_from", "operators_from"]


def _record(source: Any) -> tuple[str, Record]:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source), read_record(source)
    if isinstance(source, Record):
        return "<record>", source
    if isinstance(source, xr.Dataset):
        return source.encoding.get("source", "<dataset>"), record_from_dataset(source)[2]
    raise TypeError(f"dataset must be an xarray.Dataset, a Record or a path, got {type(source).__name__}")


def _build(source: str, m: modalities.Modality, geometry: dict[str, Any], dtype: torch.dtype, device: Any) -> Any:
    try:
        return m.build_operator(geometry, dtype=dtype, device=device)
    except ValueError as exc:  # a geometry the format accepts but the operator does not
        raise FormatError(source, "/geometry", f"a geometry the operator rejects ({exc})", "a valid geometry") from None


def _pair(op: Any, values: np.ndarray, valid: np.ndarray | None, dtype: torch.dtype) -> tuple[Any, torch.Tensor]:
    if tuple(values.shape) != op.out_shape:  # pragma: no cover - guarded by validation
        raise ValueError(f"measurements of shape {tuple(values.shape)} do not match the operator's {op.out_shape}")
    if valid is not None:
        op = op.restrict(torch.as_tensor(valid))
        values = values[valid]
    return op, torch.as_tensor(np.ascontiguousarray(values)).to(device=op.device, dtype=dtype)


def operator_from(
    dataset: xr.Dataset | Record | str | os.PathLike[str],
    *,
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str | None = None,
) -> tuple[Any, torch.Tensor]:
    """The forward operator and the measurement tensor of a loaded Dataset, a validated Record or a file path.

    Returns
    -------
    op : LinearOperator
        ``MIMORadar``, ``PartialFourier`` or ``DiffractionTomography`` with ``dtype``/``device``;
        when some entries were not measured (a ``valid`` variable), that operator
        restricted to the measured ones (``op.restrict(valid)``: ``out_shape (K,)``,
        ``dims ("sample",)``, ``op.op`` the full operator, ``op.index`` the flat indices).
    y : complex tensor of shape ``op.out_shape`` (``dtype``, ``device``): the measured values

    Raises
    ------
    FormatError
        The source is a sequence (use :func:`operators_from`), or its geometry is one the operator rejects.
    """
    source, rec = _record(dataset)
    if rec.frames is not None:
        raise FormatError(
            source, "/measurements", f"a sequence of {rec.frames} frames (dims {list(rec.dims)})",
            "a single frame for operator_from (rfprior.io.operators_from gives one operator per frame)",
        )  # fmt: skip
    op = _build(source, modalities.get(rec.modality), rec.geometry, dtype, device)
    return _pair(op, rec.measurements, rec.valid, dtype)


def operators_from(
    source: xr.Dataset | Record | str | os.PathLike[str],
    *,
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str | None = None,
) -> tuple[list[Any], list[torch.Tensor]]:
    """One forward operator and measurement tensor per frame of a sequence (a loaded Dataset, Record or path).

    Frame ``f``'s operator is built from its geometry (the shared one, with frame ``f``'s sampling
    where it differs per frame, e.g. a partial-Fourier mask ``(F, H, W)``), restricted to the
    measured entries where the frame has missing ones, as :func:`operator_from` does for one frame.
    Each distinct operator is built once: frames with the same geometry and sampling share the
    operator object (and frames with the same missing entries its restriction). A single-frame
    source gives one-element lists (``[op], [y]`` of :func:`operator_from`).

    Returns
    -------
    ops : list of LinearOperator, one per frame
    ys : list of complex tensors, ``ys[f]`` of shape ``ops[f].out_shape`` (``dtype``, ``device``)
    """
    src, rec = _record(source)
    m = modalities.get(rec.modality)
    if rec.frames is None:
        op, y = _pair(_build(src, m, rec.geometry, dtype, device), rec.measurements, rec.valid, dtype)
        return [op], [y]
    built: dict[Any, Any] = {}
    ops: list[Any] = []
    ys: list[torch.Tensor] = []
    for f, g in enumerate(m.frame_geometries(rec.geometry, rec.frames)):
        key = tuple(np.ascontiguousarray(g[k]).tobytes() for k in m.frame_fields if k in g)
        if key not in built:
            built[key] = _build(src, m, g, dtype, device)
        op, values = built[key], m.frame_values(rec.measurements[f], g)
        if rec.valid is not None and not rec.valid[f].all():  # frames with the same gaps share the restriction
            valid = rec.valid[f]
            rkey = (key, valid.tobytes())
            if rkey not in built:
                built[rkey] = op.restrict(torch.as_tensor(valid))
            op, values = built[rkey], values[valid]
        if tuple(values.shape) != op.out_shape:  # pragma: no cover - guarded by validation
            raise ValueError(f"frame {f}: measurements {values.shape} do not match the operator's {op.out_shape}")
        ops.append(op)
        ys.append(torch.as_tensor(np.ascontiguousarray(values)).to(device=op.device, dtype=dtype))
    return ops, ys
