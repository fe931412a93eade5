"""What a sweep does inside a worker: warm up once, then run chunks of runs.

These functions are sent to worker processes (a local pool, a Dask cluster)
by reference, so they live at module level and import the heavy modules
inside: unpickling them imports only this small module.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from ..errors import SimulationFault, TidesimError

__all__ = ["PRELOAD", "run_chunk", "run_one", "warm", "worker_id"]

PRELOAD = ("tidesim.config", "tidesim.studies.metrics", "tidesim.studies.analysis",
           "tidesim.studies._worker")
"""Modules a worker imports before its first run (a fork server preloads them)."""


def worker_id() -> str:
    """``host:pid`` of this process (the ``worker`` column)."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def warm() -> None:
    """Import tidesim and load every compiled kernel a run uses (from the cache)."""
    from ..config import build_system, load_config, validate
    from .metrics import run_metrics

    cfg = {"topology": {"kind": "complete", "n": 3}, "clock": {"offsets_ppm": [1.0, 0.0, -1.0]},
           "control": {"update_period_ticks": 1000}, "run": {"until_s": 1e-4},
           "controller": {"kind": "pi", "kp": 1e-7}}
    rc = validate(load_config(cfg))
    run_metrics(build_system(rc).run(rc.until_s, record="summary"))


def run_one(run_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate, build, simulate and measure one run (in a worker)."""
    from ..config import build_system, validate
    from .metrics import run_metrics

    t0 = time.perf_counter()
    run_s = None
    metrics: dict[str, Any] = {}
    error = None
    try:
        rc = validate(config)
        system = build_system(rc)
        t1 = time.perf_counter()
        try:
            # a row needs the summary only: memory stays flat however long the run
            trace = system.run(rc.until_s, until_cycles=rc.until_cycles, fidelity=rc.fidelity,
                               record=rc.record if rc.record is not None else "summary")
        except SimulationFault as exc:
            trace = exc.trace
            error = " ".join(str(exc).split())
        run_s = time.perf_counter() - t1
        if trace is not None:
            metrics = run_metrics(trace)
    except TidesimError as exc:
        error = " ".join(str(exc).split())
    except Exception as exc:  # noqa: BLE001 - reported, not recorded: a re-run retries it
        return {"run_id": run_id, "crash": f"{type(exc).__name__}: {exc}"}
    return {"run_id": run_id, "metrics": metrics, "error": error,
            "wall_s": time.perf_counter() - t0, "run_s": run_s, "worker": worker_id()}


def run_chunk(items: list[tuple[str, dict]]) -> list[dict[str, Any]]:
    """Run a chunk of ``(run_id, config)`` pairs in one worker task."""
    return [run_one(run_id, config) for run_id, config in items]
