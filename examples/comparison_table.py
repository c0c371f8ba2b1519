r"""The full comparison table: classical baselines vs untrained priors on every bundled modality.

What it shows
-------------
For each bundled measurement file (MIMO radar, partial Fourier, diffraction
tomography) one table with

* the modality's direct image (backprojection, zero filling or filtered backpropagation) and
  the fair classical baselines — **CGLS**, **TV** and **ℓ1** (pixels for radar, Haar
  otherwise), each with its parameter chosen by the discrepancy principle with the same σ
  estimate the priors use (no parameter tuned against the truth);
* each requested untrained prior fitted to the single measurement and stopped
  **without ground truth** (discrepancy principle with estimated σ, returned as a
  running average).

Columns: run time, data misfit ``½‖Ax − y‖²/(Mσ²)`` (≈ 1 means "fits to the noise
level"), PSNR and SSIM on magnitudes against the simulated truth, the chosen
iteration. This is what ``rfprior compare FILE`` prints for one file; here it runs
over all three and also writes the numbers as JSON.

Run it
------
::

    python examples/comparison_table.py                       # ≈ 2 minutes on 2 CPU cores
    python examples/comparison_table.py --priors deep_decoder,dip_small,controlled_small,complex
    python examples/comparison_table.py --fast                # seconds (for tests)

Writes ``comparison.json`` into ``--outdir``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from rfprior import io
from rfprior.workflows import compare, format_table

DATA = io.bundled_dir()  # the bundled data/*.h5
FILES = {"mimo": "mimo.h5", "partial_fourier": "partial_fourier.h5", "diffraction_tomography": "tomography.h5"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny iteration counts, no penalty (for tests)")
    parser.add_argument("--outdir", type=Path, default=Path("examples-out"), help="where the JSON goes")
    parser.add_argument("--priors", default="deep_decoder,dip_small", help="comma-separated prior names")
    parser.add_argument("--iterations", type=int, default=None, help="iteration budget per prior (default 600)")
    parser.add_argument("--modalities", default=",".join(FILES), help=f"subset of {','.join(FILES)}")
    args = parser.parse_args(argv)
    iterations = args.iterations or (5 if args.fast else 600)
    priors = tuple(p.strip() for p in args.priors.split(",") if p.strip())
    args.outdir.mkdir(parents=True, exist_ok=True)

    report = {}
    for modality in (m.strip() for m in args.modalities.split(",")):
        if modality not in FILES:
            parser.error(f"--modalities: unknown modality {modality!r}; expected some of {', '.join(FILES)}")
        ds = io.load(DATA / FILES[modality])
        op, y = io.operator_from(ds)
        truth = torch.as_tensor(ds["truth"].values)
        sigma = float(ds.attrs["noise_sigma"])  # only to express the misfit in units of Mσ²; rules estimate σ
        # --fast (a smoke run): 5 iterations and no penalty, whose automatic weight is itself a TV solve
        rows, _ = compare(
            op,
            y,
            truth=truth,
            priors=priors,
            iterations=iterations,
            seed=0,
            tv_iters=10 if args.fast else 200,
            penalty=None if args.fast else "auto",
        )
        print(f"\n## {modality} ({FILES[modality]}, {op.size_out} measurements, image {op.in_shape})\n")
        print(format_table(rows, op.size_out, sigma))
        report[modality] = [
            {
                "method": r.method,
                "seconds": r.seconds,
                "misfit_over_M_sigma2": r.misfit / (op.size_out * sigma**2),
                "psnr_db": None if r.psnr is None else float(r.psnr),
                "ssim": None if r.ssim is None else float(r.ssim),
                "iteration": r.extra.get("iteration"),
            }
            for r in rows
        ]
    for rows in report.values():  # JSON has no NaN
        for r in rows:
            r.update({k: None for k, v in r.items() if isinstance(v, float) and not math.isfinite(v)})
    out = args.outdir / "comparison.json"
    out.write_text(json.dumps({"iterations": iterations, "priors": priors, "tables": report}, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
