"""Warm start vs cold start on simulated frame sequences (``rfprior.batch(..., warm_start=True)``).

A moving extended target plus static points (:func:`rfprior.scenes.simulate_sequence`),
20 frames, one acquisition, fresh noise per frame at 20 dB; MIMO radar 48² (``dip_small``)
and partial Fourier 64² (4× variable density, ``deep_decoder``): the default prior per
modality and the default rules (discrepancy with σ estimated from the data, running
average), budget 1500 iterations — nothing tuned for the warm start.

Both runs go through :func:`rfprior.batch` on a one-worker ``LocalCluster`` with one torch
thread: cold = every frame from its seeded initialisation; warm = frame 0 cold, then frame
``t`` from frame ``t − 1``'s network. Reported over frames 1…19 (frame 0 is the same fit in
both): iterations to the rule's choice (chosen iteration + 1), PSNR of the returned image,
wall time per frame.

    PYTHONPATH=. python -m benchmarks.warm_start [--frames 20] [--modality mimo partial_fourier]
    # or one modality per process, then merge:
    PYTHONPATH=. python -m benchmarks.warm_start --modality mimo --name warm_start_mimo --keep DIR
    PYTHONPATH=. python -m benchmarks.warm_start --merge warm_start_mimo warm_start_partial_fourier

Writes ``benchmarks/results/<name>.md`` and ``<name>.json`` (default ``warm_start``: per-modality
summary and per-frame iterations/PSNR). ``--from-summaries DIR`` rebuilds a case from the two
batches' ``summary.csv`` files kept in ``DIR/<modality>_{cold,warm}`` (``--keep DIR`` keeps them).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks._common import machine, md_table, read_parts, write_outputs

CASES = {"mimo": 48, "partial_fourier": 64}


def from_table(table) -> dict:
    """One batch's per-frame figures from its summary table (DataFrame)."""
    return {
        "iterations": [int(i) + 1 for i in table.iteration],
        "psnr": [float(p) for p in table.psnr],
        "seconds": [float(s) for s in table.seconds],
        "stop": [str(s)[:60] for s in table.stop_reason],
    }


def from_summaries(root: Path, modality: str, frames: int) -> dict:
    """A case rebuilt from ``root/<modality>_{cold,warm}/summary.csv``."""
    import pandas as pd

    out: dict = {"modality": modality, "size": CASES[modality], "frames": frames}
    for mode in ("cold", "warm"):
        table = pd.read_csv(root / f"{modality}_{mode}" / "summary.csv", keep_default_na=False)
        out[mode] = {**from_table(table), "wall_s": float(table.seconds.sum())}
    return out


def run_case(modality: str, frames: int, root: Path, modes: tuple[str, ...] = ("cold", "warm")) -> dict:
    import rfprior
    from rfprior.scenes import simulate_sequence

    files = [root / modality / f"frame{t:03d}.h5" for t in range(frames)]
    if not all(f.exists() for f in files):  # another process (--only) may have written them already
        files = simulate_sequence(modality, root / modality, frames=frames, size=CASES[modality], snr_db=20.0, seed=0)
    out: dict = {"modality": modality, "size": CASES[modality], "frames": frames}
    for mode in modes:
        t0 = time.perf_counter()
        table = rfprior.batch(
            files,
            root / f"{modality}_{mode}",
            workers=1,
            threads_per_worker=1,
            warm_start=mode == "warm",
            progress=False,
        )
        wall = time.perf_counter() - t0
        bad = table[table.status != "ok"]
        if len(bad):
            raise RuntimeError(f"{modality} {mode}: {bad[['file', 'status', 'error']].to_string()}")
        out[mode] = {**from_table(table), "wall_s": wall}
        print(f"{modality} {mode}: {wall:.0f} s; iterations {out[mode]['iterations']}", flush=True)
    return out


def summarise(case: dict) -> dict:
    c, w = case["cold"], case["warm"]
    rest = slice(1, None)  # frame 0 is the same cold fit in both runs
    it_c, it_w = statistics.mean(c["iterations"][rest]), statistics.mean(w["iterations"][rest])
    p_c, p_w = statistics.mean(c["psnr"][rest]), statistics.mean(w["psnr"][rest])
    diffs = [b - a for a, b in zip(c["psnr"][rest], w["psnr"][rest], strict=True)]
    return {
        "iterations_cold": it_c,
        "iterations_warm": it_w,
        "iteration_ratio": it_w / it_c,
        "psnr_cold": p_c,
        "psnr_warm": p_w,
        "psnr_diff": p_w - p_c,
        "psnr_diff_min": min(diffs),
        "psnr_diff_max": max(diffs),
        "seconds_cold": statistics.mean(c["seconds"][rest]),
        "seconds_warm": statistics.mean(w["seconds"][rest]),
        "budget_hits_cold": sum(i >= 1500 for i in c["iterations"]),
        "budget_hits_warm": sum(i >= 1500 for i in w["iterations"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--modality", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--name", default="warm_start", help="output stem in benchmarks/results")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (default: a temp dir)")
    ap.add_argument("--from-summaries", type=Path, default=None, help="rebuild from kept summary.csv files")
    ap.add_argument("--merge", nargs="+", default=None, help="merge these result stems into --name")
    ap.add_argument("--only", choices=("cold", "warm"), default=None, help="run one mode (into --keep), no report")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cases = []
    if args.merge:
        cases = [c for part in read_parts(args.merge) for c in part["cases"]]
    elif args.from_summaries is not None:
        for m in args.modality:
            case = from_summaries(args.from_summaries, m, args.frames)
            case["summary"] = summarise(case)
            cases.append(case)
    else:
        with tempfile.TemporaryDirectory(prefix="rfprior_warm_") as tmp:
            root = args.keep or Path(tmp)
            for m in args.modality:
                if args.only:
                    run_case(m, args.frames, root, (args.only,))
                    continue
                case = run_case(m, args.frames, root)
                case["summary"] = summarise(case)
                cases.append(case)
    if not cases:
        return
    rows = []
    for case in cases:
        s = case["summary"]
        rows.append(
            [
                f"{case['modality']} {case['size']}²",
                case["frames"],
                f"{s['iterations_cold']:.0f}",
                f"{s['iterations_warm']:.0f}",
                f"{s['iteration_ratio']:.2f}",
                f"{s['psnr_cold']:.2f}",
                f"{s['psnr_warm']:.2f}",
                f"{s['psnr_diff']:+.2f} ({s['psnr_diff_min']:+.2f} … {s['psnr_diff_max']:+.2f})",
                f"{s['seconds_cold']:.1f} / {s['seconds_warm']:.1f}",
            ]
        )
    header = [
        "sequence",
        "frames",
        "iterations cold",
        "iterations warm",
        "warm/cold",
        "PSNR cold [dB]",
        "PSNR warm [dB]",
        "Δ PSNR mean (min … max) [dB]",
        "s/frame cold / warm",
    ]
    table = md_table(header, rows)
    per_frame = []
    for case in cases:
        per_frame.append(f"\n{case['modality']}: iterations cold {case['cold']['iterations']}")
        per_frame.append(f"{case['modality']}: iterations warm {case['warm']['iterations']}")
    mach = machine()
    md = (
        "# Warm start vs cold start (benchmarks/warm_start.py)\n\n"
        "Moving extended target + static points, 20 dB, default prior and rules "
        "(discrepancy, σ estimated, running average; budget 1500). Means over frames 1… (frame 0 is the same "
        "cold fit in both). One worker, 1 torch thread; "
        f"{mach['platform']}, {mach['cpu_count']} cores shared with other jobs (times are indicative).\n\n"
        f"{table}\n\nPer frame (iterations to the rule's choice):\n" + "\n".join(per_frame) + "\n"
    )
    print(md)
    payload = {"machine": {**mach, "torch_threads": 1}, "cases": cases}
    write_outputs(args.name, payload, md)


if __name__ == "__main__":
    main()
