"""Partial Fourier (k-space): :class:`PartialFourierModality` (docs/design.md §3).

File fields: ``mask (H, W)`` (bool, centred k-space). Measurements: the kept samples ``(sample,)``
in row-major order of the mask, or the full grid ``(ky, kx)`` (samples are taken at the mask).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np
import torch
import xarray as xr

from operators import PartialFourier, backproject
from operators.masks import cartesian_mask, radial_mask, variable_density_mask

from ..files.checks import Checker
from ..noise import sigma_partial_fourier
from ..phantoms import complex_phantom, moving_phantom
from .base import Modality, ModalityDefaults, NoiseEstimator

__all__ = ["HOLDOUT_REASON", "PartialFourierModality"]

#: Why hold-out validation is not offered for partial Fourier (the user-facing reason; measured in docs/notes.md).
HOLDOUT_REASON = (
    "hold-out validation picks iterates 1.8-2.0 dB worse than the discrepancy rule on "
    "partial-Fourier data (a held-out k-space sample is not predictable from the others; "
    "measured in rfprior's docs/notes.md); use the discrepancy rule"
)
_FULL_GRID = ("ky", "kx")  # partial Fourier data may also be given on the full k-space grid


class PartialFourierModality(Modality):
    """Partial Fourier: :class:`operators.PartialFourier` (centred unitary 2-D DFT + mask), image ``(y, x)``.

    Defaults: the Deep Decoder + TV at a quarter of the TV-discrepancy λ, 3000 iterations (chosen
    by measurement, docs/notes.md); σ from the outer k-space; zero filling as the direct image;
    hold-out validation not offered (``HOLDOUT_REASON``).
    """

    name = "partial_fourier"
    label = "partial-Fourier"
    operator_type = PartialFourier
    measurement_dims = ("sample",)
    image_dims = ("y", "x")
    fields = MappingProxyType({"mask": "1"})
    image_size_fields = "/geometry/mask"
    defaults = ModalityDefaults(prior="deep_decoder", penalty="tv", penalty_factor=0.25, iterations=3000)
    unsuitable_rules = MappingProxyType({"holdout": HOLDOUT_REASON})
    direct_image_name = "zero filled"
    geometry_parameters = MappingProxyType({"acceleration": 4.0, "mask_kind": "variable_density", "mask_seed": None})
    scene_kinds = ("shepp_logan", "ellipses")
    range_complement_fallback = False

    def check_geometry(self, chk: Checker, geometry: dict[str, Any]) -> dict[str, Any]:
        mask = chk.require(geometry, "mask", "/geometry/mask", "a boolean (H, W) mask")
        return {"mask": chk.mask("/geometry/mask", mask)}

    def measurement_ranks(self) -> tuple[int, ...]:
        return (1, 2)

    def check_measurements(
        self, chk: Checker, arr: np.ndarray, dims: tuple[str, ...] | None, geometry: dict[str, Any]
    ) -> np.ndarray:
        f = "/measurements"
        mask = geometry["mask"]
        if dims == _FULL_GRID or (dims is None and arr.ndim == 2):
            chk.shape(f, arr, mask.shape, "(H, W) of /geometry/mask")
            return arr[mask]
        arr = chk.axes(f, arr, dims, self.measurement_dims)
        chk.shape(f, arr, (int(mask.sum()),), "(K,) with K = number of true entries of /geometry/mask")
        return arr

    def image_shape(self, geometry: dict[str, Any]) -> tuple[int, int]:
        return tuple(geometry["mask"].shape)  # type: ignore[return-value]

    def coords(self, geometry: dict[str, Any], measurements: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
        h, w = geometry["mask"].shape
        flat = np.flatnonzero(geometry["mask"])
        coords = {
            "ky": ("sample", flat // w, {"units": "grid index", "note": f"DC at ky = {h // 2}"}),
            "kx": ("sample", flat % w, {"units": "grid index", "note": f"DC at kx = {w // 2}"}),
        }
        return coords, {"mask": (("y", "x"), geometry["mask"])}

    @staticmethod
    def _positions(ds: xr.Dataset, var: Any, chk: Checker) -> np.ndarray:
        h, w = var("mask").shape
        flat = var("ky").astype(np.int64) * w + var("kx").astype(np.int64)
        if len(np.unique(flat)) != flat.size or (flat < 0).any() or (flat >= h * w).any():
            expected = f"distinct positions on the {h}×{w} grid"
            raise chk.fail("ky/kx", "repeated or out-of-grid sample positions", expected)
        return flat

    def geometry_from_dataset(self, ds: xr.Dataset, var: Any) -> dict[str, Any]:
        h, w = var("mask").shape
        flat = self._positions(ds, var, Checker(ds.encoding.get("source", "<dataset>")))
        mask = np.zeros(h * w, dtype=bool)
        mask[flat] = True
        return {"mask": mask.reshape(h, w)}

    def measurements_from_dataset(
        self, ds: xr.Dataset, geometry: dict[str, Any], chk: Checker
    ) -> tuple[np.ndarray, np.ndarray | None]:
        flat = self._positions(ds, lambda n: ds[n].values, chk)
        return chk.finite("measurements", ds["measurements"].values[np.argsort(flat)]), None

    def describe(self, ds: xr.Dataset) -> list[str]:
        mask = ds["mask"].values
        frac = float(mask.mean())
        return [f"  mask          {mask.shape[0]}×{mask.shape[1]}, {frac:.1%} sampled ({1 / frac:.2f}×)"]

    def build_operator(
        self, geometry: dict[str, Any], *, dtype: torch.dtype = torch.complex64, device: Any = None
    ) -> PartialFourier:
        return PartialFourier(torch.as_tensor(np.asarray(geometry["mask"], dtype=bool)), dtype=dtype, device=device)

    def noise_estimators(self, restricted: bool) -> list[NoiseEstimator]:
        return [] if restricted else [("partial_fourier_outer_kspace", sigma_partial_fourier)]

    def direct_image(self, op: Any, y: torch.Tensor) -> torch.Tensor:
        """Zero filling ``Aᴴy``: ``A`` is a partial isometry; dividing by ``diag(AᴴA)`` (the sampled
        fraction) would scale an extended object up by the acceleration."""
        return backproject(op, y, normalize=False)

    def make_geometry(self, size: int, seed: int, knobs: dict[str, Any]) -> dict[str, Any]:
        """A variable-density random mask at 4× (``mask_kind``: ``"variable_density"``, ``"cartesian"``,
        ``"radial"``; ``mask_seed`` defaults to ``seed``)."""
        mseed = seed if knobs["mask_seed"] is None else knobs["mask_seed"]
        acc, kind = knobs["acceleration"], knobs["mask_kind"]
        makers = {
            "variable_density": lambda: variable_density_mask((size, size), acc, seed=mseed),
            "cartesian": lambda: cartesian_mask((size, size), acc, seed=mseed),
            "radial": lambda: radial_mask((size, size), acceleration=acc, seed=mseed),
        }
        if kind not in makers:
            raise ValueError(f"mask_kind must be one of {sorted(makers)}, got {kind!r}")
        return {"mask": makers[kind]().numpy()}

    def default_scene(self, geometry: dict[str, Any], seed: int = 0, kind: str | None = None) -> torch.Tensor:
        """:func:`rfprior.phantoms.complex_phantom` (``kind`` ``"shepp_logan"`` by default)."""
        return complex_phantom(geometry["mask"].shape, seed, kind=kind or "shepp_logan", dtype=torch.complex128)

    def moving_scene(self, geometry: dict[str, Any], t: float, seed: int = 0, *, speed: float = 1.0) -> torch.Tensor:
        """:func:`rfprior.phantoms.moving_phantom` on the mask's grid."""
        h, w = tuple(geometry["mask"].shape)
        return moving_phantom(h, w, t, seed, speed=speed)
