"""Atomic file writes: write a temporary file next to the target, then rename it into place."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path"]


def _exists_error(path: Path) -> FileExistsError:
    return FileExistsError(errno.EEXIST, f"{path} already exists; pass force=True to overwrite it", str(path))


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; move it onto ``path`` on success.

    The caller writes the whole file to the yielded path. If the ``with`` body
    raises, the temporary file is removed and ``path`` is untouched. Without
    ``force`` an existing ``path`` is never replaced (checked before and, where
    the file system supports hard links, atomically at the final step).

    Raises
    ------
    FileExistsError
        ``path`` exists and ``force`` is false.
    FileNotFoundError
        The directory of ``path`` does not exist.
    """
    target = Path(path)
    if target.exists() and not force:
        raise _exists_error(target)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"directory {directory} does not exist", str(directory))
    tmp = directory / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"atomic write of {target}: the writer produced no file")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails atomically if the target appeared meanwhile
            except FileExistsError:
                raise _exists_error(target) from None
            except OSError:  # file system without hard links
                if target.exists():
                    raise _exists_error(target) from None
                os.replace(tmp, target)
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
