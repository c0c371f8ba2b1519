"""Capacity benchmark: does a larger network or a longer fit beat TV where the default only ties it?

On natural-image partial Fourier and on radar the default prior (Deep Decoder at 64 channels,
``dip_small``) lands level with TV-discrepancy, and its best raw iterate is level too
(docs/notes.md). This benchmark asks whether more capacity changes that — the one lever that a
2-core CPU could not afford inside the time targets — so it is meant for a GPU
(``--device cuda``), where these networks are cheap.

Cases (64², σ estimated, the default DIP + TV penalty and stopping rules), by split:

* ``tune`` — natural partial Fourier (camera / moon, seeds 0–1, VD 4× and Cartesian 8×,
  20 / 30 dB) and radar ``mixed`` scenes (seeds 0–1, 10 / 20 / 30 dB): the tuning split;
* ``check`` — natural partial Fourier (seeds 2–3, VD 4×, 20 / 30 dB) and radar
  ``silhouette`` scenes (seeds 2–3, 20 / 30 dB): held out, as in ``benchmarks.quality``;
* ``sl`` — the partial-Fourier tuning phantoms (Shepp–Logan, VD 4×, seeds 0–1, 10 / 20 dB): a
  candidate default must not break piecewise-constant scenes.

Variants (:data:`VARIANTS`): for partial Fourier the Deep Decoder at 32 / 64 (default) / 128 /
256 channels, 64 and 256 channels for 6000 iterations (``@6000``) and the full-size DIP (128
channels); for radar ``dip_small`` (default), DIP at 64 and 128 channels, and 128 channels at
half the step for twice the iterations. Per fit: PSNR / SSIM of the returned image, the best raw iterate's PSNR
(picked with the truth: a ceiling for any stopping rule), the chosen iteration and seconds.

Classical references (TV- and ℓ1-discrepancy, CGLS-discrepancy, the modality's direct image) do
not depend on the device: ``--classical`` computes them once on the CPU into
``results/capacity_classical.json``, which a device run reads.

Usage::

    python -m benchmarks.capacity --classical                         # CPU, ≈ 10 min
    python -m benchmarks.capacity --device cuda --part 1/12 --out DIR  # one of 12 processes
    python -m benchmarks.capacity --merge DIR                          # → results/capacity.md

Parts write one JSON line per fit as they go, so a run cut short still reports what it did.
TF32 is switched off on the device (float32 arithmetic, as on the CPU) unless ``--tf32``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import RESULTS, machine, md_table, write_outputs
from benchmarks.quality import CLASSICAL, _label, classical_baselines, make_case

#: name → (prior, prior_kwargs, iterations or None for the default, lr or None for the default)
VARIANTS: dict[str, dict[str, tuple[str, dict[str, Any], int | None, float | None]]] = {
    "partial_fourier": {
        "dd32": ("deep_decoder", {"channels": 32}, None, None),
        "dd64 (default)": ("deep_decoder", {}, None, None),
        "dd128": ("deep_decoder", {"channels": 128}, None, None),
        "dd256": ("deep_decoder", {"channels": 256}, None, None),
        "dd64@6000": ("deep_decoder", {}, 6000, None),
        "dd256@6000": ("deep_decoder", {"channels": 256}, 6000, None),
        "dip128": ("dip", {}, None, None),
    },
    "mimo": {
        "dip_small (default)": ("dip_small", {}, None, None),
        "dip64": ("dip", {"channels_down": 64, "channels_up": 64, "channels_skip": 4}, None, None),
        "dip128": ("dip", {}, None, None),
        "dip128@2400,lr0.01": ("dip", {}, 2400, 0.01),
    },
}


def _case(modality: str, family: str, snr: int, seed: int, split: str, mask: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"modality": modality, "family": family, "size": 64, "snr": snr, "seed": seed}
    if mask is not None:
        c["mask"] = mask
    return {**c, "split": split}


def cases(split: str) -> list[dict[str, Any]]:
    """The cases of ``split`` (``"tune"``, ``"check"`` or ``"sl"``), in run order."""
    pf, radar = "partial_fourier", "mimo"
    if split == "tune":
        return [
            _case(pf, "natural", snr, seed, split, mask)
            for mask in ("vd4", "cart8")
            for snr in (20, 30)
            for seed in (0, 1)
        ] + [_case(radar, "mixed", snr, seed, split) for snr in (10, 20, 30) for seed in (0, 1)]
    if split == "check":
        return [
            c
            for snr in (20, 30)
            for seed in (2, 3)
            for c in (_case(pf, "natural", snr, seed, split, "vd4"), _case(radar, "silhouette", snr, seed, split))
        ]
    if split == "sl":  # the partial-Fourier tuning phantoms: a variant must not break piecewise-constant scenes
        return [_case(pf, "shepp_logan", snr, seed, split, "vd4") for snr in (10, 20) for seed in (0, 1)]
    raise ValueError(f"capacity: split must be 'tune', 'check' or 'sl', got {split!r}")


def jobs(
    splits: tuple[str, ...] = ("tune", "check"), variants: tuple[str, ...] | None = None
) -> list[tuple[dict[str, Any], str]]:
    """The (case, variant) pairs of ``splits`` in order (tuning cases first), optionally only ``variants``."""
    return [
        (c, v)
        for split in splits
        for c in cases(split)
        for v in VARIANTS[c["modality"]]
        if variants is None or v in variants
    ]


def classical(case: dict[str, Any]) -> dict[str, float]:
    """PSNR of the non-oracle classical methods on ``case`` (σ estimated as the prior does)."""
    from rfprior.metrics import psnr
    from rfprior.noise import estimate_sigma

    op, y, truth = make_case(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sigma, _ = estimate_sigma(op, y)
    images, _, _ = classical_baselines(case, op, y, sigma)
    return {k: float(psnr(v, truth)) for k, v in images.items()}


def fit(case: dict[str, Any], variant: str, device: str, iterations: int | None = None) -> dict[str, Any]:
    """One prior fit of ``case`` with ``variant`` on ``device`` (``iterations``: override its budget)."""
    import rfprior
    from rfprior.metrics import psnr, ssim

    prior, kwargs, budget, lr = VARIANTS[case["modality"]][variant]
    iterations = budget if iterations is None else iterations
    op, y, truth = make_case(case)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = rfprior.reconstruct(
            y,
            op,
            prior=prior,
            prior_kwargs=kwargs,
            iterations=iterations,
            lr=lr,
            device=device,
            truth=truth,
            progress=False,
        )
    secs = time.perf_counter() - t
    image = res.image.cpu()
    raw = res.history["psnr"].values
    return {
        "case": case,
        "variant": variant,
        "iterations": iterations,  # None: the forward model's default budget / step
        "lr": lr,
        "psnr": float(psnr(image, truth)),
        "ssim": float(ssim(image, truth)),
        "best_raw": float(max(raw)),
        "chosen": int(res.chosen_iteration),
        "ran": len(raw),
        "seconds": secs,
    }


def summarise(rows: list[dict[str, Any]], ref: dict[str, dict[str, float]]) -> str:
    """Markdown: per modality and split, each variant's median (and worst) PSNR minus TV-discrepancy."""
    parts = []
    for mod, names in VARIANTS.items():
        for split in ("tune", "check", "sl"):
            rs = [r for r in rows if r["case"]["modality"] == mod and r["case"]["split"] == split]
            if not rs:
                continue
            table = []
            for v in names:
                vs = [r for r in rs if r["variant"] == v]
                if not vs:
                    continue
                d = [r["psnr"] - ref[_label(r["case"])]["tv"] for r in vs]
                db = [r["psnr"] - max(ref[_label(r["case"])][m] for m in CLASSICAL) for r in vs]
                dr = [r["best_raw"] - ref[_label(r["case"])]["tv"] for r in vs]
                table.append(
                    [
                        v,
                        len(vs),
                        statistics.median(d),
                        min(d),
                        sum(x > 0 for x in d),
                        min(db),
                        statistics.median(dr),
                        statistics.median(r["seconds"] / r["ran"] * 1e3 for r in vs),
                    ]
                )
            parts.append(
                f"### {mod}, {split} ({len({_label(r['case']) for r in rs})} cases)\n\n"
                + md_table(
                    [
                        "variant",
                        "fits",
                        "median Δ TV (dB)",
                        "worst Δ TV",
                        "wins vs TV",
                        "worst Δ best classical",
                        "best raw iterate Δ TV, median",
                        "ms / iteration",
                    ],
                    table,
                )
            )
            labels = sorted({_label(r["case"]) for r in rs})
            per = [
                [lab, ref[lab]["tv"]]
                + [next((r["psnr"] for r in rs if _label(r["case"]) == lab and r["variant"] == v), None) for v in names]
                for lab in labels
            ]
            parts.append(md_table(["case", "TV-discrepancy", *names], per))
    return "\n\n".join(parts)


def dedupe(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[float]]:
    """The first fit of each (case, variant, settings) and the PSNR differences of the repeats dropped.

    A repeat is the same case, variant, budget, step, device and TF32 setting run again: on a GPU
    it differs only by the non-deterministic order of floating-point sums, so the differences
    measure that noise.
    """
    first: dict[tuple[Any, ...], dict[str, Any]] = {}
    diffs = []
    for r in rows:
        m = r.get("machine", {})
        key = (_label(r["case"]), r["variant"], r.get("iterations"), r.get("lr"), m.get("device"), m.get("tf32"))
        if key in first:
            diffs.append(r["psnr"] - first[key]["psnr"])
        else:
            first[key] = r
    return list(first.values()), diffs


def merge(folder: Path, ref: dict[str, dict[str, float]]) -> tuple[str, dict[str, Any]]:
    """The markdown summary and JSON payload of the parts' JSON lines in ``folder``."""
    rows = [json.loads(line) for f in sorted(folder.glob("*.jsonl")) for line in f.read_text().splitlines() if line]
    if not rows:
        raise ValueError(f"capacity --merge: no fits (*.jsonl lines) in {folder}")
    rows, diffs = dedupe(rows)
    missing = sorted({_label(r["case"]) for r in rows} - set(ref))
    if missing:
        raise ValueError(f"capacity --merge: no classical reference for {missing[0]}: run --classical again")
    where = rows[0]["machine"]  # stored once; facts() names every value the rows hold

    def facts(key: str) -> str:
        return ", ".join(sorted({str(r["machine"].get(key)) for r in rows}))

    gpus = sorted({str(r["machine"].get("gpu") or r["machine"].get("device")) for r in rows})
    repeats = (
        f" {len(diffs)} fits were run twice (same case, variant, seed and settings): the second differs by "
        f"{min(diffs):+.2f} … {max(diffs):+.2f} dB (non-deterministic sums on a GPU); the first is kept."
        if diffs
        else ""
    )
    md = (
        "# Capacity: larger networks and longer fits against TV-discrepancy (64²)\n\n"
        f"Fits on {', '.join(gpus)} ({len(rows)} fits; torch {facts('torch')}, TF32 {facts('tf32')}), "
        "several processes sharing the device, so ms / iteration is a contended figure, not a speed. "
        "Classical references computed once on the CPU (`--classical`). "
        f"Δ = prior − TV-discrepancy (dB); *best raw iterate* is picked with the truth.{repeats}\n\n"
        + summarise(rows, ref)
        + "\n"
    )
    small = [
        {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items() if k != "machine"} for r in rows
    ]  # the machine is stored once, above the rows
    return md, {"machine": where, "repeat_differences": [round(d, 3) for d in diffs], "rows": small}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.capacity", description=__doc__.split("\n\n")[0])
    p.add_argument("--classical", action="store_true", help="compute the classical references (CPU)")
    p.add_argument("--device", default="cpu", help="where the prior fits run (default cpu)")
    p.add_argument("--part", default="1/1", help="i/n: run every n-th job starting at the i-th")
    p.add_argument("--out", type=Path, default=Path("out/capacity_parts"), help="folder for the parts' JSON lines")
    p.add_argument("--merge", type=Path, help="merge the parts' JSON lines in this folder into results/capacity.md")
    p.add_argument("--splits", default="tune,check", help="comma-separated: tune, check, sl (default tune,check)")
    p.add_argument("--variants", default=None, help="comma-separated variant names (default: all)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 on the device (default: float32)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process (default: torch's)")
    p.add_argument("--limit", type=int, default=None, help="at most this many jobs (a smoke run)")
    p.add_argument("--iterations", type=int, default=None, help="override every variant's budget (a smoke run)")
    a = p.parse_args(argv)
    ref_path = RESULTS / "capacity_classical.json"
    if a.classical:
        ref = {}
        for c in cases("tune") + cases("check") + cases("sl"):
            ref[_label(c)] = classical(c)
            print(_label(c), {k: round(v, 2) for k, v in ref[_label(c)].items()}, flush=True)
        ref_path.write_text(json.dumps(ref, indent=1) + "\n")
        return 0
    if a.merge is not None:
        if not ref_path.exists():
            p.error(f"--merge needs the classical references {ref_path}: run --classical first")
        md, payload = merge(a.merge, json.loads(ref_path.read_text()))
        write_outputs("capacity", payload, md)
        print(md)
        return 0
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    try:
        i, n = (int(v) for v in a.part.split("/"))
    except ValueError:
        i = n = 0
    if not 1 <= i <= n:
        p.error(f"--part must be i/n with 1 <= i <= n, got {a.part!r}")
    names = None if a.variants is None else tuple(a.variants.split(","))
    known = {v for vs in VARIANTS.values() for v in vs}
    if names is not None and not set(names) <= known:
        p.error(f"--variants: unknown {sorted(set(names) - known)}; expected some of {sorted(known)}")
    splits = tuple(a.splits.split(","))
    for split in splits:
        if split not in ("tune", "check", "sl"):
            p.error(f"--splits: unknown split {split!r}; expected tune, check or sl")
    todo = jobs(splits, names)[i - 1 :: n][: a.limit]
    a.out.mkdir(parents=True, exist_ok=True)
    where = {
        **machine(),
        "device": a.device,
        "gpu": torch.cuda.get_device_name() if a.device.startswith("cuda") else None,
        "tf32": a.tf32,
    }
    with open(a.out / f"part{i}of{n}.jsonl", "a") as fh:
        for case, variant in todo:
            row = fit(case, variant, a.device, a.iterations)
            row["machine"] = where
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            print(
                f"{_label(case)} {variant}: {row['psnr']:.2f} dB (best raw {row['best_raw']:.2f}, "
                f"chosen {row['chosen']}/{row['ran']}, {row['seconds']:.1f} s)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
