"""MIMO radar (2-D, near field, stepped frequency): :class:`MIMO` (docs/design.md §3).

File fields (SI units): ``tx (N_T, 2)``, ``rx (N_R, 2)`` positions (m), ``frequencies`` (Hz,
increasing), the image grid ``x`` (cross-range) and ``z`` (range) in m, optional ``spreading``.
Measurements ``(tx, rx, freq)``; unmeasured entries may be marked (NaN or ``/valid``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import h5py
import numpy as np
import torch
import xarray as xr

from operators import MIMORadar
from operators.arrays import image_grid, stepped_frequencies, uniform_mimo_array
from operators.mimo import SPEED_OF_LIGHT

from ..files.checks import Checker
from ..noise import sigma_range_bins
from ..phantoms import mimo_scene, moving_radar_scene
from .base import Modality, ModalityDefaults, NoiseEstimator
from .base import format_si as si

__all__ = ["MIMO", "SPREADING"]

#: the accepted ``/geometry/spreading`` names
SPREADING = ("none", "spherical", "cylindrical", "hankel")



def _spreading(chk: Checker, value: Any) -> str:
    """``/geometry/spreading``: a boolean (false = none, true = spherical) or one of :data:`SPREADING`."""
    field = "/geometry/spreading"
    if isinstance(value, str):
        name = value
    else:
        arr = np.asarray(value.decode() if isinstance(value, bytes) else value)
        if arr.dtype.kind in "SUO" and arr.size == 1:
            item = arr.reshape(-1)[0]
            name = item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
        else:
            return "spherical" if chk.flag(field, value) else "none"
    if name.strip().lower() not in SPREADING:
        raise chk.fail(field, repr(name), f"a boolean or one of {', '.join(SPREADING)}")
    return name.strip().lower()


class MIMO(Modality):
    """MIMO radar: :class:`operators.MIMORadar` on a stepped-frequency array, image ``(z, x)``.

    Defaults: the 32-channel DIP (``dip_small``) + TV at twice the TV-discrepancy λ, 800
    iterations at step 0.02 (chosen by measurement, docs/notes.md: 1200 until issue 35, the
    running average's PSNR at 800 within 0.2 dB of it on held-out scenes); the range-bin σ estimator;
    matched-filter backprojection; ℓ1 in pixels (point scatterers).
    """

    name = "mimo"
    label = "MIMO radar"
    operator_type = MIMORadar
    measurement_dims = ("tx", "rx", "freq")
    image_dims = ("z", "x")
    fields = MappingProxyType(
        {"tx": "m", "rx": "m", "frequencies": "Hz", "x": "m", "z": "m", "spreading": "1"}
    )
    image_size_fields = "/geometry/x, /geometry/z"
    missing_ok = True
    # the weight's TV search with 30 PDHG steps per λ finds the λ of 100 within 5 % at a third of the
    # cost (benchmarks/results/penalty_weight.md); on tomography 30 steps are not enough (λ off by 3×)
    defaults = ModalityDefaults(
        prior="dip_small", penalty="tv", penalty_factor=2.0, iterations=800, lr=0.02, penalty_search_iters=30
    )
    l1_basis = "pixels"
    geometry_parameters = MappingProxyType(
        {
            "n_tx": 8,
            "n_rx": 8,
            "n_freq": 64,
            "f0": 77e9,
            "bandwidth": 4e9,
            "spacing": None,  # receiver spacing d; default λ/2 at the highest frequency
            "x_range": (-0.4, 0.4),
            "z_range": (0.6, 1.4),
        }
    )
    scene_kinds = ("mixed", "points", "extended")
    #: a 2-D file calibrated for line sources (``spreading = "hankel"``) reads as full-wave scattering too
    physics = MappingProxyType({"born": "mimo", "full-wave": "fullwave"})

    def check_geometry(self, chk: Checker, geometry: dict[str, Any]) -> dict[str, Any]:
        g = geometry

        def need(key: str, what: str) -> Any:
            return chk.require(g, key, f"/geometry/{key}", what)

        return {
            "tx": chk.points("/geometry/tx", need("tx", "(N_T, 2) array"), "transmitter positions", "N_T"),
            "rx": chk.points("/geometry/rx", need("rx", "(N_R, 2) array"), "receiver positions", "N_R"),
            "frequencies": chk.vector(
                "/geometry/frequencies",
                need("frequencies", "frequencies in Hz"),
                "frequencies in Hz",
                positive=True,
                increasing=True,
            ),
            "x": chk.vector(
                "/geometry/x", need("x", "cross-range grid in metres"), "cross-range grid in m", monotonic=True
            ),
            "z": chk.vector("/geometry/z", need("z", "range grid in metres"), "range grid in m", monotonic=True),
            "spreading": _spreading(chk, g.get("spreading", False)),
        }

    def check_measurements(
        self, chk: Checker, arr: np.ndarray, dims: tuple[str, ...] | None, geometry: dict[str, Any]
    ) -> np.ndarray:
        arr = chk.axes("/measurements", arr, dims, self.measurement_dims)
        g = geometry
        chk.shape("/measurements", arr, (len(g["tx"]), len(g["rx"]), len(g["frequencies"])), "(N_T, N_R, N_f)")
        return arr

    def image_shape(self, geometry: dict[str, Any]) -> tuple[int, int]:
        return len(geometry["z"]), len(geometry["x"])

    def encode_field(self, key: str, value: Any) -> np.ndarray:
        if key == "spreading":
            if value in ("none", "spherical"):
                return np.asarray(value == "spherical")  # the boolean older readers understand
            return np.asarray(value, dtype=h5py.string_dtype())
        return super().encode_field(key, value)

    def coords(self, geometry: dict[str, Any], measurements: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
        g = geometry
        coords = {
            "freq": ("freq", g["frequencies"], {"units": "Hz"}),
            "tx_x": ("tx", g["tx"][:, 0], {"units": "m"}),
            "tx_z": ("tx", g["tx"][:, 1], {"units": "m"}),
            "rx_x": ("rx", g["rx"][:, 0], {"units": "m"}),
            "rx_z": ("rx", g["rx"][:, 1], {"units": "m"}),
            "x": ("x", g["x"], {"units": "m", "long_name": "cross-range"}),
            "z": ("z", g["z"], {"units": "m", "long_name": "range"}),
        }
        return coords, {"spreading": ((), g["spreading"])}

    def geometry_from_dataset(self, ds: xr.Dataset, var: Any) -> dict[str, Any]:
        return {
            "tx": np.stack((var("tx_x"), var("tx_z")), axis=1),
            "rx": np.stack((var("rx_x"), var("rx_z")), axis=1),
            "frequencies": var("freq"),
            "x": var("x"),
            "z": var("z"),
            "spreading": var("spreading") if "spreading" in ds.variables else False,
        }

    def describe(self, ds: xr.Dataset) -> list[str]:
        f = ds["freq"].values
        step = float(np.median(np.diff(f))) if f.size > 1 else 0.0
        band = f[-1] - f[0] + step
        lines = [
            f"  array         {ds.sizes['tx']} TX × {ds.sizes['rx']} RX",
            f"  frequencies   {si(f[0], 'Hz')} – {si(f[-1], 'Hz')}, {f.size} steps, B = {si(band, 'Hz')}"
            + (f", range resolution c/2B = {si(SPEED_OF_LIGHT / (2 * band), 'm')}" if band > 0 else ""),
            f"  image grid    x {si(float(ds.x[0]), 'm')} … {si(float(ds.x[-1]), 'm')} ({ds.sizes['x']}), "
            f"z {si(float(ds.z[0]), 'm')} … {si(float(ds.z[-1]), 'm')} ({ds.sizes['z']})",
        ]
        if "spreading" in ds.variables:
            lines.append(f"  spreading     {ds['spreading'].values.item()}")
        return lines

    def build_operator(
        self, geometry: dict[str, Any], *, dtype: torch.dtype = torch.complex64, device: Any = None
    ) -> MIMORadar:
        g = geometry
        return MIMORadar(
            g["tx"], g["rx"], g["frequencies"], g["x"], g["z"],
            spreading=g.get("spreading", False), dtype=dtype, device=device,
        )  # fmt: skip

    def noise_estimators(self, restricted: bool) -> list[NoiseEstimator]:
        return [("radar_range_bins", sigma_range_bins)]

    def make_geometry(self, size: int, seed: int, knobs: dict[str, Any]) -> dict[str, Any]:
        """77–81 GHz stepped frequency (``n_freq = 64``, ``B = 4 GHz``: range resolution ``c/2B = 3.75 cm``,
        unambiguous range 2.4 m), a uniform 8 TX × 8 RX linear array at ``z = 0`` with receiver
        spacing ``λ/2`` at 81 GHz (64 phase centres, pitch λ/4: no grating lobes; cross-range −3 dB
        width ≈ 2.8 cm at 1 m), image ``x ∈ [−0.4, 0.4]`` m × ``z ∈ [0.6, 1.4]`` m (1.27 cm pixels at
        ``size = 64``: 2–3 pixels per resolution cell)."""
        f = stepped_frequencies(knobs["f0"], knobs["bandwidth"], knobs["n_freq"])
        d = knobs["spacing"] or SPEED_OF_LIGHT / f[-1] / 2
        tx, rx = uniform_mimo_array(knobs["n_tx"], knobs["n_rx"], d)
        x, z = image_grid(*knobs["x_range"], size, *knobs["z_range"], size)
        return {"tx": tx, "rx": rx, "frequencies": f, "x": x, "z": z, "spreading": False}

    def default_scene(self, geometry: dict[str, Any], seed: int = 0, kind: str | None = None) -> torch.Tensor:
        """:func:`rfprior.phantoms.mimo_scene` (``kind`` ``"mixed"`` by default)."""
        return mimo_scene(geometry["x"], geometry["z"], kind or "mixed", seed, dtype=torch.complex128)

    def moving_scene(self, geometry: dict[str, Any], t: float, seed: int = 0, *, speed: float = 1.0) -> torch.Tensor:
        """:func:`rfprior.phantoms.moving_radar_scene` on the grid ``geometry["x"]``, ``geometry["z"]``."""
        return moving_radar_scene(len(geometry["z"]), len(geometry["x"]), t, seed, speed=speed)
