"""A slow, frame-by-frame reference model of a bittide system.

Written from the equations of ``docs/model.md`` (and the control laws of
``docs/controllers.md``) only. It shares no code with ``tidesim``'s kernels or
controllers: the clocks, frames, FIFOs, detectors, control laws and actuators
below are its own.

**Time.** Every time (edge times, arrivals, segment starts, sample times) is a
:class:`decimal.Decimal` carried with :data:`PRECISION` significant digits, and
computed from the segment anchors (``E(k) = T[s] + (k - k0[s]) * P[s]`` with
the exact period ``P = 1 / (f0 (1 + rel))``). Its rounding (about 1e-60
relative) is some forty orders of magnitude below anything that matters, so the
model is independent of the core's float64 double-double scheme; exact
fractions would do as well, but their denominators grow with every segment and
make a run of a few thousand edges take minutes.

**Near-ties.** Where two instants that decide something (an arrival and a
read, a sample and a start time, ``t - t_ref`` and a window) lie closer than
:data:`TIE_BAND_PERIODS` of a nominal period but are not equal, the core's
float64 times may order them either way; the model raises :class:`NearTie`
and a test rejects the example. Instants that are exactly equal (``theta0 = 0``
at ``t = 0``, two identical clocks over a link of zero latency) are ordered by
the documented tie rules, as the core does.

**Frames.** Every frame is sent at a sender edge, arrives ``latency`` later,
and is written into a real FIFO of sequence numbers (an ideal or not yet armed
buffer is a plain counter, as the docs define it); every receiver edge reads
one. Nothing is computed in closed form, except the edges at link-up, which the
docs define by the counting functions ``A`` and ``R``.

Floats: offsets, drift, wander, corrections and relative frequencies are
float64, computed with the documented expressions in the documented order, so
that they can be compared with the core's bit for bit.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

import numpy as np

__all__ = [
    "PRECISION",
    "TIE_BAND_PERIODS",
    "AdjustmentSpec",
    "Config",
    "ControllerSpec",
    "Detector",
    "FaultRecord",
    "NearTie",
    "RangeFault",
    "Result",
    "detector_flags",
    "energy_from_epoch",
    "simulate",
]

PRECISION = 60  # significant decimal digits of every time
# Near-tie band, in nominal periods. The core's float64 times are within about
# 1e-18 s of the exact ones in the runs of the tests (one rounding of a time
# below 0.01 s, plus the float64 rounding of each period over a few thousand
# edges), 1e-12 of a period at 1 MHz: a band of 1e-8 periods leaves a margin of
# 1e4 and rejects a fraction of a percent of random examples.
TIE_BAND_PERIODS = Decimal("1e-8")
MAX_REL = 0.05  # |f/f0 - 1| beyond this is an unstable controller (docs/model.md)


class NearTie(Exception):
    """Two deciding instants lie within the tie band: float64 may order them
    either way, so the example cannot be compared exactly."""


class RangeFault(Exception):
    """A node's relative frequency left ``±MAX_REL`` (the core raises
    ``SimulationFault`` there)."""


# --------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ControllerSpec:
    """One of the built-in control laws (docs/controllers.md).

    Attributes:
        kind: ``"p"`` (``c = kp r``), ``"pi"`` (``x += p r``, ``c = kp r + ki x``)
            or ``"pump"`` (``c = kp r + target``); ``r`` is the sum of the
            measurements (frames).
        kp: proportional gain (relative frequency per frame).
        ki: integral gain (relative frequency per frame-tick), PI only.
        period_ticks: the ``p`` of PI's integrator (ticks), PI only.
        target: the pump's steady-state correction (relative), pump only.
    """

    kind: str
    kp: float
    ki: float = 0.0
    period_ticks: int = 1
    target: float = 0.0


@dataclass(frozen=True)
class AdjustmentSpec:
    """A scheduled buffer adjustment: ``frames`` on ``link`` from ``at_s`` (s)."""

    link: int
    at_s: float
    frames: int


@dataclass(frozen=True)
class Config:
    """A bittide system, in the units of ``tidesim.models.System``.

    Attributes:
        links: ``(src, dst)`` of each directed link, in link order.
        latency_s: physical latency of each link (s), float64.
        f_nom_hz: nominal frequency (Hz).
        offsets_ppm, drift_ppb_per_s, theta0, start_s: one float per node.
        wander_ppb_per_sqrt_s: random-walk wander (ppb per sqrt(s)).
        controller: the control law, or ``None`` for free-running clocks.
        update_period_ticks: ``p``, local ticks between samples.
        control_delay_ticks: ``d``, ticks from a sample to the new frequency.
        quantized: FINC/FDEC actuator (else continuous).
        step_ppb: the quantized actuator's step (ppb).
        depth: buffer depth in frames (0: ideal).
        reference: the buffer's reference occupancy (frames).
        arm: ``"link_up"``, ``"stable"`` (the link's detector) or
            ``"all_stable"`` (once every link's detector said stable at once).
        auto_centre: auto-centre threshold (frames) or ``None``.
        adjustments: scheduled adjustments.
        measure: ``"buffer"`` or ``"ddc"``.
        margin: stability margin (frames).
        window_s: stability window (s).
        seed: the wander's seed.
        sample_at: ``"edge"``: node ``j`` samples at its edges ``⌈θ0⌉ + q p``
            and changes frequency at edge ``m + d``; ``"phase"``: it samples
            at phase ``θ0 + q p`` and changes at phase ``θ0 + q p + d``.
    """

    links: tuple[tuple[int, int], ...]
    latency_s: tuple[float, ...]
    f_nom_hz: float
    offsets_ppm: tuple[float, ...]
    drift_ppb_per_s: tuple[float, ...]
    theta0: tuple[float, ...]
    start_s: tuple[float, ...]
    wander_ppb_per_sqrt_s: float = 0.0
    controller: ControllerSpec | None = None
    update_period_ticks: int = 25_000
    control_delay_ticks: int = 0
    quantized: bool = False
    step_ppb: float = 10.0
    depth: int = 32
    reference: int = 16
    arm: str = "link_up"
    auto_centre: int | None = None
    adjustments: tuple[AdjustmentSpec, ...] = ()
    measure: str = "buffer"
    margin: int = 4
    window_s: float = 2.0
    seed: int = 0
    sample_at: str = "edge"

    @property
    def n_nodes(self) -> int:
        return len(self.offsets_ppm)


# ------------------------------------------------------------------------- results


@dataclass
class FaultRecord:
    """A sticky buffer flag: ``kind`` on ``link`` (``src -> node``), first at
    ``time_s`` (s) and receiver ``cycle``, ``count`` times in all."""

    node: int
    link: int
    src: int
    kind: str
    time_s: Decimal
    cycle: int
    count: int


@dataclass
class NodeResult:
    """One node's samples and segments.

    Attributes:
        samp_t: sample times (s); samp_m: the receiver edge of each sample;
        samp_c: the applied correction after each sample (relative);
        seg_k, seg_t, seg_rel: the last edge at or before each change, its time (s), relative
            frequency of each segment.
    """

    samp_t: list[Decimal] = field(default_factory=list)
    samp_m: list[int] = field(default_factory=list)
    samp_c: list[float] = field(default_factory=list)
    seg_k: list[int] = field(default_factory=list)
    seg_t: list[Decimal] = field(default_factory=list)
    seg_rel: list[float] = field(default_factory=list)


@dataclass
class LinkResult:
    """One link's record, one entry per sample of its receiver (0 before link-up).

    Attributes:
        counts, ddc: buffer count (relative to the reference) and domain
            difference count (frames).
        stable, settled: the detector's flags (0/1).
        up: whether the link came up; ugn: its logical latency at the end,
            None unless its buffer is armed (before that the count is only a
            counter, and a frame has no fixed cycle to be read at).
    """

    counts: list[int] = field(default_factory=list)
    ddc: list[int] = field(default_factory=list)
    stable: list[int] = field(default_factory=list)
    settled: list[int] = field(default_factory=list)
    up: bool = False
    ugn: int | None = None


@dataclass
class Result:
    """Everything the reference computed.

    Attributes:
        nodes: per node; links: per link.
        faults: the sticky flags, sorted by (time, link, kind).
        end_s: the time the run reached (``until``, or the stopping sample).
        stopped_early: the run stopped at a fault.
    """

    nodes: list[NodeResult]
    links: list[LinkResult]
    faults: list[FaultRecord]
    end_s: Decimal
    stopped_early: bool


def energy_from_epoch(result: Result, epoch: Decimal) -> float:
    """``Σ_j ∫_epoch^T (f_j/f0 - 1)^2 dt`` (s), ``T = result.end_s``.

    The clocks ran at their intrinsic frequency before ``t = 0``: segment 0
    counts from ``epoch`` (``<= 0``; Callisto.jl's ``-10 ×`` the largest
    latency), segment ``s > 0`` from its anchor time to the next anchor (or
    ``T``). This is the one place that fixes the energy's interval.
    """
    end = result.end_s
    total = Decimal(0)
    for node in result.nodes:
        starts = [epoch] + node.seg_t[1:] + [end]
        for s, rel in enumerate(node.seg_rel):
            a, b = starts[s], min(starts[s + 1], end)
            if b > a:
                total += Decimal(rel) ** 2 * (b - a)
    return float(total)


# ------------------------------------------------------------------ stability detector


class Detector:
    """The rig's stability detector on one link (docs/model.md).

    ``r`` starts at 0 and ``t_r`` at the link-up time; at each sample ``(t, v)``
    the reference is re-taken when ``|v - r| > margin``; the link is stable when
    ``t - t_r >= window`` and settled when also ``|r| < margin``.

    Args:
        t_up: link-up time (s), any number type.
        margin: frames. window_s: seconds, of the same type as the times.
        at_least: ``at_least(x, y)`` decides ``x >= y`` (the model's checks
            near-ties there); plain ``>=`` by default.
    """

    def __init__(self, t_up, margin: int, window_s, at_least=None) -> None:
        self.r = 0
        self.t_r = t_up
        self.margin = margin
        self.window_s = window_s
        self.at_least = at_least if at_least is not None else (lambda x, y: x >= y)

    def update(self, t, v: int) -> tuple[bool, bool]:
        """Feed the measurement ``v`` (frames) at time ``t``; returns (stable, settled)."""
        if abs(v - self.r) > self.margin:
            self.r = v
            self.t_r = t
        stable = bool(self.at_least(t - self.t_r, self.window_s))
        return stable, stable and abs(self.r) < self.margin


def detector_flags(values, times, t_up: float, margin: int,
                   window_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run :class:`Detector` over a link's series, in float64 like the core.

    Samples before ``t_up`` (the link is not up yet) are not fed to the
    detector: they report not stable, reference 0.

    Args:
        values: int[q] measurements (frames). times: float64[q] sample times (s).
        t_up: the link-up time (s). margin: frames. window_s: seconds.

    Returns:
        ``(stable, settled, reference)``: bool[q], bool[q], int64[q].
    """
    det = Detector(float(t_up), int(margin), float(window_s))
    stable, settled, ref = [], [], []
    for t, v in zip(times, values, strict=True):
        a, b = det.update(float(t), int(v)) if t >= t_up else (False, False)
        stable.append(a)
        settled.append(b)
        ref.append(det.r)
    return (np.array(stable, dtype=bool), np.array(settled, dtype=bool),
            np.array(ref, dtype=np.int64))


# -------------------------------------------------------------------------- clocks


def _period(f0: Decimal, rel: float) -> Decimal:
    """The exact period ``1 / (f0 (1 + rel))`` (s) of a segment."""
    return 1 / (f0 * (1 + Decimal(rel)))


class _Clock:
    """One node's clock: its phase, piecewise linear in time, and a cache of edge times.

    Segment ``s`` starts at phase ``phase[s]`` (any real number: a change can
    fall between two edges) and time ``t[s]``; edge ``k`` belongs to the last
    segment starting before it (``phase[s] < k``; segment 0 also every edge
    before), so an edge exactly at a change keeps the old period.
    """

    def __init__(self, f0: Decimal, eps: float, theta0: float, at_phase: bool) -> None:
        self.f0 = f0
        # where segment 0 is said to start: any phase at or before the first
        # change; the first edge at or after t = 0, or edge 0 when sampling at
        # phase (whose first sample, at t = 0, is just after it)
        k_a = 1 if theta0 > 0 and not at_phase else 0
        p0 = _period(f0, eps)
        self.phase = [Decimal(k_a)]
        self.seg_t = [(k_a - Decimal(theta0)) * p0]
        self.seg_P = [p0]
        self.seg_rel = [eps]
        # times of the edges base, base + 1, ...; cut back when a segment is added
        self._base = k_a
        self._times: list[Decimal] = []

    @property
    def seg_k(self) -> list[int]:
        """The last whole edge at or before each segment's start."""
        return [math.floor(x) for x in self.phase]

    def at_phase(self, x: Decimal) -> Decimal:
        """Time (s) at which the phase is ``x`` (cycles)."""
        s = max(bisect.bisect_left(self.phase, x) - 1, 0)
        return self.seg_t[s] + (x - self.phase[s]) * self.seg_P[s]

    def time(self, k: int) -> Decimal:
        """Time (s) of edge ``k``."""
        idx = k - self._base
        if idx < 0:
            return self.at_phase(Decimal(k))
        times = self._times
        while len(times) <= idx:
            times.append(self.at_phase(Decimal(self._base + len(times))))
        return times[idx]

    def add_segment(self, phase: Decimal, rel: float) -> None:
        """A new frequency from phase ``phase`` on."""
        t = self.at_phase(phase)
        self.phase.append(phase)
        self.seg_t.append(t)
        self.seg_P.append(_period(self.f0, rel))
        self.seg_rel.append(rel)
        del self._times[max(math.floor(phase) - self._base + 1, 0):]

    def last_edge(self, x: Decimal, separated) -> int:
        """The largest ``k`` with ``time(k) <= x``; ``separated`` checks near-ties."""
        s = max(bisect.bisect_right(self.seg_t, x) - 1, 0)
        k = math.floor(self.phase[s] + (x - self.seg_t[s]) / self.seg_P[s])
        while self.time(k + 1) <= x:
            k += 1
        while self.time(k) > x:
            k -= 1
        separated(self.time(k), x)
        separated(self.time(k + 1), x)
        return k


# --------------------------------------------------------------------------- links


class _Link:
    """One directed link and the elastic buffer at its receiver."""

    def __init__(self, index: int, src: int, dst: int, latency: Decimal, t_up: Decimal) -> None:
        self.index, self.src, self.dst = index, src, dst
        self.latency = latency
        self.t_up = t_up
        self.up = False
        self.armed = False
        self.last_arrival = 0  # A: the last frame (its sender edge) arrived
        self.last_read = 0  # R: the last receiver edge (read)
        self.occ = 0  # frames in the buffer
        self.fifo: deque[int] | None = None  # sequence numbers, armed finite buffers only
        self.gapless = True  # no write dropped since the last centring: reads are m - λ
        self.pend = 0  # pending adjustment: > 0 reads to suppress, < 0 writes to drop
        self.a0_r0 = 0  # A - R at link-up (the ddc's zero)
        self.detector: Detector | None = None
        self.ovf_n = self.unf_n = 0
        self.ovf_t: Decimal | None = None
        self.unf_t: Decimal | None = None
        self.ovf_m = self.unf_m = 0
        self.record = LinkResult()

    @property
    def lam(self) -> int:
        """Logical latency λ = occupancy - A + R."""
        return self.occ - self.last_arrival + self.last_read


class _NodeState:
    """A node's controller, actuator and wander state, and its record."""

    def __init__(self, law, rng) -> None:
        self.law = law
        self.rng = rng
        self.c = 0.0  # applied correction
        self.z = 0  # quantized actuator: steps applied
        self.wander = 0.0
        self.record = NodeResult()


def _law(spec: ControllerSpec | None):
    """The control law as a function of the measurements (docs/controllers.md)."""
    if spec is None:
        return None
    kp, ki, target = spec.kp, spec.ki, spec.target
    p = float(spec.period_ticks)

    def total(meas: list[float]) -> float:
        r = 0.0
        for v in meas:
            r += v
        return r

    if spec.kind == "p":
        return lambda meas: kp * total(meas)
    if spec.kind == "pump":
        return lambda meas: kp * total(meas) + target
    if spec.kind == "pi":
        state = {"x": 0.0}

        def pi(meas: list[float]) -> float:
            r = total(meas)
            state["x"] = state["x"] + p * r
            return kp * r + ki * state["x"]

        return pi
    raise ValueError(f"unknown controller kind {spec.kind!r}")


# ----------------------------------------------------------------------------- run


class _Run:
    """One run: the nodes' samples in global time order (ties by node index),
    each advancing its incoming links frame by frame to its own edge."""

    def __init__(self, cfg: Config, check_ties: bool) -> None:
        self.cfg = cfg
        n = cfg.n_nodes
        self.f0 = Decimal(cfg.f_nom_hz)
        self.band = TIE_BAND_PERIODS / self.f0 if check_ties else Decimal(0)
        self.eps = [float(o) * 1e-6 for o in cfg.offsets_ppm]
        self.drift = [float(x) * 1e-9 for x in cfg.drift_ppb_per_s]
        self.sigma = float(cfg.wander_ppb_per_sqrt_s) * 1e-9
        self.clocks = [_Clock(self.f0, self.eps[j], float(cfg.theta0[j]),
                              cfg.sample_at == "phase") for j in range(n)]
        self.start = [Decimal(float(s)) for s in cfg.start_s]
        self.nodes = [
            _NodeState(_law(cfg.controller),
                       np.random.default_rng([cfg.seed, j]) if self.sigma > 0 else None)
            for j in range(n)
        ]
        self.links = [
            _Link(l, i, j, Decimal(float(cfg.latency_s[l])), max(self.start[i], self.start[j]))
            for l, (i, j) in enumerate(cfg.links)
        ]
        # incoming links of each node, in order of the sending node
        self.incoming = [sorted((lk for lk in self.links if lk.dst == j), key=lambda lk: lk.src)
                         for j in range(n)]
        self.pending_adj = [[a for a in cfg.adjustments if a.link == l]
                            for l in range(len(self.links))]
        self.window = Decimal(float(cfg.window_s))
        # arm = "all_stable": how many links are stable now, and whether all were at once
        self.stable_now: set[int] = set()
        self.all_stable_seen = False
        # sampling at phase: samples and changes fall theta0 after whole edges
        self.frac = [Decimal(float(x)) if cfg.sample_at == "phase" else Decimal(0)
                     for x in cfg.theta0]

    # -- decisions on instants, with the near-tie check --------------------------
    def separated(self, x: Decimal, y: Decimal) -> None:
        """Raise :class:`NearTie` when ``x`` and ``y`` differ by less than the band."""
        if x != y and abs(x - y) < self.band:
            raise NearTie(f"{x} and {y} are {abs(x - y)} s apart")

    def le(self, x: Decimal, y: Decimal) -> bool:
        self.separated(x, y)
        return x <= y

    def ge(self, x: Decimal, y: Decimal) -> bool:
        self.separated(x, y)
        return x >= y

    # -- the buffer, frame by frame ---------------------------------------------
    def write(self, lk: _Link, t: Decimal) -> None:
        """The frame ``A + 1`` arrives at ``t``."""
        lk.last_arrival += 1
        if lk.armed and lk.pend < 0:  # a -N adjustment drops it
            lk.pend += 1
            lk.gapless = False
            return
        if lk.fifo is not None:
            if lk.occ == self.cfg.depth:
                lk.ovf_n += 1
                lk.gapless = False
                if lk.ovf_n == 1:
                    # the dropped write comes just before the next read
                    lk.ovf_t, lk.ovf_m = t, lk.last_read + 1
                return
            lk.fifo.append(lk.last_arrival)
        lk.occ += 1

    def read(self, lk: _Link, t: Decimal) -> None:
        """The receiver's edge ``R + 1``, at ``t``, reads one frame."""
        lk.last_read += 1
        if lk.armed and lk.pend > 0:  # a +N adjustment suppresses it
            lk.pend -= 1
            return
        if lk.fifo is not None:
            if lk.occ == 0:
                lk.unf_n += 1
                if lk.unf_n == 1:
                    lk.unf_t, lk.unf_m = t, lk.last_read
                return
            seq = lk.fifo.popleft()
            lk.occ -= 1
            # logical synchrony: the frame read at receiver cycle m was sent at m - λ
            if lk.gapless and seq != lk.last_read - lk.lam:
                raise AssertionError(f"link {lk.index}: read frame {seq} at cycle {lk.last_read}, "
                                     f"λ = {lk.lam}")
            return
        lk.occ -= 1

    def advance(self, lk: _Link, t_lim: Decimal, m_lim: int) -> None:
        """Every arrival at or before ``t_lim`` and every read through edge
        ``m_lim``, in time order; an arrival at a read's instant is written first."""
        snd, rcv = self.clocks[lk.src], self.clocks[lk.dst]
        while True:
            a_t = snd.time(lk.last_arrival + 1) + lk.latency
            can_write = self.le(a_t, t_lim)
            if lk.last_read < m_lim:
                r_t = rcv.time(lk.last_read + 1)
                if can_write and self.le(a_t, r_t):
                    self.write(lk, a_t)
                else:
                    self.read(lk, r_t)
            elif can_write:
                self.write(lk, a_t)
            else:
                return

    def centre(self, lk: _Link) -> None:
        """Occupancy ``reference``: the most recent arrivals; λ re-taken."""
        ref = self.cfg.reference
        lk.occ = ref
        lk.pend = 0
        lk.gapless = True
        if self.cfg.depth > 0 and lk.armed:
            lk.fifo = deque(range(lk.last_arrival - ref + 1, lk.last_arrival + 1))

    def bring_up(self, lk: _Link) -> None:
        """Link-up, computed at ``t_up`` (docs: A0, R0 and ``reference`` frames)."""
        latency = lk.latency
        lk.last_arrival = self.clocks[lk.src].last_edge(
            lk.t_up - latency, lambda x, y: self.separated(x + latency, y + latency))
        lk.last_read = self.clocks[lk.dst].last_edge(lk.t_up, self.separated)
        lk.a0_r0 = lk.last_arrival - lk.last_read
        lk.armed = self.cfg.arm == "link_up"
        self.centre(lk)
        lk.detector = Detector(lk.t_up, self.cfg.margin, self.window, at_least=self.ge)
        lk.up = True

    # -- one sample ----------------------------------------------------------
    def sample(self, j: int, m: int, t: Decimal) -> None:
        cfg = self.cfg
        node = self.nodes[j]
        meas: list[float] = []
        for lk in self.incoming[j]:
            rec = lk.record
            if not lk.up and self.le(lk.t_up, t):
                self.bring_up(lk)
            if not lk.up:
                rec.counts.append(0)
                rec.ddc.append(0)
                rec.stable.append(0)
                rec.settled.append(0)
                continue
            self.advance(lk, t, m)
            count = lk.occ - cfg.reference
            ddc = lk.last_arrival - lk.last_read - lk.a0_r0
            v = ddc if cfg.measure == "ddc" else count
            stable, settled = lk.detector.update(t, v)
            if stable:
                self.stable_now.add(lk.index)
            else:
                self.stable_now.discard(lk.index)
            if len(self.stable_now) == len(self.links):
                self.all_stable_seen = True
            if not lk.armed and ((cfg.arm == "stable" and stable)
                                 or (cfg.arm == "all_stable" and self.all_stable_seen)):
                lk.armed = True
                self.centre(lk)
                count = 0
                if cfg.measure == "buffer":
                    v = 0
            rec.counts.append(count)
            rec.ddc.append(ddc)
            rec.stable.append(int(stable))
            rec.settled.append(int(settled))
            if lk.armed:
                due = [a for a in self.pending_adj[lk.index] if self.le(Decimal(a.at_s), t)]
                for a in due:
                    lk.pend += a.frames
                    self.pending_adj[lk.index].remove(a)
                if cfg.auto_centre is not None and lk.pend == 0 and abs(count) > cfg.auto_centre:
                    lk.pend = -count
            meas.append(float(v))

        if node.law is not None and self.ge(t, self.start[j]):
            des = node.law(meas)
            if cfg.quantized:
                step = cfg.step_ppb * 1e-9
                c = node.z * step
                if des > c + step / 2:
                    node.z += 1
                elif des < c - step / 2:
                    node.z -= 1
                node.c = node.z * step
            else:
                node.c = des
        if node.rng is not None:
            z = float(node.rng.standard_normal())
            node.wander = node.wander + self.sigma * math.sqrt(
                cfg.update_period_ticks / cfg.f_nom_hz) * z
        rel = self.eps[j] + self.drift[j] * float(t) + node.wander + node.c
        if abs(rel) > MAX_REL:
            raise RangeFault(f"node {j}: rel {rel} at t = {t}")
        clock = self.clocks[j]
        if rel != clock.seg_rel[-1]:
            clock.add_segment(self.frac[j] + m + cfg.control_delay_ticks, rel)
        node.record.samp_t.append(t)
        node.record.samp_m.append(m)
        node.record.samp_c.append(node.c)

    # -- the whole run ---------------------------------------------------------
    def run(self, until: Decimal, stop_on_fault: bool) -> Result:
        p = self.cfg.update_period_ticks
        # the first sample: the first edge at or after t = 0, or phase theta0 (t = 0)
        heap = [(c.at_phase(self.frac[j] + m0), j, m0) for j, c in enumerate(self.clocks)
                for m0 in [0 if self.cfg.sample_at == "phase" else c.seg_k[0]]]
        heapq.heapify(heap)
        end, stopped = until, False
        while heap and self.le(heap[0][0], until):
            t, j, m = heapq.heappop(heap)
            self.sample(j, m, t)
            heapq.heappush(heap, (self.clocks[j].at_phase(self.frac[j] + m + p), j, m + p))
            if stop_on_fault and any(lk.ovf_n or lk.unf_n for lk in self.incoming[j]):
                self.separated(heap[0][0], t)  # the next sample, in the core's order too
                end, stopped = t, True
                break
        # a run that stopped ends with its stopping sample; one that reached
        # `until` brings every link to `until`
        for lk in [] if stopped else self.links:
            if not lk.up and self.le(lk.t_up, end):
                self.bring_up(lk)
            if lk.up:
                self.advance(lk, end, self.clocks[lk.dst].last_edge(end, self.separated))
        return self.result(end, stopped)

    def result(self, end: Decimal, stopped: bool) -> Result:
        faults = []
        for lk in self.links:
            lk.record.up = lk.up
            lk.record.ugn = lk.lam if lk.up and lk.armed else None
            if lk.ovf_n:
                faults.append(FaultRecord(lk.dst, lk.index, lk.src, "overflow", lk.ovf_t,
                                          lk.ovf_m, lk.ovf_n))
            if lk.unf_n:
                faults.append(FaultRecord(lk.dst, lk.index, lk.src, "underflow", lk.unf_t,
                                          lk.unf_m, lk.unf_n))
        faults.sort(key=lambda f: (f.time_s, f.link, f.kind))
        nodes = []
        for node, clock in zip(self.nodes, self.clocks, strict=True):
            rec = node.record
            rec.seg_k, rec.seg_t, rec.seg_rel = clock.seg_k, clock.seg_t, clock.seg_rel
            nodes.append(rec)
        return Result(nodes=nodes, links=[lk.record for lk in self.links], faults=faults,
                      end_s=end, stopped_early=stopped)


def simulate(cfg: Config, until_s: float, *, stop_on_fault: bool = False,
             check_ties: bool = True) -> Result:
    """Run the reference model from ``t = 0`` to ``until_s``.

    Args:
        cfg: the system.
        until_s: end time (s); samples at ``t <= until_s`` are processed.
        stop_on_fault: end with the first sample that finds a fault flag on one
            of its node's incoming links.
        check_ties: raise :class:`NearTie` at near-ties (off: decide them
            exactly, e.g. for systems built to have exact ties).

    Returns:
        The :class:`Result`.

    Raises:
        NearTie: two deciding instants are within the tie band.
        RangeFault: a node's frequency left ``±MAX_REL``.
    """
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return _Run(cfg, check_ties).run(Decimal(float(until_s)), stop_on_fault)
