"""Bittide against packets: the completion time of one allreduce on a schedule.

What ``docs/bittide-vs-packets.md`` compares with :func:`~tidesim.packetnet.allreduce`:
how many cycles one allreduce of the built-in apps ``allreduce-ring`` and
``allreduce-tree`` takes under a :class:`~tidesim.calendars.Schedule`, and
the closed form of the ring's schedule that extends it to vectors too large
for the calendars.

One allreduce is one SDF iteration ``k``. It runs from the start of the
earliest firing that makes one of its input vectors to the end of the last
firing after which a node holds its sum:

* ``allreduce-tree``: ``up{j}`` makes member ``j``'s vector, ``down{j}``
  gives member ``j`` the sum, all in iteration ``k``:
  ``T = max_j (t(down{j}) + cycles) - min_j t(up{j})``;
* ``allreduce-ring``: node ``i``'s vector for iteration ``k`` is made by its
  last firing ``2(n-1) - 1`` of iteration ``k - 1`` (which also sends its
  first chunk), and the same firing of iteration ``k`` leaves the node with
  the whole sum. With ``E_i`` that firing's cycle,
  ``T = M + max_i (E_i + cycles) - min_i E_i``. The ring's iterations do
  not overlap (``stages == 1``), so the metacycle ``M`` is part of it.

The ``result`` instance of the ring app only reorders node 0's chunks for
output and is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RingForm", "completion_cycles", "grow_metacycle", "ring_closed_form",
           "ring_route_cycles"]


def _names(sched) -> list[str]:
    return [inst.name for inst in sched.graph.instances]


def _ring_size(sched) -> int:
    return sum(1 for name in _names(sched) if name != "result")


def completion_cycles(sched) -> int:
    """Cycles from the first input vector of one allreduce to the last node holding its sum.

    Args:
        sched: a :class:`~tidesim.calendars.Schedule` of the ``allreduce-ring``
            or ``allreduce-tree`` app.

    Raises:
        ValueError: a schedule of another app.
    """
    names = _names(sched)
    fire = sched.fire.tolist()  # (instance, f, node, t, cycles)
    if sched.graph.name == "allreduce-tree":
        ups = [t for i, _f, _n, t, _c in fire if names[i].startswith("up")]
        downs = [t + c for i, _f, _n, t, c in fire if names[i].startswith("down")]
        return int(max(downs) - min(ups))
    if sched.graph.name == "allreduce-ring":
        n = _ring_size(sched)
        last = [(t, c) for i, f, _n, t, c in fire if names[i] != "result" and f == 2 * n - 3]
        return int(sched.metacycle_cycles + max(t + c for t, c in last) - min(t for t, _ in last))
    raise ValueError(f"not an allreduce schedule: {sched.graph.name}")


def ring_route_cycles(sched) -> np.ndarray:
    """int64 ``[n]``: cycles from a word's send to its arrival on ring edge ``i -> i+1``.

    ``Σ λ' + h - 1`` over the edge's route of ``h`` hops (one cycle per
    switch), read from the schedule's routes, which do not depend on the
    vector length.
    """
    names = _names(sched)
    lat = sched.network.latency_cycles
    n = _ring_size(sched)
    out = np.full(n, -1, dtype=np.int64)
    for s, row in enumerate(sched.sends.tolist()):
        edge = sched.graph.edges[row[0]]
        if names[edge.dst] == "result":
            continue
        route = sched.hops[s]
        out[edge.src] = int(lat[route].sum()) + len(route) - 1
    if (out < 0).any():
        raise ValueError("the schedule has no send on some ring edge")
    return out


def grow_metacycle(lo: int, need: int) -> int:
    """The scheduler's metacycle: from the load bound ``lo`` up in steps of at
    least 1 and 25 %, the first that is ``>= need``."""
    from ..calendars._schedule import next_metacycle

    metacycle = int(lo)
    while metacycle < need:
        metacycle = next_metacycle(metacycle)
    return metacycle


@dataclass(frozen=True)
class RingForm:
    """The ring schedule in closed form for chunks of ``chunk`` elements.

    Attributes:
        cycles: ``T``, as :func:`completion_cycles` measures it.
        metacycle_cycles: ``M``.
        need_cycles: the shortest metacycle the dependencies allow
            (``M >= need`` and the load ``2(n-1)·chunk``).
        last: int64 ``[n]``, ``E_i``: the cycle of node ``i``'s last firing.
    """

    cycles: int
    metacycle_cycles: int
    need_cycles: int
    last: np.ndarray


def ring_closed_form(route_cycles, chunk: int) -> RingForm:
    """The ``allreduce-ring`` schedule of ``n`` nodes without running the scheduler.

    Every firing is one cycle and every node's first firing is at cycle 0.
    A chunk of ``c`` words leaves the cycle after its firing, one word per
    cycle, so on edge ``e`` the next firing can start ``s_e = c + r_e``
    cycles later (``r_e`` from :func:`ring_route_cycles`). Firing ``f`` of
    node ``i`` is at

        ``t(i, 0) = 0``,  ``t(i, f) = max(t(i, f-1) + 1, t(i-1, f-1) + s_(i-1))``,

    ``E_i = t(i, 2n-3)``. The next iteration's first chunk into node ``i``
    must arrive within the metacycle, so ``M >= need = max_i (E_(i-1) +
    s_(i-1))``, and ``M`` is the scheduler's step from the link load
    ``2(n-1)c`` (:func:`grow_metacycle`). Then ``T = M + max E + 1 - min E``.

    Args:
        route_cycles: int ``[n]``, ``r_e`` of ring edges ``i -> i+1``.
        chunk: ``c``, elements per chunk (``V / n``).
    """
    r = np.asarray(route_cycles, dtype=np.int64)
    n = len(r)
    step = r + int(chunk)
    t = np.zeros(n, dtype=np.int64)
    for _f in range(1, 2 * n - 2):
        t = np.maximum(t + 1, np.roll(t + step, 1))
    need = int((np.roll(t + step, 1)).max())
    M = grow_metacycle(max(2 * (n - 1) * int(chunk), 2 * (n - 1), 1), need)
    return RingForm(int(M + t.max() + 1 - t.min()), M, need, t)
