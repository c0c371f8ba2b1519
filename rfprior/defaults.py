"""rfprior's defaults, in one place: the fit's (:data:`FIT`) and each forward model's (:func:`modality_defaults`).

Every entry point reads them from here: :func:`rfprior.reconstruct` (``None`` / ``"auto"``
arguments), the ``rfprior`` command's options, :func:`rfprior.batch`, the demo and the
docs. ``reconstruct(y, op)`` with no options therefore does what ``rfprior reconstruct``
does: the discrepancy stop with a running average, the forward model's default prior
and penalty.

Per forward model the defaults are its :class:`~rfprior.modalities.Modality`'s
(:attr:`~rfprior.modalities.Modality.defaults`), found by operator
(:func:`rfprior.modalities.find`: most specific class first, a restricted operator by its
parent's); operators no modality claims get :data:`OTHER`. The values were chosen by
measurement (docs/notes.md, docs/validation.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from . import modalities
from .modalities import ModalityDefaults, forward_model

__all__ = [
    "FIT",
    "OTHER",
    "TAU",
    "TAU_OTHER",
    "FitDefaults",
    "ModalityDefaults",
    "default_constraint",
    "default_iterations",
    "default_lr",
    "default_penalty",
    "default_prior",
    "default_refine",
    "default_calibrate",
    "default_tau",
    "forward_model",
    "modality_defaults",
]


@dataclass(frozen=True)
class FitDefaults:
    """The defaults of a fit, whatever the forward model (``reconstruct``'s and the CLI's)."""

    #: iteration budget where the forward model sets none (:attr:`ModalityDefaults.iterations`);
    #: see :func:`default_iterations`
    iterations: int = 1500
    lr: float = 0.01  #: Adam step size where the forward model sets none (:attr:`ModalityDefaults.lr`)
    reg_noise_std: float = 0.0  #: input jitter (0 = none)
    loss: str = "mse"
    stop: str = "discrepancy"  #: the deciding stopping rule, by name (``rfprior.stopping.RULES``)
    average: bool = True  #: return the running average at the chosen iteration
    average_weight: float = 0.99  #: the running average's weight (the DIP paper's)
    seed: int = 0
    fits: int = 1
    penalty: str = "auto"  #: ``"auto"``: the forward model's (:attr:`ModalityDefaults.penalty`)
    penalty_weight: str = "auto"  #: ``"auto"``: a fraction of the TV-discrepancy λ
    autoscale: bool = True
    backtrack_db: float = 5.0
    max_backtracks: int = 10
    checkpoint_every: int = 100


#: The fit's defaults.
FIT = FitDefaults()

#: Forward models not in the registry.
OTHER = ModalityDefaults()

#: Discrepancy τ per prior (``Prior.name``) used by ``Discrepancy(tau=None)``; others use
#: :data:`TAU_OTHER`. The Deep Decoder adds signal detail while it slowly fits noise, so its
#: best iterate sits below Mσ² (rfprior.stopping.discrepancy).
TAU: Mapping[str, float] = MappingProxyType({"deep_decoder": 0.5})
#: Discrepancy τ for the priors not in :data:`TAU`.
TAU_OTHER = 1.0


def modality_defaults(op: Any = None) -> ModalityDefaults:
    """The defaults for forward model ``op`` (its :class:`~rfprior.modalities.Modality`'s; :data:`OTHER` else)."""
    m = modalities.find(op)
    return OTHER if m is None else m.defaults


def default_prior(op: Any = None) -> str:
    """The prior :func:`rfprior.reconstruct` uses when none is given, for forward model ``op``."""
    return modality_defaults(op).prior


def default_penalty(op: Any = None) -> str | None:
    """The image penalty :func:`rfprior.reconstruct` adds by default for forward model ``op`` (or ``None``)."""
    return modality_defaults(op).penalty


def default_constraint(op: Any = None) -> tuple[str, ...]:
    """The image constraint :func:`rfprior.reconstruct` applies by default for forward model ``op``."""
    return tuple(modality_defaults(op).constraint)


def default_iterations(op: Any = None) -> int:
    """The iteration budget :func:`rfprior.reconstruct` uses when none is given, for forward model ``op``."""
    its = modality_defaults(op).iterations
    return FIT.iterations if its is None else its


def default_lr(op: Any = None) -> float:
    """The Adam step size :func:`rfprior.reconstruct` uses when none is given, for forward model ``op``."""
    lr = modality_defaults(op).lr
    return FIT.lr if lr is None else lr


def default_refine(op: Any = None) -> int:
    """The pixel-refinement steps :func:`rfprior.reconstruct` runs after frequency hopping, for forward model ``op``."""
    return int(modality_defaults(op).refine_iterations)


def default_calibrate(op: Any = None) -> bool:
    """Whether :func:`rfprior.reconstruct` fits per-frequency gains by default, for forward model ``op``."""
    return bool(modality_defaults(op).calibrate)


def default_tau(prior: str | None) -> float:
    """The discrepancy τ for the prior named ``prior`` (:data:`TAU`, else :data:`TAU_OTHER`)."""
    return TAU.get(str(prior), TAU_OTHER)
