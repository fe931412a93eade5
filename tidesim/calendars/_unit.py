"""The calendar unit: a calendar in hardware, with its shadow buffer and counters.

The unit is always at a *current* cycle. Its properties (:attr:`~CalendarUnit.entry`,
:attr:`~CalendarUnit.cycle_in_metacycle`, :attr:`~CalendarUnit.metacycle`,
:attr:`~CalendarUnit.last_cycle`, :attr:`~CalendarUnit.configuration`) are what
the hardware shows during that cycle; :meth:`~CalendarUnit.step` executes it
(returns its configuration) and moves to the next one.

    >>> from tidesim.calendars import Calendar, CalendarUnit
    >>> unit = CalendarUnit(Calendar("switch", [((1,), 1), ((0,), 0)], ports=1))
    >>> [(unit.step().tolist(), unit.metacycle) for _ in range(4)]
    [([1], 0), ([1], 0), ([0], 1), ([1], 1)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .._checks import instance, integer
from ..errors import ConfigError
from ._calendar import Calendar
from ._kernels import (
    ST_ACTIVE,
    ST_CYCLE,
    ST_ENTRY,
    ST_ENTRY_CYCLE,
    ST_IN_METACYCLE,
    ST_METACYCLE,
    ST_PENDING,
    STATE_SIZE,
    empty_outputs,
    run_unit,
)

__all__ = ["CalendarRun", "CalendarUnit"]


class CalendarRun(NamedTuple):
    """What :meth:`CalendarUnit.run` records, one row per cycle run.

    Attributes:
        entry: ``int64[n]``, the entry index, in the calendar active on that cycle.
        metacycle: ``int64[n]``, the metacycle counter on that cycle.
        last_cycle: ``bool[n]``, True on the final cycle of a metacycle.
        config: ``int64[n, ports]``, the configuration of that cycle (what
            :meth:`CalendarUnit.step` returns).
    """

    entry: np.ndarray
    metacycle: np.ndarray
    last_cycle: np.ndarray
    config: np.ndarray


class CalendarUnit:
    """A calendar component: an active calendar, a shadow buffer, counters.

    The unit starts on cycle 0 of metacycle 0, at entry 0 of ``calendar``.
    Software changes the schedule with :meth:`write_shadow`; the written
    calendar swaps in at the next metacycle boundary only, whatever cycle it
    is written on (the metacycle in progress finishes on the old one).

    Args:
        calendar: the calendar active from cycle 0.

    Raises:
        ConfigError: ``calendar`` is not a :class:`Calendar`.
    """

    def __init__(self, calendar: Calendar) -> None:
        self._active = instance("calendar", calendar, Calendar, "a Calendar")
        self._shadow: Calendar | None = None
        self._entry = 0
        self._entry_cycle = 0
        self._in_metacycle = 0
        self._metacycle = 0
        self._cycle = 0

    def __repr__(self) -> str:
        return (f"CalendarUnit({self._active!r}, cycle={self._cycle}, "
                f"metacycle={self._metacycle}, entry={self._entry}, "
                f"swap_pending={self._shadow is not None})")

    # ------------------------------------------------------------------ state

    @property
    def calendar(self) -> Calendar:
        """The active calendar."""
        return self._active

    @property
    def shadow(self) -> Calendar | None:
        """The calendar that swaps in at the next metacycle boundary, or ``None``."""
        return self._shadow

    @property
    def kind(self) -> str:
        """The unit's calendar kind; every calendar it runs has this kind."""
        return self._active.kind

    @property
    def ports(self) -> int:
        """The unit's number of ports."""
        return self._active.ports

    @property
    def cycle(self) -> int:
        """Cycles executed since the unit was made (the current cycle's number)."""
        return self._cycle

    @property
    def entry(self) -> int:
        """The current cycle's entry index in the active calendar."""
        return self._entry

    @property
    def cycle_in_metacycle(self) -> int:
        """The current cycle's position in its metacycle, from 0."""
        return self._in_metacycle

    @property
    def metacycle(self) -> int:
        """Completed metacycles: 0 during the first, +1 at every boundary."""
        return self._metacycle

    @property
    def last_cycle(self) -> bool:
        """True only when the current cycle is the final cycle of a metacycle."""
        return (self._entry == self._active.depth - 1
                and self._entry_cycle == int(self._active.repeat[self._entry]))

    @property
    def configuration(self) -> np.ndarray:
        """``int64[ports]``, read-only: the current cycle's configuration."""
        return self._active.config[self._entry]

    # -------------------------------------------------------------- behaviour

    def _checked(self, field: str, calendar: object) -> Calendar:
        """``calendar``, if this unit can run it (same kind, ports, inputs, hardware)."""
        calendar = instance(field, calendar, Calendar, "a Calendar")
        mine = self._active
        for name in ("kind", "ports", "inputs", "hardware"):
            theirs, ours = getattr(calendar, name), getattr(mine, name)
            if theirs != ours:
                raise ConfigError(f"{field}.{name}", theirs, f"must be the unit's {ours!r}")
        return calendar

    def write_shadow(self, calendar: Calendar) -> None:
        """Write ``calendar`` to the shadow buffer and request a swap.

        It becomes active at the next metacycle boundary: the cycle after
        the current metacycle's last cycle (immediately after, if the current
        cycle is that last cycle). A second write before the boundary
        replaces the first.

        Raises:
            ConfigError: not a :class:`Calendar` of the unit's kind, ports,
                inputs and hardware (``shadow.ports: must be the unit's 4, got 3``).
        """
        self._shadow = self._checked("shadow", calendar)

    def step(self) -> np.ndarray:
        """Execute the current cycle and move to the next one.

        Returns:
            ``int64[ports]``, read-only: the configuration of the cycle executed.
        """
        active = self._active
        config = active.config[self._entry]
        self._cycle += 1
        if self._entry_cycle < int(active.repeat[self._entry]):
            self._entry_cycle += 1
            self._in_metacycle += 1
        elif self._entry < active.depth - 1:
            self._entry += 1
            self._entry_cycle = 0
            self._in_metacycle += 1
        else:
            self._entry = self._entry_cycle = self._in_metacycle = 0
            self._metacycle += 1
            if self._shadow is not None:
                self._active, self._shadow = self._shadow, None
        return config

    def run(self, n: int, writes: Sequence[tuple[int, Calendar]] = ()) -> CalendarRun:
        """Execute ``n`` cycles in the compiled kernel; the same as ``n`` calls of :meth:`step`.

        The run continues from the current state and leaves the unit where
        ``n`` steps would; :meth:`write_shadow` between runs works as between
        steps. Shadow writes *during* the run are given as ``writes``.

        Args:
            n: cycles to run, ``>= 0``.
            writes: ``(offset, calendar)`` pairs, ``0 <= offset <= n``: write
                ``calendar`` to the shadow buffer just before the cycle at
                ``offset`` runs, as ``write_shadow`` after ``offset`` steps
                (offset ``n``: after the run). Applied in offset order; for
                equal offsets, in the order given.

        Returns:
            The :class:`CalendarRun` of the ``n`` cycles.

        Raises:
            ConfigError: ``n`` not an integer ``>= 0``, or a bad write
                (``writes[1].offset: must be an integer in [0, 10], got 11``).
        """
        n = integer("n", n, lo=0)
        if isinstance(writes, (str, bytes)) or not isinstance(writes, Sequence):
            raise ConfigError("writes", writes, "must be a list of (offset, Calendar) pairs")
        calendars = [self._active]
        if self._shadow is not None:
            calendars.append(self._shadow)
        at, cal = [], []
        for w, pair in enumerate(writes):
            if (isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence)
                    or len(pair) != 2):
                raise ConfigError(f"writes[{w}]", pair, "must be an (offset, Calendar) pair")
            at.append(integer(f"writes[{w}].offset", pair[0], lo=0, hi=n))
            cal.append(len(calendars))
            calendars.append(self._checked(f"writes[{w}].calendar", pair[1]))
        order = sorted(range(len(at)), key=at.__getitem__)  # stable: equal offsets keep order
        write_at = np.array([at[k] for k in order], dtype=np.int64)
        write_cal = np.array([cal[k] for k in order], dtype=np.int64)
        config = np.concatenate([c.config for c in calendars])
        repeat = np.concatenate([c.repeat for c in calendars])
        start = np.cumsum([0] + [c.depth for c in calendars], dtype=np.int64)
        state = np.empty(STATE_SIZE, dtype=np.int64)
        state[ST_ACTIVE] = 0
        state[ST_PENDING] = 1 if self._shadow is not None else -1
        state[ST_ENTRY] = self._entry
        state[ST_ENTRY_CYCLE] = self._entry_cycle
        state[ST_IN_METACYCLE] = self._in_metacycle
        state[ST_METACYCLE] = self._metacycle
        state[ST_CYCLE] = self._cycle
        out = empty_outputs(n, self.ports)
        run_unit(config, repeat, start, state, write_at, write_cal, *out)
        self._active = calendars[int(state[ST_ACTIVE])]
        pending = int(state[ST_PENDING])
        self._shadow = calendars[pending] if pending >= 0 else None
        self._entry = int(state[ST_ENTRY])
        self._entry_cycle = int(state[ST_ENTRY_CYCLE])
        self._in_metacycle = int(state[ST_IN_METACYCLE])
        self._metacycle = int(state[ST_METACYCLE])
        self._cycle = int(state[ST_CYCLE])
        return CalendarRun(*out)
