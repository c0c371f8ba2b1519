"""Synthetic complex scenes: radar reflectivity, complex phantoms, dielectric objects.

Every generator is deterministic given ``seed`` (a :class:`torch.Generator` is
seeded from it) and returns a complex tensor ``(H, W)`` with rows = range (MIMO)
or ``y`` (partial Fourier, tomography), columns = ``x``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "complex_phantom",
    "dielectric_phantom",
    "generator",
    "mimo_scene",
    "moving_phantom",
    "moving_radar_scene",
    "scattering_scene",
    "smooth_phase",
]

#: :func:`scattering_scene` kinds
SCATTERING_KINDS = ("disk", "ellipse", "disks", "nested", "square")

#: Modified Shepp–Logan (Toft): intensity, semi-axes (a, b), centre (x0, y0), angle in degrees.
_SHEPP_LOGAN = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18.0),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18.0),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0.0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0.0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0.0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0.0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0.0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0.0),
)


def generator(seed: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for ``(seed, stream)``: independent draws for scene, noise, mask."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return torch.Generator().manual_seed(int(seed) * 16 + stream)


def _uniform(g: torch.Generator, lo: float = 0.0, hi: float = 1.0, n: int | None = None):
    u = torch.rand(n or 1, generator=g, dtype=torch.float64) * (hi - lo) + lo
    return u if n is not None else float(u)


def _check_shape(shape: Sequence[int], name: str = "shape") -> tuple[int, int]:
    if len(shape) != 2 or any(int(s) < 4 for s in shape):
        raise ValueError(f"{name} must be (H, W) with H, W ≥ 4, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _unit_grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates in [−1, 1]: ``x`` along columns, ``y`` upwards (row 0 = top)."""
    x = (torch.arange(w, dtype=torch.float64) + 0.5) / w * 2 - 1
    y = 1 - (torch.arange(h, dtype=torch.float64) + 0.5) / h * 2
    return torch.meshgrid(y, x, indexing="ij")[::-1]  # (X, Y), each (H, W)


def _ellipse(X: torch.Tensor, Y: torch.Tensor, a: float, b: float, x0: float, y0: float, deg: float) -> torch.Tensor:
    """Normalised ellipse radius ``r`` (``r < 1`` inside)."""
    t = math.radians(deg)
    u = (X - x0) * math.cos(t) + (Y - y0) * math.sin(t)
    v = -(X - x0) * math.sin(t) + (Y - y0) * math.cos(t)
    return torch.sqrt((u / a) ** 2 + (v / b) ** 2)


def _soft_inside(r: torch.Tensor, a: float, pixels: float) -> torch.Tensor:
    """Smooth indicator of ``r < 1`` with an edge about ``pixels`` wide (``a`` in unit-grid units per 1 r)."""
    width = max(pixels * 2.0 / max(r.shape), 1e-9) / a
    inside = torch.sigmoid((1 - r) / width)
    return torch.where(inside < 1e-6, 0.0, inside)


def smooth_phase(
    shape: Sequence[int], seed: int = 0, *, max_cycles: float = 1.5, amplitude: float = math.pi, stream: int = 5
) -> torch.Tensor:
    """Random smooth phase map (radians, float64 ``(H, W)``).

    A sum of Fourier modes with at most ``max_cycles`` cycles across the image,
    amplitudes decaying as ``1/(1 + |k|²)``, scaled so that ``max|φ − offset| =
    amplitude``, plus a uniform random offset in ``[−π, π)``. The gradient is
    below ``2π·max_cycles·amplitude/min(H, W)`` rad/pixel (≈ 0.46 for 64² and the
    defaults).
    """
    h, w = _check_shape(shape)
    g = generator(seed, stream)
    k = math.floor(max_cycles)
    X, Y = _unit_grid(h, w)
    phi = torch.zeros(h, w, dtype=torch.float64)
    for ky in range(-k, k + 1):
        for kx in range(0, k + 1):
            if (kx == 0 and ky <= 0) or kx * kx + ky * ky > max_cycles**2:
                continue
            c = torch.randn(2, generator=g, dtype=torch.float64) / (1 + kx * kx + ky * ky)
            arg = math.pi * (kx * X + ky * Y)  # X, Y span 2 units → kx cycles across
            phi += c[0] * torch.cos(arg) + c[1] * torch.sin(arg)
    phi = phi - phi.mean()
    phi = amplitude * phi / phi.abs().max().clamp_min(1e-12)
    return phi + _uniform(g, -math.pi, math.pi)


def complex_phantom(
    shape: Sequence[int] = (64, 64),
    seed: int = 0,
    *,
    kind: str = "shepp_logan",
    phase_amplitude: float = math.pi,
    edge: float = 3.5,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Complex phantom ``m(r)·exp(iφ(r))`` for partial-Fourier imaging, ``(H, W)``.

    ``kind="shepp_logan"``: the modified Shepp–Logan magnitude (values in [0, 1]);
    ``kind="ellipses"``: a support ellipse with 4–7 random inner ellipses (seeded).
    ``φ`` is :func:`smooth_phase` with ``phase_amplitude`` (zero outside nothing:
    the phase is defined everywhere, the magnitude is zero outside the object).

    ``edge`` is the 10–90 % rise distance of every ellipse's edge in pixels (a
    logistic ramp): the default 3.5 px is the object as a system with a resolution of
    about two pixels delivers it, whose spectrum falls below the noise towards the
    k-space edge. Sharper edges put signal into the outer k-space that the
    outer-k-space σ estimator (:func:`rfprior.noise.sigma_partial_fourier`) counts as
    noise: at 30 dB, 64², it overestimates σ by ≈ 1.2× at 2.5 px, ≈ 2× at 1.5 px and
    ≈ 12× for ``edge=0``, the classic pixel-sharp staircase (an inverse-crime phantom).
    """
    if not (math.isfinite(edge) and edge >= 0):
        raise ValueError(f"edge must be a finite width in pixels >= 0, got {edge!r}")
    h, w = _check_shape(shape)
    X, Y = _unit_grid(h, w)
    mag = torch.zeros(h, w, dtype=torch.float64)

    def inside(a: float, b: float, x0: float, y0: float, deg: float) -> torch.Tensor:
        r = _ellipse(X, Y, a, b, x0, y0, deg)
        # the logistic rises from 10 % to 90 % over 2 ln 9 ≈ 4.39 of its widths
        return (r < 1).double() if edge == 0 else _soft_inside(r, min(a, b), edge / (2 * math.log(9)))

    if kind == "shepp_logan":
        for value, a, b, x0, y0, deg in _SHEPP_LOGAN:
            mag += value * inside(a, b, x0, y0, deg)
    elif kind == "ellipses":
        g = generator(seed, 6)
        mag += 0.6 * inside(0.8, 0.9, 0.0, 0.0, _uniform(g, -15, 15))
        for _ in range(int(torch.randint(4, 8, (1,), generator=g))):
            a, b = _uniform(g, 0.08, 0.3), _uniform(g, 0.08, 0.3)
            x0, y0 = _uniform(g, -0.4, 0.4), _uniform(g, -0.45, 0.45)
            mag += _uniform(g, -0.4, 0.4) * inside(a, b, x0, y0, _uniform(g, 0, 180))
        mag = mag.clamp_min(0)
    else:
        raise ValueError(f"kind must be 'shepp_logan' or 'ellipses', got {kind!r}")
    phi = smooth_phase((h, w), seed, amplitude=phase_amplitude)
    return torch.polar(mag.clamp_min(0), phi).to(dtype)


def dielectric_phantom(
    shape: Sequence[int] = (64, 64),
    seed: int = 0,
    *,
    medium_index: float = 1.333,
    contrast: float = 0.01,
    absorption: float = 2e-4,
) -> torch.Tensor:
    """Complex refractive index ``n(r)`` of a cell-like object in a medium, complex128 ``(H, W)``.

    A cell body (``n_m + contrast``), a nucleus (``+ 0.6·contrast``), 2–3 nucleoli
    (``+ 0.8·contrast``) and 3–5 small dense droplets (``+ 2·contrast``, with
    imaginary part ``absorption``), all with edges 1–2 pixels wide, sizes and
    positions drawn from ``seed``. Convert to the object function with
    :func:`operators.tomography.index_to_object`.
    """
    h, w = _check_shape(shape)
    g = generator(seed, 7)
    X, Y = _unit_grid(h, w)
    delta = torch.zeros(h, w, dtype=torch.complex128)

    def blob(a: float, b: float, x0: float, y0: float, deg: float) -> torch.Tensor:
        return _soft_inside(_ellipse(X, Y, a, b, x0, y0, deg), min(a, b), 0.35)

    a, b, deg = _uniform(g, 0.6, 0.72), _uniform(g, 0.45, 0.6), _uniform(g, 0, 180)
    cx, cy = _uniform(g, -0.08, 0.08), _uniform(g, -0.08, 0.08)
    delta += contrast * blob(a, b, cx, cy, deg)
    t = math.radians(deg)
    nx, ny = cx + 0.25 * a * math.cos(t), cy + 0.25 * a * math.sin(t)
    na, nb = 0.45 * a, 0.5 * b
    delta += 0.6 * contrast * blob(na, nb, nx, ny, deg + _uniform(g, -20, 20))
    for _ in range(int(torch.randint(2, 4, (1,), generator=g))):
        r, ang = _uniform(g, 0, 0.5), _uniform(g, 0, 2 * math.pi)
        rad = _uniform(g, 0.05, 0.08)
        delta += 0.8 * contrast * blob(rad, rad, nx + r * na * math.cos(ang), ny + r * nb * math.sin(ang), 0)
    for _ in range(int(torch.randint(3, 6, (1,), generator=g))):
        r, ang = _uniform(g, 0.6, 0.85), _uniform(g, 0, 2 * math.pi)
        rad = _uniform(g, 0.04, 0.07)
        x0 = cx + r * a * math.cos(ang) * math.cos(t) - r * b * math.sin(ang) * math.sin(t)
        y0 = cy + r * a * math.cos(ang) * math.sin(t) + r * b * math.sin(ang) * math.cos(t)
        delta += complex(2 * contrast, absorption) * blob(rad, rad, x0, y0, 0)
    return medium_index + delta


def _segment(u: torch.Tensor, v: torch.Tensor, p0, p1, half_width: float) -> torch.Tensor:
    d = torch.tensor(p1, dtype=torch.float64) - torch.tensor(p0, dtype=torch.float64)
    s = (((u - p0[0]) * d[0] + (v - p0[1]) * d[1]) / float(d @ d)).clamp(0, 1)
    dist = torch.hypot(u - p0[0] - s * d[0], v - p0[1] - s * d[1])
    return (dist <= half_width).double()


def mimo_scene(
    x: Sequence[float] | np.ndarray | torch.Tensor,
    z: Sequence[float] | np.ndarray | torch.Tensor,
    kind: str = "points",
    seed: int = 0,
    *,
    n_points: int | None = None,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Radar reflectivity on the grid ``(len(z), len(x))`` (rows = range), peak magnitude 1.

    ``"points"``: ``n_points`` (default 6) point targets on distinct pixels at
    least 3 pixels apart, away from the borders, magnitude U(0.5, 1), uniform
    random phase. ``"extended"``: a plate (thin segment), an L-shaped corner and a
    filled ellipse, each with a smoothly varying magnitude (0.4–1) and a smooth
    phase. ``"mixed"``: both (4 points by default).
    """
    nx, nz = len(x), len(z)
    h, w = _check_shape((nz, nx), "(len(z), len(x))")
    if kind not in ("points", "extended", "mixed"):
        raise ValueError(f"kind must be 'points', 'extended' or 'mixed', got {kind!r}")
    g = generator(seed, 8)
    scene = torch.zeros(h, w, dtype=torch.complex128)
    if kind in ("extended", "mixed"):
        V, U = torch.meshgrid(
            torch.linspace(0, 1, h, dtype=torch.float64), torch.linspace(0, 1, w, dtype=torch.float64), indexing="ij"
        )
        hw = 0.6 / min(h, w)
        shapes = []
        c, ang, length = (_uniform(g, 0.25, 0.75), _uniform(g, 0.2, 0.4)), _uniform(g, 0, math.pi), 0.3
        dx, dz = 0.5 * length * math.cos(ang), 0.5 * length * math.sin(ang)
        shapes.append(_segment(U, V, (c[0] - dx, c[1] - dz), (c[0] + dx, c[1] + dz), hw))
        corner = (_uniform(g, 0.2, 0.8), _uniform(g, 0.55, 0.8))
        arm = _uniform(g, 0.1, 0.18)
        shapes.append(
            torch.maximum(
                _segment(U, V, corner, (corner[0] + arm, corner[1]), hw),
                _segment(U, V, corner, (corner[0], corner[1] - arm), hw),
            )
        )
        ea, eb = _uniform(g, 0.05, 0.1), _uniform(g, 0.04, 0.08)
        ex, ez = _uniform(g, 0.2, 0.8), _uniform(g, 0.2, 0.8)
        shapes.append((((U - ex) / ea) ** 2 + ((V - ez) / eb) ** 2 <= 1).double())
        for i, support in enumerate(shapes):
            amp = 0.7 + 0.3 * torch.cos(smooth_phase((h, w), seed, amplitude=math.pi, stream=9 + i))
            phase = smooth_phase((h, w), seed, amplitude=math.pi, stream=12 + i)
            scene = torch.where(support > 0, torch.polar(amp * support, phase), scene)
    if kind in ("points", "mixed"):
        count = n_points if n_points is not None else (6 if kind == "points" else 4)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"n_points must be a non-negative int, got {n_points!r}")
        mz, mx = max(1, h // 10), max(1, w // 10)
        placed: list[tuple[int, int]] = []
        for _ in range(100 * max(count, 1)):
            if len(placed) == count:
                break
            iz = int(torch.randint(mz, h - mz, (1,), generator=g))
            ix = int(torch.randint(mx, w - mx, (1,), generator=g))
            if all(max(abs(iz - a), abs(ix - b)) >= 3 for a, b in placed):
                placed.append((iz, ix))
        for iz, ix in placed:
            scene[iz, ix] = torch.polar(
                torch.tensor(_uniform(g, 0.5, 1.0), dtype=torch.float64),
                torch.tensor(_uniform(g, 0, 2 * math.pi), dtype=torch.float64),
            )
    peak = scene.abs().max()
    return (scene / peak if peak > 0 else scene).to(dtype)


def moving_radar_scene(h: int, w: int, t: float, seed: int = 0, *, speed: float = 1.0) -> torch.Tensor:
    """Frame ``t`` of a radar scene: a moving extended target plus 4 static points (complex128 ``(h, w)``).

    A filled ellipse with a plate (thin segment) attached, magnitude 0.4–1 varying smoothly
    over the object and a phase gradient of at most 0.3 rad/pixel, both carried with the
    object; it moves ``speed`` pixels per frame along a random direction. Plus 4 static point
    targets (magnitude U(0.5, 1), independent uniformly random phases, on distinct pixels ≥ 3
    pixels apart). The same ``seed`` gives the same objects, path and points in every frame.
    """
    g = generator(seed, 13)
    ang = _uniform(g, 0, 2 * math.pi)
    step = speed / min(h, w)  # unit-grid lengths per frame (the grid spans 1 in these coordinates)
    V, U = torch.meshgrid(
        torch.linspace(0, 1, h, dtype=torch.float64), torch.linspace(0, 1, w, dtype=torch.float64), indexing="ij"
    )
    cx, cz = _uniform(g, 0.3, 0.7), _uniform(g, 0.3, 0.7)
    cx, cz = cx - 10 * step * math.cos(ang) + t * step * math.cos(ang), cz - 10 * step * math.sin(ang)
    cz += t * step * math.sin(ang)
    tilt = _uniform(g, 0, math.pi)
    u, v = U - cx, V - cz  # object coordinates (they move with the object)
    body = (_ellipse(u, v, 0.08, 0.05, 0.0, 0.0, math.degrees(tilt)) <= 1).double()
    arm = (0.12 * math.cos(tilt), 0.12 * math.sin(tilt))
    plate = _segment(u, v, (0.0, 0.0), arm, 0.6 / min(h, w))
    support = torch.maximum(body, plate)
    kx, kz = _uniform(g, -1.5, 1.5), _uniform(g, -1.5, 1.5)
    amp = 0.7 + 0.3 * torch.cos(2 * math.pi * (kx * u + kz * v) / 0.2)
    grad = 0.3 * min(h, w)  # rad per unit length: ≤ 0.3 rad/pixel
    phase = _uniform(g, -math.pi, math.pi) + grad * (u * math.cos(tilt) + v * math.sin(tilt))
    scene = torch.polar(amp * support, phase)
    placed: list[tuple[int, int]] = []
    mz, mx = max(1, h // 10), max(1, w // 10)
    while len(placed) < 4:
        iz = int(torch.randint(mz, h - mz, (1,), generator=g))
        ix = int(torch.randint(mx, w - mx, (1,), generator=g))
        if all(max(abs(iz - a), abs(ix - b)) >= 3 for a, b in placed):
            placed.append((iz, ix))
    for iz, ix in placed:
        mag, ph = _uniform(g, 0.5, 1.0), _uniform(g, 0, 2 * math.pi)
        scene[iz, ix] = complex(mag * math.cos(ph), mag * math.sin(ph))
    return scene


def moving_phantom(h: int, w: int, t: float, seed: int = 0, *, speed: float = 1.0) -> torch.Tensor:
    """Frame ``t`` of an image-like scene with one moving inner ellipse (complex128 ``(h, w)``).

    A static support ellipse (magnitude 0.5) with a moving inner ellipse (+0.4) and 3 static
    Gaussian dots (1-pixel σ, +0.5), edges 3.5 pixels wide as in :func:`complex_phantom`, times
    a static smooth phase. The same ``seed`` gives the same objects and path in every frame.
    """
    g = generator(seed, 13)
    ang = _uniform(g, 0, 2 * math.pi)
    step = speed / min(h, w)  # unit-grid lengths per frame (the grid spans 1 in these coordinates)
    X, Y = _unit_grid(h, w)  # [-1, 1] across: the unit grid spans 2 here
    width = 3.5 / (2 * math.log(9))
    mag = 0.5 * _soft_inside(_ellipse(X, Y, 0.8, 0.9, 0.0, 0.0, _uniform(g, -15, 15)), 0.8, width)
    x0, y0 = _uniform(g, -0.3, 0.3), _uniform(g, -0.3, 0.3)
    x0 += 2 * step * (t - 10) * math.cos(ang)
    y0 += 2 * step * (t - 10) * math.sin(ang)
    mag = mag + 0.4 * _soft_inside(_ellipse(X, Y, 0.22, 0.14, x0, y0, _uniform(g, 0, 180)), 0.14, width)
    px = 2.0 / min(h, w)
    for _ in range(3):
        dx, dy = _uniform(g, -0.55, 0.55), _uniform(g, -0.55, 0.55)
        mag = mag + 0.5 * torch.exp(-((X - dx) ** 2 + (Y - dy) ** 2) / (2 * px**2))
    return torch.polar(mag, smooth_phase((h, w), seed))


def _area_fraction(x: np.ndarray, z: np.ndarray, inside: Any, sub: int = 4) -> torch.Tensor:
    """Fraction of each pixel of the grid ``(z, x)`` (metres) where ``inside(X, Z)`` holds (``sub²`` samples)."""
    hx = float(x[1] - x[0]) if len(x) > 1 else 1.0
    hz = float(z[1] - z[0]) if len(z) > 1 else 1.0
    off = (np.arange(sub) + 0.5) / sub - 0.5
    X, Z = np.meshgrid(np.asarray(x, dtype=float), np.asarray(z, dtype=float))
    frac = np.zeros(X.shape)
    for ox in off:
        for oz in off:
            frac += inside(X + ox * hx, Z + oz * hz)
    return torch.as_tensor(frac / sub**2)


def scattering_scene(x: Any, z: Any, kind: str = "disk", seed: int = 0) -> torch.Tensor:
    """A dielectric contrast ``χ = ε_r − 1`` on the grid ``(z, x)`` (metres), complex128, real values.

    Cylinders of the sizes and contrasts of the microwave databases (χ 0.5–3, radii 8–40 mm),
    placed within ±60 % of the grid's half-width; pixel values are area-weighted at the edges.
    ``kind``: ``"disk"``, ``"ellipse"`` (the tuning families), ``"disks"`` (2–3 disks),
    ``"nested"`` (a weak disk holding a strong one, as the Fresnel 2005 foam + plastic) and
    ``"square"`` (a rotated square): the held-out families.
    """
    if kind not in SCATTERING_KINDS:
        raise ValueError(f"kind must be one of {SCATTERING_KINDS}, got {kind!r}")
    x = np.asarray(x, dtype=float)
    z = np.asarray(z, dtype=float)
    g = generator(seed, 5)
    half = 0.6 * min(abs(x[-1] - x[0]), abs(z[-1] - z[0])) / 2
    cx, cz = float(np.mean(x)), float(np.mean(z))

    def disk(x0: float, z0: float, r: float) -> Any:
        return lambda X, Z: (X - x0) ** 2 + (Z - z0) ** 2 < r * r

    chi = torch.zeros(len(z), len(x), dtype=torch.float64)
    if kind in ("disk", "ellipse", "square"):
        r = _uniform(g, 0.012, 0.025)
        x0, z0 = cx + _uniform(g, -1, 1) * (half - r), cz + _uniform(g, -1, 1) * (half - r)
        value = _uniform(g, 0.5, 3.0)
        if kind == "disk":
            shape = disk(x0, z0, r)
        else:
            a, b = (r, r * _uniform(g, 0.4, 0.8)) if kind == "ellipse" else (r, r)
            t = _uniform(g, 0.0, math.pi)

            def shape(X: np.ndarray, Z: np.ndarray) -> np.ndarray:
                u = (X - x0) * math.cos(t) + (Z - z0) * math.sin(t)
                v = -(X - x0) * math.sin(t) + (Z - z0) * math.cos(t)
                if kind == "ellipse":
                    return (u / a) ** 2 + (v / b) ** 2 < 1
                return (np.abs(u) < a) & (np.abs(v) < a)

        chi = value * _area_fraction(x, z, shape)
    elif kind == "disks":
        placed: list[tuple[float, float, float]] = []
        for _ in range(2 + int(_uniform(g) > 0.5)):
            for _try in range(50):
                r = _uniform(g, 0.008, 0.02)
                x0, z0 = cx + _uniform(g, -1, 1) * (half - r), cz + _uniform(g, -1, 1) * (half - r)
                if all(math.hypot(x0 - a, z0 - b) > r + c + 0.005 for a, b, c in placed):
                    break
            placed.append((x0, z0, r))
            chi = chi + _uniform(g, 0.5, 3.0) * _area_fraction(x, z, disk(x0, z0, r))
    else:  # nested
        r_out = _uniform(g, 0.03, 0.04)
        x0, z0 = cx + _uniform(g, -1, 1) * (half - r_out) * 0.5, cz + _uniform(g, -1, 1) * (half - r_out) * 0.5
        r_in = _uniform(g, 0.01, 0.015)
        ang = _uniform(g, 0, 2 * math.pi)
        d = _uniform(g, 0.0, r_out - r_in - 0.003)
        xi, zi = x0 + d * math.cos(ang), z0 + d * math.sin(ang)
        outer, inner = _area_fraction(x, z, disk(x0, z0, r_out)), _area_fraction(x, z, disk(xi, zi, r_in))
        chi_out, chi_in = _uniform(g, 0.3, 1.0), _uniform(g, 1.5, 3.0)
        chi = chi_out * (outer - inner) + chi_in * inner
    return chi.to(torch.complex128)
