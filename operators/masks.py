"""Seeded k-space sampling masks for :class:`operators.PartialFourier`.

Every generator returns a boolean ``torch.Tensor`` of shape ``(H, W)`` with DC at
``(H//2, W//2)`` and is reproducible from ``seed``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["cartesian_mask", "variable_density_mask", "radial_mask"]


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    if len(shape) != 2 or any(int(s) < 2 for s in shape):
        raise ValueError(f"shape must be (H, W) with H, W ≥ 2, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _check_acceleration(acceleration: float) -> float:
    if not (isinstance(acceleration, (int, float)) and math.isfinite(acceleration) and acceleration >= 1):
        raise ValueError(f"acceleration must be a finite number ≥ 1, got {acceleration!r}")
    return float(acceleration)


def cartesian_mask(
    shape: tuple[int, int], acceleration: float, center_fraction: float = 0.08, seed: int = 0
) -> torch.Tensor:
    """Random full phase-encode lines (rows ``ky``) with a fully sampled centre.

    ``round(H / acceleration)`` rows are sampled in all: the central
    ``round(center_fraction · H)`` rows, the rest drawn uniformly without
    replacement from the remaining rows.
    """
    h, w = _check_shape(shape)
    acc = _check_acceleration(acceleration)
    if not 0 <= center_fraction <= 1:
        raise ValueError(f"center_fraction must lie in [0, 1], got {center_fraction}")
    n_total = max(1, round(h / acc))
    n_center = min(n_total, round(center_fraction * h))
    start = h // 2 - n_center // 2
    rows = torch.zeros(h, dtype=torch.bool)
    rows[start : start + n_center] = True
    g = torch.Generator().manual_seed(seed)
    rest = (~rows).nonzero().reshape(-1)
    pick = rest[torch.randperm(rest.numel(), generator=g)[: n_total - n_center]]
    rows[pick] = True
    return rows[:, None].expand(h, w).clone()


def variable_density_mask(
    shape: tuple[int, int],
    acceleration: float,
    power: float = 2.0,
    center_radius: float = 0.06,
    seed: int = 0,
) -> torch.Tensor:
    """2-D variable-density random sampling.

    Exactly ``round(H·W / acceleration)`` samples: all points with normalised
    radius ``r < center_radius`` (``r = 1`` at the edge midpoints), the rest drawn
    without replacement with probability ∝ ``(1 − r/√2)^power``.
    """
    h, w = _check_shape(shape)
    acc = _check_acceleration(acceleration)
    n_total = max(1, round(h * w / acc))
    ky = (torch.arange(h, dtype=torch.float64) - h // 2) / (h / 2)
    kx = (torch.arange(w, dtype=torch.float64) - w // 2) / (w / 2)
    r = torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2).reshape(-1)
    mask = torch.zeros(h * w, dtype=torch.bool)
    centre = (r < center_radius).nonzero().reshape(-1)
    centre = centre[torch.argsort(r[centre])][:n_total]
    mask[centre] = True
    n_rest = n_total - centre.numel()
    if n_rest > 0:
        p = (1 - r / math.sqrt(2)).clamp_min(1e-6) ** power
        p[mask] = 0
        g = torch.Generator().manual_seed(seed)
        mask[torch.multinomial(p, n_rest, replacement=False, generator=g)] = True
    return mask.reshape(h, w)


def _spokes(h: int, w: int, angles: torch.Tensor) -> torch.Tensor:
    n = 2 * max(h, w)
    t = torch.linspace(-1, 1, n, dtype=torch.float64) * math.hypot(h, w) / 2
    ky = torch.round(h // 2 + t[None, :] * torch.sin(angles)[:, None]).long()
    kx = torch.round(w // 2 + t[None, :] * torch.cos(angles)[:, None]).long()
    ok = (ky >= 0) & (ky < h) & (kx >= 0) & (kx < w)
    mask = torch.zeros(h, w, dtype=torch.bool)
    mask[ky[ok], kx[ok]] = True
    return mask


def radial_mask(
    shape: tuple[int, int],
    acceleration: float | None = None,
    spokes: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Radial spokes through the k-space centre, rasterised on the grid.

    Spokes are spaced by the golden angle from a seeded random start. Give either
    ``spokes`` or ``acceleration`` (the spoke count whose rasterised fraction is
    closest to ``1/acceleration`` is used).
    """
    h, w = _check_shape(shape)
    if (acceleration is None) == (spokes is None):
        raise ValueError("radial_mask: give exactly one of acceleration or spokes")
    g = torch.Generator().manual_seed(seed)
    start = float(torch.rand((), generator=g, dtype=torch.float64)) * math.pi
    golden = math.pi * (math.sqrt(5) - 1) / 2

    def build(n: int) -> torch.Tensor:
        angles = (start + golden * torch.arange(n, dtype=torch.float64)) % math.pi
        return _spokes(h, w, angles)

    if spokes is not None:
        if int(spokes) < 1:
            raise ValueError(f"radial_mask: spokes must be ≥ 1, got {spokes}")
        return build(int(spokes))
    target = 1.0 / _check_acceleration(acceleration)  # type: ignore[arg-type]
    best, best_err = build(1), math.inf
    for n in range(1, 4 * max(h, w)):
        m = build(n)
        err = abs(float(m.float().mean()) - target)
        if err < best_err:
            best, best_err = m, err
        if float(m.float().mean()) > target:
            break
    return best
