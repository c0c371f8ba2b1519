"""Operator benchmarks: MIMO radar and diffraction tomography vs dense implementations.

Run: ``python -m benchmarks.operators`` (or ``make bench``). Prints both tables and
writes ``benchmarks/results/operators_mimo.json`` and ``operators_dt.json``.
"""

from __future__ import annotations

import runpy
import sys


def main() -> None:
    for mod in ("benchmarks.bench_mimo", "benchmarks.bench_dt"):
        print(f"== {mod} ==", flush=True)
        runpy.run_module(mod, run_name="__main__")


if __name__ == "__main__":
    sys.exit(main())
