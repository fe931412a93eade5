"""The layout of the core's state: column constants and named structures.

Pure Python, without Numba, so that the classes that own the arrays
(:mod:`tidesim.models.simulation`, :mod:`tidesim.models.trace`) import it
without compiling anything; :mod:`tidesim.models._kernels` reads the same
names. Nothing outside :mod:`tidesim.models` uses them: results are read
through :class:`~tidesim.models.Trace`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# ---- fields of a segment (``seg[node, segment, SG_*]``) ----
SG_HI = 0  # anchor time, high part (s)
SG_LO = 1  # anchor time, low part (s)
SG_P = 2  # period (s)
SG_REL = 3  # relative frequency f/f0 - 1
N_SG = 4

# ---- bits of the per-sample link flags (``Record.flags``) ----
FLAG_STABLE = 1  # the stability detector reports the link stable
FLAG_SETTLED = 2  # stable, and the detector's reference is within the margin of 0

# ---- integer parameter slots (``ipar``) ----
IP_P = 0  # update period, local ticks
IP_D = 1  # control delay, local ticks
IP_ACT = 2  # actuator kind: 0 continuous, 1 quantized
IP_DEPTH = 3  # FIFO depth in frames; 0 = ideal counter
IP_REF = 4  # reference occupancy in frames
IP_ARM = 5  # arm buffers: 0 at link-up, 1 when the link is first stable, 2 when all are
IP_AUTO = 6  # auto-centre threshold, -1 = off
IP_MEAS_DDC = 7  # 1: controllers measure domain difference counters
IP_MARGIN = 8  # stability margin, frames
IP_CYCLE = 9  # 1: cycle fidelity
IP_STOP = 10  # 1: stop at the first sample that saw a fault
IP_HAS_CTL = 11  # 0: free-running clocks
IP_EVERY = 12  # record every n-th sample of each node; 0: no per-sample records
IP_SAMPLE_PHASE = 13  # 1: sample at phase theta0 + q p (Callisto.jl); 0: at whole edges
IP_OWN = 14  # one node run on its own (its samples only, see _partition); -1: every node
IP_ALLST_E = 15  # with FP_ALLST_T: the link read (index into in_idx) that made every link stable
N_IPAR = 16

# ---- float parameter slots (``fpar``) ----
FP_F0 = 0  # nominal frequency, Hz
FP_UNTIL = 1  # end of the run, s
FP_WANDER = 2  # random-walk wander, relative per sqrt(s)
FP_STEP = 3  # quantized actuator step, relative
FP_MAXREL = 4  # largest |f/f0 - 1| accepted
FP_WINDOW = 5  # stability window, s
FP_LATMAX = 6  # largest link latency, s
FP_PMAX = 7  # longest period any segment can have, s
FP_ALLST_T = 8  # one node run on its own: when every link was first stable (s; inf: not yet)
N_FPAR = 9

# ---- node scalars kept between calls (``sc``) ----
SC_HEAD = 0  # head of the circular sample order
SC_FAULTS_SEEN = 1  # 1 once a sample saw a buffer fault
SC_N_STABLE = 2  # links the stability detector reports stable now
SC_ALL_STABLE = 3  # 1 once every link was stable at once
SC_LOG_N = 4  # one node on its own: detector changes logged in detail[DETAIL_LOG:]; -1 full
N_SC = 5
DETAIL_LOG = 4  # detail[DETAIL_LOG + 3 i : + 3]: time (s), read index e, new stable bit

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
LS_MAXCNT = 18  # largest |buffer count| seen at a sample
LS_MAXDDC = 19  # largest |domain difference count| seen at a sample
LS_NF_STFROM = 20  # faults counted when the current stable run began
N_LS = 21

# ---- per-link float state columns (``lf``) ----
LF_ARRT = 0  # arrival time of the last frame walked, s
LF_ADVT = 1  # time the link was advanced to, s
LF_OVF_T = 2
LF_UNF_T = 3
LF_STSINCE = 4  # time the stability reference was taken
LF_ARM_T = 5
LF_STFROM = 6  # first sample time of the current stable run (NaN: not stable)
N_LF = 7

# ---- status codes ----
ST_OK = 0
ST_FAULT_STOP = 1  # stopped at the first fault, as asked
ST_RANGE = 2  # a node's frequency left the accepted range
ST_SEG_FULL = 3  # no free segment slot: make room and call again
ST_REC_FULL = 4  # no free record row: make room and call again
ST_WANDER = 5  # no wander draw left: draw more and call again


# ----------------------------------------------------------------------------
# kernel state: a few named structures of flat arrays
#
# ``n`` nodes, ``L`` directed links, ``A`` scheduled adjustments, ``S`` segment
# slots per node, ``R`` record rows per node, ``Z`` wander draws per node,
# ``w`` controller state width. The classes in :mod:`tidesim.models.simulation`
# allocate them, validate input, make room between calls and read results.


class Params(NamedTuple):
    """What a run does not change.

    Attributes:
        fpar: float64[N_FPAR] scalar parameters (``FP_*``).
        ipar: int64[N_IPAR] integer parameters (``IP_*``).
        eps0, drift: float64[n] intrinsic offset (relative) and drift (1/s).
        start_t: float64[n] time each node's controller starts (s).
        in_off, in_idx: int64[n + 1], int64[L] incoming links of each node (CSR).
        in_src, in_lat: int64[L], float64[L] sender and latency (s) of link
            ``in_idx[e]``, in the order a node reads its links.
        src, dst, lat, t_up: int64[L], int64[L], float64[L], float64[L] link
            endpoints, latency (s) and link-up time (s).
        cparams: float64[:] controller parameters.
        adj_link, adj_t, adj_frames: int64[A], float64[A], int64[A] scheduled
            buffer adjustments (link, earliest time in s, frames).
        theta0: float64[n] each node's phase at ``t = 0`` (cycles, in [0, 1)).
    """

    fpar: np.ndarray
    ipar: np.ndarray
    eps0: np.ndarray
    drift: np.ndarray
    start_t: np.ndarray
    in_off: np.ndarray
    in_idx: np.ndarray
    in_src: np.ndarray
    in_lat: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    lat: np.ndarray
    t_up: np.ndarray
    cparams: np.ndarray
    adj_link: np.ndarray
    adj_t: np.ndarray
    adj_frames: np.ndarray
    theta0: np.ndarray


class NodeState(NamedTuple):
    """Each node's clock, controller and place in the sample order.

    Attributes:
        seg, seg_k, n_seg: float64[n, S, N_SG], int64[n, S], int64[n] the
            frequency segments in memory (``SG_*`` fields; see the module
            docstring); row ``j`` holds ``n_seg[j]``, and one slot past the
            last stays free.
        seg_base: int64[n] the run's index of row ``j``'s segment 0 (older
            segments are dropped when only a window is kept).
        corr, wander: float64[n] applied correction and wander (relative).
        zq: int64[n] quantized actuator position, in steps.
        next_m: int64[n] receiver edge of the node's next sample.
        n_samp: int64[n] samples taken so far.
        cstate: float64[n, w] controller state.
        order_t, order_node: float64[n], int64[n] the circular sample order
            (:func:`order_requeue`): next sample time (s) and node.
        sc: int64[N_SC] scalars (``SC_*``).
        detail: float64[4] filled on a fault status: node, time (s), cycle, rel.
    """

    seg: np.ndarray
    seg_k: np.ndarray
    n_seg: np.ndarray
    seg_base: np.ndarray
    corr: np.ndarray
    wander: np.ndarray
    zq: np.ndarray
    next_m: np.ndarray
    n_samp: np.ndarray
    cstate: np.ndarray
    order_t: np.ndarray
    order_node: np.ndarray
    sc: np.ndarray
    detail: np.ndarray


class LinkState(NamedTuple):
    """Each link's buffer, counters, detector and summary.

    Attributes:
        ls, lf: int64[L, N_LS], float64[L, N_LF] one row per link
            (``LS_*``/``LF_*`` columns).
        ring: int64[L, depth or 1] FIFO storage of sequence numbers (cycle
            fidelity).
        adj_done: int64[A] 1 once an adjustment was issued.
    """

    ls: np.ndarray
    lf: np.ndarray
    ring: np.ndarray
    adj_done: np.ndarray


class Record(NamedTuple):
    """Per-sample records, and the wander draws still to be used.

    With ``ipar[IP_EVERY] = e > 0`` node ``j``'s sample ``q`` is recorded
    when ``q % e == 0``, in row ``q // e - row0[j]``; ``e = 0`` records no
    sample (the run keeps only its state and summary).

    Attributes:
        row0: int64[n] the record row (``q // e``) held in row 0.
        samp_m, samp_t, samp_c, samp_des: int64/float64[n, R] receiver edge,
            time (s), applied and desired correction (relative) of each sample.
        cnt, ddc, flags: int32[R, L], int32[R, L], int8[R, L] buffer count
            relative to the reference, domain difference count and detector
            bits (``FLAG_*``) at each sample of the link's receiver.
        state: float64[n, R or 0, w] controller state after each sample
            (not kept when the second axis is empty).
        wander_z: float64[n, Z] standard normal draws of the wander, from
            node ``j``'s draw number ``z0[j]`` on.
        z0: int64[n] the draw number held in column 0.
    """

    row0: np.ndarray
    samp_m: np.ndarray
    samp_t: np.ndarray
    samp_c: np.ndarray
    samp_des: np.ndarray
    cnt: np.ndarray
    ddc: np.ndarray
    flags: np.ndarray
    state: np.ndarray
    wander_z: np.ndarray
    z0: np.ndarray
