"""The :class:`Modality` contract: everything rfprior asks about one forward model, in one object.

A modality owns, for its forward model:

* the **file schema** — its geometry fields and units (:attr:`Modality.fields`), the checks of
  each field (:meth:`~Modality.check_geometry`), of the measurements
  (:meth:`~Modality.check_measurements`), the image shape (:meth:`~Modality.image_shape`), and
  how a field is stored in HDF5 (:meth:`~Modality.encode_field`);
* the **xarray layout** of a loaded file (:meth:`~Modality.coords`,
  :meth:`~Modality.geometry_from_dataset`) and its summary lines (:meth:`~Modality.describe`);
* the **operator** (:meth:`~Modality.build_operator`; a file with missing entries gets it
  restricted to the measured ones by the generic reader);
* the **noise σ estimator** (:meth:`~Modality.noise_estimators`, run by
  :meth:`~Modality.estimate_sigma` with the generic fall-backs);
* the **direct image** and the ℓ1 basis of the fair classical baselines
  (:meth:`~Modality.direct_image`, :attr:`~Modality.l1_basis`);
* **frame sequences** (:class:`~rfprior.modalities.FrameHooks`, generic: every frame is
  checked by the single-frame methods above; per-frame sampling fields in ``frame_fields``);
* **simulation**: the default geometry and its knobs (:meth:`~Modality.default_geometry`,
  :attr:`~Modality.geometry_parameters`), the default scene (:meth:`~Modality.default_scene`)
  and a moving scene for frame sequences (:meth:`~Modality.moving_scene`);
* the **fit defaults** (:attr:`~Modality.defaults`: prior, penalty, budget, step) and the stopping
  rules it does not offer (:attr:`~Modality.unsuitable_rules`).

Adding a forward model is one module that subclasses :class:`Modality` plus one
:func:`rfprior.modalities.register` call (docs/design.md, "A new forward model").
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch
import xarray as xr

from operators import LinearOperator, RestrictedOperator, backproject

from ..files.checks import Checker
from ..noise import complete_rows, sigma_mad, sigma_range_complement
from .frames import FrameHooks

__all__ = ["Modality", "ModalityDefaults", "NoiseEstimator", "format_si", "forward_model"]

#: ``(name, estimator)``: ``estimator(op, y) -> σ`` per real/imaginary component; raises ``ValueError``
#: when it cannot run on these data.
NoiseEstimator = tuple[str, Callable[[LinearOperator, torch.Tensor], float]]


@dataclass(frozen=True)
class ModalityDefaults:
    """The fit defaults that depend on the forward model.

    prior : the prior used when none is given (a name or a size preset of :func:`rfprior.make_prior`)
    penalty : the image penalty added by default (``"tv"`` or ``None``)
    penalty_factor : ``penalty_weight="auto"``: the fraction of the TV-discrepancy λ
    iterations : the iteration budget (``None``: :attr:`rfprior.defaults.FitDefaults.iterations`)
    lr : the Adam step size (``None``: :attr:`rfprior.defaults.FitDefaults.lr`)
    sequence_temporal_weight : the weight w of temporal differences in a frame sequence's spatio-temporal
    TV penalty (0: per-frame TV; :func:`rfprior.fit.sequence.reconstruct_sequence`)
    constraint : the image constraint ``reconstruct(constraint="auto")`` applies (names of
    :data:`rfprior.fit.nonlinear.CONSTRAINTS`; empty: none)
    penalty_search_iters : PDHG steps per λ of the automatic penalty weight's TV search
    (:func:`rfprior.penalty.resolve_penalty`; each warm-started from the previous λ's solution)
    refine_iterations : a nonlinear model's pixel refinement after frequency hopping
    (:func:`rfprior.fit.nonlinear.refine_on_pixels`; 0: none)
    calibrate : fit one complex gain per frequency with the image (:mod:`operators.calibration`)
    """

    prior: str = "deep_decoder"
    penalty: str | None = None
    penalty_factor: float = 0.5
    iterations: int | None = None
    lr: float | None = None
    sequence_temporal_weight: float = 0.0
    constraint: tuple[str, ...] = ()
    penalty_search_iters: int = 100
    refine_iterations: int = 0
    calibrate: bool = False


def format_si(value: float, unit: str) -> str:
    """``value`` with an SI prefix, e.g. ``format_si(7.7e10, "Hz") == "77 GHz"`` (for summaries)."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


def forward_model(op: Any) -> Any:
    """The operator whose type names the forward model: a restricted operator's parent (measured subsets)."""
    while isinstance(op, RestrictedOperator):
        op = op.op
    return op


class Modality(FrameHooks):
    """One forward model: its file schema, operator, noise estimator, baselines, simulation and defaults.

    Subclasses set the class attributes and implement the methods marked *required*; the
    others have generic defaults. Instances are stateless; the registry holds one per name.
    Frame sequences come for free (:class:`~rfprior.modalities.FrameHooks`: each frame is
    checked by the single-frame methods); a modality whose sampling may differ per frame lists
    those geometry fields in :attr:`~rfprior.modalities.FrameHooks.frame_fields`.
    """

    #: the file's ``modality`` attribute and the CLI's name (required)
    name: ClassVar[str] = ""
    #: a name for people (messages), e.g. ``"partial-Fourier"``; default :attr:`name`
    label: ClassVar[str] = ""
    #: the operator class; :func:`rfprior.modalities.find` maps an operator to its modality by it (required)
    operator_type: ClassVar[type] = LinearOperator
    #: axis names of ``/measurements``, in the operator's ``out_shape`` order (required)
    measurement_dims: ClassVar[tuple[str, ...]] = ()
    #: axis names of the image ``(rows, columns)``
    image_dims: ClassVar[tuple[str, str]] = ("y", "x")
    #: geometry fields written to files, with their units (required)
    fields: ClassVar[Mapping[str, str]] = MappingProxyType({})
    #: further geometry fields read when present (not written by default)
    optional_fields: ClassVar[tuple[str, ...]] = ()
    #: the geometry fields that set the image size (named in errors)
    image_size_fields: ClassVar[str] = "/geometry"
    #: files may mark unmeasured entries (NaN in ``/measurements`` or a boolean ``/valid``)
    missing_ok: ClassVar[bool] = False
    #: fit defaults (prior, penalty, budget, step)
    defaults: ClassVar[ModalityDefaults] = ModalityDefaults()
    #: stopping rules (by name) not offered for this forward model, with the reason
    unsuitable_rules: ClassVar[Mapping[str, str]] = MappingProxyType({})
    #: basis of the ℓ1 baseline: ``"pixels"`` (point scatterers) or ``"haar"``
    l1_basis: ClassVar[str] = "haar"
    #: name of the direct (classical) image
    direct_image_name: ClassVar[str] = "backprojection"
    #: the knobs :meth:`default_geometry` accepts besides the geometry fields, with their defaults
    geometry_parameters: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    #: scene kinds :meth:`default_scene` accepts (the first is the default)
    scene_kinds: ClassVar[tuple[str, ...]] = ()
    #: ``--physics`` name → the modality that reads this one's records with that physics (e.g. a
    #: calibrated 2-D radar file as full-wave scattering); empty: one physics only
    physics: ClassVar[Mapping[str, str]] = MappingProxyType({})
    #: when the forward model's own noise estimators fail, try the range complement before MAD
    range_complement_fallback: ClassVar[bool] = True

    # -- the file schema ------------------------------------------------------------------------

    def check_geometry(self, chk: Checker, geometry: dict[str, Any]) -> dict[str, Any]:
        """*Required.* The validated geometry (clean numpy values, SI units) or ``chk.fail(...)``."""
        raise NotImplementedError

    def measurement_shape(self, geometry: dict[str, Any]) -> tuple[int, ...]:
        """*Required* unless :meth:`check_measurements` is overridden: ``/measurements``' shape."""
        raise NotImplementedError

    def measurement_ranks(self) -> tuple[int, ...]:
        """Numbers of axes ``/measurements`` may have in a file without a ``dims`` attribute."""
        return (len(self.measurement_dims),)

    def check_measurements(
        self, chk: Checker, arr: np.ndarray, dims: tuple[str, ...] | None, geometry: dict[str, Any]
    ) -> np.ndarray:
        """``/measurements`` in canonical axis order, checked against the geometry."""
        arr = chk.axes("/measurements", arr, dims, self.measurement_dims)
        shape = self.measurement_shape(geometry)
        chk.shape("/measurements", arr, shape, "(" + ", ".join(self.measurement_dims) + ")")
        return arr

    def complete_geometry(self, geometry: dict[str, Any], truth_shape: tuple[int, ...] | None) -> None:
        """Fill geometry fields that follow from the data (in place); nothing by default."""

    def image_shape(self, geometry: dict[str, Any]) -> tuple[int, int]:
        """*Required.* The image shape ``(H, W)`` of a validated geometry."""
        raise NotImplementedError

    def encode_field(self, key: str, value: Any) -> np.ndarray:
        """A validated geometry field as the array stored in ``/geometry/<key>``."""
        arr = np.asarray(value)
        if arr.dtype == bool:
            return arr
        if key == "shape":
            return np.asarray(value, dtype=np.int64)
        return np.asarray(value, dtype=np.float64)

    # -- the xarray layout -----------------------------------------------------------------------

    def coords(self, geometry: dict[str, Any], measurements: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
        """*Required.* ``(coords, data variables)`` of the geometry in the loaded Dataset."""
        raise NotImplementedError

    def geometry_from_dataset(self, ds: xr.Dataset, var: Callable[[str], np.ndarray]) -> dict[str, Any]:
        """*Required.* The raw geometry fields of a Dataset laid out by :meth:`coords` (validated after)."""
        raise NotImplementedError

    def measurements_from_dataset(
        self, ds: xr.Dataset, geometry: dict[str, Any], chk: Checker
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(measurements, valid or None)`` in canonical axis order, from a loaded Dataset."""
        dims = self.measurement_dims
        y = ds["measurements"]
        if set(y.dims) != set(dims):
            raise chk.fail("measurements", f"dims {y.dims}", f"dims {dims}")
        valid = None
        if "valid" in ds.variables:
            v = ds["valid"]
            if set(v.dims) != set(dims):
                raise chk.fail("valid", f"dims {v.dims}", f"dims {dims}")
            valid = v.transpose(*dims).values
        return y.transpose(*dims).values, valid

    def describe(self, ds: xr.Dataset) -> list[str]:
        """Summary lines of the geometry for ``rfprior inspect`` (``"  label   text"``)."""
        return []

    # -- physics ---------------------------------------------------------------------------------

    def build_operator(
        self, geometry: dict[str, Any], *, dtype: torch.dtype = torch.complex64, device: Any = None
    ) -> LinearOperator:
        """*Required.* The forward operator of a validated geometry."""
        raise NotImplementedError

    def noise_estimators(self, restricted: bool) -> list[NoiseEstimator]:
        """This forward model's own σ estimators, in order of preference.

        ``restricted``: the data are a subset of the measurements (missing entries, a hold-out
        split); the estimators then run on the complete last-axis rows of the subset.
        """
        return []

    def estimate_sigma(self, op: LinearOperator, y: torch.Tensor) -> tuple[float, str]:
        """σ per real/imaginary component from the data alone, and the estimator's name.

        The forward model's own estimators first (:meth:`noise_estimators`); a restricted
        operator runs them on the complete rows it holds. When none can run: the range
        complement (:func:`rfprior.noise.sigma_range_complement`, where
        :attr:`range_complement_fallback`), else the generic MAD of second differences with a
        ``UserWarning`` (it counts signal as noise on structured data).
        """
        restricted = isinstance(op, RestrictedOperator)
        base = op.op if restricted else op
        specific = self.noise_estimators(restricted)
        reasons = []
        for name, fn in specific:
            try:
                if not restricted:
                    return fn(op, y), name
                rows, n_rows = complete_rows(op, y)
                if n_rows == 0:
                    raise ValueError(f"{name}: the measured subset holds no complete {base.dims[-1]} row")
                return fn(base, rows), name
            except ValueError as e:
                reasons.append(str(e))
        if specific and self.range_complement_fallback:
            try:
                return sigma_range_complement(op, y), "range_complement"
            except ValueError as e:
                reasons.append(str(e))
        if reasons:
            warnings.warn(
                f"estimate_sigma: {type(base).__name__} data, but {'; '.join(reasons)} — falling back to the "
                "generic MAD of second differences, which counts signal as noise on such data (σ̂ may be far too "
                "high and the discrepancy rule stop far too early); pass sigma= if the noise level is known",
                UserWarning,
                stacklevel=3,
            )
        return sigma_mad(y), "mad_second_differences"

    def direct_image(self, op: LinearOperator, y: torch.Tensor) -> torch.Tensor:
        """The classical direct image ``(H, W)``; default the backprojection ``Aᴴy / diag(AᴴA)``."""
        return backproject(op, y, normalize=True)

    # -- simulation ------------------------------------------------------------------------------

    def make_geometry(self, size: int, seed: int, knobs: dict[str, Any]) -> dict[str, Any]:
        """*Required for simulation.* The default geometry for a ``size × size`` image from the knobs."""
        raise NotImplementedError(f"{self.name}: no default geometry (simulation is not supported)")

    def default_geometry(self, size: int = 64, *, seed: int = 0, **params: Any) -> dict[str, Any]:
        """A sensible acquisition geometry for a ``size × size`` image.

        Keyword arguments are either knobs (:attr:`geometry_parameters`) or geometry fields
        (:attr:`fields`, :attr:`optional_fields`), which replace the computed ones.
        """
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 4:
            raise ValueError(f"size must be an int ≥ 4, got {size!r}")
        knobs = dict(self.geometry_parameters)
        names = (*self.fields, *self.optional_fields)
        given = {k: params.pop(k) for k in list(params) if k in names and k not in knobs}
        unknown = set(params) - set(knobs)
        if unknown:
            allowed = sorted(set(knobs) | set(names))
            raise TypeError(
                f"default_geometry({self.name!r}): unknown parameter(s) {sorted(unknown)}; allowed: {allowed}"
            )
        knobs.update(params)
        geometry = self.make_geometry(int(size), seed, knobs)
        geometry.update(given)
        return geometry

    def default_scene(self, geometry: dict[str, Any], seed: int = 0, kind: str | None = None) -> torch.Tensor:
        """*Required for simulation.* The default truth on ``geometry`` (complex128 ``(H, W)``)."""
        raise NotImplementedError(f"{self.name}: no default scene (simulation is not supported)")

    def moving_scene(self, geometry: dict[str, Any], t: float, seed: int = 0, *, speed: float = 1.0) -> torch.Tensor:
        """Frame ``t`` of a scene with a moving target (complex128 ``(H, W)``), for sequences."""
        raise ValueError(f"{self.name}: no moving scene (frame sequences are not simulated for this forward model)")

    @property
    def title(self) -> str:
        """:attr:`label`, else :attr:`name`."""
        return self.label or self.name

    def __repr__(self) -> str:
        return f"<Modality {self.name!r}: {self.operator_type.__name__}>"
