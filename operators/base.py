r"""The linear-operator core: :class:`LinearOperator`.

Every forward model in :mod:`operators` is a complex linear map

.. math::  A : \mathbb{C}^{\text{in\_shape}} \to \mathbb{C}^{\text{out\_shape}}

acting on native complex tensors (``torch.complex64`` by default). Any number of
leading batch axes is allowed: ``forward`` maps ``(..., *in_shape)`` to
``(..., *out_shape)`` and ``adjoint`` the reverse.

Operators are immutable values: ``.to()``, ``restrict()``, ``@``, scaling and
``+`` return new operators and never change the ones they are built from.

The operators its algebra returns (``.H``, ``@``, scaling, ``+``, ``restrict``) live in
:mod:`operators.algebra`. Subclasses implement :meth:`LinearOperator._forward` and
:meth:`LinearOperator._adjoint` on tensors whose trailing axes already have the
right shape; the public methods check shapes and dtypes first.
"""

from __future__ import annotations

import copy
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
    "linear_part",
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
    is_linear : bool
        ``False`` for a nonlinear forward model (e.g. :class:`~operators.LippmannSchwinger`):
        its ``forward`` is the model, it has no ``adjoint``, and :func:`linear_part` gives the
        linearisation that anything needing an adjoint or a norm uses.
    """

    is_linear: bool = True

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
            raise ValueError(f"dims {self.dims} must name every measurement axis of out_shape {self.out_shape}")
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
            raise ValueError(f"{type(self).__name__}.{what}: expected trailing shape {shape}, got {tuple(t.shape)}")
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
        """Largest singular value ``‖A‖₂`` by power iteration on ``AᴴA`` (cached).

        For a nonlinear operator: the norm of its :func:`linear_part`.
        """
        if self._opnorm_cache is not None:
            return self._opnorm_cache
        if not self.is_linear:
            self._opnorm_cache = linear_part(self).opnorm(iters, tol, seed)
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


def linear_part(op: LinearOperator) -> LinearOperator:
    """``op`` itself if linear, else its linearisation (``op.born`` for a scattering model).

    Scaling and restriction carry over (``linear_part(c·S A) = c·S linear_part(A)``); anything
    that needs an adjoint or a norm of a nonlinear model uses this, and says so.
    """
    if op.is_linear:
        return op
    if isinstance(op, ScaledOperator):
        return ScaledOperator(linear_part(op.op), op.scale)
    if isinstance(op, RestrictedOperator):
        return RestrictedOperator(linear_part(op.op), op.index)
    born = getattr(op, "born", None)
    if isinstance(born, LinearOperator):
        return born
    raise TypeError(f"{type(op).__name__} is nonlinear and offers no linearisation (.born)")


def _norm(t: torch.Tensor) -> float:
    """Euclidean norm as a Python float, safe against float32 under/overflow (physical units can be ~1e-13)."""
    peak = float(t.abs().max()) if t.numel() else 0.0
    if peak == 0.0 or not math.isfinite(peak):
        return peak
    t = t / peak
    # a complex tensor through its real view: PyTorch's complex vector_norm is ~100x slower on the CPU
    return float(torch.linalg.vector_norm(torch.view_as_real(t) if t.is_complex() else t)) * peak


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


# The algebra (Aᴴ, A @ B, c·A, A + B, restriction) subclasses LinearOperator, so it comes after it.
from .algebra import (  # noqa: E402
    AdjointOperator,
    ComposedOperator,
    RestrictedOperator,
    ScaledOperator,
    SumOperator,
)
