"""benchmarks/time_to_result.py in its smoke mode: the machinery, not the numbers."""

from __future__ import annotations

import pytest

pytest.importorskip("skimage")  # the natural-image scenes of benchmarks/quality.py

from benchmarks import time_to_result


@pytest.mark.slow
def test_smoke_times_every_forward_model_with_its_default(capsys):
    assert time_to_result.main(["--smoke", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for mod in time_to_result.CASES:
        assert f"| {mod} | 32² |" in out
    # the radar default is the skip network, the others the Deep Decoder (rfprior.defaults)
    assert "| mimo | 32² | dip_small |" in out and "| partial_fourier | 32² | deep_decoder |" in out


def test_row_accounts_for_the_penalty_and_the_iterations():
    r = time_to_result.run_case("partial_fourier", 32, None, 5)
    assert r["iterations"] == 5 and 0 < r["penalty_seconds"] and 0 < r["loop_seconds"] < r["seconds"]
    assert r["seconds_per_iteration"] == pytest.approx(r["loop_seconds"] / 5)
