"""The ``allreduce-tree`` app: reduce up a binary tree, broadcast down.

``m`` members ``k = 0 .. m-1``, each with two instances: ``up{k}`` and
``down{k}``, added in the order ``up0, down0, up1, down1, ...`` (so under
one-to-one placement member ``k`` sits on nodes ``2k`` and ``2k+1``). The
members form a binary tree in *in-order* layout: the root of members
``[lo, hi)`` is ``(lo + hi) // 2``, its left subtree ``[lo, root)`` and its
right subtree ``[root + 1, hi)``, so parent and child are close in member
number (at most ``m / 2`` apart, mostly much closer) and the tree's edges map
to short routes on a ring.

Member ``k``'s input in iteration ``t`` is ``x_k(t)[j] = ((29·k + 5·j + 11·t)
mod 23) - 11`` (float64, ``L`` elements). Every instance fires once per
iteration:

* ``up{k}`` sends its partial sum ``x_k(t) + left + right`` (added in that
  order; a missing child adds nothing) to its parent's ``up``; the root's
  goes to its own ``down``;
* ``down{k}`` receives the total from its parent's ``down`` (the root's from
  its ``up``), outputs it as ``down{k}.y`` and passes it to its children.

No edge has initial tokens: an iteration is one pass up and down the tree,
and the scheduler overlaps successive iterations. Instances: ``2m``.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..._jit import njit
from .. import App, In, Out, action
from ._common import count, fill_input, input_vector, needs_nodes

__all__ = ["DESCRIPTION", "input_vector", "make_allreduce_tree", "tree_parents"]

DESCRIPTION = ("tree allreduce (reduce up a binary tree, broadcast down) of float64 vectors; "
               "scales to 1024 nodes")


@njit
def _up0(state, s):
    fill_input(s, state[0], state[1])
    state[1] += 1


@njit
def _up1(state, a, s):
    fill_input(s, state[0], state[1])
    state[1] += 1
    for j in range(s.shape[0]):
        s[j] += a[j]


@njit
def _up2(state, a, b, s):
    fill_input(s, state[0], state[1])
    state[1] += 1
    for j in range(s.shape[0]):
        s[j] += a[j]
    for j in range(s.shape[0]):
        s[j] += b[j]


@njit
def _down_leaf(state, x, y):
    y[:] = x


@njit
def _down(state, x, y, b):
    y[:] = x
    b[:] = x


@cache
def _actions(length: int) -> dict:
    """The tree's actions for vectors of ``length`` elements (made once per length)."""
    v = ("f8", (length,))
    st = ("i8", (2,))  # member, iteration
    return {
        0: action(_up0, outputs={"s": Out(*v)}, state=st, name="up_leaf"),
        1: action(_up1, inputs={"a": In(*v)}, outputs={"s": Out(*v)}, state=st, name="up_one"),
        2: action(_up2, inputs={"a": In(*v), "b": In(*v)}, outputs={"s": Out(*v)},
                  state=st, name="up_two"),
        "leaf": action(_down_leaf, inputs={"x": In(*v)}, outputs={"y": Out(*v)},
                       name="down_leaf"),
        "inner": action(_down, inputs={"x": In(*v)}, outputs={"y": Out(*v), "b": Out(*v)},
                        name="down"),
    }


def tree_parents(members: int) -> np.ndarray:
    """The in-order binary tree on ``members`` members: int64 parent per member, -1 at the root."""
    parent = np.full(members, -1, dtype=np.int64)
    stack = [(0, members, -1)]
    while stack:
        lo, hi, up = stack.pop()
        if lo >= hi:
            continue
        root = (lo + hi) // 2
        parent[root] = up
        stack.append((lo, root, root))
        stack.append((root + 1, hi, root))
    return parent


def make_allreduce_tree(n_nodes: int, *, members: int | None = None, length: int = 4) -> App:
    """Tree allreduce among ``members`` members (default ``n_nodes // 2``).

    Args:
        n_nodes: the nodes available (one instance per node; two per member).
        members: tree size ``m``, >= 1.
        length: ``L``, elements per vector, >= 1.

    Returns:
        The app ``allreduce-tree``; outputs ``down{k}.y``: the sum of all
        members' vectors, one per iteration.
    """
    m = max(n_nodes // 2, 1) if members is None else members
    m = count("allreduce-tree", "members", m, 1)
    L = count("allreduce-tree", "length", length, 1)
    needs_nodes("allreduce-tree", 2 * m, n_nodes, f"members={m}, two instances each")
    acts = _actions(L)
    parent = tree_parents(m)
    children: list[list[int]] = [[] for _ in range(m)]
    for k in range(m):  # in member order: the left child first
        if parent[k] >= 0:
            children[int(parent[k])].append(k)
    app = App("allreduce-tree")
    for k in range(m):
        app.add(f"up{k}", acts[len(children[k])], state=np.array([k, 0], dtype=np.int64),
                node=2 * k)
        app.add(f"down{k}", acts["inner" if children[k] else "leaf"], node=2 * k + 1)
    for k in range(m):
        for port, child in zip("ab", children[k], strict=False):
            app.connect(f"up{child}.s", f"up{k}.{port}")
            app.connect(f"down{k}.b", f"down{child}.x")
        if parent[k] < 0:
            app.connect(f"up{k}.s", f"down{k}.x")
    return app
