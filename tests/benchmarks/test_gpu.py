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


def test_skipped_stages_are_absent_and_a_measured_cpu_time_to_result_is_kept(capsys):
    argv = ["--smoke", "--device", "cpu", "--threads", "1", "--modalities", "partial_fourier"]
    assert gpu.main([*argv, "--skip", "split,nudft,cpu", "--cpu-ttr-sizes", "32"]) == 0
    out = capsys.readouterr().out
    assert "## Cost of one step" not in out and "## Tomography NUDFT paths" not in out
    assert "## Time to result of the defaults" in out and "set-up + penalty weight s" in out
    assert "## Stages that failed" not in out


def test_summary_puts_the_measured_cpu_time_beside_the_device_time():
    case = {"modality": "mimo", "size": 256}
    row = {"case": case, "prior": "dip_small", "penalty_seconds": 1.0, "iterations": 100,
           "seconds_per_iteration": 0.01, "psnr": 20.0}  # fmt: skip
    state = {
        "info": {
            "machine": {"torch": "x", "cpu_count": 16},
            "device": "cuda",
            "device_name": "GPU",
            "threads": 16,
            "budget": 10.0,
        },
        "split": [
            {
                "modality": "mimo",
                "size": 256,
                "device": "cpu",
                "prior": "dip_small",
                "operator_ms": 1.0,
                "network_ms": 1.0,
                "step_ms": 80.0,
                "peak_mib": None,
            }
        ],
        "ttr": [{**row, "device": "cuda", "seconds": 2.0}],
        "cpu_ttr": [{**row, "device": "cpu", "seconds": 10.0}],
    }
    md = gpu.summarise(state)
    # device row: estimate 100 × 80 ms = 8 s (4× the device), measured 10 s (5×)
    assert "| mimo | 256² | cuda | dip_small | 2.00 | 1.00 | 100 | 10.00 | 20.00 | 8.00 | 4.00 | 10.00 | 5.00 |" in md
    assert "| mimo | 256² | cpu | dip_small | 10.00 |" in md
