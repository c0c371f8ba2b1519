"""rfprior.io: measurement files (round trips, complex layouts, validation), result files, atomic writes."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

import rfprior
from rfprior import io
from rfprior.io import FormatError
from rfprior.scenes import simulate

DATA = io.bundled_dir()  # the bundled data/*.h5 (the package rfprior.data when installed)
MODALITIES = ["partial_fourier", "mimo", "diffraction_tomography"]
SMALL = {  # fast geometries
    "partial_fourier": {},
    "mimo": {"n_freq": 16, "n_tx": 4, "n_rx": 4},
    "diffraction_tomography": {"n_angles": 24},
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small simulated file per modality (read-only: tests copy before mutating)."""
    root = tmp_path_factory.mktemp("measurements")
    out = {}
    for m in MODALITIES:
        out[m] = root / f"{m}.h5"
        simulate(m, size=16, seed=1, path=out[m], **SMALL[m])
    return out


def _copy(src: Path, tmp_path: Path, name: str = "copy.h5") -> Path:
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return dst


def _relerr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("modality", MODALITIES)
def test_simulate_save_load_operator_round_trip(modality: str, tmp_path: Path) -> None:
    path = tmp_path / "scan.h5"
    ds = simulate(modality, size=16, seed=3, path=path, **SMALL[modality])
    loaded = io.load(path)
    xr.testing.assert_identical(loaded, ds)
    assert loaded.encoding["source"] == str(path)
    assert loaded.attrs["rfprior_format"] == 1 and loaded.attrs["modality"] == modality
    op_a, y_a = io.operator_from(ds, dtype=torch.complex128)
    op_b, y_b = io.operator_from(path, dtype=torch.complex128)  # a path works too
    assert op_b.out_shape == tuple(y_b.shape) and op_b.dims == rfprior.modalities.get(modality).measurement_dims
    assert _relerr(y_b, y_a) < 1e-6
    truth = torch.as_tensor(loaded.truth.values)
    assert truth.shape == op_b.in_shape
    assert _relerr(op_b(truth), op_a(truth)) < 1e-6
    # the noise left after subtracting A·truth has the stored σ
    resid = (y_b - op_b(truth)).reshape(-1)
    sigma = float(torch.sqrt((resid.abs() ** 2).mean() / 2))
    assert sigma == pytest.approx(loaded.attrs["noise_sigma"], rel=0.25)


def test_operator_dtype_device(files: dict[str, Path]) -> None:
    op, y = io.operator_from(io.load(files["partial_fourier"]), dtype=torch.complex128, device="cpu")
    assert op.dtype == torch.complex128 and y.dtype == torch.complex128 and y.device.type == "cpu"


def test_dataset_coordinates_in_si_units(files: dict[str, Path]) -> None:
    mimo = io.load(files["mimo"])
    assert mimo.measurements.dims == ("tx", "rx", "freq")
    assert mimo.freq.attrs["units"] == "Hz" and float(mimo.freq[0]) == pytest.approx(77e9)
    assert mimo.truth.dims == ("z", "x") and mimo.sizes["tx"] == 4
    pf = io.load(files["partial_fourier"])
    mask = pf.mask.values
    assert pf.measurements.dims == ("sample",) and pf.sizes["sample"] == mask.sum()
    assert mask[pf.ky.values, pf.kx.values].all()  # sample positions index the mask, row-major
    assert np.all(np.diff(pf.ky.values * mask.shape[1] + pf.kx.values) > 0)
    dt = io.load(files["diffraction_tomography"])
    assert dt.measurements.dims == ("angle", "detector") and dt.angle.attrs["units"] == "rad"
    assert float(dt.x[8]) == 0.0 and float(dt.x[1] - dt.x[0]) == pytest.approx(float(dt.pixel_size))


def test_partial_fourier_reordered_samples_give_the_same_problem(files: dict[str, Path]) -> None:
    ds = io.load(files["partial_fourier"])
    perm = np.random.default_rng(0).permutation(ds.sizes["sample"])
    op, y = io.operator_from(ds)
    op2, y2 = io.operator_from(ds.isel(sample=perm))
    assert torch.equal(y, y2) and torch.equal(op.mask, op2.mask)


def test_partial_fourier_full_grid_measurements_are_sampled_at_the_mask(files: dict[str, Path], tmp_path: Path) -> None:
    ds = io.load(files["partial_fourier"])
    full = np.zeros(ds.mask.shape, dtype=np.complex64)
    full[ds.mask.values] = ds.measurements.values
    io.save_measurements(tmp_path / "full.h5", "partial_fourier", full, {"mask": ds.mask.values})
    np.testing.assert_array_equal(io.load(tmp_path / "full.h5").measurements.values, ds.measurements.values)


def _rewrite(path: Path, name: str, data: np.ndarray, attrs: dict | None = None) -> None:
    with h5py.File(path, "r+") as f:
        old = dict(f[name].attrs)
        del f[name]
        d = f.create_dataset(name, data=data)
        for k, v in {**old, **(attrs or {})}.items():
            d.attrs[k] = v


def _compound(a: np.ndarray, names: tuple[str, str] = ("real", "imag"), base: str = "<f8") -> np.ndarray:
    out = np.empty(a.shape, dtype=np.dtype([(names[0], base), (names[1], base)]))
    out[names[0]], out[names[1]] = a.real, a.imag
    return out


@pytest.mark.parametrize(
    "layout",
    ["compound_real_imag", "compound_r_i", "compound_float32", "trailing_one_fewer_dim", "trailing_named_complex"],
)
def test_complex_layouts_load_equal_to_native(files: dict[str, Path], tmp_path: Path, layout: str) -> None:
    native = io.load(files["mimo"])
    path = _copy(files["mimo"], tmp_path)
    for name, dims in (("measurements", ["tx", "rx", "freq"]), ("truth", ["z", "x"])):
        a = native[name].values
        if layout.startswith("compound"):
            fields = ("r", "i") if layout == "compound_r_i" else ("real", "imag")
            _rewrite(path, name, _compound(a, fields, "<f4" if layout == "compound_float32" else "<f8"))
        else:
            stacked = np.stack((a.real, a.imag), axis=-1)
            names = dims if layout == "trailing_one_fewer_dim" else [*dims, "complex"]
            _rewrite(path, name, stacked, {"dims": np.array(names, dtype=h5py.string_dtype())})
    loaded = io.load(path)
    np.testing.assert_array_equal(loaded.measurements.values, native.measurements.values)
    np.testing.assert_array_equal(loaded.truth.values, native.truth.values)
    if layout == "compound_float32":
        assert loaded.measurements.dtype == np.complex64


def test_dims_attribute_reorders_axes(files: dict[str, Path], tmp_path: Path) -> None:
    native = io.load(files["mimo"])
    path = _copy(files["mimo"], tmp_path)
    _rewrite(path, "measurements", native.measurements.values.transpose(2, 0, 1), {"dims": "freq, tx, rx"})
    _rewrite(path, "truth", native.truth.values.T, {"dims": np.array(["x", "z"], dtype=h5py.string_dtype())})
    loaded = io.load(path)
    np.testing.assert_array_equal(loaded.measurements.values, native.measurements.values)
    np.testing.assert_array_equal(loaded.truth.values, native.truth.values)


def test_bundled_matlab_style_file_equals_native() -> None:
    if not (DATA / "matlab_style.h5").exists():
        pytest.skip("data/matlab_style.h5 not generated (python data/make_data.py)")
    with h5py.File(DATA / "matlab_style.h5") as f:  # really the MATLAB layout
        assert f.userblock_size == 512 and f["measurements"].dtype.names == ("real", "imag")
        assert f["measurements"].shape[::-1] == (8, 8, 64) and "MATLAB_class" in f["geometry"].attrs
    a, b = io.load(DATA / "mimo.h5"), io.load(DATA / "matlab_style.h5")
    np.testing.assert_array_equal(b.measurements.values, a.measurements.values)
    np.testing.assert_array_equal(b.truth.values, a.truth.values)
    for name in ("tx_x", "tx_z", "rx_x", "freq", "x", "z"):
        np.testing.assert_array_equal(b[name].values, a[name].values)
    assert b.attrs["noise_sigma"] == a.attrs["noise_sigma"]


@pytest.mark.parametrize("name", ["mimo.h5", "partial_fourier.h5", "tomography.h5"])
def test_bundled_files_load_and_build(name: str) -> None:
    if not (DATA / name).exists():
        pytest.skip(f"data/{name} not generated (python data/make_data.py)")
    assert (DATA / name).stat().st_size < 1_000_000
    ds = io.load(DATA / name)
    op, y = io.operator_from(ds)
    assert tuple(y.shape) == op.out_shape and op.in_shape == (64, 64) and "truth" in ds


# --------------------------------------------------------------------------- validation
Mutation = Callable[[h5py.File], None]


def _set(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> Mutation:
    def mutate(f: h5py.File) -> None:
        data = fn(f[name][()])
        attrs = dict(f[name].attrs)
        del f[name]
        d = f.create_dataset(name, data=data)
        for k, v in attrs.items():
            d.attrs[k] = v

    return mutate


def _delete(name: str) -> Mutation:
    def mutate(f: h5py.File) -> None:
        del f[name]

    return mutate


def _attr(obj: str, key: str, value: object) -> Mutation:
    def mutate(f: h5py.File) -> None:
        if value is None:
            del f[obj].attrs[key]
        else:
            f[obj].attrs[key] = value

    return mutate


def _nan_at(a: np.ndarray, value: float = np.nan) -> np.ndarray:
    a = a.copy()
    a.reshape(-1)[1] = value
    return a


CASES: list[tuple[str, str, Mutation, str]] = [
    ("mimo", "missing_format", _attr("/", "rfprior_format", None), "@rfprior_format"),
    ("mimo", "format_2", _attr("/", "rfprior_format", 2), "@rfprior_format"),
    ("mimo", "unknown_modality", _attr("/", "modality", "sar"), "@modality"),
    ("mimo", "missing_modality", _attr("/", "modality", None), "@modality"),
    ("mimo", "missing_measurements", _delete("measurements"), "/measurements"),
    ("mimo", "missing_geometry", _delete("geometry"), "/geometry"),
    ("mimo", "missing_tx", _delete("geometry/tx"), "/geometry/tx"),
    ("mimo", "missing_frequencies", _delete("geometry/frequencies"), "/geometry/frequencies"),
    ("mimo", "tx_three_columns", _set("geometry/tx", lambda a: np.concatenate([a, a[:, :1]], 1)), "/geometry/tx"),
    ("mimo", "rx_one_dimensional", _set("geometry/rx", lambda a: a[:, 0]), "/geometry/rx"),
    ("mimo", "tx_nan", _set("geometry/tx", _nan_at), "/geometry/tx"),
    ("mimo", "x_inf", _set("geometry/x", lambda a: _nan_at(a, np.inf)), "/geometry/x"),
    ("mimo", "z_unsorted", _set("geometry/z", lambda a: a[::-1][np.r_[1, 0, 2 : a.size]]), "/geometry/z"),
    ("mimo", "freq_non_positive", _set("geometry/frequencies", lambda a: a - a[3]), "/geometry/frequencies"),
    ("mimo", "freq_unsorted", _set("geometry/frequencies", lambda a: a[::-1]), "/geometry/frequencies"),
    ("mimo", "freq_duplicate", _set("geometry/frequencies", lambda a: np.r_[a[0], a[:-1]]), "/geometry/frequencies"),
    ("mimo", "freq_matrix", _set("geometry/frequencies", lambda a: a.reshape(4, -1)), "/geometry/frequencies"),
    ("mimo", "freq_string", _set("geometry/frequencies", lambda a: np.bytes_(b"77e9")), "/geometry/frequencies"),
    ("mimo", "spreading_not_bool", _set("geometry/spreading", lambda a: np.float64(0.5)), "/geometry/spreading"),
    ("mimo", "measurements_shape", _set("measurements", lambda a: a[:, :, :-1]), "/measurements"),
    ("partial_fourier", "measurements_nan", _set("measurements", lambda a: _nan_at(a)), "/measurements"),
    ("mimo", "measurements_all_nan", _set("measurements", lambda a: np.full_like(a, np.nan)), "/measurements"),
    ("mimo", "valid_none_true", lambda f: f.create_dataset("valid", data=np.zeros(f["measurements"].shape, bool)),
     "/valid"),
    ("mimo", "valid_shape", lambda f: f.create_dataset("valid", data=np.ones((2, 2), bool)), "/valid"),
    ("mimo", "valid_float", lambda f: f.create_dataset("valid", data=np.full(f["measurements"].shape, 0.5)),
     "/valid"),
    (
        "mimo",
        "nan_marked_valid",
        lambda f: (
            _set("measurements", lambda a: _nan_at(a))(f),
            f.create_dataset("valid", data=np.ones(f["measurements"].shape, bool)),
        ),
        "/measurements",
    ),
    ("partial_fourier", "valid_not_supported", lambda f: f.create_dataset("valid", data=np.ones(3, bool)), "/valid"),
    ("mimo", "spreading_unknown_name", _set("geometry/spreading", lambda a: np.bytes_(b"conical")),
     "/geometry/spreading"),
    ("mimo", "measurements_inf", _set("measurements", lambda a: _nan_at(a, np.inf)), "/measurements"),
    ("mimo", "measurements_real", _set("measurements", lambda a: a.real.copy()), "/measurements"),
    ("mimo", "measurements_string", _set("measurements", lambda a: np.bytes_(b"abc")), "/measurements"),
    ("mimo", "bad_compound", _set("measurements", lambda a: _compound(a, ("re", "im"))), "/measurements"),
    ("mimo", "dims_wrong_names", _attr("measurements", "dims", "tx,rx,time"), "/measurements@dims"),
    ("mimo", "dims_wrong_count", _attr("measurements", "dims", "tx,rx"), "/measurements@dims"),
    ("mimo", "dims_not_strings", _attr("measurements", "dims", np.arange(3)), "/measurements@dims"),
    ("mimo", "truth_shape", _set("truth", lambda a: a[:-1]), "/truth"),
    ("mimo", "truth_nan", _set("truth", _nan_at), "/truth"),
    ("mimo", "noise_sigma_negative", _attr("/", "noise_sigma", -1.0), "@noise_sigma"),
    ("mimo", "noise_sigma_string", _attr("/", "noise_sigma", "high"), "@noise_sigma"),
    ("mimo", "snr_nan", _attr("/", "snr_db", np.nan), "@snr_db"),
    (
        "mimo",
        "geometry_is_dataset",
        lambda f: (_delete("geometry")(f), f.create_dataset("geometry", data=1)),
        "/geometry",
    ),
    (
        "mimo",
        "rank_without_dims",
        lambda f: (
            _attr("measurements", "dims", None)(f),
            _set("measurements", lambda a: a.reshape(a.shape[0], -1))(f),
        ),
        "/measurements",
    ),
    ("mimo", "truth_dims_wrong", _attr("truth", "dims", "y,x"), "/truth@dims"),
    ("mimo", "description_not_string", _attr("/", "description", np.arange(3)), "@description"),
    ("partial_fourier", "mask_float", _set("geometry/mask", lambda a: a.astype(np.float64)), "/geometry/mask"),
    ("partial_fourier", "mask_int_values", _set("geometry/mask", lambda a: a.astype(np.int8) * 2), "/geometry/mask"),
    ("partial_fourier", "mask_1d", _set("geometry/mask", lambda a: a.reshape(-1)), "/geometry/mask"),
    ("partial_fourier", "mask_empty", _set("geometry/mask", lambda a: np.zeros_like(a)), "/geometry/mask"),
    ("partial_fourier", "missing_mask", _delete("geometry/mask"), "/geometry/mask"),
    ("partial_fourier", "count_vs_mask", _set("measurements", lambda a: a[:-1]), "/measurements"),
    ("partial_fourier", "truth_vs_mask", _set("truth", lambda a: a[:, :-2]), "/truth"),
    (
        "diffraction_tomography",
        "wavelength_negative",
        _set("geometry/wavelength", lambda a: -a),
        "/geometry/wavelength",
    ),
    (
        "diffraction_tomography",
        "wavelength_vector",
        _set("geometry/wavelength", lambda a: np.r_[a, a]),
        "/geometry/wavelength",
    ),
    ("diffraction_tomography", "missing_pixel_size", _delete("geometry/pixel_size"), "/geometry/pixel_size"),
    ("diffraction_tomography", "medium_zero", _set("geometry/medium_index", lambda a: 0 * a), "/geometry/medium_index"),
    (
        "diffraction_tomography",
        "angles_duplicate",
        _set("geometry/angles", lambda a: np.r_[a[:-1], a[0] + 2 * np.pi]),
        "/geometry/angles",
    ),
    ("diffraction_tomography", "angles_nan", _set("geometry/angles", _nan_at), "/geometry/angles"),
    (
        "diffraction_tomography",
        "distance_negative",
        _set("geometry/detector_distance", lambda a: a - 1),
        "/geometry/detector_distance",
    ),
    ("diffraction_tomography", "shape_bad", _set("geometry/shape", lambda a: np.array([16, 0])), "/geometry/shape"),
    (
        "diffraction_tomography",
        "detector_size_mismatch",
        lambda f: f["geometry"].create_dataset("detector_size", data=5),
        "/geometry/detector_size",
    ),
    ("diffraction_tomography", "angle_count", _set("measurements", lambda a: a[:-1]), "/measurements"),
]


@pytest.mark.parametrize(("modality", "case", "mutate", "field"), CASES, ids=[c[1] for c in CASES])
def test_malformed_file_raises_format_error_naming_the_field(
    files: dict[str, Path], tmp_path: Path, modality: str, case: str, mutate: Mutation, field: str
) -> None:
    path = _copy(files[modality], tmp_path, f"{case}.h5")
    with h5py.File(path, "r+") as f:
        mutate(f)
    with pytest.raises(FormatError) as info:
        io.load(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.field == field, str(err)
    msg = str(err)
    assert str(path) in msg and f"'{field}'" in msg and "found" in msg and "expected" in msg


def test_not_hdf5_empty_and_truncated_files(files: dict[str, Path], tmp_path: Path) -> None:
    text = tmp_path / "notes.h5"
    text.write_text("frequency,real,imag\n1,2,3\n")
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(files["mimo"].read_bytes()[:3000])
    for path in (text, empty, truncated, tmp_path):
        with pytest.raises(FormatError) as info:
            io.load(path)
        assert str(path) in str(info.value) and "HDF5" in str(info.value)
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "missing.h5")


def test_save_measurements_validates_before_writing(tmp_path: Path) -> None:
    geometry = {"mask": np.ones((4, 4), dtype=bool)}
    target = tmp_path / "bad.h5"
    with pytest.raises(FormatError, match="/measurements"):
        io.save_measurements(target, "partial_fourier", np.zeros(15, np.complex64), geometry)
    with pytest.raises(FormatError, match="@modality"):
        io.save_measurements(target, "radar", np.zeros(16, np.complex64), geometry)
    with pytest.raises(FormatError, match="/geometry/mask"):
        io.save_measurements(target, "partial_fourier", np.zeros(16, np.complex64), {})
    assert list(tmp_path.iterdir()) == []


def test_operator_from_rejects_incomplete_dataset(files: dict[str, Path]) -> None:
    ds = io.load(files["mimo"]).drop_vars("tx_x")
    with pytest.raises(FormatError, match="tx_x"):
        io.operator_from(ds)
    with pytest.raises(TypeError):
        io.operator_from(np.zeros(3))  # type: ignore[arg-type]
    pf = io.load(files["partial_fourier"])
    with pytest.raises(FormatError, match="ky/kx"):
        io.operator_from(pf.isel(sample=[0, 0, 1]))


# --------------------------------------------------------------------------- atomic writes
def test_existing_measurement_file_is_not_overwritten(files: dict[str, Path], tmp_path: Path) -> None:
    ds = io.load(files["partial_fourier"])
    path = _copy(files["mimo"], tmp_path, "scan.h5")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"scan\.h5"):
        io.save_measurements(path, "partial_fourier", ds.measurements.values, {"mask": ds.mask.values})
    assert path.read_bytes() == before
    io.save_measurements(path, "partial_fourier", ds.measurements.values, {"mask": ds.mask.values}, force=True)
    assert io.load(path).attrs["modality"] == "partial_fourier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.h5"]


@pytest.mark.parametrize("force", [False, True])
def test_failed_measurement_write_leaves_nothing_behind(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, force: bool
) -> None:
    ds = io.load(files["partial_fourier"])
    real_create = h5py.Group.create_group

    def failing_create_group(self, name, *args, **kwargs):  # called after /measurements is written
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(h5py.Group, "create_group", failing_create_group)
    path = tmp_path / "scan.h5"
    if force:
        path.write_bytes(b"old contents")
    with pytest.raises(OSError, match="disk full"):
        io.save_measurements(path, "partial_fourier", ds.measurements.values, {"mask": ds.mask.values}, force=force)
    monkeypatch.setattr(h5py.Group, "create_group", real_create)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == (["scan.h5"] if force else [])
    if force:
        assert path.read_bytes() == b"old contents"


# --------------------------------------------------------------------------- result files
def _stand_in(sigma: float | None = 0.02, n: int = 12) -> SimpleNamespace:
    g = torch.Generator().manual_seed(0)
    history = xr.Dataset(
        {
            "loss": ("iteration", np.linspace(1.0, 0.1, n)),
            "psnr": ("iteration", np.linspace(10.0, 25.0, n)),
            "heldout": ("iteration", np.r_[np.nan, np.linspace(2.0, 1.0, n - 1)]),
        },
        coords={"iteration": np.arange(n) * 10},
    )
    return SimpleNamespace(
        image=torch.randn(16, 16, dtype=torch.complex64, generator=g),
        final_image=torch.randn(16, 16, dtype=torch.complex64, generator=g),
        chosen_iteration=70,
        history=history,
        settings={"prior": "deep_decoder", "lr": 0.01, "iterations": 120, "rules": ["discrepancy"], "tau": 1.0},
        seed=7,
        interrupted=True,
        sigma=sigma,
        stop_reason="discrepancy principle reached at iteration 70",
    )


def test_result_round_trip_keeps_every_field(files: dict[str, Path], tmp_path: Path) -> None:
    res = _stand_in()
    bp = np.random.default_rng(1).standard_normal((16, 16)) * (1 + 1j)
    path = io.save_result(tmp_path / "run.nc", res, backprojection=bp, source=files["mimo"])
    ds = io.load_result(path)
    np.testing.assert_array_equal(ds.image.values, res.image.numpy())
    np.testing.assert_array_equal(ds.final_image.values, res.final_image.numpy())
    np.testing.assert_array_equal(ds.backprojection.values, bp)
    assert ds.image.dtype == np.complex64 and ds.image.dims == ("z", "x")  # from the MIMO source
    np.testing.assert_array_equal(ds.x.values, io.load(files["mimo"]).x.values)
    for name in ("loss", "psnr", "heldout"):
        np.testing.assert_array_equal(ds[name].values, res.history[name].values)
    np.testing.assert_array_equal(ds.iteration.values, res.history.iteration.values)
    a = ds.attrs
    assert a["chosen_iteration"] == 70 and a["seed"] == 7 and a["interrupted"] is True
    assert a["sigma"] == 0.02 and a["stop_reason"] == res.stop_reason and a["settings"] == res.settings
    assert a["rfprior_version"] == rfprior.__version__ and a["source"] == str(files["mimo"])
    assert a["modality"] == "mimo"
    with h5py.File(path) as f:  # portable layout: plain floats with a trailing 'ri' dimension
        assert f["image"].dtype == np.float32 and f["image"].shape == (16, 16, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.nc"]


def test_result_round_trip_with_the_engine_result_class(tmp_path: Path) -> None:
    result_mod = pytest.importorskip("rfprior.result")
    s = _stand_in(sigma=None)
    res = result_mod.Result(
        image=s.image,
        chosen_iteration=3,
        final_image=s.final_image,
        final_iteration=11,
        history=s.history,
        settings=s.settings,
        seed=1,
        stop_reason="fixed",
        choices={"heldout": 5, "discrepancy": None},
    )
    ds = io.load_result(io.save_result(tmp_path / "r.nc", res))
    assert ds.attrs["sigma"] is None and ds.attrs["final_iteration"] == 11 and ds.attrs["interrupted"] is False
    assert ds.attrs["choices"] == {"heldout": 5, "discrepancy": None} and ds.image.dims == ("y", "x")
    assert "backprojection" not in ds


def test_result_not_overwritten_and_failed_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = io.save_result(tmp_path / "r.nc", _stand_in())
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"r\.nc"):
        io.save_result(path, _stand_in(sigma=0.5))
    assert path.read_bytes() == before

    def failing_to_netcdf(self, target, *args, **kwargs):
        Path(target).write_bytes(b"\x89HDF partial")
        raise OSError("interrupted write (simulated)")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", failing_to_netcdf)
    with pytest.raises(OSError, match="interrupted"):
        io.save_result(tmp_path / "new.nc", _stand_in())
    with pytest.raises(OSError, match="interrupted"):
        io.save_result(path, _stand_in(), force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.nc"] and path.read_bytes() == before


def test_result_errors(files: dict[str, Path], tmp_path: Path) -> None:
    bad = _stand_in()
    bad.settings = {"callback": object()}
    with pytest.raises(TypeError, match="settings"):
        io.save_result(tmp_path / "r.nc", bad)
    with pytest.raises(TypeError, match="attribute"):
        io.save_result(tmp_path / "r.nc", SimpleNamespace(image=torch.zeros(2, 2)))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FormatError, match="@rfprior_result_format"):
        io.load_result(files["mimo"])
    (tmp_path / "x.nc").write_text("not netcdf")
    with pytest.raises(FormatError, match="HDF5"):
        io.load_result(tmp_path / "x.nc")


def test_describe_summarises_each_modality(files: dict[str, Path]) -> None:
    for modality, path in files.items():
        text = io.describe(io.load(path))
        assert str(path) in text and modality in text and "SNR" in text and "truth" in text
    assert "range resolution" in io.describe(io.load(files["mimo"]))
