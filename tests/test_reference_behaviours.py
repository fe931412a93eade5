"""The public reference behaviours of a bittide system (see docs/model.md).

* β(0) = beta0 for any θ0 and latency: a link comes up holding exactly its
  reference occupancy, and the logical latency is fixed by that.
* A constant frequency difference Δω gives dβ/dt = Δω; β is an integer.
* Elastic buffers: a faster writer overflows and a slower one underflows (and
  never the other way round); a +N adjustment gives N fill cycles (−N drops N
  writes); auto-centring keeps the count near 0.
* The logical latency λ (UGN): a frame sent at sender cycle s is read at
  receiver cycle s + λ.
* Event and cycle fidelity agree exactly.

Quantities are recomputed independently of the kernels from the edge times
(``Trace.edge_time``) and the link latencies: ``A(t)``, the last sender edge
whose frame has arrived by ``t``, and ``R(t)``, the last receiver edge by ``t``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from tidesim.controllers import PI
from tidesim.models import (
    Actuator,
    Adjustment,
    ElasticBuffer,
    Stability,
    System,
    Topology,
)
from tidesim.testing import assert_same_run

FIDELITIES = ["event", "cycle"]


# --------------------------------------------------------------------------- helpers


def last_edge(trace, node: int, x: float, lat: float = 0.0) -> int:
    """Largest edge ``k`` of ``node`` with ``edge_time(node, k) + lat <= x``."""
    lo, hi = -(10**9), 10**13
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if trace.edge_time(node, mid) + lat <= x:
            lo = mid
        else:
            hi = mid
    return lo


def arrived(trace, link: int, x: float) -> int:
    """``A(x)``: the last sender edge of ``link`` whose frame has arrived by ``x``."""
    i = int(trace.links[link, 0])
    return last_edge(trace, i, x, float(trace.system.topology.latency_s[link]))


def read(trace, link: int, x: float) -> int:
    """``R(x)``: the last receiver edge of ``link`` at or before ``x``."""
    return last_edge(trace, int(trace.links[link, 1]), x)


def link_up_s(trace, link: int) -> float:
    i, j = (int(v) for v in trace.links[link])
    return max(trace.system.start_s[i], trace.system.start_s[j])


def first_sample_at_or_after(trace, link: int, t: float) -> int:
    times = trace.link_times(link)
    return int(np.searchsorted(times, t, side="left"))


def two_nodes(offsets_ppm=(0.0, 0.0), **kwargs) -> System:
    latency_s = kwargs.pop("latency_s", 1e-8)
    return System(Topology.line(2, latency_s=latency_s), offsets_ppm=list(offsets_ppm),
                  **kwargs)


# --------------------------------------------------------------------------- β(0) = beta0

BETA0 = 50


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    theta0=st.tuples(st.floats(0.0, 0.999), st.floats(0.0, 0.999)),
    latency_ticks=st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0, 2.5, 17.0]),
                            st.floats(0.0, 400.0)),
    offsets=st.tuples(st.floats(-200.0, 200.0), st.floats(-200.0, 200.0)),
    start_s=st.tuples(st.sampled_from([0.0, 0.0, 3.3e-5, 1e-4]),
                      st.sampled_from([0.0, 0.0, 2e-5, 1e-4])),
)
@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_link_comes_up_holding_beta0(fidelity, theta0, latency_ticks, offsets, start_s):
    """At link-up the buffer holds beta0 frames, whatever θ0, latency and start.

    Then ``β(t) = λ + A(t) − R(t)`` with ``λ = beta0 − A(t_up) + R(t_up)``
    (computed here from the edge times alone), so ``β(t_up) = beta0``; every
    sampled count, the ddc and the final λ follow from it.
    """
    f0 = 125e6
    system = two_nodes(offsets, latency_s=latency_ticks / f0, f_nom_hz=f0,
                       theta0=list(theta0), start_s=list(start_s), update_period_ticks=1000,
                       buffer=ElasticBuffer(depth=0, reference=BETA0))
    trace = system.run(until_s=max(start_s) + 4e-5, fidelity=fidelity)
    assert trace.faults == []
    for link in range(2):
        j = int(trace.links[link, 1])
        t_up = link_up_s(trace, link)
        a0, r0 = arrived(trace, link, t_up), read(trace, link, t_up)
        lam = BETA0 - a0 + r0
        assert trace.ugn[link] == lam
        counts = trace.link_counts(link)
        ddc = trace.link_counts(link, ddc=True)
        times = trace.link_times(link)
        q_up = first_sample_at_or_after(trace, link, t_up)
        assert q_up < len(times)
        # not up yet: nothing recorded
        assert not counts[:q_up].any() and not ddc[:q_up].any()
        for q in range(q_up, len(times)):
            t = float(times[q])
            a, r = arrived(trace, link, t), read(trace, link, t)
            assert r == trace.samp_m[j, q]
            assert counts[q] == lam + a - r - BETA0, (q, t)
            assert ddc[q] == (a - r) - (a0 - r0), (q, t)
        # the first sample is at or after t_up: it has seen only the reads and
        # arrivals since then, each at most one period's worth
        t1 = float(times[q_up])
        assert counts[q_up] == (arrived(trace, link, t1) - a0) - (read(trace, link, t1) - r0)


@pytest.mark.parametrize("fidelity", FIDELITIES)
@pytest.mark.parametrize("theta_sender", [0.0, 0.25, 0.9])
@pytest.mark.parametrize("latency_s", [0.0, 1e-8, 3.3e-8, 1e-6])
def test_count_is_zero_when_the_receiver_samples_at_link_up(fidelity, theta_sender, latency_s):
    """Node 1 has θ0 = 0, so its first sample is at t = 0 = t_up: count 0 exactly."""
    system = two_nodes((35.0, -20.0), latency_s=latency_s, theta0=[theta_sender, 0.0],
                       update_period_ticks=1000, buffer=ElasticBuffer(depth=0, reference=BETA0))
    trace = system.run(until_s=2e-5, fidelity=fidelity)
    link = system.topology.link_index(0, 1)
    assert trace.link_times(link)[0] == 0.0
    assert trace.link_counts(link)[0] == 0
    assert trace.link_counts(link, ddc=True)[0] == 0


@pytest.mark.parametrize("fidelity", FIDELITIES)
@pytest.mark.parametrize("q_up", [1, 7])
def test_count_is_zero_when_a_late_link_comes_up_at_a_sample(fidelity, q_up):
    """With ``start_s > 0`` the link comes up holding beta0 frames too."""
    kwargs = dict(latency_s=2.7e-8, theta0=[0.3, 0.7], update_period_ticks=1000,
                  buffer=ElasticBuffer(depth=0, reference=BETA0))
    free = two_nodes((30.0, -20.0), **kwargs).run(until_s=1e-4)
    link = free.system.topology.link_index(0, 1)
    t_up = float(free.link_times(link)[q_up])  # a sample time of node 1
    system = two_nodes((30.0, -20.0), start_s=[0.0, t_up], **kwargs)
    trace = system.run(until_s=1e-4, fidelity=fidelity)
    assert_array_equal(trace.link_times(link), free.link_times(link))  # same clocks
    counts = trace.link_counts(link)
    assert not counts[:q_up].any()
    assert counts[q_up] == 0
    assert trace.link_counts(link, ddc=True)[q_up] == 0
    assert trace.ugn[link] == BETA0 - arrived(trace, link, t_up) + read(trace, link, t_up)
    # the reverse link comes up at the same time; node 0 samples at another
    # time, within one period of it
    rev = system.topology.link_index(1, 0)
    q_rev = first_sample_at_or_after(trace, rev, t_up)
    assert not trace.link_counts(rev)[:q_rev].any()
    assert abs(int(trace.link_counts(rev)[q_rev])) <= 1


# --------------------------------------------------------------------------- dβ/dt = Δω

RATE_CASES = [
    # fidelity, f0 (Hz), Δ (ppm), until (s), update period (ticks)
    pytest.param("event", 125e6, 50.0, 0.2, 25_000, id="event-125MHz"),
    pytest.param("event", 1e6, 1234.0, 1.0, 1000, id="event-1MHz"),
    pytest.param("cycle", 1e6, 1234.0, 1.0, 1000, id="cycle-1MHz"),
]


@pytest.mark.parametrize(("fidelity", "f0", "delta_ppm", "until_s", "p"), RATE_CASES)
def test_constant_frequency_difference_gives_linear_count(fidelity, f0, delta_ppm, until_s, p):
    system = two_nodes((delta_ppm, 0.0), f_nom_hz=f0, update_period_ticks=p,
                       theta0=[0.1, 0.6], buffer=ElasticBuffer(depth=0))
    trace = system.run(until_s=until_s, fidelity=fidelity)
    topo = system.topology
    rate = f0 * delta_ppm * 1e-6  # frames per second
    for src, dst, sign in ((0, 1, +1), (1, 0, -1)):
        link = topo.link_index(src, dst)
        t = trace.link_times(link)
        c = trace.link_counts(link)
        assert len(t) > 500
        assert np.issubdtype(c.dtype, np.integer)
        slope = np.polyfit(t, c.astype(np.float64), 1)[0]
        assert abs(slope / (sign * rate) - 1) < 1e-3, (src, dst, slope, rate)
        # between two samples (p receiver ticks) the count moves by the drift
        # over p ticks rounded down or up: a small integer step
        f_src = 1 + system.offsets_ppm[src] * 1e-6
        f_dst = 1 + system.offsets_ppm[dst] * 1e-6
        per_update = p * (f_src / f_dst - 1)
        steps = np.diff(c.astype(np.int64))
        assert set(np.unique(steps)) <= {math.floor(per_update), math.ceil(per_update)}
        # an ideal buffer is the domain difference counter
        assert_array_equal(c, trace.link_counts(link, ddc=True))
        assert trace.faults == []


# --------------------------------------------------------------------------- over- and underflow

DEPTH = 32
REF = DEPTH // 2


@pytest.mark.parametrize("fidelity", FIDELITIES)
@pytest.mark.parametrize("fast", [0, 1])
def test_faster_writer_overflows_slower_writer_underflows(fidelity, fast):
    f0 = 125e6
    offsets = [100.0, -100.0] if fast == 0 else [-100.0, 100.0]
    slow = 1 - fast
    until = 2e-3
    system = two_nodes(offsets, latency_s=1.3e-8, theta0=[0.2, 0.55],
                       buffer=ElasticBuffer(depth=DEPTH))
    trace = system.run(until_s=until, fidelity=fidelity)
    assert not trace.stopped_early
    topo = system.topology
    fast_to_slow = topo.link_index(fast, slow)
    slow_to_fast = topo.link_index(slow, fast)
    faults = trace.faults
    assert {(f.link, f.kind) for f in faults} == {(fast_to_slow, "overflow"),
                                                  (slow_to_fast, "underflow")}
    assert [f.time_s for f in faults] == sorted(f.time_s for f in faults)
    drift = f0 * 200e-6  # frames per second between the two clocks
    for f in faults:
        src, dst = (int(v) for v in trace.links[f.link])
        assert (f.node, f.src) == (dst, src)
        assert f.count > 0
        assert 0.0 < f.time_s <= until
        assert f.cycle > 0
        # the buffer starts REF frames from either end: the first fault comes
        # after REF frames of drift
        assert abs(f.time_s - REF / drift) < 2 / drift, f
        before = trace.edge_time(dst, f.cycle - 1)
        at = trace.edge_time(dst, f.cycle)
        if f.kind == "overflow":
            # the dropped write came after read cycle-1 and at or before read cycle
            assert before < f.time_s <= at, f
            # ... and it is the arrival of a frame of the sender
            k = last_edge(trace, src, f.time_s, float(topo.latency_s[f.link]))
            assert trace.edge_time(src, k) + float(topo.latency_s[f.link]) == f.time_s
        else:
            # the invalid read happened at the receiver edge `cycle`
            assert at == f.time_s, f

    # every frame is accounted for: occupancy = reference + arrivals − reads
    # − dropped writes + invalid reads; λ moves down by the drops, up by the
    # invalid reads
    for link in (fast_to_slow, slow_to_fast):
        f = next(x for x in faults if x.link == link)
        a0, r0 = arrived(trace, link, 0.0), read(trace, link, 0.0)
        da = arrived(trace, link, until) - a0
        dr = read(trace, link, until) - r0
        occ = int(trace.buffer_state()["occupancy"][link])
        lam0 = REF - a0 + r0
        if f.kind == "overflow":
            assert f.count == REF + da - dr - occ
            assert trace.ugn[link] == lam0 - f.count
            assert occ >= DEPTH - 1
        else:
            assert f.count == occ - REF - da + dr
            assert trace.ugn[link] == lam0 + f.count
            assert occ <= 1
        # counts saturate at the ends of the buffer; the ddc does not
        counts = trace.link_counts(link)
        assert counts.min() >= -REF and counts.max() <= DEPTH - REF
        ddc = trace.link_counts(link, ddc=True)
        assert abs(int(ddc[-1])) > DEPTH


# --------------------------------------------------------------------------- adjustments

ADJ_P = 2500  # 20 µs at 125 MHz
ADJ_AT = 5e-5


def _adjusted(frames: int | None, link: int = 1, **kwargs) -> System:
    adjustments = () if frames is None else (Adjustment(link, ADJ_AT, frames),)
    return two_nodes((0.0, 0.0), theta0=[0.1, 0.4], update_period_ticks=ADJ_P,
                     buffer=ElasticBuffer(depth=DEPTH, adjustments=adjustments), **kwargs)


@pytest.mark.parametrize("fidelity", FIDELITIES)
@pytest.mark.parametrize("frames", [1, 5, 15, -1, -5, -15])
def test_adjustment_moves_count_and_ugn_by_n(fidelity, frames):
    base = _adjusted(None).run(until_s=2e-4, fidelity=fidelity)
    system = _adjusted(frames)
    link = system.topology.link_index(0, 1)
    assert link == 1
    trace = system.run(until_s=2e-4, fidelity=fidelity)
    assert base.faults == [] and trace.faults == []
    c0 = base.link_counts(link)
    assert (c0 == c0[0]).all()  # equal clocks: a constant count
    q_s = first_sample_at_or_after(trace, link, ADJ_AT)  # the sample that issues it
    assert 0 < q_s < len(c0) - 2
    c = trace.link_counts(link)
    assert_array_equal(c[: q_s + 1], c0[: q_s + 1])
    assert_array_equal(c[q_s + 1:], c0[q_s + 1:] + frames)
    assert trace.ugn[link] == base.ugn[link] + frames
    # the domain difference counter and the other link do not see it
    assert_array_equal(trace.ddc, base.ddc)
    other = 1 - link
    assert_array_equal(trace.link_counts(other), base.link_counts(other))
    assert trace.ugn[other] == base.ugn[other]


@pytest.mark.parametrize("frames", [5, -5])
def test_adjustment_edge_by_edge(frames):
    """Cycle fidelity: +N suppresses the next N reads (N fill cycles), −N drops N writes."""
    base = _adjusted(None).run(until_s=2e-4, fidelity="cycle")
    link = 1  # 0 -> 1, read by node 1
    q_s = first_sample_at_or_after(base, link, ADJ_AT)
    m_s = int(base.samp_m[1, q_s])
    lam0 = int(base.ugn[link])
    occ0 = REF + int(base.link_counts(link)[q_s])
    system = _adjusted(frames)
    for j in range(abs(frames) + 4):
        until = base.edge_time(1, m_s + j)
        trace = system.run(until_s=until, fidelity="cycle")
        ls = trace.buffer_state()
        assert ls["cycle"][link] == m_s + j
        done = min(j, abs(frames))  # adjustment frames applied so far
        if frames > 0:
            # the reads after the issuing sample are suppressed: the buffer
            # fills by one per cycle and the last frame read stays the same
            assert ls["occupancy"][link] == occ0 + done, j
            expect_seq = m_s - lam0 if j <= frames else m_s + j - (lam0 + frames)
            assert ls["last_read_seq"][link] == expect_seq, j
        else:
            # writes are dropped, reads go on through the frames already there
            assert ls["occupancy"][link] == occ0 - done, j
            assert ls["last_read_seq"][link] == m_s + j - lam0, j
        assert ls["pending"][link] == (frames - done if frames > 0 else frames + done), j
        assert trace.faults == []


# --------------------------------------------------------------------------- auto-centre

AUTO = 2


@pytest.mark.parametrize(("fidelity", "until_s"), [("event", 0.05), ("cycle", 5e-3)])
def test_auto_centre_keeps_count_near_zero(fidelity, until_s):
    """auto_centre = 2 with a drift of 0.5 frame per update (20 ppm, 25 000 ticks).

    The count recorded at a sample is the one auto-centring acts on, so it
    reaches AUTO + 1 at the sample that fires; centring brings it back to 0
    (adjusting by −count), and from there it drifts again by at most one frame
    per update.
    """
    p = 25_000
    delta_ppm = 20.0
    per_update = p * delta_ppm * 1e-6
    assert per_update < 1
    system = two_nodes((delta_ppm, 0.0), theta0=[0.35, 0.1], update_period_ticks=p,
                       buffer=ElasticBuffer(depth=DEPTH, auto_centre=AUTO))
    trace = system.run(until_s=until_s, fidelity=fidelity)
    free = two_nodes((delta_ppm, 0.0), theta0=[0.35, 0.1], update_period_ticks=p,
                     buffer=ElasticBuffer(depth=DEPTH)).run(until_s=until_s, fidelity=fidelity)
    assert trace.faults == []
    for link in range(2):
        c = trace.link_counts(link).astype(np.int64)
        sign = 1 if trace.links[link, 0] == 0 else -1  # node 0 is the faster
        assert np.abs(c).max() <= AUTO + math.ceil(per_update)
        fired = np.abs(c) > AUTO
        assert fired.sum() >= 2, "the test needs auto-centring to happen"
        after = np.where(fired, 0, c)  # the count each sample leaves behind
        assert np.abs(after).max() <= AUTO
        step = c[1:] - after[:-1]
        assert set(np.unique(step * sign)) <= {0, 1}, link
        # without auto-centring the same link drifts far away
        assert np.abs(free.link_counts(link)).max() > 3 * AUTO
        # λ has moved by what auto-centring applied (−count at each firing,
        # less what is still pending at the end)
        applied = -int(c[fired].sum()) - int(trace.buffer_state()["pending"][link])
        lam0 = REF - arrived(trace, link, 0.0) + read(trace, link, 0.0)
        assert trace.ugn[link] == lam0 + applied


# --------------------------------------------------------------------------- UGN


def _ugn_systems():
    lat = [3e-8, 1e-8, 2.1e-7]  # one per edge of the triangle
    topo = Topology.complete(3, latency_s=lat)
    return {
        "free": System(topo, offsets_ppm=[-10.0, 3.0, 10.0], theta0=[0.1, 0.5, 0.9],
                       buffer=ElasticBuffer(depth=DEPTH), update_period_ticks=5000),
        "pi": System(topo, offsets_ppm=[-10.0, 3.0, 10.0], theta0=[0.0, 0.5, 0.9],
                     controller=PI(kp=1e-6),
                     update_period_ticks=5000, control_delay_ticks=300,
                     buffer=ElasticBuffer(depth=DEPTH)),
        "late-start": System(topo, offsets_ppm=[-10.0, 3.0, 10.0], theta0=[0.7, 0.2, 0.4],
                             start_s=[0.0, 2e-4, 5e-4], update_period_ticks=5000,
                             buffer=ElasticBuffer(depth=DEPTH)),
        "adjusted": System(topo, offsets_ppm=[2.0, 0.0, -2.0], theta0=[0.7, 0.2, 0.4],
                           update_period_ticks=5000,
                           buffer=ElasticBuffer(depth=DEPTH, adjustments=(
                               Adjustment(0, 1e-4, 7), Adjustment(3, 2e-4, -6),
                               Adjustment(5, 3e-4, 3), Adjustment(5, 3e-4, -9)))),
    }


@pytest.mark.parametrize("name", ["free", "pi", "late-start", "adjusted"])
def test_frame_sent_at_s_is_read_at_s_plus_ugn(name):
    system = _ugn_systems()[name]
    for until in (7.7e-4, 2e-3):
        trace = system.run(until_s=until, fidelity="cycle")
        assert trace.faults == []
        ls = trace.buffer_state()
        assert trace.link_up.all()
        seq = ls["last_read_seq"]
        cycle = ls["cycle"]
        assert_array_equal(seq, cycle - trace.ugn, err_msg=f"{name} until={until}")
        # the receiver's last edge at or before `until`
        for link in range(len(trace.ugn)):
            assert cycle[link] == read(trace, link, until)
        if name in ("free", "late-start"):
            # no adjustment: λ is the one fixed at link-up
            for link in range(len(trace.ugn)):
                t_up = link_up_s(trace, link)
                lam = REF - arrived(trace, link, t_up) + read(trace, link, t_up)
                assert trace.ugn[link] == lam


def test_ugn_after_adjustments():
    system = _ugn_systems()["adjusted"]
    plain = System(system.topology, offsets_ppm=[2.0, 0.0, -2.0], theta0=[0.7, 0.2, 0.4],
                   update_period_ticks=5000, buffer=ElasticBuffer(depth=DEPTH))
    a = system.run(until_s=2e-3)
    b = plain.run(until_s=2e-3)
    shift = np.zeros(6, dtype=np.int64)
    shift[0], shift[3], shift[5] = 7, -6, 3 - 9
    assert_array_equal(a.ugn, b.ugn + shift)


# --------------------------------------------------------------------------- fidelities


def _agreement_systems():
    tri = Topology.complete(3, latency_s=[3e-8, 1e-8, 2e-7])
    return {
        "overflow": (two_nodes((100.0, -100.0), latency_s=1.3e-8, theta0=[0.2, 0.55],
                               buffer=ElasticBuffer(depth=DEPTH)), 2e-3, False),
        "overflow-stop": (two_nodes((100.0, -100.0), latency_s=1.3e-8, theta0=[0.2, 0.55],
                                    update_period_ticks=2000,
                                    buffer=ElasticBuffer(depth=DEPTH)), 2e-3, True),
        "pi-arm-on-stable": (System(
            tri, offsets_ppm=[-100.0, 0.0, 100.0], theta0=[0.1, 0.5, 0.9],
            start_s=[0.0, 1e-4, 3e-4], controller=PI(kp=2e-6, ki=1e-12),
            update_period_ticks=2500, control_delay_ticks=100, measure="ddc",
            buffer=ElasticBuffer(depth=DEPTH, arm="stable", auto_centre=3),
            stability=Stability(margin=4, window_s=2e-4)), 4e-3, False),
        "quantized-wander": (System(
            Topology.line(3, latency_s=[5e-8, 7e-9]), offsets_ppm=[15.0, -5.0, 0.0],
            theta0=[0.0, 0.33, 0.66], drift_ppb_per_s=[2e5, 0.0, -1e5],
            wander_ppb_per_sqrt_s=300.0, seed=3, controller=PI(kp=1e-6),
            update_period_ticks=3000, control_delay_ticks=2999,
            actuator=Actuator("quantized", step_ppb=100.0),
            buffer=ElasticBuffer(depth=16, auto_centre=1, adjustments=(
                Adjustment(1, 1e-4, 4), Adjustment(2, 2e-4, -3))),
            stability=Stability(margin=2, window_s=1e-4)), 3e-3, False),
        "low-f0-long-latency": (System(
            Topology.cycle(4, latency_s=4e-4), f_nom_hz=1e6,
            offsets_ppm=[-150.0, 60.0, 0.0, 200.0], theta0=[0.5, 0.0, 0.25, 0.75],
            controller=PI(kp=4e-5), update_period_ticks=200,
            buffer=ElasticBuffer(depth=4)), 0.2, False),
    }


@pytest.mark.parametrize("name", ["overflow", "overflow-stop", "pi-arm-on-stable",
                                  "quantized-wander", "low-f0-long-latency"])
def test_event_and_cycle_agree_on_hand_picked_systems(name):
    system, until, stop = _agreement_systems()[name]
    ev = system.run(until_s=until, fidelity="event", stop_on_fault=stop)
    cy = system.run(until_s=until, fidelity="cycle", stop_on_fault=stop)
    assert_same_run(ev, cy)
    if name.startswith("overflow"):
        assert {f.kind for f in ev.faults} == {"overflow", "underflow"} or stop
        assert ev.stopped_early == stop
    if name == "pi-arm-on-stable":
        assert ev.stable.any()
        assert ev.armed.any()
