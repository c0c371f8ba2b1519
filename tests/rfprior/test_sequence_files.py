"""Sequence measurement files (a ``frame`` axis): round trips, per-frame operators, bad inputs, CLI, results."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

from rfprior import io
from rfprior.cli import main
from rfprior.io import FormatError
from rfprior.modalities import get
from rfprior.scenes import default_geometry, simulate, simulate_frames

MIMO = {"n_tx": 2, "n_rx": 3, "n_freq": 8}
F = 3


def _within_noise(ops: list, ys: list, truth: np.ndarray, sigma: float) -> None:
    """Each frame's operator applied to its true image reproduces its data up to the noise (rms ≈ √2 σ)."""
    for f, (op, y) in enumerate(zip(ops, ys, strict=True)):
        r = op.forward(torch.as_tensor(truth[f]).to(op.dtype)) - y
        rms = float(r.abs().pow(2).mean().sqrt())
        assert 0.6 * np.sqrt(2) * sigma < rms < 1.5 * np.sqrt(2) * sigma, (f, rms, sigma)


def _round_trip(path: Path, tmp_path: Path) -> xr.Dataset:
    """load → save_dataset → load gives the identical Dataset; returns it."""
    ds = io.load(path)
    again = io.save_dataset(tmp_path / f"again_{path.name}", ds)
    xr.testing.assert_identical(io.load(again), ds)
    return ds


def _mimo_sequence() -> dict[str, Any]:
    """A small mimo sequence with per-frame missing entries (frame 0 complete; frames 1, 2 the same gaps)."""
    m = get("mimo")
    g = default_geometry("mimo", 16, **MIMO)
    op = m.build_operator(g, dtype=torch.complex128)
    truth = torch.stack([m.moving_scene(g, t, 0) for t in range(F)]).to(torch.complex64)
    clean = torch.stack([op.forward(truth[f].to(torch.complex128)) for f in range(F)])
    sigma = 0.05 * float(clean.abs().pow(2).mean().sqrt())
    gen = torch.Generator().manual_seed(1)
    y = clean + sigma * torch.randn(clean.shape, dtype=torch.complex128, generator=gen) * np.sqrt(2)
    valid = np.ones(y.shape, dtype=bool)
    valid[1:, 0, 1, :] = False
    valid[1:, 1, 2, :3] = False
    return {"y": y.to(torch.complex64).numpy(), "g": g, "truth": truth.numpy(), "valid": valid, "sigma": sigma}


# --------------------------------------------------------------------------- round trips
def test_mimo_sequence_with_per_frame_missing_entries(tmp_path: Path) -> None:
    s = _mimo_sequence()
    path = io.save_measurements(
        tmp_path / "mimo_seq.h5", "mimo", s["y"], s["g"], truth=s["truth"], valid=s["valid"],
        times=[0.0, 0.1, 0.25], noise_sigma=s["sigma"],
    )  # fmt: skip
    with h5py.File(path) as f:
        assert [d.decode() if isinstance(d, bytes) else d for d in f["measurements"].attrs["dims"]] == [
            "frame", "tx", "rx", "freq"
        ]  # fmt: skip
        assert f["geometry/times"].attrs["units"] == "s"
    ds = _round_trip(path, tmp_path)
    assert ds["measurements"].dims == ("frame", "tx", "rx", "freq") and ds.sizes["frame"] == F
    assert ds["valid"].dims == ds["measurements"].dims and ds["truth"].dims == ("frame", "z", "x")
    np.testing.assert_array_equal(ds["frame"].values, np.arange(F))
    np.testing.assert_allclose(ds["times"].values, [0.0, 0.1, 0.25])
    assert ds["times"].attrs["units"] == "s"
    assert np.isnan(ds["measurements"].values[~s["valid"]]).all()
    rec = io.read_record(path)
    assert rec.frames == F and rec.valid.shape == s["y"].shape and rec.truth.shape == (F, 16, 16)

    ops, ys = io.operators_from(path, dtype=torch.complex128)
    assert len(ops) == len(ys) == F
    assert ops[0].out_shape == (2, 3, 8) and ops[1].out_shape == (int(s["valid"][1].sum()),)
    assert ops[1] is ops[2] and ops[1].op is ops[0]  # one operator, one restriction for the same gaps
    for f in range(F):
        assert ys[f].shape == ops[f].out_shape and torch.isfinite(ys[f]).all()
    _within_noise(ops, ys, s["truth"], s["sigma"])
    _, ys_ds = io.operators_from(ds, dtype=torch.complex128)  # the loaded Dataset gives the same
    assert all(torch.equal(a, b) for a, b in zip(ys, ys_ds, strict=True))


def test_partial_fourier_sequence_with_a_mask_per_frame(tmp_path: Path) -> None:
    path = tmp_path / "pf_seq.h5"
    sim = simulate_frames("partial_fourier", frames=F, size=16, seed=2, path=path, masks="per_frame")
    ds = _round_trip(path, tmp_path)
    xr.testing.assert_identical(ds, sim)
    assert ds["measurements"].dims == ("frame", "ky", "kx") and ds["mask"].dims == ("frame", "ky", "kx")
    mask = ds["mask"].values
    assert mask.shape == (F, 16, 16) and not (mask[0] == mask[1]).all() and not (mask[1] == mask[2]).all()
    assert (mask.sum(axis=(1, 2)) == 64).all()  # the same acceleration (4×) per frame
    assert (ds["measurements"].values[~mask] == 0).all()  # stored as 0 outside each frame's mask

    ops, ys = io.operators_from(path, dtype=torch.complex128)
    assert len({id(op) for op in ops}) == F
    for f in range(F):
        np.testing.assert_array_equal(ops[f].mask.cpu().numpy(), mask[f])
        assert ops[f].out_shape == (int(mask[f].sum()),)
        np.testing.assert_array_equal(ys[f].numpy(), ds["measurements"].values[f][mask[f]])
    _within_noise(ops, ys, ds["truth"].values, ds.attrs["noise_sigma"])

    # writing per-frame-mask data with NaN outside the masks: ignored, stored as 0
    grid = ds["measurements"].values.copy()
    grid[~mask] = np.nan
    again = io.save_measurements(tmp_path / "nan.h5", "partial_fourier", grid, {"mask": mask})
    np.testing.assert_array_equal(io.load(again)["measurements"].values, ds["measurements"].values)


def test_partial_fourier_sequence_with_a_shared_mask(tmp_path: Path) -> None:
    path = tmp_path / "pf_shared.h5"
    simulate_frames("partial_fourier", frames=F, size=16, seed=2, path=path, masks="shared")
    ds = _round_trip(path, tmp_path)
    assert ds["measurements"].dims == ("frame", "sample") and ds["mask"].dims == ("y", "x")
    ops, ys = io.operators_from(ds, dtype=torch.complex128)
    assert ops[0] is ops[1] is ops[2]
    _within_noise(ops, ys, ds["truth"].values, ds.attrs["noise_sigma"])
    # the full grid per frame with one shared mask is reduced to the samples
    full = np.zeros((F, 16, 16), dtype=np.complex64)
    full[:, ds["mask"].values] = ds["measurements"].values
    again = io.save_measurements(tmp_path / "full.h5", "partial_fourier", full, {"mask": ds["mask"].values})
    np.testing.assert_array_equal(io.load(again)["measurements"].values, ds["measurements"].values)


def test_tomography_sequence_with_a_shared_geometry(tmp_path: Path) -> None:
    path = tmp_path / "dt_seq.h5"
    simulate_frames("diffraction_tomography", frames=2, size=16, seed=1, path=path, n_angles=12, frame_interval=0.5)
    ds = _round_trip(path, tmp_path)
    assert ds["measurements"].dims == ("frame", "angle", "detector") and ds.sizes["frame"] == 2
    np.testing.assert_allclose(ds["times"].values, [0.0, 0.5])
    assert not np.allclose(ds["truth"].values[0], ds["truth"].values[1])  # the droplet moved
    ops, ys = io.operators_from(path, dtype=torch.complex128)
    assert ops[0] is ops[1] and ops[0].out_shape == (12, 16)
    _within_noise(ops, ys, ds["truth"].values, ds.attrs["noise_sigma"])


def test_single_frame_sources_give_one_element_lists(tmp_path: Path) -> None:
    path = tmp_path / "one.h5"
    simulate("mimo", size=16, seed=1, path=path, **MIMO)
    ops, ys = io.operators_from(path)
    op, y = io.operator_from(path)
    assert len(ops) == len(ys) == 1 and ops[0].out_shape == op.out_shape and torch.equal(ys[0], y)
    assert io.read_record(path).frames is None and "frame" not in io.load(path).dims
    seq = tmp_path / "seq.h5"
    simulate_frames("partial_fourier", frames=2, size=16, path=seq)
    with pytest.raises(FormatError, match="operators_from") as exc:
        io.operator_from(seq)
    assert "\n" not in str(exc.value)


# --------------------------------------------------------------------------- bad inputs
def _pf(frames: int = F) -> dict[str, Any]:
    g = default_geometry("partial_fourier", 16)
    return {"mask": g["mask"], "y": np.ones((frames, int(g["mask"].sum())), dtype=np.complex64)}


def _bad_cases() -> dict[str, tuple[str, Any]]:
    s = _mimo_sequence()
    y, g, truth = s["y"], s["g"], s["truth"]
    pf = _pf()
    masks = np.stack([pf["mask"]] * F)
    grid = np.ones((F, 16, 16), np.complex64)
    empty = masks.copy()
    empty[1] = False
    no_frame = s["valid"].copy()
    no_frame[2] = False
    cases: dict[str, tuple[str, Any]] = {
        "times of the wrong length": ("/geometry/times", lambda p: io.save_measurements(p, "mimo", y, g, times=[0, 1])),
        "times not increasing": ("/geometry/times", lambda p: io.save_measurements(p, "mimo", y, g, times=[0, 2, 1])),
        "times repeated": ("/geometry/times", lambda p: io.save_measurements(p, "mimo", y, g, times=[0, 1, 1])),
        "times in a single-frame file": (
            "/geometry/times", lambda p: io.save_measurements(p, "mimo", y[0], g, times=[0.0])
        ),
        "times given twice": (
            "/geometry/times", lambda p: io.save_measurements(p, "mimo", y, {**g, "times": [0, 1, 2]}, times=[0, 1, 2])
        ),
        "truth frame count": ("/truth", lambda p: io.save_measurements(p, "mimo", y, g, truth=truth[:2])),
        "truth without a frame axis": ("/truth", lambda p: io.save_measurements(p, "mimo", y, g, truth=truth[0])),
        "valid frame count": ("/valid", lambda p: io.save_measurements(p, "mimo", y, g, valid=s["valid"][:2])),
        "a frame with no measured entry": ("/valid", lambda p: io.save_measurements(p, "mimo", y, g, valid=no_frame)),
        "a frame of the wrong shape": ("/measurements", lambda p: io.save_measurements(p, "mimo", y[..., :5], g)),
        "no frame": (
            "/measurements", lambda p: io.save_measurements(p, "mimo", y[:0], g, dims=("frame", "tx", "rx", "freq"))
        ),
        "mask frame count": (
            "/geometry/mask",
            lambda p: io.save_measurements(p, "partial_fourier", grid, {"mask": masks[:2]}),
        ),
        "per-frame masks with samples": (
            "/measurements", lambda p: io.save_measurements(p, "partial_fourier", pf["y"], {"mask": masks})
        ),
        "an empty mask in one frame": (
            "/geometry/mask",
            lambda p: io.save_measurements(p, "partial_fourier", grid, {"mask": empty}),
        ),
    }
    return cases


@pytest.mark.parametrize("case", list(_bad_cases()))
def test_bad_sequence_inputs_are_one_line_errors_and_write_nothing(case: str, tmp_path: Path) -> None:
    field, write = _bad_cases()[case]
    with pytest.raises(FormatError) as exc:
        write(tmp_path / "bad.h5")
    assert exc.value.field == field, str(exc.value)
    assert "\n" not in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_bad_sequence_files_are_refused_on_reading(tmp_path: Path) -> None:
    good = tmp_path / "good.h5"
    simulate_frames("partial_fourier", frames=F, size=16, path=good, frame_interval=0.1)

    def broken(name: str, edit) -> Path:
        p = tmp_path / name
        p.write_bytes(good.read_bytes())
        with h5py.File(p, "a") as f:
            edit(f)
        return p

    def replace(f: h5py.File, key: str, value: np.ndarray) -> None:
        attrs = dict(f[key].attrs)
        del f[key]
        f[key] = value
        f[key].attrs.update(attrs)

    cases = {
        "/geometry/times": lambda f: replace(f, "geometry/times", np.array([0.0, 0.2, 0.1])),
        "/truth": lambda f: replace(f, "truth", f["truth"][:2]),
        "/geometry/mask": lambda f: replace(f, "geometry/mask", f["geometry/mask"][:2]),
    }
    for field, edit in cases.items():
        with pytest.raises(FormatError) as exc:
            io.load(broken(f"{field.replace('/', '_')}.h5", edit))
        assert exc.value.field == field and "\n" not in str(exc.value)


def test_the_simulated_sampling_must_be_able_to_differ_per_frame() -> None:
    with pytest.raises(ValueError, match="shared"):
        simulate_frames("mimo", frames=2, size=16, masks="per_frame", **MIMO)


# --------------------------------------------------------------------------- the command line
def test_simulate_frames_and_inspect_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "seq.h5"
    code = main(["simulate", "partial_fourier", "--frames", "3", "--size", "16", "--frame-interval", "0.04",
                 "-o", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    ds = io.load(out)
    assert ds.sizes["frame"] == 3 and ds["mask"].dims == ("frame", "ky", "kx")
    np.testing.assert_allclose(ds["times"].values, [0.0, 0.04, 0.08])
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "frames        3, t = 0 s … 0.08 s" in text and "one per frame" in text

    bad = tmp_path / "x.h5"
    code = main(["simulate", "mimo", "--frames", "2", "--masks", "per_frame", "--size", "16", "-o", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "masks" in err and not bad.exists()
    code = main(["simulate", "mimo", "--masks", "shared", "-o", str(tmp_path / "y.h5")])
    assert code == 2 and "--frames" in capsys.readouterr().err


# --------------------------------------------------------------------------- result files
def _sequence_result(frames: int = F) -> SimpleNamespace:
    g = torch.Generator().manual_seed(0)
    n = 5
    history = xr.Dataset({"loss": ("iteration", np.linspace(1.0, 0.1, n))}, coords={"iteration": np.arange(n)})
    return SimpleNamespace(
        image=torch.randn(frames, 16, 16, dtype=torch.complex64, generator=g),
        final_image=torch.randn(frames, 16, 16, dtype=torch.complex64, generator=g),
        chosen_iteration=3, history=history, settings={"prior": "deep_decoder"}, seed=1, sigma=0.1,
        stop_reason="discrepancy",
    )  # fmt: skip


def test_sequence_results_round_trip(tmp_path: Path) -> None:
    src = simulate_frames("partial_fourier", frames=F, size=16, path=tmp_path / "seq.h5", frame_interval=0.1)
    result = _sequence_result()
    bp = torch.randn(F, 16, 16, dtype=torch.complex64)
    misfit = np.array([1.0, 2.0, 3.0])
    path = io.save_result(
        tmp_path / "r.nc", result, backprojection=bp, source=src, frame_variables={"frame_misfit": misfit}
    )
    with h5py.File(path) as f:
        assert f["image"].shape == (F, 16, 16, 2)
    r = io.load_result(path)
    for name, value in (("image", result.image), ("final_image", result.final_image), ("backprojection", bp)):
        assert r[name].dims == ("frame", "y", "x") and r[name].dtype == np.complex64
        np.testing.assert_array_equal(r[name].values, value.numpy())
    assert r["frame_misfit"].dims == ("frame",)
    np.testing.assert_array_equal(r["frame_misfit"].values, misfit)
    np.testing.assert_array_equal(r["frame"].values, np.arange(F))
    np.testing.assert_allclose(r["times"].values, [0.0, 0.1, 0.2])
    assert r["loss"].dims == ("iteration",)

    with pytest.raises(ValueError, match="frame_misfit"):
        io.save_result(tmp_path / "bad.nc", result, frame_variables={"frame_misfit": misfit[:2]})
    with pytest.raises(ValueError, match="backprojection"):
        io.save_result(tmp_path / "bad.nc", result, backprojection=bp[:2])
    assert not (tmp_path / "bad.nc").exists()
