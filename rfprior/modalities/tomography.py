"""Diffraction tomography (2-D, Born / Rytov): :class:`Tomography` (docs/design.md §3).

File fields (SI units): ``angles`` (rad), ``wavelength`` (vacuum, m), ``medium_index``,
``pixel_size`` (m), optional ``detector_distance`` (m, default 0), ``shape (H, W)`` and
``detector_size``. Measurements ``(angle, detector)``; unmeasured entries may be marked.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
import xarray as xr

from operators import DiffractionTomography, filtered_backpropagation_op
from operators.tomography import index_to_object

from ..files.checks import Checker
from ..noise import sigma_evanescent
from ..phantoms import dielectric_phantom, generator
from .base import Modality, ModalityDefaults, NoiseEstimator, format_si

__all__ = ["Tomography"]

_SCALARS = ("wavelength", "medium_index", "pixel_size", "detector_distance")


def _grid(n: int, step: float) -> np.ndarray:
    return (np.arange(n) - n // 2) * step



class Tomography(Modality):
    """Diffraction tomography: :class:`operators.DiffractionTomography`, image ``(y, x)`` (object function, m⁻²).

    Defaults: the Deep Decoder + TV at a quarter of the TV-discrepancy λ, 3000 iterations (chosen
    by measurement, docs/notes.md); σ from the evanescent detector frequencies; Devaney's filtered
    backpropagation as the direct image.
    """

    name = "diffraction_tomography"
    label = "diffraction-tomography"
    operator_type = DiffractionTomography
    measurement_dims = ("angle", "detector")
    image_dims = ("y", "x")
    fields = MappingProxyType(
        {
            "angles": "rad",
            "wavelength": "m",
            "medium_index": "1",
            "pixel_size": "m",
            "detector_distance": "m",
            "shape": "pixels",
        }
    )
    optional_fields = ("detector_size",)
    image_size_fields = "/geometry/shape"
    missing_ok = True
    defaults = ModalityDefaults(prior="deep_decoder", penalty="tv", penalty_factor=0.25, iterations=3000)
    direct_image_name = "filtered backpropagation"
    geometry_parameters = MappingProxyType(
        {"n_angles": None, "wavelength": 633e-9, "medium_index": 1.333, "pixel_size": None}
    )
    scene_kinds = ("cell",)

    def check_geometry(self, chk: Checker, geometry: dict[str, Any]) -> dict[str, Any]:
        g = geometry

        def need(key: str, what: str) -> Any:
            return chk.require(g, key, f"/geometry/{key}", what)

        angles = chk.vector("/geometry/angles", need("angles", "illumination angles in rad"), "angles in rad")
        wrapped = np.sort(np.mod(angles, 2 * np.pi))
        if angles.size > 1 and np.diff(np.concatenate([wrapped, wrapped[:1] + 2 * np.pi])).min() < 1e-9:
            raise chk.fail("/geometry/angles", "duplicate angles (equal modulo 2π)", "distinct illumination angles")
        out: dict[str, Any] = {
            "angles": angles,
            "wavelength": chk.scalar(
                "/geometry/wavelength", need("wavelength", "vacuum wavelength in m"), "wavelength in m", positive=True
            ),
            "medium_index": chk.scalar(
                "/geometry/medium_index", need("medium_index", "refractive index n_m"), "refractive index",
                positive=True,
            ),
            "pixel_size": chk.scalar(
                "/geometry/pixel_size", need("pixel_size", "pixel size in m"), "pixel size in m", positive=True
            ),
            "detector_distance": chk.scalar(
                "/geometry/detector_distance", g.get("detector_distance", 0.0), "detector distance in m"
            ),
        }  # fmt: skip
        if out["detector_distance"] < 0:
            raise chk.fail("/geometry/detector_distance", f"{out['detector_distance']:g}", "a distance ≥ 0 in metres")
        if g.get("shape") is not None:
            out["shape"] = chk.shape2("/geometry/shape", g["shape"])
        if g.get("detector_size") is not None:
            out["detector_size"] = int(chk.scalar("/geometry/detector_size", g["detector_size"], "detector pixels"))
        return out

    def check_measurements(
        self, chk: Checker, arr: np.ndarray, dims: tuple[str, ...] | None, geometry: dict[str, Any]
    ) -> np.ndarray:
        f = "/measurements"
        g = geometry
        arr = chk.axes(f, arr, dims, self.measurement_dims)
        if arr.shape[0] != len(g["angles"]) or arr.shape[1] < 2:
            raise chk.fail(f, f"shape {arr.shape}", f"shape ({len(g['angles'])}, N_det) = (N_angles, N_det ≥ 2)")
        if g.setdefault("detector_size", arr.shape[1]) != arr.shape[1]:
            expected = f"{arr.shape[1]} (axis 1 of /measurements)"
            raise chk.fail("/geometry/detector_size", str(g["detector_size"]), expected)
        return arr

    def complete_geometry(self, geometry: dict[str, Any], truth_shape: tuple[int, ...] | None) -> None:
        """The image shape: given, else the truth's, else ``detector_size`` squared."""
        if truth_shape is not None:
            geometry.setdefault("shape", tuple(truth_shape))
        geometry.setdefault("shape", (geometry["detector_size"],) * 2)

    def image_shape(self, geometry: dict[str, Any]) -> tuple[int, int]:
        return tuple(geometry["shape"])  # type: ignore[return-value]

    def coords(self, geometry: dict[str, Any], measurements: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
        g = geometry
        h, w = g["shape"]
        p = g["pixel_size"]
        coords = {
            "angle": ("angle", g["angles"], {"units": "rad"}),
            "detector": ("detector", _grid(g["detector_size"], p), {"units": "m"}),
            "y": ("y", _grid(h, p), {"units": "m"}),
            "x": ("x", _grid(w, p), {"units": "m"}),
        }
        return coords, {key: ((), g[key], {"units": self.fields[key]}) for key in _SCALARS}

    def geometry_from_dataset(self, ds: xr.Dataset, var: Any) -> dict[str, Any]:
        g = {"angles": var("angle"), **{k: float(var(k)) for k in _SCALARS}}
        if "y" in ds.sizes and "x" in ds.sizes:
            g["shape"] = (ds.sizes["y"], ds.sizes["x"])
        return g

    def describe(self, ds: xr.Dataset) -> list[str]:
        a = ds["angle"].values
        return [
            f"  angles        {a.size} from {math.degrees(a.min()):.1f}° to {math.degrees(a.max()):.1f}°",
            f"  optics        λ0 = {format_si(float(ds.wavelength), 'm')}, n_m = {float(ds.medium_index):.4g}, "
            f"pixel {format_si(float(ds.pixel_size), 'm')}, detector at {format_si(float(ds.detector_distance), 'm')}",
            f"  image grid    {ds.sizes.get('y', '?')}×{ds.sizes.get('x', '?')}, "
            f"detector {ds.sizes['detector']} pixels",
        ]

    def build_operator(
        self, geometry: dict[str, Any], *, dtype: torch.dtype = torch.complex64, device: Any = None
    ) -> DiffractionTomography:
        g = geometry
        return DiffractionTomography(
            g["angles"], tuple(g["shape"]), g["wavelength"], g["medium_index"], g["pixel_size"],
            g.get("detector_distance", 0.0), g.get("detector_size"), dtype=dtype, device=device,
        )  # fmt: skip

    def noise_estimators(self, restricted: bool) -> list[NoiseEstimator]:
        return [("tomography_evanescent_band", sigma_evanescent)]

    def direct_image(self, op: Any, y: torch.Tensor) -> torch.Tensor:
        """Devaney's filtered backpropagation (the adjoint alone lacks the ``|k_x|``-type filter and the
        Jacobian, so its scale is meaningless)."""
        return filtered_backpropagation_op(op, y)

    def make_geometry(self, size: int, seed: int, knobs: dict[str, Any]) -> dict[str, Any]:
        """``2·size`` angles over 2π, λ0 = 633 nm in a medium ``n_m = 1.333`` (λ_m = 475 nm), pixels
        λ0/4 = 158 nm (below the aliasing limit λ_m/(2√2)), ``size`` detector pixels of the same
        pitch, detector at the rotation centre (``detector_distance = 0``, i.e. focused data)."""
        n_angles = knobs["n_angles"] or 2 * size
        lam = float(knobs["wavelength"])
        return {
            "angles": 2 * math.pi * np.arange(n_angles) / n_angles,
            "wavelength": lam,
            "medium_index": float(knobs["medium_index"]),
            "pixel_size": float(knobs["pixel_size"] or lam / 4),
            "detector_distance": 0.0,
            "shape": (size, size),
            "detector_size": size,
        }

    def default_scene(self, geometry: dict[str, Any], seed: int = 0, kind: str | None = None) -> torch.Tensor:
        """The object function (m⁻²) of :func:`rfprior.phantoms.dielectric_phantom` (``kind`` ``"cell"``)."""
        if kind not in (None, "cell"):
            raise ValueError(f"diffraction_tomography scenes: kind must be 'cell', got {kind!r}")
        n = dielectric_phantom(tuple(geometry["shape"]), seed, medium_index=geometry["medium_index"])
        return index_to_object(n, geometry["wavelength"], geometry["medium_index"])

    def moving_scene(self, geometry: dict[str, Any], t: float, seed: int = 0, *, speed: float = 1.0) -> torch.Tensor:
        """Frame ``t`` of the cell of :meth:`default_scene` with one dense droplet moving through it.

        The droplet (index ``+0.02``, absorption ``2e-4``, a soft disk of radius ``max(1.5, size/16)``
        pixels) starts at a seeded point inside the cell and moves ``speed`` pixels per frame along a
        seeded direction; the cell is static. The same ``seed`` gives the same cell and path in every
        frame. Returns the object function (m⁻²), complex128 ``(H, W)``.
        """
        h, w = tuple(geometry["shape"])
        nm = geometry["medium_index"]
        n = dielectric_phantom((h, w), seed, medium_index=nm)
        g = generator(seed, 14)
        u = torch.rand(3, generator=g, dtype=torch.float64).tolist()
        ang = 2 * math.pi * u[0]
        cy = h / 2 + (u[1] - 0.5) * 0.3 * h + speed * t * math.sin(ang)
        cx = w / 2 + (u[2] - 0.5) * 0.3 * w + speed * t * math.cos(ang)
        yy = torch.arange(h, dtype=torch.float64)[:, None]
        xx = torch.arange(w, dtype=torch.float64)[None, :]
        r = torch.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        radius = max(1.5, min(h, w) / 16)
        droplet = torch.sigmoid((radius - r) / 0.5)
        n = n + complex(0.02, 2e-4) * droplet
        return index_to_object(n, geometry["wavelength"], nm)
