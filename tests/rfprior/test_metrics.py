"""Metrics: closed-form PSNR/NMSE/SSIM values, global-phase alignment, and FBC."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rfprior.metrics import align_scale, fbc, nmse, psnr, ssim


def _image(seed: int = 0, shape=(32, 32)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.complex128)


def test_psnr_closed_form_and_identity() -> None:
    truth = torch.full((16, 16), 2.0)
    x = truth + 0.1
    assert float(psnr(x, truth)) == pytest.approx(10 * math.log10(4.0 / 0.01))
    assert float(psnr(x, truth, peak=1.0)) == pytest.approx(10 * math.log10(1.0 / 0.01))
    assert float(psnr(truth, truth)) == math.inf
    # magnitudes: a pixel-wise phase does not change PSNR
    z = _image()
    phase = torch.exp(1j * torch.rand(z.shape, dtype=torch.float64))
    assert float(psnr(z * phase, z)) > 250  # equal up to rounding of |·|
    # numpy input and batches
    batch = torch.stack((z, 1.1 * z))
    out = psnr(batch, torch.stack((z, z)))
    assert out.shape == (2,) and out[0] == math.inf and math.isfinite(float(out[1]))
    assert float(psnr(np.asarray(x), np.asarray(truth))) == pytest.approx(float(psnr(x, truth)))


def test_nmse_closed_form_and_alignment_recovers_global_phase() -> None:
    truth = _image(1)
    c = 2.0 * complex(math.cos(0.7), math.sin(0.7))
    x = truth / c
    assert float(nmse(x, truth)) == pytest.approx(abs(1 / c - 1) ** 2, rel=1e-12)
    assert float(nmse(x, truth, align=True)) < 1e-24
    assert complex(align_scale(x[None], truth[None])[0]) == pytest.approx(c, rel=1e-12)
    assert float(psnr(x, truth, align=True)) > 200
    mse = float(((x.abs() - truth.abs()) ** 2).mean())
    assert float(psnr(x, truth)) == pytest.approx(10 * math.log10(float(truth.abs().max()) ** 2 / mse))
    # alignment is a least-squares fit: never worse than no alignment
    noisy = x + 0.2 * _image(2)
    assert float(nmse(noisy, truth, align=True)) <= float(nmse(noisy, truth))


def test_ssim_identity_constant_closed_form_and_monotone() -> None:
    z = _image(3)
    assert float(ssim(z, z)) == pytest.approx(1.0)
    assert float(ssim(z * torch.exp(1j * torch.rand(z.shape, dtype=torch.float64)), z)) == pytest.approx(1.0)
    a, b = 0.6, 1.0
    x, t = torch.full((16, 16), a, dtype=torch.float64), torch.full((16, 16), b, dtype=torch.float64)
    c1 = (0.01 * b) ** 2
    assert float(ssim(x, t)) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-10)
    values = [float(ssim(z + s * _image(4), z)) for s in (0.05, 0.2, 0.8)]
    assert 1 > values[0] > values[1] > values[2]
    with pytest.raises(ValueError, match="at least"):
        ssim(torch.ones(8, 8), torch.ones(8, 8))


def test_fbc_identity_and_low_pass() -> None:
    z = _image(5, (48, 48))
    ones = fbc(z, z)
    assert ones.shape == (5,) and torch.allclose(ones, torch.ones(5, dtype=torch.float64))
    # keep only frequencies within 0.3·(W/2) of DC
    spec = torch.fft.fftshift(torch.fft.fft2(z))
    yy, xx = torch.meshgrid(torch.arange(48) - 24, torch.arange(48) - 24, indexing="ij")
    low = torch.fft.ifft2(torch.fft.ifftshift(spec * ((xx**2 + yy**2).sqrt() <= 0.3 * 24)))
    bands = fbc(low, z)
    assert float(bands[0]) == pytest.approx(1.0, abs=1e-9)
    assert float(bands[2]) < 1e-6 and float(bands[3]) < 1e-6 and float(bands[4]) < 1e-6
    assert 0 < float(bands[1]) < 1
    # batched, and real inputs
    assert fbc(torch.stack((z, low)), torch.stack((z, z))).shape == (2, 5)
    assert torch.allclose(fbc(z.real, z.real), torch.ones(5, dtype=torch.float64))


def test_metric_shape_validation() -> None:
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.ones(4, 4), torch.ones(4, 5))
    with pytest.raises(ValueError, match=r"\(H, W\) or \(B, H, W\)"):
        nmse(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="peak"):
        psnr(torch.ones(4, 4), torch.ones(4, 4), peak=-1.0)
    with pytest.raises(ValueError, match="radii"):
        fbc(torch.ones(8, 8), torch.ones(8, 8), radii=(0.5, 0.2))
