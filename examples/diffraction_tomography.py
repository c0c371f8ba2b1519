r"""Diffraction tomography of a cell-like phantom: filtered backpropagation vs a Deep Decoder.

What it shows
-------------
The bundled ``data/tomography.h5`` holds the normalised Born field ``u_B/u0`` of a
64² cell-like dielectric phantom (medium n_m = 1.333, contrast Δn ≈ 0.01–0.02,
small absorbing droplets), 128 illumination angles over 2π, λ0 = 633 nm, at 20 dB.
Reconstructions of the object function ``f = k_m²((n/n_m)² − 1)`` (m⁻²):

* **filtered backpropagation** (Devaney) — the classical direct inversion, with the
  angle weights of a full rotation (``operators.filtered_backpropagation_op``);
* **CGLS, TV, ℓ1 (Haar)** — the fair classical baselines, each with its parameter (iteration
  count or λ) chosen by the discrepancy principle with the same σ estimate the prior uses;
* **Deep Decoder** — fitted to ``½‖A G_θ(z) − y‖²``, stopped by the discrepancy
  principle with σ estimated from the evanescent detector frequencies, running average.

The images are converted to refractive index and shown as ``Re(n) − n_m`` in metres.
With ``--odtbrain`` (``pip install 'rfprior[peers]'``), ODTbrain's ``backpropagate_2d``
is run on the same data as an independent reference.

Run it
------
::

    python examples/diffraction_tomography.py          # ≈ 30 s on 2 CPU cores (3000 iterations)
    python examples/diffraction_tomography.py --fast   # seconds (for tests)

Writes ``dt_comparison`` and ``dt_curves`` (``.png`` and ``.pdf``) into ``--outdir``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

import rfprior
from operators import object_to_index
from rfprior import io, plot
from rfprior.metrics import nmse, psnr
from rfprior.workflows import classical_baselines

DATA = io.bundled("tomography.h5")


def _odtbrain(op, y: torch.Tensor) -> torch.Tensor | None:
    try:
        import odtbrain
    except ImportError:
        print("odtbrain is not installed (pip install 'rfprior[peers]'): skipping the reference")
        return None
    # ODTbrain takes the Born field u_B/u0 ... as uSin (angles × detector), the detector pitch in wavelengths
    lam = op.wavelength / op.pixel_size  # vacuum wavelength in pixels
    f = odtbrain.backpropagate_2d(
        y.cpu().numpy().astype(np.complex128),
        op.angles,
        res=lam,
        nm=op.medium_index,
        lD=op.detector_distance / op.pixel_size,
    )
    f = torch.as_tensor(f) / op.pixel_size**2  # ODTbrain returns f in pixel⁻²
    if tuple(f.shape) != tuple(op.in_shape):
        return None
    return f


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny iteration counts (for tests)")
    parser.add_argument("--outdir", type=Path, default=Path("examples-out"), help="where figures go")
    parser.add_argument("--input", type=Path, default=DATA, help="a diffraction_tomography measurement file")
    parser.add_argument("--odtbrain", action="store_true", help="also run ODTbrain's backpropagation")
    args = parser.parse_args(argv)
    cg_iters, tv_iters = (3, 5) if args.fast else (200, 200)
    iterations = 5 if args.fast else None  # None: the forward model's default budget (3000)
    args.outdir.mkdir(parents=True, exist_ok=True)

    ds = io.load(args.input)
    op, y = io.operator_from(ds)
    truth = torch.as_tensor(ds["truth"].values) if "truth" in ds else None
    print(io.describe(ds))

    res = rfprior.reconstruct(
        y,
        op,
        prior="deep_decoder",
        stop=[rfprior.Discrepancy(), rfprior.RunningAverage(0.99)],
        iterations=iterations,
        seed=0,
        truth=truth,
        progress=False,
    )
    # fair baselines: filtered backpropagation, and CGLS / TV / ℓ1 with their parameter by the
    # discrepancy principle (σ estimated from the evanescent band, as the prior's rule does)
    images = {name: img for name, (img, _) in classical_baselines(op, y, cg_iters=cg_iters, tv_iters=tv_iters).items()}
    tv = " + TV" if res.settings["penalty"] else ""
    images[f"Deep Decoder{tv} (it {res.chosen_iteration})"] = res.image
    if args.odtbrain:
        ref = _odtbrain(op, y)
        if ref is not None:
            images["ODTbrain backpropagate_2d"] = ref

    lam, nm = op.wavelength, op.medium_index
    shown = {"truth": truth} if truth is not None else {}
    shown.update(images)
    delta_n = {k: (object_to_index(v.to(torch.complex128), lam, nm).real - nm) for k, v in shown.items()}
    h, w = op.in_shape
    xs = (np.arange(w) - w // 2) * op.pixel_size * 1e6  # µm
    ys = (np.arange(h) - h // 2) * op.pixel_size * 1e6
    plot.compare(
        {k: v.float() for k, v in delta_n.items()},
        xs,
        ys,
        scale="linear",
        common_reference=True,
        labels=("x [µm]", "y [µm]"),
        suptitle="diffraction tomography: Re(n) − n_m",
        path=args.outdir / "dt_comparison",
    )
    plot.curves(
        res.history,
        chosen=res.chosen_iteration,
        oracle=res.oracle_iteration,
        title="Deep Decoder on Born data, discrepancy stop",
        path=args.outdir / "dt_curves",
    )

    print(f"\nstopping: {res.stop_reason} (σ̂ = {res.sigma:.3g})" if res.sigma else f"\nstopping: {res.stop_reason}")
    if truth is not None:
        peak_dn = float(delta_n["truth"].abs().max())
        print(f"\n{'method':<30} {'PSNR [dB]':>9} {'NMSE [dB]':>10} {'max Δn':>8}  (truth max Δn {peak_dn:.4f})")
        for name, img in images.items():
            e = 10 * math.log10(max(float(nmse(img, truth)), 1e-30))
            print(f"{name:<30} {psnr(img, truth):>9.2f} {e:>10.2f} {float(delta_n[name].abs().max()):>8.4f}")
    print(f"\nfigures in {args.outdir}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
