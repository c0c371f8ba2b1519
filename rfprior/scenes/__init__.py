"""Synthetic scenes and measurement simulation.

* :func:`mimo_scene`, :func:`complex_phantom`, :func:`dielectric_phantom`,
  :func:`smooth_phase` — seeded complex scenes (:mod:`rfprior.phantoms`).
* :func:`default_geometry` — sensible acquisition geometries (SI units), per modality.
* :func:`simulate` — ``y = A x + n`` at a requested SNR, as a Dataset and
  optionally a measurement file; :func:`simulate_frames` — a moving scene as ONE sequence file
  (a ``frame`` axis); :func:`simulate_sequence` — frames of a moving scene, one file each.

What a forward model simulates (geometry, scene) is its :class:`~rfprior.modalities.Modality`'s.
"""

from ..phantoms import complex_phantom, dielectric_phantom, mimo_scene, smooth_phase
from .geometry import default_geometry, geometry_parameters
from .sequence import moving_scene, simulate_frames, simulate_sequence
from .simulate import default_scene, noise_sigma_for_snr, simulate

__all__ = [
    "complex_phantom",
    "default_geometry",
    "default_scene",
    "dielectric_phantom",
    "geometry_parameters",
    "mimo_scene",
    "moving_scene",
    "noise_sigma_for_snr",
    "simulate",
    "simulate_frames",
    "simulate_sequence",
    "smooth_phase",
]
