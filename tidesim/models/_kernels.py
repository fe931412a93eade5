"""Numba kernels of the bittide core: clocks, links, elastic buffers, control.

Everything here is a plain function over flat numpy arrays, grouped in the
structures of :mod:`tidesim.models._layout`; :class:`~tidesim.models.Simulation`
(:mod:`tidesim.models.simulation`) owns them, validates input, calls
:func:`advance` and makes room between calls. Shapes below use ``n`` nodes,
``L`` directed links, ``S`` segment capacity and ``Q`` sample capacity per node.

Time model (see ``docs/model.md``): node ``j``'s phase is piecewise linear.
Segment ``s`` of node ``j`` is anchored at integer edge ``seg_k[j, s]`` whose
time is the unevaluated double-double sum ``hi + lo`` (``seg[j, s, SG_HI]``,
``seg[j, s, SG_LO]``); it owns the edges ``seg_k[j, s] < k <= seg_k[j, s + 1]``
(segment 0 also owns every edge before its anchor) and the time of such an
edge is::

    E_j(k) = hi + (lo + (k - seg_k) * P)

rounded once, ``P = seg[j, s, SG_P]`` being the period in seconds and
``seg[j, s, SG_REL]`` the relative frequency ``f/f0 - 1``. A segment's floats
share one row, so the segments a sample reads sit in few cache lines. Anchors are accumulated
in double-double arithmetic, so the error of an edge time never exceeds one
rounding of a float64 of its own magnitude, however many cycles or segments
precede it.

Both fidelities run the same outer loop over control samples in global time
order; they differ only in how a link is advanced from one sample of its
receiver to the next: ``cycle`` walks every receiver edge and every frame
arrival through a real FIFO of sequence numbers, ``event`` uses the closed
form ``beta = ugn + A_ij(t) - R_j(t)``; where a buffer may reach empty or
full it computes the over- and underflows in closed form too (see the note
above :func:`_clipped_advance`), and it walks edge by edge (as ``cycle``
does, without sequence numbers) only while an adjustment is pending, over
short stretches that could touch both limits, and over the stretch that
holds a link's first fault of a kind. Hence they agree exactly.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types

from .._jit import borrowed, jit_signature, njit
from ..controllers._contract import STEP_TYPE
from ..controllers._detector import stability_update
from ._layout import (  # noqa: F401 (the kernels' names for the layout)
    DETAIL_LOG,
    FLAG_SETTLED,
    FLAG_STABLE,
    FP_ALLST_T,
    FP_F0,
    FP_LATMAX,
    FP_MAXREL,
    FP_PMAX,
    FP_STEP,
    FP_UNTIL,
    FP_WANDER,
    FP_WINDOW,
    IP_ACT,
    IP_ALLST_E,
    IP_ARM,
    IP_AUTO,
    IP_CYCLE,
    IP_D,
    IP_DEPTH,
    IP_EVERY,
    IP_HAS_CTL,
    IP_MARGIN,
    IP_MEAS_DDC,
    IP_OWN,
    IP_P,
    IP_REF,
    IP_SAMPLE_PHASE,
    IP_STOP,
    LF_ADVT,
    LF_ARM_T,
    LF_ARRT,
    LF_OVF_T,
    LF_STFROM,
    LF_STSINCE,
    LF_UNF_T,
    LS_ADVM,
    LS_ARM_M,
    LS_ARMED,
    LS_ARRK,
    LS_BASE,
    LS_LASTSEQ,
    LS_MAXCNT,
    LS_MAXDDC,
    LS_NF_STFROM,
    LS_OCC,
    LS_OVF_M,
    LS_OVF_N,
    LS_PEND,
    LS_RD,
    LS_SP,
    LS_STABLE,
    LS_STREF,
    LS_UNF_M,
    LS_UNF_N,
    LS_UP,
    LS_WR,
    N_FPAR,
    N_IPAR,
    N_LF,
    N_LS,
    N_SC,
    N_SG,
    SC_ALL_STABLE,
    SC_FAULTS_SEEN,
    SC_HEAD,
    SC_LOG_N,
    SC_N_STABLE,
    SG_HI,
    SG_LO,
    SG_P,
    SG_REL,
    ST_FAULT_STOP,
    ST_OK,
    ST_RANGE,
    ST_REC_FULL,
    ST_SEG_FULL,
    ST_WANDER,
    LinkState,
    NodeState,
    Params,
    Record,
)

_KMAX = 9223372036854775807  # no further segment

PHASE_TOL = 64.0 * 2.0**-53
"""Relative width of the band around an edge where the phase cannot decide.

Event fidelity finds the last frame to arrive by ``t`` from the sender's phase
``phi = (t - lat - hi - lo) * F`` (``F = f0 (1 + rel)``, the float whose
reciprocal is the segment's ``P``): the answer is ``k0 + floor(phi)``. With
``u = 2**-53`` and ``M = |t| + |hi| + lat``, ``|phi| <= M F (1 + 6 u)`` and
``phi`` is within ``3 u M F + 2.1 u |phi| <= 5.2 u M F`` of the exact phase
``(t - lat - hi - lo) / P``; the rounded edge times ``E(k) + lat`` that define
an arrival differ from the exact ones by at most ``5 u M`` seconds,
``5.1 u M F`` in phase. So when the fractional part of ``phi`` is farther than
``PHASE_TOL M F`` (about six times the sum of those bounds) from 0 and from 1,
``floor(phi)`` is what the edge times say; closer, the edge times are
evaluated. Any wider band is as exact (it only sends more cases to the edge
times): the core uses one band per sample for all the links it reads
(:func:`sample_phase_scale`).
"""
_DK_STEP = (1 << 26) - 1  # largest exact multiplier of a split period

# ----------------------------------------------------------------------------
# exact arithmetic helpers


@njit
def _two_sum(a, b):
    """Error-free sum: ``a + b == s + e`` exactly (float64 scalars)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


@njit
def anchor_advance(hi, lo, period_s, dk):
    """Double-double ``hi + lo + dk * period_s`` for an integer ``dk >= 0``.

    Veltkamp's split makes both partial products exact for ``dk < 2**26``
    (longer spans are taken in such steps), so the only error left is far
    below one float64 ulp of the result.
    """
    c = 134217729.0 * period_s
    ph = c - (c - period_s)
    pl = period_s - ph
    while dk > 0:
        step = dk if dk < _DK_STEP else _DK_STEP
        dk -= step
        s, e = _two_sum(hi, step * ph)
        e = e + (lo + step * pl)
        hi = s + e
        lo = e - (hi - s)
    return hi, lo


@njit
def edge_time(seg, seg_k, j, s, k):
    """Time (s) of edge ``k`` of node ``j`` computed from segment ``s``."""
    return seg[j, s, SG_HI] + (seg[j, s, SG_LO] + (k - seg_k[j, s]) * seg[j, s, SG_P])


@njit
def owner_segment(seg_k, n_seg, j, k, s):
    """Index of the segment of node ``j`` that owns edge ``k``, from hint ``s``."""
    last = n_seg[j] - 1
    while s < last and k > seg_k[j, s + 1]:
        s += 1
    while s > 0 and k <= seg_k[j, s]:
        s -= 1
    return s


@njit
def last_edge_before(seg, seg_k, n_seg, j, x, lat, s):
    """Largest edge ``k`` of node ``j`` with ``E_j(k) + lat <= x``.

    Returns ``(k, s)`` with ``s`` the segment owning ``k``. The estimate from
    the phase is corrected with the exact edge-time predicate, so the answer
    agrees bit for bit with walking the edges one by one.
    """
    s = segment_at(seg, n_seg, j, x - lat, s)
    k0 = seg_k[j, s]
    k_first = k0 if s > 0 else -_KMAX
    k_last = seg_k[j, s + 1] if s < n_seg[j] - 1 else _KMAX
    k = last_edge_in(seg[j, s, SG_HI], seg[j, s, SG_LO], k0, seg[j, s, SG_P], k_first, k_last,
                     x, lat)
    if k != _KMAX:
        return k, s
    return _last_edge_fixup(seg, seg_k, n_seg, j, x, lat, s)


@njit
def segment_at(seg, n_seg, j, y, s):
    """Segment of node ``j`` in force at time ``y`` (s), searched from hint ``s``."""
    last = n_seg[j] - 1
    while s < last and seg[j, s + 1, SG_HI] <= y:
        s += 1
    while s > 0 and seg[j, s, SG_HI] > y:
        s -= 1
    return s


@njit
def last_edge_in(hi, lo, k0, P, k_first, k_last, x, lat):
    """Fast path of :func:`last_edge_before` within one segment (scalars only).

    Returns the edge, or ``_KMAX`` when the estimate needs correcting or
    leaves the segment's edges ``(k_first, k_last]``.
    """
    k = k0 + np.int64(math.floor((x - lat - hi - lo) / P))
    if (k_first < k and k + 1 <= k_last and hi + (lo + (k + 1 - k0) * P) + lat > x
            and hi + (lo + (k - k0) * P) + lat <= x):
        return k
    return _KMAX


@njit
def arrival_from_phase(hi, lo, k0, F, t, lat, band):
    """Last edge ``k`` of a segment with ``E(k) + lat <= t``, from the phase.

    Args:
        hi, lo, k0: the segment's anchor time (s, double-double) and edge.
        F: ``f0 * (1.0 + rel)``, the float whose reciprocal is the period.
        t: the time (s); lat: the link latency (s, >= 0).
        band: the undecided band around an edge, in cycles; at least
            ``PHASE_TOL * (|t| + |hi| + lat) * F`` (see :data:`PHASE_TOL`).

    Returns:
        ``(k, decided)``: ``k0 + floor(phase)``, and whether the phase is
        farther than ``band`` from an edge, so that ``k`` is what the rounded
        edge times say. Scalars only, so it inlines.
    """
    phi = (t - lat - hi - lo) * F
    whole = math.floor(phi)
    frac = phi - whole
    return k0 + np.int64(whole), band < frac < 1.0 - band


@njit
def sample_phase_scale(t, lat_max, p_max):
    """Band of :func:`arrival_from_phase` per unit of ``F`` for a sample at ``t``.

    ``PHASE_TOL * (2 |t| + lat_max + p_max)`` bounds ``PHASE_TOL * M`` for
    every link read at ``t``: the segment a sender's last arrival is taken
    from starts at ``hi`` with ``0 <= hi <= max(|t|, p_max)`` (a later
    segment starts by ``t - lat``; segment 0 within one period of 0), and no
    latency exceeds ``lat_max`` (s). ``p_max`` is the longest period (s).
    """
    return PHASE_TOL * (2.0 * abs(t) + lat_max + p_max)


@njit
def _last_edge_fixup(seg, seg_k, n_seg, j, x, lat, s):
    """Slow path of :func:`last_edge_before`: correct the estimate edge by edge."""
    k = seg_k[j, s] + np.int64(math.floor((x - lat - seg[j, s, SG_HI] - seg[j, s, SG_LO])
                                          / seg[j, s, SG_P]))
    s = owner_segment(seg_k, n_seg, j, k + 1, s)
    while edge_time(seg, seg_k, j, s, k + 1) + lat <= x:
        k += 1
        s = owner_segment(seg_k, n_seg, j, k + 1, s)
    s = owner_segment(seg_k, n_seg, j, k, s)
    while edge_time(seg, seg_k, j, s, k) + lat > x:
        k -= 1
        s = owner_segment(seg_k, n_seg, j, k, s)
    return k, s


@njit
def order_start(keys):
    """A circular order of ``keys`` for :func:`order_requeue`, its head at 0.

    Args:
        keys: float64[n] each node's first time (s).

    Returns:
        ``(hk, hid)``: float64[n], int64[n] the times and nodes sorted by
        ``(time, node)``.
    """
    hid = np.argsort(keys, kind="mergesort")  # stable: ties go to the lower node
    hk = np.empty(keys.size)
    for r in range(keys.size):
        hk[r] = keys[hid[r]]
    return hk, hid


@njit(inline="always")  # once per sample: no call, no reference counting
def order_requeue(hk, hid, head, key, j):
    """Move the head of a circular sample order to its new place; return the new head.

    The order holds every node once: ``hk[r]`` its next time (s) and ``hid[r]``
    the node, sorted by ``(time, node)`` from ``head`` round the circle. The
    head's node ``j`` gets the new time ``key``: its slot becomes the tail and
    later keys shift up into it. A node's next sample is one update period
    on, after nearly every other node's, so it rarely moves (a heap would
    take ``log2(n)`` unpredictable steps).

    Args:
        hk, hid: float64[n], int64[n] the order (updated in place).
        head: index of the earliest entry, whose node is ``j``.
        key: the node's next time (s).
    """
    n = hk.size
    order_insert(hk, hid, head, n - 1, key, j)
    return head + 1 if head + 1 < n else 0


@njit(inline="always")
def order_insert(hk, hid, r, steps, key, j):
    """Put ``(key, j)`` into a circular order at free slot ``r``, moving it back
    past at most ``steps`` later entries (each shifts up a slot), so that the
    order stays sorted by ``(time, node)``.

    Args:
        hk, hid: float64[n], int64[n] the order (updated in place).
        r: the free slot just after the last entry.
    """
    n = hk.size
    for _ in range(steps):
        c = r - 1 if r > 0 else n - 1
        if hk[c] > key or (hk[c] == key and hid[c] > j):
            hk[r] = hk[c]
            hid[r] = hid[c]
            r = c
        else:
            break
    hk[r] = key
    hid[r] = j


# ----------------------------------------------------------------------------
# links


@njit
def _fill_ring(ring, ls, l, depth, ref):
    """Load the FIFO of link ``l`` with the ``ref`` most recent frames."""
    if depth == 0:
        return
    a = ls[l, LS_ARRK] - 1
    for q in range(ref):
        ring[l, q & (depth - 1)] = a - ref + 1 + q
    ls[l, LS_WR] = ref
    ls[l, LS_RD] = 0


@njit
def _link_up(l, src, dst, lat, t_up, seg, seg_k, n_seg, ls, lf, ring, ipar):
    """Bring link ``l`` up at ``t_up[l]`` with ``ref`` frames in its buffer."""
    i = src[l]
    j = dst[l]
    t0 = t_up[l]
    a0, sp = last_edge_before(seg, seg_k, n_seg, i, t0, lat[l], n_seg[i] - 1)
    r0, _ = last_edge_before(seg, seg_k, n_seg, j, t0, 0.0, n_seg[j] - 1)
    ref = ipar[IP_REF]
    ls[l, LS_UP] = 1
    ls[l, LS_BASE] = a0 - r0
    ls[l, LS_OCC] = ref
    ls[l, LS_ARRK] = a0 + 1
    ls[l, LS_ADVM] = r0
    ls[l, LS_PEND] = 0
    ls[l, LS_SP] = sp
    lf[l, LF_ADVT] = t0
    ls[l, LS_STREF] = 0
    lf[l, LF_STSINCE] = t0
    ls[l, LS_STABLE] = 0
    if ipar[IP_ARM] == 0:
        ls[l, LS_ARMED] = 1
        ls[l, LS_ARM_M] = r0
        lf[l, LF_ARM_T] = t0
        if ipar[IP_CYCLE] == 1:
            _fill_ring(ring, ls, l, ipar[IP_DEPTH], ref)


WALK_CHUNK = 2048
"""Receiver edges whose times a walk computes at once (and every link of the
receiver then reads): 16 KiB of times, which stay in the L1 cache."""


@njit
def _receiver_times(seg, seg_k, n_seg, j, ma, mb, tb):
    """Times (s) of the edges ``ma..mb`` of node ``j`` into ``tb[0 : mb - ma + 1]``.

    The same expression as :func:`edge_time`, in one plain loop per
    segment's span.
    """
    last = n_seg[j] - 1
    s = owner_segment(seg_k, n_seg, j, ma, last)
    m = ma
    while m <= mb:
        hi_m = mb
        if s < last and seg_k[j, s + 1] < hi_m:
            hi_m = seg_k[j, s + 1]
        hi = seg[j, s, SG_HI]
        lo = seg[j, s, SG_LO]
        k0 = seg_k[j, s]
        P = seg[j, s, SG_P]
        for mm in range(m, hi_m + 1):
            tb[mm - ma] = hi + (lo + (mm - k0) * P)
        m = hi_m + 1
        s += 1


@njit
def _walk_links(links, n_links, m_end, t_lim, j, src, lat, seg, seg_k, n_seg, ls, lf, ring,
                depth, use_ring, tb):
    """Walk ``links[:n_links]`` (all into node ``j``) to receiver edge ``m_end``.

    The receiver's edge times are computed once per chunk of
    :data:`WALK_CHUNK` edges into ``tb`` and read by every link; a chunk
    before the last ends at its last edge (a pseudo-edge there takes no
    arrival), the last at ``t_lim`` (s).
    """
    ma = m_end + 1
    for x in range(n_links):
        ma = min(ma, ls[links[x], LS_ADVM] + 1)
    while True:
        mb = min(ma + tb.size - 1, m_end)
        final = mb == m_end
        if mb >= ma:
            _receiver_times(seg, seg_k, n_seg, j, ma, mb, tb)
        t_b = t_lim if final else tb[mb - ma]
        for x in range(n_links):
            l = links[x]
            if final or ls[l, LS_ADVM] < mb:
                _walk(l, mb, t_b, src[l], lat[l], seg, seg_k, n_seg, ls, lf, ring, depth,
                      use_ring, tb, ma)
        if final:
            break
        ma = mb + 1


@njit
def _walk(l, m_end, t_lim, i, la, seg, seg_k, n_seg, ls, lf, ring, depth, use_ring, tb, tb_m):
    """Advance link ``l`` edge by edge to receiver edge ``m_end``, arrivals to ``t_lim``.

    ``tb[m - tb_m]`` holds the time of receiver edge ``m`` for every edge
    walked; the pseudo-edge ``m_end + 1`` at ``t_lim`` takes the arrivals
    after the last read.
    """
    # state in locals: the loop below runs once per edge of a cycle-fidelity run;
    # indices known to be >= 0 are unsigned, which spares Numba's wraparound
    occ = ls[l, LS_OCC]
    k = ls[l, LS_ARRK]
    pend = ls[l, LS_PEND]
    clip = ls[l, LS_ARMED] == 1 and depth > 0
    ring_on = use_ring and clip
    mask = depth - 1
    wr = ls[l, LS_WR]
    rd = ls[l, LS_RD]
    last_seq = ls[l, LS_LASTSEQ]
    n_ovf = ls[l, LS_OVF_N]
    n_unf = ls[l, LS_UNF_N]
    # sender segment locals
    last_i = n_seg[i] - 1
    sp = owner_segment(seg_k, n_seg, i, k, ls[l, LS_SP])
    s_hi = seg[i, sp, SG_HI]
    s_lo = seg[i, sp, SG_LO]
    s_k = seg_k[i, sp]
    s_P = seg[i, sp, SG_P]
    s_end = seg_k[i, sp + 1] if sp < last_i else _KMAX
    arr_t = s_hi + (s_lo + (k - s_k) * s_P) + la
    m = ls[l, LS_ADVM] + 1
    while m <= m_end + 1:
        if pend == 0 and m <= m_end:
            # the common edges in a loop with no other cases; it stops at an
            # edge that needs the general step below (the sender's next
            # segment, a full or empty FIFO), which takes that edge up from
            # the arrivals already counted, and then resumes
            if not clip:
                while m <= m_end:
                    tm = tb[np.uint64(m - tb_m)]
                    while arr_t <= tm and k < s_end:
                        occ += 1
                        k += 1
                        arr_t = s_hi + (s_lo + (k - s_k) * s_P) + la
                    if arr_t <= tm:
                        break
                    occ -= 1
                    m += 1
            else:
                while m <= m_end:
                    tm = tb[np.uint64(m - tb_m)]
                    while arr_t <= tm and k < s_end and occ < depth:
                        if ring_on:
                            ring[l, np.uint64(wr & mask)] = k
                            wr += 1
                        occ += 1
                        k += 1
                        arr_t = s_hi + (s_lo + (k - s_k) * s_P) + la
                    if arr_t <= tm or occ <= 0:
                        break
                    if ring_on:
                        last_seq = ring[l, np.uint64(rd & mask)]
                        rd += 1
                    occ -= 1
                    m += 1
        tm = t_lim if m > m_end else tb[np.uint64(m - tb_m)]
        while arr_t <= tm:
            if pend < 0:
                pend += 1
            elif not clip:
                occ += 1
            elif occ >= depth:
                if n_ovf == 0:
                    lf[l, LF_OVF_T] = arr_t
                    ls[l, LS_OVF_M] = m
                n_ovf += 1
            else:
                if ring_on:
                    ring[l, np.uint64(wr & mask)] = k
                    wr += 1
                occ += 1
            k += 1
            while k > s_end:
                # the sender's next segment (rare: once per control update)
                sp += 1
                s_hi = seg[i, sp, SG_HI]
                s_lo = seg[i, sp, SG_LO]
                s_k = seg_k[i, sp]
                s_P = seg[i, sp, SG_P]
                s_end = seg_k[i, sp + 1] if sp < last_i else _KMAX
            arr_t = s_hi + (s_lo + (k - s_k) * s_P) + la
        if m > m_end:
            break
        if pend > 0:
            pend -= 1
        elif not clip:
            occ -= 1
        elif occ <= 0:
            if n_unf == 0:
                lf[l, LF_UNF_T] = tm
                ls[l, LS_UNF_M] = m
            n_unf += 1
        else:
            if ring_on:
                last_seq = ring[l, np.uint64(rd & mask)]
                rd += 1
            occ -= 1
        m += 1
    ls[l, LS_OCC] = occ
    ls[l, LS_ARRK] = k
    ls[l, LS_PEND] = pend
    ls[l, LS_WR] = wr
    ls[l, LS_RD] = rd
    ls[l, LS_LASTSEQ] = last_seq
    ls[l, LS_OVF_N] = n_ovf
    ls[l, LS_UNF_N] = n_unf
    ls[l, LS_SP] = sp
    lf[l, LF_ARRT] = arr_t
    ls[l, LS_ADVM] = m_end
    lf[l, LF_ADVT] = t_lim


_i8_1 = types.int64[::1]
_i8_2 = types.int64[:, ::1]
_f8_1 = types.float64[::1]
_f8_2 = types.float64[:, ::1]
_i4_2 = types.int32[:, ::1]
_i1_2 = types.int8[:, ::1]
_f8_3 = types.float64[:, :, ::1]

PARAMS_TYPE = types.NamedTuple(
    (_f8_1, _i8_1, _f8_1, _f8_1, _f8_1, _i8_1, _i8_1, _i8_1, _f8_1, _i8_1, _i8_1, _f8_1, _f8_1,
     _f8_1, _i8_1, _f8_1, _i8_1, _f8_1), Params)
NODES_TYPE = types.NamedTuple(
    (_f8_3, _i8_2, _i8_1, _i8_1, _f8_1, _f8_1, _i8_1, _i8_1, _i8_1, _f8_2, _f8_1, _i8_1, _i8_1,
     _f8_1), NodeState)
LINKS_TYPE = types.NamedTuple((_i8_2, _f8_2, _i8_2, _i8_1), LinkState)
RECORD_TYPE = types.NamedTuple(
    (_i8_1, _i8_2, _f8_2, _f8_2, _f8_2, _i4_2, _i4_2, _i1_2, _f8_3, _f8_2, _i8_1), Record)

ADVANCE_SIGNATURE = types.int64(STEP_TYPE, PARAMS_TYPE, NODES_TYPE, LINKS_TYPE, RECORD_TYPE)


# ----------------------------------------------------------------------------
# event fidelity near a full or empty buffer: the clipped closed form
#
# Between two samples a link's buffer sees arrivals and reads in time order.
# Without limits its occupancy would follow ``y0 + X``, ``X`` the arrivals
# so far less the reads so far; a FIFO of depth ``D`` drops an arrival that
# finds it full and makes a read that finds it empty invalid. When only one
# limit can be reached, this is a one-sided reflection with a closed form:
#
#   dropped arrivals = max(0, max(y0 + X) - D)   (max after each arrival)
#   invalid reads    = max(0, 1 - min(y0 + X))   (min before each read)
#
# and ``occupancy = y0 + X_end - dropped + invalid``. Both limits cannot be
# touched when ``max - min <= D - 1``: after a drop the buffer holds ``D``
# frames, and reaching empty would take a fall of ``D``. So the clipped
# closed form needs only the extremes of ``y0 + X`` over the receiver edges
# between the samples; longer falls are cut in halves until each half is
# one-sided (or short enough to walk).
#
# Before read ``m`` (receiver edge time ``E_j(m)``) the arrivals are those
# with ``E_i(k) + lat <= E_j(m)``, so ``y0 + X(m) = C + h(m)`` with
# ``h(m) = a(E_j(m)) - m``. While the sender's and the receiver's segments
# stay the same, the sender's phase at ``E_j(m) - lat`` is affine in ``m``,
# ``psi(m) = psi0 + (1 + sigma) (m - m0)``, and wherever the phase is
# decided (farther than the band of :data:`PHASE_TOL` from an edge) ``h(m) =
# floor(psi(m)) - m = floor(psi(m) - m)`` exactly: monotone, non-decreasing
# for ``sigma >= 0``. An undecided point can exceed the value at a later
# decided point of a rising run by nothing: its rounding moves it by less
# than the band past an integer that the later decided point has passed by
# more. So the largest ``h`` of a rising run is at its last decided point or
# among the undecided points after it, the smallest at its first decided
# point or before it: each end is evaluated exactly, point by point, until a
# point outside twice the band. Undecided points are a few in 10^4.

_WALK_SHORT = 32  # receiver edges below which a two-sided stretch is walked
_SCAN_MAX = 64  # undecided edges scanned from an end before splitting by segments


@njit(inline="always")
def _arrival_at(seg, seg_k, n_seg, i, t, la, sp, band_scale, f0):
    """The last arrival of sender ``i`` by ``t`` (``E_i(k) + la <= t``), exactly.

    ``sp`` is a segment at or before the one in force at ``t - la``.

    Returns:
        ``(k, sp)``: the edge and the segment it was found in.
    """
    last_i = n_seg[i] - 1
    y = t - la
    while sp < last_i and seg[i, sp + 1, SG_HI] <= y:
        sp += 1
    hi = seg[i, sp, SG_HI]
    lo = seg[i, sp, SG_LO]
    k0 = seg_k[i, sp]
    F = f0 * (1.0 + seg[i, sp, SG_REL])
    a, decided = arrival_from_phase(hi, lo, k0, F, t, la, band_scale * F)
    ok = (sp == 0 or k0 < a) and (sp == last_i or a + 1 <= seg_k[i, sp + 1])
    if ok and not decided:
        P = seg[i, sp, SG_P]
        ok = hi + (lo + (a + 1 - k0) * P) + la > t and hi + (lo + (a - k0) * P) + la <= t
    if not ok:
        a, sp = _last_edge_fixup(seg, seg_k, n_seg, i, t, la, sp)
    return a, sp


@njit(inline="always")
def _end_scan(x, step, x_lim, i, j, la, seg, seg_k, n_seg, sp, band_scale, f0):
    """``h`` at receiver edge ``x`` and on in direction ``step`` while the phase is
    undecided (at most :data:`_SCAN_MAX` edges, not past ``x_lim``).

    Returns:
        ``(h_max, h_min, done, t0, a0, sp0)``: ``done`` is False when the scan
        gave up; ``t0`` is the time of edge ``x`` (s), ``a0`` its last arrival
        and ``sp0`` the sender segment that was found in.
    """
    h_max = -_KMAX
    h_min = _KMAX
    t0 = 0.0
    a0 = 0
    sp0 = sp
    sj = n_seg[j] - 1
    for n_pts in range(_SCAN_MAX):
        sj = owner_segment(seg_k, n_seg, j, x, sj)
        t_x = seg[j, sj, SG_HI] + (seg[j, sj, SG_LO] + (x - seg_k[j, sj]) * seg[j, sj, SG_P])
        a, sp = _arrival_at(seg, seg_k, n_seg, i, t_x, la, sp, band_scale, f0)
        if n_pts == 0:
            t0 = t_x
            a0 = a
            sp0 = sp
        h = a - x
        h_max = max(h_max, h)
        h_min = min(h_min, h)
        F = f0 * (1.0 + seg[i, sp, SG_REL])
        phi = (t_x - la - seg[i, sp, SG_HI] - seg[i, sp, SG_LO]) * F
        frac = phi - math.floor(phi)
        band = 2.0 * band_scale * F
        if band < frac < 1.0 - band:
            return h_max, h_min, True, t0, a0, sp0
        x += step
        if (step > 0 and x > x_lim) or (step < 0 and x < x_lim):
            return h_max, h_min, True, t0, a0, sp0
    return h_max, h_min, False, t0, a0, sp0


@njit
def _h_extremes(ma, mb, i, j, la, seg, seg_k, n_seg, sp, band_scale, f0, mono):
    """Largest and smallest ``h(m) = a(E_j(m)) - m`` over receiver edges ``ma..mb``.

    Splits the edges where the receiver's or the sender's segment changes
    (the few edges beside such a change are evaluated one by one) and takes
    each run's extremes at its ends (see the note above).

    Also bounds, in time order, how far ``h`` falls below its running
    maximum (``dd``) and rises above its running minimum (``du``): within a
    rising run by at most one (rounding), across runs by what their extremes
    allow.

    ``mono`` = 1 (-1) says every sender rate over the edges is at least (at
    most) every receiver rate: ``h`` then rises (falls) throughout, through
    every change of segment, and only the two ends are scanned.

    Returns:
        ``(h_max, h_min, dd, du, sp)`` with ``sp`` a sender segment hint for ``mb``.
    """
    seg, seg_k, n_seg = borrowed(seg), borrowed(seg_k), borrowed(n_seg)
    if mono != 0:
        # the minimum (maximum) at the start, the other extreme at the end
        mx1, mn1, ok1, _, _, _ = _end_scan(ma, 1, mb, i, j, la, seg, seg_k, n_seg, sp, band_scale,
                                        f0)
        mx2, mn2, ok2, _, _, _ = _end_scan(mb, -1, ma, i, j, la, seg, seg_k, n_seg, sp, band_scale,
                                        f0)
        if ok1 and ok2:
            h_max = max(mx1, mx2)
            h_min = min(mn1, mn2)
            if mono > 0:
                return h_max, h_min, 2, h_max - h_min, sp
            return h_max, h_min, h_max - h_min, 2, sp
    last_j = n_seg[j] - 1
    last_i = n_seg[i] - 1
    sj = owner_segment(seg_k, n_seg, j, ma, last_j)
    h_max = -_KMAX
    h_min = _KMAX
    dd = 0
    du = 0
    mm = ma
    while mm <= mb:
        while sj < last_j and mm > seg_k[j, sj + 1]:
            sj += 1
        hj = seg[j, sj, SG_HI]
        lj = seg[j, sj, SG_LO]
        kj = seg_k[j, sj]
        Pj = seg[j, sj, SG_P]
        t_m = hj + (lj + (mm - kj) * Pj)
        a, sp = _arrival_at(seg, seg_k, n_seg, i, t_m, la, sp, band_scale, f0)
        si = sp
        # the run ends before the receiver's next segment, and two edges
        # before arrivals leave the sender's segment si (its edges end at
        # the next anchor: that anchor's successor arrives at t_x)
        end = mb
        if sj < last_j and seg_k[j, sj + 1] < end:
            end = seg_k[j, sj + 1]
        if si < last_i:
            kx = seg_k[i, si + 1]
            t_x = seg[i, si, SG_HI] + (seg[i, si, SG_LO] + (kx - seg_k[i, si]) * seg[i, si, SG_P])
            r = kj + np.int64(math.floor((t_x + la - hj - lj) / Pj))
            if r - 2 < end:
                end = r - 2
        if end < mm:
            # beside a change: this edge alone
            h = a - mm
            if mm > ma:
                dd = max(dd, h_max - h)
                du = max(du, h - h_min)
            h_max = max(h_max, h)
            h_min = min(h_min, h)
            mm += 1
            continue
        # a run of edges with one affine phase: its ends
        F = f0 * (1.0 + seg[i, si, SG_REL])
        base = seg[i, si, SG_HI] + seg[i, si, SG_LO] + la
        band = 2.0 * band_scale * F
        rising = Pj * F >= 1.0
        r_max = -_KMAX
        r_min = _KMAX
        for side in range(2):
            # side 0 scans from the end the maximum is at, side 1 from the minimum's
            step = -1 if (side == 0) == rising else 1
            x = end if step < 0 else mm
            while True:
                t_x2 = hj + (lj + (x - kj) * Pj)
                if x == mm:
                    a2 = a  # found above
                else:
                    a2, _ = _arrival_at(seg, seg_k, n_seg, i, t_x2, la, si, band_scale, f0)
                h = a2 - x
                r_max = max(r_max, h)
                r_min = min(r_min, h)
                phi = (t_x2 - base) * F
                frac = phi - math.floor(phi)
                if band < frac < 1.0 - band:
                    break
                x += step
                if x < mm or x > end:
                    break
        # within the run, rounding moves against its direction by one at
        # most (2 is the slack); across runs the extremes bound the rest
        if rising:
            dd = max(dd, 2)
            du = max(du, r_max - r_min)
            if mm > ma:
                dd = max(dd, h_max - r_min)
                du = max(du, r_max - h_min)
        else:
            dd = max(dd, r_max - r_min)
            du = max(du, 2)
            if mm > ma:
                dd = max(dd, h_max - r_min)
                du = max(du, r_max - h_min)
        h_max = max(h_max, r_max)
        h_min = min(h_min, r_min)
        mm = end + 1
        sp = si
    return h_max, h_min, dd, du, sp


@njit(inline="always")
def _advanced(l, x_end, drops, missing, a_b, sp, m, t, ls, lf):
    """Link ``l`` advanced in closed form to receiver edge ``m`` at ``t``: the
    unclipped occupancy ``x_end`` less the dropped arrivals, plus the reads
    that found it empty; last arrival ``a_b`` (in sender segment ``sp``)."""
    ls[l, LS_OCC] = x_end - drops + missing
    ls[l, LS_OVF_N] += drops
    ls[l, LS_UNF_N] += missing
    ls[l, LS_ARRK] = a_b + 1
    ls[l, LS_SP] = sp
    ls[l, LS_ADVM] = m
    lf[l, LF_ADVT] = t


@njit(inline="always")
def _pinned_advance(l, m, t, i, j, la, seg, seg_k, n_seg, ls, lf, depth, band_scale, f0, mono):
    """The common case of :func:`_clipped_advance`, inline: a buffer that only
    fills, from 3 frames or more, cannot run empty (each read finds at least
    ``y0 - 1``: rounding moves a rising count back by one at most), nor one
    that only drains, from 3 below full, overflow (at most 2 frames arrive
    before the first read): the extreme at the end decides, found from one
    end of the stretch.

    Returns:
        Whether it advanced the link (False: the general case applies).
    """
    y0 = ls[l, LS_OCC]
    if not ((mono > 0 and y0 >= 3) or (mono < 0 and y0 <= depth - 3)):
        return False
    lo_m = ls[l, LS_ADVM] + 1
    if lo_m > m:
        return False
    h_max, h_min, ok, t_e, a_b, sp = _end_scan(m, -1, lo_m, i, j, la, seg, seg_k, n_seg,
                                               ls[l, LS_SP], band_scale, f0)
    if not ok:
        return False
    if t_e != t:
        a_b, sp = _arrival_at(seg, seg_k, n_seg, i, t, la, sp, band_scale, f0)
    c = y0 - ls[l, LS_ARRK] + 1 + lo_m
    drops = 0
    missing = 0
    if mono > 0:
        drops = max(max(c + h_max, c + a_b - m - 1) - depth, 0)
        if drops > 0 and ls[l, LS_OVF_N] == 0:
            return False  # the first overflow is timed edge by edge
    else:
        missing = max(1 - (c + h_min), 0)
        if missing > 0 and ls[l, LS_UNF_N] == 0:
            return False
    _advanced(l, y0 + (a_b - (ls[l, LS_ARRK] - 1)) - (m - lo_m + 1), drops, missing, a_b, sp,
              m, t, ls, lf)
    return True


@njit
def _clipped_advance(l, m, t, i, j, la, src, lat, seg, seg_k, n_seg, ls, lf, ring, depth,
                     band_scale, f0, walk_l, tbuf, mono):
    """Advance armed link ``l`` (``i -> j``, finite buffer, nothing pending) to
    receiver edge ``m`` at ``t`` with over- and underflows in closed form.

    The same state as walking every edge (:func:`_walk_links`): a stretch
    whose occupancy could touch both limits is cut in halves, and a stretch
    with a link's first fault of a kind is walked, since the fault's time
    and cycle are recorded. ``mono``: see :func:`_h_extremes`.

    Returns:
        Whether any frame was dropped or read missing.
    """
    b = borrowed
    seg, seg_k, n_seg, ls, lf, ring = b(seg), b(seg_k), b(n_seg), b(ls), b(lf), b(ring)
    faulted = False
    while ls[l, LS_ADVM] < m:
        lo_m = ls[l, LS_ADVM] + 1
        hi_m = m
        while True:
            y0 = ls[l, LS_OCC]
            k = ls[l, LS_ARRK]
            t_b = t if hi_m == m else edge_time(seg, seg_k, j,
                                                 owner_segment(seg_k, n_seg, j, hi_m,
                                                               n_seg[j] - 1), hi_m)
            c = y0 - k + 1 + lo_m
            h_max, h_min, dd, du, sp = _h_extremes(lo_m, hi_m, i, j, la, seg, seg_k, n_seg,
                                                   ls[l, LS_SP], band_scale, f0, mono)
            a_b, sp = _arrival_at(seg, seg_k, n_seg, i, t_b, la, sp, band_scale, f0)
            end_v = a_b - hi_m - 1  # the end takes arrivals too, after the last read
            du = max(du, end_v - h_min)
            top = max(c + h_max, c + end_v)
            bottom = c + h_min
            # only the top: nothing falls to empty, before a drop (bottom) or
            # after (at most dd below the top); only the bottom: likewise
            top_only = bottom >= 1 and dd <= depth - 1
            bottom_only = top <= depth and du <= depth - 1
            one_sided = top_only or bottom_only
            if one_sided or hi_m - lo_m < _WALK_SHORT:
                break
            hi_m = lo_m + (hi_m - lo_m) // 2
        x_end = y0 + (a_b - (k - 1)) - (hi_m - lo_m + 1)
        drops = max(top - depth, 0) if top_only else 0
        missing = max(1 - bottom, 0) if bottom_only and not top_only else 0
        first = ((drops > 0 and ls[l, LS_OVF_N] == 0)
                 or (missing > 0 and ls[l, LS_UNF_N] == 0))
        if not one_sided or first:
            # both limits, or a first fault to time: edge by edge
            walk_l[0] = l
            n0 = ls[l, LS_OVF_N] + ls[l, LS_UNF_N]
            _walk_links(walk_l, 1, hi_m, t_b, j, src, lat, seg, seg_k, n_seg, ls, lf, ring,
                        depth, False, tbuf)
            faulted |= ls[l, LS_OVF_N] + ls[l, LS_UNF_N] > n0
            continue
        _advanced(l, x_end, drops, missing, a_b, sp, hi_m, t_b, ls, lf)
        faulted |= drops + missing > 0
    if lf[l, LF_ADVT] != t:
        # no edge left: the arrivals up to t
        y0 = ls[l, LS_OCC]
        a_b, sp = _arrival_at(seg, seg_k, n_seg, i, t, la, ls[l, LS_SP], band_scale, f0)
        n_a = a_b - (ls[l, LS_ARRK] - 1)
        drops = max(y0 + n_a - depth, 0)
        if drops > 0 and ls[l, LS_OVF_N] == 0:
            walk_l[0] = l
            _walk_links(walk_l, 1, m, t, j, src, lat, seg, seg_k, n_seg, ls, lf, ring, depth,
                        False, tbuf)
        else:
            ls[l, LS_OCC] = y0 + n_a - drops
            ls[l, LS_OVF_N] += drops
            ls[l, LS_ARRK] = a_b + 1
            ls[l, LS_SP] = sp
            lf[l, LF_ADVT] = t
        faulted |= drops > 0
    return faulted


# ----------------------------------------------------------------------------
# one sample, in named steps
#
# The steps take arrays, not the structures, and :func:`advance` hands them
# borrowed arrays (:func:`tidesim._jit.borrowed`): every array a call or an
# inlined step binds is otherwise a new reference, and reference counting
# in the loop over links costs more than the step itself.


@njit(inline="always")
def _cycle_walk(j, m, t, walk_l, tbuf, in_off, in_idx, src, dst, lat, t_up, seg, seg_k, n_seg,
                ls, lf, ring, ipar):
    """Cycle fidelity: bring up node ``j``'s links due by ``t`` and walk every
    link that is up to receiver edge ``m``, all reading ``j``'s edge times
    from one buffer."""
    n_walk = 0
    for e in range(in_off[j], in_off[j + 1]):
        l = in_idx[e]
        if ls[l, LS_UP] == 0:
            if t_up[l] > t:
                continue
            _link_up(l, src, dst, lat, t_up, seg, seg_k, n_seg, ls, lf, ring, ipar)
        walk_l[n_walk] = l
        n_walk += 1
    if n_walk > 0:
        _walk_links(walk_l, n_walk, m, t, j, src, lat, seg, seg_k, n_seg, ls, lf, ring,
                    ipar[IP_DEPTH], True, tbuf)


@njit(inline="always")
def _event_advance(l, e, j, m, t, band_scale, rj, walk_l, tbuf, in_src, in_lat, src, lat,
                   seg, seg_k, n_seg, ls, lf, ring, f0, depth):
    """Event fidelity: advance link ``l`` (``in_idx[e]``, into ``j``) to edge ``m`` at ``t``.

    The closed form ``occupancy += arrivals - reads`` holds unless the buffer
    could reach empty or full, or an adjustment is pending: then the link is
    walked edge by edge (exactly as the cycle fidelity walks it).

    Args:
        band_scale: :func:`sample_phase_scale` of the sample.
        rj: float64[3] the receiver's rate range since a link's last advance,
            cached per start time: ``[t0, rel_lo, rel_hi]``.

    Returns:
        ``(occupancy, last arrival, walked)``.
    """
    eu = np.uint64(e)  # unsigned indices: no wraparound fix-up
    lu = np.uint64(l)
    i = in_src[eu]
    iu = np.uint64(i)
    la = in_lat[eu]
    if ls[lu, LS_PEND] != 0:
        # an adjustment in progress: edge by edge, only until it is done
        walk_l[0] = l
        while ls[lu, LS_PEND] != 0 and lf[lu, LF_ADVT] != t:
            mp = ls[lu, LS_ADVM] + abs(ls[lu, LS_PEND]) + 1
            tp = t
            if mp < m:
                tp = edge_time(seg, seg_k, j, owner_segment(seg_k, n_seg, j, mp, n_seg[j] - 1),
                               mp)
            else:
                mp = m
            _walk_links(walk_l, 1, mp, tp, j, src, lat, seg, seg_k, n_seg, ls, lf, ring, depth,
                        False, tbuf)
        if lf[lu, LF_ADVT] == t:
            return ls[lu, LS_OCC], ls[lu, LS_ARRK] - 1, True
    walk = False
    sp = ls[lu, LS_SP]
    last_i = n_seg[iu] - 1
    # the sender's segment in force at t - la, found from the one
    # owning its last arrival; the range of its relative rate on the
    # way bounds the buffer's excursion below
    y = t - la
    rel_i_lo = seg[iu, np.uint64(sp), SG_REL]
    rel_i_hi = rel_i_lo
    # the first step, whose taking is a coin flip, without a branch:
    # selects, and `&` rather than `and`
    nx = sp + 1 if sp < last_i else sp
    sp += (sp < last_i) & (seg[iu, np.uint64(nx), SG_HI] <= y)
    r = seg[iu, np.uint64(sp), SG_REL]
    rel_i_lo = r if r < rel_i_lo else rel_i_lo
    rel_i_hi = r if r > rel_i_hi else rel_i_hi
    while sp < last_i and seg[iu, np.uint64(sp + 1), SG_HI] <= y:
        sp += 1
        # comparisons, not min/max: Numba calls out for those
        r = seg[iu, np.uint64(sp), SG_REL]
        if r < rel_i_lo:
            rel_i_lo = r
        if r > rel_i_hi:
            rel_i_hi = r
    if depth > 0 and ls[lu, LS_ARMED] == 1:
        # the closed form holds unless the buffer could reach empty or
        # full before t; the rates are f0 (1 + rel)
        t0 = lf[lu, LF_ADVT]
        if t0 != rj[0]:
            rj[0] = t0
            sr = n_seg[j] - 1
            rj[1] = seg[j, sr, SG_REL]
            rj[2] = rj[1]
            while sr > 0 and seg[j, sr, SG_HI] > t0:
                sr -= 1
                r = seg[j, sr, SG_REL]
                if r < rj[1]:
                    rj[1] = r
                if r > rj[2]:
                    rj[2] = r
        span = (t - t0) * f0
        occ = ls[lu, LS_OCC]
        gain = rel_i_hi - rj[1]
        loss = rj[2] - rel_i_lo
        walk = (occ + 3.0 + (span * gain if gain > 0.0 else 0.0) >= depth
                or occ - 3.0 - (span * loss if loss > 0.0 else 0.0) <= 0.0)
    if walk:
        # a limit is within reach: the clipped closed form; the rate ranges
        # say whether the buffer only fills (or only drains) on the way
        mono = 1 if rel_i_lo >= rj[2] else -1 if rel_i_hi <= rj[1] else 0
        if not _pinned_advance(l, m, t, i, j, la, seg, seg_k, n_seg, ls, lf, depth, band_scale,
                               f0, mono):
            _clipped_advance(l, m, t, i, j, la, src, lat, seg, seg_k, n_seg, ls, lf, ring, depth,
                             band_scale, f0, walk_l, tbuf, mono)
        return ls[lu, LS_OCC], ls[lu, LS_ARRK] - 1, True
    # the last arrival by t from the sender's phase (its rate f0 (1 + rel)
    # stands in for 1 / P): exact unless the phase is within PHASE_TOL of an
    # edge (see PHASE_TOL), where the edge times decide, and corrected off
    # the fast path
    hi = seg[iu, np.uint64(sp), SG_HI]
    lo = seg[iu, np.uint64(sp), SG_LO]
    k0 = seg_k[iu, np.uint64(sp)]
    F = f0 * (1.0 + seg[iu, np.uint64(sp), SG_REL])
    a_new, decided = arrival_from_phase(hi, lo, k0, F, t, la, band_scale * F)
    # within the segment's edges; `|` and `&`, as whether the sender has a
    # later segment is a coin flip (the slot after the last segment exists:
    # the capacity check keeps one free)
    ok = (((sp == 0) | (k0 < a_new))
          & ((sp == last_i) | (a_new + 1 <= seg_k[iu, np.uint64(sp + 1)])))
    if ok and not decided:
        Pp = seg[iu, np.uint64(sp), SG_P]
        ok = (hi + (lo + (a_new + 1 - k0) * Pp) + la > t
              and hi + (lo + (a_new - k0) * Pp) + la <= t)
    if not ok:
        a_new, sp = _last_edge_fixup(seg, seg_k, n_seg, i, t, la, sp)
    occ = ls[lu, LS_OCC] + (a_new - (ls[lu, LS_ARRK] - 1)) - (m - ls[lu, LS_ADVM])
    ls[lu, LS_OCC] = occ
    ls[lu, LS_ARRK] = a_new + 1
    ls[lu, LS_SP] = sp
    ls[lu, LS_ADVM] = m
    lf[lu, LF_ADVT] = t
    return occ, a_new, False


@njit(inline="always")
def _observe(l, m, t, occ, a_new, row, ls, lf, ring, rcnt, rddc, rflags, adj_link, adj_t,
             adj_frames, adj_done, ref, margin, meas_ddc, arm, cycle, depth, auto_thr, window,
             sc, n_links, e, ast_t, ast_e, detail):
    """What a sample sees on its link ``l``: the count, the domain difference
    count, the stability detector and its summary; arming on stability (the
    link's own, or every link's: ``sc`` counts the stable links), records
    (in ``row``, when ``row >= 0``) and adjustments. The parameters come as
    scalars (``IP_*``), read once per call of :func:`advance`: from an array
    they would be read again at every link, after every store.

    Returns:
        The measurement the controller gets (frames).
    """
    lu = np.uint64(l)
    armed = ls[lu, LS_ARMED] == 1
    cnt = occ - ref
    ddc = a_new - m - ls[lu, LS_BASE]
    v = ddc if meas_ddc else cnt
    r_new, since = stability_update(v, ls[lu, LS_STREF], lf[lu, LF_STSINCE], t, margin)
    ls[lu, LS_STREF] = r_new
    lf[lu, LF_STSINCE] = since
    stable = 1 if t - since >= window else 0
    was = ls[lu, LS_STABLE]
    ls[lu, LS_STABLE] = stable
    if ast_t != ast_t:  # NaN: every node here; sc counts the stable links
        sc[SC_N_STABLE] += stable - was
        if sc[SC_N_STABLE] == n_links:
            sc[SC_ALL_STABLE] = 1
        all_stable = sc[SC_ALL_STABLE] == 1
    else:
        # one node on its own: the others' links are elsewhere, so the moment
        # every link was stable comes from outside (ast_t, ast_e) and this
        # node logs its own links' changes for whoever finds that moment
        if arm == 2 and stable != was and sc[SC_LOG_N] >= 0:
            k = DETAIL_LOG + 3 * sc[SC_LOG_N]
            if k + 3 <= detail.size:
                detail[k] = t
                detail[k + 1] = e
                detail[k + 2] = stable
                sc[SC_LOG_N] += 1
            else:
                sc[SC_LOG_N] = -1
        all_stable = t > ast_t or (t == ast_t and e >= ast_e)
    if not armed and ((arm == 1 and stable == 1) or (arm == 2 and all_stable)):
        # centre and arm: the buffer starts here with `ref` frames
        armed = True
        ls[lu, LS_ARMED] = 1
        ls[lu, LS_OCC] = ref
        ls[lu, LS_ARM_M] = m
        lf[lu, LF_ARM_T] = t
        ls[lu, LS_PEND] = 0
        if cycle:
            _fill_ring(ring, ls, l, depth, ref)
        cnt = 0
        if not meas_ddc:
            v = 0
    if row >= 0:
        ru = np.uint64(row)
        rcnt[ru, lu] = cnt
        rddc[ru, lu] = ddc
        # settled: stable about a reference within the margin of zero
        rflags[ru, lu] = stable * (FLAG_STABLE + FLAG_SETTLED * np.int64(abs(r_new) < margin))
    # the summary: largest counts, and the start of the current stable run
    # with the faults counted by then
    # (selects: whether a count is a new largest is a coin flip early on)
    ac = abs(cnt)
    mc = ls[lu, LS_MAXCNT]
    ls[lu, LS_MAXCNT] = ac if ac > mc else mc
    ad = abs(ddc)
    md = ls[lu, LS_MAXDDC]
    ls[lu, LS_MAXDDC] = ad if ad > md else md
    if stable != was:  # a stable run starts or ends
        if stable == 1:
            lf[lu, LF_STFROM] = t
            ls[lu, LS_NF_STFROM] = ls[lu, LS_OVF_N] + ls[lu, LS_UNF_N]
        else:
            lf[lu, LF_STFROM] = np.nan
    # buffer adjustments take effect after this sample
    if armed:
        n_adj = adj_link.size
        if n_adj > 0:
            for a in range(n_adj):
                if adj_done[a] == 0 and adj_link[a] == l and adj_t[a] <= t:
                    ls[lu, LS_PEND] += adj_frames[a]
                    adj_done[a] = 1
        if auto_thr >= 0 and ls[lu, LS_PEND] == 0 and abs(cnt) > auto_thr:
            ls[lu, LS_PEND] = -cnt
    return v


@njit(inline="always")
def _control(step, j, t, n_up, max_deg, meas_b, params_b, state_buf, state_b, cstate, corr, zq,
             start_t, ipar, qstep):
    """The controller's step on node ``j``'s measurements, through the actuator.

    Returns:
        The desired correction (relative); ``corr[j]`` becomes the applied one.
    """
    des = 0.0
    if ipar[IP_HAS_CTL] == 1 and t >= start_t[j]:
        # the step gets borrowed buffers (see tidesim._jit.borrowed): no
        # reference counting per call; cstate's row is copied in and out
        w = cstate.shape[1]
        for c in range(w):
            state_buf[c] = cstate[j, c]
        des = step(params_b, state_b, meas_b if n_up == max_deg else meas_b[:n_up])
        for c in range(w):
            cstate[j, c] = state_buf[c]
        if ipar[IP_ACT] == 0:
            corr[j] = des
        else:
            # one step towards des, if it is more than half a step away
            # (comparisons as integers: which way is a coin flip)
            cur = zq[j] * qstep
            zq[j] += np.int64(des > cur + 0.5 * qstep) - np.int64(des < cur - 0.5 * qstep)
            corr[j] = zq[j] * qstep
    return des


@njit(inline="always")
def _new_segment(j, m, rel, seg, seg_k, n_seg, d, f0, frac):
    """Start node ``j``'s next frequency segment ``d`` ticks after its sample,
    unless the frequency is unchanged.

    The sample is at phase ``m + frac`` (``frac`` 0: at edge ``m``; else
    ``theta0``, see ``control.sample_at``), so the change is at phase
    ``ka + frac``, ``ka = m + d``: edge ``ka`` keeps the old period and the
    new segment owns the edges after it. A segment is anchored at a whole
    edge, so it is anchored at ``ka`` with the time edge ``ka`` would have at
    the new period, ``E_old(ka) + frac (P_old - P_new)``.
    """
    s = n_seg[j] - 1
    if rel != seg[j, s, SG_REL]:
        ka = m + d
        p_old = seg[j, s, SG_P]
        p_new = 1.0 / (f0 * (1.0 + rel))
        hi, lo = anchor_advance(seg[j, s, SG_HI], seg[j, s, SG_LO], p_old, ka - seg_k[j, s])
        if frac != 0.0:
            # P_old - P_new is exact (the two are within a factor of 2)
            hs, he = _two_sum(hi, frac * (p_old - p_new))
            he += lo
            hi = hs + he
            lo = he - (hi - hs)
        seg[j, s + 1, SG_HI] = hi
        seg[j, s + 1, SG_LO] = lo
        seg_k[j, s + 1] = ka
        seg[j, s + 1, SG_P] = p_new
        seg[j, s + 1, SG_REL] = rel
        n_seg[j] = s + 2


@njit(inline="always")
def _sample_time(j, k, frac, seg, seg_k, n_seg):
    """Time (s) of node ``j``'s phase ``k + frac`` (``0 <= frac < 1``), in its
    last segment or just before: :func:`owner_segment` and
    :func:`edge_time` spelled out (array arguments cost reference counting).
    Between edges ``k`` and ``k + 1`` the segment owning ``k + 1`` is in force."""
    kk = k + 1 if frac > 0.0 else k
    sn = n_seg[j] - 1
    while sn > 0 and kk <= seg_k[j, sn]:
        sn -= 1
    return seg[j, sn, SG_HI] + (seg[j, sn, SG_LO] + ((k - seg_k[j, sn]) + frac) * seg[j, sn, SG_P])


@njit
def _advance_to(P, N, L, t, walk_l, tbuf, rj):
    """Bring every link due by ``t`` up and advance it to ``t`` (the end of a
    call): no record, no detector step; where ``ipar[IP_OWN]`` names a
    node (one node of a system run on its own), only the links into it.
    Advancing a link in two steps gives the state of one step, so a run
    advanced in pieces is the run advanced at once."""
    seg, seg_k, n_seg = N.seg, N.seg_k, N.n_seg
    ls, lf, ring = L.ls, L.lf, L.ring
    in_off, in_idx, src, lat, t_up = P.in_off, P.in_idx, P.src, P.lat, P.t_up
    cycle = P.ipar[IP_CYCLE] == 1
    band_scale = sample_phase_scale(t, P.fpar[FP_LATMAX], P.fpar[FP_PMAX])
    own = P.ipar[IP_OWN]
    for j in range(P.eps0.size):
        if own >= 0 and j != own:
            continue
        m, _ = last_edge_before(seg, seg_k, n_seg, j, t, 0.0, n_seg[j] - 1)
        rj[0] = -math.inf
        if cycle:
            _cycle_walk(j, m, t, walk_l, tbuf, in_off, in_idx, src, P.dst, lat, t_up, seg,
                        seg_k, n_seg, ls, lf, ring, P.ipar)
            continue
        for e in range(in_off[j], in_off[j + 1]):
            l = in_idx[e]
            if ls[l, LS_UP] == 0:
                if t_up[l] > t:
                    continue
                _link_up(l, src, P.dst, lat, t_up, seg, seg_k, n_seg, ls, lf, ring, P.ipar)
            _event_advance(l, e, j, m, t, band_scale, rj, walk_l, tbuf, P.in_src, P.in_lat, src,
                           lat, seg, seg_k, n_seg, ls, lf, ring, P.fpar[FP_F0],
                           P.ipar[IP_DEPTH])


@jit_signature(ADVANCE_SIGNATURE)
def advance(step, P, N, L, R):
    """Run every sample with ``t <= P.fpar[FP_UNTIL]``, then advance every link there.

    Resumable: a call that returns ``ST_REC_FULL``, ``ST_SEG_FULL`` or
    ``ST_WANDER`` stopped before the sample it had no room for, having
    changed nothing of it; make room (:class:`Record` rows, segment slots,
    wander draws) and call again. Any sequence of calls to increasing
    ``FP_UNTIL`` gives the state of one call to the last.

    Args:
        step: controller step function (``STEP_SIGNATURE``).
        P, N, L, R: :class:`Params`, :class:`NodeState`, :class:`LinkState`,
            :class:`Record`.

    Returns:
        A status code (``ST_*``); on ``ST_FAULT_STOP`` and ``ST_RANGE``,
        ``N.detail`` holds node, time, cycle and relative frequency.
    """
    # the structures' arrays, once, borrowed (see the note above the steps)
    b = borrowed
    fpar, ipar, eps0, drift, start_t = b(P.fpar), b(P.ipar), b(P.eps0), b(P.drift), b(P.start_t)
    in_off, in_idx, in_src, in_lat = b(P.in_off), b(P.in_idx), b(P.in_src), b(P.in_lat)
    src, dst, lat, t_up = b(P.src), b(P.dst), b(P.lat), b(P.t_up)
    adj_link, adj_t, adj_frames = b(P.adj_link), b(P.adj_t), b(P.adj_frames)
    theta0 = b(P.theta0)
    seg, seg_k, n_seg = b(N.seg), b(N.seg_k), b(N.n_seg)
    corr, wander, zq, next_m = b(N.corr), b(N.wander), b(N.zq), b(N.next_m)
    n_samp, cstate = b(N.n_samp), b(N.cstate)
    order_t, order_node, sc, detail = b(N.order_t), b(N.order_node), b(N.sc), b(N.detail)
    ls, lf, ring, adj_done = b(L.ls), b(L.lf), b(L.ring), b(L.adj_done)
    row0, samp_m, samp_t, samp_c = b(R.row0), b(R.samp_m), b(R.samp_t), b(R.samp_c)
    samp_des, rcnt, rddc, rflags = b(R.samp_des), b(R.cnt), b(R.ddc), b(R.flags)
    rstate, wander_z, z0 = b(R.state), b(R.wander_z), b(R.z0)
    n = eps0.size
    n_links = src.size
    f0 = fpar[FP_F0]
    until = fpar[FP_UNTIL]
    window = fpar[FP_WINDOW]
    qstep = fpar[FP_STEP]
    maxrel = fpar[FP_MAXREL]
    p = ipar[IP_P]
    d = ipar[IP_D]
    depth = ipar[IP_DEPTH]
    every = ipar[IP_EVERY]
    wstep = fpar[FP_WANDER] * math.sqrt(p / f0)
    lat_max = fpar[FP_LATMAX]
    p_max = fpar[FP_PMAX]
    cycle = ipar[IP_CYCLE] == 1
    phase = ipar[IP_SAMPLE_PHASE] == 1
    ref = ipar[IP_REF]
    margin = ipar[IP_MARGIN]
    meas_ddc = ipar[IP_MEAS_DDC] == 1
    arm = ipar[IP_ARM]
    auto_thr = ipar[IP_AUTO]
    # every node here (NaN), or one on its own: when every link was first stable
    ast_t = fpar[FP_ALLST_T] if ipar[IP_OWN] >= 0 else math.nan
    ast_e = ipar[IP_ALLST_E]
    cap_s = seg.shape[1]
    cap_r = samp_t.shape[1]
    cap_z = wander_z.shape[1]
    keep_state = rstate.shape[1] > 0
    w = cstate.shape[1]
    max_deg = 1
    for j in range(n):
        max_deg = max(max_deg, in_off[j + 1] - in_off[j])
    # scratch, alive for the whole call: borrowed like the rest
    meas_own = np.zeros(max_deg)
    walk_own = np.zeros(max_deg, dtype=np.int64)
    tbuf_own = np.empty(WALK_CHUNK)
    rj_own = np.zeros(3)
    state_own = np.zeros(w)
    meas, walk_l, tbuf, rj = b(meas_own), b(walk_own), b(tbuf_own), b(rj_own)
    state_buf = b(state_own)
    params_b = b(P.cparams)
    state_b = state_buf
    meas_b = meas
    head = sc[SC_HEAD]
    status = ST_OK
    while True:
        t = order_t[head]
        j = order_node[head]
        if t > until:
            break
        m = next_m[j]
        q = n_samp[j]
        # room for this sample, checked before anything of it is done
        row = -1
        if every > 0 and q % every == 0:
            row = q // every - row0[j]
            if row >= cap_r:
                status = ST_REC_FULL
                break
        if n_seg[j] + 2 >= cap_s:  # one slot stays free past the last segment
            status = ST_SEG_FULL
            break
        if wstep > 0.0 and q - z0[j] >= cap_z:
            status = ST_WANDER
            break
        # bring up and advance every incoming link to edge m at time t
        band_scale = sample_phase_scale(t, lat_max, p_max)
        rj[0] = -math.inf  # the receiver's rate range is per start time
        if cycle:
            _cycle_walk(j, m, t, walk_l, tbuf, in_off, in_idx, src, dst, lat, t_up, seg, seg_k,
                        n_seg, ls, lf, ring, ipar)
        n_up = 0
        for e in range(in_off[j], in_off[j + 1]):
            l = in_idx[np.uint64(e)]
            lu = np.uint64(l)
            if ls[lu, LS_UP] == 0:
                if t_up[l] > t:
                    if row >= 0:
                        ru = np.uint64(row)
                        rcnt[ru, lu] = 0
                        rddc[ru, lu] = 0
                        rflags[ru, lu] = 0
                    continue
                _link_up(l, src, dst, lat, t_up, seg, seg_k, n_seg, ls, lf, ring, ipar)
            if cycle:
                occ = ls[lu, LS_OCC]
                a_new = ls[lu, LS_ARRK] - 1
                walked = True
            else:
                occ, a_new, walked = _event_advance(l, e, j, m, t, band_scale, rj, walk_l, tbuf,
                                                    in_src, in_lat, src, lat, seg, seg_k, n_seg,
                                                    ls, lf, ring, f0, depth)
            if walked and (ls[lu, LS_OVF_N] > 0 or ls[lu, LS_UNF_N] > 0):
                sc[SC_FAULTS_SEEN] = 1
            meas[np.uint64(n_up)] = _observe(l, m, t, occ, a_new, row, ls, lf, ring, rcnt, rddc,
                                             rflags, adj_link, adj_t, adj_frames, adj_done, ref,
                                             margin, meas_ddc, arm, cycle, depth, auto_thr, window,
                                             sc, n_links,
                                             e, ast_t, ast_e, detail)
            n_up += 1
        ju = np.uint64(j)
        des = _control(step, j, t, n_up, max_deg, meas_b, params_b, state_buf, state_b, cstate,
                       corr, zq, start_t, ipar, qstep)
        if row >= 0:
            ru = np.uint64(row)
            if keep_state:
                for c in range(w):
                    rstate[j, ru, c] = cstate[j, c]
            samp_m[ju, ru] = m
            samp_t[ju, ru] = t
            samp_c[ju, ru] = corr[j]
            samp_des[ju, ru] = des
        if wstep > 0.0:
            wander[j] += wstep * wander_z[j, q - z0[j]]
        rel = eps0[j] + drift[j] * t + wander[j] + corr[j]
        n_samp[j] = q + 1
        if not (abs(rel) <= maxrel):
            status = ST_RANGE
            detail[0] = j
            detail[1] = t
            detail[2] = m
            detail[3] = rel
            break
        frac = theta0[j] if phase else 0.0
        _new_segment(j, m, rel, seg, seg_k, n_seg, d, f0, frac)
        nm = m + p
        next_m[j] = nm
        head = order_requeue(order_t, order_node, head, _sample_time(j, nm, frac, seg, seg_k,
                                                                            n_seg), j)
        if sc[SC_FAULTS_SEEN] == 1 and ipar[IP_STOP] == 1:
            status = ST_FAULT_STOP
            detail[0] = j
            detail[1] = t
            detail[2] = m
            break
    sc[SC_HEAD] = head
    if status == ST_OK:
        _advance_to(P, N, L, until, walk_l, tbuf, rj)
    return status


# ----------------------------------------------------------------------------
# between calls: zeroed tails, a window of segment history, energy integrals


@njit
def zero_tails(seg, seg_k, n_seg, ns, R, rows, q, in_off, in_idx):
    """Zero what the core did not write, so a trace reads as if allocated with zeros.

    Args:
        seg, seg_k, n_seg: the segments; ``[:, n_seg[j]:ns]`` is zeroed.
        ns: the segment slots a trace shows.
        R: the :class:`Record`; node ``j``'s rows ``rows[j]:q`` are zeroed,
            with those of its incoming links (a link's rows are its receiver's).
        rows: int64[n] rows written per node; q: the rows a trace shows.
        in_off, in_idx: int64[n+1], int64[L] incoming links of each node (CSR).
    """
    for j in range(n_seg.size):
        for s in range(n_seg[j], ns):
            seg_k[j, s] = 0
            for f in range(N_SG):
                seg[j, s, f] = 0.0
        for r in range(rows[j], q):
            R.samp_m[j, r] = 0
            R.samp_t[j, r] = 0.0
            R.samp_c[j, r] = 0.0
            R.samp_des[j, r] = 0.0
            if R.state.shape[1] > 0:
                for c in range(R.state.shape[2]):
                    R.state[j, r, c] = 0.0
            for e in range(in_off[j], in_off[j + 1]):
                R.cnt[r, in_idx[e]] = 0
                R.ddc[r, in_idx[e]] = 0
                R.flags[r, in_idx[e]] = 0


@njit
def segments_to_keep(seg, n_seg, seg_base, ls, src, t_keep, e_next, sp_ptr, keep):
    """How many of each node's oldest segments later steps no longer read.

    A node keeps the segment in force at ``t_keep`` (s) and one before it,
    every segment from two before the one owning a sender link's next
    arrival (``LS_SP``), and those the energy integrals have not folded in
    (run indices ``e_next[j]`` and ``sp_ptr[j] - 1`` on).

    Args:
        keep: int64[n] filled with the number of segments node ``j`` can drop.
    """
    for j in range(n_seg.size):
        s = n_seg[j] - 1
        while s > 0 and seg[j, s, SG_HI] > t_keep:
            s -= 1
        keep[j] = min(s - 1, e_next[j] - seg_base[j], sp_ptr[j] - 1 - seg_base[j])
    for l in range(src.size):
        if ls[l, LS_UP] == 1:
            keep[src[l]] = min(keep[src[l]], ls[l, LS_SP] - 2)
    for j in range(n_seg.size):
        keep[j] = max(keep[j], 0)


@njit
def compact_segments(seg, seg_k, n_seg, seg_base, keep, ls, src):
    """Drop node ``j``'s ``keep[j]`` oldest segments: the rest move to the front,
    ``seg_base`` counts what went, and the links' segment hints follow."""
    for j in range(n_seg.size):
        k = keep[j]
        if k <= 0:
            continue
        for s in range(n_seg[j] - k):
            seg_k[j, s] = seg_k[j, s + k]
            for f in range(N_SG):
                seg[j, s, f] = seg[j, s + k, f]
        n_seg[j] -= k
        seg_base[j] += k
    for l in range(src.size):
        if ls[l, LS_UP] == 1:
            ls[l, LS_SP] -= keep[src[l]]


@njit(inline="always")
def _seg_start(seg, j, s, base, epoch, frac):
    """When node ``j``'s segment ``s`` (in memory) takes effect (s): its anchor
    plus ``frac[j]`` of its period (a change at phase ``ka + frac``, see
    :func:`_new_segment`); the run's first segment from the epoch on."""
    if s + base == 0:
        return epoch
    return seg[j, s, SG_HI] + seg[j, s, SG_LO] + frac[j] * seg[j, s, SG_P]


@njit
def energy_add(seg, n_seg, seg_base, e_node, e_next, t_safe, epoch, frac):
    """Fold ``(f/f0 - 1)² × duration`` of each segment that ended by ``t_safe`` into
    its node's running sum, in segment order.

    Args:
        seg, n_seg, seg_base: the segments in memory (:class:`NodeState`).
        e_node: float64[n] running sums (s); e_next: int64[n] the run index of
            each node's first segment not yet folded in (both updated).
        t_safe: no segment that starts by then is still to come (s).
        epoch: where the integral starts (s, <= 0).
        frac: float64[n] where in a cycle each node's changes fall (:func:`_seg_start`).
    """
    for j in range(n_seg.size):
        base = seg_base[j]
        s = e_next[j] - base
        while s + 1 < n_seg[j]:
            b = _seg_start(seg, j, s + 1, base, epoch, frac)
            if b > t_safe:
                break
            a = _seg_start(seg, j, s, base, epoch, frac)
            if b > a:
                r = seg[j, s, SG_REL]
                e_node[j] += r * r * (b - a)
            s += 1
        e_next[j] = s + base


@njit
def energy_close(seg, n_seg, seg_base, e_node, e_next, t_end, epoch, frac):
    """``Σ_j ∫_epoch^t_end (f_j/f0 - 1)² dt`` (s): the running sums (folded in to
    ``t_end`` by :func:`energy_add`) plus each node's segment in force at ``t_end``."""
    total = 0.0
    for j in range(n_seg.size):
        s = e_next[j] - seg_base[j]
        a = _seg_start(seg, j, s, seg_base[j], epoch, frac)
        e = e_node[j]
        if t_end > a:
            r = seg[j, s, SG_REL]
            e += r * r * (t_end - a)
        total += e
    return total


@njit
def spread_add(seg, n_seg, seg_base, st, ptr, t_stop, frac):
    """Integrate ``Σ_j (rel_j - mean_k rel_k)²`` over time through every frequency
    change before ``t_stop`` (s): an n-way merge of the segment starts.

    Uses ``Σ_j (x_j - x̄)² = Σ x_j² - (Σ x_j)² / n`` on values shifted by the
    initial mean, updated per change. The next change comes from a sorted
    window of a circular array of the nodes' next known changes, by (time,
    node): the earliest leaves at the front, the node's following change
    (if known yet) is inserted from the back. Nodes mostly change in turn,
    so an insertion rarely moves more than one entry; a node whose next
    change is not known yet leaves the window. The integral is cut only at
    changes, so calls at any times give the same sum as one call.

    Args:
        st: float64[5] ``[t_prev, s1, s2, total, shift]`` (updated).
        ptr: int64[n] the run index of each node's next change (updated).
    """
    n = n_seg.size
    shift = st[4]
    keys = np.full(n, np.inf)
    for j in range(n):
        w = ptr[j] - seg_base[j]
        if w < n_seg[j]:
            keys[j] = _seg_start(seg, j, w, seg_base[j], 0.0, frac)
    hk, hid = order_start(keys)  # by (time, node); unknown (inf) last
    size = 0
    while size < n and hk[size] < np.inf:
        size += 1
    head = 0
    t_prev = st[0]
    s1 = st[1]
    s2 = st[2]
    total = st[3]
    while size > 0 and hk[head] < t_stop:
        jn = hid[head]
        t_next = hk[head]
        if t_next > t_prev:
            total += max(s2 - s1 * s1 / n, 0.0) * (t_next - t_prev)
            t_prev = t_next
        w = ptr[jn] - seg_base[jn]
        old = seg[jn, w - 1, SG_REL] - shift
        new = seg[jn, w, SG_REL] - shift
        s1 += new - old
        s2 += new * new - old * old
        ptr[jn] += 1
        head = head + 1 if head + 1 < n else 0
        size -= 1
        if w + 1 < n_seg[jn]:
            # insert from the back, where a change in turn belongs
            key = _seg_start(seg, jn, w + 1, seg_base[jn], 0.0, frac)
            r = head + size
            order_insert(hk, hid, r - n if r >= n else r, size, key, jn)
            size += 1
    st[0] = t_prev
    st[1] = s1
    st[2] = s2
    st[3] = total


@njit
def spread_close(st, t_end, n):
    """The spread integral of :func:`spread_add`'s state, on to ``t_end`` (s)."""
    total = st[3]
    if t_end > st[0]:
        total += max(st[2] - st[1] * st[1] / n, 0.0) * (t_end - st[0])
    return total
