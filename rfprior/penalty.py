r"""Image-domain penalties added to the data term of a fit (DIP + TV).

The fit then minimises over the network weights θ

.. math::  \tfrac12\|A f_\theta(z) - y\|^2 + \lambda\, \mathrm{TV}(f_\theta(z)),
           \qquad \mathrm{TV}(x) = \sum_p \sqrt{|\partial_y x_p|^2 + |\partial_x x_p|^2}

(isotropic complex TV, forward differences with Neumann boundary, the same TV as
:func:`operators.tv_reconstruct`), as in Liu, Sun, Xu & Kamilov, "Image restoration using
total variation regularized deep image prior" (ICASSP 2019). The network supplies its
structural prior, TV removes the noise it would otherwise fit.

Choosing λ without ground truth: ``weight="auto"`` takes ``factor × λ_TV`` with
``λ_TV`` the TV regularisation that the discrepancy principle selects for plain TV on
the same data (:func:`operators.tv_discrepancy`, σ given or estimated like the
discrepancy rule's) and ``factor`` per forward model (:func:`auto_factor`, the modality's
:attr:`~rfprior.modalities.ModalityDefaults.penalty_factor`): the network
already restrains the noise, so a fraction of the classical λ is enough for partial Fourier
and tomography (0.25); radar takes twice it (2.0), which removes most of the haze the skip
network leaves in the array's null space at the same PSNR. The factors were chosen by
measurement on tuning scenes and checked on held-out ones (docs/validation.md, docs/notes.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from operators import LinearOperator, tv_discrepancy

from .defaults import modality_defaults
from .losses import half_squared_norm
from .modalities import estimate_sigma

__all__ = [
    "PENALTIES",
    "Penalty",
    "auto_factor",
    "reference_weight",
    "resolve_penalty",
    "search_iters",
    "total_variation",
]

#: Penalty names accepted by :func:`rfprior.reconstruct` (``None`` = no penalty).
PENALTIES = ("tv",)

#: ``weight="auto"`` searches λ_TV to this relative misfit (``operators.search_lambda``'s ``rtol``):
#: decade steps while far above the target and regula falsi in the bracket need fewer solves than
#: the baseline protocol for a λ within its precision (docs/notes.md, "Measurements formerly
#: quoted in code").
WEIGHT_RTOL = 0.01


def search_iters(op: LinearOperator) -> int:
    """PDHG steps per λ of ``penalty_weight="auto"``'s TV search for ``op`` (the modality's
    :attr:`~rfprior.modalities.ModalityDefaults.penalty_search_iters`: 100, radar 30 —
    ``benchmarks/results/penalty_weight.md``)."""
    return modality_defaults(op).penalty_search_iters


def auto_factor(op: LinearOperator) -> float:
    """The fraction of the TV-discrepancy λ that ``penalty_weight="auto"`` uses for ``op``."""
    return modality_defaults(op).penalty_factor


def total_variation(x: torch.Tensor, eps: float = 0.0, temporal_weight: float = 0.0) -> torch.Tensor:
    """Isotropic TV of complex or real images ``(..., H, W)``, summed over everything (differentiable).

    ``eps`` (squared image units) smooths the norm at zero gradient: ``√(|∇x|² + eps)``. With
    ``temporal_weight`` w > 0 the axis before the image axes is time (a stack ``(..., F, H, W)``) and
    the norm is spatio-temporal: ``√(|∂_y x|² + |∂_x x|² + w² |x_{t+1} − x_t|² + eps)``.
    """
    pad = torch.nn.functional.pad
    # forward differences with a Neumann boundary: the last row / column / frame has no difference (padded with 0)
    sq = pad(torch.diff(x, dim=-2).abs() ** 2, (0, 0, 0, 1)) + pad(torch.diff(x, dim=-1).abs() ** 2, (0, 1))
    if temporal_weight > 0 and x.ndim >= 3:
        sq = sq + temporal_weight**2 * pad(torch.diff(x, dim=-3).abs() ** 2, (0, 0, 0, 0, 0, 1))
    return torch.sqrt(sq + eps).sum()


@dataclass(frozen=True)
class Penalty:
    """A resolved penalty: ``weight · TV(x)`` in data units (``weight`` = λ of the objective above)."""

    name: str
    weight: float
    settings: dict[str, Any]

    def in_fit_units(self, scale: float, op_norm: float, y: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The same term for the fit's variables ``u = s ‖A‖ x`` (data × ``s``, operator / ``‖A‖``).

        ``s² (½‖Ax − y‖² + λ TV(x)) = ½‖(A/‖A‖) u − s y‖² + (λ s / ‖A‖) TV(u)``. The norm's
        smoothing ε is tied to the data (``(10⁻⁶ · s‖y‖/√M)²``, M measurements), so a resumed run
        computes the same term as an uninterrupted one.
        """
        level = scale * float(torch.linalg.vector_norm(y)) / max(1.0, float(y.numel())) ** 0.5
        return _FitPenalty(self.weight * scale / op_norm, max((1e-6 * level) ** 2, 1e-30))


class _FitPenalty:
    """``w · TV(u)`` on the fit's output ``u`` (fit units), with the norm smoothed by ``eps``."""

    def __init__(self, weight: float, eps: float) -> None:
        self.weight, self.eps = weight, eps

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return self.weight * total_variation(u, self.eps)


def resolve_penalty(
    penalty: str | None,
    weight: float | str,
    op: LinearOperator,
    y: torch.Tensor,
    sigma: float | None,
) -> Penalty | None:
    """Turn ``reconstruct``'s ``penalty``/``penalty_weight`` into a :class:`Penalty` (or ``None``).

    ``weight="auto"`` runs the TV discrepancy search (σ given, else estimated from the data with
    :func:`rfprior.modalities.estimate_sigma`) and takes :func:`auto_factor` of its λ.
    """
    if penalty is None:
        return None
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {PENALTIES} or None, got {penalty!r}")
    if len(op.in_shape) != 2:
        raise ValueError(f"penalty={penalty!r} needs 2-D images, op.in_shape is {op.in_shape}")
    if isinstance(weight, str):
        if weight != "auto":
            raise ValueError(f"penalty_weight must be a number ≥ 0 or 'auto', got {weight!r}")
        how = getattr(sigma, "source", "given")  # a NoiseLevel: "file" or the estimator's name
        if sigma is None or not sigma > 0:  # unknown, or noiseless data (σ = 0 leaves λ undefined)
            sigma, how = estimate_sigma(op, y)
        if not sigma > 0:  # noise-free data: the discrepancy λ is 0, so is the penalty
            return Penalty(penalty, 0.0, {"name": penalty, "weight": 0.0, "weight_rule": "σ̂ = 0: noise-free data"})
        steps = search_iters(op)
        choice = tv_discrepancy(op, y, sigma=sigma, iters=steps, rtol=WEIGHT_RTOL)
        factor = auto_factor(op)
        lam = factor * choice.parameter
        return Penalty(
            penalty,
            lam,
            {
                "name": penalty,
                "weight": lam,
                "weight_rule": f"{factor} x TV discrepancy lambda",
                "tv_discrepancy_lambda": choice.parameter,
                "search_pdhg_steps": steps,
                "sigma": float(sigma),
                "sigma_estimator": how,
            },
        )
    w = float(weight)
    if not (w >= 0 and math.isfinite(w)):
        raise ValueError(f"penalty_weight must be a finite number ≥ 0 or 'auto', got {weight!r}")
    return Penalty(penalty, w, {"name": penalty, "weight": w, "weight_rule": "given"})


def reference_weight(penalty: str, op: LinearOperator, y: torch.Tensor, reference: torch.Tensor) -> Penalty:
    r"""``penalty_weight="auto"`` for a **nonlinear** model: ``λ = f · ½‖y‖² / TV(x_ref)``.

    The TV-discrepancy search of :func:`resolve_penalty` needs a linear model; on the Born
    linearisation of full-wave data it finds λ ≈ 0 (Born cannot reach the discrepancy target, so
    the search runs down to its floor). Instead the penalty is scaled against the data: at
    ``λ = f ½‖y‖²/TV(x_ref)`` the penalty of the reference image is the fraction ``f`` of the data's
    energy. ``x_ref`` is a data-consistent image fitted without the penalty — the previous band's
    image in frequency hopping (:func:`rfprior.fit.nonlinear.fit_hopping`) — and ``f`` the modality's
    :attr:`~rfprior.modalities.ModalityDefaults.penalty_factor`. On the full-wave tuning scenes the
    best λ was the same at 20 and 30 dB (docs/notes.md): the weight is σ-free.
    """
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {PENALTIES} or None, got {penalty!r}")
    tv = float(total_variation(reference.detach()))
    energy = float(half_squared_norm(y.detach()))
    factor = auto_factor(op)
    if not (tv > 0 and math.isfinite(tv) and energy > 0):  # a flat reference or no data: no penalty
        return Penalty(penalty, 0.0, {"name": penalty, "weight": 0.0, "weight_rule": "a flat reference image"})
    lam = factor * energy / tv
    settings = {"name": penalty, "weight": lam, "weight_rule": f"{factor} x ½‖y‖² / TV(reference image)"}
    return Penalty(penalty, lam, {**settings, "reference_tv": tv})
