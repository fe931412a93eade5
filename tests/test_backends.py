"""One hardware interface: every backend gives the in-process results, bit for bit.

Each test is parametrised over every registered backend (the way one test
runs in every mode), and compares what the backend gives with a run of the
same system straight on the core (``System.start``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tidesim.backends import (
    Backend,
    HardwareRun,
    InProcessBackend,
    backend_names,
    make_backend,
    register_backend,
)
from tidesim.backends import hardware as hw
from tidesim.calendars import Crash, LogicalNetwork, execute, run_app, schedule
from tidesim.cli import main
from tidesim.config import build_system, load_config, validate
from tidesim.errors import ConfigError
from tidesim.waves.apps import get_app

PRESET = "hitl-cycle5"
BACKENDS = [pytest.param(name, marks=getattr(pytest.mark, f"backend_{name}"))
            for name in backend_names()]


def system(**overrides):
    return build_system(validate(load_config({"preset": PRESET, **overrides})))


def usable(name: str) -> str:
    """``name``, or skip the test saying why that backend cannot run here."""
    if name == "containers":
        from tidesim.backends._containers import containers_unavailable

        why = containers_unavailable()
        if why is not None:
            pytest.skip(f"containers: {why}")
    return name


@pytest.fixture(params=BACKENDS)
def backend(request) -> Backend:
    return make_backend(usable(request.param))


def test_summary_is_the_in_process_one(backend):
    sysm = system(seed=3)
    want = sysm.start(fidelity="event", record="summary").advance(3.0).trace().summary()
    with backend.start(sysm, fidelity="event", record="summary") as run:
        assert isinstance(run, HardwareRun) and run.time_s == 0.0
        for t in (0.5, 1.25, 3.0):  # in steps: the same as one go
            run.advance(t)
            assert run.time_s == t
        assert set(run.health().values()) == {"up"}
        got = run.trace().summary()
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    assert set(run.health().values()) == {"stopped"} and run.stopped
    with pytest.raises(ConfigError, match="stopped"):
        run.advance(4.0)


def test_app_digest_is_the_in_process_one(backend):
    sysm = system(seed=5)
    want = run_app(get_app("counter", sysm.n_nodes), sysm, metacycles=8)
    got = run_app(get_app("counter", sysm.n_nodes), sysm, metacycles=8, backend=backend)
    assert got.matches_functional and got.logical.digest() == want.logical.digest()
    assert (got.epoch_cycles == want.epoch_cycles).all() and got.sync_s == want.sync_s


def test_every_app_runs_node_by_node(backend):
    """Each node steps its own calendars and actions, and the frames its
    neighbours read cross the backend's links; faults included."""
    sysm = system(seed=1)
    links = sysm.topology.links
    lat = np.random.default_rng(7).integers(-2, 40, len(links))
    net = LogicalNetwork(sysm.n_nodes, links, lat)
    faults = dict(flip_probability=0.005, seed=11, crash=Crash(2, 4),
                  fault_cycles=np.where(np.arange(len(links)) % 3 == 0, 150, -1))
    with backend.start(sysm) as run:
        for app in ("allreduce-ring", "life", "kv"):  # switches, state, memory
            sched = schedule(get_app(app, sysm.n_nodes).graph(), net)
            want = execute(sched, 9, **faults)
            got = run.execute(sched, 9, **faults)
            assert got.digest() == want.digest(), app
            assert got.first_corrupted() == want.first_corrupted(), app
            for k in want.states:
                assert np.array_equal(np.asarray(got.states[k]), np.asarray(want.states[k]))
            if backend.name != "inprocess":  # the nodes ran it, not the coordinator
                assert len(run.app_stats) == sysm.n_nodes
                assert all(s["calls"] >= 1 for s in run.app_stats)
        other = schedule(get_app("counter", 3).graph(), LogicalNetwork.ring(3))
        with pytest.raises(ConfigError, match="schedule.network"):
            run.execute(other, 2)


@pytest.mark.parametrize("name", BACKENDS)
def test_cli_backend_flag(name, capsys, tmp_path):
    usable(name)
    args = ["run", "--preset", PRESET, "--until", "2", "--json"]
    assert main(args) == 0
    direct = json.loads(capsys.readouterr().out)
    assert main([*args, "--backend", name]) == 0
    via = json.loads(capsys.readouterr().out)
    for d in (direct, via):
        d.pop("wall_s")
    assert via == direct


def test_unknown_backend_and_option_are_one_line(capsys):
    with pytest.raises(ConfigError, match=r"^backend: must be one of .*inprocess.* \(did you "
                                          r"mean 'inprocess'\?\), got 'inprocss'$"):
        make_backend("inprocss")
    with pytest.raises(ConfigError, match=r"^backend.workers: is not an option of the "
                                          r"inprocess backend, got 3$"):
        make_backend("inprocess", workers=3)
    for cmd in (["run", "--preset", PRESET], ["app", "counter", "--preset", PRESET]):
        assert main([*cmd, "--backend", "nope"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("tidesim: error: backend: must be one of")


class _Renamed(InProcessBackend):
    name = "renamed"


def test_register_backend(monkeypatch):
    monkeypatch.setattr(hw, "_REGISTRY", dict(hw._REGISTRY))
    register_backend("renamed", _Renamed)
    register_backend("by-path", "tidesim.backends.hardware:InProcessBackend")
    assert backend_names()[-2:] == ("renamed", "by-path")
    assert type(make_backend("renamed")) is _Renamed
    assert type(make_backend("by-path")) is InProcessBackend
    with pytest.raises(ConfigError, match="must be a Backend subclass"):
        register_backend("bad", dict)
    with pytest.raises(ConfigError, match="must be a non-empty name"):
        register_backend("", _Renamed)


def test_atoms_give_the_packet_networks_sums_on_every_backend(backend):
    """The same allreduce atoms run on the packet network, in process over
    the system's links, and on every backend's nodes (packets forwarded
    around the ring): every node ends with the packet network's sums, bit
    for bit (each algorithm adds in one fixed order; the values are not
    integers, so another order would show), with the same messages."""
    from tidesim.packetnet import allreduce, make_allreduce

    sysm = system(seed=2)
    n, size = sysm.n_nodes, 37
    vectors = np.random.default_rng(7).standard_normal((n, size))
    sums = set()
    with backend.start(sysm) as run:
        for algorithm in ("naive", "tree", "stream"):
            want = allreduce(algorithm, n, 1e-3, 1e6, size, vectors=vectors)
            got = run.run_atoms(make_allreduce(algorithm, n, size, vectors))
            assert (got.messages, got.bytes) == (want.messages, want.bytes)
            assert len(got.results) == n
            for a, b in zip(got.results, want.results, strict=True):
                assert a.tobytes() == b.tobytes(), algorithm
            sums.add(want.results[0].tobytes())
        # the run goes on after its atoms: the links carry frames again
        run.advance(0.5)
        assert run.time_s == 0.5
    assert len(sums) > 1  # the orders of addition differ in the last bits
