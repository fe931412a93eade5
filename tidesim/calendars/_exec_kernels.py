"""The logical-time executor's kernel: gather -> link (λ) -> scatter -> compute.

Plain ``@njit`` functions over flat arrays. Node ``n``'s application cycle at
global step ``g`` is ``c = g + base[n]``; its calendar slot is ``x = c mod M``
and its metacycle ``m = c // M``. An operation of stage ``s`` in slot ``x``
belongs to iteration ``k = m - s`` and runs only when ``0 <= k < n_iter``.
A frame put on link ``l`` at step ``g`` is read by the receiver at step
``g + delay[l]`` (``delay = λ' + base[src] - base[dst] >= 0``).

The kernel keeps every node's slot and metacycle step by step (no division
per step) and, unless an app fires plain Python, counts down the idle slots
of every link's and node's calendars, so that a sparse calendar costs no
table look-up at its idle slots.
"""

from __future__ import annotations

import numpy as np
from numba import types

from .._jit import jit_signature, njit

__all__ = ["DISPATCH_SIGNATURE", "DISPATCH_TYPE", "no_dispatch", "run_logical"]

_words = types.uint64[::1]
DISPATCH_SIGNATURE = types.void(types.int64, _words, _words, _words)
"""``dispatch(kind, state, inputs, outputs)``: fire one action of type ``kind``."""
DISPATCH_TYPE = types.FunctionType(DISPATCH_SIGNATURE)

_i1, _i2 = types.int64[::1], types.int64[:, ::1]
_u1, _u2 = types.uint64[::1], types.uint64[:, ::1]
_t1, _t2 = types.uint8[::1], types.uint8[:, ::1]
_i = types.int64
RUN_SIGNATURE = types.UniTuple(_i, 5)(
    DISPATCH_TYPE, _i, _i, _i, _i, _i,            # dispatch, M, n_iter, g, g_end, resume
    _i1, _i1, _i1, _i1,                           # base, lsrc, ldst, delay
    _i2, _i2, _i2, _i2, _i2, _i2,                 # gather, switch, scatter tables
    _i1, _i1, _i1, _i1,                           # local copies
    _i2, _i2,                                     # fire_id, fire_stage
    _i1, _i1, _i1, _i1, _i1, _i1, types.bool_[::1],  # firings, is_py
    _i1, _i1,                                     # st_lo, st_hi
    _u1, _u1, _u1, _i1, _i1,                      # tx, rx, state, tx_base, rx_base
    _u2, _u1,                                     # ring, last
    _i1, _i1, _i1, _u2,                           # record
    _t1, _t1, _t1, _t2, _t1, _t2,                 # taints
    types.float64, _i, _i, _i, _i1,               # flips, crash, buffer faults
    _u2, _i, _i)                                  # wire record, its first step; own
"""One signature, so the kernel is compiled (and cached) once for every app:
each app's dispatch comes in through a function pointer."""

# status codes returned by run_logical
DONE = 0
PYTHON_FIRING = 1


@jit_signature(DISPATCH_SIGNATURE)
def no_dispatch(kind, state, inputs, outputs):  # pragma: no cover - never called
    """The dispatch of an app whose actions are all plain Python."""
    return


@njit(inline="always")
def _post_fire(fid, k, tx, out_at, rec_ptr, rec_src, rec_dst, rec, taint_tx, taint_rec):
    """Copy firing ``fid``'s app outputs of iteration ``k`` into the record."""
    for r in range(rec_ptr[fid], rec_ptr[fid + 1]):
        rec[k, rec_dst[r]] = tx[out_at + rec_src[r]]
        taint_rec[k, rec_dst[r]] = taint_tx[out_at + rec_src[r]]


@njit(inline="always")
def _mix(seed, link, cycle):
    """A 64-bit hash of ``(seed, link, cycle)`` (splitmix64 finaliser): the bit
    flips of a frame do not depend on the order frames are simulated in."""
    z = (np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
         + np.uint64(link) * np.uint64(0xBF58476D1CE4E5B9)
         + np.uint64(cycle & 0x7FFFFFFFFFFFFFFF) * np.uint64(0x94D049BB133111EB))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


NEVER = 1 << 62
"""A countdown that never ends: the slot table has no active slot at all."""


@njit(inline="always")
def _idle_after(t1, t2, row, x, M):
    """How many slots after ``x`` of ``row`` are idle in both tables (``< 0``).

    The slots repeat every ``M``: ``M - 1`` when ``x`` is the row's only
    active slot, :data:`NEVER` when the row has none.
    """
    y = x
    for d in range(1, M):
        y += 1
        if y == M:
            y = 0
        if t1[row, y] >= 0 or t2[row, y] >= 0:
            return d - 1
    if t1[row, x] >= 0 or t2[row, x] >= 0:
        return M - 1
    return NEVER


@njit(inline="always")
def _no_copy_after(copy_ptr, n, x, M):
    """:func:`_idle_after` for node ``n``'s local copies (CSR over ``n * M + x``)."""
    p0 = n * M
    y = x
    for d in range(1, M):
        y += 1
        if y == M:
            y = 0
        if copy_ptr[p0 + y] < copy_ptr[p0 + y + 1]:
            return d - 1
    if copy_ptr[p0 + x] < copy_ptr[p0 + x + 1]:
        return M - 1
    return NEVER


@jit_signature(RUN_SIGNATURE)
def run_logical(dispatch, M, n_iter, g, g_end, resume_node,
                base, lsrc, ldst, delay,
                ga, gs, si, ss, sa, sst,
                copy_ptr, copy_tx, copy_rx, copy_stage,
                fire_id, fire_stage,
                f_kind, f_inst, f_in, f_nin, f_out, f_nout, is_py,
                st_lo, st_hi,
                tx, rx, state, tx_base, rx_base,
                ring, last,
                rec_ptr, rec_src, rec_dst, rec,
                taint_tx, taint_rx, taint_state, taint_ring, taint_last, taint_rec,
                flip_p, flip_seed, crash_node, crash_metacycle, fault_cycle,
                wire, wire_g0, own):
    """Run global steps ``g .. g_end - 1``; stop early at a plain-Python firing.

    Args:
        dispatch: ``DISPATCH_TYPE``, fires compiled actions by kind.
        M, n_iter: metacycle length and number of iterations.
        g, g_end: global step range; ``resume_node >= 0`` resumes step ``g``'s
            compute phase after node ``resume_node - 1``'s Python firing.
        base, lsrc, ldst, delay: int64 ``[N]``, ``[L]``, ``[L]``, ``[L]``.
        ga, gs, si, ss, sa, sst: int64 ``[L, M]`` tables (``Tables``).
        copy_ptr, copy_tx, copy_rx, copy_stage: local copies (CSR over ``N * M``).
        fire_id, fire_stage: int64 ``[N, M]``.
        f_kind, f_inst, f_in, f_nin, f_out, f_nout: int64 ``[F]``: action type,
            instance, absolute Rx / Tx address and size of each firing's blocks.
        is_py: bool ``[K]``, kinds fired in Python.
        st_lo, st_hi: int64 ``[I]`` each instance's state words in ``state``.
        tx, rx, state: uint64 flat memories; tx_base, rx_base: int64 ``[N]``.
        ring: uint64 ``[L, R]`` frames in flight; last: uint64 ``[L]`` the
            frame each link delivered at the previous step (what a switch forwards).
        rec_ptr, rec_src, rec_dst: per firing, output words to record;
            rec: uint64 ``[n_iter, W]`` the app's outputs.
        taint_*: uint8 shadows of every memory: 1 marks a word corrupted by a
            fault (a bit flip, a crashed node, an elastic-buffer fault).
        flip_p, flip_seed: per-frame bit-flip probability and its seed.
        crash_node, crash_metacycle: node that stops at that metacycle (-1: none).
        fault_cycle: int64 ``[L]``: frames received on link ``l``
            from receiver cycle ``fault_cycle[l]`` on are corrupted (-1: never).
        wire, wire_g0: uint64 ``[L, W]``: the frame put on each link at steps
            ``wire_g0 .. wire_g0 + W - 1`` (for waveforms; ``W = 0`` records nothing).
        own: -1 runs every node; ``n >= 0`` runs node ``n`` only (its
            out-links' gathers, its in-links' scatters, its copies and
            firings): the caller fills its in-links' ``ring`` slots with the
            frames their senders put on the wire, and takes its out-links'
            frames from ``ring`` (each at ``(step + delay) mod R``).

    Returns:
        ``(status, g, node, fid, k)``: ``DONE``, or ``PYTHON_FIRING`` with the
        node, firing and iteration the caller must fire before resuming at
        ``(g, node + 1)``.
    """
    L = lsrc.shape[0]
    N = base.shape[0]
    R = ring.shape[1]
    W = wire.shape[1]
    # every node's slot x = c mod M and metacycle m = c // M at step g, kept up
    # to date step by step (no division in the loops below)
    xs = np.empty(N, dtype=np.int64)
    ms = np.empty(N, dtype=np.int64)
    for n in range(N):
        c = g + base[n]
        xs[n] = c % M
        ms[n] = c // M
    now = g % R  # the ring slot read at step g; link l writes slot now + delay[l]
    # countdowns: how many more steps each link's gather / switch and scatter
    # slots, and each node's copies and firing, are idle in the tables (a
    # sparse calendar then skips its tables). Only without plain-Python
    # firings: the kernel returns at those and would scan the tables again.
    skip = not is_py.any()
    g_idle = np.zeros(L if skip else 0, dtype=np.int64)
    s_idle = np.zeros(L if skip else 0, dtype=np.int64)
    c_idle = np.zeros(N if skip else 0, dtype=np.int64)
    f_idle = np.zeros(N if skip else 0, dtype=np.int64)
    while g < g_end:
        if resume_node < 0:
            # gather and switch: every link's sender puts one frame on the wire
            q = g - wire_g0
            keep = q >= 0 and q < W
            for l in range(L):
                i = lsrc[l]
                if own >= 0 and i != own:
                    continue
                w = np.uint64(0)
                tw = np.uint8(0)
                if crash_node == i and ms[i] >= crash_metacycle:
                    # (for good: the link's countdown is not read again)
                    tw = np.uint8(1)
                elif skip and g_idle[l] > 0:
                    g_idle[l] -= 1
                else:
                    x = xs[i]
                    m = ms[i]
                    a = ga[l, x]
                    if a >= 0:
                        k = m - gs[l, x]
                        if k >= 0 and k < n_iter:
                            w = tx[tx_base[i] + a]
                            tw = taint_tx[tx_base[i] + a]
                    else:
                        fl = si[l, x]
                        if fl >= 0:
                            k = m - ss[l, x]
                            if k >= 0 and k < n_iter:
                                w = last[fl]
                                tw = taint_last[fl]
                    if skip:
                        g_idle[l] = _idle_after(ga, si, l, x, M)
                if flip_p > 0.0:
                    h = _mix(flip_seed, l, g + base[i])
                    if (h >> np.uint64(11)) * (1.0 / 9007199254740992.0) < flip_p:
                        w ^= np.uint64(1) << (h & np.uint64(63))
                        tw = np.uint8(1)
                if keep:
                    wire[l, q] = w
                s = now + delay[l]  # (g + delay[l]) mod R, as 0 <= delay[l] < R
                if s >= R:
                    s -= R
                ring[l, s] = w
                taint_ring[l, s] = tw
            # scatter: every link's receiver takes the frame due now
            for l in range(L):
                j = ldst[l]
                if own >= 0 and j != own:
                    continue
                w = ring[l, now]
                tw = taint_ring[l, now]
                if fault_cycle[l] >= 0 and g + base[j] >= fault_cycle[l]:
                    tw = np.uint8(1)
                last[l] = w
                taint_last[l] = tw
                if skip and s_idle[l] > 0:
                    s_idle[l] -= 1
                    continue
                x = xs[j]
                a = sa[l, x]
                if a >= 0:
                    k = ms[j] - sst[l, x]
                    if k >= 0 and k < n_iter:
                        rx[rx_base[j] + a] = w
                        taint_rx[rx_base[j] + a] = tw
                if skip:
                    s_idle[l] = _idle_after(sa, sa, l, x, M)
            # local copies, then compute
            for n in range(N):
                if own >= 0 and n != own:
                    continue
                if skip and c_idle[n] > 0:
                    c_idle[n] -= 1
                    continue
                m = ms[n]
                p = n * M + xs[n]
                for r in range(copy_ptr[p], copy_ptr[p + 1]):
                    k = m - copy_stage[r]
                    if k >= 0 and k < n_iter:
                        rx[rx_base[n] + copy_rx[r]] = tx[tx_base[n] + copy_tx[r]]
                        taint_rx[rx_base[n] + copy_rx[r]] = taint_tx[tx_base[n] + copy_tx[r]]
                if skip:
                    c_idle[n] = _no_copy_after(copy_ptr, n, xs[n], M)
            n0 = 0
        else:
            n0 = resume_node
            resume_node = -1
        for n in range(n0, N):
            if own >= 0 and n != own:
                continue
            if skip and f_idle[n] > 0:
                f_idle[n] -= 1
                continue
            x = xs[n]
            m = ms[n]
            fid = fire_id[n, x]
            if skip:
                f_idle[n] = _idle_after(fire_id, fire_id, n, x, M)
            if fid < 0:
                continue
            k = m - fire_stage[n, x]
            if k < 0 or k >= n_iter:
                continue
            if crash_node == n and m >= crash_metacycle:
                # a crashed node's outputs never come: mark them corrupted
                for r in range(rec_ptr[fid], rec_ptr[fid + 1]):
                    taint_rec[k, rec_dst[r]] = np.uint8(1)
                continue
            o0 = f_out[fid]
            o1 = o0 + f_nout[fid]
            i0 = f_in[fid]
            i1 = i0 + f_nin[fid]
            inst = f_inst[fid]
            bad = np.uint8(0)
            for a in range(i0, i1):
                bad |= taint_rx[a]
            for a in range(st_lo[inst], st_hi[inst]):
                bad |= taint_state[a]
            for a in range(o0, o1):
                tx[a] = np.uint64(0)
                taint_tx[a] = bad
            if bad:
                for a in range(st_lo[inst], st_hi[inst]):
                    taint_state[a] = bad
            kind = f_kind[fid]
            if is_py[kind]:
                return PYTHON_FIRING, g, n, fid, k
            dispatch(kind, state[st_lo[inst]:st_hi[inst]], rx[i0:i1], tx[o0:o1])
            _post_fire(fid, k, tx, o0, rec_ptr, rec_src, rec_dst, rec, taint_tx, taint_rec)
        # the next step
        for n in range(N):
            x = xs[n] + 1
            if x == M:
                xs[n] = 0
                ms[n] += 1
            else:
                xs[n] = x
        now += 1
        if now == R:
            now = 0
        g += 1
    return DONE, g, -1, -1, -1


@njit
def post_fire(fid, k, tx, out_at, rec_ptr, rec_src, rec_dst, rec, taint_tx, taint_rec):
    """:func:`_post_fire` for the caller of a plain-Python firing."""
    _post_fire(fid, k, tx, out_at, rec_ptr, rec_src, rec_dst, rec, taint_tx, taint_rec)
