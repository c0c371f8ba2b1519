"""Benchmark: matrix-free :class:`operators.mimo.MIMORadar` vs a dense-matrix implementation.

For each size ``(N_T, N_R, N_f, N)`` (image ``N × N``) and implementation, a fresh
subprocess builds the operator, times ``forward`` and ``adjoint`` (best of
``repeats``), records the peak resident memory above a baseline taken after
imports and warm-up, then times a complex64 GEMM of comparable size
(``n³ ≈ N_T N_R N_f P``) under the same conditions. Achieved GFLOP/s count 8 real
flops per complex multiply-add: ``8 · N_T N_R N_f · P`` per apply.

Implementations:

* ``mimo-cached`` — ``MIMORadar(cache_steering=True)`` with a budget that fits the
  cache (skipped when the cache exceeds ``cache_limit`` bytes);
* ``mimo-default`` — ``MIMORadar`` with its defaults (256 MiB budget, ``"auto"`` cache);
* ``dense`` — the dense ``(N_T N_R N_f × P)`` complex64 matrix, then matmul/matvec
  (skipped where the matrix exceeds ``dense_limit`` bytes).

Run ``python benchmarks/bench_mimo.py`` to print the table and write
``benchmarks/results/operators_mimo.json``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "operators_mimo.json"
SIZES = ((8, 8, 64, 64), (16, 16, 128, 128), (16, 16, 256, 256))
IMPLS = ("mimo-cached", "mimo-default", "dense")


def _geometry(n_t: int, n_r: int, n_f: int, n: int):
    from operators.arrays import image_grid, stepped_frequencies, uniform_mimo_array
    from operators.mimo import SPEED_OF_LIGHT

    f = stepped_frequencies(77e9, 4e9, n_f)
    tx, rx = uniform_mimo_array(n_t, n_r, SPEED_OF_LIGHT / (2 * f.max()))
    x, z = image_grid(-0.5, 0.5, n, 1.0, 3.0, n)
    return tx, rx, f, x, z


class DenseMIMO:
    """The same model as a dense complex64 matrix ``A[(i, j, k), p]`` (phases reduced in float64)."""

    def __init__(self, tx, rx, f, x, z) -> None:
        import numpy as np
        import torch

        from operators.mimo import SPEED_OF_LIGHT

        xx, zz = np.meshgrid(x, z)
        p = torch.as_tensor(np.stack((xx.ravel(), zz.ravel()), 1))
        d_t = torch.cdist(torch.as_tensor(tx), p)  # (N_T, P) float64
        d_r = torch.cdist(torch.as_tensor(rx), p)
        f_c = torch.as_tensor(f) / SPEED_OF_LIGHT
        self.shape = (len(tx), len(rx), len(f))
        self.a = torch.empty(math.prod(self.shape), p.shape[0], dtype=torch.complex64)
        rows = len(rx) * len(f)
        for i in range(len(tx)):  # one transmitter at a time bounds the float64 temporaries
            cyc = f_c[None, :, None] * (d_t[i][None, None, :] + d_r[:, None, :])
            cyc -= torch.round(cyc)
            self.a[i * rows : (i + 1) * rows] = torch.polar(torch.ones_like(cyc), -2 * math.pi * cyc).reshape(rows, -1)

    def forward(self, x):
        return (self.a @ x.reshape(-1)).reshape(self.shape)

    def adjoint(self, y):
        return (y.reshape(-1).conj() @ self.a).conj()


def _rss_bytes() -> int:
    import resource

    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def _worker(spec: dict) -> dict:
    import resource

    import torch

    from operators.mimo import MIMORadar

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    n_t, n_r, n_f, n = spec["size"]
    geom = _geometry(n_t, n_r, n_f, n)
    warm = MIMORadar(*[g[:2] for g in geom[:3]], geom[3][:4], geom[4][:4])
    warm.adjoint(warm.forward(torch.ones(4, 4, dtype=torch.complex64)))
    (torch.ones(64, 64, dtype=torch.complex64) @ torch.ones(64, 64, dtype=torch.complex64)).sum()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, n, dtype=torch.complex64, generator=gen)
    y = torch.randn(n_t, n_r, n_f, dtype=torch.complex64, generator=gen)
    base = _rss_bytes()
    t0 = time.perf_counter()
    if spec["impl"] == "dense":
        op = DenseMIMO(*geom)
    elif spec["impl"] == "mimo-cached":
        steering = 8 * n_f * n * n * (n_t + n_r)
        op = MIMORadar(*geom, cache_steering=True, memory_budget=steering + 64 * 2**20)
    else:
        op = MIMORadar(*geom)
    out = op.forward(x)  # first call includes building the steering cache
    build = time.perf_counter() - t0
    t_fwd, t_adj = [], []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        out = op.forward(x)
        t_fwd.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        back = op.adjoint(y)
        t_adj.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    flops = 8.0 * n_t * n_r * n_f * n * n
    del op
    m = max(64, round((flops / 8.0) ** (1 / 3)))
    a = torch.randn(m, m, dtype=torch.complex64, generator=gen)
    b = torch.randn(m, m, dtype=torch.complex64, generator=gen)
    t_gemm = []
    for _ in range(max(3, spec["repeats"])):
        t0 = time.perf_counter()
        a @ b
        t_gemm.append(time.perf_counter() - t0)
    return {
        "build_s": build,
        "forward_s": min(t_fwd),
        "adjoint_s": min(t_adj),
        "peak_bytes": peak,
        "forward_gflops": flops / min(t_fwd) / 1e9,
        "adjoint_gflops": flops / min(t_adj) / 1e9,
        "gemm_n": m,
        "gemm_gflops": 8.0 * m**3 / min(t_gemm) / 1e9,
        "check": [float(out.abs().sum()), float(back.abs().sum())],
        "threads": torch.get_num_threads(),
    }


def run(
    sizes=SIZES,
    repeats: int = 3,
    impls=IMPLS,
    dense_limit: float = 8e9,
    cache_limit: float = 2 * 2**30,
    threads: int | None = None,
) -> list[dict]:
    """Benchmark every implementation at every size; one subprocess per (size, impl).

    Returns one dict per (size, impl) with ``status`` ``"ok"`` or ``"skipped: …"``,
    times in seconds, ``peak_bytes`` above the baseline, GFLOP/s and the GEMM reference.
    """
    rows = []
    for size in sizes:
        n_t, n_r, n_f, n = size
        dense_bytes = 8 * n_t * n_r * n_f * n * n
        cache_bytes = 8 * n_f * n * n * (n_t + n_r)
        for impl in impls:
            row = {"size": list(size), "impl": impl, "dense_bytes": dense_bytes, "cache_bytes": cache_bytes}
            if impl == "dense" and dense_bytes > dense_limit:
                row["status"] = f"skipped: dense matrix {dense_bytes / 1e9:.1f} GB > {dense_limit / 1e9:.0f} GB"
            elif impl == "mimo-cached" and cache_bytes > cache_limit:
                row["status"] = f"skipped: steering cache {cache_bytes / 1e9:.1f} GB > {cache_limit / 1e9:.1f} GB"
            else:
                spec = {"size": list(size), "impl": impl, "repeats": repeats, "threads": threads}
                env = {**os.environ, "PYTHONPATH": str(ROOT)}
                proc = subprocess.run(
                    [sys.executable, __file__, "--worker", json.dumps(spec)],
                    capture_output=True, text=True, cwd=ROOT, env=env, check=False,
                )
                if proc.returncode != 0:
                    why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode
                    row["status"] = f"failed: {why}"
                else:
                    row.update(json.loads(proc.stdout.strip().splitlines()[-1]), status="ok")
            rows.append(row)
            print(_format_row(row), flush=True)
    return rows


HEADER = (
    f"{'size (TxRxF, N²)':<20}{'impl':<14}{'build s':>8}{'fwd s':>8}{'adj s':>8}{'fwd GF/s':>10}"
    f"{'adj GF/s':>10}{'GEMM GF/s':>11}{'fwd/GEMM':>10}{'adj/GEMM':>10}{'peak MB':>9}"
)


def _format_row(r: dict) -> str:
    n_t, n_r, n_f, n = r["size"]
    label = f"{n_t}x{n_r}x{n_f}, {n}²"
    if r["status"] != "ok":
        return f"{label:<20}{r['impl']:<14}{r['status']}"
    return (
        f"{label:<20}{r['impl']:<14}{r['build_s']:>8.2f}{r['forward_s']:>8.3f}{r['adjoint_s']:>8.3f}"
        f"{r['forward_gflops']:>10.1f}{r['adjoint_gflops']:>10.1f}{r['gemm_gflops']:>11.1f}"
        f"{r['forward_gflops'] / r['gemm_gflops']:>10.0%}{r['adjoint_gflops'] / r['gemm_gflops']:>10.0%}"
        f"{r['peak_bytes'] / 1e6:>9.0f}"
    )


def _summary(rows: list[dict]) -> list[str]:
    lines = []
    for size in {tuple(r["size"]) for r in rows}:
        by = {r["impl"]: r for r in rows if tuple(r["size"]) == size and r["status"] == "ok"}
        if "dense" in by:
            for impl in ("mimo-cached", "mimo-default"):
                if impl in by:
                    d, m = by["dense"], by[impl]
                    lines.append(
                        f"{size}: {impl} vs dense — forward {d['forward_s'] / m['forward_s']:.1f}× faster, "
                        f"adjoint {d['adjoint_s'] / m['adjoint_s']:.1f}× faster, "
                        f"{d['peak_bytes'] / max(m['peak_bytes'], 1):.1f}× less peak memory, "
                        f"checksum rel. diff {abs(d['check'][0] - m['check'][0]) / d['check'][0]:.1e}"
                    )
    return sorted(lines)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(_worker(json.loads(args.worker))))
        return
    import torch

    print(HEADER, flush=True)
    rows = run(repeats=args.repeats, threads=args.threads)
    summary = _summary(rows)
    print("\n".join(summary))
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": rows[0].get("threads") if rows else None,
        "device": "cpu",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": machine, "rows": rows, "summary": summary}, indent=2))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
