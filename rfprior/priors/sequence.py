r"""Per-frame network inputs on a smooth one-dimensional path: one prior for a whole frame sequence.

A sequence of F frames is fitted by **one** network ``f_θ`` (any :class:`~rfprior.priors.Prior`):
frame ``t`` is ``f_θ(z(s_t))`` where ``s_t ∈ [0, 1]`` is the frame's time normalised over the
sequence and ``z(s)`` runs piecewise linearly through K fixed random anchors ``a_0 … a_{K−1}``
(drawn like the prior's own input):

.. math:: z(s) = (1 − λ) a_k + λ a_{k+1}, \qquad k = \lfloor s (K − 1) \rfloor,\; λ = s (K − 1) − k

Frames close in time get close inputs, so the network's own smoothness carries what the frames
share (static structure, slow motion) from one frame to the next — the time-dependent DIP idea
(Yoo et al., IEEE TMI 2021), with the mapping network folded into the prior itself. The path is
fixed (not learned), like a single fit's input; ``anchors`` sets how far apart distant frames'
inputs are (K = 1: one input, a static scene; K = F: independent inputs on a line).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FramePath", "default_anchors"]


def default_anchors(frames: int) -> int:
    """The number of anchors for ``frames`` frames: one per 8 frames, at least 2 (a line), at most ``frames``."""
    return max(1, min(frames, max(2, math.ceil(frames / 8))))


class FramePath(nn.Module):
    """The per-frame inputs ``z(s_t)`` of a sequence fit (a fixed buffer, no parameters).

    Parameters
    ----------
    z : real tensor ``(1, C, h, w)``
        The prior's own input (``prior.z``): the first anchor; the others are drawn from
        ``U(min z, max z)`` with ``seed``.
    times : sequence of float, length F
        The frames' acquisition times (any unit; only their order and spacing matter).
    anchors : int
        K ≥ 1 anchors spread evenly over ``[min t, max t]``.
    seed : int

    Attributes
    ----------
    inputs : real tensor ``(F, C, h, w)``
        ``z(s_t)`` per frame.
    """

    inputs: torch.Tensor

    def __init__(self, z: torch.Tensor, times: Sequence[float], anchors: int, seed: int = 0) -> None:
        super().__init__()
        t = torch.as_tensor([float(v) for v in times], dtype=torch.float64)
        if t.ndim != 1 or t.numel() < 1 or not bool(torch.isfinite(t).all()):
            raise ValueError(f"times must be a non-empty sequence of finite numbers, got {list(times)!r}")
        if t.numel() > 1 and not bool((t[1:] > t[:-1]).all()):
            raise ValueError("times must be strictly increasing (one per frame, in acquisition order)")
        if isinstance(anchors, bool) or not isinstance(anchors, int) or anchors < 1:
            raise ValueError(f"anchors must be an int ≥ 1, got {anchors!r}")
        z = z.detach()
        g = torch.Generator().manual_seed(int(seed) + 7919)
        lo, hi = float(z.min()), float(z.max())
        extra = lo + (hi - lo) * torch.rand((anchors - 1, *z.shape[1:]), generator=g, dtype=torch.float64)
        points = torch.cat((z.double().cpu(), extra), dim=0)  # (K, C, h, w)
        span = float(t[-1] - t[0])
        s = (t - t[0]) / span if span > 0 else torch.zeros_like(t)
        pos = s * (anchors - 1)
        k = torch.clamp(pos.floor().long(), max=max(anchors - 2, 0))
        lam = (pos - k).reshape(-1, *([1] * (z.ndim - 1)))
        nxt = torch.clamp(k + 1, max=anchors - 1)
        inputs = (1 - lam) * points[k] + lam * points[nxt]
        self.register_buffer("inputs", inputs.to(dtype=z.dtype, device=z.device))
        self.anchors = anchors

    @property
    def frames(self) -> int:
        """F, the number of frames."""
        return int(self.inputs.shape[0])

    def forward(self, index: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """The inputs of frames ``index``, ``(len(index), C, h, w)``."""
        return self.inputs[torch.as_tensor(index, dtype=torch.long, device=self.inputs.device)]
