"""The checks every layer applies to user input, in one place.

Each check takes the *field* to name in the error (the config's dotted key,
``clock.theta0``), the value, and the bounds; it returns the value in its
canonical type (``float``, ``int``, ``float64[n]``) or raises one
:class:`~tidesim.errors.ConfigError` line::

    controller.kp: must be >= 0, got -1e-06

The models (``System``, its part types, ``Topology``) and the controllers
check their own arguments with these, under the names the config uses, so a
config only has to map its tables onto keyword arguments. A caller that knows
the value under a longer name (``controller.first.kp``) renames the error with
:func:`renamed`.

Example:
    >>> from tidesim._checks import number, per_node
    >>> number("controller.kp", 2e-8, lo=0)
    2e-08
    >>> per_node("clock.theta0", [0.1, 0.5], 2, lo=0, hi=1, hi_open=True).tolist()
    [0.1, 0.5]
    >>> number("controller.kp", -1e-6, lo=0)
    Traceback (most recent call last):
    ...
    tidesim.errors.ConfigError: controller.kp: must be >= 0, got -1e-06
"""

from __future__ import annotations

import contextlib
import math
import numbers as _numbers
from collections.abc import Iterator
from collections.abc import Sequence as _Sequence

import numpy as np

from .errors import ConfigError

__all__ = [
    "choice",
    "instance",
    "integer",
    "is_integer",
    "is_number",
    "number",
    "numbers",
    "per_node",
    "renamed",
    "set_fields",
    "text",
]


def is_number(value: object) -> bool:
    """A real number, Python's or numpy's; ``bool`` is not one."""
    return isinstance(value, _numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_integer(value: object) -> bool:
    """An integer, Python's or numpy's; ``bool`` is not one (``3.0`` neither)."""
    return isinstance(value, _numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _bounds(lo, hi, lo_open: bool, hi_open: bool, fmt: str) -> str:
    """``>= 0``, ``< 1`` or ``in [0, 1)``: the bounds, as the messages write them."""
    if lo is not None and hi is not None:
        return (f"in {'(' if lo_open else '['}{lo:{fmt}}, "
                f"{hi:{fmt}}{')' if hi_open else ']'}")
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:{fmt}}"
    return f"{'<' if hi_open else '<='} {hi:{fmt}}"


def _outside(x, lo, hi, lo_open: bool, hi_open: bool) -> bool:
    if lo is not None and (x <= lo if lo_open else x < lo):
        return True
    return hi is not None and (x >= hi if hi_open else x > hi)


def number(field: str, value: object, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real number, optionally bounded.

    Args:
        field: the name in the error.
        value: the value given.
        lo, hi: bounds (``None``: unbounded on that side).
        lo_open, hi_open: exclude the bound itself.

    Returns:
        ``float(value)``.

    Raises:
        ConfigError: not a number (``must be a number``), NaN or infinite
            (``must be a finite number``), or out of bounds (``must be >= 0``,
            ``must be in [0, 1)``).
    """
    if not is_number(value):
        raise ConfigError(field, value, "must be a number")
    try:
        x = float(value)
    except OverflowError:  # an integer beyond the float range
        x = math.inf
    if not math.isfinite(x):
        raise ConfigError(field, value, "must be a finite number")
    if (lo is not None or hi is not None) and _outside(x, lo, hi, lo_open, hi_open):
        raise ConfigError(field, value, f"must be {_bounds(lo, hi, lo_open, hi_open, 'g')}")
    return x


def integer(field: str, value: object, *, lo: int | None = None, hi: int | None = None) -> int:
    """An integer (not a ``bool``, not a float), optionally within ``[lo, hi]``.

    Returns:
        ``int(value)``.

    Raises:
        ConfigError: ``must be an integer``, ``must be an integer >= 1`` or
            ``must be an integer in [2, 67108864]``.
    """
    if not is_integer(value):
        raise ConfigError(field, value, "must be an integer")
    x = int(value)
    if (lo is not None or hi is not None) and _outside(x, lo, hi, False, False):
        raise ConfigError(field, value, f"must be an integer {_bounds(lo, hi, False, False, '')}")
    return x


def choice(field: str, value: object, choices: _Sequence[str]) -> str:
    """One of ``choices`` (strings).

    Raises:
        ConfigError: ``must be one of ['event', 'cycle']``.
    """
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(field, value, f"must be one of {list(choices)}")
    return value


def text(field: str, value: object) -> str:
    """A non-empty string (not only blanks).

    Raises:
        ConfigError: ``must be a non-empty string``.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(field, value, "must be a non-empty string")
    return value


def instance(field: str, value: object, kind: type | tuple[type, ...], what: str):
    """``value`` itself, when it is an instance of ``kind``.

    Args:
        what: how the message names ``kind`` (``"an Actuator"``).

    Raises:
        ConfigError: ``must be an Actuator``.
    """
    if not isinstance(value, kind):
        raise ConfigError(field, value, f"must be {what}")
    return value


def _is_list(value: object) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 1
    return isinstance(value, _Sequence) and not isinstance(value, (str, bytes))


def per_node(field: str, value: object, n: int, *, lo: float | None = None,
             hi: float | None = None, hi_open: bool = False) -> np.ndarray:
    """One number for every node, or a sequence with one number per node.

    Entries are checked as :func:`number` and named by index
    (``clock.theta0[2]``).

    Returns:
        float64[n], a new array.

    Raises:
        ConfigError: a sequence of the wrong length (``must have one entry per
            node (8)``), or any entry that is not a finite number in bounds.
    """
    bounds = {"lo": lo, "hi": hi, "hi_open": hi_open}
    if is_number(value):
        return np.full(n, number(field, value, **bounds))
    if not _is_list(value):
        raise ConfigError(field, value, "must be a number or a list with one number per node")
    entries = list(value)
    if len(entries) != n:
        raise ConfigError(field, entries, f"must have one entry per node ({n})")
    return np.array([number(f"{field}[{i}]", v, **bounds) for i, v in enumerate(entries)],
                    dtype=np.float64)


def numbers(field: str, value: object) -> tuple[float, ...]:
    """A list of finite numbers (entries named ``field[i]``), as a tuple of floats.

    Raises:
        ConfigError: not a list (``must be a list of numbers``), or an entry
            that is not a finite number.
    """
    if not _is_list(value):
        raise ConfigError(field, value, "must be a list of numbers")
    return tuple(number(f"{field}[{i}]", v) for i, v in enumerate(value))


@contextlib.contextmanager
def renamed(old: str, new: str) -> Iterator[None]:
    """Re-raise a :class:`ConfigError` about ``old`` (or a key below it) as one about ``new``.

    ``with renamed("controller", "controller.first"): P(kp=-1.0)`` reports
    ``controller.first.kp``. Errors about other fields pass unchanged.
    """
    try:
        yield
    except ConfigError as exc:
        rest = exc.field[len(old):]
        if old == new or not exc.field.startswith(old) or rest[:1] not in ("", ".", "["):
            raise
        raise ConfigError(new + rest, exc.value, exc.expected) from None


def set_fields(obj: object, **values: object) -> None:
    """Store checked (canonical) values on a frozen dataclass, from ``__post_init__``."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)
