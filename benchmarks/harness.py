"""The one experiment harness of the studies in ``benchmarks/``: cases → resumable runs → summary.

A study declares its cases (:func:`grid`: the product of a few axes, as a list of dicts) and
a function computing one case; :func:`run` computes them in order, writing every finished row
to a part file (``results/<stem>_part<i>of<n>.json``, rewritten atomically) so that an
interrupted run — or one split over processes with ``--part i/n`` — resumes where it stopped.
The study's own summary turns the rows into markdown; :func:`write_outputs` stores it with a
small JSON in ``results/`` and :func:`finish` removes the parts it merged. Shared pieces live
here only: machine facts, timing, quantiles, markdown tables, the simulated case.

    rows = run(grid(modality=["mimo"], snr=[10, 20], seed=range(3)), one_case, part_path(RESULTS, "x"))
    write_outputs("x", {"machine": machine(), "rows": rows}, md_table(head, table)); finish(...)
"""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"
Row = dict[str, Any]


# ----------------------------------------------------------------------------- cases and runs
def grid(**axes: Any) -> list[dict[str, Any]]:
    """The cases of a study: the product of ``axes`` (first axis outermost) as dicts.

    An axis given a scalar (or a string) is fixed; ``None`` values are left out of the case.
    """
    names = list(axes)
    values = [list(v) if isinstance(v, Iterable) and not isinstance(v, str) else [v] for v in axes.values()]
    return [{k: v for k, v in zip(names, combo, strict=True) if v is not None} for combo in itertools.product(*values)]


def case_key(case: dict[str, Any]) -> str:
    """The identity of a case in a part file (its canonical JSON)."""
    return json.dumps(case, sort_keys=True, default=str)


def part_path(outdir: str | Path | None, stem: str, part: str = "1/1") -> Path:
    """``<outdir>/<stem>_part<i>of<n>.json`` for ``part = "i/n"`` (default outdir: ``results/``)."""
    i, n = parse_part(part)
    return (RESULTS if outdir is None else Path(outdir)) / f"{stem}_part{i}of{n}.json"


def parse_part(part: str) -> tuple[int, int]:
    """``"i/n"`` → ``(i, n)`` with ``1 ≤ i ≤ n``."""
    try:
        i, n = (int(v) for v in part.split("/"))
    except ValueError:
        raise SystemExit(f"--part: expected i/n, got {part!r}") from None
    if not 1 <= i <= n:
        raise SystemExit(f"--part: need 1 ≤ i ≤ n, got {part!r}")
    return i, n


def read_part(path: Path) -> dict[str, Any]:
    """A part file's ``{"settings": …, "rows": […]}`` (empty when there is none)."""
    return json.loads(path.read_text()) if path.is_file() else {"settings": None, "rows": []}


def run(
    cases: Sequence[dict[str, Any]],
    compute: Callable[[dict[str, Any]], Row],
    part: Path | None = None,
    *,
    key: Callable[[dict[str, Any]], str] = case_key,
    done: Iterable[Row] = (),
    settings: dict[str, Any] | None = None,
    log: Callable[[str], Any] | None = print,
) -> list[Row]:
    """The rows of ``cases`` in order, computing only those that neither ``part`` nor ``done`` holds.

    ``compute(case)`` returns a row (a JSON-serialisable dict; ``"case"`` is added if absent).
    Every row is written to ``part`` (``None``: nothing is written) as soon as it exists, rows
    taken from ``done`` included, so the part is complete for a later merge. ``settings``
    (what the rows depend on besides the case) are stored in the part: resuming a part made
    with other settings is refused.
    """
    saved = read_part(part) if part is not None else {"settings": None, "rows": []}
    if saved["rows"] and settings is not None and saved.get("settings") not in (None, _jsonable(settings)):
        raise SystemExit(f"{part}: made with other settings {saved['settings']}, not {settings}: delete it")
    have = {key(r["case"]): r for r in [*done, *saved["rows"]]}
    kept = {key(r["case"]) for r in saved["rows"]}
    rows: list[Row] = []
    for case in cases:
        k = key(case)
        row = have.get(k)
        if row is None:
            t = time.perf_counter()
            row = {"case": case, **compute(case)}
            if key(row["case"]) != k:
                raise ValueError(f"compute({k}) returned the row of another case, {key(row['case'])}")
            if log is not None:
                log(f"[{time.perf_counter() - t:6.1f} s] {k}")
        rows.append(row)
        if part is not None and k not in kept:
            kept.add(k)
            saved["rows"].append(row)
            _write(part, {"settings": _jsonable(settings), "machine": machine(), "rows": saved["rows"]})
    return rows


def merge_parts(outdir: str | Path | None, stem: str, n: int) -> list[Row]:
    """The rows of the parts ``1/n … n/n`` of ``stem``, in part order (a missing part is an error)."""
    paths = [part_path(outdir, stem, f"{i}/{n}") for i in range(1, n + 1)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"--merge: missing part(s) {', '.join(missing)}")
    return [r for p in paths for r in read_part(p)["rows"]]


def finish(outdir: str | Path | None, stem: str, n: int = 1) -> None:
    """Remove the parts of ``stem`` once their rows are in the study's results (a rerun starts afresh)."""
    for i in range(1, n + 1):
        part_path(outdir, stem, f"{i}/{n}").unlink(missing_ok=True)


# ----------------------------------------------------------------------------- outputs
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


def write_outputs(name: str, payload: dict[str, Any], markdown: str | None, outdir: str | Path | None = None) -> None:
    """Write ``<outdir>/<name>.json`` and (unless ``markdown`` is None) ``<name>.md`` atomically."""
    outdir = RESULTS if outdir is None else Path(outdir)
    _write(outdir / f"{name}.json", payload)
    if markdown is not None:
        _write_text(outdir / f"{name}.md", markdown)


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


def _jsonable(o: Any) -> Any:
    return json.loads(json.dumps(o, default=_default))


def _write(path: Path, payload: Any) -> None:
    _write_text(path, json.dumps(payload, indent=1, default=_default))


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def _default(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    return repr(o)


# ----------------------------------------------------------------------------- timing and statistics
def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(fn(), wall seconds)``."""
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def median_time(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time (s) of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    return statistics.median(timed(fn)[1] for _ in range(repeats))


def quantile(v: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of a non-empty sequence (NaN for empty)."""
    s = sorted(x for x in v if x is not None and not math.isnan(x))
    if not s:
        return math.nan
    pos = q * (len(s) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


# ----------------------------------------------------------------------------- the simulated case
NATURAL = ("camera", "moon", "coins", "astronaut", "brick")  # by seed % 5: seeds 0-1 (camera, moon) tune


def simulate(case: dict[str, Any]) -> tuple[Any, torch.Tensor, torch.Tensor, float]:
    """``(op, y, truth, σ)`` of a case: ``modality``, ``size``, ``snr``, ``seed`` and optionally a scene ``family``.

    Without ``family`` the simulator's default scene. Families: partial Fourier ``shepp_logan``,
    ``ellipses`` or ``natural`` (an ``skimage.data`` image by seed, smooth phase; ``mask``
    ``vd4``/``cart8``: variable-density / Cartesian at 4× / 8×); MIMO ``mixed``, ``silhouette``
    (randomly phased points), ``points``; tomography ``cell`` (the default) or ``blobs``.
    """
    from rfprior.io import operator_from
    from rfprior.scenes import complex_phantom, default_geometry, mimo_scene
    from rfprior.scenes import simulate as sim

    mod, fam, size, seed = case["modality"], case.get("family"), case["size"], case["seed"]
    geo: dict[str, Any] = {}
    if "mask" in case:
        kind, acc = case["mask"][:-1], float(case["mask"][-1])
        geo = {"mask_kind": {"vd": "variable_density", "cart": "cartesian"}[kind], "acceleration": acc}
    scene = None
    if fam is not None:
        g = default_geometry(mod, size, seed=seed, **geo)
        if mod == "partial_fourier":
            scene = (
                complex_phantom((size, size), seed, kind=fam, dtype=torch.complex128)
                if fam in ("shepp_logan", "ellipses")
                else _natural(NATURAL[seed % len(NATURAL)], size, seed)
            )
        elif mod == "mimo":
            kind, n_points = {"mixed": ("mixed", 4), "silhouette": ("mixed", 5), "points": ("points", 6)}[fam]
            offset = 1000 if fam == "silhouette" else 0
            scene = mimo_scene(g["x"], g["z"], kind, seed + offset, n_points=n_points, dtype=torch.complex128)
        elif fam == "blobs":
            scene = _blobs(g, seed)
    ds = sim(mod, size=size, snr_db=case["snr"], seed=seed, scene=scene, **geo)
    op, y = operator_from(ds)
    return op, y, torch.as_tensor(ds["truth"].values), float(ds.attrs["noise_sigma"])


def _natural(name: str, size: int, seed: int) -> torch.Tensor:
    from skimage import data as skdata
    from skimage.color import rgb2gray
    from skimage.transform import resize

    from rfprior.scenes import smooth_phase

    img = getattr(skdata, name)()
    if img.ndim == 3:
        img = rgb2gray(img)
    img = resize(img.astype(np.float64), (size, size), anti_aliasing=True)
    img = (img - img.min()) / max(img.max() - img.min(), 1e-12)
    return torch.polar(torch.as_tensor(img), smooth_phase((size, size), seed))


def _blobs(geometry: dict[str, Any], seed: int) -> torch.Tensor:
    """Smoothed random blobs inside a disc (tomography object function, m⁻²)."""
    from operators import index_to_object

    h, w = geometry["shape"]
    g = torch.Generator().manual_seed(16 * seed + 21)  # rfprior's scene generator, stream 21
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
