"""The ``rfprior`` subcommands: each takes the parsed arguments and returns the exit status."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from ..files.atomic import atomic_path

__all__ = ["COMMANDS", "UsageError", "check_device"]


class UsageError(Exception):
    """A problem the user can fix; reported in one line, exit status 2."""


def check_device(device: str | None) -> None:
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


def _simulate(args: argparse.Namespace) -> int:
    from ..scenes import simulate, simulate_frames

    if args.output.exists() and not args.force:
        raise FileExistsError(f"{args.output} exists; pass --force to overwrite")
    if args.size < 8:
        raise UsageError(f"--size must be ≥ 8, got {args.size}")
    frames, masks, interval = (getattr(args, k, None) for k in ("frames", "masks", "frame_interval"))
    common = {"size": args.size, "snr_db": args.snr, "seed": args.seed, "path": args.output, "force": args.force}
    if frames is None:
        if masks is not None or interval is not None:
            raise UsageError("--masks and --frame-interval need --frames N (a sequence file)")
        ds = simulate(args.modality, **common)
    else:
        if frames < 1:
            raise UsageError(f"--frames must be ≥ 1, got {frames}")
        if interval is not None and not interval > 0:
            raise UsageError(f"--frame-interval must be a positive number of seconds, got {interval:g}")
        ds = simulate_frames(args.modality, frames=frames, masks=masks, frame_interval=interval, **common)
    print(f"wrote {args.output}: {args.modality}, measurements {dict(ds['measurements'].sizes)}, SNR {args.snr:g} dB")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from ..io import describe, load

    print(describe(load(args.input), args.input))
    return 0


def _load_problem(args: argparse.Namespace):
    """The input file as a :class:`rfprior.problem.Problem`: read and validated once, σ settled once."""
    from ..problem import Problem

    return Problem.from_file(args.input, sigma=args.sigma, device=args.device, physics=args.physics)


def _reconstruct(args: argparse.Namespace) -> int:
    from ..problem import reconstruct_file

    if args.output.exists() and not args.force:
        raise FileExistsError(f"{args.output} exists; pass --force to overwrite")
    _check_output_dir(args.output, "-o/--output")
    _check_output_dir(args.checkpoint, "--checkpoint")
    _check_fits(args)
    problem = _load_problem(args)
    problem.rules(args.stop, average=not args.no_average)  # a rule this forward model does not offer: refused now
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        job = reconstruct_file(
            problem,
            args.output,
            stop=args.stop,
            average=not args.no_average,
            device=args.device,
            force=args.force,
            weights=args.weights,
            progress=not args.quiet,
            prior=args.prior,
            loss=args.loss,
            iterations=args.iterations,
            lr=args.lr,
            seed=args.seed,
            checkpoint=args.checkpoint,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            fits=args.fits,
            penalty=_penalty(args),
            init=args.init,
            constraint=_constraint(args.constraint),
            hopping=False if args.no_hopping else None,
            refine=args.refine,
            calibrate=args.calibrate,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    res = job.result
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


def _constraint(text: str) -> str | list[str] | None:
    """``--constraint``: ``auto``, ``none`` or comma-separated names."""
    if text in ("auto", "none"):
        return None if text == "none" else "auto"
    names = [v.strip() for v in text.split(",") if v.strip()]
    from ..fit.nonlinear import CONSTRAINTS

    bad = [v for v in names if v not in CONSTRAINTS]
    if bad or not names:
        raise UsageError(f"--constraint: expected auto, none or some of {', '.join(CONSTRAINTS)}, got {text!r}")
    return names


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
    from ..workflows import compare

    _check_output_dir(args.json, "--json")
    _check_fits(args)
    priors = tuple(p.strip() for p in args.priors.split(",")) if args.priors else (None,)
    if args.priors and any(not p for p in priors):
        raise UsageError(f"--priors: empty prior name in {args.priors!r}; expected comma-separated names")
    problem = _load_problem(args)
    if problem.frames is not None:
        from ..workflows import compare_sequence

        if args.priors:
            raise UsageError("--priors: a frame sequence is compared with its default prior (joint and per frame)")
        rows, _ = compare_sequence(
            problem, iterations=args.iterations, seed=args.seed, device=args.device, progress=not args.quiet
        )
        return _print_table(args, rows, problem)
    rows, _ = compare(
        problem.op,
        problem.y,
        truth=problem.truth,
        sigma=problem.sigma,
        priors=priors,
        loss=args.loss,
        stop=args.stop,
        iterations=args.iterations,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
        fits=args.fits,
        penalty=_penalty(args),
    )
    return _print_table(args, rows, problem)


def _print_table(args: argparse.Namespace, rows, problem) -> int:
    from ..workflows import format_table

    known = problem.sigma if problem.sigma is not None and problem.sigma.source in ("given", "file") else None
    print(format_table(rows, problem.size, sigma=known))  # misfit in units of Mσ² only for a σ the user gave
    if args.json is not None:
        payload = [
            {"method": r.method, "seconds": r.seconds, "misfit": r.misfit, "psnr": r.psnr, "ssim": r.ssim, **r.extra}
            for r in rows
        ]
        with atomic_path(args.json, force=True) as tmp:
            tmp.write_text(json.dumps(payload, indent=2, default=str))
    return 0


def _convert(args: argparse.Namespace) -> int:
    from ..io import read_fresnel, save_dataset

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
    ds = read_fresnel(args.input, freqs, extent=args.extent, size=args.size, physics=args.physics)
    save_dataset(args.output, ds, force=args.force)
    res = ", ".join(f"{v:.3f}" for v in ds.attrs["calibration_residual_mean"])
    print(
        f"wrote {args.output}: {ds.attrs['modality']}, {ds.sizes['tx']} TX × {ds.sizes['rx']} RX × "
        f"{ds.sizes['freq']} frequencies "
        f"({ds.attrs['measured_entries']} measured, {ds.attrs['missing_entries']} missing), image "
        f"{args.size}² over ±{args.extent:g} m, calibration residual {res}"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ..workflows import run_demo

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


def _batch(args: argparse.Namespace) -> int:
    from ..batching import INSTALL_HINT, batch, summary_counts

    for name in ("workers", "threads", "fits", "iterations"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name} must be ≥ 1, got {value}")
    if args.scheduler is None:
        check_device(args.worker_device)
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


COMMANDS = {
    "simulate": _simulate,
    "inspect": _inspect,
    "reconstruct": _reconstruct,
    "compare": _compare,
    "demo": _demo,
    "convert": _convert,
    "batch": _batch,
}
