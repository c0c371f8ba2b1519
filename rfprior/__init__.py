"""rfprior — complex-valued RF imaging with untrained-network priors.

Reconstruct ``x`` from complex measurements ``y = A x + n`` (MIMO radar, partial
Fourier, diffraction tomography) by fitting an untrained network to the single
measurement, pick the iterate without ground truth, and compare against classical
backprojection. Physics lives in the separate :mod:`operators` package.

>>> import rfprior, operators
>>> op = operators.PartialFourier(operators.variable_density_mask((64, 64), 4, seed=0))
>>> # result = rfprior.reconstruct(y, op)  # the discrepancy stop with a running average (rfprior.defaults)
"""

__version__ = "0.1.0"

from . import defaults, io, losses, metrics, penalty, priors, scenes, stopping
from .batching import batch
from .defaults import (
    DEFAULT_PENALTIES,
    DEFAULT_PRIORS,
    DEFAULTS,
    default_iterations,
    default_lr,
    default_penalty,
    default_prior,
)
from .fit import FitOptions, IterationState, reconstruct
from .losses import DSPLoss, MSELoss
from .metrics import fbc, nmse, psnr, ssim
from .priors import make_prior
from .result import NetworkState, Result
from .stopping import (
    BlurSharpness,
    Discrepancy,
    FixedIterations,
    HoldOut,
    RunningAverage,
    StoppingRule,
    WindowedVariance,
)

__all__ = [
    "DEFAULTS",
    "DEFAULT_PENALTIES",
    "DEFAULT_PRIORS",
    "DSPLoss",
    "FitOptions",
    "MSELoss",
    "NetworkState",
    "BlurSharpness",
    "Discrepancy",
    "FixedIterations",
    "HoldOut",
    "IterationState",
    "Result",
    "RunningAverage",
    "StoppingRule",
    "WindowedVariance",
    "__version__",
    "default_iterations",
    "default_lr",
    "default_penalty",
    "batch",
    "defaults",
    "default_prior",
    "fbc",
    "io",
    "losses",
    "make_prior",
    "metrics",
    "nmse",
    "penalty",
    "priors",
    "psnr",
    "reconstruct",
    "scenes",
    "ssim",
    "stopping",
]
