r"""A natively complex-valued decoder: complex convolutions, a complex activation, complex output.

Feature maps are complex; internally a map with ``C`` complex channels is held as a
real tensor ``(B, 2C, H, W)`` — the ``C`` real parts, then the ``C`` imaginary parts —
so every operation is an ordinary real kernel and all parameters are real tensors
(``.double()``, optimisers and ``.to(device)`` behave as usual).

* :class:`ComplexConv2d`: ``W = W_r + i W_i`` applied to ``x = x_r + i x_i`` as
  ``(W_r x_r − W_i x_i) + i (W_i x_r + W_r x_i)`` — one real convolution with the block
  weight ``[[W_r, −W_i], [W_i, W_r]]`` (the real-pair trick); reflection padding.
* :class:`ComplexNorm`: per sample and channel, ``γ (x − μ) / sqrt(mean|x − μ|² + ε) + β``
  with complex mean ``μ`` over ``(H, W)``, real ``γ`` (init 1) and complex ``β`` (init 0).
* activations: ``"crelu"`` (default) ``ReLU(Re x) + i ReLU(Im x)``, or ``"modrelu"``
  ``ReLU(|x| + b) · x/|x|`` (phase-preserving; learnable ``b`` per channel, init −0.1
  after normalisation to unit RMS; ``|x|`` is smoothed as ``sqrt(|x|² + 1e-12)``, so it
  is differentiable at 0). In our fitting tests CReLU fits a smooth complex image
  faster than modReLU (whose fit also varied more with the seed, notably with a
  threshold initialised at −0.5), hence the default.
* upsampling: ×2 bilinear (or nearest) on real and imaginary parts.

:class:`ComplexDecoder`: ``layers`` [6] × [complex k×k conv → ×2 upsample (not after the
last layer) → ComplexNorm → activation] with ``channels`` [64] complex channels, then a
complex 1×1 conv (with complex bias) to one complex channel — the image. Input
``z ~ U(0, 0.1)`` for real and imaginary parts, ``input_channels`` [32] complex channels at
``H/2^(layers−1)``; ``prior.z`` has shape ``(1, 2·input_channels, h, w)``. Only
``head="complex"`` is accepted: the output is natively complex.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Prior, check_positive_int, padded_size, seeded_init

__all__ = ["ComplexDecoder", "ComplexConv2d", "ComplexNorm", "ModReLU", "CReLU"]


def _split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    c = x.shape[1] // 2
    return x[:, :c], x[:, c:]


class ComplexConv2d(nn.Module):
    """Complex ``k×k`` convolution ``C_in → C_out`` on real-pair maps ``(B, 2C_in, H, W) → (B, 2C_out, H, W)``.

    Weights are initialised circular complex Gaussian with ``E|w|² = 2 / (C_in k²)``
    (complex He initialisation); the bias, if any, starts at 0.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = False) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        std = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight_real = nn.Parameter(torch.randn(shape) * std)
        self.weight_imag = nn.Parameter(torch.randn(shape) * std)
        self.bias_real = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.bias_imag = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wr, wi = self.weight_real, self.weight_imag
        weight = torch.cat((torch.cat((wr, -wi), dim=1), torch.cat((wi, wr), dim=1)), dim=0)
        bias = None if self.bias_real is None else torch.cat((self.bias_real, self.bias_imag))
        p = self.kernel_size // 2
        if p > 0:
            x = F.pad(x, (p, p, p, p), mode="reflect")
        return F.conv2d(x, weight, bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"


class ComplexNorm(nn.Module):
    """Per-sample, per-channel complex normalisation ``γ (x − μ)/sqrt(mean|x − μ|² + ε) + β``."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias_real = nn.Parameter(torch.zeros(channels))
        self.bias_imag = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=(-2, -1), keepdim=True)
        re, im = _split(x)
        power = (re.square() + im.square()).mean(dim=(-2, -1), keepdim=True)
        scale = self.weight.view(1, -1, 1, 1) * torch.rsqrt(power + self.eps)
        br, bi = self.bias_real.view(1, -1, 1, 1), self.bias_imag.view(1, -1, 1, 1)
        return torch.cat((re * scale + br, im * scale + bi), dim=1)


class ModReLU(nn.Module):
    """``ReLU(|x| + b) · x / |x|`` per complex channel, learnable ``b`` (init ``bias_init``)."""

    def __init__(self, channels: int, bias_init: float = -0.1) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.full((channels,), float(bias_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        re, im = _split(x)
        mag = torch.sqrt(re.square() + im.square() + 1e-12)
        gain = F.relu(mag + self.bias.view(1, -1, 1, 1)) / mag
        return torch.cat((re * gain, im * gain), dim=1)


class CReLU(nn.Module):
    """``ReLU(Re x) + i ReLU(Im x)`` (a plain ReLU on the real-pair layout)."""

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)


_ACTIVATIONS = {"modrelu": ModReLU, "crelu": CReLU}


class _Layer(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, upsample: str | None, activation: str) -> None:
        super().__init__()
        self.conv = ComplexConv2d(cin, cout, k)
        self.upsample = upsample
        self.norm = ComplexNorm(cout)
        self.act = _ACTIVATIONS[activation](cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.upsample is not None:
            kwargs = {"align_corners": False} if self.upsample == "bilinear" else {}
            x = F.interpolate(x, scale_factor=2.0, mode=self.upsample, **kwargs)
        return self.act(self.norm(x))


class ComplexDecoder(Prior):
    """Natively complex decoder emitting a complex image ``(B, H, W)`` (``head="complex"`` only).

    Parameters
    ----------
    shape : (H, W)
    head : ``"complex"``
    seed : int
    channels : int
        Complex feature channels (default 64).
    layers : int
        Number of complex conv layers (default 6; ``layers − 1`` upsamplings).
    kernel_size : int
        Convolution size (default 3, odd).
    activation : ``"crelu" | "modrelu"``
    input_channels : int
        Complex input channels (default 32).
    input_scale : float
        Real and imaginary input parts ``~ U(0, input_scale)`` (default 0.1).
    upsample_mode : ``"bilinear" | "nearest"``
    """

    name = "complex"
    allowed_heads = ("complex",)

    def __init__(
        self,
        shape: tuple[int, int],
        head: str = "complex",
        seed: int = 0,
        *,
        channels: int = 64,
        layers: int = 6,
        kernel_size: int = 3,
        activation: str = "crelu",
        input_channels: int = 32,
        input_scale: float = 0.1,
        upsample_mode: str = "bilinear",
    ) -> None:
        super().__init__(shape, head, seed)
        channels = check_positive_int(channels, "ComplexDecoder: channels")
        layers = check_positive_int(layers, "ComplexDecoder: layers")
        kernel_size = check_positive_int(kernel_size, "ComplexDecoder: kernel_size")
        if kernel_size % 2 == 0:
            raise ValueError(f"ComplexDecoder: kernel_size must be odd, got {kernel_size}")
        input_channels = check_positive_int(input_channels, "ComplexDecoder: input_channels")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"ComplexDecoder: activation must be one of {tuple(_ACTIVATIONS)}, got {activation!r}")
        if upsample_mode not in ("bilinear", "nearest"):
            raise ValueError(f"ComplexDecoder: upsample_mode must be 'bilinear' or 'nearest', got {upsample_mode!r}")
        if not (isinstance(input_scale, (int, float)) and input_scale > 0):
            raise ValueError(f"ComplexDecoder: input_scale must be a positive number, got {input_scale!r}")
        self.config.update(
            channels=channels,
            layers=layers,
            kernel_size=kernel_size,
            activation=activation,
            input_channels=input_channels,
            input_scale=float(input_scale),
            upsample_mode=upsample_mode,
        )
        n_up = layers - 1
        min_coarse = 1 + kernel_size // 2
        self.padded_shape = tuple(padded_size(n, n_up, min_coarse) for n in self.shape)
        coarse = tuple(n // 2**n_up for n in self.padded_shape)
        weight_seed = self._init_input((1, 2 * input_channels, *coarse), 0.0, float(input_scale))
        with seeded_init(weight_seed):
            self.body = nn.Sequential(
                *(
                    _Layer(input_channels if i == 0 else channels, channels, kernel_size,
                           upsample_mode if i < n_up else None, activation)
                    for i in range(layers)
                )
            )
            self.head_layer = ComplexConv2d(channels, 1, 1, bias=True)

    def _image(self, z: torch.Tensor) -> torch.Tensor:
        out = self.head_layer(self.body(z))
        return torch.complex(out[:, 0], out[:, 1])
