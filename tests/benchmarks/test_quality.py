"""benchmarks/quality.py (issue 17) in its smoke mode: the machinery, not the numbers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("skimage")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import quality  # noqa: E402


@pytest.fixture(scope="module")
def row():
    case = quality.cases("smoke")[0]
    assert case["modality"] == "partial_fourier"
    return quality.run_case(case, variants=("plain",), iterations=20)


def test_every_method_is_scored(row):
    assert set(quality.METHODS) | {"prior_plain"} == set(row["scores"])
    for s in row["scores"].values():
        assert 0 < s["psnr"] < 100 and -1 <= s["ssim"] <= 1 and s["seconds"] >= 0


def test_the_oracle_is_a_ceiling_for_tv(row):
    # the oracle grid contains the discrepancy choice, so it can never be below it
    assert row["scores"]["tv_oracle"]["psnr"] >= row["scores"]["tv"]["psnr"]


def test_baselines_and_prior_share_the_estimated_sigma(row):
    info = row["info"]
    assert info["sigma_estimator"] == "partial_fourier_outer_kspace" and info["sigma_hat"] > 0
    assert info["tv_lambda"] > 0 and info["l1_lambda"] > 0


def test_summary_names_every_method_and_the_comparison(row, tmp_path):
    md = quality.summarise([row], "smoke")
    for m in quality.METHODS:
        assert f"| {m} " in md or f" {m} |" in md
    assert "prior − best classical" in md
    quality.figure([row], tmp_path / "q")
    assert (tmp_path / "q_figure.pdf").stat().st_size > 0


@pytest.mark.parametrize("family", ["natural", "blobs", "silhouette"])
def test_check_scenes_follow_the_physics(family):
    import torch

    mod = {"natural": "partial_fourier", "blobs": "diffraction_tomography", "silhouette": "mimo"}[family]
    case = {"modality": mod, "family": family, "size": 32, "snr": 20, "seed": 2}
    if mod == "partial_fourier":
        case["mask"] = "cart8"
    op, y, truth = quality.make_case(case)
    assert tuple(truth.shape) == op.in_shape and tuple(y.shape) == op.out_shape
    if family == "silhouette":  # point targets carry random phases, not one common phase
        pts = truth[(truth.abs() > 0.45)]
        assert float(torch.angle(pts).std()) > 0.5
    if family == "natural":  # a natural image with a smooth, non-trivial phase
        assert float(torch.angle(truth).std()) > 0.1 and float(truth.abs().max()) == pytest.approx(1.0)


def test_prior_only_keeps_the_classical_scores_and_reruns_the_prior(row):
    import json

    previous = json.loads(json.dumps(row))  # as read back from the results file
    previous["scores"]["tv"]["psnr"] = -1.0  # a marker: kept, not recomputed
    again = quality.run_case(row["case"], variants=(), iterations=20, previous=previous)
    assert again["scores"]["tv"]["psnr"] == -1.0
    assert set(again["scores"]) == set(quality.METHODS)  # the earlier variant is not carried over
    assert again["scores"]["prior"]["psnr"] == pytest.approx(row["scores"]["prior"]["psnr"], abs=1e-6)
    other = dict(row["case"], seed=row["case"]["seed"] + 1)
    with pytest.raises(ValueError, match="earlier row is for"):
        quality.run_case(other, iterations=20, previous=previous)


def test_keep_done_runs_only_the_cases_the_results_lack(row, tmp_path):
    """``--keep-done`` (after a tier grew): rows already in the tier's results are kept, the others run."""
    import json

    smoke = quality.cases("smoke")
    kept = []
    for case in smoke[1:]:  # the first case is missing: it must run
        r = json.loads(json.dumps(row))
        r["case"] = case
        r["scores"]["tv"]["psnr"] = -1.0  # a marker: kept, not recomputed
        kept.append(r)
    (tmp_path / "quality_smoke.json").write_text(json.dumps({"tier": "smoke", "rows": kept}))
    assert quality.main(["--smoke", "--keep-done", "--outdir", str(tmp_path)]) == 0
    rows = {quality._label(r["case"]): r for r in json.loads((tmp_path / "quality_smoke.json").read_text())["rows"]}
    assert set(rows) == {quality._label(c) for c in smoke}
    assert all(rows[quality._label(c)]["scores"]["tv"]["psnr"] == -1.0 for c in smoke[1:])
    assert rows[quality._label(smoke[0])]["scores"]["tv"]["psnr"] > 0  # computed
    # a part whose cases are all done runs nothing and still writes its part file (for --merge)
    assert quality.main(["--smoke", "--keep-done", "--part", "2/2", "--outdir", str(tmp_path)]) == 0
    part = json.loads((tmp_path / "quality_smoke_part2of2.json").read_text())["rows"]
    assert [quality._label(r["case"]) for r in part] == [quality._label(c) for c in smoke[1::2]]
    assert all(r["scores"]["tv"]["psnr"] == -1.0 for r in part)
    with pytest.raises(SystemExit, match="pick one"):
        quality.main(["--smoke", "--keep-done", "--prior-only", "--outdir", str(tmp_path)])
    with pytest.raises(SystemExit, match="no earlier results"):
        quality.main(["--smoke", "--keep-done", "--outdir", str(tmp_path / "empty")])


def test_the_baselines_are_the_products(monkeypatch):
    """The four non-oracle baselines come from rfprior.workflows.classical_baselines, at the σ given."""
    import rfprior.workflows as wf

    seen: dict = {}
    real = wf.classical_baselines

    def spy(op, y, **kw):
        seen["kw"], seen["out"] = kw, real(op, y, **kw)
        return seen["out"]

    monkeypatch.setattr(wf, "classical_baselines", spy)
    op, y, _ = quality.make_case(quality.cases("smoke")[0])
    images, secs, info = quality.classical_baselines(op, y, 0.02)
    assert seen["kw"] == {"sigma": 0.02}
    assert all(images[k] is img for k, (img, _) in zip(quality.CLASSICAL, seen["out"].values(), strict=True))
    assert list(secs.values()) == [s for _, s in seen["out"].values()]
    assert info["baselines"] == list(seen["out"]) and f"{info['cgls_iterations']} it" in info["baselines"][1]
    assert f"λ={info['tv_lambda']:.2g}" in info["baselines"][2]  # the exact λ of the product's TV image


def test_a_run_resumes_from_its_part_file_and_summarises_every_case(row, tmp_path):
    """Cases already in the part file are not run again; the summary lists every case; the part is then removed."""
    import json

    smoke = quality.cases("smoke")
    rows = []
    for case in smoke:
        r = json.loads(json.dumps(row))
        r["case"] = case
        r["scores"]["tv"]["psnr"] = -1.0  # a marker: kept, not recomputed
        rows.append(r)
    part = tmp_path / "quality_smoke_part1of1.json"
    part.write_text(json.dumps({"settings": None, "rows": rows}))
    assert quality.main(["--smoke", "--outdir", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "quality_smoke.json").read_text())["rows"]
    assert [r["case"] for r in out] == smoke and all(r["scores"]["tv"]["psnr"] == -1.0 for r in out)
    assert not part.exists()
    md = (tmp_path / "quality_smoke.md").read_text()
    for case in smoke:
        assert f"| {quality._label(case)} |" in md
        assert f"| {case['modality']} | {case['family']}" in md  # one row per group in the first table
