"""The switched network: a fluid-flow model re-planned on every send."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import integer, number
from ..errors import ConfigError
from ._kernels import add_time, greedy_drop_rates, plan_segment
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
        out = np.empty(len(src))
        greedy_drop_rates(np.asarray(src, np.int64), np.asarray(dst, np.int64),
                          self.send_rate, self.recv_rate, out)
        return out


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
        self._loop = nodes[0].incoming.loop
        # the flights of the current plan segment, as they were at its start
        self._msgs: list[Message] = []
        self._src = np.zeros(0, np.int64)
        self._dst = np.zeros(0, np.int64)
        self._lat = np.zeros(0)
        self._size = np.zeros(0)
        self._rate = np.zeros(0)
        self._done = np.zeros(0, bool)
        self._t0 = self._seg_start = self._seg_end = 0.0
        self._timer: Timer | None = None

    def send(self, h: Handle, *msgs: Message) -> None:
        """Put ``msgs`` on the network now, and plan again."""
        now = h.time
        idx = self._index
        for m in msgs:
            for end in (m.source, m.dest):
                if id(end) not in idx:
                    raise ConfigError("message.node", end, "must be a node of the network")
        # the plan stops where it is; a segment that ends now delivers first
        while self._msgs and self._seg_end <= now:
            self._next_segment()
        if self._msgs:
            add_time(self._lat, self._size, self._rate, now - self._seg_start)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if msgs:
            k = len(msgs)
            self._msgs.extend(msgs)
            sizes = [float(m.size) for m in msgs]
            self._src = np.concatenate((self._src, [idx[id(m.source)] for m in msgs]))
            self._dst = np.concatenate((self._dst, [idx[id(m.dest)] for m in msgs]))
            self._lat = np.concatenate((self._lat, np.full(k, self.latency_s)))
            self._size = np.concatenate((self._size, sizes))
            self._rate = np.zeros(len(self._msgs))
            self._done = np.zeros(len(self._msgs), bool)
        self._t0 = self._seg_start = now
        self._plan()

    def _plan(self) -> None:
        """The rates and end of the segment that starts at ``_seg_start``; a timer at its end."""
        if not self._msgs:
            return
        first = plan_segment(self._src, self._dst, self._lat, self._size,
                             self.switcher.send_rate, self.switcher.recv_rate,
                             self._rate, self._done)
        # the reference's float arithmetic: a delay from the plan's origin
        self._seg_end = self._t0 + ((self._seg_start - self._t0) + first)
        self._timer = self._loop.call_at(self._seg_end, self._on_segment_end)

    def _on_segment_end(self) -> None:
        self._timer = None
        self._next_segment()

    def _next_segment(self) -> None:
        """Deliver the flights that end the segment; advance the others to its end."""
        done = self._done
        loop, end = self._loop, self._seg_end
        ending = np.flatnonzero(done).tolist()
        for j in loop.tie_order(len(ending)):
            m = self._msgs[ending[j]]
            loop.deliver(m.dest.incoming, m)
        keep = ~done
        self._msgs = [m for m, d in zip(self._msgs, done.tolist(), strict=True) if not d]
        self._src, self._dst = self._src[keep], self._dst[keep]
        self._lat, self._size, self._rate = self._lat[keep], self._size[keep], self._rate[keep]
        self._done = done[keep]
        add_time(self._lat, self._size, self._rate, end - self._seg_start)
        self._seg_start = end
        self._plan()
