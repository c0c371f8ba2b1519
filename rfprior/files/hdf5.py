"""Low-level HDF5 reading: open a file safely, decode attributes, arrays and complex layouts.

Complex data are accepted in three layouts:

* native complex (``numpy.complex64``/``complex128``, h5py's default);
* an HDF5 compound ``{real, imag}`` — how MATLAB ``save -v7.3`` writes complex
  arrays — or ``{r, i}`` (field names matched case-insensitively);
* a real array with a trailing axis of length 2 (real, imaginary). The ``dims``
  attribute then names one axis fewer, or names the last axis ``"complex"``
  (also accepted: ``"ri"``, ``"real_imag"``, ``"reim"``).

Datasets that carry a ``MATLAB_class`` attribute were written column-major by
MATLAB; their axes are reversed on reading so that shapes read as in MATLAB.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .checks import MAX_FIELD_BYTES, format_bytes
from .errors import FormatError

__all__ = ["open_hdf5", "read_attr", "read_array", "read_dims", "to_complex", "COMPLEX_AXIS_NAMES"]

#: Names that mark the last axis of a real array as (real, imaginary).
COMPLEX_AXIS_NAMES = frozenset({"complex", "ri", "real_imag", "reim"})
_COMPOUND_FIELDS = ({"real", "imag"}, {"r", "i"})


def open_hdf5(path: str | os.PathLike[str]) -> h5py.File:
    """Open ``path`` read-only, raising :class:`FormatError` for anything that is not HDF5."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    if p.is_dir():
        raise FormatError(p, "<file>", "a directory", "an HDF5 file")
    size = p.stat().st_size
    if size == 0 or not h5py.is_hdf5(p):
        with open(p, "rb") as fh:
            head = fh.read(8)
        raise FormatError(p, "<file>", f"no HDF5 signature ({size} bytes, starting {head!r})", "an HDF5 file")
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise FormatError(p, "<file>", f"an unreadable HDF5 file ({exc})", "a complete, readable HDF5 file") from None


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SOU":
            return [_plain(v) for v in value.reshape(-1)]
        if value.size == 1:
            return value.reshape(-1)[0].item()
        return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_attr(obj: h5py.HLObject, name: str, default: Any = None) -> Any:
    """Attribute ``name`` as a plain Python value (str, number, list of str or array)."""
    if name not in obj.attrs:
        return default
    return _plain(obj.attrs[name])


def read_dims(obj: h5py.HLObject, path: str | os.PathLike[str], field: str) -> tuple[str, ...] | None:
    """The ``dims`` attribute of a dataset: a list of names or one comma/space separated string."""
    value = read_attr(obj, "dims")
    if value is None:
        return None
    if isinstance(value, str):
        names = [n for n in value.replace(",", " ").split() if n]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = [v.strip() for v in value]
    else:
        raise FormatError(path, f"{field}@dims", f"{value!r}", "a list of axis names (strings)")
    if not names or len(set(names)) != len(names) or not all(names):
        raise FormatError(path, f"{field}@dims", f"{value!r}", "distinct, non-empty axis names")
    return tuple(names)


def read_array(f: h5py.File, field: str, path: str | os.PathLike[str]) -> np.ndarray:
    """Read dataset ``field``; compound ``{real, imag}`` becomes complex, MATLAB axes are reversed."""
    obj = f.get(field)
    if obj is None:
        raise FormatError(path, field, "nothing (the field is missing)", "a dataset")
    if not isinstance(obj, h5py.Dataset):
        raise FormatError(path, field, f"a {type(obj).__name__}", "a dataset")
    nbytes = int(np.prod(obj.shape, dtype=np.float64) * obj.dtype.itemsize) if obj.shape else 0
    if nbytes > MAX_FIELD_BYTES:
        raise FormatError(
            path, field, f"a dataset of shape {obj.shape} needing {format_bytes(nbytes)} in memory",
            f"at most {format_bytes(MAX_FIELD_BYTES)} per field",
        )
    try:
        data = obj[()]
    except (OSError, ValueError, TypeError) as exc:
        raise FormatError(
            path, field, f"unreadable data ({exc})", "a readable HDF5 dataset (is the file truncated?)"
        ) from None
    if isinstance(data, h5py.Empty):
        raise FormatError(path, field, "an empty dataset", "data")
    data = np.asarray(data)
    if data.dtype.names is not None:
        data = _compound_to_complex(data, field, path)
    if "MATLAB_class" in obj.attrs and data.ndim > 1:
        data = data.T
    return data


def _compound_to_complex(data: np.ndarray, field: str, path: str | os.PathLike[str]) -> np.ndarray:
    names = {n.lower(): n for n in data.dtype.names or ()}
    for pair in _COMPOUND_FIELDS:
        if set(names) == pair:
            re_name, im_name = (names["real"], names["imag"]) if "real" in pair else (names["r"], names["i"])
            re, im = data[re_name], data[im_name]
            if re.dtype.kind not in "iuf" or im.dtype.kind not in "iuf":
                raise FormatError(
                    path, field, f"compound fields of types {re.dtype}/{im.dtype}", "real numeric real/imag fields"
                )
            ctype = np.complex64 if re.dtype == np.float32 and im.dtype == np.float32 else np.complex128
            out = np.empty(re.shape, dtype=ctype)
            out.real, out.imag = re, im
            return out
    raise FormatError(
        path, field, f"a compound type with fields {tuple(data.dtype.names or ())}", "fields {real, imag} or {r, i}"
    )


def to_complex(
    data: np.ndarray,
    dims: tuple[str, ...] | None,
    ranks: tuple[int, ...],
    path: str | os.PathLike[str],
    field: str,
    *,
    allow_real: bool = False,
) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Interpret ``data`` as complex; returns ``(array, dims without a complex axis)``.

    ``ranks`` are the numbers of axes the complex array may have (used when no
    ``dims`` attribute is given). With ``allow_real``, a real array that is not in
    the trailing-axis layout is taken as complex with zero imaginary part.
    """
    if data.dtype.kind == "c":
        return data, dims
    if data.dtype.kind not in "iuf":
        raise FormatError(path, field, f"data of type {data.dtype}", "complex numbers")
    trailing = data.ndim >= 1 and data.shape[-1] == 2
    if dims is not None:
        named_axis = len(dims) == data.ndim and dims[-1].lower() in COMPLEX_AXIS_NAMES
        one_fewer = len(dims) == data.ndim - 1
        if trailing and (named_axis or one_fewer):
            dims = dims[:-1] if named_axis else dims
        else:
            trailing = False
    elif data.ndim - 1 not in ranks:
        trailing = False
    if not trailing and allow_real:
        return data.astype(np.complex64 if data.dtype == np.float32 else np.complex128), dims
    if not trailing:
        raise FormatError(
            path,
            field,
            f"real {data.dtype} data of shape {data.shape}" + (f" with dims {list(dims)}" if dims else ""),
            "complex data (native complex, a compound {real, imag}, or a trailing axis of 2 "
            "with one name fewer in 'dims' or the last one named 'complex')",
        )
    ctype = np.complex64 if data.dtype == np.float32 else np.complex128
    out = np.empty(data.shape[:-1], dtype=ctype)
    out.real, out.imag = data[..., 0], data[..., 1]
    return out, dims
