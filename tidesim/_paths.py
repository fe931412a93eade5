"""Output paths, checked before the work whose results they will hold.

A run, a sweep or a plot that finds out only at the end that its output
cannot be written loses the work, and reports it as a traceback. These
checks create the missing folders and write (and remove) a small probe file,
because permissions alone do not tell: root may write anywhere the
permissions say, yet not under ``/proc`` or on a read-only file system.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ConfigError

__all__ = ["check_output_dir", "check_output_file"]


def _why(exc: OSError, path: Path) -> str:
    """Why ``path`` could not be created: a parent that is a file, else the OS's reason."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file"
            break
    return exc.strerror or str(exc)


def _probe(field: str, path: str | Path, directory: Path, expected: str) -> None:
    """Write and remove a file in ``directory``, or raise ``ConfigError(field, path, ...)``."""
    try:
        fd, name = tempfile.mkstemp(prefix=".tidesim-probe-", dir=directory)
    except OSError as exc:
        raise ConfigError(field, str(path), f"{expected} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(name)


def check_output_file(field: str, path: str | Path) -> Path:
    """Check that a file can be written at ``path``; create its folder.

    Args:
        field: the name the error gives (``run.vcd``, ``plot.path``).
        path: the file to be written (it may exist: it will be replaced).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: ``path`` is a directory, its folder cannot be created
            (a parent is a file, ``/proc``...), or nothing can be written there.
    """
    target = Path(path)
    if target.is_dir():
        raise ConfigError(field, str(path), "must be a file path, not a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(field, str(path), f"must be in a directory that can be created "
                                            f"({_why(exc, target)})") from None
    _probe(field, path, target.parent, "must be in a writable directory")
    if target.exists() and not os.access(target, os.W_OK):
        raise ConfigError(field, str(path), "must be a writable file path")
    return target


def check_output_dir(field: str, path: str | Path) -> Path:
    """Create the directory ``path`` (if needed) and check files can be written in it.

    Args:
        field: the name the error gives (``--out``).
        path: the directory.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: ``path`` is a file, cannot be created, or is not writable.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ConfigError(field, str(path), "must be a directory")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(field, str(path), f"must be a directory that can be created "
                                            f"({_why(exc, target)})") from None
    _probe(field, path, target, "must be a writable directory")
    return target
