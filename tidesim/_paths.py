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

__all__ = ["check_output_dir", "check_output_file", "import_file"]


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


def check_output_file(field: str, path: str | Path, *, given: str | None = None,
                      what: str = "") -> Path:
    """Check that a file can be written at ``path``; create its folder.

    An existing file is opened for writing (never truncated), a new one is
    probed beside it: permission bits do not stop root, and pseudo file
    systems or read-only mounts only say no when a file is written.

    Args:
        field: the name the error gives (``run.vcd``, ``plot.path``).
        path: the file to be written (it may exist: it will be replaced).
        given: the path the user gave, shown after ``got`` (default: ``path``),
            when ``path`` is a file written beside it.
        what: how ``path`` relates to ``given`` (``"its GTKWave save file
            out/a.gtkw"``), for the message.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: ``path`` is a directory or not a regular file, its folder
            cannot be created (a parent is a file, ``/proc``...), or nothing
            can be written there.
    """
    given = str(path) if given is None else given
    lead = f"{what} " if what else ""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(field, given, f"{lead}must be a file path, not a directory")
    if target.exists() and not target.is_file():
        # a FIFO would block the check, a device is no place for a result
        raise ConfigError(field, given, f"{lead}must be a regular file path")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(field, given, f"{lead}must be in a directory that can be created "
                                        f"({_why(exc, target)})") from None
    if target.exists():
        try:
            os.close(os.open(target, os.O_WRONLY))
        except OSError as exc:
            raise ConfigError(field, given, f"{lead}must be a writable file path "
                                            f"({exc.strerror or exc})") from None
    else:
        _probe(field, given, target.parent, f"{lead}must be in a writable directory")
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


_imported = 0


def import_file(field: str, path: str | Path, expected: str):
    """Import the Python file ``path`` as a fresh module (each call a new one).

    Raises:
        ConfigError: (``field``, ``expected``) ``path`` is not an existing
            ``.py`` file, or not one Python can import.
    """
    import importlib.util
    import sys

    global _imported
    p = Path(path)
    if p.suffix != ".py" or not p.is_file():
        raise ConfigError(field, str(path), expected)
    _imported += 1
    name = f"_tidesim_file_{_imported}_{p.stem}"
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise ConfigError(field, str(path), "must be a Python file that can be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and Numba's cache look modules up
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    return module
