r"""Near-field MIMO radar imaging operator: exact, matrix-free, memory-bounded.

Model (2-D scene in the ``(x, z)`` plane, ``k = 2πf/c``, ``c = 299 792 458 m/s``):

.. math::  y_{ijk} = \sum_p x_p\, a_{ijp}\, e^{-j k_k (|t_i - p| + |p - r_j|)}

with the amplitude ``a`` set by ``spreading``:

* ``"none"`` (or ``False``): ``a = 1``;
* ``"spherical"`` (or ``True``): ``a = 1/(|t_i-p|\,|p-r_j|)`` (3-D point scatterers);
* ``"cylindrical"``: ``a = 1/\sqrt{|t_i-p|\,|p-r_j|}`` — the 2-D (line source, TM)
  Green's function in its large-argument form, ``H_0^{(2)}(u) ≈ \sqrt{2/(πu)}\,e^{-j(u-π/4)}``
  (error ≈ 1/(8kd), below 1 % for ``k d > 12``);
* ``"hankel"``: the exact 2-D form: per side ``e^{-jkd}/\sqrt d`` is replaced by
  ``h(k, d) = \sqrt{πk/2}\,e^{jπ/4}\,H_0^{(2)}(kd)``, which tends to ``e^{-jkd}/\sqrt d``
  for ``kd → ∞`` (so ``"cylindrical"`` and ``"hankel"`` share one scale). With
  ``G(d) = -(j/4) H_0^{(2)}(kd)`` the 2-D Born kernel is
  ``k² G(|t-p|) G(|p-r|) = -(j k / (8π)) · h(k,|t-p|) h(k,|p-r|)``.

Per frequency the kernel is separable, ``y_k = E_T(k)ᵀ diag(x) E_R(k)`` with
``E_T(k)[p, i] = e^{-j k |t_i - p|}`` (spreading folded in), so ``forward`` and
``adjoint`` are batched matrix products over blocks of frequencies and pixels; the
dense ``(N_T N_R N_f × P)`` matrix is never formed.

How the steering matrices are built within ``memory_budget`` (accuracy of the phasors,
the block plan, the optional steering cache) is :mod:`operators.mimo_steering`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .arrays import antenna_on_grid, as_frequencies, as_grid, as_positions, hamming_taper, principal_coordinate
from .mimo_steering import (
    SPEED_OF_LIGHT,
    SPREADING_MODES,
    SteeringBlocks,
    _take,
    default_memory_budget,
    hankel_correction,
    spreading_mode,
)

__all__ = ["MIMORadar", "SPEED_OF_LIGHT", "SPREADING_MODES", "hankel_correction", "spreading_mode"]


class _Apply(torch.autograd.Function):
    """Autograd through the operator with the exact adjoint (no stored intermediates)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor, op: MIMORadar, adjoint: bool) -> torch.Tensor:  # type: ignore[override]
        ctx.op, ctx.adjoint = op, adjoint
        return op._apply_adjoint(t) if adjoint else op._apply_forward(t)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return _Apply.apply(grad, ctx.op, not ctx.adjoint), None, None


class MIMORadar(SteeringBlocks):
    """Exact near-field MIMO radar operator (matrix-free, chunked, optional steering cache).

    Parameters
    ----------
    tx, rx : real arrays ``(N_T, 2)``, ``(N_R, 2)``
        Antenna positions ``(x, z)`` in metres (see :mod:`operators.arrays`).
    frequencies : real array ``(N_f,)``, Hz, positive
    x, z : real 1-D arrays ``(N_x,)``, ``(N_z,)``
        Image grid coordinates in metres (strictly monotonic); pixel ``(iz, ix)``
        sits at ``(x[ix], z[iz])``.
    spreading : ``"none"`` | ``"spherical"`` | ``"cylindrical"`` | ``"hankel"`` (or bool)
        Amplitude model (module docstring): none; ``1/(|t-p|·|p-r|)`` (``True``); the 2-D
        ``1/√(|t-p|·|p-r|)``; or the exact 2-D Hankel form. Any spreading needs pixels
        that do not touch an antenna. ``op.spreading`` holds the canonical name.
    memory_budget : int or None
        Bytes for the steering cache plus the temporaries of one apply. ``None`` (default):
        256 MiB on the CPU, 4 GiB on other devices (resolved again by :meth:`to`), so that on
        a GPU the steering matrices of images up to 512² stay cached.
    cache_steering : ``"auto"`` | ``True`` | ``False``
        Keep ``E_T``/``E_R`` for all frequencies (``s·N_f·P·(N_T+N_R)`` bytes,
        ``s = 8`` for complex64): ``"auto"`` when that leaves ``min(16 MiB, budget/4)``
        of ``memory_budget`` for the blocks (``op.steering_bytes`` tells the size),
        ``True`` requires it to fit.
    dtype : torch.complex64 or torch.complex128
    device : torch device (every tensor is created there)

    Notes
    -----
    Shapes: ``in_shape = (N_z, N_x)`` (rows = range), ``out_shape = (N_T, N_R, N_f)``,
    ``dims = ("tx", "rx", "freq")``, ``spatial_dims = ("tx", "rx")``. Geometry is
    kept as float64 numpy in ``op.tx``, ``op.rx``, ``op.frequencies``, ``op.x``, ``op.z``.
    """

    def __init__(
        self,
        tx,
        rx,
        frequencies,
        x,
        z,
        *,
        spreading: bool | str = False,
        memory_budget: int | None = None,
        cache_steering: bool | str = "auto",
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
    ) -> None:
        tx, rx = as_positions(tx, "tx"), as_positions(rx, "rx")
        f, gx, gz = as_frequencies(frequencies), as_grid(x, "x"), as_grid(z, "z")
        mode = spreading_mode(spreading)
        if memory_budget is not None and (
            isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, float, np.integer, np.floating))
        ):
            raise TypeError(f"memory_budget must be a number of bytes, got {type(memory_budget).__name__}")
        if memory_budget is not None and not (math.isfinite(memory_budget) and memory_budget > 0):
            raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget!r}")
        if cache_steering not in ("auto", True, False):
            raise ValueError(f"cache_steering must be 'auto', True or False, got {cache_steering!r}")
        shape_out = (tx.shape[0], rx.shape[0], f.size)
        super().__init__((gz.size, gx.size), shape_out, ("tx", "rx", "freq"), dtype=dtype, device=device,
                         spatial_dims=("tx", "rx"))
        for arr in (tx, rx, f, gx, gz):
            arr.setflags(write=False)
        self.tx, self.rx, self.frequencies, self.x, self.z = tx, rx, f, gx, gz
        self.spreading: str = mode
        self._budget_arg = None if memory_budget is None else int(memory_budget)
        self.memory_budget = default_memory_budget(self.device) if memory_budget is None else int(memory_budget)
        self.cache_steering = cache_steering
        # the Hankel correction depends on k·d: no shared offset table across frequencies
        self._step = None if mode == "hankel" else self._uniform_step()
        self._swap = tx.shape[0] > rx.shape[0]  # scale the smaller side by the image, GEMM over the larger
        if self.spreading != "none":
            for name, ant in (("tx", tx), ("rx", rx)):
                hit = antenna_on_grid(gx, gz, ant)
                if hit is not None:
                    raise ValueError(f"spreading={spreading!r}: a pixel coincides with {name}[{hit}] (distance 0)")
        self._cache: dict = {}
        self._resolve_cache()

    # ------------------------------------------------------------------ forward / adjoint
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Apply.apply(x, self, False)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return _Apply.apply(y, self, True)

    def _apply_forward(self, x: torch.Tensor) -> torch.Tensor:
        n_t, n_r, n_f = self.out_shape
        batch = x.shape[: x.ndim - 2]
        xb = x.reshape(-1, self.size_in)
        nb = xb.shape[0]
        n_s, n_g = (n_r, n_t) if self._swap else (n_t, n_r)
        out = torch.zeros(nb, n_f, n_s, n_g, dtype=self.dtype, device=self.device)
        bs, pc, m = self._plan(nb, self._block_budget(), self._use_cache)
        scratch: dict = {}
        for p0, p1, k0, k1, a_s, e_s, e_g in self._blocks(pc, m):
            for b0 in range(0, nb, bs):
                xp = xb[b0 : b0 + bs, p0:p1]
                sx = _take(scratch, "sx", (xp.shape[0], *e_s.shape), self.dtype, self.device)
                if a_s is None:
                    torch.mul(e_s, xp[:, None, None, :], out=sx)
                else:
                    torch.mul((a_s * xp[:, None, :])[:, None], e_s, out=sx)
                out[b0 : b0 + bs, k0:k1] += torch.matmul(sx, e_g)
        if self._swap:
            out = out.transpose(-1, -2)
        return out.permute(0, 2, 3, 1).reshape(*batch, n_t, n_r, n_f)

    def _apply_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        # Aᴴy = conj(Aᵀ conj(y)): the steering blocks are used without conjugation.
        n_t, n_r, n_f = self.out_shape
        batch = y.shape[: y.ndim - 3]
        yk = y.reshape(-1, n_t, n_r, n_f).conj().permute(0, 3, 1, 2)  # (B, N_f, N_T, N_R)
        yk = (yk.transpose(-1, -2) if self._swap else yk).contiguous()  # (B, N_f, N_S, N_G)
        nb = yk.shape[0]
        out = torch.zeros(nb, self.size_in, dtype=self.dtype, device=self.device)
        bs, pc, m = self._plan(nb, self._block_budget(), self._use_cache)
        scratch: dict = {}
        for p0, p1, k0, k1, a_s, e_s, e_g in self._blocks(pc, m):
            for b0 in range(0, nb, bs):
                yb = yk[b0 : b0 + bs, k0:k1]
                w = _take(scratch, "w", (yb.shape[0], *e_s.shape), self.dtype, self.device)
                torch.matmul(yb, e_g.mT, out=w).mul_(e_s)  # (b, m, N_S, Pc): E_S ⊙ Σ_g conj(y) E_G
                part = w.sum(dim=(1, 2)) if a_s is None else (w.sum(dim=1) * a_s).sum(dim=1)
                out[b0 : b0 + bs, p0:p1] += part
        return out.conj_physical().reshape(*batch, *self.in_shape)

    # ------------------------------------------------------------------ normalisation and windows
    def normal_diagonal(self, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Exact diagonal of ``Aᴴ diag(w) A``: ``Σ_ijk w_ijk |a_ijp|²`` per pixel (real, ``in_shape``).

        ``weights`` (real, ``out_shape``, default all ones) is the measurement window
        that :func:`operators.classical.backproject` applies once to ``y``; with it the
        normalised backprojection of a unit point target is exactly 1 at its pixel.
        """
        n_t, n_r, n_f = self.out_shape
        if weights is None:
            w = torch.full((n_t, n_r), float(n_f), dtype=torch.float64, device=self.device)
        else:
            wt = torch.as_tensor(weights)
            if wt.is_complex() or not wt.is_floating_point():
                raise TypeError(f"weights must be a real floating tensor, got dtype {wt.dtype}")
            if tuple(wt.shape) != self.out_shape:
                raise ValueError(f"weights must have shape out_shape={self.out_shape}, got {tuple(wt.shape)}")
            w = wt.to(device=self.device, dtype=torch.float64).sum(dim=-1)
        if self.spreading == "none":
            return torch.full(self.in_shape, float(w.sum()), dtype=self.real_dtype, device=self.device)
        out = torch.empty(self.size_in, dtype=torch.float64, device=self.device)
        step = max(1, self.memory_budget // (16 * (n_t + n_r + 1)))
        if self.spreading != "hankel":  # |a|² per side is frequency independent: sum the weights over frequency
            power = 2.0 if self.spreading == "spherical" else 1.0
            w_sg = w.T if self._swap else w
            for p0 in range(0, self.size_in, step):
                p1 = min(p0 + step, self.size_in)
                d_s, d_g = self._distances(p0, p1)
                out[p0:p1] = ((w_sg @ d_g.pow(-power).T) * d_s.pow(-power)).sum(dim=0)  # Σ_s |a_S|² Σ_g w_sg |a_G|²
            return out.to(self.real_dtype).reshape(self.in_shape)
        wk = (
            torch.ones(self.out_shape, dtype=torch.float64, device=self.device)
            if weights is None
            else torch.as_tensor(weights).to(device=self.device, dtype=torch.float64)
        )
        k_all = 2 * math.pi * self._geom()["f"] / SPEED_OF_LIGHT
        out.zero_()
        for p0 in range(0, self.size_in, step):
            p1 = min(p0 + step, self.size_in)
            d_s, d_g = self._distances(p0, p1)
            for kk in range(n_f):
                w_sg = wk[..., kk].T if self._swap else wk[..., kk]
                k_k = k_all[kk].reshape(1, 1, 1)
                a_s = self._hankel_factor(k_k, d_s, torch.complex128)[0].abs() ** 2
                a_g = self._hankel_factor(k_k, d_g, torch.complex128)[0].abs() ** 2
                out[p0:p1] += ((w_sg @ a_g.T) * a_s).sum(dim=0)
        return out.to(self.real_dtype).reshape(self.in_shape)

    def measurement_window(self, kind: str = "hamming") -> torch.Tensor:
        """Real taper of ``out_shape`` for :func:`operators.classical.backproject`.

        ``"hamming"``: Hamming over frequency (position ``(f - f_min)/(f_max - f_min)``)
        times Hamming over each pair's phase-centre position along the virtual
        array's principal axis; ``"none"`` / ``"rect"``: ones.
        """
        key = kind.lower() if isinstance(kind, str) else kind
        if key in ("none", "rect"):
            return torch.ones(self.out_shape, dtype=self.real_dtype, device=self.device)
        if key != "hamming":
            raise ValueError(f"kind must be 'hamming', 'none' or 'rect', got {kind!r}")
        w_v = hamming_taper(principal_coordinate(0.5 * (self.tx[:, None, :] + self.rx[None, :, :])))
        w = w_v.reshape(self.out_shape[:2])[:, :, None] * hamming_taper(self.frequencies)
        return torch.as_tensor(w, dtype=self.real_dtype, device=self.device)
