"""Build ``docs/validation.md`` from the benchmarks' own summaries in ``benchmarks/results/``.

    python -m benchmarks.make_validation           # rewrite docs/validation.md
    python -m benchmarks.make_validation --check   # exit 1 if docs/validation.md is out of date

Every ``results/*.md`` a benchmark wrote becomes one section (its headings demoted under a
header naming the benchmark, the command that regenerates it and its figures); the operator
benchmarks, which write JSON only, get a short table. A summary of a retired study (its
question answered, its script removed: :data:`RETIRED`) names the commit that still holds
the script. Nothing is copied by hand, so the
page cannot drift from the results: the test suite regenerates it and compares. Commentary
on what the numbers mean lives in ``docs/notes.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGET = ROOT / "docs" / "validation.md"

#: Known summaries, in reading order: stem → (section title, command that regenerates it).
#: A summary not listed here still appears, after these, under its own first heading.
SECTIONS: dict[str, tuple[str, str]] = {
    "quality_check": (
        "Quality against fair baselines: held-out scenes (64²)",
        "python -m benchmarks.quality --tier check",
    ),
    "quality_tune": (
        "Quality against fair baselines: tuning scenes (the defaults were chosen here)",
        "python -m benchmarks.quality --tier tune --variants tv0.25,tv0.5",
    ),
    "quality_tune_radar_variants": (
        "Quality: radar variants on one tuning scene (two fits, a larger λ)",
        "python -m benchmarks.quality --tier tune --modalities mimo --variants tv0.5,tv0.5x2,tv1 --part 4/4",
    ),
    "quality_size128": ("Quality and time to result at 128²", "python -m benchmarks.quality --tier size128"),
    "time_to_result": (
        "Time to result of the default against the previous default and TV, 64² and 128² (2 threads)",
        "python -m benchmarks.time_to_result --sizes 64,128 --seeds 2,3,4 --threads 2",
    ),
    "penalty_weight": (
        "The automatic penalty weight's TV search: PDHG steps per λ",
        "python -m benchmarks.penalty_weight --sizes 64,128 --iters 100,30",
    ),
    "sequences_check": (
        "Sequences: one network for a whole sequence, held-out k-space sequences (64², 16 frames)",
        "python -m benchmarks.sequences --tier check --prior-every 8 --part i/2 (each i), then --merge 2",
    ),
    "sequences_check_radar": (
        "Sequences: held-out radar sequences (32², 16 frames)",
        "python -m benchmarks.sequences --tier check_radar --prior-every 8 --part i/2 (each i), then --merge 2",
    ),
    "sequences_tune": (
        "Sequences: tuning tier (32², 8 frames; the first default, per-frame penalty)",
        "python -m benchmarks.sequences --tier tune --temporal-weight 0 --part i/2 (each i), then --merge 2",
    ),
    "sequences_memory": (
        "Sequences: peak memory of the joint fit (4 and 32 frames)",
        "python -m benchmarks.sequences --memory",
    ),
    "fullwave": (
        "Full-wave inverse scattering: the prior against Born-TV, CSI-MR and its own objective on the pixels "
        "(full-wave TV), held-out simulated scenes (32²)",
        "python -m benchmarks.fullwave --methods born_tv,csi_mr,fullwave_tv,prior_born,prior_fullwave --part i/2 "
        "(each i), then --merge 2",
    ),
    "fullwave_accuracy": (
        "Full-wave operator: discretisation convergence against the Mie series",
        "python -m benchmarks.fullwave_accuracy",
    ),
    "engine": ("Engine: per-iteration cost and time to result", "python -m benchmarks.engine"),
    "batch": ("Batch throughput: files per minute on 1, 2 and 4 Dask workers", "python -m benchmarks.batch"),
    "warm_start": (
        "Warm start vs cold start on frame sequences",
        "python -m benchmarks.warm_start --merge warm_start_mimo warm_start_partial_fourier",
    ),
    "warm_start_mimo": (
        "Warm start vs cold start: MIMO radar",
        "python -m benchmarks.warm_start --modality mimo --name warm_start_mimo",
    ),
    "warm_start_partial_fourier": (
        "Warm start vs cold start: partial Fourier",
        "python -m benchmarks.warm_start --modality partial_fourier --frames 4 --name warm_start_partial_fourier",
    ),
    "gpu": (
        "On a GPU (NVIDIA H200): CUDA tests, cost per step, time to result, the published-size DIP row",
        "python -m benchmarks.gpu --device cuda --budget 420 --threads 16 --faithful",
    ),
    "gpu_dt": (
        "On a GPU (NVIDIA H200): the tomography NUDFT paths",
        "python -m benchmarks.gpu --device cuda --budget 195 --threads 16 --modalities diffraction_tomography "
        "--sizes 256,512 --cpu-sizes '' --ttr-sizes 256,512 --faithful --faithful-images camera "
        "--sigmoid-images astronaut --tag dt",
    ),
    "gpu_h100": (
        "On a GPU (NVIDIA H100): CUDA tests, cost per step, time to result at 256² and 512², the camera DIP row",
        "python -m benchmarks.gpu --device cuda --threads 16 --budget 520 --sizes 256,512 --cpu-sizes 256,512 "
        "--ttr-sizes 512,256 --skip nudft --faithful --faithful-images camera --tag h100",
    ),
    "gpu_h100_dip": (
        "On a GPU (NVIDIA H100): DIP at twice the published iterations, the sigmoid head, a measured CPU time",
        "python -m benchmarks.gpu --device cuda --threads 16 --budget 300 --modalities diffraction_tomography "
        "--skip tests,split,nudft,cpu,ttr --faithful --faithful-images astronaut:3600 --sigmoid-images astronaut "
        "--no-bm3d --cpu-ttr-sizes 256 --tag h100_dip",
    ),
    "capacity": (
        "On a GPU (NVIDIA H200): larger networks and longer fits against TV-discrepancy",
        "python -m benchmarks.capacity --classical; python -m benchmarks.capacity --device cuda --part i/12 "
        "--out DIR (12 processes); python -m benchmarks.capacity --merge DIR",
    ),
    "deepinv_peer": ("deepinv as a peer", "python -m benchmarks.deepinv_peer (separate venv with deepinv)"),
    "stopping": ("Stopping rules (48², 1500 iterations)", "python -m benchmarks.stopping"),
    "stopping_400": (
        "Stopping rules at a 400-iteration budget",
        "python -m benchmarks.stopping --budget 400 --name stopping_400",
    ),
    "stopping_dt1000": (
        "Stopping rules, tomography at 1000 iterations",
        "python -m benchmarks.stopping --modalities diffraction_tomography --budget 1000 --name stopping_dt1000",
    ),
    "stopping_mimo_dsp": (
        "Stopping rules, MIMO with the DSP loss",
        "python -m benchmarks.stopping --modalities mimo --priors dip_small --loss dsp --no-holdout "
        "--name stopping_mimo_dsp",
    ),
    "ensemble": ("Several fits (`fits=K`)", "python -m benchmarks.ensemble"),
    "ensemble_bundled": ("Several fits on the bundled files", "rfprior compare … --fits 2 (recorded by hand)"),
    "two_fits": ("Two seeded fits as a stopping signal (probe)", "python -m benchmarks.two_fits"),
    "faithful_reduced": ("Faithful to the papers (reduced setting)", "python -m benchmarks.faithful --reduced"),
    "faithful_size": ("Faithful to the papers: crop size", "python -m benchmarks.faithful_size"),
    "faithful_size_1800_astronaut": (
        "Crop size at 1800 iterations: astronaut",
        "python -m benchmarks.faithful_size --sizes 128 --images astronaut --iterations 1800 "
        "--name faithful_size_1800_astronaut",
    ),
    "faithful_size_1800_camera": (
        "Crop size at 1800 iterations: camera",
        "python -m benchmarks.faithful_size --sizes 128 --images camera --iterations 1800 "
        "--name faithful_size_1800_camera",
    ),
}

#: Studies whose question is answered: their scripts were removed after this commit, which still holds them.
RETIRED_AT = "ec7b672"
RETIRED = frozenset(
    {
        "batch",
        "capacity",
        "deepinv_peer",
        "engine",
        "ensemble",
        "faithful_size",
        "faithful_size_1800_astronaut",
        "faithful_size_1800_camera",
        "gpu",
        "gpu_dt",
        "gpu_h100",
        "gpu_h100_dip",
        "two_fits",
        "warm_start",
        "warm_start_mimo",
        "warm_start_partial_fourier",
    }
)

HEADER = f"""# Validation

Generated by `python -m benchmarks.make_validation` from the summaries the benchmarks write to
`benchmarks/results/` — do not edit by hand (a test regenerates this page and compares).
What the numbers mean, and which ones the README quotes: [notes.md](notes.md). The raw
per-iteration curves behind these tables are not kept in git; re-running a benchmark writes
them again (`benchmarks/results/<name>.json`). Timings are from a shared 2-core CPU without a
GPU unless a section says otherwise. A section whose study is retired (its question answered)
keeps its summary; its script is in commit `{RETIRED_AT}`, whose `benchmarks/` it needs: regenerate
it in a worktree of that commit (`git worktree add ../rfprior-{RETIRED_AT} {RETIRED_AT}`, then run the
command given there).
"""


def _demote(markdown: str, levels: int = 2) -> str:
    """Headings one section deeper (``#`` → ``###``), leaving code blocks alone."""
    out, fenced = [], False
    for line in markdown.strip().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"#{1,6} ", line):
            line = "#" * levels + line
        out.append(line.rstrip())
    return "\n".join(out)


def _figures(stems: list[str]) -> dict[str, list[str]]:
    """Each figure ``<stem>_<what>.pdf`` under the longest summary stem it starts with (PNGs are not kept in git)."""
    figs: dict[str, list[str]] = {s: [] for s in stems}
    for path in sorted(RESULTS.glob("*.pdf")):
        owners = [s for s in stems if path.stem.startswith(s + "_")]
        if owners:
            figs[max(owners, key=len)].append(path.name)
    return figs


def _operators() -> str:
    lines = [
        "## Operators (`make bench`: `python -m benchmarks.operators`)",
        "",
        "JSON only: `operators_mimo.json`, `operators_dt.json`.",
    ]
    mimo = RESULTS / "operators_mimo.json"
    if mimo.is_file():
        lines += ["", "MIMO radar (size = TX, RX, frequencies, image side), matrix-free vs a dense matrix:", ""]
        lines += [f"* {s}" for s in json.loads(mimo.read_text()).get("summary", [])]
    dt = RESULTS / "operators_dt.json"
    if dt.is_file():
        rows = json.loads(dt.read_text()).get("rows", [])
        lines += [
            "",
            "Diffraction tomography (Born), forward/adjoint per call:",
            "",
            "| size | angles | method | forward [ms] | adjoint [ms] | peak [MB] | × vs dense |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            if r.get("forward_ms") is None:
                continue
            speed = r.get("speedup_vs_dense")
            lines.append(
                f"| {r['size']} | {r['angles']} | {r['method']} | {r['forward_ms']:.2f} | {r['adjoint_ms']:.2f} | "
                f"{r.get('peak_mb', float('nan')):.1f} | {'' if speed is None else f'{speed:.1f}'} |"
            )
    return "\n".join(lines)


def is_part(stem: str) -> bool:
    """A piece of a run split over processes (``--part i/n``): not kept in git, only their merge is."""
    return re.search(r"_part\d+of\d+$", stem) is not None


def render() -> str:
    """The text of ``docs/validation.md`` for the current ``benchmarks/results/``."""
    present = sorted(p.stem for p in RESULTS.glob("*.md") if not is_part(p.stem))
    order = [s for s in SECTIONS if s in present] + [s for s in present if s not in SECTIONS]
    figures = _figures(present)
    parts = [HEADER.strip(), "## Contents", "\n".join(f"* [{_title(s)}](#{_anchor(s)})" for s in order), _operators()]
    for stem in order:
        title = _title(stem)
        head = [f'<a id="{_anchor(stem)}"></a>', f"## {title}", ""]
        source = f"Source: `benchmarks/results/{stem}.md`"
        if stem in RETIRED:
            source += f"; retired study, its script is at commit `{RETIRED_AT}`: regenerate with `{SECTIONS[stem][1]}`"
            source += f" in a worktree of `{RETIRED_AT}` (top of this page)"
        elif stem in SECTIONS:
            source += f"; regenerate with `{SECTIONS[stem][1]}`"
        head.append(source + ".")
        if figures[stem]:
            head.append("Figures: " + ", ".join(f"`{f}`" for f in figures[stem]) + ".")
        parts.append("\n".join(head) + "\n\n" + _demote((RESULTS / f"{stem}.md").read_text()))
    return "\n\n".join(parts) + "\n"


def _title(stem: str) -> str:
    if stem in SECTIONS:
        return SECTIONS[stem][0]
    first = next((ln for ln in (RESULTS / f"{stem}.md").read_text().splitlines() if ln.startswith("#")), stem)
    return f"{first.lstrip('#').strip()} (`{stem}`)"


def _anchor(stem: str) -> str:
    return stem.replace("_", "-")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check that docs/validation.md is up to date")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        if not TARGET.is_file() or TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: python -m benchmarks.make_validation", file=sys.stderr)
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
