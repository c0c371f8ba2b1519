"""One measurement as one value (:class:`Problem`), and the one file-to-result job (:func:`reconstruct_file`).

The data path of every entry point — ``rfprior reconstruct``, ``rfprior batch`` (each Dask
task), ``rfprior demo``::

    file.h5 ──read once, validate once──▶ Problem(op, y, valid, σ + its source, coords, truth)
            ──reconstruct(prior, loss, rules; σ passed on)──▶ Result ──save_result──▶ result.nc

σ is settled once per problem (given, the file's, or estimated by the forward model's
estimator) and handed, as a :class:`~rfprior.noise.NoiseLevel` that records its source, to
everything that needs it: the penalty weight, the discrepancy rule and the baselines.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from operators import LinearOperator

from . import modalities
from .fit import api as fit_api
from .fit.sequence import reconstruct_sequence, sequence_sigma
from .io import dataset_of, operator_from, operators_from, read_record, save_result
from .io.schema import Record, with_physics
from .losses import half_squared_norm
from .modalities import Modality
from .noise import NoiseLevel
from .result import Result
from .stopping import StoppingRule, default_rules

__all__ = ["Problem", "Reconstruction", "reconstruct_file"]

#: ``sigma="file"``: take the measurement file's ``noise_sigma`` attribute
FROM_FILE = "file"


@dataclass(frozen=True)
class Problem:
    """One measurement ``y = A x + n`` with everything a reconstruction needs.

    Attributes
    ----------
    op : LinearOperator
        The forward model (restricted to the measured entries when some are missing).
    y : torch.Tensor
        Complex measurements of shape ``op.out_shape`` (``op.dtype``, on ``op.device``).
    sigma : NoiseLevel or None
        Noise σ per real/imaginary component (data units) with its ``source``: ``"given"``,
        ``"file"`` or the estimator's name; ``None`` only when the estimate is 0 (noise-free data).
    modality : Modality or None
        The forward model's :class:`~rfprior.modalities.Modality` (``None``: an operator no modality claims).
    truth : torch.Tensor or None
        The true image ``(H, W)`` (a sequence: ``(F, H, W)``) when known (simulations).
    dataset : xarray.Dataset or None
        The measurement file as :func:`rfprior.io.load` returns it (image coordinates, attributes).
    source : str
        The file's path, or ``"<memory>"``.
    ops, ys : lists of F operators and measurement tensors, or None
        A frame sequence (a file with a ``frame`` axis): one operator and one measurement tensor per
        frame; ``op`` and ``y`` are then frame 0's. ``None`` for a single frame.
    times : list of float or None
        A sequence's acquisition times (s), when the file gives them.
    """

    op: LinearOperator
    y: torch.Tensor
    sigma: NoiseLevel | None
    modality: Modality | None = None
    truth: torch.Tensor | None = None
    dataset: xr.Dataset | None = None
    source: str = "<memory>"
    ops: list[LinearOperator] | None = None
    ys: list[torch.Tensor] | None = None
    times: list[float] | None = None

    @property
    def frames(self) -> int | None:
        """F for a frame sequence, ``None`` for a single frame."""
        return None if self.ops is None else len(self.ops)

    @classmethod
    def from_record(
        cls,
        record: Record,
        *,
        source: str | os.PathLike[str] | None = None,
        sigma: float | str | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.complex64,
        physics: str | None = None,
    ) -> Problem:
        """The problem of a validated record. ``sigma`` and ``physics`` as in :meth:`from_file`."""
        if physics is not None:
            record = with_physics(record, physics, source)
        sequence = getattr(record, "frames", None) is not None
        if sequence:
            ops, ys = operators_from(record, device=device, dtype=dtype)
            op, y = ops[0], ys[0]
        else:
            ops = ys = None
            op, y = operator_from(record, device=device, dtype=dtype)
        truth = None if record.truth is None else torch.as_tensor(record.truth)
        ds = dataset_of(record, source)
        if isinstance(sigma, str):
            if sigma != FROM_FILE:
                raise ValueError(f"sigma must be a number, None or {FROM_FILE!r}, got {sigma!r}")
            if record.noise_sigma is None or not record.noise_sigma > 0:
                raise ValueError(f"sigma={FROM_FILE!r}: {source or 'the record'} has no positive @noise_sigma")
            level: NoiseLevel | None = NoiseLevel(record.noise_sigma, FROM_FILE)
        elif sequence:
            level = _settle_sequence_sigma(ops, ys, sigma)
        else:
            level = _settle_sigma(op, y, sigma)
        times = record.geometry.get("times") if sequence else None
        return cls(
            op=op,
            y=y,
            sigma=level,
            modality=modalities.get(record.modality),
            truth=truth,
            dataset=ds,
            source="<memory>" if source is None else os.fspath(source),
            ops=ops,
            ys=ys,
            times=None if times is None else [float(t) for t in np.asarray(times).reshape(-1)],
        )

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        sigma: float | str | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.complex64,
        physics: str | None = None,
    ) -> Problem:
        """Read and validate a measurement file once, build its operator and settle σ once.

        Parameters
        ----------
        path : a measurement file (docs/file-format.md)
        sigma : noise σ per real/imaginary component: a number (``"given"``), ``"file"`` (the
            file's ``noise_sigma``; for simulations that is the true σ) or ``None`` (estimated by
            the forward model's estimator, :func:`rfprior.modalities.estimate_sigma`)
        device, dtype : of the operator and ``y``
        physics : ``None`` (the file's modality), ``"born"`` or ``"full-wave"``: read the file with that
            physics (:data:`rfprior.modalities.PHYSICS`; e.g. a calibrated 2-D radar file as full-wave
            scattering); refused with a one-line error where the forward model does not offer it

        Raises
        ------
        FileNotFoundError, rfprior.io.FormatError
            As :func:`rfprior.io.load`.
        """
        record = read_record(path)
        return cls.from_record(record, source=path, sigma=sigma, device=device, dtype=dtype, physics=physics)

    @classmethod
    def from_arrays(
        cls,
        y: torch.Tensor,
        op: LinearOperator,
        *,
        sigma: float | None = None,
        truth: torch.Tensor | None = None,
    ) -> Problem:
        """A problem from an operator and its measurements in memory (σ given or estimated once)."""
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
        if tuple(y.shape) != tuple(op.out_shape):
            raise ValueError(f"y must have the operator's out_shape {op.out_shape}, got {tuple(y.shape)}")
        return cls(op=op, y=y, sigma=_settle_sigma(op, y, sigma), modality=modalities.find(op), truth=truth)

    @property
    def size(self) -> int:
        """M, the number of complex measurements (of all frames of a sequence)."""
        if self.ys is not None:
            return sum(int(y.numel()) for y in self.ys)
        return int(self.y.numel())

    @property
    def image_dims(self) -> tuple[str, str]:
        """The image's axis names (``("z", "x")`` for radar, else ``("y", "x")``)."""
        return ("y", "x") if self.modality is None else self.modality.image_dims

    def coords(self) -> dict[str, np.ndarray]:
        """The image coordinates the file gives (SI units), by axis name (empty when none)."""
        if self.dataset is None:
            return {}
        return {d: self.dataset[d].values for d in self.image_dims if d in self.dataset.coords}

    def direct_image(self) -> tuple[str, torch.Tensor]:
        """The classical direct image ``(name, image (H, W))`` (:meth:`Modality.direct_image`); per frame
        ``(F, H, W)`` for a sequence."""
        m = self.modality or Modality()
        if self.ops is not None:
            pairs = zip(self.ops, self.ys, strict=True)
            return m.direct_image_name, torch.stack([m.direct_image(op, y) for op, y in pairs])
        return m.direct_image_name, m.direct_image(self.op, self.y)

    def rules(self, stop: str | None = None, average: bool | None = None) -> list[StoppingRule]:
        """The stopping rules named ``stop`` (:func:`rfprior.stopping.default_rules`) for this forward model.

        Their σ is left unset: the problem's σ reaches them through ``reconstruct(sigma=...)``, so a
        result's settings are those of ``rfprior.reconstruct(y, op)`` with the same σ.
        """
        return default_rules(stop, None, average=average, op=self.op)

    def misfit(self, image: torch.Tensor) -> float:
        """``½‖y − A x‖²`` of an image (data units); a sequence's ``(F, H, W)``: the sum over frames."""
        with torch.no_grad():
            if self.ops is not None:
                pairs = zip(self.ops, self.ys, image.to(self.op.device), strict=True)
                return sum(float(half_squared_norm(op.forward(x) - y)) for op, y, x in pairs)
            return float(half_squared_norm(self.op.forward(image.to(self.op.device)) - self.y))


def _settle_sigma(op: LinearOperator, y: torch.Tensor, sigma: float | None) -> NoiseLevel | None:
    if isinstance(sigma, NoiseLevel):
        return sigma
    if sigma is not None:
        value = float(sigma)
        if not (value > 0 and np.isfinite(value)):
            raise ValueError(f"sigma must be a positive finite number, got {sigma!r}")
        return NoiseLevel(value, "given")
    value, how = modalities.estimate_sigma(op, y)
    return NoiseLevel(value, how) if value > 0 else None  # noise-free data: each user handles σ̂ = 0


def _settle_sequence_sigma(
    ops: list[LinearOperator], ys: list[torch.Tensor], sigma: float | None
) -> NoiseLevel | None:
    if sigma is not None:
        return _settle_sigma(ops[0], ys[0], sigma)
    value, how = sequence_sigma(ys, ops)  # one estimate per frame, their median
    return NoiseLevel(value, how) if value > 0 else None


@dataclass
class Reconstruction:
    """What :func:`reconstruct_file` did: the problem, the fit's result, the direct image and the file written."""

    problem: Problem
    result: Result
    direct_image: torch.Tensor
    direct_name: str
    output: Path | None


def reconstruct_file(
    source: str | os.PathLike[str] | Problem,
    output: str | os.PathLike[str] | None,
    *,
    stop: str | StoppingRule | Sequence[StoppingRule] | None = None,
    average: bool | None = None,
    sigma: float | str | None = None,
    device: torch.device | str | None = None,
    force: bool = False,
    weights: bool = False,
    progress: bool = True,
    callbacks: Sequence[Callable[..., bool | None]] = (),
    before_save: Callable[[Result], None] | None = None,
    **options: Any,
) -> Reconstruction:
    """The file-to-result job: read a measurement file, reconstruct it, write the result file.

    ``rfprior reconstruct``, each task of ``rfprior batch`` and ``rfprior demo`` run this.

    Parameters
    ----------
    source : a measurement file, or a :class:`Problem` already built from one
    output : the result file (NetCDF, written atomically; ``None``: nothing is written)
    stop : a rule name (``"discrepancy"``, ``"holdout"``, …: :func:`rfprior.stopping.default_rules`
        with the problem's σ) or rule objects; ``None``: the default rules
    average : add the running average to named rules (``None``: :data:`rfprior.defaults.FIT`'s)
    sigma : as in :meth:`Problem.from_file` (ignored when ``source`` is a Problem)
    device : where to fit; the problem's operator is built there
    force : replace an existing ``output``
    weights : store the network state in the result file (a warm start for later fits)
    progress, callbacks : passed to :func:`rfprior.reconstruct`
    before_save : called with the result before it is written (e.g. to mark it interrupted)
    **options : further :func:`rfprior.reconstruct` keywords (``prior``, ``iterations``, ``lr``,
        ``seed``, ``fits``, ``penalty``, ``init``, ``checkpoint``, ``resume``, …)

    Returns
    -------
    Reconstruction
    """
    if output is not None and Path(output).exists() and not force:
        raise FileExistsError(f"{output} exists; pass --force to overwrite")
    problem = source if isinstance(source, Problem) else Problem.from_file(source, sigma=sigma, device=device)
    if problem.frames is not None and weights:
        raise ValueError("weights: a frame sequence's joint fit stores no network state for a warm start")
    if problem.frames is not None:
        res = _fit_sequence(problem, stop, average, device, progress, callbacks, options)
    else:
        res = _fit_frame(problem, stop, average, device, progress, callbacks, options)
    name, direct = problem.direct_image()
    if before_save is not None:
        before_save(res)
    out = None
    if output is not None:
        out = save_result(
            output, res, backprojection=direct, source=problem.dataset, force=force, weights=weights
        )  # fmt: skip
    return Reconstruction(problem=problem, result=res, direct_image=direct, direct_name=name, output=out)


def _fit_frame(problem: Problem, stop, average, device, progress, callbacks, options) -> Result:
    rules = problem.rules(stop, average) if stop is None or isinstance(stop, str) else stop
    return fit_api.reconstruct(  # looked up at call time (tests and tools may wrap it)
        problem.y,
        problem.op,
        stop=rules,
        sigma=problem.sigma,
        truth=problem.truth,
        device=device,
        progress=progress,
        callbacks=callbacks,
        **options,
    )


def _fit_sequence(problem: Problem, stop, average, device, progress, callbacks, options) -> Result:
    """A sequence file: one network for all frames (:func:`rfprior.fit.sequence.reconstruct_sequence`)."""
    if stop is not None and not isinstance(stop, str):
        raise ValueError("a frame sequence takes stop by name ('discrepancy' or 'fixed'), not rule objects")
    single = ("fits", "init", "loss", "reg_noise_std", "constraint", "hopping", "refine", "calibrate")
    refused = sorted(
        k for k in single
        if (options.get(k) is not None if k in ("hopping", "refine", "calibrate")
            else options.get(k) not in (None, 1, "mse", 0.0, "auto"))
    )  # fmt: skip
    if refused:
        raise ValueError(f"a frame sequence is fitted jointly; {', '.join(refused)} apply to single frames only")
    kept = {k: v for k, v in options.items() if k not in single and (v is not None or k == "penalty")}
    return reconstruct_sequence(
        problem.ys,
        problem.ops,
        stop=stop or "discrepancy",
        average=average,
        sigma=problem.sigma,
        truth=problem.truth,
        times=problem.times,
        device=device,
        progress=progress,
        callbacks=callbacks,
        **kept,
    )
