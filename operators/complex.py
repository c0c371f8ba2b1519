"""Conversions between native complex images and 2-channel real tensors.

Networks emit real tensors ``(B, C, H, W)``; operators take complex ``(..., H, W)``.
These two helpers are the only place where the two layouts meet.
"""

from __future__ import annotations

import torch

__all__ = ["to_channels", "from_channels"]


def to_channels(x: torch.Tensor) -> torch.Tensor:
    """Complex ``(..., H, W)`` → real ``(B, 2, H, W)`` with channels (real, imag).

    Leading axes are flattened into ``B`` (a single image gives ``B = 1``).
    """
    if not x.is_complex():
        raise TypeError(f"to_channels: expected a complex tensor, got {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"to_channels: expected shape (..., H, W), got {tuple(x.shape)}")
    x = x.reshape(-1, *x.shape[-2:])
    return torch.stack((x.real, x.imag), dim=1)


def from_channels(t: torch.Tensor) -> torch.Tensor:
    """Real ``(B, 2, H, W)`` (channels real, imag) → complex ``(B, H, W)``."""
    if t.is_complex() or t.ndim != 4 or t.shape[1] != 2:
        raise ValueError(f"from_channels: expected a real tensor of shape (B, 2, H, W), got {tuple(t.shape)} {t.dtype}")
    return torch.complex(t[:, 0], t[:, 1])
