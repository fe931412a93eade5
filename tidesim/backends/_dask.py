"""The ``"dask"`` executor: the workers of a Dask cluster (``pip install 'tidesim[dask]'``).

Three ways to name the cluster: a new local one of ``workers`` processes
(``tidesim sweep --dask-local N``), the one behind a running scheduler
(``scheduler="tcp://HOST:8786"``, ``--scheduler``), or a ``distributed.Client``
the caller made (``client=...``, left open at the end). ``distributed`` is
imported when the executor starts.

Starting waits until the workers have joined: ``workers`` of them for a
local cluster, ``workers`` (default 1) for a scheduler's, at most
``timeout_s``; a cluster without workers would otherwise take the sweep's
tasks and never run them. Then every worker runs the ``warmup`` function
once (:meth:`DaskExecutor.prepare_workers`); on the workers of a cluster
started here it also keeps freed memory for the next run
(:func:`~tidesim.backends._processes.keep_heap`), workers shared with others
are left as they are.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigError
from ._processes import check_workers, keep_heap
from .executors import SweepExecutor

__all__ = ["DaskExecutor"]

_INSTALL = "needs dask[distributed] (pip install 'tidesim[dask]')"
_CONNECT_S = 10.0  # a scheduler that answers at all answers within this (s)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _setup_worker(warmup: Callable[[], Any] | None, keep: bool) -> None:
    """Run on every worker by :meth:`DaskExecutor.prepare_workers`."""
    if keep:
        keep_heap()
    if warmup is not None:
        # a failed warm-up shows up again, and is reported, in the first real task
        with contextlib.suppress(Exception):
            warmup()


class DaskExecutor(SweepExecutor):
    """The workers of a Dask cluster.

    Args:
        workers: worker processes of a new local cluster (default: one per
            CPU, one thread each); with ``scheduler`` or ``client``, how many
            workers to wait for (default 1).
        scheduler: address of a running scheduler (``tcp://HOST:8786``).
        client: a ``distributed.Client`` to use (not closed here).
        timeout_s: how long to wait for the workers to join (s); connecting
            to a scheduler waits at most 10 s of it.
        warmup: a module-level function each worker calls once before the
            first task (its failure is ignored: the first task reports it).
        preload: unused (Dask workers import what a task needs); accepted so
            that every executor takes the same options.
        keep_heap: keep freed memory on the workers for the next run
            (default: only on a local cluster started here).

    Raises:
        ConfigError: both ``scheduler`` and ``client``, or ``workers`` is not
            an integer ``>= 1`` (field ``--dask-local``).
    """

    name = "dask"

    def __init__(self, workers: int | None = None, *, scheduler: str | None = None,
                 client: Any = None, timeout_s: float = 60.0,
                 warmup: Callable[[], Any] | None = None, preload: Sequence[str] = (),
                 keep_heap: bool | None = None) -> None:
        if scheduler is not None and client is not None:
            raise ConfigError("--scheduler", scheduler, "must not be given with a client")
        local = scheduler is None and client is None
        self._local = local
        self._field = "--dask-local" if local else "workers"
        self._want = check_workers(workers, self._field)
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) \
                or not timeout_s > 0:
            raise ConfigError("timeout_s", timeout_s, "must be a number of seconds > 0")
        self.scheduler = scheduler
        self.timeout_s = float(timeout_s)
        self.warmup = warmup
        self.preload = tuple(preload)
        self.keep_heap = local if keep_heap is None else bool(keep_heap)
        self._client = client
        self._own_client = client is None
        self._cluster = None
        self._executor: cf.Executor | None = None
        self._threads = 0

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (``None`` before :meth:`start` unless one was given)."""
        return self._client

    @property
    def started(self) -> bool:
        return self._executor is not None

    @property
    def workers(self) -> int:
        if self._threads:
            return self._threads
        return self._n_wait()

    def _n_wait(self) -> int:
        """How many workers :meth:`start` waits for."""
        if self._local:
            return self._want or os.cpu_count() or 1
        return self._want or 1

    def start(self, *, expected_tasks: int | None = None) -> None:
        if self._executor is not None:
            return
        try:
            if self._client is None:
                self._client = self._connect()
            n = self._n_wait()
            try:
                self._client.wait_for_workers(n, timeout=self.timeout_s)
            except (TimeoutError, OSError) as exc:
                have = len(self._client.scheduler_info().get("workers", {}))
                field, value = ("--scheduler", self.scheduler) if self.scheduler else \
                    (self._field, n)
                raise ConfigError(
                    field, value,
                    f"must give a Dask cluster with {n} worker(s) within {self.timeout_s:g} s "
                    f"(it has {have}; {_one_line(exc)})") from None
            self._threads = max(1, sum(self._client.nthreads().values()))
            self._executor = self._client.get_executor()
            self.prepare_workers()
        except BaseException:
            self._release()
            raise

    def _connect(self) -> Any:
        """A client of the scheduler, or of a new local cluster."""
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            value = self.scheduler if self.scheduler is not None else self._want
            field = "--scheduler" if self.scheduler is not None else self._field
            raise ConfigError(field, value, _INSTALL) from None
        if self.scheduler is not None:
            try:
                connect_s = min(self.timeout_s, _CONNECT_S)
                return Client(self.scheduler, timeout=f"{connect_s:g}s")
            except Exception as exc:  # noqa: BLE001 - bad scheme, refused, timed out: one line
                raise ConfigError("--scheduler", self.scheduler,
                                  f"must be a reachable Dask scheduler ({_one_line(exc)})") \
                    from None
        import logging

        n = self._n_wait()
        try:
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=logging.ERROR)
            return Client(self._cluster)
        except Exception as exc:  # noqa: BLE001 - ports, memory, a worker that died: one line
            raise ConfigError(self._field, n,
                              f"must start a local Dask cluster ({_one_line(exc)})") from None

    def prepare_workers(self) -> None:
        """Run the warm-up (and, on an own cluster, :func:`keep_heap`) on every worker."""
        if self._client is None:
            raise RuntimeError("start() the executor, or give it a client, first")
        if self.warmup is not None or self.keep_heap:
            self._client.run(_setup_worker, self.warmup, self.keep_heap)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        if self._executor is None:
            raise RuntimeError("start() the executor before submitting tasks")
        return self._executor.submit(fn, *args, **kwargs)

    def stop_now(self) -> None:
        self._release()

    def close(self) -> None:
        self._release()

    def _release(self) -> None:
        """Close the client and cluster started here (a given client stays open)."""
        self._executor = None
        if self._own_client and self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()
            self._cluster = None
