"""Classical baselines: backprojection, CGLS, total variation."""

import math

import pytest
import torch

import operators as ops


def _psnr(x: torch.Tensor, truth: torch.Tensor) -> float:
    mse = float(((x.abs() - truth.abs()) ** 2).mean())
    return 10 * math.log10(float(truth.abs().max()) ** 2 / mse)


def _piecewise_phantom(n: int = 64) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    img = torch.zeros(n, n, dtype=torch.complex64)
    img[(xx / 0.8) ** 2 + (yy / 0.9) ** 2 < 1] = 0.6 * torch.exp(torch.tensor(0.4j))
    img[(xx - 0.2) ** 2 + (yy + 0.2) ** 2 < 0.1] = 1.0 * torch.exp(torch.tensor(-1.1j))
    img[(abs(xx + 0.35) < 0.15) & (abs(yy - 0.3) < 0.25)] = 0.3 * torch.exp(torch.tensor(2.0j))
    return img


def test_cg_recovers_signal_in_range(cdtype):
    op = ops.PartialFourier(ops.variable_density_mask((32, 32), 3, seed=2), dtype=cdtype)
    w = torch.randn(op.out_shape, dtype=cdtype, generator=torch.Generator().manual_seed(0))
    x_true = op.adjoint(w)  # in the range of Aᴴ: the minimum-norm least-squares solution
    x = ops.cg_least_squares(op, op.forward(x_true), iters=50)
    assert float(torch.linalg.vector_norm(x - x_true) / torch.linalg.vector_norm(x_true)) < 1e-4


def test_cg_damping_and_batch():
    op = ops.PartialFourier(ops.cartesian_mask((16, 16), 2, seed=0), dtype=torch.complex128)
    y = torch.randn(2, *op.out_shape, dtype=torch.complex128, generator=torch.Generator().manual_seed(1))
    x = ops.cg_least_squares(op, y, damping=0.5, iters=100)
    # Tikhonov solution: (AᴴA + δ I) x = Aᴴ y, with AᴴA a projection, so x = Aᴴ y / (1 + δ)
    torch.testing.assert_close(x, op.adjoint(y) / 1.5)
    with pytest.raises(ValueError, match="damping must be"):
        ops.cg_least_squares(op, y, damping=-1)


def test_tv_beats_zero_filled_by_3db():
    truth = _piecewise_phantom(64)
    op = ops.PartialFourier(ops.variable_density_mask((64, 64), 4, seed=0))
    g = torch.Generator().manual_seed(0)
    clean = op.forward(truth)
    sigma = 0.01 * float(clean.abs().std())
    y = clean + sigma * torch.randn(op.out_shape, dtype=op.dtype, generator=g)
    zf = ops.backproject(op, y)
    tv = ops.tv_reconstruct(op, y, lam=0.005, iters=300)
    gain = _psnr(tv, truth) - _psnr(zf, truth)
    assert gain >= 3.0, f"TV gain over zero-filled only {gain:.2f} dB"


def test_gradient_divergence_are_negative_adjoints():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 9, dtype=torch.complex128, generator=g)
    p = torch.randn(2, 7, 9, dtype=torch.complex128, generator=g)
    lhs = torch.vdot(ops.gradient2d(x).reshape(-1), p.reshape(-1))
    rhs = -torch.vdot(x.reshape(-1), ops.divergence2d(p).reshape(-1))
    assert abs(lhs - rhs) < 1e-12


def test_backproject_normalised_unit_target():
    op = ops.PartialFourier(ops.variable_density_mask((32, 32), 2, seed=0), dtype=torch.complex128)
    delta = torch.zeros(op.in_shape, dtype=op.dtype)
    delta[16, 16] = 1
    bp = ops.backproject(op, op.forward(delta), normalize=True)
    assert abs(float(bp[16, 16].real) - 1) < 1e-9
    with pytest.raises(ValueError, match="does not support window"):
        ops.backproject(op, op.forward(delta), window="hamming")
    with pytest.raises(ValueError, match="expected trailing shape"):
        ops.backproject(op, torch.zeros(3, dtype=op.dtype))
