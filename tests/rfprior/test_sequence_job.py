"""A sequence file through the one job, the CLI, the comparison table and the figures."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import h5py
import pytest
import torch

import rfprior
from rfprior import io, plot
from rfprior.cli import main
from rfprior.modalities.base import Modality
from rfprior.problem import Problem, reconstruct_file
from rfprior.workflows import compare_sequence

SMALL = {"prior": "deep_decoder", "prior_kwargs": {"channels": 16, "layers": 3}}


@pytest.fixture
def sequence(tmp_path: Path) -> Path:
    path = tmp_path / "seq.h5"
    rfprior.scenes.simulate_frames("partial_fourier", frames=4, size=16, snr_db=20, seed=0, path=path)
    return path


def test_sequence_problem_reads_once_and_estimates_sigma_once_per_frame(sequence: Path, monkeypatch) -> None:
    seen: Counter = Counter()
    h5_init, estimate = h5py.File.__init__, Modality.estimate_sigma

    def counting_init(self, name, *args, **kwargs):
        if isinstance(name, (str, Path)):
            seen[Path(name).name] += 1
        h5_init(self, name, *args, **kwargs)

    def counting_estimate(self, op, y):
        seen["sigma"] += 1
        return estimate(self, op, y)

    monkeypatch.setattr(h5py.File, "__init__", counting_init)
    monkeypatch.setattr(Modality, "estimate_sigma", counting_estimate)
    p = Problem.from_file(sequence)
    assert seen["seq.h5"] == 1 and seen["sigma"] == 4
    assert p.frames == 4 and len(p.ops) == 4 and p.truth.shape == (4, 16, 16)
    assert p.sigma.source.startswith("median of per-frame") and p.size == sum(y.numel() for y in p.ys)
    masks = [op.mask for op in p.ops]
    assert not torch.equal(masks[0], masks[1])  # a different sampling pattern per frame
    name, direct = p.direct_image()
    assert name == "zero filled" and direct.shape == (4, 16, 16)


def test_sequence_file_round_trips_through_the_job_and_the_figures(sequence: Path, tmp_path: Path) -> None:
    job = reconstruct_file(sequence, tmp_path / "seq.nc", iterations=40, progress=False, **SMALL)
    res = job.result
    assert res.image.shape == (4, 16, 16) and res.settings["sequence"]["frames"] == 4
    saved = io.load_result(tmp_path / "seq.nc")
    assert saved["image"].dims == ("frame", "y", "x") and saved["backprojection"].shape == (4, 16, 16)
    assert torch.allclose(torch.as_tensor(saved["image"].values), res.image)
    assert saved["frame_misfit"].dims == ("iteration", "frame")
    strip = plot.frame_strip(
        {"truth": job.problem.truth, "joint": saved["image"].values}, every=2, path=tmp_path / "strip"
    )
    assert len(strip.axes) >= 4 and (tmp_path / "strip.png").is_file()
    gif = plot.animate(saved["image"].values, tmp_path / "seq.gif", fps=4)
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 4
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):
        plot.animate(saved["image"].values, tmp_path / "seq.avi")
    with pytest.raises(ValueError, match=r"\(F, H, W\)"):
        plot.frame_strip({"a": torch.zeros(2, 4, 4), "b": torch.zeros(3, 4, 4)})


def test_sequence_comparison_lists_every_fair_baseline(sequence: Path) -> None:
    problem = Problem.from_file(sequence)
    rows, results = compare_sequence(problem, iterations=20)
    names = [r.method for r in rows]
    assert names[0] == "zero filled per frame" and names[1] == "TV per frame (discrepancy)"
    assert names[2].startswith("spatio-temporal TV (discrepancy, λ=") and "w=" in names[2]
    assert names[3] == "prior per frame (warm start)" and names[4].endswith("joint (one network)")
    assert all(r.image.shape == (4, 16, 16) and r.psnr is not None for r in rows)
    # the discrepancy-tuned baselines meet the sequence's target at the problem's σ
    for r in rows[1:3]:
        assert r.misfit <= 1.1 * problem.size * float(problem.sigma) ** 2, r.method
    assert results["joint"].image.shape == (4, 16, 16)


def test_cli_reconstruct_and_compare_take_a_sequence_file(sequence: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli.nc"
    assert main(["-q", "reconstruct", str(sequence), "-o", str(out), "--iterations", "20", "--stop", "fixed"]) == 0
    assert io.load_result(out)["image"].shape == (4, 16, 16)
    assert "fixed budget" in io.load_result(out).attrs["stop_reason"]
    table = tmp_path / "table.json"
    assert main(["-q", "compare", str(sequence), "--iterations", "10", "--json", str(table)]) == 0
    rows = json.loads(table.read_text())
    assert [r["method"] for r in rows][2].startswith("spatio-temporal TV")
    assert main(["-q", "compare", str(sequence), "--priors", "dip"]) == 2
    assert "sequence" in capsys.readouterr().err
    assert main(["-q", "reconstruct", str(sequence), "-o", str(tmp_path / "x.nc"), "--stop", "holdout"]) == 2
    assert not (tmp_path / "x.nc").exists()
