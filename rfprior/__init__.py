"""rfprior — complex-valued RF imaging with untrained-network priors.

Reconstruct ``x`` from complex measurements ``y = A x + n`` (MIMO radar, partial
Fourier, diffraction tomography) by fitting an untrained network to the single
measurement, pick the iterate without ground truth, and compare against classical
backprojection. Physics lives in the separate :mod:`operators` package.
"""

__version__ = "0.1.0"
