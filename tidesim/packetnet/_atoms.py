"""Cooperative atoms: node programs written once against a small runtime API.

An :class:`Atom` is a node program: an ``invoke`` coroutine (its main
thread), an interrupt table (a handler per packet kind, called for every
packet of that kind) and a future table (one-shot handlers by id, added
at run time with :meth:`Runtime.future`). The runtime delivers packets: when
the main thread blocks (:meth:`Runtime.recv`, :meth:`Runtime.until`), the
runtime takes the next packet and calls its future's handler, else its
kind's interrupt handler, else keeps it for ``recv``. Handlers run one at a
time, to the end, on the node's one thread of control; they may
:meth:`~Runtime.send` and :meth:`~Runtime.sleep` (compute), not wait for
packets.

The same atom runs wherever a :class:`Runtime` exists: on the packet network
(:func:`run_atoms`, virtual time), over a bittide system's links in this
process, and on node processes
(:meth:`tidesim.backends.HardwareRun.run_atoms`).
"""

from __future__ import annotations

import abc
import inspect
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .._checks import integer, number
from ..errors import ConfigError

__all__ = ["Atom", "AtomRun", "Packet", "Runtime", "connected_routes", "interrupt", "routes",
           "size_of"]


@dataclass(frozen=True)
class Packet:
    """What atoms send and receive.

    Attributes:
        source, dest: node indices.
        kind: selects the interrupt handler.
        payload: any picklable value.
        size_bytes: what it costs on the wire (bytes).
        future: the receiver's future id it completes, or None.
    """

    source: int
    dest: int
    kind: str
    payload: Any = None
    size_bytes: float = 0.0
    future: int | None = None


def size_of(payload: Any) -> float:
    """A payload's size on the wire (bytes) when the sender gives none:
    an array's ``nbytes``, a ``bytes``/``str``'s length, 8 for a scalar, 0 for None."""
    if payload is None:
        return 0.0
    if isinstance(payload, np.ndarray):
        return float(payload.nbytes)
    if isinstance(payload, (bytes, bytearray, str)):
        return float(len(payload))
    return 8.0


def interrupt(kind: str) -> Callable:
    """Mark an atom method ``handler(self, rt, packet)`` as the interrupt
    handler of packets of ``kind`` (a plain or an ``async`` method)."""

    def mark(fn: Callable) -> Callable:
        fn.__tidesim_interrupt__ = kind
        return fn

    return mark


class Atom:
    """A node program: subclass it, write ``invoke``, mark handlers with :func:`interrupt`.

    Lifecycle: the runtime calls ``await atom.invoke(rt)`` once on its node;
    its return value is the node's result. Packets that arrive after it
    returns are dropped.

    Example:
        >>> from tidesim.packetnet import Atom, interrupt, run_atoms
        >>> class Ping(Atom):
        ...     def __init__(self):
        ...         self.pongs = 0
        ...     async def invoke(self, rt):
        ...         if rt.node == 0:
        ...             rt.send(1, "ping", size_bytes=100)
        ...             return (await rt.recv("pong")).payload
        ...         await rt.until(lambda: self.pongs)
        ...     @interrupt("ping")
        ...     def on_ping(self, rt, packet):
        ...         rt.send(packet.source, "pong", rt.time_s, size_bytes=100)
        ...         self.pongs += 1
        >>> run = run_atoms([Ping(), Ping()], latency_s=0.5, rate_bytes_per_s=100.0)
        >>> run.results[0], run.time_s, run.messages
        (1.5, 3.0, 2)
    """

    #: kind -> the name of its handler method (filled in for each subclass)
    interrupt_table: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        table = dict(cls.interrupt_table)
        for name, fn in vars(cls).items():
            kind = getattr(fn, "__tidesim_interrupt__", None)
            if kind is not None:
                table[kind] = name
        cls.interrupt_table = table

    async def invoke(self, rt: Runtime) -> Any:
        """The main thread: runs once; its return value is the node's result."""
        raise NotImplementedError


class Runtime(abc.ABC):
    """What an atom calls on its node (its system calls).

    Attributes:
        node: this node's index; n_nodes: how many nodes run atoms.
    """

    def __init__(self, atom: Atom, node: int, n_nodes: int) -> None:
        self.atom, self.node, self.n_nodes = atom, node, n_nodes
        self._interrupts: dict[str, Callable] = {
            kind: getattr(atom, name) for kind, name in type(atom).interrupt_table.items()}
        self._futures: dict[int, Callable] = {}
        self._inbox: deque[Packet] = deque()
        self._next_future = 0
        self._in_handler = 0
        self.sent = 0
        self.bytes_sent = 0.0

    # ------------------------------------------------------------ what the backend provides
    @property
    @abc.abstractmethod
    def time_s(self) -> float:
        """The node's time (s): virtual on a simulated network, wall time on real ones."""

    @abc.abstractmethod
    def _put(self, packet: Packet) -> None:
        """Hand ``packet`` to the network."""

    @abc.abstractmethod
    async def _take(self) -> Packet:
        """Wait for the next packet addressed to this node."""

    @abc.abstractmethod
    async def _pause(self, dt_s: float) -> None:
        """Let ``dt_s`` seconds pass (packets arriving meanwhile wait)."""

    # ------------------------------------------------------------ the atom's API
    def send(self, dest: int, kind: str, payload: Any = None, *,
             size_bytes: float | None = None, future: int | None = None) -> None:
        """Send ``payload`` to node ``dest`` as a packet of ``kind``; it does not wait.

        ``size_bytes`` defaults to :func:`size_of` the payload; ``future``
        names a future of the receiver that the packet completes.
        """
        dest = integer("send.dest", dest, lo=0, hi=self.n_nodes - 1)
        size = size_of(payload) if size_bytes is None else number(
            "send.size_bytes", size_bytes, lo=0)
        self.sent += 1
        self.bytes_sent += size
        self._put(Packet(self.node, dest, kind, payload, size, future))

    def future(self, handler: Callable[[Runtime, Packet], Any],
               future_id: int | None = None) -> int:
        """Call ``handler(rt, packet)`` once, for the packet that completes
        ``future_id`` (default: a fresh id); returns the id, for the sender."""
        if future_id is None:
            future_id = self._next_future
            self._next_future += 1
        self._futures[integer("future.id", future_id)] = handler
        return future_id

    def on(self, kind: str, handler: Callable[[Runtime, Packet], Any]) -> None:
        """Add (or replace) the interrupt handler of ``kind``."""
        self._interrupts[kind] = handler

    async def sleep(self, dt_s: float) -> None:
        """Let ``dt_s`` seconds pass: compute time, during which packets wait."""
        await self._pause(number("sleep.dt_s", dt_s, lo=0))

    async def recv(self, *kinds: str) -> Packet:
        """The next packet (of one of ``kinds``, if given) that no handler took."""
        self._main_only("recv")
        while True:
            for k, p in enumerate(self._inbox):
                if (not kinds or p.kind in kinds) and not self._handled(p):
                    del self._inbox[k]
                    return p
            await self._step()

    async def until(self, predicate: Callable[[], Any]) -> None:
        """Deliver packets to the handlers until ``predicate()`` is true."""
        self._main_only("until")
        while not predicate():
            await self._step()

    # ------------------------------------------------------------ dispatch
    def _main_only(self, what: str) -> None:
        if self._in_handler:
            raise RuntimeError(f"node {self.node}: {what}() in a handler: handlers may "
                               f"send and sleep, not wait for packets")

    def _handled(self, p: Packet) -> bool:
        return (p.future is not None and p.future in self._futures) or p.kind in self._interrupts

    async def _step(self) -> None:
        """Dispatch one packet: a kept one a handler now takes, else the next to come."""
        for k, p in enumerate(self._inbox):
            if self._handled(p):
                del self._inbox[k]
                break
        else:
            p = await self._take()
        if p.future is not None and p.future in self._futures:
            handler = self._futures.pop(p.future)
        elif p.kind in self._interrupts:
            handler = self._interrupts[p.kind]
        else:
            self._inbox.append(p)
            return
        self._in_handler += 1
        try:
            r = handler(self, p)
            if inspect.isawaitable(r):
                await r
        finally:
            self._in_handler -= 1


@dataclass
class AtomRun:
    """What a run of atoms gives back.

    Attributes:
        results: each node's ``invoke`` return value.
        time_s: completion time (virtual s on a simulated network, wall s on real ones).
        messages: packets sent; bytes: their total size_bytes.
        wall_s: wall time of the run (s).
        finish_s: each node's time when its ``invoke`` returned.
    """

    results: list
    time_s: float
    messages: int
    bytes: float
    wall_s: float
    finish_s: list = field(default_factory=list)


def routes(n_nodes: int, links) -> np.ndarray:
    """Next hops over shortest paths: ``hop[a, d]`` is where node ``a``
    sends a packet for ``d`` (``-1``: unreachable; ``a`` itself for ``d == a``).

    Ties go to the lowest-numbered neighbour, so every node computes the same table.
    """
    from ..models.topology import hop_distances

    links = np.asarray(links, np.int64).reshape(-1, 2)
    dist = hop_distances(n_nodes, links)
    nbrs = [sorted({b for a, b in links.tolist() if a == j and b != j}) for j in range(n_nodes)]
    hop = np.full((n_nodes, n_nodes), -1, np.int64)
    for a in range(n_nodes):
        for d in range(n_nodes):
            if a == d:
                hop[a, d] = d
            elif dist[a, d] < n_nodes:  # the first neighbour one step closer
                hop[a, d] = next(b for b in nbrs[a] if dist[b, d] == dist[a, d] - 1)
    return hop


def connected_routes(n_nodes: int, links, over: str) -> np.ndarray:
    """:func:`routes`, refused unless every node reaches every other (``over``: for the message)."""
    hop = routes(n_nodes, links)
    if (hop < 0).any():
        a, b = np.argwhere(hop < 0)[0].tolist()
        raise ConfigError("atoms", f"node {a} -> node {b}",
                          f"must be connected: every node must reach every other over {over}")
    return hop


# ------------------------------------------------------------------ on the event loop

class _LoopRuntime(Runtime):
    """A runtime on the virtual-time event loop: packets come on a stream."""

    def __init__(self, atom: Atom, node: int, n_nodes: int, handle, stream,
                 put: Callable[[Any, Packet], None]) -> None:
        super().__init__(atom, node, n_nodes)
        self._h, self._stream, self._send = handle, stream, put

    @property
    def time_s(self) -> float:
        return self._h.time

    def _put(self, packet: Packet) -> None:
        self._send(self._h, packet)

    async def _take(self) -> Packet:
        msg = (await self._h.poll(self._stream)).message
        return getattr(msg, "message", msg)  # a switched network's Message wraps it

    async def _pause(self, dt_s: float) -> None:
        await self._h.sleep(dt_s)


def check_atoms(atoms: Sequence[Atom]) -> list[Atom]:
    """``atoms`` as a list of at least one :class:`Atom`."""
    atoms = list(atoms)
    if not atoms:
        raise ConfigError("atoms", atoms, "must be at least one Atom")
    for j, a in enumerate(atoms):
        if not isinstance(a, Atom):
            raise ConfigError(f"atoms[{j}]", a, "must be an Atom")
    return atoms


def run_on_loop(loop, atoms: list[Atom], streams: list,
                put: Callable[[Any, Packet], None]) -> AtomRun:
    """Run one atom per node as tasks of ``loop``; ``put(handle, packet)`` sends."""
    n = len(atoms)
    results: list = [None] * n
    finish: list = [None] * n
    runtimes: list[Runtime] = []

    def task(j: int):
        async def run(h):
            rt = _LoopRuntime(atoms[j], j, n, h, streams[j], put)
            runtimes.append(rt)
            results[j] = await atoms[j].invoke(rt)
            finish[j] = h.time
        return run

    t0 = time.perf_counter()
    for j in range(n):
        loop.go(task(j), name=f"node {j} ({type(atoms[j]).__name__})")
    loop.run()
    return AtomRun(results, loop.time, sum(rt.sent for rt in runtimes),
                   sum(rt.bytes_sent for rt in runtimes), time.perf_counter() - t0, finish)


def run_atoms(atoms: Sequence[Atom], *, latency_s: float, rate_bytes_per_s: float,
              tie_seed: int | None = None) -> AtomRun:
    """Run ``atoms`` (one per node) on a switched packet network, in virtual time.

    The network is a :class:`~tidesim.packetnet.SwitcherNetwork` with a
    :class:`~tidesim.packetnet.GreedyDropSwitcher` (every port ``rate_bytes_per_s``)
    and one latency. ``time_s`` is when the last node finished.

    Raises:
        ConfigError: no atoms, a negative latency, a rate that is not > 0.
        Deadlock: every node waits and no packet is on its way.
    """
    from ._loop import EventLoop
    from ._network import GreedyDropSwitcher, Message, Node, SwitcherNetwork

    atoms = check_atoms(atoms)
    loop = EventLoop(tie_seed=tie_seed)
    nodes = [Node(loop.stream()) for _ in atoms]
    net = SwitcherNetwork(GreedyDropSwitcher(len(atoms), rate_bytes_per_s), nodes, latency_s)

    def put(h, p: Packet) -> None:
        net.send(h, Message(nodes[p.source], nodes[p.dest], p, p.size_bytes))

    return run_on_loop(loop, atoms, [nd.incoming for nd in nodes], put)


# ------------------------------------------------------------------ in wall time

class _Request:
    """What a wall-time runtime awaits: its driver serves it (see :func:`drive`)."""

    __slots__ = ("what", "arg")

    def __init__(self, what: str, arg: Any = None) -> None:
        self.what, self.arg = what, arg

    def __await__(self):
        return (yield self)


def drive(coro, serve: Callable[[str, Any], Any]) -> Any:
    """Run ``coro`` to its end, serving each request it awaits with
    ``serve(what, arg)`` (``"take"``: the next packet; ``"pause"``: ``arg``
    seconds pass); returns what the coroutine returns."""
    value = None
    while True:
        try:
            req = coro.send(value)
        except StopIteration as stop:
            return stop.value
        value = serve(req.what, req.arg)


class WallRuntime(Runtime):
    """A runtime in wall time, for nodes on real hardware: ``put`` sends a
    packet; the coroutine's waits are served by :func:`drive`.

    ``time_s`` counts from ``t0`` (a ``time.monotonic()`` reading).
    """

    def __init__(self, atom: Atom, node: int, n_nodes: int,
                 put: Callable[[Packet], None], t0: float) -> None:
        super().__init__(atom, node, n_nodes)
        self._send, self._t0 = put, t0

    @property
    def time_s(self) -> float:
        return time.monotonic() - self._t0

    def _put(self, packet: Packet) -> None:
        self._send(packet)

    async def _take(self) -> Packet:
        return await _Request("take")

    async def _pause(self, dt_s: float) -> None:
        await _Request("pause", dt_s)
