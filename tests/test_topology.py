"""Tests of tidesim.models.topology."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidesim.errors import ConfigError
from tidesim.models.topology import TOPOLOGY_KINDS, Topology, make_topology

ALL = [
    Topology.complete(5),
    Topology.cycle(6),
    Topology.line(4),
    Topology.star(3),
    Topology.grid(3, 4),
    Topology.mesh(3, 2),
    Topology.torus((2, 3)),
    Topology.torus((3, 4)),
    Topology.torus((3, 3, 3)),
    Topology.hypercube(3),
    Topology.tree(3),
    Topology.tree(2, 3),
    Topology.diamond(),
    Topology.dumbbell(4),
    Topology.hourglass(3),
    Topology.beads(3),
    Topology.beads(4, 2),
    Topology.from_edges([[0, 1], [1, 2], [2, 0], [2, 3]]),
    Topology.from_graph(nx.petersen_graph(), name="petersen"),
]


def check_invariants(t: Topology) -> None:
    n, m = t.n_nodes, t.n_edges
    assert sorted(t.graph.nodes) == list(range(n))
    assert nx.is_connected(t.graph)
    assert t.graph.number_of_edges() == m
    assert t.links.dtype == np.int64 and t.links.shape == (2 * m, 2)
    assert t.latency_s.dtype == np.float64 and t.latency_s.shape == (2 * m,)
    assert t.n_links == 2 * m
    # sorted lexicographically by (dst, src), no duplicates
    keys = [(int(d), int(s)) for s, d in t.links]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    # both directions of every edge, and nothing else
    directed = {(int(s), int(d)) for s, d in t.links}
    expected = {(u, v) for u, v in t.graph.edges} | {(v, u) for u, v in t.graph.edges}
    assert directed == expected
    # edges: u < v, ascending
    assert [tuple(e) for e in t.edges.tolist()] == sorted(tuple(sorted(e)) for e in t.graph.edges)
    # reverse links have the same latency
    rev = t.reverse()
    assert np.array_equal(t.links[rev], t.links[:, ::-1])
    assert np.array_equal(t.latency_s[rev], t.latency_s)


@pytest.mark.parametrize("t", ALL, ids=lambda t: t.name)
def test_invariants(t):
    check_invariants(t)


@pytest.mark.parametrize("t", ALL, ids=lambda t: t.name)
def test_incoming_csr(t):
    offsets, ids = t.incoming()
    assert offsets.dtype == np.int64 and ids.dtype == np.int64
    assert offsets.shape == (t.n_nodes + 1,) and ids.shape == (t.n_links,)
    assert offsets[0] == 0 and offsets[-1] == t.n_links
    for j in range(t.n_nodes):
        block = ids[offsets[j] : offsets[j + 1]]
        assert np.all(t.links[block, 1] == j)
        assert sorted(t.links[block, 0].tolist()) == sorted(t.graph.neighbors(j))
    assert np.array_equal(t.degree(), np.diff(offsets))
    assert np.array_equal(t.degree(), [t.graph.degree(j) for j in range(t.n_nodes)])


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 6])
def test_hypercube_sizes(d):
    t = Topology.hypercube(d)
    assert t.n_nodes == 2**d
    assert t.n_edges == d * 2 ** (d - 1)
    assert t.name == f"hypercube-{d}"
    assert np.all(t.degree() == d)


@pytest.mark.parametrize("k", [1, 2, 7])
def test_star_sizes(k):
    t = Topology.star(k)
    assert (t.n_nodes, t.n_edges) == (k + 1, k)
    assert t.degree()[0] == k and np.all(t.degree()[1:] == 1)


@pytest.mark.parametrize("n", [2, 3, 8])
def test_complete_sizes(n):
    t = Topology.complete(n)
    assert (t.n_nodes, t.n_edges, t.name) == (n, n * (n - 1) // 2, f"complete-{n}")


def test_reference_sizes():
    mesh = Topology.mesh(3, 2)
    assert (mesh.n_nodes, mesh.n_edges, mesh.name) == (6, 7, "mesh-3x2")
    assert Topology.grid(3, 2).n_edges == 7
    t23 = Topology.torus((2, 3))
    assert (t23.n_nodes, t23.name) == (6, "torus-2x3")
    assert nx.is_isomorphic(t23.graph, nx.grid_graph([2, 3], periodic=True))
    assert t23.n_edges == nx.grid_graph([2, 3], periodic=True).number_of_edges() == 9
    t333 = Topology.torus([3, 3, 3])
    assert (t333.n_nodes, t333.n_edges) == (27, 81)
    assert (Topology.cycle(5).n_edges, Topology.line(5).n_edges) == (5, 4)
    assert (Topology.tree(3).n_nodes, Topology.tree(2, 3).n_nodes) == (15, 13)


def test_named_shapes():
    d = Topology.diamond()
    assert d.edges.tolist() == [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
    h = Topology.hourglass(3)
    assert (h.n_nodes, h.n_edges, h.name) == (6, 7, "hourglass-3")
    assert h.edges.tolist() == [[0, 1], [0, 2], [1, 2], [2, 3], [3, 4], [3, 5], [4, 5]]
    db = Topology.dumbbell(3)
    assert sorted(db.graph.edges) == sorted(nx.barbell_graph(3, 0).edges)
    b = Topology.beads(3)  # three triangles in a line
    assert (b.n_nodes, b.n_edges) == (9, 3 * 3 + 2)
    assert [2, 3] in b.edges.tolist() and [5, 6] in b.edges.tolist()
    assert Topology.beads(2, 3).edges.tolist() == h.edges.tolist()


def test_from_graph_relabels_and_undirects():
    g = nx.DiGraph([("b", "a"), ("c", "b"), ("a", "c")])
    t = Topology.from_graph(g, name="tri")
    assert (t.name, t.n_nodes, t.n_edges) == ("tri", 3, 3)
    assert [t.graph.nodes[i]["label"] for i in range(3)] == ["a", "b", "c"]
    grid = Topology.grid(2, 3)  # node r * cols + c
    assert grid.graph.nodes[4]["label"] == (1, 1)
    assert grid.link_index(1, 4) >= 0


def test_from_edges_merges_duplicates():
    t = Topology.from_edges([[0, 1], [1, 0], (1, 2), np.array([2, 1])], n=3)
    assert (t.n_nodes, t.n_edges, t.n_links) == (3, 2, 4)


def test_link_index():
    t = Topology.diamond()
    for i, (s, d) in enumerate(t.links.tolist()):
        assert t.link_index(s, d) == i
    for bad in [(0, 3), (0, 0), (5, 1), (-1, 0), (1.0, 0)]:
        with pytest.raises(ConfigError, match="link") as exc:
            t.link_index(*bad)
        assert repr(bad) in str(exc.value)


def test_to_dict():
    d = Topology.torus((3, 3, 3)).to_dict()
    assert d == {"name": "torus-3x3x3", "nodes": 27, "edges": 81, "links": 162}


# ------------------------------------------------------------------ latency


def test_latency_default_and_scalar():
    assert np.all(Topology.cycle(4).latency_s == 1e-8)
    t = Topology.cycle(4, latency_s=3e-9)
    assert np.all(t.latency_s == 3e-9)
    assert np.all(Topology.cycle(4, latency_s=0).latency_s == 0.0)
    assert np.all(Topology.cycle(4, latency_s=np.float32(2.0)).latency_s == 2.0)


def test_latency_per_edge():
    t = Topology.diamond(latency_s=[1.0, 2.0, 3.0, 4.0, 5.0])
    for (u, v), lat in zip(t.edges.tolist(), [1.0, 2.0, 3.0, 4.0, 5.0], strict=True):
        assert t.latency_s[t.link_index(u, v)] == lat
        assert t.latency_s[t.link_index(v, u)] == lat
    t2 = Topology.diamond(latency_s=np.arange(5.0))
    assert t2.latency_s[t2.link_index(2, 3)] == 4.0


def test_latency_uniform_deterministic():
    spec = {"distribution": "uniform", "low_s": 1e-9, "high_s": 5e-9}
    a = Topology.torus((3, 3), latency_s=spec, seed=7)
    b = Topology.torus((3, 3), latency_s=spec, seed=7)
    c = Topology.torus((3, 3), latency_s=spec, seed=8)
    assert np.array_equal(a.latency_s, b.latency_s)
    assert not np.array_equal(a.latency_s, c.latency_s)
    assert np.all((a.latency_s >= 1e-9) & (a.latency_s <= 5e-9))
    assert np.array_equal(a.latency_s[a.reverse()], a.latency_s)
    assert len(np.unique(a.latency_s)) == a.n_edges


def test_latency_normal_clipped():
    spec = {"distribution": "normal", "mean_s": 1e-9, "std_s": 5e-9}
    a = Topology.complete(10, latency_s=spec, seed=1)
    assert np.all(a.latency_s >= 0)
    assert np.any(a.latency_s == 0)
    assert np.array_equal(a.latency_s, Topology.complete(10, latency_s=spec, seed=1).latency_s)


# ------------------------------------------------------------------ make_topology


@pytest.mark.parametrize(
    ("kind", "sizes", "name"),
    [
        ("complete", {"n": 4}, "complete-4"),
        ("cycle", {"n": 4}, "cycle-4"),
        ("line", {"n": 4}, "line-4"),
        ("star", {"k": 4}, "star-4"),
        ("grid", {"rows": 2, "cols": 3}, "grid-2x3"),
        ("mesh", {"rows": 3, "cols": 2}, "mesh-3x2"),
        ("torus", {"dims": [2, 3]}, "torus-2x3"),
        ("hypercube", {"d": 3}, "hypercube-3"),
        ("tree", {"depth": 2}, "tree-2-2"),
        ("tree", {"depth": 2, "branching": 3}, "tree-2-3"),
        ("diamond", {}, "diamond"),
        ("dumbbell", {"k": 3}, "dumbbell-3"),
        ("hourglass", {"k": 3}, "hourglass-3"),
        ("beads", {"k": 3}, "beads-3x3"),
        ("beads", {"k": 3, "m": 4}, "beads-3x4"),
        ("edges", {"edges": [[0, 1], [1, 2]]}, "edges"),
    ],
)
def test_make_topology(kind, sizes, name):
    t = make_topology(kind, **sizes, latency_s=2e-9)
    assert t.name == name
    assert np.all(t.latency_s == 2e-9)
    check_invariants(t)


def test_kinds_listed():
    assert set(TOPOLOGY_KINDS) == {
        "complete", "cycle", "line", "star", "grid", "mesh", "torus", "hypercube",
        "tree", "diamond", "dumbbell", "hourglass", "beads", "edges",
    }  # fmt: skip
    for kind in TOPOLOGY_KINDS:
        with pytest.raises(ConfigError):
            make_topology(kind, n=1, k=1, d=1, rows=1, cols=1, dims=[2, 2], depth=1, m=2)


# ------------------------------------------------------------------ bad input

BAD = [
    (lambda: Topology.cycle(4, latency_s=-3e-9), "topology.latency_s", "-3e-09", ">= 0"),
    (lambda: Topology.cycle(4, latency_s=math.nan), "topology.latency_s", "nan", "number"),
    (lambda: Topology.cycle(4, latency_s=math.inf), "topology.latency_s", "inf", "number"),
    (lambda: Topology.cycle(4, latency_s=True), "topology.latency_s", "True", "number"),
    (lambda: Topology.cycle(4, latency_s="10ns"), "topology.latency_s", "'10ns'", "number"),
    (lambda: Topology.cycle(4, latency_s=[1e-9, 2e-9]), "topology.latency_s", "[1e-09, 2e-09]",
     "one entry per edge (4)"),
    (lambda: Topology.line(3, latency_s=[1e-9, -1.0]), "topology.latency_s[1]", "-1.0", ">= 0"),
    (lambda: Topology.line(3, latency_s={"distribution": "lognormal"}),
     "topology.latency_s.distribution", "'lognormal'", "['normal', 'uniform']"),
    (lambda: Topology.line(3, latency_s={"distribution": "uniform", "low_s": 1.0}),
     "topology.latency_s.high_s", "None", "required"),
    (lambda: Topology.line(3, latency_s={"distribution": "uniform", "low_s": 2.0, "high_s": 1.0}),
     "topology.latency_s.high_s", "1.0", "low_s"),
    (lambda: Topology.line(3, latency_s={"distribution": "normal", "mean_s": 1.0, "std_s": 1.0,
                                         "low_s": 0.0}),
     "topology.latency_s.low_s", "0.0", "not used"),
    (lambda: Topology.line(3, seed=-1), "topology.seed", "-1", ">= 0"),
    (lambda: Topology.complete(1), "topology.n", "1", ">= 2"),
    (lambda: Topology.complete(True), "topology.n", "True", "integer"),
    (lambda: Topology.complete(3.0), "topology.n", "3.0", "integer"),
    (lambda: Topology.complete(10**6), "topology.n", "1000000", "at most"),
    (lambda: Topology.cycle(2), "topology.n", "2", ">= 3"),
    (lambda: Topology.star(0), "topology.k", "0", ">= 1"),
    (lambda: Topology.hypercube(0), "topology.d", "0", ">= 1"),
    (lambda: Topology.hypercube(10**9), "topology.d", "1000000000", "at most"),
    (lambda: Topology.grid(1, 1), "topology.cols", "1", "rows * cols >= 2"),
    (lambda: Topology.mesh(0, 3), "topology.rows", "0", ">= 1"),
    (lambda: Topology.torus((3,)), "topology.dims", "(3,)", "2 or 3"),
    (lambda: Topology.torus((3, 1)), "topology.dims", "(3, 1)", ">= 2"),
    (lambda: Topology.torus("3x3"), "topology.dims", "'3x3'", "2 or 3"),
    (lambda: Topology.tree(0), "topology.depth", "0", ">= 1"),
    (lambda: Topology.tree(2, 1), "topology.branching", "1", ">= 2"),
    (lambda: Topology.tree(10**9), "topology.depth", "1000000000", "at most"),
    (lambda: Topology.beads(2, 1), "topology.m", "1", ">= 2"),
    (lambda: Topology.from_edges([[0, 1], [2, 3]]), "topology", "'edges'", "connected"),
    (lambda: Topology.from_edges([[0, 1]], n=3), "topology", "'edges'", "connected"),
    (lambda: Topology.from_edges([[0, 1], [1, -2]]), "topology.edges", "[1, -2]", "non-negative"),
    (lambda: Topology.from_edges([[0, 1], [1, 2, 3]]), "topology.edges", "[1, 2, 3]", "pair"),
    (lambda: Topology.from_edges([[0, 1], [1, 1.5]]), "topology.edges", "[1, 1.5]", "integers"),
    (lambda: Topology.from_edges([[0, 1], [1, 1]]), "topology.edges", "[1, 1]", "self-loop"),
    (lambda: Topology.from_edges([[0, 1], [1, 5]], n=3), "topology.edges", "[1, 5]", "< n (3)"),
    (lambda: Topology.from_edges([]), "topology", "'edges'", "at least 2 nodes"),
    (lambda: Topology.from_graph(nx.Graph([(0, 1), (1, 1)])), "topology", "'custom'",
     "self-loops"),
    (lambda: Topology.from_graph([(0, 1)]), "topology.graph", "[(0, 1)]", "networkx"),
    (lambda: make_topology("ring", n=4), "topology.kind", "'ring'", "'cycle'"),
    (lambda: make_topology("complete"), "topology.n", "None", "is required for kind 'complete'"),
    (lambda: make_topology("grid", rows=2), "topology.cols", "None", "required"),
    (lambda: make_topology("complete", n=4, k=3), "topology.k", "3",
     "is not used by kind 'complete'"),
    (lambda: make_topology("diamond", n=4), "topology.n", "4", "not used"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "field", "value", "words"), BAD)
def test_bad_input(build, field, value, words):
    with pytest.raises(ConfigError) as exc:
        build()
    err = exc.value
    msg = str(err)
    assert isinstance(err, ValueError)
    assert err.field == field
    assert msg.startswith(field + ": ")
    assert msg.endswith(f"got {value}")
    assert words in msg


# ------------------------------------------------------------------ property


@st.composite
def connected_edge_lists(draw):
    """A random connected graph on 0..n-1 as an edge list (spanning tree + extras)."""
    n = draw(st.integers(2, 12))
    perm = draw(st.permutations(range(n)))
    edges = []
    for i in range(1, n):
        j = draw(st.integers(0, i - 1))
        edges.append([perm[i], perm[j]])
    pair = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] != p[1])
    edges += [list(p) for p in draw(st.lists(pair, max_size=2 * n))]
    return n, draw(st.permutations(edges))


@settings(max_examples=60, deadline=None)
@given(connected_edge_lists(), st.integers(0, 2**32))
def test_random_connected_edge_lists(case, seed):
    n, edges = case
    spec = {"distribution": "uniform", "low_s": 0.0, "high_s": 1e-6}
    t = Topology.from_edges(edges, latency_s=spec, seed=seed)
    unique = {frozenset(e) for e in edges}
    assert t.n_nodes == n
    assert t.n_edges == len(unique)
    assert t.n_links == 2 * t.n_edges == len(t.links)
    links = {(int(s), int(d)) for s, d in t.links}
    assert all((d, s) in links for s, d in links)
    for s, d in links:
        assert t.latency_s[t.link_index(s, d)] == t.latency_s[t.link_index(d, s)]
    check_invariants(t)
