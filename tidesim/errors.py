"""Exceptions shared by every layer of tidesim.

Bad input is reported as one line that names the field, the offending value and
what was expected, e.g. ``topology.latency_s: must be >= 0, got -3e-09``.
"""

from __future__ import annotations

import numbers
from decimal import Context

__all__ = ["ConfigError", "SimulationFault", "TidesimError", "compact_repr"]

_EXACT_INT_LIMIT = 10**20
"""Integers of this size or more (beyond 64 bits, so never a TOML integer) are shown
in exponent notation in messages."""
_SIX_DIGITS = Context(prec=6)


def compact_repr(value: object) -> str:
    """``repr(value)``, with huge integers in exponent notation.

    A float's ``repr`` is already short (``1e+300``), but a Python integer
    has one digit per decade: ``10**300`` would fill the terminal. Integers
    from 10**20 on are shown as ``1e+300``; lists, tuples and dicts are
    shown element by element the same way.

    Args:
        value: any value given by the user.

    Returns:
        The text shown after ``got`` in a message.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
        if abs(number) >= _EXACT_INT_LIMIT:
            # Decimal, not float: also beyond 1.8e308, and without str(), which
            # refuses integers of more than 4300 digits
            return format(_SIX_DIGITS.create_decimal(number).normalize(_SIX_DIGITS), "g")
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(compact_repr(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(compact_repr(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{compact_repr(k)}: {compact_repr(v)}"
                               for k, v in value.items()) + "}"
    return repr(value)


class TidesimError(Exception):
    """Base class of every error raised on purpose by tidesim."""


class ConfigError(TidesimError, ValueError):
    """Invalid user input.

    Args:
        field: dotted path of the offending key (``topology.latency_s``).
        value: the value that was given.
        expected: what would have been accepted (``must be >= 0``).
    """

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}: {expected}, got {compact_repr(value)}")


class SimulationFault(TidesimError):
    """A fault inside a run (buffer overflow, actuator out of range, ...).

    The partial result computed up to the fault is kept in ``trace``.
    """

    def __init__(self, message: str, trace: object = None) -> None:
        self.trace = trace
        super().__init__(message)
