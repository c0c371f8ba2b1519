"""Engine benchmark (issue 5): where an iteration's time goes, and time-to-result of the defaults.

Run: ``python -m benchmarks.engine [--quick]``. Prints markdown tables and writes
``benchmarks/results/engine.json`` / ``engine.md``.

1. **Per-iteration split** for each prior (``deep_decoder``, ``dip``, ``dip_small``,
   ``controlled``, ``complex``) at 64², 128², 256² on the simulator's default MIMO
   geometry at that size (8 TX × 8 RX × 64 frequencies) and on partial Fourier:

   * *network*: ``net()`` forward + backward with a fixed output gradient (median of repeats);
   * *operator*: ``A x`` + ``Aᴴ r`` (what autograd runs per iteration);
   * *loss*: ``½‖r‖²`` forward + backward on the measurement-shaped tensors;
   * *total*: a real ``rfprior.reconstruct`` run (discrepancy + running average recorded),
     loop time per iteration from its history (set-up — ‖A‖ by power iteration, σ
     estimate, autoscale — reported apart); *bookkeeping + stopping* = total − network −
     operator − loss.

2. **Time-to-result at 128²** of the defaults (``rfprior.defaults.FIT``; discrepancy stop with σ
   estimated, running average) on partial Fourier and MIMO, with PSNR against the
   backprojection / zero filling and TV baselines.

3. deepinv's ``DeepImagePrior`` needs torch 2.14.1 + torchvision (≈ 5.5 GB), which cannot
   live beside the CPU torch 2.13 this project pins: ``benchmarks/deepinv_peer.py`` runs it
   in a separate environment on the same data (results in ``deepinv_peer.md``).
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import torch

import rfprior
from benchmarks._common import machine, md_table, median_time, simulate_case, write_outputs
from rfprior.fit.resolve import resolve_prior
from rfprior.metrics import psnr
from rfprior.workflows import classical_baselines

PRIORS = ("deep_decoder", "dip", "dip_small", "controlled", "complex")


def _split(prior: str, modality: str, size: int, iters: int) -> dict[str, Any]:
    op, y, _, _ = simulate_case(modality, size, 20.0, 0)
    net, _ = resolve_prior(prior, op.in_shape, 0, None)
    params = sum(p.numel() for p in net.parameters())
    g = torch.randn(op.in_shape, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    repeats = 3 if size >= 256 else 5

    def net_step() -> None:
        net.zero_grad(set_to_none=True)
        out = net()[0]
        torch.autograd.backward(torch.view_as_real(out), torch.view_as_real(g))

    x = g.clone()
    r = y.clone()

    def op_step() -> None:
        op.adjoint(op.forward(x) - r)

    pred = y.clone().requires_grad_(True)

    def loss_step() -> None:
        pred.grad = None
        (0.5 * torch.linalg.vector_norm(pred - y) ** 2).backward()

    t_net = median_time(net_step, repeats)
    t_op = median_time(op_step, repeats)
    t_loss = median_time(loss_step, repeats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        res = rfprior.reconstruct(
            y,
            op,
            prior=prior,
            stop=[rfprior.FixedIterations(), rfprior.Discrepancy(), rfprior.RunningAverage()],
            iterations=iters,
            seed=0,
            progress=False,
        )
        wall = time.perf_counter() - t
    elapsed = res.history["time"].values  # loop time since the first iteration began, per iteration
    total = float(elapsed[-1] - elapsed[0]) / (len(elapsed) - 1)
    setup = wall - float(elapsed[-1])
    other = total - t_net - t_op - t_loss
    return {
        "prior": prior,
        "modality": modality,
        "size": size,
        "params": params,
        "iterations_timed": iters,
        "network_ms": 1e3 * t_net,
        "operator_ms": 1e3 * t_op,
        "loss_ms": 1e3 * t_loss,
        "total_ms": 1e3 * total,
        "other_ms": 1e3 * other,
        "setup_s": setup,
        "overhead_pct_of_network": 100 * (total - t_net) / t_net,
    }


def _time_to_result(modality: str, size: int, prior: str | None = None) -> dict[str, Any]:
    """Defaults end to end (σ estimated, default rule); ``prior=None`` = the modality's default prior."""
    op, y, truth, _ = simulate_case(modality, size, 20.0, 0)
    base = {k: (float(psnr(v[0], truth)), v[1]) for k, v in classical_baselines(op, y).items()}
    default = rfprior.default_prior(op)
    prior = prior or default
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        res = rfprior.reconstruct(
            y,
            op,
            prior=prior,
            stop=[rfprior.Discrepancy(), rfprior.RunningAverage()],
            seed=0,
            truth=truth,
            progress=False,
        )
        secs = time.perf_counter() - t
    return {
        "modality": modality,
        "size": size,
        "prior": prior,
        "is_default_prior": prior == default,
        "tau": res.rule_summaries.get("discrepancy", {}).get("tau"),
        "min_misfit_ratio": res.rule_summaries.get("discrepancy", {}).get("min_ratio"),
        "budget": res.settings["iterations"],
        "chosen_iteration": res.chosen_iteration,
        "ran_iterations": res.final_iteration + 1,
        "seconds": secs,
        "psnr": float(psnr(res.image, truth)),
        "oracle_psnr": res.oracle_psnr,
        "oracle_iteration": res.oracle_iteration,
        "stop_reason": res.stop_reason,
        "baselines": base,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="64² and 128² only, fewer iterations")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the other core is busy)")
    ap.add_argument(
        "--ttr-only", action="store_true", help="re-run only the time-to-result part (keep the stored split table)"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = (64, 128) if args.quick else (64, 128, 256)
    iters = {64: 20, 128: 10, 256: 4}
    rows, split = [], []
    split_threads = args.threads
    t0 = time.perf_counter()
    if args.ttr_only:
        import json

        from benchmarks._common import RESULTS

        stored = json.loads((RESULTS / "engine.json").read_text())
        split = stored["split"]
        split_threads = stored.get("split_torch_threads", stored["machine"].get("torch_threads"))
    for size in () if args.ttr_only else sizes:
        for modality in ("mimo", "partial_fourier"):
            for prior in PRIORS:
                s = _split(prior, modality, size, iters[size])
                split.append(s)
                print(
                    f"[{time.perf_counter() - t0:5.0f}s] {modality} {size} {prior}: {s['total_ms']:.1f} ms/it",
                    flush=True,
                )
    rows = [
        [
            s["modality"],
            s["size"],
            s["prior"],
            s["params"],
            s["network_ms"],
            s["operator_ms"],
            s["loss_ms"],
            s["other_ms"],
            s["total_ms"],
            s["overhead_pct_of_network"],
            s["setup_s"],
        ]
        for s in split
    ]
    # the two defaults, and the Deep Decoder on MIMO: why it is not the radar default
    ttr = [_time_to_result(m, 128, p) for m, p in (("partial_fourier", None), ("mimo", None), ("mimo", "deep_decoder"))]
    md = [
        f"# Engine benchmark ({'quick' if args.quick else 'full'})",
        "",
        f"torch threads {args.threads}"
        + (
            f" for the time-to-result part (the split table is the stored run, {split_threads} threads)"
            if args.ttr_only
            else ""
        )
        + f"; {machine()['platform']}; 2-core CPU shared with other work, no GPU.",
        "",
        "## Per-iteration time [ms] (medians; overhead = (total − network) / network)",
        "",
        md_table(
            [
                "modality",
                "size",
                "prior",
                "params",
                "network",
                "operator",
                "loss",
                "bookkeeping+stop",
                "total",
                "overhead %",
                "setup [s]",
            ],
            rows,
            "{:.2f}",
        ),
        "",
        "## Time to result at 128², defaults (discrepancy + running average, σ estimated)",
        "",
        "Default prior per forward model (`rfprior.default_prior`): Deep Decoder for partial Fourier, "
        "dip_small for MIMO; Discrepancy τ per prior (`rfprior.stopping.DEFAULT_TAU`). The third row runs the "
        "Deep Decoder on the radar scene to show why it is not the radar default.",
        "",
    ]
    trows = []
    for r in ttr:
        best_base = max(r["baselines"].items(), key=lambda kv: kv[1][0])
        trows.append(
            [
                r["modality"],
                r["prior"] + ("" if r.get("is_default_prior", True) else " (not the default)"),
                "–" if r.get("tau") is None else f"{r['tau']:g}",
                r["ran_iterations"],
                r["chosen_iteration"],
                r["seconds"],
                r["psnr"],
                r["oracle_psnr"],
                f"{best_base[0]} {best_base[1][0]:.2f}",
                next(iter(r["baselines"].values()))[0],
            ]
        )
    md.append(
        md_table(
            [
                "modality",
                "prior",
                "τ",
                "iterations run",
                "chosen",
                "seconds",
                "PSNR",
                "oracle PSNR",
                "best classical",
                "backprojection / zero filled",
            ],
            trows,
        )
    )
    md += [
        "",
        "deepinv's DeepImagePrior on the same data: `benchmarks/deepinv_peer.py` (runs in a separate venv with "
        "torch 2.14.1 + deepinv; results in `benchmarks/results/deepinv_peer.md`).",
    ]
    text = "\n".join(md)
    write_outputs(
        "engine",
        {"machine": machine(), "split": split, "split_torch_threads": split_threads, "time_to_result": ttr},
        text,
    )
    print(text)


if __name__ == "__main__":
    main()
