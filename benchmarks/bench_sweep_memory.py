"""Memory of a sweep worker: 1000 short hitl8 runs in one process.

Each run goes through the code path of a ``tidesim sweep`` worker
(:func:`tidesim.studies._worker.run_one`: validate, build, simulate
recording the summary, metrics), with its own seed and so its own random
offsets. The resident set (``VmRSS``) is sampled every 100 runs. Target:
flat, the last sample within 1.1 x the one after the first 100 runs (which
already holds the loaded kernels and one run's buffers).

``python benchmarks/bench_sweep_memory.py --runs 300 --until 0.5`` is quicker.
"""

from __future__ import annotations

import argparse
import time

from _common import emit, rss_mb

from tidesim.studies._worker import run_one, warm
from tidesim.studies.sweep import Sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--until", type=float, default=1.0, help="simulated seconds per run")
    parser.add_argument("--every", type=int, default=100, help="runs between two samples")
    args = parser.parse_args()

    sweep = Sweep({"preset": "hitl8"}, repeats=args.runs, seed=1, until_s=args.until,
                  fidelity="event")
    runs = sweep.runs()
    warm()
    before = rss_mb("VmRSS")
    samples, errors = [], 0
    t = time.perf_counter()
    for i, run in enumerate(runs, 1):
        row = run_one(run.run_id, run.config)
        errors += bool(row.get("error") or row.get("crash"))
        if i % args.every == 0:
            samples.append(rss_mb("VmRSS"))
    wall = time.perf_counter() - t
    first, last = samples[0], samples[-1]
    emit("sweep_worker_memory_hitl8", runs=len(runs), simulated_s_per_run=args.until,
         every=args.every, rss_before_mb=before, rss_mb=samples, first_mb=first,
         last_mb=last, max_mb=max(samples), peak_mb=rss_mb("VmHWM"), growth=last / first,
         wall_s=wall, ms_per_run=wall / len(runs) * 1e3, errors=errors, target_growth=1.1,
         meets_target=last <= 1.1 * first)


if __name__ == "__main__":
    main()
