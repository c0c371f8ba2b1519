"""operators — complex linear forward models for RF imaging, and their classical inverses.

A physics package that stands on its own (torch, numpy, scipy only); it never
imports :mod:`rfprior`. Every operator is a :class:`LinearOperator` acting on native
complex tensors with leading batch axes.
"""

from . import arrays
from .backpropagation import angle_weights, filtered_backpropagation, filtered_backpropagation_op
from .base import (
    AdjointOperator,
    ComposedOperator,
    LinearOperator,
    RestrictedOperator,
    ScaledOperator,
    SumOperator,
    complex_dtype_of,
    linear_part,
    real_dtype_of,
)
from .born_iterative import BIMResult, born_iterative_tv
from .classical import (
    backproject,
    cg_least_squares,
    cgls_discrepancy,
    divergence2d,
    gradient2d,
    tv_discrepancy,
    tv_reconstruct,
)
from .complex import from_channels, to_channels
from .elementary import Diagonal, Identity
from .fourier import PartialFourier, centered_fft2, centered_ifft2
from .fullwave_tv import FullWaveTVResult, fullwave_tv
from .inverse_scattering import CSIResult, csi_mr
from .krylov import ConvergenceError, KrylovInfo, bicgstab
from .lippmann_schwinger import FieldBorn, LippmannSchwinger, green_2d
from .masks import cartesian_mask, radial_mask, variable_density_mask
from .mimo import SPEED_OF_LIGHT, MIMORadar
from .nufft import NonUniformFourier2D
from .parameter_choice import DiscrepancyChoice, discrepancy_target
from .sequence_tv import SequenceTVChoice, divergence3d, gradient3d, tv_sequence, tv_sequence_discrepancy
from .sparsity import haar2d, ihaar2d, l1_discrepancy, l1_reconstruct
from .testing import check_adjoint
from .tomography import (
    DiffractionTomography,
    born_data,
    index_to_object,
    object_to_index,
    refocus,
    rytov_data,
    unwrap_phase,
)

__all__ = [
    "BIMResult",
    "CSIResult",
    "FullWaveTVResult",
    "ConvergenceError",
    "FieldBorn",
    "KrylovInfo",
    "LippmannSchwinger",
    "bicgstab",
    "green_2d",
    "linear_part",
    "SPEED_OF_LIGHT",
    "DiffractionTomography",
    "MIMORadar",
    "NonUniformFourier2D",
    "angle_weights",
    "arrays",
    "born_data",
    "filtered_backpropagation",
    "filtered_backpropagation_op",
    "index_to_object",
    "object_to_index",
    "refocus",
    "rytov_data",
    "unwrap_phase",
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
    "born_iterative_tv",
    "csi_mr",
    "fullwave_tv",
    "cartesian_mask",
    "centered_fft2",
    "centered_ifft2",
    "cg_least_squares",
    "cgls_discrepancy",
    "DiscrepancyChoice",
    "discrepancy_target",
    "haar2d",
    "ihaar2d",
    "l1_discrepancy",
    "l1_reconstruct",
    "tv_discrepancy",
    "check_adjoint",
    "complex_dtype_of",
    "divergence2d",
    "from_channels",
    "gradient2d",
    "radial_mask",
    "real_dtype_of",
    "to_channels",
    "tv_reconstruct",
    "SequenceTVChoice",
    "divergence3d",
    "gradient3d",
    "tv_sequence",
    "tv_sequence_discrepancy",
    "variable_density_mask",
]
