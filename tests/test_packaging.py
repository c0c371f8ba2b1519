"""The wheel (``pip install .``, not editable) holds the bundled data, every package and the console script."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rfprior.io import bundled, bundled_files

ROOT = Path(__file__).resolve().parents[1]


def test_bundled_files_are_found() -> None:
    names = bundled_files()
    assert {"mimo.h5", "partial_fourier.h5", "tomography.h5", "matlab_style.h5"} <= set(names)
    assert all(n.endswith(".h5") for n in names)
    assert bundled("mimo.h5").is_file()
    with pytest.raises(FileNotFoundError, match=r"no bundled file 'nope\.h5'.*mimo\.h5"):
        bundled("nope.h5")


@pytest.mark.slow
def test_wheel_holds_data_packages_and_entry_point(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", minversion="77")
    src = tmp_path / "src"  # a copy, so the build leaves no build/ or egg-info in the repository
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("rfprior", "operators", "data"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "wheel"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w"]
    subprocess.run([*cmd, str(out), str(src)], check=True, capture_output=True, text=True, timeout=120)
    (wheel,) = out.glob("rfprior-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
        metadata = next(z.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    # every bundled data/*.h5 (new ones too: package-data globs *.h5), and the format description
    for h5 in sorted(p.name for p in (ROOT / "data").glob("*.h5")):
        assert f"rfprior/data/{h5}" in names, h5
    assert "rfprior/data/README.md" in names
    # every package of the source tree (pyproject.toml lists them: a new subpackage must be added there)
    for top in ("rfprior", "operators"):
        for init in (ROOT / top).rglob("__init__.py"):
            pkg = init.parent.relative_to(ROOT).as_posix()
            assert f"{pkg}/__init__.py" in names, f"{pkg} is missing from [tool.setuptools] packages in pyproject.toml"
    assert "rfprior = rfprior.cli:main" in entry_points
    assert "License-Expression: BSD-3-Clause" in metadata
