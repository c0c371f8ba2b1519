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

Accuracy: distances and ``f·d/c`` are computed in float64 and reduced modulo one
cycle before the cast, so complex64 phasors stay accurate when ``k·d`` is thousands
of radians. For uniformly spaced frequencies (stepped, FMCW) a block of ``m``
frequencies is (exact phasor at the block start) × (offset table ``E(s·Δf)``, built
by doubling from ⌈log₂ m⌉ exact phasors): complex multiplies instead of ``sincos``,
≤ ~1e-6 error per complex64 entry.

Memory: ``memory_budget`` bounds the operator's own memory (steering cache plus the
temporaries of one apply; inputs and outputs excluded). Blocks of pixels ×
frequencies (× batch) are sized to fit; the full steering matrices are cached when
``cache_steering`` asks for it and they fit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .arrays import (
    antenna_on_grid,
    as_frequencies,
    as_grid,
    as_positions,
    hamming_taper,
    max_distance,
    principal_coordinate,
)
from .base import LinearOperator

__all__ = ["MIMORadar", "SPEED_OF_LIGHT", "SPREADING_MODES", "spreading_mode"]

#: Amplitude models of :class:`MIMORadar` (see the module docstring).
SPREADING_MODES = ("none", "spherical", "cylindrical", "hankel")

SPEED_OF_LIGHT = 299_792_458.0
#: Working-set target of one block (bytes), below ``memory_budget``: keeps CPU blocks in cache.
_BLOCK_TARGET = {"cpu": 16 * 2**20, "cuda": 1024 * 2**20}
_MIN_PIXELS = 16  # smallest pixel block the planner will use
_WANT_PIXELS = {False: 512, True: 2048}  # pixels per block aimed for (generated / cached steering)
_UNIFORM_TOL_RAD = 1e-9  # max phase error (rad) allowed when treating the frequencies as uniformly spaced


def _cis(cycles: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``exp(-2πj·cycles)`` in complex ``dtype`` from float64 ``cycles`` (reduced mod 1 first)."""
    frac = cycles - torch.round(cycles)
    real = torch.float32 if dtype == torch.complex64 else torch.float64
    # cos(2π(c + 1/4)) = -sin(2πc): one vectorised cos over (real, imag) pairs.
    pair = torch.stack((frac, frac + 0.25), dim=-1).mul_(2.0 * math.pi).to(real)
    return torch.view_as_complex(pair.cos_())


def spreading_mode(spreading: bool | str) -> str:
    """Canonical name of a ``spreading`` argument: ``False → "none"``, ``True → "spherical"``, names kept.

    Raises ``TypeError`` for anything but a bool or a string, ``ValueError`` for an unknown name.
    """
    if isinstance(spreading, (bool, np.bool_)):
        return "spherical" if spreading else "none"
    if not isinstance(spreading, str):
        raise TypeError(f"spreading must be a bool or one of {SPREADING_MODES}, got {type(spreading).__name__}")
    if spreading.lower() not in SPREADING_MODES:
        raise ValueError(f"spreading must be one of {SPREADING_MODES} (or a bool), got {spreading!r}")
    return spreading.lower()


def hankel_correction(kd: np.ndarray) -> np.ndarray:
    """``√(πu/2)·e^{j(u − π/4)}·H0⁽²⁾(u)`` at ``u = k d`` (complex128): the exact 2-D Green's function
    divided by its large-argument form; → 1 as ``u → ∞`` (``1 + j/(8u) + O(u⁻²)``)."""
    from scipy.special import hankel2

    u = np.asarray(kd, dtype=np.float64)
    return np.sqrt(np.pi * u / 2) * np.exp(1j * (u - np.pi / 4)) * hankel2(0, u)


class _Apply(torch.autograd.Function):
    """Autograd through the operator with the exact adjoint (no stored intermediates)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor, op: MIMORadar, adjoint: bool) -> torch.Tensor:  # type: ignore[override]
        ctx.op, ctx.adjoint = op, adjoint
        return op._apply_adjoint(t) if adjoint else op._apply_forward(t)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return _Apply.apply(grad, ctx.op, not ctx.adjoint), None, None


class MIMORadar(LinearOperator):
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
    memory_budget : int
        Bytes for the steering cache plus the temporaries of one apply.
    cache_steering : ``"auto"`` | ``True`` | ``False``
        Keep ``E_T``/``E_R`` for all frequencies (``s·N_f·P·(N_T+N_R)`` bytes,
        ``s = 8`` for complex64): ``"auto"`` when that leaves ``min(16 MiB, budget/4)``
        of ``memory_budget`` for the blocks (``op.steering_bytes`` tells the size),
        ``True`` requires it to fit.
    dtype : torch.complex64 or torch.complex128
    device : torch device (every tensor is created there)

    Shapes
    ------
    ``in_shape = (N_z, N_x)`` (rows = range), ``out_shape = (N_T, N_R, N_f)``,
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
        memory_budget: int = 256 * 2**20,
        cache_steering: bool | str = "auto",
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
    ) -> None:
        tx, rx = as_positions(tx, "tx"), as_positions(rx, "rx")
        f, gx, gz = as_frequencies(frequencies), as_grid(x, "x"), as_grid(z, "z")
        mode = spreading_mode(spreading)
        if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, float, np.integer, np.floating)):
            raise TypeError(f"memory_budget must be a number of bytes, got {type(memory_budget).__name__}")
        if not (math.isfinite(memory_budget) and memory_budget > 0):
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
        self.memory_budget = int(memory_budget)
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

    # ------------------------------------------------------------------ geometry helpers
    def _uniform_step(self) -> float | None:
        f = self.frequencies
        if f.size < 2:
            return None
        step = (f[-1] - f[0]) / (f.size - 1)
        dev = float(np.max(np.abs(f - (f[0] + step * np.arange(f.size)))))
        d_max = max_distance(self.x, self.z, np.concatenate((self.tx, self.rx)))
        err = 2 * math.pi * dev * 2 * d_max / SPEED_OF_LIGHT  # phase error (rad) of treating f as uniform
        return float(step) if err <= _UNIFORM_TOL_RAD else None

    def _geom(self) -> dict:
        if "geom" not in self._cache:
            arrays = {"tx": self.tx, "rx": self.rx, "f": self.frequencies, "x": self.x, "z": self.z}
            self._cache["geom"] = {
                k: torch.tensor(np.array(v), dtype=torch.float64, device=self.device) for k, v in arrays.items()
            }
        return self._cache["geom"]

    def _distances(self, p0: int, p1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """float64 distances of pixels ``[p0, p1)``: scale side ``(N_S, Pc)``, GEMM side ``(Pc, N_G)``."""
        g = self._geom()
        idx = torch.arange(p0, p1, device=self.device)
        px, pz = g["x"][idx % self.in_shape[1]], g["z"][idx // self.in_shape[1]]
        a_s, a_g = (g["rx"], g["tx"]) if self._swap else (g["tx"], g["rx"])
        d_s = torch.hypot(a_s[:, :1] - px, a_s[:, 1:] - pz)
        d_g = torch.hypot(px[:, None] - a_g[:, 0], pz[:, None] - a_g[:, 1])
        return d_s, d_g

    # ------------------------------------------------------------------ memory planning
    @property
    def _itemsize(self) -> int:
        return 8 if self.dtype == torch.complex64 else 16

    @property
    def steering_bytes(self) -> int:
        """Bytes of the full steering cache ``E_T``, ``E_R`` for all frequencies."""
        n_t, n_r, n_f = self.out_shape
        return self._itemsize * n_f * self.size_in * (n_t + n_r)

    def _pixel_bytes(self, m: int, batch: int, cached: bool) -> int:
        """Upper bound on the temporary bytes per pixel of a block of ``m`` frequencies."""
        n_t, n_r, _ = self.out_shape
        s, n, n_s = self._itemsize, n_t + n_r, min(n_t, n_r)
        work = (2 * m + 1) * batch * n_s * s  # scaled side (forward) or W and W⊙E (adjoint)
        if cached:
            return work
        table = self._table(m)
        n_phasor = min(m, -(-self.out_shape[2] // m)) if table else m  # phasors evaluated in one call
        kept = 8 * n + s * n * (m + n_phasor if table else m)  # distances, offset tables, anchors / phasors
        transient = (32 + s) * n * n_phasor  # float64 cycles and pairs, real pairs of one evaluation
        if self.spreading == "hankel":
            transient += 64 * n * m  # float64 k·d and complex128 Hankel values (numpy) of one block
        return kept + max(transient, work + s * m * (n - n_s))  # ... or the work buffers and the GEMM side

    def _plan(self, batch: int, budget: int, cached: bool) -> tuple[int, int, int]:
        """``(sub_batch, pixels_per_block, freqs_per_block)`` fitting ``budget`` bytes.

        Aims for ``_WANT_PIXELS`` pixels per block (long GEMM inner dimension) with as
        many frequencies as fit; shrinks the frequency block, then the pixel block,
        then splits the batch.
        """
        p, n_f = self.size_in, self.out_shape[2]
        pmin = min(p, _MIN_PIXELS)
        b = batch
        while True:
            for target in (min(p, _WANT_PIXELS[cached]), pmin):
                m = n_f
                while m >= 1:
                    pc = budget // self._pixel_bytes(m, b, cached)
                    if pc >= target:
                        return b, min(p, pc), m
                    m //= 2
            if b == 1:
                need = self._pixel_bytes(1, 1, cached) * pmin + self._cached_bytes()
                raise ValueError(
                    f"memory_budget={self.memory_budget} bytes is too small for one frequency of a block of "
                    f"{pmin} pixels (needs about {need} bytes)"
                )
            b = (b + 1) // 2

    def _cached_bytes(self) -> int:
        return self.steering_bytes if self._use_cache else 0

    def _target(self) -> int:  # working-set target of one block on this device
        return _BLOCK_TARGET.get(self.device.type, _BLOCK_TARGET["cuda"])

    def _resolve_cache(self) -> None:
        reserve = max(min(self._target(), self.memory_budget // 4), self._pixel_bytes(1, 1, False) * _MIN_PIXELS)
        fits = self.steering_bytes + reserve <= self.memory_budget
        need = self.steering_bytes + self._pixel_bytes(1, 1, False) * min(self.size_in, _MIN_PIXELS)  # + building
        if self.cache_steering is True and need > self.memory_budget:
            raise ValueError(f"cache_steering=True needs about {need} bytes > memory_budget={self.memory_budget}")
        self._use_cache = bool(self.cache_steering is True or (self.cache_steering == "auto" and fits))
        self._plan(1, self._block_budget(), self._use_cache)  # raises when even one block cannot fit

    def _block_budget(self) -> int:
        return min(self.memory_budget - self._cached_bytes(), self._target())

    def _after_to(self) -> None:
        self._cache = {}  # caches were built for the old device/dtype; rebuild lazily
        self._resolve_cache()

    # ------------------------------------------------------------------ steering blocks
    def _blocks(self, pc: int, m: int):
        """Yield ``(p0, p1, k0, k1, a, S, G)`` over all pixel and frequency blocks.

        ``S (m, N_S, Pc)`` is the steering of the side that is scaled by the image
        (TX unless ``N_T > N_R``), ``G (m, Pc, N_G)`` the other side; when ``a`` is
        not None the scale side is ``a[None] ⊙ S`` (anchor ``a (N_S, Pc)`` times offset table).
        """
        n_f = self.out_shape[2]
        if self._use_cache:
            c_s, c_g = self._steering_cache()
            for p0 in range(0, self.size_in, pc):
                p1 = min(p0 + pc, self.size_in)
                for k0 in range(0, n_f, m):
                    k1 = min(k0 + m, n_f)
                    yield p0, p1, k0, k1, None, c_s[k0:k1, :, p0:p1], c_g[k0:k1, p0:p1]
            return
        yield from self._generate(pc, m)

    def _generate(self, pc: int, m: int):
        n_f, dt, real = self.out_shape[2], self.dtype, self.real_dtype
        f_c = self._geom()["f"] / SPEED_OF_LIGHT
        starts, scratch = range(0, n_f, m), {}
        for p0 in range(0, self.size_in, pc):
            p1 = min(p0 + pc, self.size_in)
            d_s, d_g = self._distances(p0, p1)
            if self._table(m):  # E(f_k0 + s·Δf) = E(f_k0) · E(s·Δf): exact anchors times an offset table
                t_s, t_g = self._offset_table(d_s, m), self._offset_table(d_g, m)
                for g0 in range(0, len(starts), m):  # anchors of ≤ m blocks at a time
                    f_a = f_c[starts[g0 : g0 + m], None, None]
                    a_s, a_g = _cis(f_a * d_s, dt), _cis(f_a * d_g, dt)
                    if self.spreading != "none":
                        a_s, a_g = a_s * self._amplitude(d_s, real), a_g * self._amplitude(d_g, real)
                    for i, k0 in enumerate(starts[g0 : g0 + m]):
                        k1 = min(k0 + m, n_f)
                        e_g = _take(scratch, "g", (k1 - k0, *d_g.shape), dt, self.device)
                        yield p0, p1, k0, k1, a_s[i], t_s[: k1 - k0], torch.mul(a_g[i], t_g[: k1 - k0], out=e_g)
                continue
            for k0 in starts:
                k1 = min(k0 + m, n_f)
                e_s, e_g = _cis(f_c[k0:k1, None, None] * d_s, dt), _cis(f_c[k0:k1, None, None] * d_g, dt)
                if self.spreading == "hankel":
                    k_k = 2 * math.pi * f_c[k0:k1, None, None]
                    e_s, e_g = e_s * self._hankel_factor(k_k, d_s), e_g * self._hankel_factor(k_k, d_g)
                elif self.spreading != "none":
                    e_s, e_g = e_s * self._amplitude(d_s, real), e_g * self._amplitude(d_g, real)
                yield p0, p1, k0, k1, None, e_s, e_g

    def _amplitude(self, d: torch.Tensor, real: torch.dtype) -> torch.Tensor:
        """Real per-side amplitude of ``"spherical"`` (``1/d``) or ``"cylindrical"`` (``1/√d``) spreading."""
        return (1 / d if self.spreading == "spherical" else d.rsqrt()).to(real)

    def _hankel_factor(self, k: torch.Tensor, d: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``hankel_correction(k d)/√d`` (complex ``dtype``, default ``self.dtype``) for ``k (m, 1, 1)`` and ``d``."""
        kd = (k * d).cpu().numpy()
        amp = hankel_correction(kd) / np.sqrt(np.broadcast_to(d.cpu().numpy(), kd.shape))
        return torch.as_tensor(amp, device=self.device).to(dtype or self.dtype)

    def _table(self, m: int) -> bool:
        """Whether blocks of ``m`` frequencies are built from anchors and an offset table (uniform steps)."""
        return self._step is not None and m >= 4

    def _offset_table(self, d: torch.Tensor, m: int) -> torch.Tensor:
        """``T[s] = exp(-2πj s Δf d / c)`` for ``s < m`` by doubling: ⌈log₂ m⌉ exact phasors, ≤ that many roundings."""
        t = torch.empty(m, *d.shape, dtype=self.dtype, device=self.device)
        t[0] = 1
        n = 1
        while n < m:
            k = min(n, m - n)
            torch.mul(t[:k], _cis((n * self._step / SPEED_OF_LIGHT) * d, self.dtype), out=t[n : n + k])
            n += k
        return t

    def _steering_cache(self) -> tuple[torch.Tensor, torch.Tensor]:
        if "steering" not in self._cache:
            n_t, n_r, n_f = self.out_shape
            n_s, n_g = (n_r, n_t) if self._swap else (n_t, n_r)
            c_s = torch.empty(n_f, n_s, self.size_in, dtype=self.dtype, device=self.device)
            c_g = torch.empty(n_f, self.size_in, n_g, dtype=self.dtype, device=self.device)
            _, pc, m = self._plan(1, min(self.memory_budget - self.steering_bytes, self._target()), False)
            for p0, p1, k0, k1, a_s, e_s, e_g in self._generate(pc, m):
                c_s[k0:k1, :, p0:p1] = e_s if a_s is None else a_s * e_s
                c_g[k0:k1, p0:p1] = e_g
            self._cache["steering"] = (c_s, c_g)
        return self._cache["steering"]

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


def _take(store: dict, key: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A contiguous scratch tensor of ``shape`` reusing ``store[key]`` (avoids re-allocating every block)."""
    n = math.prod(shape)
    if key not in store or store[key].numel() < n:
        store[key] = torch.empty(n, dtype=dtype, device=device)
    return store[key][:n].view(shape)
