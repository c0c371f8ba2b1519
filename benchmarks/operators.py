"""Operator benchmarks: MIMO radar and diffraction tomography vs dense implementations.

Run: ``python -m benchmarks.operators [--only mimo|dt] [--repeats 3] [--threads N]`` (or ``make bench``).
Prints both tables and writes ``benchmarks/results/operators_mimo.json`` and ``operators_dt.json``.
Every case runs in a fresh subprocess (``--worker``), so that its peak memory is its own.

**MIMO radar**, per size ``(N_T, N_R, N_f, N)`` (image ``N × N``): ``mimo-cached`` —
``MIMORadar(cache_steering=True)`` with a budget that fits the cache (skipped above 2 GiB);
``mimo-default`` — ``MIMORadar`` with its defaults; ``dense`` — the ``(N_T N_R N_f × P)``
complex64 matrix (skipped above 8 GB). Forward and adjoint best of ``repeats``, peak resident
memory above a baseline taken after imports and warm-up, and a complex64 GEMM of comparable
size (``n³ ≈ N_T N_R N_f P``) under the same conditions; GFLOP/s count 8 real flops per complex
multiply-add. ``--threads`` sets the MIMO workers' torch threads.

**Diffraction tomography** (Born; λ_m = 4 pixels, detector = W samples, angles over 2π,
complex64, 2 threads, ``OMP_WAIT_POLICY=PASSIVE``): ``nufft`` (finufft, plan reused),
``dense`` (the exact separable NUDFT as batched matrix products) and ``einsum`` (the full
matrix ``exp(−i K·r)``, only where it fits in 1200 MB). Peak memory from ``VmHWM`` after a
reset; ``setup_mb`` is the memory the operator keeps.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import finish, grid, machine, part_path, run, write_outputs

ROOT = Path(__file__).resolve().parents[1]
MIMO_SIZES = ((8, 8, 64, 64), (16, 16, 128, 128), (16, 16, 256, 256))
MIMO_IMPLS = ("mimo-cached", "mimo-default", "dense")
DT_SIZES, DT_ANGLES, DT_METHODS = (64, 128, 256), (128, 360), ("nufft", "dense", "einsum")
WAVELENGTH = 1.0e-6
MEDIUM_INDEX = 1.333
PIXELS_PER_WAVELENGTH = 4.0  # in the medium


# ----------------------------------------------------------------------------- MIMO radar (one case, in a worker)
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


def mimo_case(size: list[int], impl: str, repeats: int, threads: int | None) -> dict[str, Any]:
    """One MIMO measurement in this process."""
    import resource

    import torch

    from operators.mimo import MIMORadar

    if threads:
        torch.set_num_threads(threads)
    n_t, n_r, n_f, n = size
    geom = _geometry(n_t, n_r, n_f, n)
    warm = MIMORadar(*[g[:2] for g in geom[:3]], geom[3][:4], geom[4][:4])
    warm.adjoint(warm.forward(torch.ones(4, 4, dtype=torch.complex64)))
    (torch.ones(64, 64, dtype=torch.complex64) @ torch.ones(64, 64, dtype=torch.complex64)).sum()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, n, dtype=torch.complex64, generator=gen)
    y = torch.randn(n_t, n_r, n_f, dtype=torch.complex64, generator=gen)
    base = _rss_kb("VmRSS") * 1024
    t0 = time.perf_counter()
    if impl == "dense":
        op = DenseMIMO(*geom)
    elif impl == "mimo-cached":
        steering = 8 * n_f * n * n * (n_t + n_r)
        op = MIMORadar(*geom, cache_steering=True, memory_budget=steering + 64 * 2**20)
    else:
        op = MIMORadar(*geom)
    out = op.forward(x)  # first call includes building the steering cache
    build = time.perf_counter() - t0
    t_fwd, t_adj = [], []
    for _ in range(repeats):
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
    for _ in range(max(3, repeats)):
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


# ----------------------------------------------------------------------------- tomography (one case, in a worker)
def _rss_kb(field: str) -> int:
    match = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(match.group(1)) if match else 0


def _median_time(fn, x, repeats: int) -> float:
    fn(x)  # warm-up (FFTW planning, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
        if times[-1] > 2.0:
            break
    return sorted(times)[len(times) // 2]


def dt_case(size: int, angles: int, method: str, repeats: int = 5, threads: int = 2) -> dict[str, Any]:
    """One tomography measurement in this process: ``method`` in ``{"nufft", "dense", "einsum"}``."""
    import numpy as np
    import torch

    from operators.tomography import DiffractionTomography

    torch.set_num_threads(threads)
    dx = WAVELENGTH / MEDIUM_INDEX / PIXELS_PER_WAVELENGTH
    phis = np.linspace(0, 2 * np.pi, angles, endpoint=False)
    x = torch.randn(size, size, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    rss0 = _rss_kb("VmRSS")
    t0 = time.perf_counter()
    op = DiffractionTomography(
        phis, (size, size), WAVELENGTH, MEDIUM_INDEX, dx, method="dense" if method == "einsum" else method
    )
    forward, adjoint = _einsum_model(op) if method == "einsum" else (op.forward, op.adjoint)
    y = forward(x)  # includes one-off planning
    setup_s = time.perf_counter() - t0
    setup_mb = (_rss_kb("VmRSS") - rss0) / 1024
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM)
        peak_ok = True
    except OSError:
        peak_ok = False
    base = _rss_kb("VmRSS")
    fwd = _median_time(forward, x, repeats)
    adj = _median_time(adjoint, y, repeats)
    return {
        "size": size, "angles": angles, "samples": op._nudft.size_out, "measurements": op.size_out,
        "method": method, "forward_ms": 1e3 * fwd, "adjoint_ms": 1e3 * adj, "setup_s": setup_s,
        "setup_mb": setup_mb, "peak_mb": (_rss_kb("VmHWM") - base) / 1024 if peak_ok else float("nan"),
        "threads": threads,
    }  # fmt: skip


def _einsum_model(op):
    """The full dense Born matrix of ``op`` (same weights, same detector FFT)."""
    import numpy as np
    import torch

    H, W = op.in_shape
    yy, xx = np.meshgrid(np.arange(H) - H // 2, np.arange(W) - W // 2, indexing="ij")
    K = op.k_samples.reshape(-1, 2) * op.pixel_size  # rad / pixel, (K_x, K_y)
    G = torch.empty(K.shape[0], H * W, dtype=torch.complex64)
    for s in range(0, K.shape[0], 1024):  # build in float64 phases, chunk by chunk
        ph = np.outer(K[s : s + 1024, 0], xx.ravel()) + np.outer(K[s : s + 1024, 1], yy.ravel())
        G[s : s + 1024] = torch.from_numpy(np.exp(-1j * ph))
    A, N = op.out_shape
    lo, hi, coef = op._lo, op._hi, op._coef

    def forward(x):
        c = torch.einsum("mp,p->m", G, x.reshape(-1)).reshape(A, -1) * coef
        spec = torch.zeros(A, N, dtype=c.dtype)
        spec[:, lo:hi] = c
        return torch.fft.fftshift(torch.fft.ifft(torch.fft.ifftshift(spec, dim=-1), dim=-1), dim=-1)

    def adjoint(y):
        spec = torch.fft.fftshift(torch.fft.fft(torch.fft.ifftshift(y, dim=-1), dim=-1), dim=-1)
        c = (spec[:, lo:hi] * coef.conj() / N).reshape(-1)
        return torch.einsum("m,mp->p", c.conj(), G).conj().reshape(H, W)  # no conjugated copy of G

    return forward, adjoint


# ----------------------------------------------------------------------------- the cases, the tables
def _worker(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run one case in a fresh interpreter (``--worker``); its last stdout line is the row."""
    cmd = [sys.executable, "-m", "benchmarks.operators", "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mimo_rows(repeats: int = 3, threads: int | None = None, dense_limit=8e9, cache_limit=2 * 2**30) -> list[dict]:
    """Every MIMO implementation at every size; ``status`` ``"ok"``, ``"skipped: …"`` or ``"failed: …"``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def one(c: dict[str, Any]) -> dict[str, Any]:
        n_t, n_r, n_f, n = c["size"]
        dense_bytes, cache_bytes = 8 * n_t * n_r * n_f * n * n, 8 * n_f * n * n * (n_t + n_r)
        row = {"size": list(c["size"]), "impl": c["impl"], "dense_bytes": dense_bytes, "cache_bytes": cache_bytes}
        if c["impl"] == "dense" and dense_bytes > dense_limit:
            row["status"] = f"skipped: dense matrix {dense_bytes / 1e9:.1f} GB > {dense_limit / 1e9:.0f} GB"
        elif c["impl"] == "mimo-cached" and cache_bytes > cache_limit:
            row["status"] = f"skipped: steering cache {cache_bytes / 1e9:.1f} GB > {cache_limit / 1e9:.1f} GB"
        else:
            try:
                spec = {"kind": "mimo", "size": list(c["size"]), "impl": c["impl"], "repeats": repeats}
                row.update(_worker({**spec, "threads": threads}, env), status="ok")
            except RuntimeError as err:
                row["status"] = f"failed: {err}"
        print(_format_mimo(row), flush=True)
        return row

    print(MIMO_HEADER, flush=True)
    settings = {"repeats": repeats, "threads": threads}
    cases = grid(size=MIMO_SIZES, impl=MIMO_IMPLS)
    rows = run(cases, one, part_path(None, "operators_mimo"), settings=settings, log=None)
    return [{k: v for k, v in r.items() if k != "case"} for r in rows]


MIMO_HEADER = (
    f"{'size (TxRxF, N²)':<20}{'impl':<14}{'build s':>8}{'fwd s':>8}{'adj s':>8}{'fwd GF/s':>10}"
    f"{'adj GF/s':>10}{'GEMM GF/s':>11}{'fwd/GEMM':>10}{'adj/GEMM':>10}{'peak MB':>9}"
)


def _format_mimo(r: dict) -> str:
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


def mimo_summary(rows: list[dict]) -> list[str]:
    lines = []
    for size in {tuple(r["size"]) for r in rows}:
        by = {r["impl"]: r for r in rows if tuple(r["size"]) == size and r["status"] == "ok"}
        for impl in ("mimo-cached", "mimo-default"):
            if "dense" in by and impl in by:
                d, m = by["dense"], by[impl]
                lines.append(
                    f"{size}: {impl} vs dense — forward {d['forward_s'] / m['forward_s']:.1f}× faster, "
                    f"adjoint {d['adjoint_s'] / m['adjoint_s']:.1f}× faster, "
                    f"{d['peak_bytes'] / max(m['peak_bytes'], 1):.1f}× less peak memory, "
                    f"checksum rel. diff {abs(d['check'][0] - m['check'][0]) / d['check'][0]:.1e}"
                )
    return sorted(lines)


def dt_rows(max_matrix_mb: float = 1200.0, repeats: int = 5, threads: int = 2) -> list[dict[str, Any]]:
    """All tomography cases; ``einsum`` is skipped where its matrix exceeds ``max_matrix_mb``.

    The workers run with ``OMP_WAIT_POLICY=PASSIVE`` (torch and finufft each load their own libgomp):
    on a shared, oversubscribed machine idle OpenMP threads spinning cost tens of ms per call.
    """
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")

    def one(c: dict[str, Any]) -> dict[str, Any]:
        size, angles, method = c["size"], c["angles"], c["method"]
        n_prop = sum(abs(m - size // 2) / size < 1 / PIXELS_PER_WAVELENGTH for m in range(size))  # propagating
        matrix_mb = angles * n_prop * size * size * 8 / 2**20
        if method == "einsum" and matrix_mb > max_matrix_mb:
            return {**c, "skipped": f"matrix {matrix_mb:.0f} MB > {max_matrix_mb:.0f} MB"}
        return _worker({"kind": "dt", **c, "repeats": repeats, "threads": threads}, env)

    cases = grid(size=DT_SIZES, angles=DT_ANGLES, method=DT_METHODS)
    settings = {"repeats": repeats, "threads": threads}
    rows = run(cases, one, part_path(None, "operators_dt"), settings=settings, log=None)
    rows = [{k: v for k, v in r.items() if k != "case"} for r in rows]
    ref = {(r["size"], r["angles"], r["method"]): r for r in rows if "skipped" not in r}
    for r in rows:  # speed-ups of the NUFFT over the dense paths
        for other in ("dense", "einsum"):
            o = ref.get((r["size"], r["angles"], other))
            if r["method"] == "nufft" and "skipped" not in r and o is not None:
                r[f"speedup_vs_{other}"] = (o["forward_ms"] + o["adjoint_ms"]) / (r["forward_ms"] + r["adjoint_ms"])
    return rows


def dt_table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'size':>5} {'angles':>6} {'M':>7} {'method':>7} {'fwd ms':>9} {'adj ms':>9} "
            f"{'setup s':>8} {'keep MB':>8} {'peak MB':>8} {'x dense':>8} {'x einsum':>8}")  # fmt: skip
    lines = [head, "-" * len(head)]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['size']:>5} {r['angles']:>6} {'':>7} {r['method']:>7}  skipped: {r['skipped']}")
            continue
        sd = f"{r['speedup_vs_dense']:.1f}" if "speedup_vs_dense" in r else ""
        se = f"{r['speedup_vs_einsum']:.1f}" if "speedup_vs_einsum" in r else ""
        lines.append(
            f"{r['size']:>5} {r['angles']:>6} {r['samples']:>7} {r['method']:>7} {r['forward_ms']:>9.2f} "
            f"{r['adjoint_ms']:>9.2f} {r['setup_s']:>8.2f} {r['setup_mb']:>8.1f} {r['peak_mb']:>8.1f} {sd:>8} {se:>8}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("mimo", "dt"), default=None, help="one of the two benchmarks")
    ap.add_argument("--repeats", type=int, default=3, help="MIMO: timed repeats")
    ap.add_argument("--threads", type=int, default=None, help="MIMO: torch threads of the workers")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        spec = json.loads(args.worker)
        if spec.pop("kind") == "mimo":
            print(json.dumps(mimo_case(**spec)))
        else:
            print(json.dumps(dt_case(**spec)))
        return
    if args.only in (None, "mimo"):
        rows = mimo_rows(repeats=args.repeats, threads=args.threads)
        summary = mimo_summary(rows)
        print("\n".join(summary))
        where = {**machine(), "cpu": platform.processor() or platform.machine(), "device": "cpu"}
        where["threads"] = rows[0].get("threads") if rows else None
        write_outputs("operators_mimo", {"machine": where, "rows": rows, "summary": summary}, None)
        finish(None, "operators_mimo")
    if args.only in (None, "dt"):
        rows = dt_rows()
        print(dt_table(rows))
        meta = {**machine(), "wavelength_m": WAVELENGTH, "medium_index": MEDIUM_INDEX, "dtype": "complex64"}
        meta |= {"pixels_per_wavelength": PIXELS_PER_WAVELENGTH, "threads": 2, "omp_wait_policy": "PASSIVE"}
        write_outputs("operators_dt", {"meta": {**meta, "load_average": os.getloadavg()}, "rows": rows}, None)
        finish(None, "operators_dt")


if __name__ == "__main__":
    main()
