"""A new forward model is one module plus one registration: a toy one, defined here, runs end to end.

Everything rfprior needs to know about the toy blur below is in this file: its operator, its
:class:`~rfprior.modalities.Modality` (file schema, xarray layout, simulation, defaults) and the one
``rfprior.modalities.register`` line. It then goes through ``save_measurements → load → reconstruct →
save_result`` and the ``rfprior reconstruct / compare / inspect / simulate`` commands.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import pytest
import torch

import rfprior
from operators import LinearOperator
from operators.testing import check_adjoint
from rfprior import io
from rfprior.cli import main
from rfprior.modalities import Modality, ModalityDefaults
from rfprior.phantoms import complex_phantom


class ToyBlur(LinearOperator):
    """Circular Gaussian blur of width ``width`` pixels: ``y = F⁻¹(G ⊙ F x)`` (a self-adjoint convolution)."""

    def __init__(self, shape: tuple[int, int], width: float, *, dtype=torch.complex64, device=None) -> None:
        super().__init__(shape, shape, ("v", "u"), dtype=dtype, device=device)
        self.width = float(width)
        fy = torch.fft.fftfreq(shape[0], dtype=torch.float64)[:, None]
        fx = torch.fft.fftfreq(shape[1], dtype=torch.float64)[None, :]
        gain = torch.exp(-2 * math.pi**2 * self.width**2 * (fx**2 + fy**2))
        self.gain = gain.to(device=self.device, dtype=dtype)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(self.gain * torch.fft.fft2(x))

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(self.gain.conj() * torch.fft.fft2(y))


class ToyBlurModality(Modality):
    """The toy blur's home: file fields ``width`` (pixels) and ``shape``, measurements ``(v, u)``."""

    name = "toy_blur"
    operator_type = ToyBlur
    measurement_dims = ("v", "u")
    image_dims = ("y", "x")
    fields = MappingProxyType({"width": "pixels", "shape": "pixels"})
    image_size_fields = "/geometry/shape"
    defaults = ModalityDefaults(prior="deep_decoder", penalty="tv", penalty_factor=0.25, iterations=40)
    geometry_parameters = MappingProxyType({"width": 1.5})
    scene_kinds = ("shepp_logan",)

    def check_geometry(self, chk: Any, geometry: dict[str, Any]) -> dict[str, Any]:
        width = chk.require(geometry, "width", "/geometry/width", "blur width in pixels")
        shape = chk.require(geometry, "shape", "/geometry/shape", "image shape (H, W)")
        return {
            "width": chk.scalar("/geometry/width", width, "blur width in pixels", positive=True),
            "shape": chk.shape2("/geometry/shape", shape),
        }

    def measurement_shape(self, geometry: dict[str, Any]) -> tuple[int, ...]:
        return tuple(geometry["shape"])

    def image_shape(self, geometry: dict[str, Any]) -> tuple[int, int]:
        return tuple(geometry["shape"])

    def coords(self, geometry: dict[str, Any], measurements: Any) -> tuple[dict, dict]:
        return {}, {"width": ((), geometry["width"], {"units": "pixels"})}

    def geometry_from_dataset(self, ds: Any, var: Any) -> dict[str, Any]:
        return {"width": float(var("width")), "shape": (ds.sizes["v"], ds.sizes["u"])}

    def describe(self, ds: Any) -> list[str]:
        return [f"  blur          Gaussian, width {float(ds['width']):.3g} pixels"]

    def build_operator(self, geometry: dict[str, Any], *, dtype=torch.complex64, device=None) -> ToyBlur:
        return ToyBlur(tuple(geometry["shape"]), geometry["width"], dtype=dtype, device=device)

    def make_geometry(self, size: int, seed: int, knobs: dict[str, Any]) -> dict[str, Any]:
        return {"width": float(knobs["width"]), "shape": (size, size)}

    def default_scene(self, geometry: dict[str, Any], seed: int = 0, kind: str | None = None) -> torch.Tensor:
        return complex_phantom(tuple(geometry["shape"]), seed, kind=kind or "shepp_logan", dtype=torch.complex128)


@pytest.fixture
def toy():
    modality = rfprior.modalities.register(ToyBlurModality())  # the one registration line
    yield modality
    rfprior.modalities.unregister("toy_blur")


def test_toy_operator_is_adjoint_and_found_by_type(toy) -> None:
    op = ToyBlur((16, 16), 1.5)
    assert check_adjoint(op) < 1e-5
    assert rfprior.modalities.find(op) is toy and rfprior.modalities.find(op.restrict(torch.arange(5))) is toy
    assert rfprior.default_prior(op) == "deep_decoder" and rfprior.defaults.default_iterations(op) == 40


def test_toy_forward_model_runs_through_files_api_and_cli(toy, tmp_path, capsys) -> None:
    # simulate (the modality's geometry and scene) and save_measurements
    ds = rfprior.scenes.simulate("toy_blur", size=16, snr_db=25, seed=0)
    f = io.save_measurements(
        tmp_path / "toy.h5", "toy_blur", ds["measurements"].values, {"width": 1.5, "shape": (16, 16)},
        truth=ds["truth"].values, noise_sigma=ds.attrs["noise_sigma"],
    )  # fmt: skip
    # load → operator → reconstruct → save_result → load_result
    loaded = io.load(f)
    assert loaded.attrs["modality"] == "toy_blur" and loaded["measurements"].dims == ("v", "u")
    op, y = io.operator_from(loaded)
    assert isinstance(op, ToyBlur) and op.width == 1.5
    truth = torch.as_tensor(loaded["truth"].values)
    res = rfprior.reconstruct(y, op, progress=False, truth=truth)
    problem = rfprior.Problem.from_file(f)
    name, direct = problem.direct_image()
    assert name == "backprojection" and problem.sigma.source == "mad_second_differences"
    # the fit explains the data better than the direct image and is closer to the truth
    assert problem.misfit(res.image) < problem.misfit(direct)
    assert rfprior.psnr(res.image, truth) > rfprior.psnr(direct, truth)
    out = io.save_result(tmp_path / "api.nc", res, backprojection=direct, source=loaded)
    back = io.load_result(out)
    assert back.attrs["modality"] == "toy_blur" and back["image"].dims == ("y", "x")
    # the command line: reconstruct, compare, inspect, simulate
    assert main(["-q", "reconstruct", str(f), "-o", str(tmp_path / "cli.nc"), "--iterations", "10"]) == 0
    assert io.load_result(tmp_path / "cli.nc").attrs["settings"]["iterations"] == 10
    assert main(["-q", "compare", str(f), "--iterations", "10"]) == 0
    table = capsys.readouterr().out
    assert "backprojection" in table and "TV (discrepancy" in table and "deep_decoder + TV" in table
    assert main(["inspect", str(f)]) == 0
    summary = capsys.readouterr().out
    assert "modality toy_blur" in summary and "width 1.5 pixels" in summary
    assert main(["-q", "simulate", "toy_blur", "-o", str(tmp_path / "sim.h5"), "--size", "12"]) == 0
    assert io.load(tmp_path / "sim.h5")["measurements"].shape == (12, 12)


def test_toy_file_errors_name_the_field(toy, tmp_path) -> None:
    with pytest.raises(io.FormatError, match="/geometry/width"):
        zeros = torch.zeros(8, 8, dtype=torch.complex64)
        io.save_measurements(tmp_path / "bad.h5", "toy_blur", zeros, {"shape": (8, 8)})
    with pytest.raises(io.FormatError, match=r"/measurements.*\(v, u\)"):
        io.save_measurements(
            tmp_path / "bad.h5", "toy_blur", torch.zeros(8, 7, dtype=torch.complex64), {"width": 1, "shape": (8, 8)}
        )
    assert not (tmp_path / "bad.h5").exists()
