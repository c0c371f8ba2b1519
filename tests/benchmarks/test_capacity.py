"""benchmarks/capacity.py: its case split, its job list and one CPU fit of its smoke mode."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("skimage")  # the natural-image scenes of benchmarks/quality.py

from benchmarks import capacity
from benchmarks.quality import _label


def test_splits_keep_tuning_and_held_out_scenes_apart():
    tune, check = capacity.cases("tune"), capacity.cases("check")
    assert len(tune) == 14 and len(check) == 8
    assert {c["seed"] for c in tune} == {0, 1} and {c["seed"] for c in check} == {2, 3}
    assert {c["family"] for c in check if c["modality"] == "mimo"} == {"silhouette"}
    with pytest.raises(ValueError, match="split must be"):
        capacity.cases("all")


def test_jobs_pair_each_case_with_its_modality_variants_tuning_first():
    jobs = capacity.jobs()
    assert len(jobs) == sum(len(capacity.VARIANTS[c["modality"]]) for s in ("tune", "check") for c in capacity.cases(s))
    assert jobs[0][0]["split"] == "tune" and jobs[-1][0]["split"] == "check"
    only = capacity.jobs(("sl",), ("dip128",))
    assert len(only) == 4 and all(v == "dip128" and c["family"] == "shepp_logan" for c, v in only)


def test_a_part_writes_one_line_per_fit_and_the_summary_reads_it(tmp_path):
    argv = [
        "--splits",
        "sl",
        "--variants",
        "dd64 (default)",
        "--limit",
        "1",
        "--iterations",
        "3",
        "--out",
        str(tmp_path),
    ]
    assert capacity.main(argv) == 0
    (row,) = [json.loads(line) for line in (tmp_path / "part1of1.jsonl").read_text().splitlines()]
    assert row["variant"] == "dd64 (default)" and row["ran"] == 3 and row["chosen"] <= 3
    assert row["best_raw"] > 0 and row["machine"]["device"] == "cpu"
    ref = {_label(row["case"]): {"bp": 10.0, "cgls": 11.0, "tv": row["psnr"] - 1.0, "l1": 12.0}}
    md = capacity.summarise([row], ref)
    assert "### partial_fourier, sl (1 cases)" in md
    assert "| dd64 (default) | 1 | 1.00 | 1.00 | 1 |" in md
