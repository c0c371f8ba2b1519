"""The API reference builds from the docstrings with no warning (``make docs``, docs/api).

Nitpicky (``-n``) and strict (``-W``): an import failure, a broken cross-reference to an
rfprior/operators name, bad reST or numpydoc markup, or an object documented twice fails it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_api_reference_builds_without_warnings(tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "sphinx",
        "-W", "--keep-going", "-n", "-q", "-E",
        "-b", "html",
        "-d", str(tmp_path / "doctrees"),
        str(ROOT / "docs" / "api"), str(tmp_path / "html"),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": ""}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"sphinx failed ({done.returncode}):\n{done.stderr[-8000:]}"
    pages = {p.stem for p in (ROOT / "docs" / "api").glob("*.rst")}
    assert {"operators", "rfprior", "rfprior.fit", "rfprior.priors", "rfprior.stopping"} <= pages
    for page in pages:
        assert (tmp_path / "html" / f"{page}.html").is_file(), page
