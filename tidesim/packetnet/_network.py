"""The switched network: a fluid-flow model re-planned on every send."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import integer, number
from ..errors import ConfigError
from ._loop import Handle, Stream, Timer


@dataclass
class Node:
    """A network endpoint; its messages arrive on ``incoming``."""

    incoming: Stream

    async def recv(self, h: Handle):
        """The next :class:`~tidesim.packetnet.Event` (its message: a :class:`Message`)."""
        return await h.poll(self.incoming)


@dataclass
class Message:
    """``message`` from ``source`` to ``dest``, ``size`` bytes."""

    source: Node
    dest: Node
    message: Any
    size: float


class GreedyDropSwitcher:
    """Rates of the flows in flight: each sender splits its send rate evenly
    over its destinations; a receiver offered more than its receive rate
    scales its incoming flows down (nothing is dropped, and unused capacity
    is not given back). Flows of one (source, dest) pair share evenly.

    Args:
        n: ports; rate_bytes_per_s: every port's send and receive rate.
    """

    def __init__(self, n: int, rate_bytes_per_s: float) -> None:
        n = integer("switcher.n", n, lo=1)
        r = number("switcher.rate_bytes_per_s", rate_bytes_per_s, lo=0, lo_open=True)
        self.send_rate = np.full(n, r)
        self.recv_rate = np.full(n, r)

    @property
    def n(self) -> int:
        return len(self.send_rate)

    def rates(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Each flow's rate (bytes/s), for flows ``src[k] -> dst[k]`` (int arrays)."""
        n = self.n
        count = np.zeros((n, n))
        np.add.at(count, (src, dst), 1.0)
        m = (count > 0).astype(float)
        dests = m.sum(axis=1)
        m *= np.divide(self.send_rate, dests, out=np.zeros(n), where=dests > 0)[:, None]
        for d in range(n):
            col = 0.0
            for s in range(n):  # in source order, as the reference sums
                col += m[s, d]
            if col > self.recv_rate[d]:
                m[:, d] *= self.recv_rate[d] / col
        return m[src, dst] / count[src, dst]


class _Flight:
    __slots__ = ("msg", "rem_lat", "rem_size", "rate", "timer")

    def __init__(self, msg: Message, rem_lat: float, rem_size: float) -> None:
        self.msg, self.rem_lat, self.rem_size = msg, rem_lat, rem_size
        self.rate = 0.0
        self.timer: Timer | None = None

    def add_time(self, t: float) -> None:
        """Latency is paid first, then bytes at the flow's rate."""
        if t < self.rem_lat:
            self.rem_lat -= t
        else:
            self.rem_size -= self.rate * (t - self.rem_lat)
            self.rem_lat = 0.0


class SwitcherNetwork:
    """Nodes joined by one switch, with one latency.

    Every :meth:`send` stops the current plan where it is (each flow's
    remaining latency and bytes at ``now``), adds the new messages, and plans
    again: rates from the switcher, the earliest finishing flows delivered at
    their ETA, the others advanced to it, and so on.

    Example (the reference's second example: 26 bytes each way at 2 B/s,
    0.25 s of latency, 0.125 s of compute):

        >>> from tidesim.packetnet import (EventLoop, GreedyDropSwitcher, Message, Node,
        ...                                SwitcherNetwork)
        >>> loop = EventLoop()
        >>> node1, node2 = Node(loop.stream()), Node(loop.stream())
        >>> network = SwitcherNetwork(GreedyDropSwitcher(2, 2.0), [node1, node2], 0.25)
        >>> async def upper(h):
        ...     message = (await node1.recv(h)).message.message
        ...     await h.sleep(0.125)
        ...     network.send(h, Message(node1, node2, message.upper(), len(message)))
        >>> async def ask(h):
        ...     msg = "this should be capitalized"
        ...     network.send(h, Message(node2, node1, msg, len(msg)))
        ...     print((await node2.recv(h)).message.message, h.time)
        >>> loop.go(upper); loop.go(ask); loop.run()
        THIS SHOULD BE CAPITALIZED 26.625
    """

    def __init__(self, switcher: GreedyDropSwitcher, nodes: list[Node], latency_s: float) -> None:
        if len(nodes) != switcher.n:
            raise ConfigError("network.nodes", len(nodes), f"must be the switcher's {switcher.n}")
        self.switcher, self.nodes = switcher, list(nodes)
        self.latency_s = number("network.latency_s", latency_s, lo=0)
        self._index = {id(nd): k for k, nd in enumerate(self.nodes)}
        # segments (start, end, [(flight, its latency, bytes, rate at start)])
        self._plan: list[tuple[float, float, list]] = []

    def send(self, h: Handle, *msgs: Message) -> None:
        now = h.time
        flights = self._stop_plan(now)
        for m in msgs:
            for end in (m.source, m.dest):
                if id(end) not in self._index:
                    raise ConfigError("message.node", end, "must be a node of the network")
            flights.append(_Flight(m, self.latency_s, float(m.size)))
        self._create_plan(h, now, flights)

    def _stop_plan(self, now: float) -> list[_Flight]:
        for start, end, state in self._plan:
            if start <= now < end:
                out = []
                for f, lat, size, rate in state:
                    f.rem_lat, f.rem_size, f.rate = lat, size, rate
                    f.add_time(now - start)
                    if f.timer is not None:
                        f.timer.cancel()
                        f.timer = None
                    out.append(f)
                return out
        return []

    def _create_plan(self, h: Handle, now: float, flights: list[_Flight]) -> None:
        self._plan = []
        seg_start = now
        idx = self._index
        while flights:
            src = np.array([idx[id(f.msg.source)] for f in flights])
            dst = np.array([idx[id(f.msg.dest)] for f in flights])
            rates = self.switcher.rates(src, dst)
            for f, r in zip(flights, rates.tolist(), strict=True):
                f.rate = r
            eta = [max(0.0, f.rem_lat + f.rem_size / f.rate) for f in flights]
            first = min(eta)
            delay = (seg_start - now) + first
            seg_end = now + delay
            self._plan.append((seg_start, seg_end,
                               [(f, f.rem_lat, f.rem_size, f.rate) for f in flights]))
            rest = []
            for f, e in zip(flights, eta, strict=True):
                if e == first:
                    f.timer = h.schedule(f.msg.dest.incoming, f.msg, delay)
                else:
                    f.add_time(seg_end - seg_start)
                    rest.append(f)
            flights = rest
            seg_start = seg_end
