"""Applications in logical time: the counter app's speed and memory, allreduce scheduling.

Every network is a 2-D torus (``Topology.torus``, both directions of every
edge) whose links have seeded random logical latencies of 5..40 cycles.
Three measurements:

* **Speed**: node-cycles per second of :func:`tidesim.calendars.execute`
  running the built-in ``counter`` app (a ring of counters, one firing per
  node per iteration) on an 8x8 and a 32x32 torus, against a bare
  gather -> link -> scatter -> compute kernel in this script, on the same
  networks, measured in alternation in one process (the machine's speed
  drifts; the ratios do not). Per cycle the bare kernel puts every link's
  sender's Tx word on a ring buffer ``latency`` cycles ahead, writes every
  link's arriving word into its receiver's Rx memory, then adds one to every
  node's counter and writes counter plus Rx word into its Tx word. It has no
  calendars, stages, taints, faults or dispatch. The executor's rate uses
  the kernel's own wall time (``LogicalRun.wall_s``, what the cycles cost);
  the rate over the whole :func:`execute` call, which also builds the
  tables and memories, is reported beside it. Target: executor / bare
  ``>= 0.25`` at both sizes.
* **Memory**: the peak resident set of a fresh process (``--child-memory``)
  that builds, schedules and executes the counter app on the 32x32 torus
  (1024 nodes); for context, of one that only imports ``numpy`` and
  ``tidesim``, and of one that imports ``tidesim.calendars`` and the apps
  (with Numba and the cached kernels). Target: ``< 358 MB``.
* **Scheduling**: the wall time of :func:`~tidesim.calendars.schedule` and,
  separately, of :func:`~tidesim.calendars.check_schedule` for the
  ``allreduce-tree`` app (512 members, 1024 instances) and the
  ``allreduce-ring`` app on the 32x32 torus. Target: ``< 10 s`` each. The
  ring app has ``2(n-1)`` firings per ring node per iteration, so its work
  grows with ``n^2``: ring sizes 31, 63, 127, ... are scheduled (on the same
  1024-node torus) while the next one's time, extrapolated from the last per
  firing, stays under ``RING_LIMIT_S``; the full ring (1023 nodes, about
  2.1 M firings) is reported as infeasible when it would exceed that.

``--quick`` runs small sizes only, to check that the script works.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from _common import best_of, emit, rss_mb

from tidesim._jit import njit
from tidesim.calendars import LogicalNetwork, check_schedule, execute, schedule
from tidesim.models import Topology
from tidesim.waves.apps import get_app

LATENCY_CYCLES = (5, 40)
"""Inclusive range of the links' seeded random logical latencies (cycles)."""
SEED = 1
SIDES = (8, 32)
TIMED_S = 0.4
"""Aimed-for wall time of each timed run (s), so that each lasts at least 0.2 s."""
ROUNDS = 3
MEMORY_SIDE = 32
MEMORY_ITERATIONS = 10
TARGET_RATIO = 0.25
TARGET_PEAK_MB = 358.0
TARGET_SCHEDULE_S = 10.0
RING_LIMIT_S = 60.0
"""A ring size is scheduled only while its extrapolated time stays under this (s)."""


def torus_network(side: int, seed: int = SEED) -> LogicalNetwork:
    """A ``side x side`` torus, both directions of every edge, latencies 5..40 cycles."""
    topo = Topology.torus([side, side], seed=seed)
    rng = np.random.default_rng(seed)
    lat = rng.integers(LATENCY_CYCLES[0], LATENCY_CYCLES[1] + 1, len(topo.links))
    return LogicalNetwork.from_topology(topo, lat)


@njit(cache=True)
def bare_kernel(n_cycles, lsrc, delay, rx_slot, rx_first, tx, rx, counter, ring):
    """``n_cycles`` cycles of gather -> link -> scatter -> compute; returns a checksum.

    Args:
        n_cycles: cycles to run.
        lsrc, delay: int64 ``[L]`` each link's sender and latency (cycles).
        rx_slot: int64 ``[L]`` each link's word in the flat Rx memory.
        rx_first: int64 ``[N]`` the Rx word each node's compute reads.
        tx, rx, counter: uint64 ``[N]``, ``[L]``, ``[N]`` memories.
        ring: uint64 ``[L, R]`` frames in flight, ``R > max(delay)``.
    """
    n_links = lsrc.shape[0]
    n_nodes = tx.shape[0]
    n_slots = ring.shape[1]
    for c in range(n_cycles):
        # gather: each link's sender puts its Tx word on the wire
        for link in range(n_links):
            ring[link, (c + delay[link]) % n_slots] = tx[lsrc[link]]
        # scatter: each link's receiver takes the word due now
        now = c % n_slots
        for link in range(n_links):
            rx[rx_slot[link]] = ring[link, now]
        # compute
        for n in range(n_nodes):
            counter[n] += np.uint64(1)
            tx[n] = counter[n] + rx[rx_first[n]]
    return tx.sum()


class Bare:
    """The bare kernel's inputs and memories for one network."""

    def __init__(self, net: LogicalNetwork) -> None:
        dst = net.links[:, 1]
        order = np.argsort(dst, kind="stable")  # Rx words grouped by receiver
        self.rx_slot = np.empty(net.n_links, dtype=np.int64)
        self.rx_slot[order] = np.arange(net.n_links)
        self.rx_first = np.searchsorted(dst[order], np.arange(net.n_nodes)).astype(np.int64)
        self.lsrc = np.ascontiguousarray(net.links[:, 0])
        self.delay = np.ascontiguousarray(net.latency_cycles)
        self.tx = np.arange(net.n_nodes, dtype=np.uint64)
        self.rx = np.zeros(net.n_links, dtype=np.uint64)
        self.counter = np.zeros(net.n_nodes, dtype=np.uint64)
        self.ring = np.zeros((net.n_links, int(self.delay.max()) + 1), dtype=np.uint64)

    def run(self, n_cycles: int) -> int:
        return int(bare_kernel(n_cycles, self.lsrc, self.delay, self.rx_slot, self.rx_first,
                               self.tx, self.rx, self.counter, self.ring))


def iterations_for(sched, seconds: float) -> int:
    """Iterations whose kernel time is about ``seconds``, from a short run."""
    n = 2
    while True:
        run = execute(sched, n)
        if run.wall_s > 0.02 or n >= 1 << 20:
            return max(1, int(np.ceil(n * seconds / run.wall_s)))
        n *= 4


def counter_speed(side: int, timed_s: float) -> dict:
    """The counter app's node-cycles per second against the bare kernel's, one size."""
    net = torus_network(side)
    n = net.n_nodes
    sched = schedule(get_app("counter", n).graph(), net)
    execute(sched, 1)  # compile the app's dispatch
    n_iter = iterations_for(sched, timed_s)
    bare = Bare(net)
    bare.run(10)  # compile or load the cache
    t = time.perf_counter()
    bare.run(1000)
    bare_cycles = max(1000, int(1000 * timed_s / (time.perf_counter() - t)))
    t_exec, t_kernel, t_bare, ratios = [], [], [], []
    cycles = 0
    for _ in range(ROUNDS):
        t = time.perf_counter()
        run = execute(sched, n_iter)
        t_exec.append(time.perf_counter() - t)
        t_kernel.append(run.wall_s)
        cycles = run.cycles
        t_bare.append(best_of(lambda: bare.run(bare_cycles), repeat=1))
        ratios.append((cycles / run.wall_s) / (bare_cycles / t_bare[-1]))
    kernel_rate = n * cycles / min(t_kernel)
    bare_rate = n * bare_cycles / min(t_bare)
    return {"nodes": n, "links": net.n_links, "metacycle_cycles": sched.metacycle_cycles,
            "iterations": n_iter, "cycles": cycles,
            "execute_kernel_wall_s": min(t_kernel), "execute_call_wall_s": min(t_exec),
            "execute_node_cycles_per_s": kernel_rate,
            "execute_call_node_cycles_per_s": n * cycles / min(t_exec),
            "bare_cycles": bare_cycles, "bare_wall_s": min(t_bare),
            "bare_node_cycles_per_s": bare_rate,
            "ratio": kernel_rate / bare_rate,
            "ratio_per_round": ratios,
            "call_ratio": n * cycles / min(t_exec) / bare_rate}


def child_memory(side: int, iterations: int) -> None:
    """Build, schedule and execute the counter app; print the peak RSS as JSON."""
    base = rss_mb()
    t = time.perf_counter()
    net = torus_network(side)
    sched = schedule(get_app("counter", net.n_nodes).graph(), net)
    run = execute(sched, iterations)
    print(json.dumps({"nodes": net.n_nodes, "iterations": iterations, "cycles": run.cycles,
                      "import_peak_mb": base, "peak_mb": rss_mb(),
                      "wall_s": time.perf_counter() - t}))


PEAK_MB_CODE = """\
import sys
from pathlib import Path
try:
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    print(int(hwm.split()[1]) / 1024)
except (OSError, StopIteration):
    import resource
    scale = 1 if sys.platform == "darwin" else 1024
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20)
"""
"""Prints the peak resident set (MB) as ``_common.rss_mb`` does, importing nothing
heavy itself (``ru_maxrss`` alone would keep the parent's peak across ``exec``)."""


def imports_peak_mb(modules: str) -> float:
    """Peak resident set (MB) of a fresh process that only imports ``modules``."""
    out = subprocess.run([sys.executable, "-c", f"import {modules}\n{PEAK_MB_CODE}"],
                         capture_output=True, text=True, check=True)
    return float(out.stdout)


def in_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), *args],
                         capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.abspath(__file__)))
    return json.loads(out.stdout)


def timed_schedule(app, net: LogicalNetwork) -> dict:
    """Wall time of scheduling ``app`` on ``net`` and of checking the result."""
    graph = app.graph()
    t = time.perf_counter()
    sched = schedule(graph, net)
    schedule_s = time.perf_counter() - t
    t = time.perf_counter()
    check_schedule(sched)
    check_s = time.perf_counter() - t
    return {"instances": len(graph.instances), "firings": sched.n_firings,
            "metacycle_cycles": sched.metacycle_cycles,
            "schedule_s": schedule_s, "check_s": check_s}


def ring_firings(nodes: int) -> int:
    """Firings per iteration of ``allreduce-ring`` with ``nodes`` ring nodes."""
    return nodes * 2 * (nodes - 1) + 1


def scheduling(side: int, ring_limit_s: float) -> dict:
    """Schedule and check allreduce-tree and allreduce-ring on a ``side x side`` torus."""
    net = torus_network(side)
    n = net.n_nodes
    tree = timed_schedule(get_app("allreduce-tree", n), net)
    full = n - 1  # the default ring: every node but the result's
    rings, size = [], min(full, 31)
    while True:
        rings.append({"ring_nodes": size, **timed_schedule(
            get_app("allreduce-ring", n, nodes=size), net)})
        if size == full:
            break
        nxt = min(full, 2 * size + 1)
        last = rings[-1]
        per_firing_s = (last["schedule_s"] + last["check_s"]) / last["firings"]
        if per_firing_s * ring_firings(nxt) > ring_limit_s:
            break
        size = nxt
    largest = rings[-1]
    last_per_firing_s = largest["schedule_s"] / largest["firings"]
    return {"nodes": n, "links": net.n_links, "tree": tree, "ring": rings,
            "ring_full_nodes": full,
            "ring_full_feasible": largest["ring_nodes"] == full,
            "ring_largest_nodes": largest["ring_nodes"],
            "ring_largest_schedule_s": largest["schedule_s"],
            "ring_largest_check_s": largest["check_s"],
            "ring_largest_within_target_nodes": max(
                (r["ring_nodes"] for r in rings
                 if max(r["schedule_s"], r["check_s"]) < TARGET_SCHEDULE_S), default=0),
            "ring_full_firings": ring_firings(full),
            "ring_full_schedule_s_extrapolated": last_per_firing_s * ring_firings(full)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs")
    parser.add_argument("--ring-limit-s", type=float, default=RING_LIMIT_S,
                        help="largest extrapolated time of a ring size to schedule (s)")
    parser.add_argument("--child-memory", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        child_memory(*args.child_memory)
        return
    sides = (4, 8) if args.quick else SIDES
    timed_s = 0.02 if args.quick else TIMED_S
    memory_side = 8 if args.quick else MEMORY_SIDE
    ring_limit_s = 1.0 if args.quick else args.ring_limit_s

    speed = {f"torus{s}x{s}": counter_speed(s, timed_s) for s in sides}
    # the counter run above filled the kernels' cache: the child only loads them
    memory = in_child("--child-memory", str(memory_side), str(MEMORY_ITERATIONS))
    imports = {"numpy_tidesim_mb": imports_peak_mb("numpy, tidesim"),
               "app_layer_mb": imports_peak_mb("numpy, tidesim.calendars, tidesim.waves.apps")}
    sched = scheduling(memory_side, ring_limit_s)
    ratios = [v["ratio"] for v in speed.values()]
    emit("app_logical_time", quick=args.quick, latency_cycles=list(LATENCY_CYCLES),
         counter=speed, counter_ratio_min=min(ratios),
         memory=memory, memory_peak_mb=memory["peak_mb"],
         imports_peak_mb=imports,
         scheduling=sched,
         tree_schedule_s=sched["tree"]["schedule_s"], tree_check_s=sched["tree"]["check_s"],
         target_ratio=TARGET_RATIO, target_peak_mb=TARGET_PEAK_MB,
         target_schedule_s=TARGET_SCHEDULE_S,
         meets_targets={
             "ratio": min(ratios) >= TARGET_RATIO,
             "memory": memory["peak_mb"] < TARGET_PEAK_MB,
             "tree": max(sched["tree"]["schedule_s"], sched["tree"]["check_s"])
             < TARGET_SCHEDULE_S,
             "ring_full": sched["ring_full_feasible"] and max(
                 sched["ring"][-1]["schedule_s"], sched["ring"][-1]["check_s"])
             < TARGET_SCHEDULE_S})


if __name__ == "__main__":
    main()
