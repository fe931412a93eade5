"""The containers backend: a Podman container per node, reached by name; a
killed container, a cut link and Ctrl-C are named or stop cleanly, and
nothing is left behind. Skipped, saying why,
where containers cannot start."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from test_processes import drop_and_expect_named

from tidesim.backends import NodeFailure, make_backend
from tidesim.backends._containers import _podman, containers_unavailable
from tidesim.config import build_system, load_config, validate

pytestmark = pytest.mark.backend_containers


@pytest.fixture(autouse=True)
def _need_containers():
    why = containers_unavailable()
    if why is not None:
        pytest.skip(f"containers: {why}")


def system():
    return build_system(validate(load_config({"preset": "hitl-cycle5"})))


def leftovers(run) -> tuple[str, str]:
    ps = _podman("ps", "-a", "--format", "{{.Names}}").stdout
    nets = _podman("network", "ls", "--format", "{{.Name}}").stdout
    return ([n for n in ps.split() if n in run.names],
            [n for n in nets.split() if n == run.network])


def test_killed_container_is_named_and_nothing_is_left():
    run = make_backend("containers").start(system())
    assert run.isolation == "containers" and len(run.names) == 5
    run.advance(0.3)
    subprocess.run(["podman", "kill", run.names[1]], capture_output=True, check=False)
    t0 = time.monotonic()
    with pytest.raises(NodeFailure, match=rf"^node 1: container {run.names[1]} ended "
                                          r"\(\S+ \d+\); the run stopped at t=0.3 s"):
        run.advance(5.0)
    assert time.monotonic() - t0 < 5.0
    assert leftovers(run) == ([], [])


def _inspect(name: str, fmt: str) -> str:
    return _podman("inspect", "--format", fmt, name).stdout.strip()


def test_cut_link_is_named_and_nothing_is_left():
    """An iptables DROP in one container's network namespace: its receiver
    names the silent link."""
    if shutil.which("iptables") is None or shutil.which("nsenter") is None:
        pytest.skip("iptables or nsenter is not installed (make test installs them)")
    run = make_backend("containers", link_timeout_s=1.0).start(system())
    run.advance(0.3)
    links = system().topology.links
    sender = int(next(a for a, b in links if b == 3 and a != 3))
    ip = _inspect(run.names[sender], "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
    pid = _inspect(run.names[3], "{{.State.Pid}}")
    drop_and_expect_named(run, sender, 3, ["nsenter", "-t", pid, "-n", "iptables", "-A",
                                           "INPUT", "-s", ip, "-j", "DROP"])
    assert leftovers(run) == ([], [])


def _ours(prefix: str) -> tuple[list[str], list[str]]:
    ps = _podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    nets = _podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    return [n for n in ps if n.startswith(prefix)], [n for n in nets if n.startswith(prefix)]


@pytest.mark.slow
def test_cli_ctrl_c_stops_every_container():
    """Ctrl-C once the run advances (its progress bar is drawn): the summary
    of the run so far, exit status 130, and no container or network left."""
    with subprocess.Popen([sys.executable, "-m", "tidesim", "run", "--backend", "containers",
                           "--preset", "hitl-cycle5", "--until", "1000", "--json",
                           "--progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True) as proc:
        out, err = _interrupt_when_drawn(proc)
    assert proc.returncode == 130, err
    assert json.loads(out)["interrupted"] is True
    assert "interrupted at t = " in err
    prefix = f"tidesim-{proc.pid}-"
    assert _ours(prefix) == ([], [])


def _interrupt_when_drawn(proc) -> tuple[str, str]:
    """Ctrl-C (to the whole group, as a terminal sends it) once ``proc`` drew
    its progress bar, with all of its 5 containers up; its stdout and stderr."""
    err: list[str] = []
    drawn = threading.Event()

    def read_stderr():
        while ch := proc.stderr.read(1):
            err.append(ch)
            drawn.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    assert drawn.wait(120), proc.poll()
    assert len(_ours(f"tidesim-{proc.pid}-")[0]) == 5
    os.killpg(proc.pid, signal.SIGINT)
    out = proc.stdout.read()
    proc.wait(60)
    reader.join(10)
    return out, "".join(err)
