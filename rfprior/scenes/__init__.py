"""Synthetic scenes and measurement simulation.

* :func:`mimo_scene`, :func:`complex_phantom`, :func:`dielectric_phantom`,
  :func:`smooth_phase` — seeded complex scenes per modality.
* :func:`default_geometry` — sensible acquisition geometries (SI units).
* :func:`simulate` — ``y = A x + n`` at a requested SNR, as a Dataset and
  optionally a measurement file.
"""

from .geometry import GEOMETRY_PARAMETERS, default_geometry
from .phantoms import complex_phantom, dielectric_phantom, mimo_scene, smooth_phase
from .sequence import moving_scene, simulate_sequence
from .simulate import default_scene, noise_sigma_for_snr, simulate

__all__ = [
    "GEOMETRY_PARAMETERS",
    "complex_phantom",
    "default_geometry",
    "default_scene",
    "dielectric_phantom",
    "mimo_scene",
    "moving_scene",
    "noise_sigma_for_snr",
    "simulate",
    "simulate_sequence",
    "smooth_phase",
]
