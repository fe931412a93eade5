"""A logical-time run node by node: each node steps its own calendars and
exchanges frames with its neighbours (conservative parallel discrete-event
simulation).

Node ``n`` runs the executor's kernel for itself only (``own = n``). It may run
step ``g`` once it holds every frame its in-links deliver at ``g``, but it only
waits for the frames its calendars *read*: a scatter slot, or a switch that
forwards the link one step later. The earliest step that needs a frame not
here yet bounds how far it runs before it looks for more; so a link's latency
and the idle slots of its receiver's calendar both give lookahead. A sender,
knowing the receiver's calendars from the same schedule, sends only the
frames that will be read, and only those read before the run's end (so a
link carries nothing once the run is over).

Around every directed cycle the links' latencies sum to more than zero, so
some node can always run: the scheme cannot deadlock.

:class:`FramePort` is what a node sends and receives through; the
``processes``, ``containers`` and ``dask`` backends give it TCP sockets, and
the tests threads and queues.
"""

from __future__ import annotations

import abc
import time
from typing import NamedTuple

import numpy as np

from ._exec_kernels import NEVER
from ._executor import Execution

__all__ = ["CHUNK_STEPS", "FramePort", "Frames", "needed_slots", "run_node"]

CHUNK_STEPS = 4096
"""The most steps a node runs between two looks at its links (the extra ring
slots an :class:`Execution` of a node needs)."""


class Frames(NamedTuple):
    """Frames of one link: ``words[k]`` (uint64) with ``taints[k]`` (uint8)
    was put on the wire at global step ``steps[k]`` (int64); ``upto``: every
    frame of the link before this step that its receiver reads has been sent."""

    link: int
    upto: int
    steps: np.ndarray
    words: np.ndarray
    taints: np.ndarray


class FramePort(abc.ABC):
    """A node's links, as its logical-time run sees them."""

    @abc.abstractmethod
    def send(self, frames: Frames) -> None:
        """Put ``frames`` (of one of this node's out-links) on their link."""

    @abc.abstractmethod
    def recv(self, wait_for: list[int]) -> list[Frames]:
        """Frames that arrived on this node's in-links.

        With ``wait_for`` empty, what is there now (maybe nothing); else block
        until something arrives on one of those links (raise when a link is
        closed or stays silent too long).
        """


def needed_slots(ex: Execution) -> np.ndarray:
    """bool ``[L, M]``: link ``l``'s frame delivered in its receiver's slot ``x`` is read.

    A scatter reads it in slot ``x``; a switch forwards it in slot ``x + 1``.
    """
    T, M = ex.tables, ex.sched.metacycle_cycles
    need = T.scatter_addr >= 0
    l2, x = np.nonzero(T.switch_in >= 0)
    need[T.switch_in[l2, x], (x - 1) % M] = True
    return need


def _next_needed(need: np.ndarray) -> np.ndarray:
    """int64 ``[L, M]``: slots from ``x`` to the next needed one (``NEVER``: none)."""
    L, M = need.shape
    out = np.full((L, M), NEVER, dtype=np.int64)
    x = np.arange(M)
    for link in range(L):
        idx = np.flatnonzero(need[link])
        if len(idx):
            ext = np.concatenate([idx, idx + M])
            out[link] = ext[np.searchsorted(ext, x)] - x
    return out


def run_node(ex: Execution, own: int, port: FramePort, *,
             chunk_steps: int = CHUNK_STEPS) -> dict:
    """Run node ``own``'s part of ``ex`` (made with ``ring_extra >= chunk_steps``).

    Returns:
        ``{"wall_s", "calls", "waits"}``: the node's wall time, kernel calls
        and waits for frames.
    """
    t0 = time.perf_counter()
    M = ex.sched.metacycle_cycles
    R = ex.ring.shape[1]
    if int(ex.delay.max(initial=0)) + 1 + chunk_steps > R:
        raise ValueError("the execution's ring is too short for chunk_steps")
    base_own = int(ex.base[own])
    need = needed_slots(ex)
    nxt = _next_needed(need)
    rows = nxt.tolist()  # (per-step bookkeeping below is in plain ints: chunks are short)
    delay = [int(d) for d in ex.delay]
    # links that carry something this node reads, or sends something read
    ins = [int(x) for x in np.flatnonzero((ex.ldst == own) & need.any(axis=1))]
    outs = [int(x) for x in np.flatnonzero((ex.lsrc == own) & need.any(axis=1))]
    rx_off = {link: delay[link] + base_own for link in ins}
    tx_off = {link: delay[link] + int(ex.base[ex.ldst[link]]) for link in outs}
    ring, taint = ex.ring, ex.taint_ring
    g, g1 = ex.g0, ex.g1
    avail = dict.fromkeys(ins, g)  # frames sent before this step are here
    pending: dict[int, list[Frames]] = {link: [] for link in ins}
    calls = waits = 0

    def absorb(got: list[Frames]) -> None:
        for fr in got:
            avail[fr.link] = max(avail[fr.link], fr.upto)
            pending[fr.link].append(fr)

    def first_missing(link: int) -> int:
        """The first step that reads a frame of ``link`` not here yet (or NEVER)."""
        a = avail[link]
        d = rows[link][(a + rx_off[link]) % M]
        return NEVER if d == NEVER else a + delay[link] + d

    def place(link: int, g_end: int) -> None:
        """Put the frames read before ``g_end`` into the ring; keep the others."""
        keep = []
        d = delay[link]
        for fr in pending[link]:
            if len(fr.steps) <= 8 and fr.steps[-1] + d < g_end:
                # (the usual message: a few frames, all due; numpy per element is cheaper)
                for s, w, t in zip(fr.steps.tolist(), fr.words, fr.taints, strict=True):
                    ring[link, (s + d) % R] = w
                    taint[link, (s + d) % R] = t
                continue
            at = fr.steps + d
            now = at < g_end
            slots = at[now] % R
            ring[link, slots] = fr.words[now]
            taint[link, slots] = fr.taints[now]
            if not now.all():
                keep.append(Frames(link, fr.upto, fr.steps[~now], fr.words[~now],
                                   fr.taints[~now]))
        pending[link] = keep

    def read_steps(link: int, g: int, g_end: int) -> np.ndarray:
        """The steps in ``g .. g_end - 1`` whose frame on ``link`` its receiver reads."""
        lim = min(g_end, g1 - delay[link])  # (it runs to g1)
        if lim - g > 4 * M:
            steps = np.arange(g, lim, dtype=np.int64)
            return steps[need[link, (steps + tx_off[link]) % M]]
        row, off, out = rows[link], tx_off[link], []
        s = g + row[(g + off) % M]
        while s < lim:
            out.append(s)
            s += 1 + row[(s + 1 + off) % M]
        return np.array(out, dtype=np.int64)

    while g < g1:
        g_end = min(g1, g + chunk_steps)
        for link in ins:
            g_end = min(g_end, first_missing(link))
        if g_end <= g:
            waits += 1
            absorb(port.recv([link for link in ins if first_missing(link) <= g]))
            continue
        for link in ins:
            if pending[link]:
                place(link, g_end)
        ex.run(g, g_end, own)
        calls += 1
        for link in outs:
            steps = read_steps(link, g, g_end)
            if len(steps):
                slots = (steps + delay[link]) % R
                port.send(Frames(link, g_end, steps, ring[link, slots], taint[link, slots]))
        g = g_end
    return {"wall_s": time.perf_counter() - t0, "calls": calls, "waits": waits}
