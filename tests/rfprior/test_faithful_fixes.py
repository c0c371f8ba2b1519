"""Issue 9 fixes: image-domain operators declare spatial axes (DSP takes the image spectrum), the sigmoid head."""

from __future__ import annotations

import pytest
import torch
from fitting import fit_to

import operators as ops
from rfprior.losses import DSPLoss, MSELoss, spectral_axes
from rfprior.priors import make_prior
from rfprior.priors.heads import ALL_HEADS, HEADS, REAL_HEADS, OutputHead


def _spectrum(t: torch.Tensor) -> torch.Tensor:
    """Centred unitary 2-D DFT over the last two axes, written out independently of rfprior."""
    t = torch.fft.ifftshift(t, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.fft2(t, norm="ortho"), dim=(-2, -1))


def _pair(shape=(12, 10), seed=0, dtype=torch.complex128) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype), torch.randn(shape, generator=g, dtype=dtype)


def _diag(shape, seed=4, **kw) -> ops.Diagonal:
    g = torch.Generator().manual_seed(seed)
    return ops.Diagonal(torch.randn(shape, generator=g, dtype=torch.complex128) + 0.5, dtype=torch.complex128, **kw)


# ------------------------------------------------------------------------------------ spatial axes
def test_image_domain_operators_declare_their_axes_spatial() -> None:
    ident = ops.Identity((12, 10))
    diag = _diag((12, 10))
    for op in (ident, diag):
        assert op.dims == ("dim_0", "dim_1") and op.spatial_dims == op.dims and op.spatial
        assert spectral_axes(op) == (-2, -1)
    for op in (ops.Identity((12, 10), spatial=False), _diag((12, 10), spatial=False)):
        assert op.spatial_dims == () and not op.spatial and spectral_axes(op) == ()
    with pytest.raises(TypeError, match="spatial must be a bool"):
        ops.Identity((4, 4), spatial="yes")
    with pytest.raises(TypeError, match="spatial must be a bool"):
        ops.Diagonal(torch.ones(4, 4), spatial=1)


def test_dsp_with_identity_is_the_spectral_dsp() -> None:
    """Amplitude and phase terms on ``F(pred)`` vs ``F(y)`` (2-D centred unitary FFT), computed by hand."""
    pred, y = _pair()
    fp, fy = _spectrum(pred), _spectrum(y)
    loss = DSPLoss(w_complex=0.0, w_amplitude=1.3, w_phase=0.7, phase_gate=0.0, eps=1e-9)
    terms = loss.terms(pred, y, ops.Identity((12, 10), dtype=torch.complex128))
    amplitude = 0.5 * 1.3 * ((fp.abs() - fy.abs()) ** 2).sum()
    phase = 0.7 * (1 - torch.cos(torch.angle(fp) - torch.angle(fy))).sum()
    assert torch.allclose(terms["amplitude"], amplitude, rtol=1e-10)
    assert torch.allclose(terms["phase"], phase, rtol=1e-6)
    # the pixel-wise version (the old behaviour) is a different number
    pixel = 0.5 * 1.3 * ((pred.abs() - y.abs()) ** 2).sum()
    assert not torch.allclose(terms["amplitude"], pixel, rtol=1e-2)
    # a circular shift leaves |F y| unchanged: the spectral amplitude term vanishes, a pixel one would not
    shifted = torch.roll(y, 3, dims=-1)
    amp_only = DSPLoss(w_complex=0.0, w_amplitude=1.0)
    assert float(amp_only(shifted, y, ops.Identity((12, 10), dtype=torch.complex128))) < 1e-20
    assert float(amp_only(shifted, y, ops.Identity((12, 10), dtype=torch.complex128, spatial=False))) > 1.0


def test_dsp_with_diagonal_and_frequency_weight() -> None:
    """A pixel mask (Diagonal) is image → image too: the loss transforms ``w ⊙ x`` and ``y``."""
    op = _diag((12, 10))
    x, y = _pair(seed=1)
    pred = op(x)
    g = torch.Generator().manual_seed(2)
    W = torch.rand(12, 10, generator=g, dtype=torch.float64)
    fp, fy = _spectrum(pred), _spectrum(y)
    loss = DSPLoss(w_complex=0.4, w_amplitude=1.0, freq_weight=W)
    expected = 0.5 * 0.4 * (W * (fp - fy).abs() ** 2).sum() + 0.5 * (W * (fp.abs() - fy.abs()) ** 2).sum()
    assert torch.allclose(loss(pred, y, op), expected, rtol=1e-10)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_dsp_complex_term_alone_is_still_mse(dtype: torch.dtype) -> None:
    """Parseval: the complex term equals ½‖pred − y‖², also through the FFT (unit frequency weight)."""
    op = ops.Identity((12, 10), dtype=dtype)
    pred, y = _pair(dtype=dtype, seed=3)
    mse = MSELoss()(pred, y, op)
    assert torch.equal(DSPLoss()(pred, y, op), mse)
    through_fft = DSPLoss(freq_weight=torch.ones(12, 10))(pred, y, op)
    tol = 1e-5 if dtype == torch.complex64 else 1e-12
    assert torch.allclose(through_fft, mse, rtol=tol)
    assert torch.allclose(0.5 * (_spectrum(pred) - _spectrum(y)).abs().square().sum(), mse, rtol=tol)


def test_composition_keeps_the_meaning_of_the_axes() -> None:
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[::2] = True
    pf = ops.PartialFourier(mask, dtype=torch.complex128)
    ident = ops.Identity((8, 8), dtype=torch.complex128)
    d_img = _diag((8, 8))
    # image-domain operator after a spectral one: the measurements are still spectral
    weights = torch.linspace(0.5, 1.5, pf.size_out, dtype=torch.float64).reshape(pf.out_shape)
    kspace_weighted = ops.Diagonal(weights, dtype=torch.complex128) @ pf
    assert kspace_weighted.dims == pf.dims and kspace_weighted.spatial_dims == ()
    ident_k = ops.Identity(pf.out_shape, dtype=torch.complex128)
    assert (ident_k @ pf).spatial_dims == () and (ident_k @ pf).dims == pf.dims
    # ... and before: the outer operator decides, as for every composition
    assert (pf @ d_img).dims == pf.dims and (pf @ d_img).spatial_dims == ()
    # image-domain chains stay spatial; scaling, sums and the adjoint keep the axes
    for op in (d_img @ ident, ident @ d_img, d_img @ d_img, 2.0 * d_img, d_img + ident, d_img.H, ident.H):
        assert op.spatial_dims == ("dim_0", "dim_1"), op
    # restriction flattens the samples: no spatial axes (documented in LinearOperator.restrict)
    assert ident.restrict(torch.arange(10)).spatial_dims == ()
    # values and adjoints are unchanged by the new composition path
    x = torch.randn(8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.complex128)
    torch.testing.assert_close((d_img @ d_img)(x), d_img(d_img(x)), rtol=0, atol=0)
    torch.testing.assert_close(d_img.H(x), d_img.adjoint(x), rtol=0, atol=0)
    assert ident.H is ident
    for op in (kspace_weighted, d_img @ ident, d_img.H, (d_img @ d_img).to(dtype=torch.complex64)):
        tol = 1e-12 if op.dtype == torch.complex128 else 1e-5
        assert ops.check_adjoint(op) < tol
    lowered = (d_img @ ident).to(dtype=torch.complex64)
    assert lowered.spatial_dims == ("dim_0", "dim_1") and lowered.dtype == torch.complex64


# ------------------------------------------------------------------------------------ sigmoid head
SMALL = {
    "dip": dict(scales=3, channels_down=8, channels_up=8, channels_skip=2, input_channels=4),
    "deep_decoder": dict(channels=24, layers=4),
    "controlled": dict(channels=16, stages=3, input_channels=4),
}


def test_head_registry() -> None:
    assert "sigmoid" in REAL_HEADS and "sigmoid" not in HEADS and ALL_HEADS == HEADS + REAL_HEADS
    head = OutputHead(5, "sigmoid")
    assert head.conv.out_channels == 1
    with pytest.raises(ValueError, match="head"):
        OutputHead(5, "tanh")
    with pytest.raises(ValueError, match="head"):
        make_prior("complex", (16, 16), head="sigmoid")  # the natively complex decoder keeps its own head


@pytest.mark.parametrize("name", list(SMALL))
def test_sigmoid_head_contract(name: str) -> None:
    prior = make_prior(name, (24, 20), head="sigmoid", seed=2, **SMALL[name])
    out = prior()
    assert out.shape == (1, 24, 20) and out.dtype == torch.complex64
    assert bool((out.real >= 0).all() and (out.real <= 1).all())
    assert bool((out.imag == 0).all())
    # a large input saturates towards the ends of the range but never leaves it
    big = prior(prior.z * 1e3)
    assert bool((big.real >= 0).all() and (big.real <= 1).all() and (big.imag == 0).all())
    # gradients reach every parameter
    (out.real - 0.3).square().sum().backward()
    grads = [p.grad for p in prior.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    # determinism from the seed; config rebuilds it
    again, other = (make_prior(name, (24, 20), head="sigmoid", seed=s, **SMALL[name]) for s in (2, 3))
    with torch.no_grad():
        assert torch.equal(again(), prior()) and not torch.equal(other(), prior())
        assert torch.equal(make_prior(**prior.config)(), prior())
    prior.double()
    assert prior().dtype == torch.complex128 and bool((prior().imag == 0).all())


def test_sigmoid_head_fits_a_smooth_real_image() -> None:
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    target = 0.1 + 0.8 * torch.exp(-((xx - 0.2) ** 2 + yy**2) / 0.4)  # smooth, in [0.1, 0.9]
    assert 0.1 <= float(target.min()) and float(target.max()) <= 0.9
    prior = make_prior("deep_decoder", (32, 32), head="sigmoid", seed=0, **SMALL["deep_decoder"])
    assert fit_to(prior, target, 300) < 0.1
    with torch.no_grad():
        assert bool((prior()[0].imag == 0).all())
