"""Frame sequences: a moving extended target plus static points, for batch and warm-start work.

A radar recording frames continuously, or a scanner repeating an acquisition, sees a
scene that changes a little between frames. :func:`moving_scene` gives frame ``t`` of
such a scene (complex128 ``(H, W)``) on the same grid and acquisition for every frame;
:func:`simulate_sequence` writes the frames as measurement files with fresh noise each.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .. import modalities

__all__ = ["moving_scene", "simulate_sequence"]


def moving_scene(
    modality: str, geometry: dict[str, Any], t: float, seed: int = 0, *, speed: float = 1.0
) -> torch.Tensor:
    """Frame ``t`` (0, 1, …; fractional allowed) of a scene with one moving extended target.

    The modality's :meth:`~rfprior.modalities.Modality.moving_scene`: for ``"mimo"``
    :func:`~rfprior.phantoms.moving_radar_scene` (a moving ellipse with a plate plus 4 static
    points with random phases) on ``geometry["x"]``, ``geometry["z"]``; for
    ``"partial_fourier"`` :func:`~rfprior.phantoms.moving_phantom` on the mask's grid. The same
    ``seed`` gives the same objects, path and points in every frame.
    """
    return modalities.get(modality).moving_scene(geometry, t, seed, speed=speed)


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
    m = modalities.get(modality)
    geometry = m.default_geometry(size, seed=seed, **geometry_overrides)
    fields = {k: geometry[k] for k in m.fields if k in geometry}
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
