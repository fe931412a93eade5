"""Numba kernel of the calendar unit: many cycles of one calendar at once.

:class:`~tidesim.calendars.CalendarUnit` owns the arrays and calls
:func:`run_unit`; its :meth:`~tidesim.calendars.CalendarUnit.step` is the same
state machine written one cycle at a time in plain Python, and the two agree
bit for bit.

The calendars a run may use are stacked: ``K`` calendars with ``R`` entries
in all and ``P`` ports each, calendar ``k`` owning rows
``start[k] <= row < start[k + 1]`` of ``config`` (``int64[R, P]``) and
``repeat`` (``int64[R]``). Calendars are named by their index ``k`` here.

The unit's state is ``int64[STATE_SIZE]``, indexed by the ``ST_*`` constants:
the active calendar, the pending shadow calendar (``-1``: no swap pending),
the entry of the active calendar, the cycles already spent in that entry,
the cycle within the metacycle, the metacycle counter and the total cycles
run. The state always describes the *current* cycle: the one the next
``step`` executes.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit

__all__ = [
    "STATE_SIZE",
    "ST_ACTIVE",
    "ST_CYCLE",
    "ST_ENTRY",
    "ST_ENTRY_CYCLE",
    "ST_IN_METACYCLE",
    "ST_METACYCLE",
    "ST_PENDING",
    "empty_outputs",
    "run_unit",
]

ST_ACTIVE = 0
ST_PENDING = 1
ST_ENTRY = 2
ST_ENTRY_CYCLE = 3
ST_IN_METACYCLE = 4
ST_METACYCLE = 5
ST_CYCLE = 6
STATE_SIZE = 7


@njit
def run_unit(config, repeat, start, state, write_at, write_cal,
             out_entry, out_metacycle, out_last, out_config):
    """Run a calendar unit for ``n = out_entry.shape[0]`` cycles.

    Each cycle records the current cycle's entry, metacycle counter,
    last-cycle flag and configuration, then advances: to the next cycle of
    the entry, or to the next entry, or (after the last cycle of the last
    entry) to entry 0 of a new metacycle, where a pending shadow calendar
    becomes the active one.

    Args:
        config: ``int64[R, P]``, the stacked configurations.
        repeat: ``int64[R]``, the stacked repeat counts.
        start: ``int64[K + 1]``, calendar ``k``'s first row; ``start[K] == R``.
        state: ``int64[STATE_SIZE]``, the unit's state, updated in place.
        write_at: ``int64[W]``, non-decreasing offsets in ``[0, n]``: write
            ``w`` happens before the cycle at that offset runs (as a
            ``write_shadow`` after that many steps); offset ``n`` means after
            the last cycle.
        write_cal: ``int64[W]``, the calendar written by each write; of several
            writes before one boundary the last wins.
        out_entry: ``int64[n]``, out: the entry index (in the calendar
            active on that cycle).
        out_metacycle: ``int64[n]``, out: the metacycle counter.
        out_last: ``bool[n]``, out: True on the final cycle of a metacycle.
        out_config: ``int64[n, P]``, out: the configuration of each cycle.
    """
    n = out_entry.shape[0]
    ports = config.shape[1]
    active = state[ST_ACTIVE]
    pending = state[ST_PENDING]
    entry = state[ST_ENTRY]
    entry_cycle = state[ST_ENTRY_CYCLE]
    in_metacycle = state[ST_IN_METACYCLE]
    metacycle = state[ST_METACYCLE]
    base = start[active]
    depth = start[active + 1] - base
    w = 0
    n_writes = write_at.shape[0]
    for i in range(n):
        while w < n_writes and write_at[w] <= i:
            pending = write_cal[w]
            w += 1
        row = base + entry
        last_entry = entry == depth - 1
        entry_done = entry_cycle == repeat[row]
        out_entry[i] = entry
        out_metacycle[i] = metacycle
        out_last[i] = last_entry and entry_done
        for p in range(ports):
            out_config[i, p] = config[row, p]
        if not entry_done:
            entry_cycle += 1
            in_metacycle += 1
        elif not last_entry:
            entry += 1
            entry_cycle = 0
            in_metacycle += 1
        else:
            entry = 0
            entry_cycle = 0
            in_metacycle = 0
            metacycle += 1
            if pending >= 0:
                # the shadow swap: only here, between two metacycles
                active = pending
                pending = -1
                base = start[active]
                depth = start[active + 1] - base
    while w < n_writes:
        pending = write_cal[w]
        w += 1
    state[ST_ACTIVE] = active
    state[ST_PENDING] = pending
    state[ST_ENTRY] = entry
    state[ST_ENTRY_CYCLE] = entry_cycle
    state[ST_IN_METACYCLE] = in_metacycle
    state[ST_METACYCLE] = metacycle
    state[ST_CYCLE] += n


def empty_outputs(n: int, ports: int):
    """The ``out_*`` arrays of :func:`run_unit` for ``n`` cycles."""
    return (np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.bool_),
            np.empty((n, ports), np.int64))
