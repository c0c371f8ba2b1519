r"""The linear-operator core: :class:`LinearOperator` and its algebra.

Every forward model in :mod:`operators` is a complex linear map

.. math::  A : \mathbb{C}^{\text{in\_shape}} \to \mathbb{C}^{\text{out\_shape}}

acting on native complex tensors (``torch.complex64`` by default). Any number of
leading batch axes is allowed: ``forward`` maps ``(..., *in_shape)`` to
``(..., *out_shape)`` and ``adjoint`` the reverse.

Operators are immutable values: ``.to()``, ``restrict()``, ``@``, scaling and
``+`` return new operators and never change the ones they are built from.

Subclasses implement :meth:`LinearOperator._forward` and
:meth:`LinearOperator._adjoint` on tensors whose trailing axes already have the
right shape; the public methods check shapes and dtypes first.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch

__all__ = [
    "LinearOperator",
    "AdjointOperator",
    "ComposedOperator",
    "ScaledOperator",
    "SumOperator",
    "RestrictedOperator",
    "real_dtype_of",
    "complex_dtype_of",
]

_COMPLEX = (torch.complex64, torch.complex128)


def real_dtype_of(dtype: torch.dtype) -> torch.dtype:
    """The real dtype with the precision of a complex ``dtype`` (``complex64 → float32``)."""
    return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)


def complex_dtype_of(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype with the precision of ``dtype`` (``float64 → complex128``)."""
    if dtype in _COMPLEX:
        return dtype
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _check_complex_dtype(dtype: Any, name: str = "dtype") -> torch.dtype:
    if dtype not in _COMPLEX:
        raise TypeError(f"{name} must be torch.complex64 or torch.complex128, got {dtype!r}")
    return dtype


class LinearOperator:
    """Base class of every complex linear forward model.

    Attributes
    ----------
    in_shape : tuple of int
        Shape of one image, e.g. ``(H, W)``.
    out_shape : tuple of int
        Shape of one measurement vector, e.g. ``(N_T, N_R, N_f)``.
    dims : tuple of str
        Names of the measurement axes, ``len(dims) == len(out_shape)``.
    spatial_dims : tuple of str
        The subset of ``dims`` that are spatial (aperture) axes rather than
        spectral ones; a spectral loss transforms only these.
    dtype : torch.dtype
        ``torch.complex64`` or ``torch.complex128``.
    device : torch.device
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        out_shape: Sequence[int],
        dims: Sequence[str],
        *,
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
        spatial_dims: Sequence[str] = (),
    ) -> None:
        self.in_shape: tuple[int, ...] = tuple(int(s) for s in in_shape)
        self.out_shape: tuple[int, ...] = tuple(int(s) for s in out_shape)
        self.dims: tuple[str, ...] = tuple(dims)
        if len(self.dims) != len(self.out_shape):
            raise ValueError(
                f"dims {self.dims} must name every measurement axis of out_shape {self.out_shape}"
            )
        if not set(spatial_dims) <= set(self.dims):
            raise ValueError(f"spatial_dims {tuple(spatial_dims)} must be a subset of dims {self.dims}")
        self.spatial_dims: tuple[str, ...] = tuple(spatial_dims)
        self.dtype: torch.dtype = _check_complex_dtype(dtype)
        self.device: torch.device = torch.device(device if device is not None else "cpu")
        self._opnorm_cache: float | None = None

    # ------------------------------------------------------------------ subclass API
    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ public API
    @property
    def real_dtype(self) -> torch.dtype:
        """Real dtype of matching precision (``float32`` for ``complex64``)."""
        return real_dtype_of(self.dtype)

    @property
    def size_in(self) -> int:
        """Number of complex unknowns (pixels)."""
        return math.prod(self.in_shape)

    @property
    def size_out(self) -> int:
        """Number of complex measurements ``M``."""
        return math.prod(self.out_shape)

    def _check(self, t: torch.Tensor, shape: tuple[int, ...], what: str) -> torch.Tensor:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{type(self).__name__}.{what}: expected a torch.Tensor, got {type(t).__name__}")
        n = len(shape)
        if tuple(t.shape[t.ndim - n :]) != shape or t.ndim < n:
            raise ValueError(
                f"{type(self).__name__}.{what}: expected trailing shape {shape}, got {tuple(t.shape)}"
            )
        if t.dtype != self.dtype:
            if t.dtype in _COMPLEX or t.is_floating_point():
                t = t.to(self.dtype)
            else:
                raise TypeError(
                    f"{type(self).__name__}.{what}: expected a complex or real floating tensor, got {t.dtype}"
                )
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``A``: ``(..., *in_shape) → (..., *out_shape)``."""
        return self._forward(self._check(x, self.in_shape, "forward"))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Apply ``Aᴴ``: ``(..., *out_shape) → (..., *in_shape)``."""
        return self._adjoint(self._check(y, self.out_shape, "adjoint"))

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``AᴴA``: ``(..., *in_shape) → (..., *in_shape)``."""
        return self.adjoint(self.forward(x))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    @property
    def H(self) -> LinearOperator:  # noqa: N802 - mathematical notation
        """The adjoint operator ``Aᴴ`` as an operator."""
        return AdjointOperator(self)

    # ------------------------------------------------------------------ algebra
    def __matmul__(self, other: LinearOperator | torch.Tensor) -> LinearOperator | torch.Tensor:
        if isinstance(other, LinearOperator):
            return ComposedOperator(self, other)
        if isinstance(other, torch.Tensor):
            return self.forward(other)
        return NotImplemented

    def __mul__(self, scalar: complex) -> LinearOperator:
        if isinstance(scalar, (int, float, complex)) and not isinstance(scalar, bool):
            return ScaledOperator(self, complex(scalar))
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, scalar: complex) -> LinearOperator:
        if isinstance(scalar, (int, float, complex)) and not isinstance(scalar, bool):
            if scalar == 0:
                raise ZeroDivisionError("cannot divide an operator by zero")
            return ScaledOperator(self, 1.0 / complex(scalar))
        return NotImplemented

    def __neg__(self) -> LinearOperator:
        return ScaledOperator(self, -1.0 + 0j)

    def __add__(self, other: LinearOperator) -> LinearOperator:
        if isinstance(other, LinearOperator):
            return SumOperator(self, other)
        return NotImplemented

    def __sub__(self, other: LinearOperator) -> LinearOperator:
        if isinstance(other, LinearOperator):
            return SumOperator(self, ScaledOperator(other, -1.0 + 0j))
        return NotImplemented

    # ------------------------------------------------------------------ subsets
    def restrict(self, index: torch.Tensor | Sequence[int]) -> RestrictedOperator:
        """The operator onto a subset of measurements.

        Parameters
        ----------
        index : bool tensor of shape ``out_shape``, or int tensor/sequence of flat indices
            Which measurements to keep. ``op.restrict(i).forward(x)`` equals
            ``op.forward(x).reshape(*batch, -1)[..., flat]`` exactly, where ``flat``
            is ``i.flatten().nonzero()`` for a boolean mask or ``i`` itself.

        Returns
        -------
        RestrictedOperator
            With ``out_shape == (K,)`` and ``dims == ("sample",)``.
        """
        return RestrictedOperator(self, index)

    # ------------------------------------------------------------------ device / dtype
    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> LinearOperator:
        """A copy on ``device`` and/or with complex ``dtype``; ``self`` is unchanged."""
        new_dtype = self.dtype if dtype is None else _check_complex_dtype(dtype)
        new_device = self.device if device is None else torch.device(device)
        if new_dtype == self.dtype and new_device == self.device:
            return self
        new = copy.copy(self)
        new.__dict__ = {k: _convert(v, new_device, new_dtype) for k, v in self.__dict__.items()}
        new.dtype = new_dtype
        new.device = new_device
        new._after_to()
        return new

    def _after_to(self) -> None:
        """Hook for subclasses that keep derived state (e.g. caches) to rebuild it."""

    # ------------------------------------------------------------------ norms
    def opnorm(self, iters: int = 100, tol: float = 1e-6, seed: int = 0) -> float:
        """Largest singular value ``‖A‖₂`` by power iteration on ``AᴴA`` (cached)."""
        if self._opnorm_cache is not None:
            return self._opnorm_cache
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(self.in_shape, generator=g, dtype=self.dtype).to(self.device)
        x = x / _norm(x)
        lam = 0.0
        with torch.no_grad():
            for _ in range(iters):
                v = self.normal(x)
                new = _norm(v)
                if new == 0.0 or not math.isfinite(new):
                    lam = new if math.isfinite(new) else lam
                    break
                x = v / new
                if abs(new - lam) <= tol * new:
                    lam = new
                    break
                lam = new
        self._opnorm_cache = math.sqrt(lam)
        return self._opnorm_cache

    def normal_diagonal(self) -> torch.Tensor:
        """Diagonal of ``AᴴA`` (real, shape ``in_shape``).

        The default probes the centre pixel with a delta and broadcasts the value,
        exact for shift-invariant operators; subclasses override it with the exact
        diagonal where it is cheap.
        """
        delta = torch.zeros(self.in_shape, dtype=self.dtype, device=self.device)
        centre = tuple(s // 2 for s in self.in_shape)
        delta[centre] = 1
        with torch.no_grad():
            value = self.normal(delta)[centre].real
        return torch.full(self.in_shape, float(value), dtype=self.real_dtype, device=self.device)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(in_shape={self.in_shape}, out_shape={self.out_shape}, "
            f"dims={self.dims}, dtype={self.dtype}, device={self.device})"
        )


def _norm(t: torch.Tensor) -> float:
    """Euclidean norm as a Python float, safe against float32 under/overflow (physical units can be ~1e-13)."""
    peak = float(t.abs().max()) if t.numel() else 0.0
    if peak == 0.0 or not math.isfinite(peak):
        return peak
    return float(torch.linalg.vector_norm(t / peak)) * peak


def _convert(value: Any, device: torch.device, dtype: torch.dtype) -> Any:
    if isinstance(value, LinearOperator):
        return value.to(device, dtype)
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            return value.to(device=device, dtype=dtype)
        if value.is_floating_point():
            return value.to(device=device, dtype=real_dtype_of(dtype))
        return value.to(device=device)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, LinearOperator) for v in value):
        return type(value)(v.to(device, dtype) for v in value)
    return value


def _same_kind(a: LinearOperator, b: LinearOperator, what: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"{what}: dtypes differ ({a.dtype} vs {b.dtype}); call .to(dtype=...) first")
    if a.device != b.device:
        raise ValueError(f"{what}: devices differ ({a.device} vs {b.device}); call .to(device=...) first")


class AdjointOperator(LinearOperator):
    """``Aᴴ`` as an operator; its ``.H`` gives ``A`` back."""

    def __init__(self, op: LinearOperator) -> None:
        super().__init__(
            op.out_shape,
            op.in_shape,
            tuple(f"dim_{i}" for i in range(len(op.in_shape))),
            dtype=op.dtype,
            device=op.device,
        )
        self.op = op

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op._adjoint(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.op._forward(y)

    @property
    def H(self) -> LinearOperator:  # noqa: N802
        return self.op


class ComposedOperator(LinearOperator):
    """``A @ B``: apply ``B`` first, then ``A``."""

    def __init__(self, outer: LinearOperator, inner: LinearOperator) -> None:
        if outer.in_shape != inner.out_shape:
            raise ValueError(
                f"cannot compose: outer in_shape {outer.in_shape} != inner out_shape {inner.out_shape}"
            )
        _same_kind(outer, inner, "composition")
        super().__init__(
            inner.in_shape,
            outer.out_shape,
            outer.dims,
            dtype=outer.dtype,
            device=outer.device,
            spatial_dims=outer.spatial_dims,
        )
        self.outer = outer
        self.inner = inner

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer._forward(self.inner._forward(x))

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.inner._adjoint(self.outer._adjoint(y))


class ScaledOperator(LinearOperator):
    """``c · A`` for a complex scalar ``c``."""

    def __init__(self, op: LinearOperator, scale: complex) -> None:
        super().__init__(
            op.in_shape, op.out_shape, op.dims, dtype=op.dtype, device=op.device, spatial_dims=op.spatial_dims
        )
        self.op = op
        self.scale = complex(scale)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op._forward(x) * _scalar(self.scale)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.op._adjoint(y) * _scalar(self.scale.conjugate())

    def normal_diagonal(self) -> torch.Tensor:
        return self.op.normal_diagonal() * abs(self.scale) ** 2


def _scalar(c: complex) -> complex | float:
    return c.real if c.imag == 0 else c


class SumOperator(LinearOperator):
    """``A + B`` for operators of equal shapes."""

    def __init__(self, a: LinearOperator, b: LinearOperator) -> None:
        if a.in_shape != b.in_shape or a.out_shape != b.out_shape:
            raise ValueError(
                f"cannot add operators of shapes {a.in_shape}→{a.out_shape} and {b.in_shape}→{b.out_shape}"
            )
        _same_kind(a, b, "sum")
        super().__init__(a.in_shape, a.out_shape, a.dims, dtype=a.dtype, device=a.device, spatial_dims=a.spatial_dims)
        self.a = a
        self.b = b

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a._forward(x) + self.b._forward(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.a._adjoint(y) + self.b._adjoint(y)


class RestrictedOperator(LinearOperator):
    """``S A``: ``A`` followed by selecting measurements at flat indices ``index``.

    ``out_shape == (K,)``, ``dims == ("sample",)``. The adjoint scatters into a zero
    measurement array of ``A.out_shape`` and applies ``Aᴴ``.
    """

    def __init__(self, op: LinearOperator, index: torch.Tensor | Sequence[int]) -> None:
        flat = _flat_index(index, op.out_shape, op.size_out)
        super().__init__(op.in_shape, (flat.numel(),), ("sample",), dtype=op.dtype, device=op.device)
        self.op = op
        self.index = flat.to(op.device)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.op._forward(x)
        return y.reshape(*y.shape[: y.ndim - len(self.op.out_shape)], -1)[..., self.index]

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        batch = y.shape[:-1]
        full = y.new_zeros(*batch, self.op.size_out)
        full = full.index_copy(full.ndim - 1, self.index, y)
        return self.op._adjoint(full.reshape(*batch, *self.op.out_shape))

    def restrict(self, index: torch.Tensor | Sequence[int]) -> RestrictedOperator:
        sub = _flat_index(index, self.out_shape, self.size_out)
        return RestrictedOperator(self.op, self.index[sub.to(self.index.device)].cpu())

    def normal_diagonal(self) -> torch.Tensor:
        """Diagonal of ``AᴴSᵀSA``: exact when ``A.normal_diagonal`` takes measurement ``weights``
        (e.g. :class:`~operators.MIMORadar`: the kept entries' count as weights), else the base probe."""
        if "weights" not in inspect.signature(self.op.normal_diagonal).parameters:
            return super().normal_diagonal()
        w = torch.zeros(self.op.size_out, dtype=self.real_dtype, device=self.device)
        w.index_add_(0, self.index, torch.ones(self.index.numel(), dtype=self.real_dtype, device=self.device))
        return self.op.normal_diagonal(weights=w.reshape(self.op.out_shape))


def _flat_index(index: torch.Tensor | Sequence[int], out_shape: tuple[int, ...], size: int) -> torch.Tensor:
    idx = torch.as_tensor(index)
    if idx.dtype == torch.bool:
        if tuple(idx.shape) != out_shape and idx.numel() != size:
            raise ValueError(f"restrict: boolean index must have shape {out_shape}, got {tuple(idx.shape)}")
        flat = idx.reshape(-1).nonzero().reshape(-1)
    elif idx.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
        flat = idx.reshape(-1).to(torch.int64)
        if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= size):
            lo, hi = int(flat.min()), int(flat.max())
            raise ValueError(f"restrict: flat indices must lie in [0, {size}), got [{lo}, {hi}]")
    else:
        raise TypeError(f"restrict: index must be a boolean mask or integer indices, got dtype {idx.dtype}")
    if flat.numel() == 0:
        raise ValueError("restrict: index selects no measurements")
    return flat.cpu()
