"""Stopping rules: choose the iterate without ground truth.

The first rule given to :func:`rfprior.reconstruct` decides; the others are
recorded in the history (their statistic per iteration and their own choice).
"""

from .average import RunningAverage
from .base import Decision, FitContext, FixedIterations, Monitor, StoppingRule
from .discrepancy import Discrepancy
from .holdout import HoldOut, split_indices
from .named import RULES, default_rules
from .sharpness import BlurSharpness, blur_measure, mlv_sharpness
from .variance import WindowedVariance

__all__ = [
    "BlurSharpness",
    "Decision",
    "Discrepancy",
    "FitContext",
    "FixedIterations",
    "HoldOut",
    "Monitor",
    "RULES",
    "RunningAverage",
    "StoppingRule",
    "WindowedVariance",
    "blur_measure",
    "default_rules",
    "mlv_sharpness",
    "split_indices",
]
