"""A fit's network state (:class:`~rfprior.result.NetworkState`) ⇄ a NetCDF group of a result file.

:func:`weights_dataset` is what :func:`rfprior.io.save_result` writes with ``weights=True`` into
the group :data:`WEIGHTS_GROUP`; :func:`load_weights` reads it back, for a warm start
(``reconstruct(..., init=path)``). Kept apart from :mod:`rfprior.io` so that the solver
(:mod:`rfprior.fit`) can read a warm start without importing the file formats.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from .files.attrs import to_json as _to_json
from .files.checks import MISSING, Checker
from .files.hdf5 import open_hdf5, read_attr
from .result import NetworkState

__all__ = ["WEIGHTS_GROUP", "load_weights", "weights_dataset"]

#: The NetCDF group that holds a result's network state.
WEIGHTS_GROUP = "network_state"
_RESULT_FORMAT = 1


def weights_dataset(state: Any) -> xr.Dataset:
    """A NetworkState as a Dataset: variables ``v0, v1, …`` (state_dict order), their keys in ``attrs``."""
    variables = {}
    keys = []
    for j, (key, tensor) in enumerate(state.state_dict.items()):
        t = tensor.detach().cpu()
        torch_dtype = str(t.dtype).replace("torch.", "")
        if t.dtype.is_floating_point and t.element_size() < 4:  # float16/bfloat16: numpy/NetCDF-safe as float32
            t = t.float()
        arr = t.numpy()
        if arr.dtype == np.bool_:
            arr = arr.astype(np.int8)
        variables[f"v{j}"] = xr.Variable(
            tuple(f"v{j}_{i}" for i in range(arr.ndim)), arr, attrs={"key": key, "torch_dtype": torch_dtype}
        )
        keys.append(key)
    return xr.Dataset(
        variables,
        attrs={
            "keys": _to_json(keys, "result.weights keys"),
            "prior": _to_json(state.prior, "result.weights.prior"),
            "output_scale": float(state.output_scale),
            "iteration": int(state.iteration),
        },
    )


def load_weights(path: str | os.PathLike[str]) -> Any:
    """Read the network state stored by ``save_result(..., weights=True)``.

    Returns
    -------
    rfprior.result.NetworkState
        CPU tensors in their original dtypes; ``reconstruct(..., init=state)`` starts from it.

    Raises
    ------
    FormatError
        Not a result file, or it holds no (or a malformed) ``network_state`` group.
    """
    p = Path(path)
    chk = Checker(p)
    with open_hdf5(p) as f:
        fmt = read_attr(f, "rfprior_result_format")
        has = WEIGHTS_GROUP in f
    if fmt is None:
        raise chk.fail("@rfprior_result_format", MISSING, f"{_RESULT_FORMAT} (an rfprior result file)")
    if not has:
        raise chk.fail(WEIGHTS_GROUP, MISSING, "network weights (write the result with save_result(..., weights=True))")
    try:
        with xr.open_dataset(p, group=WEIGHTS_GROUP, engine="h5netcdf") as raw:
            ds = raw.load()
        keys = json.loads(ds.attrs["keys"])
        prior = json.loads(ds.attrs["prior"])
        output_scale = float(ds.attrs["output_scale"])
        iteration = int(ds.attrs["iteration"])
        state = {}
        for j, key in enumerate(keys):
            v = ds[f"v{j}"]
            dtype = getattr(torch, str(v.attrs["torch_dtype"]))
            state[key] = torch.from_numpy(np.array(v.values)).to(dtype)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        found = f"a malformed group ({type(exc).__name__}: {exc})"
        raise chk.fail(WEIGHTS_GROUP, found, "weights written by rfprior") from None
    if not (math.isfinite(output_scale) and output_scale > 0):
        raise chk.fail(f"{WEIGHTS_GROUP}@output_scale", repr(output_scale), "a positive finite number")
    return NetworkState(state_dict=state, prior=prior, output_scale=output_scale, iteration=iteration)
