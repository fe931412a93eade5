"""Event fidelity: node-updates per second, and 60 s of hitl8 at 200 µs updates.

A node-update is one control sample of one node: its incoming links advanced
to the sample (closed form, or the edge walk where a fault is possible), the
stability detectors, the records and the controller step. Link-updates count
the links advanced.
"""

from _common import best_of, emit, rig_system

system = rig_system()
system.run(until_s=0.01)  # compile or load the cache
trace = None


def sixty_seconds():
    global trace
    trace = system.run(until_s=60.0)


wall = best_of(sixty_seconds, repeat=2)
updates = int(trace.n_samp.sum())
# work is proportional to updates times in-degree: each update advances the
# node's incoming links (7 each in the complete-8 rig)
link_updates = int(sum(trace.n_samp[j] * (trace.links[:, 1] == j).sum()
                       for j in range(system.n_nodes)))
emit("event_fidelity_hitl8_60s", simulated_s=60.0, wall_s=wall, node_updates=updates,
     node_updates_per_s=updates / wall, ns_per_node_update=wall / updates * 1e9,
     link_updates_per_s=link_updates / wall, target_node_updates_per_s=1.5e7,
     target_wall_s=1.0, converged=trace.summary()["converged"])
