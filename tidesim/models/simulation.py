"""A run in progress: :class:`Simulation`, the kernel state with its owner.

A :class:`~tidesim.models.System` is immutable input; :meth:`System.start`
gives a :class:`Simulation` that holds every node's clock and controller,
every link's buffer, the records and the summary, and advances them in
steps. Advancing in pieces is bit-identical to advancing at once, so
calendars, node-process backends and progress bars can all drive the core
through this one seam.

Lifecycle::

    >>> from tidesim.models import System, Topology
    >>> from tidesim.controllers import PI
    >>> system = System(Topology.complete(3, latency_s=1e-8), offsets_ppm=[-50, 0, 50],
    ...                 controller=PI(kp=1e-7, ki=1e-13), update_period_ticks=25_000)
    >>> sim = system.start(fidelity="event", record="summary")
    >>> for t in (0.01, 0.02, 0.03):
    ...     _ = sim.advance(t)                 # any number of steps
    >>> sim.time_s
    0.03
    >>> trace = sim.trace()                    # a snapshot; the run can go on
    >>> trace.until_s, trace.record
    (0.03, 'summary')

What is recorded (``record``):

* ``"full"``: every sample of every node and link, and the whole
  frequency-segment history (waveforms, plots, per-sample checks);
* an integer ``N >= 1``: every ``N``-th sample of each node; no segment
  history (``1`` is ``"full"``);
* ``"summary"``: nothing per sample; only the final state and the summary
  the core accumulates while running (settle time, energy, spread,
  largest counts, faults, logical latencies). Memory does not grow with
  simulated time.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from ..errors import ConfigError, SimulationFault
from . import _layout as K
from .parts import ARM_KINDS
from .trace import Trace, record_name

__all__ = ["FIDELITIES", "MAX_REL", "RECORD_MODES", "Simulation", "parse_record"]

FIDELITIES = ("event", "cycle")
RECORD_MODES = ("full", "summary")
MAX_REL = 0.05
"""A node whose ``|f/f0 - 1|`` exceeds 5 % is a fault (an unstable controller)."""

_MAX_EDGES = 2.0**62  # edge numbers are int64
_WINDOW = 512  # segment slots per node when only a window of history is kept, at most
_WINDOW_SLOTS = 1 << 16  # and in all (2 MiB, cache-sized): large systems compact more often
_WANDER_DRAWS = 4096  # wander draws per node kept ahead


def parse_record(value) -> int:
    """Records every how many samples: ``"full"`` is 1, ``"summary"`` 0, ``N`` is N.

    Raises:
        ConfigError: (``run.record``) anything else.
    """
    if value == "full":
        return 1
    if value == "summary":
        return 0
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise ConfigError("run.record", value,
                      "must be 'full', 'summary' or an integer N >= 1 (every N-th sample)")


def _kernels():
    """The compiled kernels, loaded (or compiled) on first use, not on import."""
    from . import _kernels

    return _kernels


@functools.cache
def _advance():
    """The core kernel's compiled entry point (no per-call typing of its
    arguments: a node-by-node run calls it thousands of times a second)."""
    from .._jit import entry_point

    return entry_point(_kernels().advance)


def _memory_bytes() -> float:
    """Physical memory of this machine (bytes), or infinity when unknown."""
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return math.inf


class Simulation:
    """The state of a run of a :class:`~tidesim.models.System`, advanced in steps.

    Create it with :meth:`System.start`. :meth:`advance` moves it to a later
    time (any number of calls); :meth:`trace` returns the run so far as a
    :class:`~tidesim.models.Trace`. The same inputs give bit-identical
    results however the run is cut into steps.

    Attributes:
        system: the system being run.
        fidelity: ``"event"`` or ``"cycle"``.
        record: ``"full"``, ``"summary"`` or N (every N-th sample).
        time_s: the time the run has reached (s).
        stopped: True once the run stopped at a fault (``stop_on_fault``) or
            failed; it cannot be advanced further.
    """

    def __init__(self, system, *, fidelity: str, every: int, stop_on_fault: bool,
                 record_controller_state: bool) -> None:
        self.system = system
        self.fidelity = fidelity
        self._every = every
        self.record = record_name(every)
        self.time_s = 0.0
        self.stopped = False
        self._requested = 0.0  # the time the last advance was asked to reach
        self._status = K.ST_OK
        self._shared = False  # a trace holds views of the record and segment arrays
        topo = system.topology
        n = topo.n_nodes
        links = topo.links
        n_links = links.shape[0]
        f0 = system.f_nom_hz
        p = system.update_period_ticks
        self._p_s_min = p / (f0 * (1 + MAX_REL))  # shortest time between two samples
        eps0 = system.offsets_ppm * 1e-6
        lat = np.ascontiguousarray(topo.latency_s, dtype=np.float64)
        self._lat_max = float(lat.max(initial=0.0))
        # the energy integrals start here (Callisto.jl's epoch)
        self._epoch = -10.0 * self._lat_max

        # --- parameters
        ctl = system.compile_controller()
        if ctl is not None:
            step, cparams, cstate = ctl.step, ctl.params.copy(), ctl.initial_states(n)
        else:
            from ..controllers._contract import no_control_step

            step, cparams, cstate = no_control_step, np.zeros(3), np.zeros((n, 1))
        if cparams.size == 0:
            cparams = np.zeros(1)
        from .._jit import function_pointer
        from ..controllers._contract import STEP_SIGNATURE

        # by address: a dispatcher argument is looked up anew on every advance
        self._step = function_pointer(step, STEP_SIGNATURE)
        P0 = 1.0 / (f0 * (1.0 + eps0))
        ipar = np.zeros(K.N_IPAR, dtype=np.int64)
        buf = system.buffer
        depth = buf.depth
        ipar[K.IP_P] = p
        ipar[K.IP_D] = system.control_delay_ticks
        ipar[K.IP_ACT] = 1 if system.actuator.kind == "quantized" else 0
        ipar[K.IP_DEPTH] = depth
        ipar[K.IP_REF] = buf.reference_frames
        ipar[K.IP_ARM] = ARM_KINDS.index(buf.arm)
        ipar[K.IP_AUTO] = -1 if buf.auto_centre is None else buf.auto_centre
        ipar[K.IP_MEAS_DDC] = 1 if system.measure == "ddc" else 0
        ipar[K.IP_MARGIN] = system.stability.margin
        ipar[K.IP_CYCLE] = 1 if fidelity == "cycle" else 0
        ipar[K.IP_STOP] = 1 if stop_on_fault else 0
        ipar[K.IP_HAS_CTL] = 1 if ctl is not None else 0
        ipar[K.IP_EVERY] = every
        ipar[K.IP_SAMPLE_PHASE] = 1 if system.sample_at == "phase" else 0
        ipar[K.IP_OWN] = -1
        fpar = np.zeros(K.N_FPAR)
        fpar[K.FP_F0] = f0
        fpar[K.FP_WANDER] = system.wander_ppb_per_sqrt_s * 1e-9
        fpar[K.FP_STEP] = system.actuator.step_ppb * 1e-9
        fpar[K.FP_MAXREL] = MAX_REL
        fpar[K.FP_WINDOW] = system.stability.window_s
        fpar[K.FP_LATMAX] = self._lat_max
        # the longest period any segment can have: a later one keeps |rel| <= MAX_REL
        fpar[K.FP_PMAX] = max(1.0 / (f0 * (1.0 - MAX_REL)), float(P0.max()))
        in_off, in_idx = topo.incoming()
        src = np.ascontiguousarray(links[:, 0])
        adjs = buf.adjustments
        self._P = K.Params(
            fpar=fpar, ipar=ipar, eps0=eps0,
            drift=np.ascontiguousarray(system.drift_ppb_per_s * 1e-9),
            start_t=np.ascontiguousarray(system.start_s, dtype=np.float64),
            in_off=in_off, in_idx=in_idx,
            # sender and latency in the order a node reads its links: loaded
            # beside the link, not after it
            in_src=np.ascontiguousarray(src[in_idx]), in_lat=np.ascontiguousarray(lat[in_idx]),
            src=src, dst=np.ascontiguousarray(links[:, 1]), lat=lat,
            t_up=np.ascontiguousarray(system.link_up_s, dtype=np.float64), cparams=cparams,
            adj_link=np.array([a.link for a in adjs], dtype=np.int64),
            adj_t=np.array([a.at_s for a in adjs], dtype=np.float64),
            adj_frames=np.array([a.frames for a in adjs], dtype=np.int64),
            theta0=np.ascontiguousarray(system.theta0, dtype=np.float64))

        # --- nodes: segment 0 is anchored at the first edge at or after t = 0;
        # sampling at phase, at edge 0 (at or before t = 0), the edge of the
        # first sample, so that every change comes after the anchor
        slots = min(_WINDOW, max(16, _WINDOW_SLOTS // n))
        seg = np.empty((n, slots, K.N_SG))
        seg_k = np.empty((n, slots), dtype=np.int64)
        phase = system.sample_at == "phase"
        k_a = np.where((system.theta0 > 0.0) & (not phase), 1, 0).astype(np.int64)
        seg[:, 0, K.SG_P] = P0
        seg[:, 0, K.SG_HI] = (k_a - system.theta0) * P0
        seg[:, 0, K.SG_LO] = 0.0
        seg[:, 0, K.SG_REL] = eps0
        seg_k[:, 0] = k_a
        # the first sample: at the first edge at or after t = 0, or (sampling
        # at phase theta0 + q p) at t = 0 itself, before edge 0's successor
        first_m = np.zeros(n, dtype=np.int64) if phase else k_a.copy()
        first_t = np.zeros(n) if phase else np.ascontiguousarray(seg[:, 0, K.SG_HI])
        order_t, order_node = _kernels().order_start(first_t)
        self._N = K.NodeState(
            seg=seg, seg_k=seg_k, n_seg=np.ones(n, dtype=np.int64),
            seg_base=np.zeros(n, dtype=np.int64), corr=np.zeros(n), wander=np.zeros(n),
            zq=np.zeros(n, dtype=np.int64), next_m=first_m, n_samp=np.zeros(n, dtype=np.int64),
            cstate=cstate, order_t=order_t, order_node=order_node,
            sc=np.zeros(K.N_SC, dtype=np.int64), detail=np.zeros(4))

        # --- links: one link's fields share a row (and cache line)
        ls = np.zeros((n_links, K.N_LS), dtype=np.int64)
        ls[:, K.LS_ARM_M] = -1
        lf = np.full((n_links, K.N_LF), np.nan)
        ring = np.zeros((n_links, max(depth, 1) if fidelity == "cycle" else 1), dtype=np.int64)
        self._L = K.LinkState(ls=ls, lf=lf, ring=ring,
                              adj_done=np.zeros(len(adjs), dtype=np.int64))

        # --- records and wander draws
        self._w = cstate.shape[1]
        self._keep_state = bool(record_controller_state) and every > 0
        self._rng = None
        z = np.zeros((n, 1))
        if system.wander_ppb_per_sqrt_s > 0:
            # one stream per node, so a node's wander does not depend on the run length
            self._rng = [np.random.default_rng([system.seed, j]) for j in range(n)]
            z = np.stack([g.standard_normal(_WANDER_DRAWS) for g in self._rng])
        self._R = self._new_record(0, z, np.zeros(n, dtype=np.int64))

        # --- the energy integrals, carried across calls (see _integrate)
        self._e_node = np.zeros(n)
        self._e_next = np.zeros(n, dtype=np.int64)
        sp_c = float(np.mean(eps0))
        x = eps0 - sp_c
        self._sp_state = np.array([self._epoch, x.sum(), (x * x).sum(), 0.0, sp_c])
        self._sp_ptr = np.ones(n, dtype=np.int64)
        # where in a cycle frequency changes fall: at whole edges, or at theta0
        self._frac = (np.ascontiguousarray(system.theta0, dtype=np.float64) if phase
                      else np.zeros(n))

    # ------------------------------------------------------------------ storage
    def _new_record(self, rows: int, wander_z: np.ndarray, z0: np.ndarray) -> K.Record:
        n, n_links = self.system.n_nodes, self.system.topology.links.shape[0]
        # left uninitialised: the core writes every row it counts, and
        # trace() zeroes the rest (a sweep reusing freed heap clears it once)
        return K.Record(
            row0=np.zeros(n, dtype=np.int64),
            samp_m=np.empty((n, rows), dtype=np.int64), samp_t=np.empty((n, rows)),
            samp_c=np.empty((n, rows)), samp_des=np.empty((n, rows)),
            cnt=np.empty((rows, n_links), dtype=np.int32),
            ddc=np.empty((rows, n_links), dtype=np.int32),
            flags=np.empty((rows, n_links), dtype=np.int8),
            state=np.empty((n, rows if self._keep_state else 0, self._w)),
            wander_z=wander_z, z0=z0)

    def _rows_for(self, until: float) -> int:
        """Record rows a node needs to reach ``until`` (at the fastest rate allowed)."""
        if self._every == 0:
            return 0
        f0 = self.system.f_nom_hz
        samples = math.ceil(until * f0 * (1 + MAX_REL) / self.system.update_period_ticks) + 3
        return -(-samples // self._every)

    def _bytes_per_row(self) -> int:
        n, n_links = self.system.n_nodes, self.system.topology.links.shape[0]
        per = n * 32 + n_links * 9 + (n * 8 * self._w if self._keep_state else 0)
        if self._every == 1:
            per += n * (K.N_SG * 8 + 8)  # the segment history grows as fast
        return per

    def reserve(self, until_s: float) -> None:
        """Make room, once, for every record row and segment up to ``until_s``.

        :meth:`advance` does this itself; a caller that will advance in many
        small steps to ``until_s`` (a progress bar) calls it first, so the
        records grow once, and a recording too large for this machine is
        refused before anything runs.

        Raises:
            ConfigError: the recording up to ``until_s`` would not fit in memory.
        """
        until = until_s
        rows = self._rows_for(until)
        if rows == 0:
            return
        need = rows * self._bytes_per_row()
        have = _memory_bytes()
        if need > 0.7 * have:
            raise ConfigError(
                "run.until_s", until,
                f"must fit in memory: recording {self.record!r} keeps about "
                f"{need / 2**30:.3g} GiB of trace up to {until:.6g} s and this machine has "
                f"{have / 2**30:.3g} GiB (record 'summary', or every N-th sample, keeps less)")
        self._grow_records(rows)
        if self._every == 1:
            self._grow_segments(rows * self._every + 4)

    def _grow_records(self, rows: int) -> None:
        R = self._R
        old = R.samp_t.shape[1]
        if rows <= old:
            return
        new = self._new_record(rows, R.wander_z, R.z0)
        for a, b in ((R.samp_m, new.samp_m), (R.samp_t, new.samp_t), (R.samp_c, new.samp_c),
                     (R.samp_des, new.samp_des), (R.state, new.state)):
            b[:, :old] = a
        for a, b in ((R.cnt, new.cnt), (R.ddc, new.ddc), (R.flags, new.flags)):
            b[:old] = a
        self._R = new

    def _grow_segments(self, slots: int) -> None:
        N = self._N
        old = N.seg.shape[1]
        if slots <= old:
            return
        seg = np.empty((N.seg.shape[0], slots, K.N_SG))
        seg_k = np.empty((N.seg.shape[0], slots), dtype=np.int64)
        seg[:, :old] = N.seg
        seg_k[:, :old] = N.seg_k
        self._N = N._replace(seg=seg, seg_k=seg_k)

    def _make_segment_room(self) -> None:
        """Room for a segment: grow the history (full recording), or drop the
        segments no later step needs after integrating their energy."""
        N = self._N
        if self._every == 1:
            self._grow_segments(2 * N.seg.shape[1])
            return
        t_next = float(N.order_t[N.sc[K.SC_HEAD]])
        self._integrate(t_next)
        keep = np.zeros(N.n_seg.size, dtype=np.int64)
        # every later lookup is at a time after the next sample's, less a
        # latency and a period (a link's last advance or link-up), with margin
        fpar = self._P.fpar
        t_keep = t_next - 2.0 * (fpar[K.FP_LATMAX] + fpar[K.FP_PMAX])
        k = _kernels()
        k.segments_to_keep(N.seg, N.n_seg, N.seg_base, self._L.ls, self._P.src, t_keep,
                           self._e_next, self._sp_ptr, keep)
        k.compact_segments(N.seg, N.seg_k, N.n_seg, N.seg_base, keep, self._L.ls, self._P.src)
        if int(N.n_seg.max()) + 2 > N.seg.shape[1] * 3 // 4:
            self._grow_segments(2 * N.seg.shape[1])

    def _draw_wander(self) -> None:
        """More wander draws: each node's unused ones first, then its stream's next."""
        R, N = self._R, self._N
        z, z0 = R.wander_z, R.z0
        for j, g in enumerate(self._rng):
            used = int(N.n_samp[j] - z0[j])
            z[j, : z.shape[1] - used] = z[j, used:]
            z[j, z.shape[1] - used:] = g.standard_normal(used)
            z0[j] = N.n_samp[j]

    def _unshare(self) -> None:
        """Copy the arrays a trace holds views of, before writing on."""
        R, N = self._R, self._N
        self._R = R._replace(samp_m=R.samp_m.copy(), samp_t=R.samp_t.copy(),
                             samp_c=R.samp_c.copy(), samp_des=R.samp_des.copy(),
                             cnt=R.cnt.copy(), ddc=R.ddc.copy(), flags=R.flags.copy(),
                             state=R.state.copy())
        self._N = N._replace(seg=N.seg.copy(), seg_k=N.seg_k.copy())
        self._shared = False

    # ------------------------------------------------------------------ running
    def advance(self, until_s: float | None = None, *, until_cycles: int | None = None
                ) -> Simulation:
        """Run on to ``until_s`` (or ``until_cycles / f_nom_hz``) seconds.

        Every sample with ``t <= until_s`` is taken, then every link is
        advanced to ``until_s``. Calls must not go back in time.

        Returns:
            ``self``, so that ``system.start().advance(10.0).trace()`` reads on.

        Raises:
            ConfigError: a bad or earlier time, or a recording that would not
                fit in memory.
            SimulationFault: a node's frequency left ±5 % of nominal (an
                unstable controller); ``exc.trace`` holds the run up to there.
        """
        until = self.system.check_until(until_s, until_cycles)
        if self.stopped:
            raise ConfigError("run.until_s", until,
                              f"cannot advance a run that stopped at {self.time_s!r} s")
        if until < self.time_s:
            raise ConfigError("run.until_s", until,
                              f"must not be before the run's time ({self.time_s!r} s)")
        if until == self.time_s and self.time_s > 0:
            return self
        if self._shared:
            self._unshare()
        self.reserve(until)
        self._requested = until
        self._P.fpar[K.FP_UNTIL] = until
        while True:
            status = _advance()(self._step, self._P, self._N, self._L, self._R)
            if status == K.ST_OK:
                self.time_s = until
                return self
            if status == K.ST_REC_FULL:
                self._grow_records(max(2 * self._R.samp_t.shape[1], 16))
            elif status == K.ST_SEG_FULL:
                self._make_segment_room()
            elif status == K.ST_WANDER:
                self._draw_wander()
            else:
                break
        self.stopped = True
        self._status = int(status)
        detail = self._N.detail
        self.time_s = float(detail[1])
        if status == K.ST_RANGE:
            node = int(detail[0])
            raise SimulationFault(
                f"node {node}: frequency offset {detail[3] * 1e6:.6g} ppm at "
                f"t={detail[1]:.9g} s (cycle {int(detail[2])}) is beyond ±{MAX_REL * 1e6:.0f} "
                f"ppm: the controller is unstable", self.trace())
        return self

    # ------------------------------------------------------------------ results
    def _integrate(self, t_safe: float) -> None:
        """Fold the energy of segments that ended by ``t_safe`` (s) into the running
        sums, and the spread integral through every frequency change before it."""
        N, k = self._N, _kernels()
        k.energy_add(N.seg, N.n_seg, N.seg_base, self._e_node, self._e_next, t_safe, self._epoch,
                     self._frac)
        k.spread_add(N.seg, N.n_seg, N.seg_base, self._sp_state, self._sp_ptr, t_safe,
                     self._frac)

    def _energies(self, t_end: float) -> tuple[float, float]:
        """Both energy integrals from the epoch to ``t_end``, leaving the running
        sums as they are (the run can go on)."""
        N, k = self._N, _kernels()
        e_node, e_next = self._e_node.copy(), self._e_next.copy()
        k.energy_add(N.seg, N.n_seg, N.seg_base, e_node, e_next, t_end, self._epoch, self._frac)
        energy = k.energy_close(N.seg, N.n_seg, N.seg_base, e_node, e_next, t_end, self._epoch,
                                self._frac)
        sp_state, sp_ptr = self._sp_state.copy(), self._sp_ptr.copy()
        k.spread_add(N.seg, N.n_seg, N.seg_base, sp_state, sp_ptr, t_end, self._frac)
        spread = k.spread_close(sp_state, t_end, N.n_seg.size)
        return float(energy), float(spread)

    def trace(self, *, requested_until_s: float | None = None) -> Trace:
        """The run so far.

        ``requested_until_s`` is the end the run was meant to reach, for a run
        advanced in steps towards it (default: the last ``advance``'s).

        Record arrays are shared with the simulation, not copied; advancing
        further copies them first, so a trace never changes.
        """
        N, R, L = self._N, self._R, self._L
        t = self.time_s
        energy, spread = self._energies(t)
        every = self._every
        rows = np.zeros_like(N.n_samp) if every == 0 else (N.n_samp + every - 1) // every
        q = int(rows.max(initial=0))
        ns = max(int(N.n_seg.max()), 1)
        in_off, in_idx = self._P.in_off, self._P.in_idx
        _kernels().zero_tails(N.seg, N.seg_k, N.n_seg, ns, R, rows, q, in_off, in_idx)
        record = {"samp_m": R.samp_m[:, :q], "samp_t": R.samp_t[:, :q],
                  "samp_c": R.samp_c[:, :q], "samp_des": R.samp_des[:, :q],
                  "cnt": R.cnt[:q], "ddc": R.ddc[:q], "flags": R.flags[:q],
                  "state": R.state[:, :q] if self._keep_state else None}
        nodes = {"seg": N.seg[:, :ns], "seg_k": N.seg_k[:, :ns], "n_seg": N.n_seg.copy(),
                 "seg_base": N.seg_base.copy(), "n_updates": N.n_samp.copy(),
                 "frac": self._frac,
                 "wander": N.wander.copy()}
        self._shared = True
        return Trace(system=self.system, fidelity=self.fidelity, every=every, until_s=t,
                     requested_until_s=(self._requested if requested_until_s is None
                                        else requested_until_s), status=self._status, nodes=nodes,
                     links={"ls": L.ls.copy(), "lf": L.lf.copy()}, records=record, rows=rows,
                     energy_s=energy, spread_energy_s=spread, cstate=N.cstate.copy())
