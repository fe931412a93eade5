"""The atom runtime: interrupt and future tables, the main thread's waits,
the packet network's CLI and its bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tidesim.packetnet import Atom, Deadlock, interrupt, routes, run_atoms


class Counter(Atom):
    """Node 0 sends three "tick"s and a request whose reply completes a future."""

    def __init__(self) -> None:
        self.ticks = 0
        self.replies: list = []
        self.answered = False

    async def invoke(self, rt):
        if rt.node == 0:
            for k in range(3):
                rt.send(1, "tick", k, size_bytes=0)
            fid = rt.future(lambda rt, p: self.replies.append(p.payload))
            rt.send(1, "ask", fid, size_bytes=0)
            other = await rt.recv("other")
            await rt.until(lambda: self.replies)
            return self.replies, other.payload
        await rt.until(lambda: self.ticks == 3 and self.answered)
        return self.ticks

    @interrupt("tick")
    def on_tick(self, rt, p):
        self.ticks += 1

    @interrupt("ask")
    async def on_ask(self, rt, p):
        await rt.sleep(1.0)  # compute before the answer
        rt.send(p.source, "answer", rt.time_s, size_bytes=0, future=p.payload)
        rt.send(p.source, "answer", "late", size_bytes=0, future=p.payload)
        rt.send(p.source, "other", "kept", size_bytes=0)
        self.answered = True


def test_interrupts_run_per_packet_and_futures_once():
    run = run_atoms([Counter(), Counter()], latency_s=0.5, rate_bytes_per_s=1e9)
    (replies, other), ticks = run.results
    assert ticks == 3
    # the future took the first answer only; the second had no handler left
    # and nobody asked for it
    assert replies == [1.5]  # sent after 0.5 s of latency and 1 s of compute
    assert other == "kept"
    assert run.messages == 7


class Blocker(Atom):
    async def invoke(self, rt):
        if rt.node == 0:
            rt.send(1, "go")
        await rt.until(lambda: False)

    @interrupt("go")
    async def on_go(self, rt, p):
        await rt.recv("never")


def test_a_handler_may_not_wait_for_packets():
    with pytest.raises(RuntimeError, match=r"^node 1: recv\(\) in a handler"):
        run_atoms([Blocker(), Blocker()], latency_s=0.1, rate_bytes_per_s=1.0)


class Waits(Atom):
    async def invoke(self, rt):
        if rt.node:
            await rt.recv("hello")


def test_a_deadlock_names_the_waiting_nodes():
    with pytest.raises(Deadlock) as exc:
        run_atoms([Waits(), Waits(), Waits()], latency_s=0.1, rate_bytes_per_s=1.0)
    msg = str(exc.value)
    assert msg.startswith("deadlock at t = 0 s: nothing is scheduled and 2 task(s) wait: ")
    assert "node 1 (Waits)" in msg and "node 2 (Waits)" in msg and "node 0" not in msg


def test_packets_to_a_finished_node_do_not_extend_the_run():
    class Late(Atom):
        async def invoke(self, rt):
            if rt.node == 0:
                rt.send(1, "x", size_bytes=100)  # lands at 0.5 + 100 s, after node 1 ended
                return rt.time_s
            await rt.sleep(2.0)
            return rt.time_s

    run = run_atoms([Late(), Late()], latency_s=0.5, rate_bytes_per_s=1.0)
    assert run.time_s == 2.0 and run.finish_s == [0.0, 2.0]


def test_routes_are_shortest_paths_with_the_lowest_neighbour_first():
    ring = [(0, 1), (1, 2), (2, 3), (3, 0), (1, 0), (2, 1), (3, 2), (0, 3)]
    hop = routes(4, ring)
    assert hop[0].tolist() == [0, 1, 1, 3]  # to 2: via 1 or 3, takes 1
    assert hop[2].tolist() == [1, 1, 2, 3]
    line = routes(3, [(0, 1), (1, 2)])  # one-way links
    assert line[0].tolist() == [0, 1, 1] and line[2].tolist() == [-1, -1, 2]


def test_bad_input_is_one_line():
    from tidesim.errors import ConfigError
    from tidesim.packetnet import allreduce

    with pytest.raises(ConfigError, match=r"^nodes: must be an integer >= 1, got 0$"):
        allreduce("tree", 0, 0.1, 1.0, 10)
    with pytest.raises(ConfigError, match=r"^latency_s: must be >= 0, got -1$"):
        allreduce("tree", 2, -1, 1.0, 10)
    with pytest.raises(ConfigError, match=r"^size: must be an integer, got 2.5$"):
        allreduce("tree", 2, 0.1, 1.0, 2.5)
    with pytest.raises(ConfigError, match=r"^algorithm: must be one of naive, tree, stream"):
        allreduce("ring", 2, 0.1, 1.0, 10)
    with pytest.raises(ConfigError, match=r"^send.dest: must be an integer in \[0, 1\], got 5$"):
        class Stray(Atom):
            async def invoke(self, rt):
                rt.send(5, "x")
        run_atoms([Stray(), Stray()], latency_s=0.1, rate_bytes_per_s=1.0)


# --------------------------------------------------------------------------- the command line

def tidesim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tidesim", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_prints_the_published_table():
    from test_packetnet import PUBLISHED_TABLE

    r = tidesim("packetnet", "table")
    assert r.returncode == 0, r.stderr
    assert r.stdout == PUBLISHED_TABLE + "\n"


def test_cli_allreduce_prints_one_cell_as_json():
    r = tidesim("packetnet", "allreduce", "--nodes", "32", "--latency", "0.0001", "--rate",
                "1e9", "--size", "1e7", "--algorithm", "stream", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert f"{out['time_s']:f}" == "0.358567"
    assert out["messages"] == 32 * (4 * 32 - 2) and out["nodes"] == 32


DEADLOCK = """
from tidesim.packetnet import Atom

class Stuck(Atom):
    def __init__(self, length, vector=None):
        pass

    async def invoke(self, rt):
        await rt.recv("never")
"""


@pytest.mark.parametrize(("flags", "line"), [
    (["--nodes", "0"], "--nodes: must be an integer >= 1, got 0"),
    (["--latency", "-0.5"], "--latency: must be >= 0, got -0.5"),
    (["--rate", "-1"], "--rate: must be > 0, got -1.0"),
    (["--size", "2.5"], "--size: must be an integer >= 1, got '2.5'"),
    (["--algorithm", "ring"],
     "--algorithm: must be one of naive, tree, stream or FILE.py:CLASS, got 'ring'"),
])
def test_cli_bad_input_is_one_line_and_exit_2(flags, line):
    base = {"--nodes": "4", "--latency": "0.1", "--rate": "1e6", "--size": "10",
            "--algorithm": "tree"}
    base[flags[0]] = flags[1]
    r = tidesim("packetnet", "allreduce", *[x for kv in base.items() for x in kv])
    assert r.returncode == 2
    assert r.stderr == f"tidesim: error: {line}\n"


def test_cli_a_deadlocked_program_names_the_waiting_tasks(tmp_path):
    prog = tmp_path / "stuck.py"
    prog.write_text(DEADLOCK)
    r = tidesim("packetnet", "allreduce", "--nodes", "3", "--latency", "0.1", "--rate", "1e6",
                "--size", "10", "--algorithm", f"{prog}:Stuck")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("tidesim: error: deadlock at t = 0 s: nothing is scheduled and "
                               "3 task(s) wait: node 0 (Stuck)")
    assert "node 2 (Stuck)" in r.stderr


# --------------------------------------------------------------------------- over links

class Relay(Atom):
    """Node 0 sends two packets to the last node; it notes when each lands."""

    def __init__(self, sizes):
        self.sizes, self.times = sizes, []

    async def invoke(self, rt):
        if rt.node == 0:
            for s in self.sizes:
                rt.send(rt.n_nodes - 1, "p", size_bytes=s)
        elif rt.node == rt.n_nodes - 1:
            for _ in self.sizes:
                await rt.recv("p")
                self.times.append(rt.time_s)
            return self.times


def test_links_store_and_forward_hop_by_hop_in_fifo_order():
    """A line 0 -> 1 -> 2 with latencies 0.5 and 0.25 s at 10 B/s: the first
    packet (20 B) takes 2 + 0.5 + 2 + 0.25; the second (10 B) waits for the
    first on each link: it leaves node 0 at 3 and node 1 at 4.5 (after the
    first), and lands at 4.5 + 1 + 0.25."""
    from tidesim.packetnet._links import run_on_links

    atoms = [Relay([20, 10]) for _ in range(3)]
    run = run_on_links(atoms, [(0, 1), (1, 0), (1, 2), (2, 1)], [0.5, 0.5, 0.25, 0.25], 10.0)
    assert run.results[2] == [4.75, 5.75]
    assert run.time_s == 5.75 and run.messages == 2 and run.bytes == 30


def test_links_refuse_a_network_that_is_not_connected():
    from tidesim.errors import ConfigError
    from tidesim.packetnet._links import run_on_links

    with pytest.raises(ConfigError, match=r"^atoms: must be connected: every node must reach "
                                          r"every other over the links, got 'node 1 -> node 0'$"):
        run_on_links([Relay([1]) for _ in range(2)], [(0, 1)], [0.1], 1.0)


def test_in_process_atoms_run_over_the_systems_links():
    """The in-process backend runs atoms over the topology's links at one
    64-bit frame per tick: a lone 8-byte packet between neighbours takes one
    tick plus the link's latency."""
    from tidesim.backends import make_backend
    from tidesim.config import build_system, load_config, validate

    sysm = build_system(validate(load_config({"preset": "hitl-cycle5"})))
    with make_backend("inprocess").start(sysm) as run:
        got = run.run_atoms([Relay([8]) for _ in range(sysm.n_nodes)])
    # node 0 -> node 4 is one link of the cycle
    k = sysm.topology.link_index(0, sysm.n_nodes - 1)
    assert got.results[-1] == [8 / (8 * sysm.f_nom_hz) + sysm.topology.latency_s[k]]


def test_cli_table_as_json(capsys):
    from test_packetnet import PUBLISHED_TABLE

    from tidesim.cli import main

    assert main(["packetnet", "table", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 15 and set(rows[0]) == {"nodes", "latency_s", "rate_bytes_per_s", "size",
                                                "naive", "tree", "stream"}
    last = PUBLISHED_TABLE.splitlines()[-1].strip("| ").split(" | ")
    assert [f"{rows[-1][k]:f}" for k in ("naive", "tree", "stream")] == last[4:]
