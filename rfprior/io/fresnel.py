r"""Importer for the Institut Fresnel 2-D microwave scattering database (2001 ``.exp`` text files).

Reference: K. Belkebir and M. Saillard, "Special section: Testing inversion
algorithms against experimental data", *Inverse Problems* 17 (2001) 1565–1571.

**Input.** Header lines start with ``#``; the header states the frequencies
(``# Number of frequencies : 8 (1, 2, …, 8 GHz)``) and the number of views
(transmitters). Then one row per (transmitter, receiver, frequency)::

    tx_id  rx_id  f  Re(E_total)  Im(E_total)  Re(E_incident)  Im(E_incident)

``tx_id`` 1…N_views, ``rx_id`` 1…72; ``f`` is the frequency's index 1…N in the
header's order or the frequency in GHz (``rectTM_cent``/``dielTM_dec4f`` write
4, 8, 12, 16). Transmitter ``s`` sits at angle ``(s − 1)·360°/N_views`` on a circle
of radius 0.72 m, receiver ``r`` at ``(r − 1)·5°`` on a circle of radius 0.76 m
(counter-clockwise from +x). Only the receivers 60°…300° away from each transmitter
are measured: the others become missing entries (``valid = False``).

**What the importer does** (time dependence ``exp(+jωt)``, 2-D TM):

1. scattered field ``E_s = E_total − E_incident``;
2. source calibration per (frequency, transmitter): the complex factor ``A`` that
   best fits the measured incident field to the 2-D free-space Green's function
   ``G(d) = −(j/4) H0⁽²⁾(k d)`` in least squares on the measured receivers within
   ``calibration_window`` degrees of the forward direction (``A = Σ Ḡ E_inc / Σ |G|²``);
   the relative residual ``‖E_inc − A G‖/‖E_inc‖`` is recorded;
3. first Born approximation, ``E_s/A = k² ∫ G(|r − p|) χ(p) G(|p − t|) dp`` with the
   contrast ``χ = ε_r − 1``; on the image grid (pixel area ``ΔA``) this is
   ``c_f · (A_op χ)`` with ``A_op`` = :class:`operators.MIMORadar` with
   ``spreading="hankel"`` and ``c_f = −j k ΔA/(8π)``, so the stored measurements
   are ``E_s / (A c_f)`` and the operator's input is χ (dimensionless).

Coordinates: the database's ``(x, y)`` plane is rfprior's ``(x, z)``; the image grid
is ``size × size`` pixels of pitch ``2·extent/size`` with pixel ``size // 2`` at the
origin (centres ``−extent … extent − pitch`` for even ``size``).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..files.errors import FormatError

__all__ = ["FRESNEL_GEOMETRY", "read_fresnel"]

_C = 299_792_458.0
#: The 2001 set-up (Belkebir & Saillard 2001): radii in metres, receivers and their angular step.
FRESNEL_GEOMETRY: dict[str, float] = {
    "tx_radius": 0.72,
    "rx_radius": 0.76,
    "n_receivers": 72,
    "rx_step_deg": 5.0,
}
_FREQ_LINE = re.compile(r"number of frequencies\s*:\s*(\d+)\s*\(([^)]*)\)", re.IGNORECASE)
_VIEWS_LINE = re.compile(r"number of views\s*:\s*(\d+)", re.IGNORECASE)
_RECEIVERS_LINE = re.compile(r"number of receivers\s*:\s*(\d+)", re.IGNORECASE)
_MAX_BYTES = 64 * 2**20  # the database's files are < 1 MB


def _parse(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, int, int | None]:
    """Header lines, the header's frequencies (Hz), the data rows ``(n, 7)``, the number of views and
    the number of receivers per view (``None`` when the header does not say)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise FormatError(path, "<file>", "a directory", "an Institut Fresnel .exp text file")
    size = path.stat().st_size
    if size > _MAX_BYTES:
        raise FormatError(path, "<file>", f"{size} bytes", f"an .exp text file of at most {_MAX_BYTES} bytes")
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise FormatError(path, "<file>", f"an unreadable file ({exc})", "a readable text file") from None
    if "\x00" in text:
        raise FormatError(path, "<file>", "binary data (NUL bytes)", "an Institut Fresnel .exp text file")
    header, rows = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            if rows:
                raise FormatError(path, f"line {number}", "a header line after the data", "data rows only")
            header.append(s.lstrip("#").strip())
            continue
        parts = s.split()
        if len(parts) != 7:
            raise FormatError(
                path, f"line {number}", f"{len(parts)} columns ({s[:40]!r})",
                "7 columns: tx rx f Re(E_total) Im(E_total) Re(E_inc) Im(E_inc) (truncated file?)",
            )
        try:
            rows.append([float(v) for v in parts])
        except ValueError:
            raise FormatError(path, f"line {number}", f"non-numeric values ({s[:40]!r})", "7 numbers") from None
    text_header = "\n".join(header)
    m = _FREQ_LINE.search(text_header)
    if m is None:
        raise FormatError(
            path, "header", "no 'Number of frequencies : N (f1, f2, … GHz)' line", "the .exp header with frequencies"
        )
    try:
        ghz = np.array([float(v) for v in re.split(r"[,\s]+", m.group(2).replace("GHz", "").strip()) if v])
    except ValueError:
        raise FormatError(path, "header", f"frequencies {m.group(2)!r}", "numbers in GHz") from None
    if ghz.size != int(m.group(1)) or ghz.size == 0 or (ghz <= 0).any() or (np.diff(ghz) <= 0).any():
        raise FormatError(
            path, "header", f"{m.group(1)} frequencies listed as {m.group(2)!r}", "that many increasing values in GHz"
        )
    v = _VIEWS_LINE.search(text_header)
    if v is None or int(v.group(1)) < 1:
        raise FormatError(path, "header", "no 'Number of views : N' line", "the number of transmitters")
    if not rows:
        raise FormatError(path, "<data>", "no data rows", "one row per (transmitter, receiver, frequency)")
    n_r = _RECEIVERS_LINE.search(text_header)
    return header, ghz * 1e9, np.asarray(rows, dtype=np.float64), int(v.group(1)), int(n_r.group(1)) if n_r else None


def _frequency_columns(path: Path, col: np.ndarray, f_hz: np.ndarray) -> np.ndarray:
    """Index 0…N−1 of each row's frequency (the column holds 1…N or the value in GHz)."""
    values = np.unique(col)
    ghz = f_hz / 1e9
    if np.isin(values, np.arange(1, f_hz.size + 1)).all():
        return col.astype(np.int64) - 1
    if np.isclose(values[:, None], ghz[None], rtol=1e-6).any(axis=1).all():
        return np.abs(col[:, None] - ghz[None]).argmin(axis=1)
    raise FormatError(
        path, "column 3", f"frequency values {values[:6].tolist()}",
        f"indices 1…{f_hz.size} or the header's frequencies in GHz {ghz.tolist()}",
    )


def _select(path: Path, f_hz: np.ndarray, frequencies: Any) -> np.ndarray:
    if frequencies is None:
        return np.arange(f_hz.size)
    want = np.atleast_1d(np.asarray(frequencies, dtype=np.float64))
    if want.ndim != 1 or want.size == 0 or not np.isfinite(want).all():
        raise ValueError(f"frequencies must be a non-empty list of frequencies in Hz, got {frequencies!r}")
    idx = []
    for f in want:
        hit = np.flatnonzero(np.isclose(f_hz, f, rtol=1e-6))
        if hit.size == 0:
            raise ValueError(
                f"frequencies: {f:g} Hz is not in {path.name} (it has {', '.join(f'{x:g}' for x in f_hz)} Hz)"
            )
        idx.append(int(hit[0]))
    if len(set(idx)) != len(idx):
        raise ValueError(f"frequencies: repeated values in {frequencies!r}")
    return np.array(sorted(idx))


def read_fresnel(
    path: str | os.PathLike[str],
    frequencies: Any = None,
    *,
    extent: float = 0.1,
    size: int = 32,
    calibration_window: float = 20.0,
    physics: str = "born",
) -> xr.Dataset:
    """Read an Institut Fresnel 2001 ``.exp`` file into the layout :func:`rfprior.io.load` returns.

    Parameters
    ----------
    path : the ``.exp`` (text) file
    frequencies : frequencies in Hz to keep (each must be in the file), default all
    extent : half-width of the square image grid in metres (pitch ``2·extent/size``, a pixel at the origin)
    size : pixels per side of the image grid
    calibration_window : half-width in degrees, around the forward direction, of the
        receivers used to calibrate the source against the 2-D Green's function
    physics : ``"born"`` (modality ``mimo``, the default) or ``"full-wave"`` (modality ``fullwave``,
        :class:`operators.LippmannSchwinger`); the measurements are the same (that operator's
        Born limit is the ``mimo`` one), so either file reads with the other physics too

    Returns
    -------
    xarray.Dataset
        modality ``"mimo"`` (or ``"fullwave"``): ``measurements (tx, rx, freq)`` complex128, calibrated and
        scaled so that the operator (``spreading = "hankel"``) maps the contrast
        ``χ = ε_r − 1`` on the ``(z, x)`` grid to them; NaN where not measured and a
        boolean ``valid`` variable; geometry coordinates as :func:`rfprior.io.load`.
        Attributes record the source file, the frequencies, the calibration (window,
        factors, relative residual per frequency) and the number of missing entries.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    FormatError
        A malformed or truncated file (missing header, wrong column count, ids out of
        range, duplicate or missing rows, non-finite values).
    ValueError
        A requested frequency is not in the file, or bad ``extent``/``size``/window.
    """
    from scipy.special import hankel2

    from .layout import to_dataset
    from .schema import validate

    p = Path(path)
    if not (isinstance(extent, (int, float)) and math.isfinite(extent) and extent > 0):
        raise ValueError(f"extent must be a positive number of metres, got {extent!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 4:
        raise ValueError(f"size must be an integer ≥ 4 (pixels per side), got {size!r}")
    if not (isinstance(calibration_window, (int, float)) and 0 <= calibration_window <= 180):
        raise ValueError(f"calibration_window must be in [0, 180] degrees, got {calibration_window!r}")
    header, f_all, rows, n_views, per_view = _parse(p)
    n_rx = int(FRESNEL_GEOMETRY["n_receivers"])
    tx_id, rx_id = rows[:, 0], rows[:, 1]
    for name, ids, hi in (("column 1 (transmitter)", tx_id, n_views), ("column 2 (receiver)", rx_id, n_rx)):
        bad = (ids != np.round(ids)) | (ids < 1) | (ids > hi)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FormatError(p, name, f"id {ids[i]:g} in data row {i + 1}", f"integers 1…{hi}")
    if not np.isfinite(rows[:, 3:]).all():
        i = int(np.flatnonzero(~np.isfinite(rows[:, 3:]).all(axis=1))[0])
        raise FormatError(p, f"data row {i + 1}", "a non-finite field value", "finite numbers")
    fi = _frequency_columns(p, rows[:, 2], f_all)
    t, r = tx_id.astype(np.int64) - 1, rx_id.astype(np.int64) - 1
    flat = (t * n_rx + r) * f_all.size + fi
    if np.unique(flat).size != flat.size:
        raise FormatError(p, "<data>", "repeated (transmitter, receiver, frequency) rows", "each row once")
    measured = np.zeros((n_views, n_rx, f_all.size), dtype=bool)
    measured.reshape(-1)[flat] = True
    per_pair = measured.sum(axis=2)
    if ((per_pair != 0) & (per_pair != f_all.size)).any():
        raise FormatError(
            p, "<data>", f"{int(measured.sum())} rows with some (transmitter, receiver) pairs lacking frequencies",
            f"every measured pair at all {f_all.size} frequencies (truncated file?)",
        )
    per_tx = measured[..., 0].sum(axis=1)
    if (per_tx == 0).any():
        raise FormatError(
            p, "<data>", f"no rows for transmitter {int(np.flatnonzero(per_tx == 0)[0]) + 1}",
            f"rows for all {n_views} views (truncated file?)",
        )
    if per_view is not None and (per_tx != per_view).any():
        s = int(np.flatnonzero(per_tx != per_view)[0])
        raise FormatError(
            p, "<data>", f"{int(per_tx[s])} receivers for transmitter {s + 1}",
            f"{per_view} receivers per view as the header states (truncated file?)",
        )
    total = np.full(measured.shape, np.nan + 0j)
    inc = np.full(measured.shape, np.nan + 0j)
    total.reshape(-1)[flat] = rows[:, 3] + 1j * rows[:, 4]
    inc.reshape(-1)[flat] = rows[:, 5] + 1j * rows[:, 6]

    keep = _select(p, f_all, frequencies)
    f_hz, total, inc, measured = f_all[keep], total[..., keep], inc[..., keep], measured[..., keep]
    g = FRESNEL_GEOMETRY
    th_t = np.deg2rad(np.arange(n_views) * 360.0 / n_views)
    th_r = np.deg2rad(np.arange(n_rx) * g["rx_step_deg"])
    tx = g["tx_radius"] * np.stack((np.cos(th_t), np.sin(th_t)), axis=1)
    rx = g["rx_radius"] * np.stack((np.cos(th_r), np.sin(th_r)), axis=1)
    step = 2 * extent / int(size)
    grid = (np.arange(int(size)) - int(size) // 2) * step  # pixel size//2 at the origin (rfprior's convention)
    area = step**2

    offset = np.rad2deg(th_r[None, :] - th_t[:, None]) % 360.0  # receiver angle seen from the transmitter's
    window = (np.abs(offset - 180.0) <= calibration_window + 1e-9) & measured[..., 0]
    if (window.sum(axis=1) == 0).any():
        raise ValueError(
            f"calibration_window={calibration_window}°: some transmitter has no measured receiver that close to the "
            "forward direction; widen it"
        )
    d_tr = np.linalg.norm(tx[:, None, :] - rx[None, :, :], axis=-1)
    y = np.full(total.shape, np.nan + 0j)
    factors = np.empty((n_views, f_hz.size), dtype=np.complex128)
    residual = np.empty((n_views, f_hz.size))
    for j, f in enumerate(f_hz):
        k = 2 * np.pi * f / _C
        green = -0.25j * hankel2(0, k * d_tr)
        for s in range(n_views):
            w = window[s]
            gs, es = green[s, w], inc[s, w, j]
            a = np.vdot(gs, es) / np.vdot(gs, gs)
            factors[s, j] = a
            residual[s, j] = np.linalg.norm(es - a * gs) / max(np.linalg.norm(es), 1e-300)
        c_f = -1j * k * area / (8 * np.pi)  # k² G G = c_f/ΔA · h h (operators.mimo) times the pixel area
        y[..., j] = (total[..., j] - inc[..., j]) / (factors[:, j, None] * c_f)
    y[~measured] = np.nan
    if not np.isfinite(y[measured]).all():
        raise FormatError(p, "<data>", "a zero calibration factor (incident field of zero)", "a measured incident")

    description = next((h.split(":", 1)[1].strip() for h in header if h.lower().startswith("object")), "")
    if physics not in ("born", "full-wave"):
        raise ValueError(f"physics must be 'born' or 'full-wave', got {physics!r}")
    rec = validate(
        f"{p} (converted)",
        "mimo" if physics == "born" else "fullwave",
        y,
        {"tx": tx, "rx": rx, "frequencies": f_hz, "x": grid, "z": grid, "spreading": "hankel"},
        valid=measured,
        description=f"Institut Fresnel 2001, {p.name}: {description} (calibrated scattered field; "
        "operator input = contrast χ = ε_r − 1)",
    )
    ds = to_dataset(rec)
    ds.attrs.update(
        {
            "source_file": p.name,
            "source_citation": "K. Belkebir and M. Saillard, Inverse Problems 17 (2001) 1565-1571 (Institut Fresnel)",
            "converted_frequencies_hz": f_hz,
            "image_quantity": "contrast chi = eps_r - 1 (2-D TM; "
            + ("first Born approximation)" if physics == "born" else "full-wave Lippmann-Schwinger)"),
            "calibration": "per (frequency, transmitter) least-squares fit of the measured incident field to "
            "G = -(j/4) H0(2)(k d); measurements = (E_total - E_incident) / (A * c_f), c_f = -j k dA / (8 pi)",
            "calibration_window_deg": float(calibration_window),
            "calibration_residual_mean": residual.mean(axis=0),
            "calibration_residual_max": residual.max(axis=0),
            "calibration_factor_abs_mean": np.abs(factors).mean(axis=0),
            "missing_entries": int((~measured).sum()),
            "measured_entries": int(measured.sum()),
        }
    )
    ds.encoding["source"] = str(p)
    return ds
