r"""Spectrally controlled decoder (Shi et al., seed ``002``; details from the authors' public code).

Decoder only, no encoder and no skips:

* input: ``input_channels`` [16] channels ``u ~ U(0, 1)`` mapped to ``[sin 2πu, cos 2πu]``
  ([32] channels) at ``H/2^S × W/2^S`` (``S`` = ``stages`` [5]); ``prior.z`` holds the
  mapped input, so engine jitter perturbs the sin/cos features (as in the authors' code);
* a block of two 3×3 Lipschitz convolutions ``2·input_channels → channels`` [128] →
  ``channels``;
* ``S`` × [×2 upsampling → two 3×3 Lipschitz convolutions ``channels → channels``];
  upsampling is :class:`~rfprior.priors.layers.GaussianUpsample` with per-stage σ coarse →
  fine [0.1, 0.1, 0.1, 0.5, 0.5] or ``"bilinear"``;
* the output head: an unnormalised 1×1 convolution (with bias).

Every 3×3 convolution is a :class:`~rfprior.priors.layers.LipschitzConv2d` (reflection
padding, no bias — a bias before mean subtraction would be cancelled exactly) followed
by :class:`~rfprior.priors.layers.MeanOnlyNorm` and LeakyReLU(0.01). λ defaults to 1.8 with
Gaussian upsampling and 1.4 with bilinear.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .base import Prior, check_positive_int, padded_size, seeded_init
from .heads import OutputHead
from .layers import GaussianUpsample, LipschitzConv2d, MeanOnlyNorm

__all__ = ["ControlledDecoder", "default_sigmas"]

DEFAULT_LAMBDA = {"gaussian": 1.8, "bilinear": 1.4}


def default_sigmas(stages: int) -> tuple[float, ...]:
    """Per-stage Gaussian σ, coarse → fine: 0.5 for the last two stages, 0.1 before (the authors' 5-stage list)."""
    return tuple(0.5 if i >= stages - 2 else 0.1 for i in range(stages))


def _block(cin: int, cout: int, lam: float, method: str) -> list[nn.Module]:
    return [LipschitzConv2d(cin, cout, 3, lam, method=method), MeanOnlyNorm(cout), nn.LeakyReLU(0.01)]


class ControlledDecoder(Prior):
    """Lipschitz- and Gaussian-controlled decoder emitting a complex image ``(B, H, W)``.

    Parameters
    ----------
    shape : (H, W)
    head : ``"real_imag" | "complex" | "amp_phase" | "sigmoid"`` (real, in [0, 1])
    seed : int
    channels : int
        Feature channels (default 128).
    stages : int
        Number of ×2 upsampling stages ``S`` (default 5).
    input_channels : int
        Number of uniform channels before the sin/cos map (default 16 → 32 inputs).
    upsample : ``"gaussian" | "bilinear"``
    sigmas : float or sequence of ``S`` floats, optional
        Gaussian σ per stage, coarse → fine (default ``default_sigmas(stages)`` of :mod:`rfprior.priors.controlled`).
    lam : float, optional
        Lipschitz bound λ (default 1.8 for Gaussian, 1.4 for bilinear upsampling).
    lipschitz_method : ``"svd" | "power"``
        How σ_max is computed (see :class:`~rfprior.priors.layers.LipschitzConv2d`).
    upsample_gain : ``"unit" | "dc"``
        Normalisation of the Gaussian filter (see :class:`~rfprior.priors.layers.GaussianUpsample`).
    input_scale : float
        ``u ~ U(0, input_scale)`` before the sin/cos map (default 1).
    """

    name = "controlled"

    def __init__(
        self,
        shape: tuple[int, int],
        head: str = "real_imag",
        seed: int = 0,
        *,
        channels: int = 128,
        stages: int = 5,
        input_channels: int = 16,
        upsample: str = "gaussian",
        sigmas: float | Sequence[float] | None = None,
        lam: float | None = None,
        lipschitz_method: str = "svd",
        upsample_gain: str = "unit",
        input_scale: float = 1.0,
    ) -> None:
        super().__init__(shape, head, seed)
        channels = check_positive_int(channels, "ControlledDecoder: channels")
        stages = check_positive_int(stages, "ControlledDecoder: stages", minimum=0)
        input_channels = check_positive_int(input_channels, "ControlledDecoder: input_channels")
        if upsample not in DEFAULT_LAMBDA:
            raise ValueError(f"ControlledDecoder: upsample must be 'gaussian' or 'bilinear', got {upsample!r}")
        if sigmas is None:
            sigmas = default_sigmas(stages)
        elif isinstance(sigmas, (int, float)):
            sigmas = (float(sigmas),) * stages
        sigmas = tuple(float(s) for s in sigmas)
        if len(sigmas) != stages or any(not (math.isfinite(s) and s >= 0) for s in sigmas):
            raise ValueError(f"ControlledDecoder: sigmas must be {stages} finite values ≥ 0, got {sigmas!r}")
        if upsample_gain not in ("unit", "dc"):
            raise ValueError(f"ControlledDecoder: upsample_gain must be 'unit' or 'dc', got {upsample_gain!r}")
        if lipschitz_method not in ("svd", "power"):
            raise ValueError(f"ControlledDecoder: lipschitz_method must be 'svd' or 'power', got {lipschitz_method!r}")
        lam = DEFAULT_LAMBDA[upsample] if lam is None else lam
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam > 0:
            raise ValueError(f"ControlledDecoder: lam must be a positive number, got {lam!r}")
        if not (isinstance(input_scale, (int, float)) and input_scale > 0):
            raise ValueError(f"ControlledDecoder: input_scale must be a positive number, got {input_scale!r}")
        self.config.update(
            channels=channels,
            stages=stages,
            input_channels=input_channels,
            upsample=upsample,
            sigmas=list(sigmas),
            lam=float(lam),
            lipschitz_method=lipschitz_method,
            upsample_gain=upsample_gain,
            input_scale=float(input_scale),
        )
        self.padded_shape = tuple(padded_size(n, stages) for n in self.shape)
        coarse = tuple(n // 2**stages for n in self.padded_shape)
        weight_seed = self._init_input((1, input_channels, *coarse), 0.0, float(input_scale))
        u = 2.0 * math.pi * self.z
        self.z = torch.cat((torch.sin(u), torch.cos(u)), dim=1)
        with seeded_init(weight_seed):
            layers: list[nn.Module] = [
                *_block(2 * input_channels, channels, lam, lipschitz_method),
                *_block(channels, channels, lam, lipschitz_method),
            ]
            for sigma in sigmas:
                if upsample == "gaussian":
                    layers.append(GaussianUpsample(sigma, 2, 5, gain=upsample_gain))
                else:
                    layers.append(nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False))
                layers += [*_block(channels, channels, lam, lipschitz_method)]
                layers += [*_block(channels, channels, lam, lipschitz_method)]
            self.body = nn.Sequential(*layers)
            self.head_layer = OutputHead(channels, head, bias=True, gain=math.sqrt(2.0))

    def _image(self, z: torch.Tensor) -> torch.Tensor:
        return self.head_layer(self.body(z))
