"""One source of defaults (rfprior.defaults): the API, the CLI and the per-forward-model registry agree."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import operators as ops
import rfprior
from rfprior import defaults
from rfprior.cli.parser import _parser


def _pf(n: int = 16) -> ops.PartialFourier:
    return ops.PartialFourier(ops.cartesian_mask((n, n), 2.0, seed=0))


def test_defaults_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        defaults.FIT.iterations = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        defaults.modality_defaults(_pf()).prior = "dip"  # type: ignore[misc]


def test_modality_defaults_are_looked_up_by_operator_type():
    pf = _pf()

    class MyFourier(ops.PartialFourier):  # a subclass is the same forward model (a class-name table missed it)
        pass

    sub = MyFourier(pf.mask)
    assert defaults.modality_defaults(sub) is defaults.modality_defaults(pf)
    assert defaults.modality_defaults(pf.restrict(torch.arange(10))) is defaults.modality_defaults(pf)
    assert defaults.modality_defaults(ops.Identity((4, 4))) is defaults.OTHER
    assert rfprior.penalty.auto_factor(sub) == defaults.modality_defaults(pf).penalty_factor == 0.25
    assert defaults.default_penalty(sub) == "tv" and rfprior.default_prior(sub) == "deep_decoder"
    # the defaults are the modality's: one home per forward model
    assert defaults.modality_defaults(pf) is rfprior.modalities.get("partial_fourier").defaults
    assert rfprior.modalities.get("mimo").defaults.prior == "dip_small" and defaults.FIT.iterations == 1500


def test_iteration_budget_and_step_are_per_forward_model():
    """3000 for partial Fourier and tomography (a measured subset too), 800 at step 0.02 for radar, FIT's else."""
    assert defaults.default_iterations(_pf()) == defaults.default_iterations(_pf().restrict(torch.arange(10))) == 3000
    from rfprior.io import operator_from

    modalities = ("diffraction_tomography", "mimo")
    dt, mimo = (operator_from(rfprior.scenes.simulate(m, size=8, seed=0))[0] for m in modalities)
    assert defaults.default_iterations(dt) == 3000
    assert defaults.default_iterations(mimo) == 800
    assert defaults.default_iterations(ops.Identity((4, 4))) == defaults.FIT.iterations == 1500
    assert defaults.default_lr(mimo) == 0.02
    assert defaults.default_lr(_pf()) == defaults.default_lr(dt) == defaults.default_lr(None) == defaults.FIT.lr == 0.01
    # reconstruct's settings record the budget and step it ran with; given values win
    from rfprior.fit.options import FitOptions

    assert FitOptions.build(_pf()).iterations == 3000
    assert FitOptions.build(_pf(), iterations=7).iterations == 7
    lrs = FitOptions.build(mimo).lr, FitOptions.build(mimo, lr=0.005).lr, FitOptions.build(_pf()).lr
    assert lrs == (0.02, 0.005, 0.01)
    with pytest.raises(ValueError, match="lr must be a positive"):
        FitOptions.build(mimo, lr=-1.0)


def test_a_registered_modality_applies_to_subclasses():
    class Mine(ops.Identity):
        pass

    class Sub(Mine):
        pass

    class MyModality(rfprior.modalities.Modality):
        name, operator_type, measurement_dims = "mine", Mine, ("y", "x")
        defaults = defaults.ModalityDefaults(prior="dip", penalty=None)

    rfprior.modalities.register(MyModality())
    try:
        assert rfprior.default_prior(Sub((4, 4))) == "dip" and defaults.default_penalty(Mine((4, 4))) is None
        with pytest.raises(ValueError, match="registered already"):
            rfprior.modalities.register(MyModality())
        with pytest.raises(TypeError, match="Modality instance"):
            rfprior.modalities.register(defaults.ModalityDefaults())  # a modality object, not its defaults
    finally:
        rfprior.modalities.unregister("mine")
    assert rfprior.default_prior(Sub((4, 4))) == defaults.OTHER.prior


def test_the_cli_reads_the_same_defaults():
    args = _parser().parse_args(["reconstruct", "in.h5", "-o", "out.nc"])
    fit = defaults.FIT
    assert (args.stop, args.loss, args.seed, args.fits, args.penalty) == (
        fit.stop,
        fit.loss,
        fit.seed,
        fit.fits,
        fit.penalty,
    )
    assert args.checkpoint_every == fit.checkpoint_every and args.no_average is (not fit.average)


def test_reconstruct_without_options_does_what_the_cli_does(tmp_path, capsys):
    """``rfprior reconstruct f.h5`` and ``rfprior.reconstruct(y, op)`` (same budget): same settings, same image."""
    import json
    import warnings

    from rfprior.cli import main
    from rfprior.io import load, load_result, operator_from

    f, out = tmp_path / "pf.h5", tmp_path / "r.nc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rfprior.scenes.simulate("partial_fourier", size=16, snr_db=20, seed=0, path=f)
        assert main(["-q", "reconstruct", str(f), "-o", str(out), "--iterations", "4"]) == 0
        op, y = operator_from(load(f))
        api = rfprior.reconstruct(y, op, iterations=4, progress=False)
    capsys.readouterr()
    saved = load_result(out)
    cli = json.loads(saved.attrs["settings"]) if isinstance(saved.attrs["settings"], str) else saved.attrs["settings"]
    for key in ("stop", "prior", "penalty", "loss", "lr", "iterations", "seed", "reg_noise_std"):
        assert cli[key] == json.loads(json.dumps(api.settings[key])), key
    assert [s["rule"] for s in api.settings["stop"]] == ["Discrepancy", "RunningAverage"]
    assert api.settings["penalty"]["name"] == "tv" and api.settings["prior"]["name"] == "deep_decoder"
    assert torch.allclose(torch.as_tensor(saved["image"].values), api.image.cpu(), atol=1e-6)


def test_penalty_defaults_are_read_from_fit(monkeypatch):
    """``penalty="auto"``/``penalty_weight="auto"`` (reconstruct's defaults) mean :data:`defaults.FIT`'s values."""
    from rfprior.fit.options import FitOptions

    op = _pf()
    assert FitOptions.build(op).penalty_weight == "auto" and FitOptions.build(op).penalty == "tv"
    monkeypatch.setattr(defaults, "FIT", dataclasses.replace(defaults.FIT, penalty=None, penalty_weight=0.123))
    assert FitOptions.build(op, penalty="auto", penalty_weight="auto").penalty is None
    assert FitOptions.build(op, penalty="auto", penalty_weight="auto").penalty_weight == 0.123
    assert FitOptions.build(op, penalty="tv", penalty_weight=0.5).penalty_weight == 0.5  # given values win
