"""Optimal placement of small apps with ``scipy.optimize.milp``.

Binary ``x[i, n]`` puts instance ``i`` on node ``n``; every instance is on
exactly one node.

* ``makespan``: minimise ``z`` with ``Σ_i load_i·x[i, n] <= z`` for every
  node (``load_i`` = firings per iteration × cycles).
* ``link-load``: minimise ``Σ_(a,b) words_ab · Σ_(n,m) hops(n, m)·y[ab, n, m]``
  with ``y >= x[a, n] + x[b, m] - 1`` (the product of two binaries,
  linearised), plus the makespan with a small weight so ties go to the
  better-balanced placement.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

from ..errors import ConfigError

__all__ = ["MAX_INSTANCES", "MAX_NODES", "optimal_placement"]

MAX_INSTANCES = 12
MAX_NODES = 16


def optimal_placement(graph, dist: np.ndarray, load: np.ndarray, objective: str,
                      pins: np.ndarray | None = None) -> np.ndarray:
    """The placement minimising ``objective`` (see the module docstring).

    Args:
        graph: the SDF :class:`~tidesim.waves.Graph`.
        dist: int ``[N, N]`` hop distances of the network.
        load: int ``[I]`` compute cycles per iteration of each instance.
        objective: ``"makespan"`` or ``"link-load"``.
        pins: int ``[I]``: the node an instance must be on, -1 where free.

    Returns:
        int64 ``[I]`` nodes.
    """
    n_i, n_n = len(graph.instances), len(dist)
    if objective not in ("makespan", "link-load"):
        raise ConfigError("placement.objective", objective, "must be makespan or link-load")
    if n_i > MAX_INSTANCES or n_n > MAX_NODES:
        raise ConfigError("placement", "optimal",
                          f"is for at most {MAX_INSTANCES} instances on {MAX_NODES} nodes "
                          f"(got {n_i} on {n_n}): use greedy")
    pairs: dict[tuple[int, int], int] = {}
    if objective == "link-load":
        for e in graph.edges:
            if e.src != e.dst:
                port = graph.instances[e.src].action.outputs[e.src_port]
                w = int(graph.repetitions[e.src]) * port.rate * port.token_words
                pairs[(e.src, e.dst)] = pairs.get((e.src, e.dst), 0) + w
    n_x = n_i * n_n
    n_y = len(pairs) * n_n * n_n
    n_var = n_x + 1 + n_y  # x, z, y
    c = np.zeros(n_var)
    c[n_x] = 1.0 if objective == "makespan" else 1e-3
    for k, ((_a, _b), w) in enumerate(pairs.items()):
        base = n_x + 1 + k * n_n * n_n
        c[base:base + n_n * n_n] = w * dist.reshape(-1)
    rows = n_i + n_n + n_y
    A = lil_matrix((rows, n_var))
    lo = np.zeros(rows)
    hi = np.zeros(rows)
    for i in range(n_i):  # one node per instance
        A[i, i * n_n:(i + 1) * n_n] = 1
        lo[i] = hi[i] = 1
    for n in range(n_n):  # load on n <= z
        r = n_i + n
        for i in range(n_i):
            A[r, i * n_n + n] = load[i]
        A[r, n_x] = -1
        lo[r], hi[r] = -np.inf, 0
    r = n_i + n_n
    for k, (a, b) in enumerate(pairs):
        base = n_x + 1 + k * n_n * n_n
        for n in range(n_n):
            for m in range(n_n):
                # x[a, n] + x[b, m] - y <= 1
                A[r, a * n_n + n] = 1
                A[r, b * n_n + m] = 1
                A[r, base + n * n_n + m] = -1
                lo[r], hi[r] = -np.inf, 1
                r += 1
    integrality = np.ones(n_var)
    integrality[n_x] = 0
    ub = np.ones(n_var)
    ub[n_x] = np.inf
    if pins is not None:
        for i in np.flatnonzero(pins >= 0):  # a pinned instance has one possible node
            ub[i * n_n:(i + 1) * n_n] = 0
            ub[i * n_n + pins[i]] = 1
    res = milp(c, constraints=LinearConstraint(A.tocsr(), lo, hi),
               integrality=integrality, bounds=Bounds(np.zeros(n_var), ub))
    if res.x is None:  # pragma: no cover - always feasible
        raise ConfigError("placement", "optimal", f"found no solution ({res.message})")
    x = np.round(res.x[:n_x]).reshape(n_i, n_n)
    return np.argmax(x, axis=1).astype(np.int64)
