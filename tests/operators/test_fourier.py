"""PartialFourier physics and the mask generators."""

import pytest
import torch

import operators as ops


def test_forward_is_centered_unitary_dft_on_the_mask():
    mask = ops.cartesian_mask((16, 12), 2, seed=1)
    op = ops.PartialFourier(mask, dtype=torch.complex128)
    x = torch.randn(16, 12, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    full = torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x), norm="ortho"))
    torch.testing.assert_close(op.forward(x), full[mask])
    # DC sits at the centre: a constant image has all its energy at (H//2, W//2)
    k = ops.centered_fft2(torch.ones(16, 12, dtype=torch.complex128))
    assert torch.argmax(k.abs()).item() == 8 * 12 + 6
    # fully sampled operator is unitary
    full_op = ops.PartialFourier(torch.ones(16, 12, dtype=torch.bool), dtype=torch.complex128)
    torch.testing.assert_close(full_op.adjoint(full_op.forward(x)), x)
    assert op.sample_positions.shape == (op.size_out, 2)
    torch.testing.assert_close(op.zero_fill(op.forward(x))[mask], op.forward(x))


@pytest.mark.parametrize("acc", [2.0, 4.0, 8.0])
@pytest.mark.parametrize("shape", [(64, 64), (48, 80)])
@pytest.mark.parametrize(
    "gen",
    [ops.cartesian_mask, ops.variable_density_mask, lambda s, a, seed: ops.radial_mask(s, acceleration=a, seed=seed)],
    ids=["cartesian", "variable_density", "radial"],
)
def test_mask_fraction_and_reproducibility(gen, shape, acc):
    m = gen(shape, acc, seed=7)
    assert m.dtype == torch.bool and tuple(m.shape) == shape
    assert abs(float(m.float().mean()) - 1 / acc) <= 0.02
    assert torch.equal(m, gen(shape, acc, seed=7))
    assert not torch.equal(m, gen(shape, acc, seed=8))
    assert m[shape[0] // 2, shape[1] // 2]  # DC always sampled


def test_cartesian_and_vd_fraction_is_tight():
    for gen in (ops.cartesian_mask, ops.variable_density_mask):
        m = gen((64, 64), 4, seed=0)
        assert abs(float(m.float().mean()) - 0.25) / 0.25 < 0.02


def test_opnorm_is_one():
    op = ops.PartialFourier(ops.radial_mask((32, 32), spokes=9, seed=0))
    assert abs(op.opnorm() - 1) < 1e-3
    generic = ops.ScaledOperator(op, 1.0)
    assert abs(super(ops.ScaledOperator, generic).opnorm(iters=300, tol=1e-9) - 1) < 1e-3


@pytest.mark.parametrize(
    "mask, exc, match",
    [
        (torch.ones(8, 8, dtype=torch.float32), TypeError, "mask must be a boolean"),
        (torch.ones(8, dtype=torch.bool), ValueError, r"mask must have shape \(H, W\)"),
        (torch.zeros(8, 8, dtype=torch.bool), ValueError, "selects no k-space samples"),
        (torch.ones(0, 8, dtype=torch.bool), ValueError, "mask must be non-empty"),
    ],
)
def test_bad_mask(mask, exc, match):
    with pytest.raises(exc, match=match):
        ops.PartialFourier(mask)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ops.cartesian_mask((64,), 4), "shape must be"),
        (lambda: ops.cartesian_mask((64, 64), 0.5), "acceleration must be"),
        (lambda: ops.variable_density_mask((64, 64), float("nan")), "acceleration must be"),
        (lambda: ops.radial_mask((64, 64)), "exactly one of acceleration or spokes"),
        (lambda: ops.radial_mask((64, 64), spokes=0), "spokes must be"),
        (lambda: ops.cartesian_mask((64, 64), 4, center_fraction=2), "center_fraction"),
    ],
)
def test_bad_mask_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
