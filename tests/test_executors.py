"""Executors: the registry by name, the process pool, adapters, a Dask cluster without workers."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os

import pytest

from tidesim.backends import ExecutorAdapter, SweepExecutor, executor_names, make_executor
from tidesim.backends import executors as registry
from tidesim.errors import ConfigError
from tidesim.studies.sweep import Sweep, run_sweep

BASE = {"preset": "hitl-complete3", "clock": {"start_s": 0.0},
        "controller": {"kind": "p", "kp": 1e-6}, "actuator": {"kind": "continuous"},
        "run": {"until_s": 0.1}}


def test_names():
    assert {"dask", "processes"} <= set(executor_names())
    assert list(executor_names()) == sorted(executor_names())
    with pytest.raises(ConfigError, match="did you mean 'processes'"):
        make_executor("process")


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_worker_counts(workers):
    with pytest.raises(ConfigError, match="--workers: must be an integer >= 1"):
        make_executor("processes", workers=workers)
    with pytest.raises(ConfigError, match="--dask-local: must be an integer >= 1"):
        make_executor("dask", workers=workers)


def test_process_pool_runs_tasks_and_stops():
    ex = make_executor("processes", workers=2)
    assert not ex.started and ex.workers == 2
    with ex:
        assert ex.started
        assert sorted(f.result() for f in [ex.submit(os.getpid) for _ in range(4)]) != []
        assert ex.submit(pow, 2, 10).result() == 1024
    assert not ex.started
    ex.start(expected_tasks=1)
    ex.stop_now()
    assert not ex.started
    with pytest.raises(RuntimeError, match="start"):
        ex.submit(pow, 2, 10)


def test_adapter_leaves_the_executor_running():
    with cf.ThreadPoolExecutor(3) as pool:
        ad = ExecutorAdapter(pool)
        assert ad.started and ad.workers == 3 and ExecutorAdapter(pool, 5).workers == 5
        with ad:
            assert ad.submit(pow, 3, 2).result() == 9
        assert pool.submit(pow, 2, 2).result() == 4  # still open


class _Threads(SweepExecutor):
    """A thread pool registered by name: what a new backend looks like."""

    name = "threads"
    made: list[_Threads] = []

    def __init__(self, workers=None, *, warmup=None, preload=()):
        self.n = workers or 2
        self.warmup = warmup
        self.pool = None
        self.made.append(self)

    @property
    def started(self):
        return self.pool is not None

    @property
    def workers(self):
        return self.n

    def start(self, *, expected_tasks=None):
        self.pool = cf.ThreadPoolExecutor(self.n)

    def submit(self, fn, /, *args, **kwargs):
        return self.pool.submit(fn, *args, **kwargs)

    def stop_now(self):
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = None

    def close(self):
        self.pool.shutdown(wait=True)
        self.pool = None


def test_run_sweep_makes_its_executor_by_name(tmp_path, monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "threads", _Threads)
    monkeypatch.setattr(_Threads, "made", [])
    with pytest.raises(ConfigError, match="executor: must be one of"):
        run_sweep(Sweep(BASE), tmp_path / "x", executor="thread", progress=False)
    res = run_sweep(Sweep(BASE, repeats=3, seed=2), tmp_path / "a", executor="threads",
                    workers=2, progress=False)
    assert res.ran == 3
    (ex,) = _Threads.made
    assert ex.n == 2 and ex.warmup is not None and not ex.started  # made, started, closed
    # an executor handed over started is left running
    mine = _Threads(1)
    mine.start()
    res = run_sweep(Sweep(BASE, repeats=2, seed=3), tmp_path / "b", executor=mine,
                    progress=False)
    assert res.ran == 2 and mine.started
    mine.close()
    with pytest.raises(ConfigError, match="executor_options"):
        run_sweep(Sweep(BASE), tmp_path / "c", executor=mine, executor_options={"a": 1})


def test_register_executor_checks_its_arguments(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register_executor("threads", _Threads)
    assert "threads" in executor_names()
    assert isinstance(make_executor("threads", workers=3), _Threads)
    # a "module:Class" entry is imported when first made
    registry.register_executor("pool", "tidesim.backends._processes:ProcessExecutor")
    assert make_executor("pool", workers=1).name == "processes"
    with pytest.raises(ConfigError):
        registry.register_executor("bad", object)
    with pytest.raises(ConfigError):
        registry.register_executor("", _Threads)


def test_dask_cluster_without_workers_is_refused(tmp_path):
    distributed = pytest.importorskip("distributed")
    # a cluster whose workers never come would take the tasks and never run them
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        with pytest.raises(ConfigError) as err:
            run_sweep(Sweep(BASE), tmp_path, executor="dask", progress=False,
                      executor_options={"client": client, "timeout_s": 1})
        assert "must give a Dask cluster with 1 worker(s) within 1 s (it has 0" in str(err.value)
        assert client.status == "running"  # the caller's client is left open
