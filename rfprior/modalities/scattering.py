"""Full-wave 2-D TM inverse scattering (microwave imaging): :class:`FullWave`.

The same file fields as a 2-D MIMO file calibrated for line sources (the Institut Fresnel
importer writes them): ``tx (N_T, 2)``, ``rx (N_R, 2)`` (m), ``frequencies`` (Hz), the square
image grid ``x``, ``z`` (m, one common pitch), measurements ``(tx, rx, freq)`` scaled as
:class:`operators.LippmannSchwinger` documents (its Born limit is
:class:`operators.MIMORadar` with ``spreading="hankel"``), so a ``mimo`` file with
``spreading = "hankel"`` can be read with either physics (``--physics born|full-wave``).
The image is the contrast ``χ = ε_r − 1`` (loss: ``Im χ < 0``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np
import torch
import xarray as xr

from operators import LinearOperator, LippmannSchwinger, backproject, linear_part
from operators.arrays import image_grid
from operators.mimo import SPEED_OF_LIGHT

from ..files.checks import Checker
from ..noise import sigma_radiation_complement
from ..phantoms import scattering_scene
from .base import ModalityDefaults
from .base import format_si as si
from .mimo import MIMO

__all__ = ["FullWave"]


class FullWave(MIMO):
    """Full-wave scattering: :class:`operators.LippmannSchwinger`, image ``(z, x)`` = the contrast χ.

    Defaults (chosen on the simulated tuning families and the Institut Fresnel file, docs/notes.md):
    the 32-channel DIP, passive contrast (``Re χ ≥ 0``, ``Im χ ≤ 0``), frequency hopping, TV on the
    last band with its weight scaled on the previous band's image (issue 33); σ from the radiation
    complement; the Born backprojection as the direct image.
    """

    name = "fullwave"
    label = "full-wave scattering"
    operator_type = LippmannSchwinger
    fields = MappingProxyType({"tx": "m", "rx": "m", "frequencies": "Hz", "x": "m", "z": "m"})
    # DIP + TV, λ = 0.003 · ½‖y‖² / TV(the previous hopping band's image) (rfprior.penalty.reference_weight;
    # chosen on the tuning families disk and ellipse at 20 and 30 dB, docs/notes.md)
    defaults = ModalityDefaults(
        prior="dip_small", penalty="tv", penalty_factor=0.003, iterations=400, lr=0.01, constraint=("lossy",),
        refine_iterations=1000, calibrate=True,
    )  # fmt: skip
    direct_image_name = "born_backprojection"
    geometry_parameters = MappingProxyType(
        {"n_tx": 36, "n_rx": 72, "frequencies": (1e9, 2e9, 3e9, 4e9), "extent": 0.1, "tx_radius": 0.72,
         "rx_radius": 0.76}
    )  # fmt: skip
    scene_kinds = ("disk", "ellipse", "disks", "nested", "square")

    def check_geometry(self, chk: Checker, geometry: dict[str, Any]) -> dict[str, Any]:
        g = super().check_geometry(chk, {**geometry, "spreading": geometry.get("spreading", "hankel")})
        if g["spreading"] != "hankel":
            raise chk.fail(
                "/geometry/spreading", repr(g["spreading"]),
                "'hankel' (2-D line sources calibrated to G = -(j/4) H0(2)(kd)) for full-wave physics",
            )  # fmt: skip
        steps = np.concatenate([np.diff(g["x"]), np.diff(g["z"])])
        if steps.size < 2 or not (steps[0] > 0 and np.allclose(steps, steps[0], rtol=1e-6)):
            expect = "increasing grids with one common pitch (square pixels) for the volume integral"
            raise chk.fail("/geometry/x, /geometry/z", "unequal or decreasing pitches", expect)
        h, x, z = steps[0], g["x"], g["z"]
        for key in ("tx", "rx"):
            p = g[key]
            on = (
                (p[:, 0] >= x[0] - h / 2)
                & (p[:, 0] <= x[-1] + h / 2)
                & (p[:, 1] >= z[0] - h / 2)
                & (p[:, 1] <= z[-1] + h / 2)
            )
            if on.any():
                raise chk.fail(f"/geometry/{key}", f"antenna {int(np.flatnonzero(on)[0])} on the image grid",
                               "antennas outside the image grid")  # fmt: skip
        return g

    def describe(self, ds: xr.Dataset) -> list[str]:
        f = ds["freq"].values
        h = float(ds.x[1] - ds.x[0]) if ds.sizes["x"] > 1 else float("nan")
        lam = SPEED_OF_LIGHT / f[-1]
        return [
            f"  array         {ds.sizes['tx']} line sources × {ds.sizes['rx']} receivers",
            f"  frequencies   {', '.join(si(v, 'Hz') for v in f)} (fitted low to high)",
            f"  image grid    {ds.sizes['z']} × {ds.sizes['x']} square pixels of {si(h, 'm')} "
            f"({lam / h:.0f} per free-space wavelength at {si(f[-1], 'Hz')}); image = contrast χ = ε_r − 1",
        ]

    def build_operator(
        self, geometry: dict[str, Any], *, dtype: torch.dtype = torch.complex64, device: Any = None
    ) -> LippmannSchwinger:
        g = geometry
        return LippmannSchwinger(g["tx"], g["rx"], g["frequencies"], g["x"], g["z"], dtype=dtype, device=device)

    def estimate_sigma(self, op: LinearOperator, y: torch.Tensor) -> tuple[float, str]:
        return sigma_radiation_complement(op, y), "radiation_complement"

    def direct_image(self, op: LinearOperator, y: torch.Tensor) -> torch.Tensor:
        """The backprojection of the Born linearisation (a location map; its values are not χ)."""
        return backproject(linear_part(op), y, normalize=True)

    def make_geometry(self, size: int, seed: int, knobs: dict[str, Any]) -> dict[str, Any]:
        """The Institut Fresnel 2001 set-up: ``n_tx`` line sources on a 0.72 m circle, ``n_rx`` receivers
        on a 0.76 m circle, 1–4 GHz, a ``size × size`` grid over ``±extent`` (0.1 m)."""
        th_t = np.deg2rad(np.arange(knobs["n_tx"]) * 360.0 / knobs["n_tx"])
        th_r = np.deg2rad(np.arange(knobs["n_rx"]) * 360.0 / knobs["n_rx"])
        tx = knobs["tx_radius"] * np.stack((np.cos(th_t), np.sin(th_t)), axis=1)
        rx = knobs["rx_radius"] * np.stack((np.cos(th_r), np.sin(th_r)), axis=1)
        e = float(knobs["extent"])
        step = 2 * e / size
        x, z = image_grid(-e, e - step, size, -e, e - step, size)
        return {"tx": tx, "rx": rx, "frequencies": np.asarray(knobs["frequencies"], dtype=float), "x": x, "z": z,
                "spreading": "hankel"}  # fmt: skip

    def default_scene(self, geometry: dict[str, Any], seed: int = 0, kind: str | None = None) -> torch.Tensor:
        """:func:`rfprior.phantoms.scattering_scene` (real contrast; ``kind`` ``"disk"`` by default)."""
        return scattering_scene(geometry["x"], geometry["z"], kind or "disk", seed)

    def moving_scene(self, geometry: dict[str, Any], t: float, seed: int = 0, *, speed: float = 1.0) -> torch.Tensor:
        raise NotImplementedError("full-wave scattering: frame sequences are not supported")
