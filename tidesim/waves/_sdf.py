"""Synchronous dataflow analysis: balance equations, repetition vector, deadlock.

An edge from output port ``y`` of instance ``a`` (``p`` tokens per firing)
to input port ``x`` of ``b`` (``c`` tokens per firing) holds its token count
over one iteration only if

    q[a] · p = q[b] · c        (the balance equation of the edge)

The *repetition vector* ``q`` is the smallest positive integer solution, per
weakly connected component (a component's ``q`` has gcd 1). The graph is
*consistent* when a solution exists. It is found exactly, with fractions: a
spanning tree of each component fixes ``q`` relative to its root, and every
other edge must then agree.

The *deadlock check* executes one iteration symbolically: starting from the
initial tokens, an instance fires when it has fired fewer than ``q`` times and
every input holds at least its rate. Among those that can fire, the one that
has fired least fires first (ties: the lower instance index), which keeps the
schedule interleaved and the buffers small. If instances remain that cannot
fire, a cycle of starving edges has too few initial tokens. The firings form
:attr:`Graph.order`, a valid sequential schedule that returns every edge to
its initial token count.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Protocol

import numpy as np

from ._errors import WavesError

__all__ = ["repetition_vector", "schedule"]

_INT64_MAX = 2**63 - 1
MAX_FIRINGS = 10_000_000
"""The most firings one iteration may have: the symbolic execution (and any
schedule) takes time and memory in proportion to them."""


class _Port(Protocol):
    name: str
    rate: int


class _Instance(Protocol):
    name: str
    action: object


class _Edge(Protocol):
    src: int
    src_port: int
    dst: int
    dst_port: int
    initial: np.ndarray


def _rates(instances: Sequence[_Instance], e: _Edge) -> tuple[int, int]:
    return (instances[e.src].action.outputs[e.src_port].rate,  # type: ignore[attr-defined]
            instances[e.dst].action.inputs[e.dst_port].rate)  # type: ignore[attr-defined]


def edge_text(instances: Sequence[_Instance], e: _Edge) -> str:
    """``a.y -> b.x``: an edge as messages show it."""
    src, dst = instances[e.src], instances[e.dst]
    return (f"{src.name}.{src.action.outputs[e.src_port].name} -> "  # type: ignore[attr-defined]
            f"{dst.name}.{dst.action.inputs[e.dst_port].name}")  # type: ignore[attr-defined]


def _ratio_text(r: Fraction) -> str:
    return f"{r.numerator}" if r.denominator == 1 else f"{r.numerator}/{r.denominator}"


def repetition_vector(instances: Sequence[_Instance], edges: Sequence[_Edge]) -> np.ndarray:
    """The smallest positive solution of the balance equations, per weakly connected component.

    Args:
        instances: the graph's instances (``name``, ``action``).
        edges: its edges (``src``, ``src_port``, ``dst``, ``dst_port``).

    Returns:
        int64[len(instances)]: ``q``, gcd 1 within each component.

    Raises:
        WavesError: inconsistent rates (``waves: inconsistent rates on a.y ->
            b.x (a fires 2x per b firing but the path ... makes it 1x)``), or a
            repetition count beyond int64.
    """
    n = len(instances)
    adjacent: list[list[int]] = [[] for _ in range(n)]
    for k, e in enumerate(edges):
        adjacent[e.src].append(k)
        if e.dst != e.src:
            adjacent[e.dst].append(k)
    q: list[Fraction | None] = [None] * n
    parent: list[int] = [-1] * n  # the tree edge to the parent, -1 at a root
    depth = [0] * n
    component = [0] * n
    roots = []
    for root in range(n):
        if q[root] is not None:
            continue
        roots.append(root)
        q[root] = Fraction(1)
        component[root] = len(roots) - 1
        queue = [root]
        while queue:
            u = queue.pop()
            for k in adjacent[u]:
                e = edges[k]
                p, c = _rates(instances, e)
                if e.src == e.dst:
                    if p != c:
                        name = instances[u].name
                        raise WavesError(
                            f"inconsistent rates on {edge_text(instances, e)} (a loop on "
                            f"{name}: each firing of {name} gives {p} tokens and takes {c})")
                    continue
                qu: Fraction = q[u]  # type: ignore[assignment]
                v = e.dst if u == e.src else e.src
                want = qu * p / c if u == e.src else qu * c / p
                if q[v] is None:
                    q[v], parent[v], depth[v] = want, k, depth[u] + 1
                    component[v] = component[root]
                    queue.append(v)
                elif q[v] != want:
                    raise WavesError(_inconsistent(instances, edges, q, parent, depth, k))
    out = np.zeros(n, dtype=np.int64)
    for comp in range(len(roots)):
        members = [i for i in range(n) if component[i] == comp]
        scale = math.lcm(*(q[i].denominator for i in members))  # type: ignore[union-attr]
        ints = [int(q[i] * scale) for i in members]  # type: ignore[operator]
        g = math.gcd(*ints)
        for i, v in zip(members, ints, strict=True):
            if v // g > _INT64_MAX:
                raise WavesError(f"the repetition count of {instances[i].name} ({v // g}) "
                                 "does not fit in 64 bits")
            out[i] = v // g
    return out


def _inconsistent(instances, edges, q, parent, depth, k: int) -> str:
    """The message for edge ``k``, whose balance equation the spanning tree contradicts."""
    e = edges[k]
    p, c = _rates(instances, e)
    a, b = instances[e.src].name, instances[e.dst].name
    need = Fraction(c, p)  # firings of a per firing of b that this edge needs
    have = q[e.src] / q[e.dst]  # what the tree path between them gives
    # the tree path from e.src to e.dst: climb from the deeper end to the common ancestor
    up_a, up_b, u, v = [], [], e.src, e.dst
    while u != v:
        if depth[u] >= depth[v]:
            up_a.append(parent[u])
            u = edges[parent[u]].dst if edges[parent[u]].src == u else edges[parent[u]].src
        else:
            up_b.append(parent[v])
            v = edges[parent[v]].dst if edges[parent[v]].src == v else edges[parent[v]].src
    path = ", ".join(edge_text(instances, edges[j]) for j in [*up_a, *reversed(up_b)])
    return (f"inconsistent rates on {edge_text(instances, e)} ({a} fires "
            f"{_ratio_text(need)}x per {b} firing but the path {path} makes it "
            f"{_ratio_text(have)}x)")


def schedule(instances: Sequence[_Instance], edges: Sequence[_Edge],
             q: np.ndarray) -> tuple[int, ...]:
    """One iteration's sequential firing order, by symbolic execution from the initial tokens.

    Args:
        instances: the graph's instances.
        edges: its edges (with ``initial`` tokens).
        q: the repetition vector.

    Returns:
        Instance indices; instance ``i`` appears ``q[i]`` times.

    Raises:
        WavesError: ``waves: deadlock: cycle a.y -> b.x, b.y -> a.x has too few
            initial tokens``, or an iteration of more than :data:`MAX_FIRINGS` firings.
    """
    n = len(instances)
    total = int(sum(int(x) for x in q))
    if total > MAX_FIRINGS:
        most = max(range(n), key=lambda i: int(q[i]))
        raise WavesError(f"one iteration has {total} firings ({instances[most].name} fires "
                         f"{int(q[most])} times), more than {MAX_FIRINGS}: check the rates")
    tokens = [int(e.initial.shape[0]) for e in edges]
    need = [_rates(instances, e)[1] for e in edges]
    give = [_rates(instances, e)[0] for e in edges]
    ins: list[list[int]] = [[] for _ in range(n)]
    outs: list[list[int]] = [[] for _ in range(n)]
    for k, e in enumerate(edges):
        ins[e.dst].append(k)
        outs[e.src].append(k)
    fired = [0] * n
    todo = [int(x) for x in q]

    def ready(i: int) -> bool:
        return fired[i] < todo[i] and all(tokens[k] >= need[k] for k in ins[i])

    heap = [(0, i) for i in range(n) if ready(i)]
    heapq.heapify(heap)
    queued = [False] * n
    for _, i in heap:
        queued[i] = True
    order: list[int] = []
    while heap:
        _, i = heapq.heappop(heap)
        queued[i] = False
        for k in ins[i]:
            tokens[k] -= need[k]
        for k in outs[i]:
            tokens[k] += give[k]
        fired[i] += 1
        order.append(i)
        # only i's consumers (and i itself) can have become ready
        for j in (i, *(edges[k].dst for k in outs[i])):
            if not queued[j] and ready(j):
                queued[j] = True
                heapq.heappush(heap, (fired[j], j))
    if len(order) != sum(todo):
        raise WavesError(_deadlock(instances, edges, tokens, need, fired, todo, ins))
    return tuple(order)


def _deadlock(instances, edges, tokens, need, fired, todo, ins) -> str:
    """The message naming one cycle of starving edges.

    A blocked instance has an input edge with fewer tokens than its rate;
    that edge's source is blocked too (a source that finished its iteration
    has delivered every token the consumer still needs), so walking
    backwards along starving edges from a blocked instance closes a cycle.
    """
    ran = f"{sum(fired)} of {sum(todo)} firings of the iteration ran"
    start = next(i for i in range(len(instances)) if fired[i] < todo[i])
    seen: dict[int, int] = {}
    walk: list[int] = []  # edges, walking backwards
    u = start
    while u not in seen:
        seen[u] = len(walk)
        k = next((k for k in ins[u] if tokens[k] < need[k]), -1)
        if k < 0:  # unreachable for a solved q; a message rather than StopIteration
            return f"deadlock: {instances[u].name} cannot fire ({ran})"
        walk.append(k)
        u = edges[k].src
    cycle = list(reversed(walk[seen[u]:]))
    path = ", ".join(edge_text(instances, edges[k]) for k in cycle)
    initial = sum(int(edges[k].initial.shape[0]) for k in cycle)
    return (f"deadlock: cycle {path} has too few initial tokens "
            f"({initial} in all; {ran})")
