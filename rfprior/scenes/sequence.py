"""Frame sequences: a moving extended target plus static points, for joint and warm-start work.

A radar recording frames continuously, or a scanner repeating an acquisition, sees a
scene that changes a little between frames. :func:`moving_scene` gives frame ``t`` of
such a scene (complex128 ``(H, W)``) on the same grid and acquisition for every frame;
:func:`simulate_frames` writes them as ONE sequence file (a ``frame`` axis, docs/file-format.md),
:func:`simulate_sequence` as one measurement file per frame in a folder.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from .. import modalities
from ..io import save_measurements, to_dataset, validate
from ..modalities.frames import TIMES
from ..phantoms import generator
from .simulate import noise_sigma_for_snr

__all__ = ["MASKS", "moving_scene", "simulate_frames", "simulate_sequence"]

#: ``simulate_frames(masks=...)``: one sampling per frame, or one for all frames
MASKS = ("per_frame", "shared")


def moving_scene(
    modality: str, geometry: dict[str, Any], t: float, seed: int = 0, *, speed: float = 1.0
) -> torch.Tensor:
    """Frame ``t`` (0, 1, …; fractional allowed) of a scene with one moving extended target.

    The modality's :meth:`~rfprior.modalities.Modality.moving_scene`: for ``"mimo"``
    :func:`~rfprior.phantoms.moving_radar_scene` (a moving ellipse with a plate plus 4 static
    points with random phases) on ``geometry["x"]``, ``geometry["z"]``; for
    ``"partial_fourier"`` :func:`~rfprior.phantoms.moving_phantom` on the mask's grid; for
    ``"diffraction_tomography"`` the cell with a moving droplet
    (:meth:`rfprior.modalities.Tomography.moving_scene`). The same ``seed`` gives the same
    objects, path and points in every frame.
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

    _check_frames(frames)
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


def _check_frames(frames: Any) -> None:
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"frames must be an int ≥ 1, got {frames!r}")


def simulate_frames(
    modality: str,
    *,
    frames: int = 8,
    size: int = 48,
    snr_db: float | None = 20.0,
    seed: int = 0,
    path: str | os.PathLike[str] | None = None,
    masks: str | None = None,
    speed: float = 1.0,
    frame_interval: float | None = None,
    description: str | None = None,
    force: bool = False,
    **geometry_overrides: Any,
) -> xr.Dataset:
    """Simulate a frame sequence of :func:`moving_scene` as ONE sequence measurement set (and file).

    Parameters
    ----------
    modality : a registered modality with a moving scene (``"mimo"``, ``"partial_fourier"``,
        ``"diffraction_tomography"``)
    frames : number of frames F (frame ``f`` is :func:`moving_scene` at ``t = f``)
    size, seed, speed : image side in pixels, seed of the scene, geometry and noise, pixels per frame
    snr_db : the sequence's SNR in dB, ``10 log10(Σ_f ‖A_f x_f‖² / E‖n‖²)``; ``None`` for noiseless
        data. One σ for the whole sequence (stored as ``noise_sigma``), noise drawn per frame in
        frame order from one seeded stream, so every frame's SNR is near ``snr_db``.
    path : write the sequence file there (``force`` replaces an existing one)
    masks : ``"per_frame"`` — a different seeded sampling per frame (partial Fourier: a mask of
        the same kind and acceleration per frame, seeded ``mask_seed·1000 + f``); ``"shared"`` —
        one for all frames; ``None`` (default) — per frame where the forward model's sampling can
        differ per frame (:attr:`~rfprior.modalities.FrameHooks.frame_fields`), else shared
    frame_interval : seconds between frames; stored as ``/geometry/times = f · frame_interval``
        (no times when ``None``)
    **geometry_overrides : passed to the modality's default geometry

    Returns
    -------
    xarray.Dataset
        As :func:`rfprior.io.load` returns the sequence (``frame`` dimension, ``truth`` ``(frame, …)``,
        ``noise_sigma``, ``snr_db``).
    """
    _check_frames(frames)
    m = modalities.get(modality)
    if masks is not None and masks not in MASKS:
        raise ValueError(f"masks must be one of {MASKS} or None, got {masks!r}")
    per_frame = bool(m.frame_fields) if masks is None else masks == "per_frame"
    frames = int(frames)
    geometry = m.sequence_geometry(size, frames=frames, seed=seed, per_frame=per_frame, **geometry_overrides)
    built: dict[int, Any] = {}
    truths, clean = [], []
    for f, g in enumerate(m.frame_geometries(geometry, frames)):
        if id(g) not in built:  # frames sharing a geometry share the operator
            built[id(g)] = m.build_operator(g, dtype=torch.complex128)
        op = built[id(g)]
        x = m.moving_scene(g, f, seed, speed=speed).to(torch.complex64).to(torch.complex128)
        with torch.no_grad():
            clean.append(op.forward(x))
        truths.append(x)
    if snr_db is None:
        sigma = 0.0
    else:
        if not math.isfinite(float(snr_db)):
            raise ValueError(f"snr_db must be finite or None, got {snr_db!r}")
        sigma = noise_sigma_for_snr(torch.cat([c.reshape(-1) for c in clean]), float(snr_db))
    gen = generator(seed, 1)
    ys = []
    for c in clean:
        n = torch.randn((2, *c.shape), generator=gen, dtype=torch.float64)
        ys.append((c + sigma * torch.complex(n[0], n[1])).to(torch.complex64).numpy())
    values, dims = m.stack_frames(ys, geometry)
    if frame_interval is not None:
        if not (math.isfinite(float(frame_interval)) and float(frame_interval) > 0):
            raise ValueError(f"frame_interval must be a positive number of seconds, got {frame_interval!r}")
        geometry = {**geometry, TIMES: float(frame_interval) * np.arange(frames)}
    if description is None:
        level = f"SNR {snr_db:.1f} dB" if snr_db is not None else "noiseless"
        how = "per-frame" if m.per_frame_fields(geometry) else "shared"
        description = (f"simulated {modality} sequence, moving scene, {frames} frames of {size}x{size}, "
                       f"{how} sampling, {level}, seed {seed}")  # fmt: skip
    truth = torch.stack(truths).to(torch.complex64).numpy()
    rec = validate(
        "<simulated>", modality, values, geometry, dims=dims, truth=truth,
        noise_sigma=sigma, snr_db=snr_db, description=description,
    )  # fmt: skip
    ds = to_dataset(rec)
    if path is not None:
        save_measurements(
            path, modality, rec.measurements, rec.geometry, dims=rec.dims, truth=rec.truth,
            noise_sigma=sigma, snr_db=snr_db, description=description, force=force,
        )  # fmt: skip
        ds.encoding["source"] = os.fspath(path)
    return ds
