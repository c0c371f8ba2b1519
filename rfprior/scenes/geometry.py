"""Default acquisition geometries per modality (SI units), as dicts for :func:`rfprior.io.save_measurements`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from operators.arrays import image_grid, stepped_frequencies, uniform_mimo_array
from operators.masks import cartesian_mask, radial_mask, variable_density_mask
from operators.mimo import SPEED_OF_LIGHT

__all__ = ["default_geometry", "GEOMETRY_PARAMETERS"]

#: The knobs each modality's default geometry accepts (besides the geometry fields themselves).
GEOMETRY_PARAMETERS: dict[str, dict[str, Any]] = {
    "mimo": {
        "n_tx": 8,
        "n_rx": 8,
        "n_freq": 64,
        "f0": 77e9,
        "bandwidth": 4e9,
        "spacing": None,  # receiver spacing d; default λ/2 at the highest frequency
        "x_range": (-0.4, 0.4),
        "z_range": (0.6, 1.4),
    },
    "partial_fourier": {"acceleration": 4.0, "mask_kind": "variable_density", "mask_seed": None},
    "diffraction_tomography": {"n_angles": None, "wavelength": 633e-9, "medium_index": 1.333, "pixel_size": None},
}
_FIELDS = {
    "mimo": ("tx", "rx", "frequencies", "x", "z", "spreading"),
    "partial_fourier": ("mask",),
    "diffraction_tomography": ("angles", "detector_distance", "shape", "detector_size"),
}


def default_geometry(modality: str, size: int = 64, *, seed: int = 0, **params: Any) -> dict[str, Any]:
    """A sensible acquisition geometry for ``modality`` and an image of ``size × size`` pixels.

    * ``"mimo"`` — 77–81 GHz stepped frequency (``n_freq = 64``, ``B = 4 GHz``:
      range resolution ``c/2B = 3.75 cm``, unambiguous range 2.4 m), uniform
      8 TX × 8 RX linear array at ``z = 0`` with receiver spacing ``λ/2`` at 81 GHz
      (64 phase centres, pitch λ/4: no grating lobes; cross-range −3 dB width
      ≈ 2.8 cm at 1 m), image ``x ∈ [−0.4, 0.4]`` m × ``z ∈ [0.6, 1.4]`` m
      (1.27 cm pixels at ``size = 64``: 2–3 pixels per resolution cell).
    * ``"partial_fourier"`` — variable-density random mask at 4× (``mask_kind``:
      ``"variable_density"``, ``"cartesian"``, ``"radial"``; ``mask_seed``
      defaults to ``seed``).
    * ``"diffraction_tomography"`` — ``2·size`` angles over 2π, λ0 = 633 nm in a
      medium ``n_m = 1.333`` (λ_m = 475 nm), pixels λ0/4 = 158 nm (below the
      aliasing limit λ_m/(2√2)), ``size`` detector pixels of the same pitch,
      detector at the rotation centre (``detector_distance = 0``, i.e. focused data).

    Keyword arguments are either the knobs in :data:`GEOMETRY_PARAMETERS` or the
    geometry fields themselves (e.g. ``frequencies=...``, ``mask=...``), which
    replace the computed ones.
    """
    if modality not in GEOMETRY_PARAMETERS:
        raise ValueError(f"modality must be one of {sorted(GEOMETRY_PARAMETERS)}, got {modality!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 4:
        raise ValueError(f"size must be an int ≥ 4, got {size!r}")
    size = int(size)
    knobs = dict(GEOMETRY_PARAMETERS[modality])
    fields = {k: params.pop(k) for k in list(params) if k in _FIELDS[modality]}
    unknown = set(params) - set(knobs)
    if unknown:
        allowed = sorted(set(knobs) | set(_FIELDS[modality]))
        raise TypeError(f"default_geometry({modality!r}): unknown parameter(s) {sorted(unknown)}; allowed: {allowed}")
    knobs.update(params)
    if modality == "mimo":
        f = stepped_frequencies(knobs["f0"], knobs["bandwidth"], knobs["n_freq"])
        d = knobs["spacing"] or SPEED_OF_LIGHT / f[-1] / 2
        tx, rx = uniform_mimo_array(knobs["n_tx"], knobs["n_rx"], d)
        x, z = image_grid(*knobs["x_range"], size, *knobs["z_range"], size)
        geom: dict[str, Any] = {"tx": tx, "rx": rx, "frequencies": f, "x": x, "z": z, "spreading": False}
    elif modality == "partial_fourier":
        mseed = seed if knobs["mask_seed"] is None else knobs["mask_seed"]
        acc, kind = knobs["acceleration"], knobs["mask_kind"]
        makers = {
            "variable_density": lambda: variable_density_mask((size, size), acc, seed=mseed),
            "cartesian": lambda: cartesian_mask((size, size), acc, seed=mseed),
            "radial": lambda: radial_mask((size, size), acceleration=acc, seed=mseed),
        }
        if kind not in makers:
            raise ValueError(f"mask_kind must be one of {sorted(makers)}, got {kind!r}")
        geom = {"mask": makers[kind]().numpy()}
    else:
        n_angles = knobs["n_angles"] or 2 * size
        lam = float(knobs["wavelength"])
        geom = {
            "angles": 2 * math.pi * np.arange(n_angles) / n_angles,
            "wavelength": lam,
            "medium_index": float(knobs["medium_index"]),
            "pixel_size": float(knobs["pixel_size"] or lam / 4),
            "detector_distance": 0.0,
            "shape": (size, size),
            "detector_size": size,
        }
    geom.update(fields)
    return geom
