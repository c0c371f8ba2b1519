r"""Non-uniform 2-D discrete Fourier transform of an image: :class:`NonUniformFourier2D`.

Type 2 (image → non-uniform frequencies) and its exact adjoint (type 1):

.. math::

    c_m = \sum_{i, j} f_{ij}\, e^{-\mathrm{i}\,(\omega_{y,m} (i - H/\!/2) + \omega_{x,m} (j - W/\!/2))},
    \qquad
    (A^H c)_{ij} = \sum_m c_m\, e^{+\mathrm{i}\,(\omega_{y,m} (i - H/\!/2) + \omega_{x,m} (j - W/\!/2))}

with frequencies ``ω`` in radians per pixel (the DFT is ``2π``-periodic in ``ω``) and
the pixel ``(H//2, W//2)`` at the origin, as in the centred FFT of :mod:`.fourier`.

Two interchangeable paths:

* ``"dense"`` — exact NUDFT, separable: ``c = Σ_x (E_y f)[m, x] E_x[m, x]`` with the
  phase tables ``E_y (M, H)`` and ``E_x (M, W)`` computed in float64. Memory
  ``O(M (H + W))`` (tables) plus ``O(chunk · W)`` per batch item; cost ``O(M H W)``
  as batched matrix products. Adjoint uses the conjugate tables: exact to rounding.
* ``"nufft"`` — the `finufft <https://finufft.readthedocs.io>`_ library (CPU), one
  plan per batch size with ``execute`` / ``execute_adjoint`` (finufft ≥ 2.5), which
  are exact transposes of each other; accuracy ``eps`` (1e-6 for complex64, 1e-12 for
  complex128). Tensors on another device are computed on the CPU and moved back.

Both paths are differentiable with respect to the image / coefficients.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .base import LinearOperator, real_dtype_of

__all__ = ["NonUniformFourier2D", "nufft_available"]

_CHUNK_ELEMENTS = 1 << 22  # complex elements per intermediate chunk (32 MiB in complex64)
_TABLE_BYTES = 256 << 20  # cache dense phase tables up to this size, else build them per chunk
_MEASURE_PIXELS = 128 * 128  # finufft: FFTW_MEASURE planning from this image size up


def nufft_available() -> bool:
    """Whether the ``finufft`` library can be imported (the ``"nufft"`` path)."""
    try:
        import finufft  # noqa: F401
    except ImportError:
        return False
    return True


class NonUniformFourier2D(LinearOperator):
    """Type-2 NUDFT of an ``(H, W)`` image onto ``M`` frequencies, with its exact adjoint.

    Parameters
    ----------
    omega : array ``(M, 2)``, float
        Frequencies ``(ω_y, ω_x)`` in radians per pixel (``ω_y`` pairs with the row
        axis ``H``). Any real values; only ``ω mod 2π`` matters.
    shape : ``(H, W)``
    method : ``"dense"`` or ``"nufft"``
    eps : NUFFT accuracy (default 1e-6 in complex64, 1e-12 in complex128)
    dtype, device : complex dtype and torch device

    Shapes
    ------
    forward ``(..., H, W) → (..., M)``; adjoint ``(..., M) → (..., H, W)``;
    ``dims == ("sample",)``.
    """

    def __init__(
        self,
        omega: np.ndarray | torch.Tensor,
        shape: tuple[int, int],
        *,
        method: str = "dense",
        eps: float | None = None,
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
    ) -> None:
        om = np.asarray(omega.detach().cpu() if isinstance(omega, torch.Tensor) else omega, dtype=np.float64)
        if om.ndim != 2 or om.shape[1] != 2 or om.shape[0] == 0:
            raise ValueError(f"NonUniformFourier2D: omega must have shape (M, 2) with M ≥ 1, got {om.shape}")
        if not np.isfinite(om).all():
            raise ValueError("NonUniformFourier2D: omega contains NaN or Inf")
        if method not in ("dense", "nufft"):
            raise ValueError(f"NonUniformFourier2D: method must be 'dense' or 'nufft', got {method!r}")
        if method == "nufft" and not nufft_available():
            raise ImportError("NonUniformFourier2D: method='nufft' needs the 'finufft' package (pip install finufft)")
        super().__init__(shape, (om.shape[0],), ("sample",), dtype=dtype, device=device)
        # wrap into [-π, π): exact, the DFT is 2π-periodic in ω on an integer grid
        self.omega = np.mod(om + np.pi, 2 * np.pi) - np.pi
        self.method = method
        self.eps = eps
        self._after_to()

    # ------------------------------------------------------------------ state
    def _after_to(self) -> None:
        self._plans: dict[int, Any] = {}
        self._tables: tuple[torch.Tensor, torch.Tensor] | None = None
        H, W = self.in_shape
        nbytes = self.size_out * (H + W) * torch.empty((), dtype=self.dtype).element_size()
        if self.method == "dense" and nbytes <= _TABLE_BYTES:
            self._tables = self._make_tables(0, self.size_out)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_plans"] = {}  # finufft plans are not copyable; rebuilt lazily
        return state

    def __deepcopy__(self, memo: dict[int, Any]) -> NonUniformFourier2D:
        import copy

        new = copy.copy(self)
        new.__dict__ = copy.deepcopy(self.__getstate__(), memo)
        return new

    @property
    def accuracy(self) -> float:
        """Requested relative accuracy of the NUFFT (0 for the exact dense path)."""
        if self.method == "dense":
            return 0.0
        return self.eps if self.eps is not None else (1e-6 if self.dtype == torch.complex64 else 1e-12)

    # ------------------------------------------------------------------ dense path
    def _make_tables(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        H, W = self.in_shape
        om = self.omega[start:stop]
        ph_y = np.outer(om[:, 0], np.arange(H) - H // 2)
        ph_x = np.outer(om[:, 1], np.arange(W) - W // 2)
        ey = torch.from_numpy(np.exp(-1j * ph_y)).to(device=self.device, dtype=self.dtype)
        ex = torch.from_numpy(np.exp(-1j * ph_x)).to(device=self.device, dtype=self.dtype)
        return ey, ex

    def _chunks(self, batch: int, width: int) -> list[tuple[int, int]]:
        step = max(1, _CHUNK_ELEMENTS // max(1, batch * width))
        return [(s, min(s + step, self.size_out)) for s in range(0, self.size_out, step)]

    def _table(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._tables is not None:
            return self._tables[0][start:stop], self._tables[1][start:stop]
        return self._make_tables(start, stop)

    def _dense_forward(self, f: torch.Tensor) -> torch.Tensor:
        W = self.in_shape[1]
        out = []
        for s, e in self._chunks(f.shape[0], W):
            ey, ex = self._table(s, e)
            out.append(((ey @ f) * ex).sum(-1))  # (B, m, W) → (B, m)
        return torch.cat(out, dim=-1)

    def _dense_adjoint(self, c: torch.Tensor) -> torch.Tensor:
        H = self.in_shape[0]
        f = None
        for s, e in self._chunks(c.shape[0], H):
            ey, ex = self._table(s, e)
            term = (ey.conj().transpose(0, 1) * c[:, None, s:e]) @ ex.conj()  # (B, H, m) @ (m, W)
            f = term if f is None else f + term
        return f

    # ------------------------------------------------------------------ finufft path
    def _plan(self, n_trans: int) -> Any:
        plan = self._plans.get(n_trans)
        if plan is None:
            import finufft

            cdt = "complex64" if self.dtype == torch.complex64 else "complex128"
            rdt = np.float32 if self.dtype == torch.complex64 else np.float64
            plan = finufft.Plan(
                2, self.in_shape, n_trans, eps=self.accuracy, isign=-1, dtype=cdt,
                nthreads=torch.get_num_threads(), fftw=self._fftw_flag(),
            )
            plan.setpts(np.ascontiguousarray(self.omega[:, 0], rdt), np.ascontiguousarray(self.omega[:, 1], rdt))
            if len(self._plans) >= 4:
                self._plans.clear()
            self._plans[n_trans] = plan
        return plan

    def _fftw_flag(self) -> int:
        # FFTW_MEASURE (0) plans once per grid size and process (≈ 1 s, remembered as wisdom)
        # and then runs 3–8× faster than FFTW_ESTIMATE (64) from 128² up; below that, estimate.
        return 0 if math.prod(self.in_shape) >= _MEASURE_PIXELS else 64

    def _nufft_type2(self, f: torch.Tensor) -> torch.Tensor:
        arr = f.detach().to("cpu").contiguous().numpy()
        out = self._plan(arr.shape[0]).execute(arr if arr.shape[0] > 1 else arr[0])
        return torch.from_numpy(np.asarray(out).reshape(arr.shape[0], -1)).to(f.device)

    def _nufft_type1(self, c: torch.Tensor) -> torch.Tensor:
        arr = c.detach().to("cpu").contiguous().numpy()
        plan = self._plan(arr.shape[0])
        data = arr if arr.shape[0] > 1 else arr[0]
        if hasattr(plan, "execute_adjoint"):
            out = plan.execute_adjoint(data)
        else:  # finufft < 2.5: a type-1 plan with the opposite sign (adjoint to within eps)
            out = self._type1_plan(arr.shape[0]).execute(data)
        return torch.from_numpy(np.asarray(out).reshape(arr.shape[0], *self.in_shape)).to(c.device)

    def _type1_plan(self, n_trans: int) -> Any:  # pragma: no cover - only with finufft < 2.5
        import finufft

        key = -n_trans
        if key not in self._plans:
            cdt = "complex64" if self.dtype == torch.complex64 else "complex128"
            rdt = np.float32 if self.dtype == torch.complex64 else np.float64
            plan = finufft.Plan(
                1, self.in_shape, n_trans, eps=self.accuracy, isign=1, dtype=cdt, fftw=self._fftw_flag()
            )
            plan.setpts(np.ascontiguousarray(self.omega[:, 0], rdt), np.ascontiguousarray(self.omega[:, 1], rdt))
            self._plans[key] = plan
        return self._plans[key]

    # ------------------------------------------------------------------ LinearOperator API
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[:-2]
        f = x.reshape(-1, *self.in_shape)
        c = self._dense_forward(f) if self.method == "dense" else _Type2.apply(f, self)
        return c.reshape(*batch, self.size_out)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        batch = y.shape[:-1]
        c = y.reshape(-1, self.size_out)
        f = self._dense_adjoint(c) if self.method == "dense" else _Type1.apply(c, self)
        return f.reshape(*batch, *self.in_shape)

    def normal_diagonal(self) -> torch.Tensor:
        """Exactly ``M`` at every pixel (every phase factor has modulus one)."""
        return torch.full(self.in_shape, float(self.size_out), dtype=real_dtype_of(self.dtype), device=self.device)


class _Type2(torch.autograd.Function):
    """finufft type 2 with the adjoint (type 1) as its backward: ``grad_f = Aᴴ grad_c``."""

    @staticmethod
    def forward(ctx: Any, f: torch.Tensor, op: NonUniformFourier2D) -> torch.Tensor:
        ctx.op = op
        return op._nufft_type2(f)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _Type1.apply(grad.contiguous(), ctx.op), None


class _Type1(torch.autograd.Function):
    """finufft adjoint (type 1) with the type 2 as its backward."""

    @staticmethod
    def forward(ctx: Any, c: torch.Tensor, op: NonUniformFourier2D) -> torch.Tensor:
        ctx.op = op
        return op._nufft_type1(c)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _Type2.apply(grad.contiguous(), ctx.op), None


def dense_cost(n_samples: int, shape: tuple[int, int]) -> int:
    """Complex multiply-adds of one dense apply (``M · H · W``), used to pick a path."""
    return int(n_samples) * math.prod(shape)
