"""Priors: output contract, determinism, fitting ability, and the spectral-control layers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from fitting import fit_to

from rfprior.priors import (
    HEADS,
    PRESETS,
    PRIORS,
    ComplexDecoder,
    GaussianUpsample,
    LipschitzConv2d,
    MeanOnlyNorm,
    bed_of_nails,
    make_prior,
    prior_names,
)
from rfprior.priors.deep_decoder import deep_decoder_parameter_count

# Small networks: these tests check behaviour, not the reference sizes.
SMALL = {
    "dip": dict(scales=3, channels_down=8, channels_up=8, channels_skip=2, input_channels=4),
    "deep_decoder": dict(channels=24, layers=4),
    "controlled": dict(channels=16, stages=3, input_channels=4),
    "complex": dict(channels=8, layers=4, input_channels=4),
}
CASES = [(n, h) for n in ("dip", "deep_decoder", "controlled") for h in HEADS] + [("complex", "complex")]
IDS = [f"{n}-{h}" for n, h in CASES]


def _build(name: str, head: str, shape=(48, 40), seed: int = 0, **extra) -> torch.nn.Module:
    return make_prior(name, shape, head=head, seed=seed, **{**SMALL[name], **extra})


def _smooth_target(h: int = 32, w: int = 32) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    amp = torch.exp(-(xx**2 + yy**2) / 0.3)
    return (amp * torch.exp(1j * torch.pi * (0.5 * xx + 0.3 * yy))).to(torch.complex64)


def test_registry_names() -> None:
    assert set(PRIORS) == {"dip", "deep_decoder", "controlled", "complex"}
    assert prior_names() == (*PRIORS, *PRESETS)
    with pytest.raises(ValueError, match="unknown prior") as err:
        make_prior("unet", (32, 32))
    for name in prior_names():  # the message lists every accepted name, the size presets included
        assert repr(name) in str(err.value)


def _default_prior_names() -> set[str]:
    """Every prior name the defaults use: each registered forward model's, and the fallback's."""
    from rfprior import defaults, modalities

    return {modalities.get(name).defaults.prior for name in modalities.names()} | {defaults.OTHER.prior}


def _same_network(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    with torch.no_grad():
        return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa) and torch.equal(a(), b())


@pytest.mark.parametrize("name", sorted(_default_prior_names() | set(PRESETS)))
def test_make_prior_accepts_every_default_and_preset_name(name: str) -> None:
    from rfprior.fit.resolve import prior_of, resolve_prior

    assert name in prior_names()
    shape = (32, 32)
    net = make_prior(name, shape, seed=3)
    base, sizes = PRESETS.get(name, (name, {}))
    assert type(net) is PRIORS[base]
    assert _same_network(net, make_prior(base, shape, seed=3, **sizes))  # the preset spelled out
    solver, settings = resolve_prior(name, shape, 3, None)  # what reconstruct(prior=name) builds
    assert _same_network(net, solver)
    assert _same_network(net, make_prior(**net.config))  # the recorded config rebuilds it
    warm_name, warm_kwargs = prior_of(SimpleNamespace(prior=settings))  # how a warm start rebuilds it
    assert _same_network(net, make_prior(warm_name, shape, seed=3, **warm_kwargs))


def test_preset_sizes_are_overridden_by_explicit_kwargs() -> None:
    net = make_prior("dip_small", (32, 32), channels_up=16, scales=3)
    assert net.config["channels_up"] == [16] * 3 and net.config["channels_down"] == [32] * 3
    assert PRESETS["dip_small"] == ("dip", {"channels_down": 32, "channels_up": 32, "channels_skip": 4})


@pytest.mark.parametrize(("name", "head"), CASES, ids=IDS)
def test_shape_dtype_and_input_contract(name: str, head: str) -> None:
    prior = _build(name, head)
    out = prior()
    assert out.shape == (1, 48, 40) and out.dtype == torch.complex64
    assert torch.isfinite(torch.view_as_real(out)).all()
    assert prior.num_parameters == sum(p.numel() for p in prior.parameters()) > 0
    # a perturbed, batched input (what the engine's jitter does) is accepted
    z = prior.z.expand(2, *prior.z.shape[1:]) + 0.01 * torch.randn(2, *prior.z.shape[1:])
    assert prior(z).shape == (2, 48, 40)
    with pytest.raises(ValueError, match="z must have shape"):
        prior(prior.z[:, :1])
    # double precision: parameters, buffers and output follow
    prior.double()
    assert prior.z.dtype == torch.float64 and prior().dtype == torch.complex128
    if head == "amp_phase":
        assert torch.all(prior().abs() >= 0)


@pytest.mark.parametrize(("name", "head"), CASES, ids=IDS)
def test_seed_determinism(name: str, head: str) -> None:
    state = torch.random.get_rng_state()
    a, b, c = _build(name, head, seed=3), _build(name, head, seed=3), _build(name, head, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state), "construction must not touch the global RNG"
    with torch.no_grad():
        assert torch.equal(a(), b())
        assert torch.equal(a.z, b.z)
        assert not torch.equal(a.z, c.z)
        assert not torch.allclose(a(), c())
    rebuilt = make_prior(**a.config)
    with torch.no_grad():
        assert torch.equal(rebuilt(), a())


@pytest.mark.parametrize(("name", "head"), CASES, ids=IDS)
def test_fits_smooth_complex_image(name: str, head: str) -> None:
    target = _smooth_target()
    prior = _build(name, head, shape=(32, 32))
    rel = fit_to(prior, target, 200)
    assert rel < 0.1


def test_complex_decoder_modrelu_fits_and_rejects_real_heads() -> None:
    target = _smooth_target()
    prior = make_prior("complex", (32, 32), seed=1, activation="modrelu", **SMALL["complex"])
    assert fit_to(prior, target, 200) < 0.1
    for head in ("real_imag", "amp_phase"):
        with pytest.raises(ValueError, match="head"):
            ComplexDecoder((32, 32), head=head)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="shape"):
        make_prior("deep_decoder", (32,))
    with pytest.raises(ValueError, match="shape"):
        make_prior("deep_decoder", (0, 32))
    with pytest.raises(ValueError, match="head"):
        make_prior("dip", (32, 32), head="polar")
    with pytest.raises(TypeError, match="seed"):
        make_prior("dip", (32, 32), seed=1.5)
    with pytest.raises(ValueError, match="channels_skip"):
        make_prior("dip", (32, 32), scales=3, channels_skip=(1, 2))
    with pytest.raises(ValueError, match="sigmas"):
        make_prior("controlled", (32, 32), stages=3, sigmas=(0.1, 0.5))
    with pytest.raises(ValueError, match="upsample"):
        make_prior("controlled", (32, 32), upsample="nearest")


def test_deep_decoder_parameter_count_matches_reference() -> None:
    # Heckel & Hand reference (3 output channels, 6 layers): 25 536 / 100 224 / 397 056
    assert [deep_decoder_parameter_count(k, 6, 3) for k in (64, 128, 256)] == [25536, 100224, 397056]
    for k in (64, 128):
        prior = make_prior("deep_decoder", (64, 64), channels=k)
        assert prior.num_parameters == deep_decoder_parameter_count(k, 6, 2)
        assert prior.z.shape == (1, k, 2, 2)  # H/32 for 6 layers


def test_controlled_decoder_defaults() -> None:
    prior = make_prior("controlled", (64, 64))
    assert prior.config["lam"] == 1.8 and prior.config["sigmas"] == [0.1, 0.1, 0.1, 0.5, 0.5]
    assert prior.z.shape == (1, 32, 2, 2)
    half = prior.z.shape[1] // 2
    assert torch.allclose(prior.z[:, :half] ** 2 + prior.z[:, half:] ** 2, torch.ones(1))  # sin² + cos²
    lipschitz = [m for m in prior.modules() if isinstance(m, LipschitzConv2d)]
    assert len(lipschitz) == 2 + 2 * 5 and all(m.lam == 1.8 for m in lipschitz)
    ups = [m for m in prior.modules() if isinstance(m, GaussianUpsample)]
    assert [u.sigma for u in ups] == [0.1, 0.1, 0.1, 0.5, 0.5]
    assert make_prior("controlled", (64, 64), upsample="bilinear").config["lam"] == 1.4


def test_fixed_tensors_are_buffers() -> None:
    prior = make_prior("controlled", (32, 32), **SMALL["controlled"])
    names = {n for n, _ in prior.named_buffers()}
    assert "z" in names and any(n.endswith("kernel") for n in names)
    # everything that is not a buffer or parameter would be left behind by .to(device)
    tensors = {id(t) for t in prior.buffers()} | {id(p) for p in prior.parameters()}
    for module in prior.modules():
        for value in vars(module).values():
            if isinstance(value, torch.Tensor):
                assert id(value) in tensors


# ---------------------------------------------------------------------------- layers
@pytest.mark.parametrize("method", ["svd", "power"])
def test_lipschitz_conv_bounds_spectral_norm(method: str) -> None:
    torch.manual_seed(0)
    conv = LipschitzConv2d(6, 8, 3, lam=1.5, method=method, power_iterations=50)
    with torch.no_grad():
        conv.weight.mul_(10.0)
    w = conv.normalized_weight().detach().reshape(8, -1)
    top = float(torch.linalg.matrix_norm(w, ord=2))
    assert top <= 1.5 + 1e-3
    assert top == pytest.approx(1.5, abs=1e-3)
    # small weights are left untouched
    with torch.no_grad():
        conv.weight.mul_(1e-3)
    assert torch.equal(conv.normalized_weight(), conv.weight)


def test_lipschitz_scale_is_constant_in_backward() -> None:
    torch.manual_seed(1)
    conv = LipschitzConv2d(3, 4, 3, lam=0.5)
    g = torch.randn_like(conv.weight)
    (conv.normalized_weight() * g).sum().backward()
    s = float(torch.linalg.matrix_norm(conv.weight.detach().reshape(4, -1), ord=2)) / 0.5
    assert s > 1
    assert torch.allclose(conv.weight.grad, g / s, rtol=1e-5, atol=1e-7)
    # the forward really uses the normalised weight
    x = torch.randn(1, 3, 8, 8)
    ref = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"), conv.normalized_weight())
    assert torch.allclose(conv(x), ref, atol=1e-6)


@pytest.mark.parametrize("gain", ["unit", "dc"])
def test_gaussian_upsample_small_sigma_is_bed_of_nails(gain: str) -> None:
    x = torch.randn(2, 3, 5, 7)
    factor = 1.0 if gain == "unit" else 4.0
    for sigma in (0.0, 1e-3, 0.01):
        up = GaussianUpsample(sigma, gain=gain)
        out = up(x)
        assert out.shape == (2, 3, 10, 14)
        assert torch.equal(out, factor * bed_of_nails(x, 2))


def test_gaussian_upsample_gain_and_smoothing() -> None:
    assert float(GaussianUpsample(0.5).kernel.sum()) == pytest.approx(1.0)
    assert float(GaussianUpsample(0.5, gain="dc").kernel.sum()) == pytest.approx(4.0)
    const = torch.full((1, 1, 8, 8), 3.0)
    out = GaussianUpsample(0.5, gain="dc")(const)[..., 2:-2, 2:-2]  # away from the zero-padded border
    assert torch.allclose(out, torch.full_like(out, 3.0), rtol=0.05)  # polyphase gains differ by < 5 %
    assert float(out.mean()) == pytest.approx(3.0, rel=1e-5)  # but the mean (DC) is kept exactly
    assert float(GaussianUpsample(0.5, gain="unit")(const)[..., 2:-2, 2:-2].mean()) == pytest.approx(0.75, rel=1e-5)
    # wider σ smooths more: less energy at the highest frequency of the output
    x = torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    def high_fraction(y: torch.Tensor) -> float:  # spectral energy outside the band of the input grid
        spec = torch.fft.fftshift(torch.fft.fft2(y), dim=(-2, -1)).abs().square()[0, 0]
        return float(1 - spec[8:24, 8:24].sum() / spec.sum())

    hf = [high_fraction(GaussianUpsample(s)(x)) for s in (0.1, 0.5, 1.0)]
    assert hf[0] > 0.7 and hf[0] > hf[1] > hf[2]


def test_mean_only_norm() -> None:
    x = torch.randn(2, 5, 6, 7) * 3 + 2
    norm = MeanOnlyNorm(5)
    out = norm(x)
    assert torch.allclose(out.mean(dim=(-2, -1)), torch.zeros(2, 5), atol=1e-6)
    assert torch.allclose(out.std(dim=(-2, -1)), x.std(dim=(-2, -1)))  # no variance scaling
    with torch.no_grad():
        norm.bias.copy_(torch.arange(5.0))
    assert torch.allclose(norm(x).mean(dim=(-2, -1)), torch.arange(5.0).expand(2, 5), atol=1e-5)
    assert torch.equal(norm.eval()(x), norm.train()(x))
