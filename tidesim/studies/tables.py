"""Study tables: runs grouped and averaged, and tables as Markdown.

A sweep gives one row per run (:func:`tidesim.studies.sweep.to_table`);
a study usually reports a metric per setting, averaged over seeds or
repeats. :func:`aggregate` does that grouping, keeping count of the runs that
have no value (a run that never settled has ``settle_time_s = None``), and
:func:`markdown_table` prints any list of rows as a Markdown table.

Example:
    >>> from tidesim.studies.tables import aggregate, markdown_table
    >>> rows = [{"kp": 1e-8, "settle_time_s": 6.0}, {"kp": 1e-8, "settle_time_s": 8.0},
    ...         {"kp": 1e-9, "settle_time_s": None}]
    >>> table = aggregate(rows, by=["kp"], metrics=["settle_time_s"])
    >>> table[0]["settle_time_s_mean"], table[1]["settle_time_s_missing"]
    (7.0, 1)
    >>> print(markdown_table(table, ["kp", ("settle_time_s_mean", "settle (s)")]))
    | kp | settle (s) |
    |---|---|
    | 1e-08 | 7 |
    | 1e-09 | – |
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError

__all__ = ["aggregate", "as_number", "format_value", "markdown_table"]


def as_number(value: Any) -> float | None:
    """``value`` as a finite float (``True`` is 1), or ``None`` for anything else.

    ``None`` (a metric a run did not reach), strings, lists, NaN and infinities
    are not numbers.
    """
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        x = float(value)
        return x if math.isfinite(x) else None
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and getattr(value, "ndim", None) == 0:
        return as_number(item())
    return None


def _key(value: Any) -> str:
    """A hashable stand-in for a column value (lists and tables included)."""
    return json.dumps(value, sort_keys=True, default=str)


def aggregate(rows: Iterable[Mapping[str, Any]], by: Sequence[str],
              metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Group runs by the values of ``by`` and summarise each metric over a group.

    Args:
        rows: one mapping per run (a sweep's table).
        by: the columns that name a group (swept keys); a row without one
            has ``None`` there.
        metrics: the columns to summarise.

    Returns:
        One dict per group, in the order groups first appear: the ``by``
        columns, ``runs`` (rows in the group), and for each metric ``m``:
        ``m_mean``, ``m_min``, ``m_max`` over the rows where it is a number
        (``None`` when no row has one) and ``m_missing`` (rows where it is not:
        missing, ``None``, not numeric).

    Raises:
        ConfigError: ``by`` or ``metrics`` is a string instead of a list.
    """
    for name, cols in (("by", by), ("metrics", metrics)):
        if isinstance(cols, str) or not isinstance(cols, Sequence):
            raise ConfigError(name, cols, "must be a list of column names")
    groups: dict[str, dict[str, Any]] = {}
    values: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        head = {c: row.get(c) for c in by}
        key = _key([head[c] for c in by])
        if key not in groups:
            groups[key] = {**head, "runs": 0}
            values[key] = {m: [] for m in metrics}
        groups[key]["runs"] += 1
        for m in metrics:
            x = as_number(row.get(m))
            if x is not None:
                values[key][m].append(x)
    out = []
    for key, group in groups.items():
        for m in metrics:
            xs = values[key][m]
            group[f"{m}_mean"] = math.fsum(xs) / len(xs) if xs else None
            group[f"{m}_min"] = min(xs) if xs else None
            group[f"{m}_max"] = max(xs) if xs else None
            group[f"{m}_missing"] = group["runs"] - len(xs)
        out.append(group)
    return out


def format_value(value: Any, digits: int = 4) -> str:
    """A table cell: numbers to ``digits`` significant digits, ``None`` as ``–``."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value) < 1e15 and (value.is_integer() or abs(value) >= 10**digits):
            return str(round(value))  # a mean count of 24133 frames, not 2.413e+04
        return f"{value:.{digits}g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def markdown_table(rows: Iterable[Mapping[str, Any]],
                   columns: Sequence[str | tuple[str, str]], *, digits: int = 4) -> str:
    """Rows as a Markdown table.

    Args:
        rows: the rows.
        columns: column names, or ``(name, header)`` pairs.
        digits: significant digits of floats.

    Returns:
        The table, one line per row, without a trailing newline.
    """
    cols = [(c, c) if isinstance(c, str) else (c[0], c[1]) for c in columns]
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(format_value(row.get(c), digits) for c, _ in cols) + " |")
    return "\n".join(lines)
