"""The built-in applications, and loading an app from a file.

Six apps, each a function of the number of nodes (one instance per node at
most, each instance pinned to its node: instance ``i`` in the order added
runs on node ``i``, whatever the placement) and a few parameters;
``docs/app-NAME.md`` describes each, with its SDF graph:

* ``allreduce-ring`` -- ring allreduce (reduce-scatter, all-gather), one chunk per firing;
* ``allreduce-tree`` -- reduce up a binary tree, broadcast down; scales to 1024 nodes;
* ``kv`` -- a sharded key-value store with a pseudo-random client;
* ``pipeline`` -- a streaming pipeline with rate changes;
* ``life`` -- Conway's Game of Life on a torus of tiles, halo exchange;
* ``counter`` -- a ring of counters, cheap, for benchmarks.

Every action is a Numba ``@njit`` function (cached on disk) with fixed
arithmetic order, so the functional execution and the logical-time
executor agree bit for bit.

Example:
    >>> from tidesim.waves import functional_run
    >>> from tidesim.waves.apps import app_names, get_app
    >>> app_names()
    ['allreduce-ring', 'allreduce-tree', 'kv', 'pipeline', 'life', 'counter']
    >>> functional_run(get_app("counter", n_nodes=3), iterations=2).outputs["c0.out"].tolist()
    [3, 5]
"""

from ._registry import app_names, describe, get_app, load_app, parameters

__all__ = ["app_names", "describe", "get_app", "load_app", "parameters"]
