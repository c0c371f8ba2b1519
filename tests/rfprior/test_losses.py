"""Losses: MSE, and the DSP loss (Parseval identity with MSE, spatial FFT axes, gradients, gating)."""

from __future__ import annotations

import pytest
import torch

from operators import LinearOperator, PartialFourier
from rfprior.losses import DSPLoss, MSELoss, spectral_axes


class _Mixing(LinearOperator):
    """A dense random map (4, 4) → (tx=3, rx=4, freq=5) with spatial axes (tx, rx)."""

    def __init__(self, dtype: torch.dtype = torch.complex128) -> None:
        super().__init__((4, 4), (3, 4, 5), ("tx", "rx", "freq"), dtype=dtype, spatial_dims=("tx", "rx"))
        g = torch.Generator().manual_seed(0)
        self.matrix = torch.randn(60, 16, generator=g, dtype=dtype)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(*x.shape[:-2], 16) @ self.matrix.T
        return flat.reshape(*x.shape[:-2], 3, 4, 5)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        flat = y.reshape(*y.shape[:-3], 60) @ self.matrix.conj()
        return flat.reshape(*y.shape[:-3], 4, 4)


def _data(op: LinearOperator, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(op.in_shape, generator=g, dtype=op.dtype)
    y = torch.randn(op.out_shape, generator=g, dtype=op.dtype)
    return x, y


def _manual_spectrum(t: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    t = torch.fft.ifftshift(t, dim=axes)
    return torch.fft.fftshift(torch.fft.fftn(t, dim=axes, norm="ortho"), dim=axes)


def test_mse_is_half_sum_of_squares() -> None:
    op = _Mixing()
    x, y = _data(op)
    pred = op(torch.stack((x, 2 * x)))  # a batch of two
    expected = 0.5 * ((pred - y).abs() ** 2).sum()
    assert torch.allclose(MSELoss()(pred, y, op), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="out_shape"):
        MSELoss()(pred[..., :4], y[..., :4], op)
    with pytest.raises(ValueError, match="broadcast"):
        MSELoss()(pred[0], torch.stack((y, y)))


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_dsp_complex_term_is_exactly_mse(dtype: torch.dtype) -> None:
    op = _Mixing(dtype)
    x0, y = _data(op)
    values, grads = [], []
    for loss in (MSELoss(), DSPLoss()):
        x = x0.clone().requires_grad_(True)
        value = loss(op(x), y, op)
        value.backward()
        values.append(value.detach())
        grads.append(x.grad)
    assert torch.equal(values[0], values[1])
    assert torch.equal(grads[0], grads[1])
    assert DSPLoss().is_mse
    # w_c scales it; a unit frequency weight goes through the FFT and agrees by Parseval
    pred = op(x0)
    mse = MSELoss()(pred, y, op)
    assert torch.allclose(DSPLoss(w_complex=2.5)(pred, y, op), 2.5 * mse)
    tol = 1e-5 if dtype == torch.complex64 else 1e-12
    assert torch.allclose(DSPLoss(freq_weight=torch.ones(op.out_shape))(pred, y, op), mse, rtol=tol)


def test_dsp_transforms_exactly_the_spatial_axes() -> None:
    op = _Mixing()
    x, y = _data(op)
    pred = op(x)
    assert spectral_axes(op) == (-3, -2)
    W = torch.rand(op.out_shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    fp, fy = _manual_spectrum(pred, (0, 1)), _manual_spectrum(y, (0, 1))
    expected = {
        "complex": 0.5 * 0.7 * (W * (fp - fy).abs() ** 2).sum(),
        "amplitude": 0.5 * 1.3 * (W * (fp.abs() - fy.abs()) ** 2).sum(),
    }
    loss = DSPLoss(w_complex=0.7, w_amplitude=1.3, freq_weight=W)
    terms = loss.terms(pred, y, op)
    for key, value in expected.items():
        assert torch.allclose(terms[key], value, rtol=1e-12)
    assert torch.allclose(loss(pred, y, op), expected["complex"] + expected["amplitude"], rtol=1e-12)
    # a transform over all three axes (or none) would give another amplitude term
    f3p, f3y = _manual_spectrum(pred, (0, 1, 2)), _manual_spectrum(y, (0, 1, 2))
    wrong = 0.5 * 1.3 * (W * (f3p.abs() - f3y.abs()) ** 2).sum()
    assert not torch.allclose(terms["amplitude"], wrong, rtol=1e-3)


def test_dsp_on_spectral_data_uses_no_fft() -> None:
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[::2] = True
    op = PartialFourier(mask, dtype=torch.complex128)
    assert op.spatial_dims == () and spectral_axes(op) == ()
    g = torch.Generator().manual_seed(2)
    pred = torch.randn(op.out_shape, generator=g, dtype=op.dtype)
    y = torch.randn(op.out_shape, generator=g, dtype=op.dtype)
    expected = 0.5 * ((pred.abs() - y.abs()) ** 2).sum()
    assert torch.allclose(DSPLoss(w_complex=0, w_amplitude=1)(pred, y, op), expected, rtol=1e-12)


def test_dsp_amplitude_and_phase_gradients() -> None:
    op = _Mixing()
    g = torch.Generator().manual_seed(3)
    # keep |F pred| and |F y| well away from 0 and from the gate
    y = torch.polar(1 + torch.rand(op.out_shape, generator=g, dtype=torch.float64),
                    6 * torch.rand(op.out_shape, generator=g, dtype=torch.float64))
    y = torch.fft.ifftn(torch.fft.ifftshift(y, dim=(0, 1)), dim=(0, 1), norm="ortho")
    y = torch.fft.fftshift(y, dim=(0, 1))
    pred = (y + 0.3 * torch.randn(op.out_shape, generator=g, dtype=op.dtype)).requires_grad_(True)
    W = 0.5 + torch.rand(op.out_shape, generator=g, dtype=torch.float64)
    for kwargs in (dict(w_amplitude=1.0), dict(w_phase=0.8), dict(w_phase=0.8, freq_weight=W)):
        loss = DSPLoss(w_complex=0.0, **kwargs)
        assert torch.autograd.gradcheck(lambda p, loss=loss: loss(p, y, op), (pred,), eps=1e-6, atol=1e-6)


def test_dsp_phase_term_values_gate_and_nan_free() -> None:
    op = _Mixing()
    _, y = _data(op)
    fy = _manual_spectrum(y, (0, 1))
    loss = DSPLoss(w_complex=0, w_phase=1.0, phase_gate=0.0)
    n = fy.numel()
    # same phase (any positive gain) → 0; opposite phase → 2 per frequency
    assert float(loss(3.0 * y, y, op)) == pytest.approx(0.0, abs=1e-9)
    assert float(loss(-y, y, op)) == pytest.approx(2.0 * n, rel=1e-9)
    # at pred = 0 the term is 1 per frequency and its gradient is finite
    pred = torch.zeros_like(y, requires_grad=True)
    value = loss(pred, y, op)
    value.backward()
    assert float(value.detach()) == pytest.approx(n, rel=1e-9)
    assert torch.isfinite(torch.view_as_real(pred.grad)).all()
    # the gate drops the frequencies whose data amplitude is below phase_gate · max
    gate = 0.5
    kept = int((fy.abs() > gate * fy.abs().max()).sum())
    assert 0 < kept < n
    assert float(DSPLoss(w_complex=0, w_phase=1.0, phase_gate=gate)(-y, y, op)) == pytest.approx(2.0 * kept)


def test_dsp_bad_arguments() -> None:
    with pytest.raises(ValueError, match="w_amplitude"):
        DSPLoss(w_amplitude=-1)
    with pytest.raises(TypeError, match="freq_weight"):
        DSPLoss(freq_weight=torch.ones(2, dtype=torch.complex64))
    with pytest.raises(ValueError, match="freq_weight"):
        DSPLoss(freq_weight=-torch.ones(2))
    op = _Mixing()
    x, y = _data(op)
    with pytest.raises(ValueError, match="broadcast"):
        DSPLoss(freq_weight=torch.ones(7))(op(x), y, op)
