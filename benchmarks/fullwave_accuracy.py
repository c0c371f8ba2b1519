"""Discretisation convergence of the full-wave operator (``operators.LippmannSchwinger``) against the exact cylinder.

The 2001 Institut Fresnel set-up: 36 line sources every 10° on a circle of 0.72 m, 72 receivers
every 5° on one of 0.76 m, the dielectric cylinder of the ``dielTM_dec8f`` target (radius 15 mm, ε_r
= 3 i.e. χ = 2, centred at (0, 30) mm as in ``examples/fresnel_microwave.py``), plus a weak one (χ =
0.45), at 2, 4 and 8 GHz, one frequency per operator. The image is a 0.2 m square on grids of 32² …
128². Each case reports the relative error ‖E_s − E_exact‖/‖E_exact‖ over all 36 × 72 receiver
samples, where ``E_s = c_f · op.forward(χ)`` (``c_f = −j k h²/(8π)``) and ``E_exact`` is the
Bessel–Hankel series of ``tests/mie_cylinder.py`` (``line_source_scattered``), for two ways of
putting the disk on the grid: **area** — each pixel carries χ times the fraction of its area inside
the disk (16 × 16 sub-samples) — and **staircase** — χ on the pixels whose centre is inside. Also:
the BiCGSTAB iterations of the field solve and the seconds of one ``forward`` (all 36 transmitters
solved together; a fresh operator each time, so no warm start; median of ``--repeats``) and of
building the operator. The operator runs with its defaults (complex64 and its default solver
tolerance, recorded in the output).

Run ``python -m benchmarks.fullwave_accuracy [--threads 1] [--repeats 3]``: writes
``results/fullwave_accuracy.md`` and a small JSON (an interrupted run resumes from its part file).
``--smoke`` (32² and 48², 2 and 8 GHz, one repeat; seconds) prints the tables and writes nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.harness import finish, grid, machine, md_table, part_path, run, write_outputs

ROOT = Path(__file__).resolve().parents[1]
STEM = "fullwave_accuracy"
RADIUS, CENTER, SIDE = 0.015, (0.0, 0.03), 0.2  # examples/fresnel_microwave.py's disk
N_TX, N_RX, R_TX, R_RX = 36, 72, 0.72, 0.76
TIERS = {
    "full": {"chi": [2.0, 0.45], "freq": [2e9, 4e9, 8e9], "n": [32, 48, 64, 96, 128]},
    "smoke": {"chi": [2.0], "freq": [2e9, 8e9], "n": [32, 48]},
}
BOUNDARIES = ("area", "staircase")


def _mie():
    """``tests/mie_cylinder.py`` (the exact reference; loaded by path, ``tests/`` is no package)."""
    spec = importlib.util.spec_from_file_location("mie_cylinder", ROOT / "tests" / "mie_cylinder.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ring(n: int, radius: float) -> np.ndarray:
    a = 2 * np.pi * np.arange(n) / n
    return radius * np.stack([np.cos(a), np.sin(a)], axis=1)


def disk_image(x: np.ndarray, z: np.ndarray, boundary: str, sub: int = 16) -> np.ndarray:
    """The disk's indicator on the grid: area fraction per pixel, or 1 where the centre is inside."""
    if boundary == "staircase":
        return (((x[None, :] - CENTER[0]) ** 2 + (z[:, None] - CENTER[1]) ** 2) < RADIUS**2).astype(float)
    h = x[1] - x[0]
    s = (np.arange(sub) + 0.5) / sub - 0.5
    xx = x[None, :, None, None] + h * s[None, None, None, :]
    zz = z[:, None, None, None] + h * s[None, None, :, None]
    return (((xx - CENTER[0]) ** 2 + (zz - CENTER[1]) ** 2) < RADIUS**2).mean(axis=(2, 3))


def run_case(case: dict[str, Any], repeats: int) -> dict[str, Any]:
    """One (χ, frequency, grid, boundary): the receiver error, iterations, seconds."""
    from operators import SPEED_OF_LIGHT, LippmannSchwinger

    chi, f, n = case["chi"], case["freq"], case["n"]
    h = SIDE / n
    x = (np.arange(n) - (n - 1) / 2) * h
    z = x.copy()
    tx, rx = ring(N_TX, R_TX), ring(N_RX, R_RX)
    k = 2 * np.pi * f / SPEED_OF_LIGHT
    contrast = torch.as_tensor(chi * disk_image(x, z, case["boundary"]), dtype=torch.complex64)
    setup, solve, its = [], [], []
    y = None
    for _ in range(repeats):
        t = time.perf_counter()
        op = LippmannSchwinger(tx, rx, [f], x, z)
        setup.append(time.perf_counter() - t)
        t = time.perf_counter()
        y = op.forward(contrast)
        solve.append(time.perf_counter() - t)
        its.append(op.last_info["field"].iterations)
    exact = _mie().line_source_scattered(tx, rx, CENTER, RADIUS, chi, k)  # (T, R)
    e_s = y[..., 0].numpy().astype(np.complex128) * (-1j * k * h * h / (8 * np.pi))
    lam_in = 2 * np.pi / (k * math.sqrt(1 + chi))
    return {
        "error": float(np.linalg.norm(e_s - exact) / np.linalg.norm(exact)),
        "iterations": its[-1],
        "solve_s": statistics.median(solve),
        "setup_s": statistics.median(setup),
        "pitch_mm": 1e3 * h,
        "pixels_per_wavelength_inside": lam_in / h,
        "dtype": str(op.dtype).removeprefix("torch."),
        "tol": op.tol,
    }


def _rate(e_coarse: float, e_fine: float, n_coarse: int, n_fine: int) -> float:
    return math.log(e_coarse / e_fine) / math.log(n_fine / n_coarse)


def summarise(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    by = {(r["case"]["chi"], r["case"]["freq"], r["case"]["n"], r["case"]["boundary"]): r for r in rows}
    chis = sorted({k[0] for k in by}, reverse=True)
    freqs = sorted({k[1] for k in by})
    ns = sorted({k[2] for k in by})
    sizes = [f"{n}²" for n in ns]
    solver = sorted({(r["dtype"], r["tol"]) for r in rows})
    solver_text = "; ".join(f"{d}, tol {t:.0e}".replace("e-0", "e-") for d, t in solver)
    out = [
        "# Full-wave operator: discretisation convergence against the exact cylinder",
        "",
        f"`operators.LippmannSchwinger` ({solver_text}) on the 2001 Fresnel geometry: {N_TX} line sources "
        f"(r = {R_TX} m), {N_RX} receivers (r = {R_RX} m), a disk of radius {1e3 * RADIUS:.0f} mm centred at "
        f"({1e3 * CENTER[0]:.0f}, {1e3 * CENTER[1]:.0f}) mm in a {SIDE} m square image, one frequency. "
        "Error = ‖c_f·y − E_exact‖ / ‖E_exact‖ over all receiver samples (exact: the Bessel–Hankel series "
        "of `tests/mie_cylinder.py`); *order* is the observed rate between the two finest grids. "
        f"Torch threads {info['threads']}; {info['machine']['platform']}, {info['machine']['cpu_count']} CPUs "
        "(shared: timings are indicative).",
    ]
    for boundary, title in (("area", "boundary pixels area-weighted"), ("staircase", "staircased disk")):
        body = []
        for chi in chis:
            for f in freqs:
                errs = [by.get((chi, f, n, boundary)) for n in ns]
                if all(e is None for e in errs):
                    continue
                vals = [None if e is None else e["error"] for e in errs]
                order = _rate(vals[-2], vals[-1], ns[-2], ns[-1]) if len(ns) > 1 and None not in vals[-2:] else None
                cells = [None if v is None else f"{v:.1e}".replace("e-0", "e-") for v in vals]
                body.append([f"{chi:g}", f"{f / 1e9:g}", *cells, None if order is None else f"{order:.1f}"])
        if body:
            out += ["", f"## Relative error at the receivers, {title}", ""]
            out.append(md_table(["χ", "GHz", *sizes, "order"], body))
    body = []
    for chi in chis:
        for f in freqs:
            cells = []
            for n in ns:
                r = by.get((chi, f, n, "area"))
                cells.append(None if r is None else f"{r['iterations']} / {r['solve_s']:.2f}")
            ppw = [by[(chi, f, n, "area")]["pixels_per_wavelength_inside"] for n in ns if (chi, f, n, "area") in by]
            body.append([f"{chi:g}", f"{f / 1e9:g}", *cells, f"{ppw[0]:.0f}–{ppw[-1]:.0f}" if ppw else None])
    setup = [f"{n}²: {by[k]['setup_s']:.2f}" for n in ns for k in [(chis[0], freqs[0], n, "area")] if k in by]
    out += [
        "",
        f"## Field solve: BiCGSTAB iterations / seconds per `forward` ({N_TX} transmitters, 1 frequency)",
        "",
        md_table(["χ", "GHz", *sizes, "pixels per λ inside"], body),
        "",
        f"Seconds to build the operator (median): {', '.join(setup)}.",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="32² and 48², 2 and 8 GHz, χ = 2; no files written")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--repeats", type=int, default=3, help="timed solves per case (fresh operators), median")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    tier = "smoke" if args.smoke else "full"
    repeats = 1 if args.smoke else args.repeats
    part = None if args.smoke else part_path(None, STEM)
    cases = grid(boundary=BOUNDARIES, **TIERS[tier])

    def one(c: dict[str, Any]) -> dict[str, Any]:
        r = run_case(c, repeats)
        print(
            f"χ={c['chi']:<5g} {c['freq'] / 1e9:g} GHz {c['n']:4d}² {c['boundary']:<9} error {r['error']:.2e}  "
            f"{r['iterations']:3d} its  {r['solve_s']:6.2f} s",
            flush=True,
        )
        return r

    settings = {"tier": tier, "repeats": repeats, "threads": args.threads}
    rows = run(cases, one, part, settings=settings, log=None)
    info = {"machine": machine(), "threads": args.threads, "tier": tier, "repeats": repeats}
    md = summarise(rows, info)
    print(md)
    if not args.smoke:
        write_outputs(STEM, {**info, "rows": rows}, md)
        finish(None, STEM)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
