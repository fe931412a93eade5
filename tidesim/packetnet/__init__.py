"""A switched packet network in virtual time: the baseline bittide is compared to.

An :class:`EventLoop` runs tasks (``async def`` coroutines, each with a
:class:`Handle`) in virtual time; a :class:`SwitcherNetwork` delivers
:class:`Message` s between :class:`Node` s through a fluid-flow switch model
(:class:`GreedyDropSwitcher`). Node programs are :class:`Atom` s, written
once against a :class:`Runtime`; the allreduce algorithms are atoms.
:func:`completion_cycles` and :func:`ring_closed_form` time bittide's
scheduled allreduce for the comparison. See ``docs/packetnet.md`` and
``docs/bittide-vs-packets.md``.
"""

from ._allreduce import (
    ALGORITHMS,
    FLOP_TIME_S,
    TABLE_ROWS,
    TABLE_SIZES,
    Allreduce,
    NaiveAllreduce,
    StreamAllreduce,
    TreeAllreduce,
    allreduce,
    format_table,
    load_algorithm,
    make_allreduce,
    table,
)
from ._atoms import Atom, AtomRun, Packet, Runtime, interrupt, routes, run_atoms, size_of
from ._compare import (
    RingForm,
    completion_cycles,
    grow_metacycle,
    ring_closed_form,
    ring_route_cycles,
)
from ._loop import Deadlock, Event, EventLoop, Handle, Stream, Timer
from ._network import GreedyDropSwitcher, Message, Node, SwitcherNetwork

__all__ = [
    "ALGORITHMS", "FLOP_TIME_S", "TABLE_ROWS", "TABLE_SIZES", "Allreduce", "Atom", "AtomRun",
    "Deadlock", "Event", "EventLoop", "GreedyDropSwitcher", "Handle", "Message",
    "NaiveAllreduce", "Node", "Packet", "RingForm", "Runtime", "Stream", "StreamAllreduce",
    "SwitcherNetwork", "Timer", "TreeAllreduce", "allreduce", "completion_cycles",
    "format_table", "grow_metacycle", "interrupt", "load_algorithm", "make_allreduce",
    "ring_closed_form", "ring_route_cycles", "routes", "run_atoms", "size_of", "table",
]
