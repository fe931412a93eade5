"""Atoms over point-to-point links in virtual time: a bittide system's links
used as plain channels (no switch, no sharing between links)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._checks import number
from ..errors import ConfigError
from ._atoms import Atom, AtomRun, Packet, check_atoms, connected_routes, run_on_loop
from ._loop import EventLoop

__all__ = ["LinkNetwork", "run_on_links"]


class LinkNetwork:
    """Directed links, each a FIFO of its own: a packet waits for the
    link, takes ``size_bytes / rate`` to go onto it, then the link's latency.
    A packet for a node further away hops along shortest paths
    (:func:`~tidesim.packetnet.routes`), stored and forwarded at each hop.
    Every node must reach every other.

    Args:
        loop: the event loop; n_nodes: nodes.
        links: int[L, 2] ``(src, dst)``; latency_s: float[L] (s).
        rate_bytes_per_s: every link's rate (bytes/s).
    """

    def __init__(self, loop: EventLoop, n_nodes: int, links, latency_s,
                 rate_bytes_per_s: float) -> None:
        self.loop = loop
        self.links = np.asarray(links, np.int64).reshape(-1, 2)
        self.latency_s = np.asarray(latency_s, float)
        if self.latency_s.shape != (len(self.links),):
            raise ConfigError("links.latency_s", self.latency_s.shape,
                              f"must be ({len(self.links)},)")
        self.rate = number("links.rate_bytes_per_s", rate_bytes_per_s, lo=0, lo_open=True)
        self.hop = connected_routes(n_nodes, self.links, "the links")
        self._link = {(int(a), int(b)): k for k, (a, b) in enumerate(self.links.tolist())}
        self._free_at = np.zeros(len(self.links))
        self.streams = [loop.stream() for _ in range(n_nodes)]

    def send(self, h, packet: Packet) -> None:
        self._at(packet.source, packet)

    def _at(self, node: int, packet: Packet) -> None:
        """``packet`` is at ``node`` now: deliver it, or put it on the next link."""
        loop = self.loop
        if node == packet.dest:
            loop.deliver(self.streams[node], packet)
            return
        nxt = int(self.hop[node, packet.dest])
        k = self._link[node, nxt]
        start = max(loop.time, self._free_at[k])
        self._free_at[k] = start + packet.size_bytes / self.rate
        arrive = self._free_at[k] + self.latency_s[k]
        loop.call_at(arrive, lambda: self._at(nxt, packet))


def run_on_links(atoms: Sequence[Atom], links, latency_s, rate_bytes_per_s: float, *,
                 tie_seed: int | None = None) -> AtomRun:
    """Run ``atoms`` (one per node) over ``links`` (see :class:`LinkNetwork`) in virtual time.

    Raises:
        ConfigError: a node that cannot reach every other over the links.
        Deadlock: every node waits and no packet is on its way.
    """
    atoms = check_atoms(atoms)
    loop = EventLoop(tie_seed=tie_seed)
    net = LinkNetwork(loop, len(atoms), links, latency_s, rate_bytes_per_s)
    return run_on_loop(loop, atoms, net.streams, net.send)
