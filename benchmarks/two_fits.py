"""Two differently seeded fits as a stopping signal (issue 6 lead): does their agreement pick the iterate?

Probe. The plain mean of independently stopped fits is shipped as ``reconstruct(..., fits=K)`` and
measured by ``benchmarks/ensemble.py``; the agreement rule below is not shipped. For each case
(modality × SNR × seed, each modality's default prior, 48²,
the shipped 1500 iterations, σ estimated) the same data are fitted twice, with the benchmark's seed
and with ``seed + 1000`` (another network initialisation and input). Every 5th raw iterate of both
runs is kept. Scored against the truth:

* **default**: the engine's default rule on run A alone (running average at the first
  ``½‖y − Ax‖² ≤ τMσ̂²``, τ from ``DEFAULT_TAU``; the last average when never reached) — what
  ``benchmarks/stopping.py`` scores;
* **ensemble at discrepancy**: ``(x_A + x_B)/2`` at run A's discrepancy choice (the end if none);
* **agreement, κ**: ``(x_A + x_B)/2`` at the iterate where the two fits disagree least,
  ``argmin_t ‖x_A,t − x_B,t‖² / ‖x_A,t‖²`` over the iterates whose misfit ratio
  ``½‖y − Ax_A,t‖²/(Mσ̂²)`` is ≤ κ (early on both networks agree on an almost empty image, so the
  search starts once run A fits the data to about the noise level).

Gaps are to run A's oracle (its best raw iterate: what one run could give at best) and to the
ensemble's own oracle (its best snapshot: the fair reference for a two-fit rule). Two fits cost
twice the compute.

Run (≈ 50 s per partial-Fourier/tomography case and ≈ 3 min per MIMO case on one core)::

    python -m benchmarks.two_fits --seeds 0,1 --name two_fits
    python -m benchmarks.two_fits --seeds 0 --name part_a &   # or in parts, then
    python -m benchmarks.two_fits --merge part_a part_b --name two_fits
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
import torch

import rfprior
from benchmarks._common import machine, md_table, read_parts, simulate_case, write_outputs
from benchmarks.stopping import MODALITIES, SHORT, current_tau, default_prior_of

EVERY = 5
BUDGET = 1500
SIZE = 48
KAPPAS = (1.0, 1.5, 2.0)


def _fit(op, y, truth, prior: str, seed: int) -> tuple[rfprior.Result, torch.Tensor]:
    """One default-settings run; returns the result and every ``EVERY``-th raw iterate ``(T, H, W)``."""
    snaps: list[torch.Tensor] = []

    def keep(state) -> None:
        if state.iteration % EVERY == 0 or state.iteration == BUDGET - 1:
            snaps.append(state.image.detach().clone())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = rfprior.reconstruct(
            y,
            op,
            prior=prior,
            seed=seed,
            truth=truth,
            progress=False,
            iterations=BUDGET,
            stop=[rfprior.FixedIterations(), rfprior.Discrepancy(), rfprior.RunningAverage()],
            callbacks=[keep],
        )
    return res, torch.stack(snaps)


def run_case(modality: str, snr: float, seed: int) -> dict[str, Any]:
    """Two fits of one simulated measurement; curves needed to score every rule offline."""
    op, y, truth, _ = simulate_case(modality, SIZE, snr, seed)
    prior = default_prior_of(modality)
    ra, sa = _fit(op, y, truth, prior, seed)
    rb, sb = _fit(op, y, truth, prior, seed + 1000)
    d = ((sa - sb).abs() ** 2).sum((-2, -1)) / ((sa.abs() ** 2).sum((-2, -1)) + 1e-30)
    ens = 0.5 * (sa + sb)
    return {
        "modality": modality,
        "snr": snr,
        "seed": seed,
        "prior": prior,
        "m": op.size_out,
        "sigma": ra.sigma,
        "every": EVERY,
        "oracle_a": ra.oracle_psnr,
        "oracle_it_a": ra.oracle_iteration,
        "oracle_b": rb.oracle_psnr,
        "avg_hist_a": ra.history["psnr_average"].values.tolist(),
        "misfit_a": ra.history["misfit"].values.tolist(),
        "d": d.tolist(),
        "ens_psnr": [float(rfprior.psnr(e, truth)) for e in ens],
    }


def score(c: dict[str, Any]) -> dict[str, float]:
    """PSNR of each rule's image for one case (dB)."""
    every, d, ens = c["every"], np.asarray(c["d"]), np.asarray(c["ens_psnr"])
    its = np.minimum(np.arange(len(d)) * every, BUDGET - 1)
    ratio = np.asarray(c["misfit_a"]) / (c["m"] * c["sigma"] ** 2)
    t = next((i for i, r in enumerate(ratio) if r <= current_tau(c["prior"])), None)
    out = {
        "default": c["avg_hist_a"][t] if t is not None else c["avg_hist_a"][-1],
        "ensemble at discrepancy": float(ens[t // every if t is not None else -1]),
    }
    for kappa in KAPPAS:
        ok = np.flatnonzero(ratio[its] <= kappa)
        k = int(ok[np.argmin(d[ok])]) if len(ok) else len(d) - 1
        out[f"agreement, κ = {kappa:g}"] = float(ens[k])
    return out


def summarise(cases: list[dict[str, Any]]) -> str:
    scores = [score(c) for c in cases]
    rows = []
    for m in [*MODALITIES, "all"]:
        idx = [i for i, c in enumerate(cases) if m in ("all", c["modality"])]
        if not idx:
            continue
        cs = [cases[i] for i in idx]
        for r in scores[0]:
            got = np.array([scores[i][r] for i in idx])
            g1 = np.array([c["oracle_a"] for c in cs]) - got
            g2 = np.array([max(c["ens_psnr"]) for c in cs]) - got
            rows.append(
                [
                    SHORT.get(m, m),
                    len(cs),
                    r,
                    float(np.mean(got)),
                    100 * float(np.mean(g1 <= 0.5)),
                    float(np.median(g1)),
                    float(g1.max()),
                    "–" if r == "default" else 100 * float(np.mean(g2 <= 0.5)),
                ]
            )
    head = [
        "mod",
        "n",
        "rule",
        "mean PSNR",
        "% within 0.5 dB of one run's oracle",
        "median gap",
        "worst gap",
        "% within 0.5 dB of the ensemble's oracle",
    ]
    seeds = sorted({c["seed"] for c in cases})
    return "\n".join(
        [
            "# Two differently seeded fits as a stopping signal (probe)",
            "",
            f"{SIZE}², {BUDGET} iterations, each modality's default prior, SNR 10/20/30 dB, seeds {seeds}, "
            "σ estimated; torch.set_num_threads(1); 2-core shared CPU, no GPU. Negative gaps: the two-fit "
            "average beats the best iterate of a single run. Two fits cost twice the compute.",
            "",
            md_table(head, rows),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1", help="comma-separated seeds")
    ap.add_argument("--modalities", nargs="+", default=list(MODALITIES), choices=MODALITIES)
    ap.add_argument("--name", default="two_fits", help="output file stem under benchmarks/results/")
    ap.add_argument("--merge", nargs="+", default=None, metavar="STEM", help="merge finished parts into --name")
    args = ap.parse_args(argv)
    info = machine()
    if args.merge:
        parts = read_parts(args.merge)
        info = parts[0]["machine"]  # where the cases ran (not where they were merged)
        cases = [c for part in parts for c in part["cases"]]
        cases.sort(key=lambda c: (c["seed"], MODALITIES.index(c["modality"]), c["snr"]))
    else:
        torch.set_num_threads(1)
        cases = []
        t0 = time.perf_counter()
        for seed in (int(s) for s in args.seeds.split(",")):
            for m in args.modalities:
                for snr in (10.0, 20.0, 30.0):
                    cases.append(run_case(m, snr, seed))
                    s = score(cases[-1])
                    print(
                        f"[{time.perf_counter() - t0:6.0f}s] {SHORT[m]} {snr:.0f} dB seed {seed}: oracle "
                        f"{cases[-1]['oracle_a']:.2f}, " + ", ".join(f"{k} {v:.2f}" for k, v in s.items()),
                        flush=True,
                    )
                    write_outputs(args.name, {"machine": machine(), "cases": cases}, summarise(cases))
    md = summarise(cases)
    write_outputs(args.name, {"machine": info, "cases": cases}, md)
    print(md)


if __name__ == "__main__":
    main()
