"""The exception raised for a malformed measurement or result file."""

from __future__ import annotations

import os

__all__ = ["FormatError"]


class FormatError(ValueError):
    """A file (or an in-memory record about to be written) does not follow the rfprior format.

    The message names the file, the field, what was found and what was expected,
    e.g. ``scan.h5: field '/geometry/tx': found shape (8, 3); expected shape (N_T, 2)``.

    Attributes
    ----------
    path : str
        The file concerned (or a description such as ``"<in memory>"``).
    field : str
        The HDF5 path or attribute, e.g. ``"/geometry/frequencies"`` or ``"@modality"``.
    found, expected : str
        What the file holds and what the format requires, in words.
    """

    def __init__(self, path: str | os.PathLike[str], field: str, found: str, expected: str) -> None:
        self.path = os.fspath(path)
        self.field = field
        self.found = found
        self.expected = expected
        super().__init__(f"{self.path}: field '{field}': found {found}; expected {expected}")
