"""operators — complex linear forward models for RF imaging, and their classical inverses.

A physics package that stands on its own (torch, numpy, scipy only); it never
imports :mod:`rfprior`. Every operator is a :class:`LinearOperator` acting on native
complex tensors with leading batch axes.
"""

from .base import (
    AdjointOperator,
    ComposedOperator,
    LinearOperator,
    RestrictedOperator,
    ScaledOperator,
    SumOperator,
    complex_dtype_of,
    real_dtype_of,
)
from .classical import backproject, cg_least_squares, divergence2d, gradient2d, tv_reconstruct
from .complex import from_channels, to_channels
from .elementary import Diagonal, Identity
from .fourier import PartialFourier, centered_fft2, centered_ifft2
from .masks import cartesian_mask, radial_mask, variable_density_mask
from .testing import check_adjoint

__all__ = [
    "AdjointOperator",
    "ComposedOperator",
    "Diagonal",
    "Identity",
    "LinearOperator",
    "RestrictedOperator",
    "ScaledOperator",
    "SumOperator",
    "PartialFourier",
    "backproject",
    "cartesian_mask",
    "centered_fft2",
    "centered_ifft2",
    "cg_least_squares",
    "check_adjoint",
    "complex_dtype_of",
    "divergence2d",
    "from_channels",
    "gradient2d",
    "radial_mask",
    "real_dtype_of",
    "to_channels",
    "tv_reconstruct",
    "variable_density_mask",
]
