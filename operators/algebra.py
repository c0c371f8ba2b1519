r"""The algebra of linear operators: ``Aᴴ``, ``A @ B``, ``c · A``, ``A + B`` and ``S A`` (restriction).

The derived operators that :class:`~operators.base.LinearOperator`'s methods return
(``.H``, ``@``, ``*``, ``/``, ``-``, ``+``, ``restrict``). Each applies its parts' private
``_forward``/``_adjoint`` directly (shapes are checked once, by the outermost operator)
and requires its parts to share dtype and device.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch

from .base import LinearOperator

__all__ = ["AdjointOperator", "ComposedOperator", "RestrictedOperator", "ScaledOperator", "SumOperator"]


def _same_kind(a: LinearOperator, b: LinearOperator, what: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"{what}: dtypes differ ({a.dtype} vs {b.dtype}); call .to(dtype=...) first")
    if a.device != b.device:
        raise ValueError(f"{what}: devices differ ({a.device} vs {b.device}); call .to(device=...) first")


class AdjointOperator(LinearOperator):
    """``Aᴴ`` as an operator; its ``.H`` gives ``A`` back."""

    def __init__(self, op: LinearOperator) -> None:
        if not op.is_linear:
            raise TypeError(f"{type(op).__name__} is nonlinear and has no adjoint; use operators.linear_part(op).H")
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
            raise ValueError(f"cannot compose: outer in_shape {outer.in_shape} != inner out_shape {inner.out_shape}")
        _same_kind(outer, inner, "composition")
        if not outer.is_linear:
            raise TypeError(f"cannot compose: the outer operator {type(outer).__name__} is nonlinear")
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
        self.is_linear = inner.is_linear

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
        self.is_linear = op.is_linear

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
        if not (a.is_linear and b.is_linear):
            raise TypeError("cannot add a nonlinear operator (use a LinearOperator on both sides)")
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
        self.is_linear = op.is_linear

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
