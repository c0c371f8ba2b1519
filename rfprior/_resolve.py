"""Turn the user's ``prior=`` / ``loss=`` arguments into objects plus their recorded settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = [
    "DEFAULT_PENALTIES",
    "DEFAULT_PRIORS",
    "PRESETS",
    "default_penalty",
    "default_prior",
    "resolve_loss",
    "resolve_prior",
]

#: Named size presets usable wherever a prior name is (CLI ``--prior``): name → (prior, kwargs).
#: ``dip_small`` is the skip network at 32 channels: measured on the bundled 64² MIMO file it
#: reaches the full DIP's quality at about a quarter of the cost (benchmarks/engine.py).
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "dip_small": ("dip", {"channels_down": 32, "channels_up": 32, "channels_skip": 4}),
    "controlled_small": ("controlled", {"channels": 32}),
}


#: The default prior per forward model (operator class name), chosen by measurement
#: (README "Defaults", benchmarks/engine.py). Radar scenes hold point targets far below the
#: pixel pitch's resolution limit and a large null space at 128²: the Deep Decoder's smooth
#: bilinear upsampling cannot place a one-pixel target and fills the null space instead
#: (128² default scene, 20 dB: −4.4 dB at the end of 1500 iterations, oracle 21.8 dB; engine.md), the
#: 32-channel skip network fits them.
DEFAULT_PRIORS: dict[str, str] = {"MIMORadar": "dip_small"}


#: The default image penalty per forward model (operator class name; restricted operators use
#: their parent's), chosen on benchmarks/quality.py: DIP + TV with λ = a fraction of the
#: TV-discrepancy λ (rfprior.penalty). Unlisted forward models: no penalty.
DEFAULT_PENALTIES: dict[str, str | None] = {"PartialFourier": "tv", "DiffractionTomography": "tv", "MIMORadar": "tv"}


def forward_model(op: Any) -> Any:
    """The operator whose type names the forward model: a restricted operator's parent (measured subsets)."""
    from operators import RestrictedOperator

    return op.op if isinstance(op, RestrictedOperator) else op


def default_penalty(op: Any = None) -> str | None:
    """The image penalty :func:`rfprior.reconstruct` adds by default for forward model ``op`` (or ``None``)."""
    return DEFAULT_PENALTIES.get(type(forward_model(op)).__name__)


def default_prior(op: Any = None) -> str:
    """The prior :func:`rfprior.reconstruct` uses when none is given, for forward model ``op``.

    ``DEFAULT_PRIORS[type(op).__name__]`` when listed, else ``DEFAULTS["prior"]`` when that
    is a name, else ``"deep_decoder"``.
    """
    from .engine import DEFAULTS

    name = type(forward_model(op)).__name__ if op is not None else None
    if name in DEFAULT_PRIORS:
        return DEFAULT_PRIORS[name]
    base = DEFAULTS["prior"]
    return base if isinstance(base, str) and base != "auto" else "deep_decoder"


def resolve_prior(
    prior: str | torch.nn.Module | None,
    shape: tuple[int, ...],
    seed: int,
    kwargs: dict[str, Any] | None,
    op: Any = None,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build a prior from a name (seeded) or accept a ready module; return it and its settings.

    ``prior=None`` or ``"auto"`` picks :func:`default_prior` for ``op``.
    """
    kwargs = dict(kwargs or {})
    if prior is None or prior == "auto":
        prior = default_prior(op)
    if isinstance(prior, str):
        from .priors import PRIORS, make_prior

        if prior in PRESETS:
            base, preset = PRESETS[prior]
            kwargs = {**preset, **kwargs}
            net = make_prior(base, tuple(shape), seed=seed, **kwargs)
            return net, {"name": base, "preset": prior, **{k: _jsonable(v) for k, v in kwargs.items()}}
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {sorted([*PRIORS, *PRESETS])}, got {prior!r}")
        if len(shape) != 2:
            raise ValueError(f"priors produce 2-D images; the operator's in_shape is {shape}")
        net = make_prior(prior, tuple(shape), seed=seed, **kwargs)
        return net, {"name": prior, **{k: _jsonable(v) for k, v in kwargs.items()}}
    if isinstance(prior, torch.nn.Module):
        if kwargs:
            raise ValueError(f"prior_kwargs only apply to a prior given by name, got {sorted(kwargs)}")
        if not hasattr(prior, "z"):
            raise TypeError("prior module must have a fixed input buffer `z` (see rfprior.priors.Prior)")
        cfg = getattr(prior, "config", {})
        return prior, {"name": type(prior).__name__, **{k: _jsonable(v) for k, v in dict(cfg).items()}}
    raise TypeError(f"prior must be a name or a torch.nn.Module, got {type(prior).__name__}")


def resolve_loss(loss: str | Callable[..., torch.Tensor]) -> tuple[Callable[..., torch.Tensor], dict[str, Any]]:
    """Build a loss from ``"mse"`` / ``"dsp"`` or accept a callable ``loss(pred, y, op)``."""
    if isinstance(loss, str):
        from .losses import DSPLoss, MSELoss

        name = loss.lower()
        if name == "mse":
            return MSELoss(), {"name": "mse"}
        if name == "dsp":
            fn = DSPLoss(w_complex=1.0, w_amplitude=1.0, w_phase=1.0)
            return fn, {"name": "dsp", **_public(fn)}
        raise ValueError(f"loss must be 'mse', 'dsp' or a callable, got {loss!r}")
    if callable(loss):
        return loss, {"name": type(loss).__name__, **_public(loss)}
    raise TypeError(f"loss must be a name or a callable, got {type(loss).__name__}")


def _public(obj: object) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in getattr(obj, "__dict__", {}).items() if not k.startswith("_")}


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return repr(v)
