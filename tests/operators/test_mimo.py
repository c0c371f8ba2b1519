"""MIMORadar (near-field, exact, matrix-free), array helpers, and radar physics of backprojection."""

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import hankel2

import operators.mimo_steering as steering
from operators.arrays import (
    as_positions,
    fmcw_frequencies,
    image_grid,
    stepped_frequencies,
    uniform_mimo_array,
    virtual_positions,
    virtual_spacing,
)
from operators.classical import backproject
from operators.mimo import SPEED_OF_LIGHT as C
from operators.mimo import MIMORadar
from operators.testing import check_adjoint, random_input, random_output

ADJOINT_TOL = {torch.complex64: 1e-5, torch.complex128: 1e-12}
ROOT = Path(__file__).resolve().parents[2]


def small_geometry(n_tx=3, n_rx=4, n_f=12, uniform=True):
    tx, rx = uniform_mimo_array(n_tx, n_rx, 1.9e-3)
    if uniform:
        f = stepped_frequencies(77e9, 4e9, n_f)
    else:
        f = np.sort(np.random.default_rng(0).uniform(76e9, 81e9, n_f))
    x, z = image_grid(-0.1, 0.1, 9, 0.5, 0.7, 7)
    return tx, rx, f, x, z


def dense_matrix(op: MIMORadar) -> np.ndarray:
    """The model written out in float64/complex128 numpy: rows (i, j, k) row-major, columns pixels."""
    xx, zz = np.meshgrid(op.x, op.z)
    p = np.stack((xx.ravel(), zz.ravel()), axis=1)
    d_t = np.linalg.norm(op.tx[:, None, :] - p[None], axis=-1)
    d_r = np.linalg.norm(op.rx[:, None, :] - p[None], axis=-1)
    a = np.exp(-2j * np.pi * op.frequencies[None, None, :, None] / C * (d_t[:, None, None] + d_r[None, :, None]))
    if op.spreading == "spherical":
        a = a / (d_t[:, None, None] * d_r[None, :, None])
    elif op.spreading == "cylindrical":
        a = a / np.sqrt(d_t[:, None, None] * d_r[None, :, None])
    elif op.spreading == "hankel":  # written from the 2-D Green's function G = -(j/4) H0⁽²⁾(kd), not from the code
        k = 2 * np.pi * op.frequencies[None, None, :, None] / C
        g_t, g_r = (-0.25j * hankel2(0, k * dist) for dist in (d_t[:, None, None], d_r[None, :, None]))
        a = g_t * g_r / (-1j / (8 * np.pi * k))  # k² G G = -(j k/(8π)) h h  (operators.mimo docstring)
    return a.reshape(-1, p.shape[0])


# ---------------------------------------------------------------------------- arrays
def test_uniform_array_fills_virtual_array_with_half_pitch():
    d = 2e-3
    tx, rx = uniform_mimo_array(4, 8, d, center=(0.1, -0.2))
    assert tx.shape == (4, 2) and rx.shape == (8, 2) and tx.dtype == np.float64
    np.testing.assert_allclose(np.diff(rx[:, 0]), d)
    np.testing.assert_allclose(np.diff(tx[:, 0]), 8 * d)
    assert np.all(tx[:, 1] == -0.2) and np.all(rx[:, 1] == -0.2)
    v = np.sort(virtual_positions(tx, rx)[..., 0].ravel())
    np.testing.assert_allclose(np.diff(v), d / 2, rtol=1e-9)  # filled, no duplicates
    assert abs(v.mean() - 0.1) < 1e-12
    d_v, n_v = virtual_spacing(tx, rx)
    assert n_v == 32 and d_v == pytest.approx(d, rel=1e-9)


def test_frequency_sets_and_grid():
    f = stepped_frequencies(77e9, 4e9, 64)
    assert f[0] == 77e9 and np.allclose(np.diff(f), 4e9 / 64)
    g = fmcw_frequencies(77e9, 40e12, 10e6, 100)  # f_n = f0 + S n / fs
    np.testing.assert_allclose(g, 77e9 + 40e12 * np.arange(100) / 10e6)
    x, z = image_grid(-1.0, 1.0, 5, 2.0, 3.0, 3)
    np.testing.assert_allclose(x, [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_allclose(z, [2, 2.5, 3])


# ---------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("spreading", [False, True, "cylindrical", "hankel"])
@pytest.mark.parametrize("dims", [(3, 4, True), (5, 2, True), (3, 4, False)], ids=["tx<rx", "tx>rx", "nonuniform-f"])
@pytest.mark.parametrize("cache", [True, False])
def test_matches_dense_model_and_is_adjoint(dims, spreading, cache, cdtype):
    op = MIMORadar(*small_geometry(*dims[:2], uniform=dims[2]), spreading=spreading, cache_steering=cache, dtype=cdtype)
    assert op.in_shape == (7, 9) and op.out_shape == (dims[0], dims[1], 12)
    assert op.dims == ("tx", "rx", "freq") and op.spatial_dims == ("tx", "rx")
    a = dense_matrix(op)
    x = random_input(op, batch=(2,))
    y = op.forward(x)
    y_ref = (x.to(torch.complex128).reshape(2, -1).numpy() @ a.T).reshape(2, *op.out_shape)
    tol = 2e-6 if cdtype == torch.complex64 else 1e-11
    assert np.linalg.norm(y.to(torch.complex128).numpy() - y_ref) <= tol * np.linalg.norm(y_ref)
    r = random_output(op, batch=(2,))
    x_ref = (r.to(torch.complex128).reshape(2, -1).numpy() @ a.conj()).reshape(2, *op.in_shape)
    xa = op.adjoint(r).to(torch.complex128).numpy()
    assert np.linalg.norm(xa - x_ref) <= tol * np.linalg.norm(x_ref)
    assert check_adjoint(op) < ADJOINT_TOL[cdtype]


@pytest.mark.parametrize("spreading", [False, True, "cylindrical", "hankel"])
def test_restricted_operator_is_adjoint(spreading, cdtype):
    op = MIMORadar(*small_geometry(), spreading=spreading, dtype=cdtype)
    keep = torch.rand(op.out_shape, generator=torch.Generator().manual_seed(3)) < 0.3
    sub = op.restrict(keep)
    assert check_adjoint(sub) < ADJOINT_TOL[cdtype]
    x = random_input(op)
    torch.testing.assert_close(sub.forward(x), op.forward(x)[keep])


def test_chunked_and_unchunked_agree(monkeypatch):
    tx, rx, f, _, _ = small_geometry(4, 5, 40)
    x, z = image_grid(-0.1, 0.1, 30, 0.5, 0.7, 40)
    geom = (tx, rx, f, x, z)
    ref = MIMORadar(*geom)
    img, meas = random_input(ref, batch=(3,)), random_output(ref, batch=(3,))
    chunked = [
        MIMORadar(*geom, memory_budget=20_000, cache_steering=False),  # per-frequency phasors, tiny blocks
        MIMORadar(*geom, memory_budget=100_000, cache_steering=False),  # anchor × offset-table blocks
        MIMORadar(*geom, memory_budget=ref.steering_bytes + 60_000, cache_steering=True),  # cached, small blocks
    ]
    plans = [op._plan(3, op._block_budget(), op._use_cache) for op in chunked]
    assert all(pc < ref.size_in and m < 40 for _, pc, m in plans)
    assert chunked[1]._table(plans[1][2]) and not chunked[0]._table(plans[0][2])
    results = [(op.forward(img), op.adjoint(meas)) for op in chunked]
    monkeypatch.setitem(steering._BLOCK_TARGET, "cpu", 2**40)
    for cache in (True, False):
        big = MIMORadar(*geom, memory_budget=2**30, cache_steering=cache)
        assert big._plan(3, big._block_budget(), cache) == (3, big.size_in, 40)  # one block
        y_big, x_big = big.forward(img), big.adjoint(meas)
        for y_small, x_small in results:
            assert float((y_small - y_big).norm() / y_big.norm()) < 1e-5
            assert float((x_small - x_big).norm() / x_big.norm()) < 1e-5


def test_to_dtype_and_autograd_use_the_exact_adjoint():
    op = MIMORadar(*small_geometry(), cache_steering=True)
    x = random_input(op)
    y64 = op.forward(x)  # builds the cache
    op128 = op.to(dtype=torch.complex128)
    assert op128.dtype == torch.complex128 and op.dtype == torch.complex64
    assert op128._cache is not op._cache and "steering" not in op128._cache
    y128 = op128.forward(x.to(torch.complex128))
    assert y128.dtype == torch.complex128
    assert float((y128 - y64.to(torch.complex128)).norm() / y128.norm()) < 2e-6
    # gradient of ½‖Ax − b‖² is Aᴴ(Ax − b)
    b = random_output(op128)
    xg = x.to(torch.complex128).requires_grad_(True)
    loss = 0.5 * (op128.forward(xg) - b).abs().pow(2).sum()
    loss.backward()
    torch.testing.assert_close(xg.grad, op128.adjoint(op128.forward(x.to(torch.complex128)) - b))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    op = MIMORadar(*small_geometry(), spreading=True)
    gpu = op.to(device="cuda")
    x, y = random_input(op), random_output(op)
    torch.testing.assert_close(gpu.forward(x.cuda()).cpu(), op.forward(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gpu.adjoint(y.cuda()).cpu(), op.adjoint(y), rtol=1e-5, atol=1e-5)
    assert check_adjoint(gpu) < 1e-5


# ---------------------------------------------------------------------------- normalisation and windows
@pytest.mark.parametrize("spreading", [False, True, "cylindrical", "hankel"])
@pytest.mark.parametrize("dims", [(3, 4), (5, 2)], ids=["tx<rx", "tx>rx"])
def test_normal_diagonal_is_exact(spreading, dims):
    op = MIMORadar(*small_geometry(*dims), spreading=spreading, dtype=torch.complex128)
    a = dense_matrix(op)
    w = op.measurement_window("hamming")
    np.testing.assert_allclose(op.normal_diagonal().numpy().ravel(), (np.abs(a) ** 2).sum(0), rtol=1e-12)
    ref = (w.numpy().reshape(-1, 1) * np.abs(a) ** 2).sum(0)
    np.testing.assert_allclose(op.normal_diagonal(weights=w).numpy().ravel(), ref, rtol=1e-12)


def test_measurement_window_is_hamming_over_frequency_and_virtual_array():
    tx, rx, f, x, z = small_geometry(3, 4, 12)
    op = MIMORadar(tx, rx, f, x, z)
    w = op.measurement_window("hamming")
    assert w.shape == op.out_shape and w.dtype == torch.float32
    # uniform array: pair (i, j) sits at virtual index i·N_R + j
    expected = np.hamming(12)[None, :] * np.hamming(12)[:, None]
    np.testing.assert_allclose(w.numpy().reshape(12, 12), expected, rtol=1e-6)
    assert torch.equal(op.measurement_window("none"), torch.ones(op.out_shape))
    assert torch.equal(op.measurement_window("rect"), torch.ones(op.out_shape))


# ---------------------------------------------------------------------------- radar physics
F = stepped_frequencies(77e9, 4e9, 64)
B = 4e9
D = C / (2 * F.max())  # d ≤ λ_min/2: phase-centre pitch ≤ λ/4, no grating lobes
TX, RX = uniform_mimo_array(4, 8, D)
R = 1.0


def target_data(x0: float, z0: float) -> torch.Tensor:
    """Measurements of a unit point target at (x0, z0): a one-pixel operator applied to 1."""
    one = MIMORadar(TX, RX, F, [x0], [z0], dtype=torch.complex128)
    return one.forward(torch.ones(1, 1, dtype=torch.complex128))


def minus3db_width(u: np.ndarray, a: np.ndarray) -> float:
    a = a / a.max()
    level, i = 10 ** (-3 / 20), int(np.argmax(a))
    r = i
    while a[r] >= level:
        r += 1
    left = i
    while a[left] >= level:
        left -= 1
    ur = u[r - 1] + (level - a[r - 1]) * (u[r] - u[r - 1]) / (a[r] - a[r - 1])
    ul = u[left] + (level - a[left]) * (u[left + 1] - u[left]) / (a[left + 1] - a[left])
    return ur - ul


def first_sidelobe_db(a: np.ndarray) -> float:
    """Level of the first sidelobe right of the peak (past the first null), in dB below the peak."""
    a = a / a.max()
    i = int(np.argmax(a))
    while a[i + 1] < a[i]:
        i += 1
    while a[i + 1] > a[i]:
        i += 1
    return 20 * math.log10(a[i])


@pytest.fixture(scope="module")
def range_cut():
    z = np.linspace(R - 0.12, R + 0.12, 961)
    op = MIMORadar(TX, RX, F, [0.0], z, dtype=torch.complex128)
    y = target_data(0.0, R)
    return z, {w: backproject(op, y, window=w).abs().numpy()[:, 0] for w in (None, "hamming")}


def test_range_resolution_matches_theory(range_cut):
    z, img = range_cut
    width = minus3db_width(z, img[None])
    assert width == pytest.approx(0.886 * C / (2 * B), rel=0.03)
    assert abs(z[np.argmax(img[None])] - R) < 1e-3
    # Hamming widens the main lobe (≈ 1.47×)
    assert minus3db_width(z, img["hamming"]) > 1.3 * width


def test_range_sidelobes(range_cut):
    _, img = range_cut
    for a in (img[None], img[None][::-1]):  # both sides
        assert first_sidelobe_db(a) == pytest.approx(-13.26, abs=0.5)
    for a in (img["hamming"], img["hamming"][::-1]):
        assert first_sidelobe_db(a) < -38.0


def test_cross_range_resolution_matches_theory():
    x = np.linspace(-0.15, 0.15, 1201)
    op = MIMORadar(TX, RX, F, x, [R], dtype=torch.complex128)
    img = backproject(op, target_data(0.0, R)).abs().numpy()[0]
    d_v, n_v = virtual_spacing(TX, RX)
    lam_c = C / (0.5 * (F.min() + F.max()))
    assert minus3db_width(x, img) == pytest.approx(0.886 * lam_c * R / (n_v * d_v), rel=0.05)
    assert abs(x[np.argmax(img)]) < 1e-3


def test_off_grid_target_peaks_at_nearest_pixel_and_normalised_image_is_one():
    x, z = image_grid(-0.1, 0.1, 41, R - 0.1, R + 0.1, 41)
    x0, z0 = 0.0123, R + 0.0317
    op = MIMORadar(TX, RX, F, x, z)
    img = backproject(op, target_data(x0, z0).to(torch.complex64)).abs()
    iz, ix = divmod(int(torch.argmax(img)), x.size)
    assert (iz, ix) == (int(np.argmin(np.abs(z - z0))), int(np.argmin(np.abs(x - x0))))
    # a unit target on a pixel images to 1 there after normalisation, with or without window/spreading
    for spreading in (False, True):
        op_s = MIMORadar(TX, RX, F, x, z, spreading=spreading)
        delta = torch.zeros(op_s.in_shape, dtype=torch.complex64)
        delta[13, 29] = 1
        for window in (None, "hamming"):
            v = backproject(op_s, op_s.forward(delta), normalize=True, window=window)[13, 29]
            assert abs(complex(v) - 1) < 1e-5


# ---------------------------------------------------------------------------- memory
MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np, torch
    from operators.arrays import image_grid, stepped_frequencies, uniform_mimo_array
    from operators.mimo import MIMORadar, SPEED_OF_LIGHT as C
    tx, rx = uniform_mimo_array(32, 32, 1.8e-3)
    f = stepped_frequencies(77e9, 4e9, 32)
    x, z = image_grid(-0.2, 0.2, 208, 0.5, 1.5, 160)
    warm = MIMORadar(tx[:2], rx[:2], f[:2], x[:8], z[:8])  # load BLAS/OpenMP before the baseline
    warm.adjoint(warm.forward(torch.ones(8, 8, dtype=torch.complex64)))
    g = torch.Generator().manual_seed(0)
    img = torch.randn(160, 208, dtype=torch.complex64, generator=g)
    rss = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
    op = MIMORadar(tx, rx, f, x, z, memory_budget=500_000_000)
    y = op.forward(img)
    back = op.adjoint(y)
    # peak RSS of this process image: VmHWM is reset by exec, whereas ru_maxrss keeps the forking
    # parent's high-water mark (a large pytest process made the delta look like 570 MB)
    hwm = [l for l in open("/proc/self/status").read().splitlines() if l.startswith("VmHWM:")][0]
    peak = int(hwm.split()[1]) * 1024
    # one row of the dense matrix, in float64, for a spot check
    xx, zz = np.meshgrid(x, z)
    d = np.hypot(xx - tx[3, 0], zz - tx[3, 1]) + np.hypot(xx - rx[17, 0], zz - rx[17, 1])
    row = np.exp(-2j * np.pi * f[21] / C * d).ravel()
    ref = row @ img.numpy().ravel().astype(np.complex128)
    err = abs(complex(y[3, 17, 21]) - ref) / (np.linalg.norm(row) * float(img.norm()))
    print(json.dumps({"dense_bytes": 8 * op.size_out * op.size_in, "delta": peak - rss, "err": err,
                      "cached": op._use_cache, "finite": bool(torch.isfinite(back).all())}))
    """
)


@pytest.mark.slow
def test_large_problem_runs_within_500mb():
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=300, check=True
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["dense_bytes"] > 8 * 2**30  # the dense matrix would not fit in 8 GiB
    assert res["delta"] < 500_000_000, res  # peak RSS growth over the baseline (conservative)
    assert res["err"] < 1e-5 and res["finite"] and not res["cached"]


# ---------------------------------------------------------------------------- input validation
GOOD = dict(zip(("tx", "rx", "frequencies", "x", "z"), small_geometry(), strict=True))


@pytest.mark.parametrize(
    ("field", "value", "exc", "match"),
    [
        ("tx", np.zeros((3, 3)), ValueError, "tx must have shape"),
        ("tx", np.zeros((0, 2)), ValueError, "tx must hold at least one"),
        ("rx", np.array([[0.0, np.nan]]), ValueError, "rx must be finite"),
        ("rx", [[1.0, 2.0], [3.0]], TypeError, "rx must be a real numeric"),
        ("tx", np.zeros((2, 2), dtype=complex), TypeError, "tx must be a real numeric"),
        ("frequencies", [], ValueError, "frequencies must hold at least one"),
        ("frequencies", [77e9, -1.0], ValueError, "frequencies must be positive"),
        ("frequencies", [77e9, 0.0], ValueError, "frequencies must be positive"),
        ("frequencies", [77e9, np.inf], ValueError, "frequencies must be finite"),
        ("frequencies", np.ones((2, 2)), ValueError, "frequencies must be a 1-D"),
        ("x", [], ValueError, "x must hold at least one"),
        ("z", [0.5, 0.7, 0.6], ValueError, "z must be strictly monotonic"),
        ("x", [0.1, 0.1], ValueError, "x must be strictly monotonic"),
        ("x", np.zeros((2, 2)), ValueError, "x must be a 1-D"),
        ("z", [0.5, np.nan], ValueError, "z must be finite"),
    ],
)
def test_bad_geometry_is_rejected(field, value, exc, match):
    with pytest.raises(exc, match=match):
        MIMORadar(**{**GOOD, field: value})


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="memory_budget=1000 bytes is too small"):
        MIMORadar(**GOOD, memory_budget=1000)
    with pytest.raises(ValueError, match="memory_budget must be a positive"):
        MIMORadar(**GOOD, memory_budget=-5)
    with pytest.raises(TypeError, match="memory_budget must be a number"):
        MIMORadar(**GOOD, memory_budget="1GB")
    with pytest.raises(ValueError, match="cache_steering must be"):
        MIMORadar(**GOOD, cache_steering="yes")
    with pytest.raises(ValueError, match="cache_steering=True needs"):
        MIMORadar(**{**GOOD, "x": np.linspace(-0.1, 0.1, 64)}, cache_steering=True, memory_budget=200_000)
    with pytest.raises(ValueError, match="spreading must be one of"):
        MIMORadar(**GOOD, spreading="no")
    with pytest.raises(TypeError, match="spreading must be a bool or one of"):
        MIMORadar(**GOOD, spreading=1.0)
    with pytest.raises(TypeError, match="dtype"):
        MIMORadar(**GOOD, dtype=torch.float32)
    on_antenna = {**GOOD, "x": [-0.01, GOOD["tx"][1, 0], 0.01], "z": [GOOD["tx"][1, 1], 0.5]}
    with pytest.raises(ValueError, match=r"spreading=True: a pixel coincides with tx\[1\]"):
        MIMORadar(**on_antenna, spreading=True)
    op = MIMORadar(**GOOD)
    with pytest.raises(ValueError, match="kind must be"):
        op.measurement_window("kaiser")
    with pytest.raises(ValueError, match="weights must have shape"):
        op.normal_diagonal(weights=torch.ones(2, 2))
    with pytest.raises(TypeError, match="weights must be a real"):
        op.normal_diagonal(weights=torch.ones(op.out_shape, dtype=torch.complex64))


def test_array_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="spacing must be finite and > 0"):
        uniform_mimo_array(2, 2, 0.0)
    with pytest.raises(TypeError, match="n_tx must be an int"):
        uniform_mimo_array(2.5, 2, 1e-3)
    with pytest.raises(ValueError, match="bandwidth must be finite and > 0"):
        stepped_frequencies(77e9, -1.0, 8)
    with pytest.raises(ValueError, match="nz = 1 needs z_min == z_max"):
        image_grid(0, 1, 4, 0, 1, 1)
    with pytest.raises(ValueError, match="x_max must exceed x_min"):
        image_grid(1, 0, 4, 0, 1, 4)
    with pytest.raises(ValueError, match="antennas must have shape"):
        as_positions(np.zeros(4), "antennas")


@pytest.mark.parametrize("cache", [True, False])
def test_hankel_spreading_is_the_2d_greens_function_in_the_near_field(cache, cdtype):
    """At k·d ≈ 1–4 (1 GHz, antennas 5–20 cm away) the exact Hankel form differs from its large-argument
    form by several per cent; the operator matches the dense Green's-function model and is adjoint."""
    ang = np.deg2rad(np.arange(0, 360, 45.0))
    tx = 0.2 * np.stack((np.cos(ang), np.sin(ang)), axis=1)
    rx = 0.15 * np.stack((np.cos(ang + 0.2), np.sin(ang + 0.2)), axis=1)
    f = np.array([0.5e9, 1.0e9, 1.7e9])
    x, z = image_grid(-0.05, 0.05, 6, -0.04, 0.04, 5)
    op = MIMORadar(tx, rx, f, x, z, spreading="hankel", cache_steering=cache, dtype=cdtype)
    cyl = MIMORadar(tx, rx, f, x, z, spreading="cylindrical", dtype=torch.complex128)
    a = dense_matrix(op)
    xin = random_input(op)
    y = op.forward(xin).to(torch.complex128).numpy()
    y_ref = (a @ xin.to(torch.complex128).numpy().ravel()).reshape(op.out_shape)
    tol = 2e-6 if cdtype == torch.complex64 else 1e-11
    assert np.linalg.norm(y - y_ref) <= tol * np.linalg.norm(y_ref)
    rel = np.linalg.norm(y - cyl.forward(xin.to(torch.complex128)).numpy()) / np.linalg.norm(y_ref)
    assert 0.02 < rel < 0.5  # the near-field correction is real here, and not a different model
    assert check_adjoint(op) < ADJOINT_TOL[cdtype]
    assert check_adjoint(op.restrict(torch.arange(0, op.size_out, 3))) < ADJOINT_TOL[cdtype]
    np.testing.assert_allclose(
        op.to(dtype=torch.complex128).normal_diagonal().numpy().ravel(), (np.abs(a) ** 2).sum(0), rtol=1e-10
    )


def test_hankel_correction_tends_to_one():
    from operators.mimo import hankel_correction

    u = np.array([1.0, 10.0, 100.0, 1e4])
    c = hankel_correction(u)
    assert np.all(np.abs(c - (1 + 1j / (8 * u))) < 0.2 / u**2)  # the asymptotic series, next term
    assert abs(c[0] - 1) > 0.1 and abs(c[-1] - 1) < 1e-4


@pytest.mark.parametrize("spreading", [False, "hankel"])
def test_restricted_normal_diagonal_is_exact(spreading):
    """Backprojection of data with missing entries normalises by the diagonal of the kept rows only."""
    op = MIMORadar(*small_geometry(3, 4), spreading=spreading, dtype=torch.complex128)
    keep = torch.rand(op.out_shape, generator=torch.Generator().manual_seed(5)) < 0.4
    a = dense_matrix(op)[keep.numpy().ravel()]
    np.testing.assert_allclose(op.restrict(keep).normal_diagonal().numpy().ravel(), (np.abs(a) ** 2).sum(0), rtol=1e-10)


def test_default_memory_budget_follows_the_device():
    """``memory_budget=None``: 256 MiB on the CPU, 4 GiB elsewhere, re-resolved by ``.to``; a given budget stays."""
    from operators.mimo_steering import default_memory_budget

    assert default_memory_budget("cpu") == 256 * 2**20 and default_memory_budget("cuda") == 4 * 2**30
    geom = small_geometry()
    assert MIMORadar(*geom).memory_budget == 256 * 2**20
    fixed = MIMORadar(*geom, memory_budget=10**7)
    assert fixed.to(dtype=torch.complex128).memory_budget == 10**7
    with pytest.raises(TypeError, match="memory_budget"):
        MIMORadar(*geom, memory_budget="1GB")
