"""Validation primitives: each check either returns a clean numpy value or raises :class:`FormatError`."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .errors import FormatError

__all__ = ["Checker", "as_numpy", "format_bytes", "MAX_FIELD_BYTES", "MAX_IMAGE_PIXELS"]

MISSING = "nothing (the field is missing)"
#: Largest dataset read from a file (bytes): refuses e.g. a tiny file declaring a huge chunked dataset.
MAX_FIELD_BYTES = 4 * 2**30
#: Largest image a file may describe: 2²⁷ pixels (≈ 11585², 1 GiB per complex64 copy).
MAX_IMAGE_PIXELS = 2**27


def format_bytes(n: float) -> str:
    """``n`` bytes in words, e.g. ``"7.3 TiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} bytes"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def as_numpy(value: Any) -> np.ndarray:
    """``value`` as a numpy array (torch tensors are detached and moved to the CPU)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        if hasattr(value, "resolve_conj"):
            value = value.resolve_conj().resolve_neg()
        value = value.numpy()
    return np.asarray(value)


def _first(bad: np.ndarray) -> int:
    return int(np.flatnonzero(bad.reshape(-1))[0])


class Checker:
    """Checks fields of one file (or in-memory record); ``source`` names it in messages."""

    def __init__(self, source: str | os.PathLike[str]) -> None:
        self.source = os.fspath(source)

    def fail(self, field: str, found: str, expected: str) -> FormatError:
        return FormatError(self.source, field, found, expected)

    def require(self, mapping: dict[str, Any], key: str, field: str, expected: str) -> Any:
        if key not in mapping or mapping[key] is None:
            raise self.fail(field, MISSING, expected)
        return mapping[key]

    def finite(self, field: str, arr: np.ndarray) -> np.ndarray:
        bad = ~np.isfinite(arr)
        if bad.any():
            i = np.unravel_index(_first(bad), arr.shape) if arr.ndim else ()
            raise self.fail(
                field, f"{int(bad.sum())} non-finite value(s) (first {arr[i]} at index {i})", "finite numbers"
            )
        return arr

    def real(self, field: str, value: Any) -> np.ndarray:
        """A finite real float64 array."""
        arr = as_numpy(value)
        if arr.dtype.kind == "c":
            raise self.fail(field, f"complex data ({arr.dtype})", "real numbers")
        if arr.dtype.kind not in "biuf":
            raise self.fail(field, f"data of type {arr.dtype}", "real numbers")
        return self.finite(field, arr.astype(np.float64))

    def vector(
        self,
        field: str,
        value: Any,
        what: str,
        *,
        positive: bool = False,
        increasing: bool = False,
        monotonic: bool = False,
    ) -> np.ndarray:
        """A non-empty finite 1-D float64 array (``(1, N)``/``(N, 1)`` MATLAB vectors are flattened).

        ``increasing``: strictly increasing; ``monotonic``: strictly increasing or strictly decreasing.
        """
        arr = self.real(field, value)
        if arr.ndim == 2 and 1 in arr.shape:
            arr = arr.reshape(-1)
        if arr.ndim != 1 or arr.size == 0:
            raise self.fail(field, f"shape {arr.shape}", f"a non-empty 1-D array ({what})")
        if positive and (arr <= 0).any():
            i = _first(arr <= 0)
            raise self.fail(field, f"non-positive value {arr[i]:g} at index {i}", f"positive values ({what})")
        if (increasing or monotonic) and arr.size > 1:
            d = np.diff(arr)
            if monotonic and d[0] < 0:
                d = -d
            if (d == 0).any():
                i = _first(d == 0)
                raise self.fail(
                    field,
                    f"duplicate value {arr[i]:g} at indices {i} and {i + 1}",
                    f"distinct, increasing values ({what})",
                )
            if (d < 0).any():
                i = _first(d < 0)
                raise self.fail(
                    field,
                    f"unsorted values ({arr[i]:g} then {arr[i + 1]:g} at index {i})",
                    ("increasing" if increasing else "strictly monotonic") + f" values ({what})",
                )
        return arr

    def scalar(self, field: str, value: Any, what: str, *, positive: bool = False) -> float:
        arr = self.real(field, value)
        if arr.size != 1:
            raise self.fail(field, f"shape {arr.shape}", f"a single number ({what})")
        v = float(arr.reshape(-1)[0])
        if positive and v <= 0:
            raise self.fail(field, f"{v:g}", f"a positive number ({what})")
        return v

    def points(self, field: str, value: Any, what: str, count: str) -> np.ndarray:
        """Positions: finite float64 of shape ``(N, 2)`` with columns (x, z)."""
        arr = self.real(field, value)
        if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
            raise self.fail(field, f"shape {arr.shape}", f"shape ({count}, 2) ({what}: columns x, z in metres)")
        return arr

    def flag(self, field: str, value: Any) -> bool:
        arr = as_numpy(value)
        if arr.size != 1 or arr.dtype.kind not in "biu" or arr.reshape(-1)[0] not in (0, 1):
            raise self.fail(field, f"{arr!r}", "a boolean (true/false or 0/1)")
        return bool(arr.reshape(-1)[0])

    def mask(self, field: str, value: Any) -> np.ndarray:
        """A 2-D boolean mask with at least one true entry (integer 0/1 accepted, e.g. MATLAB logical)."""
        arr = as_numpy(value)
        if arr.dtype.kind in "iu":
            values = np.unique(arr)
            if not np.isin(values, (0, 1)).all():
                raise self.fail(field, f"integer values {values[:6].tolist()}", "a boolean mask (true/false or 0/1)")
            arr = arr.astype(bool)
        elif arr.dtype.kind != "b":
            raise self.fail(field, f"data of type {arr.dtype}", "a boolean mask (true/false or 0/1)")
        if arr.ndim != 2 or min(arr.shape) < 1:
            raise self.fail(field, f"shape {arr.shape}", "a 2-D mask of shape (H, W)")
        if not arr.any():
            raise self.fail(field, "no true entry", "at least one sampled k-space position")
        return arr

    def shape2(self, field: str, value: Any) -> tuple[int, int]:
        arr = self.real(field, value).reshape(-1)
        if arr.size != 2 or (arr < 2).any() or (arr != np.round(arr)).any():
            raise self.fail(field, f"{arr.tolist()}", "two integers ≥ 2 (H, W)")
        return int(arr[0]), int(arr[1])

    def axes(self, field: str, arr: np.ndarray, dims: tuple[str, ...] | None, canonical: tuple[str, ...]) -> np.ndarray:
        """Transpose ``arr`` whose axes are named ``dims`` into the ``canonical`` order."""
        if dims is None:
            if arr.ndim != len(canonical):
                raise self.fail(field, f"{arr.ndim} axes (shape {arr.shape})", f"{len(canonical)} axes {canonical}")
            return arr
        if len(dims) != arr.ndim:
            raise self.fail(f"{field}@dims", f"{list(dims)} for data of shape {arr.shape}", "one name per axis")
        if sorted(dims) != sorted(canonical):
            raise self.fail(f"{field}@dims", f"{list(dims)}", f"the axis names {list(canonical)} in any order")
        return np.transpose(arr, [dims.index(d) for d in canonical])

    def image_size(self, field: str, shape: tuple[int, int]) -> None:
        """Refuse an image too large to reconstruct, estimating the memory it would need."""
        pixels = int(shape[0]) * int(shape[1])
        if pixels > MAX_IMAGE_PIXELS:
            raise self.fail(
                field,
                f"an image of {shape[0]}×{shape[1]} = {pixels:.3g} pixels, needing about "
                f"{format_bytes(8 * pixels)} per complex64 copy (a reconstruction keeps many copies)",
                f"at most {MAX_IMAGE_PIXELS} pixels ({format_bytes(8 * MAX_IMAGE_PIXELS)} per complex64 image)",
            )

    def shape(self, field: str, arr: np.ndarray, expected: tuple[int, ...], names: str) -> None:
        if tuple(arr.shape) != tuple(expected):
            raise self.fail(field, f"shape {tuple(arr.shape)}", f"shape {tuple(expected)} = {names} from the geometry")
