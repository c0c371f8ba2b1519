"""The ``rfprior`` command's argument parser; option defaults come from :mod:`rfprior.defaults`."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import defaults
from ..modalities import PHYSICS

__all__ = ["CONVERT_FORMATS", "LOSSES", "PENALTY_CHOICES", "global_options"]

#: ``--penalty`` names (``none`` → ``rfprior.reconstruct(penalty=None)``).
PENALTY_CHOICES = ("auto", "tv", "none")

#: ``--loss`` names (``rfprior.reconstruct(loss=...)``).
LOSSES = ("mse", "dsp")

#: ``rfprior convert`` input formats.
CONVERT_FORMATS = ("fresnel",)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``rfprior <command>: error: …``), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


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


def _stop_help(rules) -> str:
    """``--stop``'s help: every rule by name, the default, and where one is not offered."""
    from ..modalities import get, names

    refused = [f"{r} is not offered for {m}" for m in names() for r in get(m).unsuitable_rules]
    return f"stopping rule: {_choices(rules)} (default {defaults.FIT.stop}" + "".join(f"; {t}" for t in refused) + ")"


def _sigma(text: str) -> float | str:
    """``--sigma``: a number (checked where it is used) or ``file``."""
    if text == "file":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'file', got {text!r}") from None


def _choices(names) -> str:
    return ", ".join(names)


def _prior_names() -> tuple[str, ...]:
    """Every name ``--prior`` accepts: the registered priors, the size presets and ``auto``."""
    from ..priors import PRESETS, PRIORS

    return (*PRIORS, *PRESETS, "auto")


def _parser() -> argparse.ArgumentParser:
    from .._version import __version__
    from ..modalities import names as modality_names
    from ..stopping import RULES

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
    s.add_argument("modality", choices=modality_names(), help=f"one of {_choices(modality_names())}")
    s.add_argument("-o", "--output", required=True, type=Path, help="measurement file to write (.h5)")
    s.add_argument("--size", type=int, default=64, help="image size in pixels (default 64)")
    s.add_argument("--snr", type=float, default=20.0, help="SNR in dB (default 20)")
    s.add_argument("--seed", type=int, default=defaults.FIT.seed)
    s.add_argument("--force", action="store_true", help="overwrite an existing output")
    s.add_argument(
        "--frames", type=int, default=None, help="write ONE sequence file of N frames of a moving scene (a frame axis)"
    )
    s.add_argument(
        "--masks",
        choices=("per_frame", "shared"),
        default=None,
        help="with --frames: per_frame (a different sampling per frame) or shared (one for all); default: "
        "per_frame where the forward model's sampling can differ per frame (partial_fourier masks), else shared",
    )
    s.add_argument(
        "--frame-interval", type=float, default=None, help="with --frames: seconds between frames (stores the times)"
    )

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
            s.add_argument(
                "--checkpoint-every",
                type=int,
                default=defaults.FIT.checkpoint_every,
                help="iterations between checkpoints",
            )
            s.add_argument("--resume", type=Path, default=None, help="continue from this checkpoint")
            s.add_argument(
                "--init", type=Path, default=None, help="warm start from this result file's network (needs --weights)"
            )
            s.add_argument("--weights", action="store_true", help="also store the network in the result (for --init)")
        else:
            s.add_argument("--priors", default=None, help=f"comma-separated, each one of {priors} (default auto)")
            s.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")
        _add_fit_options(s, RULES, per_file="")
        s.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps …")
        s.add_argument(
            "--physics",
            choices=PHYSICS,
            default=None,
            help="read a calibrated 2-D radar file as first-Born ('born') or full-wave scattering ('full-wave'; "
            "the contrast χ = ε_r − 1); default: the file's modality",
        )
        if name == "reconstruct":
            s.add_argument(
                "--constraint",
                default="auto",
                help="comma-separated of real, nonnegative, lossy (Re χ ≥ 0, Im χ ≤ 0), or none "
                "(default auto: lossy for full-wave scattering, else none)",
            )
            s.add_argument(
                "--no-hopping",
                action="store_true",
                help="full-wave scattering: fit all frequencies at once instead of hopping from the lowest up",
            )
            s.add_argument(
                "--refine",
                type=int,
                default=None,
                metavar="N",
                help="full-wave scattering: at most N TV steps on the pixels after the network's fit, until "
                "the objective levels off (default 1000; 0: the network's image as it is)",
            )
            s.add_argument(
                "--calibrate",
                action=argparse.BooleanOptionalAction,
                default=None,
                help="full-wave scattering: fit one complex gain per frequency with the image (geometric "
                "mean one; corrects relative calibration errors between frequencies; default: the model's)",
            )

    _add_convert_parser(sub, common)

    s = sub.add_parser(
        "demo", parents=[common], help="the fair baselines vs the default prior on the bundled MIMO file"
    )
    s.add_argument("--outdir", type=Path, default=Path("rfprior-demo"))
    s.add_argument("--input", type=Path, default=None, help="measurement file (default: bundled data/mimo.h5)")
    s.add_argument("--iterations", type=int, default=None, help="iteration budget (default: the forward model's)")
    s.add_argument("--seed", type=int, default=defaults.FIT.seed)
    s.add_argument("--device", default=None)
    s.add_argument("--force", action="store_true")
    _add_batch_parser(sub, common, priors)
    return p


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
    s.add_argument(
        "--physics", choices=PHYSICS, default="born",
        help="the modality written: born (mimo, first Born) or full-wave (fullwave); either reads the other's file",
    )  # fmt: skip
    s.add_argument("--force", action="store_true", help="overwrite an existing output")


def _add_batch_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, priors: str) -> None:
    from ..stopping import RULES

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
    s.add_argument("--no-average", action="store_true", help="return the raw iterate, not the running average")
    _add_fit_options(s, RULES, per_file=" per file")
    s.add_argument(
        "--device",
        dest="worker_device",
        metavar="DEVICE",
        default=None,
        help="every fit's device: cpu, cuda (1 GPU/worker)",
    )


def _add_fit_options(s: argparse.ArgumentParser, rules, per_file: str) -> None:
    """The fit's options shared by reconstruct, compare and batch (defaults: :data:`rfprior.defaults.FIT`)."""
    fit = defaults.FIT
    s.add_argument(
        "--loss", default=fit.loss, choices=LOSSES, help=f"data term: {_choices(LOSSES)} (default {fit.loss})"
    )
    s.add_argument("--stop", default=fit.stop, help=_stop_help(rules))
    s.add_argument(
        "--penalty",
        default=fit.penalty,
        choices=PENALTY_CHOICES,
        help=f"image penalty added to the fit: {_choices(PENALTY_CHOICES)} (default auto: the modality's default; "
        "tv: DIP + TV with λ a fraction of the TV-discrepancy λ)",
    )
    s.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="iteration budget (default: the forward model's, rfprior.default_iterations — "
        "3000 for partial Fourier and tomography, 800 for radar)",
    )
    s.add_argument(
        "--lr",
        type=float,
        default=None,
        help="Adam step size (default: the forward model's, rfprior.default_lr — 0.02 for radar, 0.01 otherwise)",
    )
    s.add_argument(
        "--sigma",
        type=_sigma,
        default=None,
        help=f"noise σ per component, or 'file' for the file's noise_sigma (default: estimated{per_file})",
    )
    s.add_argument("--seed", type=int, default=fit.seed)
    s.add_argument(
        "--fits",
        type=int,
        default=fit.fits,
        help=f"average this many independently seeded fits{per_file} (2: twice the time; docs/guide.md)",
    )
