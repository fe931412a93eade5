"""The ``"dask"`` backend: each node a long-running task on a Dask cluster
(``pip install 'tidesim[dask]'``).

The node program is the ``processes`` backend's
(:func:`~tidesim.backends._nodeproc.node_main`); here each node runs as one
task that holds a worker thread for the whole run, reaches the coordinator
over TCP, and listens for its links on the address its worker reaches the
coordinator from. So the cluster needs one worker thread per node, and its
workers must reach this process and each other over TCP.

* No scheduler: a ``LocalCluster`` of one single-threaded worker process per
  node is started here and closed with the run.
* ``scheduler="tcp://HOST:PORT"`` (``--scheduler``): any running cluster
  (``dask scheduler`` and ``dask worker`` started by hand, or one made by
  dask-cloudprovider, dask-kubernetes or dask-jobqueue); it is left running.

A worker that dies takes its node's sockets with it: the run stops with
:class:`~tidesim.backends.NodeFailure` naming the node, as with processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from typing import Any
from urllib.parse import urlparse

from ..errors import ConfigError
from ._nodeproc import ProcessBackend, ProcessRun, node_main
from .hardware import Backend

__all__ = ["DaskBackend", "DaskRun", "dask_node"]

_INSTALL = "needs dask[distributed] (pip install 'tidesim[dask]')"


def dask_node(ctl_addr: tuple[str, int], node: int) -> str:
    """A node, as a task on a Dask worker: runs until the coordinator stops it."""
    from distributed import get_worker

    where = f"worker {get_worker().address} (pid {os.getpid()})"
    node_main(ctl_addr, node, None, own_process=False, where=where)
    return "stopped"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class DaskRun(ProcessRun):
    """A system running as one task per node on a Dask cluster.

    Attributes:
        client: the ``distributed.Client``.
        workers: the worker each node's task runs on (filled as they start).
    """

    def _open(self, n, pairs, *, scheduler: str | None, workers: int | None,
              timeout_s: float) -> socket.socket:
        self.isolation, self.isolation_note, self.netns_names = "dask", None, []
        self.pids = []
        self._cluster = None
        self._futures: list = []
        self.client = None
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError("backend", "dask", _INSTALL) from None
        if scheduler is None:
            try:
                self._cluster = LocalCluster(n_workers=workers or n, threads_per_worker=1,
                                             processes=True, dashboard_address=None,
                                             silence_logs=logging.ERROR)
                self.client = Client(self._cluster)
            except Exception as exc:  # noqa: BLE001 - ports, memory: one line
                raise ConfigError("backend.workers", workers or n,
                                  f"must start a local Dask cluster ({_one_line(exc)})") from None
            host = "127.0.0.1"
        else:
            try:
                self.client = Client(scheduler, timeout=f"{min(timeout_s, 10.0):g}s")
            except Exception as exc:  # noqa: BLE001 - refused, timed out, bad scheme: one line
                raise ConfigError("--scheduler", scheduler,
                                  f"must be a reachable Dask scheduler ({_one_line(exc)})") \
                    from None
            host = _local_address_towards(scheduler)
        try:
            self.client.wait_for_workers(1, timeout=timeout_s)
        except (TimeoutError, OSError) as exc:
            raise ConfigError("--scheduler", scheduler,
                              f"must have workers within {timeout_s:g} s ({_one_line(exc)})") \
                from None
        threads = sum(self.client.nthreads().values())
        if threads < n:
            raise ConfigError("--scheduler" if scheduler else "backend.workers",
                              scheduler or workers,
                              f"must give one worker thread per node: the cluster has {threads}, "
                              f"the system {n} nodes")
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind((host, 0))
        server.listen(n)
        server.settimeout(timeout_s)
        addr = server.getsockname()
        tag = uuid.uuid4().hex[:8]
        self._futures = [self.client.submit(dask_node, addr, j, key=f"tidesim-node-{j}-{tag}",
                                            pure=False, retries=0) for j in range(n)]
        return server

    def _bind_host(self, j: int) -> None:
        return None  # where the node's worker reaches the coordinator from

    def _peer_host(self, j: int, r: int, r_host: str) -> str:
        return r_host

    def _node_alive(self, j: int) -> bool:
        return self._futures[j].status == "pending" and self._connected(j)

    def _node_ended(self, j: int) -> str:
        # the task's first run is what failed; Dask may already have started it
        # again elsewhere, which cannot rejoin a run in progress
        return (f"its Dask task on {self.where[j]} lost its connection (the worker died or "
                "was stopped)")

    def _release(self) -> None:
        for fut in self._futures:
            with contextlib.suppress(Exception):
                fut.cancel()
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()


def _local_address_towards(scheduler: str) -> str:
    """This machine's address on the route to the scheduler's host."""
    host = urlparse(scheduler).hostname or "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, 9))  # no packet is sent: this only picks the route
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


class DaskBackend(ProcessBackend):
    """Each node a task on a Dask cluster (see the module docstring).

    Options:
        scheduler: ``tcp://HOST:PORT`` of a running cluster; default a new
            ``LocalCluster``.
        workers: worker processes of the local cluster (default one per node).
        timeout_s: how long to wait for workers and nodes (s, default 60).
        link_timeout_s, window_s: as for ``processes``.
    """

    name = "dask"
    run_class = DaskRun

    def __init__(self, *, scheduler: str | None = None, workers: int | None = None,
                 timeout_s: float = 60.0, link_timeout_s: float = 2.0,
                 window_s: float | None = None, **options: Any) -> None:
        if "netns" in options:
            Backend.__init__(self, **options)  # refused: not an option here
        super().__init__(link_timeout_s=link_timeout_s, window_s=window_s, **options)
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                    or workers < 1):
            raise ConfigError("backend.workers", workers, "must be an integer >= 1")
        if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
            raise ConfigError("backend.timeout_s", timeout_s, "must be > 0")
        self.scheduler, self.workers, self.timeout_s = scheduler, workers, float(timeout_s)

    def where(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler, "workers": self.workers,
                "timeout_s": self.timeout_s}
