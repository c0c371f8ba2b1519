"""The three forward models and a short reconstruction on a CUDA device (skipped without one).

Each operator built on the CPU is moved with ``.to(device="cuda")``; forward, adjoint and the
autograd gradient must agree with the CPU to float32 rounding (the NUDFT paths: to their
accuracy), the adjoint identity must hold on the device, and no tensor may leave it.
"""

import math

import numpy as np
import pytest
import torch

import operators as ops
from operators.arrays import image_grid, stepped_frequencies, uniform_mimo_array
from operators.mimo import MIMORadar
from operators.nufft import kbnufft_available
from operators.testing import check_adjoint, random_input, random_output
from operators.tomography import DiffractionTomography

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

LAM, NM = 1.0e-6, 1.333
DX = LAM / NM / 4


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.to("cpu", torch.complex128), b.to("cpu", torch.complex128)
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def _tomography(method: str) -> DiffractionTomography:
    return DiffractionTomography(np.linspace(0, 2 * math.pi, 40, endpoint=False), (48, 48), LAM, NM, DX, 4 * DX,
                                 method=method)  # fmt: skip


def _operators() -> dict[str, ops.LinearOperator]:
    tx, rx = uniform_mimo_array(4, 8, 1.9e-3)
    x, z = image_grid(-0.1, 0.1, 24, 0.5, 0.7, 20)
    mask = torch.rand(32, 32, generator=torch.Generator().manual_seed(0)) < 0.3
    out = {
        "mimo": MIMORadar(tx, rx, stepped_frequencies(77e9, 4e9, 16), x, z, spreading=True),
        "partial_fourier": ops.PartialFourier(mask),
        "tomography_dense": _tomography("dense"),
        "tomography_auto": _tomography("auto"),
    }
    if kbnufft_available():
        out["tomography_kbnufft"] = _tomography("kbnufft")
    return out


OPS = _operators()
TOL = {"tomography_kbnufft": 5e-4, "tomography_auto": 5e-4}  # NUDFT paths differ by their accuracy


@pytest.mark.parametrize("name", list(OPS))
def test_cuda_operator_matches_cpu(name):
    cpu = OPS[name]
    gpu = cpu.to(device="cuda")
    assert gpu.device.type == "cuda" and cpu.device.type == "cpu"  # .to() copies, the original stays
    if isinstance(gpu, DiffractionTomography):
        assert gpu.method != "nufft"  # finufft is CPU-only: "auto" must not round-trip through the host
    if isinstance(gpu, MIMORadar):  # the default budget follows the device: steering cached on the GPU
        assert gpu.memory_budget == 4 * 2**30 and gpu._use_cache and cpu.memory_budget == 256 * 2**20
    x, y = random_input(cpu), random_output(cpu)
    fx, ay = gpu.forward(x.cuda()), gpu.adjoint(y.cuda())
    assert fx.device.type == "cuda" and ay.device.type == "cuda"
    tol = TOL.get(name, 1e-5)
    assert _rel(fx, cpu.forward(x)) < tol and _rel(ay, cpu.adjoint(y)) < tol
    assert check_adjoint(gpu, batch=(2,)) < 1e-5


@pytest.mark.parametrize("name", list(OPS))
def test_cuda_autograd_gives_the_adjoint(name):
    gpu = OPS[name].to(device="cuda")
    scale = 1.0 / math.sqrt(float(gpu.normal_diagonal().max()))
    x = random_input(OPS[name]).cuda().requires_grad_(True)
    y = random_output(OPS[name]).cuda() / scale
    loss = 0.5 * torch.linalg.vector_norm(gpu(x) * scale - y * scale) ** 2
    loss.backward()
    expected = gpu.adjoint(gpu(x.detach()) - y) * scale**2
    assert x.grad.device.type == "cuda" and _rel(x.grad, expected) < 1e-4


@pytest.mark.parametrize("modality", ["partial_fourier", "mimo", "diffraction_tomography"])
def test_cuda_reconstruct_end_to_end(modality):
    """The default reconstruction on the device: it runs there and beats the adjoint image."""
    import rfprior
    from rfprior.metrics import psnr

    ds = rfprior.scenes.simulate(modality, size=32, snr_db=20, seed=0)
    op, y = rfprior.io.operator_from(ds, device="cuda")
    assert op.device.type == "cuda" and y.device.type == "cuda"
    truth = torch.as_tensor(ds["truth"].values)
    res = rfprior.reconstruct(y, op, device="cuda", iterations=1000, seed=0, progress=False)
    adj = op.adjoint(y) / op.normal_diagonal()
    assert psnr(res.image.cpu(), truth) > psnr(adj.cpu(), truth, align=True)  # optimally scaled adjoint
