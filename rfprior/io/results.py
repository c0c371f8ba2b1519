"""Result files: a reconstruction, its baseline, history and settings as NetCDF4/HDF5.

Written with xarray (``engine="h5netcdf"``) as plain NetCDF4 that any NetCDF or
HDF5 reader opens. **Complex images are stored as real arrays with a trailing
dimension** ``ri`` **of length 2 (real, imaginary)** — the convention that
nc-complex and other NetCDF tools recognise; :func:`load_result` turns them back
into complex variables.

Layout::

    image, final_image (+ backprojection, oracle_image when given)   (<row>, x, ri)
    spread (real; only for a mean of several fits)                   (<row>, x)
    <history variables>                                              (iteration)

A sequence result (images ``(F, H, W)``) writes them as ``(frame, <row>, x, ri)`` (``spread``
``(frame, <row>, x)``), with the source's ``frame``/``times`` coordinates when it has them, and
optional per-frame variables ``(frame,)`` (``save_result(..., frame_variables={...})``).
    attrs: rfprior_result_format = 1, rfprior_version, chosen_iteration, final_iteration,
           seed, interrupted (0/1), stop_reason, [sigma], scale, backtracks,
           [oracle_iteration, oracle_psnr, image_psnr], settings / choices / rule_summaries /
           history_attrs (JSON strings), source (measurement file path), [modality]
    group network_state (only with ``save_result(..., weights=True)``): one variable per
    entry of the prior's state_dict (attribute ``torch_dtype``); attrs ``keys``, ``prior``
    (JSON), ``output_scale``, ``iteration`` — a warm start for ``reconstruct(..., init=file)``
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .. import modalities
from .._version import __version__
from ..files.atomic import atomic_path
from ..files.attrs import to_json as _to_json
from ..files.checks import MISSING, Checker, as_numpy
from ..files.hdf5 import open_hdf5, read_attr
from ..modalities.frames import FRAME, TIMES
from ..weights import WEIGHTS_GROUP, load_weights, weights_dataset
from .measurements import load

__all__ = ["save_result", "load_result", "load_weights", "RESULT_FORMAT", "WEIGHTS_GROUP"]

#: The result-file format version.
RESULT_FORMAT = 1
_IMAGES = ("image", "final_image", "backprojection", "oracle_image", "spread")
_JSON_ATTRS = ("settings", "choices", "rule_summaries", "history_attrs")
_COMPLEX_LAYOUT = "complex variables carry a trailing dimension 'ri' of length 2: (real, imag)"


def _image(value: Any, name: str, dims: tuple[str, str]) -> tuple[tuple[str, ...], np.ndarray]:
    """A complex image ``(H, W)`` — or a sequence's ``(F, H, W)`` — split along a trailing ``ri`` axis."""
    arr = as_numpy(value)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be a 2-D image (H, W) or a sequence of images (F, H, W), got shape {arr.shape}")
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    real = np.float32 if arr.dtype in (np.complex64, np.float32) else np.float64
    arr = arr.astype(np.complex128)
    lead = (FRAME,) if arr.ndim == 3 else ()
    return (*lead, *dims, "ri"), np.stack((arr.real, arr.imag), axis=-1).astype(real)


def _frame_variables(ds: xr.Dataset, variables: Any) -> xr.Dataset:
    """Per-frame 1-D variables ``(frame,)``: one value per frame of the images (or of each other)."""
    if variables is None:
        return ds
    if not isinstance(variables, dict):
        raise TypeError(f"frame_variables must be a dict of name → array (F,), got {type(variables).__name__}")
    for name, value in variables.items():
        arr = as_numpy(value)
        if not isinstance(name, str) or not name or name in ds.variables or name == "ri":
            raise ValueError(f"frame_variables: {name!r} is not a free variable name of the result")
        if arr.ndim != 1 or arr.dtype.kind not in "biuf":
            found = f"shape {arr.shape}, dtype {arr.dtype}"
            raise ValueError(f"frame_variables[{name!r}] must be a real 1-D array (F,), got {found}")
        n = ds.sizes.get(FRAME)
        if n is not None and arr.size != n:
            raise ValueError(f"frame_variables[{name!r}] has {arr.size} values; the result has {n} frames")
        ds[name] = (FRAME, arr)
    return ds


def _source_info(source: Any) -> tuple[str, str | None, xr.Dataset | None]:
    if source is None:
        return "", None, None
    if isinstance(source, xr.Dataset):
        return str(source.encoding.get("source", "")), source.attrs.get("modality"), source
    if isinstance(source, (str, os.PathLike)):
        try:  # a readable measurement file also gives the image coordinates and the modality
            ds = load(source)
        except (OSError, ValueError):
            return os.fspath(source), None, None
        return os.fspath(source), ds.attrs.get("modality"), ds
    raise TypeError(f"source must be a path, an xarray.Dataset or None, got {type(source).__name__}")


def result_dataset(
    result: Any, *, backprojection: Any = None, source: Any = None, frame_variables: dict[str, Any] | None = None
) -> xr.Dataset:
    """The Dataset :func:`save_result` writes (complex images split along ``ri``; see :func:`save_result`)."""
    for name in ("image", "final_image", "chosen_iteration", "history", "settings", "seed", "stop_reason"):
        if not hasattr(result, name):
            raise TypeError(f"result has no attribute {name!r}; expected an rfprior Result")
    src_path, modality, src = _source_info(source)
    dims = modalities.get(modality).image_dims if modality in modalities.names() else ("y", "x")
    history = result.history if result.history is not None else xr.Dataset()
    if not isinstance(history, xr.Dataset):
        raise TypeError(f"result.history must be an xarray.Dataset, got {type(history).__name__}")
    history = history.rename({v: f"history_{v}" for v in history.data_vars if v in _IMAGES})
    ds = xr.Dataset(coords=history.coords)
    for v in history.data_vars:
        ds[v] = history[v].variable
    images = {"image": result.image, "final_image": result.final_image, "backprojection": backprojection}
    images["oracle_image"] = getattr(result, "oracle_image", None)
    for name, value in images.items():
        if value is not None:
            label = f"result.{name}" if name != "backprojection" else "backprojection"
            vdims, arr = _image(value, label, dims)
            if FRAME in ds.sizes and (FRAME not in vdims or arr.shape[0] != ds.sizes[FRAME]):
                found = f"shape {arr.shape[:-1]}"
                raise ValueError(f"{label}: {found}; the other images are a sequence of {ds.sizes[FRAME]} frames")
            if FRAME in vdims and any(FRAME not in ds[v].dims for v in images if v in ds.data_vars):
                raise ValueError(f"{label} is a sequence of {arr.shape[0]} frames; the other images are single frames")
            ds[name] = (vdims, arr)
    spread = getattr(result, "spread", None)
    if spread is not None:
        arr = as_numpy(spread)
        sdims = ds["image"].dims[:-1] if "image" in ds.data_vars else dims
        if arr.ndim != len(sdims) or arr.dtype.kind not in "biuf":
            raise ValueError(
                f"result.spread must be a real image with the axes {sdims} of result.image, "
                f"got shape {arr.shape}, dtype {arr.dtype}"
            )
        ds["spread"] = (sdims, arr)
    ds = _frame_variables(ds, frame_variables)
    if src is not None:
        for d in dims:
            if d in src.coords and src.sizes.get(d) == ds.sizes[d]:
                ds = ds.assign_coords({d: src[d].variable})
        if FRAME in ds.sizes and src.sizes.get(FRAME) == ds.sizes[FRAME]:
            for c in (FRAME, TIMES):
                if c in src.coords:
                    ds = ds.assign_coords({c: src[c].variable})
    sigma = getattr(result, "sigma", None)
    attrs: dict[str, Any] = {
        "rfprior_result_format": RESULT_FORMAT,
        "rfprior_version": __version__,
        "complex_layout": _COMPLEX_LAYOUT,
        "chosen_iteration": int(result.chosen_iteration),
        "final_iteration": int(getattr(result, "final_iteration", -1)),  # -1: not recorded
        "seed": int(result.seed),
        "interrupted": int(bool(getattr(result, "interrupted", False))),
        "stop_reason": str(result.stop_reason),
        "scale": float(getattr(result, "scale", 1.0)),
        "backtracks": int(getattr(result, "backtracks", 0)),
        "source": src_path,
    }
    if sigma is not None:
        attrs["sigma"] = float(sigma)
    if modality:
        attrs["modality"] = modality
    for name in ("oracle_iteration", "oracle_psnr", "image_psnr"):
        value = getattr(result, name, None)
        if value is not None:
            attrs[name] = int(value) if name == "oracle_iteration" else float(value)
    attrs["settings"] = _to_json(result.settings, "result.settings")
    attrs["choices"] = _to_json(getattr(result, "choices", {}), "result.choices")
    attrs["rule_summaries"] = _to_json(getattr(result, "rule_summaries", {}), "result.rule_summaries")
    attrs["history_attrs"] = _to_json(dict(history.attrs), "result.history.attrs")
    ds.attrs = attrs
    return ds


def save_result(
    path: str | os.PathLike[str],
    result: Any,
    *,
    backprojection: Any = None,
    source: Any = None,
    force: bool = False,
    weights: bool = False,
    frame_variables: dict[str, Any] | None = None,
) -> Path:
    """Write a reconstruction result atomically as NetCDF4/HDF5 (``.nc``).

    Parameters
    ----------
    path : output file; its directory must exist
    result : an :class:`rfprior.Result` (anything with its attributes); its ``image`` and
        ``final_image`` are ``(H, W)``, or ``(F, H, W)`` for a frame sequence (written with dims
        ``("frame", <row>, <col>, "ri")``)
    backprojection : optional complex image ``(H, W)`` (``(F, H, W)`` for a sequence), the classical baseline
    source : the measurement file's path or its loaded Dataset; the path is recorded
        and, when the file is readable, the image coordinates and modality too
    force : replace an existing file
    weights : also store the network at the chosen iteration (``result.weights``, a
        :class:`~rfprior.result.NetworkState`) in the group ``network_state``, so that
        ``reconstruct(..., init=path)`` / ``rfprior reconstruct --init path`` can warm-start
        from the file. Costs the prior's size (e.g. ≈ 0.4 MB for ``dip_small``).
    frame_variables : optional per-frame real 1-D variables, ``{name: array (F,)}`` (e.g. a
        ``frame_misfit``), written over the ``frame`` dimension; ``F`` must be the images' frame count

    Raises
    ------
    FileExistsError
        ``path`` exists and ``force`` is false.
    TypeError
        ``result`` lacks a Result attribute or its settings are not JSON-serialisable.
    ValueError
        ``weights=True`` but the result carries no network state.
    """
    ds = result_dataset(result, backprojection=backprojection, source=source, frame_variables=frame_variables)
    wds = None
    if weights:
        state = getattr(result, "weights", None)
        if state is None:
            raise ValueError("weights=True: result.weights is None (the result carries no network state)")
        wds = weights_dataset(state)
    with atomic_path(path, force=force) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
        if wds is not None:
            wds.to_netcdf(tmp, mode="a", group=WEIGHTS_GROUP, engine="h5netcdf")
    return Path(path)


def load_result(path: str | os.PathLike[str]) -> xr.Dataset:
    """Read a result file written by :func:`save_result`.

    Returns
    -------
    xarray.Dataset
        ``image``, ``final_image`` (and ``backprojection``, ``oracle_image`` when
        stored) as complex ``(row, x)`` variables — ``(frame, row, x)`` for a sequence, with
        its per-frame variables over ``frame`` — ``spread`` (real) for a mean of
        several fits, the history over ``iteration``,
        and the attributes with ``settings``/``choices``/``rule_summaries``/
        ``history_attrs`` decoded to dicts, ``interrupted`` to a bool and ``sigma``
        to a float or ``None``.

    Raises
    ------
    FormatError
        Not a result file, a missing field, or a malformed complex layout.
    """
    p = Path(path)
    chk = Checker(p)
    with open_hdf5(p) as f:
        fmt = read_attr(f, "rfprior_result_format")
    if fmt is None:
        raise chk.fail("@rfprior_result_format", MISSING, f"{RESULT_FORMAT} (an rfprior result file)")
    if isinstance(fmt, bool) or not isinstance(fmt, (int, float)) or fmt != RESULT_FORMAT:
        raise chk.fail("@rfprior_result_format", repr(fmt), f"{RESULT_FORMAT}")
    try:
        with xr.open_dataset(p, engine="h5netcdf") as raw:
            ds = raw.load()
    except (OSError, ValueError, KeyError) as exc:
        raise chk.fail("<file>", f"an unreadable NetCDF file ({exc})", "an rfprior result file") from None
    for name in ("image", "final_image"):
        if name not in ds.data_vars:
            raise chk.fail(name, MISSING, "a complex image with a trailing 'ri' dimension")
    for name in [v for v in ds.data_vars if "ri" in ds[v].dims]:
        v = ds[name]
        if v.dims[-1] != "ri" or v.sizes["ri"] != 2:
            raise chk.fail(name, f"dims {v.dims} of shape {v.shape}", "a trailing dimension 'ri' of length 2")
        ds[name] = v.isel(ri=0) + 1j * v.isel(ri=1)
        ds[name].attrs = v.attrs
    ds = ds.drop_dims("ri", errors="ignore")
    for name in ("chosen_iteration", "seed", "stop_reason", "rfprior_version", *_JSON_ATTRS):
        if name not in ds.attrs:
            raise chk.fail(f"@{name}", MISSING, "the attribute written by rfprior.io.save_result")
    for name in _JSON_ATTRS:
        try:
            ds.attrs[name] = json.loads(ds.attrs[name])
        except (TypeError, ValueError) as exc:
            raise chk.fail(f"@{name}", f"invalid JSON ({exc})", "a JSON object") from None
    ds.attrs["interrupted"] = bool(ds.attrs.get("interrupted", 0))
    sigma = ds.attrs.get("sigma")
    ds.attrs["sigma"] = None if sigma is None or not math.isfinite(float(sigma)) else float(sigma)
    for name, value in ds.attrs.items():
        if isinstance(value, np.generic):
            ds.attrs[name] = value.item()
    ds.encoding["source"] = str(p)
    return ds
