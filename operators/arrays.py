r"""Array geometries, frequency sets and image grids for :class:`operators.mimo.MIMORadar`.

Everything here is plain **float64 numpy**, in SI units (metres, hertz). Positions
are ``(N, 2)`` arrays whose columns are ``(x, z)``: ``x`` cross-range (along the
array), ``z`` range (away from the array).

Uniform linear MIMO array (:func:`uniform_mimo_array`)
------------------------------------------------------
``N_R`` receivers with spacing ``d`` and ``N_T`` transmitters with spacing
``N_R·d``, both centred on ``center`` along ``x``. The bistatic pair ``(t_i, r_j)``
behaves like a monostatic element at its phase centre ``(t_i + r_j)/2``
(:func:`virtual_positions`); the ``N_v = N_T·N_R`` phase centres fill a uniform
line with pitch ``d/2`` without gaps or duplicates.

Equivalently, the *one-way* virtual array ``t_i + r_j`` has pitch ``d_v = d`` and
length ``L_v = N_v·d_v``. The two-way phase of the phase-centre array over its
length ``N_v·d/2`` equals the one-way phase over ``L_v``, so the paraxial
cross-range −3 dB width at range ``R`` is

.. math::  \delta_x = 0.886\,\lambda_c R / (N_v d_v) = 0.886\,\lambda_c R / (N_T N_R d).

Keep the phase-centre pitch ``d/2 ≤ λ/4`` (``d ≤ λ/2``) to avoid grating lobes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "as_positions",
    "uniform_mimo_array",
    "virtual_positions",
    "virtual_spacing",
    "stepped_frequencies",
    "fmcw_frequencies",
    "image_grid",
    "as_grid",
    "as_frequencies",
    "principal_coordinate",
    "hamming_taper",
    "max_distance",
    "antenna_on_grid",
]


def _to_numpy(value, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu()
        if value.is_complex():
            raise TypeError(f"{name} must be real, got a complex tensor")
        value = value.numpy()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged lists etc.
        raise TypeError(f"{name} must be a real numeric array, got {type(value).__name__}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return np.array(arr, dtype=np.float64)


def as_positions(pos, name: str = "positions") -> np.ndarray:
    """Validate antenna positions: a finite, non-empty real array of shape ``(N, 2)`` (metres).

    Accepts numpy arrays, torch tensors or nested sequences; returns a new
    float64 numpy array. Raises ``ValueError``/``TypeError`` naming ``name``.
    """
    arr = _to_numpy(pos, name)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2) with columns (x, z) in metres, got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one position, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got NaN or Inf")
    return arr


def as_frequencies(frequencies, name: str = "frequencies") -> np.ndarray:
    """Validate a frequency set: a non-empty 1-D array of finite, positive values (Hz)."""
    f = _to_numpy(frequencies, name)
    if f.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of frequencies in Hz, got shape {f.shape}")
    if f.size == 0:
        raise ValueError(f"{name} must hold at least one frequency, got an empty array")
    if not np.isfinite(f).all():
        raise ValueError(f"{name} must be finite, got NaN or Inf")
    if (f <= 0).any():
        raise ValueError(f"{name} must be positive (Hz), got minimum {f.min()!r}")
    return f


def as_grid(coords, name: str) -> np.ndarray:
    """Validate a grid coordinate vector: non-empty, 1-D, finite, strictly monotonic (metres)."""
    g = _to_numpy(coords, name)
    if g.ndim != 1:
        raise ValueError(f"{name} must be a 1-D coordinate vector in metres, got shape {g.shape}")
    if g.size == 0:
        raise ValueError(f"{name} must hold at least one grid point, got an empty array")
    if not np.isfinite(g).all():
        raise ValueError(f"{name} must be finite, got NaN or Inf")
    if g.size > 1:
        step = np.diff(g)
        if not ((step > 0).all() or (step < 0).all()):
            raise ValueError(f"{name} must be strictly monotonic (no repeats, no reversals)")
    return g


def _positive(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}") from exc
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v


def _count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be ≥ 1, got {value}")
    return int(value)


def uniform_mimo_array(
    n_tx: int, n_rx: int, spacing: float, center: Sequence[float] = (0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform linear MIMO array along ``x`` at ``z = center[1]``, filled virtual array.

    Parameters
    ----------
    n_tx, n_rx : number of transmitters ``N_T`` and receivers ``N_R`` (≥ 1)
    spacing : receiver spacing ``d`` in metres; transmitters are ``N_R·d`` apart
    center : ``(x, z)`` of the array centre in metres

    Returns
    -------
    tx : float64 array ``(N_T, 2)``;  rx : float64 array ``(N_R, 2)``
        Columns ``(x, z)``. The phase centres ``(t_i + r_j)/2`` fill a uniform line
        of ``N_v = N_T·N_R`` points with pitch ``d/2``; the one-way virtual spacing
        (see :func:`virtual_spacing`) is ``d_v = d``.
    """
    nt, nr = _count(n_tx, "n_tx"), _count(n_rx, "n_rx")
    d = _positive(spacing, "spacing")
    c = _to_numpy(center, "center")
    if c.shape != (2,) or not np.isfinite(c).all():
        raise ValueError(f"center must be a finite (x, z) pair in metres, got {center!r}")
    rx_x = (np.arange(nr) - (nr - 1) / 2) * d
    tx_x = (np.arange(nt) - (nt - 1) / 2) * (nr * d)
    tx = np.stack((tx_x + c[0], np.full(nt, c[1])), axis=1)
    rx = np.stack((rx_x + c[0], np.full(nr, c[1])), axis=1)
    return tx, rx


def virtual_positions(tx, rx) -> np.ndarray:
    """Phase centres ``(t_i + r_j)/2`` of every TX/RX pair: float64 array ``(N_T, N_R, 2)``."""
    t = as_positions(tx, "tx")
    r = as_positions(rx, "rx")
    return 0.5 * (t[:, None, :] + r[None, :, :])


def virtual_spacing(tx, rx) -> tuple[float, int]:
    """``(d_v, N_v)`` of a linear MIMO array: one-way virtual spacing and element count.

    ``d_v`` is the median gap between neighbouring distinct one-way virtual
    positions ``t_i + r_j`` projected on the array's principal axis (``= d`` for
    :func:`uniform_mimo_array`), ``N_v = N_T·N_R``. The cross-range −3 dB width at
    range ``R`` is ``0.886 λ_c R / (N_v d_v)`` for a filled array.
    """
    v = 2.0 * virtual_positions(tx, rx).reshape(-1, 2)
    n_v = v.shape[0]
    u = principal_coordinate(v)
    gaps = np.diff(np.unique(np.round(u, 12)))
    d_v = float(np.median(gaps)) if gaps.size else 0.0
    return d_v, n_v


def principal_coordinate(points: np.ndarray) -> np.ndarray:
    """Coordinate of 2-D ``points (N, 2)`` along their principal axis (metres, origin at their mean)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    centred = p - p.mean(axis=0)
    if p.shape[0] < 2 or not np.any(centred):
        return np.zeros(p.shape[0])
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axis = vt[0] if vt[0][np.argmax(np.abs(vt[0]))] > 0 else -vt[0]
    return centred @ axis


def hamming_taper(u) -> np.ndarray:
    """Hamming weights ``0.54 - 0.46 cos(2π s)`` at the positions ``u``, ``s = (u - min u)/(max u - min u)``.

    Uniformly spaced ``u`` gives ``numpy.hamming(len(u))``; a single position (or
    all equal) gives ones.
    """
    u = np.asarray(u, dtype=np.float64)
    span = float(np.max(u) - np.min(u))
    if span == 0.0:
        return np.ones_like(u)
    return 0.54 - 0.46 * np.cos(2.0 * np.pi * (u - np.min(u)) / span)


def max_distance(x, z, antennas) -> float:
    """Largest distance (m) between a pixel of the grid ``x × z`` and an antenna ``(N, 2)``.

    The farthest point of a rectangle from any point is a corner, so only the
    four grid corners are checked.
    """
    corners = np.array([(a, b) for a in (x[0], x[-1]) for b in (z[0], z[-1])], dtype=np.float64)
    ant = np.asarray(antennas, dtype=np.float64)
    return float(np.max(np.hypot(corners[:, None, 0] - ant[None, :, 0], corners[:, None, 1] - ant[None, :, 1])))


def antenna_on_grid(x, z, antennas) -> int | None:
    """Index of the first antenna that sits exactly on a pixel of the grid ``x × z``, else None."""
    ant = np.asarray(antennas, dtype=np.float64)
    on_x = (np.asarray(x)[:, None] == ant[None, :, 0]).any(axis=0)
    on_z = (np.asarray(z)[:, None] == ant[None, :, 1]).any(axis=0)
    hit = np.nonzero(on_x & on_z)[0]
    return int(hit[0]) if hit.size else None


def stepped_frequencies(f0: float, bandwidth: float, n: int) -> np.ndarray:
    """``n`` stepped frequencies ``f_k = f0 + k·Δf``, ``Δf = bandwidth/n`` (Hz, float64).

    ``bandwidth = n·Δf`` is the synthesised bandwidth ``B``: range resolution
    ``c/(2B)``, −3 dB range width ``0.886·c/(2B)``, unambiguous range ``c/(2Δf)``.
    """
    f_start = _positive(f0, "f0")
    b = _positive(bandwidth, "bandwidth")
    return f_start + np.arange(_count(n, "n")) * (b / n)


def fmcw_frequencies(f0: float, slope: float, sample_rate: float, n: int) -> np.ndarray:
    """Equivalent stepped frequencies of ``n`` dechirped FMCW beat samples (Hz, float64).

    Sample ``t_n = n / sample_rate`` of a chirp starting at ``f0`` with slope ``S``
    (Hz/s) is the stepped-frequency sample ``f_n = f0 + S·t_n`` once the residual
    video phase is removed; the bandwidth is ``B = n·S/sample_rate``.
    """
    f_start = _positive(f0, "f0")
    s = _positive(slope, "slope")
    fs = _positive(sample_rate, "sample_rate")
    return f_start + s * (np.arange(_count(n, "n")) / fs)


def image_grid(
    x_min: float, x_max: float, nx: int, z_min: float, z_max: float, nz: int
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinate vectors ``x`` (``nx``, cross-range) and ``z`` (``nz``, range) in metres, float64.

    Both are ``linspace`` including the end points; an image on this grid has
    shape ``(nz, nx)`` (rows = range). A single point (``n = 1``) needs ``min == max``.
    """
    out = []
    for lo, hi, n, name in ((x_min, x_max, nx, "x"), (z_min, z_max, nz, "z")):
        count = _count(n, f"n{name}")
        lo_f, hi_f = float(lo), float(hi)
        if not (np.isfinite(lo_f) and np.isfinite(hi_f)):
            raise ValueError(f"{name}_min/{name}_max must be finite, got {lo!r}, {hi!r}")
        if count > 1 and not hi_f > lo_f:
            raise ValueError(f"{name}_max must exceed {name}_min for n{name} > 1, got {lo!r}, {hi!r}")
        if count == 1 and hi_f != lo_f:
            raise ValueError(f"n{name} = 1 needs {name}_min == {name}_max, got {lo!r}, {hi!r}")
        out.append(np.linspace(lo_f, hi_f, count))
    return out[0], out[1]
