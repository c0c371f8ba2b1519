"""Full-wave scattering through the product: physics switch, fit of a nonlinear model, σ, baselines, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import rfprior
from operators import LippmannSchwinger, MIMORadar, linear_part
from rfprior import io
from rfprior.cli import main
from rfprior.fit.nonlinear import apply_constraint, frequency_bands, frequency_subset
from rfprior.noise import sigma_radiation_complement
from rfprior.penalty import auto_factor
from rfprior.problem import Problem
from rfprior.scenes import simulate

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "fresnel_dielTM_dec8f.h5"
SMALL = {"n_tx": 8, "n_rx": 16, "frequencies": (1e9, 2e9), "extent": 0.06}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """A 16² simulated full-wave file: one disk, 8 transmitters, 16 receivers, 1–2 GHz, 30 dB."""
    path = tmp_path_factory.mktemp("fw") / "fw.h5"
    simulate("fullwave", size=16, seed=3, snr_db=30, path=path, **SMALL)
    return path


def test_born_file_reads_as_full_wave_and_back():
    born = Problem.from_file(BUNDLED)
    full = Problem.from_file(BUNDLED, physics="full-wave")
    assert isinstance(born.op.op, MIMORadar) and isinstance(full.op.op, LippmannSchwinger)
    assert full.modality.name == "fullwave" and not full.op.is_linear
    # the same measurements; the full-wave model's Born limit is the radar operator (up to the cell factor)
    assert torch.equal(born.y, full.y)
    chi = torch.zeros(born.op.in_shape, dtype=torch.complex64)
    chi[20:23, 15:18] = 1e-3
    b, f = born.op.forward(chi), linear_part(full.op).forward(chi)
    assert float((b - f).norm() / b.norm()) < 1e-2


def test_physics_refused_with_one_line_error(tmp_path, capsys):
    pf = tmp_path / "pf.h5"
    simulate("partial_fourier", size=16, seed=0, path=pf)
    assert main(["reconstruct", str(pf), "-o", str(tmp_path / "r.nc"), "--physics", "full-wave"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "full-wave" in err[0] and "not offered" in err[0]
    radar = tmp_path / "radar.h5"
    simulate("mimo", size=16, seed=0, path=radar)  # spreading "none": not calibrated for line sources
    assert main(["reconstruct", str(radar), "-o", str(tmp_path / "r.nc"), "--physics", "full-wave"]) == 2
    assert "/geometry/spreading" in capsys.readouterr().err
    assert not (tmp_path / "r.nc").exists()


def test_frequency_subset_matches_restricted_model(small):
    p = Problem.from_file(small)
    bands = frequency_bands(p.op)
    assert bands == [[0], [0, 1]]
    chi = p.modality.default_scene(io.read_record(small).geometry, seed=3).to(torch.complex64)
    full = p.op.forward(chi)  # (T·R·F,) or (T, R, F)
    sub_op, sub_y = frequency_subset(p.op, p.y, [1])
    assert sub_op.out_shape[-1] == (sub_y.shape[-1] if sub_y.ndim == 3 else sub_y.numel())
    ref = full.reshape(8, 16, 2)[..., 1] if full.ndim == 1 else full[..., 1]
    got = sub_op.forward(chi)
    assert torch.allclose(got.reshape(ref.shape), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


def test_radiation_complement_sigma(small):
    rec = io.read_record(small)
    p = Problem.from_file(small)
    est = sigma_radiation_complement(p.op, p.y)
    assert est == pytest.approx(rec.noise_sigma, rel=0.25)
    assert p.sigma.source == "radiation_complement"


def test_constraint_projection():
    x = torch.tensor([[1 - 1j, -1 + 1j]])
    assert torch.equal(apply_constraint(x, ("lossy",)), torch.tensor([[1 - 1j, 0 + 0j]]))
    assert torch.equal(apply_constraint(x, ("real",)), torch.tensor([[1 + 0j, -1 + 0j]]))
    with pytest.raises(ValueError, match="constraint"):
        rfprior.reconstruct(torch.zeros(4, dtype=torch.complex64), _tiny_op(), constraint="positive")


def _tiny_op() -> LippmannSchwinger:
    g = (np.arange(8) - 4) * 0.01
    th = np.linspace(0, 2 * np.pi, 2, endpoint=False)
    ring = np.stack((np.cos(th), np.sin(th)), axis=1)
    return LippmannSchwinger(0.7 * ring, 0.75 * ring, [1e9], g, g)


def test_full_wave_fit_beats_born_fit(small):
    """Same prior, same budget: the full-wave model recovers the disk's contrast better than Born."""
    rec = io.read_record(small)
    truth = torch.as_tensor(rec.truth)
    full = Problem.from_file(small)
    born = Problem.from_file(small, physics="born")
    kw = {"iterations": 150, "progress": False, "seed": 0}
    res_fw = rfprior.reconstruct(full.y, full.op, sigma=full.sigma, **kw)
    res_b = rfprior.reconstruct(born.y, born.op, sigma=full.sigma, **kw)
    assert [h["frequencies_hz"] for h in res_fw.settings["hopping"]] == [[1e9], [1e9, 2e9]]
    assert res_fw.settings["constraint"] == ["lossy"]
    # DIP + TV on the last band, λ scaled on the first band's image (no TV search on Born: its λ is ≈ 0)
    pen = res_fw.settings["penalty"]
    energy = 0.5 * float(torch.linalg.vector_norm(full.y)) ** 2
    assert pen["weight"] == pytest.approx(auto_factor(full.op) * energy / pen["reference_tv"])
    assert pen["weight"] > 0 and "reference image" in pen["weight_rule"]
    img = res_fw.image
    assert float(img.real.min()) >= 0 and float(img.imag.max()) <= 0
    err = lambda x: float((x - truth).abs().norm() / truth.abs().norm())  # noqa: E731
    assert err(res_fw.image) < 0.8 * err(res_b.image)
    inside = truth.real > 0.5 * float(truth.real.max())
    assert float(res_fw.image[inside].real.mean()) == pytest.approx(float(truth[inside].real.mean()), rel=0.3)


def test_cli_convert_and_reconstruct_full_wave(small, tmp_path, capsys):
    out = tmp_path / "r.nc"
    assert main(["reconstruct", str(small), "-o", str(out), "--iterations", "20", "--quiet"]) == 0
    res = io.load_result(out)
    assert res.attrs.get("modality", "fullwave") == "fullwave"
    settings = io.load_result(out).attrs["settings"]
    assert "hopping" in settings and "calibration" in settings  # the defaults: hopping, per-frequency gains
    plain = tmp_path / "plain.nc"
    assert main(["reconstruct", str(small), "-o", str(plain), "--iterations", "20", "-q", "--no-calibrate"]) == 0
    assert "calibration" not in io.load_result(plain).attrs["settings"]
    flat = tmp_path / "flat.nc"
    with pytest.warns(UserWarning, match="needs a starting image"):  # no band to scale the TV weight on
        assert main(["reconstruct", str(small), "-o", str(flat), "--iterations", "20", "-q", "--no-hopping"]) == 0
    assert "hopping" not in io.load_result(flat).attrs["settings"]  # one fit on both frequencies
    assert main(["compare", str(small), "--iterations", "20", "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "MR-CSI" in table and "Born + TV" in table and "Born-iterative TV" in table and "full-wave TV" in table


def test_to_after_born_and_a_failing_solve_ends_the_fit_cleanly():
    op = _tiny_op()
    op.opnorm()  # builds op.born, which points back at op
    wide = op.to(dtype=torch.complex128)
    assert wide.dtype == torch.complex128 and wide.tol == 1e-9 and wide.born.scattering is wide
    g = (np.arange(8) - 4) * 0.01
    th = np.linspace(0, 2 * np.pi, 4, endpoint=False)
    ring = np.stack((np.cos(th), np.sin(th)), axis=1)
    y = LippmannSchwinger(0.7 * ring, 0.75 * ring, [8e9], g, g)(torch.full((8, 8), 1.0 + 0j)).detach()
    starved = LippmannSchwinger(0.7 * ring, 0.75 * ring, [8e9], g, g, max_iter=3, tol=1e-7)
    res = rfprior.reconstruct(y, starved, iterations=30, progress=False, stop=[], constraint=None)
    assert res.stop_reason.startswith("numerical failure") and "did not converge" in res.stop_reason
    assert torch.isfinite(res.image.real).all()


def test_pixel_refinement_after_hopping(small):
    """The default full-wave fit ends with TV steps on the pixels from the network's image (issue 33)."""
    from rfprior.fit.options import FitOptions

    full = Problem.from_file(small)
    assert FitOptions.build(full.op).refine == 1000  # the full-wave default; linear models have none
    assert FitOptions.build(linear_part(full.op)).refine == 0
    truth = torch.as_tensor(io.read_record(small).truth)
    kw = {"iterations": 100, "progress": False, "seed": 0, "sigma": full.sigma}
    plain = rfprior.reconstruct(full.y, full.op, refine=0, **kw)
    other = Problem.from_file(small)  # a fresh operator: field solves warm-start from the last call's solution
    refined = rfprior.reconstruct(other.y, other.op, refine=100, **kw)
    assert "refine" not in plain.settings and "pixels" not in plain.stop_reason
    info = refined.settings["refine"]
    assert info["max_iterations"] == 100 and 0 < info["iterations"] <= 100 and info["weight"] > 0
    assert info["stopped"] in ("iterations", "converged") and "TV steps on the pixels" in refined.stop_reason
    assert torch.equal(refined.final_image, plain.final_image)  # the network's fit is the same
    img = refined.image
    assert float(img.real.min()) >= 0 and float(img.imag.max()) <= 0  # the fit's constraint holds
    err = lambda x: float((x - truth).abs().norm() / truth.abs().norm())  # noqa: E731
    assert err(img) < err(plain.image)
    with pytest.raises(ValueError, match="refine must be None or an integer ≥ 0"):
        rfprior.reconstruct(full.y, full.op, refine=-1, **kw)


def test_calibrate_fits_a_gain_per_frequency(small):
    """``calibrate=True`` fits one complex gain per frequency with the image (operators.calibration)."""
    from rfprior.fit.options import FitOptions

    gains = torch.tensor([0.7 * np.exp(0.1j), 1.2 * np.exp(-0.1j)], dtype=torch.complex64)
    want = (gains / torch.sqrt(gains.prod())).numpy()  # relative to the geometric mean
    truth = torch.as_tensor(io.read_record(small).truth)
    err = lambda x: float((x - truth).abs().norm() / truth.abs().norm())  # noqa: E731
    kw = {"iterations": 150, "progress": False, "seed": 0, "refine": 0}
    runs = {}
    for cal in (False, True):
        p = Problem.from_file(small)  # a fresh operator each (field solves warm-start)
        runs[cal] = rfprior.reconstruct(p.y * gains.to(p.y.device), p.op, sigma=p.sigma, calibrate=cal, **kw)
    assert "calibration" not in runs[False].settings
    rec = runs[True].settings["calibration"]
    assert [r["frequency_hz"] for r in rec] == [1e9, 2e9]
    assert all(0 < r["relative_misfit"] < 0.1 for r in rec)  # 30 dB data, fitted with their gains
    got = np.array([r["abs"] * np.exp(1j * np.deg2rad(r["phase_deg"])) for r in rec])
    assert np.allclose(got, want, rtol=0.1), (got, want)
    assert err(runs[True].image) < err(runs[False].image)
    assert FitOptions.build(p.op).calibrate is True  # the full-wave default
    with pytest.raises(ValueError, match="calibrate=True: per-frequency gains are fitted for nonlinear"):
        rfprior.reconstruct(p.y, linear_part(p.op), calibrate=True, progress=False)
    with pytest.raises(ValueError, match="calibrate must be None, True or False"):
        rfprior.reconstruct(p.y, p.op, calibrate="yes", progress=False)


def test_holdout_compares_after_the_gains_when_the_fit_calibrates(small):
    """With ``calibrate=True`` the hold-out misfit is taken after the per-frequency gains, as the fit's is."""
    from rfprior.fit.nonlinear import frequency_labels
    from rfprior.stopping import HoldOut
    from rfprior.stopping.base import FitContext

    p = Problem.from_file(small)
    truth = torch.as_tensor(io.read_record(small).truth).to(p.op.dtype)
    y = p.y * torch.tensor([0.7, 1.3], dtype=p.y.dtype)  # a relative gain error between the two frequencies
    plain = HoldOut(every=1).start(FitContext(op=p.op, y=y, seed=0, iterations=10))
    ctx = FitContext(op=p.op, y=y, seed=0, iterations=10)
    ctx.info["frequency_labels"] = frequency_labels(p.op)
    cal = HoldOut(every=1).start(ctx)
    a, b = plain.observe(0, truth, 0.0).statistic, cal.observe(0, truth, 0.0).statistic
    assert b < 0.2 * a  # at the truth only the gains' error is left, and they take it out
