"""What a run produced: :class:`Trace`, the one door to a run's results.

Everything above :mod:`tidesim.models` (metrics, plots, waveforms, checks,
calendars) reads a run through the named methods and properties here, never
through the kernels' column constants.

What a trace holds depends on how its run was recorded (``record``):

* ``"full"``: every sample and the whole frequency-segment history;
* an integer ``N``: every ``N``-th sample of each node, no segment history;
* ``"summary"``: no per-sample data and no segment history.

In every mode it holds the final state of each node and link and the
summary the core accumulates while running (settle time, energy, largest
counts, faults, logical latencies). Reading data the run did not record
raises a :class:`~tidesim.errors.ConfigError` that names the recording.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from . import _layout as K

__all__ = ["Fault", "Trace", "record_name"]


def record_name(every: int) -> str | int:
    """The ``record`` value a run was started with: ``"full"``, ``"summary"`` or N."""
    return "full" if every == 1 else "summary" if every == 0 else every


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


class Trace:
    """A run's results: per-sample records, segment history, final state, summary.

    Built by :meth:`tidesim.models.Simulation.trace` (``System.run`` returns
    one). Arrays are indexed ``[node, sample]`` or ``[link, sample]``, where
    the samples of a link are its receiver's; node ``j``'s rows are valid up
    to ``n_samp[j]`` (later entries read 0).

    Attributes:
        system: the :class:`~tidesim.models.System` that ran.
        fidelity: ``"event"`` or ``"cycle"``.
        record: ``"full"``, ``"summary"`` or N (every N-th sample).
        until_s: the time the run reached (s): the requested end, or where
            it stopped.
        requested_until_s: the end asked for (s).
        status: 0, or the kernel's reason for stopping early.
        n_updates: int64[n] control samples each node took.
        n_samp: int64[n] samples recorded per node (``n_updates`` in full
            recording; 0 in summary).
    """

    def __init__(self, *, system, fidelity, every, until_s, requested_until_s, status,
                 nodes, links, records, rows, energy_s, spread_energy_s, cstate) -> None:
        self.system = system
        self.fidelity = fidelity
        self._every = every
        self.record = record_name(every)
        self.until_s = until_s
        self.requested_until_s = requested_until_s
        self.status = status
        self._seg = nodes["seg"]
        self._seg_k = nodes["seg_k"]
        self._n_seg = nodes["n_seg"]
        self._seg_base = nodes["seg_base"]
        self._frac = nodes["frac"]
        self.n_updates = nodes["n_updates"]
        self._ls = links["ls"]
        self._lf = links["lf"]
        self.n_samp = rows
        self._rec = records
        self._energy = energy_s
        self._spread_energy = spread_energy_s
        self.controller_state = cstate
        self._wander = nodes["wander"]

    # -- shape -----------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return self.system.n_nodes

    @property
    def links(self) -> np.ndarray:
        """int64[L, 2]: ``(src, dst)`` of every link."""
        return self.system.topology.links

    @property
    def n_links(self) -> int:
        return int(self.system.topology.links.shape[0])

    @property
    def stopped_early(self) -> bool:
        return self.status != 0

    # -- per-sample records ------------------------------------------------------
    def _need(self, what: str, *, history: bool = False) -> None:
        """Refuse data this trace's recording did not keep."""
        if self._every == 0 or (history and self._every != 1):
            kept = "'full'" if history else "'full' or an integer N"
            raise ConfigError("run.record", self.record,
                              f"must be {kept} to read Trace.{what}")

    def _sampled(self, key: str, name: str | None = None) -> np.ndarray:
        self._need(key if name is None else name)
        return self._rec[key]

    @property
    def samp_t(self) -> np.ndarray:
        """float64[n, Q]: time (s) of each recorded sample."""
        return self._sampled("samp_t")

    @property
    def samp_m(self) -> np.ndarray:
        """int64[n, Q]: the receiver edge (local cycle) of each recorded sample."""
        return self._sampled("samp_m")

    @property
    def samp_c(self) -> np.ndarray:
        """float64[n, Q]: applied correction (relative) after each recorded sample."""
        return self._sampled("samp_c")

    @property
    def samp_des(self) -> np.ndarray:
        """float64[n, Q]: the controller's desired correction (relative) at each sample."""
        return self._sampled("samp_des")

    @property
    def counts(self) -> np.ndarray:
        """int32[L, Q]: elastic-buffer count relative to the reference, per sample."""
        return self._sampled("cnt", "counts").T

    @property
    def ddc(self) -> np.ndarray:
        """int32[L, Q]: domain difference count per sample."""
        return self._sampled("ddc").T

    @property
    def flags(self) -> np.ndarray:
        """int8[L, Q]: the stability detector at each sample, as bits
        (:attr:`stable` and :attr:`settled` unpack them)."""
        return self._sampled("flags", "flags").T

    @functools.cached_property
    def stable(self) -> np.ndarray:
        """int8[L, Q]: 1 where the stability detector reports the link stable."""
        return (self.flags & K.FLAG_STABLE).astype(np.int8)

    @functools.cached_property
    def settled(self) -> np.ndarray:
        """int8[L, Q]: 1 where the link is stable about a reference within the
        stability margin of zero (``|r| < margin``)."""
        return ((self.flags & K.FLAG_SETTLED) != 0).astype(np.int8)

    @property
    def controller_states(self) -> np.ndarray | None:
        """float64[n, Q, w]: the controller state after each recorded sample, when
        the run recorded it (``record_controller_state``), else None."""
        state = self._rec.get("state")
        return None if state is None or self._every == 0 else state

    def link_times(self, link: int) -> np.ndarray:
        """float64[q]: recorded sample times (s) of ``link`` (its receiver's)."""
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

    def logical_latency(self) -> np.ma.MaskedArray:
        """Logical latency λ of every link at every recorded sample.

        A frame sent at sender cycle ``s`` is read at receiver cycle ``s + λ``.
        At a sample, ``λ = occupancy + R - A`` (frames held, receiver cycle,
        last frame arrived), the definition :attr:`ugn` gives at the end.

        Returns:
            int64[L, Q], masked where the link's buffer is not armed yet (or
            the link not up), and past the receiver's last recorded sample.
        """
        self._need("logical_latency()")
        cnt = self.counts.astype(np.int64)
        lam = _lambda(cnt, self.ddc.astype(np.int64), self.system.buffer.reference_frames,
                      self._ls[:, K.LS_BASE][:, None])
        dst = self.links[:, 1]
        m = self.samp_m[dst]  # [L, Q]: each link's receiver edges
        q = np.arange(m.shape[1])
        arm_m = self._ls[:, K.LS_ARM_M][:, None]
        valid = (q[None, :] < self.n_samp[dst][:, None]) & (arm_m >= 0) & (m >= arm_m)
        return np.ma.MaskedArray(lam, mask=~valid)

    # -- segment history ----------------------------------------------------------
    def _segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._need("segments", history=True)
        return self._seg, self._seg_k, self._n_seg

    @property
    def n_seg(self) -> np.ndarray:
        """int64[n]: frequency segments of each node (full recording)."""
        return self._segments()[2]

    @property
    def seg_k(self) -> np.ndarray:
        """int64[n, S]: anchor edge of each segment (full recording)."""
        return self._segments()[1]

    @property
    def seg_hi(self) -> np.ndarray:
        """float64[n, S]: anchor time of each segment, high part (s)."""
        return self._segments()[0][:, :, K.SG_HI]

    @property
    def seg_lo(self) -> np.ndarray:
        """float64[n, S]: anchor time of each segment, low part (s)."""
        return self._segments()[0][:, :, K.SG_LO]

    @property
    def seg_P(self) -> np.ndarray:  # noqa: N802 (P, the period, as in the docs)
        """float64[n, S]: period of each segment (s)."""
        return self._segments()[0][:, :, K.SG_P]

    @property
    def seg_rel(self) -> np.ndarray:
        """float64[n, S]: relative frequency ``f/f0 - 1`` of each segment."""
        return self._segments()[0][:, :, K.SG_REL]

    @functools.cached_property
    def seg_t(self) -> np.ndarray:
        """float64[n, S]: when each segment's frequency takes effect (s).

        With samples on whole edges that is its anchor, ``seg_hi + seg_lo``;
        sampling at phase (``control.sample_at = "phase"``) a change falls
        ``θ0`` of a cycle after the anchor edge, and the anchor holds the time
        that edge would have at the new period: ``seg_hi + seg_lo + θ0 ·
        seg_P``. Segment 0 holds from before the run.
        """
        t = self.seg_hi + self.seg_lo + self._frac[:, None] * self.seg_P
        t[:, 0] = self.seg_hi[:, 0] + self.seg_lo[:, 0]
        return t

    def segments(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """(start times in s, relative frequency) of ``node``'s segments."""
        s = self.n_seg[node]
        return self.seg_t[node, :s], self.seg_rel[node, :s]

    def edge_times(self, node: int, ticks) -> np.ndarray:
        """Exact times (s) of local edges ``ticks`` of ``node``, as the kernels compute them.

        Args:
            node: the node.
            ticks: int edge numbers, any shape and order.

        Returns:
            float64 array of ``ticks``' shape.
        """
        seg, seg_k, n_seg = self._segments()
        k = np.asarray(ticks, dtype=np.int64)
        n = int(n_seg[node])
        sk = seg_k[node, :n]
        # segment s owns sk[s] < k <= sk[s + 1]; segment 0 also every earlier edge
        s = np.clip(np.searchsorted(sk, k, side="left") - 1, 0, n - 1)
        row = seg[node]
        return row[s, K.SG_HI] + (row[s, K.SG_LO] + (k - sk[s]) * row[s, K.SG_P])

    def edge_time(self, node: int, cycle: int) -> float:
        """Exact time (s) of local edge ``cycle`` of ``node`` (see :meth:`edge_times`)."""
        return float(self.edge_times(node, cycle))

    def last_edge(self, node: int, t_s: float) -> int:
        """The last local edge ``k`` of ``node`` with ``edge_time(node, k) <= t_s``."""
        seg, seg_k, n_seg = self._segments()
        from ._kernels import last_edge_before

        return int(last_edge_before(seg, seg_k, n_seg, int(node), float(t_s), 0.0,
                                      int(n_seg[node]) - 1)[0])

    # -- final state -----------------------------------------------------------------
    @property
    def final_cycles(self) -> np.ndarray:
        """int64[n]: each node's last local edge (cycle) at or before ``until_s``.

        Read from the segments every recording keeps (the current one is
        always in memory), so it needs no full record: the application layer
        takes each node's epoch from it.
        """
        from ._kernels import last_edge_before

        seg, seg_k, n_seg = self._seg, self._seg_k, self._n_seg
        return np.array([last_edge_before(seg, seg_k, n_seg, j, float(self.until_s), 0.0,
                                          int(n_seg[j]) - 1)[0]
                         for j in range(self.n_nodes)], dtype=np.int64)

    @property
    def final_offsets_ppm(self) -> np.ndarray:
        """float64[n]: each node's last commanded frequency offset (ppm)."""
        rows = np.arange(self.n_nodes)
        return self._seg[rows, self._n_seg - 1, K.SG_REL] * 1e6

    @property
    def common_offset_ppm(self) -> float:
        """The common frequency at the end: the mean of the final offsets (ppm)."""
        return float(np.mean(self.final_offsets_ppm))

    @functools.cached_property
    def link_up(self) -> np.ndarray:
        """bool[L]: links that came up during the run."""
        return self._ls[:, K.LS_UP] == 1

    @functools.cached_property
    def armed(self) -> np.ndarray:
        """bool[L]: links whose elastic buffer is armed (running as a FIFO)."""
        return self._ls[:, K.LS_ARMED] == 1

    @property
    def armed_at_s(self) -> np.ndarray:
        """float64[L]: when each buffer was armed (s); NaN: never."""
        t = self._lf[:, K.LF_ARM_T].copy()
        t[~self.armed] = np.nan
        return t

    @property
    def armed_cycle(self) -> np.ndarray:
        """int64[L]: the receiver cycle at which each buffer was armed; -1: never."""
        return self._ls[:, K.LS_ARM_M].copy()

    def buffer_state(self) -> dict[str, np.ndarray]:
        """Each link's elastic buffer at the end of the run.

        Returns:
            int64[L] arrays: ``occupancy`` (frames held), ``cycle`` (the last
            receiver edge the link was advanced through), ``next_seq`` (the
            sequence number of the next frame to arrive), ``pending`` (an
            adjustment still to apply: > 0 reads to suppress, < 0 writes to
            drop), ``last_read_seq`` (sequence number of the last frame
            read; cycle fidelity only), ``ddc_base`` (the domain difference
            count's offset, ``A - R`` at link-up).
        """
        ls = self._ls
        out = {"occupancy": ls[:, K.LS_OCC].copy(), "cycle": ls[:, K.LS_ADVM].copy(),
               "next_seq": ls[:, K.LS_ARRK].copy(), "pending": ls[:, K.LS_PEND].copy(),
               "ddc_base": ls[:, K.LS_BASE].copy()}
        if self.fidelity == "cycle":
            out["last_read_seq"] = ls[:, K.LS_LASTSEQ].copy()
        return out

    @functools.cached_property
    def _final_lambda(self) -> np.ndarray:
        ls = self._ls
        cnt = ls[:, K.LS_OCC] - self.system.buffer.reference_frames
        ddc = (ls[:, K.LS_ARRK] - 1) - ls[:, K.LS_ADVM] - ls[:, K.LS_BASE]
        return _lambda(cnt, ddc, self.system.buffer.reference_frames, ls[:, K.LS_BASE])

    @property
    def final_logical_latency(self) -> np.ma.MaskedArray:
        """int64[L]: λ of each link at the end of the run, masked where the link's
        buffer is not armed (the last column of :meth:`logical_latency`, at
        the run's end); :attr:`ugn` also asks for the other direction."""
        ok = self.link_up & self.armed
        return np.ma.MaskedArray(self._final_lambda, mask=~ok)

    @functools.cached_property
    def ugn_reported(self) -> np.ndarray:
        """bool[L]: links whose λ is reported: up, armed, and armed the other way too.

        Before its buffer is armed a link has no logical latency (with
        ``buffer.arm = "stable"``, the count runs from link-up but the FIFO
        starts when the link is stable); a round trip needs both ways.
        """
        ok = self.link_up & self.armed
        return ok & ok[self.system.topology.reverse()]

    @property
    def ugn(self) -> np.ma.MaskedArray:
        """int64[L]: logical latency λ of each link at the end of the run.

        A frame sent at sender cycle ``s`` is read at receiver cycle ``s + λ``.
        Masked where it is not reported (:attr:`ugn_reported`): a real λ can
        be any integer, so no value stands for "none".
        """
        return np.ma.MaskedArray(self._final_lambda, mask=~self.ugn_reported)

    def ugn_matrix(self) -> np.ma.MaskedArray:
        """int64[n, n] with λ at ``[src, dst]``; masked where there is no link or
        its λ is not reported."""
        n = self.n_nodes
        mat = np.zeros((n, n), dtype=np.int64)
        mask = np.ones((n, n), dtype=bool)
        src, dst = self.links[:, 0], self.links[:, 1]
        mat[src, dst] = self._final_lambda
        mask[src, dst] = ~self.ugn_reported
        return np.ma.MaskedArray(mat, mask=mask)

    @functools.cached_property
    def faults(self) -> list[Fault]:
        """Sticky buffer faults, ordered by time."""
        ls, lf = self._ls, self._lf
        out = []
        for l in np.flatnonzero((ls[:, K.LS_OVF_N] > 0) | (ls[:, K.LS_UNF_N] > 0)).tolist():
            i, j = (int(x) for x in self.links[l])
            if ls[l, K.LS_OVF_N] > 0:
                out.append(Fault(j, l, i, "overflow", float(lf[l, K.LF_OVF_T]),
                                 int(ls[l, K.LS_OVF_M]), int(ls[l, K.LS_OVF_N])))
            if ls[l, K.LS_UNF_N] > 0:
                out.append(Fault(j, l, i, "underflow", float(lf[l, K.LF_UNF_T]),
                                 int(ls[l, K.LS_UNF_M]), int(ls[l, K.LS_UNF_N])))
        out.sort(key=lambda f: (f.time_s, f.link, f.kind))
        return out

    def fault_counts(self) -> np.ndarray:
        """int64[L]: frames dropped plus reads without a frame, per link, in all."""
        return self._ls[:, K.LS_OVF_N] + self._ls[:, K.LS_UNF_N]

    def detector(self) -> dict[str, np.ndarray]:
        """Each link's stability detector at the end of the run.

        Returns:
            ``{"up", "stable", "settled": bool[L], "reference": int64[L],
            "since_s": float64[L]}``: *stable* as the detector reports it at
            the link's last sample, *settled* when also ``|reference| <
            margin``. Links that never came up are neither.
        """
        ls, lf = self._ls, self._lf
        up = self.link_up
        ref = ls[:, K.LS_STREF].copy()
        stable = (ls[:, K.LS_STABLE] == 1) & up
        return {"up": up.copy(), "stable": stable,
                "settled": stable & (np.abs(ref) < self.system.stability.margin),
                "reference": ref, "since_s": lf[:, K.LF_STSINCE].copy()}

    # -- summary, accumulated while running ---------------------------------------------
    def max_abs_count(self, kind: str = "measured") -> np.ndarray:
        """int64[L]: largest ``|count|`` of each link over every sample of the run.

        Args:
            kind: ``"measured"`` (what the controller saw), ``"buffer"`` (the
                elastic-buffer count relative to its reference) or ``"ddc"``.
        """
        if kind == "measured":
            kind = "ddc" if self.system.measure == "ddc" else "buffer"
        if kind not in ("buffer", "ddc"):
            raise ConfigError("kind", kind, "must be one of ['measured', 'buffer', 'ddc']")
        return self._ls[:, K.LS_MAXDDC if kind == "ddc" else K.LS_MAXCNT].copy()

    @property
    def stable_from_s(self) -> np.ndarray:
        """float64[L]: start of each link's last run of stable samples, up to the
        end (s); NaN where the link was not stable at its last sample."""
        return self._lf[:, K.LF_STFROM].copy()

    @property
    def settle_time_s(self) -> float | None:
        """Earliest time after which every link that came up is stable at every
        sample, or None (no link came up, or one is not stable at the end)."""
        up = self.link_up
        if not up.any():
            return None
        sf = self._lf[up, K.LF_STFROM]
        if np.isnan(sf).any():
            return None
        return float(sf.max())

    @property
    def faults_after_settle(self) -> int:
        """Frames dropped or read missing on links while they were stable, in
        their last stable run up to the end: a settled system that still
        faults has not converged."""
        ls = self._ls
        up = self.link_up & ~np.isnan(self._lf[:, K.LF_STFROM])
        return int((ls[up, K.LS_OVF_N] + ls[up, K.LS_UNF_N] - ls[up, K.LS_NF_STFROM]).sum())

    @property
    def energy(self) -> float:
        """``Σ_i ∫ (f_i/f0 - 1)² dt`` (s) from the epoch to :attr:`until_s`.

        The clocks run at their intrinsic frequencies before ``t = 0``; as in
        Callisto.jl, the integral starts at the epoch ``-10 ×`` the largest
        link latency (0 when every latency is 0).
        """
        return self._energy

    @property
    def energy_spread(self) -> float:
        """``Σ_i ∫ (ω_i - ω̄)² dt`` (s) over the same interval as :attr:`energy`,
        ``ω̄`` the mean over nodes at each instant: the part of the energy the
        controller spends pulling the nodes together."""
        return self._spread_energy

    @property
    def intrinsic_offsets_ppm(self) -> np.ndarray:
        """float64[n]: each oscillator's own offset at the end (ppm): intrinsic
        offset, drift and wander, without the controller's correction."""
        sys_ = self.system
        return (sys_.offsets_ppm + sys_.drift_ppb_per_s * 1e-3 * self.until_s
                + self._wander * 1e6)

    @property
    def runaway(self) -> bool:
        """The common frequency ran away: it ended farther from the mean of the
        oscillators' own offsets than their spread (at least 1 ppm).

        Pulling nodes together needs corrections within that spread; a
        controller whose integrator drives every node the same way (a PI on
        uncentred counts over short links) moves them all, possibly to
        percent-level offsets, while the links look stable.
        """
        own = self.intrinsic_offsets_ppm
        allowed = max(float(own.max() - own.min()), 1.0)
        return abs(self.common_offset_ppm - float(own.mean())) > allowed

    @property
    def converged(self) -> bool:
        """Settled, no fault after settling, enough samples, no runaway.

        * every link that came up is stable from :attr:`settle_time_s` to
          its last sample (at least one link came up);
        * no frame was dropped or read missing on a link during that last
          stable run (:attr:`faults_after_settle`);
        * every node with a link up took at least two samples;
        * the common frequency did not run away (:attr:`runaway`).
        """
        if self.settle_time_s is None or self.faults_after_settle > 0 or self.runaway:
            return False
        has_up = np.zeros(self.n_nodes, dtype=bool)
        has_up[self.links[self.link_up, 1]] = True
        return bool((self.n_updates[has_up] >= 2).all())

    def warnings(self) -> list[str]:
        """Things about the run a user should know, one line each."""
        out = []
        if self.runaway:
            own = self.intrinsic_offsets_ppm
            out.append(f"the common frequency ran away: {self.common_offset_ppm:+.6g} ppm "
                       f"at the end, the oscillators' own offsets span "
                       f"[{own.min():+.6g}, {own.max():+.6g}] ppm")
        if self.faults_after_settle > 0:
            out.append(f"{self.faults_after_settle} frame(s) dropped or read missing "
                       f"while their links were stable")
        return out

    def summary(self) -> dict:
        """JSON-ready summary of the run (see ``tidesim run --json``).

        Built from the final state and the summary the core accumulates, so it
        is the same for every recording and costs O(nodes + links).
        """
        sys_ = self.system
        offsets = self.final_offsets_ppm
        ugn = self.ugn
        links = self.links
        rep = np.flatnonzero(self.ugn_reported)
        return {
            "name": sys_.name,
            "nodes": sys_.n_nodes,
            "links": self.n_links,
            "topology": sys_.topology.name,
            "fidelity": self.fidelity,
            "record": self.record,
            "simulated_s": float(self.until_s),
            "converged": self.converged,
            "settle_time_s": self.settle_time_s,
            "faults_after_settle": self.faults_after_settle,
            "final_offsets_ppm": [float(x) for x in offsets],
            "common_offset_ppm": self.common_offset_ppm,
            "final_spread_ppb": float((offsets.max() - offsets.min()) * 1e3),
            "max_abs_count": int(self.max_abs_count().max(initial=0)),
            "measure": sys_.measure,
            "energy": self.energy,
            "faults": [f.as_dict() for f in self.faults],
            "ugn": np.column_stack([links[rep], ugn.data[rep]]).tolist(),
            "warnings": self.warnings(),
            "stopped_early": self.stopped_early,
        }


def _lambda(cnt, ddc, ref, base):
    """Logical latency from a count and a domain difference count.

    ``occupancy = count + ref`` and ``A - R = ddc + base`` (the last frame
    arrived and the receiver cycle), so ``λ = occupancy + R - A``.
    """
    return cnt + ref - ddc - base
