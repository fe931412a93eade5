"""tidesim.waves: ports and their word layout, actions, modules, the SDF checks,
functional execution and firing on words.

The expectations are written separately from the code: hand-worked repetition
vectors (the CD-to-DAT converter of the SDF literature), closed forms (a
two-actor cycle is live iff its tokens reach ``p + c - gcd(p, c)``; a
homogeneous graph is live iff every cycle holds a token; a graph is
consistent iff its topology matrix has rank ``n - components``), token
counts replayed here, byte layouts written out by hand, and hand-computed
outputs of small apps.
"""

from __future__ import annotations

import doctest
import importlib
import math
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import networkx as nx
import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidesim.errors import ConfigError, TidesimError
from tidesim.waves import (
    FIRE_TYPE,
    Action,
    App,
    Edge,
    Graph,
    In,
    Module,
    Out,
    Port,
    Ports,
    WavesError,
    action,
    compiled,
    fire_words,
    functional_run,
    pack_state,
    pack_tokens,
    unpack_state,
    unpack_tokens,
)

REPO = Path(__file__).resolve().parents[1]
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _noop(state, *args):
    """A function for actions whose values do not matter (graph tests)."""


def node(name: str, in_rates=(), out_rates=(), dtype="i8") -> Action:
    """An action with one input per rate (``x0``, ``x1``, ...) and one output per rate."""
    return action(_noop, inputs={f"x{k}": In(dtype, rate=r) for k, r in enumerate(in_rates)},
                  outputs={f"y{k}": Out(dtype, rate=r) for k, r in enumerate(out_rates)},
                  name=name)


def build(n: int, edges) -> App:
    """An app of ``n`` nodes ``n0..``; edge ``(u, v, p, c, d)`` gets its own ports."""
    ins: list[list[int]] = [[] for _ in range(n)]
    outs: list[list[int]] = [[] for _ in range(n)]
    for u, v, p, c, _ in edges:
        outs[u].append(p)
        ins[v].append(c)
    app = App("random")
    for i in range(n):
        app.add(f"n{i}", node(f"n{i}", ins[i], outs[i]))
    seen_in, seen_out = [0] * n, [0] * n
    for u, v, _, _, d in edges:
        app.connect(f"n{u}.y{seen_out[u]}", f"n{v}.x{seen_in[v]}", initial=d)
        seen_out[u] += 1
        seen_in[v] += 1
    return app


def raised(exc_type, fn, *args, **kwargs) -> str:
    """The message of the error ``fn`` raises, checked to be one line of ``exc_type``."""
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    text = str(info.value)
    assert "\n" not in text, text
    return text


# ---------------------------------------------------------------- ports and words


@pytest.mark.parametrize("port, token_bytes, token_words", [
    (In("f8", (4,)), 32, 4),
    (In("i2", (3,), rate=2), 6, 1),
    (In("u1", (9,)), 9, 2),
    (Out("c16"), 16, 2),
    (Out(bool), 1, 1),
    (Out("f4", (2, 3), rate=5), 24, 3),
])
def test_token_sizes(port, token_bytes, token_words):
    assert port.token_bytes == token_bytes
    assert port.token_words == token_words
    assert port.block_words == port.rate * token_words


def test_word_layout_by_hand():
    # tokens at word boundaries, bytes little-endian from the start, padding zero
    x = In("u1", (3,), rate=2)
    assert pack_tokens(x, [[1, 2, 3], [4, 5, 6]]).tolist() == [0x030201, 0x060504]
    assert pack_tokens(In("i2", (2,)), [-2, 1]).tolist() == [0x0001FFFE]
    assert pack_tokens(In("f8"), 1.0).tolist() == [0x3FF0000000000000]
    assert pack_tokens(In("c8"), [1 + 2j]).tolist() == [0x400000003F800000]
    assert pack_tokens(In(bool), [True, False, True]).tolist() == [1, 0, 1]
    assert pack_tokens(In("u2", (5,)), [1, 2, 3, 4, 5]).tolist() == [
        0x0004000300020001, 0x0005]
    assert pack_tokens(In("f8", (2,)), np.zeros((0, 2))).tolist() == []
    words = pack_tokens(In("i8"), [1, 2])
    assert words.dtype == np.uint64 and words.flags.c_contiguous


DTYPES = ["u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8", "c8", "c16", "?"]


@SETTINGS
@given(dtype=st.sampled_from(DTYPES),
       shape=st.lists(st.integers(1, 4), max_size=3).map(tuple),
       rate=st.integers(1, 4), n=st.integers(0, 5), seed=st.integers(0, 2**32 - 1))
def test_pack_unpack_round_trip(dtype, shape, rate, n, seed):
    port = Out(dtype, shape, rate=rate)
    raw = np.random.default_rng(seed).integers(0, 256, size=n * port.token_bytes, dtype=np.uint8)
    if dtype == "?":
        raw &= 1
    tokens = raw.view(port.dtype).reshape((n, *shape))
    words = pack_tokens(port, tokens)
    assert words.shape == (n * port.token_words,)
    # the layout, from the bytes of each token: data, then zero padding
    data = words.astype("<u8").tobytes()
    stride = port.token_words * 8
    for k in range(n):
        chunk = data[k * stride:(k + 1) * stride]
        assert chunk[:port.token_bytes] == tokens[k].tobytes()
        assert chunk[port.token_bytes:] == bytes(stride - port.token_bytes)
    back = unpack_tokens(port, words)
    assert back.dtype == port.dtype and back.shape == (n, *shape)
    assert back.tobytes() == tokens.tobytes()  # bit for bit, NaNs included


def test_one_token_and_many_leading_dimensions():
    port = In("i4", (2,))
    assert pack_tokens(port, [7, 8]).tolist() == pack_tokens(port, [[7, 8]]).tolist()
    grid = np.arange(12, dtype="i4").reshape(2, 3, 2)
    assert unpack_tokens(port, pack_tokens(port, grid)).tolist() == grid.reshape(6, 2).tolist()


@pytest.mark.parametrize("make, message", [
    (lambda: In("U4"), "In.dtype: must be a fixed-size numeric numpy dtype"),
    (lambda: Out(object), "Out.dtype: must be a fixed-size numeric numpy dtype"),
    (lambda: In("M8[s]"), "In.dtype: must be a fixed-size numeric numpy dtype"),
    (lambda: In([("a", "f8")]), "In.dtype: must be a fixed-size numeric numpy dtype"),
    (lambda: In("nonsense"), "In.dtype: must be a fixed-size numeric numpy dtype"),
    (lambda: In("f8", (0,)), "In.shape: must be a tuple of positive integers, got (0,)"),
    (lambda: In("f8", (2.5,)), "In.shape: must be a tuple of positive integers, got (2.5,)"),
    (lambda: In("f8", "4"), "In.shape: must be a tuple of positive integers, got '4'"),
    (lambda: Out("f8", rate=0), "Out.rate: must be an integer >= 1, got 0"),
    (lambda: Out("f8", rate=1.0), "Out.rate: must be an integer, got 1.0"),
    (lambda: In("f8", rate=True), "In.rate: must be an integer, got True"),
    (lambda: pack_tokens(In("f8", (4,)), np.zeros(3)), "tokens: must be tokens of shape (4,)"),
    (lambda: pack_tokens(In("i8"), [1.5]), "tokens: must be numbers of type int64, got 'float64'"),
    (lambda: pack_tokens(In("f8"), ["a"]), "tokens: must be numbers of type float64"),
    (lambda: unpack_tokens(In("f8", (2,)), np.zeros(3, np.uint64)),
     "words: must hold whole tokens (2 words each), got 3"),
    (lambda: unpack_tokens(In("f8"), np.zeros((2, 2), np.uint64)),
     "words: must be a 1-D array of uint64 words, got (2, 2)"),
    (lambda: pack_tokens("f8", [1.0]), "port: must be an In or Out port, got 'str'"),
])
def test_port_errors_are_one_line(make, message):
    assert raised(ConfigError, make).startswith(message)


def test_ports_are_a_tuple_and_a_lookup():
    ports = Ports([In("f8", name="x"), In("i8", (2,), name="z")])
    assert ports[1].name == "z" and ports["z"] is ports[1]
    assert "x" in ports and "q" not in ports and ports[0] in ports
    assert ports.names == ("x", "z") == ports.keys()
    assert ports.index("z") == 1 and [p.name for p in ports] == ["x", "z"]
    assert dict(ports.items())["x"].dtype == np.float64
    assert ports.get("q") is None
    with pytest.raises(KeyError):
        ports["q"]
    assert isinstance(ports[0], Port) and isinstance(ports[0], In)
    assert In("f8") != Out("f8") and In("f8", (2,)) == In("f8", 2)


# ---------------------------------------------------------------- actions


@action(inputs={"x": In("f8", (4,))}, outputs={"y": Out("f8", (4,), rate=2)},
        state=("i8", (1,)))
def dup(state, x, y):
    y[0] = x
    y[1] = x + state[0]
    state[0] += 1


def test_action_layout_and_firing():
    assert isinstance(dup, Action) and dup.name == "dup" and not dup.is_jit
    assert dup.inputs.names == ("x",) and dup.outputs["y"].rate == 2
    assert (dup.in_words, dup.out_words, dup.state_words) == (4, 8, 1)
    assert dup.cycles == 1 and dup.state_shape == (1,) and dup.state_dtype == np.int64
    state = np.array([5])
    (y,) = dup.fire(state, np.arange(4.0))
    assert y.tolist() == [[0, 1, 2, 3], [5, 6, 7, 8]] and state.tolist() == [6]
    assert dup.pack_state([3]).tolist() == pack_state(dup, [3]).tolist() == [3]
    assert unpack_state(dup, np.array([9], np.uint64)).tolist() == [9]
    # a state's bytes, padded to words like a token's
    odd = action(_noop, state=("u1", (3,)), name="odd")
    assert pack_state(odd, [1, 2, 3]).tolist() == [0x030201]
    assert unpack_state(odd, [0x0A0B0C]).tolist() == [12, 11, 10]
    assert raised(ConfigError, pack_state, "odd", [1]).startswith("action: must be an Action")
    assert raised(ConfigError, unpack_state, odd, [1, 2]) == (
        "odd.state words: must be 1 uint64 words, got (2,)")


def test_action_offsets_and_stateless_default():
    @action(inputs={"a": In("u1", (3,), rate=2), "b": In("c16")},
            outputs={"p": Out("f4", rate=3), "q": Out("i8", (2,))}, cycles=7)
    def many(state, a, b, p, q):
        assert state.shape == (0,) and state.dtype == np.float64

    assert many.in_offsets == (0, 2) and many.in_words == 4
    assert many.out_offsets == (0, 3) and many.out_words == 5
    assert many.state_words == 0 and many.cycles == 7
    assert many.initial_state().shape == (0,)
    many.fire(many.initial_state(), np.zeros((2, 3), np.uint8), 1j)
    assert many.pack_state(None).tolist() == []


def test_action_init_gives_each_instance_its_state():
    @action(outputs={"y": Out("i8")}, state=("i8", (2,)), init=lambda k: [k, 10 * k])
    def emit(state, y):
        y[...] = state[1]

    app = App().add("a", emit).add("b", emit).add("c", emit, state=[7, 70])
    app.add("d", emit)
    g = app.graph()
    assert [inst.state0.tolist() for inst in g.instances] == [[0, 0], [1, 10], [7, 70], [3, 30]]
    assert not g.instances[0].state0.flags.writeable


def _three(state, x, y):
    pass


@pytest.mark.parametrize("make, kind, message", [
    (lambda: action(_three, inputs={"x": In("f8")}, outputs={"y": Out("f8")}, cycles=0),
     ConfigError, "_three.cycles: must be an integer >= 1, got 0"),
    (lambda: action(_three, inputs={"x": In("f8")}),
     WavesError, "waves: _three takes 3 arguments, but its ports need 2: (state, x)"),
    (lambda: action(_three, inputs={"x": Out("f8")}, outputs={"y": Out("f8")}),
     ConfigError, "_three.inputs.x: must be an In(...), got Out('float64', ())"),
    (lambda: action(_three, inputs={"x": In("f8")}, outputs={"x": Out("f8")}),
     ConfigError, "_three.outputs: must not reuse input names, got ['x']"),
    (lambda: action(_three, inputs={"a.b": In("f8")}, outputs={"y": Out("f8")}),
     ConfigError, "_three.inputs name: must be a name without '.' or blanks, got 'a.b'"),
    (lambda: action(_three, inputs=[In("f8")], outputs={"y": Out("f8")}),
     ConfigError, "_three.inputs: must be a dict of In(dtype, shape, rate) ports by name"),
    (lambda: action(_three, inputs={"x": In("f8")}, outputs={"y": Out("f8")}, state="f8"),
     ConfigError, "_three.state: must be a (dtype, shape) pair, got 'f8'"),
    (lambda: action(_three, inputs={"x": In("f8")}, outputs={"y": Out("f8")},
                    state=("f8", (0,))),
     ConfigError, "_three.state.shape: must be a tuple of positive integers, got (0,)"),
    (lambda: action(_three, inputs={"x": In("f8")}, outputs={"y": Out("f8")},
                    state=("str", 1)),
     ConfigError, "_three.state.dtype: must be a fixed-size numeric numpy dtype"),
    (lambda: action(_three, inputs={"x": In("f8")}, outputs={"y": Out("f8")}, init=len),
     ConfigError, "_three.init: needs a state=(dtype, shape), got 'len'"),
    (lambda: action(_three, inputs={"x": In("f8")}, outputs={"y": Out("f8")},
                    state=("f8", 1), init=3),
     ConfigError, "_three.init: must be a function init(index) -> array, got 'int'"),
    (lambda: action(42), ConfigError, "action: must decorate a function, got 'int'"),
    (lambda: dup.fire(np.zeros(1, "i8"), np.zeros(3)),
     ConfigError, "dup.x: must be tokens of shape (4,), got (3,)"),
    (lambda: dup.fire(np.zeros(1, "i8")), ConfigError, "dup.fire: must get 1 input arrays"),
    (lambda: App().add("d", dup, state=[1, 2]),
     ConfigError, "d.state: must have shape (1,) (int64 (1,)), got (2,)"),
    (lambda: App().add("d", dup, state=[0.5]),
     ConfigError, "d.state: must be numbers of type int64, got 'float64'"),
    (lambda: App().add("n", node("n", (1,)), state=[1]),
     ConfigError, "n.state: must be None (n has no state)"),
    (lambda: App().add("a.b", dup), ConfigError,
     "app.add: must be a name without '.' or blanks, got 'a.b'"),
    (lambda: App().add("a", 3), ConfigError, "app.a: must be an action or a Module, got 'int'"),
])
def test_action_errors_are_one_line(make, kind, message):
    assert raised(kind, make).startswith(message)


def test_init_result_is_checked():
    bad = action(_noop, outputs={"y": Out("i8")}, state=("i8", (2,)), init=lambda k: [k],
                 name="bad")
    text = raised(ConfigError, App().add("b", bad).graph)
    assert text == "bad.init(0): must have shape (2,) (int64 (2,)), got (1,)"


def test_waves_error_is_a_tidesim_value_error():
    assert issubclass(WavesError, TidesimError) and issubclass(WavesError, ValueError)
    assert str(WavesError("two\nlines")) == "waves: two lines"


# ---------------------------------------------------------------- repetition vectors


def test_two_rates():
    # a gives 2 tokens per firing, b takes 3: 3 firings of a feed 2 of b
    g = build(2, [(0, 1, 2, 3, 0)]).graph()
    assert g.repetitions.tolist() == [3, 2] and g.repetitions.dtype == np.int64
    assert g.order == (0, 0, 1, 0, 1)


def test_cd_to_dat_converter():
    # the CD-to-DAT sample-rate converter of the SDF literature (44.1 kHz -> 48 kHz)
    rates = [(1, 1), (2, 3), (2, 7), (8, 7), (5, 1)]
    g = build(6, [(k, k + 1, p, c, 0) for k, (p, c) in enumerate(rates)]).graph()
    assert g.repetitions.tolist() == [147, 147, 98, 28, 32, 160]
    assert len(g.order) == 147 + 147 + 98 + 28 + 32 + 160


def test_components_are_solved_separately():
    # two chains and an isolated node: each component gets its own gcd-1 vector
    g = build(5, [(0, 1, 2, 4, 0), (2, 3, 6, 4, 0)]).graph()
    assert g.repetitions.tolist() == [2, 1, 2, 3, 1]


def test_fan_out_with_different_rates_and_a_chain():
    # a -> b (1:2), a -> c (1:3), c -> d (4:6)
    g = build(4, [(0, 1, 1, 2, 0), (0, 2, 1, 3, 0), (2, 3, 4, 6, 0)]).graph()
    assert g.repetitions.tolist() == [18, 9, 6, 4]


def test_cycle_with_delays():
    # a -> b (2:3), b -> a (3:2) with 4 tokens: the least a two-actor cycle needs
    g = build(2, [(0, 1, 2, 3, 0), (1, 0, 3, 2, 4)]).graph()
    assert g.repetitions.tolist() == [3, 2]
    assert g.order == (0, 0, 1, 0, 1)


def test_huge_iterations_are_refused():
    # 1000:999 rates multiply along a chain: q = 999**3, 999**2 * 1000, ..., 1000**3
    app = build(4, [(k, k + 1, 1000, 999, 0) for k in range(3)])
    assert raised(WavesError, app.graph) == (
        "waves: one iteration has 3994003999 firings (n3 fires 1000000000 times), "
        "more than 10000000: check the rates")


def _components(n, edges):
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from((u, v) for u, v, *_ in edges)
    return [sorted(c) for c in nx.connected_components(graph)]


def _replay(n, edges, q, order):
    """Token counts along ``order``: never short, and back to the initial counts."""
    tokens = [d for *_, d in edges]
    assert [order.count(i) for i in range(n)] == list(q)
    for i in order:
        for k, (_u, v, _p, c, _d) in enumerate(edges):
            if v == i:
                tokens[k] -= c
                assert tokens[k] >= 0, f"n{i} fired without tokens on edge {k}"
        for k, (u, _v, p, _c, _d) in enumerate(edges):
            if u == i:
                tokens[k] += p
    assert tokens == [d for *_, d in edges]


@st.composite
def consistent_graphs(draw):
    """A random DAG plus back edges, rates derived from a chosen firing vector.

    Back edges (and self loops) start with a whole iteration's tokens, so
    they never block; the forward part is acyclic, so the graph is live.
    """
    n = draw(st.integers(1, 7))
    q = draw(st.lists(st.integers(1, 6), min_size=n, max_size=n))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                          max_size=10))
    edges = []
    for u, v in pairs:
        k = draw(st.integers(1, 3))
        g = math.gcd(q[u], q[v])
        p, c = k * q[v] // g, k * q[u] // g  # q[u] * p == q[v] * c
        d = 0 if u < v else q[v] * c + draw(st.integers(0, 2))
        edges.append((u, v, p, c, d))
    return n, q, edges


@SETTINGS
@given(consistent_graphs())
def test_random_consistent_graphs(case):
    n, chosen, edges = case
    g = build(n, edges).graph()
    q = g.repetitions.tolist()
    assert all(x > 0 for x in q)
    for u, v, p, c, _ in edges:
        assert q[u] * p == q[v] * c
    for comp in _components(n, edges):
        assert math.gcd(*(q[i] for i in comp)) == 1
        # the smallest solution: the chosen vector divided by its gcd on the component
        scale = math.gcd(*(chosen[i] for i in comp))
        assert [q[i] for i in comp] == [chosen[i] // scale for i in comp]
    _replay(n, edges, q, list(g.order))
    # the graph's edges are the ones built, in order, with their initial tokens
    assert [(e.src, e.dst, e.delay) for e in g.edges] == [(u, v, d) for u, v, _, _, d in edges]


def _rank(rows: list[list[int]]) -> int:
    """The rank of an integer matrix, by exact Gaussian elimination."""
    m = [[Fraction(x) for x in row] for row in rows]
    rank, cols = 0, len(m[0]) if m else 0
    for col in range(cols):
        pivot = next((r for r in range(rank, len(m)) if m[r][col] != 0), None)
        if pivot is None:
            continue
        m[rank], m[pivot] = m[pivot], m[rank]
        for r in range(len(m)):
            if r != rank and m[r][col] != 0:
                f = m[r][col] / m[rank][col]
                m[r] = [a - f * b for a, b in zip(m[r], m[rank], strict=True)]
        rank += 1
    return rank


@SETTINGS
@given(n=st.integers(2, 5), data=st.data())
def test_random_rates_are_refused_iff_the_topology_matrix_is_deficient(n, data):
    # Lee & Messerschmitt: consistent iff rank(topology matrix) == n - components
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                               min_size=1, max_size=7))
    edges = [(u, v, data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)),
              0 if u < v else 1000) for u, v in pairs]
    gamma = []
    for u, v, p, c, _ in edges:
        row = [0] * n
        row[u] += p
        row[v] -= c
        gamma.append(row)
    consistent = _rank(gamma) == n - len(_components(n, edges))
    app = build(n, edges)
    if consistent:
        g = app.graph()
        assert all(g.repetitions[u] * p == g.repetitions[v] * c for u, v, p, c, _ in edges)
    else:
        text = raised(WavesError, app.graph)
        assert text.startswith("waves: inconsistent rates on n")


@SETTINGS
@given(n=st.integers(1, 6), data=st.data())
def test_homogeneous_graphs_deadlock_iff_a_cycle_has_no_token(n, data):
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                               max_size=9))
    edges = [(u, v, 1, 1, data.draw(st.integers(0, 1))) for u, v in pairs]
    empty = nx.DiGraph()
    empty.add_nodes_from(range(n))
    empty.add_edges_from((u, v) for u, v, *_, d in edges if d == 0)
    live = nx.is_directed_acyclic_graph(empty)
    app = build(n, edges)
    if live:
        g = app.graph()
        assert g.repetitions.tolist() == [1] * n
        _replay(n, edges, [1] * n, list(g.order))
        return
    text = raised(WavesError, app.graph)
    m = re.fullmatch(r"waves: deadlock: cycle (.*) has too few initial tokens \(.*\)", text)
    assert m, text
    # the cycle named is a real cycle of token-free edges
    hops = [re.fullmatch(r"n(\d+)\.y\d+ -> n(\d+)\.x\d+", h).groups() for h in
            m.group(1).split(", ")]
    hops = [(int(a), int(b)) for a, b in hops]
    assert all(hops[k][1] == hops[(k + 1) % len(hops)][0] for k in range(len(hops)))
    assert all(empty.has_edge(a, b) for a, b in hops)


@settings(max_examples=100, deadline=None)
@given(p=st.integers(1, 6), c=st.integers(1, 6), d=st.integers(0, 14))
def test_two_actor_cycle_needs_p_plus_c_minus_gcd_tokens(p, c, d):
    app = build(2, [(0, 1, p, c, 0), (1, 0, c, p, d)])
    if d >= p + c - math.gcd(p, c):
        g = app.graph()
        _replay(2, [(0, 1, p, c, 0), (1, 0, c, p, d)], g.repetitions.tolist(), list(g.order))
    else:
        assert raised(WavesError, app.graph).startswith(
            "waves: deadlock: cycle n0.y0 -> n1.x0, n1.y0 -> n0.x0 has too few initial tokens")


# ---------------------------------------------------------------- graph errors


f8x4 = action(_noop, outputs={"y": Out("f8", (4,))}, name="f8x4")
i8x4 = action(_noop, outputs={"y": Out("i8", (4,))}, name="i8x4")
take = action(_noop, inputs={"x": In("f8", (4,))}, outputs={"y": Out("f8", (4,))}, name="take")
take2 = action(_noop, inputs={"x": In("f8", (4,), rate=2)}, outputs={"y": Out("f8", (4,))},
               name="take2")
join = action(_noop, inputs={"x": In("f8", (4,)), "z": In("f8", (4,))},
              outputs={"y": Out("f8", (4,))}, name="join")
sink = action(_noop, inputs={"x": In("f8", (4,))}, name="sink")


def _parts(*names_and_actions):
    app = App()
    for name, act in names_and_actions:
        app.add(name, act)
    return app


@pytest.mark.parametrize("make, message", [
    (lambda: _parts(("a", i8x4), ("b", take)).connect("a.y", "b.x"),
     "waves: b.x expects float64 (4,), a.y gives int64 (4,)"),
    (lambda: _parts(("a", f8x4), ("b", take)).connect("a.q", "b.x"),
     "waves: unknown port a.q (a has outputs: y)"),
    (lambda: _parts(("a", f8x4), ("b", take)).connect("a.y", "b.q"),
     "waves: unknown port b.q (b has inputs: x)"),
    (lambda: _parts(("a", f8x4), ("b", sink)).connect("b.x", "a.y"),
     "waves: b.x is an input, not an output (b has no outputs)"),
    (lambda: _parts(("a", f8x4), ("b", take)).connect("a.y", "a.y"),
     "waves: a.y is an output, not an input (a has no inputs)"),
    (lambda: _parts(("a", f8x4), ("b", take)).connect("q.y", "b.x"),
     "waves: unknown action q in 'q.y' (app has: a, b)"),
    (lambda: _parts(("a", f8x4), ("b", take)).connect("a", "b.x"),
     "waves: 'a' must name a part and its port: 'part.port'"),
    (lambda: _parts(("a", f8x4), ("b", take)).connect("a.y.z", "b.x"),
     "waves: 'a.y.z' must name a part and its port: 'part.port'"),
    (lambda: _parts(("a", f8x4), ("b", take), ("c", f8x4))
     .connect("a.y", "b.x").connect("c.y", "b.x"),
     "waves: b.x has two sources: a.y, c.y"),
    (lambda: _parts(("a", f8x4), ("b", join)).connect("a.y", "b.x").graph(),
     "waves: b.z is not connected"),
    (lambda: _parts(("a", f8x4), ("b", take)).connect("a.y", "b.x", initial=np.zeros(4)),
     "waves: initial tokens on a.y -> b.x must have shape (d, 4) (d tokens of float64 (4,)), "
     "got (4,)"),
    (lambda: _parts(("a", f8x4), ("b", take)).connect("a.y", "b.x", initial=-1),
     "waves: initial tokens on a.y -> b.x must be a count >= 0 or an array of shape (d, 4), "
     "got -1"),
    (lambda: _parts(("a", f8x4), ("b", take))
     .connect("a.y", "b.x", initial=np.ones((1, 4), complex)),
     "waves: initial tokens on a.y -> b.x must be float64 values, got complex128"),
    (lambda: _parts(("a", f8x4), ("b", take)).connect("a.y", "b.x", initial="two"),
     "waves: initial tokens on a.y -> b.x must be a count or an array of float64 tokens, "
     "got str"),
    (lambda: _parts(("a", f8x4), ("b", take)).add("b", take),
     "waves: app already has a part named b"),
    (lambda: _parts(("a", f8x4), ("b", take2), ("c", join)).connect("a.y", "b.x")
     .connect("a.y", "c.x").connect("b.y", "c.z").graph(),
     "waves: inconsistent rates on b.y -> c.z (b fires 1x per c firing but the path "
     "a.y -> b.x, a.y -> c.x makes it 1/2x)"),
    (lambda: _parts(("a", f8x4), ("c", join), ("d", join)).connect("a.y", "c.x")
     .connect("a.y", "d.x").connect("c.y", "d.z").connect("d.y", "c.z").graph(),
     "waves: deadlock: cycle c.y -> d.z, d.y -> c.z has too few initial tokens "
     "(0 in all; 1 of 3 firings of the iteration ran)"),
    (lambda: _parts(("a", f8x4), ("c", join)).connect("a.y", "c.x").connect("c.y", "c.z")
     .graph(),
     "waves: deadlock: cycle c.y -> c.z has too few initial tokens "
     "(0 in all; 1 of 2 firings of the iteration ran)"),
    (lambda: _parts(("a", f8x4), ("c", join), ("b", take2)).connect("a.y", "c.x")
     .connect("c.y", "b.x").connect("b.y", "c.z", initial=1).graph(),
     "waves: inconsistent rates on b.y -> c.z (b fires 1x per c firing but the path "
     "c.y -> b.x makes it 1/2x)"),
    (lambda: App("empty").graph(), "waves: empty has no actions"),
])
def test_graph_errors_are_one_line(make, message):
    assert raised(WavesError, make) == message


def test_self_loop_with_other_rates_is_inconsistent():
    loop = action(_noop, inputs={"x": In("i8", rate=2)}, outputs={"y": Out("i8", rate=3)},
                  name="loop")
    text = raised(WavesError, App().add("a", loop).connect("a.y", "a.x", initial=6).graph)
    assert text == ("waves: inconsistent rates on a.y -> a.x (a loop on a: each firing of a "
                    "gives 3 tokens and takes 2)")


def test_module_errors():
    inner = Module("stage").add("t", take).expose("x", "t.x").expose("y", "t.y")
    assert inner.inputs.names == ("x",) and inner.outputs["y"].shape == (4,)
    assert raised(WavesError, App().add("m", inner).add("a", i8x4).connect, "a.y", "m.x") == (
        "waves: m.x expects float64 (4,), a.y gives int64 (4,)")
    assert raised(WavesError, App().add("m", inner).graph) == "waves: m.t.x is not connected"
    assert raised(WavesError, inner.expose, "x", "t.x") == (
        "waves: stage already exposes a port named x")
    assert raised(WavesError, Module("m").add("t", take).expose, "q", "t.x", "t.y") == (
        "waves: m port q mixes inputs and outputs (t.x, t.y)")
    assert raised(WavesError, Module("m").add("t", take).expose, "q", "t.w") == (
        "waves: unknown port t.w (t has inputs: x; outputs: y)")
    wired = Module("m").add("a", f8x4).add("t", take).connect("a.y", "t.x")
    assert raised(WavesError, wired.expose, "x", "t.x") == (
        "waves: t.x has two sources: a.y, m input x")
    exposed = Module("m").add("a", f8x4).add("t", take).expose("x", "t.x")
    assert raised(WavesError, exposed.connect, "a.y", "t.x") == (
        "waves: t.x has two sources: m input x, a.y")
    loop = Module("loop")
    loop.add("me", loop)
    assert raised(WavesError, App().add("l", loop).graph) == (
        "waves: module loop contains itself (app.loop.loop)")
    assert raised(ConfigError, App().add, "m", inner, state=[1]).startswith("app.m.state:")


# ---------------------------------------------------------------- graph structure


def test_graph_structure_of_a_hierarchical_app():
    stage = Module("stage").add("f", take).add("g", take).connect("f.y", "g.x")
    stage.expose("x", "f.x").expose("y", "g.y").expose("tap", "f.y")
    app = App("top").add("src", f8x4).add("s1", stage).add("s2", stage)
    app.connect("src.y", "s1.x").connect("s1.y", "s2.x", initial=np.full((2, 4), 3.0))
    g = app.graph()
    assert isinstance(g, Graph) and g.name == "top"
    assert [i.name for i in g.instances] == ["src", "s1.f", "s1.g", "s2.f", "s2.g"]
    assert [(e.src, e.src_port, e.dst, e.dst_port, e.delay) for e in g.edges] == [
        (1, 0, 2, 0, 0), (3, 0, 4, 0, 0), (0, 0, 1, 0, 0), (2, 0, 3, 0, 2)]
    assert all(isinstance(e, Edge) for e in g.edges)
    assert g.edges[3].initial.tolist() == [[3.0] * 4] * 2
    assert g.edges[3].initial.dtype == np.float64 and not g.edges[3].initial.flags.writeable
    # s1.f.y feeds s1.g inside the module only; its "tap" is not used by the app
    assert g.outputs == ((4, 0),) and g.output_names == ("s2.g.y",)
    assert g.index("s2.f") == 3 and g.edge_name(3) == "s1.g.y -> s2.f.x"
    assert g.input_edges[3] == (3,) and g.output_edges[0] == ((2,),)
    assert raised(WavesError, g.index, "nope") == "waves: unknown action nope in graph top"
    assert not g.repetitions.flags.writeable


# ---------------------------------------------------------------- functional execution


@action(outputs={"y": Out("i8", rate=2)}, state=("i8", ()))
def count2(state, y):
    y[0] = state + 1
    y[1] = state + 2
    state[...] += 2


@action(outputs={"y": Out("i8")}, state=("i8", ()))
def count(state, y):
    state[...] += 1
    y[...] = state


@action(inputs={"x": In("i8", rate=3)}, outputs={"y": Out("i8")})
def sum3(state, x, y):
    y[...] = x.sum()


@action(inputs={"x": In("i8", rate=2)}, outputs={"y": Out("i8")})
def pair(state, x, y):
    y[...] = 10 * x[0] + x[1]


@action(inputs={"x": In("i8")}, outputs={"y": Out("i8")})
def ident(state, x, y):
    y[...] = x


@action(inputs={"x": In("i8"), "fb": In("i8")}, outputs={"y": Out("i8")})
def acc(state, x, fb, y):
    y[...] = x + fb


def test_multi_rate_with_state():
    app = App().add("c", count2).add("s", sum3).connect("c.y", "s.x")
    run = functional_run(app, 2)
    # c emits 1..12; s sums them three at a time
    assert run.outputs["s.y"].tolist() == [6, 15, 24, 33]
    assert run.states["c"].tolist() == 12 and run.iterations == 2
    assert functional_run(app.graph(), 0).outputs["s.y"].shape == (0,)


def test_initial_tokens_with_values_and_a_feedback_loop():
    app = App().add("c", count).add("a", acc).add("probe", ident).add("late", ident)
    app.connect("c.y", "a.x").connect("a.y", "a.fb", initial=[100])
    app.connect("a.y", "probe.x")                     # fan-out of a.y
    app.connect("c.y", "late.x", initial=[7, 8])      # a delay line with values
    run = functional_run(app, 4)
    assert run.outputs["probe.y"].tolist() == [101, 103, 106, 110]
    assert run.outputs["late.y"].tolist() == [7, 8, 1, 2]
    assert set(run.outputs) == {"probe.y", "late.y"}


def test_fan_out_with_different_rates():
    app = App().add("c", count).add("p", pair).add("s", sum3)
    app.connect("c.y", "p.x").connect("c.y", "s.x")
    run = functional_run(app, 1)
    assert run.graph.repetitions.tolist() == [6, 3, 2]
    assert run.outputs["p.y"].tolist() == [12, 34, 56]
    assert run.outputs["s.y"].tolist() == [6, 15]


@action(inputs={"x": In("f8", (2,))}, outputs={"y": Out("f8", (2,))})
def double(state, x, y):
    y[:] = 2 * x


@action(inputs={"x": In("f8", (2,))}, outputs={"y": Out("f8", (2,))}, state=("f8", (1,)),
        init=lambda k: [100.0 * k])
def offset(state, x, y):
    y[:] = x + state[0]
    state[0] += 1


@action(outputs={"y": Out("f8", (2,))}, state=("f8", (1,)))
def ramp(state, y):
    state[0] += 1
    y[0] = state[0]
    y[1] = -state[0]


@action(inputs={"a": In("f8", (2,)), "b": In("f8", (2,))}, outputs={"y": Out("f8", (2,))})
def plus(state, a, b, y):
    y[:] = a + b


def test_hierarchical_module_with_exposed_ports_and_state():
    stage = Module("stage").add("d", double).add("o", offset).connect("d.y", "o.x")
    stage.expose("x", "d.x").expose("y", "o.y")
    # an exposed input feeding two inner inputs
    both = Module("both").add("p", plus).expose("x", "p.a", "p.b").expose("y", "p.y")
    app = App().add("r", ramp).add("s1", stage).add("s2", stage).add("b", both)
    app.connect("r.y", "s1.x").connect("s1.y", "s2.x").connect("s2.y", "b.x")
    run = functional_run(app, 3)
    # ramp gives (r, -r), r = 1, 2, 3; s1 adds t = 0, 1, 2 after doubling, s2 adds
    # 100 + t: s2 = (4r + 3t + 100, -4r + 3t + 100); b adds it to itself
    assert run.outputs["b.p.y"].tolist() == [[208, 192], [222, 190], [236, 188]]
    assert run.states["s1.o"].tolist() == [3.0] and run.states["s2.o"].tolist() == [103.0]
    assert run.states["r"].tolist() == [3.0] and run.states["b.p"].shape == (0,)


def test_initial_state_from_add():
    app = App().add("c", count, state=41).add("i", ident).connect("c.y", "i.x")
    assert functional_run(app, 2).outputs["i.y"].tolist() == [42, 43]
    assert app.graph().instances[0].state0.tolist() == 41  # the run copied it


def test_outputs_are_zeroed_and_inputs_are_private_copies():
    @action(inputs={"x": In("i8", (2,))}, outputs={"y": Out("i8", (2,))})
    def partial(state, x, y):
        x[:] = -1  # writes its input: the other consumer must not see it
        y[0] += 5  # outputs start at zero every firing

    @action(outputs={"y": Out("i8", (2,))})
    def threes(state, y):
        y[:] = 3

    @action(inputs={"x": In("i8", (2,))}, outputs={"y": Out("i8", (2,))})
    def copy(state, x, y):
        y[:] = x

    app = App().add("s", threes).add("p", partial).add("c", copy)
    app.connect("s.y", "p.x").connect("s.y", "c.x")
    run = functional_run(app, 2)
    assert run.outputs["p.y"].tolist() == [[5, 0], [5, 0]]
    assert run.outputs["c.y"].tolist() == [[3, 3], [3, 3]]


def test_functional_run_errors():
    assert raised(ConfigError, functional_run, "app", 1) == (
        "app: must be an App, a Module or a Graph, got 'app'")
    app = App().add("c", count).add("i", ident).connect("c.y", "i.x")
    assert raised(ConfigError, functional_run, app, -1) == (
        "iterations: must be an integer >= 0, got -1")
    assert raised(ConfigError, functional_run, app, 1.0) == (
        "iterations: must be an integer, got 1.0")


# ---------------------------------------------------------------- firing on words


def _mixed(state, a, b, c, d, e, f, g, h, k):
    # one type per operation (no promotion), so that numba and numpy agree bit for bit
    f[0, :] = a[0, :]
    f[0, :] += b[()]
    f[1, :] = c[:3, 0]
    f[1, :] += state[1]
    for t in range(3):
        g[t, :] = a[1, :]
        g[t, :] -= t
    g[2, 0] = state[0]
    h[()] = e[0, 0] + e[1, 1]
    k[0] = d[0] and d[1]
    k[1] = b[()] > 0
    state[0] += 1
    state[2] = state[0] * 3


MIXED_PORTS = {
    "inputs": {"a": In("u1", (3,), rate=2),     # padded tokens, several: copied
               "b": In("i2"),                   # one scalar token: a 0-d view
               "c": In("f4", (2,), rate=4),     # tokens fill whole words: a view
               "d": In("?", rate=3),            # copied
               "e": In("c16", (2,), rate=2)},   # a view
    "outputs": {"f": Out("f8", (3,), rate=2),  # view
                "g": Out("i2", (3,), rate=3),   # copied
                "h": Out("c8"),                 # view, 8 bytes
                "k": Out(bool, (2,))},          # view, padded
    "state": ("i4", (3,)),
}
mixed_py = action(_mixed, name="mixed_py", **MIXED_PORTS)
mixed_jit = action(numba.njit(_mixed), name="mixed_jit", **MIXED_PORTS)


def _random_inputs(act: Action, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for port in act.inputs:
        raw = rng.integers(0, 256, size=port.rate * port.token_bytes, dtype=np.uint8)
        if port.dtype == np.bool_:
            raw &= 1
        arr = raw.view(port.dtype).reshape(port.arg_shape)
        if port.dtype.kind in "fc":  # finite values, so that comparisons are exact
            arr = rng.normal(size=port.arg_shape).astype(port.dtype)
            if port.dtype.kind == "c":
                arr = arr + 1j * rng.normal(size=port.arg_shape).astype(port.dtype)
        out.append(np.asarray(arr, order="C"))
    return out


@pytest.mark.parametrize("act", [mixed_py, mixed_jit], ids=["python", "njit"])
def test_words_agree_with_typed_calls(act):
    assert act.is_jit == (act is mixed_jit)
    adapter = compiled(act)
    assert (adapter is None) == (act is mixed_py)
    if adapter is not None:
        assert compiled(act) is adapter  # compiled once per action
    rng = np.random.default_rng(2024)
    for _ in range(25):
        inputs = _random_inputs(act, rng)
        state0 = rng.integers(-100, 100, size=3).astype("i4")
        # the typed call, directly
        state = state0.copy()
        typed = act.fire(state, *inputs)
        # the same firing on words
        in_w = np.concatenate([pack_tokens(p, x) for p, x in zip(act.inputs, inputs,
                                                                  strict=True)])
        assert in_w.size == act.in_words
        runs = [("fire_words", lambda s, i, o: fire_words(act, s, i, o))]
        if adapter is not None:
            runs.append(("compiled", adapter))
        for label, fire in runs:
            state_w = act.pack_state(state0)
            out_w = np.zeros(act.out_words, np.uint64)
            fire(state_w, in_w, out_w)
            assert act.unpack_state(state_w).tolist() == state.tolist(), label
            for port, at, want in zip(act.outputs, act.out_offsets, typed, strict=True):
                got = unpack_tokens(port, out_w[at:at + port.block_words])
                assert got.reshape(port.arg_shape).tobytes() == want.tobytes(), (label, port)
            # padding stays zero
            expect = np.concatenate([pack_tokens(p, t) for p, t in zip(act.outputs, typed,
                                                                       strict=True)])
            assert out_w.tolist() == expect.tolist(), label


def test_plain_and_jit_functions_give_the_same_functional_run():
    cols = {}
    for name, wrap in (("py", lambda f: f), ("jit", numba.njit)):
        def body(state, x, y):
            y[0] = x * 2 + state[0]
            y[1] = x - state[0]
            state[0] += 1

        twice = action(wrap(body), inputs={"x": In("f8", (2,))},
                       outputs={"y": Out("f8", (2,), rate=2)}, state=("f8", (1,)), name=name)
        app = App().add("r", ramp).add("t", twice).connect("r.y", "t.x")
        cols[name] = functional_run(app, 3).outputs["t.y"]
    assert cols["py"].tolist() == cols["jit"].tolist()
    assert cols["py"][:2].tolist() == [[2.0, -2.0], [1.0, -1.0]]


def test_adapter_runs_inside_a_kernel():
    # an executor kernel takes any adapter as a first-class function of one type
    @numba.njit
    def kernel(fire, state_w, in_w, out_w):
        for _ in range(3):
            out_w[:] = 0
            fire(state_w, in_w, out_w)

    assert FIRE_TYPE is not None
    adapter = compiled(mixed_jit)
    inputs = _random_inputs(mixed_jit, np.random.default_rng(1))
    in_w = np.concatenate([pack_tokens(p, x) for p, x in zip(mixed_jit.inputs, inputs,
                                                              strict=True)])
    state_w = mixed_jit.pack_state([0, 0, 0])
    kernel(adapter, state_w, in_w, np.zeros(mixed_jit.out_words, np.uint64))
    assert mixed_jit.unpack_state(state_w).tolist() == [3, 0, 9]


def test_compile_errors_are_one_line():
    @numba.njit
    def broken(state, x, y):
        y[...] = x.no_such_attribute

    act = action(broken, inputs={"x": In("f8")}, outputs={"y": Out("f8")})
    text = raised(WavesError, compiled, act)
    assert text.startswith("waves: broken does not compile for its ports (x: float64(), "
                           "y: float64()): ")
    half = action(numba.njit(_noop), inputs={"x": In("f2")}, name="half")
    assert raised(WavesError, compiled, half) == (
        "waves: half.x: Numba does not support float16; use a plain Python function")
    assert raised(ConfigError, compiled, _noop).startswith("action: must be an Action")


def test_fire_words_checks_its_arrays():
    act = mixed_py
    good = [np.zeros(n, np.uint64) for n in (act.state_words, act.in_words, act.out_words)]
    text = raised(ConfigError, fire_words, act, good[0], np.zeros(3, np.uint64), good[2])
    assert text == f"mixed_py.in_w: must be {act.in_words} words long, got 3"
    text = raised(ConfigError, fire_words, act, good[0], good[1], np.zeros(act.out_words))
    assert text == "mixed_py.out_w: must be a contiguous uint64[::1] array, got 'ndarray'"


def test_without_jit_everything_runs_as_python():
    code = (
        "import numba\n"
        "from tidesim.waves import App, In, Out, action, compiled, functional_run\n"
        "@action(outputs={'y': Out('i8', rate=2)}, state=('i8', ()))\n"
        "@numba.njit\n"
        "def c(state, y):\n"
        "    y[0] = state\n"
        "    y[1] = state + 1\n"
        "    state[...] += 2\n"
        "app = App().add('c', c)\n"
        "assert compiled(c) is None and not c.is_jit\n"
        "print(functional_run(app, 2).outputs['c.y'].tolist())\n"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0, 1, 2, 3]"


# ---------------------------------------------------------------- docstrings


@pytest.mark.parametrize("name", ["tidesim.waves", "tidesim.waves._ports",
                                  "tidesim.waves._action", "tidesim.waves._graph",
                                  "tidesim.waves._functional", "tidesim.waves._compile"])
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
