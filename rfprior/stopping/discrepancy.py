r"""Morozov's discrepancy principle.

Stop at the first iterate with

.. math:: \tfrac12\|y - A x_t\|^2 \le \tau\, M\, \sigma^2

(``M`` complex measurements in the fit set, σ per real/imag component). The
recorded statistic is the normalised misfit ``½‖y − A x_t‖² / (M σ²)``, which
crosses τ at the decision. With ``sigma=None`` and no σ given to the engine, σ is
estimated from the data (:func:`rfprior.modalities.estimate_sigma`) and reported.

**Choice of τ.** τ = 1 stops where the residual equals the noise energy. A fit with
``p`` effective degrees of freedom has expected residual ``(M − p)σ²`` at its best, so
the best iterate of a prior that keeps adding signal detail while it fits noise only
slowly sits *below* Mσ². Chosen by measurement (docs/validation.md; the figures in
docs/notes.md, "Measurements formerly quoted in code"): the Deep Decoder is best stopped
at τ = 0.5, the skip network (DIP), which fits noise fast once it has fit the signal, at
τ = 1. ``tau=None`` (the default) takes :data:`rfprior.defaults.TAU`
for the run's prior, else 1. No fixed τ picks a near-oracle iterate reliably: the misfit
alone cannot tell whether the network is still adding signal or already fitting noise.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..defaults import default_tau
from ..modalities import estimate_sigma
from .base import Decision, FitContext, Monitor, StoppingRule

__all__ = ["Discrepancy"]


class Discrepancy(StoppingRule):
    """Discrepancy principle with known or estimated noise σ.

    Parameters
    ----------
    sigma : noise σ per real/imag component in data units; ``None`` = the engine's
        ``sigma=`` if given, else estimated from the data.
    tau : threshold factor τ > 0; ``None`` = :data:`rfprior.defaults.TAU` for the prior being
        fitted (0.5 for the Deep Decoder), else 1 (DESIGN.md's default).
    """

    name = "discrepancy"

    def __init__(self, sigma: float | None = None, tau: float | None = None) -> None:
        if sigma is not None and not (isinstance(sigma, (int, float)) and sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"Discrepancy: sigma must be a positive finite number or None, got {sigma!r}")
        if tau is not None and not (
            isinstance(tau, (int, float)) and not isinstance(tau, bool) and math.isfinite(tau) and tau > 0
        ):
            raise ValueError(f"Discrepancy: tau must be a positive finite number or None, got {tau!r}")
        self.sigma = None if sigma is None else float(sigma)
        # a NoiseLevel (rfprior.noise) carries where σ came from: "file" or the estimator's name
        self._source = getattr(sigma, "source", "given")
        self.tau = None if tau is None else float(tau)

    def start(self, ctx: FitContext) -> Monitor:
        if self.sigma is not None:
            sigma, source = self.sigma, "given to Discrepancy" if self._source == "given" else self._source
        elif ctx.sigma is not None:
            source = getattr(ctx.sigma, "source", "given")
            sigma, source = float(ctx.sigma), "given to reconstruct" if source == "given" else source
        else:
            sigma, source = estimate_sigma(ctx.op, ctx.y)
        if not (sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"Discrepancy: the noise σ ({source}) is {sigma}; pass sigma= explicitly")
        tau = self.tau if self.tau is not None else default_tau(ctx.info.get("prior"))
        return _DiscrepancyMonitor(sigma, source, tau, ctx.n_fit)


class _DiscrepancyMonitor(Monitor):
    name = "discrepancy"

    def __init__(self, sigma: float, source: str, tau: float, m: int) -> None:
        self.sigma, self.source, self.tau, self.m = sigma, source, tau, m
        self.norm = m * sigma**2
        self.crossed: int | None = None
        self.min_ratio = math.inf

    def observe(self, iteration: int, image: torch.Tensor, misfit: float) -> Decision:
        ratio = misfit / self.norm
        self.min_ratio = min(self.min_ratio, ratio)
        hit = self.crossed is None and ratio <= self.tau
        if hit:
            self.crossed = iteration
        return Decision(statistic=ratio, candidate=hit, stop=hit)

    def summary(self) -> dict[str, Any]:
        return {
            "sigma": self.sigma,
            "sigma_source": self.source,
            "tau": self.tau,
            "threshold": self.tau * self.norm,
            "crossed_at": self.crossed,
            "min_ratio": self.min_ratio,
        }

    def finish(self, last_iteration: int) -> str | None:
        if self.crossed is None:
            return (
                f"the misfit never reached τMσ² (lowest ½‖r‖²/(Mσ²) = {self.min_ratio:.3g} > τ = {self.tau:g}; "
                f"σ = {self.sigma:.3g} {self.source})"
            )
        return None
