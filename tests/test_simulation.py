"""A Simulation advanced in pieces is the run advanced at once, in every recording.

``System.start()`` gives a :class:`~tidesim.models.Simulation`; ``advance`` may
be called any number of times. These tests hold it to bit-identical results
against one call, and check the summary the core accumulates while running
against the same quantities computed afterwards from the full records.
"""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from test_fidelity import systems

from tidesim.config import build_system, load_config, validate
from tidesim.errors import ConfigError
from tidesim.models import simulation as simulation_module
from tidesim.testing import assert_same_run


def rig(**overrides):
    return build_system(validate(load_config({"preset": "hitl8", "seed": 1, **overrides})))


def in_pieces(system, cuts, **kwargs):
    sim = system.start(**kwargs)
    for t in cuts:
        assert sim.advance(t) is sim
        assert sim.time_s == t
    return sim.trace()


@pytest.mark.slow
def test_hitl8_60s_in_six_calls_is_one_call():
    system = rig()
    whole = system.run(until_s=60.0)
    pieces = in_pieces(system, [10.0 * k for k in range(1, 7)])
    assert_same_run(whole, pieces)
    assert whole.summary() == pieces.summary()
    # the same run kept as a summary only: the same summary, in one or six calls
    lean = system.run(until_s=60.0, record="summary")
    lean6 = in_pieces(system, [10.0 * k for k in range(1, 7)], record="summary")
    assert_same_run(lean, lean6, samples=False, history=False)
    assert_same_run(whole, lean, samples=False, history=False)


def test_hitl8_cycle_fidelity_in_six_calls_is_one_call():
    # 60 ms: a minute of the rig edge by edge would take half an hour
    system = rig()
    whole = system.run(until_s=0.06, fidelity="cycle")
    pieces = in_pieces(system, [0.01 * k for k in range(1, 7)], fidelity="cycle")
    assert_same_run(whole, pieces)
    event = system.run(until_s=0.06)
    assert_same_run(whole, event)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(systems(), st.lists(st.floats(1e-4, 0.01), min_size=1, max_size=5),
       st.sampled_from(["event", "cycle"]), st.sampled_from(["full", "summary", 3]))
def test_random_systems_in_pieces(system, cuts, fidelity, record):
    """Random systems, cut anywhere, with a tiny segment window and wander draws
    refilled every few samples: the pieces are the whole."""
    cuts = sorted(set(cuts))
    until = cuts[-1]
    with mock.patch.object(simulation_module, "_WINDOW", 6), \
            mock.patch.object(simulation_module, "_WANDER_DRAWS", 3):
        pieces = in_pieces(system, cuts, fidelity=fidelity, record=record)
        small = system.run(until_s=until, fidelity=fidelity, record=record)
    whole = system.run(until_s=until, fidelity=fidelity, record=record)
    kept = record != "summary"
    assert_same_run(whole, pieces, samples=kept, history=record == "full")
    assert_same_run(whole, small, samples=kept, history=record == "full")
    if record != "full":
        full = system.run(until_s=until, fidelity=fidelity)
        assert_same_run(full, whole, samples=False, history=False)
        if record == 3:
            # every third sample of each node
            for name in ("samp_t", "samp_m", "samp_c", "samp_des"):
                a, b = getattr(full, name), getattr(whole, name)
                assert_array_equal(a[:, ::3][:, : b.shape[1]], b, err_msg=name)
            assert_array_equal(full.counts[:, ::3][:, : whole.counts.shape[1]], whole.counts)


def test_a_trace_does_not_change_when_the_run_goes_on():
    system = rig()
    sim = system.start()
    first = sim.advance(0.5).trace()
    copy = {k: np.array(getattr(first, k)) for k in ("counts", "samp_t", "seg_rel", "n_seg")}
    ugn = first.ugn.copy()
    sim.advance(1.5)
    for k, v in copy.items():
        assert_array_equal(getattr(first, k), v, err_msg=k)
    assert_array_equal(first.ugn, ugn)
    assert first.until_s == 0.5
    assert_same_run(sim.trace(), system.run(until_s=1.5))


def test_summary_memory_does_not_grow_with_simulated_time():
    system = rig()
    sim = system.start(record="summary")
    sim.advance(2.0)
    slots = sim._N.seg.shape[1]
    sim.advance(20.0)
    assert sim._N.seg.shape[1] == slots  # the segment window was reused, not grown
    trace = sim.trace()
    assert trace.n_updates.min() > 90_000
    with pytest.raises(ConfigError, match="run.record: must be 'full' or an integer"):
        trace.counts  # noqa: B018
    with pytest.raises(ConfigError, match="must be 'full' to read Trace.segments"):
        trace.segments(0)


def test_advance_refuses_going_back_and_bad_times():
    system = rig()
    sim = system.start()
    sim.advance(0.1)
    with pytest.raises(ConfigError, match="must not be before the run's time"):
        sim.advance(0.05)
    with pytest.raises(ConfigError, match="run.until_s: must be a finite number"):
        sim.advance(math.nan)
    with pytest.raises(ConfigError, match="below 2\\*\\*62 cycles"):
        sim.advance(1e30)
    with pytest.raises(ConfigError, match="run.record"):
        system.start(record="sometimes")
    sim.advance(0.1)  # the same time again: nothing to do
    assert sim.time_s == 0.1


def test_full_recording_that_cannot_fit_is_refused_before_running():
    system = rig()
    with pytest.raises(ConfigError, match="must fit in memory"):
        system.run(until_s=1e6)


# ------------------------------------------------------------------ the running summary


def _settle_from_flags(trace):
    """The settle time from the recorded flags: the first sample after each link's
    last unstable one, latest over the links that came up."""
    settle = 0.0
    for l in np.flatnonzero(trace.link_up):
        j = int(trace.links[l, 1])
        q = int(trace.n_samp[j])
        stable = trace.stable[l, :q]
        if q == 0 or stable[-1] == 0:
            return None
        bad = np.flatnonzero(stable == 0)
        first = bad[-1] + 1 if bad.size else 0
        settle = max(settle, float(trace.samp_t[j, first]))
    return settle


def _energy_from_segments(trace, t_end, epoch):
    """``Σ_j ∫ rel² dt`` by brute force over the full segment history."""
    total = 0.0
    for j in range(trace.n_nodes):
        starts, rel = trace.segments(j)
        edges = np.append(starts, math.inf)
        edges[0] = epoch
        for s in range(rel.size):
            a, b = edges[s], min(edges[s + 1], t_end)
            if b > a:
                total += rel[s] ** 2 * (b - a)
    return total


def _spread_from_segments(trace, t_end, epoch):
    """``Σ_j ∫ (rel_j - mean)² dt`` on a grid of every segment start."""
    times = np.unique(np.concatenate([trace.segments(j)[0][1:] for j in range(trace.n_nodes)]
                                     + [[epoch, t_end]]))
    times = times[(times >= epoch) & (times <= t_end)]
    total = 0.0
    for a, b in zip(times[:-1], times[1:], strict=True):
        rel = np.array([trace.segments(j)[1][np.searchsorted(trace.segments(j)[0][1:], a,
                                                             side="right")]
                        for j in range(trace.n_nodes)])
        total += float(((rel - rel.mean()) ** 2).sum()) * (b - a)
    return total


@pytest.mark.parametrize("preset,until", [("hitl8", 20.0), ("hitl-hourglass3", 10.0),
                                          ("callisto-test", 2e7), ("hitl-diamond", 6.0)])
def test_running_summary_matches_the_records(preset, until):
    cfg = validate(load_config({"preset": preset, "run": {"until_s": until}}))
    system = build_system(cfg)
    trace = system.run(until_s=until)
    lean = system.run(until_s=until, record="summary")
    assert trace.settle_time_s == _settle_from_flags(trace) == lean.settle_time_s
    for kind, arr in (("buffer", trace.counts), ("ddc", trace.ddc)):
        per_link = np.abs(arr.astype(np.int64)).max(axis=1, initial=0)
        assert_array_equal(trace.max_abs_count(kind), per_link)
        assert_array_equal(lean.max_abs_count(kind), per_link)
    epoch = -10.0 * float(system.topology.latency_s.max())
    assert trace.energy == pytest.approx(_energy_from_segments(trace, until, epoch), rel=1e-12)
    assert trace.energy_spread == pytest.approx(_spread_from_segments(trace, until, epoch),
                                                rel=1e-9, abs=1e-30)
    assert lean.energy == trace.energy and lean.energy_spread == trace.energy_spread
    # faults counted during each link's last stable run
    after = 0
    for l in np.flatnonzero(trace.link_up & ~np.isnan(trace.stable_from_s)):
        j = int(trace.links[l, 1])
        t0 = trace.stable_from_s[l]
        assert trace.stable[l, int(np.searchsorted(trace.samp_t[j, : trace.n_samp[j]], t0))]
        after += sum(1 for f in trace.faults if f.link == l and f.time_s >= t0)
    assert (trace.faults_after_settle > 0) == (after > 0) or trace.faults_after_settle > 0


# ------------------------------------------------------------------ logical latency


def _round_trip_frames(trace, l, r):
    """Whole frames a link pair holds in flight at least: each direction's latency
    times its sender's slowest rate, rounded down."""
    lat = trace.system.topology.latency_s
    f0 = trace.system.f_nom_hz
    out = 0
    for link in (l, r):
        i = int(trace.links[link, 0])
        slowest = float(trace.segments(i)[1].min())
        out += int(np.floor(lat[link] * f0 * (1 + slowest)))
    return out


def _assert_round_trips(trace):
    """``λ_ij + λ_ji >= round trip`` for every pair reported at the end, and at
    every sample of each direction (with the other direction's λ then)."""
    rev = trace.system.topology.reverse()
    lam = trace.logical_latency()
    ugn = trace.ugn
    pairs = 0
    for l in np.flatnonzero(trace.ugn_reported):
        r = int(rev[l])
        rt = _round_trip_frames(trace, l, r)
        assert ugn[l] + ugn[r] >= rt, (l, r, ugn[l], ugn[r], rt)
        j, i = (int(x) for x in trace.links[l, ::-1])  # receivers of l and r
        tj, ti = trace.link_times(l), trace.link_times(r)
        lj, li = lam[l, : tj.size], lam[r, : ti.size]
        for q in np.flatnonzero(~np.ma.getmaskarray(lj)):
            p = int(np.searchsorted(ti, tj[q], side="right")) - 1
            if p >= 0 and not np.ma.is_masked(li[p]):
                assert lj[q] + li[p] >= rt, (l, r, q, lj[q], li[p], rt)
                pairs += 1
    return pairs


@pytest.mark.parametrize("preset,until", [("hitl-diamond", 12.0), ("hitl-hourglass3", 30.0),
                                          ("hitl-star7", 20.0), ("callisto-test", 2e8)])
def test_round_trip_of_reported_pairs(preset, until):
    """A real λ can be any integer, but a pair's sum is what a frame's round trip
    takes: never less than the frames in flight both ways."""
    cfg = validate(load_config({"preset": preset, "run": {"until_s": until}}))
    trace = build_system(cfg).run(until_s=until)
    assert trace.ugn_reported.any()
    assert _assert_round_trips(trace) > 100
    if cfg.buffer.arm != "link_up":
        # a buffer not yet armed has no λ: the rig before its links are stable
        early = build_system(cfg).run(until_s=1.0)
        assert not early.ugn_reported.any()
        assert early.ugn.mask.all() and early.ugn_matrix().mask.all()


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(systems(), st.sampled_from([0.004, 0.01]))
def test_round_trips_of_random_systems(system, until_s):
    if system.buffer.adjustments:
        return  # an adjustment moves λ by design
    trace = system.run(until_s=until_s)
    if trace.faults:
        return  # a fault moves λ (by each frame dropped or read missing)
    _assert_round_trips(trace)


# ------------------------------------------------------------------ converged


def _summary(cfg: dict, until: float) -> dict:
    rc = validate(load_config({**cfg, "run": {"until_s": until}}))
    return build_system(rc).run(until_s=until, record="summary").summary()


def test_faulting_buffers_have_not_converged():
    """±1 % offsets: counts pinned at the buffers' ends look stable, but frames
    keep dropping; faults after settling mean not converged."""
    s = _summary({"preset": "hitl8", "clock": {"offsets_ppm": {"random_ppm": 1e4}},
                  "buffer": {"arm": "link_up"}, "control": {"measure": "buffer"}}, 20.0)
    assert s["settle_time_s"] is not None
    assert s["faults"] and s["faults_after_settle"] > 0
    assert s["converged"] is False
    assert any("while their links were stable" in w for w in s["warnings"])


def test_runaway_common_frequency_has_not_converged():
    """A PI ring whose integrator drives every node the same way: the links are
    stable, the common frequency drifts to percent level."""
    s = _summary({"topology": {"kind": "cycle", "n": 5},
                  "clock": {"offsets_ppm": [10, -5, 3, 0, -8]},
                  "controller": {"kind": "pi", "kp": 1e-8, "ki": 1e-11}}, 20.0)
    assert abs(s["common_offset_ppm"]) > 1000
    assert s["settle_time_s"] is not None and s["faults"] == []  # stable, no fault
    assert s["converged"] is False
    assert any("ran away" in w for w in s["warnings"])


def test_a_run_without_samples_has_not_converged():
    """0.05 s of a 1 Hz clock: no sample, nothing known."""
    s = _summary({"topology": {"kind": "complete", "n": 3}, "clock": {"f_nom_hz": 1.0},
                  "control": {"update_period_ticks": 2}}, 0.05)
    assert s["settle_time_s"] is None and s["converged"] is False


def test_a_settled_rig_has_converged():
    s = _summary({"preset": "hitl-diamond"}, 20.0)
    assert s["converged"] is True and s["warnings"] == [] and s["faults_after_settle"] == 0
