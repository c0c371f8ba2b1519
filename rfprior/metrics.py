r"""Image-quality metrics for complex images, and the frequency-band correspondence (FBC).

Every function takes images of shape ``(H, W)`` or ``(B, H, W)``, real or complex
(torch tensors or numpy arrays), and returns a torch tensor: 0-d for ``(H, W)``,
``(B,)`` (``(B, n_bands)`` for :func:`fbc`) for ``(B, H, W)``; results are in float64.

Magnitude metrics (:func:`psnr`, :func:`ssim`) compare ``|x|`` with ``|truth|``; the
complex metric :func:`nmse` compares the complex values.

Alignment (``align=True``): before comparing, ``x`` is replaced by ``c·x`` with the
global complex scale ``c = ⟨x, truth⟩ / ⟨x, x⟩ = Σ conj(x)·truth / Σ |x|²`` minimising
``‖c x − truth‖₂`` (per image; ``c = 0`` if ``x ≡ 0``). This removes the global phase
and gain ambiguity that a linear inverse problem may leave.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["psnr", "ssim", "nmse", "fbc", "align_scale"]


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{name} must be a tensor or array, got {type(x).__name__}") from err
    if not (x.is_complex() or x.is_floating_point()):
        x = x.to(torch.float64)
    if x.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (H, W) or (B, H, W), got {tuple(x.shape)}")
    return x.detach().to(torch.complex128 if x.is_complex() else torch.float64)


def _pair(x: Any, truth: Any, who: str) -> tuple[torch.Tensor, torch.Tensor, bool]:
    x = _as_tensor(x, f"{who}: x")
    t = _as_tensor(truth, f"{who}: truth")
    if x.shape != t.shape:
        raise ValueError(f"{who}: x and truth must have the same shape, got {tuple(x.shape)} and {tuple(t.shape)}")
    t = t.to(x.device)
    batched = x.ndim == 3
    if not batched:
        x, t = x[None], t[None]
    return x, t, batched


def align_scale(x: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """The per-image complex scale ``c = Σ conj(x)·truth / Σ|x|²`` for ``(B, H, W)`` inputs, shape ``(B,)``."""
    xc = x.to(torch.complex128)
    num = (xc.conj() * truth.to(torch.complex128)).sum(dim=(-2, -1))
    den = (xc.abs() ** 2).sum(dim=(-2, -1))
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(num))


def _aligned(x: torch.Tensor, t: torch.Tensor, align: bool) -> torch.Tensor:
    if not align:
        return x
    c = align_scale(x, t)[:, None, None]
    out = c * x.to(torch.complex128)
    return out if (x.is_complex() or t.is_complex()) else out.real


def _peak(t: torch.Tensor, peak: float | None, who: str) -> torch.Tensor:
    if peak is None:
        return t.abs().amax(dim=(-2, -1))
    if isinstance(peak, bool) or not isinstance(peak, (int, float)) or not peak > 0 or not math.isfinite(peak):
        raise ValueError(f"{who}: peak must be a finite positive number, got {peak!r}")
    return torch.full((t.shape[0],), float(peak), dtype=torch.float64, device=t.device)


def _out(v: torch.Tensor, batched: bool) -> torch.Tensor:
    return v if batched else v[0]


def psnr(x: Any, truth: Any, peak: float | None = None, align: bool = False) -> torch.Tensor:
    """Peak signal-to-noise ratio of the magnitudes, in dB.

    ``PSNR = 10 log10(peak² / mean(|x| − |truth|)²)``, ``peak`` defaulting to
    ``max|truth|`` per image. Identical magnitudes give ``+inf``. ``align=True`` first
    applies the optimal global complex scale (module docstring).
    """
    x, t, batched = _pair(x, truth, "psnr")
    p = _peak(t, peak, "psnr")
    x = _aligned(x, t, align)
    mse = (x.abs() - t.abs()).square().mean(dim=(-2, -1))
    with torch.no_grad():
        value = 10.0 * torch.log10(p.square() / mse)
    value = torch.where(mse == 0, torch.full_like(value, math.inf), value)
    return _out(value, batched)


def nmse(x: Any, truth: Any, align: bool = False) -> torch.Tensor:
    """Normalised mean-squared error ``‖x − truth‖² / ‖truth‖²`` on the complex values (linear, not dB).

    ``align=True`` first applies the optimal global complex scale (module docstring).
    ``truth ≡ 0`` gives ``inf`` (or ``nan`` if also ``x ≡ 0``).
    """
    x, t, batched = _pair(x, truth, "nmse")
    x = _aligned(x, t, align)
    err = (x - t).abs().square().sum(dim=(-2, -1))
    ref = t.abs().square().sum(dim=(-2, -1))
    return _out(err / ref, batched)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - (size - 1) / 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)[None, None]


def ssim(
    x: Any,
    truth: Any,
    peak: float | None = None,
    align: bool = False,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    r"""Structural similarity (Wang et al. 2004) of the magnitudes, averaged over the image.

    Local statistics use a Gaussian window (``window`` = 11, ``σ`` = 1.5) over the valid
    region (no padding; images must be at least ``window`` pixels per side), population
    (not sample) moments, ``C1 = (k1 L)²``, ``C2 = (k2 L)²`` with ``k1 = 0.01``,
    ``k2 = 0.03`` and the data range ``L = peak`` (default ``max|truth|`` per image):

    .. math::

        \mathrm{SSIM} = \mathrm{mean}\,
        \frac{(2μ_xμ_y + C_1)(2σ_{xy} + C_2)}{(μ_x^2 + μ_y^2 + C_1)(σ_x^2 + σ_y^2 + C_2)}.

    Identical images give 1. ``align=True`` first applies the optimal global complex scale.
    """
    x, t, batched = _pair(x, truth, "ssim")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"ssim: window must be a positive odd int, got {window!r}")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"ssim: images must be at least {window}×{window} pixels, got {tuple(x.shape[-2:])}")
    L = _peak(t, peak, "ssim")
    x = _aligned(x, t, align)
    a, b = x.abs()[:, None], t.abs()[:, None]
    w = _gaussian_window(window, sigma).to(a.device)
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    var_a = F.conv2d(a * a, w) - mu_a.square()
    var_b = F.conv2d(b * b, w) - mu_b.square()
    cov = F.conv2d(a * b, w) - mu_a * mu_b
    c1 = ((k1 * L) ** 2).view(-1, 1, 1, 1)
    c2 = ((k2 * L) ** 2).view(-1, 1, 1, 1)
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2))
    return _out(s.mean(dim=(-3, -2, -1)), batched)


def fbc(output: Any, target: Any, radii: Sequence[float] = (0.2, 0.4, 0.6, 0.8, 1.0)) -> torch.Tensor:
    r"""Frequency-band correspondence (Shi et al.): per-band mean of ``clip(|F out| / (|F target| + 1e-8), 0, 1)``.

    ``F`` is the centred 2-D FFT (DC at ``(H//2, W//2)``) of the (complex) images;
    only spectral magnitudes are compared. Band ``n`` holds the frequencies whose
    distance ``d`` (in FFT bins) from DC satisfies ``r_{n−1} < d ≤ r_n`` with
    ``r_n = (W//2)·radii[n]`` and ``r_{−1} = −∞`` (the first band contains DC); bins
    beyond the last radius (the corners) are not used. A band with no bin gives NaN.

    Returns shape ``(len(radii),)`` for ``(H, W)`` inputs, ``(B, len(radii))`` for ``(B, H, W)``.
    """
    out, tgt, batched = _pair(output, target, "fbc")
    r = [float(v) for v in radii]
    if not r or any(not (math.isfinite(v) and v > 0) for v in r) or any(r[i + 1] <= r[i] for i in range(len(r) - 1)):
        raise ValueError(f"fbc: radii must be positive and strictly increasing, got {tuple(radii)!r}")
    H, W = out.shape[-2:]
    fo = torch.fft.fftshift(torch.fft.fft2(out), dim=(-2, -1)).abs()
    ft = torch.fft.fftshift(torch.fft.fft2(tgt), dim=(-2, -1)).abs()
    ratio = (fo / (ft + 1e-8)).clamp(0.0, 1.0)
    yy = torch.arange(H, dtype=torch.float64, device=out.device)[:, None] - H // 2
    xx = torch.arange(W, dtype=torch.float64, device=out.device)[None, :] - W // 2
    dist = torch.sqrt(xx.square() + yy.square())
    bands = []
    inner = torch.zeros_like(dist, dtype=torch.bool)
    for radius in r:
        disk = dist <= (W // 2) * radius
        ring = (disk & ~inner).to(ratio.dtype)
        inner = disk
        bands.append((ratio * ring).sum(dim=(-2, -1)) / ring.sum())
    return _out(torch.stack(bands, dim=-1), batched)
