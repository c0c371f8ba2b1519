"""Stopping rules driven directly with synthetic curves, and the σ estimators."""

import math
import warnings

import pytest
import torch

import operators as ops
from rfprior.modalities import estimate_sigma
from rfprior.noise import sigma_from_samples, sigma_mad
from rfprior.stopping import (
    BlurSharpness,
    Discrepancy,
    FitContext,
    HoldOut,
    WindowedVariance,
    split_indices,
)


def _ctx(m=400, seed=0, sigma=None):
    op = ops.PartialFourier(ops.variable_density_mask((32, 32), 1024 / m, seed=0))
    y = torch.zeros(op.out_shape, dtype=op.dtype)
    return FitContext(op=op, y=y, seed=seed, iterations=1000, sigma=sigma)


def test_discrepancy_stops_at_first_crossing_of_synthetic_curve():
    ctx = _ctx(sigma=0.1)
    m, sigma = ctx.n_fit, 0.1
    # misfit decays geometrically from 100 Mσ² towards 0.2 Mσ²: crosses τMσ² (τ = 1.5) at a known step
    curve = [m * sigma**2 * (0.2 + 100 * 0.9**t) for t in range(200)]
    expected = next(t for t, v in enumerate(curve) if v <= 1.5 * m * sigma**2)
    mon = Discrepancy(tau=1.5).start(ctx)
    img = torch.zeros(32, 32, dtype=torch.complex64)
    stops = [t for t, v in enumerate(curve) if mon.observe(t, img, v).stop]
    assert stops == [expected]
    assert mon.summary()["sigma_source"] == "given to reconstruct"
    assert mon.finish(199) is None


def test_discrepancy_reports_when_never_reached():
    mon = Discrepancy(sigma=0.1).start(_ctx())
    img = torch.zeros(32, 32, dtype=torch.complex64)
    assert not any(mon.observe(t, img, 1e6).stop for t in range(10))
    assert "never reached" in mon.finish(9)


@pytest.mark.parametrize("bad", [{"sigma": -1.0}, {"sigma": float("nan")}, {"tau": 0}])
def test_discrepancy_bad_arguments(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        Discrepancy(**bad)


def test_holdout_split_is_exact_complement_and_seeded():
    fit, val = split_indices(1000, 0.1, seed=3)
    assert val.numel() == 100 and fit.numel() == 900
    assert torch.equal(torch.sort(torch.cat((fit, val))).values, torch.arange(1000))
    f2, v2 = split_indices(1000, 0.1, seed=3)
    assert torch.equal(fit, f2) and torch.equal(val, v2)
    assert not torch.equal(val, split_indices(1000, 0.1, seed=4)[1])
    ctx = _ctx()
    rule = HoldOut(fraction=0.2)
    assert torch.equal(rule.fit_subset(ctx), rule.fit_subset(ctx))
    with pytest.raises(ValueError, match="fraction"):
        HoldOut(fraction=1.5)


def test_holdout_picks_minimum_and_obeys_patience():
    ctx = _ctx()
    ctx.y = torch.randn(ctx.op.out_shape, dtype=ctx.op.dtype, generator=torch.Generator().manual_seed(0))
    rule = HoldOut(fraction=0.25, patience=5)
    ctx.fit_index = rule.fit_subset(ctx)
    mon = rule.start(ctx)
    target = ctx.op.adjoint(ctx.y)  # the least-squares image reproduces y on the sampled set
    # images approach the target then move away: held-out loss has its minimum at t = 6
    path = [target * (1 - abs(t - 6) / 10) for t in range(20)]
    decisions = [mon.observe(t, img, 0.0) for t, img in enumerate(path)]
    cands = [t for t, d in enumerate(decisions) if d.candidate]
    stop = next(t for t, d in enumerate(decisions) if d.stop)
    assert cands[-1] == 6 and stop == 11
    # the statistic is exactly ½‖y_val − A_val x‖² on the complement of the fit set
    val = torch.tensor(sorted(set(range(ctx.op.size_out)) - set(ctx.fit_index.tolist())))
    ref = 0.5 * float(torch.linalg.vector_norm(ctx.op.forward(path[3])[val] - ctx.y[val]) ** 2)
    assert math.isclose(decisions[3].statistic, ref, rel_tol=1e-5)


def test_windowed_variance_minimum_exact_and_ema():
    g = torch.Generator().manual_seed(0)
    # noise amplitude shrinks until t = 60, then grows: the windowed variance is smallest around t ≈ 60
    amp = [1.0 / (1 + t) if t < 60 else 1.0 / 61 + (t - 60) * 0.01 for t in range(200)]
    imgs = [a * torch.randn(8, 8, dtype=torch.complex64, generator=g) for a in amp]
    for rule in (WindowedVariance(window=10, patience=30), WindowedVariance(window=10, patience=30, ema=True)):
        mon = rule.start(_ctx())
        ds = [mon.observe(t, x, 0.0) for t, x in enumerate(imgs)]
        best = max(t for t, d in enumerate(ds) if d.candidate)
        assert 55 <= best <= 75, (rule, best)
        assert next(t for t, d in enumerate(ds) if d.stop) == best + 30


def test_windowed_variance_matches_direct_computation():
    g = torch.Generator().manual_seed(1)
    imgs = [torch.randn(5, 5, dtype=torch.complex64, generator=g) for _ in range(30)]
    mon = WindowedVariance(window=7, patience=100).start(_ctx())
    stats = [mon.observe(t, x, 0.0).statistic for t, x in enumerate(imgs)]
    stack = torch.stack(imgs[-7:]).to(torch.complex128)
    direct = float(((stack - stack.mean(0)).abs() ** 2).sum() / 7)
    assert math.isclose(stats[-1], direct, rel_tol=1e-9)
    assert stats[5] is None


def test_blur_sharpness_stops_when_ratio_stabilises():
    g = torch.Generator().manual_seed(2)
    base = torch.rand(32, 32, generator=g)
    mon = BlurSharpness(n=10, eps=0.01).start(_ctx())
    # images converge: the ratio stabilises, so the rule stops once, and never before 2n iterations
    ds = [mon.observe(t, base + torch.rand(32, 32, generator=g) / (1 + t), 0.0) for t in range(150)]
    stops = [t for t, d in enumerate(ds) if d.stop]
    assert len(stops) == 1 and stops[0] >= 19


def test_blur_measure_orders_sharp_and_blurred():
    from rfprior.stopping import blur_measure, mlv_sharpness

    g = torch.Generator().manual_seed(0)
    sharp = (torch.rand(48, 48, generator=g) > 0.5).double()
    k = torch.ones(1, 1, 5, 5, dtype=torch.float64) / 25
    blurred = torch.nn.functional.conv2d(sharp[None, None], k, padding=2)[0, 0]
    assert blur_measure(blurred) > blur_measure(sharp)
    assert mlv_sharpness(sharp) > mlv_sharpness(blurred)


def test_sigma_from_noise_only_samples():
    g = torch.Generator().manual_seed(0)
    n = 0.3 * torch.randn(20000, dtype=torch.complex128, generator=g)  # per component σ = 0.3/√2
    assert abs(sigma_from_samples(n) / (0.3 / math.sqrt(2)) - 1) < 0.03
    assert abs(sigma_mad(n.reshape(100, 200)) / (0.3 / math.sqrt(2)) - 1) < 0.03


@pytest.mark.parametrize("snr_db", [10.0, 20.0, 30.0])
def test_sigma_estimate_partial_fourier_within_10_percent(snr_db):
    n = 64
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    x = ((xx / 0.7) ** 2 + (yy / 0.85) ** 2 < 1).to(torch.complex64) * torch.exp(1j * (xx + yy))
    x = x + 0.5 * (((xx - 0.2) ** 2 + (yy + 0.1) ** 2) < 0.05)
    # a band-limited object (1-pixel Gaussian resolution), as any imaging system delivers; a pixel-sharp
    # staircase phantom puts signal at every k-space radius and biases every outer-k-space estimate upward
    ky, kx = torch.meshgrid(torch.arange(n) - n // 2, torch.arange(n) - n // 2, indexing="ij")
    blur = torch.exp(-2 * (math.pi / n) ** 2 * (kx**2 + ky**2))
    x = ops.centered_ifft2(ops.centered_fft2(x.to(torch.complex64)) * blur)
    op = ops.PartialFourier(ops.cartesian_mask((n, n), 4, seed=0))
    clean = op.forward(x.to(torch.complex64))
    sigma = math.sqrt(float(torch.linalg.vector_norm(clean) ** 2) / (2 * op.size_out) / 10 ** (snr_db / 10))
    noise = torch.randn(op.out_shape, dtype=op.dtype, generator=torch.Generator().manual_seed(1))
    y = clean + sigma * math.sqrt(2) * noise  # torch.randn complex has per-component variance 1/2
    est, source = estimate_sigma(op, y)
    assert source == "partial_fourier_outer_kspace"
    assert abs(est / sigma - 1) < 0.10, (est, sigma)


@pytest.mark.parametrize("snr_db", [10.0, 20.0, 30.0])
@pytest.mark.parametrize(
    ("modality", "size", "source"),
    [
        ("partial_fourier", 48, "partial_fourier_outer_kspace"),
        ("mimo", 32, "radar_range_bins"),
        ("diffraction_tomography", 32, "tomography_evanescent_band"),
    ],
)
def test_sigma_estimate_on_simulated_data_within_10_percent(modality, size, source, snr_db):
    """Each modality's estimator on the bundled simulator's default scene (the data a user tries first)."""
    import warnings

    from rfprior.io import operator_from
    from rfprior.scenes import simulate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = simulate(modality, size=size, snr_db=snr_db, seed=0)
    op, y = operator_from(ds)
    est, used = estimate_sigma(op, y)
    assert used == source
    assert abs(est / ds.attrs["noise_sigma"] - 1) < 0.10, (est, ds.attrs["noise_sigma"])


def test_pixel_sharp_phantom_biases_the_outer_kspace_estimate():
    """The documented limitation: a staircase phantom's spectrum never decays, so σ̂ is far too high."""
    from rfprior.scenes import complex_phantom

    n = 64
    op = ops.PartialFourier(ops.variable_density_mask((n, n), 4, seed=0))
    ratios = []
    for edge in (0.0, 3.5):
        x = complex_phantom((n, n), seed=0, edge=edge)
        clean = op.forward(x)
        sigma = math.sqrt(float(torch.linalg.vector_norm(clean) ** 2) / (2 * op.size_out) / 10**3)  # 30 dB
        noise = torch.randn(op.out_shape, dtype=op.dtype, generator=torch.Generator().manual_seed(2))
        ratios.append(estimate_sigma(op, clean + sigma * math.sqrt(2) * noise)[0] / sigma)
    assert ratios[0] > 3 and abs(ratios[1] - 1) < 0.1, ratios


def test_discrepancy_default_tau_depends_on_the_prior():
    from rfprior.defaults import TAU as DEFAULT_TAU

    ctx = _ctx(sigma=0.1)
    assert Discrepancy().start(ctx).tau == 1.0  # no prior known: DESIGN.md's τ = 1
    ctx.info["prior"] = "deep_decoder"
    assert Discrepancy().start(ctx).tau == DEFAULT_TAU["deep_decoder"] == 0.5
    assert Discrepancy(tau=1.2).start(ctx).tau == 1.2  # an explicit τ always wins
    ctx.info["prior"] = "dip"
    assert Discrepancy().start(ctx).tau == 1.0
    with pytest.raises(ValueError, match="tau"):
        Discrepancy(tau=True)


def test_radar_with_too_few_frequencies_uses_the_range_complement():
    """An 8-frequency radar cannot use range bins: the part of y outside range(A) gives σ instead (no warning);
    where the range fills the data space, the generic estimator runs and the user is told why."""
    from operators.mimo import MIMORadar
    from rfprior.scenes import default_geometry

    g = default_geometry("mimo", 16)
    freqs = torch.as_tensor(g["frequencies"]).reshape(-1)[::8]  # 64 → 8 frequencies
    op = MIMORadar(g["tx"], g["rx"], freqs, g["x"], g["z"])
    gen = torch.Generator().manual_seed(0)
    clean = op.forward(torch.randn(op.in_shape, dtype=op.dtype, generator=gen))
    sigma = 0.05 * float(clean.abs().pow(2).mean().sqrt())
    y = clean + sigma * math.sqrt(2) * torch.randn(op.out_shape, dtype=op.dtype, generator=gen)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est, source = estimate_sigma(op, y)
    assert source == "range_complement" and abs(est / sigma - 1) < 0.1, (est, sigma)
    # fewer measurements than pixels leave no noise-only complement: MAD, with the reasons
    tiny = MIMORadar(g["tx"][:2], g["rx"][:2], freqs[:4], g["x"], g["z"])
    yt = tiny.forward(torch.randn(tiny.in_shape, dtype=tiny.dtype, generator=gen))
    why = r"MIMORadar data, but sigma_range_bins: need ≥ 16 frequencies, got 4; sigma_range_complement"
    with pytest.warns(UserWarning, match=why):
        _, source = estimate_sigma(tiny, yt)
    assert source == "mad_second_differences"
    # the full array uses its own estimator and stays silent
    full = MIMORadar(g["tx"], g["rx"], g["frequencies"], g["x"], g["z"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert estimate_sigma(full, full.forward(torch.ones(full.in_shape, dtype=full.dtype)))[1] == "radar_range_bins"


def test_stopping_benchmark_replay_matches_the_engine():
    """The benchmark scores τ and averaging variants offline; its replay must reproduce what the engine chose."""
    from benchmarks.stopping import replay_default, run_case

    c = run_case("partial_fourier", 10.0, 0, "dip_small", 24, 80, holdout=False)
    assert c["discrepancy_crossed"], "the 10 dB case should reach the noise level within 80 iterations"
    assert replay_default(c, c["tau"]) == c["psnr"]["default"]
    # the probe's ema0.99 is the engine's running average, iterate for iterate
    assert c["curve_psnr_variants"]["ema0.99"] == c["curve_psnr_average"]
    # a τ never reached falls back to the better-fitting of the last average and the last iterate
    assert replay_default(c, 1e-9) == c["fallback_psnr"]


def test_holdout_is_not_offered_for_partial_fourier_but_is_for_radar():
    from rfprior.scenes import default_geometry
    from rfprior.stopping import default_rules

    pf = _ctx().op
    g = default_geometry("mimo", 16, n_freq=8, n_tx=2, n_rx=2)
    mimo = ops.MIMORadar(g["tx"], g["rx"], g["frequencies"], g["x"], g["z"])
    # named rules: refused for partial Fourier (restricted subsets too), with the reason and the alternative
    for op in (pf, pf.restrict(torch.arange(10))):
        with pytest.raises(ValueError, match=r"'holdout' is not offered for PartialFourier.*discrepancy rule"):
            default_rules("holdout", op=op)
    assert isinstance(default_rules("holdout", op=mimo)[0], HoldOut)
    assert isinstance(default_rules("holdout")[0], HoldOut)  # no operator: nothing to check
    # the rule itself still runs on partial Fourier (research use), with a warning naming the measured loss
    with pytest.warns(RuntimeWarning, match=r"1\.8-2\.0 dB worse"):
        HoldOut().start(_ctx())
    y = torch.zeros(mimo.out_shape, dtype=mimo.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HoldOut().start(FitContext(op=mimo, y=y, seed=0, iterations=10))
