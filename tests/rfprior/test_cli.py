"""The ``rfprior`` command: every subcommand end to end on tiny problems, user errors, ``--force``.

Commands run in-process through :func:`rfprior.cli.main` (stdout/stderr captured);
two runs go through the real ``python -m rfprior`` entry point. Problems are 16²
simulations with a reduced MIMO array and ≤ 6 iterations, so the file runs in seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import rfprior
from operators import backproject
from rfprior import workflows
from rfprior.cli import _parser, main
from rfprior.io import load, load_result, operator_from
from rfprior.metrics import psnr

SUBCOMMANDS = ("simulate", "inspect", "reconstruct", "compare", "demo", "convert")
FAST = ["--prior", "deep_decoder", "--iterations", "4"]
#: a reduced MIMO array (4 TX × 4 RX × 16 frequencies) keeps the operator cheap
SMALL_MIMO = {"n_freq": 16, "n_tx": 4, "n_rx": 4}
#: what save_result writes (rfprior/io/results.py) — every one must survive a CLI run
RESULT_ATTRS = (
    "rfprior_result_format",
    "rfprior_version",
    "chosen_iteration",
    "final_iteration",
    "seed",
    "interrupted",
    "stop_reason",
    "scale",
    "backtracks",
    "source",
    "sigma",
    "modality",
    "settings",
    "choices",
    "rule_summaries",
    "history_attrs",
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Read-only inputs: 16² MIMO and partial-Fourier files (with /truth), a MIMO copy without truth, junk."""
    root = tmp_path_factory.mktemp("cli_inputs")
    out = {"mimo": root / "mimo.h5", "partial_fourier": root / "pf.h5"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rfprior.scenes.simulate("mimo", size=16, snr_db=20, seed=0, path=out["mimo"], **SMALL_MIMO)
        rfprior.scenes.simulate("partial_fourier", size=16, snr_db=20, seed=0, path=out["partial_fourier"])
    out["no_truth"] = root / "no_truth.h5"
    shutil.copyfile(out["mimo"], out["no_truth"])
    with h5py.File(out["no_truth"], "r+") as f:
        del f["truth"]
    out["broken"] = root / "broken.h5"  # a valid file whose frequencies were negated
    shutil.copyfile(out["mimo"], out["broken"])
    with h5py.File(out["broken"], "r+") as f:
        freqs = f["geometry/frequencies"][()]
        del f["geometry/frequencies"]
        f["geometry/frequencies"] = -freqs
    out["text"] = root / "notes.txt"
    out["text"].write_text("not an HDF5 file\n")
    return out


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, list[str]]:
    """Run the CLI in-process; return (exit status, stdout, stderr lines)."""
    code = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _table(out: str) -> dict[str, list[str]]:
    """Parse the comparison table printed by ``compare``/``demo``: method → the remaining columns."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("method"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip() or line.startswith(("stopping:", "noise", "files:")):
            break
        rows[line[:34].strip()] = line[34:].split()
    return rows


# --------------------------------------------------------------------------- help
def test_top_level_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: rfprior")
    for name in SUBCOMMANDS:
        assert name in out, name


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help_exits_zero(capsys, command):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: rfprior {command}")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_subcommand_takes_the_global_options():
    """Each subparser has ``parents=[common]`` (rfprior.cli.global_options), unset unless given after it."""
    assert set(SUBCOMMANDS) <= set(_subparsers())
    for command, sub in _subparsers().items():
        options = {o: a for a in sub._actions for o in a.option_strings}
        for flag in ("-q", "--quiet", "--debug"):
            assert flag in options, (command, flag)
            assert options[flag].default is argparse.SUPPRESS, (command, flag)  # never overrides a flag given before


@pytest.mark.parametrize(
    "argv, quiet, debug",
    [
        (["reconstruct", "f.h5", "-o", "r.nc"], False, False),
        (["-q", "--debug", "reconstruct", "f.h5", "-o", "r.nc"], True, True),
        (["reconstruct", "f.h5", "-o", "r.nc", "--quiet"], True, False),  # the example
        (["reconstruct", "f.h5", "-o", "r.nc", "-q", "--debug"], True, True),
        (["--quiet", "compare", "f.h5", "--debug"], True, True),
        (["inspect", "f.h5", "--debug"], False, True),
        (["demo", "-q"], True, False),
        (["simulate", "mimo", "-o", "x.h5", "--quiet"], True, False),
    ],
)
def test_global_options_are_accepted_before_and_after_the_subcommand(argv, quiet, debug):
    args = _parser().parse_args(argv)
    assert (args.quiet, args.debug) == (quiet, debug)


def test_debug_after_the_subcommand_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["inspect", str(tmp_path / "absent.h5"), "--debug"])


def test_quiet_after_the_subcommand_silences_progress(capsys, files, tmp_path):
    code = main(["reconstruct", str(files["mimo"]), "-o", str(tmp_path / "r.nc"), *FAST, "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0 and err == "" and out.startswith(f"wrote {tmp_path / 'r.nc'}")


def test_every_help_text_lists_every_choice():
    """A help text names every value an option takes; ``--prior``/``--stop`` from the code's registries."""
    from rfprior.priors import PRESETS, PRIORS

    for command, sub in _subparsers().items():
        _check_choices_in_help(command, sub, [*PRIORS, *PRESETS, "auto"])


def _check_choices_in_help(command: str, sub: argparse.ArgumentParser, priors: list[str]) -> None:
    for action in sub._actions:
        if action.choices:
            for choice in action.choices:
                assert choice in (action.help or ""), (command, action.dest, choice)
        if action.dest in ("prior", "priors"):
            for name in priors:
                assert name in action.help, (command, action.dest, name)
            assert "dip_small" in action.help
        if action.dest == "stop":
            for name in workflows.RULES:
                assert name in action.help, (command, name)


# --------------------------------------------------------------------------- the commands end to end
def test_simulate_writes_a_loadable_file_with_truth(capsys, tmp_path):
    path = tmp_path / "sim.h5"
    argv = ["simulate", "partial_fourier", "-o", path, "--size", "16", "--snr", "15", "--seed", "3"]
    code, out, err = _run(capsys, *argv)
    assert code == 0 and err == []
    assert out.startswith(f"wrote {path}: partial_fourier")
    ds = load(path)
    assert ds.attrs["modality"] == "partial_fourier"
    assert ds.attrs["snr_db"] == pytest.approx(15.0)
    assert ds["truth"].shape == (16, 16)
    op, y = operator_from(ds)
    assert tuple(y.shape) == op.out_shape and op.in_shape == (16, 16)


def test_inspect_summarises_the_file(capsys, files):
    code, out, err = _run(capsys, "inspect", files["mimo"])
    assert code == 0 and err == []
    assert out.startswith(f"{files['mimo']}: rfprior measurement file (format 1), modality mimo")
    assert "4 TX × 4 RX" in out and "16 steps" in out
    assert "truth" in out and "noise" in out


@pytest.mark.parametrize("modality", ["mimo", "partial_fourier"])
def test_reconstruct_writes_a_complete_result_file(capsys, files, tmp_path, modality):
    path = tmp_path / "result.nc"
    code, out, err = _run(capsys, "reconstruct", files[modality], "-o", path, *FAST, "--seed", "5")
    assert code == 0 and err == []
    assert out.startswith(f"wrote {path}: iteration ")
    assert "PSNR" in out  # the file has a truth
    ds = load_result(path)
    for name in ("image", "final_image", "backprojection", "oracle_image"):
        assert name in ds.data_vars, name
        assert ds[name].shape == (16, 16) and np.iscomplexobj(ds[name].values), name
        assert np.isfinite(ds[name].values).all(), name
    for name in RESULT_ATTRS:
        assert name in ds.attrs, name
    assert ds.attrs["seed"] == 5 and ds.attrs["interrupted"] is False
    assert ds.attrs["sigma"] > 0  # estimated from the data by the discrepancy rule (no --sigma given)
    assert ds.attrs["rfprior_version"] == rfprior.__version__
    assert ds.attrs["modality"] == modality and ds.attrs["source"] == str(files[modality])
    assert ds.attrs["settings"]["iterations"] == 4 and ds.attrs["settings"]["prior"]["name"] == "deep_decoder"
    assert ds.attrs["settings"]["seed"] == 5
    # the history: one entry per iteration run, and the chosen iterate is one of them
    assert ds.sizes["iteration"] == 4
    assert list(ds["iteration"].values) == [0, 1, 2, 3]
    for v in ("loss", "misfit", "lr", "discrepancy", "psnr"):
        assert v in ds.data_vars and np.isfinite(ds[v].values).all(), v
    assert ds.attrs["chosen_iteration"] in ds["iteration"].values
    assert f"iteration {ds.attrs['chosen_iteration']} " in out
    # the stored baseline is the modality's classical image of the file's data
    # (normalised backprojection for MIMO, zero filling for partial Fourier)
    op, y = operator_from(load(files[modality]))
    bp = workflows.classical_image(op, y)[1].numpy()
    np.testing.assert_allclose(ds["backprojection"].values, bp, rtol=1e-5, atol=1e-6 * np.abs(bp).max())


@pytest.mark.slow
def test_compare_with_truth_prints_psnr_for_every_method(capsys, files, tmp_path):
    js = tmp_path / "table.json"
    code, out, err = _run(
        capsys, "compare", files["mimo"], "--priors", "deep_decoder", "--iterations", "4", "--json", js
    )
    assert code == 0 and err == []
    header = out.splitlines()[0]
    assert "PSNR [dB]" in header and "SSIM" in header
    rows = _table(out)
    names = list(rows)
    assert names[0] == "backprojection"
    # the fair baselines, each labelled with its discrepancy-principle parameter, then the prior
    assert names[1].startswith("CGLS (discrepancy") and names[2].startswith("TV (discrepancy")
    assert names[3].startswith("ℓ1 pixels (discrepancy")  # radar: sparsity in pixels
    assert names[4].startswith("deep_decoder") and names[4].endswith("+ discrepancy") and len(names) == 5
    for name, cols in rows.items():
        assert math.isfinite(float(cols[2])), f"{name}: PSNR column {cols}"
    # the backprojection's PSNR, recomputed independently
    ds = load(files["mimo"])
    op, y = operator_from(ds)
    expected = float(psnr(backproject(op, y, normalize=True), torch.as_tensor(ds["truth"].values)))
    assert float(rows["backprojection"][2]) == pytest.approx(expected, abs=0.006)
    payload = json.loads(js.read_text())
    assert [r["method"] for r in payload] == names
    assert all(r["psnr"] is not None for r in payload)


@pytest.mark.slow
def test_compare_without_truth_prints_data_fit_instead_of_psnr(capsys, files):
    code, out, err = _run(capsys, "compare", files["no_truth"], "--priors", "deep_decoder", "--iterations", "4")
    assert code == 0 and err == []
    header = out.splitlines()[0]
    assert "PSNR" not in out and "SSIM" not in header
    assert "misfit" in header
    rows = _table(out)
    assert next(iter(rows)) == "backprojection" and len(rows) == 5
    op, y = operator_from(load(files["no_truth"]))
    bp = backproject(op, y, normalize=True)
    misfit = 0.5 * float(torch.linalg.vector_norm(op.forward(bp) - y) ** 2)
    assert float(rows["backprojection"][1]) == pytest.approx(misfit, rel=1e-3)
    for name, cols in rows.items():
        assert float(cols[1]) > 0, name
    # with σ given, the misfit is reported in units of Mσ²
    code, out, _ = _run(
        capsys, "compare", files["no_truth"], "--priors", "deep_decoder", "--iterations", "4", "--sigma", "0.5"
    )
    assert code == 0 and "misfit/(Mσ²)" in out.splitlines()[0]
    rows = _table(out)
    assert float(rows["backprojection"][1]) == pytest.approx(misfit / (op.size_out * 0.25), rel=1e-3)


@pytest.mark.slow
def test_demo_writes_figures_result_and_prints_a_summary(capsys, files, tmp_path):
    outdir = tmp_path / "demo"
    code, out, err = _run(capsys, "demo", "--input", files["mimo"], "--iterations", "3", "--outdir", outdir)
    assert code == 0 and err == []
    assert out.startswith(f"rfprior demo on {files['mimo']}")
    rows = _table(out)
    assert "backprojection" in rows and any(name.startswith("dip_small") for name in rows)
    assert "stopping:" in out and "files:" in out
    for stem in ("comparison", "curves"):
        png, pdf = outdir / f"{stem}.png", outdir / f"{stem}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000, png
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000, pdf
    ds = load_result(outdir / "result.nc")
    assert ds.attrs["settings"]["iterations"] == 3 and ds.sizes["iteration"] <= 3
    assert np.isfinite(ds["image"].values).all() and "backprojection" in ds
    assert sorted(p.name for p in outdir.iterdir()) == sorted(
        ["comparison.png", "comparison.pdf", "curves.png", "curves.pdf", "result.nc"]
    )


# --------------------------------------------------------------------------- --force
def test_existing_output_untouched_without_force_and_replaced_with_it(capsys, files, tmp_path):
    path = tmp_path / "result.nc"
    path.write_bytes(b"precious")
    code, out, err = _run(capsys, "reconstruct", files["mimo"], "-o", path, *FAST)
    assert code == 2 and len(err) == 1 and "--force" in err[0] and str(path) in err[0]
    assert path.read_bytes() == b"precious" and out == ""
    code, _, err = _run(capsys, "reconstruct", files["mimo"], "-o", path, *FAST, "--force")
    assert code == 0 and err == []
    assert load_result(path).sizes["iteration"] == 4
    assert sorted(os.listdir(tmp_path)) == ["result.nc"]  # no temporary file left behind

    sim = tmp_path / "sim.h5"
    assert _run(capsys, "simulate", "mimo", "-o", sim, "--size", "16")[0] == 0
    before = _sha(sim)
    code, _, err = _run(capsys, "simulate", "mimo", "-o", sim, "--size", "16", "--seed", "9")
    assert code == 2 and len(err) == 1 and "--force" in err[0]
    assert _sha(sim) == before
    assert _run(capsys, "simulate", "mimo", "-o", sim, "--size", "16", "--seed", "9", "--force")[0] == 0
    assert _sha(sim) != before


# --------------------------------------------------------------------------- user errors
ERRORS = {
    # id: (argv with {mimo}, {broken}, {text}, {missing}, {out} placeholders, what the one stderr line must say)
    "inspect-missing": (["inspect", "{missing}"], "no such file"),
    "inspect-not-hdf5": (["inspect", "{text}"], "HDF5"),
    "inspect-broken-field": (["inspect", "{broken}"], "/geometry/frequencies"),
    "reconstruct-missing": (["reconstruct", "{missing}", "-o", "{out}"], "no such file"),
    "reconstruct-not-hdf5": (["reconstruct", "{text}", "-o", "{out}"], "HDF5"),
    "reconstruct-broken-field": (["reconstruct", "{broken}", "-o", "{out}"], "/geometry/frequencies"),
    "unknown-prior": (["reconstruct", "{mimo}", "-o", "{out}", "--prior", "unet"], "prior must be one of"),
    "iterations-0": (["reconstruct", "{mimo}", "-o", "{out}", "--iterations", "0"], "iterations must be ≥ 1, got 0"),
    "iterations-neg": (["reconstruct", "{mimo}", "-o", "{out}", "--iterations", "-3"], "got -3"),
    "unknown-stop": (["reconstruct", "{mimo}", "-o", "{out}", "--stop", "magic", *FAST], "stop must be one of"),
    "bad-lr": (["reconstruct", "{mimo}", "-o", "{out}", "--lr", "-1", *FAST], "lr must be"),
    "bad-sigma": (["reconstruct", "{mimo}", "-o", "{out}", "--sigma", "-1", *FAST], "sigma"),
    "checkpoint-every-0": (
        ["reconstruct", "{mimo}", "-o", "{out}", "--checkpoint-every", "0", *FAST],
        "checkpoint_every",
    ),
    "resume-missing": (["reconstruct", "{mimo}", "-o", "{out}", "--resume", "{missing}", *FAST], "does not exist"),
    "resume-not-checkpoint": (
        ["reconstruct", "{mimo}", "-o", "{out}", "--resume", "{text}", *FAST],
        "not an rfprior checkpoint",
    ),
    "output-dir-missing": (["reconstruct", "{mimo}", "-o", "{out_in_missing_dir}", *FAST], "does not exist"),
    "compare-missing": (["compare", "{missing}"], "no such file"),
    "compare-unknown-prior": (["compare", "{mimo}", "--priors", "unet", "--iterations", "2"], "prior must be one of"),
    # the second prior is checked before the first one's fit
    "compare-unknown-2nd-prior": (
        ["compare", "{mimo}", "--priors", "deep_decoder,unet", "--iterations", "2"],
        "unknown in priors: ['unet']",
    ),
    "compare-holdout-pf": (
        ["compare", "{partial_fourier}", "--stop", "holdout", "--iterations", "2"],
        "'holdout' is not offered for PartialFourier",
    ),
    "compare-iterations-0": (["compare", "{mimo}", "--iterations", "0"], "iterations must be ≥ 1"),
    "compare-unknown-stop": (["compare", "{mimo}", "--stop", "magic", "--iterations", "2"], "stop must be one of"),
    "demo-missing": (["demo", "--input", "{missing}", "--outdir", "{outdir}"], "no such file"),
    "demo-not-hdf5": (["demo", "--input", "{text}", "--outdir", "{outdir}"], "HDF5"),
    "demo-iterations-neg": (
        ["demo", "--input", "{mimo}", "--outdir", "{outdir}", "--iterations", "-3"],
        "iterations must be ≥ 1",
    ),
    "simulate-size": (["simulate", "mimo", "-o", "{out_h5}", "--size", "4"], "--size must be ≥ 8"),
    "fits-0": (["reconstruct", "{mimo}", "-o", "{out}", "--fits", "0", *FAST], "--fits must be ≥ 1, got 0"),
    "fits-checkpoint": (
        ["reconstruct", "{mimo}", "-o", "{out}", "--fits", "2", "--checkpoint", "{out_h5}", *FAST],
        "--fits > 1 cannot be combined with --checkpoint/--resume",
    ),
    "fits-resume": (
        ["reconstruct", "{mimo}", "-o", "{out}", "--fits", "3", "--resume", "{text}", *FAST],
        "--fits > 1 cannot be combined with --checkpoint/--resume",
    ),
    "compare-fits-neg": (["compare", "{mimo}", "--fits", "-2", "--iterations", "2"], "--fits must be ≥ 1, got -2"),
}


def _fill(argv: list[str], files: dict[str, Path], tmp_path: Path) -> list[str]:
    names = {
        "mimo": files["mimo"],
        "partial_fourier": files["partial_fourier"],
        "broken": files["broken"],
        "text": files["text"],
        "missing": tmp_path / "missing.h5",
        "out": tmp_path / "out.nc",
        "out_h5": tmp_path / "out.h5",
        "out_in_missing_dir": tmp_path / "nodir" / "out.nc",
        "outdir": tmp_path / "demo",
    }
    return [a.format(**{k: str(v) for k, v in names.items()}) for a in argv]


def _assert_user_error(capsys, argv: list[str], tmp_path: Path, expect: str, command: str) -> None:
    before = sorted(os.listdir(tmp_path))
    code, out, err = _run(capsys, *argv)
    assert code == 2, f"exit {code}; stderr {err}"
    assert len(err) == 1, f"expected one stderr line, got {err}"
    assert err[0].startswith(f"rfprior {command}: error: "), err[0]
    assert expect in err[0], err[0]
    assert "Traceback" not in err[0] and out == ""
    assert sorted(os.listdir(tmp_path)) == before, "an output (or a temporary file) was written"


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_user_error_is_one_line_exit_2_and_writes_nothing(capsys, files, tmp_path, case):
    argv, expect = ERRORS[case]
    _assert_user_error(capsys, _fill(argv, files, tmp_path), tmp_path, expect, argv[0])


def test_resume_with_different_settings_is_a_user_error(capsys, files, tmp_path):
    ckpt = tmp_path / "run.ckpt"
    code, _, _ = _run(
        capsys,
        "reconstruct",
        files["mimo"],
        "-o",
        tmp_path / "a.nc",
        *FAST,
        "--checkpoint",
        ckpt,
        "--checkpoint-every",
        "2",
    )
    assert code == 0 and ckpt.is_file()
    argv = [
        "reconstruct",
        str(files["mimo"]),
        "-o",
        str(tmp_path / "b.nc"),
        "--prior",
        "deep_decoder",
        "--iterations",
        "5",
        "--resume",
        str(ckpt),
    ]
    _assert_user_error(capsys, argv, tmp_path, "different settings (iterations)", "reconstruct")


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["reconstruct", "IN", "-o", "OUT", "--loss", "l1"], "argument --loss: invalid choice: 'l1'"),
        (["reconstruct", "IN", "-o", "OUT", "--iterations", "many"], "argument --iterations: invalid int value"),
        (["reconstruct", "IN"], "the following arguments are required: -o/--output"),
        (["simulate", "radar", "-o", "OUT"], "invalid choice: 'radar'"),
        (["paint"], "invalid choice: 'paint'"),
    ],
)
def test_argument_errors_exit_2_naming_the_argument(capsys, argv, expect):
    # argparse reports these itself, in one line naming the argument
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert expect in err[0] and err[0].startswith("rfprior")


# --------------------------------------------------------------------------- formerly bugs
@pytest.mark.parametrize("device", ["nosuch", "cuda:7"])
def test_unknown_device_is_a_user_error(capsys, files, tmp_path, device):
    argv = _fill(["reconstruct", "{mimo}", "-o", "{out}", "--device", device, *FAST], files, tmp_path)
    _assert_user_error(capsys, argv, tmp_path, device, "reconstruct")


def test_checkpoint_in_missing_directory_is_a_user_error(capsys, files, tmp_path):
    argv = _fill(["reconstruct", "{mimo}", "-o", "{out}", *FAST, "--checkpoint-every", "1"], files, tmp_path)
    argv += ["--checkpoint", str(tmp_path / "nodir" / "run.ckpt")]
    _assert_user_error(capsys, argv, tmp_path, "nodir", "reconstruct")


def test_demo_iterations_zero_is_a_user_error(capsys, files, tmp_path, monkeypatch):
    fast = dataclasses.replace(rfprior.defaults.FIT, iterations=2)
    monkeypatch.setattr(rfprior.defaults, "FIT", fast)  # were 0 taken as "default", it would stay fast
    argv = _fill(["demo", "--input", "{mimo}", "--outdir", "{outdir}", "--iterations", "0"], files, tmp_path)
    _assert_user_error(capsys, argv, tmp_path, "iterations must be ≥ 1", "demo")


# --------------------------------------------------------------------------- the real entry point
def _python_m(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "rfprior", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


@pytest.mark.slow
def test_python_m_rfprior_runs_and_reports_errors_in_one_line(tmp_path):
    proc = _python_m("-q", "simulate", "mimo", "-o", "scan.h5", "--size", "16", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("wrote scan.h5: mimo") and proc.stderr == ""
    assert load(tmp_path / "scan.h5").attrs["modality"] == "mimo"
    proc = _python_m("inspect", "absent.h5", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["rfprior inspect: error: absent.h5: no such file"]


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rfprior {rfprior.__version__}"


def test_cli_result_matches_the_python_api(capsys, files, tmp_path):
    """The CLI's defaults are the documented ones: same image as reconstruct() with default_rules."""
    path = tmp_path / "r.nc"
    assert _run(capsys, "reconstruct", files["partial_fourier"], "-o", path, *FAST, "--seed", "2")[0] == 0
    ds = load(files["partial_fourier"])
    op, y = operator_from(ds)
    res = rfprior.reconstruct(
        y,
        op,
        prior="deep_decoder",
        iterations=4,
        seed=2,
        progress=False,
        stop=workflows.default_rules("discrepancy"),
        truth=torch.as_tensor(ds["truth"].values),
    )
    stored = load_result(path)
    np.testing.assert_array_equal(stored["image"].values, res.image.numpy())
    assert stored.attrs["chosen_iteration"] == res.chosen_iteration
    assert re.search(r"iteration budget of 4 reached", stored.attrs["stop_reason"])


def test_empty_prior_name_is_a_user_error(capsys, files, tmp_path):
    argv = _fill(["compare", "{mimo}", "--priors", "deep_decoder,", "--iterations", "4"], files, tmp_path)
    _assert_user_error(capsys, argv, tmp_path, "empty prior name", "compare")


def test_reconstruct_with_two_fits_writes_their_mean_and_spread(capsys, files, tmp_path):
    path = tmp_path / "r.nc"
    code, out, _ = _run(capsys, "reconstruct", files["partial_fourier"], "-o", path, *FAST, "--fits", "2")
    assert code == 0
    ds = load(files["partial_fourier"])
    op, y = operator_from(ds)
    truth = torch.as_tensor(ds["truth"].values)
    kw = dict(prior="deep_decoder", iterations=4, progress=False, truth=truth)
    fits = [rfprior.reconstruct(y, op, seed=s, stop=workflows.default_rules("discrepancy"), **kw) for s in (0, 1000)]
    stored = load_result(path)
    np.testing.assert_allclose(stored["image"].values, ((fits[0].image + fits[1].image) / 2).numpy(), atol=1e-6)
    assert stored["spread"].dims == stored["image"].dims and stored.attrs["settings"]["fits"] == 2
    assert "mean of 2 independently seeded fits (seeds 0, 1000" in out
    its = stored.attrs["rule_summaries"]["ensemble"]["chosen_iterations"]
    assert its == [f.chosen_iteration for f in fits] and f"iterations {its[0]}, {its[1]} (" in out
    assert f"PSNR {stored.attrs['image_psnr']:.2f} dB (oracle of fit 1" in out


def test_compare_labels_the_mean_of_several_fits(capsys, files):
    code, out, _ = _run(
        capsys, "compare", files["partial_fourier"], "--priors", "deep_decoder", "--iterations", "3", "--fits", "2"
    )
    assert code == 0
    assert "deep_decoder + TV + discrepancy (mean of 2 fits)" in out  # partial Fourier: DIP + TV by default
