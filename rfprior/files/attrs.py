"""JSON-encoded attributes (result settings, a network's prior configuration) for NetCDF/HDF5 files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["to_json"]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if type(value).__module__.startswith("torch") and type(value).__name__ in ("dtype", "device"):
        return str(value)
    raise TypeError(f"result settings: a value of type {type(value).__name__} is not JSON-serialisable: {value!r}")


def to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value if value is not None else {}, sort_keys=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what}: {exc}") from None
