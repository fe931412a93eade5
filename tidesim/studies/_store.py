"""Where a sweep's results live: ``results.jsonl``, appended row by row, and its tables.

``OUT/results.jsonl`` holds one JSON object per finished run, appended,
flushed and fsync'd as each run finishes, so a sweep killed at any moment
loses at most the run it was writing: a half-written last line is dropped
(and the run done again) when the sweep resumes. While a sweep writes into a
directory it holds a lock on ``OUT/.lock``; a second sweep into the same
directory is refused. ``OUT/results.csv`` is the table written at the end
(:func:`write_csv`) and ``OUT/sweep.json`` the spec that made it.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ._spec import to_python

if TYPE_CHECKING:
    from ._spec import Sweep

__all__ = [
    "RESULTS_CSV",
    "RESULTS_JSONL",
    "SPEC_JSON",
    "VOLATILE_COLUMNS",
    "ResultStore",
    "clean",
    "to_table",
    "write_csv",
]

VOLATILE_COLUMNS = ("wall_s", "run_s", "worker")
"""Columns that differ between two executions of the same run."""

RESULTS_JSONL = "results.jsonl"
"""The rows of a sweep directory, one JSON object per finished run."""
RESULTS_CSV = "results.csv"
"""The table of a sweep directory, written when the sweep ends."""
SPEC_JSON = "sweep.json"
"""The spec of the sweep that wrote a directory."""


class ResultStore:
    """``results.jsonl``: one JSON object per line, appended and fsync'd per row."""

    def __init__(self, out_dir: Path) -> None:
        self.dir = out_dir
        self.path = out_dir / RESULTS_JSONL
        self._fh = None
        self._lock_fd: int | None = None

    def lock(self) -> None:
        """Refuse a second sweep writing into the same directory at the same time."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # a POSIX record lock belongs to this process only: it is neither
            # inherited by worker processes nor left behind when we are killed
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError("--out", str(self.dir), "is in use by another running sweep") \
                from None
        self._lock_fd = fd

    def load(self, *, repair: bool) -> dict[str, dict]:
        """Rows by run id (the first of duplicates); drops a torn last line."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        end = data.rfind(b"\n") + 1
        if repair and end < len(data):
            with self.path.open("r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
        rows: dict[str, dict] = {}
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a damaged line: that run is simply done again
            if isinstance(row, dict) and isinstance(row.get("run_id"), str):
                rows.setdefault(row["run_id"], row)
        return rows

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row and fsync it: a finished run survives a kill from here on."""
        if self._fh is None:
            new = not self.path.exists()
            self._fh = self.path.open("ab")
            if new:
                _fsync_dir(self.dir)
        self._fh.write(json.dumps(row, separators=(",", ":")).encode() + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file and release the lock."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def clean(value: Any) -> Any:
    """JSON-safe: numpy to Python, non-finite floats to None."""
    value = to_python(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_table(out_dir: str | Path, sweep: Sweep | None = None, *,
             volatile: bool = True) -> list[dict[str, Any]]:
    """The results of a sweep directory as a list of rows (dicts).

    Args:
        out_dir: the directory given to :func:`run_sweep`.
        sweep: when given, only its runs, in index order (runs not done yet are
            missing); otherwise every row of ``results.jsonl``, by index.
        volatile: keep the :data:`VOLATILE_COLUMNS` (wall times, worker).

    Returns:
        One dict per run, never two with the same ``run_id``.
    """
    rows = ResultStore(Path(out_dir)).load(repair=False)
    if sweep is not None:
        out = [rows[r.run_id] for r in sweep.runs() if r.run_id in rows]
    else:
        out = sorted(rows.values(), key=lambda r: (r.get("index", 0), r["run_id"]))
    if not volatile:
        out = [{k: v for k, v in r.items() if k not in VOLATILE_COLUMNS} for r in out]
    return out


def write_csv(rows: list[Mapping[str, Any]], path: str | Path) -> Path:
    """Write rows as CSV (columns in first-seen order; None is empty; lists as JSON).

    The file is written next to its final name and renamed into place.
    """
    path = Path(path)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))

    def cell(v: Any) -> Any:
        if v is None:
            return ""
        if isinstance(v, (bool, list, dict)):
            return json.dumps(v)
        if isinstance(v, float):
            return repr(v)
        return v

    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(columns))
        for row in rows:
            writer.writerow([cell(row.get(c)) for c in columns])
    os.replace(tmp, path)
    return path


