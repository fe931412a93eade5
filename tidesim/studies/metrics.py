"""Metrics of a run: settle time, spread, energy, largest counts.

All metrics are computed from a :class:`~tidesim.models.Trace` after the run.
"""

from __future__ import annotations

import numpy as np

from ..models._kernels import segment_energy

__all__ = ["energy", "settle_time_s", "summary"]


def energy(trace) -> float:
    """``Σ_i ∫_0^T (f_i/f_nom - 1)^2 dt`` with t in seconds (Callisto's criterion)."""
    return float(segment_energy(trace.seg_t, trace.seg_rel, trace.n_seg, trace.until_s))


def settle_time_s(trace) -> float | None:
    """Earliest time after which every link is stable at every sample, or None.

    Stability is the detector of :class:`~tidesim.models.Stability`
    (count within ±margin of a reference for a window). Links that never came
    up do not count.
    """
    settle = 0.0
    for l in range(trace.links.shape[0]):
        j = int(trace.links[l, 1])
        q = int(trace.n_samp[j])
        if q == 0 or not trace.link_up[l]:
            continue
        st = trace.stable[l, :q]
        if st[-1] == 0:
            return None
        bad = np.flatnonzero(st == 0)
        first = 0 if bad.size == 0 else int(bad[-1]) + 1
        settle = max(settle, float(trace.samp_t[j, first]))
    return settle


def summary(trace) -> dict:
    """The JSON summary of ``tidesim run --json`` (without run-level keys)."""
    sys = trace.system
    offsets = trace.final_offsets_ppm
    settle = settle_time_s(trace)
    max_abs = 0
    for l in range(trace.links.shape[0]):
        c = trace.measured(l)
        if c.size:
            max_abs = max(max_abs, int(np.abs(c.astype(np.int64)).max()))
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
