"""Executors: the workers that a sweep's tasks run on, chosen by name.

A :class:`SweepExecutor` runs tasks, module-level functions and their
(picklable) arguments, on a set of workers and hands back
:class:`concurrent.futures.Future` objects, as
:meth:`concurrent.futures.Executor.submit` does. On top of ``submit`` it
knows how many tasks run at once (:attr:`~SweepExecutor.workers`, which sizes
a sweep's chunks), it starts its workers and warms them up before the first
task (:meth:`~SweepExecutor.start`, :meth:`~SweepExecutor.prepare_workers`),
and it can stop them at once when the user presses Ctrl-C
(:meth:`~SweepExecutor.stop_now`). Used as a context manager it starts on
entry and, on exit, waits for its tasks (:meth:`~SweepExecutor.close`), or
stops them at once when the block raised.

Executors are made by name with :func:`make_executor`:

* ``"processes"`` -- a pool of local worker processes (``tidesim sweep
  --workers N``); the default of :func:`tidesim.studies.sweep.run_sweep`.
* ``"dask"`` -- the workers of a Dask cluster: a new local cluster of
  ``workers`` processes (``--dask-local N``), the cluster of a running
  scheduler (``scheduler="tcp://HOST:PORT"``, ``--scheduler``), or a
  ``distributed.Client`` the caller made (``client=...``).

:func:`register_executor` adds a name. Classes are imported when first made,
so naming one that needs an optional package (``dask[distributed]``) costs
nothing until it is used. Any other :class:`concurrent.futures.Executor`
(a thread pool, ``client.get_executor()``) is used through
:class:`ExecutorAdapter`.

Example:
    >>> from tidesim.backends.executors import make_executor
    >>> with make_executor("processes", workers=2) as ex:
    ...     ex.submit(pow, 2, 10).result()
    1024
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import difflib
import importlib
import os
from collections.abc import Callable
from typing import Any, ClassVar

from ..errors import ConfigError

__all__ = [
    "ExecutorAdapter",
    "SweepExecutor",
    "executor_names",
    "make_executor",
    "register_executor",
]


class SweepExecutor(abc.ABC):
    """Where a sweep's tasks run: a set of workers behind ``submit``.

    Subclasses set :attr:`name` and implement :attr:`started`, :attr:`workers`,
    :meth:`start`, :meth:`submit`, :meth:`stop_now` and :meth:`close`; those
    that warm workers up from outside them (a cluster) override
    :meth:`prepare_workers` as well.

    Whoever calls :meth:`start` owns the workers and ends them with
    :meth:`close` or :meth:`stop_now`; an executor handed over already started
    is left running.
    """

    name: ClassVar[str] = ""
    """The name it is registered under (``"processes"``, ``"dask"``)."""

    @property
    @abc.abstractmethod
    def started(self) -> bool:
        """Whether its workers are up (:meth:`start` ran, and no close since)."""

    @property
    @abc.abstractmethod
    def workers(self) -> int:
        """How many tasks run at once (``>= 1``; exact once started)."""

    @abc.abstractmethod
    def start(self, *, expected_tasks: int | None = None) -> None:
        """Start the workers and warm them up; does nothing when already started.

        Args:
            expected_tasks: at most this many tasks will be submitted, so a
                local pool need not start more workers than that.

        Raises:
            ConfigError: the workers cannot start (a missing package, an
                unreachable scheduler, no worker joined in time).
        """

    def prepare_workers(self) -> None:
        """Run the warm-up on every worker now (:meth:`start` calls it).

        The default does nothing: executors whose workers warm themselves up
        as they start (a process pool's initializer) need no more.
        """
        return None

    @abc.abstractmethod
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        """Schedule ``fn(*args, **kwargs)`` on a worker, as ``Executor.submit`` does."""

    @abc.abstractmethod
    def stop_now(self) -> None:
        """Cancel queued tasks and stop the workers without waiting (after Ctrl-C)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Wait for the running tasks, then release the workers."""

    def __enter__(self) -> SweepExecutor:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.stop_now()


class ExecutorAdapter(SweepExecutor):
    """A :class:`concurrent.futures.Executor` that the caller made and owns.

    It is always started and is never shut down here: :meth:`close` and
    :meth:`stop_now` only cancel the tasks submitted through the adapter that
    have not begun.

    Args:
        executor: a thread or process pool, ``distributed.Client.get_executor()``...
        workers: how many tasks it runs at once (default: its ``_max_workers``,
            the threads of a Dask client's workers, else ``os.cpu_count()``).
    """

    name = "executor"

    def __init__(self, executor: cf.Executor, workers: int | None = None) -> None:
        self.executor = executor
        self._workers = workers
        self._futures: list[cf.Future] = []

    @property
    def started(self) -> bool:
        return True

    @property
    def workers(self) -> int:
        if self._workers is not None:
            return self._workers
        n = getattr(self.executor, "_max_workers", None)
        if isinstance(n, int) and n > 0:
            return n
        client = getattr(self.executor, "_client", None)
        if client is not None:
            try:
                return max(1, sum(client.nthreads().values()))
            except Exception:  # noqa: BLE001 - any answer will do for sizing chunks
                pass
        return os.cpu_count() or 1

    def start(self, *, expected_tasks: int | None = None) -> None:
        return None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        fut = self.executor.submit(fn, *args, **kwargs)
        self._futures.append(fut)
        return fut

    def stop_now(self) -> None:
        for fut in self._futures:
            fut.cancel()
        self._futures.clear()

    def close(self) -> None:
        self._futures.clear()


# ------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type[SweepExecutor] | str] = {
    "processes": "tidesim.backends._processes:ProcessExecutor",
    "dask": "tidesim.backends._dask:DaskExecutor",
}


def register_executor(name: str, cls: type[SweepExecutor] | str) -> None:
    """Make ``cls`` available to :func:`make_executor` as ``name``.

    Args:
        name: the name (replaces an earlier registration of it).
        cls: a :class:`SweepExecutor` subclass, or ``"module:Class"`` to
            import it when it is first made.

    Raises:
        ConfigError: ``name`` is empty, or ``cls`` is neither.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError("executor", name, "must be a non-empty name")
    is_class = isinstance(cls, type) and issubclass(cls, SweepExecutor)
    if not is_class and not (isinstance(cls, str) and ":" in cls):
        raise ConfigError(f"executor.{name}", cls,
                          "must be a SweepExecutor subclass or 'module:Class'")
    _REGISTRY[name] = cls


def executor_names() -> tuple[str, ...]:
    """The registered names, sorted."""
    return tuple(sorted(_REGISTRY))


def _executor_class(name: str) -> type[SweepExecutor]:
    try:
        entry = _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError("executor", name,
                          f"must be one of {list(executor_names())}{hint}") from None
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        _REGISTRY[name] = entry
    return entry


def make_executor(name: str, /, **options: Any) -> SweepExecutor:
    """A new, not yet started executor of the kind registered as ``name``.

    Args:
        name: ``"processes"``, ``"dask"`` or a name given to :func:`register_executor`.
        **options: passed to its class: ``workers`` (how many worker
            processes), ``warmup`` (a module-level function each worker calls
            once before its first task), ``preload`` (modules a worker imports
            first); ``"dask"`` also takes ``scheduler``, ``client``,
            ``timeout_s`` and ``keep_heap``.

    Raises:
        ConfigError: an unknown name, or an option value it refuses.
    """
    return _executor_class(name)(**options)
