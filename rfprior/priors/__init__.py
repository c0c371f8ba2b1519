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

:func:`make_prior` also accepts the size presets of :data:`PRESETS` (``"dip_small"``,
``"controlled_small"``): a registered prior with preset sizes, which explicit keyword
arguments override. :func:`prior_names` lists every accepted name.
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
    "expand_preset",
    "make_prior",
    "prior_names",
]

#: The registered priors: name → class (the names of the table above); :func:`make_prior` builds them.
PRIORS: dict[str, type[Prior]] = {
    "dip": DIP,
    "deep_decoder": DeepDecoder,
    "controlled": ControlledDecoder,
    "complex": ComplexDecoder,
}

#: Named size presets, accepted wherever a prior name is (:func:`make_prior`, ``reconstruct(prior=...)``,
#: the CLI's ``--prior``): name → (the :data:`PRIORS` name, its keyword arguments). ``dip_small``
#: is the skip network at 32 channels, radar's default prior (chosen by measurement; see
#: docs/notes.md, "Measurements formerly quoted in code").
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "dip_small": ("dip", {"channels_down": 32, "channels_up": 32, "channels_skip": 4}),
    "controlled_small": ("controlled", {"channels": 32}),
}


def prior_names() -> tuple[str, ...]:
    """Every name :func:`make_prior` accepts: the :data:`PRIORS` names, then the :data:`PRESETS`."""
    return (*PRIORS, *PRESETS)


def expand_preset(name: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    """The :data:`PRIORS` name and keyword arguments that a prior name stands for.

    Parameters
    ----------
    name : str
        A :data:`PRIORS` name or a :data:`PRESETS` name.
    **kwargs
        Keyword arguments for the prior's class; they override a preset's.

    Returns
    -------
    base : str
        The :data:`PRIORS` name (``name`` itself unless it is a preset).
    kwargs : dict
        The preset's keyword arguments updated with ``kwargs``.

    Raises
    ------
    ValueError
        If ``name`` is neither a prior nor a preset; the message lists every accepted name.
    """
    if isinstance(name, str) and name in PRESETS:
        base, preset = PRESETS[name]
        return base, {**preset, **kwargs}
    if isinstance(name, str) and name in PRIORS:
        return name, dict(kwargs)
    raise ValueError(f"unknown prior name {name!r}; expected one of {prior_names()}")


def make_prior(name: str, shape: tuple[int, int], **kwargs: Any) -> Prior:
    """Build the prior named ``name`` for images of ``shape = (H, W)``.

    Parameters
    ----------
    name : str
        A :data:`PRIORS` name (``"dip"``, ``"deep_decoder"``, …) or a size preset of
        :data:`PRESETS` (``"dip_small"``, …): every name the defaults use.
    shape : tuple of int
        ``(H, W)``, the image size in pixels.
    **kwargs
        Go to the class (``head``, ``seed`` and architecture sizes); they override a
        preset's sizes.

    Returns
    -------
    Prior
        The network; ``make_prior(**prior.config)`` rebuilds an identical one.

    Raises
    ------
    ValueError
        For an unknown name (the message lists every accepted name).
    """
    try:
        base, kwargs = expand_preset(name, **kwargs)
    except ValueError as err:
        raise ValueError(f"make_prior: {err}") from None
    return PRIORS[base](tuple(shape), **kwargs)
