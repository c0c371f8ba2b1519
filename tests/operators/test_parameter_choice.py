"""Fair classical baselines: TV, ℓ1 and CGLS with their parameter chosen by the discrepancy principle."""

import math

import pytest
import torch

import operators as ops
from operators.parameter_choice import search_lambda


def _psnr(x: torch.Tensor, truth: torch.Tensor) -> float:
    mse = float(((x - truth).abs() ** 2).mean())
    return 10 * math.log10(float(truth.abs().max()) ** 2 / mse)


def _misfit(op, x, y) -> float:
    return 0.5 * float(torch.linalg.vector_norm(op.forward(x) - y) ** 2)


def _pf_problem(n: int = 32, snr_sigma: float = 0.02, seed: int = 0):
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    truth = torch.zeros(n, n, dtype=torch.complex128)
    truth[(xx / 0.8) ** 2 + (yy / 0.7) ** 2 < 1] = 0.6 * complex(math.cos(0.4), math.sin(0.4))
    truth[(xx - 0.2) ** 2 + (yy + 0.2) ** 2 < 0.1] = 1.0
    op = ops.PartialFourier(ops.variable_density_mask((n, n), 3, seed=seed), dtype=torch.complex128)
    g = torch.Generator().manual_seed(seed)
    y = op.forward(truth) + snr_sigma * torch.complex(
        torch.randn(op.out_shape, generator=g, dtype=torch.float64),
        torch.randn(op.out_shape, generator=g, dtype=torch.float64),
    )
    return op, y, truth, snr_sigma


def _radar_points(seed: int = 0):
    """A small MIMO radar with a few randomly phased point targets (radar scatterers have random phase)."""
    x = torch.linspace(-0.2, 0.2, 24).double()
    z = torch.linspace(0.8, 1.2, 24).double()
    tx, rx = ops.arrays.uniform_mimo_array(4, 4, 299_792_458.0 / 81e9 / 2)
    op = ops.MIMORadar(tx, rx, ops.arrays.stepped_frequencies(77e9, 4e9, 32), x.numpy(), z.numpy())
    g = torch.Generator().manual_seed(seed)
    truth = torch.zeros(op.in_shape, dtype=op.dtype)
    for iz, ix in ((5, 6), (12, 17), (18, 9), (8, 19)):
        truth[iz, ix] = torch.polar(torch.tensor(1.0), 2 * math.pi * torch.rand(1, generator=g)[0])
    clean = op.forward(truth)
    sigma = 0.05 * float(clean.abs().pow(2).mean().sqrt())
    y = clean + sigma * torch.complex(torch.randn(op.out_shape, generator=g), torch.randn(op.out_shape, generator=g))
    return op, y.to(op.dtype), truth, sigma


@pytest.mark.parametrize("levels", [1, 3])
def test_haar_is_orthonormal_and_invertible(cdtype, levels):
    g = torch.Generator().manual_seed(levels)
    x = torch.randn(2, 16, 24, dtype=cdtype, generator=g)
    c = ops.haar2d(x, levels)
    tol = 1e-5 if cdtype == torch.complex64 else 1e-12
    assert abs(float(torch.linalg.vector_norm(c) / torch.linalg.vector_norm(x)) - 1) < tol
    torch.testing.assert_close(ops.ihaar2d(c, levels), x)
    u = torch.randn(2, 16, 24, dtype=cdtype, generator=g)  # ⟨Wx, u⟩ = ⟨x, Wᴴu⟩ with Wᴴ = W⁻¹
    lhs, rhs = torch.vdot(c.reshape(-1), u.reshape(-1)), torch.vdot(x.reshape(-1), ops.ihaar2d(u, levels).reshape(-1))
    assert float(abs(lhs - rhs) / (torch.linalg.vector_norm(x) * torch.linalg.vector_norm(u))) < tol


def test_tv_discrepancy_picks_the_largest_lambda_that_fits_to_the_noise_level():
    op, y, truth, sigma = _pf_problem()
    ch = ops.tv_discrepancy(op, y, sigma)
    target = op.size_out * sigma**2
    assert ch.reached and ch.target == pytest.approx(target)
    assert ch.misfit <= target and ch.misfit == pytest.approx(_misfit(op, ch.image, y), rel=1e-6)
    # a somewhat larger λ no longer fits the data to the noise level (the choice is the largest that does)
    bigger = ops.tv_reconstruct(op, y, lam=1.3 * ch.parameter, iters=600, x0=ch.image)
    assert _misfit(op, bigger, y) > target
    # and it is a useful regulariser: clearly better than zero filling and than a 10× smaller λ
    zf = ops.backproject(op, y)
    small = ops.tv_reconstruct(op, y, lam=0.1 * ch.parameter, iters=400)
    assert _psnr(ch.image, truth) > _psnr(zf, truth) + 2.0
    assert _psnr(ch.image, truth) > _psnr(small, truth)
    torch.testing.assert_close(ops.tv_reconstruct(op, y, lam="discrepancy", sigma=sigma), ch.image)


def test_l1_pixels_discrepancy_beats_backprojection_on_point_targets():
    op, y, truth, sigma = _radar_points()
    ch = ops.l1_discrepancy(op, y, sigma, basis="pixels")
    assert ch.reached and ch.misfit <= ch.target
    bp = ops.backproject(op, y, normalize=True)
    assert _psnr(ch.image, truth) > _psnr(bp, truth) + 3.0
    # λ₀ = ‖Aᴴy‖_∞ zeroes the solution: the descent starts where ℓ1 over-regularises
    zero = ops.l1_reconstruct(op, y, lam=float(op.adjoint(y).abs().max()) * 1.01, iters=50)
    assert float(zero.abs().max()) == 0.0


def test_l1_haar_discrepancy_denoises_a_piecewise_constant_image():
    _, _, truth, _ = _pf_problem(seed=1)
    op = ops.Identity((32, 32), dtype=torch.complex128)
    sigma = 0.07
    g = torch.Generator().manual_seed(0)
    y = truth + sigma * torch.complex(
        torch.randn(32, 32, generator=g, dtype=torch.float64), torch.randn(32, 32, generator=g, dtype=torch.float64)
    )
    ch = ops.l1_discrepancy(op, y, sigma, basis="haar", iters=100)
    assert ch.reached and ch.misfit <= ch.target
    assert _psnr(ch.image, truth) > _psnr(y, truth) + 2.0


def test_cgls_discrepancy_stops_at_the_first_iteration_below_the_target():
    op, y, _truth, sigma = _radar_points(seed=2)
    ch = ops.cgls_discrepancy(op, y, sigma)
    k = int(ch.parameter)
    assert ch.reached and k >= 1 and ch.misfit <= ch.target
    before = ops.cg_least_squares(op, y, iters=k - 1, tol=0.0)
    assert _misfit(op, before, y) > ch.target  # one iteration earlier it did not fit yet
    torch.testing.assert_close(ch.image, ops.cg_least_squares(op, y, iters=k, tol=0.0))


def test_unreachable_target_warns_and_says_so():
    def solve(lam, state):  # a misfit floor above the target: σ underestimated
        return torch.zeros(1), state, 1.0 + lam

    with pytest.warns(UserWarning, match="not reached"):
        ch = search_lambda(solve, 1.0, 0.5, max_steps=6)
    assert not ch.reached and ch.parameter == pytest.approx(10**-3) and ch.evaluations == 7
    op, y, _, sigma = _radar_points(seed=1)
    with pytest.warns(UserWarning, match="still above"):
        ch = ops.cgls_discrepancy(op, y, sigma, max_iters=1)
    assert not ch.reached and ch.parameter == 1


def test_search_lambda_ascends_when_the_start_already_fits():
    # misfit(λ) = λ²: the largest λ with misfit ≤ 4 is 2
    def solve(lam, state):
        return torch.zeros(1), state, lam**2

    ch = search_lambda(solve, 0.1, 4.0, bisections=12)
    assert ch.reached and 1.9 < ch.parameter <= 2.0


def test_search_lambda_rtol_answers_within_the_tolerance_with_fewer_solves():
    # misfit(λ) = 1 + λ (monotone, smooth in log λ); target 3: the exact answer is λ = 2
    def solve(lam, state):
        return torch.zeros(1), state, 1.0 + lam

    full = search_lambda(solve, 1e4, 3.0)
    quick = search_lambda(solve, 1e4, 3.0, rtol=0.05)
    assert full.reached and quick.reached
    assert 0.95 * 3.0 <= quick.misfit <= 3.0  # passes, and within rtol of the target
    assert quick.evaluations < full.evaluations
    assert quick.parameter == pytest.approx(2.0, rel=0.1)
    with pytest.raises(ValueError, match="rtol"):
        search_lambda(solve, 1.0, 3.0, rtol=1.5)


def test_tv_discrepancy_rtol_is_a_cheaper_passing_answer():
    op, y, _truth, sigma = _pf_problem(24)
    full = ops.tv_discrepancy(op, y, sigma, iters=60)
    quick = ops.tv_discrepancy(op, y, sigma, iters=60, rtol=0.05)
    assert quick.reached and (1 - 0.05) * quick.target <= quick.misfit <= quick.target
    assert quick.evaluations < full.evaluations
    assert quick.parameter == pytest.approx(full.parameter, rel=0.5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda op, y: ops.tv_discrepancy(op, y, sigma=None), "sigma"),
        (lambda op, y: ops.tv_reconstruct(op, y, lam="auto"), "lam must be"),
        (lambda op, y: ops.l1_reconstruct(op, y, lam="discrepancy", sigma=-1.0), "sigma"),
        (lambda op, y: ops.l1_reconstruct(op, y, lam=0.1, basis="dct"), "basis must be one of"),
        (lambda op, y: ops.cgls_discrepancy(op, y, sigma=0.1, tau=0.0), "tau"),
        (lambda op, y: ops.tv_discrepancy(op, torch.stack((y, y)), sigma=0.1), "one measurement"),
    ],
)
def test_bad_arguments_name_the_field(call, match):
    op, y, _, _ = _pf_problem(16)
    with pytest.raises(ValueError, match=match):
        call(op, y)
