"""The hardware backends: what running a node per OS process costs.

Measurements (``processes`` backend, namespaces where the machine allows):

* **Start-up**: wall time from ``start`` to every node connected, for 4 and
  8 nodes (the first start also starts the node-process server, reported
  apart), and per node.
* **Dask overhead per run**: wall time of a whole short run (start, advance
  ``hitl-cycle5`` to 0.1 s, collect the trace, stop) on a new
  ``LocalCluster`` (one worker process per node), and on a cluster started
  once and reused (``scheduler=``), against ``processes`` and in-process.
* **Physics**: ``hitl8`` (8 nodes) and ``hitl-cycle5`` (5 nodes) run to
  ``UNTIL_S``, summary recording, against the same run in process (event
  fidelity), in one process and on one machine. The summaries must be
  identical. Windows and iterations say how the fixed-point windows went:
  each iteration is one exchange of frames over every link. Target:
  ``hitl8`` within 20x of in-process.

``--quick`` runs shorter.
"""

from __future__ import annotations

import json
import sys
import time

from tidesim.backends import make_backend
from tidesim.config import build_system, load_config, validate


def system(preset):
    return build_system(validate(load_config({"preset": preset})))


def physics(preset, until_s):
    s = system(preset)
    t = time.perf_counter()
    want = s.start(record="summary").advance(until_s).trace().summary()
    t_in = time.perf_counter() - t
    with make_backend("processes").start(s) as run:
        t = time.perf_counter()
        run.advance(until_s)
        t_pr = time.perf_counter() - t
        same = run.trace().summary() == want
        stats, iso = run.windows(), run.isolation
    return {"preset": preset, "until_s": until_s, "isolation": iso, "inprocess_s": t_in,
            "processes_s": t_pr, "ratio": t_pr / t_in, "identical": same, **stats,
            "exchange_ms": 1e3 * t_pr / max(stats["iterations"], 1)}


def startup(preset):
    s = system(preset)
    t = time.perf_counter()
    run = make_backend("processes").start(s)
    wall = time.perf_counter() - t
    run.stop()
    return {"nodes": s.n_nodes, "start_s": wall, "per_node_s": wall / s.n_nodes,
            "isolation": run.isolation}


def short_run(name, **options):
    s = system("hitl-cycle5")
    t = time.perf_counter()
    if name == "inprocess":
        s.start(record="summary").advance(0.1).trace()
    else:
        with make_backend(name, **options).start(s) as run:
            run.advance(0.1)
            run.trace()
    return time.perf_counter() - t


def dask_overhead():
    from distributed import LocalCluster

    out = {"inprocess_s": short_run("inprocess"), "processes_s": short_run("processes"),
           "dask_new_local_cluster_s": short_run("dask")}
    with LocalCluster(n_workers=5, threads_per_worker=1, dashboard_address=None) as cluster:
        short_run("dask", scheduler=cluster.scheduler_address)  # workers load the core
        out["dask_running_cluster_s"] = short_run("dask", scheduler=cluster.scheduler_address)
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    first = startup("hitl-line4")  # includes the node-process server
    out = {"first_start_with_server": first,
           "startup": [startup("hitl-line4"), startup("hitl8")],
           "dask_overhead_per_run": dask_overhead(),
           "physics": [physics("hitl-cycle5", 1.0 if quick else 10.0),
                       physics("hitl8", 1.0 if quick else 60.0)]}
    out["target_hitl8_within_20x"] = out["physics"][1]["ratio"] <= 20.0
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
