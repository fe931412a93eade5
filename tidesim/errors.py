"""Exceptions shared by every layer of tidesim.

Bad input is reported as one line that names the field, the offending value and
what was expected, e.g. ``topology.latency_s: must be >= 0, got -3e-09``.
"""

from __future__ import annotations

__all__ = ["ConfigError", "SimulationFault", "TidesimError"]


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
        super().__init__(f"{field}: {expected}, got {value!r}")


class SimulationFault(TidesimError):
    """A fault inside a run (buffer overflow, actuator out of range, ...).

    The partial result computed up to the fault is kept in ``trace``.
    """

    def __init__(self, message: str, trace: object = None) -> None:
        self.trace = trace
        super().__init__(message)
