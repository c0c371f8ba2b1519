"""Untrained-network priors: networks with a fixed random input that emit a complex image.

Every prior follows the contract of :class:`~rfprior.priors.base.Prior`:
``make_prior(name, shape, head=..., seed=..., **sizes)()`` returns a complex image of
shape ``(1, H, W)``.

========================  =========================================================
name                      class
========================  =========================================================
``"dip"``                 :class:`DIP` — encoder-decoder with skips (Ulyanov et al.)
``"deep_decoder"``        :class:`DeepDecoder` — 1×1-conv decoder (Heckel & Hand)
``"controlled"``          :class:`ControlledDecoder` — Lipschitz/Gaussian-controlled
                          decoder (Shi et al.)
``"complex"``             :class:`ComplexDecoder` — natively complex decoder
========================  =========================================================
"""

from __future__ import annotations

from typing import Any

from .base import Prior
from .complex_net import ComplexDecoder
from .controlled import ControlledDecoder
from .deep_decoder import DeepDecoder
from .dip import DIP
from .heads import ALL_HEADS, HEADS, REAL_HEADS, OutputHead
from .layers import GaussianUpsample, LipschitzConv2d, MeanOnlyNorm, bed_of_nails

__all__ = [
    "ALL_HEADS",
    "HEADS",
    "REAL_HEADS",
    "PRESETS",
    "PRIORS",
    "DIP",
    "ComplexDecoder",
    "ControlledDecoder",
    "DeepDecoder",
    "GaussianUpsample",
    "LipschitzConv2d",
    "MeanOnlyNorm",
    "OutputHead",
    "Prior",
    "bed_of_nails",
    "make_prior",
]

PRIORS: dict[str, type[Prior]] = {
    "dip": DIP,
    "deep_decoder": DeepDecoder,
    "controlled": ControlledDecoder,
    "complex": ComplexDecoder,
}

#: Named size presets usable wherever a prior name is (CLI ``--prior``): name → (prior, kwargs).
#: ``dip_small`` is the skip network at 32 channels: measured on the bundled 64² MIMO file it
#: reaches the full DIP's quality at about a quarter of the cost (benchmarks/engine.py).
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "dip_small": ("dip", {"channels_down": 32, "channels_up": 32, "channels_skip": 4}),
    "controlled_small": ("controlled", {"channels": 32}),
}


def make_prior(name: str, shape: tuple[int, int], **kwargs: Any) -> Prior:
    """Build the prior registered as ``name`` (see :data:`PRIORS`) for images of ``shape = (H, W)``.

    ``kwargs`` go to the class (``head``, ``seed`` and architecture sizes).
    ``make_prior(**prior.config)`` rebuilds an identical prior.
    """
    if name not in PRIORS:
        raise ValueError(f"make_prior: unknown prior name {name!r}; expected one of {tuple(PRIORS)}")
    return PRIORS[name](tuple(shape), **kwargs)
