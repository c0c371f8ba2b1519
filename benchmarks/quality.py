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

Every non-oracle method gets the same σ: estimated from the data by the estimator the priors
use (:func:`rfprior.noise.estimate_sigma`). Scene families and seeds are split into a tuning set
(used to choose the defaults) and a check set (never looked at while choosing); the summary
reports them separately.

Run ``python -m benchmarks.quality --tier tune`` / ``--tier check`` (``--part i/n`` to split
over processes, ``--merge`` to combine), ``--smoke`` for the seconds-long version the test
suite runs. After a change to the prior, ``--prior-only`` reruns only the prior (the classical
scores are kept); after a tier grew, ``--keep-done`` keeps the rows of the tier's merged results
file and runs only the cases it lacks (matched by case label: modality, family, mask, size, SNR, seed).
Output: ``results/quality[_<tier>].md`` + a small JSON of per-case scores and a
figure; no per-iteration curves.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._common import RESULTS, machine, md_table, write_outputs

METHODS = ("bp", "cgls", "tv", "l1", "tv_oracle", "prior")
CLASSICAL = ("bp", "cgls", "tv", "l1")  # non-oracle classical methods
NATURAL = ("camera", "moon", "coins", "astronaut", "brick")  # by seed % 5: seeds 0-1 (camera, moon) tune
#: the check tier's seeds: never used to choose a default (5 and 6 would draw the tuning images)
CHECK_SEEDS = (2, 3, 4, 7, 8)


# ----------------------------------------------------------------------------- scenes
def _natural(name: str, size: int, seed: int) -> torch.Tensor:
    from skimage import data as skdata
    from skimage.color import rgb2gray
    from skimage.transform import resize

    from rfprior.scenes.phantoms import smooth_phase

    img = getattr(skdata, name)()
    if img.ndim == 3:
        img = rgb2gray(img)
    img = resize(img.astype(np.float64), (size, size), anti_aliasing=True)
    img = (img - img.min()) / max(img.max() - img.min(), 1e-12)
    phi = smooth_phase((size, size), seed)
    return torch.polar(torch.as_tensor(img), phi)


def _blobs(geometry: dict[str, Any], seed: int) -> torch.Tensor:
    """Smoothed random blobs inside a disc (tomography object function, m⁻²)."""
    from operators.tomography import index_to_object
    from rfprior.scenes.phantoms import generator

    h, w = geometry["shape"]
    g = generator(seed, 21)
    yy, xx = torch.meshgrid(
        torch.linspace(-1, 1, h, dtype=torch.float64), torch.linspace(-1, 1, w, dtype=torch.float64), indexing="ij"
    )
    delta = torch.zeros(h, w, dtype=torch.float64)
    for _ in range(int(torch.randint(4, 8, (1,), generator=g))):
        r, a = 0.55 * float(torch.rand(1, generator=g)) ** 0.5, 2 * math.pi * float(torch.rand(1, generator=g))
        s = 0.06 + 0.12 * float(torch.rand(1, generator=g))
        amp = 0.004 + 0.012 * float(torch.rand(1, generator=g))
        delta += amp * torch.exp(-((xx - r * math.cos(a)) ** 2 + (yy - r * math.sin(a)) ** 2) / (2 * s * s))
    disc = torch.sigmoid((0.8 - torch.hypot(xx, yy)) / 0.02)
    n = geometry["medium_index"] + (0.004 * disc + delta * disc).to(torch.complex128)
    return index_to_object(n, geometry["wavelength"], geometry["medium_index"])


def make_case(case: dict[str, Any]):
    """``(op, y, truth)`` for one case (complex64 operator and data, truth complex)."""
    from rfprior.io import operator_from
    from rfprior.scenes import default_geometry, simulate
    from rfprior.scenes.phantoms import complex_phantom, mimo_scene

    mod, fam, size, seed = case["modality"], case["family"], case["size"], case["seed"]
    geo: dict[str, Any] = {}
    if mod == "partial_fourier":
        kind, acc = case["mask"][:-1], float(case["mask"][-1])
        geo = {"mask_kind": {"vd": "variable_density", "cart": "cartesian"}[kind], "acceleration": acc}
    g = default_geometry(mod, size, seed=seed, **geo)
    if mod == "partial_fourier":
        scene = (
            complex_phantom((size, size), seed, kind=fam, dtype=torch.complex128)
            if fam in ("shepp_logan", "ellipses")
            else _natural(NATURAL[seed % len(NATURAL)], size, seed)
        )
    elif mod == "mimo":
        kind, n_points = {"mixed": ("mixed", 4), "silhouette": ("mixed", 5), "points": ("points", 6)}[fam]
        scene = mimo_scene(
            g["x"], g["z"], kind, seed + (1000 if fam == "silhouette" else 0), n_points=n_points, dtype=torch.complex128
        )
    else:
        if fam == "cell":
            scene = None
        else:
            scene = _blobs(g, seed)
    ds = simulate(mod, size=size, snr_db=case["snr"], seed=seed, scene=scene, **geo)
    op, y = operator_from(ds)
    return op, y, torch.as_tensor(ds["truth"].values)


def cases(tier: str) -> list[dict[str, Any]]:
    """The case list of a tier. ``tune``: families and seeds used to choose defaults; ``check``: held out."""
    out: list[dict[str, Any]] = []

    def add(mod: str, fam: str, snrs, seeds, sizes=(64,), masks=(None,)) -> None:
        for size in sizes:
            for mask in masks:
                for snr in snrs:
                    for seed in seeds:
                        c = {"modality": mod, "family": fam, "size": size, "snr": snr, "seed": seed, "tier": tier}
                        if mask is not None:
                            c["mask"] = mask
                        out.append(c)

    if tier == "smoke":
        add("partial_fourier", "shepp_logan", (20,), (0,), (32,), ("vd4",))
        add("mimo", "mixed", (20,), (0,), (32,))
        add("diffraction_tomography", "cell", (20,), (0,), (32,))
    elif tier == "tune":
        add("partial_fourier", "shepp_logan", (10, 20), (0, 1), masks=("vd4",))
        add("mimo", "mixed", (10, 20), (0, 1))
        add("diffraction_tomography", "cell", (10, 20), (0, 1))
    elif tier == "check":  # families and seeds never used to choose a default
        add("partial_fourier", "natural", (10, 20, 30), CHECK_SEEDS, masks=("vd4", "cart8"))
        add("mimo", "silhouette", (10, 20, 30), CHECK_SEEDS)
        add("diffraction_tomography", "blobs", (10, 20, 30), CHECK_SEEDS)
    elif tier == "size128":  # held out, like check: its five seeds at 20 dB
        add("partial_fourier", "natural", (20,), CHECK_SEEDS, (128,), ("vd4",))
        add("mimo", "silhouette", (20,), CHECK_SEEDS, (128,))
        add("diffraction_tomography", "blobs", (20,), CHECK_SEEDS, (128,))
    else:
        raise ValueError(f"unknown tier {tier!r}")
    return out


# ----------------------------------------------------------------------------- one case
def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def classical_baselines(
    case: dict[str, Any], op: Any, y: torch.Tensor, sigma: float
) -> tuple[dict[str, torch.Tensor], dict[str, float], dict[str, Any]]:
    """The non-oracle classical methods of ``case``: ``(images, seconds, parameters)``.

    The direct image, and CGLS, TV and ℓ1 (pixels for radar, Haar otherwise) each with its
    parameter chosen by the discrepancy principle at noise level ``sigma`` (no ground truth).
    """
    import operators as ops
    from rfprior.workflows import classical_image

    basis = "pixels" if case["modality"] == "mimo" else "haar"
    images: dict[str, torch.Tensor] = {}
    secs: dict[str, float] = {}
    info: dict[str, Any] = {}
    (_, images["bp"]), secs["bp"] = _timed(lambda: classical_image(op, y))
    ch, secs["cgls"] = _timed(lambda: ops.cgls_discrepancy(op, y, sigma))
    images["cgls"], info["cgls_iterations"] = ch.image, ch.parameter
    ch, secs["tv"] = _timed(lambda: ops.tv_discrepancy(op, y, sigma))
    images["tv"], info["tv_lambda"] = ch.image, ch.parameter
    ch, secs["l1"] = _timed(lambda: ops.l1_discrepancy(op, y, sigma, basis=basis))
    images["l1"], info["l1_lambda"] = ch.image, ch.parameter
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
    import warnings

    import operators as ops
    from rfprior.metrics import psnr, ssim
    from rfprior.noise import estimate_sigma

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
        return _prior_runs(case, op, y, truth, variants, iterations, kept, info, info["tv_lambda"])
    images, secs, found = classical_baselines(case, op, y, sigma)
    info.update(found)
    tv_image, tv_lambda = images["tv"], info["tv_lambda"]
    best, x0 = (float(psnr(tv_image, truth)), tv_image, 1.0), None
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
    return _prior_runs(case, op, y, truth, variants, iterations, scores, info, tv_lambda)


def _prior_runs(
    case: dict[str, Any],
    op: Any,
    y: torch.Tensor,
    truth: torch.Tensor,
    variants: tuple[str, ...],
    iterations: int | None,
    scores: dict[str, Any],
    info: dict[str, Any],
    tv_lambda: float,
) -> dict[str, Any]:
    """The prior's runs of one case (its defaults, then the variants), added to ``scores``."""
    import warnings

    import rfprior
    from rfprior.metrics import psnr, ssim

    images: dict[str, torch.Tensor] = {}
    secs: dict[str, float] = {}
    runs: dict[str, tuple[str | None, Any, int]] = {"prior": ("auto", "auto", 1)}
    for v in variants:  # "plain", "tv0.25", optionally "x2" for the mean of two seeded fits
        spec, _, k = v.partition("x")
        fits = int(k) if k else 1
        runs[f"prior_{v}"] = (None, 0.0, fits) if spec == "plain" else ("tv", float(spec[2:]) * tv_lambda, fits)
    for name, (pen, weight, fits) in runs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res, secs[name] = _timed(
                lambda pen=pen, weight=weight, fits=fits: rfprior.reconstruct(
                    y,
                    op,
                    stop=[rfprior.Discrepancy(), rfprior.RunningAverage()],
                    truth=truth,
                    progress=False,
                    penalty=pen,
                    penalty_weight=weight,
                    iterations=iterations,
                    fits=fits,
                )
            )
        images[name] = res.image
        info[f"{name}_chosen"] = res.chosen_iteration
        info[f"{name}_oracle_psnr"] = res.oracle_psnr
        info[f"{name}_settings"] = {
            "prior": res.settings["prior"].get("preset", res.settings["prior"]["name"]),
            "penalty": res.settings.get("penalty"),
        }
    for k, v in images.items():
        scores[k] = {"psnr": float(psnr(v, truth)), "ssim": float(ssim(v, truth)), "seconds": secs[k]}
    return {"case": case, "scores": scores, "info": info}


# ----------------------------------------------------------------------------- summary
def _label(c: dict[str, Any]) -> str:
    mask = f" {c['mask']}" if "mask" in c else ""
    return f"{c['modality']} {c['family']}{mask} {c['size']}² {c['snr']:g} dB s{c['seed']}"


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
    head = ["modality", "family", "size", "SNR", "n", *methods, "Δ median", "Δ worst", "prior s"]
    table = []
    for key, rs in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        mod, fam, mask, size, snr = key
        med = {m: statistics.median(r["scores"][m]["psnr"] for r in rs) for m in methods}
        meds = {m: statistics.median(r["scores"][m]["ssim"] for r in rs) for m in methods}
        deltas = [r["scores"]["prior"]["psnr"] - max(r["scores"][m]["psnr"] for m in CLASSICAL) for r in rs]
        table.append(
            [mod, f"{fam} {mask}".strip(), size, snr, len(rs)]
            + [f"{med[m]:.2f} ({meds[m]:.2f})" for m in methods]
            + [statistics.median(deltas), min(deltas), statistics.median(r["scores"]["prior"]["seconds"] for r in rs)]
        )
    out.append(md_table(head, table))
    out += ["", "Per modality (all cases of this table):", ""]
    per = []
    for mod in sorted({r["case"]["modality"] for r in rows}):
        rs = [r for r in rows if r["case"]["modality"] == mod]
        d_tv = [r["scores"]["prior"]["psnr"] - r["scores"]["tv"]["psnr"] for r in rs]
        d_best = [r["scores"]["prior"]["psnr"] - max(r["scores"][m]["psnr"] for m in CLASSICAL) for r in rs]
        wins = sum(d > 0 for d in d_best)
        per.append(
            [
                mod,
                len(rs),
                statistics.median(d_tv),
                statistics.median(d_best),
                min(d_best),
                f"{wins}/{len(rs)}",
                sum(d >= -0.5 for d in d_best),
            ]
        )
    out.append(
        md_table(
            [
                "modality",
                "cases",
                "prior − TV (median)",
                "prior − best classical (median)",
                "worst",
                "prior wins",
                "within 0.5 dB or better",
            ],
            per,
        )
    )
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
        d = [r["scores"]["prior"]["psnr"] - max(r["scores"][m]["psnr"] for m in CLASSICAL) for r in rs]
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
    ap.add_argument("--tier", default="check", choices=("smoke", "tune", "check", "size128"))
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
        rows = []
        for i in range(1, args.merge + 1):
            rows += json.loads((args.outdir / f"{name}_part{i}of{args.merge}.json").read_text())["rows"]
        payload = {"machine": machine(), "tier": tier, "rows": rows}
    else:
        i, n = (int(v) for v in args.part.split("/"))
        mods = {m for m in args.modalities.split(",") if m}
        todo = [c for c in cases(tier) if not mods or c["modality"] in mods][i - 1 :: n]
        variants = tuple(v for v in args.variants.split(",") if v)
        previous: dict[str, Any] = {}
        if (args.prior_only or args.keep_done) and mods:
            raise SystemExit("--prior-only / --keep-done rewrite a whole tier's results file: drop --modalities")
        if args.prior_only and args.keep_done:
            raise SystemExit("--prior-only reruns the prior of every case, --keep-done none of the done ones: pick one")
        done: dict[str, Any] = {}
        if args.prior_only or args.keep_done:
            flag = "--prior-only" if args.prior_only else "--keep-done"
            last = args.outdir / f"{name}.json"
            if not last.exists():
                raise SystemExit(f"{flag}: no earlier results {last} to start from")
            previous = {_label(r["case"]): r for r in json.loads(last.read_text())["rows"]}
            missing = [_label(c) for c in todo if _label(c) not in previous]
            if missing and args.prior_only:
                raise SystemExit(f"--prior-only: {last.name} lacks {len(missing)} case(s), e.g. {missing[0]}")
            if args.keep_done:  # the loop looks rows up by the labels of this part's cases only
                done, previous = previous, {}
        rows = []

        def write_part() -> dict[str, Any]:  # an interrupted run keeps what it finished (--merge reads the parts)
            payload = {"machine": machine(), "tier": tier, "rows": rows}
            write_outputs(f"{name}_part{i}of{n}", payload, "(part)", args.outdir)
            return payload

        for c in todo:
            if _label(c) in done:
                rows.append(done[_label(c)])
                continue
            r = run_case(c, variants, iterations=30 if tier == "smoke" else None, previous=previous.get(_label(c)))
            rows.append(r)
            print(_label(c), " ".join(f"{k} {v['psnr']:.2f}" for k, v in r["scores"].items()), flush=True)
            write_part()
        payload = write_part()
        if n > 1:
            return 0
    md = summarise(payload["rows"], f"Quality benchmark — {tier} tier")
    write_outputs(name, payload, md, args.outdir)
    figure(payload["rows"], args.outdir / name)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
