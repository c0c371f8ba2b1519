r"""Data-fidelity losses on complex measurements: measurement MSE and the DSP spectral loss.

Both are callables ``loss(pred, y, op) -> scalar`` with ``pred = op.forward(x)`` of
shape ``(..., *op.out_shape)`` (complex) and ``y`` the measurements, broadcastable to
``pred``. Both use **sum** normalisation (no division by the number of samples), so the
loss value is directly comparable with the discrepancy threshold ``τ·M·σ²``.

:class:`MSELoss`
    ``½ ‖A x − y‖² = ½ Σ |pred − y|²``.
:class:`DSPLoss`
    The Deep Spectral Prior loss (seed ``000``), configurable as

    .. math::

        L = \tfrac12 w_c \sum_ω W(ω)\,|\hat r(ω) − \hat y(ω)|^2
          + \tfrac12 w_a \sum_ω W(ω)\,\big(|\hat r(ω)| − |\hat y(ω)|\big)^2
          + w_p \sum_ω W(ω)\, g(ω)\,\big(1 − \cos Δφ(ω)\big)

    with ``r̂ = F(pred)``, ``ŷ = F(y)``, ``F`` the centred unitary FFT
    (``ifftshift → fftn(norm="ortho") → fftshift``) over the measurement axes listed in
    ``op.spatial_dims`` (none when the data are already spectral, e.g. k-space or
    restricted operators, whose ``spatial_dims`` is empty: then ``F`` is the identity),
    ``W`` an optional non-negative frequency weighting (default 1), and the gate
    ``g(ω) = 1[|ŷ(ω)| > phase_gate · max|ŷ|]`` which drops the phase where the data
    amplitude is negligible. ``1 − cos Δφ`` is evaluated NaN-free as

    .. math:: 1 − \frac{\mathrm{Re}(\hat r\, \overline{\hat y})}{\sqrt{|\hat r|^2 + ε^2}\,\sqrt{|\hat y|^2 + ε^2}},
              \qquad ε = \texttt{eps} · \max|\hat y|,

    smooth in ``r̂`` everywhere (including ``r̂ = 0``, where it equals 1). The amplitude
    term uses ``|·|`` whose sub-gradient at 0 is 0.

    **Parseval.** ``F`` is unitary, so with ``W ≡ 1`` the complex term equals
    ``½ w_c ‖pred − y‖²`` for every ``pred``: on its own it gives exactly the MSE (DIP)
    trajectory. The FFT is therefore skipped for the complex term when ``W`` is not
    given, and with ``w_a = w_p = 0`` and no ``W`` the loss *is* :class:`MSELoss` — the same
    function on the same autograd graph (bit-identical value and gradient when
    ``w_c = 1``; otherwise scaled by ``w_c``). Any difference from DIP comes from the
    amplitude and phase terms or from ``W``.

    The phase term is dimensionless while the other two scale with ``|y|²``; choose
    ``w_p`` accordingly (e.g. of the order of ``mean |ŷ|²`` to weigh it like the others).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["MSELoss", "DSPLoss", "half_squared_norm", "spectral_axes", "spectral_transform"]


def half_squared_norm(r: torch.Tensor) -> torch.Tensor:
    """``½ Σ |r|²`` over every element (real or complex ``r``); differentiable everywhere."""
    if r.is_complex():
        return 0.5 * torch.view_as_real(r.resolve_conj()).square().sum()
    return 0.5 * r.square().sum()


def _check_pair(pred: Any, y: Any, op: Any, who: str) -> None:
    if not isinstance(pred, torch.Tensor):
        raise TypeError(f"{who}: pred must be a torch.Tensor, got {type(pred).__name__}")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{who}: y must be a torch.Tensor, got {type(y).__name__}")
    if op is not None:
        out_shape = tuple(op.out_shape)
        n = len(out_shape)
        if pred.ndim < n or tuple(pred.shape[pred.ndim - n :]) != out_shape:
            raise ValueError(f"{who}: pred must have shape (..., *{out_shape}) (op.out_shape), got {tuple(pred.shape)}")
        if y.ndim < n or tuple(y.shape[y.ndim - n :]) != out_shape:
            raise ValueError(f"{who}: y must have shape (..., *{out_shape}) (op.out_shape), got {tuple(y.shape)}")
    try:
        shape = torch.broadcast_shapes(pred.shape, y.shape)
    except RuntimeError:
        shape = None
    if shape != pred.shape:
        raise ValueError(f"{who}: y of shape {tuple(y.shape)} must broadcast to pred's shape {tuple(pred.shape)}")


class MSELoss:
    """Measurement-domain least squares ``½ ‖pred − y‖² = ½ Σ |A x − y|²`` (sum over all elements).

    ``loss(pred, y, op=None)``: ``pred`` ``(..., *op.out_shape)``, ``y`` broadcastable to
    it; returns a real 0-d tensor. ``op`` is only used to check shapes.
    """

    def __call__(self, pred: torch.Tensor, y: torch.Tensor, op: Any = None) -> torch.Tensor:
        _check_pair(pred, y, op, "MSELoss")
        return half_squared_norm(pred - y)

    @property
    def config(self) -> dict[str, Any]:
        """Settings, for result files."""
        return {"name": "mse"}

    def __repr__(self) -> str:
        return "MSELoss()"


def spectral_axes(op: Any) -> tuple[int, ...]:
    """Negative axis indices of the measurement axes of ``op`` named in ``op.spatial_dims``."""
    dims = tuple(op.dims)
    spatial = set(getattr(op, "spatial_dims", ()))
    return tuple(i - len(dims) for i, d in enumerate(dims) if d in spatial)


def spectral_transform(x: torch.Tensor, op: Any) -> torch.Tensor:
    """Centred unitary FFT of measurements ``(..., *op.out_shape)`` over :func:`spectral_axes`; identity if none."""
    axes = spectral_axes(op)
    if not axes:
        return x
    x = torch.fft.ifftshift(x, dim=axes)
    return torch.fft.fftshift(torch.fft.fftn(x, dim=axes, norm="ortho"), dim=axes)


def _weight(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise ValueError(f"DSPLoss: {name} must be a finite number ≥ 0, got {value!r}")
    return float(value)


class DSPLoss:
    r"""Deep Spectral Prior data term (see the module docstring for the formula).

    Parameters
    ----------
    w_complex, w_amplitude, w_phase : float ≥ 0
        Weights ``w_c``, ``w_a``, ``w_p`` of the complex, amplitude and phase terms.
    freq_weight : real tensor broadcastable to ``op.out_shape``, optional
        ``W(ω) ≥ 0`` on the centred spectrum (DC of each transformed axis at index
        ``n // 2``); multiplies every term. ``None`` means 1.
    phase_gate : float ≥ 0
        The phase term is taken only where ``|ŷ| > phase_gate · max|ŷ|``.
    eps : float > 0
        Relative smoothing of the phase term (``ε = eps · max|ŷ|``).
    """

    def __init__(
        self,
        w_complex: float = 1.0,
        w_amplitude: float = 0.0,
        w_phase: float = 0.0,
        freq_weight: torch.Tensor | None = None,
        phase_gate: float = 1e-3,
        eps: float = 1e-6,
    ) -> None:
        self.w_complex = _weight(w_complex, "w_complex")
        self.w_amplitude = _weight(w_amplitude, "w_amplitude")
        self.w_phase = _weight(w_phase, "w_phase")
        self.phase_gate = _weight(phase_gate, "phase_gate")
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise ValueError(f"DSPLoss: eps must be a positive number, got {eps!r}")
        self.eps = float(eps)
        if freq_weight is not None:
            w = torch.as_tensor(freq_weight)
            if w.is_complex() or not w.is_floating_point():
                raise TypeError(f"DSPLoss: freq_weight must be a real floating tensor, got dtype {w.dtype}")
            if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
                raise ValueError("DSPLoss: freq_weight must be finite and ≥ 0")
            freq_weight = w
        self.freq_weight: torch.Tensor | None = freq_weight

    @property
    def is_mse(self) -> bool:
        """True when the loss reduces to ``w_c · MSELoss`` (no amplitude/phase term, no weighting)."""
        return self.w_amplitude == 0 and self.w_phase == 0 and self.freq_weight is None

    def _weight_for(self, op: Any, like: torch.Tensor) -> torch.Tensor | None:
        if self.freq_weight is None:
            return None
        try:
            torch.broadcast_shapes(self.freq_weight.shape, tuple(op.out_shape))
        except RuntimeError as err:
            raise ValueError(
                f"DSPLoss: freq_weight of shape {tuple(self.freq_weight.shape)} does not broadcast to "
                f"op.out_shape {tuple(op.out_shape)}"
            ) from err
        return self.freq_weight.to(device=like.device, dtype=like.real.dtype)

    def terms(self, pred: torch.Tensor, y: torch.Tensor, op: Any) -> dict[str, torch.Tensor]:
        """The weighted terms ``{"complex", "amplitude", "phase"}`` that are switched on (weight > 0)."""
        _check_pair(pred, y, op, "DSPLoss")
        W = self._weight_for(op, pred)
        out: dict[str, torch.Tensor] = {}
        if self.w_complex > 0 and W is None:
            out["complex"] = self.w_complex * half_squared_norm(pred - y)  # Parseval: no FFT needed
        if (self.w_complex > 0 and W is not None) or self.w_amplitude > 0 or self.w_phase > 0:
            fp, fy = spectral_transform(pred, op), spectral_transform(y.to(pred.dtype), op)
            ones = 1.0 if W is None else W
            if self.w_complex > 0 and W is not None:
                d = torch.view_as_real(fp - fy).square().sum(-1)
                out["complex"] = 0.5 * self.w_complex * (W * d).sum()
            if self.w_amplitude > 0:
                out["amplitude"] = 0.5 * self.w_amplitude * (ones * (fp.abs() - fy.abs()).square()).sum()
            if self.w_phase > 0:
                ay = fy.abs()
                peak = ay.max().detach()
                gate = (ay > self.phase_gate * peak).to(ay.dtype)
                e2 = (self.eps * peak).square().clamp_min(torch.finfo(ay.dtype).tiny)
                num = (fp * fy.conj()).real
                den = torch.sqrt(fp.real.square() + fp.imag.square() + e2) * torch.sqrt(ay.square() + e2)
                out["phase"] = self.w_phase * (ones * gate * (1.0 - num / den)).sum()
        return out

    def __call__(self, pred: torch.Tensor, y: torch.Tensor, op: Any) -> torch.Tensor:
        if self.is_mse:
            _check_pair(pred, y, op, "DSPLoss")
            loss = half_squared_norm(pred - y)
            return loss if self.w_complex == 1.0 else self.w_complex * loss
        terms = self.terms(pred, y, op)
        if not terms:
            return pred.real.sum() * 0.0
        total: torch.Tensor | None = None
        for t in terms.values():
            total = t if total is None else total + t
        return total

    @property
    def config(self) -> dict[str, Any]:
        """Settings, for result files (``freq_weight`` as a flag: the array is not serialised)."""
        return {
            "name": "dsp",
            "w_complex": self.w_complex,
            "w_amplitude": self.w_amplitude,
            "w_phase": self.w_phase,
            "freq_weight": self.freq_weight is not None,
            "phase_gate": self.phase_gate,
            "eps": self.eps,
        }

    def __repr__(self) -> str:
        args: Sequence[str] = [f"{k}={v!r}" for k, v in self.config.items() if k != "name"]
        return f"DSPLoss({', '.join(args)})"
