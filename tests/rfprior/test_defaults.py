"""One source of defaults (rfprior.defaults): the API, the CLI and the per-forward-model registry agree."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import operators as ops
import rfprior
from rfprior import defaults
from rfprior.cli.parser import _parser
from rfprior.stopping import default_rules


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
    assert rfprior.default_penalty(sub) == "tv" and rfprior.default_prior(sub) == "deep_decoder"
    # the older names are views of the registry
    assert rfprior.DEFAULT_PRIORS["MIMORadar"] == "dip_small" and rfprior.penalty.AUTO_FACTOR["PartialFourier"] == 0.25
    assert rfprior.DEFAULTS["iterations"] == defaults.FIT.iterations == 1500


def test_register_modality_applies_to_subclasses(monkeypatch):
    class Mine(ops.Identity):
        pass

    monkeypatch.setitem(defaults._MODALITIES, Mine, defaults.ModalityDefaults(prior="dip", penalty=None))
    assert rfprior.default_prior(Mine((4, 4))) == "dip" and rfprior.DEFAULT_PRIORS["Mine"] == "dip"
    with pytest.raises(TypeError):
        defaults.register_modality("Mine", defaults.ModalityDefaults())  # by type, not by name


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


def test_reconstruct_without_options_stops_like_the_cli():
    op = _pf()
    x = torch.zeros(op.in_shape, dtype=op.dtype)
    x[4:12, 5:11] = 1
    y = op(x) + 0.05 * torch.randn(op.out_shape, dtype=op.dtype, generator=torch.Generator().manual_seed(0))
    kw = dict(iterations=4, prior_kwargs={"channels": 8, "layers": 3}, progress=False, sigma=0.05)
    res = rfprior.reconstruct(y, op, **kw)
    cli = rfprior.reconstruct(y, op, stop=default_rules(defaults.FIT.stop, 0.05, average=defaults.FIT.average), **kw)
    assert res.settings["stop"] == cli.settings["stop"] == [r.settings() for r in default_rules(sigma=0.05)]
    assert [s["rule"] for s in res.settings["stop"]] == ["Discrepancy", "RunningAverage"]
    assert res.settings["penalty"]["name"] == "tv" and res.settings["prior"]["name"] == "deep_decoder"
    assert torch.equal(res.image, cli.image)
