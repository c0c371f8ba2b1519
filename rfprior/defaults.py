"""rfprior's defaults, in one place: the fit's (:data:`FIT`) and each forward model's (:func:`modality_defaults`).

Every entry point reads them from here: :func:`rfprior.reconstruct` (``None`` / ``"auto"``
arguments), the ``rfprior`` command's options, :func:`rfprior.batch`, the demo and the
docs. ``reconstruct(y, op)`` with no options therefore does what ``rfprior reconstruct``
does: the discrepancy stop with a running average, the forward model's default prior
and penalty.

Per forward model the defaults are looked up by the operator's **type** (a restricted
operator — measured subsets, hold-out splits — by its parent's, :func:`forward_model`),
most specific class first, so a subclass of :class:`operators.PartialFourier` gets the
partial-Fourier defaults. :func:`register_modality` adds a forward model.

The values were chosen by measurement: the step size and priors on ``benchmarks/engine.py``
(docs/guide.md, "Defaults"), the penalty factors, radar's step and the per-model iteration budgets on
``benchmarks/quality.py`` (docs/validation.md, docs/notes.md), the discrepancy τ per prior on
``benchmarks/stopping.py`` (at a 1500-iteration budget).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any

from operators import DiffractionTomography, MIMORadar, PartialFourier, RestrictedOperator

__all__ = [
    "AUTO_FACTOR",
    "AUTO_FACTOR_OTHER",
    "DEFAULTS",
    "DEFAULT_PENALTIES",
    "DEFAULT_PRIORS",
    "FIT",
    "OTHER",
    "TAU",
    "TAU_OTHER",
    "FitDefaults",
    "ModalityDefaults",
    "default_iterations",
    "default_lr",
    "default_penalty",
    "default_prior",
    "default_tau",
    "forward_model",
    "modality_defaults",
    "register_modality",
]


@dataclass(frozen=True)
class FitDefaults:
    """The defaults of a fit, whatever the forward model (``reconstruct``'s and the CLI's)."""

    #: iteration budget where the forward model sets none (:attr:`ModalityDefaults.iterations`; partial
    #: Fourier and tomography: 3000, radar 1200) — so also ``DEFAULTS["iterations"]``; see :func:`default_iterations`
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


@dataclass(frozen=True)
class ModalityDefaults:
    """What depends on the forward model.

    prior : the prior used when none is given (a name or a size preset)
    penalty : the image penalty added by default (``"tv"`` or ``None``)
    penalty_factor : ``penalty_weight="auto"``: the fraction of the TV-discrepancy λ
    iterations : the iteration budget (``None``: :attr:`FitDefaults.iterations`)
    lr : the Adam step size (``None``: :attr:`FitDefaults.lr`)
    """

    prior: str = "deep_decoder"
    penalty: str | None = None
    penalty_factor: float = 0.5
    iterations: int | None = None
    lr: float | None = None


#: The fit's defaults.
FIT = FitDefaults()

#: Forward models not in the registry.
OTHER = ModalityDefaults()

# Radar scenes hold point targets far below the pixel pitch's resolution limit and a large null
# space at 128²: the Deep Decoder's smooth bilinear upsampling cannot place a one-pixel target and
# fills the null space instead (128² default scene, 20 dB: −4.4 dB at the end of 1500 iterations,
# oracle 21.8 dB; engine.md); the 32-channel skip network fits them. DIP + TV with λ a fraction of
# the TV-discrepancy λ, the fraction chosen on benchmarks/quality.py's tuning scenes.
# The Deep Decoder + TV is still rising at 1500 iterations on partial Fourier and tomography (the
# discrepancy rule rarely fires before the budget): 3000 iterations (with the checked-average
# fallback) gave +1.3 / +3.1 dB mean on the held-out tomography blobs at 20 / 30 dB (−0.4 dB at
# 10 dB) and +0.1 / +0.2 / +0.3 dB on held-out natural partial-Fourier scenes at 10 / 20 / 30 dB
# (quality_check, docs/notes.md). On radar (at the weight of the time) 3000 changed nothing measured on
# the tuning scenes; its budget is set below.
# Radar's fraction is 2.0: smaller weights leave a haze in the array's null space and make the fit
# chaotic (0.5: ±1 dB per case under a 10⁻⁴ change of the weight, SSIM 0.4–0.75); 0.5, 1.0 and 2.0
# give the same tuning PSNR within that noise (19.53 / 19.46–19.50 / 19.43–19.44 dB) and 2.0 the least
# haze (SSIM 0.79–0.84); held-out radar: a tie with TV, SSIM 0.70–0.84 (docs/notes.md).
# At that weight the radar fit runs to its budget with the running average still creeping up; Adam at
# 0.02 gets there sooner: on the mixed tuning scenes (10/20/30 dB, seeds 0–1, two draws) its average at
# 1200 iterations is 19.65–19.84 dB mean against 19.66–19.74 for 0.01 at 1500 — the same within the
# draw-to-draw spread, in 80 % of the iterations (held-out check and time to result: docs/notes.md).
# The step and the budget are the forward model's, whatever the prior: measured for dip_small + TV only.
_MODALITIES: dict[type, ModalityDefaults] = {
    PartialFourier: ModalityDefaults(prior="deep_decoder", penalty="tv", penalty_factor=0.25, iterations=3000),
    DiffractionTomography: ModalityDefaults(prior="deep_decoder", penalty="tv", penalty_factor=0.25, iterations=3000),
    MIMORadar: ModalityDefaults(prior="dip_small", penalty="tv", penalty_factor=2.0, iterations=1200, lr=0.02),
}

#: Discrepancy τ per prior (``Prior.name``) used by ``Discrepancy(tau=None)``; others use
#: :data:`TAU_OTHER`. The Deep Decoder adds signal detail while it slowly fits noise, so its
#: best iterate sits below Mσ² (rfprior.stopping.discrepancy).
TAU: Mapping[str, float] = MappingProxyType({"deep_decoder": 0.5})
TAU_OTHER = 1.0


def forward_model(op: Any) -> Any:
    """The operator whose type names the forward model: a restricted operator's parent (measured subsets)."""
    while isinstance(op, RestrictedOperator):
        op = op.op
    return op


def register_modality(cls: type, defaults: ModalityDefaults) -> None:
    """Give the forward model ``cls`` (and its subclasses) its own defaults."""
    if not isinstance(cls, type) or not isinstance(defaults, ModalityDefaults):
        raise TypeError("register_modality(cls, defaults): an operator class and a ModalityDefaults")
    _MODALITIES[cls] = defaults


def modality_defaults(op: Any = None) -> ModalityDefaults:
    """The defaults for forward model ``op`` (its most specific registered class; :data:`OTHER` else)."""
    if op is None:
        return OTHER
    for cls in type(forward_model(op)).__mro__:
        if cls in _MODALITIES:
            return _MODALITIES[cls]
    return OTHER


def default_prior(op: Any = None) -> str:
    """The prior :func:`rfprior.reconstruct` uses when none is given, for forward model ``op``."""
    return modality_defaults(op).prior


def default_penalty(op: Any = None) -> str | None:
    """The image penalty :func:`rfprior.reconstruct` adds by default for forward model ``op`` (or ``None``)."""
    return modality_defaults(op).penalty


def default_iterations(op: Any = None) -> int:
    """The iteration budget :func:`rfprior.reconstruct` uses when none is given, for forward model ``op``."""
    its = modality_defaults(op).iterations
    return FIT.iterations if its is None else its


def default_lr(op: Any = None) -> float:
    """The Adam step size :func:`rfprior.reconstruct` uses when none is given, for forward model ``op``."""
    lr = modality_defaults(op).lr
    return FIT.lr if lr is None else lr


def default_tau(prior: str | None) -> float:
    """The discrepancy τ for the prior named ``prior`` (:data:`TAU`, else :data:`TAU_OTHER`)."""
    return TAU.get(str(prior), TAU_OTHER)


class _View(Mapping[str, Any]):
    """A read-only mapping computed from the registry on every access (the older names below)."""

    def __init__(self, items: Any) -> None:
        self._items = items

    def _dict(self) -> dict[str, Any]:
        return dict(self._items())

    def __getitem__(self, key: str) -> Any:
        return self._dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __repr__(self) -> str:
        return repr(self._dict())


# Older names, read-only views of the above, keyed by the operator's class name.
#: ``{"prior": "auto", "iterations": …, "lr": …, …}``: :data:`FIT` as a mapping.
DEFAULTS: Mapping[str, Any] = _View(lambda: {"prior": "auto", **asdict(FIT)}.items())
#: the default prior per registered forward model (class name)
DEFAULT_PRIORS: Mapping[str, str] = _View(lambda: ((c.__name__, m.prior) for c, m in _MODALITIES.items()))
#: the default penalty per registered forward model (class name)
DEFAULT_PENALTIES: Mapping[str, str | None] = _View(lambda: ((c.__name__, m.penalty) for c, m in _MODALITIES.items()))
#: ``penalty_weight="auto"``'s fraction per registered forward model (class name)
AUTO_FACTOR: Mapping[str, float] = _View(lambda: ((c.__name__, m.penalty_factor) for c, m in _MODALITIES.items()))
AUTO_FACTOR_OTHER = OTHER.penalty_factor
