"""Network topologies of a bittide system.

A :class:`Topology` is an undirected, connected graph on the nodes ``0..n-1``.
Every undirected edge ``{u, v}`` is a physical cable and gives two directed
links, ``(u, v)`` and ``(v, u)``; each link carries frames from its source to
its destination and has its own physical latency in seconds.

Links are numbered in lexicographic order of ``(dst, src)``, so the links that
arrive at node ``j`` form the contiguous block ``offsets[j]:offsets[j + 1]`` of
:meth:`Topology.incoming`.

Latency can be given (``latency_s``) as

* one number of seconds ``>= 0``, used for every link;
* a sequence with one number per undirected edge, in the order of
  :attr:`Topology.edges` (sorted pairs ``u < v``, ascending), used for both
  directions of that edge;
* a distribution table drawn once per undirected edge with
  ``numpy.random.default_rng(seed)``:
  ``{"distribution": "uniform", "low_s": a, "high_s": b}`` or
  ``{"distribution": "normal", "mean_s": m, "std_s": s}`` (clipped at 0).

``None`` means the default, 10 ns on every link.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import networkx as nx
import numpy as np

from .._checks import instance, integer, is_integer, is_number, number, text
from ..errors import ConfigError

__all__ = ["Topology", "TOPOLOGY_KINDS", "hop_distances", "make_topology"]

#: Latency of every link when none is given: 10 ns.
DEFAULT_LATENCY_S = 1e-8

#: Largest topology accepted, in nodes and in undirected edges.
MAX_NODES = 100_000
MAX_EDGES = 1_000_000

TOPOLOGY_KINDS = (
    "complete",
    "cycle",
    "line",
    "star",
    "grid",
    "mesh",
    "torus",
    "hypercube",
    "tree",
    "diamond",
    "dumbbell",
    "hourglass",
    "beads",
    "edges",
)

# Parameters of each distribution accepted by ``latency_s``.
_DISTRIBUTIONS = {"normal": ("mean_s", "std_s"), "uniform": ("low_s", "high_s")}

LatencySpec = float | Sequence[float] | np.ndarray | Mapping[str, object] | None


# --------------------------------------------------------------------------- helpers


def _check_size(field: str, value: object, n_nodes: int, n_edges: int) -> None:
    """Refuse a topology larger than ``MAX_NODES`` nodes or ``MAX_EDGES`` edges."""
    if n_nodes > MAX_NODES or n_edges > MAX_EDGES:
        raise ConfigError(
            field,
            value,
            f"must give at most {MAX_NODES} nodes and {MAX_EDGES} edges "
            f"(gives {n_nodes} nodes and {n_edges} edges)",
        )


def _latency(field: str, x: object) -> float:
    """One latency (seconds): a finite number ``>= 0``."""
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x.item()
    return number(field, x, lo=0)


def _edge_latencies(latency_s: LatencySpec, n_edges: int, seed: int) -> np.ndarray:
    """Resolve a ``latency_s`` spec into float64 seconds, one per undirected edge."""
    field = "topology.latency_s"
    if latency_s is None:
        latency_s = DEFAULT_LATENCY_S
    if isinstance(latency_s, Mapping):
        return _draw_latencies(latency_s, n_edges, seed)
    if isinstance(latency_s, np.ndarray) and latency_s.ndim == 0:
        latency_s = latency_s.item()
    if isinstance(latency_s, (bool, np.bool_)) or is_number(latency_s):
        return np.full(n_edges, _latency(field, latency_s), dtype=np.float64)
    if isinstance(latency_s, np.ndarray) or (
        isinstance(latency_s, Sequence) and not isinstance(latency_s, (str, bytes))
    ):
        if isinstance(latency_s, np.ndarray) and latency_s.ndim != 1:
            raise ConfigError(field, latency_s, f"must have one entry per edge ({n_edges})")
        values = latency_s.tolist() if isinstance(latency_s, np.ndarray) else list(latency_s)
        if len(values) != n_edges:
            raise ConfigError(field, latency_s, f"must have one entry per edge ({n_edges})")
        out = np.empty(n_edges, dtype=np.float64)
        for i, x in enumerate(values):
            out[i] = _latency(f"{field}[{i}]", x)
        return out
    raise ConfigError(
        field,
        latency_s,
        "must be a number, a sequence with one entry per edge, or a distribution table",
    )


def _draw_latencies(spec: Mapping[str, object], n_edges: int, seed: int) -> np.ndarray:
    """Draw one latency per undirected edge from a distribution table."""
    known = sorted(_DISTRIBUTIONS)
    dist = spec.get("distribution")
    if not isinstance(dist, str) or dist not in _DISTRIBUTIONS:
        raise ConfigError("topology.latency_s.distribution", dist, f"must be one of {known}")
    params = _DISTRIBUTIONS[dist]
    for key in spec:
        if key != "distribution" and key not in params:
            raise ConfigError(
                f"topology.latency_s.{key}", spec[key], f"is not used by distribution '{dist}'"
            )
    values = {}
    for key in params:
        field = f"topology.latency_s.{key}"
        if key not in spec:
            raise ConfigError(field, None, f"is required for distribution '{dist}'")
        values[key] = _latency(field, spec[key])
    rng = np.random.default_rng(seed)
    if dist == "uniform":
        low, high = values["low_s"], values["high_s"]
        if high < low:
            raise ConfigError("topology.latency_s.high_s", high, f"must be >= low_s ({low!r})")
        return rng.uniform(low, high, size=n_edges).astype(np.float64)
    mean, std = values["mean_s"], values["std_s"]
    return np.maximum(rng.normal(mean, std, size=n_edges), 0.0).astype(np.float64)


def _cliques_in_a_line(k: int, m: int) -> nx.Graph:
    """``k`` complete graphs on ``m`` nodes; clique ``i`` holds nodes ``i*m..i*m+m-1``.

    The last node of each clique is joined to the first node of the next one.
    """
    g = nx.Graph()
    g.add_nodes_from(range(k * m))
    for i in range(k):
        base = i * m
        g.add_edges_from((base + a, base + b) for a in range(m) for b in range(a + 1, m))
        if i + 1 < k:
            g.add_edge(base + m - 1, base + m)
    return g


# --------------------------------------------------------------------------- Topology


class Topology:
    """Undirected graph of nodes 0..n-1; every undirected edge gives two directed links.

    Prefer the class-method constructors (:meth:`complete`, :meth:`torus`, ...)
    or :func:`make_topology`; the constructor itself accepts any networkx graph,
    as :meth:`from_graph` does.

    Attributes:
        name: short label, e.g. ``"complete-8"`` or ``"torus-2x3"``.
        graph: the undirected graph, nodes exactly ``0..n-1``. When the input
            graph had other labels they were sorted (where sortable) and
            numbered in that order; the original label is kept in the node
            attribute ``"label"``.
        n_nodes: number of nodes.
        n_edges: number of undirected edges (cables).
        edges: int64 ``[n_edges, 2]``, pairs ``(u, v)`` with ``u < v`` in
            ascending order; a per-edge ``latency_s`` sequence follows this order.
        links: int64 ``[n_links, 2]`` directed links ``(src, dst)``,
            ``n_links = 2 * n_edges``, sorted lexicographically by ``(dst, src)``.
        latency_s: float64 ``[n_links]``, physical latency of each link in
            seconds (both directions of an edge have the same latency).
    """

    def __init__(
        self,
        graph: nx.Graph,
        name: str = "custom",
        *,
        latency_s: LatencySpec = DEFAULT_LATENCY_S,
        seed: int = 0,
    ) -> None:
        """Build a topology from a networkx graph.

        Args:
            graph: a ``networkx.Graph`` (a ``DiGraph`` is made undirected; parallel
                edges of a multigraph are merged).
            name: label of the topology.
            latency_s: link latency in seconds: a number, one number per
                undirected edge, or a distribution table (see the module docs).
            seed: seed of the random draw when ``latency_s`` is a distribution.

        Raises:
            ConfigError: the graph has fewer than 2 nodes, a self-loop, is not
                connected or is too large, or ``latency_s``/``seed`` is invalid.
        """
        text("topology.name", name)
        instance("topology.graph", graph, nx.Graph, "a networkx Graph or DiGraph")
        seed = integer("topology.seed", seed, lo=0)
        g = nx.Graph(graph.to_undirected(as_view=True) if graph.is_directed() else graph)
        if g.number_of_nodes() < 2:
            raise ConfigError("topology", name, "must have at least 2 nodes")
        _check_size("topology", name, g.number_of_nodes(), g.number_of_edges())
        loop = next(iter(nx.selfloop_edges(g)), None)
        if loop is not None:
            raise ConfigError("topology", name, f"must have no self-loops (node {loop[0]!r})")
        if not nx.is_connected(g):
            raise ConfigError("topology", name, "must be connected")
        try:
            g = nx.convert_node_labels_to_integers(g, ordering="sorted", label_attribute="label")
        except TypeError:  # labels that cannot be compared with each other
            g = nx.convert_node_labels_to_integers(g, ordering="default", label_attribute="label")

        n = g.number_of_nodes()
        edges = np.array(list(g.edges()), dtype=np.int64).reshape(-1, 2)
        edges.sort(axis=1)
        edges = edges[np.lexsort((edges[:, 1], edges[:, 0]))]
        m = len(edges)
        edge_latency = _edge_latencies(latency_s, m, seed)

        src = np.concatenate([edges[:, 0], edges[:, 1]])
        dst = np.concatenate([edges[:, 1], edges[:, 0]])
        order = np.lexsort((src, dst))
        links = np.ascontiguousarray(np.stack([src[order], dst[order]], axis=1))

        self.name = name
        self.graph = g
        self.n_nodes = n
        self.n_edges = m
        self.edges = edges
        self.links = links
        self.latency_s = np.concatenate([edge_latency, edge_latency])[order]
        self._link_edge = np.concatenate([np.arange(m), np.arange(m)])[order].astype(np.int64)
        self._keys = links[:, 1] * n + links[:, 0]  # ascending, since links are sorted
        self._offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(links[:, 1], minlength=n), out=self._offsets[1:])

    # ----------------------------------------------------------------- helpers

    @property
    def n_links(self) -> int:
        """Number of directed links, ``2 * n_edges``."""
        return len(self.links)

    def incoming(self) -> tuple[np.ndarray, np.ndarray]:
        """Incoming links of every node, in CSR form.

        Returns:
            ``(offsets, link_ids)``: int64 ``[n_nodes + 1]`` and int64 ``[n_links]``.
            The links arriving at node ``j`` are ``link_ids[offsets[j]:offsets[j + 1]]``,
            ordered by source; since links are sorted by ``(dst, src)``,
            ``link_ids`` is ``arange(n_links)``.
        """
        return self._offsets.copy(), np.arange(self.n_links, dtype=np.int64)

    def link_index(self, src: int, dst: int) -> int:
        """Index of the directed link ``src -> dst``.

        Raises:
            ConfigError: ``(src, dst)`` is not a link of the topology.
        """
        n = self.n_nodes
        if is_integer(src) and is_integer(dst) and 0 <= src < n and 0 <= dst < n:
            key = int(dst) * n + int(src)
            pos = int(np.searchsorted(self._keys, key))
            if pos < len(self._keys) and self._keys[pos] == key:
                return pos
        raise ConfigError("link", (src, dst), "must be a link of the topology")

    def reverse(self) -> np.ndarray:
        """int64 ``[n_links]``: the index of the opposite link ``dst -> src`` of each link."""
        rkeys = self.links[:, 0] * self.n_nodes + self.links[:, 1]
        return np.searchsorted(self._keys, rkeys).astype(np.int64)

    def edge_of_link(self) -> np.ndarray:
        """int64 ``[n_links]``: the row of :attr:`edges` each link belongs to."""
        return self._link_edge.copy()

    def degree(self) -> np.ndarray:
        """int64 ``[n_nodes]``: number of incoming links of each node (its degree)."""
        return np.diff(self._offsets)

    def to_dict(self) -> dict:
        """JSON-friendly summary.

        Returns:
            ``{"name": str, "nodes": int, "edges": int, "links": int}`` (counts).
        """
        return {
            "name": self.name,
            "nodes": int(self.n_nodes),
            "edges": int(self.n_edges),
            "links": int(self.n_links),
        }

    def __repr__(self) -> str:
        return f"Topology({self.name!r}, nodes={self.n_nodes}, edges={self.n_edges})"

    # ----------------------------------------------------------------- constructors

    @classmethod
    def from_graph(
        cls,
        g: nx.Graph,
        name: str = "custom",
        *,
        latency_s: LatencySpec = DEFAULT_LATENCY_S,
        seed: int = 0,
    ) -> Topology:
        """Topology from any networkx graph (a ``DiGraph`` is made undirected).

        Args:
            g: the graph; node labels are renumbered ``0..n-1`` in sorted order.
            name: label of the topology.
            latency_s: link latency in seconds (see the module docs).
            seed: seed of the draw when ``latency_s`` is a distribution.
        """
        return cls(g, name, latency_s=latency_s, seed=seed)

    @classmethod
    def from_edges(
        cls,
        edges: Sequence[Sequence[int]] | np.ndarray,
        n: int | None = None,
        name: str = "edges",
        *,
        latency_s: LatencySpec = DEFAULT_LATENCY_S,
        seed: int = 0,
    ) -> Topology:
        """Topology from a list of undirected edges ``[u, v]``.

        Node ids are kept as given. Repeated edges (also ``[v, u]`` after
        ``[u, v]``) are merged into one.

        Args:
            edges: pairs of non-negative integer node ids.
            n: number of nodes (default: largest id + 1); every id must be ``< n``.
            name: label of the topology.
            latency_s: link latency in seconds (see the module docs).
            seed: seed of the draw when ``latency_s`` is a distribution.
        """
        field = "topology.edges"
        if isinstance(edges, np.ndarray):
            edges = edges.tolist()
        if not isinstance(edges, Sequence) or isinstance(edges, (str, bytes)):
            raise ConfigError(field, edges, "must be a list of [u, v] pairs")
        if len(edges) > 2 * MAX_EDGES:
            raise ConfigError(field, f"<{len(edges)} entries>", f"must have <= {2 * MAX_EDGES}")
        pairs = []
        for i, e in enumerate(edges):
            ok = (
                isinstance(e, (Sequence, np.ndarray))
                and not isinstance(e, (str, bytes))
                and len(e) == 2
                and all(is_integer(x) and x >= 0 for x in e)
            )
            if not ok:
                raise ConfigError(field, e, f"must be a pair of non-negative integers (entry {i})")
            u, v = int(e[0]), int(e[1])
            if u == v:
                raise ConfigError(field, e, f"must not be a self-loop (entry {i})")
            pairs.append((u, v))
        top = max((max(p) for p in pairs), default=-1) + 1
        if n is None:
            n = top
        else:
            n = integer("topology.n", n, lo=2)
            if top > n:
                bad = next(p for p in pairs if max(p) >= n)
                raise ConfigError(field, list(bad), f"must name nodes < n ({n})")
        if n > MAX_NODES:
            raise ConfigError("topology.n", n, f"must be <= {MAX_NODES}")
        g = nx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from(pairs)
        return cls(g, name, latency_s=latency_s, seed=seed)

    @classmethod
    def complete(
        cls, n: int, *, latency_s: LatencySpec = DEFAULT_LATENCY_S, seed: int = 0
    ) -> Topology:
        """Complete graph: every pair of the ``n >= 2`` nodes is joined (``n(n-1)/2`` edges)."""
        n = integer("topology.n", n, lo=2)
        _check_size("topology.n", n, n, n * (n - 1) // 2)
        return cls(nx.complete_graph(n), f"complete-{n}", latency_s=latency_s, seed=seed)

    @classmethod
    def cycle(
        cls, n: int, *, latency_s: LatencySpec = DEFAULT_LATENCY_S, seed: int = 0
    ) -> Topology:
        """Ring of ``n >= 3`` nodes: ``i`` is joined to ``i + 1 mod n`` (``n`` edges)."""
        n = integer("topology.n", n, lo=3)
        _check_size("topology.n", n, n, n)
        return cls(nx.cycle_graph(n), f"cycle-{n}", latency_s=latency_s, seed=seed)

    @classmethod
    def line(cls, n: int, *, latency_s: LatencySpec = DEFAULT_LATENCY_S, seed: int = 0) -> Topology:
        """Path of ``n >= 2`` nodes: ``i`` is joined to ``i + 1`` (``n - 1`` edges)."""
        n = integer("topology.n", n, lo=2)
        _check_size("topology.n", n, n, n - 1)
        return cls(nx.path_graph(n), f"line-{n}", latency_s=latency_s, seed=seed)

    @classmethod
    def star(cls, k: int, *, latency_s: LatencySpec = DEFAULT_LATENCY_S, seed: int = 0) -> Topology:
        """Star: hub node 0 joined to ``k >= 1`` leaves ``1..k`` (``k + 1`` nodes, ``k`` edges)."""
        k = integer("topology.k", k, lo=1)
        _check_size("topology.k", k, k + 1, k)
        return cls(nx.star_graph(k), f"star-{k}", latency_s=latency_s, seed=seed)

    @classmethod
    def _grid(cls, kind: str, rows: int, cols: int, latency_s: LatencySpec, seed: int) -> Topology:
        rows = integer("topology.rows", rows, lo=1)
        cols = integer("topology.cols", cols, lo=1)
        if rows * cols < 2:
            raise ConfigError("topology.cols", cols, "must make rows * cols >= 2")
        _check_size(
            "topology.rows", (rows, cols), rows * cols, rows * (cols - 1) + cols * (rows - 1)
        )
        g = nx.grid_2d_graph(rows, cols)
        return cls(g, f"{kind}-{rows}x{cols}", latency_s=latency_s, seed=seed)

    @classmethod
    def grid(
        cls, rows: int, cols: int, *, latency_s: LatencySpec = DEFAULT_LATENCY_S, seed: int = 0
    ) -> Topology:
        """2-D grid of ``rows x cols`` nodes, each joined to its 4-neighbours.

        Node ``r * cols + c`` sits at row ``r``, column ``c``; there are
        ``rows * (cols - 1) + cols * (rows - 1)`` edges. Needs ``rows, cols >= 1``
        and ``rows * cols >= 2``.
        """
        return cls._grid("grid", rows, cols, latency_s, seed)

    @classmethod
    def mesh(
        cls, rows: int, cols: int, *, latency_s: LatencySpec = DEFAULT_LATENCY_S, seed: int = 0
    ) -> Topology:
        """Same graph as :meth:`grid`, named ``mesh-RxC``; mesh 3x2 has 7 edges."""
        return cls._grid("mesh", rows, cols, latency_s, seed)

    @classmethod
    def torus(
        cls,
        dims: Sequence[int],
        *,
        latency_s: LatencySpec = DEFAULT_LATENCY_S,
        seed: int = 0,
    ) -> Topology:
        """2-D or 3-D torus: a grid whose every dimension wraps around.

        The graph of ``networkx.grid_graph(dims, periodic=True)``. A dimension of
        size 2 wraps onto the edge that already joins its two nodes, so it adds
        one edge, not two (torus 2x3: 6 nodes, 9 edges; 3x3x3: 27 nodes, 81 edges).

        Args:
            dims: 2 or 3 integers, each ``>= 2``.
        """
        field = "topology.dims"
        if not isinstance(dims, (Sequence, np.ndarray)) or isinstance(dims, (str, bytes)):
            raise ConfigError(field, dims, "must be a list of 2 or 3 integers")
        sizes = list(dims.tolist() if isinstance(dims, np.ndarray) else dims)
        if len(sizes) not in (2, 3):
            raise ConfigError(field, dims, "must be a list of 2 or 3 integers")
        if not all(is_integer(s) and s >= 2 for s in sizes):
            raise ConfigError(field, dims, "must have every entry an integer >= 2")
        sizes = [int(s) for s in sizes]
        n = math.prod(sizes)
        _check_size(field, dims, n, sum(n if s > 2 else n // 2 for s in sizes))
        g = nx.grid_graph(dim=sizes, periodic=True)
        name = "torus-" + "x".join(str(s) for s in sizes)
        return cls(g, name, latency_s=latency_s, seed=seed)

    @classmethod
    def hypercube(
        cls, d: int, *, latency_s: LatencySpec = DEFAULT_LATENCY_S, seed: int = 0
    ) -> Topology:
        """``d``-dimensional hypercube (``d >= 1``): ``2^d`` nodes, ``d * 2^(d-1)`` edges.

        Node ``i`` is joined to every node whose index differs from ``i`` in one bit.
        """
        d = integer("topology.d", d, lo=1)
        if d > 30:
            raise ConfigError("topology.d", d, f"must give at most {MAX_NODES} nodes")
        _check_size("topology.d", d, 2**d, d * 2 ** (d - 1))
        return cls(nx.hypercube_graph(d), f"hypercube-{d}", latency_s=latency_s, seed=seed)

    @classmethod
    def tree(
        cls,
        depth: int,
        branching: int = 2,
        *,
        latency_s: LatencySpec = DEFAULT_LATENCY_S,
        seed: int = 0,
    ) -> Topology:
        """Balanced tree: root 0, every inner node has ``branching`` children.

        Args:
            depth: number of levels below the root, ``>= 1``.
            branching: children per inner node, ``>= 2``.
        """
        depth = integer("topology.depth", depth, lo=1)
        branching = integer("topology.branching", branching, lo=2)
        n, level = 1, 1
        for _ in range(depth):
            level *= branching
            n += level
            if n > MAX_NODES:
                break
        _check_size("topology.depth", depth, n, n - 1)
        g = nx.balanced_tree(branching, depth)
        return cls(g, f"tree-{depth}-{branching}", latency_s=latency_s, seed=seed)

    @classmethod
    def diamond(cls, *, latency_s: LatencySpec = DEFAULT_LATENCY_S, seed: int = 0) -> Topology:
        """The bittide "diamond": the 4-cycle 0-1-3-2-0 with the chord 1-2.

        Edges, in :attr:`edges` order: ``(0,1), (0,2), (1,2), (1,3), (2,3)``.
        Nodes 1 and 2 have degree 3, nodes 0 and 3 degree 2.
        """
        g = nx.Graph([(0, 1), (0, 2), (1, 3), (2, 3), (1, 2)])
        return cls(g, "diamond", latency_s=latency_s, seed=seed)

    @classmethod
    def dumbbell(
        cls, k: int, *, latency_s: LatencySpec = DEFAULT_LATENCY_S, seed: int = 0
    ) -> Topology:
        """Two complete graphs on ``k >= 2`` nodes joined by one edge.

        ``networkx.barbell_graph(k, 0)``: cliques ``0..k-1`` and ``k..2k-1``,
        bridge ``(k-1, k)``; ``2k`` nodes, ``k(k-1) + 1`` edges.
        """
        k = integer("topology.k", k, lo=2)
        _check_size("topology.k", k, 2 * k, k * (k - 1) + 1)
        return cls(nx.barbell_graph(k, 0), f"dumbbell-{k}", latency_s=latency_s, seed=seed)

    @classmethod
    def hourglass(
        cls, k: int, *, latency_s: LatencySpec = DEFAULT_LATENCY_S, seed: int = 0
    ) -> Topology:
        """Two complete graphs on ``k >= 2`` nodes joined by the edge ``(k-1, k)``.

        The same graph as :meth:`dumbbell`, under the name the hardware rig uses:
        ``hourglass-3`` is two triangles ``{0,1,2}`` and ``{3,4,5}`` joined by ``2-3``
        (6 nodes, 7 edges).
        """
        k = integer("topology.k", k, lo=2)
        _check_size("topology.k", k, 2 * k, k * (k - 1) + 1)
        return cls(_cliques_in_a_line(2, k), f"hourglass-{k}", latency_s=latency_s, seed=seed)

    @classmethod
    def beads(
        cls,
        k: int,
        m: int = 3,
        *,
        latency_s: LatencySpec = DEFAULT_LATENCY_S,
        seed: int = 0,
    ) -> Topology:
        """A string of ``k`` beads: ``k`` complete graphs on ``m`` nodes in a line.

        Bead ``i`` holds nodes ``i*m .. i*m + m - 1``; consecutive beads are
        joined by one edge from the last node of a bead to the first node of
        the next, ``(i*m + m - 1, (i+1)*m)``. ``beads(2, k)`` equals
        ``hourglass(k)``; ``k * m`` nodes, ``k * m(m-1)/2 + k - 1`` edges.

        Args:
            k: number of beads, ``>= 1``.
            m: nodes per bead, ``>= 2``.
        """
        k = integer("topology.k", k, lo=1)
        m = integer("topology.m", m, lo=2)
        _check_size("topology.k", k, k * m, k * m * (m - 1) // 2 + k - 1)
        return cls(_cliques_in_a_line(k, m), f"beads-{k}x{m}", latency_s=latency_s, seed=seed)


# --------------------------------------------------------------------------- by name

# kind -> (required size parameters, optional size parameters)
_KIND_PARAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "complete": (("n",), ()),
    "cycle": (("n",), ()),
    "line": (("n",), ()),
    "star": (("k",), ()),
    "grid": (("rows", "cols"), ()),
    "mesh": (("rows", "cols"), ()),
    "torus": (("dims",), ()),
    "hypercube": (("d",), ()),
    "tree": (("depth",), ("branching",)),
    "diamond": ((), ()),
    "dumbbell": (("k",), ()),
    "hourglass": (("k",), ()),
    "beads": (("k",), ("m",)),
    "edges": (("edges",), ("n",)),
}


def make_topology(
    kind: str,
    *,
    n: int | None = None,
    k: int | None = None,
    d: int | None = None,
    rows: int | None = None,
    cols: int | None = None,
    dims: Sequence[int] | None = None,
    depth: int | None = None,
    branching: int | None = None,
    m: int | None = None,
    edges: Sequence[Sequence[int]] | None = None,
    latency_s: LatencySpec = DEFAULT_LATENCY_S,
    seed: int = 0,
) -> Topology:
    """Build a topology from its kind name and size parameters (as in a config file).

    ==========  ========================  ===========================
    kind        required                  optional
    ==========  ========================  ===========================
    complete    ``n``
    cycle       ``n``
    line        ``n``
    star        ``k``
    grid, mesh  ``rows``, ``cols``
    torus       ``dims``
    hypercube   ``d``
    tree        ``depth``                 ``branching`` (2)
    diamond
    dumbbell    ``k``
    hourglass   ``k``
    beads       ``k``                     ``m`` (3)
    edges       ``edges``                 ``n``
    ==========  ========================  ===========================

    Args:
        kind: one of :data:`TOPOLOGY_KINDS`.
        latency_s: link latency in seconds (see the module docs); ``None``
            means the default, 10 ns.
        seed: seed of the draw when ``latency_s`` is a distribution.

    Raises:
        ConfigError: unknown kind, a required size missing, a size the kind
            does not use, or any invalid value.
    """
    if not isinstance(kind, str) or kind not in _KIND_PARAMS:
        raise ConfigError("topology.kind", kind, f"must be one of {list(TOPOLOGY_KINDS)}")
    given = {
        "n": n,
        "k": k,
        "d": d,
        "rows": rows,
        "cols": cols,
        "dims": dims,
        "depth": depth,
        "branching": branching,
        "m": m,
        "edges": edges,
    }
    required, optional = _KIND_PARAMS[kind]
    for key, value in given.items():
        if value is not None and key not in required and key not in optional:
            raise ConfigError(f"topology.{key}", value, f"is not used by kind '{kind}'")
    for key in required:
        if given[key] is None:
            raise ConfigError(f"topology.{key}", None, f"is required for kind '{kind}'")
    opts = {"latency_s": latency_s, "seed": seed}
    if kind in ("complete", "cycle", "line"):
        return getattr(Topology, kind)(n, **opts)
    if kind in ("star", "dumbbell", "hourglass"):
        return getattr(Topology, kind)(k, **opts)
    if kind in ("grid", "mesh"):
        return getattr(Topology, kind)(rows, cols, **opts)
    if kind == "torus":
        return Topology.torus(dims, **opts)
    if kind == "hypercube":
        return Topology.hypercube(d, **opts)
    if kind == "tree":
        return Topology.tree(depth, 2 if branching is None else branching, **opts)
    if kind == "diamond":
        return Topology.diamond(**opts)
    if kind == "beads":
        return Topology.beads(k, 3 if m is None else m, **opts)
    return Topology.from_edges(edges, n, **opts)


def hop_distances(n_nodes: int, links) -> np.ndarray:
    """Fewest hops from each node to each other over directed ``links``.

    Args:
        n_nodes: nodes; links: int ``[L, 2]`` ``(src, dst)``.

    Returns:
        int64 ``[n_nodes, n_nodes]``: ``dist[a, b]`` hops from ``a`` to
        ``b``; ``n_nodes`` where ``b`` cannot be reached.
    """
    g = nx.DiGraph()
    g.add_nodes_from(range(n_nodes))
    g.add_edges_from(map(tuple, np.asarray(links, np.int64).reshape(-1, 2).tolist()))
    dist = np.full((n_nodes, n_nodes), n_nodes, dtype=np.int64)
    for s, lengths in nx.all_pairs_shortest_path_length(g):
        for d, v in lengths.items():
            dist[s, d] = v
    return dist
