"""The measurement format's generic rules: :class:`Record` and :func:`validate`.

:func:`validate` is shared by reading and writing, so a file written by rfprior always reads
back; it returns a clean :class:`Record`. Everything that depends on the forward model (its
geometry fields, measurement axes, image axes) is asked of its
:class:`~rfprior.modalities.Modality` (:func:`rfprior.modalities.get`).

A *sequence* (``Record.frames = F``) has measurements with a leading ``frame`` axis, detected by a
``frame`` name in ``dims`` or, without ``dims``, by one axis more than one frame's measurements
(:meth:`~rfprior.modalities.FrameHooks.is_sequence`); each frame is checked by the
modality's single-frame checks (:mod:`rfprior.modalities.frames`). ``geometry["times"]`` (s, one per
frame, strictly increasing) is optional and only for sequences.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .. import modalities
from ..files.checks import Checker, as_numpy
from ..files.hdf5 import to_complex
from ..modalities import Modality
from ..modalities.frames import FRAME, TIMES

__all__ = ["Record", "check_modality", "validate", "with_physics"]


@dataclass
class Record:
    """A validated measurement set: canonical axis order, clean numpy geometry."""

    modality: str
    measurements: np.ndarray
    geometry: dict[str, Any]
    truth: np.ndarray | None = None
    #: boolean mask of the measured entries (shape of ``measurements``); ``None`` = all measured
    valid: np.ndarray | None = None
    noise_sigma: float | None = None
    snr_db: float | None = None
    description: str = ""
    #: further root attributes of the file (e.g. what an importer recorded)
    attrs: dict[str, Any] = field(default_factory=dict)

    #: number of frames of a sequence (``measurements`` ``(F, …)``, ``valid`` ``(F, …)`` or ``None``, ``truth``
    #: ``(F, H, W)``, optional ``geometry["times"]`` in s); ``None``: a single frame
    frames: int | None = None

    @property
    def image_shape(self) -> tuple[int, int]:
        return modalities.get(self.modality).image_shape(self.geometry)

    @property
    def dims(self) -> tuple[str, ...]:
        """The axis names of ``measurements`` (and ``valid``)."""
        m = modalities.get(self.modality)
        return m.measurement_dims if self.frames is None else m.sequence_dims(self.geometry)


def check_modality(chk: Checker, modality: Any) -> Modality:
    """The registered :class:`~rfprior.modalities.Modality` named ``modality``, else a ``FormatError``."""
    if not isinstance(modality, str) or modality not in modalities.names():
        raise chk.fail("@modality", repr(modality), f"one of {sorted(modalities.names())}")
    return modalities.get(modality)


def _valid_mask(
    chk: Checker,
    m: Modality,
    arr: np.ndarray,
    valid: Any,
    dims: tuple[str, ...] | None,
    canonical: tuple[str, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Measured entries: NaN in ``arr`` and/or the optional ``/valid`` (same axes as ``/measurements``).

    Returns ``(arr with NaN + NaN·j at unmeasured entries, mask or None when all are measured)``.
    """
    nan = np.isnan(arr.real) | np.isnan(arr.imag)
    if not m.missing_ok:
        if valid is not None:
            expected = f"no /valid ({m.name} files mark no missing entries)"
            raise chk.fail("/valid", "a mask of measured entries", expected)
        return arr, None
    if valid is None:
        mask = ~nan
    else:
        v = as_numpy(valid)
        if v.dtype.kind in "iu" and np.isin(np.unique(v), (0, 1)).all():
            v = v.astype(bool)
        if v.dtype.kind != "b":
            raise chk.fail("/valid", f"data of type {v.dtype}", "a boolean mask (true/false or 0/1) of measured ones")
        if dims is not None and v.ndim == len(dims):
            v = chk.axes("/valid", v, dims, canonical or m.measurement_dims)
        chk.shape("/valid", v, arr.shape, "the shape of /measurements")
        both = v & nan
        if both.any():
            i = np.unravel_index(int(np.flatnonzero(both)[0]), arr.shape)
            raise chk.fail(
                "/measurements", f"NaN at index {i}, an entry /valid marks as measured", "finite measured entries"
            )
        mask = v
    if not mask.any():
        raise chk.fail("/valid" if valid is not None else "/measurements", "no measured entry", "at least one")
    arr = arr.copy()
    arr[~mask] = complex(np.nan, np.nan)
    chk.finite("/measurements", arr[mask])
    return arr, None if mask.all() else mask


def validate(
    source: str | os.PathLike[str],
    modality: Any,
    measurements: Any,
    geometry: dict[str, Any],
    *,
    dims: tuple[str, ...] | None = None,
    truth: Any = None,
    truth_dims: tuple[str, ...] | None = None,
    valid: Any = None,
    noise_sigma: Any = None,
    snr_db: Any = None,
    description: Any = "",
) -> Record:
    """Check every field; returns a clean :class:`Record` or raises :class:`~rfprior.io.FormatError`.

    ``measurements`` with a frame axis (a ``frame`` name in ``dims``, or one axis more than one
    frame's) make a sequence record (:attr:`Record.frames`); ``truth`` is then ``(frame, H, W)``,
    ``valid`` has the measurements' axes and ``geometry`` may hold ``"times"`` (s).
    """
    chk = Checker(source)
    m = check_modality(chk, modality)
    if not isinstance(geometry, dict):
        raise chk.fail("/geometry", type(geometry).__name__, "a group (dict) of geometry fields")
    times = geometry.get(TIMES)
    geometry = {k: v for k, v in geometry.items() if k != TIMES}
    ranks = m.measurement_ranks()
    ranks = (*ranks, *(r + 1 for r in ranks))  # one frame, or a sequence of frames
    arr, dims = to_complex(as_numpy(measurements), dims, ranks, chk.source, "/measurements")
    if m.is_sequence(arr, dims, geometry):
        rec = _sequence(chk, m, arr, dims, geometry, times, truth, truth_dims, valid)
    else:
        if times is not None:
            raise chk.fail(
                f"/geometry/{TIMES}",
                f"frame times (shape {np.shape(as_numpy(times))})",
                "no times in a single-frame file (a sequence's /measurements has a 'frame' axis)",
            )
        rec = _single(chk, m, arr, dims, geometry, truth, truth_dims, valid)
    if noise_sigma is not None:
        rec.noise_sigma = chk.scalar("@noise_sigma", noise_sigma, "noise σ per real/imag component")
        if rec.noise_sigma < 0:
            raise chk.fail("@noise_sigma", f"{rec.noise_sigma:g}", "σ ≥ 0 (per real/imaginary component)")
    if snr_db is not None:
        rec.snr_db = chk.scalar("@snr_db", snr_db, "SNR in dB")
    if not isinstance(description, str):
        raise chk.fail("@description", type(description).__name__, "a string")
    rec.description = description
    return rec


def _single(
    chk: Checker, m: Modality, arr: np.ndarray, dims: Any, geometry: dict, truth: Any, truth_dims: Any, valid: Any
) -> Record:
    geom = m.check_geometry(chk, geometry)
    arr = m.check_measurements(chk, arr, dims, geom)
    arr, mask = _valid_mask(chk, m, arr, valid, dims)
    if mask is None:
        arr = chk.finite("/measurements", arr)
    t = None
    if truth is not None:
        t, tdims = to_complex(as_numpy(truth), truth_dims, (2,), chk.source, "/truth", allow_real=True)
        t = chk.axes("/truth", t, tdims, m.image_dims)
    m.complete_geometry(geom, None if t is None else t.shape)
    rec = Record(m.name, np.ascontiguousarray(arr), geom, valid=mask)
    chk.image_size(m.image_size_fields, rec.image_shape)
    if t is not None:
        chk.shape("/truth", t, rec.image_shape, f"{m.image_dims} image")
        rec.truth = np.ascontiguousarray(chk.finite("/truth", t))
    return rec


def _sequence(
    chk: Checker,
    m: Modality,
    arr: np.ndarray,
    dims: tuple[str, ...] | None,
    geometry: dict,
    times: Any,
    truth: Any,
    truth_dims: Any,
    valid: Any,
) -> Record:
    """A sequence: the shared (or per-frame) geometry, then each frame by the modality's single-frame checks."""
    if dims is not None and len(dims) != arr.ndim:
        raise chk.fail("/measurements@dims", f"{list(dims)} for data of shape {arr.shape}", "one name per axis")
    frames = arr.shape[0 if dims is None else dims.index(FRAME)]
    if frames == 0:
        raise chk.fail("/measurements", f"0 frames (shape {arr.shape})", "at least one frame")
    geom, per_frame = m.check_frame_geometry(chk, geometry, frames)
    arr = m.check_frames(chk, arr, dims, geom, per_frame)
    arr, mask = _valid_mask(chk, m, arr, valid, dims, m.sequence_dims(geom))
    if mask is None:
        arr = chk.finite("/measurements", arr)
    else:
        empty = [f for f in range(frames) if not mask[f].any()]
        if empty:
            field = "/valid" if valid is not None else "/measurements"
            raise chk.fail(field, f"no measured entry in frame {empty[0]}", "at least one measured entry per frame")
    t = None
    if truth is not None:
        t, tdims = to_complex(as_numpy(truth), truth_dims, (3,), chk.source, "/truth", allow_real=True)
        t = chk.axes("/truth", t, tdims, (FRAME, *m.image_dims))
        if t.shape[0] != frames:
            expected = f"{frames} frames (the frame count of /measurements)"
            raise chk.fail("/truth", f"{t.shape[0]} frames (shape {t.shape})", expected)
    distinct = {id(g): g for g in (geom, *per_frame)}
    for g in distinct.values():
        m.complete_geometry(g, None if t is None else t.shape[1:])
    if per_frame[0] is not geom:  # per-frame fields: the completed shared fields come from the frames
        geom.update({k: v for k, v in per_frame[0].items() if k not in m.per_frame_fields(geom)})
    if times is not None:
        tt = chk.vector(f"/geometry/{TIMES}", times, "frame times in s", increasing=True)
        if tt.size != frames:
            raise chk.fail(
                f"/geometry/{TIMES}", f"{tt.size} times", f"{frames} (one per frame of /measurements), increasing, in s"
            )
        geom[TIMES] = tt
    rec = Record(m.name, np.ascontiguousarray(arr), geom, valid=mask, frames=frames)
    chk.image_size(m.image_size_fields, rec.image_shape)
    if t is not None:
        chk.shape("/truth", t, (frames, *rec.image_shape), f"{(FRAME, *m.image_dims)} images")
        rec.truth = np.ascontiguousarray(chk.finite("/truth", t))
    return rec


def with_physics(record: Record, physics: str, source: str | os.PathLike[str] | None = None) -> Record:
    """``record`` read with another physics (``"born"`` or ``"full-wave"``, :data:`rfprior.modalities.PHYSICS`).

    The measurements stay; the geometry is checked again by the target modality (e.g. full-wave
    needs a 2-D grid of square pixels and ``spreading = "hankel"``). Raises ``ValueError`` when the
    forward model does not offer that physics and :class:`~rfprior.io.FormatError` when the file
    lacks what it needs.
    """
    target = modalities.physics_target(record.modality, physics)
    if target == record.modality:
        return record
    if record.frames is not None:
        raise ValueError(f"physics {physics!r}: not for a frame sequence")
    chk = Checker("<record>" if source is None else source)
    geometry = modalities.get(target).check_geometry(chk, dict(record.geometry))
    return replace(record, modality=target, geometry=geometry)
