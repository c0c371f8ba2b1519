"""Reusable property checks for operators (adjointness, normal operator, restriction).

Used by the test suite and available to users who write their own operators.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import LinearOperator

__all__ = ["check_adjoint", "random_input", "random_output"]


def random_input(op: LinearOperator, batch: Sequence[int] = (), seed: int = 0) -> torch.Tensor:
    """Seeded complex Gaussian image of shape ``(*batch, *op.in_shape)``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*batch, *op.in_shape, generator=g, dtype=op.dtype).to(op.device)


def random_output(op: LinearOperator, batch: Sequence[int] = (), seed: int = 1) -> torch.Tensor:
    """Seeded complex Gaussian measurement of shape ``(*batch, *op.out_shape)``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*batch, *op.out_shape, generator=g, dtype=op.dtype).to(op.device)


def check_adjoint(op: LinearOperator, batch: Sequence[int] = (), seed: int = 0) -> float:
    r"""Relative adjoint error of ``op``.

    .. math:: \frac{|\langle A x, y\rangle - \langle x, A^H y\rangle|}{\|A\|\,\|x\|\,\|y\|}

    with seeded complex Gaussian ``x`` and ``y`` and ``‖A‖`` from :meth:`~operators.LinearOperator.opnorm`.
    Returns a float; it should be ≲ 1e-6 in complex64 and ≲ 1e-13 in complex128.
    """
    x = random_input(op, batch, seed)
    y = random_output(op, batch, seed + 1)
    with torch.no_grad():
        lhs = torch.vdot(op.forward(x).reshape(-1), y.reshape(-1))
        rhs = torch.vdot(x.reshape(-1), op.adjoint(y).reshape(-1))
    scale = op.opnorm() * torch.linalg.vector_norm(x) * torch.linalg.vector_norm(y)
    if float(scale) == 0.0:
        return float(abs(lhs - rhs))
    return float(abs(lhs - rhs) / scale)
