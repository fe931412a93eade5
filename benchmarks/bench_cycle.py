"""Cycle fidelity on the complete-8 rig: node-cycles per second on one core.

Two cases: the rig as configured (buffers count until each link is stable,
then run as FIFOs) and every buffer armed from link-up, so every frame goes
through a real FIFO of sequence numbers (with random ±100 ppm offsets those
buffers overflow and underflow, which the walk counts).
"""

from _common import best_of, emit, rig_system

SIM_S = 0.02  # 2.5 M cycles per node

for label, overrides in (("rig", {}), ("armed_fifo", {"buffer": {"arm": "link_up"}})):
    system = rig_system(**overrides)
    system.run(until_s=1e-4, fidelity="cycle")  # compile or load the cache
    wall = best_of(lambda s=system: s.run(until_s=SIM_S, fidelity="cycle"))
    node_cycles = system.n_nodes * SIM_S * system.f_nom_hz
    emit(f"cycle_fidelity_complete8_{label}", simulated_s=SIM_S, wall_s=wall,
         node_cycles_per_s=node_cycles / wall, target_node_cycles_per_s=4e7)
