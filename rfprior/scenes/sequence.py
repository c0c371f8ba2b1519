"""Frame sequences: a moving extended target plus static points, for batch and warm-start work.

A radar recording frames continuously, or a scanner repeating an acquisition, sees a
scene that changes a little between frames. :func:`moving_scene` gives frame ``t`` of
such a scene (complex128 ``(H, W)``) on the same grid and acquisition for every frame;
:func:`simulate_sequence` writes the frames as measurement files with fresh noise each.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch

from .geometry import default_geometry
from .phantoms import _ellipse, _segment, _soft_inside, _uniform, _unit_grid, generator, smooth_phase

__all__ = ["moving_scene", "simulate_sequence"]


def moving_scene(
    modality: str, geometry: dict[str, Any], t: float, seed: int = 0, *, speed: float = 1.0
) -> torch.Tensor:
    """Frame ``t`` (0, 1, …; fractional allowed) of a scene with one moving extended target.

    * ``"mimo"``: a filled ellipse with a plate (thin segment) attached, magnitude 0.4–1
      varying smoothly over the object and a phase gradient of at most 0.3 rad/pixel, both
      carried with the object; it moves ``speed`` pixels per frame along a random direction.
      Plus 4 static point targets (magnitude U(0.5, 1), independent uniformly random phases,
      on distinct pixels ≥ 3 pixels apart). Grid: ``geometry["x"]``, ``geometry["z"]``.
    * ``"partial_fourier"``: a static support ellipse (magnitude 0.5) with a moving inner
      ellipse (+0.4) and 3 static Gaussian dots (1-pixel σ, +0.5), edges 3.5 pixels wide as in
      :func:`~rfprior.scenes.complex_phantom`, times a static smooth phase. Grid: the mask's shape.

    The same ``seed`` gives the same objects, path and points in every frame.
    """
    if modality == "mimo":
        h, w = len(geometry["z"]), len(geometry["x"])
    elif modality == "partial_fourier":
        h, w = tuple(geometry["mask"].shape)
    else:
        raise ValueError(f"modality must be 'mimo' or 'partial_fourier', got {modality!r}")
    g = generator(seed, 13)
    ang = _uniform(g, 0, 2 * math.pi)
    step = speed / min(h, w)  # unit-grid lengths per frame (the grid spans 1 in these coordinates)
    if modality == "mimo":
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


def simulate_sequence(
    modality: str,
    folder: str | os.PathLike[str],
    *,
    frames: int = 20,
    size: int = 48,
    snr_db: float = 20.0,
    seed: int = 0,
    speed: float = 1.0,
    force: bool = False,
    **geometry_overrides: Any,
) -> list[Path]:
    """Write ``frames`` measurement files ``frame000.h5 …`` of :func:`moving_scene` into ``folder``.

    One acquisition geometry (and mask) for all frames; noise drawn afresh per frame
    (seed ``seed·1000 + t``) at ``snr_db``. Returns the paths in frame order.
    """
    from .simulate import simulate

    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be an int ≥ 1, got {frames!r}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    geometry = default_geometry(modality, size, seed=seed, **geometry_overrides)
    fields = {k: geometry[k] for k in ("tx", "rx", "frequencies", "x", "z", "mask") if k in geometry}
    paths = []
    for t in range(frames):
        path = out / f"frame{t:03d}.h5"
        scene = moving_scene(modality, geometry, t, seed, speed=speed)
        simulate(
            modality,
            size=size,
            snr_db=snr_db,
            seed=seed * 1000 + t,
            scene=scene,
            path=path,
            force=force,
            description=f"moving-target sequence (seed {seed}), frame {t} of {frames}",
            **fields,
            **{k: v for k, v in geometry_overrides.items() if k not in fields},
        )
        paths.append(path)
    return paths
