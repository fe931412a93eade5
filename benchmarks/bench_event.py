"""Event fidelity: 60 s of hitl8 against the bare node-update bound, and a 32x32 torus.

A node-update is one control sample of one node: its incoming links advanced
to the sample (closed form, or the clipped closed form where a buffer may be
full or empty), the stability detectors, the records and the controller step.

Measured in one process, in alternation (the machine's speed drifts; the
ratios do not): the bound of ``bench_event_floor.py`` (only the arithmetic of
a node-update), 60 s of ``hitl8`` recording the summary, and the same
recording everything. Targets: summary at least 0.2x the bound's speed and
under 0.6 s; full recording at least 0.1x. Then ns per node-update of a 32x32
torus (1024 nodes, 4096 links), summary recording.
"""

import statistics

from _common import emit, rig_system
from bench_event_floor import Floor, timed

from tidesim.config import build_system, load_config, validate

ROUNDS = 5


def main() -> None:
    system = rig_system()
    floor = Floor(system)
    floor.bound(1000)  # compile or load the cache
    system.run(until_s=0.01, record="summary")
    updates = int(system.run(until_s=60.0, record="summary").n_updates.sum())
    t_bound, t_summary, t_full = [], [], []
    for _ in range(ROUNDS):
        t_bound.append(timed(lambda: floor.bound(updates)))
        t_summary.append(timed(lambda: system.run(until_s=60.0, record="summary")))
        t_full.append(timed(lambda: system.run(until_s=60.0)))
    ratio_summary = statistics.median(b / s for b, s in zip(t_bound, t_summary, strict=True))
    ratio_full = statistics.median(b / f for b, f in zip(t_bound, t_full, strict=True))
    emit("event_fidelity_hitl8_60s", simulated_s=60.0, node_updates=updates,
         bound_ns_per_node_update=min(t_bound) / updates * 1e9,
         summary_wall_s=min(t_summary), summary_ns_per_node_update=min(t_summary) / updates * 1e9,
         full_wall_s=min(t_full), full_ns_per_node_update=min(t_full) / updates * 1e9,
         summary_over_bound_speed=ratio_summary, full_over_bound_speed=ratio_full,
         target_summary_over_bound=0.2, target_full_over_bound=0.1, target_summary_wall_s=0.6)

    torus = build_system(validate(load_config({
        "preset": "hitl8", "topology": {"kind": "torus", "dims": [32, 32]},
        "clock": {"offsets_ppm": {"random_ppm": 100.0}}})))
    torus.run(until_s=0.01, record="summary")
    runs = [timed(lambda: torus.run(until_s=1.0, record="summary")) for _ in range(2)]
    t_updates = int(torus.run(until_s=1.0, record="summary").n_updates.sum())
    emit("event_fidelity_torus32x32_1s", simulated_s=1.0, node_updates=t_updates,
         summary_wall_s=min(runs), summary_ns_per_node_update=min(runs) / t_updates * 1e9)


if __name__ == "__main__":
    main()
