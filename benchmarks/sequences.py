"""Sequences: one prior for a whole frame sequence against per-frame and spatio-temporal TV.

Cases (``--tier``): two sequence families, each frame simulated from the forward model's moving
scene (:meth:`rfprior.modalities.Modality.moving_scene`), one σ for the sequence at the SNR:

* ``radar`` — the MIMO default geometry (fixed for all frames), a moving extended target
  (ellipse + plate, smooth amplitude and phase) plus 4 static point targets with random phases;
* ``kspace`` — a dynamic phantom (static support and dots, a moving inner ellipse, smooth phase)
  with a **different variable-density mask per frame** (4× or 8×).

Methods, none tuned with the truth; the TV methods at the σ the joint fit estimates from the data
(median of per-frame estimates), the one-frame prior at its own per-frame estimate (as it runs
alone): ``joint`` (:func:`rfprior.reconstruct` on the whole sequence, its defaults),
``tv`` (per-frame TV, λ by the discrepancy principle), ``sttv``
(:func:`operators.tv_sequence_discrepancy`: λ by the discrepancy principle on the whole sequence,
the temporal weight by held-out measurements), ``prior`` (the one-frame default on every
``--prior-every``-th frame; a cost-bounded estimate of its mean over frames).

Tuning: the joint fit's knobs (the temporal weight of its penalty per forward model) were chosen on
the ``tune`` tier (seeds 0–1, 32², 8 frames); ``check`` (k-space, seeds 2–6, 64², 16 frames) and
``check_radar`` (seeds 2–6, 32², 16 frames: radar at 64² costs ≈ 30 min a sequence here) are held out. Output:
``results/sequences_<tier>.md`` + a small JSON. ``--memory`` measures the peak resident memory of
a 32-frame joint fit at 64² and 128² in a fresh process.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np
import torch

from benchmarks.harness import finish, grid, machine, md_table, merge_parts, parse_part, part_path, run, write_outputs

TIERS: dict[str, dict[str, Any]] = {
    "smoke": {"size": 16, "frames": 3, "seeds": [0], "snr": [20], "families": ["radar", "kspace4"], "iterations": 30},
    "tune": {"size": 32, "frames": 8, "seeds": [0, 1], "snr": [10, 20], "families": ["radar", "kspace4", "kspace8"]},
    "check": {"size": 64, "frames": 16, "seeds": [2, 3, 4, 5, 6], "snr": [10, 20], "families": ["kspace4", "kspace8"]},
    "check_radar": {"size": 32, "frames": 16, "seeds": [2, 3, 4, 5, 6], "snr": [10, 20], "families": ["radar"]},
}


def simulate(case: dict[str, Any]) -> tuple[list, list, torch.Tensor, float]:
    """``(ys, ops, truth (F, H, W), σ)`` of a sequence case (complex64)."""
    import operators as ops
    from rfprior import modalities
    from rfprior.phantoms import moving_phantom

    size, frames, seed = case["size"], case["frames"], case["seed"]
    if case["family"] == "radar":
        m = modalities.get("mimo")
        geometry = m.default_geometry(size, seed=seed)
        op = m.build_operator(geometry)
        truth = torch.stack([m.moving_scene(geometry, t, seed) for t in range(frames)])
        op_list = [op] * frames
    else:
        acc = float(case["family"].removeprefix("kspace"))
        truth = torch.stack([moving_phantom(size, size, t, seed) for t in range(frames)])
        op_list = [ops.PartialFourier(ops.variable_density_mask((size, size), acc, seed=1000 * seed + t))
                   for t in range(frames)]  # fmt: skip
    truth = truth.to(torch.complex64)
    clean = [op.forward(truth[t]) for t, op in enumerate(op_list)]
    power = sum(float((c.abs() ** 2).sum()) for c in clean) / sum(c.numel() for c in clean)
    sigma = math.sqrt(power / (2 * 10 ** (case["snr"] / 10)))
    g = torch.Generator().manual_seed(10_000 + seed)
    ys = []
    for c in clean:
        n = torch.randn((2, *c.shape), generator=g)
        ys.append(c + sigma * torch.complex(n[0], n[1]).to(c.dtype))
    return ys, op_list, truth, sigma


def _scores(images: torch.Tensor, truth: torch.Tensor, frames: list[int] | None = None) -> dict[str, float]:
    from rfprior.metrics import psnr, ssim

    idx = range(truth.shape[0]) if frames is None else frames
    p = [float(psnr(images[i], truth[t])) for i, t in enumerate(idx)]
    s = [float(ssim(images[i], truth[t])) for i, t in enumerate(idx)]
    return {"psnr": float(np.mean(p)), "ssim": float(np.mean(s)), "psnr_frames": p}


def run_case(
    case: dict[str, Any], iterations: int | None = None, prior_every: int = 4, temporal_weight: float | None = None
) -> dict[str, Any]:
    """One sequence: every method's mean PSNR/SSIM over frames and seconds per frame."""
    import operators as ops
    import rfprior
    from rfprior.fit.sequence import sequence_sigma

    ys, op_list, truth, sigma_true = simulate(case)
    n = len(ys)
    sigma, how = sequence_sigma(ys, op_list)  # what the joint fit estimates; the baselines use the same
    scores: dict[str, Any] = {}
    t = time.perf_counter()
    extra = {} if temporal_weight is None else {"temporal_weight": temporal_weight}
    res = rfprior.fit.sequence.reconstruct_sequence(ys, op_list, iterations=iterations, progress=False, **extra)
    scores["joint"] = {**_scores(res.image, truth), "seconds_per_frame": (time.perf_counter() - t) / n,
                       "chosen_iteration": res.chosen_iteration, "stop": res.stop_reason[:60]}  # fmt: skip
    t = time.perf_counter()
    tv = torch.stack([ops.tv_discrepancy(op, y, sigma).image for op, y in zip(op_list, ys, strict=True)])
    scores["tv"] = {**_scores(tv, truth), "seconds_per_frame": (time.perf_counter() - t) / n}
    t = time.perf_counter()
    st = ops.tv_sequence_discrepancy(op_list, ys, sigma, temporal_weight="auto")
    scores["sttv"] = {**_scores(st.image, truth), "seconds_per_frame": (time.perf_counter() - t) / n,
                      "temporal_weight": st.temporal_weight, "lambda": st.parameter}  # fmt: skip
    if prior_every:
        frames = list(range(0, n, prior_every))
        t = time.perf_counter()
        imgs = torch.stack([rfprior.reconstruct(ys[f], op_list[f], iterations=iterations, progress=False).image
                            for f in frames])  # fmt: skip
        per = (time.perf_counter() - t) / len(frames)
        scores["prior"] = {**_scores(imgs, truth, frames), "seconds_per_frame": per, "frames": frames}
    return {"scores": scores, "sigma": sigma, "sigma_true": sigma_true, "sigma_estimator": how}


def summarise(rows: list[dict[str, Any]], tier: str) -> str:
    methods = ["joint", "tv", "sttv", "prior"]
    head = ["family", "SNR", "cases", *[f"{m} PSNR" for m in methods], "joint − best TV", "worst", "wins",
            "joint s/frame", "one-frame prior s/frame"]  # fmt: skip
    table = []
    for fam in dict.fromkeys(r["case"]["family"] for r in rows):
        for snr in sorted({r["case"]["snr"] for r in rows if r["case"]["family"] == fam}):
            sel = [r for r in rows if r["case"]["family"] == fam and r["case"]["snr"] == snr]
            med = {m: statistics.median(r["scores"][m]["psnr"] for r in sel) if all(m in r["scores"] for r in sel)
                   else None for m in methods}  # fmt: skip
            gaps = [r["scores"]["joint"]["psnr"] - max(r["scores"]["tv"]["psnr"], r["scores"]["sttv"]["psnr"])
                    for r in sel]  # fmt: skip
            sec = statistics.median(r["scores"]["joint"]["seconds_per_frame"] for r in sel)
            one = [r["scores"]["prior"]["seconds_per_frame"] for r in sel if "prior" in r["scores"]]
            wins = f"{sum(g > 0 for g in gaps)}/{len(gaps)}"
            table.append([fam, snr, len(sel), *[med[m] for m in methods], statistics.median(gaps), min(gaps), wins,
                          sec, statistics.median(one) if one else None])  # fmt: skip
    cfg = TIERS[tier]
    text = [
        f"# Sequences — {tier} tier ({cfg['frames']} frames of {cfg['size']}², seeds {cfg['seeds']})",
        "",
        "Median over sequences of the mean PSNR [dB] over frames. `joint`: one network for the whole sequence "
        "(`rfprior.reconstruct(ys, ops)` defaults); `tv`: per-frame TV-discrepancy; `sttv`: spatio-temporal TV, λ by "
        "the discrepancy principle on the whole sequence, temporal weight by held-out measurements; `prior`: the "
        "one-frame default on every n-th frame (`--prior-every`). σ estimated from the data. `joint − best TV`: median "
        "(and worst) of joint minus the better of `tv` and `sttv` per sequence.",
        "",
        md_table(head, table),
    ]
    return "\n".join(text)


def memory(size: int, frames: int = 32) -> float:
    """Peak resident memory (MiB) of a fresh process running a ``frames``-frame joint fit (50 steps) at ``size``²."""
    code = (
        "import resource, torch, benchmarks.sequences as s, rfprior\n"
        f"ys, ops, truth, sigma = s.simulate({{'family': 'kspace4', 'size': {size}, 'frames': {frames}, "
        "'seed': 2, 'snr': 20})\n"
        "rfprior.reconstruct(ys, ops, iterations=50, progress=False)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tier", choices=sorted(TIERS), default="check")
    ap.add_argument("--families", default=None, help="comma-separated subset of the tier's families")
    ap.add_argument("--snr", default=None, help="comma-separated subset of the tier's SNRs")
    ap.add_argument("--seeds", default=None, help="comma-separated subset of the tier's seeds")
    ap.add_argument("--prior-every", type=int, default=4, help="one-frame prior on every n-th frame (0: none)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--part", default="1/1")
    ap.add_argument("--memory", action="store_true", help="peak memory of 4- and 32-frame joint fits at 64², 128²")
    ap.add_argument("--merge", type=int, default=None, help="merge n parts written with --part i/n")
    ap.add_argument("--temporal-weight", type=float, default=None, help="the joint fit's (default: the model's)")
    args = ap.parse_args(argv)
    if args.merge:
        return _write(merge_parts(None, f"sequences_{args.tier}", args.merge), args.tier, args.merge)
    torch.set_num_threads(args.threads)
    if args.memory:
        table = [[s, f, memory(s, f)] for s in (64, 128) for f in (4, 32)]
        write_outputs("sequences_memory", {"machine": machine(), "rows": table},
                      "# Sequences — peak memory\n\n" + md_table(["size", "frames", "peak RSS MiB"], table, "{:.0f}"))
        print(md_table(["size", "frames", "peak RSS MiB"], table, "{:.0f}"))
        return 0
    cfg = TIERS[args.tier]
    pick = lambda given, default, cast: [cast(v) for v in given.split(",")] if given else default  # noqa: E731
    cases = grid(family=pick(args.families, cfg["families"], str), snr=pick(args.snr, cfg["snr"], int),
                 seed=pick(args.seeds, cfg["seeds"], int), size=cfg["size"], frames=cfg["frames"])  # fmt: skip
    its = cfg.get("iterations")
    i, n = parse_part(args.part)
    cases = cases[i - 1 :: n]
    part = part_path(None, f"sequences_{args.tier}", args.part)
    tw = args.temporal_weight
    settings = {"iterations": its, "prior_every": args.prior_every, **({} if tw is None else {"temporal_weight": tw})}
    rows = run(cases, lambda c: run_case(c, its, args.prior_every, tw), part, settings=settings)
    if n > 1:  # a part: merged later with --merge n
        return 0
    return _write(rows, args.tier)


def _write(rows: list[dict[str, Any]], tier: str, parts: int = 1) -> int:
    md = summarise(rows, tier)
    print(md)
    if tier != "smoke":
        write_outputs(f"sequences_{tier}", {"machine": machine(), "tier": tier, "rows": rows}, md)
    finish(None, f"sequences_{tier}", parts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
