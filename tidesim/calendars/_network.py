"""The network an application is scheduled on: nodes, directed links, logical latencies.

In logical synchrony every link ``i -> j`` has a constant logical latency
``λ_ij``: a frame sent at sender cycle ``s`` is read at receiver cycle
``s + λ_ij`` (see ``docs/model.md``). Applications start on every node at a
chosen *epoch* cycle ``C_n``; in application time (cycles since the epoch) a
frame sent at cycle ``t`` of node ``i`` arrives at cycle ``t + λ'_ij`` of node
``j`` with ``λ'_ij = λ_ij + C_i - C_j``. :class:`LogicalNetwork` holds those
``λ'`` and is all the scheduler and the executor need.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._checks import integer
from ..errors import ConfigError

__all__ = ["LogicalNetwork"]


@dataclass(frozen=True, eq=False)
class LogicalNetwork:
    """Nodes, directed links and their logical latencies in application cycles.

    Args:
        n_nodes: number of nodes.
        links: int ``[L, 2]`` directed links ``(src, dst)``.
        latency_cycles: int ``[L]``, ``λ'`` of each link: a frame sent at
            application cycle ``t`` of ``src`` is read at cycle
            ``t + latency_cycles`` of ``dst``. Any integer; around every
            directed cycle of the network the sum must be positive (it is the
            number of frames in flight and in buffers, never negative).

    Example:
        >>> net = LogicalNetwork.ring(4, latency_cycles=3)
        >>> net.n_links, net.out_links[0].tolist(), int(net.latency_cycles[0])
        (8, [0, 1], 3)
    """

    n_nodes: int
    links: np.ndarray
    latency_cycles: np.ndarray
    out_links: tuple = field(init=False, repr=False)
    in_links: tuple = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = integer("network.n_nodes", self.n_nodes, lo=1)
        links = np.asarray(self.links)
        if links.ndim != 2 or links.shape[1] != 2 or (links.size and links.dtype.kind not in "iu"):
            raise ConfigError("network.links", self.links, "must be an int [L, 2] array")
        links = np.ascontiguousarray(links, dtype=np.int64).reshape(-1, 2)
        if links.size and (links.min() < 0 or links.max() >= n):
            raise ConfigError("network.links", links.tolist(), f"must name nodes 0..{n - 1}")
        if (links[:, 0] == links[:, 1]).any():
            raise ConfigError("network.links", links.tolist(), "must not loop a node to itself")
        lat = np.asarray(self.latency_cycles)
        if lat.shape != (len(links),) or (lat.size and lat.dtype.kind not in "iu"):
            raise ConfigError("network.latency_cycles", self.latency_cycles,
                              f"must be {len(links)} integers, one per link")
        object.__setattr__(self, "n_nodes", n)
        object.__setattr__(self, "links", links)
        object.__setattr__(self, "latency_cycles", np.ascontiguousarray(lat, dtype=np.int64))
        outs = [np.flatnonzero(links[:, 0] == i) for i in range(n)]
        ins = [np.flatnonzero(links[:, 1] == i) for i in range(n)]
        object.__setattr__(self, "out_links", tuple(outs))
        object.__setattr__(self, "in_links", tuple(ins))
        self._check_cycles()

    @property
    def n_links(self) -> int:
        """Number of directed links."""
        return len(self.links)

    def _check_cycles(self) -> None:
        # a negative cycle would mean a frame arrives, around a loop, before it left
        if self.n_links == 0:
            return
        self.potentials()

    def potentials(self) -> np.ndarray:
        """Per-node start offsets ``b`` with ``λ'_ij + b_i - b_j >= 0`` on every link.

        Node ``n``'s application cycle at global step ``g`` of the executor is
        ``g + b_n``; every frame then travels forwards in global steps.

        Returns:
            int64 ``[n_nodes]``, ``<= 0``.

        Raises:
            ConfigError: a directed cycle's latencies sum to less than zero.
        """
        b = np.zeros(self.n_nodes, dtype=np.int64)
        src, dst, lat = self.links[:, 0], self.links[:, 1], self.latency_cycles
        for _ in range(self.n_nodes + 1):
            cand = b[src] + lat
            new = b.copy()
            np.minimum.at(new, dst, cand)
            if np.array_equal(new, b):
                return b
            b = new
        raise ConfigError("network.latency_cycles", self.latency_cycles.tolist(),
                          "must sum to >= 0 around every directed cycle")

    @classmethod
    def from_topology(cls, topology, latency_cycles) -> LogicalNetwork:
        """The network of a :class:`~tidesim.models.Topology` with given latencies."""
        return cls(topology.n_nodes, topology.links, np.asarray(latency_cycles))

    @classmethod
    def of_trace(cls, trace) -> LogicalNetwork:
        """The network a synchronised run leaves, in application cycles: each
        node's application cycle 0 is its final cycle in ``trace`` (its
        epoch), so link ``l`` has latency ``λ_l + epoch[src] - epoch[dst]``."""
        links = trace.system.topology.links
        epoch = trace.final_cycles
        lam = np.asarray(trace.final_logical_latency.filled(0), dtype=np.int64)
        return cls(trace.system.n_nodes, links, lam + epoch[links[:, 0]] - epoch[links[:, 1]])

    @classmethod
    def ring(cls, n: int, *, latency_cycles: int = 1) -> LogicalNetwork:
        """``n`` nodes in a bidirectional ring, every link with the same latency."""
        links = [(i, (i + d) % n) for i in range(n) for d in (1, -1)] if n > 2 else (
            [(0, 1), (1, 0)] if n == 2 else [])
        links = np.array(links, dtype=np.int64).reshape(-1, 2)
        return cls(n, links, np.full(len(links), latency_cycles, dtype=np.int64))
