"""benchmarks/fullwave.py in its smoke mode: the machinery (simulation without the inverse crime, inclusions,
every method on the same σ, the summary's verdict), not the numbers."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import fullwave  # noqa: E402
from operators import LippmannSchwinger  # noqa: E402

SMOKE = fullwave.TIERS["smoke"]


def test_fine_grid_nests_in_the_coarse_pixels():
    x = np.linspace(-0.075, 0.0703125, 32)
    xf = fullwave.fine_grid(x)
    assert len(xf) == 64 and np.allclose(xf.reshape(32, 2).mean(axis=1), x)
    assert np.allclose(np.diff(xf), (x[1] - x[0]) / 2)


def test_data_are_simulated_on_the_fine_grid_in_the_coarse_units():
    sim = fullwave.simulate({"family": "square", "seed": 0, "snr": 200}, SMOKE)  # noise negligible
    g, truth = sim["geometry"], sim["truth"]
    assert sim["fine_scene"].shape == (32, 32) and truth.shape == (16, 16)
    assert torch.allclose(truth, sim["fine_scene"].reshape(16, 2, 16, 2).mean(dim=(1, 3)))
    coarse = LippmannSchwinger(g["tx"], g["rx"], g["frequencies"], g["x"], g["z"], dtype=torch.complex128)
    y = sim["y"].to(torch.complex128)
    gap = float((coarse.forward(truth) - y).norm() / y.norm())
    assert 1e-4 < gap < 0.1  # the same object at the same scale, but not the model that inverts it


@pytest.mark.parametrize(("family", "names"), [("nested", {"ring", "inner"}), ("square", {"square"})])
def test_inclusions(family, names):
    sim = fullwave.simulate({"family": family, "seed": 0, "snr": 20}, SMOKE)
    parts = fullwave.inclusions(sim["fine_scene"], family)
    assert {p["name"] for p in parts} == names
    truth = sim["truth"].real.numpy()
    for p in parts:  # each mask: the pixels whose truth is nearer to the inclusion's χ than to 0
        assert p["mask"].any() and (truth[p["mask"]] > p["value"] / 2).all()
    if family == "nested":
        ring, inner = sorted(parts, key=lambda p: p["value"])
        assert 0.3 <= ring["value"] <= 1.0 and 1.5 <= inner["value"] <= 3.0 and not (ring["mask"] & inner["mask"]).any()


@pytest.mark.slow
def test_smoke_case_scores_every_method_with_one_sigma():
    case = {"family": "nested", "seed": 0, "snr": 20}
    row = {"case": case, **fullwave.run_case(case, SMOKE)}
    assert set(row["methods"]) == set(fullwave.METHODS)
    assert 0.5 < row["sigma"] / row["sigma_true"] < 2.0  # the radiation-complement estimate
    for m in row["methods"].values():
        assert math.isfinite(m["error"]) and m["seconds"] >= 0 and len(m["inclusions"]) == len(row["inclusions"])
    info = {"machine": fullwave.machine(), "threads": 1, "tier": "smoke"}
    md = fullwave.summarise([row], SMOKE, info)
    assert "Done-when" in md and "not decided" in md and "prior, full wave" in md
    verdict = fullwave.verdict([row, {**row, "case": {**case, "snr": 30}}])
    assert verdict["complete"] and isinstance(verdict["holds"], bool)


def test_kept_scores_come_back_from_the_compact_results_file():
    """``--keep`` reads other methods' scores back from ``compact``'s tables (a rerun of the prior alone)."""
    case = {"family": "nested", "seed": 0, "snr": 20}
    methods = {
        "csi_mr": {"error": 0.2125, "seconds": 8.0, "iterations": 40, "inclusions": [[1.0, -0.1], [2.5, -0.2]]},
        "prior_fullwave": {"error": 0.3, "seconds": 70.0, "chosen": 399, "inclusions": [[0.9, 0.0], [2.0, 0.0]]},
    }
    incl = [{"name": "outer", "value": 1.2, "pixels": 40}, {"name": "inner", "value": 2.8, "pixels": 9}]
    row = {"case": case, "sigma": 1.0, "sigma_true": 1.1, "inclusions": incl, "methods": methods}
    back = fullwave.uncompact(fullwave.compact([row]), ("csi_mr",))
    assert back == [{"case": case, "methods": {"csi_mr": methods["csi_mr"]}}]
    # a method the file lacks for a case is left out (and run again by --keep)
    assert fullwave.uncompact(fullwave.compact([row]), ("born_tv", "csi_mr")) == back


def test_rerun_runs_only_the_named_method_and_keeps_the_rest(tmp_path, capsys):
    """``--rerun born_tv``: Born-TV is run again on the file's cases; every other score stays as it was."""
    import json

    case = {"family": "nested", "seed": 0, "snr": 20}  # the smoke tier's case
    methods = {
        "csi_mr": {"error": 0.25, "seconds": 8.0, "iterations": 40, "inclusions": [[1.0, 0.0], [2.5, 0.0]]},
        "prior_fullwave": {"error": 0.5, "seconds": 70.0, "chosen": 399, "inclusions": [[0.9, 0.0], [2.0, 0.0]]},
    }
    incl = [{"name": "ring", "value": 0.6, "pixels": 40}, {"name": "inner", "value": 2.2, "pixels": 9}]
    row = {"case": case, "sigma": 1.0, "sigma_true": 1.1, "inclusions": incl, "methods": methods}
    (tmp_path / "fullwave.json").write_text(json.dumps(fullwave.compact([row])))
    assert fullwave.main(["--smoke", "--rerun", "born_tv", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    medians = next(line for line in out.splitlines() if line.startswith("| 20 | 1 |"))
    cells = [c.strip() for c in medians.strip("|").split("|")]
    assert cells[2] not in ("–", "") and cells[3] == "0.250" and cells[-1] == "0.500"  # Born-TV ran; kept
    with pytest.raises(SystemExit, match="--rerun: unknown"):
        fullwave.main(["--smoke", "--rerun", "nope", "--out", str(tmp_path)])
