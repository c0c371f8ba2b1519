"""benchmarks/harness.py: the case grid, the resumable runner and its part files, the shared pieces."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import harness


def test_grid_is_the_product_first_axis_outermost():
    cases = harness.grid(modality="mimo", snr=[10, 20], seed=range(2), mask=None)
    assert cases == [
        {"modality": "mimo", "snr": 10, "seed": 0},
        {"modality": "mimo", "snr": 10, "seed": 1},
        {"modality": "mimo", "snr": 20, "seed": 0},
        {"modality": "mimo", "snr": 20, "seed": 1},
    ]


def _counting():
    calls: list[dict] = []

    def compute(case: dict) -> dict:
        calls.append(case)
        return {"value": 10 * case["seed"]}

    return calls, compute


def test_a_second_run_computes_nothing_and_a_new_case_is_appended(tmp_path):
    part = harness.part_path(tmp_path, "study")
    assert part.name == "study_part1of1.json"
    calls, compute = _counting()
    cases = harness.grid(seed=range(3))
    rows = harness.run(cases, compute, part, log=None)
    assert [r["value"] for r in rows] == [0, 10, 20] and len(calls) == 3
    assert [r["case"] for r in json.loads(part.read_text())["rows"]] == cases
    again = harness.run(cases, compute, part, log=None)  # resumed: nothing new to compute
    assert again == rows and len(calls) == 3
    more = harness.run([*cases, {"seed": 7}], compute, part, log=None)
    assert len(calls) == 4 and calls[-1] == {"seed": 7} and more[-1]["value"] == 70
    assert [r["case"]["seed"] for r in harness.read_part(part)["rows"]] == [0, 1, 2, 7]


def test_an_interrupted_run_keeps_what_it_finished(tmp_path):
    part = harness.part_path(tmp_path, "study")

    def fails_at_two(case: dict) -> dict:
        if case["seed"] == 2:
            raise KeyboardInterrupt
        return {"value": case["seed"]}

    with pytest.raises(KeyboardInterrupt):
        harness.run(harness.grid(seed=range(4)), fails_at_two, part, log=None)
    calls, compute = _counting()
    rows = harness.run(harness.grid(seed=range(4)), compute, part, log=None)
    assert [c["seed"] for c in calls] == [2, 3] and [r["case"]["seed"] for r in rows] == [0, 1, 2, 3]


def test_rows_done_elsewhere_are_kept_and_written_to_the_part(tmp_path):
    part = harness.part_path(tmp_path, "study", "2/3")
    assert part.name == "study_part2of3.json"
    calls, compute = _counting()
    done = [{"case": {"seed": 1}, "value": -1}]
    rows = harness.run(harness.grid(seed=[1, 2]), compute, part, done=done, log=None)
    assert [r["value"] for r in rows] == [-1, 20] and calls == [{"seed": 2}]
    assert harness.read_part(part)["rows"] == rows  # complete for a later merge


def test_a_part_made_with_other_settings_is_refused(tmp_path):
    part = harness.part_path(tmp_path, "study")
    _, compute = _counting()
    harness.run([{"seed": 0}], compute, part, settings={"budget": 10}, log=None)
    with pytest.raises(SystemExit, match="other settings"):
        harness.run([{"seed": 0}], compute, part, settings={"budget": 20}, log=None)


def test_a_custom_key_matches_cases_and_a_wrong_row_is_refused(tmp_path):
    part = harness.part_path(tmp_path, "study")
    calls, compute = _counting()
    harness.run([{"seed": 1, "tag": "a"}], compute, part, key=lambda c: str(c["seed"]), log=None)
    harness.run([{"seed": 1, "tag": "b"}], compute, part, key=lambda c: str(c["seed"]), log=None)
    assert len(calls) == 1
    with pytest.raises(ValueError, match="another case"):
        harness.run([{"seed": 3}], lambda c: {"case": {"seed": 4}}, None, log=None)


def test_parts_merge_in_order_and_finish_removes_them(tmp_path):
    _, compute = _counting()
    for i in (1, 2):
        harness.run(harness.grid(seed=range(4))[i - 1 :: 2], compute, harness.part_path(tmp_path, "s", f"{i}/2"))
    rows = harness.merge_parts(tmp_path, "s", 2)
    assert [r["case"]["seed"] for r in rows] == [0, 2, 1, 3]
    harness.finish(tmp_path, "s", 2)
    assert not list(tmp_path.glob("s_part*"))
    with pytest.raises(SystemExit, match="missing part"):
        harness.merge_parts(tmp_path, "s", 2)
    with pytest.raises(SystemExit, match="1 ≤ i ≤ n"):
        harness.parse_part("3/2")


def test_outputs_tables_and_statistics(tmp_path):
    harness.write_outputs("x", {"a": [1.5], "t": torch.ones(2)}, "# x", tmp_path)
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [1.5], "t": [1.0, 1.0]}
    assert (tmp_path / "x.md").read_text() == "# x\n"
    table = harness.md_table(["a", "b"], [[1.234, None], ["s", float("nan")]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1.23 | – |", "| s | nan |"]
    assert harness.quantile([3.0, 1.0, 2.0, float("nan")], 0.5) == 2.0
    assert harness.timed(lambda: 5)[0] == 5 and harness.median_time(lambda: None, repeats=2) >= 0


def test_simulate_gives_the_operator_data_truth_and_sigma():
    op, y, truth, sigma = harness.simulate({"modality": "partial_fourier", "size": 16, "snr": 20, "seed": 0})
    assert tuple(y.shape) == tuple(op.out_shape) and tuple(truth.shape) == tuple(op.in_shape) and sigma > 0
