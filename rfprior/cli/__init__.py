"""The ``rfprior`` command (also ``python -m rfprior``).

User errors (bad files, bad arguments, existing outputs) print one line to stderr
and exit with status 2; an interrupted reconstruction (Ctrl-C or SIGTERM) saves the
best result so far, marked as interrupted, and exits with status 130.

``parser`` builds the argument parser (its defaults come from :mod:`rfprior.defaults`),
``commands`` runs each subcommand.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .commands import COMMANDS, UsageError, check_device
from .parser import _parser, global_options

__all__ = ["UsageError", "global_options", "main"]


def _user_errors() -> tuple[type[BaseException], ...]:
    from operators import ConvergenceError

    from ..io import FormatError

    return (
        UsageError,
        ConvergenceError,
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
        check_device(getattr(args, "device", None))
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:  # before or outside a reconstruction loop (which saves its own result)
        print(f"rfprior {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except _user_errors() as exc:
        if args.debug:
            raise
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"rfprior {args.command}: error: {msg}", file=sys.stderr)
        return 2
