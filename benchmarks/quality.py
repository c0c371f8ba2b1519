"""Quality benchmark: the default prior against fair classical baselines, none tuned with ground truth.

Per case (modality × scene family × acquisition × SNR × seed × size) it reports PSNR, SSIM
and seconds of

* ``bp``         — the modality's direct image (backprojection / zero filling / filtered backpropagation)
* ``cgls``       — CGLS stopped by the discrepancy principle
* ``tv``         — TV, λ by the discrepancy principle
* ``l1``         — ℓ1 by FISTA (pixels for radar, orthonormal Haar otherwise), λ by the discrepancy principle
* ``tv_oracle``  — TV at the best λ of a grid around the discrepancy λ: a **ceiling** (uses the truth)
* ``prior``      — ``rfprior.reconstruct(y, op)`` with its defaults (σ estimated, discrepancy + running average)
* optional variants (``--variants plain,tv0.25,...``) — the prior without a penalty or with
  ``penalty_weight = f × λ_TV`` — used to choose the defaults on the **tuning** split.

The four non-oracle baselines are the product's :func:`rfprior.workflows.classical_baselines`,
all at the σ the priors estimate (:func:`rfprior.modalities.estimate_sigma`). Scene families and
seeds are split into a tuning set (used to choose the defaults) and a check set (never looked
at while choosing); the summary reports them separately.

Run ``python -m benchmarks.quality --tier tune`` / ``--tier check`` (``--part i/n`` to split
over processes, ``--merge n`` to combine), ``--smoke`` for the seconds-long version the test
suite runs. A run resumes from its part file (``results/quality_<tier>_part<i>of<n>.json``).
After a change to the prior, ``--prior-only`` reruns only the prior (the classical scores are
kept); after a tier grew, ``--keep-done`` keeps the rows of the tier's merged results file and
runs only the cases it lacks (matched by case label: modality, family, mask, size, SNR, seed).
Output: ``results/quality_<tier>.md`` + a small JSON of per-case scores and a figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.harness import (
    RESULTS,
    finish,
    grid,
    machine,
    md_table,
    merge_parts,
    part_path,
    run,
    simulate,
    timed,
    write_outputs,
)

METHODS = ("bp", "cgls", "tv", "l1", "tv_oracle", "prior")
CLASSICAL = ("bp", "cgls", "tv", "l1")  # non-oracle classical methods
#: the check tier's seeds: never used to choose a default (5 and 6 would draw the tuning images)
CHECK_SEEDS = (2, 3, 4, 7, 8)
PF, MIMO, DT = "partial_fourier", "mimo", "diffraction_tomography"
#: per tier: (modality, family, SNRs, seeds, sizes, masks); tune chose the defaults, the others are held out
TIERS: dict[str, list[tuple[str, str, tuple, tuple, tuple, tuple]]] = {
    "smoke": [
        (PF, "shepp_logan", (20,), (0,), (32,), ("vd4",)),
        (MIMO, "mixed", (20,), (0,), (32,), (None,)),
        (DT, "cell", (20,), (0,), (32,), (None,)),
    ],
    "tune": [
        (PF, "shepp_logan", (10, 20), (0, 1), (64,), ("vd4",)),
        (MIMO, "mixed", (10, 20), (0, 1), (64,), (None,)),
        (DT, "cell", (10, 20), (0, 1), (64,), (None,)),
    ],
    "check": [
        (PF, "natural", (10, 20, 30), CHECK_SEEDS, (64,), ("vd4", "cart8")),
        (MIMO, "silhouette", (10, 20, 30), CHECK_SEEDS, (64,), (None,)),
        (DT, "blobs", (10, 20, 30), CHECK_SEEDS, (64,), (None,)),
    ],
    "size128": [  # held out, like check: its five seeds at 20 dB
        (PF, "natural", (20,), CHECK_SEEDS, (128,), ("vd4",)),
        (MIMO, "silhouette", (20,), CHECK_SEEDS, (128,), (None,)),
        (DT, "blobs", (20,), CHECK_SEEDS, (128,), (None,)),
    ],
}


def cases(tier: str) -> list[dict[str, Any]]:
    """The case list of a tier. ``tune``: families and seeds used to choose defaults; ``check``: held out."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}")
    return [
        c
        for mod, fam, snrs, seeds, sizes, masks in TIERS[tier]
        for c in grid(modality=mod, family=fam, size=sizes, mask=masks, snr=snrs, seed=seeds, tier=tier)
    ]


def make_case(case: dict[str, Any]):
    """``(op, y, truth)`` for one case (complex64 operator and data, truth complex)."""
    return simulate(case)[:3]


# ----------------------------------------------------------------------------- one case
def classical_baselines(op: Any, y: torch.Tensor, sigma: float) -> tuple[dict, dict, dict[str, Any]]:
    """The product's fair baselines (:func:`rfprior.workflows.classical_baselines`) as ``(images, seconds, info)``.

    The oracle grid and the variants need the exact TV λ: the product returns it (``parameters``).
    """
    from rfprior.workflows import classical_baselines as product_baselines

    found = product_baselines(op, y, sigma=sigma)
    labels = list(found)
    if len(labels) != 4 or not labels[1].startswith("CGLS") or not labels[2].startswith("TV"):
        raise RuntimeError(f"rfprior.workflows.classical_baselines changed its methods: {labels}")
    images = {k: found[lab][0] for k, lab in zip(CLASSICAL, labels, strict=True)}
    secs = {k: found[lab][1] for k, lab in zip(CLASSICAL, labels, strict=True)}
    info = {
        "baselines": labels,
        "cgls_iterations": int(found.parameters["cgls"]),
        "tv_lambda": found.parameters["tv"],
        "l1_lambda": found.parameters["l1"],
    }
    return images, secs, info


def run_case(
    case: dict[str, Any],
    variants: tuple[str, ...] = (),
    iterations: int | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One case: the classical methods, the ceiling and the prior's runs.

    ``previous``: this case's row from an earlier run (``--prior-only``); its classical and
    ceiling scores are kept (they do not depend on the prior: same scene, seed and σ̂) and only
    the prior's runs are made again.
    """
    import operators as ops
    from rfprior.metrics import psnr, ssim
    from rfprior.modalities import estimate_sigma

    op, y, truth = make_case(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sigma, estimator = estimate_sigma(op, y)
    info: dict[str, Any] = {"sigma_hat": sigma, "sigma_estimator": estimator}
    if previous is not None:
        if json.loads(json.dumps(case)) != previous["case"]:
            raise ValueError(f"--prior-only: the earlier row is for {_label(previous['case'])}, not {_label(case)}")
        kept = {k: v for k, v in previous["scores"].items() if not k.startswith("prior")}
        info.update({k: v for k, v in previous["info"].items() if not k.startswith("prior")})
        return {"case": case, **_prior_runs(op, y, truth, variants, iterations, kept, info, info["tv_lambda"])}
    images, secs, found = classical_baselines(op, y, sigma)
    info.update(found)
    tv_lambda = info["tv_lambda"]
    best, x0 = (float(psnr(images["tv"], truth)), images["tv"], 1.0), None
    t = time.perf_counter()
    for f in (4.0, 2.0, 1.0, 0.5, 0.25, 0.125, 0.0625):  # descending λ, warm-started
        x0 = ops.tv_reconstruct(op, y, lam=f * tv_lambda, x0=x0, iters=400)
        p = float(psnr(x0, truth))
        if p > best[0]:
            best = (p, x0, f)
    secs["tv_oracle"] = time.perf_counter() - t
    images["tv_oracle"], info["tv_oracle_factor"] = best[1], best[2]
    scores = {
        k: {"psnr": float(psnr(v, truth)), "ssim": float(ssim(v, truth)), "seconds": secs[k]} for k, v in images.items()
    }
    return {"case": case, **_prior_runs(op, y, truth, variants, iterations, scores, info, tv_lambda)}


def _prior_runs(op, y, truth, variants, iterations, scores: dict, info: dict, tv_lambda: float) -> dict[str, Any]:
    """The prior's runs of one case (its defaults, then the variants), added to ``scores``."""
    import rfprior
    from rfprior.metrics import psnr, ssim

    runs: dict[str, tuple[str | None, Any, int]] = {"prior": ("auto", "auto", 1)}
    for v in variants:  # "plain", "tv0.25", optionally "x2" for the mean of two seeded fits
        spec, _, k = v.partition("x")
        fits = int(k) if k else 1
        runs[f"prior_{v}"] = (None, 0.0, fits) if spec == "plain" else ("tv", float(spec[2:]) * tv_lambda, fits)
    for name, (pen, weight, fits) in runs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res, secs = timed(
                lambda pen=pen, weight=weight, fits=fits: rfprior.reconstruct(
                    y,
                    op,
                    stop=[rfprior.stopping.Discrepancy(), rfprior.stopping.RunningAverage()],
                    truth=truth,
                    progress=False,
                    penalty=pen,
                    penalty_weight=weight,
                    iterations=iterations,
                    fits=fits,
                )
            )
        info[f"{name}_chosen"] = res.chosen_iteration
        info[f"{name}_oracle_psnr"] = res.oracle_psnr
        info[f"{name}_settings"] = {
            "prior": res.settings["prior"].get("preset", res.settings["prior"]["name"]),
            "penalty": res.settings.get("penalty"),
        }
        scores[name] = {"psnr": float(psnr(res.image, truth)), "ssim": float(ssim(res.image, truth)), "seconds": secs}
    return {"scores": scores, "info": info}


# ----------------------------------------------------------------------------- summary
def _label(c: dict[str, Any]) -> str:
    mask = f" {c['mask']}" if "mask" in c else ""
    return f"{c['modality']} {c['family']}{mask} {c['size']}² {c['snr']:g} dB s{c['seed']}"


def _delta(r: dict[str, Any]) -> float:
    """prior − best non-oracle classical method (dB)."""
    return r["scores"]["prior"]["psnr"] - max(r["scores"][m]["psnr"] for m in CLASSICAL)


def summarise(rows: list[dict[str, Any]], title: str) -> str:
    methods = [m for m in METHODS if all(m in r["scores"] for r in rows)]
    extra = sorted({k for r in rows for k in r["scores"]} - set(METHODS))
    methods += [m for m in extra if all(m in r["scores"] for r in rows)]
    out = [
        f"# {title}",
        "",
        "PSNR [dB] (SSIM). `tv`, `l1`, `cgls`: parameter by the discrepancy principle with the σ the priors "
        "estimate; `tv_oracle`: best λ of a grid by PSNR against the truth — a ceiling, not a competitor. "
        "`prior`: `rfprior.reconstruct(y, op)` defaults. Δ = prior − best non-oracle classical method.",
        "",
    ]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        c = r["case"]
        groups.setdefault((c["modality"], c["family"], c.get("mask", ""), c["size"], c["snr"]), []).append(r)
    table = []
    for (mod, fam, mask, size, snr), rs in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        med = {m: statistics.median(r["scores"][m]["psnr"] for r in rs) for m in methods}
        meds = {m: statistics.median(r["scores"][m]["ssim"] for r in rs) for m in methods}
        deltas = [_delta(r) for r in rs]
        table.append(
            [mod, f"{fam} {mask}".strip(), size, snr, len(rs)]
            + [f"{med[m]:.2f} ({meds[m]:.2f})" for m in methods]
            + [statistics.median(deltas), min(deltas), statistics.median(r["scores"]["prior"]["seconds"] for r in rs)]
        )
    out.append(md_table(["modality", "family", "size", "SNR", "n", *methods, "Δ median", "Δ worst", "prior s"], table))
    out += ["", "Per modality (all cases of this table):", ""]
    per = []
    for mod in sorted({r["case"]["modality"] for r in rows}):
        rs = [r for r in rows if r["case"]["modality"] == mod]
        d_tv = [r["scores"]["prior"]["psnr"] - r["scores"]["tv"]["psnr"] for r in rs]
        d_best = [_delta(r) for r in rs]
        wins = f"{sum(d > 0 for d in d_best)}/{len(rs)}"
        per.append([mod, len(rs), statistics.median(d_tv), statistics.median(d_best), min(d_best), wins])
        per[-1].append(sum(d >= -0.5 for d in d_best))
    head = ["modality", "cases", "prior − TV (median)", "prior − best classical (median)", "worst", "prior wins"]
    out.append(md_table([*head, "within 0.5 dB or better"], per))
    out += ["", "Per case:", ""]
    out.append(
        md_table(["case", *methods], [[_label(r["case"])] + [r["scores"][m]["psnr"] for m in methods] for r in rows])
    )
    return "\n".join(out)


def figure(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    mods = sorted({r["case"]["modality"] for r in rows})
    for i, mod in enumerate(mods):
        rs = [r for r in rows if r["case"]["modality"] == mod]
        d = [_delta(r) for r in rs]
        snr = [r["case"]["snr"] for r in rs]
        ax.scatter(np.full(len(d), i) + (np.array(snr) - 20) / 60, d, c=snr, cmap="viridis", vmin=10, vmax=30, s=14)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(mods)), mods)
    ax.set_ylabel("prior − best classical [dB]")
    ax.set_title("default prior vs best non-oracle classical (colour: SNR 10→30 dB)")
    fig.tight_layout()
    fig.savefig(path.with_name(path.name + "_figure.pdf"))
    fig.savefig(path.with_name(path.name + "_figure.png"), dpi=110)  # for a quick look; not kept in git
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tier", default="check", choices=tuple(TIERS))
    ap.add_argument("--smoke", action="store_true", help="tiny cases, few iterations (the test suite's mode)")
    ap.add_argument("--variants", default="", help="extra prior runs: plain,tv0.25,tv0.5,… (tuning)")
    ap.add_argument("--part", default="1/1", help="i/n: run every n-th case starting at i (1-based)")
    ap.add_argument("--merge", type=int, default=0, help="merge n parts written earlier")
    ap.add_argument("--modalities", default="", help="comma-separated subset of the tier's modalities")
    ap.add_argument("--outdir", type=Path, default=RESULTS)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--prior-only",
        action="store_true",
        help="rerun only the prior; keep the classical scores of the tier's last results (after a change to the prior)",
    )
    ap.add_argument(
        "--keep-done",
        action="store_true",
        help="keep the tier's last results for the cases they hold and run only the others (after the tier grew)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    tier = "smoke" if args.smoke else args.tier
    name = f"quality_{tier}"
    if args.merge:
        rows = merge_parts(args.outdir, name, args.merge)
        return _report(rows, tier, name, args.outdir, args.merge)
    i, n = (int(v) for v in args.part.split("/"))
    mods = {m for m in args.modalities.split(",") if m}
    todo = [c for c in cases(tier) if not mods or c["modality"] in mods][i - 1 :: n]
    variants = tuple(v for v in args.variants.split(",") if v)
    if (args.prior_only or args.keep_done) and mods:
        raise SystemExit("--prior-only / --keep-done rewrite a whole tier's results file: drop --modalities")
    if args.prior_only and args.keep_done:
        raise SystemExit("--prior-only reruns the prior of every case, --keep-done none of the done ones: pick one")
    previous: dict[str, Any] = {}
    if args.prior_only or args.keep_done:
        last = args.outdir / f"{name}.json"
        if not last.exists():
            raise SystemExit(f"{'--prior-only' if args.prior_only else '--keep-done'}: no earlier results {last}")
        previous = {_label(r["case"]): r for r in json.loads(last.read_text())["rows"]}
        missing = [_label(c) for c in todo if _label(c) not in previous]
        if missing and args.prior_only:
            raise SystemExit(f"--prior-only: {last.name} lacks {len(missing)} case(s), e.g. {missing[0]}")
    iterations = 30 if tier == "smoke" else None

    def one(c: dict[str, Any]) -> dict[str, Any]:
        r = run_case(c, variants, iterations, previous.get(_label(c)) if args.prior_only else None)
        print(_label(c), " ".join(f"{k} {v['psnr']:.2f}" for k, v in r["scores"].items()), flush=True)
        return r

    settings = {"tier": tier, "variants": variants, "prior_only": args.prior_only}
    rows = run(
        todo,
        one,
        part_path(args.outdir, name, args.part),
        key=_label,
        done=previous.values() if args.keep_done else (),
        settings=settings,
        log=None,
    )
    return 0 if n > 1 else _report(rows, tier, name, args.outdir, 1)


def _report(rows: list[dict[str, Any]], tier: str, name: str, outdir: Path, parts: int) -> int:
    md = summarise(rows, f"Quality benchmark — {tier} tier")
    write_outputs(name, {"machine": machine(), "tier": tier, "rows": rows}, md, outdir)
    figure(rows, outdir / name)
    finish(outdir, name, parts)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
