"""The ``rfprior`` command (also ``python -m rfprior``).

User errors (bad files, bad arguments, existing outputs) print one line to stderr
and exit with status 2; an interrupted reconstruction (Ctrl-C or SIGTERM) saves the
best result so far, marked as interrupted, and exits with status 130.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["global_options", "main"]

#: ``--penalty`` names (``none`` → ``rfprior.reconstruct(penalty=None)``).
PENALTY_CHOICES = ("auto", "tv", "none")

#: ``--loss`` names (``rfprior.reconstruct(loss=...)``).
LOSSES = ("mse", "dsp")


class UsageError(Exception):
    """A problem the user can fix; reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``rfprior <command>: error: …``), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _check_device(device: str | None) -> None:
    """Refuse an unknown or unavailable ``--device`` before any work is done."""
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device: unknown device {device!r}; expected cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise UsageError(f"--device {device}: no such CUDA device here (torch sees {torch.cuda.device_count()})")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise UsageError(f"--device {device}: MPS is not available here")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device: unsupported device type {dev.type!r}; expected cpu, cuda or mps")


def _check_output_dir(path: Path | None, option: str) -> None:
    """The folder of an output must exist before the work starts (not after an hour of fitting)."""
    if path is not None and not path.parent.is_dir():
        raise UsageError(f"{option}: the folder {path.parent} does not exist")


def global_options(*, defaults: bool = False) -> argparse.ArgumentParser:
    """The options every ``rfprior`` command takes, before or after the subcommand (``-q``, ``--debug``).

    The top-level parser takes them with their defaults (``defaults=True``); each subparser takes
    them with ``parents=[common]``, where ``common = global_options()`` leaves them unset
    (``argparse.SUPPRESS``) unless given after the subcommand, so ``rfprior -q reconstruct …`` and
    ``rfprior reconstruct … -q`` mean the same and neither overrides the other with a default.
    """
    g = argparse.ArgumentParser(add_help=False)
    default = False if defaults else argparse.SUPPRESS
    g.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress bars; results and errors")
    g.add_argument("--debug", action="store_true", default=default, help="show full tracebacks for errors")
    return g


def _choices(names) -> str:
    return ", ".join(names)


def _prior_names() -> tuple[str, ...]:
    """Every name ``--prior`` accepts: the registered priors, the size presets and ``auto``."""
    from ._resolve import PRESETS
    from .priors import PRIORS

    return (*PRIORS, *PRESETS, "auto")


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    from .io import MODALITIES
    from .workflows import RULES

    p = _Parser(
        prog="rfprior",
        description="Complex-valued RF imaging with untrained-network priors.",
        parents=[global_options(defaults=True)],
    )
    p.add_argument("--version", action="version", version=f"rfprior {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = global_options()  # every subparser: sub.add_parser(name, parents=[common], help=...)
    priors = _choices(_prior_names())

    s = sub.add_parser("simulate", parents=[common], help="write a simulated measurement file with /truth")
    s.add_argument("modality", choices=MODALITIES, help=f"one of {_choices(MODALITIES)}")
    s.add_argument("-o", "--output", required=True, type=Path, help="measurement file to write (.h5)")
    s.add_argument("--size", type=int, default=64, help="image size in pixels (default 64)")
    s.add_argument("--snr", type=float, default=20.0, help="SNR in dB (default 20)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--force", action="store_true", help="overwrite an existing output")

    s = sub.add_parser("inspect", parents=[common], help="validate a measurement file and summarise it")
    s.add_argument("input", type=Path)

    for name, helptext in (
        ("reconstruct", "reconstruct an image and write a result file"),
        ("compare", "table of backprojection / CG / TV / priors on one file"),
    ):
        s = sub.add_parser(name, parents=[common], help=helptext)
        s.add_argument("input", type=Path)
        if name == "reconstruct":
            s.add_argument("-o", "--output", required=True, type=Path, help="result file to write (.nc)")
            s.add_argument("--prior", default=None, help=f"{priors} (default auto: the modality's default prior)")
            s.add_argument("--force", action="store_true", help="overwrite an existing output")
            s.add_argument("--no-average", action="store_true", help="return the raw iterate, not the running average")
            s.add_argument("--checkpoint", type=Path, default=None, help="save a checkpoint here periodically")
            s.add_argument("--checkpoint-every", type=int, default=100, help="iterations between checkpoints")
            s.add_argument("--resume", type=Path, default=None, help="continue from this checkpoint")
            s.add_argument(
                "--init", type=Path, default=None, help="warm start from this result file's network (needs --weights)"
            )
            s.add_argument("--weights", action="store_true", help="also store the network in the result (for --init)")
        else:
            s.add_argument("--priors", default=None, help=f"comma-separated, each one of {priors} (default auto)")
            s.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")
        s.add_argument("--loss", default="mse", choices=LOSSES, help=f"data term: {_choices(LOSSES)} (default mse)")
        s.add_argument("--stop", default="discrepancy", help=f"stopping rule: {_choices(RULES)} (default discrepancy)")
        s.add_argument(
            "--penalty",
            default="auto",
            choices=PENALTY_CHOICES,
            help=f"image penalty added to the fit: {_choices(PENALTY_CHOICES)} (default auto: the modality's default; "
            "tv: DIP + TV with λ a fraction of the TV-discrepancy λ)",
        )
        s.add_argument("--iterations", type=int, default=None, help="iteration budget")
        s.add_argument("--lr", type=float, default=None, help="Adam step size")
        s.add_argument("--sigma", type=float, default=None, help="noise σ per component (default: from file/estimate)")
        s.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps …")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument(
            "--fits",
            type=int,
            default=1,
            help="average this many independently seeded fits (2: twice the time, ≈ +1 dB; docs/guide.md)",
        )

    _add_convert_parser(sub, common)

    s = sub.add_parser(
        "demo", parents=[common], help="the fair baselines vs the default prior on the bundled MIMO file"
    )
    s.add_argument("--outdir", type=Path, default=Path("rfprior-demo"))
    s.add_argument("--input", type=Path, default=None, help="measurement file (default: bundled data/mimo.h5)")
    s.add_argument("--iterations", type=int, default=None)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default=None)
    s.add_argument("--force", action="store_true")
    _add_batch_parser(sub, common, priors)
    return p


def _user_errors() -> tuple[type[BaseException], ...]:
    from .io import FormatError

    return (
        UsageError,
        FormatError,
        FileNotFoundError,
        FileExistsError,
        IsADirectoryError,
        PermissionError,
        ValueError,
        TypeError,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        _check_device(getattr(args, "device", None))
        return _dispatch(args)
    except KeyboardInterrupt:  # before or outside a reconstruction loop (which saves its own result)
        print(f"rfprior {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except _user_errors() as exc:
        if args.debug:
            raise
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"rfprior {args.command}: error: {msg}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    return {
        "simulate": _simulate,
        "inspect": _inspect,
        "reconstruct": _reconstruct,
        "compare": _compare,
        "demo": _demo,
        "convert": _convert,
        "batch": _batch,
    }[args.command](args)


def _simulate(args: argparse.Namespace) -> int:
    from .scenes import simulate

    if args.output.exists() and not args.force:
        raise FileExistsError(f"{args.output} exists; pass --force to overwrite")
    if args.size < 8:
        raise UsageError(f"--size must be ≥ 8, got {args.size}")
    ds = simulate(args.modality, size=args.size, snr_db=args.snr, seed=args.seed, path=args.output, force=args.force)
    print(f"wrote {args.output}: {args.modality}, measurements {dict(ds['measurements'].sizes)}, SNR {args.snr:g} dB")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .io import describe, load

    print(describe(load(args.input), args.input))
    return 0


def _load_problem(args: argparse.Namespace):
    import torch

    from .io import load, operator_from

    ds = load(args.input)
    op, y = operator_from(ds, device=args.device)
    truth = torch.as_tensor(ds["truth"].values) if "truth" in ds else None
    sigma = args.sigma
    return ds, op, y, truth, sigma


def _reconstruct(args: argparse.Namespace) -> int:
    from .engine import reconstruct
    from .io import save_result
    from .workflows import default_rules

    if args.output.exists() and not args.force:
        raise FileExistsError(f"{args.output} exists; pass --force to overwrite")
    _check_output_dir(args.output, "-o/--output")
    _check_output_dir(args.checkpoint, "--checkpoint")
    _check_fits(args)
    _, op, y, truth, sigma = _load_problem(args)
    rules = default_rules(args.stop, sigma, average=not args.no_average)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        res = reconstruct(
            y,
            op,
            prior=args.prior,
            loss=args.loss,
            stop=rules,
            iterations=args.iterations,
            lr=args.lr,
            seed=args.seed,
            device=args.device,
            sigma=sigma,
            truth=truth,
            progress=not args.quiet,
            checkpoint=args.checkpoint,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            fits=args.fits,
            penalty=_penalty(args),
            init=args.init,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    from .workflows import classical_image

    bp = classical_image(op, y)[1]
    save_result(args.output, res, backprojection=bp, source=str(args.input), force=args.force, weights=args.weights)
    if res.members:
        its = ", ".join(str(i) for i in res.rule_summaries["ensemble"]["chosen_iterations"])
        line = f"wrote {args.output}: iterations {its} ({res.stop_reason})"
    else:
        line = f"wrote {args.output}: iteration {res.chosen_iteration} ({res.stop_reason})"
    if res.image_psnr is not None and res.oracle_psnr is not None:
        of = " of fit 1" if res.members else ""
        line += f"; PSNR {res.image_psnr:.2f} dB (oracle{of} {res.oracle_psnr:.2f} dB)"
    print(line)
    if res.interrupted:
        print("rfprior reconstruct: interrupted; the best result so far was saved", file=sys.stderr)
        return 130
    return 0


def _penalty(args: argparse.Namespace) -> str | None:
    return None if args.penalty == "none" else args.penalty


def _check_fits(args: argparse.Namespace) -> None:
    if args.fits < 1:
        raise UsageError(f"--fits must be ≥ 1, got {args.fits}")
    if args.fits > 1 and (getattr(args, "checkpoint", None) or getattr(args, "resume", None)):
        raise UsageError("--fits > 1 cannot be combined with --checkpoint/--resume (each fit is its own run)")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _compare(args: argparse.Namespace) -> int:
    from .workflows import compare, format_table

    _check_output_dir(args.json, "--json")
    _check_fits(args)
    priors = tuple(p.strip() for p in args.priors.split(",")) if args.priors else (None,)
    if args.priors and any(not p for p in priors):
        raise UsageError(f"--priors: empty prior name in {args.priors!r}; expected comma-separated names")
    _, op, y, truth, sigma = _load_problem(args)
    rows, _ = compare(
        op,
        y,
        truth=truth,
        sigma=sigma,
        priors=priors,
        loss=args.loss,
        stop=args.stop,
        iterations=args.iterations,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
        fits=args.fits,
        penalty=_penalty(args),
    )
    print(format_table(rows, op.size_out, sigma=sigma))
    if args.json is not None:
        payload = [
            {"method": r.method, "seconds": r.seconds, "misfit": r.misfit, "psnr": r.psnr, "ssim": r.ssim, **r.extra}
            for r in rows
        ]
        tmp = args.json.with_name(f".{args.json.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(payload, indent=2, default=str))
            os.replace(tmp, args.json)
        finally:
            tmp.unlink(missing_ok=True)
    return 0


# ---------------------------------------------------------------------------- convert (importers of measured data)
CONVERT_FORMATS = ("fresnel",)


def _add_convert_parser(sub, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "convert", parents=[common], help="import measured data (Institut Fresnel .exp) into a measurement file"
    )
    s.add_argument("format", choices=CONVERT_FORMATS, help="input format: fresnel (Institut Fresnel 2001 .exp text)")
    s.add_argument("input", type=Path)
    s.add_argument("-o", "--output", required=True, type=Path, help="measurement file to write (.h5)")
    s.add_argument("--frequencies", default=None, help="comma-separated frequencies in Hz to keep (default all)")
    s.add_argument("--extent", type=float, default=0.1, help="image half-width in metres (default 0.1)")
    s.add_argument("--size", type=int, default=32, help="image pixels per side (default 32)")
    s.add_argument("--force", action="store_true", help="overwrite an existing output")


def _convert(args: argparse.Namespace) -> int:
    from .io import read_fresnel, save_dataset

    if args.output.exists() and not args.force:
        raise FileExistsError(f"{args.output} exists; pass --force to overwrite")
    _check_output_dir(args.output, "-o/--output")
    freqs = None
    if args.frequencies is not None:
        try:
            freqs = [float(v) for v in args.frequencies.split(",")]
        except ValueError:
            msg = f"--frequencies: expected comma-separated numbers in Hz, got {args.frequencies!r}"
            raise UsageError(msg) from None
    if args.size < 4:
        raise UsageError(f"--size must be ≥ 4, got {args.size}")
    if not args.extent > 0:
        raise UsageError(f"--extent must be a positive number of metres, got {args.extent}")
    ds = read_fresnel(args.input, freqs, extent=args.extent, size=args.size)
    save_dataset(args.output, ds, force=args.force)
    res = ", ".join(f"{v:.3f}" for v in ds.attrs["calibration_residual_mean"])
    print(
        f"wrote {args.output}: mimo, {ds.sizes['tx']} TX × {ds.sizes['rx']} RX × {ds.sizes['freq']} frequencies "
        f"({ds.attrs['measured_entries']} measured, {ds.attrs['missing_entries']} missing), image "
        f"{args.size}² over ±{args.extent:g} m, calibration residual {res}"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .workflows import run_demo

    summary = run_demo(
        args.outdir,
        path=args.input,
        iterations=args.iterations,
        seed=args.seed,
        device=args.device,
        force=args.force,
        progress=not args.quiet,
    )
    print(f"rfprior demo on {summary['input']}")
    print(summary["table"])
    print(f"stopping: {summary['stop_reason']}")
    if summary["sigma_estimated"] is not None:
        true = summary["sigma_true"]
        print(f"noise σ estimated {summary['sigma_estimated']:.4g}" + (f" (true {true:.4g})" if true else ""))
    print("files: " + ", ".join(summary["files"]))
    return 0


# ---------------------------------------------------------------------------- batch (Dask)
def _add_batch_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, priors: str) -> None:
    from .workflows import RULES

    s = sub.add_parser(
        "batch",
        parents=[common],
        help="reconstruct many files on a Dask cluster (needs: pip install 'rfprior[batch]')",
        description="Reconstruct every INPUT into OUTDIR/<stem>.nc on a Dask cluster and write OUTDIR/summary.csv "
        "and summary.nc. Exit status: 0 all succeeded (or were up to date), 1 some failed (the summary says which), "
        "2 usage error, 130 interrupted.",
    )
    s.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="measurement files (.h5)")
    s.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR", help="folder for results + summary")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS", help="use this running cluster (tcp://host:8786)")
    s.add_argument("--workers", type=int, default=None, help="worker processes of the local cluster (default: cores)")
    s.add_argument("--threads", type=int, default=None, help="torch threads per fit (default: cores / workers)")
    s.add_argument("--warm-start", action="store_true", help="inputs are frames in order: start each from the last")
    s.add_argument("--force", action="store_true", help="recompute inputs whose result is up to date")
    s.add_argument("--prior", default=None, help=f"{priors} (default auto: the modality's default prior)")
    s.add_argument("--loss", default="mse", choices=LOSSES, help=f"data term: {_choices(LOSSES)} (default mse)")
    s.add_argument("--stop", default="discrepancy", help=f"stopping rule: {_choices(RULES)} (default discrepancy)")
    s.add_argument(
        "--penalty",
        default="auto",
        choices=PENALTY_CHOICES,
        help=f"image penalty added to the fit: {_choices(PENALTY_CHOICES)} (default auto: the modality's default)",
    )
    s.add_argument("--no-average", action="store_true", help="return the raw iterate, not the running average")
    s.add_argument("--iterations", type=int, default=None, help="iteration budget")
    s.add_argument("--lr", type=float, default=None, help="Adam step size")
    s.add_argument("--sigma", type=float, default=None, help="noise σ per component (default: estimated per file)")
    s.add_argument(
        "--device",
        dest="worker_device",
        metavar="DEVICE",
        default=None,
        help="every fit's device: cpu, cuda (1 GPU/worker)",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--fits", type=int, default=1, help="average this many independently seeded fits per file")


def _batch(args: argparse.Namespace) -> int:
    from .batching import INSTALL_HINT, batch, summary_counts

    for name in ("workers", "threads", "fits", "iterations"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name} must be ≥ 1, got {value}")
    if args.scheduler is None:
        _check_device(args.worker_device)
    options = {
        "prior": args.prior,
        "loss": args.loss,
        "stop": args.stop,
        "average": not args.no_average,
        "iterations": args.iterations,
        "lr": args.lr,
        "sigma": args.sigma,
        "device": args.worker_device,
        "seed": args.seed,
        "fits": args.fits,
        "penalty": _penalty(args),
    }
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        table = batch(
            args.inputs,
            args.output,
            scheduler=args.scheduler,
            workers=args.workers,
            threads_per_worker=args.threads,
            warm_start=args.warm_start,
            force=args.force,
            progress=not args.quiet,
            **options,
        )
    except ImportError as exc:
        raise UsageError(str(exc) if INSTALL_HINT in str(exc) else f"{INSTALL_HINT} ({exc})") from None
    except ConnectionError as exc:
        raise UsageError(str(exc)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    counts = summary_counts(table)
    for row in table.itertuples():
        if row.status == "failed":
            print(f"failed: {row.file}: {row.error}", file=sys.stderr)
    told = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"rfprior batch: {len(table)} files ({told}); summary {args.output / 'summary.csv'}")
    if table.attrs.get("interrupted"):
        print("rfprior batch: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 1 if counts.get("failed", 0) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
