r"""Deep Decoder (Heckel & Hand): an under-parametrised 1×1-convolution decoder.

``layers`` [6] layers of: 1×1 conv ``k → k`` without bias → ×2 upsampling (``bilinear``;
not after the last layer) → ReLU → BatchNorm (affine, batch statistics in train and
eval mode); then the output head, a 1×1 conv without bias. As in the reference code,
the last layer does not upsample, so there are ``L = layers − 1`` upsamplings and the
input ``z ~ U(0, 0.1)`` has shape ``(1, k, H/2^L, W/2^L)`` (``H/32`` for 6 layers),
on the smallest padded grid covering ``(H, W)`` whose coarsest level has at least 2×2
pixels (BatchNorm over a single pixel would zero every feature); the output is
centre-cropped.

Parameter count: ``layers·(k² + 2k) + n_out·k`` with ``n_out = 2`` for every head
(``k·n_out`` weights of the last conv). The reference (3 output channels, 6 layers)
has 25 536 / 100 224 / 397 056 parameters for k = 64 / 128 / 256; with our 2-channel
heads the counts are ``k`` lower (25 472 / 100 096 / 396 800).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Prior, check_positive_int, padded_size, seeded_init
from .heads import OutputHead

__all__ = ["DeepDecoder", "deep_decoder_parameter_count"]


def deep_decoder_parameter_count(channels: int, layers: int = 6, out_channels: int = 2) -> int:
    """Closed-form parameter count ``layers·(k² + 2k) + out_channels·k``."""
    return layers * (channels * channels + 2 * channels) + out_channels * channels


class _Layer(nn.Module):
    def __init__(self, k: int, upsample: str | None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(k, k, 1, bias=False)
        self.upsample = upsample
        self.bn = nn.BatchNorm2d(k, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.upsample is not None:
            kwargs = {"align_corners": False} if self.upsample in ("bilinear", "bicubic") else {}
            x = F.interpolate(x, scale_factor=2.0, mode=self.upsample, **kwargs)
        return self.bn(F.relu(x))


class DeepDecoder(Prior):
    """Deep Decoder emitting a complex image ``(B, H, W)``.

    Parameters
    ----------
    shape : (H, W)
    head : ``"real_imag" | "complex" | "amp_phase" | "sigmoid"`` (real, in [0, 1])
    seed : int
    channels : int
        ``k`` (default 64; 64–128 typical).
    layers : int
        Number of 1×1-conv layers (default 6; ``layers − 1`` upsamplings).
    input_scale : float
        Upper bound of the uniform input (default 0.1).
    upsample_mode : ``"bilinear" | "nearest" | "bicubic"``
    """

    name = "deep_decoder"

    def __init__(
        self,
        shape: tuple[int, int],
        head: str = "real_imag",
        seed: int = 0,
        *,
        channels: int = 64,
        layers: int = 6,
        input_scale: float = 0.1,
        upsample_mode: str = "bilinear",
    ) -> None:
        super().__init__(shape, head, seed)
        k = check_positive_int(channels, "DeepDecoder: channels")
        layers = check_positive_int(layers, "DeepDecoder: layers")
        if upsample_mode not in ("bilinear", "nearest", "bicubic"):
            raise ValueError(f"DeepDecoder: upsample_mode must be bilinear, nearest or bicubic, got {upsample_mode!r}")
        if not (isinstance(input_scale, (int, float)) and input_scale > 0):
            raise ValueError(f"DeepDecoder: input_scale must be a positive number, got {input_scale!r}")
        self.config.update(channels=k, layers=layers, input_scale=float(input_scale), upsample_mode=upsample_mode)
        n_up = layers - 1
        self.padded_shape = tuple(padded_size(n, n_up) for n in self.shape)
        coarse = tuple(n // 2**n_up for n in self.padded_shape)
        weight_seed = self._init_input((1, k, *coarse), 0.0, float(input_scale))
        with seeded_init(weight_seed):
            self.body = nn.Sequential(*(_Layer(k, upsample_mode if i < n_up else None) for i in range(layers)))
            self.head_layer = OutputHead(k, head, bias=False)
        # Channels-last (NHWC) weights and activations: the 1×1 convolutions, the upsampling and
        # BatchNorm run faster per fit step on a CPU (docs/notes.md, "Measurements formerly quoted
        # in code"); the output agrees to float32 rounding. A layout, not a change of the network.
        self.to(memory_format=torch.channels_last)

    def _image(self, z: torch.Tensor) -> torch.Tensor:
        return self.head_layer(self.body(z.contiguous(memory_format=torch.channels_last)))
