r"""Steering blocks of :class:`operators.mimo.MIMORadar`: phasors, spreading, memory planning.

The model (see :mod:`operators.mimo`) is separable per frequency, ``y_k = E_T(k)ᵀ diag(x) E_R(k)``
with ``E_T(k)[p, i] = e^{-j k |t_i - p|}`` times the spreading amplitude. This module
builds those steering matrices block by block (pixels × frequencies), within a memory
budget; :class:`SteeringBlocks` is the base class that holds this machinery, and
:class:`~operators.mimo.MIMORadar` adds the construction, the products and the windows.

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

from .arrays import max_distance
from .base import LinearOperator

__all__ = [
    "SPEED_OF_LIGHT",
    "SPREADING_MODES",
    "SteeringBlocks",
    "default_memory_budget",
    "hankel_correction",
    "spreading_mode",
]

#: Amplitude models of :class:`~operators.mimo.MIMORadar` (see :mod:`operators.mimo`).
SPREADING_MODES = ("none", "spherical", "cylindrical", "hankel")

SPEED_OF_LIGHT = 299_792_458.0
#: Working-set target of one block (bytes), below ``memory_budget``: keeps CPU blocks in cache.
_BLOCK_TARGET = {"cpu": 16 * 2**20, "cuda": 1024 * 2**20}
_MIN_PIXELS = 16  # smallest pixel block the planner will use
#: Default ``memory_budget`` per device type: on a GPU the steering cache of a 512² image (2.1 GB
#: for 8 × 8 antennas × 64 frequencies) fits, so an apply is matrix products, not phasor generation.
_DEFAULT_BUDGET = {"cpu": 256 * 2**20, "cuda": 4 * 2**30}


def default_memory_budget(device: torch.device | str) -> int:
    """``MIMORadar``'s ``memory_budget`` when none is given: 256 MiB on the CPU, 4 GiB elsewhere."""
    return _DEFAULT_BUDGET.get(torch.device(device).type, _DEFAULT_BUDGET["cuda"])
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


def _take(store: dict, key: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A contiguous scratch tensor of ``shape`` reusing ``store[key]`` (avoids re-allocating every block)."""
    n = math.prod(shape)
    if key not in store or store[key].numel() < n:
        store[key] = torch.empty(n, dtype=dtype, device=device)
    return store[key][:n].view(shape)


class SteeringBlocks(LinearOperator):
    """The steering side of :class:`~operators.mimo.MIMORadar` (not used on its own).

    Reads the geometry that ``MIMORadar.__init__`` sets (``tx``, ``rx``, ``frequencies``,
    ``x``, ``z`` as float64 numpy; ``spreading``, ``memory_budget``, ``cache_steering``,
    ``_step``, ``_swap``, ``_cache``) and provides distances, the block plan under
    ``memory_budget`` and the steering blocks (generated, or from the full cache).
    """

    tx: np.ndarray
    rx: np.ndarray
    frequencies: np.ndarray
    x: np.ndarray
    z: np.ndarray
    spreading: str
    memory_budget: int
    cache_steering: bool | str
    _step: float | None  # uniform frequency step (offset tables), None when not uniform or Hankel
    _swap: bool  # True: RX is the side scaled by the image (N_T > N_R)
    _cache: dict  # "geom" (float64 tensors), "steering" (the full E_S, E_G); cleared by .to()
    _use_cache: bool

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
        if getattr(self, "_budget_arg", 0) is None:  # the default budget follows the device
            self.memory_budget = default_memory_budget(self.device)
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
