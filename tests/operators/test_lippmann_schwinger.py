"""Full-wave 2-D TM scattering (``operators.LippmannSchwinger``) against exact and limiting answers.

The reference is the exact Bessel–Hankel solution of a line source and a dielectric cylinder
(``tests/mie_cylinder.py``, ``e^{+jωt}``). The geometry is the Institut Fresnel set-up: 16
transmitters on a circle of 0.72 m, 32 receivers on one of 0.76 m, a 15 mm disk in a 0.15 m
domain. The disk boundary is not staircased: each boundary pixel carries ``χ`` times the fraction
of its area inside the disk (16 × 16 sub-samples), which brings the error at the receivers from
O(h) (staircase) to ≈ O(h²): at 96² (h = 1.56 mm) it is 2e-3 (2 GHz) and 4e-3 (4 GHz), at 160²
5e-3 (8 GHz) — see ``benchmarks/fullwave_accuracy.py`` for the whole table.
"""

import math

import numpy as np
import pytest
import torch
from mie_cylinder import line_source_scattered, line_source_total
from scipy.special import hankel2, j1

import operators
from operators import SPEED_OF_LIGHT, ConvergenceError, LippmannSchwinger, MIMORadar
from operators.testing import check_adjoint

RADIUS = 0.015  # the 2001 Fresnel dielectric cylinder (15 mm)
DOMAIN = 0.15  # side of the square image (m)
ADJOINT_TOL = {torch.complex64: 1e-5, torch.complex128: 1e-12}


def ring(n: int, radius: float, offset: float = 0.0) -> np.ndarray:
    a = 2 * np.pi * np.arange(n) / n + offset
    return radius * np.stack([np.cos(a), np.sin(a)], axis=1)


TX, RX = ring(16, 0.72), ring(32, 0.76, np.pi / 32)


def grid(n: int, side: float = DOMAIN) -> tuple[np.ndarray, np.ndarray, float]:
    h = side / n
    x = (np.arange(n) - (n - 1) / 2) * h
    return x, x.copy(), h


def disk_fraction(x: np.ndarray, z: np.ndarray, center, radius: float, sub: int = 16) -> np.ndarray:
    """Fraction of each pixel's area inside the disk (``sub × sub`` sub-samples): ``(len(z), len(x))``."""
    h = x[1] - x[0]
    s = (np.arange(sub) + 0.5) / sub - 0.5
    xx = x[None, :, None, None] + h * s[None, None, None, :]
    zz = z[:, None, None, None] + h * s[None, None, :, None]
    return (((xx - center[0]) ** 2 + (zz - center[1]) ** 2) < radius**2).mean(axis=(2, 3))


def wavenumber(f: float) -> float:
    return 2 * np.pi * f / SPEED_OF_LIGHT


def c_f(f: float, h: float) -> complex:
    """The output scale: ``y = E_s / c_f``, ``c_f = −j k h² / (8π)``."""
    return -1j * wavenumber(f) * h * h / (8 * np.pi)


def rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# ---------------------------------------------------------------------- the exact cylinder
MIE_CASES = [
    # (frequency, χ, grid side n): errors measured 1.6e-3 … 5.5e-3, see the module docstring
    pytest.param(2e9, 2.0, 96, id="2GHz-chi2"),
    pytest.param(4e9, 2.0, 96, id="4GHz-chi2"),
    pytest.param(2e9, 0.45, 96, id="2GHz-chi0.45"),
    pytest.param(4e9, 2.0 - 0.6j, 96, id="4GHz-lossy"),
    pytest.param(8e9, 2.0, 160, id="8GHz-chi2"),
]


@pytest.mark.parametrize("center", [(0.0, 0.0), (0.03, -0.02)], ids=["centred", "off-centre"])
@pytest.mark.parametrize(("f", "chi", "n"), MIE_CASES)
def test_receiver_field_matches_the_exact_cylinder(f, chi, n, center):
    x, z, h = grid(n)
    contrast = torch.as_tensor(chi * disk_fraction(x, z, center, RADIUS), dtype=torch.complex128)
    op = LippmannSchwinger(TX, RX, [f], x, z, dtype=torch.complex128, tol=1e-8)
    y = op.forward(contrast)
    assert y.shape == (16, 32, 1) and op.out_shape == (16, 32, 1)
    exact = line_source_scattered(TX, RX, center, RADIUS, chi, wavenumber(f))  # (T, R)
    assert rel(y[..., 0].numpy() * c_f(f, h), exact) < 1e-2


@pytest.mark.parametrize(("f", "chi"), [(2e9, 2.0), (4e9, 2.0), (4e9, 2.0 - 0.6j)], ids=["2GHz", "4GHz", "lossy"])
def test_total_field_matches_the_exact_cylinder(f, chi):
    """Inside and around the off-centre disk, away from its boundary (two pixels either side)."""
    center, n = (0.03, -0.02), 96
    x, z, h = grid(n)
    op = LippmannSchwinger(TX[::4], RX, [f], x, z, dtype=torch.complex128, tol=1e-8)
    u = op.total_field(torch.as_tensor(chi * disk_fraction(x, z, center, RADIUS)))
    assert u.shape == (1, 4, n, n)
    xx, zz = np.meshgrid(x, z)
    exact = line_source_total(TX[::4], np.stack([xx, zz], -1).reshape(-1, 2), center, RADIUS, chi, wavenumber(f))
    exact = exact.reshape(4, n, n)
    rho = np.hypot(xx - center[0], zz - center[1])
    got = u[0].numpy()
    inside, outside = rho < RADIUS - 2 * h, rho > RADIUS + 2 * h
    assert rel(got[:, inside], exact[:, inside]) < 1e-2  # measured ≤ 5e-3
    assert rel(got[:, outside], exact[:, outside]) < 5e-3  # measured ≤ 2.3e-3
    scattered = exact - op.incident[0].numpy()  # the incident field on the grid is G(|r − t|) exactly
    assert rel(got[:, outside] - op.incident[0].numpy()[:, outside], scattered[:, outside]) < 1e-2


def test_incident_field_is_the_line_source():
    x, z, _ = grid(8)
    op = LippmannSchwinger(TX[:3], RX[:2], [2e9, 3e9], x, z, dtype=torch.complex128)
    xx, zz = np.meshgrid(x, z)
    for i, f in enumerate(op.frequencies):
        d = np.hypot(xx[None] - TX[:3, 0, None, None], zz[None] - TX[:3, 1, None, None])
        np.testing.assert_allclose(op.incident[i].numpy(), -0.25j * hankel2(0, wavenumber(f) * d), rtol=1e-12)
    np.testing.assert_allclose(op.k.numpy(), wavenumber(np.array([2e9, 3e9])), rtol=1e-12)
    assert op.dims == ("tx", "rx", "freq") and op.in_shape == (8, 8) and op.out_shape == (3, 2, 2)


# ---------------------------------------------------------------------- the Born limit
def test_weak_contrast_tends_to_born_and_to_mimo_hankel():
    f = np.array([2e9, 4e9])
    x, z, h = grid(64)
    disk = torch.as_tensor(disk_fraction(x, z, (0.02, 0.01), RADIUS), dtype=torch.complex128)
    op = LippmannSchwinger(TX, RX, f, x, z, dtype=torch.complex128, tol=1e-10)
    chi = 1e-3 * disk
    full, born = op.forward(chi), op.born.forward(chi)
    assert rel(full, born) < 1e-2  # the O(χ) multiple scattering: measured ≈ 1e-3
    assert rel(op.forward(1e-5 * disk), op.born.forward(1e-5 * disk)) < 1e-4  # and it vanishes linearly in χ
    # and the Born field is the exact cylinder's in the small-χ limit (line source, first order in χ)
    for i, fi in enumerate(f):
        exact = line_source_scattered(TX, RX, (0.02, 0.01), RADIUS, 1e-3, wavenumber(fi))
        assert rel(born[..., i].numpy() * c_f(fi, h), exact) < 1e-2
    # MIMORadar(spreading="hankel") is the same Born model with point (not disk-integrated) cells
    mimo = MIMORadar(TX, RX, f, x, z, spreading="hankel", dtype=torch.complex128)
    y_mimo = mimo.forward(chi)
    assert rel(born, y_mimo) < 1e-2
    a = h / math.sqrt(math.pi)  # the cell factor 2 J1(ka)/(ka) is all that separates them
    cell = torch.as_tensor(2 * j1(wavenumber(f) * a) / (wavenumber(f) * a), dtype=torch.complex128)
    assert rel(born, y_mimo * cell) < 1e-9


# ---------------------------------------------------------------------- adjoints
def _inner(a: torch.Tensor, b: torch.Tensor) -> complex:
    return complex(torch.vdot(a.reshape(-1), b.reshape(-1)))


def _adjoint_error(forward, adjoint, x: torch.Tensor, y: torch.Tensor) -> float:
    """``|⟨Ax, y⟩ − ⟨x, Aᴴy⟩| / (‖Ax‖ ‖y‖ + ‖x‖ ‖Aᴴy‖)``."""
    ax, ahy = forward(x), adjoint(y)
    scale = float(ax.norm() * y.norm() + x.norm() * ahy.norm())
    return abs(_inner(ax, y) - _inner(x, ahy)) / scale


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128], ids=["c64", "c128"])
def test_green_operators_and_born_are_adjoint(dtype):
    x, z, _ = grid(12, 0.05)
    z = z + 0.01  # a non-centred, non-square-in-position grid
    x = np.concatenate([x, x[-1] + (x[1] - x[0]) * np.arange(1, 5)])  # W = 16, H = 12
    op = LippmannSchwinger(TX[:3], RX[:5], [2e9, 6e9], x, z, dtype=dtype)
    g = torch.Generator().manual_seed(0)
    shape = (2, 3, 12, 16)

    def rnd(*s):
        return torch.randn(*s, generator=g, dtype=dtype)

    tol = ADJOINT_TOL[dtype]
    for batch in [(), (2,)]:
        w, v, y = rnd(*batch, *shape), rnd(*batch, *shape), rnd(*batch, 3, 5, 2)
        assert op.green_domain(w).shape == (*batch, *shape)
        assert op.green_data(w).shape == (*batch, 3, 5, 2)
        assert op.green_data_adjoint(y).shape == (*batch, *shape)
        assert _adjoint_error(op.green_domain, op.green_domain_adjoint, w, v) < tol
        assert _adjoint_error(op.green_data, op.green_data_adjoint, w, y) < tol
    assert check_adjoint(op.born) < tol
    u = rnd(*shape)
    assert check_adjoint(op.born_at(u)) < tol
    assert check_adjoint(op.born_at(u), batch=(2,)) < tol


def test_green_domain_is_the_cell_integrated_convolution():
    """``G_D`` applied to a delta at pixel ``q`` is ``k² ∫_cell G`` about ``q`` (Richmond's disk cells)."""
    n, f = 10, 3e9
    x, z, h = grid(n, 0.04)
    op = LippmannSchwinger(TX[:1], RX[:1], [f], x, z, dtype=torch.complex128)
    k, a = wavenumber(f), h / math.sqrt(math.pi)
    delta = torch.zeros(1, 1, n, n, dtype=torch.complex128)
    delta[..., 3, 7] = 1
    got = op.green_domain(delta)[0, 0].numpy()
    xx, zz = np.meshgrid(x, z)
    d = np.hypot(xx - x[7], zz - z[3])
    with np.errstate(divide="ignore", invalid="ignore"):
        want = k**2 * (2 * np.pi * a / k) * j1(k * a) * (-0.25j) * hankel2(0, k * d)
    want[3, 7] = k**2 * (-0.5j * np.pi * a / k * hankel2(1, k * a) - 1 / k**2)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())


# ---------------------------------------------------------------------- gradient
def test_adjoint_state_gradient_matches_finite_differences():
    f = [2e9, 5e9]
    x, z, _ = grid(20, 0.08)
    op = LippmannSchwinger(TX[::4], RX[::4], f, x, z, dtype=torch.complex128, tol=1e-13, max_iter=2000)
    g = torch.Generator().manual_seed(3)
    base = torch.as_tensor(disk_fraction(x, z, (0.005, -0.01), 0.02), dtype=torch.complex128) * (1.5 - 0.3j)
    chi = base + 0.2 * torch.randn(20, 20, generator=g, dtype=torch.complex128)
    y = op.forward(1.1 * base).detach() + 0.01 * torch.randn(op.out_shape, generator=g, dtype=torch.complex128)

    def loss(c: torch.Tensor) -> torch.Tensor:
        return 0.5 * (op.forward(c) - y).abs().pow(2).sum()

    c = chi.clone().requires_grad_(True)
    loss(c).backward()
    grad = c.grad
    assert grad is not None and grad.shape == (20, 20)
    d = torch.randn(20, 20, generator=g, dtype=torch.float64).to(torch.complex128)
    eps = 1e-5
    for direction in (d, 1j * d):
        with torch.no_grad():
            fd = (loss(chi + eps * direction) - loss(chi - eps * direction)) / (2 * eps)
        analytic = torch.vdot(grad.reshape(-1), direction.reshape(-1)).real  # Re⟨∇, δ⟩: torch's convention
        assert abs(float(analytic) - float(fd)) <= 1e-6 * abs(float(fd)), (float(analytic), float(fd))


def test_batched_forward_and_gradient_match_single_calls():
    x, z, _ = grid(16, 0.06)
    op = LippmannSchwinger(TX[::4], RX[::4], [3e9], x, z, dtype=torch.complex128, tol=1e-12)
    g = torch.Generator().manual_seed(5)
    chis = 0.5 * torch.rand(2, 16, 16, generator=g, dtype=torch.float64).to(torch.complex128)
    batched = chis.clone().requires_grad_(True)
    out = op.forward(batched)
    assert out.shape == (2, *op.out_shape)
    out.abs().pow(2).sum().backward()
    for i in range(2):
        single = chis[i].clone().requires_grad_(True)
        one = op.forward(single)
        torch.testing.assert_close(one, out[i].detach(), rtol=1e-10, atol=1e-12 * float(one.detach().abs().max()))
        one.abs().pow(2).sum().backward()
        torch.testing.assert_close(single.grad, batched.grad[i], rtol=1e-9, atol=1e-12 * float(single.grad.abs().max()))


# ---------------------------------------------------------------------- frequencies, convergence
def test_select_frequencies_slices_the_full_output():
    f = [2e9, 3e9, 4e9]
    x, z, _ = grid(24, 0.08)
    op = LippmannSchwinger(TX[::2], RX[::2], f, x, z, dtype=torch.complex128, tol=1e-12)
    chi = torch.as_tensor(2 * disk_fraction(x, z, (0.01, 0.0), 0.02), dtype=torch.complex128)
    full = op.forward(chi)
    sub = op.select_frequencies([0, 2])
    assert sub.out_shape == (8, 16, 2) and op.out_shape == (8, 16, 3)
    np.testing.assert_array_equal(sub.frequencies, [2e9, 4e9])
    torch.testing.assert_close(sub.forward(chi), full[..., [0, 2]], rtol=1e-9, atol=1e-12 * float(full.abs().max()))
    torch.testing.assert_close(sub.born.forward(chi), op.born.forward(chi)[..., [0, 2]])
    torch.testing.assert_close(sub.incident, op.incident[[0, 2]])


def test_huge_contrast_raises_convergence_error_with_the_residual():
    x, z, _ = grid(32)
    op = LippmannSchwinger(TX[:2], RX[:4], [8e9], x, z, dtype=torch.complex128, max_iter=10)
    chi = torch.as_tensor(200 * disk_fraction(x, z, (0.0, 0.0), 0.03))
    with pytest.raises(ConvergenceError, match=r"relative residual \d") as info:
        op.forward(chi)
    err = info.value
    assert err.residual > op.tol and f"{err.residual:.3g}" in str(err)
    assert operators.ConvergenceError is ConvergenceError and isinstance(err, RuntimeError)
