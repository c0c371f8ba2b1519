"""rfprior.plot on the headless Agg backend: what each figure draws, the files it saves, bad input."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
import xarray as xr

from rfprior import plot

plt = plot.plt  # pyplot as loaded by rfprior.plot, after it selected the Agg backend

PNG = b"\x89PNG\r\n\x1a\n"
PDF = b"%PDF-"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _image(h: int = 12, w: int = 16) -> np.ndarray:
    """A complex test image with a known peak (value 2 at row 3, column 5) and a −40 dB floor."""
    img = np.full((h, w), 0.02, dtype=np.complex64) * np.exp(1j * np.linspace(0, 3, w))[None, :]
    img[3, 5] = 2.0j
    img[8, 10] = 1.0
    return img.astype(np.complex64)


def _history(n: int = 30) -> xr.Dataset:
    it = np.arange(n)
    psnr = 20 - (it - 17.0) ** 2 / 20
    return xr.Dataset(
        {
            "loss": ("iteration", np.exp(-it / 10.0)),
            "misfit": ("iteration", 100 * np.exp(-it / 10.0) + 1),
            "time": ("iteration", 0.01 * it),
            "lr": ("iteration", np.full(n, 0.01)),
            "discrepancy": ("iteration", np.linspace(5, 0.5, n)),
            "heldout": ("iteration", np.full(n, np.nan)),  # never recorded: no panel
            "psnr": ("iteration", psnr),
        },
        coords={"iteration": it},
    )


def _assert_png_pdf(png, pdf) -> None:
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 500, png
    assert pdf.read_bytes()[:5] == PDF and pdf.stat().st_size > 500, pdf


def _vlines(ax) -> list[float]:
    """x positions of the vertical lines (axvline) drawn on ``ax``."""
    out = []
    for line in ax.get_lines():
        x = np.asarray(line.get_xdata(), dtype=float)
        if x.size == 2 and x[0] == x[1] and list(line.get_ydata()) == [0, 1]:
            out.append(float(x[0]))
    return out


def test_backend_is_headless():
    assert matplotlib.get_backend().lower() == "agg"


# --------------------------------------------------------------------------- image_db
def test_image_db_metre_axes_db_scale_and_colorbar():
    img = _image()
    x = np.linspace(-0.3, 0.3, 16)  # columns, metres
    z = np.linspace(1.0, 1.55, 12)  # rows, metres
    ax = plot.image_db(img, x, z, dynamic_range=30, title="scene")
    assert ax.get_xlabel() == "cross-range x [m]" and ax.get_ylabel() == "range z [m]"
    assert ax.get_title() == "scene"
    (im,) = ax.get_images()
    dx, dz = 0.6 / 15, 0.55 / 11
    np.testing.assert_allclose(im.get_extent(), [-0.3 - dx / 2, 0.3 + dx / 2, 1.0 - dz / 2, 1.55 + dz / 2])
    assert im.origin == "lower"  # range increases upwards
    assert im.get_clim() == (-30, 0)
    db = np.asarray(im.get_array())
    assert db.shape == img.shape
    assert db[3, 5] == pytest.approx(0.0)  # the peak is the 0 dB reference
    assert db[8, 10] == pytest.approx(20 * np.log10(0.5), abs=1e-4)
    assert db[0, 0] == pytest.approx(-40.0, abs=1e-3)  # 0.02 / 2 → −40 dB, below the colour range, kept
    # a colorbar labelled in dB sits next to the image
    fig = ax.figure
    cbars = [a for a in fig.axes if a is not ax]
    assert len(cbars) == 1 and cbars[0].get_ylabel() == "dB"


def test_image_db_without_coordinates_uses_pixels_and_reference_sets_0_db():
    ax = plot.image_db(torch.as_tensor(_image()), reference=4.0)
    assert ax.get_xlabel() == "pixel" and ax.get_ylabel() == "pixel"
    (im,) = ax.get_images()
    assert np.asarray(im.get_array())[3, 5] == pytest.approx(20 * np.log10(0.5), abs=1e-4)
    ax = plot.image_db(_image(), labels=("u [m]", "v [m]"))
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("u [m]", "v [m]")


def test_image_db_draws_into_a_given_axis_and_accepts_a_tensor_with_grad():
    fig, ax = plt.subplots()
    img = torch.as_tensor(_image()).requires_grad_(True)
    assert plot.image_db(img, ax=ax) is ax
    assert len(ax.get_images()) == 1 and ax.figure is fig


def test_image_db_saves_when_given_a_path(tmp_path):
    plot.image_db(_image(), path=tmp_path / "img")
    _assert_png_pdf(tmp_path / "img.png", tmp_path / "img.pdf")


def test_image_db_linear_scale_signed_real_and_complex_magnitude():
    real = np.linspace(-1.0, 3.0, 12 * 16).reshape(12, 16)  # e.g. an index contrast with negative values
    ax = plot.image_db(real, scale="linear")
    (im,) = ax.get_images()
    np.testing.assert_array_equal(np.asarray(im.get_array()), real)  # the values themselves
    assert im.get_clim() == (-3.0, 3.0) and im.get_cmap().name == "RdBu_r"  # symmetric about 0
    ax = plot.image_db(_image(), scale="linear", reference=4.0)
    (im,) = ax.get_images()
    np.testing.assert_allclose(np.asarray(im.get_array()), np.abs(_image()), rtol=1e-6)
    assert im.get_clim() == (0.0, 4.0) and im.get_cmap().name == "viridis"
    fig = plot.compare({"a": real, "b": np.abs(real)}, scale="linear")
    clims = [ax.get_images()[0].get_clim() for ax in fig.axes if ax.get_images()]
    assert clims == [(-3.0, 3.0), (-3.0, 3.0)]  # one signed panel makes every panel signed
    with pytest.raises(ValueError, match="scale must be 'db' or 'linear'"):
        plot.image_db(real, scale="log")


# --------------------------------------------------------------------------- compare
def test_compare_one_titled_panel_per_image_and_common_reference(tmp_path):
    a = _image()
    b = 0.1 * _image()  # 20 dB weaker
    fig = plot.compare({"truth": a, "weak": torch.as_tensor(b)}, common_reference=True, suptitle="cmp",
                       path=tmp_path / "figs" / "cmp")
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in panels] == ["truth", "weak"]
    assert len(fig.axes) == 4  # two images, two colorbars
    assert fig._suptitle.get_text() == "cmp"
    peaks = [float(np.asarray(ax.get_images()[0].get_array()).max()) for ax in panels]
    assert peaks[0] == pytest.approx(0.0) and peaks[1] == pytest.approx(-20.0, abs=1e-3)
    _assert_png_pdf(tmp_path / "figs" / "cmp.png", tmp_path / "figs" / "cmp.pdf")
    # without a common reference each panel peaks at 0 dB
    fig = plot.compare({"truth": a, "weak": b})
    peaks = [float(np.asarray(ax.get_images()[0].get_array()).max()) for ax in fig.axes if ax.get_images()]
    assert peaks == pytest.approx([0.0, 0.0])


# --------------------------------------------------------------------------- curves
def test_curves_panels_and_the_chosen_and_oracle_iterations_marked(tmp_path):
    fig = plot.curves(_history(), chosen=12, oracle=17, title="run", path=tmp_path / "curves.png")
    axes = fig.axes
    # misfit, discrepancy and psnr: 'time', 'lr', 'loss' are skipped, an all-NaN variable too
    assert [ax.get_ylabel() for ax in axes] == ["misfit", "discrepancy", "psnr"]
    assert axes[0].get_yscale() == "log" and axes[2].get_yscale() == "linear"
    assert axes[-1].get_xlabel() == "iteration" and axes[0].get_title() == "run"
    for ax in axes:
        assert sorted(_vlines(ax)) == [12.0, 17.0], ax.get_ylabel()
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert legend == ["chosen", "oracle"]
    # the plotted data are the history's
    np.testing.assert_allclose(axes[2].get_lines()[0].get_ydata(), _history()["psnr"].values)
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG
    assert not (tmp_path / "curves.pdf").exists()  # an explicit suffix writes only that format


def test_curves_selected_variables_nan_gaps_and_no_marks():
    h = _history()
    h["psnr"][:5] = np.nan
    fig = plot.curves(h, variables=["psnr", "loss"])
    assert [ax.get_ylabel() for ax in fig.axes] == ["psnr", "loss"]
    assert all(_vlines(ax) == [] for ax in fig.axes)
    assert fig.axes[0].get_legend() is None
    xs = fig.axes[0].get_lines()[0].get_xdata()
    assert list(xs) == list(range(5, 30))  # the NaN entries are left out, not drawn as zero


def test_curves_on_a_real_result_history():
    import rfprior
    from operators import PartialFourier, cartesian_mask

    op = PartialFourier(cartesian_mask((16, 16), 2.0, seed=0))
    x = torch.ones(16, 16, dtype=torch.complex64)
    res = rfprior.reconstruct(op.forward(x), op, prior="deep_decoder", prior_kwargs={"channels": 8, "layers": 2},
                              iterations=6, truth=x, progress=False, stop=rfprior.FixedIterations())
    fig = plot.curves(res.history, chosen=res.chosen_iteration, oracle=res.oracle_iteration)
    assert "misfit" in [ax.get_ylabel() for ax in fig.axes] and "psnr" in [ax.get_ylabel() for ax in fig.axes]
    assert res.chosen_iteration in _vlines(fig.axes[0])


# --------------------------------------------------------------------------- fbc_curves, kspace_coverage
def test_fbc_curves_one_labelled_line_per_band(tmp_path):
    its = np.arange(0, 50, 5)
    bands = np.stack([np.linspace(0.5, 1.0, 10), np.linspace(0.1, 0.8, 10), np.linspace(0.0, 0.3, 10)], axis=1)
    ax = plot.fbc_curves(its, torch.as_tensor(bands), labels=["low", "mid", "high"], path=tmp_path / "fbc")
    lines = ax.get_lines()
    assert len(lines) == 3
    for k, line in enumerate(lines):
        np.testing.assert_array_equal(line.get_xdata(), its)
        np.testing.assert_allclose(line.get_ydata(), bands[:, k])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["low", "mid", "high"]
    assert ax.get_ylim() == pytest.approx((0, 1.02)) and ax.get_xlabel() == "iteration"
    _assert_png_pdf(tmp_path / "fbc.png", tmp_path / "fbc.pdf")
    ax = plot.fbc_curves(its, bands[:, :2])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["band 1", "band 2"]


def test_kspace_coverage_mask_and_points(tmp_path):
    mask = np.zeros((8, 8), dtype=bool)
    mask[:, ::4] = True  # 25 % sampled
    fig = plot.kspace_coverage(mask, path=tmp_path / "mask.pdf")
    (ax,) = fig.axes
    assert "25.0 % sampled" in ax.get_title()
    (im,) = ax.get_images()
    np.testing.assert_array_equal(np.asarray(im.get_array()), mask)
    assert im.get_extent() == [-4.5, 3.5, -4.5, 3.5]  # DC (index 4 after fftshift) at the origin
    assert (tmp_path / "mask.pdf").read_bytes()[:5] == PDF

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(200, 2)) * 10.0
    fig = plot.kspace_coverage(pts, radius=25.0, units="rad/m")
    (ax,) = fig.axes
    (coll,) = ax.collections
    np.testing.assert_allclose(coll.get_offsets(), pts)
    assert ax.get_xlabel() == "K_x [rad/m]"
    (circle,) = ax.get_lines()
    r = np.hypot(circle.get_xdata(), circle.get_ydata())
    np.testing.assert_allclose(r, 25.0)


# --------------------------------------------------------------------------- save
def test_save_formats_closes_the_figure_and_creates_directories(tmp_path):
    fig = plot.compare({"a": _image()})
    written = plot.save(fig, tmp_path / "deep" / "dir" / "both")
    assert written == [tmp_path / "deep" / "dir" / "both.png", tmp_path / "deep" / "dir" / "both.pdf"]
    _assert_png_pdf(*written)
    assert not plt.fignum_exists(fig.number)
    fig = plot.compare({"a": _image()})
    assert plot.save(fig, tmp_path / "only.pdf") == [tmp_path / "only.pdf"]
    assert (tmp_path / "only.pdf").read_bytes()[:5] == PDF and not (tmp_path / "only.png").exists()


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: plot.image_db(np.ones(8)), r"image_db: expected a 2-D image, got shape \(8,\)"),
        (lambda: plot.image_db(np.ones((2, 8, 8))), r"2-D image, got shape \(2, 8, 8\)"),
        (lambda: plot.compare({}), "compare: no images given"),
        (lambda: plot.compare({"a": np.ones((8, 8)), "b": np.ones((3, 8, 8))}), "2-D image"),
        (lambda: plot.curves(xr.Dataset({"a": ("t", np.ones(3))})), "'iteration' dimension"),
        (lambda: plot.fbc_curves([0, 1, 2], np.ones((2, 3))), r"bands must have shape .* got \(2, 3\)"),
        (lambda: plot.fbc_curves([0, 1], np.ones(2)), r"bands must have shape"),
        (lambda: plot.kspace_coverage(np.ones((4, 3))), r"boolean mask \(H, W\) or points \(N, 2\)"),
        (lambda: plot.kspace_coverage(np.ones((4, 3, 2), dtype=bool)), r"got \(4, 3, 2\) bool"),
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_save_keeps_dots_in_names_and_appends_formats(tmp_path):
    import matplotlib.pyplot as plt

    from rfprior.plot import save

    files = save(plt.figure(), tmp_path / "lr_0.01")
    assert sorted(f.name for f in files) == ["lr_0.01.pdf", "lr_0.01.png"]
    assert all(f.stat().st_size > 0 for f in files)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": np.linspace(0, 1, 7), "z": np.linspace(0, 1, 8)}, "x must be a vector of the image width 8"),
        ({"x": np.linspace(0, 1, 8)}, "give both coordinate vectors"),
        ({"x": np.zeros((8, 2)), "z": np.linspace(0, 1, 8)}, "x must be a vector"),
    ],
)
def test_image_db_checks_coordinates(kwargs, match):
    from rfprior.plot import image_db

    with pytest.raises(ValueError, match=match):
        image_db(np.ones((8, 8)), **kwargs)


def test_compare_and_curves_refuse_wrong_containers():
    import xarray as xr

    from rfprior.plot import compare, curves

    with pytest.raises(TypeError, match="mapping"):
        compare([np.ones((4, 4))])
    hist = xr.Dataset({"misfit": ("iteration", np.arange(1.0, 5.0))}, coords={"iteration": np.arange(4)})
    with pytest.raises(ValueError, match=r"variables \['psnr'\] are not in the history"):
        curves(hist, variables=["psnr"])
    with pytest.raises(ValueError, match=r"xarray\.Dataset"):
        curves({"misfit": [1, 2]})
