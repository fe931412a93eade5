"""Memory of a long run: a 16x16 torus (256 nodes, 1024 links) for 20 s.

The ``hitl8`` rig's clock, control, buffer and stability settings with its
random offsets (±100 ppm), on a 16x16 torus, event fidelity. Each
measurement runs in a fresh process (``--child``), which reports its peak
resident set (``VmHWM``) after loading the kernels (``baseline_mb``; a
first process fills their cache) and at the end of the run (``peak_mb``):

* ``record="summary"`` for 5 s and for 20 s: targets ``peak_mb < 400`` at
  20 s and ``peak(20 s) <= 1.2 x peak(5 s)`` (memory does not grow with
  simulated time);
* ``record="full"`` for 1 s, to show what keeping every sample costs
  (``run_mb``, the peak less the baseline, grows with the simulated time).

Also reported: the wall time of each run, the nanoseconds per node-update
(one control sample of one node) and the buffer faults (none: the rig's
settings arm the buffers once every link is stable at once, which the
torus's links never are within 20 s; faults would cost no cliff either, see
``bench_faults.py``). For comparison, the same for the ``hitl8`` rig itself
(8 nodes) over its 60 s, with each recording.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import emit, rss_mb

WARM_S = 0.5
"""Simulated time of the runs that load the kernels (s): they then have
compacted segments too, whose kernels are loaded on first use."""
SYSTEMS = {
    "torus": {"preset": "hitl8", "seed": 1, "topology": {"kind": "torus", "dims": [16, 16]}},
    "rig": {"preset": "hitl8", "seed": 1},
}


def child(name: str, record: str, until_s: float) -> None:
    """One run in this process; print its numbers as one JSON object."""
    from tidesim.config import build_system, load_config, validate

    system = build_system(validate(load_config(SYSTEMS[name])))
    # load every kernel: long enough that segments are compacted
    system.run(until_s=WARM_S, record="summary")
    baseline = rss_mb()
    t = time.perf_counter()
    trace = system.run(until_s=until_s, record=record)
    wall = time.perf_counter() - t
    peak = rss_mb()
    updates = int(trace.n_updates.sum())
    summary = trace.summary()
    print(json.dumps({"system": name, "record": record, "simulated_s": until_s,
                      "baseline_mb": baseline, "peak_mb": peak, "run_mb": peak - baseline,
                      "wall_s": wall,
                      "node_updates": updates, "ns_per_node_update": wall / updates * 1e9,
                      "faults": len(summary["faults"]), "converged": summary["converged"]}))


def measure(name: str, record: str, until_s: float) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", name, record, str(until_s)],
                         capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.abspath(__file__)))
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], float(args.child[2]))
        return
    # a first process fills the kernels' cache: compiling them takes far more
    # memory than loading them, and would count in the first run measured
    measure("torus", "summary", WARM_S)
    short, long_ = measure("torus", "summary", 5.0), measure("torus", "summary", 20.0)
    full = measure("torus", "full", 1.0)
    rig_summary, rig_full = measure("rig", "summary", 60.0), measure("rig", "full", 60.0)
    emit("memory_torus16x16",
         nodes=256, links=1024,
         summary_5s=short, summary_20s=long_, full_1s=full,
         peak_mb_20s=long_["peak_mb"],
         growth_20s_over_5s=long_["peak_mb"] / short["peak_mb"],
         full_run_mb_per_simulated_s=full["run_mb"] / full["simulated_s"],
         ns_per_node_update=long_["ns_per_node_update"],
         rig_summary_60s=rig_summary, rig_full_60s=rig_full,
         rig_full_run_mb_per_simulated_s=rig_full["run_mb"] / rig_full["simulated_s"],
         target_peak_mb=400.0, target_growth=1.2,
         meets_targets=long_["peak_mb"] < 400.0 and long_["peak_mb"] <= 1.2 * short["peak_mb"])


if __name__ == "__main__":
    main()
