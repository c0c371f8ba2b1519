"""benchmarks/sequences.py: a case runs every method on the same data and the summary compares them."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import sequences  # noqa: E402


@pytest.mark.parametrize("family", ["kspace4", "radar"])
def test_a_case_scores_every_method_against_the_same_truth(family: str) -> None:
    case = {"family": family, "size": 16, "frames": 3, "seed": 0, "snr": 20}
    ys, ops, truth, sigma = sequences.simulate(case)
    assert len(ys) == len(ops) == 3 and truth.shape == (3, 16, 16)
    if family == "kspace4":  # a different sampling pattern per frame
        assert not (ops[0].mask == ops[1].mask).all()
    else:  # one radar geometry for all frames
        assert ops[0] is ops[1]
    row = sequences.run_case(case, iterations=5, prior_every=2)
    scores = row["scores"]
    assert set(scores) == {"joint", "tv", "sttv", "prior"} and scores["prior"]["frames"] == [0, 2]
    for s in scores.values():
        assert math.isfinite(s["psnr"]) and len(s["psnr_frames"]) == len(s.get("frames", range(3)))
    assert 0.5 < row["sigma"] / sigma < 2.0  # σ estimated from the data, near the true one
    md = sequences.summarise([{"case": case, **row}], "smoke")
    assert "joint − best TV" in md and family in md
