"""Partial Fourier (k-space): :class:`PartialFourierModality` (docs/design.md §3).

File fields: ``mask (H, W)`` (bool, centred k-space). Measurements: the kept samples ``(sample,)``
in row-major order of the mask, or the full grid ``(ky, kx)`` (samples are taken at the mask).

Sequences: the mask may be shared ``(H, W)`` — measurements ``(frame, sample)`` (or the full grid
``(frame, ky, kx)``, reduced to the samples) — or one per frame ``(F, H, W)``: measurements then on
the full grid ``(frame, ky, kx)``, stored with 0 outside each frame's mask (ignored on reading).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np
import torch
import xarray as xr

from operators import PartialFourier, backproject
from operators.masks import cartesian_mask, radial_mask, variable_density_mask

from ..files.checks import Checker, as_numpy
from ..noise import sigma_partial_fourier
from ..phantoms import complex_phantom, moving_phantom
from .base import Modality, ModalityDefaults, NoiseEstimator
from .frames import FRAME, FrameChecker

__all__ = ["HOLDOUT_REASON", "PartialFourierModality"]

#: Why hold-out validation is not offered for partial Fourier (the user-facing reason; measured in docs/notes.md).
HOLDOUT_REASON = (
    "hold-out validation picks iterates 1.8-2.0 dB worse than the discrepancy rule on "
    "partial-Fourier data (a held-out k-space sample is not predictable from the others; "
    "measured in rfprior's docs/notes.md); use the discrepancy rule"
)
_FULL_GRID = ("ky", "kx")  # partial Fourier data may also be given on the full k-space grid
_GRID_SEQUENCE = (FRAME, *_FULL_GRID)  # a sequence with per-frame masks: the full grid per frame


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
    defaults = ModalityDefaults(
        prior="deep_decoder", penalty="tv", penalty_factor=0.25, iterations=3000, sequence_temporal_weight=2.0
    )
    unsuitable_rules = MappingProxyType({"holdout": HOLDOUT_REASON})
    direct_image_name = "zero filled"
    geometry_parameters = MappingProxyType({"acceleration": 4.0, "mask_kind": "variable_density", "mask_seed": None})
    scene_kinds = ("shepp_logan", "ellipses")
    range_complement_fallback = False
    frame_fields = MappingProxyType({"mask": 2})

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
        return tuple(geometry["mask"].shape[-2:])  # type: ignore[return-value]

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
        if "mask" in ds.variables and FRAME in ds["mask"].dims:  # a sequence with one mask per frame
            return {"mask": ds["mask"].transpose(FRAME, ...).values}
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

    # -- sequences: a shared mask (frame, sample), or one mask per frame on the full grid (frame, ky, kx)

    def is_sequence(self, arr: np.ndarray, dims: tuple[str, ...] | None, geometry: dict[str, Any]) -> bool:
        """Without ``dims``: 3 axes, or 2 axes ``(F, K)`` that are not the 2-D mask's full grid."""
        if dims is not None or arr.ndim != 2:
            return super().is_sequence(arr, dims, geometry)
        try:
            mask = as_numpy(geometry.get("mask"))
        except (TypeError, ValueError):  # pragma: no cover - the mask check reports it
            return False
        if mask.ndim == 3:
            return True
        return mask.ndim == 2 and arr.shape != mask.shape and arr.shape[1] == int(np.count_nonzero(mask))

    def sequence_dims(self, geometry: dict[str, Any]) -> tuple[str, ...]:
        return _GRID_SEQUENCE if np.ndim(geometry["mask"]) == 3 else (FRAME, *self.measurement_dims)

    def check_frames(
        self,
        chk: Checker,
        arr: np.ndarray,
        dims: tuple[str, ...] | None,
        geometry: dict[str, Any],
        frame_geometries: list[dict[str, Any]],
    ) -> np.ndarray:
        f = "/measurements"
        mask = geometry["mask"]
        full = (dims is None and arr.ndim == 3) or (dims is not None and set(dims) == set(_GRID_SEQUENCE))
        if mask.ndim == 2:
            canonical = _GRID_SEQUENCE if full else (FRAME, *self.measurement_dims)
            arr = chk.axes(f, arr, dims, canonical)
            return np.stack([
                self.check_measurements(FrameChecker(chk, i), arr[i], canonical[1:], g)
                for i, g in enumerate(frame_geometries)
            ])  # fmt: skip
        if not full:
            found = f"dims {list(dims)}" if dims is not None else f"{arr.ndim} axes (shape {arr.shape})"
            expected = f"the full k-space grid per frame, dims {list(_GRID_SEQUENCE)} (one mask per frame)"
            raise chk.fail(f, found, expected)
        arr = chk.axes(f, arr, dims, _GRID_SEQUENCE)
        chk.shape(f, arr, mask.shape, "(F, H, W) of the per-frame /geometry/mask")
        return np.where(mask, arr, 0).astype(arr.dtype)  # values outside a frame's mask are not measurements

    def frame_values(self, values: np.ndarray, geometry: dict[str, Any]) -> np.ndarray:
        return values[geometry["mask"]] if values.ndim == 2 else values

    def stack_frames(self, values: list[np.ndarray], geometry: dict[str, Any]) -> tuple[np.ndarray, tuple[str, ...]]:
        mask = geometry["mask"]
        if mask.ndim == 2:
            return super().stack_frames(values, geometry)
        out = np.zeros(mask.shape, dtype=np.result_type(*[np.asarray(v).dtype for v in values]))
        for i, v in enumerate(values):
            out[i][mask[i]] = np.asarray(v)
        return out, _GRID_SEQUENCE

    def sequence_coords(self, geometry: dict[str, Any], measurements: np.ndarray) -> tuple[dict, dict]:
        mask = geometry["mask"]
        if mask.ndim == 2:
            return self.coords(geometry, measurements[0])
        _, h, w = mask.shape
        coords = {
            "ky": ("ky", np.arange(h), {"units": "grid index", "note": f"DC at ky = {h // 2}"}),
            "kx": ("kx", np.arange(w), {"units": "grid index", "note": f"DC at kx = {w // 2}"}),
        }
        return coords, {"mask": (_GRID_SEQUENCE, mask)}

    def sequence_from_dataset(
        self, ds: xr.Dataset, geometry: dict[str, Any], chk: Checker
    ) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
        y = ds["measurements"]
        dims = self.sequence_dims(geometry)
        if set(y.dims) != set(dims):
            raise chk.fail("measurements", f"dims {y.dims}", f"dims {dims}")
        if geometry["mask"].ndim == 3:
            return y.transpose(*dims).values, None, dims
        flat = self._positions(ds, lambda n: ds[n].values, chk)
        return y.transpose(*dims).values[:, np.argsort(flat)], None, dims

    def sequence_geometry(
        self, size: int, *, frames: int, seed: int = 0, per_frame: bool = False, **params: Any
    ) -> dict[str, Any]:
        """``per_frame``: one mask per frame ``(F, H, W)``, each of the same kind and acceleration, seeded
        ``mask_seed·1000 + f`` (``mask_seed`` defaults to ``seed``); a given ``mask`` is used as is."""
        if not per_frame or "mask" in params:
            return self.default_geometry(size, seed=seed, **params)
        base = seed if params.get("mask_seed") is None else params["mask_seed"]
        masks = [
            self.default_geometry(size, seed=seed, **{**params, "mask_seed": base * 1000 + f})["mask"]
            for f in range(frames)
        ]
        return {"mask": np.stack(masks)}

    def describe(self, ds: xr.Dataset) -> list[str]:
        mask = ds["mask"].values
        frac = float(mask.mean())
        if mask.ndim == 3:
            k = mask.reshape(mask.shape[0], -1).sum(axis=1)
            count = str(k.min()) if k.min() == k.max() else f"{k.min()}–{k.max()}"
            return [f"  mask          one per frame: {mask.shape[0]} × {mask.shape[1]}×{mask.shape[2]}, "
                    f"{count} samples per frame, {frac:.1%} sampled ({1 / frac:.2f}×)"]
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
