"""Properties of the operator core: adjointness, algebra, restriction, norms, helpers."""

import pytest
import torch
from conftest import ADJOINT_TOL

import operators as ops
from operators.testing import random_input, random_output


def _pf(dtype=torch.complex64, shape=(24, 20), acc=3.0, seed=0):
    return ops.PartialFourier(ops.variable_density_mask(shape, acc, seed=seed), dtype=dtype)


def _diag(shape, dtype, seed=3):
    g = torch.Generator().manual_seed(seed)
    return ops.Diagonal(torch.randn(shape, generator=g, dtype=torch.complex128) + 0.5, dtype=dtype)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _cases(dtype):
    pf = _pf(dtype)
    d = _diag(pf.in_shape, dtype)
    return {
        "partial_fourier": pf,
        "composed": pf @ d,
        "scaled": (0.3 - 2j) * pf,
        "sum": pf + 2.0 * pf,
        "restricted": pf.restrict(torch.arange(0, pf.size_out, 3)),
        "restricted_composed": (pf @ d).restrict(torch.rand(pf.out_shape, generator=_gen(1)) > 0.5),
        "adjoint_of_adjoint": pf.H.H,
        "adjoint": pf.H,
        "diagonal": d,
    }


@pytest.mark.parametrize("name", list(_cases(torch.complex64)))
@pytest.mark.parametrize("batch", [(), (3,)], ids=["nobatch", "batch3"])
def test_adjointness(name, batch, cdtype):
    op = _cases(cdtype)[name]
    assert ops.check_adjoint(op, batch=batch) < ADJOINT_TOL[cdtype]


def test_check_adjoint_detects_a_wrong_adjoint():
    class Broken(ops.PartialFourier):
        def _adjoint(self, y):
            return 1.01 * super()._adjoint(y)

    op = Broken(ops.cartesian_mask((16, 16), 2, seed=0))
    assert ops.check_adjoint(op) > 10 * ADJOINT_TOL[torch.complex64]  # a 1 % error fails the check


@pytest.mark.parametrize("name", ["partial_fourier", "composed", "restricted", "scaled"])
def test_normal_equals_adjoint_of_forward(name):
    op = _cases(torch.complex128)[name]
    x = random_input(op, (2,))
    torch.testing.assert_close(op.normal(x), op.adjoint(op.forward(x)), rtol=0, atol=0)


def test_restrict_is_consistent_with_indexing():
    op = _pf(torch.complex128)
    x = random_input(op, (2,))
    full = op.forward(x)
    mask = torch.rand(op.out_shape, generator=torch.Generator().manual_seed(5)) < 0.3
    idx = mask.nonzero().reshape(-1)
    torch.testing.assert_close(op.restrict(mask).forward(x), full[..., mask], rtol=0, atol=0)
    torch.testing.assert_close(op.restrict(idx).forward(x), full[..., idx], rtol=0, atol=0)
    # restricting a restriction composes the index maps
    sub = op.restrict(idx).restrict(torch.tensor([0, 2]))
    torch.testing.assert_close(sub.forward(x), full[..., idx[[0, 2]]], rtol=0, atol=0)
    # the adjoint of the restriction scatters into the complement as zeros
    y = random_output(op.restrict(mask))
    y_full = torch.zeros(op.out_shape, dtype=op.dtype)
    y_full[mask] = y
    torch.testing.assert_close(op.restrict(mask).adjoint(y), op.adjoint(y_full))


def test_restrict_errors():
    op = _pf()
    with pytest.raises(ValueError, match="selects no measurements"):
        op.restrict(torch.zeros(op.out_shape, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"must lie in \[0,"):
        op.restrict(torch.tensor([op.size_out]))
    with pytest.raises(TypeError, match="boolean mask or integer"):
        op.restrict(torch.tensor([0.5]))


def test_algebra_shapes_and_values():
    op = _pf(torch.complex128)
    x = random_input(op)
    torch.testing.assert_close(((2 - 1j) * op).forward(x), (2 - 1j) * op.forward(x))
    torch.testing.assert_close((op / 4).forward(x), op.forward(x) / 4)
    torch.testing.assert_close((op - op).forward(x), torch.zeros_like(op.forward(x)))
    torch.testing.assert_close((op @ x), op.forward(x))
    torch.testing.assert_close(op.H.forward(op.forward(x)), op.normal(x))
    assert (op @ ops.Identity(op.in_shape, dtype=op.dtype)).out_shape == op.out_shape
    with pytest.raises(ValueError, match="cannot compose"):
        op @ ops.Identity((3, 3), dtype=op.dtype)
    with pytest.raises(TypeError, match="dtypes differ"):
        op + _pf(torch.complex64)


def test_shape_and_dtype_errors_name_the_call():
    op = _pf()
    with pytest.raises(ValueError, match=r"forward: expected trailing shape \(24, 20\)"):
        op.forward(torch.zeros(5, 5, dtype=torch.complex64))
    with pytest.raises(ValueError, match="adjoint: expected trailing shape"):
        op.adjoint(torch.zeros(3, dtype=torch.complex64))
    with pytest.raises(TypeError, match="complex or real floating"):
        op.forward(torch.zeros(24, 20, dtype=torch.int64))


def test_opnorm_power_iteration_and_to():
    pf = _pf(torch.complex128)
    generic = pf @ ops.Identity(pf.in_shape, dtype=pf.dtype)  # generic power iteration path
    assert abs(generic.opnorm(iters=500, tol=1e-9) - 1.0) < 1e-3
    assert abs(pf.opnorm() - 1.0) < 1e-12
    d = _diag((6, 7), torch.complex128)
    assert abs((d @ d).opnorm(iters=2000, tol=1e-12) - d.opnorm() ** 2) < 1e-3 * d.opnorm() ** 2
    lower = pf.to(dtype=torch.complex64)
    assert lower.dtype == torch.complex64 and pf.dtype == torch.complex128  # original untouched
    assert lower.mask.dtype == torch.bool
    x = random_input(pf)
    torch.testing.assert_close(lower.forward(x.to(torch.complex64)), pf.forward(x).to(torch.complex64))
    composed = (pf @ d.to(dtype=torch.complex128) if d.in_shape == pf.in_shape else pf).to(dtype=torch.complex64)
    assert composed.dtype == torch.complex64


def test_normal_diagonal_matches_probe():
    op = _pf(torch.complex128)
    d = op.normal_diagonal()
    delta = torch.zeros(op.in_shape, dtype=op.dtype)
    delta[3, 5] = 1
    assert abs(float(op.normal(delta)[3, 5].real) - float(d[3, 5])) < 1e-12


def test_channel_helpers_round_trip():
    x = random_input(_pf(), (2, 3))
    t = ops.to_channels(x)
    assert t.shape == (6, 2, 24, 20) and not t.is_complex()
    torch.testing.assert_close(ops.from_channels(t).reshape(x.shape), x, rtol=0, atol=0)
    with pytest.raises(TypeError, match="expected a complex tensor"):
        ops.to_channels(t)
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        ops.from_channels(torch.zeros(1, 3, 4, 4))
