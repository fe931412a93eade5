"""Parameter sweeps: many runs of one base configuration, one tidy results table.

A :class:`Sweep` is a base run config, a ``grid`` of values, seeded
``random`` draws and ``repeats`` (see :mod:`tidesim.studies._spec` for how
runs are listed, numbered and seeded). :func:`run_sweep` runs the runs that
are not yet in ``OUT/results.jsonl``, in chunks, on a
:class:`~tidesim.backends.executors.SweepExecutor` chosen by name (default
``"processes"``: a local process pool with one worker per CPU; ``"dask"``: a
Dask cluster) or on any :class:`concurrent.futures.Executor`, and appends one
JSON line per finished run, flushed and fsync'd. Re-running the same sweep
into the same directory therefore resumes it: finished runs are skipped, a
half-written last line is dropped and the run redone. At the end
``OUT/results.csv`` holds the sweep's table, one row per run, in index order:
``run_id, index, sample, repeat, seed``, the swept keys, the metrics of
:func:`tidesim.studies.metrics.run_metrics`, ``error`` and the volatile
``wall_s`` (whole run in the worker), ``run_s`` (``System.run``: the kernel)
and ``worker``.

The work is split by job; this module runs a sweep and re-exports the rest:

* :mod:`tidesim.studies._spec` -- :class:`Sweep`, :class:`RunSpec`,
  :func:`load_sweep`, :func:`run_seed`: the spec and its list of runs;
* :mod:`tidesim.studies._store` -- ``results.jsonl`` (append, fsync, lock,
  repair), :func:`to_table`, :func:`write_csv`;
* :mod:`tidesim.studies._worker` -- what runs inside a worker;
* :mod:`tidesim.backends.executors` -- where the workers are.

Example:
    >>> from tidesim.studies.sweep import Sweep
    >>> sw = Sweep({"preset": "hitl-complete3"}, grid={"controller.kp": [1e-7, 2e-7]},
    ...            repeats=2, seed=1)
    >>> [(r.index, r.inputs["controller.kp"], r.repeat) for r in sw.runs()]
    [(0, 1e-07, 0), (1, 1e-07, 1), (2, 2e-07, 0), (3, 2e-07, 1)]
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._checks import integer
from .._paths import check_output_dir
from .._progress import progress_bar
from ..backends.executors import ExecutorAdapter, SweepExecutor, make_executor
from ..errors import ConfigError, TidesimError
from . import _worker
from ._spec import MAX_RUNS, RANDOM_KINDS, RunSpec, Sweep, load_sweep, run_seed
from ._store import (
    RESULTS_CSV,
    RESULTS_JSONL,
    SPEC_JSON,
    VOLATILE_COLUMNS,
    ResultStore,
    clean,
    to_table,
    write_csv,
)

__all__ = [
    "MAX_RUNS",
    "RANDOM_KINDS",
    "RESULTS_CSV",
    "RESULTS_JSONL",
    "SPEC_JSON",
    "VOLATILE_COLUMNS",
    "RunSpec",
    "Sweep",
    "SweepIncomplete",
    "SweepResult",
    "load_sweep",
    "prepare_dask_workers",
    "run_seed",
    "run_sweep",
    "to_table",
    "write_csv",
]

_MAX_CHUNK = 16


class SweepIncomplete(TidesimError):
    """Some runs did not finish (a worker died or a run crashed); re-run to resume.

    Attributes:
        result: the :class:`SweepResult` of what did finish.
    """

    def __init__(self, message: str, result: SweepResult) -> None:
        self.result = result
        super().__init__(message)


@dataclass
class SweepResult:
    """What :func:`run_sweep` did.

    Attributes:
        rows: the sweep's table (every finished run, index order).
        total: runs in the sweep.
        skipped: runs already in the table when it started (resumed).
        ran: runs finished by this call.
        errors: rows of this call whose run failed (``error`` is set:
            an invalid config or an unstable controller).
        missing: runs without a row (crashed or lost with a worker).
        wall_s: wall time of this call (s).
        out_dir: the directory; ``results.jsonl`` and ``results.csv`` are in it.
    """

    rows: list[dict[str, Any]]
    total: int
    skipped: int
    ran: int
    errors: int
    missing: int
    wall_s: float
    out_dir: Path

    @property
    def csv_path(self) -> Path:
        return self.out_dir / RESULTS_CSV


def run_sweep(
    sweep: Sweep,
    out_dir: str | Path,
    executor: str | SweepExecutor | cf.Executor | None = None,
    progress: bool | Callable[[int, int], Any] | None = None,
    *,
    workers: int | None = None,
    chunk_size: int | None = None,
    executor_options: Mapping[str, Any] | None = None,
) -> SweepResult:
    """Run every run of ``sweep`` that ``out_dir`` does not hold yet.

    Args:
        sweep: the study.
        out_dir: results directory (created); ``results.jsonl`` is appended
            per finished run, ``results.csv`` and ``sweep.json`` are written.
        executor: where the runs run: the name of an executor
            (:func:`tidesim.backends.executors.make_executor`; default
            ``"processes"``, a local process pool), made with ``workers``
            and ``executor_options`` and closed at the end; a
            :class:`~tidesim.backends.executors.SweepExecutor` (started here
            and closed at the end unless it was started already); or any
            :class:`concurrent.futures.Executor` (for instance
            ``distributed.Client(...).get_executor()``), left running.
        progress: ``None``: a progress line on stderr when it is a terminal;
            ``True``/``False``: always/never; a callable: called as
            ``progress(done, total)`` after every finished chunk.
        workers: worker processes of a named executor (default: one per CPU
            for ``"processes"``); with a ``concurrent.futures`` executor, how
            many tasks it runs at once (used to size chunks).
        chunk_size: runs per task (default: automatic, at most 16).
        executor_options: more options of a named executor (``"dask"``:
            ``scheduler``, ``client``, ``timeout_s``).

    Returns:
        A :class:`SweepResult`.

    Raises:
        ConfigError: an invalid run config (nothing is run), ``out_dir`` is
            in use by another sweep, or the executor cannot start.
        SweepIncomplete: some runs did not finish; the others are in the table.
        KeyboardInterrupt: after stopping the executor's workers (when it was
            started here); finished runs are kept.
    """
    t_start = time.perf_counter()
    if workers is not None:
        workers = integer("--workers", workers, lo=1)
    if chunk_size is not None:
        chunk_size = integer("--chunk", chunk_size, lo=1)
    sweep.check()
    runs = sweep.runs()
    out = check_output_dir("--out", out_dir)
    store = ResultStore(out)
    store.lock()
    try:
        (out / SPEC_JSON).write_text(json.dumps(sweep.to_dict(), indent=2) + "\n")
        done = store.load(repair=True)
        pending = [r for r in runs if r.run_id not in done]
        skipped = len(runs) - len(pending)
        ran = errors = 0
        problems: list[str] = []
        ex = _executor(executor, workers, executor_options)
        owned = False
        # nothing to run, nothing to show
        shown = (None if callable(progress) else progress) if pending else False
        bar = progress_bar(len(runs), initial=skipped, unit="run", enabled=shown,
                           callback=progress if callable(progress) else None)
        try:
            if pending:
                if not ex.started:
                    ex.start(expected_tasks=len(pending))
                    owned = True
                by_id = {r.run_id: r for r in pending}
                futures = {
                    ex.submit(_worker.run_chunk, [(r.run_id, r.config) for r in chunk]): chunk
                    for chunk in _chunks(pending, ex.workers, chunk_size)
                }
                try:
                    for fut in cf.as_completed(futures):
                        chunk = futures[fut]
                        try:
                            results = fut.result()
                        except Exception as exc:  # noqa: BLE001 - a lost task: re-run later
                            problems.append(f"{type(exc).__name__}: {exc}")
                            bar.update(len(chunk))
                            continue
                        for res in results:
                            if "crash" in res:
                                problems.append(f"run {by_id[res['run_id']].index}: "
                                                f"{res['crash']}")
                                continue
                            row = _row(by_id[res["run_id"]], res)
                            store.append(row)
                            done[row["run_id"]] = row
                            ran += 1
                            errors += row["error"] is not None
                        bar.update(len(chunk))
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    if owned:
                        owned = False
                        ex.stop_now()
                    raise
        finally:
            bar.close()
            if owned:
                ex.close()
        rows = [done[r.run_id] for r in runs if r.run_id in done]
        write_csv(rows, out / RESULTS_CSV)
        result = SweepResult(rows=rows, total=len(runs), skipped=skipped, ran=ran, errors=errors,
                             missing=len(runs) - len(rows),
                             wall_s=time.perf_counter() - t_start, out_dir=out)
    finally:
        store.close()
    if result.missing:
        first = " ".join(problems[0].split()) if problems else "unknown"
        raise SweepIncomplete(
            f"{result.missing} of {result.total} runs did not finish (first: {first}); "
            f"run the same sweep again to resume", result)
    return result


def _executor(executor: str | SweepExecutor | cf.Executor | None, workers: int | None,
              options: Mapping[str, Any] | None) -> SweepExecutor:
    """The executor that ``run_sweep``'s arguments name (see there)."""
    if executor is None or isinstance(executor, str):
        return make_executor(executor or "processes", workers=workers, warmup=_worker.warm,
                             preload=_worker.PRELOAD, **dict(options or {}))
    if options:
        raise ConfigError("executor_options", dict(options),
                          "must only be given with an executor's name")
    if isinstance(executor, SweepExecutor):
        return executor
    if isinstance(executor, cf.Executor):
        return ExecutorAdapter(executor, workers)
    raise ConfigError("executor", type(executor).__name__,
                      "must be a name, a SweepExecutor or a concurrent.futures.Executor")


def _chunks(runs: list[RunSpec], workers: int, chunk_size: int | None) -> list[list[RunSpec]]:
    """Split runs into tasks; automatic sizes shrink towards the end (load balance)."""
    if chunk_size is not None:
        return [runs[i:i + chunk_size] for i in range(0, len(runs), chunk_size)]
    out, i = [], 0
    while i < len(runs):
        size = min(_MAX_CHUNK, max(1, math.ceil((len(runs) - i) / (4 * workers))))
        out.append(runs[i:i + size])
        i += size
    return out


def _row(spec: RunSpec, res: Mapping[str, Any]) -> dict[str, Any]:
    """One table row: identity, inputs, metrics, error, volatile timings."""
    row = spec.row_head()
    for key, value in res["metrics"].items():
        if key not in row:
            row[key] = value
    row["error"] = res["error"]
    row["wall_s"] = res["wall_s"]
    row["run_s"] = res["run_s"]
    row["worker"] = res["worker"]
    return {k: clean(v) for k, v in row.items()}


def prepare_dask_workers(client: Any, *, own_cluster: bool = False) -> None:
    """Warm every worker of a Dask client before a sweep runs on it.

    Each worker imports tidesim and loads the compiled kernels once (from the
    Numba cache), so no run pays for it. On the workers of a cluster the
    caller started itself (``own_cluster``), glibc is also told to keep freed
    memory for the next run's trace; workers shared with others are left as
    they are. ``run_sweep(..., executor="dask", executor_options={"client":
    client})`` does this itself.

    Args:
        client: a ``distributed.Client``.
        own_cluster: True for a cluster this process started (``LocalCluster``).
    """
    make_executor("dask", client=client, warmup=_worker.warm,
                  keep_heap=own_cluster).prepare_workers()
