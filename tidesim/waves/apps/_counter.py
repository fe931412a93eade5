"""The ``counter`` app: a ring of cheap counters, for benchmarks.

Instance ``c{i}`` (``i = 0 .. n-1``) keeps a counter that starts at ``i``.
Each iteration it fires once: the counter goes up by one, it sends the new
counter to its successor ``c{(i+1) % n}`` and outputs the counter plus what
it received from its predecessor ``p = (i-1) % n`` (sent one iteration
earlier; the ring's initial token on ``p -> i`` holds ``p``). In iteration
``k`` (from 0)::

    out_i(k) = (i + k + 1) + (p + k)
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit
from .. import App, In, Out, action
from ._common import count, needs_nodes

__all__ = ["DESCRIPTION", "make_counter"]

DESCRIPTION = "a ring of n counters, one int64 per node per iteration (cheap, for benchmarks)"


@action(inputs={"x": In("i8")}, outputs={"y": Out("i8"), "out": Out("i8")},
        state=("i8", (1,)), name="counter")
@njit
def counter(state, x, y, out):
    state[0] += 1
    y[()] = state[0]
    out[()] = state[0] + x[()]


def make_counter(n_nodes: int, *, nodes: int | None = None) -> App:
    """A ring of ``nodes`` counters (default: ``n_nodes``).

    Args:
        n_nodes: the nodes available (one instance per node).
        nodes: ring size, 1 .. ``n_nodes``.

    Returns:
        The app ``counter``: instances ``c0 .. c{n-1}``, outputs ``c{i}.out``
        (int64, one per iteration).
    """
    n = n_nodes if nodes is None else count("counter", "nodes", nodes, 1)
    needs_nodes("counter", n, n_nodes, f"nodes={n}")
    app = App("counter")
    for i in range(n):
        app.add(f"c{i}", counter, state=np.array([i], dtype=np.int64), node=i)
    for i in range(n):
        j = (i + 1) % n
        app.connect(f"c{i}.y", f"c{j}.x", initial=np.array([i], dtype=np.int64))
    return app
