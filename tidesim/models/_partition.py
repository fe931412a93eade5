"""A system split by node: each node run on its own, and the trace put back together.

A distributed backend gives every node its own run (:class:`NodeRun`): the
node takes its own samples only and reads each sender's clock from the
frequency segments the sender sends it (the sender's *ghost* rows). The
segments a node makes are its only output that other nodes read, so the
system advances in windows ``(T0, T1]`` by a fixed-point iteration (waveform
relaxation): every node runs the window from its state at ``T0`` with the
senders' segments of the previous iteration (none at first: the clocks run
on at their last frequency), sends the segments it made, and the window is
done once an iteration changes no node's segments. Because a sample at
``t`` reads a sender's edges before ``t - latency`` only, each iteration
fixes at least one more sample period of every node, so the iteration
ends; at its end every node ran on exactly the segments the others made,
and therefore took exactly the samples of an undivided run
(:class:`~tidesim.models.Simulation`): the trace is bit-identical.

:class:`Assembly` receives every node's segments window by window and its
final state, and makes the :class:`~tidesim.models.Trace` with the
simulation's own code (energy, spread, records).

Buffers armed once every link is stable (``buffer.arm = "all_stable"``)
need one global fact, the read at which every link was first stable:
each node logs its links' detector changes, :class:`AllStable` merges the
logs, and the read found is part of the fixed point (a window settles when
neither the segments nor that read change).

Supported: both fidelities, every controller and recording. Refused (one
line, :func:`check_splittable`): ``stop_on_fault``, which stops every node
at the first sample anywhere that saw a fault.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, SimulationFault
from . import _layout as K
from .simulation import Simulation, _kernels

__all__ = ["AllStable", "Assembly", "NodeFinal", "NodeRun", "Segments", "Windows",
           "check_splittable", "join_records", "run_split"]


class Segments(NamedTuple):
    """Frequency segments of one node, from run index ``first`` on.

    Attributes:
        first: run index of the first row.
        seg_k: int64[m] anchor edges.
        seg: float64[m, N_SG] the rows (``SG_*`` fields).
    """

    first: int
    seg_k: np.ndarray
    seg: np.ndarray

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Segments) and self.first == other.first
                and np.array_equal(self.seg_k, other.seg_k)
                and self.seg.tobytes() == other.seg.tobytes())

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:  # pragma: no cover (compared, never hashed)
        return hash((self.first, self.seg_k.tobytes()))

    @property
    def end(self) -> int:
        """Run index one past the last row."""
        return self.first + int(self.seg_k.size)


class NodeFinal(NamedTuple):
    """What a node's run holds at the end that the trace needs."""

    node: int
    n_samp: int
    wander: float
    cstate: np.ndarray
    in_links: np.ndarray
    ls: np.ndarray
    lf: np.ndarray
    records: dict
    range_fault: tuple | None


def join_records(pieces: list[dict]) -> dict:
    """One node's record rows sent in pieces (:meth:`NodeRun.final`), joined."""
    out = {}
    for key in pieces[0]:
        parts = [p[key] for p in pieces]
        out[key] = None if parts[0] is None else np.concatenate(parts)
    return out


def check_splittable(system, *, stop_on_fault: bool, backend: str) -> None:
    """Refuse, in one line, what a run split by node cannot do.

    Raises:
        ConfigError: ``stop_on_fault``.
    """
    if stop_on_fault:
        raise ConfigError("run.stop_on_fault", True,
                          f"is not supported by the {backend} backend (use inprocess)")


def _copy(state):
    return type(state)(*(a.copy() for a in state))


def _append_segments(sim, j: int, segs: Segments, skip: int = 0) -> None:
    """Append node ``j``'s rows of ``segs`` from row ``skip`` on to ``sim``'s
    segments, growing them where full."""
    m = segs.seg_k.size - skip
    if m <= 0:
        return
    N = sim._N
    if int(N.n_seg[j]) + m + 2 > N.seg.shape[1]:
        sim._grow_segments(max(2 * N.seg.shape[1], int(N.n_seg[j]) + m + 4))
        N = sim._N
    s = int(N.n_seg[j])
    N.seg_k[j, s:s + m] = segs.seg_k[skip:]
    N.seg[j, s:s + m] = segs.seg[skip:]
    N.n_seg[j] = s + m


def _drop_segments(sim, t_s: float, e_next: np.ndarray, sp_ptr: np.ndarray,
                   ls: np.ndarray) -> None:
    """Drop the segments no read after ``t_s`` needs (the rule of
    :meth:`Simulation._make_segment_room`), keeping those the energy sums
    (``e_next``, ``sp_ptr``) and the links of ``ls`` still read."""
    N, fpar, k = sim._N, sim._P.fpar, _kernels()
    t_keep = t_s - 2.0 * (fpar[K.FP_LATMAX] + fpar[K.FP_PMAX])
    keep = np.zeros(N.n_seg.size, dtype=np.int64)
    k.segments_to_keep(N.seg, N.n_seg, N.seg_base, ls, sim._P.src, t_keep, e_next, sp_ptr,
                       keep)
    k.compact_segments(N.seg, N.seg_k, N.n_seg, N.seg_base, keep, ls, sim._P.src)


class NodeRun:
    """Node ``node`` of ``system``, run on its own.

    Lifecycle: make it, then for each window call :meth:`run` with the
    senders' segments (any number of times: each starts again from the
    last :meth:`commit`), then :meth:`commit`; at the end :meth:`final`.

    Example:
        >>> from tidesim.models import System, Topology
        >>> from tidesim.models._partition import NodeRun
        >>> system = System(Topology.cycle(3, latency_s=1e-6), offsets_ppm=[-5, 0, 5])
        >>> part = NodeRun(system, 1, fidelity="event", every=0)
        >>> part.senders, part.receivers
        ([0, 2], [0, 2])
        >>> out = part.run(1e-3, {})           # senders' clocks extrapolated
        >>> part.commit()
    """

    def __init__(self, system, node: int, *, fidelity: str = "event", every: int = 0,
                 record_controller_state: bool = False, max_window_s: float = 1.0) -> None:
        sim = Simulation(system, fidelity=fidelity, every=every, stop_on_fault=False,
                         record_controller_state=record_controller_state)
        self.sim = sim
        self.node = node
        P, N = sim._P, sim._N
        P.ipar[K.IP_OWN] = node
        P.fpar[K.FP_ALLST_T] = math.inf
        links = system.topology.links
        self.in_links = np.flatnonzero(links[:, 1] == node)
        # room to log every detector change of a window (at most one per read)
        reads = math.ceil(max_window_s * system.f_nom_hz * (1 + 0.06)
                          / system.update_period_ticks) + 4
        log = 3 * self.in_links.size * reads if system.buffer.arm == "all_stable" else 0
        N = N._replace(detail=np.zeros(K.DETAIL_LOG + log))
        # the sample order holds this node only: the others sample elsewhere
        keys = np.full(system.n_nodes, math.inf)
        keys[N.order_node] = N.order_t
        own_first = keys[node]
        keys[:] = math.inf
        keys[node] = own_first
        order_t, order_node = _kernels().order_start(keys)
        sim._N = N._replace(order_t=order_t, order_node=order_node)
        sim._N.sc[K.SC_HEAD] = 0
        self.log = np.zeros((0, 3))
        self.senders = sorted({int(i) for i in links[self.in_links, 0]} - {node})
        self.receivers = sorted({int(d) for d in links[links[:, 0] == node, 1]} - {node})
        self.range_fault: tuple | None = None
        self._stash: list[Segments] = []
        sim._make_segment_room = self._make_room
        self._cp = None
        self.commit()

    # ------------------------------------------------------------------ state
    def _total(self, j: int) -> int:
        N = self.sim._N
        return int(N.seg_base[j] + N.n_seg[j])

    def _rows(self, j: int, first: int) -> Segments:
        N = self.sim._N
        a = first - int(N.seg_base[j])
        b = int(N.n_seg[j])
        return Segments(first, N.seg_k[j, a:b].copy(), N.seg[j, a:b].copy())

    def _made_from(self) -> int:
        """Run index of this node's first segment made in the window and not stashed."""
        return self._stash[-1].end if self._stash else self._cp_total

    def _make_room(self) -> None:
        # compaction may drop segments made in this window: keep them first
        j = self.node
        start = self._made_from()
        if self._total(j) > start:
            self._stash.append(self._rows(j, start))
        sim = self.sim
        N = sim._N
        self._compact(float(N.order_t[N.sc[K.SC_HEAD]]))
        if int(sim._N.n_seg.max()) + 2 > N.seg.shape[1] * 3 // 4:
            sim._grow_segments(2 * N.seg.shape[1])

    def _compact(self, t_s: float) -> None:
        """Drop the segments no sample after ``t_s`` reads (no energy is kept here)."""
        sim = self.sim
        if sim._every == 1:
            return  # the full history is the record
        done = sim._N.seg_base + sim._N.n_seg
        _drop_segments(sim, t_s, done, done + 1, sim._L.ls)

    def commit(self) -> None:
        """Make the current state the one :meth:`run` starts from."""
        sim = self.sim
        self._compact(sim.time_s)
        N, L, R = sim._N, sim._L, sim._R
        N.sc[K.SC_LOG_N] = 0
        ns = int(N.n_seg.max()) + 1
        small = {f: getattr(N, f).copy() for f in N._fields if f not in ("seg", "seg_k", "detail")}
        self._cp = (small, N.seg[:, :ns].copy(), N.seg_k[:, :ns].copy(), _copy(L),
                    R.row0.copy(), R.z0.copy(), R.wander_z.copy(), sim.time_s, sim._requested)
        self._cp_total = self._total(self.node)
        self._stash = []

    def _restore(self) -> None:
        sim = self.sim
        small, seg, seg_k, L, row0, z0, wz, time_s, req = self._cp
        N = sim._N
        for f, a in small.items():
            getattr(N, f)[...] = a
        N.detail[:K.DETAIL_LOG] = 0.0
        ns = seg.shape[1]
        N.seg[:, :ns] = seg
        N.seg_k[:, :ns] = seg_k
        for a, b in zip(sim._L, L, strict=True):
            a[...] = b
        R = sim._R
        R.row0[:] = row0
        R.z0[:] = z0
        R.wander_z[...] = wz
        sim.time_s, sim._requested = time_s, req
        sim.stopped = False
        sim._status = K.ST_OK
        self._stash = []
        self.range_fault = None

    def _add_ghost(self, i: int, segs: Segments) -> None:
        have = self._total(i)
        skip = have - segs.first
        if skip < 0:
            raise ValueError(f"node {self.node}: segments of node {i} from {segs.first}, "
                             f"expected from {have} or before")
        _append_segments(self.sim, i, segs, skip)

    # ------------------------------------------------------------------ running
    def run(self, until_s: float, ghosts: dict[int, Segments],
            all_stable: tuple[float, int] | None = None) -> Segments:
        """Run the window from the last commit to ``until_s`` with the senders'
        segments ``ghosts`` (made since the last commit); return the segments
        this node made since then.

        ``all_stable`` is the read ``(t, e)`` at which every link of the
        system was first stable (:class:`AllStable`), None while unknown;
        :attr:`log` then holds this node's detector changes, rows ``(t, e,
        stable)``.
        """
        self._restore()
        P = self.sim._P
        P.fpar[K.FP_ALLST_T] = math.inf if all_stable is None else all_stable[0]
        P.ipar[K.IP_ALLST_E] = 0 if all_stable is None else all_stable[1]
        for i, segs in ghosts.items():
            self._add_ghost(i, segs)
        try:
            self.sim.advance(until_s)
        except SimulationFault:
            d = self.sim._N.detail
            self.range_fault = (int(d[0]), float(d[1]), int(d[2]), float(d[3]))
        N = self.sim._N
        k = int(N.sc[K.SC_LOG_N])
        if k < 0:
            raise RuntimeError(f"node {self.node}: the detector log of a window overflowed")
        self.log = N.detail[K.DETAIL_LOG:K.DETAIL_LOG + 3 * k].reshape(k, 3).copy()
        out = self._rows(self.node, self._made_from())
        if self._stash:
            parts = [*self._stash, out]
            out = Segments(parts[0].first, np.concatenate([p.seg_k for p in parts]),
                           np.concatenate([p.seg for p in parts]))
        return out

    def final(self, first_row: int = 0) -> NodeFinal:
        """This node's state, and its record rows from ``first_row`` on, for
        :class:`Assembly` (:func:`join_records` joins rows sent in pieces)."""
        sim, j = self.sim, self.node
        N, L, R = sim._N, sim._L, sim._R
        every = sim._every
        rows = 0 if every == 0 else (int(N.n_samp[j]) + every - 1) // every
        a = min(first_row, rows)
        il = self.in_links
        records = {"samp_m": R.samp_m[j, a:rows].copy(), "samp_t": R.samp_t[j, a:rows].copy(),
                   "samp_c": R.samp_c[j, a:rows].copy(), "samp_des": R.samp_des[j, a:rows].copy(),
                   "cnt": R.cnt[a:rows][:, il].copy(), "ddc": R.ddc[a:rows][:, il].copy(),
                   "flags": R.flags[a:rows][:, il].copy(),
                   "state": R.state[j, a:rows].copy() if sim._keep_state else None}
        return NodeFinal(j, int(N.n_samp[j]), float(N.wander[j]), N.cstate[j].copy(), il,
                         L.ls[il].copy(), L.lf[il].copy(), records, self.range_fault)


class Assembly:
    """The whole system's trace, from its nodes' segments and final states.

    :meth:`add` each committed window's segments (all nodes), then
    :meth:`trace` with every node's :meth:`NodeRun.final`.
    """

    def __init__(self, system, *, fidelity: str = "event", every: int = 0,
                 record_controller_state: bool = False) -> None:
        self.sim = Simulation(system, fidelity=fidelity, every=every, stop_on_fault=False,
                              record_controller_state=record_controller_state)

    def add(self, t_s: float, segments: dict[int, Segments]) -> None:
        """Every node's segments up to a committed time ``t_s`` (s): no segment
        starting by then is still to come."""
        sim = self.sim
        if sim._shared:  # a trace made earlier holds views of the segments
            sim._unshare()
        N = sim._N
        need = max(int(N.n_seg[j]) + s.seg_k.size for j, s in segments.items()) + 2
        if need > N.seg.shape[1] and sim._every != 1:
            # fold what has ended into the energy sums, then drop it (no link reads here)
            sim._integrate(t_s)
            _drop_segments(sim, t_s, sim._e_next, sim._sp_ptr, np.zeros_like(sim._L.ls))
        for j, segs in segments.items():
            have = int(sim._N.seg_base[j] + sim._N.n_seg[j])
            if segs.first != have:
                raise ValueError(f"node {j}: segments from {segs.first}, expected {have}")
            _append_segments(sim, j, segs)
        sim.time_s = t_s

    def trace(self, finals: list[NodeFinal], until_s: float, *,
              requested_until_s: float | None = None):
        """The :class:`~tidesim.models.Trace` of the whole run to ``until_s``."""
        sim = self.sim
        if sim._shared:
            sim._unshare()
        N, L = sim._N, sim._L
        rows = max((f.records["samp_m"].size for f in finals), default=0)
        if sim._every > 0:
            sim._grow_records(rows)
        R = sim._R
        for f in finals:
            j, il = f.node, f.in_links
            N.n_samp[j] = f.n_samp
            N.wander[j] = f.wander
            N.cstate[j] = f.cstate
            L.ls[il] = f.ls
            L.lf[il] = f.lf
            r = f.records
            q = r["samp_m"].size
            if sim._every > 0 and q:
                R.samp_m[j, :q] = r["samp_m"]
                R.samp_t[j, :q] = r["samp_t"]
                R.samp_c[j, :q] = r["samp_c"]
                R.samp_des[j, :q] = r["samp_des"]
                R.cnt[:q, il] = r["cnt"]
                R.ddc[:q, il] = r["ddc"]
                R.flags[:q, il] = r["flags"]
                if r["state"] is not None:
                    R.state[j, :q] = r["state"]
        sim.time_s = until_s
        sim._requested = until_s if requested_until_s is None else requested_until_s
        return sim.trace()


class AllStable:
    """When every link of the system was first stable (``buffer.arm =
    "all_stable"``), from the nodes' detector logs.

    The undivided run counts stable links read by read, in sample order
    ``(t, node)`` and link order within a sample: read ``e`` (an index into
    ``in_idx``) is that order within one time. The first read at which the
    count reaches the number of links arms every buffer from there on.

    Attributes:
        key: ``(t, e)`` of that read once a settled window held it, else None.
    """

    def __init__(self, system) -> None:
        self.on = system.buffer.arm == "all_stable"
        self.n_links = int(system.topology.links.shape[0])
        self.count = 0
        self.key: tuple[float, int] | None = None

    def find(self, logs: list[np.ndarray]) -> tuple[float, int] | None:
        """The read of this window's logs at which every link is stable, if any
        (the settled one, once known)."""
        if not self.on or self.key is not None:
            return self.key
        rows = np.concatenate([np.zeros((0, 3)), *logs])
        if rows.shape[0] == 0:
            return None
        rows = rows[np.lexsort((rows[:, 1], rows[:, 0]))]
        counts = self.count + np.cumsum(np.where(rows[:, 2] > 0, 1, -1))
        hit = np.flatnonzero(counts == self.n_links)
        if hit.size == 0:
            return None
        return float(rows[hit[0], 0]), int(rows[hit[0], 1])

    def settle(self, logs: list[np.ndarray], key: tuple[float, int] | None) -> None:
        """A window settled with these logs and this key."""
        if not self.on or self.key is not None:
            return
        self.key = key
        for rows in logs:
            self.count += int(np.sum(np.where(rows[:, 2] > 0, 1, -1)))


def settle_window(allst: AllStable, step) -> tuple[int, object]:
    """Iterate one window to its fixed point.

    ``step(it, key)`` runs every node over the window once (iteration
    ``it``, from 0), with ``key`` the all-stable read so far (see
    :class:`AllStable`), and returns ``(changed,
    logs, result)``: whether any node's segments changed, each node's
    detector log, and what the caller keeps. The window is settled once no
    segment changed and the key holds; returns the iterations and the last
    ``result``.
    """
    key = allst.find([])
    it = 0
    while True:
        changed, logs, result = step(it, key)
        it += 1
        new_key = allst.find(logs)
        if not changed and new_key == key:
            break
        key = new_key
    allst.settle(logs, key)
    return it, result


def run_split(system, until_s: float, *, fidelity: str = "event", every: int = 0,
              record_controller_state: bool = False, window_s: float | None = None,
              stats: dict | None = None):
    """Run ``system`` to ``until_s`` node by node in this process (the reference
    for the distributed backends, which run the same steps over sockets).

    Returns:
        The :class:`~tidesim.models.Trace`, bit-identical to an undivided run's.
    """
    kw = {"fidelity": fidelity, "every": every,
          "record_controller_state": record_controller_state}
    n = system.n_nodes
    win = Windows(system, window_s)
    parts = [NodeRun(system, j, max_window_s=win.max_s, **kw) for j in range(n)]
    asm = Assembly(system, **kw)
    allst = AllStable(system)
    t0 = 0.0
    while t0 < until_s:
        t1 = win.end(t0, until_s)
        ghosts: dict[int, dict[int, Segments]] = {j: {} for j in range(n)}
        prev: list[Segments | None] = [None] * n

        def step(_it, key, t1=t1, ghosts=ghosts, prev=prev):
            outs = [p.run(t1, ghosts[p.node], key) for p in parts]
            changed = any(o != q for o, q in zip(outs, prev, strict=True))
            for p, o in zip(parts, outs, strict=True):
                for r in p.receivers:
                    ghosts[r][p.node] = o
            prev[:] = outs
            return changed, [p.log for p in parts], outs

        it, outs = settle_window(allst, step)
        for p in parts:
            p.commit()
        asm.add(t1, dict(enumerate(outs)))
        win.done(it)
        t0 = t1
    if stats is not None:
        stats.update(win.stats())
    return asm.trace([p.final() for p in parts], until_s)


class Windows:
    """How far each window reaches: longer while two iterations settle it,
    shorter when more are needed (s).

    Example:
        >>> from tidesim.models import System, Topology
        >>> from tidesim.models._partition import Windows
        >>> w = Windows(System(Topology.cycle(3, latency_s=1e-6)), None)
        >>> w.end(0.0, 1.0) > 0
        True
    """

    def __init__(self, system, window_s: float | None) -> None:
        sample_s = system.update_period_ticks / system.f_nom_hz
        self.min_s = sample_s
        self.max_s = max(4096 * sample_s, window_s or 0.0)
        self.fixed = window_s is not None
        self.window_s = window_s if window_s is not None else 8 * sample_s
        self.windows = 0
        self.iterations = 0

    def end(self, t0: float, until_s: float) -> float:
        t1 = t0 + self.window_s
        # no sliver of a window left at the end
        return until_s if t1 >= until_s - 0.25 * self.window_s else t1

    def done(self, iterations: int) -> None:
        self.windows += 1
        self.iterations += iterations
        if self.fixed:
            return
        if iterations <= 2:
            self.window_s = min(2 * self.window_s, self.max_s)
        elif iterations > 4:
            self.window_s = max(self.window_s / 2, self.min_s)

    def stats(self) -> dict:
        return {"windows": self.windows, "iterations": self.iterations}
