r"""Deep Image Prior (Ulyanov et al.): the encoder-decoder "skip" network.

Architecture (the reference ``skip`` net, reference denoising defaults in brackets):
for every scale ``i = 0 … S−1`` (``S`` [5] scales),

* down branch: 3×3 conv stride 2 → BN → act → 3×3 conv → BN → act
  (``channels_down[i]`` [128] channels),
* skip branch: 1×1 conv → BN → act (``channels_skip[i]`` [4] channels; 0 disables it),
* the next scale (or nothing at the deepest), then ×2 upsampling (``upsample_mode``
  [bilinear]),
* concatenate (skip, up) → BN → 3×3 conv → BN → act → 1×1 conv → BN → act
  (``channels_up[i]`` [128] channels),

then the output head (1×1 conv, with bias) on ``channels_up[0]`` features. BN is
``BatchNorm2d`` with batch statistics in both train and eval mode
(``track_running_stats=False``), so the prior is a function of its weights only; act is
LeakyReLU(0.2); every convolution has a bias and reflection padding. Input: ``z ~
U(0, 0.1)`` with ``input_channels`` [32] channels at the (padded) image size, which is
the smallest multiple of ``2**S`` (at least ``2·2**S``) that covers ``(H, W)``; the
output is centre-cropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import Prior, check_positive_int, padded_size, seeded_init
from .heads import OutputHead

__all__ = ["DIP"]

_UPSAMPLE_MODES = ("bilinear", "nearest", "bicubic")


def _per_scale(value: int | Sequence[int], scales: int, name: str, minimum: int) -> tuple[int, ...]:
    values = (value,) * scales if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
    if len(values) != scales:
        raise ValueError(f"DIP: {name} must be an int or a sequence of {scales} ints, got {value!r}")
    return tuple(check_positive_int(v, f"DIP: {name}", minimum) for v in values)


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, padding_mode="reflect" if k > 1 else "zeros")


def _bn_act(c: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(c, track_running_stats=False), nn.LeakyReLU(0.2)]


class _Scale(nn.Module):
    """One scale of the skip network; ``inner`` is the next (coarser) scale or ``None``."""

    def __init__(self, cin: int, down: int, up: int, skip: int, inner: nn.Module | None, inner_out: int, mode: str):
        super().__init__()
        self.skip = nn.Sequential(_conv(cin, skip, 1), *_bn_act(skip)) if skip > 0 else None
        self.down = nn.Sequential(_conv(cin, down, 3, 2), *_bn_act(down), _conv(down, down, 3), *_bn_act(down))
        self.inner = inner
        self.mode = mode
        k = inner_out if inner is not None else down
        self.bn = nn.BatchNorm2d(skip + k, track_running_stats=False)
        self.up = nn.Sequential(_conv(skip + k, up, 3), *_bn_act(up), _conv(up, up, 1), *_bn_act(up))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.down(x)
        if self.inner is not None:
            d = self.inner(d)
        kwargs = {"align_corners": False} if self.mode in ("bilinear", "bicubic") else {}
        d = F.interpolate(d, scale_factor=2.0, mode=self.mode, **kwargs)
        if self.skip is not None:
            d = torch.cat((self.skip(x), d), dim=1)
        return self.up(self.bn(d))


class DIP(Prior):
    """Deep Image Prior skip network emitting a complex image ``(B, H, W)``.

    Parameters
    ----------
    shape : (H, W)
        Output size in pixels (any size; built at a padded size and centre-cropped).
    head : ``"real_imag" | "complex" | "amp_phase" | "sigmoid"`` (real, in [0, 1])
    seed : int
        Seeds the input and the weights.
    scales : int
        Number of scales ``S`` (default 5).
    channels_down, channels_up, channels_skip : int or sequence of ``S`` ints
        Channels per scale (defaults 128, 128, 4; ``channels_skip`` may be 0).
    input_channels : int
        Channels of the input ``z ~ U(0, input_scale)`` (default 32).
    input_scale : float
        Upper bound of the uniform input (default 0.1).
    upsample_mode : ``"bilinear" | "nearest" | "bicubic"``
    """

    name = "dip"

    def __init__(
        self,
        shape: tuple[int, int],
        head: str = "real_imag",
        seed: int = 0,
        *,
        scales: int = 5,
        channels_down: int | Sequence[int] = 128,
        channels_up: int | Sequence[int] = 128,
        channels_skip: int | Sequence[int] = 4,
        input_channels: int = 32,
        input_scale: float = 0.1,
        upsample_mode: str = "bilinear",
    ) -> None:
        super().__init__(shape, head, seed)
        scales = check_positive_int(scales, "DIP: scales")
        down = _per_scale(channels_down, scales, "channels_down", 1)
        up = _per_scale(channels_up, scales, "channels_up", 1)
        skip = _per_scale(channels_skip, scales, "channels_skip", 0)
        input_channels = check_positive_int(input_channels, "DIP: input_channels")
        if upsample_mode not in _UPSAMPLE_MODES:
            raise ValueError(f"DIP: upsample_mode must be one of {_UPSAMPLE_MODES}, got {upsample_mode!r}")
        if not (isinstance(input_scale, (int, float)) and input_scale > 0):
            raise ValueError(f"DIP: input_scale must be a positive number, got {input_scale!r}")
        self.config.update(
            scales=scales,
            channels_down=list(down),
            channels_up=list(up),
            channels_skip=list(skip),
            input_channels=input_channels,
            input_scale=float(input_scale),
            upsample_mode=upsample_mode,
        )
        self.padded_shape = tuple(padded_size(n, scales) for n in self.shape)
        weight_seed = self._init_input((1, input_channels, *self.padded_shape), 0.0, float(input_scale))
        with seeded_init(weight_seed):
            net: nn.Module | None = None
            for i in reversed(range(scales)):
                cin = input_channels if i == 0 else down[i - 1]
                inner_out = up[i + 1] if i + 1 < scales else 0
                net = _Scale(cin, down[i], up[i], skip[i], net, inner_out, upsample_mode)
            self.body = net
            self.head_layer = OutputHead(up[0], head, bias=True)

    def _image(self, z: torch.Tensor) -> torch.Tensor:
        return self.head_layer(self.body(z))
