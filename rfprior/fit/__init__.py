"""The solver: :func:`reconstruct` fits an untrained prior to one measurement.

============  ==================================================================
module        role
============  ==================================================================
``api``       :func:`reconstruct` (public), set-up of one fit, the refit
``options``   :class:`FitOptions`: ``reconstruct``'s keywords, checked and resolved once
``resolve``   ``prior=`` / ``loss=`` / ``init=`` → objects and recorded settings
``loop``      the maths of one iteration: forward, loss, Adam step, backtracking
``runner``    monitors, history, callbacks, progress, signals, checkpoints
``ensemble``  ``fits=K``: independently seeded fits, averaged
============  ==================================================================
"""

from .api import reconstruct
from .ensemble import SEED_STRIDE, fit_ensemble, fit_seeds
from .loop import IterationState
from .options import FitOptions

__all__ = ["SEED_STRIDE", "FitOptions", "IterationState", "fit_ensemble", "fit_seeds", "reconstruct"]
