"""The precision decision of docs/model.md, checked at 1e9 cycles.

Edge times are computed from double-double segment anchors, never by
accumulating periods. Against an exact rational reference built from the same
segments, the error of an edge time stays within one rounding of a float64 of
its own magnitude, at cycle 1e9 as at cycle 1.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from tidesim.controllers import PI
from tidesim.models import ElasticBuffer, System, Topology


def exact_anchor_times(trace, node):
    """Exact (Fraction) time of every segment anchor of ``node``."""
    n = int(trace.n_seg[node])
    k = trace.seg_k[node, :n]
    P = trace.seg_P[node, :n]
    out = [Fraction(float(trace.seg_hi[node, 0])) + Fraction(float(trace.seg_lo[node, 0]))]
    for s in range(1, n):
        out.append(out[-1] + (int(k[s]) - int(k[s - 1])) * Fraction(float(P[s - 1])))
    return out


def test_edge_times_do_not_drift_over_1e9_cycles():
    f0 = 125e6
    topo = Topology.line(2, latency_s=1e-8)
    sys = System(topo, f_nom_hz=f0, offsets_ppm=[37.3, -41.9], wander_ppb_per_sqrt_s=200.0,
                 seed=3, controller=PI(kp=3e-7), buffer=ElasticBuffer(depth=0))
    trace = sys.run(until_cycles=1_000_000_000)
    assert trace.until_s == 1e9 / f0
    for node in range(2):
        n = int(trace.n_seg[node])
        assert n > 30_000  # tens of thousands of frequency changes
        anchors = exact_anchor_times(trace, node)
        k = trace.seg_k[node, :n]
        P = trace.seg_P[node, :n]
        worst_ulps = 0.0
        for s in np.linspace(1, n - 2, 200).astype(int):
            for cycle in (int(k[s]) + 1, int(k[s]) + 12_345, int(k[s + 1])):
                exact = anchors[s] + (cycle - int(k[s])) * Fraction(float(P[s]))
                got = trace.edge_time(node, cycle)
                err = abs(Fraction(got) - exact)
                worst_ulps = max(worst_ulps, float(err) / np.spacing(got))
        # the last edge of the run, near cycle 1e9
        last = int(k[n - 1]) + 1000
        exact = anchors[n - 1] + (last - int(k[n - 1])) * Fraction(float(P[n - 1]))
        got = trace.edge_time(node, last)
        assert last > 999_000_000
        worst_ulps = max(worst_ulps, float(abs(Fraction(got) - exact)) / np.spacing(got))
        assert worst_ulps <= 1.0, worst_ulps
        assert float(abs(Fraction(got) - exact)) < 2e-15  # about 1 fs at t = 8 s


def test_repeated_addition_would_drift():
    """What the design avoids: t += period over 1e7 cycles is already off by ps."""
    period = 1.0 / (125e6 * (1 + 37.3e-6))
    t = 0.0
    for _ in range(10_000_000 // 1000):
        t += period * 1000  # even in steps of 1000 cycles
    exact = Fraction(period) * 10_000_000
    naive_err = abs(Fraction(t) - exact)
    from tidesim.models._kernels import anchor_advance

    hi, lo = 0.0, 0.0
    for _ in range(10_000_000 // 1000):
        hi, lo = anchor_advance(hi, lo, period, 1000)
    dd_err = abs(Fraction(hi) + Fraction(lo) - exact)
    assert dd_err < naive_err / 1000
    assert float(dd_err) < 1e-20


def _arrives(hi, lo, k0, P, lat, k, t):
    """The arrival predicate of the core: edge ``k`` plus the latency is by ``t``."""
    return hi + (lo + (k - k0) * P) + lat <= t


def test_phase_shortcut_never_disagrees_with_the_edge_times():
    """Event fidelity takes the last arrival from the phase where it is far from
    an edge (``PHASE_TOL``); there it must equal what the rounded edge times say,
    and near an edge it must leave the decision to them."""
    from tidesim.models._kernels import PHASE_TOL, arrival_from_phase

    rng = np.random.default_rng(20261122)
    decided_random = near_edges = 0
    trials = 4000
    for _ in range(trials):
        f0 = float(rng.choice([1.0, 1e6, 125e6, 1e9]))
        rel = float(rng.uniform(-2e-3, 2e-3))
        F = f0 * (1.0 + rel)
        P = 1.0 / F
        hi = float(rng.uniform(0.0, 3600.0))
        lo = float(rng.uniform(-0.5, 0.5)) * np.spacing(hi)
        k0 = int(rng.integers(0, 1 << 40))
        lat = float(rng.choice([0.0, rng.uniform(0.0, 1e3 * P)]))
        k_edge = k0 + int(rng.integers(0, int(min(1e12, 3600.0 * F)) + 1))
        e = hi + (lo + (k_edge - k0) * P) + lat
        times = [e, float(rng.uniform(hi, hi + 3600.0))]
        times += [float(np.nextafter(e, np.inf if d > 0 else -np.inf)) for d in (1, -1)]
        times += [e + d * np.spacing(e) for d in (2, 3, -2, -3)]
        for n_t, t in enumerate(times):
            # the least band the proof allows (the core's is wider)
            band = PHASE_TOL * (abs(t) + abs(hi) + lat) * F
            k, decided = arrival_from_phase(hi, lo, k0, F, t, lat, band)
            if n_t == 1:
                decided_random += decided
            if not decided:
                continue
            if n_t != 1:
                near_edges += 1
            assert _arrives(hi, lo, k0, P, lat, k, t), (hi, lo, k0, F, t, lat)
            assert not _arrives(hi, lo, k0, P, lat, k + 1, t), (hi, lo, k0, F, t, lat)
    # the shortcut decides almost every time away from edges, and (rightly)
    # rarely within a few ulps of one
    assert decided_random > 0.95 * trials
    assert near_edges < 0.2 * 7 * trials
