"""Metrics of a run: settle time, spread, energy, largest counts, stability, faults.

All metrics are computed from a :class:`~tidesim.models.Trace` after the run.
:func:`run_metrics` gathers the scalar ones, plus the analytic numbers of
:mod:`tidesim.studies.analysis`, into one flat dict: one row of a sweep's table.

Example:
    >>> from tidesim.config import build_system, load_config, validate
    >>> from tidesim.studies.metrics import run_metrics
    >>> cfg = validate(load_config({"preset": "hitl-complete3", "run": {"until_s": 0.1}}))
    >>> row = run_metrics(build_system(cfg).run(cfg.until_s))
    >>> row["nodes"], row["links"], row["faults"]
    (3, 6, 0)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "energy",
    "energy_spread",
    "fault_counts",
    "final_frequency_ppm",
    "frequencies_at",
    "link_stability",
    "max_abs_count_per_link",
    "run_metrics",
    "settle_time_s",
    "spread_over_time",
    "stable_periods",
    "summary",
]


def energy(trace) -> float:
    """``Σ_i ∫ (f_i/f_nom - 1)^2 dt`` with t in seconds, from the epoch (Callisto's
    criterion; see :attr:`tidesim.models.Trace.energy`)."""
    return trace.energy


def settle_time_s(trace) -> float | None:
    """Earliest time after which every link is stable at every sample, or None.

    Stability is the detector of :class:`~tidesim.models.Stability`
    (count within ±margin of a reference for a window). Links that never came
    up do not count. The core tracks it while running, so it is known in
    every recording (:attr:`tidesim.models.Trace.settle_time_s`).
    """
    return trace.settle_time_s


# --------------------------------------------------------------------- frequencies


def frequencies_at(trace, times) -> np.ndarray:
    """Each node's relative frequency ``f/f0 - 1`` at the given times.

    Args:
        trace: a run.
        times: float64 times (s), any order.

    Returns:
        float64 ``[n_nodes, len(times)]``; a frequency change at a segment's
        start time counts from that time on.
    """
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    out = np.empty((trace.n_nodes, t.size))
    for j in range(trace.n_nodes):
        s = int(trace.n_seg[j])
        starts = trace.seg_t[j, :s]
        idx = np.searchsorted(starts[1:], t, side="right")  # segment 0 owns the past
        out[j] = trace.seg_rel[j, idx]
    return out


def spread_over_time(trace, times=None) -> tuple[np.ndarray, np.ndarray]:
    """Frequency spread ``max_i f_i - min_i f_i`` over time, in ppb of ``f0``.

    Args:
        trace: a run.
        times: where to evaluate it; default: the sample times of node 0
            (one per control update).

    Returns:
        ``(times, spread_ppb)``, two float64 arrays of the same length.
    """
    if times is None:
        times = trace.samp_t[0, : int(trace.n_samp[0])]
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    rel = frequencies_at(trace, t)
    return t, (rel.max(axis=0) - rel.min(axis=0)) * 1e9


def final_frequency_ppm(trace) -> float:
    """The common frequency at the end of the run: the mean final offset (ppm)."""
    return trace.common_offset_ppm


def energy_spread(trace) -> float:
    """``Σ_i ∫ (ω_i - ω̄)² dt`` (s), ``ω̄`` the mean over nodes at each instant.

    This is the part of :func:`energy` that the controller spends pulling the
    nodes together (what :func:`~tidesim.studies.analysis.predicted_energy`
    predicts); exact, integrated from the segments while running.
    """
    return trace.energy_spread


# ------------------------------------------------------------------------- counts


def max_abs_count_per_link(trace, kind: str = "measured") -> np.ndarray:
    """Largest ``|count|`` of each link over the run (int64 ``[L]``).

    Args:
        trace: a run.
        kind: ``"measured"`` (what the controller saw), ``"buffer"`` (the
            elastic-buffer count relative to its reference) or ``"ddc"``
            (the domain difference counter).
    """
    return trace.max_abs_count(kind)


def link_stability(trace) -> dict[str, np.ndarray]:
    """Each link's stability detector at the end of the run.

    At the sample where a buffer armed on stability (``buffer.arm =
    "stable"``) is centred, the detector sees the count before centring.

    Returns:
        ``{"up", "stable", "settled": bool[L], "reference": int64[L],
        "since_s": float64[L]}`` (:meth:`tidesim.models.Trace.detector`).
    """
    return trace.detector()


def _intervals(on: np.ndarray, times: np.ndarray, end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Start and end times (s) of the runs of ``on``; sample ``k`` holds until ``times[k+1]``."""
    edges = np.diff(np.concatenate(([0], on.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    ext = np.append(times, end_s)
    return ext[starts], ext[stops]


def _all_on(starts: list[np.ndarray], stops: list[np.ndarray]) -> np.ndarray:
    """The periods (float64 ``[k, 2]``) covered by every one of the interval sets."""
    m = len(starts)
    if m == 0:
        return np.zeros((0, 2))
    t = np.concatenate([*starts, *stops])
    delta = np.concatenate([np.ones(sum(s.size for s in starts), dtype=np.int64),
                            -np.ones(sum(s.size for s in stops), dtype=np.int64)])
    # at equal times ends sort first, so touching periods of one set never overlap
    order = np.lexsort((delta, t))
    t, depth = t[order], np.cumsum(delta[order])
    inside = np.flatnonzero(depth[:-1] == m)
    lo, hi = t[inside], t[inside + 1]
    keep = hi > lo
    lo, hi = lo[keep], hi[keep]
    if lo.size == 0:
        return np.zeros((0, 2))
    # periods that touch (one link ends as another starts) are one period
    cut = np.flatnonzero(lo[1:] != hi[:-1]) + 1
    return np.stack([lo[np.r_[0, cut]], hi[np.r_[cut - 1, hi.size - 1]]], axis=1)


def stable_periods(trace) -> dict[str, np.ndarray]:
    """When every link was stable, and when every link was settled.

    A link's state holds from one of its receiver's samples to the next (the
    last one to the end of the run). Links that never came up do not count;
    the others count from the start of the run, so nothing is stable before
    every one of them is up. The states are the detector flags the core
    recorded, ``Trace.stable`` and ``Trace.settled``.

    Args:
        trace: a run.

    Returns:
        ``{"stable", "settled": float64[k, 2]}``: ``[start_s, end_s)``
        periods in time order, merged where they touch. The rig's criterion,
        *all links stable for 5 s*, is a row with ``end_s - start_s >= 5``.
    """
    flags = {"stable": trace.stable, "settled": trace.settled}
    up = np.flatnonzero(np.asarray(trace.link_up, dtype=bool))
    out = {}
    for kind in ("stable", "settled"):
        starts, stops = [], []
        for l in up:
            j = int(trace.links[l, 1])
            q = int(trace.n_samp[j])
            a, b = _intervals(flags[kind][l, :q] == 1, trace.samp_t[j, :q],
                              float(trace.until_s))
            starts.append(a)
            stops.append(b)
        out[kind] = _all_on(starts, stops)
    return out


def fault_counts(trace) -> dict[str, object]:
    """Faults of the run: ``faults`` (records), ``overflows``, ``underflows``
    (links with each kind), ``faulty_links`` and ``first_fault_s`` (or None)."""
    faults = trace.faults
    return {
        "faults": len(faults),
        "overflows": sum(f.kind == "overflow" for f in faults),
        "underflows": sum(f.kind == "underflow" for f in faults),
        "faulty_links": len({f.link for f in faults}),
        "first_fault_s": faults[0].time_s if faults else None,
    }


# -------------------------------------------------------------------------- tables


def _finite_or_none(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def run_metrics(trace, *, analysis: bool = True) -> dict:
    """The scalar metrics of one run, as a flat dict (one row of a sweep table).

    Keys:

    * run: ``topology_name``, ``nodes``, ``links``, ``simulated_s``, ``stopped_early``;
    * convergence: ``converged`` (:attr:`tidesim.models.Trace.converged`),
      ``settle_time_s`` (None when the links are not all stable at the end),
      ``faults_after_settle``, ``runaway``, ``links_stable``,
      ``links_settled`` (at the end, from :func:`link_stability`),
      ``all_settled``;
    * frequency: ``final_frequency_ppm`` (mean final offset, the common
      frequency),
      ``final_spread_ppb``, ``energy``, ``energy_spread``;
    * counts: ``max_abs_count`` (measured, over all links), ``max_abs_buffer``
      (elastic-buffer counts);
    * faults: see :func:`fault_counts`;
    * analysis (when ``analysis``): the keys of
      :func:`~tidesim.studies.analysis.analysis_summary` except ``nodes`` and
      ``edges``, and ``energy_ratio`` = ``energy_spread / predicted_energy``.

    Non-finite floats are reported as ``None``.
    """
    sys_ = trace.system
    offsets = trace.final_offsets_ppm
    settle = settle_time_s(trace)
    stab = link_stability(trace)
    up = stab["up"]
    e_spread = energy_spread(trace)
    row: dict = {
        "topology_name": sys_.topology.name,
        "nodes": int(sys_.n_nodes),
        "links": int(trace.links.shape[0]),
        "simulated_s": float(trace.until_s),
        "stopped_early": bool(trace.stopped_early),
        "converged": trace.converged,
        "settle_time_s": settle,
        "faults_after_settle": trace.faults_after_settle,
        "runaway": trace.runaway,
        "links_up": int(up.sum()),
        "links_stable": int(stab["stable"].sum()),
        "links_settled": int(stab["settled"].sum()),
        "all_settled": bool(up.all() and stab["settled"].all()),
        "final_frequency_ppm": final_frequency_ppm(trace),
        "final_spread_ppb": float((offsets.max() - offsets.min()) * 1e3),
        "energy": energy(trace),
        "energy_spread": e_spread,
        "max_abs_count": int(max_abs_count_per_link(trace).max(initial=0)),
        "max_abs_buffer": int(max_abs_count_per_link(trace, "buffer").max(initial=0)),
        **fault_counts(trace),
    }
    if analysis:
        from .analysis import analysis_summary

        a = analysis_summary(sys_)
        a.pop("nodes")
        a.pop("edges")
        row.update(a)
        pred = a["predicted_energy"]
        row["energy_ratio"] = (e_spread / pred if pred is not None and 0 < pred < math.inf
                               else None)
    return {k: _finite_or_none(v) for k, v in row.items()}


def summary(trace) -> dict:
    """The JSON summary of ``tidesim run --json`` (without run-level keys)."""
    return trace.summary()
