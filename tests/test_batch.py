"""Batch reconstruction on Dask (``rfprior.batch``, ``rfprior batch``) and warm starts (``init=``).

Two real clusters, both 2 worker processes × 1 thread on 32² partial-Fourier files with 30
iterations: the CLI's own ``LocalCluster`` (4 files, one corrupt: three results, one failed
row, exit 1), then a cluster started here and passed by address (the second run skips the
three; a touched input is redone; a warm-start sequence chains its frames). The rest —
warm starts, the stop event, device choice, argument checks — runs without a cluster.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
import time
import warnings
from pathlib import Path

import h5py
import pandas as pd
import pytest
import torch
import xarray as xr

import rfprior
from rfprior import FixedIterations
from rfprior._batch_task import pick_device, run_file
from rfprior.batching import INSTALL_HINT, is_done
from rfprior.cli import main
from rfprior.io import load, load_result, load_weights, operator_from, save_result

distributed = pytest.importorskip("distributed")
# The tests on a real cluster (slow) share two module fixtures: a CLI run with its own cluster, and an
# external cluster. Under pytest-xdist (make test) each worker that runs one of them builds its own.

ITER = ["--iterations", "30", "--prior", "deep_decoder"]
OPTIONS = {"iterations": 30, "prior": "deep_decoder"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three 32² partial-Fourier files with a truth, and a corrupt one (third in order)."""
    root = tmp_path_factory.mktemp("batch_inputs")
    files = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(3):
            files.append(root / f"scan{i}.h5")
            rfprior.scenes.simulate("partial_fourier", size=32, snr_db=20, seed=i, path=files[-1])
    bad = root / "scan_bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)  # an HDF5 signature, then nothing
    files.insert(2, bad)
    return files


@pytest.fixture(scope="module")
def first_run(inputs, tmp_path_factory: pytest.TempPathFactory):
    """``rfprior batch`` on the 4 files with its own 2-worker LocalCluster: (exit status, outdir, stderr)."""
    out = tmp_path_factory.mktemp("batch_out")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["-q", "batch", *map(str, inputs), "-o", str(out), "--workers", "2", "--threads", "1", *ITER])
    return rc, out, err.getvalue()


@pytest.fixture(scope="module")
def cluster():
    """An 'external' cluster: 2 worker processes × 1 thread, used by address."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40) as lc:
        yield lc.scheduler_address


@pytest.mark.timeout(180)
@pytest.mark.slow
def test_cli_batch_three_results_one_failed_row(first_run, inputs):
    rc, out, err = first_run
    assert rc == 1  # some failed
    table = pd.read_csv(out / "summary.csv", keep_default_na=False)
    assert list(table.file) == [str(p) for p in inputs]  # input order
    assert list(table.status) == ["ok", "ok", "failed", "ok"]
    bad = table.iloc[2]
    assert "FormatError" in bad.error and "scan_bad.h5" in bad.error and "\n" not in bad.error
    assert f"failed: {inputs[2]}" in err
    for i in (0, 1, 3):
        row = table.iloc[i]
        res = load_result(out / f"scan{i if i < 2 else 2}.nc")
        assert int(row.iteration) == res.attrs["chosen_iteration"] <= 29
        assert float(row.psnr) == pytest.approx(res.attrs["image_psnr"], abs=1e-6)  # the file's truth
        assert float(row.sigma) > 0 and float(row.misfit) > 0 and float(row.seconds) > 0
        assert str(row.worker) in ("0", "1")
    assert not (out / "scan_bad.nc").exists()
    assert len({*table.worker[table.status == "ok"]}) >= 1
    with xr.open_dataset(out / "summary.nc", engine="h5netcdf") as ds:
        assert [str(s) for s in ds.status.values] == ["ok", "ok", "failed", "ok"]
        assert int(ds.iteration.values[2]) == -1  # the NetCDF summary says the same
    assert not list(out.glob(".*.tmp"))  # atomic writes leave nothing behind


@pytest.mark.timeout(180)
@pytest.mark.slow
def test_rerun_on_external_scheduler_skips_finished(first_run, inputs, cluster):
    _, out, _ = first_run
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("scan?.nc")}
    assert len(stamps) == 3
    table = rfprior.batch(inputs, out, scheduler=cluster, threads_per_worker=1, progress=False, **OPTIONS)
    assert list(table.status) == ["skipped", "skipped", "failed", "skipped"]
    assert {p: p.stat().st_mtime_ns for p in out.glob("scan?.nc")} == stamps  # nothing rewritten
    # an input newer than its result is redone; on the address's workers
    time.sleep(0.05)
    os.utime(inputs[1])
    table = rfprior.batch(inputs, out, scheduler=cluster, threads_per_worker=1, progress=False, **OPTIONS)
    assert list(table.status) == ["skipped", "ok", "failed", "skipped"]
    assert (out / "scan1.nc").stat().st_mtime_ns > stamps[out / "scan1.nc"]
    with distributed.Client(cluster) as client:
        client_workers = {str(w["name"]) for w in client.scheduler_info()["workers"].values()}
    assert str(table.worker[1]) in client_workers
    assert pd.read_csv(out / "summary.csv", keep_default_na=False).status.tolist() == list(table.status)


@pytest.mark.timeout(180)
@pytest.mark.slow
def test_warm_start_sequence_chains_frames(cluster, tmp_path):
    frames = rfprior.scenes.simulate_sequence("partial_fourier", tmp_path / "seq", frames=3, size=32, seed=1)
    out = tmp_path / "out"
    table = rfprior.batch(
        frames, out, scheduler=cluster, threads_per_worker=1, warm_start=True, progress=False, **OPTIONS
    )
    assert list(table.status) == ["ok"] * 3
    assert list(table.warm_start) == ["", "frame000.h5", "frame001.h5"]
    # each result stores its network; frame 1 started from frame 0's: its first misfit is far below a cold start's
    for t in range(3):
        assert load_weights(out / f"frame{t:03d}.nc").iteration == int(table.iteration[t])
    warm = load_result(out / "frame001.nc")
    assert warm.attrs["settings"]["init"]["iteration"] == int(table.iteration[0])
    op, y = operator_from(load(frames[1]))
    cold = rfprior.reconstruct(y, op, iterations=1, prior="deep_decoder", progress=False)
    assert float(warm["misfit"][0]) < 0.5 * float(cold.history.misfit[0])
    # a rerun skips all three, still passing the stored states along the chain
    again = rfprior.batch(
        frames, out, scheduler=cluster, threads_per_worker=1, warm_start=True, progress=False, **OPTIONS
    )
    assert list(again.status) == ["skipped"] * 3


# ---------------------------------------------------------------------------- without a cluster
def _pf(size: int = 32, seed: int = 0):
    ds = rfprior.scenes.simulate("partial_fourier", size=size, snr_db=20, seed=seed)
    op, y = operator_from(ds)
    return op, y, torch.as_tensor(ds["truth"].values)


def test_warm_start_continues_from_the_previous_network(tmp_path):
    op, y, _ = _pf()
    first = rfprior.reconstruct(y, op, stop=FixedIterations(), iterations=12, prior="deep_decoder", progress=False)
    assert first.weights is not None and first.weights.iteration == 11
    # one more iteration from the stored state reproduces the previous fit's last image
    again = rfprior.reconstruct(y, op, stop=FixedIterations(), iterations=1, init=first, progress=False)
    assert torch.allclose(again.final_image, first.final_image, atol=1e-6 * float(first.final_image.abs().max()))
    assert again.settings["prior"] == first.settings["prior"]  # the previous fit's prior by default
    # the same through a result file (bit-exact weights) and through the CLI
    path = save_result(tmp_path / "first.nc", first, weights=True)
    state = load_weights(path)
    assert state.state_dict.keys() == first.weights.state_dict.keys()
    assert all(torch.equal(state.state_dict[k], v) for k, v in first.weights.state_dict.items())
    assert state.output_scale == pytest.approx(first.weights.output_scale)
    from_file = rfprior.reconstruct(y, op, stop=FixedIterations(), iterations=1, init=path, progress=False)
    assert torch.equal(from_file.final_image, again.final_image)


def test_cli_reconstruct_init(tmp_path, capsys):
    src = tmp_path / "a.h5"
    rfprior.scenes.simulate("partial_fourier", size=32, snr_db=20, seed=3, path=src)
    base = ["-q", "reconstruct", str(src), "--prior", "deep_decoder", "--stop", "fixed"]
    assert main([*base, "-o", str(tmp_path / "a.nc"), "--iterations", "8", "--weights"]) == 0
    assert main([*base, "-o", str(tmp_path / "b.nc"), "--iterations", "3", "--init", str(tmp_path / "a.nc")]) == 0
    b = load_result(tmp_path / "b.nc")
    assert b.attrs["settings"]["init"]["iteration"] == 7
    capsys.readouterr()
    # a result without weights is refused by name, exit 2
    assert main([*base, "-o", str(tmp_path / "c.nc"), "--iterations", "3", "--init", str(tmp_path / "b.nc")]) == 2
    assert "network_state" in capsys.readouterr().err


def test_warm_start_refuses_another_architecture_and_several_fits():
    op, y, _ = _pf()
    first = rfprior.reconstruct(y, op, stop=FixedIterations(), iterations=2, prior="deep_decoder", progress=False)
    with pytest.raises(ValueError, match="init: the previous fit's network"):
        rfprior.reconstruct(y, op, iterations=1, init=first, prior="dip_small", progress=False)
    with pytest.raises(ValueError, match="fits > 1"):
        rfprior.reconstruct(y, op, iterations=1, init=first, fits=2, progress=False)
    with pytest.raises(TypeError, match="init must be"):
        rfprior.reconstruct(y, op, iterations=1, init=3, progress=False)
    first.weights = None
    with pytest.raises(ValueError, match="weights"):
        save_result("unused.nc", first, weights=True)


class _Flag:
    """A stand-in for the batch's distributed.Event: set after ``after`` looks."""

    def __init__(self, after: int) -> None:
        self.after, self.looks = after, 0

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks > self.after


def test_stop_event_cancels_or_interrupts_and_the_rerun_redoes(tmp_path, monkeypatch, inputs):
    import rfprior._batch_task as task

    out = tmp_path / "r.nc"
    row, _ = run_file(str(inputs[0]), str(out), OPTIONS, stop_event=_Flag(0), threads=1)
    assert row["status"] == "cancelled" and not out.exists()
    monkeypatch.setattr(task, "POLL_SECONDS", 0.0)
    row, _ = run_file(str(inputs[0]), str(out), {**OPTIONS, "iterations": 500}, stop_event=_Flag(5), threads=1)
    assert row["status"] == "interrupted" and row["final_iteration"] < 10
    res = load_result(out)
    assert res.attrs["interrupted"] and "batch interrupted" in res.attrs["stop_reason"]
    assert not is_done(inputs[0], out)  # an interrupted result is redone on the next run
    row, _ = run_file(str(inputs[0]), str(out), OPTIONS, threads=1)
    assert row["status"] == "ok" and row["worker"] == "local" and is_done(inputs[0], out)
    bad, _ = run_file(str(inputs[2]), str(tmp_path / "bad.nc"), OPTIONS, threads=1)
    assert bad["status"] == "failed" and bad["error"].startswith("FormatError") and math.isnan(bad["psnr"])


def test_pick_device_spreads_workers_over_gpus():
    assert pick_device("cuda", 0, count=4) == "cuda:0"
    assert pick_device("cuda", 5, count=4) == "cuda:1"
    assert pick_device("cuda", "tcp://a:1", count=2) == pick_device("cuda", "tcp://a:1", count=2)
    assert pick_device("cuda", 3, count=1) == "cuda"  # one visible GPU per worker (dask-cuda)
    assert pick_device("cuda:1", 0, count=4) == "cuda:1" and pick_device("cpu", 0, count=4) == "cpu"
    assert pick_device(None, 0, count=4) is None


def test_batch_argument_errors(tmp_path, inputs):
    with pytest.raises(TypeError, match="unknown reconstruct option"):
        rfprior.batch(inputs, tmp_path, iteratons=3)
    with pytest.raises(ValueError, match="distinct file names"):
        rfprior.batch([inputs[0], tmp_path / "x" / inputs[0].name], tmp_path)
    with pytest.raises(ValueError, match="warm_start"):
        rfprior.batch(inputs, tmp_path, warm_start=True, fits=2)
    with pytest.raises(ValueError, match="workers"):
        rfprior.batch(inputs, tmp_path, workers=0)
    with pytest.raises(ValueError, match="stop must be one of"):
        rfprior.batch(inputs, tmp_path, stop="never")
    # the inputs are partial-Fourier files: the hold-out rule is refused before a cluster starts
    with pytest.raises(ValueError, match=r"'holdout' is not offered for partial-Fourier data \(scan0\.h5"):
        rfprior.batch(inputs, tmp_path, stop="holdout")
    assert not list(tmp_path.iterdir())  # nothing ran, nothing written


def test_cli_batch_without_dask_prints_the_install_hint(monkeypatch, capsys, inputs, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed → ImportError
    assert main(["batch", str(inputs[0]), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and INSTALL_HINT in err
    assert main(["batch", str(inputs[0]), "-o", str(tmp_path / "o"), "--workers", "0"]) == 2


def test_is_done_needs_a_finished_newer_result(tmp_path, inputs):
    op, y, _ = _pf()
    res = rfprior.reconstruct(y, op, stop=FixedIterations(), iterations=2, prior="deep_decoder", progress=False)
    out = save_result(tmp_path / "r.nc", res)
    assert is_done(inputs[0], out)
    os.utime(out, (1, 1))  # older than the input
    assert not is_done(inputs[0], out)
    assert not is_done(inputs[0], tmp_path / "missing.nc")
    junk = tmp_path / "junk.nc"
    junk.write_text("x")
    assert not is_done(inputs[0], junk)
    with h5py.File(out, "r+") as f:
        f.attrs["interrupted"] = 1
    os.utime(out)
    assert not is_done(inputs[0], out)
