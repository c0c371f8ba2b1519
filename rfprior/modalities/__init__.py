"""One home per forward model: the :class:`Modality` objects and their registry.

Everything the package asks about a forward model — the file schema and its xarray layout,
the operator, the σ estimator, the direct image and the fair baselines, simulation, the fit
defaults and the stopping rules offered — is asked of its :class:`Modality`, looked up here
by name (:func:`get`, a file's ``modality`` attribute) or by operator (:func:`find`, most
specific operator class first; a restricted operator by its parent's).

* ``"mimo"``: :class:`MIMO`, for :class:`operators.MIMORadar`;
* ``"partial_fourier"``: :class:`PartialFourierModality`, for :class:`operators.PartialFourier`;
* ``"diffraction_tomography"``: :class:`Tomography`, for :class:`operators.DiffractionTomography`.

A new forward model is one module with a :class:`Modality` subclass and one call,
``rfprior.modalities.register(MyModality())``. Frame sequences come with it (:class:`FrameHooks`).
"""

from __future__ import annotations

from typing import Any

import torch

from operators import LinearOperator

from .base import Modality, ModalityDefaults, NoiseEstimator, forward_model
from .frames import FrameChecker, FrameHooks
from .mimo import MIMO
from .partial_fourier import PartialFourierModality
from .scattering import FullWave
from .tomography import Tomography

__all__ = [
    "FullWave",
    "PHYSICS",
    "physics_target",
    "MIMO",
    "FrameChecker",
    "FrameHooks",
    "Modality",
    "ModalityDefaults",
    "NoiseEstimator",
    "PartialFourierModality",
    "Tomography",
    "estimate_sigma",
    "find",
    "forward_model",
    "get",
    "names",
    "register",
    "unregister",
]

_REGISTRY: dict[str, Modality] = {}


def register(modality: Modality, *, replace: bool = False) -> Modality:
    """Add ``modality`` to the registry (by its ``name``); returns it.

    Raises ``ValueError`` when the name is taken (``replace=True`` replaces it) and ``TypeError``
    for anything that is not a :class:`Modality` with a name, operator type and measurement axes.
    """
    if not isinstance(modality, Modality):
        raise TypeError(f"register: expected a Modality instance, got {type(modality).__name__}")
    if not modality.name or not isinstance(modality.name, str):
        raise TypeError(f"register: {type(modality).__name__}.name must be a non-empty string")
    if not (isinstance(modality.operator_type, type) and modality.measurement_dims):
        raise TypeError(f"register: {type(modality).__name__} needs operator_type and measurement_dims")
    if modality.name in _REGISTRY and not replace:
        raise ValueError(f"register: a modality named {modality.name!r} is registered already (replace=True)")
    _REGISTRY[modality.name] = modality
    return modality


def unregister(name: str) -> None:
    """Remove the modality ``name`` (e.g. a test's toy forward model)."""
    _REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    """The registered modality names, in registration order."""
    return tuple(_REGISTRY)


def get(name: Any) -> Modality:
    """The modality registered as ``name``; ``ValueError`` naming the registered ones otherwise."""
    if isinstance(name, Modality):
        return name
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"modality must be one of {sorted(_REGISTRY)}, got {name!r}")
    return _REGISTRY[name]


def find(op: Any) -> Modality | None:
    """The modality of operator ``op`` (its most specific registered class; a restricted operator by its
    parent's), or ``None`` for an operator no modality claims."""
    if op is None:
        return None
    for cls in type(forward_model(op)).__mro__:
        for m in reversed(_REGISTRY.values()):  # a later registration wins for the same class
            if m.operator_type is cls:
                return m
    return None


#: ``--physics`` names: the linear (first Born) model and the full-wave (Lippmann–Schwinger) one
PHYSICS = ("born", "full-wave")


def physics_target(modality: str, physics: str) -> str:
    """The modality that reads ``modality``'s records with ``physics`` (:data:`PHYSICS`).

    Raises ``ValueError`` naming the physics the forward model offers.
    """
    m = get(modality)
    if physics not in PHYSICS:
        raise ValueError(f"physics must be one of {', '.join(PHYSICS)}, got {physics!r}")
    offered = dict(m.physics)
    if physics not in offered:
        have = ", ".join(offered) or "only its own"
        raise ValueError(f"physics {physics!r}: not offered for {m.label or m.name} data (offered: {have})")
    return offered[physics]


def estimate_sigma(op: LinearOperator, y: torch.Tensor) -> tuple[float, str]:
    """σ per real/imaginary component of ``y = A x + n`` from the data alone, and the estimator's name.

    The forward model's estimator (:meth:`Modality.estimate_sigma`); for an operator no modality
    claims, the generic MAD of second differences (:func:`rfprior.noise.sigma_mad`).
    """
    m = find(op)
    return (m or Modality()).estimate_sigma(op, y)


for _m in (MIMO(), PartialFourierModality(), Tomography(), FullWave()):
    register(_m)
del _m
