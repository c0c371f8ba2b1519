"""The :class:`Result` of a reconstruction and the per-iteration history it carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr

__all__ = ["NetworkState", "Result", "HistoryRecorder"]


@dataclass
class NetworkState:
    """A fit's network at one iteration: what ``reconstruct(..., init=...)`` starts from.

    Attributes
    ----------
    state_dict : dict of CPU tensors
        The prior's ``state_dict()`` (weights, the fixed input ``z`` and any buffers such
        as BatchNorm statistics), as :meth:`torch.nn.Module.load_state_dict` takes it.
    prior : dict
        The prior's recorded settings (``Result.settings["prior"]``: ``name``, optional
        ``preset``, size arguments), enough to rebuild the same architecture by name.
    output_scale : float
        ``s · ‖A‖`` of the fit (data scale times operator norm): the network's output
        divided by it is the image in data units. A warm start keeps it, so that its
        first iterate is the previous fit's image.
    iteration : int
        The 0-based iteration of the weights (the deciding rule's chosen iteration when
        the rule chose one, else the last iteration run).
    """

    state_dict: dict[str, torch.Tensor]
    prior: dict[str, Any]
    output_scale: float
    iteration: int

    def __repr__(self) -> str:
        n = sum(int(t.numel()) for t in self.state_dict.values())
        return (
            f"NetworkState(prior={self.prior.get('preset', self.prior.get('name'))!r}, tensors={len(self.state_dict)}, "
            f"values={n}, output_scale={self.output_scale:.4g}, iteration={self.iteration})"
        )


@dataclass
class Result:
    """Outcome of :func:`rfprior.reconstruct`.

    Attributes
    ----------
    image : complex tensor ``(H, W)`` on the CPU, data units
        The chosen reconstruction (the running average at the chosen iteration
        when a :class:`~rfprior.stopping.RunningAverage` rule is present).
    chosen_iteration : int
        0-based iteration of ``image``.
    final_image : complex tensor ``(H, W)``
        The raw network output at the last iteration run.
    final_iteration : int
    history : xarray.Dataset
        Over dimension ``iteration``: ``loss`` (objective), ``misfit``
        (``½‖y_fit − A_fit x‖²`` in data units), ``time`` (s since start), ``lr``,
        one variable per rule statistic (e.g. ``heldout``, ``discrepancy``), and
        ``psnr`` / ``psnr_average`` when a truth was given.
    settings : dict
        Every setting needed to reproduce the run (JSON-serialisable).
    seed : int
    stop_reason : str
        Why the run ended and how the iterate was chosen, in words.
    choices : dict
        Iteration chosen by each rule, deciding and recorded ones (``None`` if a
        rule never chose).
    sigma : float or None
        Noise σ per real/imag component used by the rules (given or estimated).
    scale : float
        Factor the data were multiplied by during fitting (undone on the images).
    interrupted : bool
        True when the run was cut short (Ctrl-C / SIGTERM); the image is the best so far.
    backtracks : int
        Number of times the loop restored earlier weights after a loss jump or NaN.
    oracle_iteration, oracle_psnr : int / float or None
        Best raw iterate by PSNR against the truth (benchmarks only).
    rule_summaries : dict
        Facts reported by each rule (e.g. ``{"discrepancy": {"sigma": ..., "sigma_source": ...}}``);
        with ``fits > 1`` also ``"ensemble"`` (seeds, each fit's chosen iteration and stop
        reason, the misfit of the mean image, the fits' relative disagreement).
    image_psnr : float or None
        PSNR of ``image`` against the truth (dB; benchmarks only).
    members : list of Result
        With ``reconstruct(..., fits=K)``, ``K > 1``: the individual fits (seeds
        ``seed + 1000·k``). ``image`` is then their mean, and ``history``,
        ``chosen_iteration``, ``choices``, ``final_*`` and ``oracle_*`` describe the
        first fit (seed ``seed``; its history carries ``attrs["fit"] = 0``); every fit's
        chosen iteration and stop reason are in ``rule_summaries["ensemble"]``. Empty for
        a single fit.
    spread : real tensor ``(H, W)`` or None
        With ``K > 1`` averaged fits: the per-pixel RMS deviation of the fits' images from
        their mean (1/K normalisation, data units) — where the fits disagree; an indicator,
        not a calibrated error bar. ``None`` for one fit.
    weights : NetworkState or None
        The network at ``chosen_iteration`` (the deciding rule's choice, or the checked running
        average the budget-end fallback chose; the last iteration when it fell back to the last
        average or iterate), for a warm start ``reconstruct(..., init=result)``; written to
        a result file by ``save_result(..., weights=True)``. With ``fits > 1``: the first fit's.
    """

    image: torch.Tensor
    chosen_iteration: int
    final_image: torch.Tensor
    final_iteration: int
    history: xr.Dataset
    settings: dict[str, Any]
    seed: int
    stop_reason: str
    choices: dict[str, int | None] = field(default_factory=dict)
    sigma: float | None = None
    scale: float = 1.0
    interrupted: bool = False
    backtracks: int = 0
    oracle_iteration: int | None = None
    oracle_psnr: float | None = None
    oracle_image: torch.Tensor | None = None
    rule_summaries: dict[str, Any] = field(default_factory=dict)
    image_psnr: float | None = None
    members: list[Result] = field(default_factory=list)
    spread: torch.Tensor | None = None
    weights: NetworkState | None = field(default=None, repr=False)

    def psnr_at(self, iteration: int, variable: str = "psnr") -> float:
        """PSNR recorded at ``iteration`` (needs a truth)."""
        if variable not in self.history:
            raise KeyError(f"history has no {variable!r}: pass truth= to reconstruct()")
        return float(self.history[variable].sel(iteration=iteration))

    def __repr__(self) -> str:
        return (
            f"Result(image={tuple(self.image.shape)}, chosen_iteration={self.chosen_iteration}, "
            f"final_iteration={self.final_iteration}, stop_reason={self.stop_reason!r})"
        )


class HistoryRecorder:
    """Collects per-iteration scalars into preallocated arrays (no per-step allocation)."""

    def __init__(self, capacity: int, names: list[str]) -> None:
        self.names = list(dict.fromkeys(names))
        self.data = {n: np.full(capacity, np.nan) for n in self.names}
        self.iteration = np.zeros(capacity, dtype=np.int64)
        self.n = 0

    def add_variable(self, name: str) -> None:
        if name not in self.data:
            self.names.append(name)
            self.data[name] = np.full(self.iteration.shape[0], np.nan)

    def record(self, iteration: int, values: dict[str, float | None]) -> None:
        i = self.n
        self.iteration[i] = iteration
        for k, v in values.items():
            if v is not None:
                self.data[k][i] = v
        self.n += 1

    def to_dataset(self, attrs: dict[str, Any] | None = None) -> xr.Dataset:
        n = self.n
        return xr.Dataset(
            {k: ("iteration", v[:n].copy()) for k, v in self.data.items()},
            coords={"iteration": self.iteration[:n].copy()},
            attrs=attrs or {},
        )
