"""Turn ``reconstruct``'s ``prior=`` / ``loss=`` / ``init=`` into objects plus their recorded settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..defaults import default_prior
from ..losses import DSPLoss, MSELoss
from ..priors import expand_preset, make_prior, prior_names
from ..result import NetworkState

__all__ = ["load_init", "prior_of", "resolve_loss", "resolve_prior"]


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
        try:
            base, kwargs = expand_preset(prior, **kwargs)
        except ValueError:
            raise ValueError(f"prior must be one of {prior_names()}, got {prior!r}") from None
        if len(shape) != 2:
            raise ValueError(f"priors produce 2-D images; the operator's in_shape is {shape}")
        net = make_prior(base, tuple(shape), seed=seed, **kwargs)
        preset = {"preset": prior} if prior != base else {}
        return net, {"name": base, **preset, **{k: _jsonable(v) for k, v in kwargs.items()}}
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


def prior_of(init: NetworkState) -> tuple[str, dict[str, Any]]:
    """The prior name and keyword arguments that rebuild the warm start's architecture."""
    name = init.prior.get("preset", init.prior.get("name"))
    if name not in prior_names():
        raise ValueError(
            f"init: the previous fit's prior {name!r} is not a named prior; "
            "pass prior= a module of the same architecture"
        )
    return str(name), {k: v for k, v in init.prior.items() if k not in ("name", "preset")}


def load_init(net: torch.nn.Module, init: NetworkState, settings: dict[str, Any]) -> None:
    """Load the warm start's state into ``net``; a different architecture or image size is refused by name."""
    own = net.state_dict()
    theirs = init.state_dict
    bad = sorted(set(own) ^ set(theirs)) or [k for k in own if tuple(own[k].shape) != tuple(theirs[k].shape)]
    if bad:
        label = lambda prior: ", ".join(f"{k}={v}" for k, v in prior.items())  # noqa: E731
        raise ValueError(
            f"init: the previous fit's network ({label(init.prior)}) does not match this run's prior "
            f"({label(settings)}): tensor {bad[0]!r} differs (another prior, size or image shape?)"
        )
    net.load_state_dict(theirs)
