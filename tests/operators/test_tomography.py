"""2-D diffraction tomography: operator algebra, k-space geometry, physics and the classical inverse."""

import math

import numpy as np
import pytest
import torch
from conftest import ADJOINT_TOL
from mie_cylinder import cylinder_sinogram

from operators.backpropagation import angle_weights, filtered_backpropagation, filtered_backpropagation_op
from operators.nufft import NonUniformFourier2D, kbnufft_available, nufft_available
from operators.testing import check_adjoint
from operators.tomography import (
    AUTO_DENSE_MAX_COST,
    DiffractionTomography,
    auto_method,
    born_data,
    index_to_object,
    object_to_index,
    refocus,
    rytov_data,
    unwrap_phase,
)

LAM = 1.0e-6  # vacuum wavelength (m)
NM = 1.333  # medium index
DX = LAM / NM / 4  # pixel: a quarter of the wavelength in the medium
K_M = 2 * math.pi * NM / LAM
needs_nufft = pytest.mark.skipif(not nufft_available(), reason="finufft not installed")
needs_kb = pytest.mark.skipif(not kbnufft_available(), reason="torchkbnufft not installed")
METHODS = ["dense", pytest.param("nufft", marks=needs_nufft), pytest.param("kbnufft", marks=needs_kb)]


def full_angles(n: int) -> np.ndarray:
    return np.linspace(0, 2 * np.pi, n, endpoint=False)


def discs(shape=(64, 64), dn=(0.002, 0.001)) -> torch.Tensor:
    """Two discs of small index contrast, as an object function (m⁻², complex128)."""
    H, W = shape
    y, x = np.mgrid[:H, :W]
    y, x = y - H // 2, x - W // 2
    n = np.full(shape, NM)
    n[(x - 8) ** 2 + (y + 5) ** 2 < 8**2] += dn[0]
    n[(x + 10) ** 2 + (y - 9) ** 2 < 5**2] += dn[1]
    return torch.from_numpy(index_to_object(n, LAM, NM)).to(torch.complex128)


def corr(a, b) -> float:
    a = np.real(np.asarray(a)).ravel()
    b = np.real(np.asarray(b)).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative error, in float64 (SI-scaled values can be ~1e-26: their squares underflow in float32)."""
    a, b = a.to(torch.complex128), b.to(torch.complex128)
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


# ---------------------------------------------------------------------- algebra
@pytest.mark.parametrize("method", METHODS)
def test_adjoint(method, cdtype):
    op = DiffractionTomography(
        full_angles(24), (40, 32), LAM, NM, DX, detector_distance=6 * DX, detector_size=36, method=method, dtype=cdtype
    )
    assert op.method == method
    assert op.out_shape == (24, 36) and op.dims == ("angle", "detector") and op.spatial_dims == ("detector",)
    assert op.opnorm() > 0
    assert check_adjoint(op, batch=(2,)) < ADJOINT_TOL[cdtype]


@needs_nufft
def test_dense_and_nufft_agree():
    args = (full_angles(48), (48, 40), LAM, NM, DX, 5 * DX)
    dense = DiffractionTomography(*args, method="dense", dtype=torch.complex128)
    fast = DiffractionTomography(*args, method="nufft", dtype=torch.complex64)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 48, 40, generator=g, dtype=torch.complex128)
    y = torch.randn(2, 48, 40, generator=g, dtype=torch.complex128)
    assert rel(fast(x.to(torch.complex64)).to(torch.complex128), dense(x)) < 1e-4
    assert rel(fast.adjoint(y.to(torch.complex64)).to(torch.complex128), dense.adjoint(y)) < 1e-4
    # the generic NUDFT on its own: both paths, same random frequencies (any range: wrapped mod 2π)
    om = torch.rand(500, 2, generator=g, dtype=torch.float64) * 20 - 10
    a = NonUniformFourier2D(om, (16, 12), method="dense", dtype=torch.complex128)
    b = NonUniformFourier2D(om, (16, 12), method="nufft", dtype=torch.complex128)
    assert rel(b(x[0, :16, :12]), a(x[0, :16, :12])) < 1e-10
    assert check_adjoint(b) < 1e-12


@needs_kb
def test_dense_and_kbnufft_agree():
    """torchkbnufft (the GPU path) against the exact NUDFT: ≈ 2e-4 relative, exact transposes."""
    args = (full_angles(48), (48, 40), LAM, NM, DX, 5 * DX)
    dense = DiffractionTomography(*args, method="dense", dtype=torch.complex128)
    kb = DiffractionTomography(*args, method="kbnufft", dtype=torch.complex128)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 48, 40, generator=g, dtype=torch.complex128)
    y = torch.randn(2, 48, 40, generator=g, dtype=torch.complex128)
    assert rel(kb(x), dense(x)) < 5e-4 and rel(kb.adjoint(y), dense.adjoint(y)) < 5e-4
    assert rel(kb(x), dense(x)) > 1e-8  # an approximation (a second dense path would be ~1e-15)
    assert check_adjoint(kb, batch=(2,)) < 1e-12
    assert kb.to(dtype=torch.complex64).method == "kbnufft"
    om = torch.rand(400, 2, generator=g, dtype=torch.float64) * 20 - 10  # any range: wrapped mod 2π
    a = NonUniformFourier2D(om, (16, 12), method="dense", dtype=torch.complex128)
    b = NonUniformFourier2D(om, (16, 12), method="kbnufft", dtype=torch.complex128)
    assert rel(b(x[0, :16, :12]), a(x[0, :16, :12])) < 5e-4 and b.accuracy == pytest.approx(2e-4)
    # precomputed sparse interpolation matrices (the default off the CPU): ten times closer, still exact transposes
    c = NonUniformFourier2D(om, (16, 12), method="kbnufft", kb_interp="sparse", dtype=torch.complex128)
    assert rel(c(x[0, :16, :12]), a(x[0, :16, :12])) < 5e-5 and check_adjoint(c) < 1e-12
    with pytest.raises(ValueError, match="kb_interp"):
        NonUniformFourier2D(om, (16, 12), method="kbnufft", kb_interp="linear")


def test_auto_method_per_device():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert auto_method(100, (32, 32), cpu) == "dense"
    assert auto_method(AUTO_DENSE_MAX_COST, (32, 32), cpu) == ("nufft" if nufft_available() else "dense")
    assert auto_method(100, (32, 32), gpu) == "dense"  # never finufft off the CPU: it would copy every call
    assert auto_method(349184, (512, 512), gpu) == "dense"  # 512² default geometry: 2.7 GB of tables, cached
    big = auto_method(1_400_000, (1024, 1024), gpu)  # 23 GB of tables: not cached
    assert big == ("kbnufft" if kbnufft_available() else "dense")
    op = DiffractionTomography(full_angles(48), (48, 48), LAM, NM, DX)
    assert op.method == auto_method(op._nudft.size_out, (48, 48), cpu)
    with pytest.raises(ValueError, match="method must be"):
        DiffractionTomography(full_angles(4), (8, 8), LAM, NM, DX, method="cufinufft")


def test_matches_the_fourier_diffraction_theorem_written_out():
    """Tiny case against the DESIGN formula summed directly in numpy (no shared code path)."""
    H, W, N, l_d = 7, 6, 9, 3 * DX
    ang = np.array([0.3, 1.9, 4.0])
    op = DiffractionTomography(ang, (H, W), LAM, NM, DX, l_d, N, method="dense", dtype=torch.complex128)
    f = np.random.default_rng(0).standard_normal((H, W)) + 1j * np.random.default_rng(1).standard_normal((H, W))
    y_pix, x_pix = np.mgrid[:H, :W]
    rx, ry = (x_pix - W // 2) * DX, (y_pix - H // 2) * DX
    out = np.zeros((3, N), complex)
    for a, phi in enumerate(ang):
        t, s = np.array([np.cos(phi), np.sin(phi)]), np.array([-np.sin(phi), np.cos(phi)])
        for m in range(N):
            kx = 2 * np.pi * (m - N // 2) / (N * DX)
            if abs(kx) >= K_M:
                continue
            gam = np.sqrt(K_M**2 - kx**2)
            K = kx * t + (gam - K_M) * s
            F = DX**2 * np.sum(f * np.exp(-1j * (K[0] * rx + K[1] * ry)))  # continuous FT
            U = 1j / (2 * gam) * np.exp(1j * (gam - K_M) * l_d) * F
            xi = (np.arange(N) - N // 2) * DX
            out[a] += U * np.exp(1j * kx * xi) / (N * DX)  # (1/2π) ∫ dk_x with dk_x = 2π/(NΔ)
    np.testing.assert_allclose(op(torch.from_numpy(f)).numpy(), out, rtol=1e-10, atol=1e-12 * np.abs(out).max())
    # exact diagonal of AᴴA and the operator norm against the full matrix
    mat = op(torch.eye(H * W, dtype=torch.complex128).reshape(-1, H, W)).reshape(H * W, -1).T
    np.testing.assert_allclose(op.normal_diagonal().numpy().ravel(), (mat.abs() ** 2).sum(0).numpy(), rtol=1e-10)
    assert op.opnorm(iters=500, tol=1e-12) == pytest.approx(float(torch.linalg.matrix_norm(mat, 2)), rel=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_autograd_gives_the_adjoint(method):
    op = DiffractionTomography(full_angles(16), (24, 24), LAM, NM, DX, method=method)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 24, generator=g, dtype=torch.complex64, requires_grad=True)
    y = torch.randn(16, 24, generator=g, dtype=torch.complex64) * 1e-12
    loss = torch.linalg.vector_norm(op(x) - y) ** 2
    loss.backward()
    expected = 2 * op.adjoint(op(x.detach()) - y)
    assert rel(x.grad, expected) < 1e-5


def test_to_and_restrict():
    op = DiffractionTomography(full_angles(8), (16, 16), LAM, NM, DX, method="dense")
    op2 = op.to(dtype=torch.complex128)
    assert op.dtype == torch.complex64 and op2.dtype == torch.complex128
    assert check_adjoint(op2) < 1e-12
    x = torch.randn(16, 16, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    assert rel(op(x.to(torch.complex64)).to(torch.complex128), op2(x)) < 1e-5
    sub = op2.restrict(torch.arange(0, op2.size_out, 3))
    torch.testing.assert_close(sub(x), op2(x).reshape(-1)[::3])


# ---------------------------------------------------------------------- k-space geometry
def test_samples_lie_on_semicircles_and_fill_the_disk():
    from scipy.spatial import cKDTree

    ang = full_angles(64)
    op = DiffractionTomography(ang, (64, 64), LAM, NM, DX, detector_size=256)
    K = op.k_samples  # (A, P, 2) as (K_x, K_y)
    s0 = np.stack([-np.sin(ang), np.cos(ang)], -1)[:, None, :]
    t = np.stack([np.cos(ang), np.sin(ang)], -1)[:, None, :]
    np.testing.assert_allclose(np.linalg.norm(K + K_M * s0, axis=-1), K_M, rtol=1e-12)
    kx = op.detector_frequencies[op.propagating]
    np.testing.assert_allclose((K * t).sum(-1), np.broadcast_to(kx, K.shape[:2]), rtol=1e-12, atol=1e-6)
    assert np.abs(kx).max() < K_M and op.detector_frequencies[~op.propagating].__abs__().min() >= K_M
    radius = np.linalg.norm(K, axis=-1)
    assert radius.max() <= math.sqrt(2) * K_M
    # the outermost sample is where the largest propagating k_x puts it: |K|² = 2 k_m (k_m − γ)
    gmin = np.sqrt(K_M**2 - np.abs(kx).max() ** 2)
    assert radius.max() == pytest.approx(math.sqrt(2 * K_M * (K_M - gmin)), rel=1e-12)
    # union over 2π: every grid frequency with |K| ≤ 0.9 √2 k_m has a sample within one grid step
    unit = 2 * np.pi / (64 * DX)
    g = (np.arange(64) - 32) * unit
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    inside = grid[np.linalg.norm(grid, axis=1) <= 0.9 * math.sqrt(2) * K_M]
    dist, _ = cKDTree(K.reshape(-1, 2)).query(inside)
    assert dist.max() < unit
    # ... and a quarter turn does not fill it
    quarter = DiffractionTomography(ang[:16], (64, 64), LAM, NM, DX, detector_size=256).k_samples
    assert cKDTree(quarter.reshape(-1, 2)).query(inside)[0].max() > 5 * unit


# ---------------------------------------------------------------------- classical inverse
@pytest.mark.parametrize("l_d_px", [0.0, 10.0])
def test_backpropagation_matches_odtbrain_and_truth(l_d_px):
    odtbrain = pytest.importorskip("odtbrain")
    ang = full_angles(64)
    f = discs()
    op = DiffractionTomography(ang, (64, 64), LAM, NM, DX, l_d_px * DX, dtype=torch.complex128)
    sino = op(f)
    ours = filtered_backpropagation(sino, ang, (64, 64), LAM, NM, DX, l_d_px * DX)
    theirs = odtbrain.backpropagate_2d(sino.numpy(), ang, LAM / DX, NM, lD=l_d_px) / DX**2  # px⁻² → m⁻²
    assert corr(ours, theirs) > 0.95
    assert corr(ours, f) > 0.9 and corr(theirs, f) > 0.9
    # same physical scale as the truth (band-limited: slightly below one)
    scale = float(np.real(ours.numpy()).ravel() @ f.real.numpy().ravel() / (f.real.numpy() ** 2).sum())
    assert 0.85 < scale < 1.05
    torch.testing.assert_close(filtered_backpropagation_op(op, sino), ours)


def test_angle_weights():
    np.testing.assert_allclose(angle_weights(full_angles(10)), 2 * np.pi / 10)
    w = angle_weights(np.array([0.0, 0.1, 0.2, 2.0, 3.0, 4.0]))
    assert w.sum() == pytest.approx(2 * np.pi) and w[1] < w[4]


def test_rytov_backpropagation_recovers_a_mie_cylinder():
    """Exact Bessel–Hankel field of an off-centre weak cylinder → refocus → Rytov → FBP → index."""
    N, A, dn = 64, 64, 0.01
    radius, centre, l_d = 3 * LAM / NM, (6 * DX, -4 * DX), 24 * DX  # 3 wavelengths; detector clear of it
    wide = 4 * N  # evaluate on a long line, refocus, then keep the central N samples
    xi = (np.arange(wide) - wide // 2) * DX
    u = cylinder_sinogram(full_angles(A), xi, l_d, radius, NM + dn, NM, LAM, center=centre)
    u = refocus(u, -l_d, LAM, NM, DX)[:, wide // 2 - N // 2 : wide // 2 - N // 2 + N]
    f = filtered_backpropagation(rytov_data(u, 1.0), full_angles(A), (N, N), LAM, NM, DX)
    n = object_to_index(f.numpy(), LAM, NM)
    y, x = (np.mgrid[:N, :N] - N // 2) * DX
    r = np.hypot(x - centre[0], y - centre[1])
    centre_px = (N // 2 - 4, N // 2 + 6)  # row = y / Δ, column = x / Δ
    assert abs(n[centre_px].real - NM - dn) < 0.1 * dn
    assert abs((n.real[r < radius / 2] - NM).mean() - dn) < 0.1 * dn
    assert np.abs(n.real[r > radius + 4 * DX] - NM).max() < 0.6 * dn  # background: ringing only
    assert np.abs(n.imag[r < radius / 2]).mean() < 0.1 * dn  # a lossless object stays lossless


# ---------------------------------------------------------------------- data transforms
def test_born_and_rytov_transforms():
    g = torch.Generator().manual_seed(0)
    phase = torch.cumsum(torch.rand(3, 50, generator=g, dtype=torch.float64) * 2.5, dim=-1)  # steps < π, total ≫ π
    amp = torch.log1p(torch.rand(3, 50, generator=g, dtype=torch.float64))
    u0 = torch.exp(1j * torch.linspace(0, 7, 50, dtype=torch.float64))
    u = u0 * torch.exp(torch.complex(amp, phase))
    got = rytov_data(u, u0)
    torch.testing.assert_close(got.imag - got.imag[..., :1], phase - phase[..., :1])
    torch.testing.assert_close(got.real, amp)
    np.testing.assert_allclose(rytov_data(u.numpy(), u0.numpy()), got.numpy(), atol=1e-12)
    torch.testing.assert_close(born_data(u, u0), u / u0 - 1)
    wrapped = torch.rand(4, 40, generator=g, dtype=torch.float64) * 20 - 10
    np.testing.assert_allclose(unwrap_phase(wrapped).numpy(), np.unwrap(wrapped.numpy(), axis=-1), atol=1e-12)
    with pytest.raises(ValueError, match="u0"):
        born_data(u, torch.zeros(50, dtype=torch.complex128))
    with pytest.raises(ValueError, match="u/u0"):
        rytov_data(torch.zeros(3, dtype=torch.complex128), 1.0)


def test_index_object_round_trip_and_refocus():
    n = NM + np.array([0.01, -0.02, 0.05 + 0.003j])
    f = index_to_object(n, LAM, NM)
    np.testing.assert_allclose(f[0], K_M**2 * ((n[0] / NM) ** 2 - 1))
    np.testing.assert_allclose(object_to_index(f, LAM, NM), n, rtol=1e-14)
    ft = torch.from_numpy(f)
    torch.testing.assert_close(object_to_index(ft, LAM, NM), torch.from_numpy(n.astype(complex)))
    # refocusing Born data by d equals the operator with the detector moved by d (circular, pad_factor=1)
    ang, f_obj = full_angles(8), discs((32, 32))
    near = DiffractionTomography(ang, (32, 32), LAM, NM, DX, 2 * DX, dtype=torch.complex128)
    far = DiffractionTomography(ang, (32, 32), LAM, NM, DX, 9 * DX, dtype=torch.complex128)
    moved = refocus(1 + near(f_obj), 7 * DX, LAM, NM, DX, pad_factor=1.0) - 1
    torch.testing.assert_close(moved, far(f_obj))
    back = refocus(refocus(1 + near(f_obj), 7 * DX, LAM, NM, DX, 1.0), -7 * DX, LAM, NM, DX, 1.0) - 1
    assert rel(back, near(f_obj)) < 1e-10


# ---------------------------------------------------------------------- validation
GOOD = dict(angles=full_angles(4), shape=(16, 16), wavelength=LAM, medium_index=NM, pixel_size=DX)


@pytest.mark.parametrize(
    ("change", "exc", "name"),
    [
        ({"wavelength": 0.0}, ValueError, "wavelength"),
        ({"wavelength": -1e-6}, ValueError, "wavelength"),
        ({"wavelength": float("nan")}, ValueError, "wavelength"),
        ({"wavelength": "1um"}, TypeError, "wavelength"),
        ({"medium_index": 0.0}, ValueError, "medium_index"),
        ({"medium_index": float("inf")}, ValueError, "medium_index"),
        ({"pixel_size": -DX}, ValueError, "pixel_size"),
        ({"angles": np.array([])}, ValueError, "angles"),
        ({"angles": np.zeros((2, 2))}, ValueError, "angles"),
        ({"angles": np.array([0.0, np.nan])}, ValueError, "angles"),
        ({"angles": np.array([0.0, 1.0, 2 * np.pi])}, ValueError, "angles"),
        ({"angles": np.array([0.5, 0.5])}, ValueError, "angles"),
        ({"shape": (16,)}, ValueError, "shape"),
        ({"shape": (16, 1)}, ValueError, "shape"),
        ({"shape": (16.0, 16)}, TypeError, "shape"),
        ({"detector_distance": -1e-6}, ValueError, "detector_distance"),
        ({"detector_size": 1}, ValueError, "detector_size"),
        ({"detector_size": 3.5}, TypeError, "detector_size"),
        ({"method": "fast"}, ValueError, "method"),
    ],
)
def test_bad_inputs_name_the_argument(change, exc, name):
    kwargs = {**GOOD, **change}
    with pytest.raises(exc, match=name):
        DiffractionTomography(**kwargs)


def test_backpropagation_input_errors():
    sino = torch.zeros(4, 16, dtype=torch.complex64)
    with pytest.raises(ValueError, match="angles"):
        filtered_backpropagation(sino, full_angles(5), (16, 16), LAM, NM, DX)
    with pytest.raises(ValueError, match="pad_factor"):
        filtered_backpropagation(sino, full_angles(4), (16, 16), LAM, NM, DX, pad_factor=0.5)
    with pytest.raises(ValueError, match="wavelength"):
        filtered_backpropagation(sino, full_angles(4), (16, 16), -LAM, NM, DX)
    with pytest.warns(UserWarning, match="pixel_size"):
        DiffractionTomography(full_angles(4), (16, 16), LAM, NM, LAM)  # coarser than λ_m/(2√2): aliasing


@needs_nufft
def test_finufft_threads_do_not_change_the_answer(monkeypatch):
    """Small problems run finufft on one thread, large ones on torch's; either way the same transform."""
    import operators.nufft as nufft_mod

    g = torch.Generator().manual_seed(5)
    om = torch.rand(3000, 2, generator=g, dtype=torch.float64) * 6 - 3
    x = torch.randn(24, 20, generator=g, dtype=torch.complex64)
    c = torch.randn(3000, generator=g, dtype=torch.complex64)
    one = NonUniformFourier2D(om, (24, 20), method="nufft")
    assert one._threads() == 1  # 3000 points: below the single-thread limit
    monkeypatch.setattr(nufft_mod, "_SINGLE_THREAD_POINTS", 10)  # now a "large" problem
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    many = NonUniformFourier2D(om, (24, 20), method="nufft")
    assert many._threads() == 2
    exact = NonUniformFourier2D(om, (24, 20), method="dense", dtype=torch.complex128)
    for op in (one, many):
        assert rel(op(x).to(torch.complex128), exact(x.to(torch.complex128))) < 1e-5
        assert rel(op.adjoint(c).to(torch.complex128), exact.adjoint(c.to(torch.complex128))) < 1e-5
