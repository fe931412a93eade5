"""What the example studies share: their command line and how they report.

Each study is a script ``docs/examples/NAME.py`` that runs one sweep into
``OUT/runs/`` and writes its summary table to ``OUT/summary.csv`` and
``OUT/summary.md`` and its plots beside them; ``--small`` makes it a few short
runs (what the tests run).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from tidesim.studies import SweepResult, write_csv
from tidesim.studies.tables import markdown_table


def parse_args(doc: str, argv: Sequence[str] | None, default_out: str) -> argparse.Namespace:
    """``--small``, ``--out DIR`` (a :class:`~pathlib.Path`) and ``--workers N``."""
    parser = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    parser.add_argument("--small", action="store_true", help="a few short runs (for tests)")
    parser.add_argument("--out", type=Path, default=Path(default_out),
                        help=f"output directory (default: {default_out})")
    parser.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    return parser.parse_args(argv)


def report(result: SweepResult, table: list[dict], columns: Sequence, out: Path,
           *, digits: int = 4) -> str:
    """Write ``summary.csv`` and ``summary.md`` into ``out``, print them; returns the Markdown."""
    write_csv(table, out / "summary.csv")
    text = markdown_table(table, columns, digits=digits)
    (out / "summary.md").write_text(text + "\n", encoding="utf-8")
    print(f"{result.total} runs in {result.wall_s:.1f} s; tables and plots in {out}")
    print(text)
    return text
