"""The scheduler, the independent checker and the logical-time executor.

The executor's outputs are compared with the functional execution of the SDF
graph (sequential plain Python, no calendars: separate code), on random
graphs, networks, latencies and placements; the checker is shown to catch
broken schedules.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidesim.calendars import (
    Crash,
    Hardware,
    LogicalNetwork,
    ScheduleError,
    build_tables,
    calendars_of,
    check_schedule,
    execute,
    place,
    schedule,
)
from tidesim.calendars._run import outputs_equal
from tidesim.errors import ConfigError
from tidesim.waves import App, In, Out, action, functional_run

DTYPES = ("i8", "u1", "i4", "i2")


def _modulus(dtype: str) -> int:
    return {"i8": 1 << 40, "u1": 256, "i4": 1 << 20, "i2": 1 << 12}[dtype]


def _mixer(n_in: int, moduli: list[int], salt: int):
    """A plain-Python action whose outputs depend on every input word and position."""

    def fire(state, *arrays):
        acc = int(state[0]) * 1_000_003 + salt
        for a in arrays[:n_in]:
            flat = np.asarray(a).astype(np.int64).ravel()
            acc = (acc * 31 + int((flat * (np.arange(flat.size) + 1)).sum())) % (1 << 50)
        for o, (out, mod) in enumerate(zip(arrays[n_in:], moduli, strict=True)):
            flat = out.reshape(-1)
            for k in range(flat.size):
                flat[k] = (acc + 7 * k + 13 * o) % mod
        state[0] = acc % (1 << 40)

    return fire


@st.composite
def sdf_apps(draw):
    """A random consistent, live SDF graph: a DAG plus back edges with one
    iteration of initial tokens, multi-rate, multi-word and sub-word tokens."""
    n = draw(st.integers(1, 5))
    q = [draw(st.integers(1, 3)) for _ in range(n)]
    q = [v // math.gcd(*q) for v in q]  # the graph is connected: q is the smallest
    edges = []  # (src, dst, dtype, shape, p, c, d)
    for j in range(1, n):
        for i in draw(st.sets(st.integers(0, j - 1), min_size=1, max_size=2)):
            edges.append((i, j))
    for _ in range(draw(st.integers(0, 2))):
        a, b = sorted(draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2)))
        edges.append((b, a))  # backwards (or a self-loop when a == b)
    specs = []
    for i, j in edges:
        g = math.gcd(q[i], q[j])
        m = draw(st.integers(1, 2))
        p, c = m * q[j] // g, m * q[i] // g
        dtype = draw(st.sampled_from(DTYPES))
        shape = draw(st.sampled_from([(), (2,), (3,), (2, 2)]))
        per_iter = q[i] * p
        back = j <= i
        d = per_iter if back else draw(st.integers(0, per_iter))
        specs.append((i, j, dtype, shape, p, c, d))
    app = App("random")
    for a in range(n):
        ins = {f"i{k}": In(s[2], s[3], rate=s[5]) for k, s in enumerate(specs) if s[1] == a}
        outs = {f"o{k}": Out(s[2], s[3], rate=s[4]) for k, s in enumerate(specs) if s[0] == a}
        outs["out"] = Out("i8")
        moduli = [_modulus(s[2]) for k, s in enumerate(specs) if s[0] == a] + [1 << 40]
        act = action(inputs=ins, outputs=outs, state=("i8", (1,)),
                     cycles=draw(st.integers(1, 2)))(_mixer(len(ins), moduli, salt=a))
        app.add(f"a{a}", act, state=np.array([a + 1]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    for k, (i, j, dtype, shape, _p, _c, d) in enumerate(specs):
        init = rng.integers(0, _modulus(dtype), size=(d, *shape)).astype(dtype)
        app.connect(f"a{i}.o{k}", f"a{j}.i{k}", initial=init if d else None)
    return app


@st.composite
def networks(draw, n_min: int = 1):
    """A random connected network, logical latencies from physical delays and
    per-node epochs (so some λ' are negative)."""
    n = draw(st.integers(max(1, n_min), 6))
    pairs = {(draw(st.integers(0, k - 1)), k) for k in range(1, n)}  # a spanning tree
    for _ in range(draw(st.integers(0, n))):
        a, b = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    links = [(a, b) for a, b in sorted(pairs)] + [(b, a) for a, b in sorted(pairs)]
    epoch = [draw(st.integers(-20, 20)) for _ in range(n)]
    lat = [draw(st.integers(1, 25)) + epoch[a] - epoch[b] for a, b in links]
    if not links:
        return LogicalNetwork(1, np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64))
    return LogicalNetwork(n, np.array(links), np.array(lat))


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes()
        and np.asarray(a[k]).shape == np.asarray(b[k]).shape for k in a)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(app=sdf_apps(), net=networks(), data=st.data())
def test_random_apps_run_in_logical_time_as_in_the_functional_execution(app, net, data):
    graph = app.graph()
    nodes = data.draw(st.lists(st.integers(0, net.n_nodes - 1), min_size=len(graph.instances),
                               max_size=len(graph.instances)))
    sched = schedule(graph, net, nodes)
    check_schedule(sched)
    n_iter = sched.stages + 2
    run = execute(sched, n_iter)
    ref = functional_run(graph, n_iter)
    assert _same(run.outputs, ref.outputs)
    assert _same(run.states, ref.states)
    assert not any(v.any() for v in run.corrupted.values())


# -- a fixed app for the targeted checks ----------------------------------------------


@action(inputs={"x": In("i8", (2,))}, outputs={"y": Out("i8", (2,)), "o": Out("i8")},
        state=("i8", (1,)))
def _stage(state, x, y, o):
    state[0] += 1
    y[0] = x[0] + x[1] + state[0]
    y[1] = x[0] * 3 + 1
    o[...] = x[0]


def _ring_app(n: int) -> App:
    app = App("ring")
    for i in range(n):
        app.add(f"s{i}", _stage)
    for i in range(n):
        app.connect(f"s{i}.y", f"s{(i + 1) % n}.x", initial=np.array([[i, 2 * i]]))
    return app


def _line(n: int, lat: int = 4) -> LogicalNetwork:
    links = [(i, i + 1) for i in range(n - 1)] + [(i + 1, i) for i in range(n - 1)]
    return LogicalNetwork(n, np.array(links), np.full(len(links), lat))


@pytest.fixture(scope="module")
def ring_schedule():
    # on a line, the wrap-around edge s3 -> s0 takes three hops through switches
    return schedule(_ring_app(4).graph(), _line(4), "one-to-one")


def test_the_fixed_schedule_uses_switches_and_matches(ring_schedule):
    sched = ring_schedule
    assert max(len(h) for h in sched.hops) == 3
    tables = build_tables(sched)
    assert (tables.switch_in >= 0).sum() == 2 * 2  # two words, two forwarding hops
    check_schedule(sched)
    run = execute(sched, 12)
    assert _same(run.outputs, functional_run(sched.graph, 12).outputs)


def _mutant(sched, **changes):
    return dataclasses.replace(sched, **changes)


def test_checker_catches_a_send_one_metacycle_late(ring_schedule):
    sends = ring_schedule.sends.copy()
    sends[0, 3] += ring_schedule.metacycle_cycles
    with pytest.raises(ScheduleError):
        check_schedule(_mutant(ring_schedule, sends=sends))


def test_checker_catches_a_frame_written_to_the_wrong_word(ring_schedule):
    sends = ring_schedule.sends.copy()
    sends[0, 5] = sends[1, 5]
    with pytest.raises(ScheduleError, match="reads"):
        check_schedule(_mutant(ring_schedule, sends=sends))


def test_checker_catches_a_consumer_that_fires_too_early(ring_schedule):
    fire = ring_schedule.fire.copy()
    M = ring_schedule.metacycle_cycles
    fire[1, 3] -= M  # a whole metacycle early: it reads the previous iteration's token
    with pytest.raises(ScheduleError):
        check_schedule(_mutant(ring_schedule, fire=fire))


def test_checker_catches_a_tx_word_overwritten_before_it_is_sent(ring_schedule):
    sends = ring_schedule.sends.copy()
    fire = ring_schedule.fire.copy()
    s = 0
    src = int(np.flatnonzero(fire[:, 0] == ring_schedule.graph.edges[sends[s, 0]].src)[0])
    sends[s, 3] = fire[src, 3] + ring_schedule.metacycle_cycles + 1
    with pytest.raises(ScheduleError, match="overwritten"):
        check_schedule(_mutant(ring_schedule, sends=sends))


def test_checker_catches_a_link_slot_driven_twice(ring_schedule):
    tables = build_tables(ring_schedule)
    l, x = (int(v[0]) for v in np.nonzero(tables.switch_in >= 0))
    ga = tables.gather_addr.copy()
    ga[l, x] = 0
    with pytest.raises(ScheduleError, match="both drive"):
        check_schedule(ring_schedule, dataclasses.replace(tables, gather_addr=ga))


def test_checker_catches_two_firings_at_once(ring_schedule):
    fire = ring_schedule.fire.copy()
    placement = ring_schedule.placement.copy()
    placement[:] = 0
    fire[:, 2] = 0
    fire[:, 3] = 0
    with pytest.raises(Exception, match="twice|two firings"):
        check_schedule(_mutant(ring_schedule, fire=fire, placement=placement))


# -- calendars, placement, limits ----------------------------------------------------


def test_calendars_of_a_schedule_expand_to_its_tables(ring_schedule):
    tables = build_tables(ring_schedule)
    net = ring_schedule.network
    for n, cals in enumerate(calendars_of(ring_schedule, tables)):
        assert cals["gather"].metacycle_cycles == ring_schedule.metacycle_cycles
        assert np.array_equal(cals["gather"].expand(), tables.gather_addr[net.out_links[n]].T)
        assert np.array_equal(cals["scatter"].expand(), tables.scatter_addr[net.in_links[n]].T)
        sw = cals["switch"].expand()
        for k, l in enumerate(net.out_links[n]):
            got = sw[:, k]
            want = tables.switch_in[l]
            assert ((got == 0) == (want < 0)).all()
            assert (net.in_links[n][got[got > 0] - 1] == want[want >= 0]).all()


def test_greedy_placement_spreads_and_schedules():
    graph = _ring_app(6).graph()
    net = LogicalNetwork.ring(3, latency_cycles=2)
    nodes = place(graph, net, "greedy")
    assert set(nodes.tolist()) <= {0, 1, 2}
    sched = schedule(graph, net, nodes)
    check_schedule(sched)


def test_optimal_placement_is_no_worse_than_greedy_on_makespan():
    graph = _ring_app(5).graph()
    net = LogicalNetwork.ring(3, latency_cycles=2)
    load = lambda nodes: np.bincount(nodes, minlength=3).max()  # noqa: E731
    best = place(graph, net, "optimal")
    assert load(best) <= load(place(graph, net, "greedy"))
    assert load(best) == 2
    check_schedule(schedule(graph, net, best))


def test_one_to_one_placement_needs_enough_nodes():
    with pytest.raises(ConfigError, match="needs 5 nodes for 5 instances, the topology has 3"):
        schedule(_ring_app(5).graph(), LogicalNetwork.ring(3), "one-to-one")


@pytest.mark.parametrize("how", ["greedy", "optimal", "one-to-one"])
def test_every_placement_keeps_pinned_instances(how):
    app = App("ring")
    pins = {0: 2, 3: 0, 4: 2}
    for i in range(5):
        app.add(f"s{i}", _stage, node=pins.get(i))
    for i in range(5):
        app.connect(f"s{i}.y", f"s{(i + 1) % 5}.x", initial=np.array([[i, 2 * i]]))
    graph = app.graph()
    assert [x.node for x in graph.instances] == [2, None, None, 0, 2]
    net = LogicalNetwork.ring(5 if how == "one-to-one" else 3, latency_cycles=2)
    nodes = place(graph, net, how)
    assert [nodes[i] for i in pins] == list(pins.values())
    if how == "one-to-one":
        assert nodes[[1, 2]].tolist() == [1, 2]
    sched = schedule(graph, net, how)
    check_schedule(sched)
    assert outputs_equal(execute(sched, 3).outputs, functional_run(graph, 3).outputs)


def test_a_module_pin_applies_to_its_unpinned_actions():
    inner = App("pair").add("a", _stage).add("b", _stage, node=1).connect("a.y", "b.x")
    inner.expose("x", "a.x").expose("y", "b.y")
    app = App("top").add("m", inner, node=3).add("t", _stage)
    app.connect("m.y", "t.x").connect("t.y", "m.x", initial=np.array([[1, 2]]))
    assert [(x.name, x.node) for x in app.graph().instances] == [
        ("m.a", 3), ("m.b", 1), ("t", None)]


def test_bad_pins_are_one_line():
    with pytest.raises(ConfigError, match=r"^ring\.s0\.node: must be an integer >= 0, got -1$"):
        App("ring").add("s0", _stage, node=-1)
    app = App("ring").add("s0", _stage, node=7).connect("s0.y", "s0.x",
                                                        initial=np.array([[1, 2]]))
    with pytest.raises(ConfigError, match=r"^s0\.node: the app needs node 7, the topology has "
                                          r"3 nodes \(0 \.\. 2\), got 7$"):
        place(app.graph(), LogicalNetwork.ring(3), "greedy")


def test_more_than_one_iteration_of_initial_tokens_is_refused():
    bad = App("bad").add("a", _stage).add("b", _stage)
    bad.connect("a.y", "b.x", initial=np.zeros((2, 2), dtype=np.int64))
    bad.connect("b.y", "a.x", initial=np.zeros((1, 2), dtype=np.int64))
    with pytest.raises(ConfigError, match="at most one iteration of tokens"):
        schedule(bad.graph(), LogicalNetwork.ring(2), "one-to-one")


def test_a_forced_metacycle_too_short_is_refused():
    with pytest.raises(ConfigError, match="metacycle_cycles: is too short"):
        schedule(_ring_app(4).graph(), _line(4), "one-to-one", metacycle_cycles=2)


def test_hardware_limits_are_enforced(ring_schedule):
    graph = _ring_app(4).graph()
    with pytest.raises(ConfigError, match="hardware.rx_words: is too small: node 0 needs"):
        schedule(graph, _line(4), "one-to-one", hardware=Hardware(rx_words=1))
    with pytest.raises(ConfigError, match="calendar_depth"):
        schedule(graph, _line(4), "one-to-one", hardware=Hardware(calendar_depth=1))


def test_negative_cycles_of_latency_are_refused():
    with pytest.raises(ConfigError, match="must sum to >= 0 around every directed cycle"):
        LogicalNetwork(2, np.array([[0, 1], [1, 0]]), np.array([3, -5]))


# -- fault injection ------------------------------------------------------------------


def test_bit_flips_are_seeded_and_marked(ring_schedule):
    clean = execute(ring_schedule, 30)
    a = execute(ring_schedule, 30, flip_probability=0.02, seed=1)
    b = execute(ring_schedule, 30, flip_probability=0.02, seed=1)
    c = execute(ring_schedule, 30, flip_probability=0.02, seed=2)
    assert _same(a.outputs, b.outputs) and a.first_corrupted() == b.first_corrupted()
    assert not _same(a.outputs, c.outputs)
    name, token = a.first_corrupted()
    # before the first corrupted token every output is right
    for out, values in a.outputs.items():
        bad = a.corrupted[out]
        assert np.array_equal(values[~bad][: token], clean.outputs[out][~bad][: token])
    assert not _same(a.outputs, clean.outputs)


def test_a_crashed_node_corrupts_its_outputs_from_that_metacycle(ring_schedule):
    run = execute(ring_schedule, 20, crash=Crash(node=2, metacycle=6))
    assert run.corrupted["s2.o"][: 6 - ring_schedule.stages].sum() == 0
    assert run.corrupted["s2.o"][6:].all()
    assert run.first_corrupted()[1] <= 6


def test_a_buffer_fault_corrupts_what_crosses_the_link_afterwards(ring_schedule):
    fc = np.full(ring_schedule.network.n_links, -1)
    fc[0] = 40
    run = execute(ring_schedule, 20, fault_cycles=fc)
    first = run.first_corrupted()
    assert first is not None
    clean = execute(ring_schedule, 20)
    assert not clean.first_corrupted()
    assert _same(clean.outputs, functional_run(ring_schedule.graph, 20).outputs)


def test_memory_beyond_the_hardware_is_refused_before_scheduling(monkeypatch):
    """The memory layout is known before any metacycle is tried: an app too
    big for the Tx memory is refused without a single attempt (scheduling
    it word by word could take minutes)."""
    from tidesim.calendars import _schedule
    from tidesim.waves.apps import get_app

    tried = []
    monkeypatch.setattr(_schedule._Plan, "attempt", lambda self, M: tried.append(M))
    app = get_app("allreduce-ring", 5, length=8192)
    with pytest.raises(ConfigError, match=r"^hardware.tx_words: is too small: node \d needs "):
        schedule(app.graph(), LogicalNetwork.ring(5, latency_cycles=4), "one-to-one",
                 hardware=Hardware())
    assert tried == []
