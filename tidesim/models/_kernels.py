"""Numba kernels of the bittide core: clocks, links, elastic buffers, control.

Everything here is a plain function over flat numpy arrays; the classes in
:mod:`tidesim.models.system` own the arrays, validate input and call
:func:`simulate`. Shapes below use ``n`` nodes, ``L`` directed links, ``S``
segment capacity and ``Q`` sample capacity per node.

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
form ``beta = ugn + A_ij(t) - R_j(t)`` and falls back to the same per-edge
walk only where a fault or an adjustment is possible. Hence they agree exactly.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types

from .._jit import borrowed, jit_signature, njit
from ..controllers._contract import STEP_TYPE

# ---- fields of a segment (``seg[node, segment, SG_*]``) ----
SG_HI = 0  # anchor time, high part (s)
SG_LO = 1  # anchor time, low part (s)
SG_P = 2  # period (s)
SG_REL = 3  # relative frequency f/f0 - 1
N_SG = 4

# ---- bits of the per-sample link flags (``rec_flags``) ----
FLAG_STABLE = 1  # the stability detector reports the link stable
FLAG_SETTLED = 2  # stable, and the detector's reference is within the margin of 0

# ---- integer parameter slots (``ipar``) ----
IP_P = 0  # update period, local ticks
IP_D = 1  # control delay, local ticks
IP_ACT = 2  # actuator kind: 0 continuous, 1 quantized
IP_DEPTH = 3  # FIFO depth in frames; 0 = ideal counter
IP_REF = 4  # reference occupancy in frames
IP_ARM_STABLE = 5  # 1: arm buffers when the link is first stable
IP_AUTO = 6  # auto-centre threshold, -1 = off
IP_MEAS_DDC = 7  # 1: controllers measure domain difference counters
IP_MARGIN = 8  # stability margin, frames
IP_CYCLE = 9  # 1: cycle fidelity
IP_STOP = 10  # 1: stop at the first sample that saw a fault
IP_HAS_CTL = 11  # 0: free-running clocks
N_IPAR = 12

# ---- float parameter slots (``fpar``) ----
FP_F0 = 0  # nominal frequency, Hz
FP_UNTIL = 1  # end of the run, s
FP_WANDER = 2  # random-walk wander, relative per sqrt(s)
FP_STEP = 3  # quantized actuator step, relative
FP_MAXREL = 4  # largest |f/f0 - 1| accepted
FP_WINDOW = 5  # stability window, s
N_FPAR = 6

# ---- per-link integer state columns (``ls``) ----
LS_UP = 0
LS_BASE = 1  # A(t_up) - R(t_up)
LS_OCC = 2  # FIFO occupancy, frames
LS_ARRK = 3  # sequence number of the next frame to arrive
LS_ADVM = 4  # last receiver edge the link was advanced through
LS_PEND = 5  # pending adjustment: >0 reads to suppress, <0 writes to drop
LS_ARMED = 6
LS_SP = 7  # sender segment owning LS_ARRK
LS_WR = 8  # ring write position
LS_RD = 9  # ring read position
LS_OVF_N = 10
LS_UNF_N = 11
LS_OVF_M = 12  # receiver cycle of the first overflow
LS_UNF_M = 13
LS_LASTSEQ = 14  # sequence number of the last frame read (cycle fidelity)
LS_STREF = 15  # stability detector reference, frames
LS_STABLE = 16
LS_ARM_M = 17  # receiver cycle at which the buffer was armed (-1: never)
N_LS = 18

# ---- per-link float state columns (``lf``) ----
LF_ARRT = 0  # arrival time of the last frame walked, s
LF_ADVT = 1  # time the link was advanced to, s
LF_OVF_T = 2
LF_UNF_T = 3
LF_STSINCE = 4  # time the stability reference was taken
LF_ARM_T = 5
N_LF = 6

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

# ---- status codes ----
ST_OK = 0
ST_FAULT_STOP = 1  # stopped at the first fault, as asked
ST_RANGE = 2  # a node's frequency left the accepted range
ST_SEG_FULL = 3  # segment capacity exhausted
ST_SAMP_FULL = 4  # sample capacity exhausted


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
    r = head
    for _ in range(n - 1):
        c = r - 1 if r > 0 else n - 1
        if hk[c] > key or (hk[c] == key and hid[c] > j):
            hk[r] = hk[c]
            hid[r] = hid[c]
            r = c
        else:
            break
    hk[r] = key
    hid[r] = j
    return head + 1 if head + 1 < n else 0


@njit(inline="always")  # called once per link and sample
def stability_update(v, ref, since, t, margin):
    """One step of the stability detector for a link.

    Args:
        v: the count just sampled (frames).
        ref: the detector's reference (frames).
        since: time the reference was taken (s).
        t: sample time (s).
        margin: allowed deviation from the reference (frames).

    Returns:
        ``(ref, since)`` after the sample; the link is stable when
        ``t - since >= window``.
    """
    # selects, not a branch: while links converge, resets are a coin flip
    reset = abs(v - ref) > margin
    return (v if reset else ref), (t if reset else since)


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
    if ipar[IP_ARM_STABLE] == 0:
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


# ----------------------------------------------------------------------------
# the simulation loop

_i8_1 = types.int64[::1]
_i8_2 = types.int64[:, ::1]
_f8_1 = types.float64[::1]
_f8_2 = types.float64[:, ::1]
_i4_2 = types.int32[:, ::1]
_i1_2 = types.int8[:, ::1]
_f8_3 = types.float64[:, :, ::1]

SIMULATE_SIGNATURE = types.int64(
    STEP_TYPE,  # step
    _f8_1, _i8_1,  # fpar, ipar
    _f8_1, _f8_1, _f8_1, _f8_2,  # eps0, drift, start_t, wander_z
    _f8_3, _i8_2, _i8_1,  # seg, seg_k, n_seg
    _i8_2, _f8_2, _f8_2, _f8_2, _i8_1,  # samp_m, samp_t, samp_c, samp_des, n_samp
    _f8_1, _f8_2,  # cparams, cstate
    _i8_1, _i8_1,  # in_off, in_idx
    _i8_1, _i8_1, _f8_1, _f8_1,  # src, dst, lat, t_up
    _i8_2, _f8_2, _i8_2,  # ls, lf, ring
    _i4_2, _i4_2, _i1_2, _f8_3,  # rec_cnt, rec_ddc, rec_flags, rec_state
    _i8_1, _f8_1, _i8_1, _i8_1,  # adj_link, adj_t, adj_frames, adj_done
    _f8_1,  # status detail
)


@jit_signature(SIMULATE_SIGNATURE)
def simulate(step, fpar, ipar, eps0, drift, start_t, wander_z,
             seg, seg_k, n_seg,
             samp_m, samp_t, samp_c, samp_des, n_samp,
             cparams, cstate, in_off, in_idx, src, dst, lat, t_up,
             ls, lf, ring, rec_cnt, rec_ddc, rec_flags, rec_state,
             adj_link, adj_t, adj_frames, adj_done, detail):
    """Run a system from its initial segments to ``fpar[FP_UNTIL]``.

    Args:
        step: controller step function (``STEP_SIGNATURE``).
        fpar: float64[N_FPAR] scalar parameters (``FP_*`` slots).
        ipar: int64[N_IPAR] integer parameters (``IP_*`` slots).
        eps0, drift: float64[n] intrinsic offset (relative) and drift (1/s).
        start_t: float64[n] time each node's controller starts (s).
        wander_z: float64[n, Q] standard normals for the wander random walk.
        seg, seg_k, n_seg: float64[n, S, N_SG] segment fields (``SG_*``),
            int64[n, S] anchor edges and int64[n] counts of the frequency
            segments; row ``j`` holds ``n_seg[j]`` segments, segment 0 filled
            by the caller.
        samp_*: int64/float64[n, Q] per-sample receiver edge, time (s),
            applied and desired correction; ``n_samp[j]`` filled.
        cparams: float64[:] controller parameters; cstate: float64[n, w].
        in_off, in_idx: int64[n+1], int64[L] incoming links of each node (CSR).
        src, dst, lat, t_up: int64/float64[L] link endpoints, latency (s)
            and link-up time (s).
        ls, lf: int64[L, N_LS], float64[L, N_LF] link state (``LS_*``/``LF_*``),
            one row per link.
        ring: int64[L, depth] FIFO storage of sequence numbers.
        rec_cnt, rec_ddc, rec_flags: int32/int32/int8[Q, L] buffer count
            relative to the reference, domain difference count, and the
            stability detector (``FLAG_STABLE | FLAG_SETTLED``), recorded at
            each sample of the link's receiver.
        rec_state: float64[n, Q or 0, w] each node's controller state after
            each sample (not recorded when the second axis is empty).
        adj_*: int64/float64[A] scheduled adjustments and their done flags.
        detail: float64[4] filled on a non-zero status: node, time, cycle, rel.

    Returns:
        A status code (``ST_*``).
    """
    n = eps0.size
    f0 = fpar[FP_F0]
    until = fpar[FP_UNTIL]
    p = ipar[IP_P]
    d = ipar[IP_D]
    depth = ipar[IP_DEPTH]
    ref = ipar[IP_REF]
    margin = ipar[IP_MARGIN]
    window = fpar[FP_WINDOW]
    wstep = fpar[FP_WANDER] * math.sqrt(p / f0)
    qstep = fpar[FP_STEP]
    cap_s = seg.shape[1]
    cap_q = samp_t.shape[1]
    max_deg = 1
    for j in range(n):
        max_deg = max(max_deg, in_off[j + 1] - in_off[j])
    # sender and latency in the order a node reads its links: loaded beside
    # the link, not after it
    in_src = np.empty(in_idx.size, dtype=np.int64)
    in_lat = np.empty(in_idx.size)
    for e in range(in_idx.size):
        in_src[e] = src[in_idx[e]]
        in_lat[e] = lat[in_idx[e]]
    lat_max = 0.0
    for l in range(lat.size):
        lat_max = max(lat_max, lat[l])
    # the longest period any segment can have: a later one keeps |rel| <= maxrel
    p_max = 1.0 / (f0 * (1.0 - fpar[FP_MAXREL]))
    for j in range(n):
        p_max = max(p_max, seg[j, 0, SG_P])
    meas = np.zeros(max_deg)
    walk_l = np.zeros(max_deg, dtype=np.int64)
    tbuf = np.empty(WALK_CHUNK)
    state_buf = np.zeros(cstate.shape[1])
    params_b = borrowed(cparams)
    state_b = borrowed(state_buf)
    meas_b = borrowed(meas)
    corr = np.zeros(n)
    zq = np.zeros(n, dtype=np.int64)
    wander = np.zeros(n)
    next_m = np.zeros(n, dtype=np.int64)
    # sample events: every node once, in a circular array sorted by (time,
    # node) from `head` (see order_requeue)
    first_t = np.empty(n)
    for j in range(n):
        next_m[j] = seg_k[j, 0]
        first_t[j] = seg[j, 0, SG_HI] + seg[j, 0, SG_LO]
    hk, hid = order_start(first_t)
    head = 0
    status = ST_OK
    faults_seen = 0
    cycle = ipar[IP_CYCLE] == 1
    meas_ddc = ipar[IP_MEAS_DDC] == 1
    arm_stable = ipar[IP_ARM_STABLE] == 1
    auto_thr = ipar[IP_AUTO]
    n_adj = adj_link.size
    final = False  # after the last sample: advance every link to `until`
    jf = 0
    q = 0
    qu = np.uint64(0)
    m = 0
    t = 0.0
    while True:
        if not final:
            t = hk[head]
            j = hid[head]
            if t > until:
                final = True
                continue
            m = next_m[j]
            q = n_samp[j]
            qu = np.uint64(q)
            if q >= cap_q:
                status = ST_SAMP_FULL
                detail[0] = j
                detail[1] = t
                break
        else:
            if jf >= n:
                break
            j = jf
            jf += 1
            t = until
            m, _ = last_edge_before(seg, seg_k, n_seg, j, until, 0.0,
                                    n_seg[j] - 1)
        # bring up and advance every incoming link to edge m at time t
        n_up = 0
        band_scale = sample_phase_scale(t, lat_max, p_max)
        rj_t0 = -math.inf  # the receiver's rate range below is per start time
        rel_j_lo = 0.0
        rel_j_hi = 0.0
        if cycle:
            # every link that is up walks edge by edge, all of them reading
            # the receiver's edge times from one buffer
            n_walk = 0
            for e in range(in_off[j], in_off[j + 1]):
                l = in_idx[e]
                if ls[l, LS_UP] == 0:
                    if t_up[l] > t:
                        continue
                    _link_up(l, src, dst, lat, t_up, seg, seg_k, n_seg, ls, lf,
                             ring, ipar)
                walk_l[n_walk] = l
                n_walk += 1
            if n_walk > 0:
                _walk_links(walk_l, n_walk, m, t, j, src, lat, seg, seg_k, n_seg, ls, lf, ring,
                            depth, True, tbuf)
        for e in range(in_off[j], in_off[j + 1]):
            eu = np.uint64(e)  # unsigned indices: no wraparound fix-up
            l = in_idx[eu]
            lu = np.uint64(l)
            if ls[lu, LS_UP] == 0:
                if t_up[l] > t:
                    if not final:
                        rec_cnt[qu, lu] = 0
                        rec_ddc[qu, lu] = 0
                        rec_flags[qu, lu] = 0
                    continue
                _link_up(l, src, dst, lat, t_up, seg, seg_k, n_seg, ls, lf,
                         ring, ipar)
            i = in_src[eu]
            iu = np.uint64(i)
            la = in_lat[eu]
            armed = ls[lu, LS_ARMED] == 1
            walk = cycle or ls[lu, LS_PEND] != 0
            if not walk:
                # the sender's segment in force at t - la, found from the one
                # owning its last arrival; the range of its relative rate on
                # the way bounds the buffer's excursion below
                sp = ls[lu, LS_SP]
                last_i = n_seg[iu] - 1
                y = t - la
                rel_i_lo = seg[iu, np.uint64(sp), SG_REL]
                rel_i_hi = rel_i_lo
                # the first step, whose taking is a coin flip, without a
                # branch: selects, and `&` rather than `and`
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
                if depth > 0 and armed:
                    # the closed form holds unless the buffer could reach
                    # empty or full before t; the rates are f0 (1 + rel)
                    t0 = lf[lu, LF_ADVT]
                    if t0 != rj_t0:
                        rj_t0 = t0
                        sr = n_seg[j] - 1
                        rel_j_lo = seg[j, sr, SG_REL]
                        rel_j_hi = rel_j_lo
                        while sr > 0 and seg[j, sr, SG_HI] > t0:
                            sr -= 1
                            r = seg[j, sr, SG_REL]
                            if r < rel_j_lo:
                                rel_j_lo = r
                            if r > rel_j_hi:
                                rel_j_hi = r
                    span = (t - t0) * f0
                    occ = ls[lu, LS_OCC]
                    gain = rel_i_hi - rel_j_lo
                    loss = rel_j_hi - rel_i_lo
                    walk = (occ + 3.0 + (span * gain if gain > 0.0 else 0.0) >= depth
                            or occ - 3.0 - (span * loss if loss > 0.0 else 0.0) <= 0.0)
            if walk:
                if not cycle:  # (cycle fidelity walked every link above)
                    walk_l[0] = l
                    _walk_links(walk_l, 1, m, t, j, src, lat, seg, seg_k, n_seg, ls, lf, ring,
                                depth, False, tbuf)
                if ls[lu, LS_OVF_N] > 0 or ls[lu, LS_UNF_N] > 0:
                    faults_seen = 1
                occ = ls[lu, LS_OCC]
                a_new = ls[lu, LS_ARRK] - 1
            else:
                # the last arrival by t from the sender's phase (its rate
                # f0 (1 + rel) stands in for 1 / P): exact unless the phase is
                # within PHASE_TOL of an edge (see PHASE_TOL), where the edge
                # times decide, and corrected off the fast path
                hi = seg[iu, np.uint64(sp), SG_HI]
                lo = seg[iu, np.uint64(sp), SG_LO]
                k0 = seg_k[iu, np.uint64(sp)]
                F = f0 * (1.0 + seg[iu, np.uint64(sp), SG_REL])
                a_new, decided = arrival_from_phase(hi, lo, k0, F, t, la, band_scale * F)
                # within the segment's edges; `|` and `&`, as whether the
                # sender has a later segment is a coin flip (the slot after
                # the last segment exists: the capacity check keeps one free)
                ok = (((sp == 0) | (k0 < a_new))
                      & ((sp == last_i) | (a_new + 1 <= seg_k[iu, np.uint64(sp + 1)])))
                if ok and not decided:
                    P = seg[iu, np.uint64(sp), SG_P]
                    ok = (hi + (lo + (a_new + 1 - k0) * P) + la > t
                          and hi + (lo + (a_new - k0) * P) + la <= t)
                if not ok:
                    a_new, sp = _last_edge_fixup(seg, seg_k, n_seg, i, t, la, sp)
                occ = ls[lu, LS_OCC] + (a_new - (ls[lu, LS_ARRK] - 1)) - (m - ls[lu, LS_ADVM])
                ls[lu, LS_OCC] = occ
                ls[lu, LS_ARRK] = a_new + 1
                ls[lu, LS_SP] = sp
                ls[lu, LS_ADVM] = m
                lf[lu, LF_ADVT] = t
            if final:
                continue
            cnt = occ - ref
            ddc = a_new - m - ls[lu, LS_BASE]
            v = ddc if meas_ddc else cnt
            r_new, since = stability_update(v, ls[lu, LS_STREF], lf[lu, LF_STSINCE], t, margin)
            ls[lu, LS_STREF] = r_new
            lf[lu, LF_STSINCE] = since
            stable = 1 if t - since >= window else 0
            ls[lu, LS_STABLE] = stable
            if not armed and stable == 1 and arm_stable:
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
            rec_cnt[qu, lu] = cnt
            rec_ddc[qu, lu] = ddc
            # settled: stable about a reference within the margin of zero
            near = np.int64(abs(r_new) < margin)
            rec_flags[qu, lu] = stable * (FLAG_STABLE + FLAG_SETTLED * near)
            # buffer adjustments take effect after this sample
            if armed:
                if n_adj > 0:
                    for a in range(n_adj):
                        if adj_done[a] == 0 and adj_link[a] == l and adj_t[a] <= t:
                            ls[lu, LS_PEND] += adj_frames[a]
                            adj_done[a] = 1
                if auto_thr >= 0 and ls[lu, LS_PEND] == 0 and abs(cnt) > auto_thr:
                    ls[lu, LS_PEND] = -cnt
            meas[np.uint64(n_up)] = v
            n_up += 1
        if final:
            continue
        ju = np.uint64(j)
        # control
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
        if rec_state.shape[1] > 0:
            for c in range(cstate.shape[1]):
                rec_state[j, q, c] = cstate[j, c]
        if wstep > 0.0:
            wander[j] += wstep * wander_z[j, q]
        rel = eps0[j] + drift[j] * t + wander[j] + corr[j]
        samp_m[ju, qu] = m
        samp_t[ju, qu] = t
        samp_c[ju, qu] = corr[j]
        samp_des[ju, qu] = des
        n_samp[j] = q + 1
        if not (abs(rel) <= fpar[FP_MAXREL]):
            status = ST_RANGE
            detail[0] = j
            detail[1] = t
            detail[2] = m
            detail[3] = rel
            break
        s = n_seg[j] - 1
        if rel != seg[j, s, SG_REL]:
            if s + 2 >= cap_s:  # one slot stays free past the last segment
                status = ST_SEG_FULL
                detail[0] = j
                detail[1] = t
                break
            ka = m + d
            hi, lo = anchor_advance(seg[j, s, SG_HI], seg[j, s, SG_LO], seg[j, s, SG_P],
                                    ka - seg_k[j, s])
            seg[j, s + 1, SG_HI] = hi
            seg[j, s + 1, SG_LO] = lo
            seg_k[j, s + 1] = ka
            seg[j, s + 1, SG_P] = 1.0 / (f0 * (1.0 + rel))
            seg[j, s + 1, SG_REL] = rel
            n_seg[j] = s + 2
        if faults_seen == 1 and ipar[IP_STOP] == 1:
            status = ST_FAULT_STOP
            detail[0] = j
            detail[1] = t
            detail[2] = m
            break
        nm = m + p
        next_m[j] = nm
        # owner_segment and edge_time, spelled out (array arguments cost
        # reference counting): the edge is in the last segment or just before
        sn = n_seg[j] - 1
        while sn > 0 and nm <= seg_k[j, sn]:
            sn -= 1
        key = seg[j, sn, SG_HI] + (seg[j, sn, SG_LO] + (nm - seg_k[j, sn]) * seg[j, sn, SG_P])
        head = order_requeue(hk, hid, head, key, j)
    return status


@njit
def zero_link_tails(rec, n_samp, in_off, in_idx):
    """Zero ``rec[q, l]`` from each link's first unwritten sample on.

    Args:
        rec: [Q, L] a per-sample link record (any dtype).
        n_samp: int64[n] samples of each node (a link's are its receiver's).
        in_off, in_idx: int64[n+1], int64[L] incoming links of each node (CSR).
    """
    for j in range(n_samp.size):
        for q in range(n_samp[j], rec.shape[0]):
            for e in range(in_off[j], in_off[j + 1]):
                rec[q, in_idx[e]] = 0


@njit
def segment_energy(seg_hi, seg_lo, seg_rel, n_seg, t_end):
    """``sum_j ∫_0^t_end (f_j/f0 - 1)^2 dt`` from the frequency segments (s).

    ``seg_hi + seg_lo`` is each segment's start time (s, ``[n, S]``).
    """
    total = 0.0
    for j in range(n_seg.size):
        for s in range(n_seg[j]):
            a = seg_hi[j, s] + seg_lo[j, s] if s > 0 else 0.0
            b = seg_hi[j, s + 1] + seg_lo[j, s + 1] if s + 1 < n_seg[j] else t_end
            a = max(a, 0.0)
            b = min(b, t_end)
            if b > a:
                total += seg_rel[j, s] * seg_rel[j, s] * (b - a)
    return total
