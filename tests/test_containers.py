"""The containers backend: a Podman container per node, reached by name; a
killed container is named, and nothing is left behind. Skipped, saying why,
where containers cannot start."""

from __future__ import annotations

import subprocess
import time

import pytest

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
