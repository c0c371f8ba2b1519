"""Spatio-temporal TV: the classical baseline for a frame sequence (operators.sequence_tv)."""

import inspect
import math

import pytest
import torch

import operators as ops
from operators.arrays import stepped_frequencies, uniform_mimo_array

ADJOINT_TOL = {torch.complex64: 1e-5, torch.complex128: 1e-12}
N, F, SIGMA, ITERS = 20, 4, 0.02, 60


def _psnr(x: torch.Tensor, truth: torch.Tensor) -> float:
    mse = float(((x - truth).abs() ** 2).mean())
    return 10 * math.log10(float(truth.abs().max()) ** 2 / mse)


def _mean_psnr(xs: torch.Tensor, truth: torch.Tensor) -> float:
    return sum(_psnr(x, t) for x, t in zip(xs, truth, strict=True)) / len(truth)


def _moving_scene(n: int = N, frames: int = F, dtype: torch.dtype = torch.complex64) -> torch.Tensor:
    """A complex ellipse with a rectangle drifting one pixel per frame: ``(frames, n, n)``."""
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    out = torch.zeros(frames, n, n, dtype=dtype)
    for f in range(frames):
        out[f][((xx - n / 2) / (0.4 * n)) ** 2 + ((yy - n / 2) / (0.35 * n)) ** 2 < 1] = 0.6 * complex(
            math.cos(0.4), math.sin(0.4)
        )
        c = n // 4 + 2 + f
        out[f][(abs(xx - c) <= n // 8) & (abs(yy - n // 2) <= n // 6)] = complex(math.cos(-1.1), math.sin(-1.1))
    return out


def _noisy(op: ops.LinearOperator, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    real = op.real_dtype
    noise = torch.complex(
        torch.randn(op.out_shape, generator=g, dtype=real), torch.randn(op.out_shape, generator=g, dtype=real)
    )
    return op.forward(x) + SIGMA * noise


def _fourier_sequence(dtype: torch.dtype = torch.complex64):
    """Partial Fourier, 4×, a different seeded variable-density mask per frame."""
    truth = _moving_scene(dtype=dtype)
    frames = [ops.PartialFourier(ops.variable_density_mask((N, N), 4, seed=10 + f), dtype=dtype) for f in range(F)]
    g = torch.Generator().manual_seed(1)
    return frames, [_noisy(op, truth[f], g) for f, op in enumerate(frames)], truth


def _radar_sequence():
    """A tiny MIMO radar with a different seeded 30 % of its entries missing per frame (``op.restrict``)."""
    tx, rx = uniform_mimo_array(2, 4, 299_792_458.0 / 81e9 / 2)
    x = torch.linspace(-0.1, 0.1, 16).double().numpy()
    z = torch.linspace(0.9, 1.1, 16).double().numpy()
    radar = ops.MIMORadar(tx, rx, stepped_frequencies(77e9, 4e9, 16), x, z)
    g = torch.Generator().manual_seed(3)
    frames = [radar.restrict(torch.rand(radar.out_shape, generator=g) > 0.3) for _ in range(F)]
    truth = torch.zeros(F, 16, 16, dtype=radar.dtype)
    for f in range(F):
        truth[f, 4:9, 5 + f // 2 : 10 + f // 2] = 1.0
    return frames, [_noisy(op, truth[f], g) for f, op in enumerate(frames)], truth


@pytest.mark.parametrize("w", [0.0, 0.7, 2.0])
def test_gradient_divergence_are_negative_adjoints(cdtype, w):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 7, 9, dtype=cdtype, generator=g)
    q = torch.randn(2, 5, 3, 7, 9, dtype=cdtype, generator=g)
    grad = ops.gradient3d(x, w)
    lhs = torch.vdot(grad.reshape(-1), q.reshape(-1))
    rhs = -torch.vdot(x.reshape(-1), ops.divergence3d(q, w).reshape(-1))
    scale = float(torch.linalg.vector_norm(x) * torch.linalg.vector_norm(q))
    assert float(abs(lhs - rhs)) / scale < ADJOINT_TOL[cdtype]
    assert torch.equal(grad[..., :2, :, :], ops.gradient2d(x))  # the spatial part is the 2-D TV's
    assert torch.equal(grad[..., -1, 2, :, :], torch.zeros_like(x[..., 0, :, :]))  # Neumann in time
    torch.testing.assert_close(grad[..., 0, 2, :, :], w * (x[..., 1, :, :] - x[..., 0, :, :]))


@pytest.mark.parametrize("case", ["fourier", "radar"])
def test_zero_temporal_weight_is_per_frame_tv(case):
    frames, ys, _ = _fourier_sequence() if case == "fourier" else _radar_sequence()
    if case == "fourier":  # frames of different operator norms are normalised each on its own when w = 0
        frames[1] = frames[1] * 3.0
        ys[1] = ys[1] * 3.0
    lam = 0.3 * max(float(op.adjoint(y).abs().max()) for op, y in zip(frames, ys, strict=True))
    seq = ops.tv_sequence(frames, ys, lam, temporal_weight=0.0, iters=25)
    assert seq.shape == (F, *frames[0].in_shape) and seq.dtype == frames[0].dtype
    for f, (op, y) in enumerate(zip(frames, ys, strict=True)):
        one = ops.tv_reconstruct(op, y, lam, iters=25)
        torch.testing.assert_close(seq[f], one, rtol=1e-6, atol=1e-6 * float(one.abs().max()))


def test_tv_sequence_runs_in_complex128_and_from_x0():
    frames, ys, truth = _fourier_sequence(torch.complex128)
    x = ops.tv_sequence(frames, ys, 0.01, temporal_weight=1.0, iters=2)
    assert x.dtype == torch.complex128 and x.shape == truth.shape
    started = ops.tv_sequence(frames, ys, 0.01, temporal_weight=1.0, iters=2, x0=truth)  # x0 is the start
    assert _mean_psnr(started, truth) > _mean_psnr(x, truth) + 10


def test_discrepancy_target_is_met_on_the_whole_sequence():
    frames, ys, _ = _fourier_sequence()
    ch = ops.tv_sequence_discrepancy(frames, ys, SIGMA, temporal_weight=1.0, iters=ITERS)
    m_total = sum(op.size_out for op in frames)
    misfit = sum(0.5 * float(torch.linalg.vector_norm(op.forward(ch.image[f]) - y) ** 2)
                 for f, (op, y) in enumerate(zip(frames, ys, strict=True)))  # fmt: skip
    assert isinstance(ch, ops.DiscrepancyChoice) and ch.temporal_weight == 1.0 and ch.heldout_misfit == {}
    assert ch.target == pytest.approx(m_total * SIGMA**2)
    assert ch.reached and misfit == pytest.approx(ch.misfit, rel=1e-4) and misfit <= ch.target
    assert misfit >= 0.8 * ch.target  # the largest such λ: not a much smaller one that overfits
    assert ch.parameter > 0 and ch.image.shape == (F, N, N)


def test_spatio_temporal_tv_beats_per_frame_tv():
    frames, ys, truth = _fourier_sequence()
    per_frame = torch.stack(
        [ops.tv_discrepancy(op, y, SIGMA, iters=ITERS).image for op, y in zip(frames, ys, strict=True)]
    )
    base = _mean_psnr(per_frame, truth)
    fixed = ops.tv_sequence_discrepancy(frames, ys, SIGMA, temporal_weight=1.0, iters=ITERS)
    auto = ops.tv_sequence_discrepancy(frames, ys, SIGMA, iters=ITERS)
    assert _mean_psnr(fixed.image, truth) >= base + 3.0, (base, _mean_psnr(fixed.image, truth))
    assert _mean_psnr(auto.image, truth) >= base + 3.0, (base, _mean_psnr(auto.image, truth))
    assert auto.temporal_weight > 0 and set(auto.heldout_misfit) == {0.0, 0.5, 1.0, 2.0}
    assert auto.reached and auto.misfit <= auto.target


def test_auto_weight_needs_no_truth_and_is_deterministic():
    params = inspect.signature(ops.tv_sequence_discrepancy).parameters
    assert list(params) == ["ops", "ys", "sigma", "tau", "temporal_weight", "iters", "seed"]
    frames, ys, _ = _fourier_sequence()
    a = ops.tv_sequence_discrepancy(frames, ys, SIGMA, iters=20, seed=5)
    b = ops.tv_sequence_discrepancy(frames, ys, SIGMA, iters=20, seed=5)
    c = ops.tv_sequence_discrepancy(frames, ys, SIGMA, iters=20, seed=6)
    assert a.temporal_weight == b.temporal_weight and a.heldout_misfit == b.heldout_misfit
    assert torch.equal(a.image, b.image) and a.parameter == b.parameter
    assert a.temporal_weight == min(a.heldout_misfit, key=a.heldout_misfit.get)
    assert c.heldout_misfit != a.heldout_misfit  # the seed draws the held-out measurements
    # the choice is rerun on all data: same as asking for that weight directly
    direct = ops.tv_sequence_discrepancy(frames, ys, SIGMA, temporal_weight=a.temporal_weight, iters=20)
    assert torch.equal(direct.image, a.image) and direct.parameter == a.parameter
    assert a.evaluations > direct.evaluations


def test_bad_inputs_name_the_argument():
    frames, ys, _ = _fourier_sequence()
    other = ops.PartialFourier(ops.variable_density_mask((N, N + 2), 4, seed=0))
    with pytest.raises(ValueError, match=r"ys must hold one measurement per frame \(4 ops\), got 3"):
        ops.tv_sequence(frames, ys[:3], 0.01)
    with pytest.raises(ValueError, match=r"ops\[2\]\.in_shape"):
        ops.tv_sequence([*frames[:2], other, frames[3]], ys, 0.01)
    with pytest.raises(ValueError, match=r"ys\[1\] must have shape ops\[1\]\.out_shape"):
        ops.tv_sequence(frames, [ys[0], ys[1][:-1], *ys[2:]], 0.01)
    with pytest.raises(ValueError, match="ops must hold at least one frame"):
        ops.tv_sequence([], [], 0.01)
    with pytest.raises(TypeError, match="ops must be a list"):
        ops.tv_sequence(frames[0], ys, 0.01)
    with pytest.raises(TypeError, match=r"ys\[0\] must be a torch.Tensor"):
        ops.tv_sequence(frames, [y.numpy() for y in ys], 0.01)
    with pytest.raises(ValueError, match=r"ops\[1\] is torch.complex128"):
        ops.tv_sequence([frames[0], frames[1].to(dtype=torch.complex128), *frames[2:]], ys, 0.01)
    with pytest.raises(ValueError, match="lam must be"):
        ops.tv_sequence(frames, ys, -1.0)
    with pytest.raises(ValueError, match="temporal_weight must be a finite number ≥ 0"):
        ops.tv_sequence(frames, ys, 0.01, temporal_weight=-0.5)
    with pytest.raises(ValueError, match="temporal_weight='auto' needs σ"):
        ops.tv_sequence(frames, ys, 0.01, temporal_weight="auto")
    with pytest.raises(ValueError, match="x0 must be a tensor of shape"):
        ops.tv_sequence(frames, ys, 0.01, x0=torch.zeros(N, N, dtype=torch.complex64))
    with pytest.raises(ValueError, match="iters must be"):
        ops.tv_sequence(frames, ys, 0.01, iters=0)
    with pytest.raises(ValueError, match="sigma"):
        ops.tv_sequence_discrepancy(frames, ys, 0.0)
    with pytest.raises(ValueError, match="tau"):
        ops.tv_sequence_discrepancy(frames, ys, SIGMA, tau=-1.0)
    with pytest.raises(ValueError, match="temporal_weight must be ≥ 0 or 'auto'"):
        ops.tv_sequence_discrepancy(frames, ys, SIGMA, temporal_weight="best")
    with pytest.raises(TypeError, match="temporal_weight must be a number"):
        ops.tv_sequence_discrepancy(frames, ys, SIGMA, temporal_weight=None)
    with pytest.raises(TypeError, match="seed must be an int"):
        ops.tv_sequence_discrepancy(frames, ys, SIGMA, seed=1.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_the_operators_device():
    frames, ys, _ = _fourier_sequence()
    cpu = ops.tv_sequence(frames, ys, 0.01, iters=10)
    gpu = ops.tv_sequence([op.to("cuda") for op in frames], [y.cuda() for y in ys], 0.01, iters=10)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5)
