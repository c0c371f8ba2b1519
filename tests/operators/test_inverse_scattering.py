"""Full-wave inverse scattering baselines: MR-CSI, the Born iterative method with TV, full-wave TV on the pixels.

Small simulated problems (24² grid over 0.15 m, 8 line sources and 16 receivers on a circle
of 0.3 m, 2 GHz, 20 dB): the data of a dielectric disk come from ``LippmannSchwinger.forward``
with complex Gaussian noise of known σ per real/imaginary component.
"""

import functools
import warnings

import numpy as np
import pytest
import torch

import operators as ops
from operators import born_iterative_tv, csi_mr, fullwave_tv

N = 24
SNR_DB = 20.0


def _geometry(n: int = N, side: float = 0.15, n_tx: int = 8, n_rx: int = 16, radius: float = 0.3):
    x = (np.arange(n) - (n - 1) / 2) * (side / n)
    t = np.linspace(0, 2 * np.pi, n_tx, endpoint=False)
    r = np.linspace(0, 2 * np.pi, n_rx, endpoint=False) + np.pi / n_rx
    tx = radius * np.stack([np.cos(t), np.sin(t)], axis=1)
    rx = radius * np.stack([np.cos(r), np.sin(r)], axis=1)
    return tx, rx, x, x.copy()


@functools.cache
def _operator(freqs: tuple[float, ...] = (2e9,), dtype: torch.dtype = torch.complex64) -> ops.LippmannSchwinger:
    tx, rx, x, z = _geometry()
    return ops.LippmannSchwinger(tx, rx, list(freqs), x, z, dtype=dtype)


@functools.cache
def _problem(value: float, freqs: tuple[float, ...] = (2e9,), seed: int = 0):
    """``(op, truth, disk mask, y, σ)`` for a disk of contrast ``value`` (radius 3.5 cm, off centre)."""
    op = _operator(freqs)
    zz, xx = np.meshgrid(op.z, op.x, indexing="ij")
    disk = torch.as_tensor((xx - 0.01) ** 2 + (zz + 0.005) ** 2 < 0.035**2)
    truth = (value * disk).to(op.dtype)
    clean = op.forward(truth)
    sigma = float(torch.linalg.vector_norm(clean)) / (2 * clean.numel() * 10 ** (SNR_DB / 10)) ** 0.5
    g = torch.Generator().manual_seed(seed)
    noise = torch.complex(torch.randn(clean.shape, generator=g), torch.randn(clean.shape, generator=g))
    return op, truth, disk, clean + sigma * noise.to(op.dtype), sigma


def _error(x: torch.Tensor, truth: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(x - truth) / torch.linalg.vector_norm(truth))


@functools.cache
def _born_tv_error(value: float) -> float:
    op, truth, _, y, sigma = _problem(value)
    return _error(ops.tv_discrepancy(op.born, y, sigma).image, truth)


def _mask(op: ops.LippmannSchwinger, drop: float = 0.2, seed: int = 3) -> torch.Tensor:
    return torch.rand(op.out_shape, generator=torch.Generator().manual_seed(seed)) >= drop


def _with(y: torch.Tensor, valid: torch.Tensor, fill: complex) -> torch.Tensor:
    return torch.where(valid, y, torch.full((), fill, dtype=y.dtype))


# ------------------------------------------------------------------------------------ MR-CSI
def test_csi_mr_recovers_a_strong_disk_and_beats_born_tv():
    op, truth, disk, y, sigma = _problem(2.0)
    res = csi_mr(op, y, sigma=sigma)
    mean = complex(res.chi[disk].mean())
    assert abs(mean.real - 2.0) <= 0.2 * 2.0, f"mean χ in the disk {mean:.3f}, truth 2"
    assert abs(mean.imag) < 0.1
    err, born = _error(res.chi, truth), _born_tv_error(2.0)
    assert err < 0.5 and err < 0.6 * born, f"CSI-MR error {err:.3f}, Born+TV {born:.3f}"
    assert res.chi.shape == op.in_shape and res.chi.dtype == op.dtype
    assert res.w.shape == (1, 8, N, N) and res.w.dtype == op.dtype
    assert float(res.chi.imag.max()) <= 0.0  # lossy=True: Im χ ≤ 0 (exp(+jωt))


def test_csi_mr_discrepancy_stop_on_the_full_wave_misfit():
    op, _, _, y, sigma = _problem(2.0)
    # τ = 1.2: the converged misfit sits at the realised noise level, within ~10 % of M σ²
    res = csi_mr(op, y, sigma=sigma, tau=1.2, iterations=400, check_every=10)
    assert res.stopped == "discrepancy" and 0 < res.iteration < 400
    assert res.target == pytest.approx(1.2 * op.size_out * sigma**2)
    steps = [n for n, _ in res.forward_misfit]
    assert steps == list(range(0, res.iteration + 1, 10))
    values = [v for _, v in res.forward_misfit]
    assert values[-1] <= res.target and all(v > res.target for v in values[:-1])
    # the check is what it says: the full-wave misfit of the returned contrast
    assert 0.5 * float((op.forward(res.chi) - y).abs().pow(2).sum()) == pytest.approx(values[-1], rel=1e-4)
    assert len(res.misfit) == len(res.object_error) == res.iteration + 1
    # started at the truth, whose misfit is the noise's (≈ M σ² ≤ 1.5 M σ²), nothing is left to do
    op, truth, _, y, sigma = _problem(2.0)
    at_truth = csi_mr(op, y, sigma=sigma, tau=1.5, chi0=truth)
    assert at_truth.stopped == "discrepancy" and at_truth.iteration == 0 and torch.equal(at_truth.chi, truth)


def test_csi_mr_source_misfit_stop_and_no_stop_without_sigma():
    op, truth, _, y, sigma = _problem(2.0)
    res = csi_mr(op, y, sigma=sigma, stop_on="sources", iterations=400)
    assert res.stopped == "discrepancy" and res.forward_misfit == ()
    assert res.misfit[-1] <= res.target and all(m > res.target for m in res.misfit[:-1])
    # the sources fit the data whatever χ is: their misfit reaches the target long before the contrast's
    full_wave = csi_mr(op, y, sigma=sigma, iterations=400)
    assert res.iteration < 0.5 * full_wave.iteration
    assert _error(res.chi, truth) > _error(full_wave.chi, truth) + 0.05
    free = csi_mr(op, y, iterations=25)
    assert free.stopped == "iterations" and free.iteration == 25 and free.target is None
    assert len(free.misfit) == 26 and free.forward_misfit == ()


def test_csi_mr_stops_at_the_last_finite_iterate(monkeypatch):
    """An update that gives NaN (seen in complex64 after ~440 stagnating iterations) is not returned: the run
    stops with the last finite iterate, the same as a run that ended there."""
    import operators.inverse_scattering as inv

    op, _, _, y, _ = _problem(2.0)
    ref = csi_mr(op, y, iterations=6)
    update, calls = inv._update_contrast, []

    def poisoned(eta_s, eta_d, st, real):
        update(eta_s, eta_d, st, real)
        calls.append(1)
        if len(calls) == 7:
            st.chi = st.chi * float("nan")

    monkeypatch.setattr(inv, "_update_contrast", poisoned)
    res = csi_mr(op, y, iterations=20)
    assert res.stopped == "non-finite" and res.iteration == 6 and len(res.misfit) == 7
    assert bool(torch.isfinite(res.chi).all()) and torch.allclose(res.chi, ref.chi)
    assert res.misfit == ref.misfit and res.object_error == ref.object_error


def test_csi_mr_constraints():
    op, _, _, y, _ = _problem(1.0)
    real = csi_mr(op, y, iterations=15, real=True)
    assert bool((real.chi.imag == 0).all())
    lossy = csi_mr(op, y, iterations=15, lossy=True, nonnegative=True)
    assert float(lossy.chi.imag.max()) <= 0.0 and float(lossy.chi.real.min()) >= 0.0
    free = csi_mr(op, y, iterations=15, lossy=False)
    assert float(free.chi.real.min()) < 0.0 or float(free.chi.imag.max()) > 0.0  # the constraints did something


def test_csi_mr_valid_mask_ignores_invalid_entries():
    op, truth, disk, y, sigma = _problem(2.0)
    valid = _mask(op)
    a = csi_mr(op, _with(y, valid, complex("nan")), valid=valid, sigma=sigma)
    b = csi_mr(op, _with(y, valid, 1e6 + 1e6j), valid=valid, sigma=sigma)
    assert torch.equal(a.chi, b.chi) and a.misfit == b.misfit and a.iteration == b.iteration
    assert a.target == pytest.approx(int(valid.sum()) * sigma**2)
    # still a useful reconstruction from 80 % of the data, better than Born + TV on the same data
    born = ops.tv_discrepancy(op.born.restrict(valid), y[valid], sigma).image
    assert _error(a.chi, truth) < 0.6 * _error(born, truth)
    assert abs(complex(a.chi[disk].mean()).real - 2.0) <= 0.25 * 2.0
    # an all-true mask is no mask
    full = torch.ones(op.out_shape, dtype=torch.bool)
    assert torch.equal(csi_mr(op, y, valid=full, iterations=10).chi, csi_mr(op, y, iterations=10).chi)


def test_csi_mr_two_frequencies_and_complex128():
    op, truth, _, y, sigma = _problem(1.0, (1e9, 2e9))
    res = csi_mr(op, y, sigma=sigma)
    assert res.w.shape == (2, 8, N, N)
    with warnings.catch_warnings():  # the Born model cannot fit these data to the noise level, and says so
        warnings.simplefilter("ignore", UserWarning)
        born = ops.tv_discrepancy(op.born, y, sigma).image
    assert _error(res.chi, truth) < 0.6 * _error(born, truth)
    op64 = _operator((2e9,), torch.complex128)
    y64 = _problem(1.0)[3].to(torch.complex128)
    r64 = csi_mr(op64, y64, iterations=5)
    assert r64.chi.dtype == torch.complex128 and r64.w.dtype == torch.complex128


# ------------------------------------------------------------------------------------ BIM + TV
def test_bim_tv_recovers_a_disk_and_beats_born_tv():
    op, truth, disk, y, sigma = _problem(1.0)
    res = born_iterative_tv(op, y, sigma, outer=4, iters=100)
    mean = complex(res.chi[disk].mean())
    assert abs(mean.real - 1.0) <= 0.2, f"mean χ in the disk {mean:.3f}, truth 1"
    err, born = _error(res.chi, truth), _born_tv_error(1.0)
    assert err < 0.6 * born, f"BIM-TV error {err:.3f}, Born+TV {born:.3f}"
    assert res.outer == len(res.misfit) == len(res.lam) == len(res.change) == 4
    assert res.misfit[-1] < res.misfit[0]  # the full-wave misfit falls as the field is updated
    assert res.misfit[res.iteration - 1] == min(res.misfit)
    assert res.stopped in ("outer", "converged", "discrepancy")


def test_bim_tv_valid_mask_ignores_invalid_entries():
    _, _, _, y, sigma = _problem(1.0)
    tx, rx, x, z = _geometry()
    valid = _mask(_operator())
    # fresh operators: LippmannSchwinger warm-starts each field solve from its previous solution
    op_a, op_b = (ops.LippmannSchwinger(tx, rx, [2e9], x, z) for _ in range(2))
    a = born_iterative_tv(op_a, _with(y, valid, complex("nan")), sigma, valid=valid, outer=2, iters=40)
    b = born_iterative_tv(op_b, _with(y, valid, -3e5 + 0j), sigma, valid=valid, outer=2, iters=40)
    assert torch.equal(a.chi, b.chi) and a.misfit == b.misfit and a.lam == b.lam
    assert a.target == pytest.approx(int(valid.sum()) * sigma**2)
    assert all(np.isfinite(a.misfit))


def test_bim_tv_stops_when_the_change_is_small():
    op, _, _, y, sigma = _problem(1.0)
    res = born_iterative_tv(op, y, sigma, outer=3, iters=40, tol=1.5)  # every change is below 1.5
    assert res.stopped == "converged" and res.outer == 1 and res.iteration == 1


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("solver", ["csi", "bim"])
def test_bad_input_names_the_argument(solver):
    op, _, _, y, sigma = _problem(1.0)

    def run(y=y, **kw):
        if solver == "csi":
            return csi_mr(op, y, iterations=1, **kw)
        return born_iterative_tv(op, y, kw.pop("sigma", sigma), outer=1, iters=2, **kw)

    with pytest.raises(ValueError, match=r"y must have the shape \(8, 16, 1\)"):
        run(y=y[:, :8])
    with pytest.raises(ValueError, match=r"valid must have the shape"):
        run(valid=torch.ones(8, 16, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"valid must be a boolean"):
        run(valid=torch.ones(op.out_shape))
    with pytest.raises(ValueError, match=r"valid marks no measurement"):
        run(valid=torch.zeros(op.out_shape, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"sigma"):
        run(sigma=-0.1)
    with pytest.raises(ValueError, match=r"tau"):
        run(sigma=sigma, tau=0.0)
    with pytest.raises(ValueError, match=r"non-finite"):
        run(y=_with(y, _mask(op), complex("nan")))
    with pytest.raises(ValueError, match=r"chi0 must have the shape"):
        run(chi0=torch.zeros(N, N + 1, dtype=op.dtype))


def test_csi_mr_bad_options():
    op, _, _, y, _ = _problem(1.0)
    with pytest.raises(ValueError, match="iterations"):
        csi_mr(op, y, iterations=-1)
    with pytest.raises(ValueError, match="stop_on"):
        csi_mr(op, y, stop_on="truth")
    with pytest.raises(ValueError, match="check_every"):
        csi_mr(op, y, check_every=0)
    with pytest.raises(TypeError, match="scattering operator"):
        csi_mr(ops.MIMORadar(*_geometry()[:2], [2e9], *_geometry()[2:]), y)


# ------------------------------------------------------------------------------------ full-wave TV on the pixels
def test_fullwave_tv_recovers_a_disk_and_beats_born_tv():
    op, truth, disk, y, sigma = _problem(1.0, (1e9, 2e9))
    res = fullwave_tv(op, y, iterations=150)
    mean = complex(res.chi[disk].mean())
    assert abs(mean.real - 1.0) <= 0.2 and abs(mean.imag) <= 0.1, f"mean χ in the disk {mean:.3f}, truth 1"
    with warnings.catch_warnings():  # the Born model cannot fit these data to the noise level, and says so
        warnings.simplefilter("ignore", UserWarning)
        born = _error(ops.tv_discrepancy(op.born, y, sigma).image, truth)
    assert _error(res.chi, truth) < 0.6 * born
    assert res.bands == (((0,), 75), ((0, 1), 150))  # hopping: 1 GHz, then both
    assert len(res.misfit) == 150 and res.misfit[-1] < res.misfit[0] and res.backtracks == 0


def test_fullwave_tv_weight_is_the_reference_rule():
    op, _, _, y, _ = _problem(1.0, (1e9, 2e9))
    a = fullwave_tv(op, y, iterations=2, factor=0.003)
    b = fullwave_tv(op, y, iterations=2, factor=0.006)  # the early band runs without TV: the same reference
    assert a.weight > 0 and b.weight == pytest.approx(2 * a.weight, rel=1e-5)
    assert fullwave_tv(op, y, iterations=2, factor=0.0).weight == 0.0
    one = fullwave_tv(op, y, iterations=2, hopping=False)  # no previous band, no reference: no TV
    assert one.weight == 0.0 and one.bands == (((0, 1), 2),)
    assert fullwave_tv(op, y, iterations=2, hopping=False, weight=5.0).weight == 5.0  # a given λ is used


def test_fullwave_tv_stops_when_the_objective_levels_off():
    op, truth, _, y, _ = _problem(1.0)
    kw = {"iterations": 120, "hopping": False, "weight": 1.0, "chi0": truth}  # near the minimum from the start
    full = fullwave_tv(op, y, **kw)
    assert full.stopped == "iterations" and len(full.objective) == 120 == full.bands[-1][1]
    early = fullwave_tv(op, y, rtol=0.01, **kw)
    n = len(early.objective)
    assert early.stopped == "converged" and 50 < n < 120 and early.bands[-1][1] == n
    assert early.objective[-51] - early.objective[-1] < 0.01 * early.objective[-51]
    assert early.objective[:n] == pytest.approx(full.objective[:n], rel=1e-3)  # the same steps until it stops


def test_fullwave_tv_starts_from_chi0():
    op, truth, _, y, sigma = _problem(1.0, (1e9, 2e9))
    at_truth = fullwave_tv(op, y, iterations=1, hopping=False, chi0=truth)
    from_zero = fullwave_tv(op, y, iterations=1, hopping=False)
    assert at_truth.misfit[0] < 2 * op.size_out * sigma**2 < from_zero.misfit[0]  # the truth fits to the noise


def test_fullwave_tv_constraints_and_valid_mask():
    op, _, _, y, _ = _problem(1.0)
    lossy = fullwave_tv(op, y, iterations=20)
    assert float(lossy.chi.real.min()) >= 0.0 and float(lossy.chi.imag.max()) <= 0.0
    assert bool((fullwave_tv(op, y, iterations=20, real=True).chi.imag == 0).all())
    free = fullwave_tv(op, y, iterations=20, lossy=False)
    assert float(free.chi.real.min()) < 0.0 or float(free.chi.imag.max()) > 0.0  # the constraints did something
    valid = _mask(op)
    tx, rx, x, z = _geometry()
    op_a, op_b = (ops.LippmannSchwinger(tx, rx, [2e9], x, z) for _ in range(2))  # fresh warm starts
    a = fullwave_tv(op_a, _with(y, valid, complex("nan")), valid=valid, iterations=10)
    b = fullwave_tv(op_b, _with(y, valid, 1e6 + 1e6j), valid=valid, iterations=10)
    assert torch.equal(a.chi, b.chi) and a.misfit == b.misfit


def test_fullwave_tv_bad_input_names_the_argument():
    op, _, _, y, _ = _problem(1.0)
    with pytest.raises(ValueError, match=r"fullwave_tv: y must have the shape \(8, 16, 1\)"):
        fullwave_tv(op, y[:, :8])
    for bad in ({"factor": -1.0}, {"lr": 0.0}, {"eps": float("nan")}, {"iterations": 0}):
        with pytest.raises(ValueError, match=f"fullwave_tv: {next(iter(bad))}"):
            fullwave_tv(op, y, **bad)
    with pytest.raises(TypeError, match="fullwave_tv: op must be a scattering operator"):
        fullwave_tv(ops.MIMORadar(*_geometry()[:2], [2e9], *_geometry()[2:]), y)


# ------------------------------------------------------------------------------------ per-frequency self-calibration
GAINS = (0.75 * np.exp(0.1j), 1.1 * np.exp(-0.05j))  # a relative calibration error between 1 and 2 GHz


def _miscalibrated(value: float = 1.0):
    """The two-frequency disk's data with the gains :data:`GAINS` (geometric mean ≈ 0.91∠0.025)."""
    op, truth, disk, y, sigma = _problem(value, (1e9, 2e9))
    return op, truth, disk, y * torch.tensor(GAINS, dtype=y.dtype), sigma


def test_frequency_gains_recover_the_relative_error():
    from operators.calibration import calibrated, frequency_gains

    op, truth, _, y, _ = _miscalibrated()
    with torch.no_grad():
        pred = op.forward(truth)
    labels = torch.arange(2)
    g = frequency_gains(pred, y, labels, 2)
    want = np.array(GAINS) / np.sqrt(np.prod(GAINS))  # the gains over their geometric mean
    assert np.allclose(g.numpy(), want, rtol=0.03), (g, want)
    assert abs(complex(torch.prod(g)) - 1) < 1e-5  # geometric mean one
    out, g2 = calibrated(pred, y, labels, 2)
    assert torch.equal(g, g2) and torch.allclose(out, pred * g)
    one = frequency_gains(pred[..., :1], y[..., :1], torch.zeros(1, dtype=torch.long), 1)
    assert torch.equal(one, torch.ones(1, dtype=pred.dtype))  # one frequency: nothing to calibrate
    zero = frequency_gains(torch.zeros_like(pred), y, labels, 2)  # no prediction: gains 1, no NaN
    assert torch.equal(zero, torch.ones(2, dtype=pred.dtype))


def test_fullwave_tv_calibrate_fits_through_a_gain_error():
    op, truth, _, y, _ = _miscalibrated()
    plain = fullwave_tv(op, y, iterations=150)
    cal = fullwave_tv(op, y, iterations=150, calibrate=True)
    assert plain.gains is None and len(cal.gains) == 2
    want = np.array(GAINS) / np.sqrt(np.prod(GAINS))
    assert np.allclose(cal.gains, want, rtol=0.1), (cal.gains, want)
    # the relative error is fitted away (the misfit falls to about the noise's), the image is closer to the
    # truth; the common level (geometric mean ≈ 0.91) is by design not corrected
    assert cal.misfit[-1] < 0.5 * plain.misfit[-1]
    e_cal, e_plain = _error(cal.chi, truth), _error(plain.chi, truth)
    assert e_cal < 0.9 * e_plain, f"calibrated {e_cal:.3f}, uncalibrated {e_plain:.3f}"
    with pytest.raises(TypeError, match="fullwave_tv: calibrate must be True or False"):
        fullwave_tv(op, y, calibrate=1)
