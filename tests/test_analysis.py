"""The analytic view (Laplacian, resistances, predicted energy) and the run metrics.

The energy predictions are checked against simulated runs: Callisto's test at
f0 = 1 Hz, and rig-like systems at 125 MHz on other topologies.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tidesim.config import build_system, load_config, validate
from tidesim.models import Topology
from tidesim.studies import analysis as A
from tidesim.studies import metrics as M


def simulate(cfg: dict):
    run_cfg = validate(load_config(cfg))
    system = build_system(run_cfg)
    return system, system.run(run_cfg.until_s)


def rig_like(preset: str, controller: dict, until_s: float) -> dict:
    """A rig preset with a linear controller, a continuous actuator and common start."""
    return {"preset": preset, "clock": {"start_s": 0.0}, "controller": controller,
            "actuator": {"kind": "continuous"}, "run": {"until_s": until_s}}


@pytest.fixture(scope="module")
def callisto():
    return simulate({"preset": "callisto-test"})


# ------------------------------------------------------------------ graph spectrum


@pytest.mark.parametrize(
    ("topology", "n", "edges"),
    [
        (Topology.hypercube(3), 8, 12),
        (Topology.star(4), 5, 4),
        (Topology.mesh(3, 2), 6, 7),
        (Topology.complete(5), 5, 10),
        (Topology.torus([2, 3]), 6, 9),
    ],
    ids=["hypercube-3", "star-4", "mesh-3x2", "complete-5", "torus-2x3"],
)
def test_laplacian_shape_and_structure(topology, n, edges):
    L = A.laplacian(topology)
    assert L.shape == (n, n)
    assert np.allclose(L, L.T)
    assert np.allclose(L.sum(axis=1), 0.0)
    assert np.trace(L) == 2 * edges  # degrees: each cable counts once per end
    spec = A.laplacian_spectrum(topology)
    assert spec.shape == (n,)
    assert spec[0] == 0.0 and np.all(spec[1:] > 0)  # connected
    assert np.all(np.diff(spec) >= -1e-12)
    # a System and the networkx graph give the same answer as the Topology
    assert np.array_equal(A.laplacian(topology.graph), L)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8])
def test_algebraic_connectivity_of_complete_graph_is_n(n):
    assert A.algebraic_connectivity(Topology.complete(n)) == pytest.approx(n, rel=1e-12)


@pytest.mark.parametrize("n", [3, 4, 5, 7, 10])
def test_algebraic_connectivity_of_cycle(n):
    expected = 2 - 2 * math.cos(2 * math.pi / n)
    assert A.algebraic_connectivity(Topology.cycle(n)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n", [2, 4, 6])
def test_algebraic_connectivity_of_line(n):
    expected = 2 - 2 * math.cos(math.pi / n)
    assert A.algebraic_connectivity(Topology.line(n)) == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------- resistances


def test_effective_resistance_known_values():
    assert A.effective_resistance(Topology.complete(3), 0, 1) == pytest.approx(2 / 3, rel=1e-12)
    assert A.effective_resistance(Topology.complete(6), 2, 5) == pytest.approx(2 / 6, rel=1e-12)
    assert A.effective_resistance(Topology.line(5), 0, 4) == pytest.approx(4.0, rel=1e-12)
    # cycle: k edges one way, n - k the other, in parallel
    assert A.effective_resistance(Topology.cycle(6), 0, 2) == pytest.approx(2 * 4 / 6, rel=1e-12)
    assert A.effective_resistance(Topology.star(4), 1, 2) == pytest.approx(2.0, rel=1e-12)
    assert A.effective_resistance(Topology.cycle(5), 3, 3) == 0.0


@pytest.mark.parametrize("topology", [Topology.hypercube(3), Topology.torus([2, 3]),
                                      Topology.diamond()], ids=["hypercube", "torus", "diamond"])
def test_effective_resistance_matrix_and_fosters_theorem(topology):
    R = A.effective_resistance(topology)
    n = topology.n_nodes
    assert R.shape == (n, n)
    assert np.allclose(R, R.T) and np.all(np.diag(R) == 0)
    # Foster: the resistances across the edges add up to n - 1
    assert sum(R[u, v] for u, v in topology.edges) == pytest.approx(n - 1, rel=1e-12)
    # the Kirchhoff index of the summary is the sum over pairs
    total = A.analysis_summary(build_system(validate(load_config(
        {"topology": {"kind": "edges", "edges": topology.edges.tolist()}}))))["total_resistance"]
    assert total == pytest.approx(R[np.triu_indices(n, 1)].sum(), rel=1e-12)


def test_offset_resistance_of_callisto_offsets_is_two_thirds():
    res = A.offset_resistance(Topology.complete(3), [1e-4, -1e-4, 0.0])
    assert res.alpha == pytest.approx(1e-4)
    assert res.resistance == pytest.approx(2 / 3, rel=1e-12)
    assert res.quadratic == pytest.approx(1e-8 * 2 / 3, rel=1e-12)
    # opposite offsets on two nodes: R is their effective resistance
    ring = Topology.cycle(6)
    u = np.zeros(6)
    u[1], u[4] = 5.0, -5.0
    assert A.offset_resistance(ring, u).resistance == pytest.approx(
        A.effective_resistance(ring, 1, 4), rel=1e-12)
    assert A.offset_resistance(ring, np.full(6, 3.0)).resistance is None


# ------------------------------------------------------------------ predicted energy


def test_callisto_prediction_closed_form_and_simulated(callisto):
    system, trace = callisto
    continuous = A.predicted_energy(system, sampled=False)
    assert continuous == pytest.approx((1e-4) ** 2 * (2 / 3) / (2 * 2e-8), rel=1e-12)  # 0.1667
    predicted = A.predicted_energy(system)
    assert abs(predicted / trace.energy - 1) < 0.10
    assert abs(continuous / trace.energy - 1) < 0.10
    # the mean offset is 0 and stays there: all of the energy is spread energy
    assert M.energy_spread(trace) == pytest.approx(trace.energy, rel=1e-4)


def test_prediction_units_scale_with_nominal_frequency(callisto):
    system, _ = callisto
    faster = build_system(validate(load_config(
        {"preset": "callisto-test", "clock": {"f_nom_hz": 4.0}})))
    ratio = A.predicted_energy(faster, sampled=False) / A.predicted_energy(system, sampled=False)
    assert ratio == pytest.approx(0.25, rel=1e-12)  # energy ∝ 1 / (kp f0)


@pytest.mark.parametrize(
    ("preset", "controller", "until_s"),
    [
        ("hitl-cycle5", {"kind": "p", "kp": 1e-7}, 0.5),
        ("hitl-star7", {"kind": "p", "kp": 1e-7}, 0.5),
        ("hitl-torus2x3", {"kind": "pi", "kp": 2e-7, "ki": 1e-14}, 0.3),
        ("hitl-cycle5", {"kind": "p", "kp": 1e-6}, 0.2),  # loop gain 0.09: sampling matters
    ],
    ids=["cycle5-p", "star7-p", "torus-pi", "cycle5-high-gain"],
)
def test_prediction_matches_simulation_on_other_topologies(preset, controller, until_s):
    system, trace = simulate(rig_like(preset, controller, until_s))
    simulated = M.energy_spread(trace)
    predicted = A.predicted_energy(system)
    assert abs(predicted / simulated - 1) < 0.15, (predicted, simulated)
    summary = A.analysis_summary(system)
    assert summary["predicted_energy"] == predicted
    assert 1.0 / (controller["kp"] * 125e6 * summary["algebraic_connectivity"]) == \
        pytest.approx(summary["time_constant_s"])


def test_sampled_prediction_tends_to_the_continuous_one():
    system = build_system(validate(load_config(rig_like("hitl-cycle5", {"kind": "p", "kp": 1e-6},
                                                        1.0))))
    cont = A.predicted_energy(system, sampled=False)
    ratios = [A.predicted_energy(system, kp=kp) / A.predicted_energy(system, kp=kp, sampled=False)
              for kp in (1e-6, 1e-7, 1e-8)]
    assert ratios[0] > ratios[1] > ratios[2] > 1.0
    assert ratios[2] == pytest.approx(1.0, abs=1e-3)
    assert cont == A.predicted_energy(system, sampled=False, kp=1e-6)
    # a loop gain beyond 2 diverges
    assert A.predicted_energy(system, kp=1e-3) == math.inf


def test_no_prediction_without_a_linear_continuous_loop():
    quantized = build_system(validate(load_config(
        {"preset": "hitl-cycle5", "controller": {"kind": "p", "kp": 1e-7},
         "actuator": {"kind": "quantized"}})))
    free = build_system(validate(load_config(
        {"preset": "hitl-cycle5", "controller": {"kind": "none"}})))
    assert A.predicted_energy(quantized) is None
    assert A.predicted_energy(free) is None
    assert A.analysis_summary(free)["controller_kp"] is None


def test_analysis_summary_is_flat_scalars(callisto):
    summary = A.analysis_summary(callisto[0])
    assert summary["nodes"] == 3 and summary["edges"] == 3
    assert summary["algebraic_connectivity"] == pytest.approx(3.0)
    assert summary["offset_resistance"] == pytest.approx(2 / 3)
    assert summary["loop_gain"] == pytest.approx(2e-8 * 100_000 * 3)
    for key, value in summary.items():
        assert value is None or isinstance(value, (int, float)), key


# ----------------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    "cfg",
    [
        {"preset": "hitl-diamond", "run": {"until_s": 6.0}},
        # counts re-centred where the detector first says stable; deep buffers never fault
        {"preset": "hitl-diamond", "run": {"until_s": 3.0}, "control": {"measure": "buffer"},
         "controller": {"kind": "p", "kp": 1e-6}, "actuator": {"kind": "continuous"},
         "stability": {"window_s": 0.5}, "buffer": {"depth": 4096, "arm": "stable"}},
        {"preset": "hitl-complete3", "run": {"until_s": 12.0}, "stability": {"window_s": 0.5},
         "buffer": {"arm": "link_up", "depth": 0}, "control": {"measure": "buffer"}},
    ],
    ids=["ddc-armed-on-stable", "buffer-armed-on-stable", "ideal-buffer"],
)
def test_core_stability_matches_an_independent_replay(cfg):
    """The core's per-sample detector flags, and the detector state
    ``link_stability`` reads, equal the reference detector
    (``tests/reference/model.py``, which shares no code with the core) run
    over the measured counts.

    The rig-scale runs here are far too long for the frame-by-frame reference
    model; ``tests/reference`` compares whole runs, flags included, on small
    systems."""
    from reference.model import detector_flags

    _, trace = simulate(cfg)
    st = M.link_stability(trace)
    sys_ = trace.system
    margin, window = sys_.stability.margin, sys_.stability.window_s
    assert st["up"].any() and trace.stable.any()  # not vacuous
    armed = 0
    for l in range(trace.links.shape[0]):
        if not st["up"][l]:
            assert not st["stable"][l] and not st["settled"][l]
            continue
        times = trace.link_times(l)
        t_up = float(sys_.link_up_s[l])
        meas = trace.measured(l).astype(np.int64)
        if sys_.measure != "ddc" and sys_.buffer.arm == "stable":
            # A buffer waiting for stability counts like the domain difference
            # counter; at the first sample where the link is stable it is
            # centred (the recorded count is 0 there), after the detector saw
            # the uncentred count, the ddc.
            ddc = trace.link_counts(l, ddc=True).astype(np.int64)
            waiting, _, _ = detector_flags(ddc, times, t_up, margin, window)
            if waiting.any():
                arm_q = int(np.argmax(waiting))
                assert meas[arm_q] == 0 and np.array_equal(meas[:arm_q], ddc[:arm_q])
                meas[: arm_q + 1] = ddc[: arm_q + 1]
                armed += 1
        stable, settled, ref = detector_flags(meas, times, t_up, margin, window)
        q = times.size
        assert np.array_equal(trace.stable[l, :q] == 1, stable), l
        assert np.array_equal(trace.settled[l, :q] == 1, settled), l
        assert st["stable"][l] == stable[-1] and st["settled"][l] == settled[-1]
        assert st["reference"][l] == ref[-1]
    if sys_.buffer.arm == "stable" and sys_.measure != "ddc":
        assert armed > 0  # some buffers were centred on stability


def test_count_metrics_and_spread_over_time():
    system, trace = simulate({"preset": "hitl-star7", "run": {"until_s": 3.0}})
    per_link = M.max_abs_count_per_link(trace)
    brute = [int(np.abs(trace.measured(l).astype(np.int64)).max())
             for l in range(trace.links.shape[0])]
    assert per_link.tolist() == brute
    ddc = M.max_abs_count_per_link(trace, "ddc")
    assert ddc.tolist() == [int(np.abs(trace.link_counts(l, ddc=True).astype(np.int64)).max())
                            for l in range(trace.links.shape[0])]
    times, spread = M.spread_over_time(trace)
    assert times.shape == spread.shape == (int(trace.n_samp[0]),)
    end = M.spread_over_time(trace, [trace.until_s])[1][0]
    assert end == pytest.approx(M.run_metrics(trace)["final_spread_ppb"], rel=1e-9)
    # before any control the spread is that of the intrinsic offsets
    start = M.spread_over_time(trace, [0.0])[1][0]
    assert start == pytest.approx(np.ptp(system.offsets_ppm) * 1e3, rel=1e-9)


def test_energy_spread_of_free_running_clocks():
    system, trace = simulate({"preset": "hitl-line4", "controller": {"kind": "none"},
                              "run": {"until_s": 2.0}})
    u = system.offsets_ppm * 1e-6
    assert M.energy_spread(trace) == pytest.approx(np.sum((u - u.mean()) ** 2) * 2.0, rel=1e-12)
    assert trace.energy == pytest.approx(np.sum(u**2) * 2.0, rel=1e-12)


@pytest.mark.parametrize("preset", ["hitl8", "hitl-hourglass3"])
def test_energy_spread_matches_a_brute_force_merge(preset):
    # hitl-hourglass3's equal nodes change frequency at the same instants: ties
    _, trace = simulate({"preset": preset, "run": {"until_s": 3.0}})
    n, end = trace.n_nodes, float(trace.until_s)
    starts = [trace.seg_hi[j, 1:trace.n_seg[j]] for j in range(n)]
    cuts = np.unique(np.concatenate([[0.0, end], *starts]))
    cuts = cuts[(cuts >= 0.0) & (cuts <= end)]
    assert cuts.size > 1000  # many changes to merge
    rel = np.stack([trace.seg_rel[j, np.searchsorted(starts[j], cuts[:-1], side="right")]
                    for j in range(n)])
    brute = float(np.sum(((rel - rel.mean(axis=0)) ** 2).sum(axis=0) * np.diff(cuts)))
    assert M.energy_spread(trace) == pytest.approx(brute, rel=1e-9)


def test_run_metrics_is_one_flat_row(callisto):
    row = M.run_metrics(callisto[1])
    for key, value in row.items():
        assert value is None or isinstance(value, (bool, int, float, str)), key
    assert row["nodes"] == 3 and row["links"] == 6 and row["links_up"] == 6
    assert row["faults"] == 0 and row["first_fault_s"] is None
    assert row["energy"] == pytest.approx(callisto[1].energy)
    assert row["predicted_energy"] == pytest.approx(A.predicted_energy(callisto[0]))
    assert abs(row["energy_ratio"] - 1) < 0.10
    assert row["final_frequency_ppm"] == pytest.approx(callisto[1].final_offsets_ppm.mean())
    assert row["converged"] == (row["settle_time_s"] is not None)
    assert M.run_metrics(callisto[1], analysis=False).keys() < row.keys()


def test_controller_gains_of_every_kind():
    from tidesim.controllers import (
        PI,
        BangBang,
        Controller,
        Freeze,
        P,
        Pump,
        Reframing,
        pi_step,
        pump_step,
    )
    from tidesim.models import System

    def gains(controller):
        return A.controller_gains(System(Topology.complete(3), controller=controller))

    assert gains(PI(2e-8, 1e-15)) == (2e-8, 1e-15)
    assert gains(P(3e-8)) == gains(Pump(3e-8, target_ppm=1.0)) == (3e-8, 0.0)
    assert gains(Controller(pi_step, params=[2e-8, 1e-15, 25_000], state=[0.0])) == (2e-8, 1e-15)
    assert gains(Controller(pump_step, params=[3e-8, 1e-6])) == (3e-8, 0.0)
    for nonlinear in (None, BangBang(), Reframing(P(1e-8)), Freeze(P(1e-8), 1.0)):
        assert gains(nonlinear) is None
