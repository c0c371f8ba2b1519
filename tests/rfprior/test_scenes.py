"""rfprior.scenes: SNR and σ of simulated data, determinism, scene properties, default geometries."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from operators.mimo import SPEED_OF_LIGHT
from operators.tomography import index_to_object
from rfprior import io
from rfprior.scenes import (
    complex_phantom,
    default_geometry,
    dielectric_phantom,
    mimo_scene,
    noise_sigma_for_snr,
    simulate,
    smooth_phase,
)

# size and geometry per modality with at least ~1000 measurements (the realised SNR scatters as 4.3/√M dB)
SETUPS = {
    "partial_fourier": {"size": 64},
    "mimo": {"size": 24, "n_tx": 4, "n_rx": 4},
    "diffraction_tomography": {"size": 24},
}


def _clean_and_noise(ds) -> tuple[torch.Tensor, torch.Tensor]:
    op, y = io.operator_from(ds, dtype=torch.complex128)
    clean = op(torch.as_tensor(ds.truth.values))
    return clean, y - clean


@pytest.mark.parametrize("modality", list(SETUPS))
def test_realised_snr_matches_request(modality: str) -> None:
    for seed, snr_db in ((0, 5.0), (1, 20.0), (2, 12.5)):
        ds = simulate(modality, snr_db=snr_db, seed=seed, **SETUPS[modality])
        clean, noise = _clean_and_noise(ds)
        realised = 10 * math.log10(float((clean.abs() ** 2).sum()) / float((noise.abs() ** 2).sum()))
        assert abs(realised - snr_db) < 0.5, (modality, seed, realised)
        assert ds.attrs["snr_db"] == snr_db
        # the stored σ is exactly the σ of the definition SNR = ‖Ax‖² / (2Mσ²)
        assert ds.attrs["noise_sigma"] == pytest.approx(noise_sigma_for_snr(clean, snr_db), rel=1e-5)


def test_given_sigma_is_stored_and_used() -> None:
    ds = simulate("partial_fourier", size=64, seed=2, noise_sigma=0.05)
    assert ds.attrs["noise_sigma"] == 0.05
    clean, noise = _clean_and_noise(ds)
    assert float(noise.real.std()) == pytest.approx(0.05, rel=0.08)
    assert float(noise.imag.std()) == pytest.approx(0.05, rel=0.08)
    expected_snr = 10 * math.log10(float((clean.abs() ** 2).sum()) / (2 * clean.numel() * 0.05**2))
    assert ds.attrs["snr_db"] == pytest.approx(expected_snr)


def test_noiseless_simulation() -> None:
    ds = simulate("partial_fourier", size=32, snr_db=None)
    clean, noise = _clean_and_noise(ds)
    assert ds.attrs["noise_sigma"] == 0.0 and "snr_db" not in ds.attrs
    assert float(noise.abs().max()) < 1e-6 * float(clean.abs().max())


def test_same_seed_same_file_different_seed_different(tmp_path: Path) -> None:
    kw = {"size": 24, "n_tx": 4, "n_rx": 4, "n_freq": 16}
    for seed, name in ((0, "a.h5"), (0, "b.h5"), (1, "c.h5")):
        simulate("mimo", seed=seed, path=tmp_path / name, **kw)
    a, b, c = ((tmp_path / n).read_bytes() for n in ("a.h5", "b.h5", "c.h5"))
    assert a == b and a != c


@pytest.mark.parametrize(
    ("modality", "dims", "shape"),
    [
        ("mimo", ("z", "x"), (24, 24)),
        ("partial_fourier", ("y", "x"), (32, 32)),
        ("diffraction_tomography", ("y", "x"), (24, 24)),
    ],
)
def test_truth_shape_dtype_and_dims(modality: str, dims: tuple[str, str], shape: tuple[int, int]) -> None:
    kw = {"n_tx": 4, "n_rx": 4, "n_freq": 16} if modality == "mimo" else {}
    ds = simulate(modality, size=shape[0], **kw)
    assert ds.truth.dims == dims and ds.truth.shape == shape and ds.truth.dtype == np.complex64
    assert ds.measurements.dtype == np.complex64
    assert float(np.abs(ds.truth.values).max()) > 0


def test_custom_scene_and_errors() -> None:
    scene = torch.zeros(16, 16, dtype=torch.complex64)
    scene[8, 8] = 1
    ds = simulate("partial_fourier", size=16, scene=scene, snr_db=None)
    np.testing.assert_array_equal(ds.truth.values, scene.numpy())
    np.testing.assert_allclose(np.abs(ds.measurements.values), 1 / 16, rtol=1e-5)  # a delta has a flat spectrum
    with pytest.raises(ValueError, match="shape"):
        simulate("partial_fourier", size=16, scene=torch.zeros(8, 8))
    with pytest.raises(ValueError, match="snr_db or noise_sigma"):
        simulate("partial_fourier", size=16, snr_db=10.0, noise_sigma=0.1)
    with pytest.raises(ValueError, match="modality"):
        simulate("ultrasound")
    with pytest.raises(TypeError, match="n_freqs"):
        default_geometry("mimo", 16, n_freqs=8)


def _wrapped_gradients(phase: np.ndarray, inside: np.ndarray) -> np.ndarray:
    g = []
    for axis in (0, 1):
        d = np.angle(np.exp(1j * np.diff(phase, axis=axis)))
        both = inside[1:, :] & inside[:-1, :] if axis == 0 else inside[:, 1:] & inside[:, :-1]
        g.append(np.abs(d[both]))
    return np.concatenate(g)


@pytest.mark.parametrize("kind", ["shepp_logan", "ellipses"])
def test_complex_phantom_has_smooth_nontrivial_phase(kind: str) -> None:
    for seed in range(3):
        p = complex_phantom((64, 64), seed, kind=kind).numpy()
        inside = np.abs(p) > 0.05
        assert inside.mean() > 0.3
        grad = _wrapped_gradients(np.angle(p), inside)
        assert grad.mean() < 0.2 and grad.max() < 0.6  # rad per pixel
        assert np.std(np.angle(p[inside] * np.exp(-1j * np.angle(p[inside].mean())))) > 0.3  # not constant
    assert np.array_equal(complex_phantom((32, 32), 1).numpy(), complex_phantom((32, 32), 1).numpy())
    assert not np.array_equal(complex_phantom((32, 32), 1).numpy(), complex_phantom((32, 32), 2).numpy())


def test_smooth_phase_gradient_bound() -> None:
    phi = smooth_phase((64, 64), seed=4).numpy()
    assert np.abs(np.diff(phi, axis=0)).max() < 2 * math.pi * 1.5 * math.pi / 64
    assert np.abs(np.diff(phi, axis=1)).max() < 2 * math.pi * 1.5 * math.pi / 64


def test_mimo_scene_kinds() -> None:
    x, z = np.linspace(-0.4, 0.4, 48), np.linspace(0.6, 1.4, 40)
    pts = mimo_scene(x, z, "points", seed=3, n_points=5)
    assert pts.shape == (40, 48) and pts.dtype == torch.complex64
    assert int((pts.abs() > 0).sum()) == 5 and float(pts.abs().max()) == pytest.approx(1.0)
    ext = mimo_scene(x, z, "extended", seed=3)
    assert int((ext.abs() > 0).sum()) > 40
    support = ext.abs() > 0
    grad = _wrapped_gradients(np.angle(ext.numpy()), support.numpy())
    assert grad.mean() < 0.3
    mixed = mimo_scene(x, z, "mixed", seed=3)
    assert int((mixed.abs() > 0).sum()) > int((ext.abs() > 0).sum()) - 5
    assert torch.equal(mimo_scene(x, z, "mixed", seed=3), mixed)
    assert not torch.equal(mimo_scene(x, z, "mixed", seed=4), mixed)
    with pytest.raises(ValueError, match="kind"):
        mimo_scene(x, z, "cars")


def test_dielectric_phantom_and_object_function() -> None:
    n = dielectric_phantom((48, 48), seed=2, medium_index=1.333, contrast=0.01)
    assert n.dtype == torch.complex128
    assert float(n.real.min()) >= 1.333 - 1e-12 and float(n.imag.min()) >= 0
    assert float(n[0, 0].real) == pytest.approx(1.333) and float(n.real.max()) > 1.35
    assert float(n.imag.max()) > 0  # absorbing droplets
    ds = simulate("diffraction_tomography", size=24, seed=2)
    g = default_geometry("diffraction_tomography", 24)
    expected = index_to_object(dielectric_phantom((24, 24), 2), g["wavelength"], g["medium_index"])
    np.testing.assert_allclose(ds.truth.values, expected.numpy(), rtol=1e-5, atol=1e-6 * float(expected.abs().max()))


def test_default_geometries_are_physically_sensible() -> None:
    g = default_geometry("mimo")
    assert g["tx"].shape == (8, 2) and g["rx"].shape == (8, 2) and g["frequencies"].shape == (64,)
    assert len(g["x"]) == len(g["z"]) == 64
    bandwidth = g["frequencies"][-1] - g["frequencies"][0] + np.diff(g["frequencies"])[0]
    resolution = SPEED_OF_LIGHT / (2 * bandwidth)
    pixel = g["z"][1] - g["z"][0]
    assert 1.5 < resolution / pixel < 5  # a few pixels per range resolution cell
    assert (g["z"][-1] - g["z"][0]) < SPEED_OF_LIGHT / (2 * np.diff(g["frequencies"])[0])  # unambiguous
    d = np.diff(g["rx"][:, 0])[0]
    assert d <= SPEED_OF_LIGHT / g["frequencies"][-1] / 2 + 1e-12  # phase-centre pitch ≤ λ/4: no grating lobes
    pf = default_geometry("partial_fourier")
    assert pf["mask"].shape == (64, 64) and pf["mask"].mean() == pytest.approx(0.25, abs=0.01)
    dt = default_geometry("diffraction_tomography")
    assert 64 <= len(dt["angles"]) <= 128 and dt["shape"] == (64, 64)
    lam_m = dt["wavelength"] / dt["medium_index"]
    assert dt["pixel_size"] <= lam_m / (2 * math.sqrt(2))  # no aliasing of |K| ≤ √2 k_m
