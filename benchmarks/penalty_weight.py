"""The automatic penalty weight's TV search: PDHG steps per λ against the λ found and the seconds spent.

``penalty_weight="auto"`` is a fraction of the λ that the discrepancy principle picks for plain
TV (:func:`rfprior.penalty.resolve_penalty`). The search solves TV for a few λ, each with a fixed
number of PDHG steps warm-started from the previous λ's solution. This study runs the search
with the reference number of steps (100, the setting before issue 35) and with fewer, on the
held-out scenes of ``benchmarks/time_to_result.py`` (five seeds, 20 dB), and reports the ratio of
each λ to the reference λ and the seconds per search. The weight is a scale (radar uses 2 × λ,
the others 0.25 × λ, chosen on a coarse grid), so a λ within a few per cent is the same default.

Run ``python -m benchmarks.penalty_weight [--sizes 64,128] [--iters 100,50,30,20]``; ``--smoke``
runs 32², one seed. Output: ``results/penalty_weight.md`` and a small JSON.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from typing import Any

import torch

from benchmarks.harness import finish, grid, machine, md_table, part_path, run, simulate, write_outputs
from benchmarks.time_to_result import CASES, SEEDS

REFERENCE_ITERS = 100


def one(case: dict[str, Any], iters: list[int]) -> dict[str, Any]:
    """λ and seconds of the search for each PDHG budget in ``iters`` (σ estimated once, as in a fit)."""
    from operators import tv_discrepancy
    from rfprior.modalities import estimate_sigma
    from rfprior.penalty import WEIGHT_RTOL

    op, y, _, _ = simulate({**case, **CASES[case["modality"]]})
    sigma, _ = estimate_sigma(op, y)
    op.opnorm()  # cached on the operator in a fit before the search: not part of its cost
    out: dict[str, Any] = {"case": case}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in iters:
            t = time.perf_counter()
            ch = tv_discrepancy(op, y, sigma=sigma, iters=n, rtol=WEIGHT_RTOL)
            out[str(n)] = {"lambda": ch.parameter, "seconds": time.perf_counter() - t, "solves": ch.evaluations}
    return out


def summarise(rows: list[dict[str, Any]], iters: list[int], info: dict[str, Any]) -> str:
    body = []
    keys = sorted({(r["case"]["modality"], r["case"]["size"]) for r in rows}, key=lambda k: (k[1], k[0]))
    seeds = sorted({r["case"]["seed"] for r in rows})
    for mod, size in keys:
        sel = [r for r in rows if r["case"]["modality"] == mod and r["case"]["size"] == size]
        for n in iters:
            ratios = [r[str(n)]["lambda"] / r[str(REFERENCE_ITERS)]["lambda"] for r in sel]
            secs = [r[str(n)]["seconds"] for r in sel]
            solves = [r[str(n)]["solves"] for r in sel]
            dev = max(abs(q - 1) for q in ratios)
            body.append(
                [mod, f"{size}²", n, len(sel), statistics.median(solves), statistics.median(secs),
                 statistics.median(ratios), f"{100 * dev:.1f} %"]
            )  # fmt: skip
    head = ["modality", "size", "PDHG steps / λ", "seeds", "solves", "median s", "median λ / λ₁₀₀"]
    head.append("worst |λ/λ₁₀₀ − 1|")
    return "\n".join(
        [
            "# The automatic penalty weight's TV search: steps per λ",
            "",
            f"Held-out scenes of the time-to-result study, seeds {', '.join(map(str, seeds))}, "
            f"20 dB; σ estimated. Torch threads {info['threads']}; {info['machine']['platform']}, "
            f"{info['machine']['cpu_count']} CPUs. λ₁₀₀: the search with {REFERENCE_ITERS} PDHG steps per λ "
            "(the setting before issue 35).",
            "",
            md_table(head, body, floatfmt="{:.3g}"),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,128")
    ap.add_argument("--iters", default="100,50,30,20", help="PDHG steps per λ; must include 100 (the reference)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="32², one seed, no files written")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    iters = [int(v) for v in args.iters.split(",")]
    if REFERENCE_ITERS not in iters:
        ap.error(f"--iters must include the reference {REFERENCE_ITERS}")
    sizes = [32] if args.smoke else [int(s) for s in args.sizes.split(",")]
    seeds = SEEDS[:1] if args.smoke else SEEDS
    cases = grid(size=sizes, modality=list(CASES), snr=20, seed=seeds)
    part = None if args.smoke else part_path(None, "penalty_weight")
    rows = run(cases, lambda c: one(c, iters), part, settings={"iters": iters, "threads": args.threads}, log=None)
    info = {"machine": machine(), "threads": args.threads}
    md = summarise(rows, iters, info)
    print(md)
    if not args.smoke:
        write_outputs("penalty_weight", {**info, "rows": rows}, md)
        finish(None, "penalty_weight")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
