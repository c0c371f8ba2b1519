r"""Ingesting radar data written the MATLAB way (HDF5 v7.3, compound complex, column-major).

What it shows
-------------
Instrument software often hands over MATLAB ``save -v7.3`` files: HDF5 with complex
arrays stored as compound ``{real, imag}``, axes reversed (column-major), vectors as
1×N matrices and a 512-byte MAT-file header. rfprior reads them directly once three
attributes say what the file holds (``rfprior_format``, ``modality`` and the axis
names ``dims``). This example

1. reads the bundled ``data/matlab_style.h5`` (written exactly that way) and checks
   that it is the same measurement as the natively written ``data/mimo.h5``;
2. writes a file from *your own* arrays with plain h5py in the MATLAB layout (the
   recipe to adapt to an instrument), reads it back, and images it by backprojection
   with and without a Hamming window;
3. shows the one-line error a malformed field produces (a missing ``dims`` attribute
   with a transposed array), which names the file, the field, what was found and what
   was expected.

From MATLAB itself the same file is::

    measurements = y;                                   % N_T x N_R x N_f complex double
    geometry = struct('tx', tx, 'rx', rx, 'frequencies', f, 'x', x, 'z', z);
    save('scan.mat', 'measurements', 'geometry', '-v7.3');
    h5writeatt('scan.mat', '/', 'rfprior_format', 1);
    h5writeatt('scan.mat', '/', 'modality', 'mimo');
    h5writeatt('scan.mat', '/measurements', 'dims', 'tx,rx,freq');

Run it
------
::

    python examples/matlab_ingest.py            # a few seconds
    python examples/matlab_ingest.py --fast     # the same (nothing iterative here)

Writes ``scan_matlab.h5`` and ``matlab_bp`` (``.png``/``.pdf``) into ``--outdir``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np
import torch

from operators import backproject
from rfprior import io, plot
from rfprior.metrics import psnr

DATA = io.bundled_dir()  # the bundled data/*.h5


def write_matlab_layout(
    path: Path, y: np.ndarray, tx: np.ndarray, rx: np.ndarray, freqs: np.ndarray, x: np.ndarray, z: np.ndarray
) -> None:
    """Write MIMO arrays (``y`` complex ``(N_T, N_R, N_f)``, positions ``(N, 2)`` as (x, z) in m,
    ``freqs`` in Hz, grid ``x``, ``z`` in m) as MATLAB v7.3 would: compound complex,
    reversed axes, 1×N vectors, ``MATLAB_class`` attributes."""

    def cplx(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.complex128).T  # column-major: MATLAB's (N_T, N_R, N_f) is stored reversed
        out = np.empty(a.shape, dtype=[("real", "<f8"), ("imag", "<f8")])
        out["real"], out["imag"] = a.real, a.imag
        return out

    def real(a: np.ndarray, vector: bool = False) -> np.ndarray:
        a = np.asarray(a, dtype=np.float64)
        return a.reshape(1, -1).T if vector else a.T

    with h5py.File(path, "w", userblock_size=512) as f:
        d = f.create_dataset("measurements", data=cplx(y))
        d.attrs["MATLAB_class"] = np.bytes_(b"double")
        d.attrs["dims"] = np.bytes_(b"tx,rx,freq")  # the axis names as MATLAB sees them
        g = f.create_group("geometry")
        for name, value in {
            "tx": real(tx),
            "rx": real(rx),
            "frequencies": real(freqs, True),
            "x": real(x, True),
            "z": real(z, True),
        }.items():
            g.create_dataset(name, data=value).attrs["MATLAB_class"] = np.bytes_(b"double")
        f.attrs["rfprior_format"] = np.float64(1)
        f.attrs["modality"] = np.bytes_(b"mimo")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="accepted for symmetry with the other examples")
    parser.add_argument("--outdir", type=Path, default=Path("examples-out"), help="where files and figures go")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)

    # 1. the bundled MATLAB-layout file is the same measurement as the native one
    native, matlab = io.load(DATA / "mimo.h5"), io.load(DATA / "matlab_style.h5")
    err = float(np.max(np.abs(native.measurements.values - matlab.measurements.values)))
    print(io.describe(matlab))
    print(f"\nmatlab_style.h5 vs mimo.h5: max |Δy| = {err:.1e} (complex64 native vs float64 compound)")

    # 2. your own arrays → a MATLAB-layout file → rfprior
    tx = np.stack((native.tx_x.values, native.tx_z.values), axis=1)
    rx = np.stack((native.rx_x.values, native.rx_z.values), axis=1)
    out = args.outdir / "scan_matlab.h5"
    write_matlab_layout(out, native.measurements.values, tx, rx, native.freq.values, native.x.values, native.z.values)
    ds = io.load(out)
    op, y = io.operator_from(ds)
    print(f"\nread back {out}: {op!r}")
    truth = torch.as_tensor(native.truth.values)
    images = {
        "truth": truth,
        "backprojection": backproject(op, y, normalize=True),
        "backprojection (Hamming)": backproject(op, y, normalize=True, window="hamming"),
    }
    for name in ("backprojection", "backprojection (Hamming)"):
        print(f"{name:<26} PSNR {psnr(images[name], truth):6.2f} dB")
    plot.compare(
        images,
        ds.x.values,
        ds.z.values,
        suptitle="MIMO data read from a MATLAB-layout file",
        path=args.outdir / "matlab_bp",
    )

    # 3. a malformed file: measurements stored without dims and in the wrong (row-major) order
    bad = args.outdir / "scan_broken.h5"
    write_matlab_layout(bad, native.measurements.values, tx, rx, native.freq.values, native.x.values, native.z.values)
    with h5py.File(bad, "r+") as f:
        del f["measurements"].attrs["MATLAB_class"]
        del f["measurements"].attrs["dims"]
    try:
        io.operator_from(io.load(bad))
    except io.FormatError as exc:
        print(f"\na malformed file is refused in one line:\n  {exc}")
    else:  # pragma: no cover - the point of the example
        raise SystemExit("expected a FormatError for the malformed file")
    finally:
        bad.unlink()
    print(f"\nfiles and figures in {args.outdir}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
