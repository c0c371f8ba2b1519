r"""Spectral-bias control layers (Shi et al., seed ``002``), each usable on its own.

:class:`LipschitzConv2d`
    A convolution whose weight is used as ``W / max(1, σ_max(W̃) / λ)`` with ``W̃`` the
    weight reshaped to ``C_out × (C_in·k·k)`` and ``σ_max`` its largest singular value,
    computed without gradient (treated as a constant in the backward pass, as in the
    authors' code). This bounds the layer's matrix spectral norm by ``λ``.
:class:`GaussianUpsample`
    "Bed of nails" zero insertion by ``s`` followed by a fixed depthwise ``k×k``
    Gaussian filter of width ``σ`` (in units of *input* pixels, as in the authors'
    code: the taps sit at offsets ``(j − (k−1)/2)/s``).
:class:`MeanOnlyNorm`
    ``x − mean_{H,W}(x) + β`` per sample and channel; β learnable, no variance scaling
    and no running statistics.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LipschitzConv2d", "GaussianUpsample", "MeanOnlyNorm", "bed_of_nails", "gaussian_upsampling_kernel"]


class LipschitzConv2d(nn.Conv2d):
    r"""2-D convolution with its weight's spectral norm bounded by ``lam``.

    The effective weight is ``W / max(1, σ_max(W̃)/λ)`` (see :meth:`normalized_weight`).
    Arguments are those of :class:`torch.nn.Conv2d` (``padding`` defaults to
    ``kernel_size // 2``, ``padding_mode`` to ``"reflect"``, ``bias`` to ``False``)
    plus:

    Parameters
    ----------
    lam : float
        The bound ``λ > 0`` on ``σ_max``.
    method : ``"svd"`` | ``"power"``
        ``"svd"`` (default) computes ``σ_max`` exactly with
        ``torch.linalg.matrix_norm(ord=2)`` at every call; ``"power"`` runs
        ``power_iterations`` steps of power iteration per call, warm-started from the
        previous singular vector (a buffer), i.e. Miyato's estimate — cheaper on GPUs,
        accurate once the weights change slowly; it never over-estimates ``σ_max``.
        The forward pass is then stateful (the estimate depends on the call history),
        so two copies agree only if called equally often.
    power_iterations : int
        Steps per call for ``method="power"``.

    The weight is initialised as in the authors' code, ``kaiming_uniform_(a=0, fan_in)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        lam: float = 1.8,
        *,
        stride: int = 1,
        padding: int | None = None,
        padding_mode: str = "reflect",
        bias: bool = False,
        method: str = "svd",
        power_iterations: int = 10,
    ) -> None:
        if not (isinstance(lam, (int, float)) and not isinstance(lam, bool) and lam > 0):
            raise ValueError(f"LipschitzConv2d: lam must be a positive number, got {lam!r}")
        if method not in ("svd", "power"):
            raise ValueError(f"LipschitzConv2d: method must be 'svd' or 'power', got {method!r}")
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2 if padding is None else padding,
            padding_mode=padding_mode,
            bias=bias,
        )
        nn.init.kaiming_uniform_(self.weight, a=0.0, mode="fan_in")
        self.lam = float(lam)
        self.method = method
        self.power_iterations = int(power_iterations)
        if method == "power":
            u = torch.randn(out_channels)
            self.register_buffer("_u", u / torch.linalg.vector_norm(u))

    @torch.no_grad()
    def spectral_norm(self) -> torch.Tensor:
        """``σ_max`` of the raw weight reshaped to ``C_out × (C_in·k·k)`` (0-d tensor, no gradient)."""
        w = self.weight.detach().reshape(self.out_channels, -1)
        if self.method == "svd":
            return torch.linalg.matrix_norm(w, ord=2)
        u = self._u.to(w.dtype)
        v = w.new_zeros(w.shape[1])
        for _ in range(max(1, self.power_iterations)):
            v = F.normalize(w.t() @ u, dim=0, eps=1e-12)
            u = F.normalize(w @ v, dim=0, eps=1e-12)
        self._u.copy_(u)
        return torch.dot(u, w @ v)

    def normalized_weight(self) -> torch.Tensor:
        """``W / max(1, σ_max/λ)`` with the divisor detached (constant in backward)."""
        scale = torch.clamp(self.spectral_norm() / self.lam, min=1.0)
        return self.weight / scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.normalized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, lam={self.lam}, method={self.method!r}"


def bed_of_nails(x: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """Zero insertion: ``(B, C, H, W) → (B, C, sH, sW)`` with ``out[..., s·i, s·j] = x[..., i, j]``, zeros elsewhere."""
    out = x.new_zeros(*x.shape[:-2], x.shape[-2] * scale, x.shape[-1] * scale)
    out[..., ::scale, ::scale] = x
    return out


def gaussian_upsampling_kernel(sigma: float, scale: int = 2, kernel_size: int = 5, gain: str = "unit") -> torch.Tensor:
    r"""The ``k×k`` filter of :class:`GaussianUpsample` (float64).

    Taps at offsets ``d_j = (j − (k−1)/2)/s`` input pixels, ``g(d) = exp(−d²/(2σ²))``
    (``σ = 0`` gives a unit impulse), separable, normalised to sum 1 (``gain="unit"``)
    or to ``s²`` (``gain="dc"``).
    """
    offsets = (torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2) / scale
    if sigma == 0:
        g = (offsets == 0).to(torch.float64)
    else:
        g = torch.exp(-(offsets**2) / (2.0 * sigma**2))
    k = torch.outer(g, g)
    k = k / k.sum()
    return k * scale**2 if gain == "dc" else k


class GaussianUpsample(nn.Module):
    r"""Upsampling by ``scale``: bed-of-nails zero insertion, then a fixed depthwise Gaussian filter.

    ``Up(x) = G_σ * ↑_s(x)`` on every channel independently; implemented as one
    transposed convolution (stride ``s``), which is exactly zero insertion followed by
    a zero-padded ``k×k`` convolution centred on the nails. Output ``(B, C, sH, sW)``.

    Parameters
    ----------
    sigma : float ≥ 0
        Gaussian width in input-pixel units (``0.1`` ≈ plain bed of nails, ``0.5``
        smooths, ``1`` blurs). ``σ → 0`` gives exactly :func:`bed_of_nails` (times
        ``s²`` with ``gain="dc"``): the off-centre taps underflow to 0.
    scale : int
        Upsampling factor ``s`` (default 2).
    kernel_size : int, odd
        Filter size (default 5, as in the paper).
    gain : ``"unit"`` | ``"dc"``
        ``"unit"`` (default, the authors' convention): the filter sums to 1, so on its
        own it maps a constant to the same constant and the whole upsampler is
        non-expansive in ℓ2 (zero insertion is an isometry) — consistent with the
        Lipschitz budget ``λ`` of the surrounding convolutions, and ``σ → 0`` is the
        bed of nails exactly. ``"dc"``: the filter sums to ``s²``, so a constant input
        keeps its mean through the upsampler (pointwise it is only approximately
        constant: the four polyphase gains of the truncated 5×5 kernel differ, by ±5 %
        at ``σ = 0.5``); ``σ → 0`` then gives ``s²·bed_of_nails``. No
        normalisation achieves both "a constant stays constant" pointwise and "σ → 0 is
        the bed of nails", since the bed of nails itself does not keep a constant.
    """

    kernel: torch.Tensor

    def __init__(self, sigma: float = 0.5, scale: int = 2, kernel_size: int = 5, gain: str = "unit") -> None:
        super().__init__()
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not (sigma >= 0 and math.isfinite(sigma)):
            raise ValueError(f"GaussianUpsample: sigma must be a finite number ≥ 0, got {sigma!r}")
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"GaussianUpsample: scale must be an int ≥ 1, got {scale!r}")
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"GaussianUpsample: kernel_size must be a positive odd int, got {kernel_size!r}")
        if gain not in ("unit", "dc"):
            raise ValueError(f"GaussianUpsample: gain must be 'unit' or 'dc', got {gain!r}")
        self.sigma, self.scale, self.kernel_size, self.gain = float(sigma), scale, kernel_size, gain
        k = gaussian_upsampling_kernel(self.sigma, scale, kernel_size, gain).to(torch.get_default_dtype())
        self.register_buffer("kernel", k[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        s, p = self.scale, (self.kernel_size - 1) // 2
        y = F.conv_transpose2d(
            x.reshape(B * C, 1, H, W), self.kernel.to(x.dtype), stride=s, padding=p, output_padding=s - 1
        )
        return y.reshape(B, C, s * H, s * W)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, scale={self.scale}, kernel_size={self.kernel_size}, gain={self.gain!r}"


class MeanOnlyNorm(nn.Module):
    """Mean-only normalisation: ``x − mean over (H, W) + β`` per sample and channel.

    β (shape ``(C,)``, initialised to 0) is learnable; there is no variance scaling and
    no running statistic, so train and eval modes agree and samples do not interact.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = int(num_features)
        self.bias = nn.Parameter(torch.zeros(self.num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(dim=(-2, -1), keepdim=True) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}"
