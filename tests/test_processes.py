"""The processes backend as a user of real hardware meets it: a node process
killed, a cable cut, Ctrl-C; nothing left behind.

Real OS processes, real network namespaces and veth pairs, real ``iptables``
and real signals.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tidesim.backends import NodeFailure, make_backend
from tidesim.backends._nodeproc import netns_available
from tidesim.config import build_system, load_config, validate
from tidesim.errors import ConfigError
from tidesim.packetnet import Atom

pytestmark = pytest.mark.backend_processes
PRESET = "hitl-cycle5"


def system(**overrides):
    return build_system(validate(load_config({"preset": PRESET, **overrides})))


def our_netns() -> list[str]:
    if shutil.which("ip") is None:
        return []
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines()
            if line.startswith(f"tidesim-{os.getpid()}-")]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_gone(pids, timeout_s=3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.02)
    return False


def test_killed_node_is_named_within_5_s_and_leaves_nothing():
    run = make_backend("processes").start(system())
    pids = list(run.pids)
    run.advance(0.5)
    assert set(run.health().values()) == {"up"}
    os.kill(pids[2], signal.SIGKILL)
    t0 = time.monotonic()
    with pytest.raises(NodeFailure) as info:
        run.advance(5.0)
    assert time.monotonic() - t0 < 5.0
    exc = info.value
    assert str(exc).startswith(f"node 2: process {pids[2]} died (killed by signal 9); "
                               "the run stopped at t=0.5 s")
    assert "\n" not in str(exc)
    assert (exc.node, exc.link, exc.time_s) == (2, None, 0.5)
    # the partial trace: the run up to where every node was
    assert exc.trace is not None and exc.trace.until_s == 0.5
    want = system().run(until_s=0.5, record="summary")
    assert exc.trace.summary() == want.summary()
    assert run.health()[2] == "dead" and run.stopped
    assert wait_gone(pids) and our_netns() == []


def test_node_killed_while_running_calendars_is_named():
    """The logical-time phase: the dead node's neighbours stop waiting for its
    frames, and the run names the node."""
    from tidesim.calendars import LogicalNetwork, schedule
    from tidesim.waves.apps import get_app

    sysm = system()
    net = LogicalNetwork(sysm.n_nodes, sysm.topology.links, [5] * len(sysm.topology.links))
    sched = schedule(get_app("counter", sysm.n_nodes).graph(), net)
    run = make_backend("processes").start(sysm)
    run.advance(0.1)
    run.execute(sched, 3)  # compiled and warm: the next run starts at once
    # minutes of work, were it not stopped
    kill_and_expect_named(run, 1, 1.0, lambda: run.execute(sched, 10**7), "0.1")


def kill_and_expect_named(run, node: int, after_s: float, work, stopped_at: str) -> None:
    """Kill ``node`` ``after_s`` into ``work()``: the failure names it within
    5 s, and nothing of the run is left."""
    pids = list(run.pids)
    killer = threading.Timer(after_s, os.kill, (pids[node], signal.SIGKILL))
    killer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(NodeFailure, match=rf"^node {node}: process {pids[node]} died "
                                              rf"\(killed by signal 9\); the run stopped at "
                                              rf"t={stopped_at} s"):
            work()
    finally:
        killer.cancel()
    assert time.monotonic() - t0 < after_s + 5.0
    assert run.stopped and wait_gone(pids) and our_netns() == []


@pytest.mark.skipif(netns_available() is not None, reason=str(netns_available()))
def test_cut_link_is_named():
    if shutil.which("iptables") is None:
        pytest.skip("iptables is not installed (make test installs it)")
    run = make_backend("processes", link_timeout_s=1.0).start(system())
    if run.isolation != "netns":
        run.stop()
        pytest.skip(f"no network namespaces here: {run.isolation_note}")
    assert len(run.netns_names) == 5
    run.advance(0.3)
    # node 3 drops everything node 1 sends it: a cut cable, seen from node 3
    links = system().topology.links
    sender = int(next(a for a, b in links if b == 3 and a != 3))
    drop_and_expect_named(run, sender, 3, ["ip", "netns", "exec", run.netns_names[3],
                                           "iptables", "-A", "INPUT", "-i", f"n{sender}",
                                           "-j", "DROP"])
    assert wait_gone(run.pids) and our_netns() == []


def drop_and_expect_named(run, sender: int, receiver: int, drop: list[str]) -> None:
    """Run the ``iptables`` command ``drop`` (a cut link ``sender -> receiver``)
    on a run advanced to 0.3 s: the receiver names the link within 5 s."""
    res = subprocess.run(drop, capture_output=True, text=True)
    if res.returncode != 0:
        run.stop()
        pytest.skip(f"iptables cannot filter here: {res.stderr.strip()}")
    t0 = time.monotonic()
    with pytest.raises(NodeFailure, match=rf"^link {sender}->{receiver}: node {receiver} "
                                          rf"received nothing from node {sender} \(timeout\); "
                                          r"the run stopped at t=0.3 s"):
        run.advance(5.0)
    assert time.monotonic() - t0 < 5.0


def test_stop_leaves_nothing_and_refuses_more():
    run = make_backend("processes").start(system())
    run.advance(0.1)
    run.stop()
    assert wait_gone(run.pids) and our_netns() == []
    assert set(run.health().values()) == {"stopped"}
    with pytest.raises(ConfigError, match="stopped"):
        run.advance(0.2)


def test_options_are_checked():
    with pytest.raises(ConfigError, match=r"^backend.link_timeout_s: must be > 0, got -1$"):
        make_backend("processes", link_timeout_s=-1)
    with pytest.raises(ConfigError, match=r"^backend.workers: is not an option"):
        make_backend("processes", workers=2)
    with pytest.raises(ConfigError, match=r"^run.stop_on_fault: is not supported"):
        make_backend("processes").start(system(), stop_on_fault=True)


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _node_pids(cli_pid: int) -> list[int]:
    """The node processes of one CLI run: children of its node-process server."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
            server = _ppid(int(d.name))
            if b"zygote_main" in cmd and _ppid(server) == cli_pid:
                out.append(int(d.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _cli(*args):
    return subprocess.Popen([sys.executable, "-m", "tidesim", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_nodes(proc, n, timeout_s=60.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        pids = _node_pids(proc.pid)
        if len(pids) >= n:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"no {n} node processes; CLI said {proc.communicate()}")


@pytest.mark.slow
def test_cli_node_killed_exits_3_with_one_line():
    proc = _cli("run", "--backend", "processes", "--preset", "hitl8", "--until", "60", "--json")
    pids = _wait_nodes(proc, 8)
    time.sleep(1.0)
    os.kill(pids[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "died (killed by signal 9)" in lines[0]
    assert lines[0].startswith("tidesim: error: node ")
    summary = json.loads(out)  # the partial run is still reported
    assert summary["failed"] and summary["until_s"] == 60.0
    assert wait_gone(pids)


@pytest.mark.slow
def test_cli_ctrl_c_stops_every_node():
    proc = _cli("run", "--backend", "processes", "--preset", "hitl8", "--until", "60", "--json")
    pids = _wait_nodes(proc, 8)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole group
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert json.loads(out)["interrupted"] is True
    assert wait_gone(pids)
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"tidesim-{proc.pid}-" not in ns


class Stuck(Atom):
    """Node 0 finishes at once; the others wait for a packet nobody sends
    (after sleeping a minute, with ``how="sleep"``; node 3 fails, with ``"raise"``)."""

    def __init__(self, how: str) -> None:
        self.how = how

    async def invoke(self, rt):
        if rt.node == 0:
            return "done"
        if self.how == "sleep":
            await rt.sleep(60.0)
        elif self.how == "raise" and rt.node == 3:
            rt.send(99, "nowhere")
        await rt.recv("never")


def _atoms(n, how):
    return [Stuck(how) for _ in range(n)]


def test_atoms_that_never_finish_are_named_and_stopped():
    from tidesim.errors import SimulationFault

    run = make_backend("processes").start(system())
    pids = list(run.pids)
    t0 = time.monotonic()
    with pytest.raises(SimulationFault, match=r"^nodes 1, 2, 3, 4: no 'atom_done' within 1 s "
                                              r"\(a deadlock, or a lost message\)"):
        run.run_atoms(_atoms(5, "wait"), timeout_s=1.0)
    assert time.monotonic() - t0 < 1.0 + 5.0  # the timeout, then the teardown
    assert run.stopped and wait_gone(pids) and our_netns() == []


def test_an_atom_that_raises_is_named_with_its_error():
    from tidesim.errors import SimulationFault

    run = make_backend("processes").start(system())
    pids = list(run.pids)
    with pytest.raises(SimulationFault, match=r"^node 3: its atom failed: ConfigError: "
                                              r"send.dest: must be an integer in \[0, 4\], "
                                              r"got 99; the nodes were stopped$"):
        run.run_atoms(_atoms(5, "raise"), timeout_s=30.0)
    assert run.stopped and wait_gone(pids) and our_netns() == []


def test_node_killed_while_running_atoms_is_named_within_5_s():
    run = make_backend("processes").start(system())
    kill_and_expect_named(run, 2, 0.5, lambda: run.run_atoms(_atoms(5, "sleep"), timeout_s=60.0),
                          "0.0")


def test_big_vectors_cross_without_waiting_on_full_buffers():
    """Every node sends every other 8 MB at once (more than a socket buffer
    holds), forwarded around the ring: queued sends keep it moving."""
    import numpy as np

    from tidesim.packetnet import make_allreduce

    sysm = system()
    n, size = sysm.n_nodes, 1_000_000
    vectors = np.arange(n, dtype=float)[:, None] * np.ones(size)
    with make_backend("processes").start(sysm) as run:
        got = run.run_atoms(make_allreduce("naive", n, size, vectors), timeout_s=60.0)
    for r in got.results:
        assert (r == n * (n - 1) / 2).all()


def test_atoms_that_cannot_travel_are_refused_before_anything_runs():
    class Locked(Atom):
        def __init__(self):
            self.lock = threading.Lock()

        async def invoke(self, rt):
            return None

    with make_backend("processes").start(system()) as run:
        with pytest.raises(ConfigError, match=r"^atoms\[0\]: must be picklable to run on "
                                              r"the nodes \(TypeError: cannot pickle "):
            run.run_atoms([Locked() for _ in range(5)])
        # nothing was sent: the nodes still run atoms
        from tidesim.packetnet import make_allreduce

        got = run.run_atoms(make_allreduce("tree", 5, 3, [[1.0, 2.0, 3.0]] * 5))
        assert [r.tolist() for r in got.results] == [[5.0, 10.0, 15.0]] * 5
