"""benchmarks/capacity.py: its case split, its job list, one CPU fit of its smoke mode and the merge."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("skimage")  # the natural-image scenes of benchmarks/quality.py

from benchmarks import capacity
from benchmarks.quality import _label


def test_splits_keep_tuning_and_held_out_scenes_apart():
    tune, check = capacity.cases("tune"), capacity.cases("check")
    assert len(tune) == 14 and len(check) == 8 and len(capacity.cases("sl")) == 4
    assert {c["seed"] for c in tune} == {0, 1} and {c["seed"] for c in check} == {2, 3}
    assert {c["family"] for c in check if c["modality"] == "mimo"} == {"silhouette"}
    with pytest.raises(ValueError, match="split must be"):
        capacity.cases("all")


def test_jobs_pair_each_case_with_its_modality_variants_tuning_first():
    jobs = capacity.jobs()
    assert len(jobs) == 124  # tuning 8 × 7 + 6 × 4, held out 4 × 7 + 4 × 4
    assert jobs[0][0]["split"] == "tune" and jobs[-1][0]["split"] == "check"
    assert {v for c, v in jobs if c["modality"] == "mimo"} == set(capacity.VARIANTS["mimo"])
    only = capacity.jobs(("sl",), ("dip128",))
    assert len(only) == 4 and all(v == "dip128" and c["family"] == "shepp_logan" for c, v in only)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--part", "0/3"], "--part must be"),
        (["--part", "x"], "--part must be"),
        (["--variants", "dd65"], "unknown \\['dd65'\\]"),
        (["--splits", "tune,all"], "unknown split 'all'"),
    ],
)
def test_bad_arguments_are_refused_by_name(argv, message, capsys):
    with pytest.raises(SystemExit):
        capacity.main(argv)
    assert re.search(message, capsys.readouterr().err)


def test_a_part_writes_one_line_per_fit_and_the_summary_reads_it(tmp_path):
    argv = ["--splits", "sl", "--variants", "dd64 (default)", "--limit", "1", "--iterations", "3"]
    assert capacity.main([*argv, "--out", str(tmp_path)]) == 0
    (row,) = [json.loads(line) for line in (tmp_path / "part1of1.jsonl").read_text().splitlines()]
    assert row["variant"] == "dd64 (default)" and row["iterations"] == 3 and row["ran"] == 3
    assert row["machine"]["device"] == "cpu"
    assert capacity.VARIANTS["partial_fourier"]["dd64 (default)"][2] is None  # the override is not kept
    ref = {_label(row["case"]): {"bp": 10.0, "cgls": 11.0, "tv": row["psnr"] - 1.0, "l1": 12.0}}
    md = capacity.summarise([row], ref)
    assert "### partial_fourier, sl (1 cases)" in md
    assert "| dd64 (default) | 1 | 1.00 | 1.00 | 1 |" in md


def _row(psnr: float, variant: str = "dd64 (default)", iterations: int | None = None) -> dict:
    case = capacity.cases("sl")[0]
    machine = {"device": "cuda", "gpu": "GPU", "torch": "2", "tf32": False}
    return {"case": case, "variant": variant, "iterations": iterations, "lr": None, "psnr": psnr, "ssim": 0.5,
            "best_raw": psnr + 0.5, "chosen": 9, "ran": 10, "seconds": 1.0, "machine": machine}  # fmt: skip


def test_merge_keeps_the_first_of_repeated_fits_and_reports_their_spread(tmp_path):
    rows = [_row(20.0), _row(20.3), _row(21.0, iterations=6000), _row(19.0, "dd32")]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ref = {_label(rows[0]["case"]): {"bp": 10.0, "cgls": 10.0, "tv": 19.5, "l1": 10.0}}
    md, payload = capacity.merge(tmp_path, ref)
    assert len(payload["rows"]) == 3 and payload["repeat_differences"] == [0.3]  # another budget is no repeat
    assert "1 fits were run twice" in md and "+0.30 … +0.30 dB" in md and "TF32 False" in md
    assert "| dd32 | 1 | -0.50 |" in md
    with pytest.raises(ValueError, match="no classical reference"):
        capacity.merge(tmp_path, {})
    with pytest.raises(ValueError, match="no fits"):
        capacity.merge(tmp_path / "empty", ref)
