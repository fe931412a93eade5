"""A logical-time run node by node gives the whole-network executor's results.

Each node runs on its own thread with its own :class:`Execution`, and frames
travel through queues (a :class:`FramePort` written here, apart from the
sockets the backends use). The merged result must equal
:func:`tidesim.calendars.execute` bit for bit: outputs, taints, states, for
every app, with negative and zero link latencies, bit flips, a crash and
buffer faults, and with chunk sizes from one step up.
"""

from __future__ import annotations

import queue
import threading

import numpy as np
import pytest

from tidesim.calendars import Crash, LogicalNetwork, execute, schedule
from tidesim.calendars._executor import Execution
from tidesim.calendars._nodes import CHUNK_STEPS, FramePort, needed_slots, run_node
from tidesim.errors import ConfigError, SimulationFault
from tidesim.waves import App, In, Out, action
from tidesim.waves.apps import app_names, get_app

N_NODES = 4


# plain Python actions (fired by the interpreter, between kernel calls)
@action(outputs={"y": Out("i8", rate=2)}, state=("i8", ()))
def count2(state, y):
    y[0] = state + 1
    y[1] = state * 3
    state[...] += 2


@action(inputs={"x": In("i8", rate=2)}, outputs={"y": Out("i8")})
def pair(state, x, y):
    y[...] = 10 * x[0] + x[1]


@action(inputs={"x": In("i8"), "fb": In("i8")}, outputs={"y": Out("i8")}, state=("i8", ()))
def mix(state, x, fb, y):
    state[...] ^= x * 7 + fb
    y[...] = state


@action(inputs={"x": In("i8")}, outputs={"y": Out("i8")})
def probe(state, x, y):
    y[...] = x


def python_app():
    """A multi-rate source, then a ring of four Python stages, each fed
    back by its successor."""
    app = App().add("c", count2).add("p", pair).connect("c.y", "p.x")
    for k in range(N_NODES):
        app.add(f"m{k}", mix)
    app.connect("p.y", "m0.x")
    for k in range(1, N_NODES):
        app.connect(f"m{k - 1}.y", f"m{k}.x", initial=[k])
    for k in range(N_NODES):
        app.connect(f"m{(k + 1) % N_NODES}.y", f"m{k}.fb", initial=[-k])
    app.add("probe", probe).connect(f"m{N_NODES - 1}.y", "probe.x")
    return app.graph()


def graph_of(app: str):
    return python_app() if app == "python" else get_app(app, N_NODES).graph()


def placement_of(app: str):
    # spread over every node, so that Python firings send frames on every link
    return [0, 1, 2, 3, 0, 1, 3] if app == "python" else "greedy"


class QueuePort(FramePort):
    def __init__(self, inboxes: list[queue.Queue], own: int, ex: Execution) -> None:
        self.inboxes, self.own, self.ex = inboxes, own, ex

    def send(self, frames) -> None:
        self.inboxes[int(self.ex.ldst[frames.link])].put(frames)

    def recv(self, wait_for):
        box, got = self.inboxes[self.own], []
        if wait_for:
            got.append(box.get(timeout=10.0))
        while True:
            try:
                got.append(box.get_nowait())
            except queue.Empty:
                return got


def node_by_node(sched, n_iter: int, chunk_steps: int, **faults):
    n = sched.network.n_nodes
    inboxes = [queue.Queue() for _ in range(n)]
    parts = [Execution(sched, n_iter, ring_extra=chunk_steps, **faults) for _ in range(n)]
    stats: list = [None] * n
    errors: list = []

    def node(j: int) -> None:
        try:
            stats[j] = run_node(parts[j], j, QueuePort(inboxes, j, parts[j]),
                                chunk_steps=chunk_steps)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=node, args=(j,)) for j in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(box.empty() for box in inboxes), "a frame was sent that nobody read"
    whole = Execution(sched, n_iter, **faults)
    for j in range(n):
        whole.merge(parts[j].part(j))
    return whole.result(0.0), stats


def same_run(got, want) -> None:
    assert got.digest() == want.digest()
    assert got.first_corrupted() == want.first_corrupted()
    assert got.corrupted.keys() == want.corrupted.keys()
    for k in want.corrupted:
        assert np.array_equal(got.corrupted[k], want.corrupted[k]), k
    assert got.states.keys() == want.states.keys()
    for k in want.states:
        assert np.array_equal(np.asarray(got.states[k]), np.asarray(want.states[k])), k


CASES = [(app, trial) for app in (*app_names(), "python")
         for trial in ("plain", "skewed", "faults")]


@pytest.mark.parametrize(("app", "trial"), CASES, ids=[f"{a}-{t}" for a, t in CASES])
def test_node_by_node_is_the_whole_run(app, trial):
    rng = np.random.default_rng([ord(c) for c in app + trial])
    ring = LogicalNetwork.ring(N_NODES)
    # "skewed": latencies as epochs leave them, some negative or zero
    lo = 1 if trial == "plain" else -3
    for _ in range(20):
        lat = rng.integers(lo, 30, ring.n_links)
        try:
            sched = schedule(graph_of(app), LogicalNetwork(N_NODES, ring.links, lat),
                             placement_of(app))
            break
        except (ConfigError, SimulationFault):  # no schedule for this draw: draw again
            continue
    else:
        pytest.fail("no schedulable latencies drawn")
    faults = {}
    if trial == "faults":
        faults = dict(flip_probability=0.01, seed=3, crash=Crash(1, 3),
                      fault_cycles=np.where(rng.random(ring.n_links) < 0.4,
                                            rng.integers(0, 200, ring.n_links), -1))
    want = execute(sched, 12, **faults)
    for chunk in (1, int(rng.integers(2, 60)), CHUNK_STEPS):
        got, stats = node_by_node(sched, 12, chunk, **faults)
        same_run(got, want)
        assert all(s["calls"] >= 1 for s in stats)


def test_only_read_slots_are_needed():
    """The frames a node waits for: scatter slots, and the slot before a switch
    forwards the link."""
    sched = schedule(get_app("allreduce-ring", N_NODES).graph(), LogicalNetwork.ring(N_NODES))
    ex = Execution(sched, 2)
    need = needed_slots(ex)
    T, M = ex.tables, sched.metacycle_cycles
    for link in range(sched.network.n_links):
        for x in range(M):
            forwarded = any(T.switch_in[l2, (x + 1) % M] == link
                            for l2 in range(sched.network.n_links))
            assert need[link, x] == (T.scatter_addr[link, x] >= 0 or forwarded)
