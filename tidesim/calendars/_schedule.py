"""The scheduler: SDF graph + network -> placement, routes, calendars.

One SDF iteration runs per metacycle of ``M`` cycles, software-pipelined
(a *modulo schedule*): every operation has an absolute cycle ``t`` in the
application time of its node, and repeats at ``t + k·M`` for iteration
``k = 0 .. N-1``. Its calendar slot is ``t mod M`` and its *stage* is
``t // M``; a node enables stage ``s`` from metacycle ``s`` on and disables it
after ``N`` iterations (the pipeline's prologue and epilogue).

Operations (all of one node's application time):

* **fire** ``(instance, f)`` at ``t``: reads its Rx input block, writes its Tx
  output block; the node computes one firing at a time, ``cycles`` long.
* **send** one frame (one 64-bit word of a token): the gather calendar puts
  Tx word ``a`` on the first link of the route at ``t_s``; each further hop is
  forwarded by the switch one cycle after the frame arrived; the last hop's
  scatter calendar writes it to Rx word ``b`` at ``A = t_s + Σ(λ' + 1) - 1``.
* **copy** (producer and consumer on the same node): Tx word -> Rx word at
  ``A = t_p + cycles``, before compute.

Windows (derived in ``docs/schedule.md``): with ``D`` the token's iteration
distance (0, or 1 for a token that starts as an initial token),

* the frame leaves after the producer and before its next write:
  ``t_p + cycles <= t_s <= t_p + M``;
* it is read by the consumer after arriving and before the next arrival
  overwrites it: ``t_c + (D - 1)·M < A <= t_c + D·M``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, SimulationFault
from ..models.topology import hop_distances
from ._network import LogicalNetwork

__all__ = ["Schedule", "place", "schedule"]

PLACEMENTS = ("one-to-one", "greedy", "optimal")


@dataclass(frozen=True, eq=False)
class Schedule:
    """A modulo schedule of one SDF graph on one network.

    Times are absolute application cycles of the node that performs the
    operation; each table row repeats every ``metacycle_cycles``.

    Attributes:
        graph: the flattened :class:`~tidesim.waves.Graph`.
        network: the :class:`LogicalNetwork` it was scheduled on.
        placement: int64 ``[I]``, the node of every instance.
        metacycle_cycles: ``M``.
        fire: int64 ``[F, 5]`` rows ``(instance, f, node, t, cycles)``, one per
            firing of an iteration.
        in_base, out_base: int64 ``[F]``, Rx / Tx word address of each
            firing's input / output block on its node.
        state_base: int64 ``[I]``, word address of each instance's state in
            its node's state memory.
        sends: int64 ``[S, 6]`` rows ``(edge, j, w, t_s, tx_addr, rx_addr)``:
            word ``w`` of consumer token ``j`` of ``edge`` leaves at ``t_s``.
        hops: tuple of int64 ``[h]`` link routes, one per send.
        copies: int64 ``[C, 6]`` rows ``(edge, j, w, A, tx_addr, rx_addr)``.
        rx_init: int64 ``[P, 2]`` rows ``(node, rx_addr)`` and uint64 ``[P]``
            values: initial tokens preloaded into Rx memory.
        tx_words, rx_words, state_words: int64 ``[N]`` memory used per node.
    """

    graph: object
    network: LogicalNetwork
    placement: np.ndarray
    metacycle_cycles: int
    fire: np.ndarray
    in_base: np.ndarray
    out_base: np.ndarray
    state_base: np.ndarray
    sends: np.ndarray
    hops: tuple
    copies: np.ndarray
    rx_init: np.ndarray
    rx_init_values: np.ndarray
    tx_words: np.ndarray
    rx_words: np.ndarray
    state_words: np.ndarray

    @property
    def n_firings(self) -> int:
        return len(self.fire)

    def arrival(self, send: int) -> int:
        """The cycle at which send ``send`` is scattered on the receiver."""
        lat = self.network.latency_cycles[self.hops[send]]
        return int(self.sends[send, 3] + lat.sum() + len(lat) - 1)

    @property
    def span_cycles(self) -> tuple[int, int]:
        """``(first, last + 1)`` absolute cycles of any operation of iteration 0."""
        times = [self.fire[:, 3], self.fire[:, 3] + self.fire[:, 4] - 1]
        if len(self.sends):
            times.append(self.sends[:, 3])
            times.append(np.array([self.arrival(s) for s in range(len(self.sends))]))
        if len(self.copies):
            times.append(self.copies[:, 3])
        allt = np.concatenate(times)
        return int(allt.min()), int(allt.max()) + 1

    @property
    def stages(self) -> int:
        """How many metacycles one iteration spans (the pipeline depth)."""
        lo, hi = self.span_cycles
        return (hi - 1) // self.metacycle_cycles - lo // self.metacycle_cycles + 1

    def link_utilisation(self) -> np.ndarray:
        """float64 ``[L]``: the fraction of each link's cycles that carry a frame."""
        busy = np.zeros(self.network.n_links)
        for route in self.hops:
            busy[route] += 1
        return busy / self.metacycle_cycles


# -- token bookkeeping ---------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    """Where consumer token ``j`` of an edge comes from and goes to."""

    j: int
    dst_firing: int
    dst_pos: int
    src_firing: int
    src_pos: int
    distance: int  # iterations between producer and consumer (0 or 1)


def _edge_tokens(graph, e: int) -> list[_Token]:
    edge = graph.edges[e]
    q = graph.repetitions
    p = graph.instances[edge.src].action.outputs[edge.src_port].rate
    c = graph.instances[edge.dst].action.inputs[edge.dst_port].rate
    per_iter = int(q[edge.src]) * p
    d = len(edge.initial)
    out = []
    for j in range(per_iter):
        dist = -((j - d) // per_iter)  # ceil((d - j) / T)
        if dist > 1:
            src = graph.instances[edge.src].name
            dst = graph.instances[edge.dst].name
            raise ConfigError(
                f"edge {src}.{graph.instances[edge.src].action.outputs[edge.src_port].name}"
                f" -> {dst}.{graph.instances[edge.dst].action.inputs[edge.dst_port].name}"
                ".initial", d,
                f"at most one iteration of tokens ({per_iter}) can be scheduled")
        jp = (j - d) % per_iter
        out.append(_Token(j, j // c, j % c, jp // p, jp % p, dist))
    return out


# -- placement -------------------------------------------------------------------


def place(graph, network: LogicalNetwork, how: str = "greedy", *,
          objective: str = "makespan") -> np.ndarray:
    """Map every instance of ``graph`` to a node of ``network``.

    Args:
        graph: a :class:`~tidesim.waves.Graph`.
        network: the network.
        how: ``"one-to-one"`` (instance ``i`` on node ``i``; needs as many
            nodes), ``"greedy"`` (instances in firing order, each on the node
            that minimises its compute load plus the hop distance to what it
            talks to), or ``"optimal"`` (``scipy.optimize.milp``, small
            instances: at most 12 instances and 16 nodes). Every mode keeps
            the instances the app pins (``Module.add(..., node=k)``) on
            their nodes.
        objective: for ``"optimal"``: ``"makespan"`` (the most loaded node's
            compute cycles) or ``"link-load"`` (frames times hops).

    Returns:
        int64 ``[I]``.
    """
    n_inst = len(graph.instances)
    pins = check_fits(graph, network.n_nodes, how)
    pinned = pins >= 0
    if how == "one-to-one":
        return np.where(pinned, pins, np.arange(n_inst, dtype=np.int64))
    dist = hop_distances(network.n_nodes, network.links)
    load = graph.repetitions * np.array([i.action.cycles for i in graph.instances])
    if how == "optimal":
        from ._placement import optimal_placement

        return optimal_placement(graph, dist, load, objective, pins)
    traffic = _traffic(graph)
    node_load = np.zeros(network.n_nodes, dtype=np.int64)
    out = pins.copy()
    np.add.at(node_load, pins[pinned], load[pinned])
    firstseen = [i for i in dict.fromkeys(graph.order) if not pinned[i]]
    for i in firstseen:
        cost = node_load.astype(np.float64) + load[i]
        for (a, b), words in traffic.items():
            other = b if a == i else a if b == i else -1
            if other >= 0 and out[other] >= 0:
                cost = cost + words * dist[:, out[other]]
        n = int(np.argmin(cost))
        out[i] = n
        node_load[n] += load[i]
    return out


def check_fits(graph, n_nodes: int, how: str) -> np.ndarray:
    """Refuse a placement the node count alone rules out (before any simulation).

    Returns:
        int64 ``[I]``: the node each instance is pinned to, -1 where none.

    Raises:
        ConfigError: an unknown placement, a pin to a node the topology does
            not have, or one-to-one with more instances than nodes.
    """
    if how not in PLACEMENTS:
        raise ConfigError("placement", how, f"must be one of {', '.join(PLACEMENTS)}")
    n_inst = len(graph.instances)
    pins = np.array([-1 if x.node is None else x.node for x in graph.instances],
                    dtype=np.int64)
    if len(pins) and pins.max() >= n_nodes:
        i = int(np.argmax(pins))
        raise ConfigError(f"{graph.instances[i].name}.node", int(pins[i]),
                          f"the app needs node {int(pins[i])}, the topology has "
                          f"{n_nodes} nodes (0 .. {n_nodes - 1})")
    if how == "one-to-one" and n_inst > n_nodes:
        raise ConfigError("placement", how, f"needs {n_inst} nodes for {n_inst} instances, "
                                            f"the topology has {n_nodes}")
    return pins


def _traffic(graph) -> dict[tuple[int, int], int]:
    """Words per iteration between each pair of instances."""
    t: dict[tuple[int, int], int] = {}
    for e in graph.edges:
        port = graph.instances[e.src].action.outputs[e.src_port]
        words = int(graph.repetitions[e.src]) * port.rate * port.token_words
        key = (e.src, e.dst)
        t[key] = t.get(key, 0) + words
    return t


# -- routing ---------------------------------------------------------------------


class _Routes:
    """Shortest routes by arrival time (Σ λ' + one cycle per switch), fewest hops
    among equals; one Dijkstra per source node, on demand."""

    def __init__(self, network: LogicalNetwork) -> None:
        from scipy.sparse import csr_matrix

        n = network.n_nodes
        src, dst = network.links[:, 0], network.links[:, 1]
        w = network.latency_cycles + 1
        # Dijkstra needs weights >= 0: shift by the potentials (Johnson), which
        # keeps shortest paths; scale so that hop count only breaks ties, and
        # stays > 0 (a sparse matrix drops zero weights)
        b = network.potentials()
        reduced = (w + b[src] - b[dst]) * (n + 1) + 1
        best: dict[tuple[int, int], tuple[int, int]] = {}
        for l, (i, j, r) in enumerate(zip(src.tolist(), dst.tolist(), reduced.tolist(),
                                          strict=True)):
            if (i, j) not in best or r < best[(i, j)][0]:
                best[(i, j)] = (r, l)
        keys = list(best)
        self.link_of = {k: v[1] for k, v in best.items()}
        rows = np.array([k[0] for k in keys], dtype=np.int64)
        cols = np.array([k[1] for k in keys], dtype=np.int64)
        vals = np.array([best[k][0] for k in keys], dtype=np.float64)
        self.graph = csr_matrix((vals, (rows, cols)), shape=(n, n))
        self._pred: dict[int, np.ndarray] = {}
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def route(self, src: int, dst: int) -> np.ndarray:
        hit = self._cache.get((src, dst))
        if hit is not None:
            return hit
        pred = self._pred.get(src)
        if pred is None:
            from scipy.sparse.csgraph import dijkstra

            _, pred = dijkstra(self.graph, indices=src, return_predecessors=True)
            self._pred[src] = pred
        if pred[dst] < 0 and src != dst:
            raise ConfigError("placement", f"{src} -> {dst}",
                              "needs a route between the nodes, the network has none")
        hops = []
        node = dst
        while node != src:
            prev = int(pred[node])
            hops.append(self.link_of[(prev, node)])
            node = prev
        route = np.array(hops[::-1], dtype=np.int64)
        self._cache[(src, dst)] = route
        return route


# -- the modulo scheduler ------------------------------------------------------------


class _Busy:
    """Occupied slots ``t mod M`` of a set of resources."""

    def __init__(self, n: int, M: int) -> None:
        self.M = M
        self.used = np.zeros((n, M), dtype=bool)

    def free(self, r, t: int, length: int = 1) -> bool:
        M = self.M
        if length > M:
            return False
        idx = (t + np.arange(length)) % M
        return not self.used[r, idx].any()

    def take(self, r, t: int, length: int = 1) -> None:
        self.used[r, (t + np.arange(length)) % self.M] = True


def _first_free(busy: _Busy, node: int, cyc: int, start: int, hi: int, lo: int) -> int | None:
    """The free compute slot nearest ``start`` in ``[lo, hi]``: later first, then earlier."""
    # the slots repeat every M cycles: one period each way covers them all
    for t in range(start, min(hi, start + busy.M - 1) + 1):
        if busy.free(node, t, cyc):
            return t
    for t in range(start - 1, max(lo, start - busy.M) - 1, -1):
        if busy.free(node, t, cyc):
            return t
    return None


def next_metacycle(metacycle_cycles: int) -> int:
    """The metacycle the scheduler tries after one that did not fit: at
    least one cycle and 25 % longer."""
    return max(metacycle_cycles + 1, math.ceil(metacycle_cycles * 1.25))


def schedule(graph, network: LogicalNetwork, placement="greedy", *,
             metacycle_cycles: int | None = None, hardware=None) -> Schedule:
    """Schedule one SDF iteration per metacycle of ``graph`` on ``network``.

    Args:
        graph: a :class:`~tidesim.waves.Graph` (or an ``App``: its graph is taken).
        network: the :class:`LogicalNetwork` with the logical latencies.
        placement: a name for :func:`place`, or int ``[I]`` nodes.
        metacycle_cycles: force ``M``; by default the smallest that fits,
            from the compute and link load upwards.
        hardware: a :class:`~tidesim.calendars.Hardware` whose memory sizes
            and calendar depth bound the result (default limits when None).

    Returns:
        A :class:`Schedule`.

    Raises:
        ConfigError: an app that needs more nodes than the network has, a
            forced ``M`` that does not fit, memory or calendars beyond the
            hardware's limits.
    """
    if hasattr(graph, "graph") and callable(graph.graph):
        graph = graph.graph()
    if isinstance(placement, str):
        nodes = place(graph, network, placement)
    else:
        nodes = np.asarray(placement, dtype=np.int64)
        if nodes.shape != (len(graph.instances),) or nodes.min(initial=0) < 0 or \
                nodes.max(initial=0) >= network.n_nodes:
            raise ConfigError("placement", np.asarray(placement).tolist(),
                              f"must give a node 0..{network.n_nodes - 1} per instance")
    plan = _Plan(graph, network, nodes)
    if hardware is not None:
        from ._tables import check_memory

        check_memory(plan.tx_words, plan.rx_words, hardware)
    if metacycle_cycles is not None:
        M = int(metacycle_cycles)
        result = plan.attempt(M)
        if result is None:
            raise ConfigError("metacycle_cycles", M,
                              f"is too short for this app (at least {plan.lower_bound()} "
                              "cycles of load, and the loops' latency)")
    else:
        M = plan.lower_bound()
        cap = plan.upper_bound()
        while (result := plan.attempt(M)) is None:
            if cap <= M:
                raise SimulationFault(f"scheduler: no schedule found up to a metacycle of "
                                      f"{M} cycles (load {plan.lower_bound()})")
            M = min(cap, next_metacycle(M))
    if hardware is not None:
        from ._tables import check_hardware

        check_hardware(result, hardware)
    return result


class _Plan:
    """The fixed part of a scheduling problem; :meth:`attempt` tries one ``M``."""

    def __init__(self, graph, network: LogicalNetwork, nodes: np.ndarray) -> None:
        self.graph = graph
        self.network = network
        self.nodes = nodes
        self.routes = _Routes(network)
        inst = graph.instances
        q = graph.repetitions
        self.tokens = [_edge_tokens(graph, e) for e in range(len(graph.edges))]
        self.firings = self._firing_order()
        self.fid = {key: n for n, key in enumerate(self.firings)}
        # per consumer firing: its input tokens; per producer firing: its output tokens
        self.inputs_of: dict[tuple[int, int], list[tuple[int, _Token]]] = {}
        self.outputs_of: dict[tuple[int, int], list[tuple[int, _Token]]] = {}
        for e, toks in enumerate(self.tokens):
            edge = graph.edges[e]
            for tok in toks:
                self.inputs_of.setdefault((edge.dst, tok.dst_firing), []).append((e, tok))
                self.outputs_of.setdefault((edge.src, tok.src_firing), []).append((e, tok))
        # memory layout: per node, firing blocks in firing order
        n = network.n_nodes
        tx = np.zeros(n, dtype=np.int64)
        rx = np.zeros(n, dtype=np.int64)
        st = np.zeros(n, dtype=np.int64)
        self.in_base = np.zeros(len(self.firings), dtype=np.int64)
        self.out_base = np.zeros(len(self.firings), dtype=np.int64)
        for k, (i, _f) in enumerate(self.firings):
            a, node = inst[i].action, nodes[i]
            self.in_base[k] = rx[node]
            rx[node] += a.in_words
            self.out_base[k] = tx[node]
            tx[node] += a.out_words
        self.state_base = np.zeros(len(inst), dtype=np.int64)
        for i, ins in enumerate(inst):
            self.state_base[i] = st[nodes[i]]
            st[nodes[i]] += ins.action.state_words
        self.tx_words, self.rx_words, self.state_words = tx, rx, st
        self.in_off = [x.action.in_offsets for x in inst]
        self.out_off = [x.action.out_offsets for x in inst]
        self.q = q

    def _firing_order(self) -> list[tuple[int, int]]:
        """Firings ``(instance, f)`` in the order they are placed in time.

        A topological order of the same-iteration dependencies (tokens with
        ``D = 0``, and each instance's firings in turn). Among the ready
        firings, those that read a token of the previous iteration go first
        (they must fire before this iteration's token arrives), those that
        only produce such tokens last, the rest in the graph's sequential order.
        """
        import heapq

        graph = self.graph
        seen = [0] * len(graph.instances)
        rank: dict[tuple[int, int], int] = {}
        for n, i in enumerate(graph.order):
            rank[(i, seen[i])] = n
            seen[i] += 1
        after: dict[tuple[int, int], list[tuple[int, int]]] = {k: [] for k in rank}
        needs = dict.fromkeys(rank, 0)
        reads_old, makes_old = set(), set()
        for e, toks in enumerate(self.tokens):
            edge = graph.edges[e]
            for tok in toks:
                a, b = (edge.src, tok.src_firing), (edge.dst, tok.dst_firing)
                if tok.distance == 0:
                    after[a].append(b)
                    needs[b] += 1
                else:
                    reads_old.add(b)
                    makes_old.add(a)
        for (i, f) in rank:
            if f > 0:
                after[(i, f - 1)].append((i, f))
                needs[(i, f)] += 1

        def key(k):
            return (0 if k in reads_old else 2 if k in makes_old else 1, rank[k], k)

        ready = [key(k) for k, v in needs.items() if v == 0]
        heapq.heapify(ready)
        out = []
        while ready:
            k = heapq.heappop(ready)[2]
            out.append(k)
            for b in after[k]:
                needs[b] -= 1
                if needs[b] == 0:
                    heapq.heappush(ready, key(b))
        return out

    def lower_bound(self) -> int:
        inst = self.graph.instances
        compute = np.zeros(self.network.n_nodes, dtype=np.int64)
        for i, x in enumerate(inst):
            compute[self.nodes[i]] += int(self.q[i]) * x.action.cycles
        links = np.zeros(self.network.n_links, dtype=np.int64)
        for e, toks in enumerate(self.tokens):
            edge = self.graph.edges[e]
            a, b = self.nodes[edge.src], self.nodes[edge.dst]
            if a != b:
                w = inst[edge.src].action.outputs[edge.src_port].token_words
                links[self.routes.route(a, b)] += len(toks) * w
        longest = max(x.action.cycles for x in inst)
        return int(max(1, compute.max(initial=0), links.max(initial=0), longest))

    def upper_bound(self) -> int:
        """A metacycle long enough for any schedule: every firing and every
        frame's whole route, one after another."""
        inst = self.graph.instances
        total = sum(int(self.q[i]) * x.action.cycles for i, x in enumerate(inst))
        lat = self.network.latency_cycles
        for e, toks in enumerate(self.tokens):
            edge = self.graph.edges[e]
            a, b = self.nodes[edge.src], self.nodes[edge.dst]
            w = inst[edge.src].action.outputs[edge.src_port].token_words
            hop = 1 if a == b else int(np.abs(lat[self.routes.route(a, b)]).sum()) + 2 * len(
                self.routes.route(a, b))
            total += len(toks) * w * (hop + 1)
        return 2 * int(total) + 2

    def _addresses(self, e: int, tok: _Token, w: int) -> tuple[int, int]:
        edge = self.graph.edges[e]
        inst = self.graph.instances
        sp = inst[edge.src].action.outputs[edge.src_port]
        dp = inst[edge.dst].action.inputs[edge.dst_port]
        tx = (self.out_base[self.fid[(edge.src, tok.src_firing)]]
              + self.out_off[edge.src][edge.src_port] + tok.src_pos * sp.token_words + w)
        rx = (self.in_base[self.fid[(edge.dst, tok.dst_firing)]]
              + self.in_off[edge.dst][edge.dst_port] + tok.dst_pos * dp.token_words + w)
        return int(tx), int(rx)

    def attempt(self, M: int) -> Schedule | None:
        graph, net, nodes = self.graph, self.network, self.nodes
        inst = graph.instances
        compute = _Busy(net.n_nodes, M)
        links = _Busy(net.n_links, M)
        t_fire: dict[tuple[int, int], int] = {}
        arrival: dict[tuple[int, int, int], int] = {}  # (edge, j, w) -> A
        sends, hops, copies = [], [], []
        lat = net.latency_cycles
        deferred: dict[tuple[int, int], list] = {}

        def transfer(e: int, tok: _Token, t_p: int, t_c: int | None) -> bool:
            """Schedule every word of one token: produced by a firing at ``t_p``,
            read by one at ``t_c`` (None: not placed yet, a ``D = 0`` token)."""
            edge = graph.edges[e]
            src_node, dst_node = int(nodes[edge.src]), int(nodes[edge.dst])
            cyc = inst[edge.src].action.cycles
            w_n = inst[edge.src].action.outputs[edge.src_port].token_words
            if src_node == dst_node:
                route, off, total = None, None, 0
            else:
                route = self.routes.route(src_node, dst_node)
                # hop k leaves at t_s + off[k]; the frame arrives at t_s + total
                off = np.concatenate([[0], np.cumsum(lat[route][:-1] + 1)])
                total = int(lat[route].sum() + len(route) - 1)
            for w in range(w_n):
                tx, rx = self._addresses(e, tok, w)
                # leave after the write, before the next iteration's write;
                # arrive inside the consumer's window
                s_lo, s_hi = t_p + cyc, t_p + M
                if t_c is not None:
                    s_lo = max(s_lo, t_c + (tok.distance - 1) * M + 1 - total)
                    s_hi = min(s_hi, t_c + tok.distance * M - total)
                if route is None:  # a copy inside the node: no link to share
                    if s_lo > s_hi:
                        return False
                    copies.append((e, tok.j, w, s_lo, tx, rx))
                    arrival[(e, tok.j, w)] = s_lo
                    continue
                ts = s_lo
                while ts <= s_hi and not all(
                        links.free(int(l), ts + int(o)) for l, o in zip(route, off, strict=True)):
                    ts += 1
                if ts > s_hi:
                    return False
                for l, o in zip(route, off, strict=True):
                    links.take(int(l), ts + int(o))
                sends.append((e, tok.j, w, ts, tx, rx))
                hops.append(route)
                arrival[(e, tok.j, w)] = ts + total
            return True

        for i, f in self.firings:
            cyc = inst[i].action.cycles
            # lower bounds: the instance's previous firing and every arrived input;
            # without a same-iteration input a firing prefers cycle 0, but may
            # go earlier for an input that arrives early (negative λ')
            lo, hi, prefer = None, None, 0
            if f > 0:
                prefer = lo = t_fire[(i, f - 1)] + cyc
            for e, tok in self.inputs_of.get((i, f), []):
                w_n = inst[graph.edges[e].src].action.outputs[graph.edges[e].src_port].token_words
                for w in range(w_n):
                    a = arrival.get((e, tok.j, w))
                    if a is None:
                        continue  # a later producer (D = 1): it respects this firing
                    # t_c + (D-1)M < A <= t_c + D M
                    bound = a - tok.distance * M
                    lo = bound if lo is None else max(lo, bound)
                    if tok.distance == 0:
                        prefer = max(prefer, a)
                    top = a - (tok.distance - 1) * M - 1
                    hi = top if hi is None else min(hi, top)
            if f == self.q[i] - 1 and self.q[i] > 1:
                # the next iteration's first firing must follow this one's end
                top = t_fire[(i, 0)] + M - cyc
                hi = top if hi is None else min(hi, top)
            if lo is None:
                lo = prefer
            if hi is None:
                hi = max(lo, prefer) + M - 1
            start = max(lo, prefer) if max(lo, prefer) <= hi else lo
            node = int(nodes[i])
            t = _first_free(compute, node, cyc, start, hi, lo)
            if t is None:
                return None
            compute.take(node, t, cyc)
            t_fire[(i, f)] = t
            # this firing's outputs: schedule every word of every token it produces,
            # except tokens of the next iteration whose consumer is not placed
            # yet: their window depends on it, so they go when it is placed
            for e, tok in self.outputs_of.get((i, f), []):
                edge = graph.edges[e]
                t_c = t_fire.get((edge.dst, tok.dst_firing))
                if t_c is None and tok.distance > 0:
                    deferred.setdefault((edge.dst, tok.dst_firing), []).append((e, tok, t))
                    continue
                if not transfer(e, tok, t, t_c):
                    return None
            for e, tok, t_p in deferred.pop((i, f), []):
                if not transfer(e, tok, t_p, t):
                    return None
        # initial tokens that are read before the first arrival (D = 1)
        rx_init, rx_vals = [], []
        for e, toks in enumerate(self.tokens):
            edge = graph.edges[e]
            if not len(edge.initial):
                continue
            from ..waves import pack_tokens

            port = inst[edge.dst].action.inputs[edge.dst_port]
            words = pack_tokens(port, edge.initial).reshape(len(edge.initial), port.token_words)
            for tok in toks:
                if tok.distance == 1:
                    for w in range(port.token_words):
                        _, rx = self._addresses(e, tok, w)
                        rx_init.append((int(nodes[edge.dst]), rx))
                        rx_vals.append(words[tok.j, w])
        fire = np.array([(i, f, nodes[i], t_fire[(i, f)], inst[i].action.cycles)
                         for i, f in self.firings], dtype=np.int64).reshape(-1, 5)
        return Schedule(
            graph=graph, network=net, placement=nodes.copy(), metacycle_cycles=M,
            fire=fire, in_base=self.in_base.copy(), out_base=self.out_base.copy(),
            state_base=self.state_base.copy(),
            sends=np.array(sends, dtype=np.int64).reshape(-1, 6), hops=tuple(hops),
            copies=np.array(copies, dtype=np.int64).reshape(-1, 6),
            rx_init=np.array(rx_init, dtype=np.int64).reshape(-1, 2),
            rx_init_values=np.array(rx_vals, dtype=np.uint64),
            tx_words=self.tx_words.copy(), rx_words=self.rx_words.copy(),
            state_words=self.state_words.copy())
