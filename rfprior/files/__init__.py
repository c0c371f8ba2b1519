"""File primitives shared by every layer: field checks, :class:`FormatError`, atomic writes, HDF5 readers.

Nothing here knows a forward model or a file format; the formats are :mod:`rfprior.io`,
the per-forward-model rules :mod:`rfprior.modalities`.
"""

from .atomic import atomic_path
from .checks import Checker
from .errors import FormatError

__all__ = ["Checker", "FormatError", "atomic_path"]
