"""The dask backend on a real cluster started from the command line: a
``dask scheduler`` and two ``dask worker`` processes, as a user would.

The run must give the in-process summary bit for bit; a cluster with too few
worker threads is refused in one line; a worker killed mid-run names its node.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tidesim.backends import NodeFailure, make_backend
from tidesim.cli import main
from tidesim.config import build_system, load_config, validate
from tidesim.errors import ConfigError

pytestmark = pytest.mark.backend_dask
PRESET = "hitl-cycle5"  # 5 nodes
DASK = str(Path(sys.executable).with_name("dask"))


def system():
    return build_system(validate(load_config({"preset": PRESET})))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def start_cluster(nthreads: int):
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    wait_port(port)
    for _ in range(2):
        procs.append(subprocess.Popen(
            [DASK, "worker", addr, "--nthreads", str(nthreads), "--nworkers", "1",
             "--no-nanny", "--dashboard-address", ":0"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from distributed import Client

    with Client(addr, timeout="30s") as c:
        c.wait_for_workers(2, timeout=60)
    return addr, procs


def stop_cluster(procs):
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def cluster():
    addr, procs = start_cluster(3)  # 2 workers x 3 threads: room for 5 nodes
    yield addr, procs
    stop_cluster(procs)


def test_cli_scheduler_gives_the_in_process_summary(cluster, capsys):
    addr, _ = cluster
    args = ["run", "--preset", PRESET, "--until", "2", "--json"]
    assert main(args) == 0
    direct = json.loads(capsys.readouterr().out)
    assert main([*args, "--backend", "dask", "--scheduler", addr]) == 0
    via = json.loads(capsys.readouterr().out)
    for d in (direct, via):
        d.pop("wall_s")
    assert via == direct


def test_nodes_spread_over_both_workers(cluster):
    addr, _ = cluster
    with make_backend("dask", scheduler=addr).start(system()) as run:
        run.advance(0.2)
        assert all(w.startswith("worker tcp://127.0.0.1:") for w in run.where)
        processing = run.client.processing()
        assert sum(len(v) for v in processing.values()) == 5
        assert sum(1 for v in processing.values() if v) == 2  # both workers hold nodes


def test_scheduler_only_with_dask_and_too_few_threads_refused(capsys):
    assert main(["run", "--preset", PRESET, "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tidesim: error: --scheduler: needs --backend dask, got 'tcp://127.0.0.1:1'"]
    addr, procs = start_cluster(1)  # 2 threads for 5 nodes
    try:
        with pytest.raises(ConfigError, match=r"^--scheduler: must give one worker thread per "
                                              r"node: the cluster has 2, the system 5 nodes"):
            make_backend("dask", scheduler=addr).start(system())
    finally:
        stop_cluster(procs)


def test_killed_worker_names_a_node():
    addr, procs = start_cluster(3)
    try:
        run = make_backend("dask", scheduler=addr).start(system())
        run.advance(0.3)
        procs[1].send_signal(signal.SIGKILL)  # one worker, with its nodes
        t0 = time.monotonic()
        with pytest.raises(NodeFailure, match=r"^node \d: its Dask task on worker tcp://\S+ "
                                              r"\(pid \d+\) lost its connection \(the worker "
                                              r"died or was stopped\); the run stopped at "
                                              r"t=0.3 s"):
            run.advance(5.0)
        assert time.monotonic() - t0 < 5.0
        assert run.stopped
    finally:
        stop_cluster(procs)
