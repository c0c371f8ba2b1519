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
* ``"kbnufft"`` — `torchkbnufft <https://torchkbnufft.readthedocs.io>`_, a Kaiser–Bessel
  gridding NUFFT written in PyTorch: it runs on whatever device the tensors are on (the
  GPU path; no copies to the host), its adjoint is the exact transpose of its forward
  (same interpolation weights), and autograd goes through it natively. 6-point kernel on
  a 2× grid. Interpolation ``kb_interp``: ``"table"`` (default; 2¹² table, relative error
  ≈ 2e-4 against the exact NUDFT) or ``"sparse"`` (the interpolation weights
  precomputed once as sparse matrices, ≈ 1e-5; ``M·36`` non-zeros of memory). Which of
  the two is faster depends on the image size (see docs/notes.md, "Measurements formerly
  quoted in code").

All paths are differentiable with respect to the image / coefficients.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from .base import LinearOperator, real_dtype_of

__all__ = ["NonUniformFourier2D", "kbnufft_available", "nufft_available"]

_CHUNK_ELEMENTS = 1 << 22  # complex elements per intermediate chunk (32 MiB in complex64)
_TABLE_BYTES = 256 << 20  # cache dense phase tables up to this size, else build them per chunk
_TABLE_BYTES_DEVICE = 4 << 30  # the same off the CPU: rebuilding them on the host every call costs seconds


def dense_table_bytes(n_samples: int, shape: tuple[int, int], dtype: torch.dtype = torch.complex64) -> int:
    """Bytes of the dense path's two phase tables ``E_y (M, H)`` and ``E_x (M, W)``."""
    return n_samples * (shape[0] + shape[1]) * torch.empty((), dtype=dtype).element_size()


def dense_tables_cached(n_samples: int, shape: tuple[int, int], device: torch.device | str,
                        dtype: torch.dtype = torch.complex64) -> bool:  # fmt: skip
    """Whether the dense path keeps its phase tables on ``device`` (else it rebuilds them per call)."""
    limit = _TABLE_BYTES if torch.device(device).type == "cpu" else _TABLE_BYTES_DEVICE
    return dense_table_bytes(n_samples, shape, dtype) <= limit
_MEASURE_PIXELS = 128 * 128  # finufft: FFTW_MEASURE planning from this image size up
# finufft on one thread below this many nonuniform points: its threads cost more than they save on
# small problems (threshold chosen by measurement; see docs/notes.md, "Measurements formerly quoted
# in code"). The forward is bit-identical; the adjoint's spreading sums in another order.
_SINGLE_THREAD_POINTS = 200_000
_KB_NUMPOINTS = 6  # torchkbnufft kernel width; on a 2× grid with a 2¹² table: ≈ 2e-4 relative error
_KB_TABLE = 1 << 12
METHODS = ("dense", "nufft", "kbnufft")


def nufft_available() -> bool:
    """Whether the ``finufft`` library can be imported (the ``"nufft"`` path)."""
    try:
        import finufft  # noqa: F401
    except ImportError:
        return False
    return True


def kbnufft_available() -> bool:
    """Whether the ``torchkbnufft`` library can be imported (the ``"kbnufft"`` path, any device)."""
    try:
        import torchkbnufft  # noqa: F401
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
    method : ``"dense"``, ``"nufft"`` (finufft, CPU) or ``"kbnufft"`` (torchkbnufft, any device)
    eps : finufft accuracy (default 1e-6 in complex64, 1e-12 in complex128)
    kb_interp : ``"table"`` or ``"sparse"`` — torchkbnufft's interpolation (above)
    dtype, device : complex dtype and torch device

    Notes
    -----
    Shapes: forward ``(..., H, W) → (..., M)``; adjoint ``(..., M) → (..., H, W)``;
    ``dims == ("sample",)``.
    """

    def __init__(
        self,
        omega: np.ndarray | torch.Tensor,
        shape: tuple[int, int],
        *,
        method: str = "dense",
        eps: float | None = None,
        kb_interp: str = "table",
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
    ) -> None:
        if kb_interp not in ("table", "sparse"):
            raise ValueError(f"NonUniformFourier2D: kb_interp must be 'table' or 'sparse', got {kb_interp!r}")
        om = np.asarray(omega.detach().cpu() if isinstance(omega, torch.Tensor) else omega, dtype=np.float64)
        if om.ndim != 2 or om.shape[1] != 2 or om.shape[0] == 0:
            raise ValueError(f"NonUniformFourier2D: omega must have shape (M, 2) with M ≥ 1, got {om.shape}")
        if not np.isfinite(om).all():
            raise ValueError("NonUniformFourier2D: omega contains NaN or Inf")
        if method not in METHODS:
            raise ValueError(f"NonUniformFourier2D: method must be one of {METHODS}, got {method!r}")
        if method == "nufft" and not nufft_available():
            raise ImportError("NonUniformFourier2D: method='nufft' needs the 'finufft' package (pip install finufft)")
        if method == "kbnufft" and not kbnufft_available():
            raise ImportError(
                "NonUniformFourier2D: method='kbnufft' needs the 'torchkbnufft' package (pip install torchkbnufft)"
            )
        super().__init__(shape, (om.shape[0],), ("sample",), dtype=dtype, device=device)
        # wrap into [-π, π): exact, the DFT is 2π-periodic in ω on an integer grid
        self.omega = np.mod(om + np.pi, 2 * np.pi) - np.pi
        self.method = method
        self.eps = eps
        self.kb_interp = kb_interp
        self._after_to()

    # ------------------------------------------------------------------ state
    def _after_to(self) -> None:
        self._plans: dict[int, Any] = {}
        self._tables: tuple[torch.Tensor, torch.Tensor] | None = None
        self._kb: tuple[Any, Any, torch.Tensor, Any] | None = None
        if self.method == "kbnufft":
            self._kb = self._make_kb()
        if self.method == "dense" and dense_tables_cached(self.size_out, self.in_shape, self.device, self.dtype):
            self._tables = self._make_tables(0, self.size_out)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_plans"] = {}  # finufft plans are not copyable; rebuilt lazily
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.method == "kbnufft" and self._kb is None:
            self._kb = self._make_kb()

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
        if self.method == "kbnufft":
            return 2e-5 if self.kb_interp == "sparse" else 2e-4
        return self.eps if self.eps is not None else (1e-6 if self.dtype == torch.complex64 else 1e-12)

    # ------------------------------------------------------------------ dense path
    def _make_tables(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        # float64 phases, exponentiated on the operator's device (on a GPU, building large tables on
        # the host is far slower; docs/notes.md) in slices that bound the float64 temporaries
        H, W = self.in_shape
        on_device = self.device.type == "cuda"  # float64 on the device; others (e.g. MPS) on the host
        where = self.device if on_device else torch.device("cpu")
        om = torch.from_numpy(self.omega[start:stop]).to(where)
        ny = torch.arange(H, dtype=torch.float64, device=where) - H // 2
        nx = torch.arange(W, dtype=torch.float64, device=where) - W // 2
        ey = torch.empty(stop - start, H, dtype=self.dtype, device=self.device)
        ex = torch.empty(stop - start, W, dtype=self.dtype, device=self.device)
        step = max(1, (1 << 24) // max(H, W))
        for s in range(0, stop - start, step):
            for table, n, axis in ((ey, ny, 0), (ex, nx, 1)):
                ph = torch.outer(om[s : s + step, axis], n)
                table[s : s + step] = torch.polar(torch.ones_like(ph), -ph).to(device=self.device, dtype=self.dtype)
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
                nthreads=self._threads(), fftw=self._fftw_flag(),
            )
            plan.setpts(np.ascontiguousarray(self.omega[:, 0], rdt), np.ascontiguousarray(self.omega[:, 1], rdt))
            if len(self._plans) >= 4:
                self._plans.clear()
            self._plans[n_trans] = plan
        return plan

    def _threads(self) -> int:
        """finufft's threads: one for small problems (``_SINGLE_THREAD_POINTS``), else torch's."""
        return 1 if self.omega.shape[0] < _SINGLE_THREAD_POINTS else torch.get_num_threads()

    def _fftw_flag(self) -> int:
        # FFTW_MEASURE (0) plans once per grid size and process (remembered as wisdom) and then
        # runs faster than FFTW_ESTIMATE (64) from 128² up; below that, estimate (chosen by
        # measurement; docs/notes.md, "Measurements formerly quoted in code").
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
                1, self.in_shape, n_trans, eps=self.accuracy, isign=1, dtype=cdt, fftw=self._fftw_flag(),
                nthreads=self._threads(),
            )
            plan.setpts(np.ascontiguousarray(self.omega[:, 0], rdt), np.ascontiguousarray(self.omega[:, 1], rdt))
            self._plans[key] = plan
        return self._plans[key]

    # ------------------------------------------------------------------ torchkbnufft path
    def _make_kb(self) -> tuple[Any, Any, torch.Tensor, Any]:
        import torchkbnufft as tkbn

        H, W = self.in_shape
        grid = (2 * H, 2 * W)
        kw = {"im_size": (H, W), "grid_size": grid, "numpoints": _KB_NUMPOINTS, "table_oversamp": _KB_TABLE,
              "dtype": self.dtype, "device": self.device}  # fmt: skip
        ktraj = torch.from_numpy(np.ascontiguousarray(self.omega.T)).to(device=self.device, dtype=self.real_dtype)
        mats = None
        if self.kb_interp == "sparse":
            with warnings.catch_warnings():  # torchkbnufft builds COO tensors without invariant checks
                warnings.simplefilter("ignore", UserWarning)
                mats = tkbn.calc_tensor_spmatrix(ktraj, im_size=(H, W), grid_size=grid, numpoints=_KB_NUMPOINTS,
                                                 table_oversamp=_KB_TABLE)  # fmt: skip
        return tkbn.KbNufft(**kw), tkbn.KbNufftAdjoint(**kw), ktraj, mats

    def _kb_forward(self, f: torch.Tensor) -> torch.Tensor:
        fwd, _, ktraj, mats = self._kb
        return fwd(f[:, None], ktraj, interp_mats=mats)[:, 0]

    def _kb_adjoint(self, c: torch.Tensor) -> torch.Tensor:
        _, adj, ktraj, mats = self._kb
        return adj(c[:, None], ktraj, interp_mats=mats)[:, 0]

    # ------------------------------------------------------------------ LinearOperator API
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[:-2]
        f = x.reshape(-1, *self.in_shape)
        if self.method == "dense":
            c = self._dense_forward(f)
        elif self.method == "kbnufft":
            c = self._kb_forward(f)
        else:
            c = _Type2.apply(f, self)
        return c.reshape(*batch, self.size_out)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        batch = y.shape[:-1]
        c = y.reshape(-1, self.size_out)
        if self.method == "dense":
            f = self._dense_adjoint(c)
        elif self.method == "kbnufft":
            f = self._kb_adjoint(c)
        else:
            f = _Type1.apply(c, self)
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
