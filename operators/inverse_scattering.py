r"""Classical full-wave inverse scattering: MR-CSI (the Born iterative method is :mod:`operators.born_iterative`).

Both invert the nonlinear 2-D TM scattering model of :class:`operators.LippmannSchwinger`
(time dependence ``exp(+jωt)``, contrast ``χ = ε_r − 1``, a lossy object has ``Im χ < 0``)
for one contrast image ``χ (H, W)`` shared by every frequency. With the contrast sources
``w_{f,t} = χ u_{f,t}`` (``u`` the total field of transmitter ``t`` at frequency ``f``) the
model is the pair

.. math::

    y_{f,t} = G_S w_{f,t} \quad\text{(data equation)}, \qquad
    w_{f,t} = \chi\,u^{\text{inc}}_{f,t} + \chi\, G_D w_{f,t} \quad\text{(object equation)},

with ``G_S = op.green_data``, ``G_D = op.green_domain`` and ``u_inc = op.incident``.

* :func:`csi_mr` — contrast source inversion (van den Berg & Kleinman, Inverse Problems 13,
  1997) with the multiplicative TV regulariser of van den Berg, Abubakar & Fokkema
  ("Multiplicative regularization for contrast profile inversion", Radio Science 38, 2003):
  alternating conjugate-gradient updates of ``w`` and ``χ``, no forward solve inside the loop.
* :func:`operators.born_iterative_tv` — the Born iterative method: the total field of the current
  estimate linearises the model (``op.born_at(u)``), whose TV solution with λ chosen by the
  discrepancy principle (:func:`operators.tv_discrepancy`) is the next estimate.

Measurements are ``y (T, R, F)`` in the operator's units; ``valid`` (bool ``(T, R, F)``) marks
the entries that were measured — the others are never read (they may hold NaN). ``σ`` is the
noise per real/imaginary component (DESIGN.md §2), the discrepancy target ``τ M σ²`` with ``M``
the number of valid complex measurements. Everything runs on ``op.device`` in ``op.dtype``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ._scattering_checks import _check_operator, _count, _initial_contrast, _measurements
from .base import LinearOperator
from .classical import divergence2d, gradient2d
from .krylov import ConvergenceError
from .parameter_choice import discrepancy_target

__all__ = ["CSIResult", "csi_mr"]


@dataclass(frozen=True)
class CSIResult:
    """The outcome of :func:`csi_mr`.

    Attributes
    ----------
    chi : complex ``(H, W)``, ``op.dtype`` — the contrast ``ε_r − 1`` of the returned iteration
    w : complex ``(F, T, H, W)`` — its contrast sources
    misfit : data misfit of the contrast sources ``½‖y − G_S w_n‖²`` over the valid entries
        (data units squared), for ``n = 0`` (the initial sources) up to ``iteration``
    object_error : the normalised object-equation error ``Σ_f ‖χ_n u_n − w_n‖² / ‖χ_n u_inc‖²``,
        same indexing (dimensionless; ``u_n = u_inc + G_D w_n``)
    forward_misfit : ``(n, ½‖y − A(χ_n)‖²)`` at every discrepancy check (full-wave data of the
        contrast itself, one field solve each; ``inf`` where the solve failed); empty without
        ``sigma`` or with ``stop_on="sources"``
    iteration : the number of iterations run (the returned iterate)
    stopped : ``"discrepancy"`` (the checked misfit reached ``target``), ``"iterations"``, or
        ``"non-finite"`` (an update gave NaN or inf, seen in complex64 after hundreds of stagnating
        iterations; the last finite iterate is returned and ``iteration`` counts up to it)
    target : ``τ M σ²``, or ``None`` without ``sigma``
    """

    chi: torch.Tensor
    w: torch.Tensor
    misfit: tuple[float, ...]
    object_error: tuple[float, ...]
    forward_misfit: tuple[tuple[int, float], ...]
    iteration: int
    stopped: str
    target: float | None


# ---------------------------------------------------------------------------- small helpers
def _data_norms(r: torch.Tensor) -> torch.Tensor:
    """``‖r_{f,t}‖²`` of a data-space tensor ``(T, R, F)`` as a real ``(F, T)``."""
    return (r.abs() ** 2).sum(dim=1).transpose(0, 1)


def _domain_norms(v: torch.Tensor) -> torch.Tensor:
    """``‖v_{f,t}‖²`` of a domain tensor ``(F, T, H, W)`` as a real ``(F, T)``."""
    return (v.abs() ** 2).sum(dim=(-2, -1))


def _domain_dots(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``Re⟨a_{f,t}, b_{f,t}⟩`` as a real ``(F, T)``."""
    return (a.conj() * b).real.sum(dim=(-2, -1))


def _safe_inverse(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0, 1.0 / torch.where(t > 0, t, torch.ones_like(t)), torch.zeros_like(t))


def _project(chi: torch.Tensor, real: bool, lossy: bool, nonnegative: bool) -> torch.Tensor:
    """The constraints: ``Im χ = 0`` (real), ``Im χ ≤ 0`` (lossy, ``exp(+jωt)``), ``Re χ ≥ 0``."""
    re, im = chi.real, chi.imag
    if nonnegative:
        re = re.clamp_min(0)
    if real:
        im = torch.zeros_like(im)
    elif lossy:
        im = im.clamp_max(0)
    return torch.complex(re, im)


def _quartic_step(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """The real ``β`` minimising ``(a0 + a1 β + a2 β²)(b0 + b1 β + b2 β²)`` (a root of its cubic derivative)."""
    c = np.polynomial.polynomial.polymul(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    if not np.all(np.isfinite(c)) or c[4] <= 0:
        return 0.0
    roots = np.roots(np.polynomial.polynomial.polyder(c)[::-1])  # a real cubic: at least one real root
    nearest = min(roots, key=lambda r: abs(r.imag))
    cands = [0.0, float(nearest.real)] + [float(r.real) for r in roots if abs(r.imag) <= 1e-6 * max(1.0, abs(r))]
    return min(cands, key=lambda s: float(np.polynomial.polynomial.polyval(s, c)))


# ---------------------------------------------------------------------------- MR-CSI
class _CSIState:
    """The MR-CSI iterate: contrast ``chi (H, W)``, sources ``w``, field ``u = u_inc + G_D w``, data residual
    ``rho = y − G_S w`` (valid entries), object residual ``r = χu − w``, and the previous CG directions."""

    __slots__ = ("chi", "d_prev", "dc_prev", "g_prev", "gc_prev", "gg_prev", "r", "rho", "u", "w")

    def __init__(self, chi: torch.Tensor, w: torch.Tensor, u: torch.Tensor, rho: torch.Tensor) -> None:
        self.chi, self.w, self.u, self.rho = chi, w, u, rho
        self.r = chi * u - w
        self.g_prev = self.d_prev = self.gg_prev = self.gc_prev = self.dc_prev = None


def _update_sources(
    op: LinearOperator,
    data: Callable[[torch.Tensor], torch.Tensor],
    eta_s: torch.Tensor,
    eta_d: torch.Tensor,
    st: _CSIState,
) -> None:
    """One Polak–Ribière CG step on ``F_S + F_D`` in ``w`` (χ fixed), exact step per ``(f, t)``."""
    chi = st.chi
    g = -eta_s[..., None, None] * op.green_data_adjoint(st.rho) - eta_d[..., None, None] * (
        st.r - op.green_domain_adjoint(chi.conj() * st.r)
    )
    gg = _domain_norms(g)
    if st.g_prev is None:
        d = -g
    else:
        beta = (gg - _domain_dots(g, st.g_prev)) * _safe_inverse(st.gg_prev)
        d = -g + beta[..., None, None] * st.d_prev
        # restart where not a descent, or where the direction has grown far past the gradient: when the
        # gradients alternate in sign (stagnation) the Polak–Ribière β stays near 2 and |d| doubles each
        # step until |d|² overflows (seen in complex64 after ~400 iterations; the exact step makes d's
        # scale otherwise irrelevant, so this never triggers in a healthy run)
        ok = (_domain_dots(g, d) < 0) & (_domain_norms(d) <= 1e20 * gg)
        d = torch.where(ok[..., None, None], d, -g)
    gd_d = op.green_domain(d)
    s_d = data(d)
    curvature = eta_s * _data_norms(s_d) + eta_d * _domain_norms(chi * gd_d - d)
    alpha = (-_domain_dots(g, d) * _safe_inverse(curvature)).to(st.w.dtype)  # (F, T)
    st.w = st.w + alpha[..., None, None] * d
    st.u = st.u + alpha[..., None, None] * gd_d
    st.rho = st.rho - alpha.transpose(0, 1)[:, None, :] * s_d
    st.r = chi * st.u - st.w
    st.g_prev, st.d_prev, st.gg_prev = g, d, gg


def _update_contrast(eta_s: torch.Tensor, eta_d: torch.Tensor, st: _CSIState, real: bool) -> None:
    """One PR-CG step on the product ``(F_S + F_D(χ)) · F^R_n(χ)`` with its exact (quartic) line search."""
    chi, u = st.chi, st.u
    f_s = float((eta_s * _data_norms(st.rho)).sum())
    f_d = float((eta_d * _domain_norms(st.r)).sum())  # F_D(w_n, χ_{n−1}) = δ²_n in pixel units
    f_sd = f_s + f_d
    g_dom = (eta_d[..., None, None] * st.r * u.conj()).sum(dim=(0, 1))  # ∂F_D/∂χ̄
    h_dom = (eta_d[..., None, None] * u.abs() ** 2).sum(dim=(0, 1))
    grad = gradient2d(chi)
    grad2 = (grad.abs() ** 2).sum(dim=0)
    b2 = 1.0 / (chi.numel() * (grad2 + f_d))  # so that F^R_n(χ_{n−1}) = Σ b²(|∇χ_{n−1}|² + δ²) = 1
    gc = g_dom - f_sd * divergence2d(b2 * grad)  # F^R(χ_{n−1}) ∂F_D/∂χ̄ + (F_S + F_D) ∇ᴴ(b²∇χ)
    if real:
        gc = gc.real.to(chi.dtype)
    dc = -gc
    if st.gc_prev is not None:
        den = float((st.gc_prev.abs() ** 2).sum())
        beta = float((gc.conj() * (gc - st.gc_prev)).real.sum()) / den if den > 0 else 0.0
        dc = -gc + beta * st.dc_prev
        if float((gc.conj() * dc).real.sum()) >= 0:
            dc = -gc
    grad_d = gradient2d(dc)
    a = (f_sd, 2 * float((dc.conj() * g_dom).real.sum()), float((dc.abs() ** 2 * h_dom).sum()))
    b = (
        float((b2 * (grad2 + f_d)).sum()),
        2 * float((b2 * (grad.conj() * grad_d).real.sum(dim=0)).sum()),
        float((b2 * (grad_d.abs() ** 2).sum(dim=0)).sum()),
    )
    st.chi = chi + _quartic_step(a, b) * dc
    st.gc_prev, st.dc_prev = gc, dc


@torch.no_grad()
def csi_mr(
    op: LinearOperator,
    y: torch.Tensor,
    *,
    valid: torch.Tensor | None = None,
    iterations: int = 500,
    chi0: torch.Tensor | None = None,
    sigma: float | None = None,
    tau: float = 1.0,
    real: bool = False,
    lossy: bool = True,
    nonnegative: bool = False,
    stop_on: str = "forward",
    check_every: int = 10,
    callback: Callable[[int, torch.Tensor, float], None] | None = None,
) -> CSIResult:
    r"""Multiplicatively regularised contrast source inversion (MR-CSI).

    Minimises, alternately over the contrast sources ``w`` and the contrast ``χ``,

    .. math::

        F_n(w, \chi) = \Big[\underbrace{\sum_f \eta^S_f \sum_t \|y_{f,t} - G_S w_{f,t}\|^2}_{F_S}
        + \underbrace{\sum_f \eta^D_f \sum_t \|\chi u^{\text{inc}}_{f,t} - w_{f,t} + \chi G_D w_{f,t}\|^2}_{F_D}
        \Big] \cdot F^R_n(\chi),

    ``η^S_f = 1/Σ_t‖y_{f,t}‖²``, ``η^D_f = 1/Σ_t‖χ_{n−1} u^inc_{f,t}‖²`` (each frequency weighted
    equally), and the multiplicative weighted-L² TV factor (van den Berg, Abubakar & Fokkema 2003)

    .. math::

        F^R_n(\chi) = \frac{1}{A}\int_D \frac{|\nabla\chi|^2 + \delta_n^2}{|\nabla\chi_{n-1}|^2 + \delta_n^2}\,dr
        = \sum_p b_p^2\,(|\nabla\chi|_p^2 + \delta_n^2), \qquad
        b^2 = \frac{1}{A\,(|\nabla\chi_{n-1}|^2 + \delta_n^2)},\quad \delta_n^2 = \frac{F_D(w_n, \chi_{n-1})}{h^2},

    with ``A`` the area of the image and ``h`` the pixel pitch (coded in pixel units:
    ``b² = 1/(N(|∇χ_{n−1}|² + F_D))`` with forward differences, ``N = H W``), so that
    ``F^R_n(χ_{n−1}) = 1``: the weight of the regulariser is the CSI error itself — no
    parameter to tune.

    Iteration ``n``:

    1. ``w``: one Polak–Ribière conjugate-gradient step on ``F_S + F_D`` with ``χ_{n−1}`` fixed;
       gradient ``g = −η^S G_Sᴴ ρ − η^D (r − G_Dᴴ(χ̄ r))`` (``ρ = y − G_S w``, ``r = χu − w``) and
       the exact step ``α = −Re⟨g, d⟩ / (η^S‖G_S d‖² + η^D‖χ G_D d − d‖²)``. For fixed ``χ`` the cost
       separates over ``(f, t)``, so each contrast source takes its own exact step and PR coefficient.
    2. ``χ``: one PR conjugate-gradient step on the product ``F_n`` with ``w_n`` fixed; gradient
       ``Σ_{f,t} η^D (χu − w) ū + (F_S + F_D) ∇ᴴ(b²∇χ)`` (the real part with ``real=True``), and
       the exact line search of ``F_n`` along the direction: a product of two quadratics in the
       real step, whose minimiser is a root of a cubic. Then the constraints are applied by
       projection (``lossy``, ``nonnegative``).

    Start: ``w_0 = γ G_Sᴴ y`` per ``(f, t)`` with the optimal ``γ = ‖G_Sᴴ y‖² / ‖G_S G_Sᴴ y‖²``
    and ``χ_0 = Σ w_0 ū_0 / Σ |u_0|²`` (the pointwise least-squares contrast), or, with a
    nonzero ``chi0``, ``w_0 = χ_0 u(χ_0)`` from one field solve.

    Stopping: after ``iterations``, or — with ``sigma`` — at the first checked iterate whose
    misfit is at or below ``τ M σ²`` (:func:`operators.discrepancy_target`, ``M`` valid complex
    measurements). ``stop_on="forward"`` (default) checks the full-wave misfit of the contrast,
    ``½‖y − A(χ_n)‖²`` (one field solve, every ``check_every`` iterations); ``"sources"`` checks
    ``½‖y − G_S w_n‖²`` every iteration, which costs nothing but is a poor statistic: the sources
    can fit the data whatever ``χ`` is (``G_S`` has a large null space), so it reaches the target
    long before ``χ`` does (on a 32² disk of χ = 2 at 2 GHz, 20 dB: iteration 17 against 110
    for the full-wave misfit, which tracks the contrast error).

    Parameters
    ----------
    op : :class:`~operators.LippmannSchwinger` (``incident``, ``green_data``, ``green_domain`` and
        their adjoints are used; ``total_field`` only for ``chi0`` and the discrepancy checks)
    y : complex ``(T, R, F)`` — one measurement in the operator's units
    valid : bool ``(T, R, F)`` or ``None`` — the measured entries; the others are ignored
        (they may hold NaN) and count neither in the cost nor in ``M``
    iterations : the most iterations (each: 2 ``G_D``, 2 ``G_S`` applications, no field solve)
    chi0 : complex ``(H, W)`` or ``None`` — a starting contrast
    sigma : noise σ per real/imaginary component (data units), or ``None`` (no early stop)
    tau : the discrepancy factor ``τ`` (> 0, customarily ≥ 1)
    real : keep ``χ`` real (lossless object)
    lossy : project ``Im χ ≤ 0`` (passive medium in the ``exp(+jωt)`` convention)
    nonnegative : project ``Re χ ≥ 0`` (``ε_r ≥ 1``)
    stop_on : ``"forward"`` or ``"sources"`` — which misfit the discrepancy principle checks
    check_every : iterations between two full-wave checks (``stop_on="forward"``)
    callback : ``callback(n, chi, misfit)`` after every iteration (``misfit`` of the sources)

    Returns
    -------
    CSIResult
        ``chi (H, W)``, ``w (F, T, H, W)``, the misfit histories, the iteration returned and why
        the run stopped.

    Raises
    ------
    ValueError
        A wrong shape of ``y``, ``valid`` or ``chi0``; non-finite valid data; ``sigma`` ≤ 0;
        ``tau`` ≤ 0; ``iterations`` < 0; ``check_every`` < 1; an unknown ``stop_on``.
    """
    name = "csi_mr"
    _check_operator(op, name)
    y, mask, m = _measurements(op, y, valid, name)
    iterations = _count(iterations, "iterations", name, 0)
    check_every = _count(check_every, "check_every", name, 1)
    if stop_on not in ("forward", "sources"):
        raise ValueError(f"{name}: stop_on must be 'forward' or 'sources', got {stop_on!r}")
    target = None if sigma is None else discrepancy_target(m, sigma, tau)
    chi_start = _initial_contrast(op, chi0, name)
    u_inc = op.incident  # (F, T, H, W)

    def data(w: torch.Tensor) -> torch.Tensor:
        d = op.green_data(w)
        return d if mask is None else d * mask

    def forward_misfit(c: torch.Tensor) -> float:
        try:
            u_c = op.total_field(c)
        except ConvergenceError:
            return math.inf
        return 0.5 * float((data(c * u_c) - y).abs().pow(2).sum())

    def eta_domain(c: torch.Tensor) -> torch.Tensor:
        return _safe_inverse(_domain_norms(c * u_inc).sum(dim=1))[:, None]  # (F, 1)

    eta_s = _safe_inverse((y.abs() ** 2).sum(dim=(0, 1)))[:, None]  # (F, 1)
    if chi_start is not None and bool((chi_start != 0).any()):
        chi = _project(chi_start, real, lossy, nonnegative)
        w = chi * op.total_field(chi)
    else:
        back = op.green_data_adjoint(y)
        gamma = _domain_norms(back) * _safe_inverse(_data_norms(data(back)))
        w = gamma[..., None, None].to(op.dtype) * back
        u = u_inc + op.green_domain(w)
        tiny = torch.finfo(op.real_dtype).tiny
        chi = (w * u.conj()).sum(dim=(0, 1)) / (u.abs() ** 2).sum(dim=(0, 1)).clamp_min(tiny)
        chi = _project(chi, real, lossy, nonnegative)
    st = _CSIState(chi, w, u_inc + op.green_domain(w), y - data(w))

    misfits = [0.5 * float((st.rho.abs() ** 2).sum())]
    errors = [float((eta_domain(st.chi) * _domain_norms(st.r)).sum())]
    checks: list[tuple[int, float]] = []

    def reached(n: int) -> bool:
        if target is None:
            return False
        if stop_on == "sources":
            return misfits[-1] <= target
        if n % check_every and n != iterations:
            return False
        checks.append((n, forward_misfit(st.chi)))
        return checks[-1][1] <= target

    n = 0
    stopped = "discrepancy" if reached(0) else "iterations"
    while stopped == "iterations" and n < iterations:
        saved = {k: getattr(st, k) for k in _CSIState.__slots__}  # the updates replace, never mutate
        eta_d = eta_domain(st.chi)
        _update_sources(op, data, eta_s, eta_d, st)
        misfit = 0.5 * float((st.rho.abs() ** 2).sum())
        _update_contrast(eta_s, eta_d, st, real)
        st.chi = _project(st.chi, real, lossy, nonnegative)
        st.r = st.chi * st.u - st.w
        error = float((eta_domain(st.chi) * _domain_norms(st.r)).sum())
        if not (math.isfinite(misfit) and math.isfinite(error) and bool(torch.isfinite(st.chi).all())):
            for k, v in saved.items():
                setattr(st, k, v)
            stopped = "non-finite"
            break
        n += 1
        misfits.append(misfit)
        errors.append(error)
        if callback is not None:
            callback(n, st.chi, misfits[-1])
        if reached(n):
            stopped = "discrepancy"
    return CSIResult(st.chi, st.w, tuple(misfits), tuple(errors), tuple(checks), n, stopped, target)


# ---------------------------------------------------------------------------- Born iterative method
