"""Both fidelities of the core against the independent reference model.

The fidelities agree with each other bit for bit, which cannot see a bug in
code they share; the reference (``reference/model.py``) shares no code with
them. Systems are small (2 to 4 nodes at 1 MHz, a few thousand edges per
node) so that the frame-by-frame reference runs in a fraction of a second.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import Case, check_case
from .model import ControllerSpec

F0 = 1e6
NONZERO_FRAMES = st.integers(-4, 4).filter(bool)  # an adjustment moves at least a frame
GOLDEN = (5**0.5 - 1) / 2


def generic(draw, lo: float, hi: float) -> float:
    """A float in ``[lo, hi)`` with no special relation to any other value.

    Hypothesis favours round and boundary values (0, 1e-4, 0.5), which put
    samples, arrivals and windows on exact multiples of each other: near-ties
    that float64 and the reference may decide differently. A golden-ratio
    sequence gives values that are spread out and never round, also while
    shrinking.
    """
    k = draw(st.integers(0, 2**32))
    return lo + (hi - lo) * (((k + 0.5) * GOLDEN) % 1.0)


def graph_edges(draw, n: int) -> tuple[tuple[int, int], ...]:
    """A random connected graph on ``n`` nodes: a random spanning tree plus
    each other edge with probability 0.4."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    g = nx.random_labeled_tree(n, seed=seed) if n > 2 else nx.path_graph(2)
    for u in range(n):
        for v in range(u + 1, n):
            if rng.random() < 0.4:
                g.add_edge(u, v)
    return tuple(sorted((min(u, v), max(u, v)) for u, v in g.edges))


def controllers(draw, p: int) -> ControllerSpec | None:
    kind = draw(st.sampled_from(["none", "p", "pi", "pump"]))
    if kind == "none":
        return None
    kp = draw(st.sampled_from([2e-6, 1e-5, 4e-5]))
    if kind == "p":
        return ControllerSpec("p", kp)
    if kind == "pi":
        return ControllerSpec("pi", kp, ki=kp * draw(st.sampled_from([1e-5, 1e-4, 1e-3])),
                              period_ticks=p)
    return ControllerSpec("pump", kp, target=generic(draw, -1e-4, 1e-4))


@st.composite
def cases(draw) -> Case:
    """Random small systems over every documented feature."""
    n = draw(st.sampled_from([2, 3, 3, 4, 4]))
    edges = graph_edges(draw, n)
    lat_ticks = draw(st.sampled_from([0.0, 2.0, 30.0, 300.0]))
    latency = tuple(generic(draw, 0.0, lat_ticks / F0) for _ in edges)
    spread = draw(st.sampled_from([20.0, 300.0, 3000.0]))
    p = draw(st.integers(50, 500))
    until = generic(draw, 1.5e-3, 4e-3)
    system = dict(
        f_nom_hz=F0,
        offsets_ppm=[generic(draw, -spread, spread) for _ in range(n)],
        theta0=[0.0 if draw(st.integers(0, 4)) == 0 else generic(draw, 0.0, 1.0)
                for _ in range(n)],
        start_s=[0.0 if draw(st.booleans()) else generic(draw, 0.0, 1.5e-3) for _ in range(n)],
        update_period_ticks=p,
        control_delay_ticks=draw(st.integers(0, p - 1)),
        measure=draw(st.sampled_from(["buffer", "ddc"])),
        sample_at=draw(st.sampled_from(["edge", "phase"])),
    )
    if draw(st.booleans()):
        system["drift_ppb_per_s"] = [generic(draw, -1e5, 1e5) for _ in range(n)]
    if draw(st.booleans()):
        system["wander_ppb_per_sqrt_s"] = generic(draw, 1.0, 2e4)
        system["seed"] = draw(st.integers(0, 1000))
    depth = draw(st.sampled_from([0, 4, 8, 16, 32]))
    reference = draw(st.one_of(st.none(), st.integers(0, depth if depth else 12)))
    n_links = 2 * len(edges)
    adjustments = ()
    if draw(st.booleans()):
        adjustments = tuple(
            (draw(st.integers(0, n_links - 1)), generic(draw, 0.0, until),
             draw(NONZERO_FRAMES))
            for _ in range(draw(st.integers(1, 3))))
    return Case(
        graph_edges=edges, n_nodes=n, edge_latency_s=latency, system=system,
        controller=controllers(draw, p),
        quantized=draw(st.booleans()),
        step_ppb=draw(st.sampled_from([100.0, 1000.0, 5000.0])),
        depth=depth, reference=reference,
        arm=draw(st.sampled_from(["link_up", "stable", "all_stable"])),
        auto_centre=draw(st.sampled_from([None, 0, 1, 3])),
        adjustments=adjustments,
        margin=draw(st.integers(0, 4)),
        window_s=generic(draw, 1e-4, 1.5e-3),
        until_s=until,
        stop_on_fault=draw(st.booleans()),
    )


@settings(max_examples=250, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(cases())
def test_random_systems_match_the_reference(case):
    check_case(case, hypothesis=True)


# ----------------------------------------------------------------- hand-picked systems


def _tri(**kwargs) -> Case:
    """Three nodes, a complete graph, latencies of a few ticks, 4 ms at 1 MHz."""
    base = dict(graph_edges=((0, 1), (0, 2), (1, 2)), n_nodes=3,
                edge_latency_s=(3.37e-6, 1.173e-6, 2.0531e-5), until_s=4e-3)
    system = dict(f_nom_hz=F0, offsets_ppm=[-213.7, 41.9, 187.3], theta0=[0.137, 0.618, 0.911],
                  update_period_ticks=200, control_delay_ticks=37)
    system.update(kwargs.pop("system", {}))
    return Case(**{**base, "system": system, **kwargs})


HAND_PICKED = {
    "arm-when-all-stable": (_tri(system=dict(offsets_ppm=[-13.7, 4.9, 18.3], measure="ddc"),
                                 controller=ControllerSpec("p", 1e-5), arm="all_stable",
                                 window_s=2e-4),
                            lambda ref: all(lk.ugn is not None for lk in ref.links)),
    "phase-sampling": (_tri(system=dict(sample_at="phase", theta0=[0.1, 0.6180339, 0.9],
                                        update_period_ticks=250, control_delay_ticks=37),
                            controller=ControllerSpec("pi", 2e-5, ki=4e-9, period_ticks=250)),
                       lambda ref: len(ref.nodes[1].seg_t) > 3),
    "drift": (_tri(system=dict(drift_ppb_per_s=[7.31e4, -4.13e4, 2.9e3]),
                   controller=ControllerSpec("p", 1e-5), depth=0),
              lambda ref: len(set(ref.nodes[0].seg_rel)) > 10),
    "wander": (_tri(system=dict(wander_ppb_per_sqrt_s=7.3e3, seed=5),
                    controller=ControllerSpec("pi", 1e-5, ki=1e-9, period_ticks=200), depth=0),
               lambda ref: len(set(ref.nodes[1].seg_rel)) > 10),
    "free-wander": (_tri(system=dict(wander_ppb_per_sqrt_s=2.1e4, seed=17), depth=32),
                    lambda ref: len(set(ref.nodes[2].seg_rel)) > 10),
    "longest-control-delay": (_tri(system=dict(update_period_ticks=250, control_delay_ticks=249,
                                               offsets_ppm=[-2137.1, 419.3, 1873.7]),
                                   controller=ControllerSpec("p", 2e-5), depth=0),
                              lambda ref: len(ref.nodes[0].seg_k) > 3 and all(
                                  k - 249 in ref.nodes[0].samp_m for k in ref.nodes[0].seg_k[1:])),
    "start-delays": (_tri(system=dict(start_s=[0.0, 7.31e-4, 1.937e-3]),
                          controller=ControllerSpec("p", 1e-5), depth=16),
                     lambda ref: all(lk.up for lk in ref.links) and ref.links[0].counts[2] == 0),
    "stop-on-fault": (_tri(system=dict(offsets_ppm=[-1513.3, 21.7, 1498.1]), depth=4,
                           stop_on_fault=True),
                      lambda ref: ref.stopped_early and ref.end_s < 1e-3),
    "both-faults": (_tri(system=dict(offsets_ppm=[-2713.3, 21.7, 2498.1]), depth=4),
                    lambda ref: {f.kind for f in ref.faults} == {"overflow", "underflow"}),
    "pi-integrator": (_tri(controller=ControllerSpec("pi", 1e-5, ki=3e-8, period_ticks=200),
                           depth=0),
                      lambda ref: len(set(ref.nodes[0].samp_c)) > 10),
    "quantized-pump": (_tri(system=dict(measure="ddc"), quantized=True, step_ppb=1000.0,
                            controller=ControllerSpec("pump", 2e-5, target=3.1e-5), depth=0),
                       lambda ref: len(set(ref.nodes[2].samp_c)) > 5),
    "adjustments": (_tri(controller=ControllerSpec("p", 1e-5), depth=16,
                         adjustments=((0, 3.1e-4, 3), (1, 7.7e-4, -2), (2, 1.3e-3, 4),
                                      (2, 1.31e-3, -1), (5, 2.2e-3, -3))),
                    lambda ref: not ref.faults),
    "auto-centre": (_tri(system=dict(offsets_ppm=[-413.7, 41.9, 387.3]), depth=8,
                         auto_centre=1),
                    lambda ref: not ref.faults and max(max(map(abs, lk.counts))
                                                       for lk in ref.links) <= 3),
    "arm-on-stable-buffer": (_tri(system=dict(offsets_ppm=[-13.7, 4.9, 18.3]),
                                  controller=ControllerSpec("p", 2e-5), depth=8, arm="stable",
                                  margin=2, window_s=4.3e-4),
                             lambda ref: any(any(lk.stable) for lk in ref.links)),
    "arm-on-stable-ddc": (_tri(system=dict(measure="ddc"), quantized=True, step_ppb=1000.0,
                               controller=ControllerSpec("pump", 2e-5), depth=32, arm="stable",
                               margin=3, window_s=3.1e-4, auto_centre=2),
                          lambda ref: any(any(lk.stable) for lk in ref.links)),
    "ideal-with-reference": (_tri(controller=ControllerSpec("pi", 1e-5, ki=1e-9,
                                                            period_ticks=200),
                                  depth=0, reference=5),
                             lambda ref: ref.links[0].counts[0] == 0),
    # adjustments due before the buffer is armed (on stability) or the link is up
    "adjustment-before-arming": (_tri(system=dict(offsets_ppm=[-13.7, 4.9, 18.3]),
                                      controller=ControllerSpec("p", 2e-5), depth=16,
                                      arm="stable", margin=2, window_s=4.3e-4,
                                      adjustments=((0, 1.1e-4, 3), (3, 2.3e-4, -2))),
                                 lambda ref: ref.links[0].stable[-1] and ref.links[3].stable[-1]),
    "adjustment-before-link-up": (_tri(system=dict(start_s=[0.0, 1.7e-3, 0.0]),
                                       controller=ControllerSpec("p", 1e-5), depth=16,
                                       adjustments=((0, 1.1e-4, 3), (1, 2.3e-4, -2))),
                                  lambda ref: ref.links[0].counts[1] == 0),
    "ideal-auto-centre-adjustments": (_tri(system=dict(offsets_ppm=[-413.7, 41.9, 387.3]),
                                           depth=0, reference=3, auto_centre=2,
                                           adjustments=((0, 1.1e-4, 5), (2, 2.3e-3, -7))),
                                      lambda ref: min(ref.links[2].counts) < -7
                                      and all(abs(lk.counts[-1]) <= 3 for lk in ref.links)),
    "ideal-arm-on-stable": (_tri(system=dict(offsets_ppm=[-13.7, 4.9, 18.3]),
                                 controller=ControllerSpec("p", 2e-5), depth=0, reference=7,
                                 arm="stable", margin=2, window_s=4.3e-4, auto_centre=1),
                            lambda ref: any(any(lk.stable) for lk in ref.links)),
    # node 2 starts after its last sample: its links come up at the end of the run
    "link-up-at-the-end": (_tri(system=dict(start_s=[0.0, 0.0, 3.9995e-3]), depth=16),
                           lambda ref: all(lk.up for lk in ref.links)
                           and not any(ref.links[1].counts)),
    # identical clocks over links without latency: every arrival is at a read's
    # instant, exactly, and is written first (the buffer starts full)
    "exact-ties": (Case(graph_edges=((0, 1),), n_nodes=2, edge_latency_s=(0.0,),
                        system=dict(f_nom_hz=F0, offsets_ppm=0.0, theta0=0.0,
                                    update_period_ticks=50),
                        depth=4, reference=4, until_s=1.0003e-3),
                   lambda ref: [f.kind for f in ref.faults] == ["overflow"] * 2),
}


@pytest.mark.parametrize("name", list(HAND_PICKED))
def test_hand_picked_systems_match_the_reference(name):
    case, exercised = HAND_PICKED[name]
    ref = check_case(case)
    assert ref is not None and exercised(ref), name
