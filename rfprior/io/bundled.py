"""The example measurement files that ship with rfprior (``data/*.h5`` in the repository).

In an installed package the repository's ``data/`` folder is the package ``rfprior.data``
(``pyproject.toml``: ``package-dir``/``package-data``), so the files are found through
:mod:`importlib.resources` wherever rfprior is installed; in a source checkout that is
not installed (``PYTHONPATH=.``) they are read from ``data/`` next to the package.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["bundled", "bundled_dir", "bundled_files"]

_SOURCE_DATA = Path(__file__).resolve().parents[2] / "data"


def bundled_dir() -> Path:
    """The folder holding the bundled ``*.h5`` files."""
    try:
        root = resources.files("rfprior.data")
    except ModuleNotFoundError:  # source checkout, not installed: the repository's data/
        return _SOURCE_DATA
    return Path(str(root))  # a plain folder: rfprior is never installed zipped (h5py needs a real path)


def bundled_files() -> list[str]:
    """Names of the bundled measurement files, sorted (e.g. ``["matlab_style.h5", "mimo.h5", …]``)."""
    return sorted(p.name for p in bundled_dir().glob("*.h5"))


def bundled(name: str) -> Path:
    """Path of the bundled measurement file ``name`` (e.g. ``"mimo.h5"``); ``FileNotFoundError`` if there is none."""
    path = bundled_dir() / name
    if not path.is_file():
        have = ", ".join(bundled_files()) or "none"
        raise FileNotFoundError(f"no bundled file {name!r} (bundled: {have}; regenerate with python data/make_data.py)")
    return path
