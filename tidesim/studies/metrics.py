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

from .._jit import njit
from ..models._kernels import order_requeue, order_start, segment_energy

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
    """``Σ_i ∫_0^T (f_i/f_nom - 1)^2 dt`` with t in seconds (Callisto's criterion)."""
    return float(segment_energy(trace.seg_hi, trace.seg_lo, trace.seg_rel, trace.n_seg,
                                trace.until_s))


def settle_time_s(trace) -> float | None:
    """Earliest time after which every link is stable at every sample, or None.

    Stability is the detector of :class:`~tidesim.models.Stability`
    (count within ±margin of a reference for a window). Links that never came
    up do not count.
    """
    from ..models._kernels import FLAG_STABLE

    dst = np.ascontiguousarray(trace.links[:, 1])
    first = np.empty(dst.size, dtype=np.int64)
    _stable_from(_time_major(trace.flags), dst, trace.n_samp, FLAG_STABLE, first)
    settle = 0.0
    for l in range(dst.size):
        j = int(dst[l])
        q = int(trace.n_samp[j])
        if q == 0 or not trace.link_up[l]:
            continue
        if first[l] == q:
            return None
        settle = max(settle, float(trace.samp_t[j, first[l]]))
    return settle


@njit
def _stable_from(flags, dst, n_samp, bit, first):
    """``first[l]``: the sample after the last one where link ``l`` lacks ``bit``.

    ``flags[sample, link]`` are the recorded detector flags; ``first[l]`` is 0
    when the link has the bit at every sample, ``n_samp[dst[l]]`` when it
    lacks it at its last one.
    """
    for l in range(dst.size):
        k = n_samp[dst[l]] - 1
        while k >= 0 and flags[k, l] & bit != 0:
            k -= 1
        first[l] = k + 1


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
    return float(np.mean(trace.final_offsets_ppm))


@njit
def _spread_energy(seg_hi, seg_rel, n_seg, t_end):
    """``Σ_j ∫_0^t_end (rel_j - mean_k rel_k)² dt``: an n-way merge of the segment starts.

    Uses ``Σ_j (x_j - x̄)² = Σ x_j² - (Σ x_j)² / n`` on values shifted by the
    initial mean, updated per segment change. The next change comes from a
    circular order of the nodes' next segment starts (the core's sample order,
    :func:`~tidesim.models._kernels.order_requeue`): nodes mostly change
    segment in turn, so a change rarely moves more than one entry.
    """
    n = n_seg.size
    ptr = np.ones(n, dtype=np.int64)
    nxt = np.empty(n)
    c = 0.0
    for j in range(n):
        c += seg_rel[j, 0]
    c /= n
    s1 = 0.0
    s2 = 0.0
    for j in range(n):
        x = seg_rel[j, 0] - c
        s1 += x
        s2 += x * x
        nxt[j] = seg_hi[j, 1] if n_seg[j] > 1 else np.inf
    # sorted by (time, node): ties go to the lowest node, as a linear scan would
    hk, hid = order_start(nxt)
    head = 0
    t_prev = 0.0
    total = 0.0
    while True:
        jn = hid[head]
        t_next = hk[head]
        if t_next > t_end:
            t_next = t_end
        if t_next > t_prev:
            total += max(s2 - s1 * s1 / n, 0.0) * (t_next - t_prev)
            t_prev = t_next
        if t_next >= t_end:
            break
        p = ptr[jn]
        old = seg_rel[jn, p - 1] - c
        new = seg_rel[jn, p] - c
        s1 += new - old
        s2 += new * new - old * old
        ptr[jn] = p + 1
        key = seg_hi[jn, p + 1] if p + 1 < n_seg[jn] else np.inf
        head = order_requeue(hk, hid, head, key, jn)
    return total


def energy_spread(trace) -> float:
    """``Σ_i ∫_0^T (ω_i - ω̄)² dt`` (s), ``ω̄`` the mean over nodes at each instant.

    This is the part of :func:`energy` that the controller spends pulling the
    nodes together (what :func:`~tidesim.studies.analysis.predicted_energy`
    predicts); it is exact, computed from the segments (with the segment
    boundaries :func:`energy` uses).
    """
    if trace.until_s <= 0:
        return 0.0
    return float(_spread_energy(trace.seg_hi, trace.seg_rel, trace.n_seg, float(trace.until_s)))


# ------------------------------------------------------------------------- counts


def max_abs_count_per_link(trace, kind: str = "measured") -> np.ndarray:
    """Largest ``|count|`` of each link over the run (int64 ``[L]``).

    Args:
        trace: a run.
        kind: ``"measured"`` (what the controller saw), ``"buffer"`` (the
            elastic-buffer count relative to its reference) or ``"ddc"``
            (the domain difference counter).
    """
    if kind == "measured":
        kind = "ddc" if trace.system.measure == "ddc" else "buffer"
    if kind not in ("buffer", "ddc"):
        from ..errors import ConfigError

        raise ConfigError("kind", kind, "must be one of ['measured', 'buffer', 'ddc']")
    arr = trace.ddc if kind == "ddc" else trace.counts
    out = np.zeros(trace.links.shape[0], dtype=np.int64)
    _max_abs(_time_major(arr), np.ascontiguousarray(trace.links[:, 1]), trace.n_samp, out)
    return out


# The kernels below read the recorded arrays time-major (``[sample, link]``,
# the layout the core records in); other layouts are copied into it first.


def _time_major(arr: np.ndarray) -> np.ndarray:
    """``arr[link, sample]`` as a C-contiguous ``[sample, link]`` array."""
    return np.ascontiguousarray(arr.T)


@njit
def _max_abs(arr, dst, n_samp, out):
    """Largest ``|arr[k, l]|`` over each link's recorded samples (``arr[sample, link]``)."""
    n_links = arr.shape[1]
    q_end = np.empty(n_links, dtype=np.int64)
    q_min = arr.shape[0]
    q_max = 0
    for l in range(n_links):
        q_end[l] = n_samp[dst[l]]
        q_min = min(q_min, q_end[l])
        q_max = max(q_max, q_end[l])
    # the samples every link has, with no test per entry
    for k in range(q_min):
        for l in range(n_links):
            out[l] = max(out[l], abs(np.int64(arr[k, l])))
    for k in range(q_min, q_max):
        for l in range(n_links):
            if k < q_end[l]:
                out[l] = max(out[l], abs(np.int64(arr[k, l])))


def link_stability(trace) -> dict[str, np.ndarray]:
    """Each link's stability detector at the end of the run.

    The core runs the detector (``tidesim.models._kernels.stability_update``)
    on every link at every sample and keeps its state; this reads it. At the
    sample where a buffer armed on stability (``buffer.arm = "stable"``) is
    centred, the detector sees the count before centring.

    Returns:
        ``{"up", "stable", "settled": bool[L], "reference": int64[L],
        "since_s": float64[L]}``: *stable* as the detector reports it at the
        last sample, *settled* when also ``|reference| < margin``. Links that
        never came up are neither (their ``since_s`` is NaN).
    """
    from ..models import _kernels as K

    ls, lf = trace.link_state, trace.link_fstate
    up = np.asarray(trace.link_up, dtype=bool)
    ref = ls[:, K.LS_STREF].copy()
    stable = (ls[:, K.LS_STABLE] == 1) & up
    return {
        "up": up,
        "stable": stable,
        "settled": stable & (np.abs(ref) < trace.system.stability.margin),
        "reference": ref,
        "since_s": lf[:, K.LF_STSINCE].copy(),
    }


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
    * convergence: ``converged``, ``settle_time_s`` (None when not
      converged), ``links_stable``, ``links_settled`` (at the end, from
      :func:`link_stability`), ``all_settled``;
    * frequency: ``final_frequency_ppm`` (mean final offset),
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
        "converged": settle is not None,
        "settle_time_s": settle,
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
    sys = trace.system
    offsets = trace.final_offsets_ppm
    settle = settle_time_s(trace)
    max_abs = int(max_abs_count_per_link(trace).max(initial=0))
    ugn = trace.ugn
    return {
        "name": sys.name,
        "nodes": sys.n_nodes,
        "links": int(trace.links.shape[0]),
        "topology": sys.topology.name,
        "fidelity": trace.fidelity,
        "simulated_s": float(trace.until_s),
        "converged": settle is not None,
        "settle_time_s": settle,
        "final_offsets_ppm": [float(x) for x in offsets],
        "final_spread_ppb": float((offsets.max() - offsets.min()) * 1e3),
        "max_abs_count": max_abs,
        "measure": sys.measure,
        "energy": energy(trace),
        "faults": [f.as_dict() for f in trace.faults],
        "ugn": [[int(i), int(j), int(ugn[l])] for l, (i, j) in enumerate(trace.links)
                if trace.link_up[l]],
        "stopped_early": trace.stopped_early,
    }
