"""Frame sequences, the generic part of a :class:`~rfprior.modalities.Modality`: :class:`FrameHooks`.

A sequence file's ``/measurements`` carries a ``frame`` axis (conventionally the first) in front of
one frame's axes. The geometry is shared by all frames, except the fields a modality lists in
:attr:`FrameHooks.frame_fields` (its *sampling*, e.g. partial Fourier's ``mask``), which may carry a
leading frame axis (one value per frame). Every check of one frame is the modality's single-frame
check (:meth:`~rfprior.modalities.Modality.check_geometry`,
:meth:`~rfprior.modalities.Modality.check_measurements`), run per frame through a
:class:`FrameChecker` that names the frame in its messages; so every modality reads, writes and
simulates sequences without code of its own. A modality overrides these hooks only where one
frame's layout differs from the stacked single-frame one (partial Fourier with per-frame masks).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from ..files.checks import Checker, as_numpy
from ..files.errors import FormatError

__all__ = ["FRAME", "TIMES", "FrameChecker", "FrameHooks"]

#: the name of the frame axis (``/measurements@dims``, the loaded Dataset, result files)
FRAME = "frame"
#: the optional geometry field (and Dataset coordinate) with the frame times in s
TIMES = "times"


class FrameChecker(Checker):
    """A :class:`~rfprior.files.checks.Checker` for frame ``frame`` of a sequence: its messages say which frame."""

    def __init__(self, parent: Checker, frame: int) -> None:
        super().__init__(parent.source)
        self.frame = int(frame)

    def fail(self, field: str, found: str, expected: str) -> FormatError:
        return FormatError(self.source, field, f"{found} in frame {self.frame}", expected)


def _ndim(value: Any) -> int:
    try:
        return as_numpy(value).ndim
    except (TypeError, ValueError):  # pragma: no cover - something numpy cannot take; the field check says so
        return -1


class FrameHooks:
    """The sequence hooks every :class:`~rfprior.modalities.Modality` has (a mixin of it)."""

    #: geometry fields that may differ per frame (a leading frame axis), with the number of axes of one
    #: frame's value, e.g. partial Fourier ``{"mask": 2}``; every other field is shared by all frames
    frame_fields: ClassVar[Mapping[str, int]] = MappingProxyType({})

    def is_sequence(self, arr: np.ndarray, dims: tuple[str, ...] | None, geometry: dict[str, Any]) -> bool:
        """Whether complex measurements ``arr`` (axes named ``dims``, or ``None``) hold a frame axis.

        With ``dims``: a ``frame`` name. Without: one axis more than one frame's measurements have
        (:meth:`~rfprior.modalities.Modality.measurement_ranks`) and not a single frame's rank.
        """
        if dims is not None:
            return FRAME in dims
        ranks = self.measurement_ranks()
        return arr.ndim not in ranks and arr.ndim - 1 in ranks

    def per_frame_fields(self, geometry: dict[str, Any]) -> tuple[str, ...]:
        """The :attr:`frame_fields` that ``geometry`` gives per frame (one axis more than one frame's value)."""
        return tuple(k for k, nd in self.frame_fields.items() if geometry.get(k) is not None
                     and _ndim(geometry[k]) == nd + 1)  # fmt: skip

    def check_frame_geometry(
        self, chk: Checker, geometry: dict[str, Any], frames: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """``(the validated geometry as stored, one validated geometry per frame)``.

        A shared geometry is checked once and is the same dict for every frame; a per-frame field
        (:meth:`per_frame_fields`) is split, each frame checked by
        :meth:`~rfprior.modalities.Modality.check_geometry`, and stored stacked ``(F, …)``.
        """
        per = self.per_frame_fields(geometry)
        if not per:
            g = self.check_geometry(chk, geometry)
            return g, [g] * frames
        for key in per:
            n = as_numpy(geometry[key]).shape[0]
            if n != frames:
                raise chk.fail(
                    f"/geometry/{key}",
                    f"{n} per-frame values (shape {as_numpy(geometry[key]).shape})",
                    f"{frames} (the frame count of /measurements), or one value shared by all frames",
                )
        geoms = [
            self.check_geometry(FrameChecker(chk, f), {**geometry, **{k: as_numpy(geometry[k])[f] for k in per}})
            for f in range(frames)
        ]
        return {**geoms[0], **{k: np.stack([np.asarray(g[k]) for g in geoms]) for k in per}}, geoms

    def frame_geometries(self, geometry: dict[str, Any], frames: int) -> list[dict[str, Any]]:
        """One geometry per frame of a validated sequence geometry; frames sharing it share one dict."""
        per = self.per_frame_fields(geometry)
        if not per:
            return [geometry] * frames
        return [{**geometry, **{k: np.asarray(geometry[k])[f] for k in per}} for f in range(frames)]

    def sequence_dims(self, geometry: dict[str, Any]) -> tuple[str, ...]:
        """The axes of a sequence's ``/measurements`` in canonical order: ``("frame", *measurement_dims)``."""
        return (FRAME, *self.measurement_dims)  # type: ignore[attr-defined]

    def check_frames(
        self,
        chk: Checker,
        arr: np.ndarray,
        dims: tuple[str, ...] | None,
        geometry: dict[str, Any],
        frame_geometries: list[dict[str, Any]],
    ) -> np.ndarray:
        """Sequence measurements in canonical order (:meth:`sequence_dims`), each frame checked by
        :meth:`~rfprior.modalities.Modality.check_measurements` against its geometry."""
        inner = None
        if dims is not None:
            arr = chk.axes("/measurements", arr, dims, self.sequence_dims(geometry))
            inner = self.measurement_dims
        out = [
            self.check_measurements(FrameChecker(chk, f), arr[f], inner, g) for f, g in enumerate(frame_geometries)
        ]
        return np.stack(out)

    def frame_values(self, values: np.ndarray, geometry: dict[str, Any]) -> np.ndarray:
        """One stored frame of validated sequence measurements as the operator's ``out_shape`` (as is by default)."""
        return values

    def stack_frames(self, values: list[np.ndarray], geometry: dict[str, Any]) -> tuple[np.ndarray, tuple[str, ...]]:
        """``(stored array, its dims)`` of per-frame measurements of shape ``op.out_shape`` (inverse of
        :meth:`frame_values`)."""
        return np.stack([np.asarray(v) for v in values]), self.sequence_dims(geometry)

    def sequence_coords(
        self, geometry: dict[str, Any], measurements: np.ndarray
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(coords, data variables)`` of a sequence's geometry in the loaded Dataset (the shared geometry's)."""
        return self.coords(geometry, measurements[0])

    def sequence_from_dataset(
        self, ds: xr.Dataset, geometry: dict[str, Any], chk: Checker
    ) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
        """``(measurements, valid or None, their dims)`` of a sequence Dataset, in canonical axis order."""
        dims = self.sequence_dims(geometry)
        out = []
        for name in ("measurements", "valid"):
            if name not in ds.variables:
                out.append(None)
                continue
            v = ds[name]
            if set(v.dims) != set(dims):
                raise chk.fail(name, f"dims {v.dims}", f"dims {dims}")
            out.append(v.transpose(*dims).values)
        return out[0], out[1], dims

    def sequence_geometry(
        self, size: int, *, frames: int, seed: int = 0, per_frame: bool = False, **params: Any
    ) -> dict[str, Any]:
        """The default geometry of a simulated sequence (:meth:`~rfprior.modalities.Modality.default_geometry`).

        ``per_frame``: a different sampling per frame; only for a modality that overrides this hook
        (partial Fourier: a seeded mask per frame).
        """
        if per_frame:
            raise ValueError(
                f"{self.name}: the sampling is shared by all frames (masks='per_frame' needs a forward model "
                "with per-frame sampling, e.g. partial_fourier); use masks='shared'"
            )
        return self.default_geometry(size, seed=seed, **params)
