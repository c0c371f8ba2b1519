"""Reading and writing rfprior files.

* Measurement files (HDF5, ``docs/design.md`` §6): :func:`load` → ``xarray.Dataset``,
  :func:`operator_from` → ``(operator, y)``, :func:`save_measurements`, :func:`save_dataset`.
* Importers: :func:`read_fresnel` (Institut Fresnel 2001 ``.exp`` files, calibrated).
* Result files (NetCDF4/HDF5): :func:`save_result`, :func:`load_result`.
* The bundled example files: :func:`bundled` (``bundled("mimo.h5")`` → its path).

Every malformed input raises :class:`FormatError` (a ``ValueError``) naming the
file, the field, what was found and what was expected. Writes are atomic and
never replace an existing file unless ``force=True``.
"""

from .bundled import bundled, bundled_dir, bundled_files
from .errors import FormatError
from .fresnel import read_fresnel
from .measurements import FORMAT_VERSION, load, operator_from, save_dataset, save_measurements
from .modalities import build_operator
from .results import RESULT_FORMAT, load_result, load_weights, save_result
from .schema import MODALITIES
from .summary import describe

__all__ = [
    "FORMAT_VERSION",
    "FormatError",
    "MODALITIES",
    "RESULT_FORMAT",
    "build_operator",
    "bundled",
    "bundled_dir",
    "bundled_files",
    "describe",
    "load",
    "load_result",
    "load_weights",
    "operator_from",
    "read_fresnel",
    "save_dataset",
    "save_measurements",
    "save_result",
]
