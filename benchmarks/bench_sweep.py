"""Sweep throughput: 1000 runs of hitl8 (10 s simulated each, event fidelity).

Every run has its own seed, so its random offsets (``random_ppm = 100``)
differ. The sweep runs on the default local process pool (one worker per CPU)
into a temporary directory. Reported per run:

* ``kernel_s_per_run``: ``System.run`` (the simulation), measured inside the
  worker;
* ``worker_s_per_run``: the whole run inside the worker (validate, build,
  simulate, metrics);
* ``engine_overhead_s_per_run``: the sweep's wall time per run and worker
  (``wall_s · workers / runs``) minus the kernel time: everything the sweep
  engine adds around a simulation (config handling, metrics, process pool,
  results table, start-up).

The machine may be shared: ``worker_cpu_s_per_run`` (CPU time of the pool's
worker processes) does not grow when other processes compete for the CPUs,
wall times do; ``load_average`` is reported with them.

``python benchmarks/bench_sweep.py --runs 200`` runs a smaller sweep.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time

from _common import emit

from tidesim.studies.sweep import Sweep, run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--until", type=float, default=10.0, help="simulated seconds per run")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    t0 = time.perf_counter()
    sweep = Sweep({"preset": "hitl8"}, repeats=args.runs, seed=1, until_s=args.until,
                  fidelity="event")
    sweep.check()
    expand_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t1 = time.perf_counter()
        result = run_sweep(sweep, out, workers=args.workers, progress=False)
        sweep_s = time.perf_counter() - t1
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pool's workers, reaped
    worker_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rows = result.rows
    wall = expand_s + sweep_s
    kernel = statistics.fmean(r["run_s"] for r in rows)
    worker = statistics.fmean(r["wall_s"] for r in rows)
    per_run = wall * args.workers / len(rows)
    emit(
        "sweep_hitl8",
        runs=len(rows),
        workers=args.workers,
        simulated_s_per_run=args.until,
        wall_s=wall,
        expand_and_check_s=expand_s,
        runs_per_s=len(rows) / wall,
        kernel_s_per_run=kernel,
        worker_s_per_run=worker,
        wall_s_per_run_per_worker=per_run,
        engine_overhead_s_per_run=per_run - kernel,
        in_worker_overhead_s_per_run=worker - kernel,
        worker_cpu_s_per_run=worker_cpu / len(rows),
        load_average=os.getloadavg()[0],
        converged_fraction=sum(bool(r["converged"]) for r in rows) / len(rows),
        errors=result.errors,
        target_wall_s=60.0,
    )


if __name__ == "__main__":
    main()
