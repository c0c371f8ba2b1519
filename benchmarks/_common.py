"""Shared helpers for the engine and stopping benchmarks (simulation, timing, tables, JSON)."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """Facts about where the benchmark ran (stored with every JSON)."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "note": "2-core CPU shared with other engineers: timings are noisy (medians of repeats)",
    }


def simulate_case(modality: str, size: int, snr_db: float, seed: int, scene: str | None = None):
    """Simulated measurement → ``(op, y, truth, sigma_true)`` (complex64 operator and data)."""
    from rfprior.io import operator_from
    from rfprior.scenes import simulate

    ds = simulate(modality, size=size, snr_db=snr_db, seed=seed, scene=scene)
    op, y = operator_from(ds)
    truth = torch.as_tensor(ds["truth"].values)
    return op, y, truth, float(ds.attrs["noise_sigma"])


def median_time(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time (s) of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def quantile(v: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of a non-empty sequence (NaN for empty)."""
    s = sorted(x for x in v if x is not None and not math.isnan(x))
    if not s:
        return math.nan
    pos = q * (len(s) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]], floatfmt: str = "{:.2f}") -> str:
    """A GitHub-markdown table; floats formatted with ``floatfmt``, None as ``–``."""

    def cell(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else floatfmt.format(v)
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_outputs(name: str, payload: dict[str, Any], markdown: str, outdir: str | Path | None = None) -> None:
    """Write ``<outdir>/<name>.json`` and ``<outdir>/<name>.md`` atomically (default ``outdir``: ``results/``)."""
    outdir = RESULTS if outdir is None else Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for ext, text in (("json", json.dumps(payload, indent=1, default=_default)), ("md", markdown)):
        path = outdir / f"{name}.{ext}"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, path)


def read_parts(stems: Sequence[str]) -> list[dict[str, Any]]:
    """The result JSONs ``results/<stem>.json`` of benchmark parts, to merge (their ``machine`` is where they ran)."""
    return [json.loads((RESULTS / f"{stem}.json").read_text()) for stem in stems]


def _default(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    return repr(o)
