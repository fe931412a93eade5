"""The ``allreduce-ring`` app: ring allreduce, reduce-scatter then all-gather.

``n`` instances ``r0 .. r{n-1}`` in a ring ``i -> i+1``; each node holds a
float64 vector of ``V`` elements, split into ``n`` chunks of ``c = V / n``.
Node ``i``'s input in iteration ``k`` is ``x_i(k)[j] = ((31·i + 7·j + 13·k)
mod 19) - 9``. The algorithm has ``2(n-1)`` steps; in step ``s`` every node
sends one chunk to its successor:

* reduce-scatter, ``s = 0 .. n-2``: node ``i`` sends chunk ``(i - s) mod n``
  (its partial sum) and adds the chunk ``(i - 1 - s) mod n`` it receives to
  its own; after it, node ``i`` holds the complete chunk ``(i + 1) mod n``;
* all-gather, ``s = 0 .. n-2``: node ``i`` sends chunk ``(i + 1 - s) mod n``
  and stores the chunk ``(i - s) mod n`` it receives.

Each node fires ``2(n-1)`` times per iteration; firing ``f`` consumes the
chunk of step ``f`` and sends the chunk of step ``f + 1``. The last firing
sends step 0 of the *next* iteration (chunk ``i`` of ``x_i(k+1)``), so the
ring edges carry one initial token each (chunk ``i-1`` of ``x_{i-1}(0)``) and
every iteration's sums complete within the iteration. Output ``r{i}.out``
(one chunk per firing): zeros for firings ``0 .. n-3``, then the complete
chunks in the order node ``i`` learns them: ``i+1, i, i-1, ..., i+2``
(mod ``n``). The additions of a chunk run in ring order, from the chunk's
owner on, in every execution.

A ring of equal-rate actors alone would have the repetition vector
``(1, ..., 1)``: one more instance, ``result``, fixes the iteration. It
consumes node 0's ``2(n-1)`` output chunks per firing (so every ring node
fires ``2(n-1)`` times per iteration) and outputs node 0's reduced vector in
natural order, ``result.sum`` (float64 ``[V]`` per iteration). The app has
``n + 1`` instances.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..._jit import njit
from ...errors import ConfigError
from .. import App, In, Out, action
from ._common import count, fill_input, input_vector, needs_nodes

__all__ = ["DESCRIPTION", "input_vector", "make_allreduce_ring"]

DESCRIPTION = ("ring allreduce (reduce-scatter, all-gather) of a float64 vector per node, "
               "one chunk per firing")

_HEAD = 3  # state: node, iteration, firing, then the vector


@njit
def _ring_step(state, x, y, out):
    c = x.shape[0]
    buf = state[_HEAD:]
    n = buf.shape[0] // c
    i = int(state[0])
    f = int(state[2])
    if f <= n - 2:  # reduce-scatter: add the received partial sum, pass it on
        idx = (i - 1 - f + 2 * n) % n
        for j in range(c):
            buf[idx * c + j] += x[j]
            y[j] = buf[idx * c + j]
        if f == n - 2:  # the chunk is complete
            for j in range(c):
                out[j] = y[j]
    else:  # all-gather: keep the complete chunk, pass it on
        idx = (i - (f - n + 1) + 2 * n) % n
        for j in range(c):
            buf[idx * c + j] = x[j]
            y[j] = x[j]
            out[j] = x[j]
    f += 1
    if f == 2 * n - 2:  # step 0 of the next iteration: its own chunk of the next input
        k = int(state[1]) + 1
        state[1] = k
        f = 0
        fill_input(buf, i, k)
        for j in range(c):
            y[j] = buf[i * c + j]
    state[2] = f


@njit
def _assemble(state, x, s):
    # node 0's chunks: n-2 zeros, then chunks 1, 0, n-1, ..., 2
    c = x.shape[1]
    n = s.shape[0] // c
    for t in range(n):
        idx = (1 - t + n) % n
        for j in range(c):
            s[idx * c + j] = x[n - 2 + t, j]


@cache
def _actions(length: int, chunk: int) -> tuple:
    """The ring node and the result actions for ``length`` elements in chunks of ``chunk``."""
    steps = 2 * (length // chunk - 1)
    node = action(_ring_step, inputs={"x": In("f8", (chunk,))},
                  outputs={"y": Out("f8", (chunk,)), "out": Out("f8", (chunk,))},
                  state=("f8", (_HEAD + length,)), name="ring_node")
    result = action(_assemble, inputs={"x": In("f8", (chunk,), rate=steps)},
                    outputs={"sum": Out("f8", (length,))}, name="result")
    return node, result


def make_allreduce_ring(n_nodes: int, *, nodes: int | None = None,
                        length: int | None = None) -> App:
    """Ring allreduce among ``nodes`` nodes (default ``n_nodes - 1``), plus ``result``.

    Args:
        n_nodes: the nodes available (one instance per node; the app has
            ``nodes + 1`` instances).
        nodes: ring size ``n``, >= 2.
        length: ``V``, elements per vector, a multiple of ``n`` (default ``4·n``).

    Returns:
        The app ``allreduce-ring``; outputs ``r{i}.out`` for ``i >= 1``:
        ``2(n-1)`` chunks of ``V / n`` float64 per iteration, and
        ``result.sum``: node 0's reduced vector, one per iteration.
    """
    n = max(n_nodes - 1, 2) if nodes is None else nodes
    n = count("allreduce-ring", "nodes", n, 2)
    needs_nodes("allreduce-ring", n + 1, n_nodes, f"nodes={n}, plus the result instance")
    V = count("allreduce-ring", "length", 4 * n if length is None else length, n)
    if V % n:
        raise ConfigError("allreduce-ring.length", V, f"must be a multiple of nodes={n}")
    c = V // n
    act, result = _actions(V, c)
    app = App("allreduce-ring")
    for i in range(n):
        state = np.zeros(_HEAD + V)
        state[0] = i
        state[_HEAD:] = input_vector(i, 0, V)
        app.add(f"r{i}", act, state=state, node=i)
    for i in range(n):
        j = (i + 1) % n
        first = input_vector(i, 0, V)[i * c:(i + 1) * c]
        app.connect(f"r{i}.y", f"r{j}.x", initial=first[None, :])
    app.add("result", result, node=n).connect("r0.out", "result.x")
    return app
