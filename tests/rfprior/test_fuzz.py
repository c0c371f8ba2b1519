"""Fuzzing the measurement-file reader: mutated files load or raise FormatError, never anything else.

Valid files (size 16, one per modality) are simulated once per session; each example
copies one, mutates it with h5py (drop a field, change a dtype or shape, inject
NaN/Inf, set absurd values, tamper with attributes) or at the byte level (truncate,
overwrite), then checks that ``load`` + ``operator_from`` either succeed or raise a
documented user error, and that the input file was not modified. The CLI ``inspect``
command is run in-process on a subset: exit status 0 or 2, at most one stderr line.
Derandomised, so CI sees the same examples on every run.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import rfprior  # noqa: E402
from rfprior.cli import main  # noqa: E402
from rfprior.io import FormatError, load, operator_from  # noqa: E402

MODALITIES = ("mimo", "partial_fourier", "diffraction_tomography")
#: The documented user-error types of rfprior.io.load/operator_from (FormatError is a ValueError).
USER_ERRORS = (FormatError,)
FUZZ = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@pytest.fixture(scope="session")
def valid_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fuzz_valid")
    out = {}
    for m in MODALITIES:
        out[m] = d / f"{m}.h5"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rfprior.scenes.simulate(m, size=16, snr_db=20, seed=1, path=out[m])
    return out


def _fields(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)


def _replace(f: h5py.File, name: str, data) -> None:
    attrs = dict(f[name].attrs)
    del f[name]
    d = f.create_dataset(name, data=data)
    for k, v in attrs.items():
        d.attrs[k] = v


ABSURD = {
    "geometry/frequencies": [
        lambda a: -a,
        lambda a: a[::-1].copy(),
        lambda a: np.concatenate([a[:1], a[:-1]]),
        lambda a: np.zeros_like(a),
        lambda a: np.full_like(a, 1e300),
    ],
    "geometry/wavelength": [lambda a: np.zeros_like(a), lambda a: -a, lambda a: a * 1e12, lambda a: a * 1e-12],
    "geometry/angles": [
        lambda a: np.concatenate([a[:1], a[:-1]]),
        lambda a: a + 2 * np.pi * (np.arange(a.size) % 2),
        lambda a: np.zeros_like(a),
        lambda a: a * 1e30,
    ],
    "geometry/medium_index": [lambda a: np.zeros_like(a), lambda a: -a, lambda a: a * 1e9],
    "geometry/pixel_size": [lambda a: np.zeros_like(a), lambda a: a * 1e9, lambda a: a * 1e-9],
    "geometry/detector_distance": [lambda a: -a - 1, lambda a: a + 1e30],
    "geometry/shape": [
        lambda a: np.array([10**6, 10**6]),
        lambda a: np.array([10**9, 3]),
        lambda a: np.array([1, 16]),
        lambda a: np.array([16.5, 16.0]),
        lambda a: np.array([-16, 16]),
    ],
    "geometry/x": [
        lambda a: np.linspace(-1, 1, 10**6),
        lambda a: np.zeros_like(a),
        lambda a: a[np.r_[1, 0, 2 : a.size]],
    ],
    "geometry/z": [lambda a: np.linspace(0.5, 3, 10**5), lambda a: -a],
    "geometry/tx": [lambda a: a[:, :1], lambda a: np.zeros((0, 2)), lambda a: a * 1e300],
    "geometry/rx": [lambda a: a.T.copy(), lambda a: a[:1]],
    "geometry/mask": [lambda a: np.zeros_like(a), lambda a: a.astype(np.int64) * 3, lambda a: a[:, :-1]],
    "geometry/spreading": [lambda a: np.int64(2), lambda a: np.array([True, False])],
}
ATTRS = {
    "rfprior_format": [2, "1", "abc", 1.5, np.array([1, 1]), True, 0],
    "modality": ["MIMO", "radar", 3, "", "partial_fourier", "mimo", "diffraction_tomography"],
    "noise_sigma": [-1.0, np.nan, np.inf, "x", np.array([1.0, 2.0])],
    "snr_db": [np.nan, "high", np.array([])],
    "description": [np.float64(3.0), np.array([1, 2])],
}


def _mutate(path: Path, data: st.DataObject) -> str:
    """Mutate ``path`` in place; returns a description of the mutation (for failure messages)."""
    kind = data.draw(
        st.sampled_from(["drop", "dtype", "shape", "nonfinite", "absurd", "attr", "dims", "truncate", "bytes"]),
        label="kind",
    )
    if kind == "truncate":
        raw = path.read_bytes()
        n = data.draw(st.integers(0, len(raw) - 1), label="keep")
        path.write_bytes(raw[:n])
        return f"truncate to {n} bytes"
    if kind == "bytes":
        raw = bytearray(path.read_bytes())
        k = data.draw(st.integers(1, 16), label="count")
        offsets = data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=k, max_size=k), label="offsets")
        values = data.draw(st.lists(st.integers(0, 255), min_size=k, max_size=k), label="values")
        for o, v in zip(offsets, values, strict=True):
            raw[o] = v
        path.write_bytes(bytes(raw))
        return f"bytes {list(zip(offsets, values, strict=True))}"
    with h5py.File(path, "r+") as f:
        names = _fields(f)
        if kind == "attr":
            key = data.draw(st.sampled_from(sorted(ATTRS)), label="attr")
            if data.draw(st.booleans(), label="delete"):
                if key in f.attrs:
                    del f.attrs[key]
                return f"delete @{key}"
            value = data.draw(st.sampled_from(ATTRS[key]), label="value")
            f.attrs[key] = value
            return f"@{key} = {value!r}"
        if kind == "dims":
            name = data.draw(st.sampled_from([n for n in names if "dims" in f[n].attrs]), label="field")
            choices = [["a", "b", "c"], ["tx", "tx", "freq"], "", 5, ["x"], ["angle", "detector", "complex"]]
            value = data.draw(st.sampled_from(choices), label="dims")
            f[name].attrs["dims"] = value
            return f"{name}@dims = {value!r}"
        if kind == "absurd":
            name = data.draw(st.sampled_from([n for n in names if n in ABSURD] or names), label="field")
            if name not in ABSURD:
                return "no absurd mutation"
            fn = data.draw(st.sampled_from(ABSURD[name]), label="fn")
            _replace(f, name, fn(np.asarray(f[name][()])))
            return f"absurd {name}"
        name = data.draw(st.sampled_from(names), label="field")
        arr = np.asarray(f[name][()])
        if kind == "drop":
            del f[name]
            return f"drop {name}"
        if kind == "dtype":
            to = data.draw(st.sampled_from(["int", "str", "bool", "float32", "real"]), label="dtype")
            if to == "int":
                new = np.real(arr).astype(np.int64)
            elif to == "str":
                new = np.array(str(arr.reshape(-1)[:3].tolist()).encode())
            elif to == "bool":
                new = np.real(arr) > 0
            elif to == "float32":
                new = arr.astype(np.complex64 if arr.dtype.kind == "c" else np.float32)
            else:
                new = np.real(arr)
            _replace(f, name, new)
            return f"{name} as {to}"
        if kind == "shape":
            how = data.draw(st.sampled_from(["transpose", "truncate", "add", "scalar", "empty"]), label="how")
            if how == "transpose":
                new = arr.T.copy()
            elif how == "truncate" and arr.ndim:
                ax = data.draw(st.integers(0, arr.ndim - 1), label="axis")
                new = np.take(arr, range(max(arr.shape[ax] - 1, 0)), axis=ax)
            elif how == "add":
                new = arr[None]
            elif how == "scalar":
                new = arr.reshape(-1)[:1].reshape(())
            else:
                new = arr.reshape(-1)[:0]
            _replace(f, name, new)
            return f"{name} {how} -> {np.shape(new)}"
        # nonfinite
        if arr.dtype.kind not in "fc" or arr.size == 0:
            return f"no non-finite mutation of {name} ({arr.dtype})"
        bad = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]), label="value")
        idx = data.draw(st.integers(0, arr.size - 1), label="index")
        new = arr.copy().reshape(-1)
        new[idx] = bad if arr.dtype.kind == "f" else complex(bad, 0)
        _replace(f, name, new.reshape(arr.shape))
        return f"{name}[{idx}] = {bad}"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check(path: Path, what: str) -> None:
    before = _sha(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a coarse tomography grid warns: not an error
        try:
            ds = load(path)
            op, y = operator_from(ds)
            assert tuple(y.shape) == op.out_shape
        except USER_ERRORS as exc:
            assert str(exc), what
        except Exception as exc:  # pragma: no cover - the failure being tested for
            raise AssertionError(f"{what}: {type(exc).__name__}: {exc}") from exc
    assert _sha(path) == before, f"{what}: the input file was modified"


@pytest.mark.parametrize("modality", MODALITIES)
@settings(max_examples=80, **FUZZ)
@given(data=st.data())
def test_mutated_files_load_or_raise_format_error(modality, valid_files, tmp_path, data):
    path = tmp_path / f"{modality}.h5"
    shutil.copyfile(valid_files[modality], path)
    what = _mutate(path, data)
    _check(path, f"{modality}: {what}")


@settings(max_examples=36, **FUZZ)
@given(data=st.data(), modality=st.sampled_from(MODALITIES))
def test_cli_inspect_on_mutated_files(valid_files, tmp_path, data, modality):
    path = tmp_path / f"{modality}_cli.h5"
    shutil.copyfile(valid_files[modality], path)
    what = _mutate(path, data)
    before = _sha(path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["inspect", str(path)])
    lines = err.getvalue().splitlines()
    assert code in (0, 2), f"{what}: exit {code}"
    assert len(lines) <= 1, f"{what}: stderr {lines}"
    assert (code == 2) == bool(lines), f"{what}: exit {code} with stderr {lines}"
    assert _sha(path) == before


def test_valid_files_round_trip(valid_files):
    """The unmutated files load: the fuzz cases start from valid input."""
    for m, path in valid_files.items():
        op, y = operator_from(load(path))
        assert tuple(y.shape) == op.out_shape, m


def _huge_mimo_grid(f: h5py.File) -> None:
    del f["truth"]
    _replace(f, "geometry/x", np.linspace(-1.0, 1.0, 10**5))  # 10⁵ × 10⁴ = 10⁹ pixels
    _replace(f, "geometry/z", np.linspace(0.5, 3.0, 10**4))


def _huge_tomography_shape(f: h5py.File) -> None:
    del f["truth"]
    _replace(f, "geometry/shape", np.array([10**6, 10**6]))  # 10¹² pixels


def _huge_sparse_dataset(f: h5py.File) -> None:
    # a tiny file declaring a 10¹³-element chunked dataset that was never written (all fill value)
    attrs = dict(f["measurements"].attrs)
    del f["measurements"]
    d = f.create_dataset("measurements", shape=(10**4, 10**4, 10**5), dtype=np.complex64, chunks=(1, 1, 64))
    for k, v in attrs.items():
        d.attrs[k] = v


@pytest.mark.parametrize("mutate", [_huge_mimo_grid, _huge_tomography_shape, _huge_sparse_dataset])
def test_absurd_sizes_are_refused_with_a_memory_estimate(valid_files, tmp_path, mutate):
    modality = "diffraction_tomography" if mutate is _huge_tomography_shape else "mimo"
    path = tmp_path / "huge.h5"
    shutil.copyfile(valid_files[modality], path)
    with h5py.File(path, "r+") as f:
        mutate(f)
    assert path.stat().st_size < 10 * 2**20  # the files are small; only what they declare is huge
    with pytest.raises(FormatError, match=r"needing (about )?[0-9.]+ (TiB|PiB|GiB)") as info:
        operator_from(load(path))
    assert "expected at most" in str(info.value)


def test_mimo_operator_refuses_a_steering_cache_beyond_its_budget():
    """MIMO with 10⁶ pixels × 10⁴ frequencies: caching is refused with the bytes needed (memory_budget)."""
    from operators import MIMORadar

    tx = np.stack([np.linspace(-0.5, 0.5, 4), np.zeros(4)], axis=1)
    args = (tx, tx, np.linspace(1e9, 2e9, 10**4), np.linspace(-1, 1, 1000), np.linspace(1, 3, 1000))
    with pytest.raises(ValueError, match=r"needs about \d+ bytes > memory_budget"):
        MIMORadar(*args, cache_steering=True)
    op = MIMORadar(*args)  # "auto": no cache, memory bounded by memory_budget
    assert op.steering_bytes > op.memory_budget and not op._use_cache
