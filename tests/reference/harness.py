"""What the reference tests share: one description of a system that builds both
a ``tidesim`` :class:`~tidesim.models.System` and a reference
:class:`~reference.model.Config`, the one adapter that reads a ``Trace``, and
the comparison.

``observe`` is the only function here that knows ``Trace``'s attribute names,
and ``compare_energy`` the only one that knows over which interval the energy
is integrated: when those change, they change here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import assume

from tidesim.controllers import PI, P, Pump
from tidesim.errors import SimulationFault
from tidesim.models import Actuator, Adjustment, ElasticBuffer, Stability, System, Topology

from .model import (
    AdjustmentSpec,
    Config,
    ControllerSpec,
    NearTie,
    RangeFault,
    Result,
    energy_from_epoch,
    simulate,
)

# Times (s) agree to within this many nominal periods. The core's float64
# edge times carry about one rounding of their own size (2.2e-16 t, below
# 1e-18 s in these runs) plus the float64 rounding of each period (2.2e-16
# relative), against the reference's exact periods; a control delay or a
# sample off by one tick is 1e6 times this far away.
TIME_TOL_PERIODS = 1e-9

# Energies agree to this relative error: the core sums float64 products of
# float64 durations, the reference integrates exactly and rounds once.
ENERGY_RTOL = 1e-11


@dataclass(frozen=True)
class Case:
    """A bittide system, described once for both models.

    Attributes:
        graph_edges: undirected edges of the topology (node pairs).
        n_nodes: number of nodes.
        edge_latency_s: one latency (s) per undirected edge, in ``Topology``'s
            edge order.
        system: keyword arguments of :class:`System` other than the topology,
            the controller, the actuator, the buffer and the stability detector.
        controller: the control law, or ``None``.
        quantized, step_ppb: the actuator.
        depth, reference, arm, auto_centre, adjustments: the buffer
            (``adjustments`` as ``(link, at_s, frames)``).
        margin, window_s: the stability detector.
        until_s: end of the run (s). stop_on_fault: stop at the first fault.
    """

    graph_edges: tuple[tuple[int, int], ...]
    n_nodes: int
    edge_latency_s: tuple[float, ...]
    system: dict = field(default_factory=dict)
    controller: ControllerSpec | None = None
    quantized: bool = False
    step_ppb: float = 10.0
    depth: int = 32
    reference: int | None = None
    arm: str = "link_up"
    auto_centre: int | None = None
    adjustments: tuple[tuple[int, float, int], ...] = ()
    margin: int = 4
    window_s: float = 2.0
    until_s: float = 0.003
    stop_on_fault: bool = False

    def topology(self) -> Topology:
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(range(self.n_nodes))
        g.add_edges_from(self.graph_edges)
        return Topology.from_graph(g, latency_s=list(self.edge_latency_s))

    def controller_object(self):
        spec = self.controller
        if spec is None:
            return None
        if spec.kind == "p":
            return P(kp=spec.kp)
        if spec.kind == "pi":
            # the core's integrator takes its period from the system
            assert spec.period_ticks == self.system.get("update_period_ticks", 25_000)
            return PI(kp=spec.kp, ki=spec.ki)
        return Pump(kp=spec.kp, target_ppm=spec.target * 1e6)

    def reference_controller(self, law) -> ControllerSpec | None:
        """The reference's law, with the pump's target as the core computes it from ppm."""
        if isinstance(law, Pump):
            return replace(self.controller, target=law.target)
        return self.controller

    def build(self) -> tuple[System, Config]:
        """The core's system and the reference's configuration of this case."""
        topo = self.topology()
        n = self.n_nodes
        buffer = ElasticBuffer(
            depth=self.depth, reference=self.reference, arm=self.arm,
            auto_centre=self.auto_centre,
            adjustments=tuple(Adjustment(link=l, at_s=t, frames=f)
                              for l, t, f in self.adjustments))
        actuator = (Actuator("quantized", step_ppb=self.step_ppb) if self.quantized
                    else Actuator())
        law = self.controller_object()
        system = System(topo, controller=law, actuator=actuator,
                        buffer=buffer, stability=Stability(self.margin, self.window_s),
                        **self.system)

        def per_node(name, default):
            v = self.system.get(name, default)
            return tuple(float(x) for x in v) if np.ndim(v) else (float(v),) * n

        kw = self.system
        cfg = Config(
            links=tuple((int(i), int(j)) for i, j in topo.links),
            latency_s=tuple(float(x) for x in topo.latency_s),
            f_nom_hz=float(kw.get("f_nom_hz", 125e6)),
            offsets_ppm=per_node("offsets_ppm", 0.0),
            drift_ppb_per_s=per_node("drift_ppb_per_s", 0.0),
            theta0=per_node("theta0", 0.1),
            start_s=per_node("start_s", 0.0),
            wander_ppb_per_sqrt_s=float(kw.get("wander_ppb_per_sqrt_s", 0.0)),
            controller=self.reference_controller(law),
            update_period_ticks=int(kw.get("update_period_ticks", 25_000)),
            control_delay_ticks=int(kw.get("control_delay_ticks", 0)),
            quantized=self.quantized,
            step_ppb=self.step_ppb,
            depth=self.depth,
            reference=self.reference if self.reference is not None else self.depth // 2,
            arm=self.arm,
            auto_centre=self.auto_centre,
            adjustments=tuple(AdjustmentSpec(l, t, f) for l, t, f in self.adjustments),
            measure=kw.get("measure", "buffer"),
            margin=self.margin,
            window_s=self.window_s,
            seed=int(kw.get("seed", 0)),
            sample_at=kw.get("sample_at", "edge"),
        )
        return system, cfg


# ------------------------------------------------------------------------ adapter


@dataclass
class Observed:
    """What the comparison reads from a run, as plain Python values.

    Per node ``j``: ``samp_t[j]``, ``samp_m[j]``, ``samp_c[j]`` (one entry per
    sample), ``seg_k[j]``, ``seg_t[j]``, ``seg_rel[j]`` (one per segment).
    Per link ``l`` (one entry per sample of its receiver): ``counts[l]``,
    ``ddc[l]``, ``stable[l]``, ``settled[l]``; and ``ugn[l]``, ``link_up[l]``.
    ``faults`` as ``(node, link, src, kind, time_s, cycle, count)``, sorted
    by time; ``end_s`` the time the run reached; ``energy`` in s.
    """

    samp_t: list[list[float]]
    samp_m: list[list[int]]
    samp_c: list[list[float]]
    seg_k: list[list[int]]
    seg_t: list[list[float]]
    seg_rel: list[list[float]]
    counts: list[list[int]]
    ddc: list[list[int]]
    stable: list[list[int]]
    settled: list[list[int]]
    ugn: list[int]
    link_up: list[bool]
    faults: list[tuple]
    end_s: float
    energy: float
    final_offsets_ppm: list[float]


def observe(trace) -> Observed:
    """Read a ``Trace`` through its public names (the one place that knows them)."""
    n = len(trace.n_samp)
    links = np.asarray(trace.links)
    q = [int(trace.n_samp[j]) for j in range(n)]
    seg_t, seg_rel, seg_k = [], [], []
    for j in range(n):
        t, rel = trace.segments(j)
        seg_t.append([float(x) for x in t])
        seg_rel.append([float(x) for x in rel])
        seg_k.append([int(x) for x in trace.seg_k[j, : int(trace.n_seg[j])]])

    def per_link(arr):
        return [[int(x) for x in arr[l, : q[int(links[l, 1])]]] for l in range(links.shape[0])]

    return Observed(
        samp_t=[[float(x) for x in trace.samp_t[j, : q[j]]] for j in range(n)],
        samp_m=[[int(x) for x in trace.samp_m[j, : q[j]]] for j in range(n)],
        samp_c=[[float(x) for x in trace.samp_c[j, : q[j]]] for j in range(n)],
        seg_k=seg_k, seg_t=seg_t, seg_rel=seg_rel,
        counts=per_link(trace.counts), ddc=per_link(trace.ddc),
        stable=per_link(trace.stable), settled=per_link(trace.settled),
        ugn=[None if m else int(x) for x, m in zip(trace.final_logical_latency.data,
                                                  np.ma.getmaskarray(trace.final_logical_latency),
                                                  strict=True)],
        link_up=[bool(x) for x in trace.link_up],
        faults=[(f.node, f.link, f.src, f.kind, float(f.time_s), f.cycle, f.count)
                for f in trace.faults],
        end_s=float(trace.until_s),
        energy=float(trace.energy),
        final_offsets_ppm=[float(x) for x in trace.final_offsets_ppm],
    )


# ----------------------------------------------------------------------- compare


def compare_energy(ref: Result, obs: Observed, cfg: Config, where: str) -> None:
    """The energy from the epoch, ``-10 ×`` the largest latency, to the end (the
    one place that fixes the interval; Callisto.jl counts the clocks'
    stretch before ``t = 0`` too)."""
    epoch = -10 * max((Decimal(x) for x in cfg.latency_s), default=Decimal(0))
    expected = energy_from_epoch(ref, epoch)
    assert abs(obs.energy - expected) <= ENERGY_RTOL * abs(expected) + 1e-300, (
        f"{where}energy: core {obs.energy!r}, reference {expected!r}")


def _close_times(core: list[float], ref: list[Decimal], tol: float) -> bool:
    return len(core) == len(ref) and all(
        abs(Decimal(c) - r) <= Decimal(tol) for c, r in zip(core, ref, strict=True))


def _first_difference(a, b) -> str:
    if len(a) != len(b):
        return f"lengths {len(a)} and {len(b)}"
    for k, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y:
            return f"at {k}: core {x!r}, reference {y!r}"
    return "none"


def compare(ref: Result, obs: Observed, cfg: Config, *, label: str = "",
            rel_rtol: float = 0.0) -> None:
    """Assert that a core run and the reference agree.

    Integers (edges, counts, ddc, flags, λ, fault cycles and counts) and the
    applied corrections agree exactly; times to :data:`TIME_TOL_PERIODS`;
    relative frequencies exactly unless ``rel_rtol`` says otherwise (drift
    is evaluated at the sample time, whose float64 may differ from the exact
    time's by an ulp); the energy to :data:`ENERGY_RTOL`.
    """
    where = f"{label}: " if label else ""
    tol = TIME_TOL_PERIODS / cfg.f_nom_hz
    n = cfg.n_nodes
    for j in range(n):
        node = ref.nodes[j]
        w = f"{where}node {j} "
        assert obs.samp_m[j] == node.samp_m, w + "samp_m " + _first_difference(
            obs.samp_m[j], node.samp_m)
        assert _close_times(obs.samp_t[j], node.samp_t, tol), w + "samp_t"
        assert obs.samp_c[j] == node.samp_c, w + "samp_c " + _first_difference(
            obs.samp_c[j], node.samp_c)
        assert obs.seg_k[j] == node.seg_k, w + "seg_k " + _first_difference(
            obs.seg_k[j], node.seg_k)
        assert _close_times(obs.seg_t[j], node.seg_t, tol), w + "seg_t"
        if rel_rtol == 0.0:
            assert obs.seg_rel[j] == node.seg_rel, w + "seg_rel " + _first_difference(
                obs.seg_rel[j], node.seg_rel)
        else:
            assert np.allclose(obs.seg_rel[j], node.seg_rel, rtol=rel_rtol, atol=0.0), (
                w + "seg_rel " + _first_difference(obs.seg_rel[j], node.seg_rel))
    for l in range(len(cfg.links)):
        link = ref.links[l]
        w = f"{where}link {l} {cfg.links[l]} "
        for name in ("counts", "ddc", "stable", "settled"):
            core, mine = getattr(obs, name)[l], getattr(link, name)
            assert core == mine, w + name + " " + _first_difference(core, mine)
        assert obs.link_up[l] == link.up, w + "link_up"
        assert obs.ugn[l] == link.ugn, w + f"ugn: core {obs.ugn[l]}, reference {link.ugn}"
    core_f = [f[:4] + f[5:] for f in obs.faults]
    ref_f = [(f.node, f.link, f.src, f.kind, f.cycle, f.count) for f in ref.faults]
    assert core_f == ref_f, f"{where}faults: core {obs.faults}, reference {ref.faults}"
    assert _close_times([f[4] for f in obs.faults], [f.time_s for f in ref.faults], tol), (
        f"{where}fault times: core {obs.faults}, reference {ref.faults}")
    assert abs(Decimal(obs.end_s) - ref.end_s) <= Decimal(tol), (
        f"{where}end: core {obs.end_s!r}, reference {ref.end_s}")
    mine = [node.seg_rel[-1] * 1e6 for node in ref.nodes]
    assert np.allclose(obs.final_offsets_ppm, mine, rtol=max(rel_rtol, 1e-15), atol=0.0), (
        f"{where}final offsets: core {obs.final_offsets_ppm}, reference {mine}")
    compare_energy(ref, obs, cfg, where)


def _coverage_events(ref: Result, cfg: Config) -> None:
    """Tell Hypothesis's statistics what the example exercised."""
    from hypothesis import event

    kinds = {f.kind for f in ref.faults}
    event(f"faults: {sorted(kinds) or 'none'}")
    event(f"stopped early: {ref.stopped_early}")
    if cfg.arm == "stable":
        event(f"stable link: {any(any(lk.stable) for lk in ref.links)}")
    event(f"links up: {sum(lk.up for lk in ref.links)}/{len(ref.links)}")
    event(f"segments per node > 3: {min(len(nd.seg_k) for nd in ref.nodes) > 3}")


def check_case(case: Case, fidelities=("event", "cycle"), *,
               hypothesis: bool = False) -> Result | None:
    """Run the reference and the core on ``case`` and compare.

    Args:
        case: the system.
        fidelities: the core's fidelities to compare.
        hypothesis: called from a Hypothesis test: examples with near-ties are
            rejected (``assume``) and coverage is reported (``event``);
            otherwise a near-tie is an error of the hand-picked system.

    Returns:
        The reference run (``None`` where the frequency left ±5 % and both
        models said so).
    """
    system, cfg = case.build()
    try:
        ref = simulate(cfg, case.until_s, stop_on_fault=case.stop_on_fault)
    except NearTie:
        if not hypothesis:
            raise
        assume(False)
        return None
    except RangeFault:
        for fid in fidelities:
            with pytest.raises(SimulationFault):
                system.run(until_s=case.until_s, fidelity=fid, stop_on_fault=case.stop_on_fault)
        return None
    if hypothesis:
        _coverage_events(ref, cfg)
    drifts = any(x != 0 for x in cfg.drift_ppb_per_s)
    for fid in fidelities:
        trace = system.run(until_s=case.until_s, fidelity=fid, stop_on_fault=case.stop_on_fault)
        compare(ref, observe(trace), cfg, label=fid, rel_rtol=1e-15 if drifts else 0.0)
    return ref
