"""The ``"processes"`` executor: a pool of local worker processes.

Workers start warm: on Linux, from a process with a single thread, they are
forked from it and inherit its imported modules and loaded kernels;
elsewhere a fork server imports the ``preload`` modules once and every worker
is forked from it (or, where neither exists, workers are spawned and import
them themselves). Each worker then runs the ``warmup`` function once, keeps
freed memory for the next task (:func:`keep_heap`), ignores Ctrl-C (the
parent stops it) and, on Linux, dies with its parent, so a killed sweep
leaves no worker behind.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigError
from .executors import SweepExecutor

__all__ = ["ProcessExecutor", "check_workers", "keep_heap"]


def check_workers(value: Any, field: str) -> int | None:
    """``value`` (``None``, or an integer ``>= 1``) as a worker count.

    Raises:
        ConfigError: (field ``field``) anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(field, value, "must be an integer >= 1")
    return value


def keep_heap() -> None:
    """Let glibc reuse freed memory for the next run instead of returning it.

    Every run allocates its trace arrays afresh (tens of MB for the rig); by
    default glibc maps blocks that large anew each time and the kernel faults
    and zeroes every page, which costs a quarter of a 10 s ``hitl8`` run.
    Serving blocks up to 32 MiB from the heap and keeping up to 256 MiB of
    freed heap makes later runs reuse the pages. Linux/glibc only; a no-op
    elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 256 << 20)
    except (OSError, AttributeError):
        pass


def _worker_init(warmup: Callable[[], Any] | None) -> None:
    """Initializer of the pool's workers (see the module docstring)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    keep_heap()
    if warmup is not None:
        # a failed warm-up shows up again, and is reported, in the first real task
        with contextlib.suppress(Exception):
            warmup()


def _process_pool(workers: int, warmup: Callable[[], Any] | None,
                  preload: Sequence[str]) -> cf.ProcessPoolExecutor:
    """A process pool whose workers start with ``preload`` imported and warm."""
    import multiprocessing as mp
    import threading

    modules = list(dict.fromkeys(preload))
    methods = mp.get_all_start_methods()
    if "fork" in methods and sys.platform.startswith("linux") and threading.active_count() == 1:
        import importlib

        for name in modules:
            importlib.import_module(name)
        ctx = mp.get_context("fork")
    elif "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(modules)
    else:
        ctx = mp.get_context("spawn")
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                  initializer=_worker_init, initargs=(warmup,))


def _stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Cancel what is queued and stop the pool's worker processes now."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:  # Python >= 3.14
        terminate()
        return
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)


class ProcessExecutor(SweepExecutor):
    """A pool of local worker processes (``tidesim sweep --workers N``).

    Args:
        workers: worker processes (default: one per CPU).
        warmup: a module-level function each worker calls once before its
            first task (its failure is ignored: the first task reports it).
        preload: modules the workers import before anything else.

    Raises:
        ConfigError: ``workers`` is not an integer ``>= 1`` (field ``--workers``).
    """

    name = "processes"

    def __init__(self, workers: int | None = None, *, warmup: Callable[[], Any] | None = None,
                 preload: Sequence[str] = ()) -> None:
        self._workers = check_workers(workers, "--workers")
        self.warmup = warmup
        self.preload = tuple(preload)
        self._pool: cf.ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        return self._pool is not None

    @property
    def workers(self) -> int:
        return self._workers or os.cpu_count() or 1

    def start(self, *, expected_tasks: int | None = None) -> None:
        if self._pool is not None:
            return
        n = self.workers
        if expected_tasks is not None:
            n = max(1, min(n, expected_tasks))
        self._pool = _process_pool(n, self.warmup, self.preload)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        if self._pool is None:
            raise RuntimeError("start() the executor before submitting tasks")
        return self._pool.submit(fn, *args, **kwargs)

    def stop_now(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            _stop_pool(pool)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
