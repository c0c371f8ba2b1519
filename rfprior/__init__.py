"""rfprior — complex-valued RF imaging with untrained-network priors.

Reconstruct ``x`` from complex measurements ``y = A x + n`` (MIMO radar, partial
Fourier, diffraction tomography) by fitting an untrained network to the single
measurement, pick the iterate without ground truth, and compare against classical
backprojection. Physics lives in the separate :mod:`operators` package; each forward
model's file schema, σ estimator, baselines, simulation and defaults in
:mod:`rfprior.modalities`.

>>> import rfprior, operators
>>> op = operators.PartialFourier(operators.variable_density_mask((64, 64), 4, seed=0))
>>> # result = rfprior.reconstruct(y, op)       # arrays in memory
>>> # job = rfprior.reconstruct_file("scan.h5", "scan.nc")   # a file to a result file
"""

from . import io, metrics, modalities, scenes, stopping
from ._version import __version__
from .batching import batch
from .defaults import default_prior
from .fit import IterationState, reconstruct
from .losses import DSPLoss, MSELoss
from .metrics import psnr, ssim
from .priors import make_prior
from .problem import Problem, reconstruct_file
from .result import Result
from .stopping import Discrepancy, FixedIterations, HoldOut, RunningAverage, StoppingRule
from .workflows import compare

__all__ = [
    "DSPLoss",
    "Discrepancy",
    "FixedIterations",
    "HoldOut",
    "IterationState",
    "MSELoss",
    "Problem",
    "Result",
    "RunningAverage",
    "StoppingRule",
    "__version__",
    "batch",
    "compare",
    "default_prior",
    "io",
    "make_prior",
    "metrics",
    "modalities",
    "psnr",
    "reconstruct",
    "reconstruct_file",
    "scenes",
    "ssim",
    "stopping",
]
