"""benchmarks/time_to_result.py and benchmarks/penalty_weight.py in smoke mode: the machinery, not the numbers."""

from __future__ import annotations

import pytest

pytest.importorskip("skimage")  # the natural-image scenes of benchmarks/quality.py

from benchmarks import penalty_weight, time_to_result


@pytest.mark.slow
def test_smoke_times_every_forward_model_against_the_previous_default_and_tv(capsys):
    assert time_to_result.main(["--smoke", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for mod in time_to_result.CASES:
        assert f"| {mod} | 32² | 1 |" in out
    for method in time_to_result.METHODS:
        assert f"{method} " in out  # each method's line per case


def test_row_splits_the_step_and_accounts_for_the_time_outside_the_loop():
    case = time_to_result.held_out_case("partial_fourier", 32)
    r = time_to_result.run_case(case, None, 5, ["default", "previous"])
    d, p = r["default"], r["previous"]
    assert d["iterations"] == p["iterations"] == 5
    assert 0 < d["outside_seconds"] < d["seconds"]
    assert d["loop_seconds"] == pytest.approx(d["seconds"] - d["outside_seconds"])
    assert d["ms_per_iteration"] == pytest.approx(1000 * d["loop_seconds"] / 5)
    assert d["network_ms"] > 0 and d["operator_ms"] > 0 and d["rest_ms"] >= 0
    # the previous default differs only in the weight's search: the same order of weight
    assert p["penalty_weight"] == pytest.approx(d["penalty_weight"], rel=0.3)


def test_unknown_method_is_refused():
    with pytest.raises(SystemExit):
        time_to_result.main(["--smoke", "--methods", "default,magic"])


@pytest.mark.slow
def test_penalty_weight_study_reports_each_step_budget_against_the_reference(capsys):
    assert penalty_weight.main(["--smoke", "--threads", "1", "--iters", "100,30"]) == 0
    out = capsys.readouterr().out
    for mod in time_to_result.CASES:
        assert f"| {mod} | 32² | 100 | 1 |" in out and f"| {mod} | 32² | 30 | 1 |" in out
    assert "| 1.00 |" in out or "| 1 |" in out  # the reference against itself
