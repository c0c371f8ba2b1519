"""``reconstruct(..., fits=K)``: independently seeded fits, each stopped by its own rules, averaged."""

import math

import numpy as np
import pytest
import torch

import operators as ops
import rfprior
from rfprior.io import load_result, save_result
from rfprior.metrics import psnr

SMALL_DD = {"channels": 16, "layers": 3}


def _problem(n=32, snr_db=15.0):
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    x = (torch.exp(-(((xx / 0.6) ** 2 + (yy / 0.5) ** 2) ** 3)) * torch.exp(1j * 0.7 * xx)).to(torch.complex64)
    op = ops.PartialFourier(ops.cartesian_mask((n, n), 3.0, seed=0))
    clean = op.forward(x)
    sigma = math.sqrt(float(clean.abs().pow(2).sum()) / (2 * op.size_out) / 10 ** (snr_db / 10))
    noise = torch.randn(op.out_shape, dtype=torch.complex64, generator=torch.Generator().manual_seed(3))
    return op, clean + sigma * math.sqrt(2) * noise, x, sigma


def _run(op, y, **kw):
    kw.setdefault("prior", "deep_decoder")
    kw.setdefault("prior_kwargs", SMALL_DD)
    kw.setdefault("progress", False)
    kw.setdefault("iterations", 40)
    kw.setdefault("penalty", None)  # the ensemble's mechanics on the plain data fit (the premises below need it)
    return rfprior.reconstruct(y, op, **kw)


RULES = [rfprior.Discrepancy(tau=2.0), rfprior.RunningAverage()]  # the small decoder crosses τ = 2 by ≈ 30 its


@pytest.fixture(scope="module")
def two_fits():
    op, y, x, sigma = _problem()
    return op, y, x, sigma, _run(op, y, fits=2, seed=5, stop=RULES, truth=x, sigma=sigma)


def test_each_fit_is_the_single_run_with_its_seed_and_the_image_is_their_mean(two_fits):
    op, y, x, sigma, res = two_fits
    assert [m.seed for m in res.members] == [5, 1005]
    for m in res.members:
        alone = _run(op, y, seed=m.seed, stop=RULES, truth=x, sigma=sigma)
        torch.testing.assert_close(m.image, alone.image, rtol=0, atol=0)
        assert m.chosen_iteration == alone.chosen_iteration and m.stop_reason == alone.stop_reason
    a, b = (m.image for m in res.members)
    assert not torch.equal(a, b), "the two fits must start from different networks"
    torch.testing.assert_close(res.image, (a + b) / 2)
    torch.testing.assert_close(res.spread, (a - b).abs() / 2)  # the std of two values is half their distance
    assert res.spread.dtype == torch.float32 and res.spread.shape == x.shape


def test_the_result_reports_the_mean_and_each_fit(two_fits):
    op, y, x, _, res = two_fits
    summ = res.rule_summaries["ensemble"]
    assert summ["fits"] == 2 and summ["seeds"] == [5, 1005] and summ["averaged"] == [5, 1005]
    assert summ["chosen_iterations"] == [m.chosen_iteration for m in res.members]
    assert all(r.startswith("discrepancy rule decided") for r in summ["stop_reasons"]), summ["stop_reasons"]
    resid = op.forward(res.image) - y
    assert summ["misfit"] == pytest.approx(0.5 * float(resid.abs().pow(2).sum()), rel=1e-5)
    assert summ["member_misfits"][1] == pytest.approx(
        0.5 * float((op.forward(res.members[1].image) - y).abs().pow(2).sum()), rel=1e-5
    )
    # ½‖y − A x̄‖² ≤ mean of the fits' ½‖y − A x_k‖² (convexity), strictly when the fits differ
    assert summ["misfit"] < np.mean(summ["member_misfits"])
    assert summ["relative_spread"] > 0
    assert res.image_psnr == pytest.approx(float(psnr(res.image, x)), abs=1e-4)
    assert res.members[0].image_psnr == pytest.approx(float(psnr(res.members[0].image, x)), abs=1e-4)
    assert res.settings["fits"] == 2 and res.settings["seed"] == 5 and res.seed == 5
    # what describes one fit says so: the history is the first fit's
    assert res.history.attrs["fit"] == 0 and res.history.attrs["seed"] == 5
    np.testing.assert_array_equal(res.history["misfit"].values, res.members[0].history["misfit"].values)
    assert res.oracle_psnr == res.members[0].oracle_psnr
    assert "; fit 1: discrepancy rule decided" in res.stop_reason
    assert "; fit 2: discrepancy rule decided" in res.stop_reason
    assert res.stop_reason.startswith("mean of 2 independently seeded fits (seeds 5, 1005")
    assert not res.interrupted


def test_a_single_fit_has_no_members_and_reports_its_own_psnr():
    op, y, x, sigma = _problem()
    res = _run(op, y, stop=RULES, truth=x, sigma=sigma)
    assert res.stop_reason.startswith("discrepancy rule decided"), res.stop_reason
    assert res.members == [] and res.spread is None and "ensemble" not in res.rule_summaries
    assert "fits" not in res.settings  # a single fit's settings (and checkpoints) are as before
    # the image is the running average at the choice: its PSNR, not the raw iterate's
    assert res.image_psnr == pytest.approx(res.psnr_at(res.chosen_iteration, "psnr_average"), abs=1e-4)


def test_averaging_fits_that_are_fitting_noise_beats_each_of_them():
    # 10 dB, run well past the noise level with the raw iterate: each fit carries its own
    # initialisation-dependent noise, which the mean of three partly cancels
    op, y, x, _ = _problem(snr_db=10.0)
    res = _run(
        op,
        y,
        fits=3,
        iterations=150,
        truth=x,
        prior_kwargs={"channels": 24, "layers": 4},
        stop=rfprior.FixedIterations(),
    )
    fits = [float(psnr(m.image, x)) for m in res.members]
    # measured: mean 18.67 dB, fits 16.62 / 15.72 / 18.01
    assert res.image_psnr > max(fits) + 0.3, f"mean of fits {res.image_psnr:.2f} dB vs fits {fits}"


def test_callbacks_see_which_fit_is_running():
    op, y, _, _ = _problem()
    seen: list[tuple[int, int]] = []
    _run(op, y, fits=2, iterations=3, callbacks=[lambda s: seen.append((s.fit, s.iteration))])
    assert seen == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]


def test_an_interrupt_in_a_later_fit_returns_the_mean_of_the_finished_fits():
    op, y, _, _ = _problem()

    def interrupt(state):
        if state.fit == 1 and state.iteration == 4:
            raise KeyboardInterrupt

    res = _run(op, y, fits=3, iterations=10, callbacks=[interrupt])
    assert res.interrupted and len(res.members) == 2 and res.members[1].interrupted
    assert res.rule_summaries["ensemble"]["averaged"] == [0]
    torch.testing.assert_close(res.image, res.members[0].image)
    assert res.stop_reason.startswith("interrupted during fit 2 of 3; mean of 1 independently seeded fit (seeds 0;")
    # one averaged fit has no spread: never report "the fits agree perfectly"
    assert res.spread is None and math.isnan(res.rule_summaries["ensemble"]["relative_spread"])


def test_an_interrupt_between_fits_keeps_the_finished_fit(monkeypatch):
    # a signal while the second fit is being set up (outside its loop) must not lose the first
    import rfprior.fit.api as engine

    op, y, _, _ = _problem()
    calls = {"n": 0}
    real = engine._autoscale

    def autoscale(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(engine, "_autoscale", autoscale)
    res = _run(op, y, fits=2, iterations=6)
    assert res.interrupted and len(res.members) == 1 and res.spread is None
    torch.testing.assert_close(res.image, res.members[0].image)
    assert res.stop_reason.startswith("interrupted before fit 2 of 2 finished")
    calls["n"] = 1  # and in the first fit there is nothing to keep: the interrupt propagates
    with pytest.raises(KeyboardInterrupt):
        _run(op, y, fits=2, iterations=6)


def test_a_callback_that_stops_ends_the_whole_ensemble():
    op, y, _, _ = _problem()
    seen: list[tuple[int, int]] = []

    def stop_in_second_fit(state):
        seen.append((state.fit, state.iteration))
        return state.fit == 1 and state.iteration == 2

    res = _run(op, y, fits=3, iterations=6, callbacks=[stop_in_second_fit])
    assert seen[-1] == (1, 2) and len(res.members) == 2 and not res.interrupted
    assert res.rule_summaries["ensemble"]["averaged"] == [0]  # the cut-short fit is not averaged in
    assert res.stop_reason.startswith("a callback stopped the run during fit 2 of 3")


@pytest.mark.parametrize("fits", [0, -1, 1.5, True, "2", np.int64(0)])
def test_bad_fit_counts_are_refused(fits):
    op, y, _, _ = _problem()
    with pytest.raises(ValueError, match="fits must be an integer ≥ 1"):
        _run(op, y, fits=fits)


def test_a_numpy_integer_fit_count_is_accepted():
    op, y, _, _ = _problem()
    assert len(_run(op, y, fits=np.int64(2), iterations=2).members) == 2


def test_several_fits_refuse_a_module_prior_and_checkpoints(tmp_path):
    op, y, _, _ = _problem()
    net = rfprior.priors.DeepDecoder((32, 32), **SMALL_DD)
    with pytest.raises(ValueError, match="prior: fits > 1 builds one network per fit"):
        _run(op, y, fits=2, prior=net, prior_kwargs=None)
    with pytest.raises(ValueError, match="checkpoint/resume: not supported with fits > 1"):
        _run(op, y, fits=2, checkpoint=tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()


def test_an_ensemble_result_file_round_trips(two_fits, tmp_path):
    _, _, _, _, res = two_fits
    path = save_result(tmp_path / "r.nc", res)
    ds = load_result(path)
    np.testing.assert_array_equal(ds["image"].values, res.image.numpy())
    np.testing.assert_array_equal(ds["spread"].values, res.spread.numpy())
    assert not np.iscomplexobj(ds["spread"].values)
    assert ds.attrs["image_psnr"] == pytest.approx(res.image_psnr)
    assert ds.attrs["rule_summaries"]["ensemble"]["seeds"] == [5, 1005]
    assert ds.attrs["settings"]["fits"] == 2
