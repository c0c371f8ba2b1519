r"""Full-wave TV inversion on the pixels: :func:`fullwave_tv` (the untrained prior's objective without the network).

Minimises, over the contrast image ``χ (H, W)`` itself,

.. math::

    \tfrac12 \|y - A(\chi)\|^2 + \lambda\, \mathrm{TV}_\varepsilon(\chi), \qquad
    \mathrm{TV}_\varepsilon(\chi) = \sum_p \sqrt{|\nabla\chi|_p^2 + \varepsilon},

with ``A`` the full-wave model (:class:`operators.LippmannSchwinger`, gradients by its adjoint
state), by Adam steps on ``(Re χ, Im χ)`` through the constraint parametrisation (``Re χ ≥ 0``,
``Im χ ≤ 0`` for a passive lossy object, or ``Im χ = 0``), from ``χ = 0``.

**Frequency hopping** (Chew & Lin 1995), as :func:`rfprior.reconstruct` does for the network:
the lowest frequency, the two lowest, …, all, each band started from the last; the early bands
run ``max(50, iterations // (2 (B − 1)))`` steps without TV. **The weight** is the rule of
:func:`rfprior.penalty.reference_weight`: ``λ = f · ½‖y‖² / TV(χ_ref)`` with ``χ_ref`` the previous
band's image (``f = 0.003``, the full-wave modality's factor; no ground truth, no σ).

This is :func:`rfprior.reconstruct`'s full-wave fit with the network replaced by the pixels —
its ablation: the same data term, penalty, weight rule, constraints, hopping and step size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._scattering_checks import _check_operator, _count, _initial_contrast, _measurements
from .base import LinearOperator
from .calibration import calibrated
from .classical import gradient2d
from .krylov import ConvergenceError

__all__ = ["FullWaveTVResult", "fullwave_tv"]

#: consecutive failed field solves (each halves the step) before :func:`fullwave_tv` gives up
MAX_BACKTRACKS = 5
#: steps over which ``rtol`` measures the objective's progress
WINDOW = 50


@dataclass(frozen=True)
class FullWaveTVResult:
    """The outcome of :func:`fullwave_tv`.

    Attributes
    ----------
    chi : complex ``(H, W)``, ``op.dtype`` — the contrast ``ε_r − 1`` after the last step
    weight : λ of the last band (data units squared per unit TV)
    misfit : ``½‖y − A(χ)‖²`` over the valid entries at each step of the last band (data units squared)
    objective : ``misfit + λ TV_ε(χ)`` at each step of the last band
    bands : ``(frequency indices, steps run)`` of each hopping band, low to high
    backtracks : field solves that failed and were undone by halving the step
    stopped : ``"iterations"`` (the budget ran out) or ``"converged"`` (``rtol`` was met)
    gains : with ``calibrate=True``, the complex gain of each frequency at the last step
        (:func:`operators.calibration.frequency_gains`, in the operator's frequency order); else ``None``
    """

    chi: torch.Tensor
    weight: float
    misfit: tuple[float, ...]
    objective: tuple[float, ...]
    bands: tuple[tuple[tuple[int, ...], int], ...]
    backtracks: int
    stopped: str
    gains: tuple[complex, ...] | None = None


def _tv(chi: torch.Tensor, eps: float) -> torch.Tensor:
    """Smoothed isotropic TV, forward differences with a Neumann boundary (summed)."""
    return torch.sqrt((gradient2d(chi).abs() ** 2).sum(dim=-3) + eps).sum()


def _constrained(v: torch.Tensor, real: bool, lossy: bool, nonnegative: bool) -> torch.Tensor:
    """``χ`` from the parameters ``v (H, W, 2)``: the constraints as clamps (zero gradient where active)."""
    re, im = v[..., 0], v[..., 1]
    if lossy or nonnegative:
        re = re.clamp(min=0)
    if real:
        im = torch.zeros_like(im)
    elif lossy:
        im = im.clamp(max=0)
    return torch.complex(re, im)


def _half_sq(r: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.view_as_real(r).square().sum()


def fullwave_tv(
    op: LinearOperator,
    y: torch.Tensor,
    *,
    valid: torch.Tensor | None = None,
    iterations: int = 400,
    chi0: torch.Tensor | None = None,
    weight: float | None = None,
    factor: float = 0.003,
    lr: float = 0.01,
    hopping: bool = True,
    real: bool = False,
    lossy: bool = True,
    nonnegative: bool = False,
    eps: float = 1e-8,
    rtol: float = 0.0,
    calibrate: bool = False,
    callback: Callable[[int, torch.Tensor, float], None] | None = None,
) -> FullWaveTVResult:
    r"""TV-regularised full-wave inversion on the pixels, with frequency hopping (module docstring).

    Parameters
    ----------
    op : :class:`operators.LippmannSchwinger` (nonlinear, ``in_shape (H, W)``, ``out_shape (T, R, F)``)
    y : complex ``(T, R, F)`` measurements in the operator's units
    valid : bool ``(T, R, F)``, the measured entries (default all); the others are never read
    iterations : Adam steps on all frequencies (the last band)
    chi0 : complex ``(H, W)`` starting contrast (default 0), e.g. a network prior's image to refine
    weight : λ itself (default: the rule below)
    factor : ``f`` of the weight rule ``λ = f · ½‖y‖² / TV(previous band's image)``
    lr : Adam step size (contrast units per step)
    hopping : fit the frequency bands low to high (needs ≥ 2 frequencies; with one band, or
        ``False``, there is no reference image and, without ``weight``, the fit runs without TV)
    real, lossy, nonnegative : constraints (``Im χ = 0``; ``Re χ ≥ 0, Im χ ≤ 0``; ``Re χ ≥ 0``)
    eps : TV smoothing (squared contrast units)
    rtol : stop the last band once the objective fell by less than ``rtol`` (relative) over the last
        50 steps (0: run every step)
    calibrate : fit one complex gain per frequency, normalised to a geometric mean of one
        (:mod:`operators.calibration`): the misfit is ``½ Σ_f ‖y_f − g_f A_f(χ)‖²``
    callback : ``callback(step, χ, misfit)`` after each step of the last band

    Returns
    -------
    FullWaveTVResult

    Raises
    ------
    ConvergenceError
        A field solve failed more than 5 times in a row (each failure halves the step).
    """
    name = "fullwave_tv"
    _check_operator(op, name)
    if not hasattr(op, "select_frequencies"):
        raise TypeError(f"{name}: op must offer select_frequencies (a LippmannSchwinger)")
    y, valid, _ = _measurements(op, y, valid, name)
    iterations = _count(iterations, "iterations", name, 1)
    start = _initial_contrast(op, chi0, name)
    checks = [("factor", factor), ("lr", lr), ("eps", eps), ("rtol", rtol)] + (
        [] if weight is None else [("weight", weight)]
    )
    for what, value in checks:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}: {what} must be a finite number ≥ 0, got {value!r}")
    if lr <= 0:
        raise ValueError(f"{name}: lr must be > 0, got {lr!r}")
    if not isinstance(calibrate, bool):
        raise TypeError(f"{name}: calibrate must be True or False, got {calibrate!r}")
    n_freq = op.out_shape[2]
    order = sorted(range(n_freq), key=lambda i: float(op.frequencies[i]))
    bands = [sorted(order[: n + 1]) for n in range(n_freq)] if hopping and n_freq > 1 else [list(range(n_freq))]
    early = max(50, iterations // (2 * (len(bands) - 1))) if len(bands) > 1 else 0
    v = torch.zeros(*op.in_shape, 2, dtype=op.real_dtype, device=op.device)
    if start is not None:
        v.copy_(torch.view_as_real(start.to(op.dtype)))
    v.requires_grad_(True)
    backtracks, lam, history, objective = 0, 0.0 if weight is None else float(weight), [], []
    stopped, ran, gains = "iterations", 0, None
    for b, band in enumerate(bands):
        last = b == len(bands) - 1
        sub = op if len(band) == n_freq else op.select_frequencies(band)
        y_b = y[..., band]
        keep = None if valid is None else valid[..., band].to(y.dtype)  # 1 where measured, 0 elsewhere
        if keep is not None:
            y_b = y_b * keep
        labels = torch.arange(len(band), device=y.device)
        if last and weight is None and factor > 0 and len(bands) > 1:
            with torch.no_grad():
                ref = float(_tv(_constrained(v, real, lossy, nonnegative), 0.0))
            lam = factor * float(_half_sq(y_b)) / ref if ref > 0 else 0.0
        steps = iterations if last else early
        opt = torch.optim.Adam([v], lr=lr)
        good, fails, k = v.detach().clone(), 0, 0
        while k < steps:
            chi = _constrained(v, real, lossy, nonnegative)
            try:
                pred = sub.forward(chi)
            except ConvergenceError:
                backtracks, fails = backtracks + 1, fails + 1
                if fails > MAX_BACKTRACKS:
                    raise
                with torch.no_grad():
                    v.copy_(good)
                for group in opt.param_groups:
                    group["lr"] *= 0.5
                continue
            if keep is not None:
                pred = pred * keep
            if calibrate:
                pred, g = calibrated(pred, y_b, labels, len(band))
            misfit = _half_sq(pred - y_b)
            loss = misfit + lam * _tv(chi, eps) if lam > 0 else misfit
            opt.zero_grad(set_to_none=True)
            loss.backward()
            good.copy_(v.detach())
            opt.step()
            fails, k = 0, k + 1
            if last:
                if calibrate:
                    gains = g.detach()  # converted once, after the loop
                m_val, l_val = torch.stack((misfit.detach(), loss.detach())).tolist()  # one host sync per step
                history.append(m_val)
                objective.append(l_val)
                if callback is not None:
                    callback(k, chi.detach(), history[-1])
                if rtol > 0 and k > WINDOW and objective[-1 - WINDOW] - objective[-1] < rtol * objective[-1 - WINDOW]:
                    stopped = "converged"
                    break
        ran = k
    with torch.no_grad():
        chi = _constrained(v, real, lossy, nonnegative).to(op.dtype)
    used = tuple((tuple(bd), ran if i == len(bands) - 1 else early) for i, bd in enumerate(bands))
    g_out = None if gains is None else tuple(complex(c) for c in gains.cpu().tolist())
    return FullWaveTVResult(chi, lam, tuple(history), tuple(objective), used, backtracks, stopped, g_out)
