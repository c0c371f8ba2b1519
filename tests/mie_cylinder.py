r"""Exact fields scattered by a dielectric cylinder: plane wave and line source (test-only reference).

**Plane wave** (:func:`cylinder_sinogram`). Scalar 2-D Helmholtz problem (TM polarisation,
field along the cylinder axis), time convention ``e^{−iωt}``: incident wave ``u0 = exp(i k_m s0·r)`` with
``s0 = (−sin φ, cos φ)``; cylinder of radius ``a`` and index ``n_c`` centred at ``c``
in a medium of index ``n_m``. With ``ρ, θ`` polar coordinates about ``c`` and ``θ``
measured from ``s0``, the Jacobi–Anger expansion ``e^{ikρ cos θ} = Σ iⁿ Jₙ(kρ) e^{inθ}``
and continuity of ``u`` and ``∂u/∂ρ`` at ``ρ = a`` give the scattered field outside

.. math::

    u_s = e^{i k_m s_0\cdot c} \sum_n i^n b_n H^{(1)}_n(k_m \rho) e^{i n\theta}, \qquad
    b_n = \frac{k_c J_n'(k_c a) J_n(k_m a) - k_m J_n(k_c a) J_n'(k_m a)}
               {k_m J_n(k_c a) H_n^{(1)\prime}(k_m a) - k_c J_n'(k_c a) H^{(1)}_n(k_m a)}

with ``k_c = k_m n_c / n_m``. Nothing here uses the Born approximation or the
operator under test.


**Line source, time convention** ``e^{+jωt}`` (:func:`line_source_scattered`,
:func:`line_source_total`; the convention of the full-wave operator). Free space, wavenumber
``k``; cylinder of radius ``a`` centred at ``c`` with contrast ``χ = ε_r − 1`` (complex allowed;
a lossy cylinder has ``Im χ < 0`` in this convention) and interior wavenumber ``k_c = k √(1 + χ)``.
The incident field of a line source at ``t`` is the 2-D Green's function

.. math::  u_{inc}(r) = G(|r - t|), \qquad G(d) = -\tfrac{j}{4} H_0^{(2)}(k d),

the outgoing solution of ``(∇² + k²) G = −δ``. With ``(ρ, φ)`` and ``(ρ_t, φ_t)`` polar coordinates
of ``r`` and ``t`` about ``c``, Graf's addition theorem gives, for ``ρ < ρ_t``,

.. math::

    H_0^{(2)}(k|r - t|) = \sum_{n=-\infty}^{\infty} J_n(k\rho)\, H_n^{(2)}(k\rho_t)\, e^{jn(\varphi - \varphi_t)}.

Write ``α_n = −(j/4) H_n^{(2)}(kρ_t) e^{−jnφ_t}``. The scattered field (outgoing: ``H^{(2)}`` in
``e^{+jωt}``) and the interior field (regular at the centre) are

.. math::  u_s = \sum_n α_n b_n H_n^{(2)}(k\rho) e^{jn\varphi} \;(\rho > a), \qquad
           u = \sum_n α_n c_n J_n(k_c\rho) e^{jn\varphi} \;(\rho < a).

TM polarisation, non-magnetic cylinder: ``u`` and ``∂u/∂ρ`` are continuous at ``ρ = a``,

.. math::  J_n(ka) + b_n H_n(ka) = c_n J_n(k_c a), \qquad k J_n'(ka) + b_n k H_n'(ka) = c_n k_c J_n'(k_c a),

so that, with ``D_n = k J_n(k_c a) H_n'(ka) − k_c J_n'(k_c a) H_n(ka)`` and the Wronskian
``J_n H_n^{(2)\prime} − J_n' H_n^{(2)} = −2j/(π k a)``,

.. math::  b_n = \frac{k_c J_n'(k_c a) J_n(ka) - k J_n(k_c a) J_n'(ka)}{D_n}, \qquad
           c_n = \frac{-2j}{\pi a D_n}.

``b_{−n} = b_n`` and ``c_{−n} = c_n`` (``J_{−n} = (−1)^n J_n``, same for ``H``), so the ``±n`` terms
fold into ``ε_n cos(n(φ − φ_t))`` with ``ε_0 = 1``, ``ε_n = 2``. Outside, the total field is the
closed-form ``G(|r − t|)`` plus ``u_s``; the expansion of ``u_s`` holds for every ``ρ > a``
(beyond the source circle too). For small ``χ``, ``u_s → k² ∫_{disk} G(|r−p|) χ G(|p−t|) dp`` (Born).
Nothing here uses the operator under test.
"""

from __future__ import annotations

import numpy as np
from scipy import special


def mie_coefficients(radius: float, n_cylinder: float, n_medium: float, wavelength: float, n_max: int) -> np.ndarray:
    """Scattering coefficients ``b_n`` for ``n = 0 … n_max`` (``b_{−n} = b_n``)."""
    k_m = 2 * np.pi * n_medium / wavelength
    k_c = 2 * np.pi * n_cylinder / wavelength
    n = np.arange(n_max + 1)
    jm, djm = special.jv(n, k_m * radius), special.jvp(n, k_m * radius)
    jc, djc = special.jv(n, k_c * radius), special.jvp(n, k_c * radius)
    hm, dhm = special.hankel1(n, k_m * radius), special.h1vp(n, k_m * radius)
    return (k_c * djc * jm - k_m * jc * djm) / (k_m * jc * dhm - k_c * djc * hm)


def cylinder_sinogram(
    angles: np.ndarray,
    detector: np.ndarray,
    detector_distance: float,
    radius: float,
    n_cylinder: float,
    n_medium: float,
    wavelength: float,
    center: tuple[float, float] = (0.0, 0.0),
    n_max: int | None = None,
) -> np.ndarray:
    """Total field divided by the incident field, ``u/u0``, on the detector line for each angle.

    Parameters
    ----------
    angles : ``(A,)`` radians; detector : ``(N,)`` positions ``ξ`` along ``t⊥`` in metres.
    detector_distance : ``l_D`` in metres (the line ``r = l_D s0 + ξ t⊥`` must lie outside the cylinder).
    center : cylinder centre ``(x, y)`` in metres (x along image columns, y along rows).

    Returns
    -------
    complex ndarray ``(A, N)``.
    """
    k_m = 2 * np.pi * n_medium / wavelength
    k_c = 2 * np.pi * n_cylinder / wavelength
    if n_max is None:
        n_max = int(np.ceil(k_c * radius + 4 * (k_c * radius) ** (1 / 3) + 10))
    b = mie_coefficients(radius, n_cylinder, n_medium, wavelength, n_max)
    order = np.arange(n_max + 1)
    weights = np.where(order == 0, 1.0, 2.0) * (1j**order) * b  # ±n terms folded: cos(nθ)
    phi = np.asarray(angles, dtype=float)[:, None]
    cx, cy = center
    # coordinates of the detector point relative to the cylinder centre, in the rotated frame
    c_xi = cx * np.cos(phi) + cy * np.sin(phi)
    c_eta = -cx * np.sin(phi) + cy * np.cos(phi)
    p_xi = np.asarray(detector, dtype=float)[None, :] - c_xi
    p_eta = detector_distance - c_eta
    rho = np.hypot(p_xi, p_eta)
    if rho.min() <= radius:
        raise ValueError("cylinder_sinogram: the detector line cuts the cylinder")
    theta = np.arctan2(p_xi, p_eta)  # angle from s0
    u_s = np.zeros(rho.shape, dtype=complex)
    for n in order:
        u_s += weights[n] * special.hankel1(n, k_m * rho) * np.cos(n * theta)
    u_s *= np.exp(1j * k_m * c_eta)  # incident phase at the cylinder centre
    u0 = np.exp(1j * k_m * detector_distance)
    return 1 + u_s / u0


def line_source_coefficients(radius: float, chi: complex, k: float, n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """``(b_n, c_n)`` for ``n = 0 … n_max`` of the line-source problem (module docstring; ``H^{(2)}``)."""
    n = np.arange(n_max + 1)
    k_c = k * np.sqrt(1 + complex(chi))
    ka, kca = k * radius, k_c * radius
    j, dj = special.jv(n, ka), special.jvp(n, ka)
    jc, djc = special.jv(n, kca), special.jvp(n, kca)
    h, dh = special.hankel2(n, ka), special.h2vp(n, ka)
    d = k * jc * dh - k_c * djc * h
    return (k_c * djc * j - k * jc * dj) / d, -2j / (np.pi * radius * d)


def _polar(t, points, center, radius: float, chi: complex, k: float, n_max: int | None):
    """Broadcast ``(ρ_t, ρ, φ − φ_t, |r − t|)`` of shape ``t.shape[:-1] + points.shape[:-1]``, and ``n_max``."""
    t = np.asarray(t, dtype=float)
    p = np.asarray(points, dtype=float)
    c = np.asarray(center, dtype=float)
    if t.shape[-1] != 2 or p.shape[-1] != 2 or c.shape != (2,):
        raise ValueError("line source: t, points and center need a last axis (x, z)")
    lead = t.shape[:-1]
    t = t.reshape(*lead, *(1,) * (p.ndim - 1), 2)
    rt, rp = t - c, p - c
    rho_t = np.hypot(rt[..., 0], rt[..., 1])
    if np.any(rho_t <= radius):
        raise ValueError("line source: a source lies inside the cylinder")
    rho = np.hypot(rp[..., 0], rp[..., 1])
    dphi = np.arctan2(rp[..., 1], rp[..., 0]) - np.arctan2(rt[..., 1], rt[..., 0])
    dist = np.hypot(p[..., 0] - t[..., 0], p[..., 1] - t[..., 1])
    rho_t, rho, dphi, dist = np.broadcast_arrays(rho_t, rho, dphi, dist)
    if n_max is None:
        m = max(abs(k * np.sqrt(1 + complex(chi))), k) * radius
        n_max = int(np.ceil(m + 4 * m ** (1 / 3) + 15))
    return rho_t, rho, dphi, dist, n_max


def _series(coef: np.ndarray, rho_t: np.ndarray, radial, dphi: np.ndarray) -> np.ndarray:
    """``−(j/4) Σ_n ε_n coef_n H_n^{(2)}(kρ_t) radial(n) cos(n Δφ)``."""
    out = np.zeros(rho_t.shape, dtype=complex)
    for n, cn in enumerate(coef):
        out += (1.0 if n == 0 else 2.0) * cn * special.hankel2(n, rho_t) * radial(n) * np.cos(n * dphi)
    return -0.25j * out


def line_source_scattered(t, points, center, radius: float, chi: complex, k: float, n_max: int | None = None):
    r"""Scattered field ``u_s`` of the line source at ``t`` by the cylinder, at ``points`` outside it.

    Parameters
    ----------
    t : ``(2,)`` or ``(…, 2)``: source position(s) ``(x, z)`` in metres, outside the cylinder.
    points : ``(P, 2)`` (or ``(…, 2)``): observation points ``(x, z)`` with ``ρ > a``.
    center : ``(x, z)`` of the cylinder centre; radius : ``a`` in metres.
    chi : contrast ``ε_r − 1`` (``Im χ < 0``: loss); k : free-space wavenumber (rad/m).
    n_max : highest order of the series (default: ``m + 4 m^{1/3} + 15``, ``m = max(|k_c|, k) a``).

    Returns
    -------
    complex ndarray ``t.shape[:-1] + points.shape[:-1]`` (the incident field is ``G(|r − t|)``,
    ``G(d) = −(j/4) H_0^{(2)}(kd)``).
    """
    rho_t, rho, dphi, _, n_max = _polar(t, points, center, radius, chi, k, n_max)
    if np.any(rho <= radius):
        raise ValueError("line_source_scattered: a point lies inside the cylinder (use line_source_total)")
    b, _ = line_source_coefficients(radius, chi, k, n_max)
    return _series(b, k * rho_t, lambda n: special.hankel2(n, k * rho), dphi)


def line_source_total(t, points, center, radius: float, chi: complex, k: float, n_max: int | None = None):
    """Total field at any ``points``: the interior Bessel series for ``ρ < a``, ``G(|r − t|) + u_s`` elsewhere.

    Same arguments and output shape as :func:`line_source_scattered`.
    """
    rho_t, rho, dphi, dist, n_max = _polar(t, points, center, radius, chi, k, n_max)
    b, c = line_source_coefficients(radius, chi, k, n_max)
    k_c = k * np.sqrt(1 + complex(chi))
    inside = rho < radius
    out = np.empty(rho.shape, dtype=complex)
    i, o = inside, ~inside
    out[i] = _series(c, k * rho_t[i], lambda n: special.jv(n, k_c * rho[i]), dphi[i])
    out[o] = -0.25j * special.hankel2(0, k * dist[o])
    out[o] += _series(b, k * rho_t[o], lambda n: special.hankel2(n, k * rho[o]), dphi[o])
    return out
