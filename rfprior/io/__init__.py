"""Reading and writing rfprior files.

* Measurement files (HDF5, ``docs/design.md`` §6): :func:`load` → ``xarray.Dataset``,
  :func:`read_record` → a validated :class:`Record`, :func:`operator_from` → ``(operator, y)``,
  :func:`operators_from` → ``([operator per frame], [y per frame])`` (frame sequences),
  :func:`save_measurements`, :func:`save_dataset`.
* Importers: :func:`read_fresnel` (Institut Fresnel 2001 ``.exp`` files, calibrated).
* Result files (NetCDF4/HDF5): :func:`save_result`, :func:`load_result`, :func:`load_weights`.
* The bundled example files: :func:`bundled` (``bundled("mimo.h5")`` → its path).

The per-forward-model parts of the format (geometry fields, axes) are the
:class:`~rfprior.modalities.Modality`'s. Every malformed input raises :class:`FormatError`
(a ``ValueError``) naming the file, the field, what was found and what was expected. Writes
are atomic and never replace an existing file unless ``force=True``.
"""

from ..files.errors import FormatError
from ..weights import load_weights
from .bundled import bundled, bundled_dir, bundled_files
from .forward import operator_from, operators_from
from .fresnel import read_fresnel
from .layout import build_operator, record_from_dataset, to_dataset
from .measurements import FORMAT_VERSION, dataset_of, load, read_record, save_dataset, save_measurements
from .results import RESULT_FORMAT, load_result, save_result
from .schema import Record, validate
from .summary import describe

__all__ = [
    "FORMAT_VERSION",
    "RESULT_FORMAT",
    "FormatError",
    "Record",
    "build_operator",
    "bundled",
    "bundled_dir",
    "bundled_files",
    "dataset_of",
    "describe",
    "load",
    "load_result",
    "load_weights",
    "operator_from",
    "operators_from",
    "read_fresnel",
    "read_record",
    "record_from_dataset",
    "save_dataset",
    "save_measurements",
    "save_result",
    "to_dataset",
    "validate",
]
