"""The top-level object: a bittide system (topology, clocks, buffers, control).

Lifecycle::

    >>> from tidesim.models import System, Topology
    >>> from tidesim.controllers import PI
    >>> topo = Topology.complete(3, latency_s=1e-8)
    >>> sys = System(topo, offsets_ppm=[-50, 0, 50], controller=PI(kp=1e-7, ki=1e-13),
    ...              update_period_ticks=25_000, buffer=ElasticBuffer(depth=0))
    >>> trace = sys.run(until_s=0.05)               # event fidelity by default
    >>> trace.n_nodes, len(trace.ugn)
    (3, 6)

A :class:`System` is immutable input; every :meth:`System.run` starts from the
same initial state and returns a new :class:`Trace`, so runs are repeatable:
the same system and arguments give bit-identical traces.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..controllers._contract import Controller
from ..errors import ConfigError, SimulationFault
from .parts import MEASURE_KINDS, Actuator, Adjustment, ElasticBuffer, Stability
from .topology import Topology

__all__ = ["FIDELITIES", "Fault", "System", "Trace"]

FIDELITIES = ("event", "cycle")
_MAX_REL = 0.05  # a node whose |f/f0 - 1| exceeds 5 % is a fault
_MAX_PERIOD_TICKS = 1 << 26


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _per_node(name: str, value, n: int, *, lo=None, hi=None, hi_open=False) -> np.ndarray:
    """Broadcast a scalar or check a per-node sequence; returns float64[n]."""
    if _is_number(value):
        arr = np.full(n, float(value))
    elif isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        if len(value) != n:
            raise ConfigError(name, list(value), f"must have one entry per node ({n})")
        for v in value:
            if not _is_number(v):
                raise ConfigError(name, v, "must be a number")
        arr = np.asarray(value, dtype=np.float64).copy()
    else:
        raise ConfigError(name, value, "must be a number or a list with one number per node")
    for v in arr:
        if not math.isfinite(v):
            raise ConfigError(name, float(v), "must be finite")
        if lo is not None and v < lo:
            raise ConfigError(name, float(v), f"must be >= {lo}")
        if hi is not None and (v >= hi if hi_open else v > hi):
            raise ConfigError(name, float(v), f"must be {'<' if hi_open else '<='} {hi}")
    return arr


def _int_param(name: str, value, lo: int, hi: int | None = None) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise ConfigError(name, value, "must be an integer")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ConfigError(name, value, f"must be {rng}")
    return int(value)


@dataclass(frozen=True)
class Fault:
    """A sticky elastic-buffer flag: the first time a link over- or underflowed.

    Attributes:
        node: the receiving node (the buffer's owner).
        link: link index into ``Topology.links``.
        src: the sending node.
        kind: ``"overflow"`` or ``"underflow"``.
        time_s: time of the offending write (overflow) or read (underflow).
        cycle: the receiver's local cycle of the read that saw it.
        count: how many frames were dropped (or reads were invalid) in all.
    """

    node: int
    link: int
    src: int
    kind: str
    time_s: float
    cycle: int
    count: int

    def as_dict(self) -> dict:
        return {"node": self.node, "link": self.link, "src": self.src, "kind": self.kind,
                "time_s": self.time_s, "cycle": self.cycle, "count": self.count}


class System:
    """A bittide system: topology, node clocks, elastic buffers and control.

    Args:
        topology: the graph and per-link physical latencies.
        f_nom_hz: nominal node frequency (Hz); one frame per tick per link.
        offsets_ppm: intrinsic oscillator offsets, scalar or one per node.
        drift_ppb_per_s: linear frequency drift, scalar or one per node.
        wander_ppb_per_sqrt_s: random-walk wander (seeded by ``seed``).
        theta0: initial phase of each node in ticks, in ``[0, 1)``.
        start_s: time each node's controller starts (its links come up when
            both ends have started).
        controller: a :class:`~tidesim.controllers.Controller`, or ``None`` for
            free-running clocks.
        update_period_ticks: local ticks between two samples of a node.
        control_delay_ticks: ticks from a sample to the new frequency.
        actuator: continuous or quantized (FINC/FDEC) actuation.
        buffer: elastic buffer configuration, shared by every link.
        measure: ``"buffer"`` (elastic-buffer counts) or ``"ddc"`` (domain
            difference counters) is what the controller sees.
        stability: the stability detector (margin, window).
        seed: seed of every random choice of the run (wander).
        name: a label carried into summaries.
    """

    def __init__(
        self,
        topology: Topology,
        *,
        f_nom_hz: float = 125e6,
        offsets_ppm=0.0,
        drift_ppb_per_s=0.0,
        wander_ppb_per_sqrt_s: float = 0.0,
        theta0=0.1,
        start_s=0.0,
        controller: Controller | None = None,
        update_period_ticks: int = 25_000,
        control_delay_ticks: int = 0,
        actuator: Actuator | None = None,
        buffer: ElasticBuffer | None = None,
        measure: str = "buffer",
        stability: Stability | None = None,
        seed: int = 0,
        name: str = "custom",
    ) -> None:
        if not isinstance(topology, Topology):
            raise ConfigError("topology", topology, "must be a Topology")
        n = topology.n_nodes
        self.topology = topology
        if not _is_number(f_nom_hz) or not (0 < f_nom_hz < math.inf):
            raise ConfigError("clock.f_nom_hz", f_nom_hz, "must be a number > 0")
        self.f_nom_hz = float(f_nom_hz)
        self.offsets_ppm = _per_node("clock.offsets_ppm", offsets_ppm, n, lo=-1e4, hi=1e4)
        self.drift_ppb_per_s = _per_node("clock.drift_ppb_per_s", drift_ppb_per_s, n)
        if not _is_number(wander_ppb_per_sqrt_s) or not (0 <= wander_ppb_per_sqrt_s < math.inf):
            raise ConfigError("clock.wander_ppb_per_sqrt_s", wander_ppb_per_sqrt_s, "must be >= 0")
        self.wander_ppb_per_sqrt_s = float(wander_ppb_per_sqrt_s)
        self.theta0 = _per_node("clock.theta0", theta0, n, lo=0.0, hi=1.0, hi_open=True)
        self.start_s = _per_node("clock.start_s", start_s, n, lo=0.0)
        if controller is not None and not isinstance(controller, Controller):
            raise ConfigError("controller", controller, "must be a Controller or None")
        self.controller = controller
        self.update_period_ticks = _int_param(
            "control.update_period_ticks", update_period_ticks, 2, _MAX_PERIOD_TICKS)
        self.control_delay_ticks = _int_param(
            "control.delay_ticks", control_delay_ticks, 0, self.update_period_ticks - 1)
        self.actuator = actuator if actuator is not None else Actuator()
        self.buffer = buffer if buffer is not None else ElasticBuffer()
        if measure not in MEASURE_KINDS:
            raise ConfigError("control.measure", measure, f"must be one of {list(MEASURE_KINDS)}")
        self.measure = measure
        self.stability = stability if stability is not None else Stability()
        self.seed = _int_param("seed", seed, 0)
        self.name = name
        for a in self.buffer.adjustments:
            if not isinstance(a, Adjustment):
                raise ConfigError("buffer.adjust", a, "must be an Adjustment")
            _int_param("buffer.adjust.link", a.link, 0, topology.links.shape[0] - 1)
            _int_param("buffer.adjust.frames", a.frames, -(1 << 30), 1 << 30)

    @property
    def n_nodes(self) -> int:
        return self.topology.n_nodes

    @property
    def link_up_s(self) -> np.ndarray:
        """float64[L]: time each link comes up (both ends started)."""
        links = self.topology.links
        return np.maximum(self.start_s[links[:, 0]], self.start_s[links[:, 1]])

    def run(self, until_s: float | None = None, *, until_cycles: int | None = None,
            fidelity: str = "event", stop_on_fault: bool = False,
            record_controller_state: bool = False) -> Trace:
        """Simulate from ``t = 0`` to ``until_s`` (or ``until_cycles / f_nom_hz``).

        Args:
            until_s: end time in seconds.
            until_cycles: end time in nominal cycles (``until_cycles / f_nom_hz``).
            fidelity: ``"event"`` (exact, per control update) or ``"cycle"``
                (every edge, real FIFOs); both give identical results.
            stop_on_fault: stop at the first sample that sees a buffer fault.
            record_controller_state: keep every node's controller state after
                every sample (``Trace.controller_states``; costs
                ``8 * n * samples * n_state`` bytes), e.g. for waveforms.

        Returns:
            The :class:`Trace` of the run (kept whole even when it stopped early).

        Raises:
            SimulationFault: a node's frequency left ±5 % of nominal (an
                unstable controller); ``exc.trace`` holds the run up to there.
        """
        if (until_s is None) == (until_cycles is None):
            raise ConfigError("run.until_s", until_s,
                              "exactly one of until_s and until_cycles is required")
        if until_cycles is not None:
            until = _int_param("run.until_cycles", until_cycles, 1) / self.f_nom_hz
        else:
            if not _is_number(until_s) or not (0 < until_s < math.inf):
                raise ConfigError("run.until_s", until_s, "must be a number > 0")
            until = float(until_s)
        if fidelity not in FIDELITIES:
            raise ConfigError("run.fidelity", fidelity, f"must be one of {list(FIDELITIES)}")
        return _run(self, until, fidelity, bool(stop_on_fault), bool(record_controller_state))


def _zero_tails(n_seg, ns, seg_arrays, n_samp, node_arrays, in_off, in_idx, link_arrays) -> None:
    """Zero what the core did not write: every array then reads as if it had
    been allocated with zeros.

    Args:
        n_seg, ns: int64[n] segments per node, and how many the trace shows.
        seg_arrays: arrays indexed ``[node, segment, ...]``.
        n_samp: int64[n] samples per node.
        node_arrays: arrays indexed ``[node, sample, ...]``.
        in_off, in_idx: int64[n+1], int64[L] incoming links of each node (CSR).
        link_arrays: arrays indexed ``[sample, link]`` (a link's samples are
            its receiver's).
    """
    from ._kernels import zero_link_tails

    for j in range(n_seg.size):
        for a in seg_arrays:
            a[j, n_seg[j]:ns] = 0
        for a in node_arrays:
            a[j, n_samp[j]:] = 0
    for a in link_arrays:
        zero_link_tails(a, n_samp, in_off, in_idx)


def _run(sys: System, until: float, fidelity: str, stop_on_fault: bool,
         record_state: bool) -> Trace:
    from . import _kernels as K  # compiled (or loaded from cache) on first use

    topo = sys.topology
    n = topo.n_nodes
    links = topo.links
    n_links = links.shape[0]
    f0 = sys.f_nom_hz
    p = sys.update_period_ticks
    cap_q = int(math.ceil(until * f0 * (1 + _MAX_REL) / p)) + 3
    cap_s = cap_q + 2

    eps0 = sys.offsets_ppm * 1e-6
    # The per-segment and per-sample arrays are left uninitialised: the core
    # writes every row it counts, and _zero_tails clears the rest afterwards,
    # so a sweep worker reusing freed heap does not clear them twice.
    # A segment's floats share a row (hi, lo, P, rel: K.SG_*).
    seg = np.empty((n, cap_s, K.N_SG))
    seg_k = np.empty((n, cap_s), dtype=np.int64)
    # segment 0 is anchored at the first edge at or after t = 0
    k_a = np.where(sys.theta0 > 0.0, 1, 0).astype(np.int64)
    P0 = 1.0 / (f0 * (1.0 + eps0))
    seg[:, 0, K.SG_P] = P0
    seg[:, 0, K.SG_HI] = (k_a - sys.theta0) * P0
    seg[:, 0, K.SG_LO] = 0.0
    seg_k[:, 0] = k_a
    seg[:, 0, K.SG_REL] = eps0
    n_seg = np.ones(n, dtype=np.int64)

    samp_m = np.empty((n, cap_q), dtype=np.int64)
    samp_t = np.empty((n, cap_q))
    samp_c = np.empty((n, cap_q))
    samp_des = np.empty((n, cap_q))
    n_samp = np.zeros(n, dtype=np.int64)

    ctl = sys.controller
    if ctl is not None:
        step, cparams, cstate = ctl.step, ctl.params.copy(), ctl.initial_states(n)
    else:
        from ..controllers.pi import pi_step

        step, cparams, cstate = pi_step, np.zeros(3), np.zeros((n, 1))
    if cparams.size == 0:
        cparams = np.zeros(1)

    if sys.wander_ppb_per_sqrt_s > 0:
        # one stream per node, so a node's wander does not depend on the run length
        wander_z = np.stack([np.random.default_rng([sys.seed, j]).standard_normal(cap_q)
                             for j in range(n)])
    else:
        wander_z = np.zeros((n, 1))

    in_off, in_idx = topo.incoming()
    buf = sys.buffer
    depth = buf.depth
    ipar = np.zeros(K.N_IPAR, dtype=np.int64)
    ipar[K.IP_P] = p
    ipar[K.IP_D] = sys.control_delay_ticks
    ipar[K.IP_ACT] = 1 if sys.actuator.kind == "quantized" else 0
    ipar[K.IP_DEPTH] = depth
    ipar[K.IP_REF] = buf.reference_frames
    ipar[K.IP_ARM_STABLE] = 1 if buf.arm == "stable" else 0
    ipar[K.IP_AUTO] = -1 if buf.auto_centre is None else buf.auto_centre
    ipar[K.IP_MEAS_DDC] = 1 if sys.measure == "ddc" else 0
    ipar[K.IP_MARGIN] = sys.stability.margin
    ipar[K.IP_CYCLE] = 1 if fidelity == "cycle" else 0
    ipar[K.IP_STOP] = 1 if stop_on_fault else 0
    ipar[K.IP_HAS_CTL] = 1 if ctl is not None else 0
    fpar = np.zeros(K.N_FPAR)
    fpar[K.FP_F0] = f0
    fpar[K.FP_UNTIL] = until
    fpar[K.FP_WANDER] = sys.wander_ppb_per_sqrt_s * 1e-9
    fpar[K.FP_STEP] = sys.actuator.step_ppb * 1e-9
    fpar[K.FP_MAXREL] = _MAX_REL
    fpar[K.FP_WINDOW] = sys.stability.window_s

    # link-major link state: one link's fields share a row (and cache line)
    ls = np.zeros((n_links, K.N_LS), dtype=np.int64)
    ls[:, K.LS_ARM_M] = -1
    lf = np.full((n_links, K.N_LF), np.nan)
    ring = np.zeros((n_links, max(depth, 1) if fidelity == "cycle" else 1), dtype=np.int64)
    # sample-major: one node's sample writes its incoming links side by side
    rec_cnt = np.empty((cap_q, n_links), dtype=np.int32)
    rec_ddc = np.empty((cap_q, n_links), dtype=np.int32)
    rec_flags = np.empty((cap_q, n_links), dtype=np.int8)
    w = cstate.shape[1]
    rec_state = np.empty((n, cap_q if record_state else 0, w))
    adjs = buf.adjustments
    adj_link = np.array([a.link for a in adjs], dtype=np.int64)
    adj_t = np.array([a.at_s for a in adjs], dtype=np.float64)
    adj_frames = np.array([a.frames for a in adjs], dtype=np.int64)
    adj_done = np.zeros(len(adjs), dtype=np.int64)
    detail = np.zeros(4)

    status = K.simulate(
        step, fpar, ipar, eps0, sys.drift_ppb_per_s * 1e-9, sys.start_s, wander_z,
        seg, seg_k, n_seg,
        samp_m, samp_t, samp_c, samp_des, n_samp,
        cparams, cstate, in_off, in_idx,
        np.ascontiguousarray(links[:, 0]), np.ascontiguousarray(links[:, 1]),
        np.ascontiguousarray(topo.latency_s, dtype=np.float64), sys.link_up_s,
        ls, lf, ring, rec_cnt, rec_ddc, rec_flags, rec_state,
        adj_link, adj_t, adj_frames, adj_done, detail,
    )
    # the trace cuts the segments to those used and shows each field as a
    # [node, segment] view
    ns = max(int(n_seg.max()), 1)
    _zero_tails(n_seg, ns, (seg, seg_k), n_samp, (samp_m, samp_t, samp_c, samp_des, rec_state),
                in_off, in_idx, (rec_cnt, rec_ddc, rec_flags))
    end = until
    if status in (K.ST_FAULT_STOP, K.ST_RANGE, K.ST_SEG_FULL, K.ST_SAMP_FULL):
        end = float(detail[1])
    trace = Trace(
        system=sys, fidelity=fidelity, until_s=end, requested_until_s=until, status=int(status),
        seg=seg[:, :ns], seg_k=seg_k[:, :ns], n_seg=n_seg,
        samp_m=samp_m, samp_t=samp_t, samp_c=samp_c, samp_des=samp_des, n_samp=n_samp,
        rec_cnt=rec_cnt.T, rec_ddc=rec_ddc.T, rec_flags=rec_flags.T, ls=ls, lf=lf,
        cstate=cstate, rec_state=rec_state if record_state else None,
    )
    if status == K.ST_RANGE:
        node = int(detail[0])
        raise SimulationFault(
            f"node {node}: frequency offset {detail[3] * 1e6:.1f} ppm at t={detail[1]:.9g} s "
            f"(cycle {int(detail[2])}) is beyond ±{_MAX_REL * 1e6:.0f} ppm: the controller is "
            f"unstable", trace)
    if status in (K.ST_SEG_FULL, K.ST_SAMP_FULL):
        raise SimulationFault(f"node {int(detail[0])}: run capacity exhausted at "
                              f"t={detail[1]:.9g} s", trace)
    return trace


class Trace:
    """Everything a run produced, as numpy arrays, plus derived views.

    Arrays are indexed ``[node, sample]`` or ``[link, sample]`` where the
    sample index of a link is its receiver's. Per-node arrays are valid up to
    ``n_samp[node]`` (samples) and ``n_seg[node]`` (segments).

    Attributes:
        fidelity: ``"event"`` or ``"cycle"``.
        until_s: the time the run reached (s).
        seg_t, seg_k, seg_rel: float64/int64/float64[n, S] frequency segments:
            start time (s), anchor edge and relative frequency ``f/f0 - 1``.
        samp_t, samp_m, samp_c: float64/int64/float64[n, Q] sample times (s),
            receiver edge of each sample, applied correction (relative).
        counts: int32[L, Q] elastic-buffer count relative to the reference.
        ddc: int32[L, Q] domain difference counter.
        flags: int8[L, Q] the stability detector at each sample, as bits
            (:attr:`stable` and :attr:`settled` unpack them).
        controller_state: float64[n, w] each node's controller state at the end.
        controller_states: float64[n, Q, w] the state after every sample, when
            the run was asked to record it (``record_controller_state``), else None.
    """

    def __init__(self, *, system, fidelity, until_s, requested_until_s, status, seg, seg_k,
                 n_seg, samp_m, samp_t, samp_c, samp_des, n_samp,
                 rec_cnt, rec_ddc, rec_flags, ls, lf, cstate, rec_state=None) -> None:
        self.system = system
        self.fidelity = fidelity
        self.until_s = until_s
        self.requested_until_s = requested_until_s
        self.status = status
        self._seg = seg
        self.seg_k = seg_k
        self.n_seg = n_seg
        self.samp_m = samp_m
        self.samp_t = samp_t
        self.samp_c = samp_c
        self.samp_des = samp_des
        self.n_samp = n_samp
        self.counts = rec_cnt
        self.ddc = rec_ddc
        self.flags = rec_flags
        self.link_state = ls
        self.link_fstate = lf
        self.controller_state = cstate
        self.controller_states = rec_state
        self._stable = None
        self._settled = None

    @property
    def stable(self) -> np.ndarray:
        """int8[L, Q]: 1 where the stability detector reports the link stable."""
        if self._stable is None:
            from ._kernels import FLAG_STABLE

            self._stable = (self.flags & FLAG_STABLE).astype(np.int8)
        return self._stable

    @property
    def settled(self) -> np.ndarray:
        """int8[L, Q]: 1 where the link is stable about a reference within the
        stability margin of zero (``|r| < margin``)."""
        if self._settled is None:
            from ._kernels import FLAG_SETTLED

            self._settled = ((self.flags & FLAG_SETTLED) != 0).astype(np.int8)
        return self._settled

    # -- segments: views of the core's packed rows, one field each ------------
    def _seg_field(self, field: int) -> np.ndarray:
        return self._seg[:, :, field]

    @functools.cached_property
    def seg_hi(self) -> np.ndarray:
        """float64[n, S]: anchor time of each segment, high part (s)."""
        from ._kernels import SG_HI

        return self._seg_field(SG_HI)

    @functools.cached_property
    def seg_lo(self) -> np.ndarray:
        """float64[n, S]: anchor time of each segment, low part (s)."""
        from ._kernels import SG_LO

        return self._seg_field(SG_LO)

    @functools.cached_property
    def seg_P(self) -> np.ndarray:  # noqa: N802 (P, the period, as in the docs)
        """float64[n, S]: period of each segment (s)."""
        from ._kernels import SG_P

        return self._seg_field(SG_P)

    @functools.cached_property
    def seg_rel(self) -> np.ndarray:
        """float64[n, S]: relative frequency ``f/f0 - 1`` of each segment."""
        from ._kernels import SG_REL

        return self._seg_field(SG_REL)

    @functools.cached_property
    def seg_t(self) -> np.ndarray:
        """float64[n, S]: start time of each segment (s), ``seg_hi + seg_lo``."""
        return self.seg_hi + self.seg_lo

    # -- shape ---------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return self.system.n_nodes

    @property
    def links(self) -> np.ndarray:
        return self.system.topology.links

    @property
    def stopped_early(self) -> bool:
        return self.status != 0

    def link_times(self, link: int) -> np.ndarray:
        """float64[q]: sample times (s) of ``link`` (its receiver's samples)."""
        j = int(self.links[link, 1])
        return self.samp_t[j, : self.n_samp[j]]

    def link_counts(self, link: int, *, ddc: bool = False) -> np.ndarray:
        """int32[q]: buffer counts (or domain difference counts) of ``link``."""
        j = int(self.links[link, 1])
        arr = self.ddc if ddc else self.counts
        return arr[link, : self.n_samp[j]]

    def measured(self, link: int) -> np.ndarray:
        """int32[q]: the counts the controller saw on ``link``."""
        return self.link_counts(link, ddc=self.system.measure == "ddc")

    def segments(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """(start times in s, relative frequency) of ``node``'s segments."""
        s = self.n_seg[node]
        return self.seg_t[node, :s], self.seg_rel[node, :s]

    def edge_time(self, node: int, cycle: int) -> float:
        """Exact time (s) of local edge ``cycle`` of ``node`` (as the kernels compute it)."""
        seg_k = self.seg_k[node, : self.n_seg[node]]
        s = int(np.searchsorted(seg_k, cycle, side="left")) - 1
        s = max(s, 0)
        return float(self.seg_hi[node, s] + (self.seg_lo[node, s]
                                             + (cycle - seg_k[s]) * self.seg_P[node, s]))

    # -- results ---------------------------------------------------------------
    @property
    def final_offsets_ppm(self) -> np.ndarray:
        """float64[n]: each node's frequency offset at the end of the run (ppm)."""
        return np.array([self.seg_rel[j, self.n_seg[j] - 1] for j in range(self.n_nodes)]) * 1e6

    @property
    def ugn(self) -> np.ndarray:
        """int64[L]: logical latency λ of each link at the end of the run.

        A frame sent at sender cycle ``s`` is read at receiver cycle ``s + λ``.
        Links that never came up report 0 (see :attr:`link_up`).
        """
        from . import _kernels as K

        ls = self.link_state
        lam = ls[:, K.LS_OCC] - (ls[:, K.LS_ARRK] - 1) + ls[:, K.LS_ADVM]
        return np.where(ls[:, K.LS_UP] == 1, lam, 0)

    @property
    def link_up(self) -> np.ndarray:
        from . import _kernels as K

        return self.link_state[:, K.LS_UP].astype(bool)

    def ugn_matrix(self) -> np.ndarray:
        """int64[n, n] with λ at ``[src, dst]`` and -1 where there is no link."""
        mat = np.full((self.n_nodes, self.n_nodes), -1, dtype=np.int64)
        for l, (i, j) in enumerate(self.links):
            mat[i, j] = self.ugn[l]
        return mat

    @property
    def faults(self) -> list[Fault]:
        """Sticky buffer faults, ordered by time."""
        from . import _kernels as K

        out = []
        ls, lf = self.link_state, self.link_fstate
        for l, (i, j) in enumerate(self.links):
            if ls[l, K.LS_OVF_N] > 0:
                out.append(Fault(int(j), l, int(i), "overflow", float(lf[l, K.LF_OVF_T]),
                                 int(ls[l, K.LS_OVF_M]), int(ls[l, K.LS_OVF_N])))
            if ls[l, K.LS_UNF_N] > 0:
                out.append(Fault(int(j), l, int(i), "underflow", float(lf[l, K.LF_UNF_T]),
                                 int(ls[l, K.LS_UNF_M]), int(ls[l, K.LS_UNF_N])))
        out.sort(key=lambda f: (f.time_s, f.link, f.kind))
        return out

    @property
    def energy(self) -> float:
        """``Σ_i ∫_0^T (f_i/f0 - 1)^2 dt`` over the run (s)."""
        from ..studies.metrics import energy

        return energy(self)

    def summary(self) -> dict:
        """JSON-ready summary of the run (see ``tidesim run --json``)."""
        from ..studies.metrics import summary

        return summary(self)
