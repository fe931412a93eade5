"""The cycle-accurate bittide core: topologies, clocks, links, elastic buffers.

Public API::

    Topology   -- graphs and per-link latencies (``Topology.complete(8)``)
    System     -- topology + clocks + buffers + controller; ``System.run``
    Trace      -- what a run produced
    Fault      -- a sticky elastic-buffer flag
    Actuator, ElasticBuffer, Adjustment, Stability -- part configurations
"""

from .parts import Actuator, Adjustment, ElasticBuffer, Stability
from .system import FIDELITIES, Fault, System, Trace
from .topology import TOPOLOGY_KINDS, Topology, make_topology

__all__ = [
    "FIDELITIES",
    "TOPOLOGY_KINDS",
    "Actuator",
    "Adjustment",
    "ElasticBuffer",
    "Fault",
    "Stability",
    "System",
    "Topology",
    "Trace",
    "make_topology",
]
