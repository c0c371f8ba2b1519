"""benchmarks/gpu.py (issue 21's prepared device run) in its CPU smoke mode: every stage's plumbing."""

from __future__ import annotations

import pytest

pytest.importorskip("skimage")  # the natural-image scenes of benchmarks/quality.py

from benchmarks import gpu


def test_smoke_reports_the_step_split_and_the_time_to_result(capsys):
    assert gpu.main(["--smoke", "--device", "cpu", "--threads", "1", "--modalities", "partial_fourier"]) == 0
    out = capsys.readouterr().out
    assert "## Cost of one step" in out and "## Time to result of the defaults" in out
    assert "| partial_fourier | 32² | deep_decoder |" in out
    assert "## CUDA tests" not in out  # a CPU run does not pretend to have run them


def test_step_split_times_every_part_on_the_default_network():
    r = gpu.step_split("mimo", 32, "cpu", reps=2)
    assert r["prior"] == "dip_small" and r["peak_mib"] is None
    assert 0 < r["operator_ms"] and 0 < r["network_ms"] and 0 < r["step_ms"]
