"""Advance a run in slices of wall time, to report progress and stop between them.

A Numba kernel call cannot be interrupted, so a long run advanced in one call
shows nothing and ignores Ctrl-C until it ends. :func:`advance_in_slices`
cuts it into calls of :meth:`Simulation.advance
<tidesim.models.Simulation.advance>` that each take about
:data:`TARGET_WALL_S`: the first covers a few thousand clock cycles, each
next one is sized from the rate the last one measured. Advancing in pieces is
bit-identical to one call, so the slicing never changes the result.

Example:
    >>> from tidesim.models import System, Topology
    >>> system = System(Topology.complete(3, latency_s=1e-8), offsets_ppm=[-5, 0, 5])
    >>> sim = system.start(record="summary")
    >>> times = []
    >>> advance_in_slices(sim, 0.01, on_slice=times.append)
    True
    >>> times[-1] == sim.time_s == 0.01
    True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

__all__ = ["FIRST_SLICE_CYCLES", "MAX_GROWTH", "TARGET_WALL_S", "advance_in_slices"]

TARGET_WALL_S = 0.3
"""Wall time a slice aims at (s): short enough that Ctrl-C answers at once,
long enough that the per-call costs (a final pass over the links) vanish."""
FIRST_SLICE_CYCLES = 1e4
"""Cycles of the nominal clock in the first slice, before any rate is known:
milliseconds of wall time even for cycle fidelity of a large system."""
MAX_GROWTH = 4.0
"""A slice covers at most this many times the simulated time of the last one,
so a rate measured on a quiet stretch cannot make one slice take minutes."""


def advance_in_slices(sim, until_s: float, *, target_wall_s: float = TARGET_WALL_S,
                      on_slice: Callable[[float], Any] | None = None,
                      stop: Callable[[], bool] | None = None) -> bool:
    """Advance ``sim`` to ``until_s`` in slices of about ``target_wall_s`` each.

    Args:
        sim: a :class:`~tidesim.models.Simulation`.
        until_s: the end of the run (s), checked like ``Simulation.advance``'s.
        target_wall_s: the wall time a slice aims at (s).
        on_slice: called with ``sim.time_s`` after every slice.
        stop: called after every slice; when it returns True the run stops
            there.

    Returns:
        True once the run reached ``until_s``; False when ``stop`` ended it
        first, or the run stopped by itself (``sim.stopped``).

    Raises:
        ConfigError: a bad ``until_s``, or a recording of every sample that
            would not fit in memory (checked before anything runs).
        SimulationFault: as ``Simulation.advance``.
    """
    until = sim.system.check_until(until_s)
    # the records of the whole run at once: the memory check comes before
    # anything runs, and no slice copies the records to grow them
    sim.reserve(until)
    step = FIRST_SLICE_CYCLES / sim.system.f_nom_hz
    while sim.time_s < until and not sim.stopped:
        t0 = sim.time_s
        end = t0 + step
        if end >= until - step / MAX_GROWTH:
            end = until  # rather than a sliver of a last slice
        end = max(end, math.nextafter(t0, math.inf))
        started = time.perf_counter()
        sim.advance(end)
        wall = time.perf_counter() - started
        if on_slice is not None:
            on_slice(sim.time_s)
        if stop is not None and stop():
            break
        growth = target_wall_s / wall if wall > 0 else MAX_GROWTH
        step = (sim.time_s - t0) * min(growth, MAX_GROWTH)
    return sim.time_s >= until and not sim.stopped
