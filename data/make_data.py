"""Generate the bundled example measurement files in ``data/`` (deterministic).

    python data/make_data.py            # writes data/*.h5 (replaces existing files)

* ``mimo.h5``             — 77–81 GHz, 8 TX × 8 RX, 64 frequencies, 64×64 image, mixed scene, 20 dB
                            (the ``make demo`` input)
* ``partial_fourier.h5``  — 64² complex Shepp–Logan (3.5-px edges) × smooth phase, VD mask at 4×, 20 dB
* ``tomography.h5``       — 64² cell-like dielectric phantom, 128 angles over 2π, λ0 = 633 nm, 20 dB
* ``matlab_style.h5``     — the data of ``mimo.h5`` laid out the way MATLAB ``save -v7.3`` plus
                            ``h5writeatt`` would write it: a 512-byte MAT-file user block, complex
                            arrays as compound ``{real, imag}`` doubles, column-major axes (reversed
                            HDF5 shapes), ``MATLAB_class`` attributes, vectors as ``1×N`` matrices,
                            ``geometry`` as a struct group and the axis names as one string attribute.
* ``fresnel_dielTM_dec8f.h5`` — *measured* data: Institut Fresnel 2001 ``dielTM_dec8f`` at 1 and 2 GHz,
                            converted as ``rfprior convert fresnel dielTM_dec8f.txt --frequencies 1e9,2e9``
                            (needs the original ``.exp`` file: ``--realdata DIR``, or found in a
                            ``shared/realdata/fresnel2001`` folder above this one; skipped otherwise).

The same seed gives the same bytes (HDF5 object timestamps are disabled).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np

from rfprior import io
from rfprior.scenes import simulate

HERE = Path(__file__).resolve().parent
SPECS = {
    "mimo.h5": {"modality": "mimo", "scene": "mixed"},
    "partial_fourier.h5": {"modality": "partial_fourier", "scene": "shepp_logan"},
    "tomography.h5": {"modality": "diffraction_tomography", "scene": "cell"},
}
_MAT_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: rfprior data/make_data.py HDF5 schema 1.00 ."


def _matlab_complex(a: np.ndarray) -> np.ndarray:
    """Complex array → compound {real, imag} doubles with MATLAB's (reversed) axis order."""
    a = np.asarray(a, dtype=np.complex128).T
    out = np.empty(a.shape, dtype=np.dtype([("real", "<f8"), ("imag", "<f8")]))
    out["real"], out["imag"] = a.real, a.imag
    return out


def _matlab_real(a: np.ndarray, vector: bool = False) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(1, -1).T if vector else a.T  # a MATLAB 1×N row vector is stored as (N, 1)


def write_matlab_style(path: Path, ds) -> None:
    """Write a MIMO Dataset as MATLAB ``save('-v7.3')`` + ``h5writeatt`` would."""
    double = np.bytes_(b"double")
    opts = {"track_times": False}
    with h5py.File(path, "w", userblock_size=512) as f:
        d = f.create_dataset("measurements", data=_matlab_complex(ds.measurements.values), **opts)
        d.attrs["MATLAB_class"] = double
        d.attrs["dims"] = np.bytes_(b"tx,rx,freq")
        g = f.create_group("geometry")
        g.attrs["MATLAB_class"] = np.bytes_(b"struct")
        fields = {
            "tx": _matlab_real(np.stack((ds.tx_x.values, ds.tx_z.values), axis=1)),
            "rx": _matlab_real(np.stack((ds.rx_x.values, ds.rx_z.values), axis=1)),
            "frequencies": _matlab_real(ds.freq.values, vector=True),
            "x": _matlab_real(ds.x.values, vector=True),
            "z": _matlab_real(ds.z.values, vector=True),
        }
        for name, value in fields.items():
            g.create_dataset(name, data=value, **opts).attrs["MATLAB_class"] = double
        s = g.create_dataset("spreading", data=np.zeros((1, 1), dtype=np.uint8), **opts)
        s.attrs["MATLAB_class"] = np.bytes_(b"logical")
        t = f.create_dataset("truth", data=_matlab_complex(ds.truth.values), **opts)
        t.attrs["MATLAB_class"] = double
        t.attrs["dims"] = np.bytes_(b"z,x")
        f.attrs["rfprior_format"] = np.float64(1.0)
        f.attrs["modality"] = np.bytes_(b"mimo")
        f.attrs["noise_sigma"] = np.float64(ds.attrs["noise_sigma"])
        f.attrs["snr_db"] = np.float64(ds.attrs["snr_db"])
        f.attrs["description"] = np.bytes_(ds.attrs["description"].encode() + b" (MATLAB v7.3 layout)")
    header = _MAT_HEADER.ljust(116) + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header.ljust(512, b"\x00")[:128])


#: name → (source file, frequencies in Hz, read_fresnel keywords)
FRESNEL = {
    "fresnel_dielTM_dec8f.h5": ("dielTM_dec8f.txt", [1e9, 2e9], {}),
    # 1–4 GHz on a 64² grid over ±0.1 m, written as full-wave scattering (examples/fresnel_fullwave.py)
    "fresnel_dielTM_dec8f_fullwave.h5": (
        "dielTM_dec8f.txt",
        [1e9, 2e9, 3e9, 4e9],
        {"size": 64, "physics": "full-wave"},
    ),
}


def _realdata(given: Path | None) -> Path | None:
    """The folder holding the Fresnel ``.exp`` files: ``given``, or ``shared/realdata/fresnel2001`` above data/."""
    if given is not None:
        return given
    for parent in HERE.parents:
        cand = parent / "shared" / "realdata" / "fresnel2001"
        if cand.is_dir():
            return cand
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE, help="output directory (default: data/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--snr-db", type=float, default=20.0)
    parser.add_argument("--realdata", type=Path, default=None, help="folder of the Institut Fresnel .exp files")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, spec in SPECS.items():
        simulate(size=64, snr_db=args.snr_db, seed=args.seed, path=args.out / name, force=True, **spec)
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size / 1024:.0f} KiB)")
    target = args.out / "matlab_style.h5"
    tmp = target.with_name(".matlab_style.h5.tmp")
    try:
        write_matlab_style(tmp, io.load(args.out / "mimo.h5"))
        io.load(tmp)  # it must read back
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {target} ({target.stat().st_size / 1024:.0f} KiB)")
    folder = _realdata(args.realdata)
    for name, (source, freqs, kw) in FRESNEL.items():
        if folder is None or not (folder / source).is_file():
            print(f"skipped {name}: {source} not found (pass --realdata DIR); the committed file is kept")
            continue
        io.save_dataset(args.out / name, io.read_fresnel(folder / source, freqs, **kw), force=True)
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
