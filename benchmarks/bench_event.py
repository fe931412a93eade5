"""Event fidelity: node-updates per second, and 60 s of hitl8 at 200 µs updates."""

from _common import best_of, emit, rig_system

system = rig_system()
system.run(until_s=0.01)  # compile or load the cache
trace = None


def sixty_seconds():
    global trace
    trace = system.run(until_s=60.0)


wall = best_of(sixty_seconds, repeat=2)
updates = int(trace.n_samp.sum())
emit("event_fidelity_hitl8_60s", simulated_s=60.0, wall_s=wall, node_updates=updates,
     node_updates_per_s=updates / wall, target_node_updates_per_s=1.5e7, target_wall_s=1.0,
     converged=trace.summary()["converged"])
