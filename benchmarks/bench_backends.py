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

* **Counter app**: E's ``counter`` app on ``hitl-line4`` (4 nodes),
  synchronised on ``processes``, then run in logical time with each node
  stepping its own calendars and exchanging frames over its TCP links:
  aggregate node-cycles/s (nodes x application cycles / wall time of the
  calendar run), against the in-process executor; the digests must be
  identical. Target: 1e6 node-cycles/s.

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


def counter_app(preset, iterations):
    from tidesim.calendars import LogicalNetwork, execute, schedule, synchronise
    from tidesim.waves.apps import get_app

    s = system(preset)
    sim = synchronise(s, backend=make_backend("processes"))
    try:
        sched = schedule(get_app("counter", s.n_nodes).graph(),
                         LogicalNetwork.of_trace(sim.trace()))
        sim.execute(sched, 10)  # the nodes compile the actions once
        runs = [sim.execute(sched, iterations) for _ in range(3)]
        stats = sim.app_stats
    finally:
        sim.stop()
    want = execute(sched, iterations)
    best = min(runs, key=lambda r: r.wall_s)
    rate = s.n_nodes * best.cycles / best.wall_s
    return {"preset": preset, "nodes": s.n_nodes, "iterations": iterations,
            "metacycle_cycles": sched.metacycle_cycles, "cycles": best.cycles,
            "processes_s": best.wall_s, "node_cycles_per_s": rate,
            "inprocess_node_cycles_per_s": s.n_nodes * want.cycles / want.wall_s,
            "kernel_calls_per_node": [st["calls"] for st in stats],
            "waits_per_node": [st["waits"] for st in stats],
            "identical": all(r.digest() == want.digest() for r in runs),
            "target_1e6": rate >= 1e6}


def main() -> None:
    quick = "--quick" in sys.argv
    first = startup("hitl-line4")  # includes the node-process server
    out = {"first_start_with_server": first,
           "startup": [startup("hitl-line4"), startup("hitl8")],
           "dask_overhead_per_run": dask_overhead(),
           "physics": [physics("hitl-cycle5", 1.0 if quick else 10.0),
                       physics("hitl8", 1.0 if quick else 60.0)],
           "counter_app": counter_app("hitl-line4", 10_000 if quick else 50_000)}
    out["target_hitl8_within_20x"] = out["physics"][1]["ratio"] <= 20.0
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
