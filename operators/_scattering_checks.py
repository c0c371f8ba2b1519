"""Argument checks shared by the classical full-wave inverses (:mod:`operators.inverse_scattering`,
:mod:`operators.born_iterative`): one-line errors naming the function and the argument."""

from __future__ import annotations

import numpy as np
import torch

from .base import LinearOperator


def _check_operator(op: LinearOperator, name: str) -> None:
    for attr in ("incident", "green_data", "green_data_adjoint", "green_domain", "green_domain_adjoint"):
        if not hasattr(op, attr):
            raise TypeError(f"{name}: op must be a scattering operator such as LippmannSchwinger (no .{attr})")


def _measurements(
    op: LinearOperator, y: torch.Tensor, valid: torch.Tensor | None, name: str
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """``y`` on the device with zeros at invalid entries, the mask (or ``None``), and ``M``."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name}: y must be a torch.Tensor, got {type(y).__name__}")
    if tuple(y.shape) != op.out_shape:
        raise ValueError(f"{name}: y must have the shape {op.out_shape} (T, R, F), got {tuple(y.shape)}")
    if not (y.is_complex() or y.is_floating_point()):
        raise TypeError(f"{name}: y must be complex or real floating, got {y.dtype}")
    y = y.to(device=op.device, dtype=op.dtype)
    if valid is None:
        if not bool(torch.isfinite(y).all()):
            raise ValueError(f"{name}: y holds non-finite values; mark missing measurements with valid=")
        return y, None, op.size_out
    if not isinstance(valid, torch.Tensor) or valid.dtype != torch.bool:
        raise TypeError(f"{name}: valid must be a boolean torch.Tensor, got {getattr(valid, 'dtype', type(valid))}")
    if tuple(valid.shape) != op.out_shape:
        raise ValueError(f"{name}: valid must have the shape {op.out_shape} (T, R, F), got {tuple(valid.shape)}")
    valid = valid.to(op.device)
    m = int(valid.sum())
    if m == 0:
        raise ValueError(f"{name}: valid marks no measurement as valid")
    y = torch.where(valid, y, torch.zeros((), dtype=y.dtype, device=y.device))
    if not bool(torch.isfinite(y).all()):
        raise ValueError(f"{name}: y holds non-finite values at entries that valid marks as valid")
    return y, valid, m


def _initial_contrast(op: LinearOperator, chi0: torch.Tensor | None, name: str) -> torch.Tensor | None:
    if chi0 is None:
        return None
    if not isinstance(chi0, torch.Tensor):
        raise TypeError(f"{name}: chi0 must be a torch.Tensor, got {type(chi0).__name__}")
    if tuple(chi0.shape) != op.in_shape:
        raise ValueError(f"{name}: chi0 must have the shape {op.in_shape} (H, W), got {tuple(chi0.shape)}")
    chi0 = chi0.to(device=op.device, dtype=op.dtype)
    if not bool(torch.isfinite(chi0).all()):
        raise ValueError(f"{name}: chi0 holds non-finite values")
    return chi0


def _count(value: int, what: str, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: {what} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)
