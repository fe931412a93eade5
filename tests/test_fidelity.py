"""Event and cycle fidelity compute the same model: they must agree exactly."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidesim.controllers import PI, P, Pump
from tidesim.errors import SimulationFault
from tidesim.models import Actuator, Adjustment, ElasticBuffer, Stability, System, Topology
from tidesim.testing import assert_same_run


def random_graph(draw, n: int, p_extra: float) -> tuple[nx.Graph, int]:
    """A random connected graph on ``n`` nodes: a random spanning tree plus
    each other edge with probability ``p_extra``; and the seed it came from."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    g = nx.random_labeled_tree(n, seed=seed) if n > 2 else nx.path_graph(2)
    for u in range(n):
        for v in range(u + 1, n):
            if rng.random() < p_extra:
                g.add_edge(u, v)
    return g, seed


@st.composite
def systems(draw):
    n = draw(st.integers(2, 6))
    g, seed = random_graph(draw, n, 0.3)
    f0 = 1e6
    lat_ticks = draw(st.sampled_from([0.0, 0.3, 1.0, 2.5, 17.0, 400.0]))
    topo = Topology.from_graph(g, latency_s={"distribution": "uniform", "low_s": 0.0,
                                             "high_s": lat_ticks / f0} if lat_ticks else 0.0,
                               seed=seed % 1000)
    spread = draw(st.sampled_from([2, 20, 200, 3000]))
    offsets = [v + draw(st.floats(-0.5, 0.5)) for v in
               draw(st.lists(st.integers(-spread, spread), min_size=n, max_size=n))]
    depth = draw(st.sampled_from([0, 4, 8, 16, 32]))
    links = topo.links.shape[0]
    adjustments = ()
    if depth and draw(st.booleans()):
        adjustments = tuple(
            Adjustment(link=draw(st.integers(0, links - 1)), at_s=draw(st.floats(0, 0.01)),
                       frames=draw(st.integers(-3, 3).filter(bool)))
            for _ in range(draw(st.integers(1, 3))))
    buffer = ElasticBuffer(
        depth=depth,
        arm=draw(st.sampled_from(["link_up", "link_up", "stable", "all_stable"])),
        auto_centre=draw(st.sampled_from([None, 0, 1, 3])) if depth else None,
        adjustments=adjustments,
    )
    ctl_kind = draw(st.sampled_from(["none", "p", "pi"]))
    p_ticks = draw(st.sampled_from([50, 200, 500]))
    controller = None
    if ctl_kind != "none":
        kp = draw(st.sampled_from([1e-6, 1e-5, 4e-5]))
        controller = PI(kp=kp, ki=kp * 1e-4 if ctl_kind == "pi" else 0.0)
    starts = draw(st.lists(st.sampled_from([0.0, 0.0, 1e-3, 3.3e-3]), min_size=n, max_size=n))
    return System(
        topo, f_nom_hz=f0, offsets_ppm=offsets,
        theta0=draw(st.lists(st.floats(0, 0.999), min_size=n, max_size=n)),
        start_s=starts, controller=controller, update_period_ticks=p_ticks,
        control_delay_ticks=draw(st.integers(0, p_ticks - 1)),
        actuator=draw(st.sampled_from([Actuator(), Actuator("quantized", step_ppb=500.0)])),
        buffer=buffer, measure=draw(st.sampled_from(["buffer", "ddc"])),
        stability=Stability(margin=draw(st.integers(0, 4)), window_s=1e-3),
        drift_ppb_per_s=draw(st.sampled_from([0.0, 5e4])),
        sample_at=draw(st.sampled_from(["edge", "phase"])),
    )


def assert_fidelities_agree(system, until_s):
    """Both fidelities give one run, or fail alike (an unstable controller)."""
    runs = []
    for fidelity in ("event", "cycle"):
        try:
            runs.append((None, system.run(until_s=until_s, fidelity=fidelity)))
        except SimulationFault as exc:  # an unstable swing: both must fail alike
            runs.append((str(exc), exc.trace))
    (msg_ev, ev), (msg_cy, cy) = runs
    assert msg_ev == msg_cy
    assert_same_run(ev, cy)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(systems(), st.sampled_from([0.004, 0.01]))
def test_event_and_cycle_agree_exactly(system, until_s):
    assert_fidelities_agree(system, until_s)


@st.composite
def rig_scale_systems(draw):
    """Systems at the rig's scale: 125 MHz, updates every 2 500 or 25 000
    ticks, the pump or PI through a 10 or 500 ppb FINC/FDEC actuator, offsets
    up to ±200 ppm, wander, and buffers of the rig's sizes."""
    n = draw(st.integers(2, 8))
    g, seed = random_graph(draw, n, 0.5)
    lat = draw(st.sampled_from([0.0, 1e-8, 3.3e-8, 1e-6]))
    topo = Topology.from_graph(g, latency_s={"distribution": "uniform", "low_s": 0.0,
                                             "high_s": lat} if lat else 0.0, seed=seed % 1000)
    depth = draw(st.sampled_from([0, 8, 32]))
    p_ticks = draw(st.sampled_from([2500, 25_000]))
    adjustments = ()
    if depth and draw(st.booleans()):
        adjustments = tuple(
            Adjustment(link=draw(st.integers(0, topo.links.shape[0] - 1)),
                       at_s=draw(st.floats(0, 4e-3)), frames=draw(st.integers(-5, 5).filter(bool)))
            for _ in range(2))
    buffer = ElasticBuffer(depth=depth,
                           arm=draw(st.sampled_from(["link_up", "stable", "all_stable"])),
                           auto_centre=draw(st.sampled_from([None, 2])) if depth else None,
                           adjustments=adjustments)
    return System(
        topo, f_nom_hz=125e6, offsets_ppm=[draw(st.floats(-200, 200)) for _ in range(n)],
        theta0=[draw(st.floats(0, 0.999)) for _ in range(n)],
        start_s=[draw(st.sampled_from([0.0, 0.0, 1e-3])) for _ in range(n)],
        controller=draw(st.sampled_from([Pump(kp=1e-8), Pump(kp=1e-7, target_ppm=1.0),
                                         PI(kp=1e-7, ki=1e-12)])),
        update_period_ticks=p_ticks, control_delay_ticks=draw(st.integers(0, p_ticks - 1)),
        actuator=Actuator("quantized", step_ppb=draw(st.sampled_from([10.0, 500.0]))),
        buffer=buffer, measure=draw(st.sampled_from(["buffer", "ddc"])),
        stability=Stability(margin=4, window_s=1e-3),
        wander_ppb_per_sqrt_s=draw(st.sampled_from([0.0, 1e3])), seed=draw(st.integers(0, 99)),
        sample_at=draw(st.sampled_from(["edge", "phase"])),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(rig_scale_systems())
def test_rig_scale_systems_agree_exactly(system):
    ev = system.run(until_s=0.005, fidelity="event")
    cy = system.run(until_s=0.005, fidelity="cycle")
    assert_same_run(ev, cy)


@pytest.mark.parametrize("depth", [4, 32])
def test_overflowing_runs_agree(depth):
    topo = Topology.line(2, latency_s=0.0)
    sys = System(topo, f_nom_hz=1e6, offsets_ppm=[2000, -2000], update_period_ticks=50,
                 buffer=ElasticBuffer(depth=depth))
    ev = sys.run(until_s=0.01)
    cy = sys.run(until_s=0.01, fidelity="cycle")
    kinds = {f.kind for f in ev.faults}
    assert kinds == {"overflow", "underflow"}
    assert_same_run(ev, cy)


@pytest.mark.parametrize("depth", [0, 8])
def test_long_update_periods_agree(depth):
    """A sample walks its links through several chunks of receiver edge times
    (``WALK_CHUNK``), across faults, adjustments and segment changes."""
    from tidesim.models._kernels import WALK_CHUNK

    p = 2 * WALK_CHUNK + 1234
    topo = Topology.complete(3, latency_s=2.2e-6)
    buf = ElasticBuffer(depth=depth, arm="link_up",
                        adjustments=(Adjustment(link=0, at_s=0.02, frames=3),
                                     Adjustment(link=3, at_s=0.031, frames=-2)) if depth else ())
    sys = System(topo, f_nom_hz=1e6, offsets_ppm=[1500, -1200, 300], update_period_ticks=p,
                 controller=P(kp=2e-6), start_s=[0.0, 4e-3, 9e-3], buffer=buf)
    ev = sys.run(until_s=0.06)
    cy = sys.run(until_s=0.06, fidelity="cycle")
    assert p > 2 * WALK_CHUNK and int(ev.n_samp.min()) >= 5
    if depth:
        assert {f.kind for f in ev.faults} == {"overflow", "underflow"}
    assert_same_run(ev, cy)


def test_same_inputs_bit_identical():
    topo = Topology.complete(4, latency_s=3e-8)
    sys = System(topo, offsets_ppm=[-40, 10, 25, 60], wander_ppb_per_sqrt_s=50.0, seed=7,
                 controller=PI(kp=1e-6), buffer=ElasticBuffer(depth=0))
    a = sys.run(until_s=0.02)
    b = sys.run(until_s=0.02)
    assert_same_run(a, b)
    c = System(topo, offsets_ppm=[-40, 10, 25, 60], wander_ppb_per_sqrt_s=50.0, seed=8,
               controller=PI(kp=1e-6), buffer=ElasticBuffer(depth=0)).run(until_s=0.02)
    assert not np.array_equal(a.seg_rel, c.seg_rel)


_PURE_PYTHON_RUN = """
import json, sys
import numpy as np
from tidesim.controllers import PI, P
from tidesim.models import ElasticBuffer, System, Topology
topo = Topology.complete(3, latency_s=2.5e-6)
sys_ = System(topo, f_nom_hz=1e6, offsets_ppm=[300.0, -250.0, 40.0], update_period_ticks=200,
              controller=PI(kp=2e-5, ki=2e-9),
              buffer=ElasticBuffer(depth=16, auto_centre=3))
out = {}
for fid in ("event", "cycle"):
    tr = sys_.run(until_s=0.004, fidelity=fid)
    out[fid] = {"counts": tr.counts.tolist(), "ugn": tr.ugn.tolist(),
                "seg_rel": tr.seg_rel[:, :int(tr.n_seg.max())].tolist(),
                "faults": [f.as_dict() for f in tr.faults]}
json.dump(out, sys.stdout)
"""


def test_kernels_run_as_plain_python():
    """With ``NUMBA_DISABLE_JIT=1`` the kernels run as Python and give the same results."""
    import json
    import os
    import subprocess
    import sys

    runs = {}
    for disable in ("0", "1"):
        env = dict(os.environ, NUMBA_DISABLE_JIT=disable)
        out = subprocess.run([sys.executable, "-c", _PURE_PYTHON_RUN], env=env,
                             capture_output=True, text=True, timeout=300, check=True)
        runs[disable] = json.loads(out.stdout)
    assert runs["0"] == runs["1"]
    assert runs["1"]["event"] == runs["1"]["cycle"]


@st.composite
def faulting_systems(draw):
    """Buffers that stay full or empty for long stretches: small FIFOs, offsets up
    to ±1 %, links that drift past both limits within one update, controllers
    that pull some links back, adjustments and auto-centring on top."""
    n = draw(st.integers(2, 5))
    g, seed = random_graph(draw, n, 0.4)
    f0 = 1e6
    topo = Topology.from_graph(g, latency_s={"distribution": "uniform", "low_s": 0.0,
                                             "high_s": draw(st.sampled_from([0.0, 3e-6, 4e-4]))},
                               seed=seed % 1000)
    spread = draw(st.sampled_from([50, 500, 1e4]))
    offsets = [draw(st.floats(-spread, spread)) for _ in range(n)]
    depth = draw(st.sampled_from([2, 4, 8, 32]))
    links = topo.links.shape[0]
    adjustments = ()
    if draw(st.booleans()):
        adjustments = tuple(
            Adjustment(link=draw(st.integers(0, links - 1)), at_s=draw(st.floats(0, 0.05)),
                       frames=draw(st.integers(-40, 40).filter(bool)))
            for _ in range(draw(st.integers(1, 3))))
    p_ticks = draw(st.sampled_from([100, 1000, 5000]))
    kind = draw(st.sampled_from(["none", "p", "pi", "swing"]))
    measure = draw(st.sampled_from(["buffer", "ddc"]))
    controller = None
    if kind == "swing":
        # a gain so high that frequencies swing by up to a percent every
        # update: a link's drift turns round within one sample interval
        measure = "buffer"
        depth = min(depth, 8)
        controller = P(kp=draw(st.sampled_from([1e-4, 3e-4])))
    elif kind != "none":
        kp = draw(st.sampled_from([1e-6, 1e-5]))
        controller = PI(kp=kp, ki=kp * 1e-5 if kind == "pi" else 0.0)
    return System(
        topo, f_nom_hz=f0, offsets_ppm=offsets,
        theta0=draw(st.lists(st.floats(0, 0.999), min_size=n, max_size=n)),
        controller=controller, update_period_ticks=p_ticks,
        control_delay_ticks=draw(st.integers(0, p_ticks - 1)),
        buffer=ElasticBuffer(depth=depth, adjustments=adjustments,
                             auto_centre=draw(st.sampled_from([None, None, 1, 5])),
                             arm="link_up" if kind == "swing" else
                             draw(st.sampled_from(["link_up", "stable"]))),
        measure=measure,
        stability=Stability(margin=2, window_s=2e-3),
        drift_ppb_per_s=draw(st.sampled_from([0.0, 1e6])),
        sample_at=draw(st.sampled_from(["edge", "phase"])),
    )


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(faulting_systems(), st.sampled_from([0.03, 0.1, 0.3]))
def test_faulting_buffers_agree_exactly(system, until_s):
    """Event fidelity counts over- and underflows in closed form; the cycle fidelity
    walks every edge: the same faults, counts, cycles and times."""
    assert_fidelities_agree(system, until_s)
