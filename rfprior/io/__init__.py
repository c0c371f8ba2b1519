"""Reading and writing rfprior files.

* Measurement files (HDF5, DESIGN.md §6): :func:`load` → ``xarray.Dataset``,
  :func:`operator_from` → ``(operator, y)``, :func:`save_measurements`.
* Result files (NetCDF4/HDF5): :func:`save_result`, :func:`load_result`.

Every malformed input raises :class:`FormatError` (a ``ValueError``) naming the
file, the field, what was found and what was expected. Writes are atomic and
never replace an existing file unless ``force=True``.
"""

from .errors import FormatError
from .measurements import FORMAT_VERSION, load, operator_from, save_measurements
from .modalities import MODALITIES, build_operator
from .results import RESULT_FORMAT, load_result, load_weights, save_result
from .summary import describe

__all__ = [
    "FORMAT_VERSION",
    "FormatError",
    "MODALITIES",
    "RESULT_FORMAT",
    "build_operator",
    "describe",
    "load",
    "load_result",
    "load_weights",
    "operator_from",
    "save_measurements",
    "save_result",
]
