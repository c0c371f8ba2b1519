r"""Shi et al.'s spectral-bias stop: the blur/sharpness ratio stabilises.

Per iteration, on the magnitude image normalised to ``[0, 1]``:

* **blur** (Crété-Roffet et al.): re-blur with a 9-tap box filter per direction,
  ``b_d = Σ max(0, D_F − D_B) ``-based, ``blur = max_d (s_F − s_V)/s_F`` with
  ``D_F = |∂_d F|``, ``D_B = |∂_d (box_d * F)|``, ``V = max(0, D_F − D_B)``;
* **sharpness** (MLV, Bahrami & Kot): the maximum local variation of each pixel
  over its 8 neighbours, sorted ascending, weighted by ``exp(i/N − 1)``, then RMS.

The statistic is ``blur / sharpness``. The rule stops at the first iteration ``t``
where the means of the two most recent consecutive windows of ``n`` ratios
differ by less than ``eps``. It detects convergence of the (Lipschitz-controlled)
decoder, not a PSNR peak.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Decision, FitContext, Monitor, StoppingRule

__all__ = ["BlurSharpness", "blur_measure", "mlv_sharpness"]


def blur_measure(img: torch.Tensor) -> float:
    """Crété-Roffet no-reference blur of a real image ``(H, W)`` in [0, 1]; 0 = sharp, 1 = blurred."""
    x = img[None, None].double()
    out = 0.0
    for kernel_shape, diff in (((9, 1), (1, 0)), ((1, 9), (0, 1))):
        k = torch.full((1, 1, *kernel_shape), 1 / 9, dtype=x.dtype, device=x.device)
        pad = (kernel_shape[1] // 2, kernel_shape[1] // 2, kernel_shape[0] // 2, kernel_shape[0] // 2)
        b = F.conv2d(F.pad(x, pad, mode="replicate"), k)
        if diff == (1, 0):
            d_f, d_b = (x[..., 1:, :] - x[..., :-1, :]).abs(), (b[..., 1:, :] - b[..., :-1, :]).abs()
        else:
            d_f, d_b = (x[..., :, 1:] - x[..., :, :-1]).abs(), (b[..., :, 1:] - b[..., :, :-1]).abs()
        s_f = float(d_f.sum())
        s_v = float((d_f - d_b).clamp_min(0).sum())
        out = max(out, (s_f - s_v) / s_f if s_f > 0 else 1.0)
    return out


def mlv_sharpness(img: torch.Tensor) -> float:
    """Maximum-local-variation sharpness of a real image ``(H, W)``: RMS of the weighted sorted MLV map."""
    x = F.pad(img[None, None].double(), (1, 1, 1, 1), mode="replicate")[0, 0]
    c = x[1:-1, 1:-1]
    h, w = c.shape
    mlv = torch.zeros_like(c)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy == 1 and dx == 1:
                continue
            mlv = torch.maximum(mlv, (c - x[dy : dy + h, dx : dx + w]).abs())
    v = mlv.reshape(-1).sort().values
    n = v.numel()
    weights = torch.exp(torch.arange(n, dtype=v.dtype, device=v.device) / n - 1)
    return float(torch.sqrt(((weights * v) ** 2).mean()))


class BlurSharpness(StoppingRule):
    """Stop when the blur/sharpness ratio stabilises (window ``n``, tolerance ``eps``)."""

    name = "blur_sharpness"

    def __init__(self, n: int = 100, eps: float = 0.01) -> None:
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"BlurSharpness: n must be a positive int, got {n!r}")
        if not (eps > 0 and math.isfinite(eps)):
            raise ValueError(f"BlurSharpness: eps must be a positive number, got {eps!r}")
        self.n, self.eps = n, float(eps)

    def start(self, ctx: FitContext) -> Monitor:
        return _BlurSharpnessMonitor(self.n, self.eps)


class _BlurSharpnessMonitor(Monitor):
    name = "blur_sharpness"

    def __init__(self, n: int, eps: float) -> None:
        self.n, self.eps = n, eps
        self.ratios: list[float] = []
        self.done = False

    def observe(self, iteration: int, image: torch.Tensor, misfit: float) -> Decision:
        mag = image.abs()
        peak = float(mag.max())
        mag = mag / peak if peak > 0 else mag
        sharp = mlv_sharpness(mag)
        ratio = blur_measure(mag) / sharp if sharp > 0 else math.inf
        self.ratios.append(ratio)
        hit = False
        if not self.done and len(self.ratios) >= 2 * self.n:
            r = self.ratios
            a = sum(r[-2 * self.n : -self.n]) / self.n
            b = sum(r[-self.n :]) / self.n
            hit = abs(a - b) < self.eps
            self.done = hit
        return Decision(statistic=ratio if math.isfinite(ratio) else None, candidate=hit, stop=hit)
