"""Diffraction tomography operator: forward/adjoint time and peak memory, NUFFT vs dense.

Three implementations of the same Born model (``DiffractionTomography`` geometry:
λ_m = 4 pixels, detector = W samples, angles over 2π, complex64):

* ``nufft``  — ``DiffractionTomography(method="nufft")`` (finufft, plan reused);
* ``dense``  — ``DiffractionTomography(method="dense")``: exact separable NUDFT as
  batched matrix products, ``O(M·H·W)`` work, ``O(M·(H+W))`` memory;
* ``einsum`` — the naive dense Born model: the full matrix ``exp(−i K·r)`` of shape
  ``(M, H·W)`` stored once, applied with ``torch.einsum`` (+ the same weights and
  detector FFT); only where the matrix fits in ``max_matrix_mb``.

Each case runs in a fresh subprocess so that the peak resident memory of its
forward + adjoint calls can be read from ``/proc/self/status`` (VmHWM after a reset);
``setup_mb`` is the memory the operator keeps (tables, matrix, plans).

Usage: ``python -m benchmarks.bench_dt`` (prints a table, writes
``benchmarks/results/operators_dt.json``).
"""

from __future__ import annotations

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

RESULTS = Path(__file__).resolve().parent / "results" / "operators_dt.json"
WAVELENGTH = 1.0e-6
MEDIUM_INDEX = 1.333
PIXELS_PER_WAVELENGTH = 4.0  # in the medium


def _rss_kb(field: str) -> int:
    match = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(match.group(1)) if match else 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


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


def run_case(size: int, n_angles: int, method: str, repeats: int = 5, threads: int = 2) -> dict[str, Any]:
    """One measurement in this process: ``method`` in ``{"nufft", "dense", "einsum"}``."""
    import numpy as np
    import torch

    from operators.tomography import DiffractionTomography

    torch.set_num_threads(threads)
    dx = WAVELENGTH / MEDIUM_INDEX / PIXELS_PER_WAVELENGTH
    angles = np.linspace(0, 2 * np.pi, n_angles, endpoint=False)
    x = torch.randn(size, size, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    rss0 = _rss_kb("VmRSS")
    t0 = time.perf_counter()
    op = DiffractionTomography(angles, (size, size), WAVELENGTH, MEDIUM_INDEX, dx,
                               method="dense" if method == "einsum" else method)
    if method == "einsum":
        forward, adjoint = _einsum_model(op)
    else:
        forward, adjoint = op.forward, op.adjoint
    y = forward(x)  # includes one-off planning
    setup_s = time.perf_counter() - t0
    setup_mb = (_rss_kb("VmRSS") - rss0) / 1024
    peak_ok = _reset_peak()
    base = _rss_kb("VmRSS")
    fwd = _median_time(forward, x, repeats)
    adj = _median_time(adjoint, y, repeats)
    peak_mb = (_rss_kb("VmHWM") - base) / 1024 if peak_ok else float("nan")
    return {
        "size": size, "angles": n_angles, "samples": op._nudft.size_out, "measurements": op.size_out,
        "method": method, "forward_ms": 1e3 * fwd, "adjoint_ms": 1e3 * adj, "setup_s": setup_s,
        "setup_mb": setup_mb, "peak_mb": peak_mb, "threads": threads,
    }


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


def run(
    sizes: tuple[int, ...] = (64, 128, 256),
    angles: tuple[int, ...] = (128, 360),
    methods: tuple[str, ...] = ("nufft", "dense", "einsum"),
    max_matrix_mb: float = 1200.0,
    repeats: int = 5,
    threads: int = 2,
    omp_passive: bool = True,
) -> list[dict[str, Any]]:
    """All cases, each in a subprocess; ``einsum`` is skipped where its matrix exceeds ``max_matrix_mb``.

    ``omp_passive`` runs the subprocesses with ``OMP_WAIT_POLICY=PASSIVE`` (torch and
    finufft each load their own libgomp): on a shared, oversubscribed machine the
    default spin-waiting of idle OpenMP threads costs tens of milliseconds per call.
    """
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE") if omp_passive else dict(os.environ)
    rows = []
    for size in sizes:
        for n_angles in angles:
            n_prop = sum(
                abs(2 * math.pi * (m - size // 2) / size) < 2 * math.pi / PIXELS_PER_WAVELENGTH for m in range(size)
            )
            matrix_mb = n_angles * n_prop * size * size * 8 / 2**20
            for method in methods:
                if method == "einsum" and matrix_mb > max_matrix_mb:
                    rows.append({"size": size, "angles": n_angles, "method": method, "skipped":
                                 f"matrix {matrix_mb:.0f} MB > {max_matrix_mb:.0f} MB"})
                    continue
                code = (f"import json; from benchmarks.bench_dt import run_case; "
                        f"print(json.dumps(run_case({size}, {n_angles}, {method!r}, {repeats}, {threads})))")
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                     cwd=Path(__file__).resolve().parents[1], check=True, env=env)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    _add_speedups(rows)
    return rows


def _add_speedups(rows: list[dict[str, Any]]) -> None:
    ref = {(r["size"], r["angles"], r["method"]): r for r in rows if "skipped" not in r}
    for r in rows:
        if r.get("method") != "nufft" or "skipped" in r:
            continue
        for other in ("dense", "einsum"):
            o = ref.get((r["size"], r["angles"], other))
            if o is not None:
                r[f"speedup_vs_{other}"] = (o["forward_ms"] + o["adjoint_ms"]) / (r["forward_ms"] + r["adjoint_ms"])


def format_table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'size':>5} {'angles':>6} {'M':>7} {'method':>7} {'fwd ms':>9} {'adj ms':>9} "
            f"{'setup s':>8} {'keep MB':>8} {'peak MB':>8} {'x dense':>8} {'x einsum':>8}")
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


def main() -> None:
    rows = run()
    print(format_table(rows))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.platform(), "processor": platform.processor(), "python": platform.python_version(),
            "wavelength_m": WAVELENGTH, "medium_index": MEDIUM_INDEX, "pixels_per_wavelength": PIXELS_PER_WAVELENGTH,
            "dtype": "complex64", "threads": 2, "omp_wait_policy": "PASSIVE", "load_average": os.getloadavg()}
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
