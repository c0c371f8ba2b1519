"""Batch throughput: files per minute for 1, 2 and 4 Dask workers on this machine.

Eight 32² partial-Fourier files (Deep Decoder, a fixed 60 iterations so every file costs
the same), reconstructed with :func:`rfprior.batch` on a ``LocalCluster`` started beforehand
(its start-up, reported separately, is a one-off cost per batch). Threads: one worker gets
all the cores as torch threads; several workers get ``max(1, cores // workers)`` each —
on a 2-core machine 4 workers oversubscribe the cores 2×, stated in the table.

    PYTHONPATH=. python -m benchmarks.batch [--files 8] [--iterations 60] [--splits 1x2 1x1 2x1 4x1]

Writes ``benchmarks/results/batch.md`` and ``batch.json``. On a cluster the same call with
``scheduler=<address>`` spreads the files over every worker; throughput then scales with
the workers until the shared file system or the scheduler (≈ 1 ms per task) limits it —
far beyond the seconds a fit takes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks._common import machine, md_table, write_outputs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument(
        "--splits",
        nargs="+",
        default=["1x2", "1x1", "2x1", "4x1"],
        help="WORKERSxTHREADS runs (torch threads per worker; default cores // workers)",
    )
    args = ap.parse_args()

    from distributed import Client, LocalCluster

    import rfprior

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    rows, runs = [], []
    with tempfile.TemporaryDirectory(prefix="rfprior_batch_") as tmp:
        root = Path(tmp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            files = [root / f"f{i}.h5" for i in range(args.files)]
            for i, f in enumerate(files):
                rfprior.scenes.simulate("partial_fourier", size=args.size, snr_db=20, seed=i, path=f)
        base = None
        for split in args.splits:
            n_text, _, t_text = split.partition("x")
            n = int(n_text)
            threads = int(t_text) if t_text else max(1, cores // n)
            t0 = time.perf_counter()
            cluster = LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
            )
            client = Client(cluster)
            client.run(lambda: __import__("rfprior") and None)  # import torch + rfprior in every worker
            startup = time.perf_counter() - t0
            try:
                t0 = time.perf_counter()
                table = rfprior.batch(
                    files,
                    root / f"out{n}",
                    scheduler=client,
                    threads_per_worker=threads,
                    force=True,
                    progress=False,
                    prior="deep_decoder",
                    stop="fixed",
                    iterations=args.iterations,
                )
                wall = time.perf_counter() - t0
            finally:
                client.close()
                cluster.close()
            assert (table.status == "ok").all(), table[["file", "status", "error"]]
            rate = len(files) / wall * 60
            if n == 1 and threads == 1:
                base = rate
            eff = rate / base / n if base else float("nan")
            used = len(set(table.worker))
            runs.append(
                {
                    "workers": n,
                    "torch_threads_per_worker": threads,
                    "files_per_min": rate,
                    "wall_s": wall,
                    "startup_s": startup,
                    "efficiency": eff,
                    "workers_used": used,
                    "median_seconds_per_file": float(table.seconds.median()),
                }
            )
            split = f"{n} × {threads}" + (" (oversubscribed)" if n * threads > cores else "")
            rows.append(
                [
                    n,
                    split,
                    f"{rate:.1f}",
                    f"{eff:.2f}",
                    f"{wall:.1f}",
                    f"{startup:.1f}",
                    f"{table.seconds.median():.2f}",
                ]
            )
            print(rows[-1], flush=True)
    header = [
        "workers",
        "workers × torch threads",
        "files/min",
        "efficiency vs 1 × 1",
        "batch wall [s]",
        "cluster start [s]",
        "median s/file",
    ]
    mach = machine()
    md = (
        "# Batch throughput (benchmarks/batch.py)\n\n"
        f"{args.files} partial-Fourier files {args.size}², Deep Decoder, fixed {args.iterations} iterations each; "
        f"`rfprior.batch` on a LocalCluster started beforehand (start-up listed apart). {mach['platform']}, "
        f"{cores} cores, shared with other jobs while measured (indicative).\n\n"
        + md_table(header, rows)
        + "\n\nEfficiency = (files/min with n workers) / (n × files/min with 1 worker × 1 thread). On a cluster "
        "(`scheduler=` an address, e.g. a dask-jobqueue SLURMCluster) each worker is its own node or slot: "
        "files are independent tasks, so throughput grows with the workers until the shared file system "
        "limits it; Dask's per-task overhead (~1 ms) is negligible next to a fit's seconds.\n"
    )
    print(md)
    write_outputs("batch", {"machine": mach, "cores": cores, "runs": runs, "args": vars(args)}, md)


if __name__ == "__main__":
    main()
