"""One Problem per input, one job for every entry point: each input is read once and its σ estimated once."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from pathlib import Path

import h5py
import pytest
import torch

import rfprior
from rfprior import io
from rfprior._batch_task import run_file
from rfprior.cli import main
from rfprior.modalities.base import Modality
from rfprior.noise import NoiseLevel
from rfprior.problem import Problem, reconstruct_file
from rfprior.workflows import run_demo


@pytest.fixture
def measurement(tmp_path: Path) -> Path:
    path = tmp_path / "pf.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rfprior.scenes.simulate("partial_fourier", size=16, snr_db=20, seed=0, path=path)
    return path


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts the HDF5 opens per file name and the σ estimates (any forward model's)."""
    seen: Counter = Counter()
    h5_init = h5py.File.__init__

    def counting_init(self, name, *args, **kwargs):
        if isinstance(name, (str, Path)):
            seen[("open", Path(name).name)] += 1
        h5_init(self, name, *args, **kwargs)

    estimate = Modality.estimate_sigma

    def counting_estimate(self, op, y):
        seen["sigma"] += 1
        return estimate(self, op, y)

    monkeypatch.setattr(h5py.File, "__init__", counting_init)
    monkeypatch.setattr(Modality, "estimate_sigma", counting_estimate)
    return seen


def test_problem_reads_once_and_settles_sigma_once(measurement: Path, counts: Counter) -> None:
    p = Problem.from_file(measurement)
    assert counts[("open", "pf.h5")] == 1 and counts["sigma"] == 1
    assert isinstance(p.sigma, NoiseLevel) and p.sigma.source == "partial_fourier_outer_kspace"
    assert p.modality is rfprior.modalities.get("partial_fourier") and p.image_dims == ("y", "x")
    assert p.truth is not None and tuple(p.truth.shape) == p.op.in_shape
    # the true σ is in the file; the estimate is close to it, the file's value is taken only when asked
    true = io.load(measurement).attrs["noise_sigma"]
    assert 0.7 < p.sigma / true < 1.4
    assert Problem.from_file(measurement, sigma="file").sigma == pytest.approx(true)
    assert Problem.from_file(measurement, sigma="file").sigma.source == "file"
    assert Problem.from_file(measurement, sigma=0.5).sigma.source == "given"
    with pytest.raises(ValueError, match="positive finite"):
        Problem.from_file(measurement, sigma=-1.0)


def test_reconstruct_file_reads_once_and_estimates_sigma_once(measurement: Path, counts: Counter, tmp_path) -> None:
    job = reconstruct_file(measurement, tmp_path / "r.nc", iterations=3, progress=False)
    assert counts[("open", "pf.h5")] == 1 and counts["sigma"] == 1  # the penalty weight and the rule share it
    res = job.result
    assert res.settings["penalty"]["sigma"] == pytest.approx(float(job.problem.sigma))
    assert res.settings["penalty"]["sigma_estimator"] == job.problem.sigma.source
    assert res.rule_summaries["discrepancy"]["sigma_source"] == job.problem.sigma.source
    saved = io.load_result(tmp_path / "r.nc")
    assert saved.attrs["source"] == str(measurement) and saved.attrs["modality"] == "partial_fourier"
    # the same as rfprior.reconstruct(y, op) with nothing given: the same σ and the same image
    op, y = io.operator_from(measurement)
    api = rfprior.reconstruct(y, op, iterations=3, progress=False)
    assert api.sigma == pytest.approx(res.sigma) and torch.equal(api.image, res.image)


def test_cli_reconstruct_reads_once_and_estimates_sigma_once(measurement: Path, counts: Counter, tmp_path) -> None:
    assert main(["-q", "reconstruct", str(measurement), "-o", str(tmp_path / "r.nc"), "--iterations", "3"]) == 0
    assert counts[("open", "pf.h5")] == 1 and counts["sigma"] == 1


def test_cli_compare_estimates_sigma_once_for_priors_and_baselines(measurement: Path, counts: Counter) -> None:
    assert main(["-q", "compare", str(measurement), "--iterations", "3"]) == 0
    assert counts[("open", "pf.h5")] == 1 and counts["sigma"] == 1


def test_batch_task_reads_once_and_estimates_sigma_once(measurement: Path, counts: Counter, tmp_path) -> None:
    row, _ = run_file(str(measurement), str(tmp_path / "r.nc"), {"iterations": 3}, threads=1)
    assert row["status"] == "ok", row["error"]
    assert counts[("open", "pf.h5")] == 1 and counts["sigma"] == 1
    assert math.isclose(row["sigma"], io.load_result(tmp_path / "r.nc").attrs["sigma"])


@pytest.mark.slow
def test_demo_reads_once_and_estimates_sigma_once(counts: Counter, tmp_path) -> None:
    path = tmp_path / "mimo.h5"
    rfprior.scenes.simulate("mimo", size=16, snr_db=20, seed=0, path=path, n_freq=32)
    counts.clear()
    summary = run_demo(tmp_path / "demo", path=path, iterations=3, progress=False)
    assert counts[("open", "mimo.h5")] == 1 and counts["sigma"] == 1
    assert summary["sigma_estimated"] is not None and "backprojection" in summary["table"]


def test_baselines_use_the_problems_sigma_and_report_their_exact_parameters(measurement: Path) -> None:
    import operators as ops
    from rfprior.workflows import classical_baselines

    p = Problem.from_file(measurement)
    found = classical_baselines(p.op, p.y, sigma=p.sigma)
    labels = list(found)
    assert labels[0] == "zero filled" and set(found.parameters) == {"cgls", "tv", "l1"}
    assert f"λ={found.parameters['tv']:.2g}" in labels[2] and f"{found.parameters['cgls']} it" in labels[1]
    # the exact λ is the TV-discrepancy choice at the problem's σ: solving TV at it gives the same image
    tv = ops.tv_discrepancy(p.op, p.y, float(p.sigma))
    assert tv.parameter == found.parameters["tv"] and torch.equal(tv.image, found[labels[2]][0])
    # each baseline meets the discrepancy target it was tuned to (within the search's tolerance)
    for label in labels[1:]:
        assert p.misfit(found[label][0]) <= 1.1 * p.size * float(p.sigma) ** 2, label
