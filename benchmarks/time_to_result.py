"""Time to result of the default reconstruction, per forward model and image size.

``rfprior.reconstruct(y, op)`` with nothing but the data and the operator (the defaults of
:mod:`rfprior.defaults`: the modality's prior, DIP + TV with the automatic weight, the
discrepancy rule with a running average) on one held-out scene per forward model of
``benchmarks/quality.py`` (natural image, VD 4×; smoothed blobs; the radar silhouette with
randomly phased points), seed 2, 20 dB. Reported per case: the wall-clock seconds of the
whole call, the part spent choosing the penalty weight (the TV-discrepancy search, timed
alone before the fit on a fresh copy of the operator), the iterations run, milliseconds per
iteration of the loop (its own clock, ``history["time"]``), and PSNR. The rest of the call
is set-up: σ estimate, operator norm, the network's autoscale.

Run ``python -m benchmarks.time_to_result [--sizes 64,128] [--threads 2] [--device cuda]``;
``--smoke`` runs 32² with 5 iterations (the suite runs it). Output:
``results/time_to_result[_<tag>].md`` and a small JSON; an interrupted run resumes from its
part file (``results/time_to_result[_<tag>]_part1of1.json``).
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import torch

from benchmarks.harness import finish, machine, md_table, part_path, run, simulate, write_outputs

CASES = {
    "partial_fourier": {"family": "natural", "mask": "vd4"},
    "diffraction_tomography": {"family": "blobs"},
    "mimo": {"family": "silhouette"},
}
#: issue 17's targets at 128² on 2 CPU cores (seconds)
TARGET_128 = {"partial_fourier": 60.0, "diffraction_tomography": 60.0, "mimo": 120.0}


def held_out_case(modality: str, size: int) -> dict[str, Any]:
    """The scene of ``modality`` at ``size``: seed 2 (held out), 20 dB."""
    return {"modality": modality, "size": size, "snr": 20, "seed": 2, **CASES[modality]}


def run_case(
    modality: str, size: int, device: str | None, iterations: int | None, time_penalty: bool = True
) -> dict[str, Any]:
    """One default reconstruction of the held-out scene; seconds, iterations, PSNR.

    ``time_penalty``: time the penalty-weight search alone first, on its own operator (the
    published figure); ``False`` saves that second search and reports ``penalty_seconds`` as
    the fit's wall time outside its loop (set-up + penalty weight).
    """
    import rfprior
    from rfprior.metrics import psnr
    from rfprior.penalty import resolve_penalty

    case = held_out_case(modality, size)
    op, y, truth, _ = simulate(case)
    if device is not None:
        op, y = op.to(device=torch.device(device)), y.to(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pen_s = None
        if time_penalty:
            # the penalty-weight search alone, first, on its own copy of the operator (cold caches, as in a fit)
            op_pen, y_pen, _, _ = simulate(case)
            if device is not None:
                op_pen, y_pen = op_pen.to(device=torch.device(device)), y_pen.to(device)
            t = time.perf_counter()
            resolve_penalty("tv", "auto", op_pen, y_pen, None)
            pen_s = time.perf_counter() - t
            del op_pen, y_pen
        t = time.perf_counter()
        res = rfprior.reconstruct(y, op, progress=False, iterations=iterations, device=device)
        total = time.perf_counter() - t
    its = int(res.history.sizes["iteration"])
    loop_s = float(res.history["time"].values[-1])  # the loop's own clock: iterations only
    if res.settings.get("penalty") is None:
        pen_s = 0.0
    elif pen_s is None:
        pen_s = total - loop_s
    return {
        "case": case,
        "device": str(op.device),
        "prior": res.settings["prior"].get("preset", res.settings["prior"]["name"]),
        "seconds": total,
        "penalty_seconds": pen_s,
        "loop_seconds": loop_s,
        "iterations": its,
        "seconds_per_iteration": loop_s / max(its, 1),
        "chosen": res.chosen_iteration,
        "psnr": float(psnr(res.image.cpu(), truth)),
    }


def summarise(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    body = []
    for r in rows:
        size = r["case"]["size"]
        target = TARGET_128.get(r["case"]["modality"]) if size == 128 else None
        body.append(
            [
                r["case"]["modality"],
                f"{size}²",
                r["prior"],
                r["seconds"],
                r["penalty_seconds"],
                r["iterations"],
                1000 * r["seconds_per_iteration"],
                r["psnr"],
                "–" if target is None else f"{target:.0f} ({'met' if r['seconds'] <= target else 'missed'})",
            ]
        )
    head = ["modality", "size", "prior", "total s", "penalty weight s", "iterations", "ms / iteration", "PSNR"]
    head.append("target s")
    return "\n".join(
        [
            "# Time to result of the default reconstruction",
            "",
            f"`rfprior.reconstruct(y, op)` with the defaults, one held-out scene per forward model (seed 2, "
            f"20 dB). Device {info['device']}, torch threads {info['threads']}; {info['machine']['platform']}, "
            f"{info['machine']['cpu_count']} CPUs. The penalty weight is the TV-discrepancy search, timed alone "
            "before the fit; ms / iteration is the loop's own clock.",
            "",
            md_table(head, body),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,128", help="comma-separated image sizes")
    ap.add_argument("--modalities", default=",".join(CASES), help="comma-separated subset")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--device", default=None, help="cpu, cuda, … (default: the operator's, cpu)")
    ap.add_argument("--tag", default="", help="suffix of the output name")
    ap.add_argument("--smoke", action="store_true", help="32², 5 iterations, no files written")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = [32] if args.smoke else [int(s) for s in args.sizes.split(",")]
    mods = [m for m in args.modalities.split(",") if m]
    unknown = sorted(set(mods) - set(CASES))
    if unknown:
        ap.error(f"--modalities: unknown {unknown}; choose from {', '.join(CASES)}")
    iterations = 5 if args.smoke else None
    stem = "time_to_result" + (f"_{args.tag}" if args.tag else "")
    part = None if args.smoke else part_path(None, stem)

    def one(c: dict[str, Any]) -> dict[str, Any]:
        r = run_case(c["modality"], c["size"], args.device, iterations)
        its, p = r["iterations"], r["psnr"]
        print(f"{c['modality']:24s} {c['size']:4d}² {r['seconds']:8.1f} s  ({its} its, PSNR {p:.2f})", flush=True)
        return r

    settings = {"threads": args.threads, "device": args.device, "iterations": iterations}
    rows = run([held_out_case(m, s) for s in sizes for m in mods], one, part, settings=settings, log=None)
    info = {"machine": machine(), "threads": args.threads, "device": args.device or "cpu"}
    md = summarise(rows, info)
    print(md)
    if not args.smoke:
        write_outputs(stem, {**info, "rows": rows}, md)
        finish(None, stem)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
