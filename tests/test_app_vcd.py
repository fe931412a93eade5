"""Waveforms of an application run in logical time (``write_app_vcd``).

The file is read back with pyvcd's tokenizer and checked against what the
schedule says and against the counter app's closed form, not against the
tables the writer reads.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_vcd import read_vcd

from tidesim.backends import write_app_vcd
from tidesim.backends.vcd import APP_VCD_LIMIT, gtkw_path
from tidesim.calendars import Crash, LogicalNetwork, execute, schedule
from tidesim.errors import ConfigError
from tidesim.waves.apps import get_app

P = 1000  # ps per step


def series(changes: dict, name: str, steps: int) -> list:
    """The value of signal ``name`` at each step (None before its first change)."""
    out, v, it = [], None, iter(changes[name])
    nxt = next(it, None)
    for q in range(steps):
        while nxt is not None and nxt[0] <= q * P:
            v = nxt[1]
            nxt = next(it, None)
        out.append(v)
    return out


def counter_run(latencies, iterations=4, crash=None):
    n = len(latencies) // 2
    net = LogicalNetwork.ring(n)
    net = LogicalNetwork(n, net.links, np.asarray(latencies, dtype=np.int64))
    sched = schedule(get_app("counter", n).graph(), net)
    return sched, execute(sched, iterations, crash=crash)


@pytest.fixture(scope="module")
def counter_vcd(tmp_path_factory):
    sched, run = counter_run([3, 9, 5, 2, 7, 4, 11, 6])
    path = write_app_vcd(sched, run, tmp_path_factory.mktemp("app") / "counter.vcd",
                         cycle_ps=P)
    changes, header = read_vcd(path)
    return sched, run, path, changes, header


def test_header_clock_and_counters(counter_vcd):
    sched, run, path, changes, header = counter_vcd
    M = sched.metacycle_cycles
    W = run.steps[1] - run.steps[0]
    assert header["timescale"].magnitude == 1 and header["timescale"].unit.value == "ps"
    assert header["last_time"] == W * P
    clk = changes["tidesim.clk"]
    assert clk[:4] == [(0, "1"), (P // 2, "0"), (P, "1"), (P + P // 2, "0")]
    assert len(clk) == 2 * W
    step = series(changes, "tidesim.step", W)
    assert step == list(range(*run.steps))
    for n in range(sched.network.n_nodes):
        cyc = series(changes, f"tidesim.node_{n}.cycle", W)
        assert [c - s for c, s in zip(cyc, step, strict=True)] == [int(run.base[n])] * W
        slot = series(changes, f"tidesim.node_{n}.slot", W)
        meta = series(changes, f"tidesim.node_{n}.metacycle", W)
        last = series(changes, f"tidesim.node_{n}.last_cycle", W)
        assert slot == [c % M for c in cyc] and meta == [c // M for c in cyc]
        assert last == ["1" if c % M == M - 1 else "0" for c in cyc]
    assert gtkw_path(path).read_text().count("tidesim.node_0.") >= 8


def test_firings_at_the_scheduled_cycles(counter_vcd):
    sched, run, _, changes, _ = counter_vcd
    M = sched.metacycle_cycles
    W = run.steps[1] - run.steps[0]
    for inst, _f, node, t, _c in sched.fire.tolist():
        name = sched.graph.instances[inst].name
        cyc = series(changes, f"tidesim.node_{node}.cycle", W)
        fire = series(changes, f"tidesim.node_{node}.fire_{name}", W)
        it = series(changes, f"tidesim.node_{node}.iteration", W)
        want = {t + k * M for k in range(run.iterations)}
        got = {c for c, v in zip(cyc, fire, strict=True) if v == "1"}
        assert got == want
        assert sorted(it[q] for q in range(W) if cyc[q] in want) == list(range(run.iterations))


def test_frames_carry_the_counters(counter_vcd):
    """Counter ``c_i`` sends ``i + k + 1`` in iteration ``k``; the frame leaves on
    the send's cycle from the scheduled Tx word and arrives λ' later in the
    scheduled Rx word."""
    sched, run, _, changes, _ = counter_vcd
    M = sched.metacycle_cycles
    W = run.steps[1] - run.steps[0]
    links = sched.network.links
    seen = 0
    for s, (edge, _j, _w, t_s, tx_addr, rx_addr) in enumerate(sched.sends.tolist()):
        route = sched.hops[s]
        src = int(links[route[0], 0])
        first, last = route[0], route[-1]
        dst = int(links[last, 1])
        assert len(route) == 1  # neighbours on the ring
        out = f"tidesim.node_{src}.link_to_{dst}"
        inn = f"tidesim.node_{dst}.link_from_{src}"
        i = sched.graph.edges[edge].src
        assert sched.graph.instances[i].name == f"c{src}"
        c_src = series(changes, f"tidesim.node_{src}.cycle", W)
        c_dst = series(changes, f"tidesim.node_{dst}.cycle", W)
        frame = series(changes, f"{out}.frame", W)
        tx = series(changes, f"{out}.tx_word", W)
        arr = series(changes, f"{inn}.frame", W)
        rx = series(changes, f"{inn}.rx_word", W)
        for k in range(run.iterations):
            q = c_src.index(t_s + k * M)
            assert frame[q] == src + k + 1 and tx[q] == tx_addr
            q2 = c_dst.index(sched.arrival(s) + k * M)
            assert arr[q2] == src + k + 1 and rx[q2] == rx_addr
            assert q2 - q == int(sched.network.latency_cycles[first] + run.base[src]
                                 - run.base[dst])
            seen += 1
        # an idle link shows x
        busy = sum(isinstance(v, int) for v in frame)
        assert busy == run.iterations
    assert seen == sched.network.n_nodes * run.iterations


def test_a_crashed_node_sends_nothing(tmp_path):
    sched, run = counter_run([3, 9, 5, 2, 7, 4], iterations=5, crash=Crash(1, 2))
    W = run.steps[1] - run.steps[0]
    changes, _ = read_vcd(write_app_vcd(sched, run, tmp_path / "c.vcd", cycle_ps=P))
    meta = series(changes, "tidesim.node_1.metacycle", W)
    frame = series(changes, "tidesim.node_1.link_to_2.frame", W)
    fire = series(changes, "tidesim.node_1.fire_c1", W)
    sent = [m for m, v in zip(meta, frame, strict=True) if isinstance(v, int)]
    fired = [m for m, v in zip(meta, fire, strict=True) if v == "1"]
    assert sent and max(sent) < 2 and fired and max(fired) < 2
    assert sum(isinstance(v, int)
               for v in series(changes, "tidesim.node_2.link_to_0.frame", W)) == 5


def test_window_and_bad_arguments(tmp_path):
    sched, run = counter_run([3, 9, 5, 2, 7, 4])
    g0, g1 = run.steps
    path = write_app_vcd(sched, run, tmp_path / "w.vcd", steps=(g0 + 5, g0 + 12), cycle_ps=P)
    changes, header = read_vcd(path)
    assert series(changes, "tidesim.step", 7) == list(range(g0 + 5, g0 + 12))
    assert header["last_time"] == 7 * P
    for steps, field in (((g0, g0), "vcd.steps[1]"), ((g0 - 1, g1), "vcd.steps[0]"),
                         ((g0, g1 + 1), "vcd.steps[1]"), ("all", "vcd.steps")):
        with pytest.raises(ConfigError, match=field.replace("[", r"\[")):
            write_app_vcd(sched, run, tmp_path / "x.vcd", steps=steps)
    with pytest.raises(ConfigError, match="vcd.cycle_ps"):
        write_app_vcd(sched, run, tmp_path / "x.vcd", cycle_ps=1)
    per_step = 2 * sched.network.n_nodes + 3 * sched.network.n_links
    big = execute(sched, APP_VCD_LIMIT // (per_step * sched.metacycle_cycles) + 2)
    with pytest.raises(ConfigError, match="too large a waveform") as err:
        write_app_vcd(sched, big, tmp_path / "x.vcd")
    assert "\n" not in str(err.value)
