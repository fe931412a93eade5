"""The cycle-accurate bittide core: topologies, clocks, links, elastic buffers.

Public API::

    Topology    -- graphs and per-link latencies (``Topology.complete(8)``)
    System      -- topology + clocks + buffers + controller; ``System.start``, ``System.run``
    Simulation  -- a run in progress, advanced in steps (``advance``, ``trace``)
    Trace       -- what a run produced: the one door to its results
    Fault       -- a sticky elastic-buffer flag
    Actuator, ElasticBuffer, Adjustment, Stability -- part configurations
"""

from .parts import Actuator, Adjustment, ElasticBuffer, Stability
from .simulation import FIDELITIES, RECORD_MODES, Simulation
from .system import System
from .topology import TOPOLOGY_KINDS, Topology, hop_distances, make_topology
from .trace import Fault, Trace

__all__ = [
    "FIDELITIES",
    "RECORD_MODES",
    "TOPOLOGY_KINDS",
    "Actuator",
    "Adjustment",
    "ElasticBuffer",
    "Fault",
    "Simulation",
    "Stability",
    "System",
    "Topology",
    "Trace",
    "hop_distances",
    "make_topology",
]
