r"""Spatio-temporal total variation: the classical baseline for a sequence of frames.

A sequence is F frames ``x_f`` of one image shape ``(H, W)``; frame ``f`` is measured by
its own operator ``ops[f]`` (a k-space mask per frame, a radar with entries missing), so the
measurements ``ys[f]`` may differ in shape. :func:`tv_sequence` solves

.. math::

   \min_x \tfrac12 \sum_f \|A_f x_f - y_f\|^2
   + \lambda \sum_{f,p} \sqrt{|\partial_y x_{f,p}|^2 + |\partial_x x_{f,p}|^2 + w^2 |\partial_t x_{f,p}|^2}

(isotropic over space–time, complex images, forward differences with Neumann boundary as
:func:`~operators.gradient2d`); ``w = 0`` is per-frame TV (:func:`~operators.tv_reconstruct`
on each frame at the same λ). :func:`tv_sequence_discrepancy` chooses λ by the discrepancy
principle on the whole sequence and the temporal weight ``w`` by held-out measurements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import torch

from .base import LinearOperator, _norm
from .classical import backproject, divergence2d, gradient2d
from .parameter_choice import DiscrepancyChoice, discrepancy_target, search_lambda

__all__ = ["SequenceTVChoice", "divergence3d", "gradient3d", "tv_sequence", "tv_sequence_discrepancy"]

#: Candidate temporal weights of ``temporal_weight="auto"``.
AUTO_WEIGHTS: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
#: Fraction of each frame's measurements held out by ``temporal_weight="auto"``.
HOLDOUT_FRACTION = 0.1


@dataclass(frozen=True)
class SequenceTVChoice(DiscrepancyChoice):
    """A :class:`~operators.DiscrepancyChoice` for a sequence, with the temporal weight it used.

    ``image`` is ``(F, H, W)``; ``misfit`` and ``target`` are summed over the frames
    (``target = τ σ² Σ_f M_f``); ``evaluations`` counts every λ solve, those spent choosing
    ``w`` included.

    Attributes
    ----------
    temporal_weight : the ``w`` of the reconstruction (given, or chosen by ``"auto"``)
    heldout_misfit : for ``"auto"``, ``{w: ½ Σ_f ‖A_f x_f − y_f‖²}`` over the held-out
        measurements of the fit on the rest, per candidate ``w``; empty when ``w`` was given
    """

    temporal_weight: float = 1.0
    heldout_misfit: dict[float, float] = field(default_factory=dict)


def gradient3d(x: torch.Tensor, temporal_weight: float = 1.0) -> torch.Tensor:
    """Forward differences with Neumann boundary over ``(..., F, H, W)`` → ``(..., F, 3, H, W)``.

    Components ``(∂_y, ∂_x, w ∂_t)``: the first two are :func:`~operators.gradient2d` of each
    frame, the third ``w (x_{f+1} − x_f)`` (zero at the last frame).
    """
    if x.ndim < 3:
        raise ValueError(f"gradient3d: x must be (..., F, H, W), got shape {tuple(x.shape)}")
    gt = torch.zeros_like(x)
    gt[..., :-1, :, :] = (x[..., 1:, :, :] - x[..., :-1, :, :]) * temporal_weight
    return torch.cat((gradient2d(x), gt.unsqueeze(-3)), dim=-3)


def divergence3d(g: torch.Tensor, temporal_weight: float = 1.0) -> torch.Tensor:
    """Negative adjoint of :func:`gradient3d`: ``(..., F, 3, H, W) → (..., F, H, W)``."""
    if g.ndim < 4 or g.shape[-3] != 3:
        raise ValueError(f"divergence3d: g must be (..., F, 3, H, W), got shape {tuple(g.shape)}")
    gt = g[..., 2, :, :]
    dt = torch.zeros_like(gt)
    if gt.shape[-3] > 1:
        dt[..., 0, :, :] = gt[..., 0, :, :]
        dt[..., 1:-1, :, :] = gt[..., 1:-1, :, :] - gt[..., :-2, :, :]
        dt[..., -1, :, :] = -gt[..., -2, :, :]
    return divergence2d(g[..., :2, :, :]) + dt * temporal_weight


class _Problem:
    """Validated frames, normalised for PDHG: ``A'_f = A_f / s_f``, ``y'_f = y_f / s_f``, ``λ'_f = λ / s_f²``.

    With ``w = 0`` the frames decouple and each is scaled by its own ``‖A_f‖`` (exactly as
    :func:`~operators.tv_reconstruct`); otherwise all by ``max_f ‖A_f‖`` (the norm of the
    block-diagonal operator), which keeps the coupled problem equivalent.
    """

    def __init__(self, ops: list[LinearOperator], ys: list[torch.Tensor], w: float) -> None:
        self.ops, self.ys, self.w = ops, ys, w
        norms = [op.opnorm() for op in ops]
        scales = norms if w == 0 else [max(norms)] * len(ops)
        self.scales = scales
        self.units = [op * (1.0 / s) for op, s in zip(ops, scales, strict=True)]
        self.y_n = [y / s for y, s in zip(ys, scales, strict=True)]
        self.m = sum(op.size_out for op in ops)

    def lam_n(self, lam: float) -> torch.Tensor:
        s = torch.tensor(self.scales, dtype=self.ops[0].real_dtype, device=self.ops[0].device)
        return (lam / s**2).reshape(-1, 1, 1, 1)

    def start(self, x: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        if x is None:
            x = torch.stack([backproject(op, y, normalize=True) for op, y in zip(self.ops, self.ys, strict=True)])
        q = torch.zeros(x.shape[0], 3, *x.shape[1:], dtype=x.dtype, device=x.device)
        return x, [torch.zeros_like(y) for y in self.y_n], q

    def pdhg(self, lam: float, state: tuple, iters: int) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """``iters`` PDHG steps; step sizes ``0.99/L`` with ``L² = 1 + 8 + 4w² ≥ ‖[A'; ∇_w]‖²``."""
        w = self.w
        step = 0.99 / math.sqrt(1.0 + 8.0 + 4.0 * w * w)
        lam_n = self.lam_n(lam)
        x, p, q = state
        x_bar = x.clone()
        for _ in range(iters):
            p = [
                (pf + step * (u.forward(x_bar[f]) - yf)) / (1 + step)
                for f, (pf, u, yf) in enumerate(zip(p, self.units, self.y_n, strict=True))
            ]
            q = q + step * gradient3d(x_bar, w)
            mag = torch.sqrt((q.abs() ** 2).sum(dim=-3, keepdim=True))
            q = q / torch.clamp(mag / lam_n, min=1.0) if lam > 0 else torch.zeros_like(q)
            adj = torch.stack([u.adjoint(pf) for u, pf in zip(self.units, p, strict=True)])
            x_new = x - step * (adj - divergence3d(q, w))
            x_bar = 2 * x_new - x
            x = x_new
        return x, p, q


def _misfit(ops: list[LinearOperator], ys: list[torch.Tensor], x: torch.Tensor) -> float:
    """``½ Σ_f ‖A_f x_f − y_f‖²`` in data units."""
    return sum(0.5 * _norm(op.forward(x[f]) - y) ** 2 for f, (op, y) in enumerate(zip(ops, ys, strict=True)))


def _check_frames(ops: Sequence[LinearOperator], ys: Sequence[torch.Tensor], name: str):
    if isinstance(ops, LinearOperator) or not isinstance(ops, Sequence):
        raise TypeError(f"{name}: ops must be a list of LinearOperator (one per frame), got {type(ops).__name__}")
    if isinstance(ys, torch.Tensor):
        ys = list(ys)
    if not isinstance(ys, Sequence):
        raise TypeError(f"{name}: ys must be a list of tensors (one per frame), got {type(ys).__name__}")
    if len(ops) == 0:
        raise ValueError(f"{name}: ops must hold at least one frame, got an empty list")
    if len(ys) != len(ops):
        raise ValueError(f"{name}: ys must hold one measurement per frame ({len(ops)} ops), got {len(ys)}")
    first = ops[0]
    if not isinstance(first, LinearOperator) or len(first.in_shape) != 2:
        raise TypeError(f"{name}: ops[0] must be a LinearOperator on 2-D images, got {first!r}")
    out = []
    for f, (op, y) in enumerate(zip(ops, ys, strict=True)):
        if not isinstance(op, LinearOperator):
            raise TypeError(f"{name}: ops[{f}] must be a LinearOperator, got {type(op).__name__}")
        if op.in_shape != first.in_shape:
            raise ValueError(f"{name}: ops[{f}].in_shape {op.in_shape} differs from ops[0].in_shape {first.in_shape}")
        if op.dtype != first.dtype or op.device != first.device:
            raise ValueError(
                f"{name}: ops[{f}] is {op.dtype} on {op.device}, ops[0] {first.dtype} on {first.device}; use op.to()"
            )
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"{name}: ys[{f}] must be a torch.Tensor, got {type(y).__name__}")
        if tuple(y.shape) != op.out_shape:
            raise ValueError(f"{name}: ys[{f}] must have shape ops[{f}].out_shape {op.out_shape}, got {tuple(y.shape)}")
        out.append(op._check(y.to(op.device), op.out_shape, f"ys[{f}]"))
    return list(ops), out


def _check_weight(w: object, name: str) -> float:
    if isinstance(w, bool) or not isinstance(w, (int, float)):
        raise TypeError(f"{name}: temporal_weight must be a number ≥ 0 or 'auto', got {w!r}")
    if not (math.isfinite(w) and w >= 0):
        raise ValueError(f"{name}: temporal_weight must be a finite number ≥ 0, got {w!r}")
    return float(w)


def _check_iters(iters: object, name: str) -> int:
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"{name}: iters must be an integer ≥ 1, got {iters!r}")
    return iters


@torch.no_grad()
def tv_sequence(
    ops: Sequence[LinearOperator],
    ys: Sequence[torch.Tensor],
    lam: float,
    temporal_weight: float = 1.0,
    iters: int = 200,
    x0: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Spatio-temporal TV of a frame sequence by PDHG (Chambolle–Pock); returns ``(F, H, W)``.

    Solves the problem of the module docstring for a given ``λ ≥ 0`` (data units) and
    temporal weight ``w = temporal_weight ≥ 0``. As :func:`~operators.tv_reconstruct`: the
    operators are normalised (λ rescaled, the minimiser unchanged; per frame when ``w = 0``,
    by ``max_f ‖A_f‖`` otherwise), step sizes ``0.99/L`` with ``L² = 1 + 8 + 4w²``,
    extrapolation θ = 1, started from each frame's normalised backprojection (or ``x0``,
    ``(F, H, W)``). With ``w = 0`` every frame follows exactly the iterates of
    :func:`~operators.tv_reconstruct` at the same λ and ``iters``.

    Parameters
    ----------
    ops : one :class:`~operators.LinearOperator` per frame, all with the same 2-D
        ``in_shape``, dtype and device (``out_shape`` may differ)
    ys : the frames' measurements, ``ys[f]`` of shape ``ops[f].out_shape``
    """
    ops, ys = _check_frames(ops, ys, "tv_sequence")
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"tv_sequence: lam must be a finite number ≥ 0, got {lam!r}")
    if isinstance(temporal_weight, str):
        raise ValueError("tv_sequence: temporal_weight='auto' needs σ; use tv_sequence_discrepancy")
    w = _check_weight(temporal_weight, "tv_sequence")
    iters = _check_iters(iters, "tv_sequence")
    shape = (len(ops), *ops[0].in_shape)
    if x0 is not None:
        if not isinstance(x0, torch.Tensor) or tuple(x0.shape) != shape:
            raise ValueError(f"tv_sequence: x0 must be a tensor of shape {shape}, got {getattr(x0, 'shape', x0)!r}")
        x0 = x0.to(device=ops[0].device, dtype=ops[0].dtype).clone()
    prob = _Problem(ops, ys, w)
    return prob.pdhg(float(lam), prob.start(x0), iters)[0]


def _discrepancy(
    ops: list[LinearOperator], ys: list[torch.Tensor], sigma: float, tau: float, w: float, iters: int
) -> DiscrepancyChoice:
    """Largest λ with ``½ Σ_f ‖A_f x_f − y_f‖² ≤ τ σ² Σ_f M_f`` (warm-started search, as ``tv_discrepancy``)."""
    prob = _Problem(ops, ys, w)
    target = discrepancy_target(prob.m, sigma, tau)

    def solve(lam: float, state: tuple | None) -> tuple[torch.Tensor, tuple, float]:
        state = prob.pdhg(lam, prob.start() if state is None else state, iters)
        return state[0], state, _misfit(ops, ys, state[0])

    lam0 = max(float(op.adjoint(y).abs().max()) for op, y in zip(ops, ys, strict=True))
    return search_lambda(solve, lam0, target, name="tv_sequence_discrepancy")


def _split(ops: list[LinearOperator], ys: list[torch.Tensor], seed: int):
    """Per frame, a seeded ``HOLDOUT_FRACTION`` of the measurements held out (``op.restrict``) and the rest."""
    g = torch.Generator().manual_seed(seed)
    fit, held = ([], []), ([], [])
    for f, (op, y) in enumerate(zip(ops, ys, strict=True)):
        m = op.size_out
        if m < 2:
            raise ValueError(f"tv_sequence_discrepancy: ys[{f}] has {m} measurement; 'auto' holds some out, needs ≥ 2")
        perm = torch.randperm(m, generator=g)
        n_out = max(1, round(HOLDOUT_FRACTION * m))
        for (o, v), idx in ((held, perm[:n_out]), (fit, perm[n_out:])):
            idx = idx.sort().values
            o.append(op.restrict(idx))
            v.append(y.reshape(-1)[idx.to(y.device)])
    return fit, held


@torch.no_grad()
def tv_sequence_discrepancy(
    ops: Sequence[LinearOperator],
    ys: Sequence[torch.Tensor],
    sigma: float,
    *,
    tau: float = 1.0,
    temporal_weight: float | str = "auto",
    iters: int = 200,
    seed: int = 0,
) -> SequenceTVChoice:
    """Spatio-temporal TV with λ by the discrepancy principle on the whole sequence, ``w`` without the truth.

    λ is the largest with ``½ Σ_f ‖A_f x_f − y_f‖² ≤ τ σ² Σ_f M_f`` (σ per real/imag
    component, ``M_f`` the measurements of frame f), found by the warm-started search of
    :func:`~operators.tv_discrepancy` (``iters`` PDHG steps per λ, descent from
    ``λ₀ = max_f ‖A_fᴴ y_f‖_∞``).

    ``temporal_weight="auto"`` chooses ``w`` by held-out measurements: a seeded
    (``seed``) 10 % of each frame's measurements is held out (``op.restrict``); for each
    ``w`` in ``{0, 0.5, 1, 2}`` the discrepancy-tuned reconstruction is computed from the
    rest (discrepancy target over the kept measurements), and the ``w`` whose
    reconstruction predicts the held-out measurements best (smallest
    ``½ Σ_f ‖A_f x_f − y_f‖²`` over them; the smaller ``w`` on a tie) is kept; the
    reconstruction is then recomputed from all measurements with that ``w``. Only the
    measurements and σ enter, never a ground truth; the same ``seed`` gives the same
    choice. A number ≥ 0 is used as given. Note that with ``w = 0`` a held-out
    measurement that nothing else in its frame determines (a held-out k-space DC
    sample: TV ignores constants) is predicted badly, while ``w > 0`` borrows it from
    the neighbouring frames; the rule then leans towards ``w > 0``.

    Returns
    -------
    SequenceTVChoice
        ``image`` ``(F, H, W)``, ``parameter`` λ, the chosen ``temporal_weight`` and the
        held-out misfit of each candidate.
    """
    ops, ys = _check_frames(ops, ys, "tv_sequence_discrepancy")
    discrepancy_target(1, sigma, tau)  # checks σ > 0 and τ before any work
    iters = _check_iters(iters, "tv_sequence_discrepancy")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"tv_sequence_discrepancy: seed must be an int, got {seed!r}")
    scores: dict[float, float] = {}
    evals = 0
    if isinstance(temporal_weight, str):
        if temporal_weight != "auto":
            raise ValueError(f"tv_sequence_discrepancy: temporal_weight must be ≥ 0 or 'auto', got {temporal_weight!r}")
        (fit_ops, fit_ys), (held_ops, held_ys) = _split(ops, ys, seed)
        for cand in AUTO_WEIGHTS:
            ch = _discrepancy(fit_ops, fit_ys, sigma, tau, cand, iters)
            evals += ch.evaluations
            scores[cand] = _misfit(held_ops, held_ys, ch.image)
        w = min(AUTO_WEIGHTS, key=lambda c: scores[c])
    else:
        w = _check_weight(temporal_weight, "tv_sequence_discrepancy")
    ch = _discrepancy(ops, ys, sigma, tau, w, iters)
    base = {f.name: getattr(ch, f.name) for f in fields(DiscrepancyChoice)}
    base["evaluations"] = ch.evaluations + evals
    return SequenceTVChoice(**base, temporal_weight=w, heldout_misfit=scores)
