"""DIP + TV: the image penalty of rfprior.reconstruct (rfprior.penalty)."""

import pytest
import torch

import operators as ops
import rfprior
from rfprior.penalty import WEIGHT_RTOL, auto_factor, search_iters, total_variation


def _problem(n: int = 32, seed: int = 0):
    ds = rfprior.scenes.simulate("partial_fourier", size=n, snr_db=15, seed=seed)
    op, y = rfprior.io.operator_from(ds)
    return op, y, torch.as_tensor(ds["truth"].values), float(ds.attrs["noise_sigma"])


def test_total_variation_matches_the_tv_solver_definition(cdtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 7, dtype=cdtype, generator=g)
    grad = ops.gradient2d(x)
    expected = torch.sqrt((grad.abs() ** 2).sum(dim=-3)).sum()
    torch.testing.assert_close(total_variation(x), expected)
    z = torch.zeros(4, 4, dtype=cdtype, requires_grad=True)
    total_variation(z, eps=1e-12).backward()  # smoothed: a finite gradient at a flat image
    assert bool(torch.isfinite(torch.view_as_real(z.grad)).all())


def test_zero_weight_reproduces_the_plain_fit_exactly():
    op, y, truth, sigma = _problem()
    kw = dict(prior="deep_decoder", iterations=25, progress=False, sigma=sigma, truth=truth)
    plain = rfprior.reconstruct(y, op, penalty=None, **kw)
    zero = rfprior.reconstruct(y, op, penalty="tv", penalty_weight=0.0, **kw)
    torch.testing.assert_close(zero.image, plain.image, rtol=0, atol=0)
    assert plain.settings["penalty"] is None
    assert zero.settings["penalty"] == {"name": "tv", "weight": 0.0, "weight_rule": "given"}


def test_auto_weight_is_a_fraction_of_the_tv_discrepancy_lambda():
    op, y, _truth, sigma = _problem()
    res = rfprior.reconstruct(y, op, prior="deep_decoder", penalty="tv", iterations=5, progress=False, sigma=sigma)
    pen = res.settings["penalty"]
    lam = ops.tv_discrepancy(op, y, sigma, iters=search_iters(op), rtol=WEIGHT_RTOL).parameter
    assert search_iters(op) == 100  # radar's search takes 30 steps per λ (rfprior.modalities.mimo)
    assert pen["tv_discrepancy_lambda"] == pytest.approx(lam)
    assert pen["weight"] == pytest.approx(auto_factor(op) * lam)
    assert pen["sigma"] == sigma and pen["sigma_estimator"] == "given"
    # without σ the estimator the discrepancy rule uses supplies it, and is named
    res = rfprior.reconstruct(y, op, prior="deep_decoder", penalty="tv", iterations=2, progress=False)
    assert res.settings["penalty"]["sigma_estimator"] == "partial_fourier_outer_kspace"


def test_the_penalty_smooths_the_fit_and_the_rules_still_judge_the_misfit():
    op, y, truth, sigma = _problem(seed=1)
    kw = dict(prior="deep_decoder", iterations=120, progress=False, sigma=sigma, truth=truth, seed=1)
    plain = rfprior.reconstruct(y, op, penalty=None, **kw)
    tv = rfprior.reconstruct(y, op, penalty="tv", penalty_weight=0.02, **kw)
    assert float(total_variation(tv.image)) < 0.9 * float(total_variation(plain.image))
    misfit = 0.5 * float(torch.linalg.vector_norm(op.forward(tv.image.to(op.dtype)) - y) ** 2)
    assert float(tv.history["misfit"][-1]) == pytest.approx(misfit, rel=1e-3)  # the data misfit, not the loss


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"penalty": "l2"}, "penalty must be one of"),
        ({"penalty": "tv", "penalty_weight": -1.0}, "penalty_weight must be"),
        ({"penalty": "tv", "penalty_weight": "large"}, "penalty_weight must be"),
    ],
)
def test_bad_penalty_arguments_name_the_field(kwargs, match):
    op, y, _, _ = _problem(16)
    with pytest.raises(ValueError, match=match):
        rfprior.reconstruct(y, op, iterations=1, progress=False, **kwargs)


def test_default_penalty_follows_the_forward_model_and_restriction():
    op, _y, _, _ = _problem(16)
    sub = op.restrict(torch.arange(op.size_out // 2))
    assert rfprior.defaults.default_penalty(sub) == rfprior.defaults.default_penalty(op)
    assert rfprior.defaults.default_penalty(op) == rfprior.modalities.get("partial_fourier").defaults.penalty


def test_radar_weight_search_takes_fewer_pdhg_steps_per_lambda():
    """The auto weight's search runs the modality's PDHG steps per λ: 30 on radar (penalty_weight.md), 100 else."""
    from rfprior.penalty import resolve_penalty

    ds = rfprior.scenes.simulate("mimo", size=16, snr_db=20, seed=0)
    op, y = rfprior.io.operator_from(ds)
    sigma = float(ds.attrs["noise_sigma"])
    assert search_iters(op) == 30 and search_iters(_problem(8)[0]) == 100
    pen = resolve_penalty("tv", "auto", op, y, sigma)
    lam30 = ops.tv_discrepancy(op, y, sigma, iters=30, rtol=WEIGHT_RTOL).parameter
    assert pen.settings["tv_discrepancy_lambda"] == pytest.approx(lam30)
    assert pen.weight == pytest.approx(auto_factor(op) * lam30) and pen.settings["search_pdhg_steps"] == 30


def test_reference_weight_scales_tv_against_the_data_energy_and_needs_no_sigma():
    """A nonlinear model's auto weight: λ = f · ½‖y‖² / TV(x_ref); a flat reference gives no penalty."""
    from rfprior.penalty import reference_weight

    op, y, truth, _ = _problem(16)
    pen = reference_weight("tv", op, y, truth)
    energy = 0.5 * float(torch.linalg.vector_norm(y)) ** 2
    assert pen.weight == pytest.approx(auto_factor(op) * energy / float(total_variation(truth)))
    assert pen.settings["reference_tv"] == pytest.approx(float(total_variation(truth)))
    assert reference_weight("tv", op, 2 * y, truth).weight == pytest.approx(4 * pen.weight)  # data units
    assert reference_weight("tv", op, y, torch.ones_like(truth)).weight == 0.0
    with pytest.raises(ValueError, match="penalty must be one of"):
        reference_weight("l2", op, y, truth)
