"""Cycle models of the RTL blocks, edge by edge in time order (the golden
references the cocotb scoreboards compare the Verilog against).

Both clock domains are stepped in the order of their rising edges. Edges of
the two domains at the same instant each see the other's registers as they
were before that instant, which is what non-blocking assignments give in the
simulator.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit

# elastic-buffer outputs, read domain: one row per read edge
RD_OCC, RD_UNDERFLOW, RD_BUSY = 0, 1, 2
# write domain: one row per write edge
WR_FULL, WR_OVERFLOW, WR_LEVEL = 0, 1, 2


@njit
def elastic_buffer(addr, sync, wr_t, wr_rst, wr_en, wr_data, rd_t, rd_rst, rd_en, adj,
                   rd_out, rd_data, wr_out):
    """The elastic buffer (``tidesim_elastic_buffer.v``), edge by edge.

    Args:
        addr: ``ADDR`` (depth ``2**addr``); sync: ``SYNC`` stages (>= 2).
        wr_t: int64 ``[W]`` write-clock rising edges (fs, increasing).
        wr_rst, wr_en: bool ``[W]``, the inputs seen at each write edge.
        wr_data: uint64 ``[W]``.
        rd_t: int64 ``[R]`` read-clock rising edges (fs, increasing).
        rd_rst, rd_en: bool ``[R]``.
        adj: int64 ``[R]`` ``adj_frames`` at each read edge (0: no ``adj_valid``).
        rd_out: int64 ``[R, 3]`` out: occupancy, underflow, adj_busy after
            each read edge.
        rd_data: uint64 ``[R]`` out: ``rd_data`` after each read edge.
        wr_out: int64 ``[W, 3]`` out: full, overflow, and the occupancy as
            the write side sees it (not a port) after each write edge.
    """
    depth = 1 << addr
    mod = depth << 1
    W, R = wr_t.shape[0], rd_t.shape[0]
    mem = np.zeros(depth, dtype=np.uint64)
    # write domain
    wptr = 0
    rsync = np.zeros(sync, dtype=np.int64)
    drops = 0
    req_sync = np.zeros(sync, dtype=np.int64)
    ack = 0
    overflow = 0
    # read domain
    rptr = 0
    wsync = np.zeros(sync, dtype=np.int64)
    fills = 0
    req = 0
    drain_hold = 0
    ack_sync = np.zeros(sync, dtype=np.int64)
    underflow = 0
    data = np.uint64(0)
    i = j = 0
    while i < W or j < R:
        do_w = i < W and (j >= R or wr_t[i] <= rd_t[j])
        do_r = j < R and (i >= W or rd_t[j] <= wr_t[i])
        # what each side samples of the other: the values before this instant
        old_rptr, old_req, old_wptr, old_ack, old_drain = rptr, req, wptr, ack, drain_hold
        if do_r:
            rd_word = mem[rptr & (depth - 1)]
        if do_w:
            if wr_rst[i]:
                wptr = 0
                overflow = 0
                drops = 0
                ack = 0
                rsync[:] = 0
                req_sync[:] = 0
            else:
                full = (wptr - rsync[sync - 1]) % mod == depth
                new_req = req_sync[sync - 1] != ack
                if wr_en[i] and drops == 0:
                    mem[wptr & (depth - 1)] = wr_data[i]
                    wptr = (wptr + 1) % mod
                    if full:
                        overflow = 1
                d = drops
                if wr_en[i] and drops != 0:
                    d -= 1
                if new_req:
                    d += old_drain
                    ack = req_sync[sync - 1]
                drops = d
                for s in range(sync - 1, 0, -1):
                    rsync[s] = rsync[s - 1]
                    req_sync[s] = req_sync[s - 1]
                rsync[0] = old_rptr
                req_sync[0] = old_req
            wr_out[i, WR_FULL] = (wptr - rsync[sync - 1]) % mod == depth
            wr_out[i, WR_OVERFLOW] = overflow
            wr_out[i, WR_LEVEL] = (wptr - rsync[sync - 1]) % mod
            i += 1
        if do_r:
            if rd_rst[j]:
                rptr = 0
                underflow = 0
                fills = 0
                req = 0
                drain_hold = 0
                data = np.uint64(0)
                wsync[:] = 0
                ack_sync[:] = 0
            else:
                occ = (wsync[sync - 1] - rptr) % mod
                busy = req != ack_sync[sync - 1]
                if rd_en[j] and fills == 0:
                    data = rd_word
                    rptr = (rptr + 1) % mod
                    if occ == 0:
                        underflow = 1
                f = fills
                if rd_en[j] and fills != 0:
                    f -= 1
                if adj[j] > 0:
                    f += adj[j]
                fills = f
                if adj[j] < 0 and not busy:
                    drain_hold = -adj[j]
                    req ^= 1
                for s in range(sync - 1, 0, -1):
                    wsync[s] = wsync[s - 1]
                    ack_sync[s] = ack_sync[s - 1]
                wsync[0] = old_wptr
                ack_sync[0] = old_ack
            rd_out[j, RD_OCC] = (wsync[sync - 1] - rptr) % mod
            rd_out[j, RD_UNDERFLOW] = underflow
            rd_out[j, RD_BUSY] = req != ack_sync[sync - 1]
            rd_data[j] = data
            j += 1


@njit
def pump(period, gain, target, frac, rst, counts, finc, fdec, update, position):
    """The pump controller (``tidesim_pump.v``), edge by edge.

    Args:
        period: clock cycles per update; gain, target: fixed point with
            ``frac`` fractional bits (steps per frame, steps).
        rst: bool ``[E]``; counts: int64 ``[E, N]``, the counts at each edge.
        finc, fdec, update: bool ``[E]`` out; position: int64 ``[E]`` out,
            each after its edge.
    """
    tick = 0
    pos = 0
    half = 1 << (frac - 1)
    for k in range(rst.shape[0]):
        f = d = u = False
        if rst[k]:
            tick = 0
            pos = 0
        elif tick == period - 1:
            tick = 0
            u = True
            desired = counts[k].sum() * gain + target
            here = pos << frac
            if desired > here + half:
                f = True
                pos += 1
            elif desired < here - half:
                d = True
                pos -= 1
        else:
            tick += 1
        finc[k], fdec[k], update[k], position[k] = f, d, u, pos


@njit
def gather_unit(r, ma, cfg, mem_wr_en, mem_wr_addr, mem_wr_data, out, valid, defined):
    """The gather unit's datapath (``tidesim_gather.v``), edge by edge.

    Args:
        r: reset edges; ma: ``2**ma`` words of memory.
        cfg: int64 ``[n, P]``, each cycle's configuration (cycle ``m`` ends at
            edge ``r + m``).
        mem_wr_en: bool ``[E]``; mem_wr_addr: int64 ``[E]``; mem_wr_data:
            uint64 ``[E]``: the node's writes at each edge.
        out: uint64 ``[E, P]`` out; valid: bool ``[E, P]`` out: each link's
            frame after each edge; defined: bool ``[E]`` out: no link read a
            word never written.
    """
    words = 1 << ma
    mem = np.zeros(words, dtype=np.uint64)
    written = np.zeros(words, dtype=np.bool_)
    E, P = out.shape
    n = cfg.shape[0]
    for k in range(E):
        m = k - r
        defined[k] = True
        if 0 <= m < n:
            for p in range(P):
                a = cfg[m, p]
                if a >= 0:
                    a &= words - 1
                    out[k, p] = mem[a]
                    valid[k, p] = True
                    if not written[a]:
                        defined[k] = False
        if mem_wr_en[k]:
            mem[mem_wr_addr[k] & (words - 1)] = mem_wr_data[k]
            written[mem_wr_addr[k] & (words - 1)] = True


@njit
def scatter_unit(r, ma, cfg, in_words, rd_addr, rd_data, defined):
    """The scatter unit's datapath (``tidesim_scatter.v``), edge by edge.

    Args:
        r, ma, cfg: as :func:`gather_unit`.
        in_words: uint64 ``[E, P]``: each in-link's frame at each edge.
        rd_addr: int64 ``[E]``: the node's read address at each edge.
        rd_data: uint64 ``[E]`` out; defined: bool ``[E]`` out: the word read
            after each edge, and whether it was ever written.
    """
    words = 1 << ma
    mem = np.zeros(words, dtype=np.uint64)
    written = np.zeros(words, dtype=np.bool_)
    E, P = in_words.shape
    n = cfg.shape[0]
    for k in range(E):
        a = rd_addr[k] & (words - 1)
        rd_data[k] = mem[a]
        defined[k] = written[a]
        m = k - r
        if 0 <= m < n:
            for p in range(P):
                c = cfg[m, p]
                if c >= 0:
                    mem[c & (words - 1)] = in_words[k, p]
                    written[c & (words - 1)] = True
