r"""Exact field of a plane wave scattered by a dielectric cylinder (test-only reference).

Scalar 2-D Helmholtz problem (TM polarisation, field along the cylinder axis), time
convention ``e^{−iωt}``: incident wave ``u0 = exp(i k_m s0·r)`` with
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
