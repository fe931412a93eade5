"""An independent checker of schedules.

It shares nothing with the scheduler but the artefacts the hardware would
run: the per-cycle tables (what the calendars say, with their stages), the
memory layout, the network's logical latencies and the SDF graph. From the
graph alone it derives which producer token every consumer must read, then
follows every frame of the first iterations through gather, links, switches
and scatter, tagging every memory word with who wrote it and when, and
proves:

1. no link slot carries two frames in one cycle (a gather and a switch both
   driving a link, or two firings on one node at once);
2. every input a consumer reads is the token the SDF graph says, already
   arrived when the consumer fires;
3. no Tx word is overwritten before every send of it has left.

The steady state repeats every metacycle, so iterations ``0 .. stages + 1``
cover the prologue and one full period.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict

import numpy as np

__all__ = ["ScheduleError", "check_schedule"]


class ScheduleError(Exception):
    """A schedule that breaks one of the checker's three properties."""


def _port_offsets(ports):
    offs, o = [], 0
    for p in ports:
        offs.append(o)
        o += p.rate * p.token_words
    return offs


class _Memory:
    """Word -> time-ordered writes ``((cycle, phase), tag)``."""

    def __init__(self):
        self.w = defaultdict(list)

    def write(self, key, when, tag):
        self.w[key].append((when, tag))

    def finish(self):
        for v in self.w.values():
            v.sort(key=lambda e: e[0])

    def read(self, key, when):
        """The latest write strictly before ``when`` (``None``: never written)."""
        v = self.w.get(key)
        if not v:
            return None, None
        i = bisect_left(v, when, key=lambda e: e[0])
        return (v[i - 1][1], v[i - 1][0]) if i else (None, None)


def check_schedule(sched, tables=None, *, iterations: int | None = None) -> None:
    """Prove the three properties of a schedule, or raise :class:`ScheduleError`.

    Args:
        sched: a :class:`~tidesim.calendars.Schedule`.
        tables: its tables (built when None).
        iterations: how many iterations to follow (default ``stages + 2``).
    """
    from ._tables import build_tables

    T = tables if tables is not None else build_tables(sched)
    graph, net = sched.graph, sched.network
    M = sched.metacycle_cycles
    inst = graph.instances
    q = [int(v) for v in graph.repetitions]
    lat = [int(v) for v in net.latency_cycles]
    links = net.links.tolist()
    n_iter = iterations if iterations is not None else sched.stages + 2
    # 1a. a gather and a switch never drive the same link slot
    both = np.argwhere((T.gather_addr >= 0) & (T.switch_in >= 0))
    if len(both):
        l, x = both[0]
        raise ScheduleError(f"link {l} slot {x}: gather and switch both drive it")

    # firings of every node, per iteration, as (cycle, firing id)
    def occurrences(table, stage):
        rows, xs = np.nonzero(table >= 0)
        for r, x in zip(rows.tolist(), xs.tolist(), strict=True):
            s = int(stage[r, x])
            for k in range(n_iter):
                yield r, x, (s + k) * M + x, k, int(table[r, x])

    fire_at = {}  # (inst, f, k) -> (node, cycle)
    busy = defaultdict(dict)
    for node, _x, c, k, fid in occurrences(T.fire_id, T.fire_stage):
        i, f, cyc = int(sched.fire[fid, 0]), int(sched.fire[fid, 1]), int(sched.fire[fid, 4])
        if int(sched.placement[i]) != node:
            raise ScheduleError(f"firing {inst[i].name}#{f} runs on node {node}, "
                                f"placed on {int(sched.placement[i])}")
        for cc in range(c, c + cyc):
            other = busy[node].get(cc)
            if other is not None:
                raise ScheduleError(f"node {node} cycle {cc}: two firings at once "
                                    f"({other} and {inst[i].name}#{f})")
            busy[node][cc] = f"{inst[i].name}#{f}"
        fire_at[(i, f, k)] = (node, c, fid)
    # an instance's firings in (iteration, f) order
    for i in range(len(inst)):
        seq = sorted((fire_at[(i, f, k)][1], k, f) for k in range(n_iter)
                      for f in range(q[i]))
        keys = [(k, f) for _, k, f in seq]
        if keys != sorted(keys):
            raise ScheduleError(f"{inst[i].name}: firings out of order {keys[:6]}")

    # memories, tagged by writer
    tx, rx = _Memory(), _Memory()
    for (i, f, k), (node, c, fid) in fire_at.items():
        ob = int(sched.out_base[fid])
        n_out = sum(p.rate * p.token_words for p in inst[i].action.outputs)
        for o in range(n_out):
            tx.write((node, ob + o), (c, 1), ("tx", i, f, k, o))
    for (node, a), v in zip(sched.rx_init.tolist(), sched.rx_init_values.tolist(),
                            strict=True):
        rx.write((node, a), (-(1 << 62), 0), ("init", int(v)))
    tx.finish()
    # 3. and the frames: gathered tags, forwarded by switches, scattered
    on_link = defaultdict(dict)  # link -> arrival cycle at dst -> tag
    pending = []
    for l, _x, c, k, a in occurrences(T.gather_addr, T.gather_stage):
        src = links[l][0]
        tag, _ = tx.read((src, a), (c, 0))
        pending.append((l, c, tag, ("gather", l, c, a, k)))
    switch = defaultdict(dict)  # in-link -> cycle at the switch -> [out-links]
    for l, _x, c, _k, fl in occurrences(T.switch_in, T.switch_stage):
        switch[fl].setdefault(c, []).append(l)
    sends = []
    while pending:
        l, c, tag, origin = pending.pop()
        arr = c + lat[l]
        if arr in on_link[l]:
            raise ScheduleError(f"link {l} carries two frames at cycle {c}")
        on_link[l][arr] = (tag, origin)
        for lo in switch[l].get(arr + 1, []):
            pending.append((lo, arr + 1, tag, origin))
        sends.append(origin)
    for l, _x, c, _k, a in occurrences(T.scatter_addr, T.scatter_stage):
        dst = links[l][1]
        got = on_link[l].get(c)
        rx.write((dst, a), (c, 0), None if got is None else got[0])
    # local copies
    dst_of = [e.dst for e in graph.edges]
    for row in sched.copies.tolist():
        e, _j, _w, A, ta, ra = row
        node = int(sched.placement[dst_of[e]])
        s, x = A // M, A % M
        for k in range(n_iter):
            c = (s + k) * M + x
            tag, _ = tx.read((node, ta), (c, 0))
            rx.write((node, ra), (c, 0), tag)
    rx.finish()
    # 3. every send carries the value its producer wrote in the send's own
    # iteration: not sent before the write, not overwritten before the send
    for _kind, l, c, a, k in sends:
        tag, _ = tx.read((links[l][0], a), (c, 0))
        if tag is None or tag[3] != k:
            what = "before it was written" if tag is None or tag[3] < k else \
                "after it was overwritten"
            raise ScheduleError(f"link {l} cycle {c}: Tx word {a} of node {links[l][0]} "
                                f"is sent {what} (iteration {k}, holds {tag})")

    # 2. every consumer reads exactly the token the graph says
    in_edge = {(e.dst, e.dst_port): (n, e) for n, e in enumerate(graph.edges)}
    for (i, f, k), (node, c, fid) in fire_at.items():
        a = inst[i].action
        ib = int(sched.in_base[fid])
        for p, off in zip(range(len(a.inputs)), _port_offsets(a.inputs), strict=True):
            n_e, e = in_edge[(i, p)]
            src_port = inst[e.src].action.outputs[e.src_port]
            p_out = src_port.rate
            c_in = a.inputs[p].rate
            per_iter = q[e.src] * p_out
            d = len(e.initial)
            W = a.inputs[p].token_words
            init_words = None
            for r in range(c_in):
                g = k * per_iter + f * c_in + r
                u = g - d
                for w in range(W):
                    got, when = rx.read((node, ib + off + r * W + w), (c, 1))
                    where = (f"{inst[i].name}#{f} iteration {k} input "
                             f"{a.inputs[p].name} token {r} word {w} at cycle {c}")
                    if u < 0:
                        if init_words is None:
                            from ..waves import pack_tokens

                            init_words = pack_tokens(src_port, e.initial).reshape(d, W)
                        want = int(init_words[u + d, w])
                        if got != ("init", want):
                            raise ScheduleError(f"{where}: reads {got}, expected the "
                                                f"initial token {u + d}")
                        continue
                    kk, jj = divmod(u, per_iter)
                    if kk >= n_iter:
                        continue
                    ff, rr = divmod(jj, p_out)
                    o = _port_offsets(inst[e.src].action.outputs)[e.src_port] + rr * W + w
                    want = ("tx", e.src, ff, kk, o)
                    if got != want:
                        raise ScheduleError(f"{where}: reads {got}, expected {want}"
                                            + ("" if got else " (nothing arrived)"))
