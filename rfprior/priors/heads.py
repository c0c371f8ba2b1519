r"""Output heads: the last layer of a prior, from a real feature map to a complex image.

A network body emits real features ``(B, C, H, W)``; the head turns them into a
complex image ``(B, H, W)`` in the complex counterpart of the feature dtype.

``"real_imag"``
    A real 1×1 convolution to 2 channels ``(u, v)``; image ``u + i v``.
``"amp_phase"``
    A real 1×1 convolution to 2 channels ``(u, v)``; image ``softplus(u) · exp(i v)``.
    The amplitude is smooth and non-negative with a non-vanishing gradient; the phase
    is the raw channel in radians, unbounded (``exp(i·)`` wraps it), so no phase value
    is harder to reach than another (a ``π·tanh`` phase saturates near ±π).
``"complex"``
    A native complex 1×1 convolution: complex weights ``w = w_r + i w_i`` (stored as
    the real pair so that ``.double()``/``.half()`` and every optimiser treat them as
    ordinary parameters) and a complex bias, applied to the features:
    ``Σ_c w_c · f_c + b``. On a real feature map this is the same function class as
    ``"real_imag"``; it differs in parametrisation and initialisation (circular complex
    Gaussian weights, i.e. uniform phase and Rayleigh modulus). It is the natural head
    of the natively complex :class:`~rfprior.priors.complex_net.ComplexDecoder`, whose
    features are complex (there it acts on the real/imaginary feature pairs).
``"sigmoid"``
    A real 1×1 convolution to 1 channel ``u``; image ``sigmoid(u) + 0i``: a **real**
    image in ``(0, 1)`` with an imaginary part of exactly 0, returned as a complex
    tensor like every head. It is the output of the DIP, Deep Decoder and spectrally
    controlled decoder reference codes (natural images in [0, 1]). For a real,
    non-negative scene only: it cannot represent a phase. The range is in the engine's
    working units, so run ``reconstruct(..., autoscale=False)`` with an operator of
    norm 1 (e.g. ``operators.Identity``) for the output to lie in [0, 1] in data units.

:data:`HEADS` lists the heads that can represent any complex image; :data:`REAL_HEADS`
those that emit a real image; :data:`ALL_HEADS` both (what ``head=`` accepts).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ALL_HEADS", "HEADS", "REAL_HEADS", "OutputHead"]

#: heads that can represent any complex image
HEADS: tuple[str, ...] = ("real_imag", "complex", "amp_phase")
#: heads that emit a real image (imaginary part exactly 0)
REAL_HEADS: tuple[str, ...] = ("sigmoid",)
#: every head a prior accepts through ``head=``
ALL_HEADS: tuple[str, ...] = HEADS + REAL_HEADS


class OutputHead(nn.Module):
    """The output head ``kind`` on ``in_channels`` real features.

    Parameters
    ----------
    in_channels : int
        Number of feature channels ``C``.
    kind : ``"real_imag" | "complex" | "amp_phase" | "sigmoid"``
    bias : bool
        Whether the 1×1 convolution has a bias.
    gain : float, optional
        Weight standard deviation ``gain / sqrt(C)`` per real output channel; ``None``
        keeps PyTorch's default convolution initialisation (std ``1/sqrt(3C)``).

    Notes
    -----
    Shapes: ``forward``: real ``(B, C, H, W)`` → complex ``(B, H, W)``.
    """

    def __init__(self, in_channels: int, kind: str, bias: bool = True, gain: float | None = None) -> None:
        super().__init__()
        if kind not in ALL_HEADS:
            raise ValueError(f"head must be one of {ALL_HEADS}, got {kind!r}")
        self.kind = kind
        self.in_channels = int(in_channels)
        std = (gain if gain is not None else 1.0 / math.sqrt(3.0)) / math.sqrt(self.in_channels)
        if kind == "complex":
            self.weight_real = nn.Parameter(torch.randn(1, self.in_channels, 1, 1) * std)
            self.weight_imag = nn.Parameter(torch.randn(1, self.in_channels, 1, 1) * std)
            if bias:
                self.bias_real = nn.Parameter(torch.randn(1) * std)
                self.bias_imag = nn.Parameter(torch.randn(1) * std)
            else:
                self.register_parameter("bias_real", None)
                self.register_parameter("bias_imag", None)
        else:
            self.conv = nn.Conv2d(self.in_channels, 1 if kind in REAL_HEADS else 2, 1, bias=bias)
            if gain is not None:
                bound = math.sqrt(3.0) * std
                nn.init.uniform_(self.conv.weight, -bound, bound)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.kind == "complex":
            weight = torch.cat((self.weight_real, self.weight_imag), dim=0)
            bias = None if self.bias_real is None else torch.cat((self.bias_real, self.bias_imag))
            out = F.conv2d(features, weight, bias)
            return torch.complex(out[:, 0], out[:, 1])
        out = self.conv(features)
        if self.kind == "real_imag":
            return torch.complex(out[:, 0], out[:, 1])
        if self.kind == "sigmoid":
            real = torch.sigmoid(out[:, 0])
            return torch.complex(real, torch.zeros_like(real))
        return torch.polar(F.softplus(out[:, 0]), out[:, 1])

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, kind={self.kind!r}"
