"""The controller family: equations, runs in both fidelities, configs, rig presets.

* Each law is checked directly, by calling its compiled step function with
  numpy arrays and comparing with the equations written out in Python.
* Each runs in a System, where the event and cycle fidelities agree exactly.
* The pump with the quantized actuator never moves more than one step.
* Reframing brings locked counts back to the centre.
* The ``[controller]`` kinds of a config build the right controllers.
* The rig presets converge with the pump. ``hitl-hourglass3`` does because its
  buffers are centred when every link is stable, as the rig does: armed when
  each link is first stable, no gain passes it (the evidence is a test below).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from tidesim.config import build_controller, build_system, load_config, validate
from tidesim.controllers import (
    PI,
    STEP_SIGNATURE,
    BangBang,
    CompiledController,
    ControlContext,
    ControlLaw,
    Controller,
    Freeze,
    P,
    Pump,
    Reframing,
    Sequence,
    bangbang_step,
    controller_step,
    p_step,
    pump_step,
    reframing_step,
    stability,
)
from tidesim.errors import ConfigError, SimulationFault
from tidesim.models import Actuator, ElasticBuffer, Stability, System, Topology
from tidesim.presets import PRESETS, RIG_KP

RNG = np.random.default_rng(20240601)


# one update per second: durations in seconds are numbers of updates
PER_SECOND = ControlContext(update_period_ticks=100, f_nom_hz=100.0, max_in_degree=4)


def compiled(law: ControlLaw, context: ControlContext = PER_SECOND) -> CompiledController:
    return law.compile(context)


def calls(law: ControlLaw, measurements, context: ControlContext = PER_SECOND
          ) -> tuple[list[float], np.ndarray]:
    """Call ``law``'s compiled step once per measurement vector; (outputs, final state)."""
    ctl = compiled(law, context)
    state = ctl.state.copy()
    out = [ctl.step(ctl.params, state, np.asarray(m, dtype=np.float64)) for m in measurements]
    return out, state


def random_meas(n_updates: int, max_links: int = 3, scale: int = 20) -> list[np.ndarray]:
    return [RNG.integers(-scale, scale + 1, size=RNG.integers(0, max_links + 1)).astype(float)
            for _ in range(n_updates)]


# --------------------------------------------------------------------- equations


def test_every_step_has_the_contract_signature():
    for step in (p_step, pump_step, bangbang_step, reframing_step):
        assert STEP_SIGNATURE in step.nopython_signatures
    for law in (Sequence(P(1.0), Pump(1.0), 1), Freeze(P(1.0), 1)):
        assert STEP_SIGNATURE in compiled(law).step.nopython_signatures


def test_p_and_pump_equations():
    target = -0.4 * 1e-6  # as the pump turns ppm into a relative frequency
    p, pump = P(3e-8), Pump(2e-8, target_ppm=-0.4)
    assert compiled(p).params.tolist() == [3e-8] and compiled(p).n_state == 0
    assert compiled(pump).params.tolist() == [2e-8, target] and compiled(pump).n_state == 0
    for meas in random_meas(50):
        r = sum(meas.tolist()) if meas.size else 0.0
        assert calls(p, [meas])[0] == [3e-8 * r]
        assert calls(pump, [meas])[0] == [2e-8 * r + target]
    # P is PI without the integrator
    for meas in random_meas(20):
        assert calls(P(1e-7), [meas])[0] == calls(PI(1e-7), [meas])[0]


def test_bangbang_equation():
    step, band = 1e-8, 3.0
    ctl = BangBang(step_ppb=10, deadband=band)
    meas = random_meas(300, scale=5)
    out, state = calls(ctl, meas)
    c = 0.0
    for m, got in zip(meas, out, strict=True):
        r = sum(m.tolist())
        if r > band:
            c += step
        elif r < -band:
            c -= step
        assert got == c
    assert state[0] == c
    # exactly at the dead band's edge: no move
    assert calls(BangBang(10, deadband=2), [[1.0, 1.0], [-2.0], [3.0]])[0] == [0.0, 0.0, step]


def reframing_reference(kp, target, margin, window, wait, ramp, meas_seq):
    """The reframing law of docs/controllers.md, in plain Python."""
    phase, count, cstar, sstar, n_last = 0, 0, 0.0, 0.0, -1
    ref: list[float] = []
    k: list[int] = []
    out = []
    for meas in meas_seq:
        meas = [float(v) for v in meas]
        r = sum(meas)
        if phase == 2:
            count += 1
            s = sstar * (1 - count / ramp) if count < ramp else 0.0
            out.append(kp * (r - s) + cstar)
            continue
        c = kp * r + target
        if phase == 1:
            count += 1
            if count >= wait:
                phase, count = 2, 0
            out.append(c)
            continue
        if len(meas) != n_last:
            n_last = len(meas)
            ref, k = list(meas), [0] * len(meas)
        for l, v in enumerate(meas):
            if abs(v - ref[l]) > margin:
                ref[l], k[l] = v, 0
            else:
                k[l] += 1
        if meas and all(x >= window for x in k):
            cstar, sstar, count, phase = c, r, 0, 1
            if wait <= 0:
                phase = 2
        out.append(c)
    return out, phase


def _steady_then_noisy(n_links: int, rng) -> list[list[float]]:
    """Counts that wander, settle (so the node locks), then keep wobbling."""
    seq = []
    level = rng.integers(-30, 31, size=n_links).astype(float)
    for u in range(120):
        if u < 20:
            level = level + rng.integers(-6, 7, size=n_links)
        wobble = rng.integers(-1, 2, size=n_links) if u >= 20 else 0
        seq.append((level + wobble).tolist())
    return seq


@pytest.mark.parametrize("wait", [0, 1, 7])
@pytest.mark.parametrize("ramp", [0, 1, 13])
def test_reframing_equations(wait, ramp):
    rng = np.random.default_rng(wait * 100 + ramp)
    kp, target, margin, window = 1e-3, 0.25, 2, 5
    ctl = Reframing(Pump(kp, target_ppm=target * 1e6), margin=margin, window_s=window,
                    wait_s=wait, ramp_s=ramp)
    seq = _steady_then_noisy(3, rng)
    # a link comes up late: every detector restarts
    seq[10:] = [m + [0.0] for m in seq[10:]]
    got, state = calls(ctl, seq)
    want, phase = reframing_reference(kp, target, margin, window, wait, ramp, seq)
    assert phase == 2 and state[0] == 2
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)


def test_reframing_is_continuous_and_ends_on_the_new_target():
    kp = 1e-3
    ctl = Reframing(P(kp), margin=1, window_s=3, wait_s=2, ramp_s=4)
    seq = [[10.0, 20.0]] * 9 + [[0.0, 0.0]] * 3
    out, state = calls(ctl, seq)
    cstar, sstar = state[2], state[3]
    assert sstar == 30.0 and cstar == kp * 30.0
    # detect (stable at the 3rd update), wait 2 updates: the proportional law
    assert out[:5] == [kp * 30.0] * 5
    # then the count reference slides from s* = 30 to 0 over 4 updates
    slide = [kp * (30.0 - 30.0 * (1 - u / 4)) + cstar for u in (1, 2, 3)] + [kp * 30.0 + cstar]
    np.testing.assert_allclose(out[5:9], slide, rtol=1e-12)
    # with the counts centred the correction is c*: the lock is kept
    assert out[9:] == [cstar] * 3


def test_reframing_state_layout_and_degree():
    # the rig: 200 µs updates; state sized for the system's largest in-degree
    rig = ControlContext(update_period_ticks=25_000, f_nom_hz=125e6, max_in_degree=5)
    ctl = compiled(Reframing(Pump(1e-8)), rig)
    assert ctl.n_state == 5 + 2 * 5
    assert ctl.params.tolist() == [1e-8, 0.0, 4, 10_000, 5_000, 25_000, 5]
    narrow = ControlContext(update_period_ticks=100, f_nom_hz=100.0, max_in_degree=2)
    out, _ = calls(Reframing(P(1e-8)), [[1.0, 2.0, 3.0]], narrow)
    assert np.isnan(out[0])  # more links than it was sized for
    isolated = ControlContext(max_in_degree=0)
    assert compiled(Reframing(P(1e-8)), isolated).n_state == 5 + 2  # room for one link


def test_sequence_and_freeze_equations():
    first, second = BangBang(10, deadband=1), Pump(2e-8, target_ppm=0.1)
    seq = Sequence(first, second, after_s=5)
    assert compiled(seq).n_state == 2 + compiled(first).n_state + compiled(second).n_state
    meas = random_meas(12, scale=4)
    got, state = calls(seq, meas)
    want = calls(first, meas[:5])[0] + calls(second, meas[5:])[0]
    assert got == want
    assert state[0] == 12 and state[1] == got[-1]

    frozen = Freeze(seq, after_s=8)
    got, _ = calls(frozen, meas)
    assert got == want[:8] + [want[7]] * 4
    assert calls(Freeze(P(1.0), 0), [[5.0], [6.0]])[0] == [0.0, 0.0]


def test_composition_takes_user_steps_and_nests():
    @controller_step
    def twice_last(params, state, meas):
        """A user's law: 2 × (last call's sum), ``params = [gain]``, ``state = [prev]``."""
        r = 0.0
        for v in meas:
            r += v
        out = params[0] * state[0]
        state[0] = r
        return out

    user = Controller(twice_last, params=[2.0], state=[0.0])
    ctl = Sequence(Sequence(P(1.0), user, 2), Freeze(P(10.0), 1), after_s=4)
    got, _ = calls(ctl, [[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]])
    assert got == [1.0, 2.0, 0.0, 6.0, 50.0, 50.0]


def test_composite_steps_are_compiled_once_per_pair():
    a = compiled(Sequence(P(1.0), Pump(2.0), 3)).step
    b = compiled(Sequence(P(5.0), Pump(7.0, 1.0), 10)).step
    assert a is b
    assert compiled(Freeze(P(1.0), 3)).step is compiled(Freeze(P(2.0), 4)).step
    assert compiled(Sequence(Pump(1.0), P(1.0), 3)).step is not a


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: PI(-1e-6), "controller.kp"),
        (lambda: PI(1e-6, ki=-1e-12), "controller.ki"),
        (lambda: PI("1e-6"), "controller.kp"),
        (lambda: P(-1e-8), "controller.kp"),
        (lambda: BangBang(0.0), "controller.step_ppb"),
        (lambda: BangBang(10, deadband=-1), "controller.deadband"),
        (lambda: Pump(float("nan")), "controller.kp"),
        (lambda: Pump(1e-8, target_ppm=True), "controller.target_ppm"),
        (lambda: Reframing(PI(1e-8, 1e-12)), "controller.inner"),
        (lambda: Reframing(P(1e-8), window_s=-1), "controller.window_s"),
        (lambda: Reframing(P(1e-8), wait_s=float("inf")), "controller.wait_s"),
        (lambda: Reframing(P(1e-8), margin=1.5), "controller.margin"),
        (lambda: Sequence(P(1.0), "pump", 3), "controller.second"),
        (lambda: Sequence(P(1.0), P(2.0), -1), "controller.after_s"),
        (lambda: Freeze(P(1.0), "2"), "controller.after_s"),
        (lambda: Freeze(PI, 2.0), "controller.inner"),
    ],
)
def test_bad_arguments_are_config_errors(make, field):
    with pytest.raises(ConfigError) as info:
        make()
    assert info.value.field == field
    assert "\n" not in str(info.value)


def test_negative_gain_message():
    with pytest.raises(ConfigError) as info:
        PI(kp=-1e-6)
    assert str(info.value) == "controller.kp: must be >= 0, got -1e-06"


def test_controllers_are_frozen_values():
    law = Freeze(Sequence(PI(1e-7, 1e-13), Pump(1e-8, target_ppm=0.5), after_s=1.0), after_s=2)
    assert law == Freeze(Sequence(PI(1e-7, 1e-13), Pump(1e-8, 0.5), 1.0), 2.0)
    assert hash(law) == hash(Freeze(Sequence(PI(1e-7, 1e-13), Pump(1e-8, 0.5), 1.0), 2.0))
    assert law.after_s == 2.0 and isinstance(law.after_s, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        law.after_s = 3.0  # type: ignore[misc]
    assert repr(PI(1e-7)) == "PI(kp=1e-07, ki=0.0)"


def test_durations_become_updates_of_the_system():
    law = Freeze(Reframing(P(1e-8), window_s=0.5, wait_s=0.25, ramp_s=1.0), after_s=2.0)
    # 1 MHz, 200 ticks: 5000 updates per second
    system = System(Topology.star(3), f_nom_hz=1e6, update_period_ticks=200, controller=law)
    ctl = system.compile_controller()
    assert ctl.params.tolist()[:1] == [10_000]
    assert ctl.params.tolist()[1:] == [1e-8, 0.0, 4, 2500, 1250, 5000, 3]  # hub: 3 links in
    assert ctl.name == "freeze(reframing)"
    assert system.control_context == ControlContext(200, 1e6, 3)
    assert System(Topology.star(3)).compile_controller() is None


def test_a_system_passes_its_update_period_to_the_integrator():
    system = System(TOPO, controller=PI(1e-7, 1e-13), update_period_ticks=700)
    assert system.compile_controller().params.tolist() == [1e-7, 1e-13, 700.0]


def test_a_law_of_your_own_is_compiled_against_the_system():
    @dataclasses.dataclass(frozen=True)
    class PerLink(ControlLaw):
        """``P(kp / in-degree)``: a gain per link, from the system's degree."""

        kp: float

        def compile(self, context):
            return CompiledController(p_step, params=[self.kp / context.max_in_degree], name="pl")

    system = System(TOPO, controller=Freeze(PerLink(4e-7), 1.0))
    assert system.compile_controller().params.tolist() == [5000, 2e-7]
    assert system.run(0.01).faults == []

    class Broken(ControlLaw):
        def compile(self, context):
            return (p_step, [1.0], [])

    with pytest.raises(ConfigError, match="CompiledController"):
        System(TOPO, controller=Broken()).run(0.001)


# ------------------------------------------------------------------ system runs

TOPO = Topology.complete(3, latency_s=[1e-8, 3e-8, 2e-8])


def three_nodes(controller, **kwargs) -> System:
    kwargs.setdefault("offsets_ppm", [-20.0, 5.0, 30.0])
    kwargs.setdefault("buffer", ElasticBuffer(depth=32))
    return System(TOPO, theta0=[0.1, 0.5, 0.9], start_s=[0.0, 2e-3, 1e-3],
                  controller=controller, control_delay_ticks=700, **kwargs)


def assert_same_trace(a, b):
    for name in ("seg_hi", "seg_lo", "seg_k", "seg_rel", "n_seg", "samp_m", "samp_t", "samp_c",
                 "samp_des", "n_samp", "counts", "ddc", "stable", "controller_state", "ugn"):
        assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.faults == b.faults


QUANTIZED = Actuator("quantized", step_ppb=10.0)

RUNS = {
    "p": lambda: three_nodes(P(4e-7)),
    "pump-quantized": lambda: three_nodes(Pump(1e-8, target_ppm=0.2), actuator=QUANTIZED,
                                          measure="ddc"),
    "bangbang": lambda: three_nodes(BangBang(20, deadband=1)),
    # 200 µs updates: 20 updates are 4 ms
    "sequence": lambda: three_nodes(Sequence(BangBang(10), P(4e-7), 4e-3)),
    "freeze": lambda: three_nodes(Freeze(P(4e-7), 8e-3), buffer=ElasticBuffer(depth=0)),
    "reframing": lambda: three_nodes(
        Reframing(Pump(1e-6), margin=2, window_s=2e-3, wait_s=1e-3, ramp_s=6e-3),
        buffer=ElasticBuffer(depth=0)),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_event_and_cycle_fidelities_agree(name):
    system = RUNS[name]()
    event = system.run(0.02)
    cycle = system.run(0.02, fidelity="cycle")
    assert_same_trace(event, cycle)
    assert event.n_seg.max() > 2  # the controller did act


def test_reframing_reaches_its_last_phase_in_a_run():
    trace = RUNS["reframing"]().run(0.02)
    assert trace.controller_state[:, 0].tolist() == [2.0, 2.0, 2.0]


def test_desired_corrections_follow_the_pump_law():
    kp, target = 1e-8, 0.2 * 1e-6
    system = RUNS["pump-quantized"]()
    trace = system.run(0.02)
    incoming = {j: [l for l in range(TOPO.n_links) if TOPO.links[l, 1] == j] for j in range(3)}
    for j in range(3):
        q = trace.n_samp[j]
        r = sum(trace.measured(l).astype(float) for l in incoming[j])
        running = trace.samp_t[j, :q] >= system.start_s[j]
        assert_array_equal(trace.samp_des[j, :q][running], kp * r[running] + target)
        assert np.all(trace.samp_des[j, :q][~running] == 0.0)


def check_one_step_per_update(trace, step=10e-9):
    """The quantized actuator: whole steps, at most one per update, towards the desired."""
    for j in range(trace.n_nodes):
        q = trace.n_samp[j]
        applied = trace.samp_c[j, :q]
        desired = trace.samp_des[j, :q]
        z = np.round(applied / step)
        assert np.allclose(applied, z * step, rtol=0, atol=1e-18)
        dz = np.diff(np.concatenate([[0.0], z]))
        assert np.all(np.abs(dz) <= 1)
        previous = np.concatenate([[0.0], applied[:-1]])
        up = desired > previous + step / 2
        down = desired < previous - step / 2
        assert np.all(dz[up] == 1) and np.all(dz[down] == -1)
        assert np.all(dz[~up & ~down] == 0)


def test_pump_with_quantized_actuator_moves_at_most_one_step():
    check_one_step_per_update(RUNS["pump-quantized"]().run(0.02))


def test_rig_preset_moves_at_most_one_step_per_update():
    run_cfg = validate(load_config({"preset": "hitl-complete3", "run": {"until_s": 5.0}}))
    trace = build_system(run_cfg).run(run_cfg.until_s)
    check_one_step_per_update(trace)
    # far from the lock the desired correction runs ahead: the steps are back to back
    assert np.abs(np.diff(trace.samp_c[0, : trace.n_samp[0]])).max() == pytest.approx(10e-9)


# ------------------------------------------------------------------- reframing


def reframing_system(**kwargs) -> System:
    """The rig scaled down to 1 MHz (5000 updates/s): counts up to ~14 frames at lock."""
    ctl = Reframing(P(1.25e-5), margin=4, window_s=0.5, wait_s=0.1, ramp_s=0.5)
    return System(Topology.complete(3, latency_s=1e-8), f_nom_hz=1e6, update_period_ticks=200,
                  offsets_ppm=[-250.0, 62.5, 250.0], controller=ctl,
                  buffer=ElasticBuffer(depth=32), measure="buffer", **kwargs)


def reframing_times(trace) -> tuple[float, float, float]:
    """(first switch to the reframed phase, last switch, last end of the ramp) in s."""
    switches, ends = [], []
    for j in range(trace.n_nodes):
        q = trace.n_samp[j]
        # state[1] counts the updates since the switch
        q_switch = q - int(trace.controller_state[j, 1])
        switches.append(float(trace.samp_t[j, q_switch]))
        ends.append(float(trace.samp_t[j, q_switch + 2500]))
    return min(switches), max(switches), max(ends)


def test_reframing_recentres_the_counts():
    system = reframing_system()
    trace = system.run(3.0)
    assert trace.faults == []
    assert trace.controller_state[:, 0].tolist() == [2.0, 2.0, 2.0]
    first, last, ramp_end = reframing_times(trace)
    assert 0.5 < first <= last < ramp_end < 2.0
    margin, window = 4, 0.2
    off_centre = 0
    for link in range(system.topology.n_links):
        counts, times = trace.measured(link), trace.link_times(link)
        before = times < first
        stable, settled, ref = stability(counts[before], times[before], margin, window)
        assert stable[-1]  # locked before reframing ...
        off_centre += not settled[-1]  # ... with counts away from the centre
        after = times >= ramp_end
        stable, settled, ref = stability(counts[after], times[after], margin, window,
                                         start_s=ramp_end)
        assert settled[-1] and abs(ref[-1]) < margin, (link, ref[-1])
        assert np.abs(counts[after]).max() <= 1
    assert off_centre >= 2


def test_reframing_keeps_the_frequencies_locked():
    system = reframing_system()
    trace = system.run(3.0)
    first, last, ramp_end = reframing_times(trace)
    eps = system.offsets_ppm * 1e-6

    def spread(t):
        freq = [eps[j] + trace.samp_c[j, np.searchsorted(trace.samp_t[j, : trace.n_samp[j]], t)]
                for j in range(3)]
        return (max(freq) - min(freq)) * 1e6

    initial = np.ptp(system.offsets_ppm)
    worst = max(spread(t) for t in np.linspace(first - 0.1, ramp_end + 0.5, 200))
    # estimate from docs/controllers.md: s*/(ramp · p) ≈ 20/(2500 · 200) = 40 ppm here
    assert worst < 0.1 * initial
    assert spread(2.9) < 1e-3
    # no kick at the switch: the desired correction is continuous there
    for j in range(3):
        des = trace.samp_des[j, : trace.n_samp[j]]
        q_switch = trace.n_samp[j] - int(trace.controller_state[j, 1])
        assert abs(des[q_switch] - des[q_switch - 1]) < 2 * 1.25e-5


class Undersized(ControlLaw):
    """Reframing compiled for one link fewer than the system has."""

    def compile(self, context):
        smaller = dataclasses.replace(context, max_in_degree=context.max_in_degree - 1)
        return Reframing(P(1e-7)).compile(smaller)


def test_reframing_needs_room_for_every_link():
    with pytest.raises(SimulationFault):
        System(TOPO, controller=Undersized()).run(0.001)


# ----------------------------------------------------------------- stability()


def test_stability_reproduces_the_core_detector():
    """The core's recorded flags equal the reference detector
    (``tests/reference/model.py``, independent of the core) over the measured
    counts, and so does the public ``stability()`` (which runs the core's own
    detector step)."""
    from reference.model import detector_flags

    system = System(TOPO, offsets_ppm=[-5.0, 0.0, 5.0], controller=P(1e-7),
                    buffer=ElasticBuffer(depth=0), measure="ddc", start_s=[0.0, 3e-3, 0.0],
                    stability=Stability(margin=2, window_s=0.004))
    trace = system.run(0.03)
    seen = settled_seen = 0
    for link in range(TOPO.n_links):
        counts, times = trace.measured(link), trace.link_times(link)
        t_up = float(system.link_up_s[link])
        ref_stable, ref_settled, ref_ref = detector_flags(counts, times, t_up, 2, 0.004)
        q = times.size
        assert_array_equal(trace.stable[link, :q] == 1, ref_stable)
        assert_array_equal(trace.settled[link, :q] == 1, ref_settled)
        stable, settled, ref = stability(counts, times, 2, 0.004, start_s=t_up)
        assert_array_equal(stable, ref_stable)
        assert_array_equal(settled, ref_settled)
        assert_array_equal(ref[times >= t_up], ref_ref[times >= t_up])
        assert_array_equal(settled, stable & (np.abs(ref) < 2))
        seen += stable.sum()
        settled_seen += settled.sum()
    assert seen > 0
    assert settled_seen > 0


def test_controller_state_is_recorded_when_asked():
    system = System(TOPO, offsets_ppm=[-5.0, 0.0, 5.0], controller=PI(kp=1e-7, ki=1e-9),
                    buffer=ElasticBuffer(depth=0))
    assert system.run(0.01).controller_states is None
    trace = system.run(0.01, record_controller_state=True)
    states = trace.controller_states
    assert states.shape[0] == system.n_nodes and states.shape[2] == 1
    for j in range(system.n_nodes):
        q = int(trace.n_samp[j])
        assert_array_equal(states[j, q - 1], trace.controller_state[j])
        # PI's integrator moves with the summed measurement
        assert np.unique(states[j, :q, 0]).size > 3


def test_stability_semantics():
    counts = np.array([0, 1, 6, 7, 6, 2, 2, 2, 2])
    times = np.arange(9.0)
    stable, settled, ref = stability(counts, times, margin=2, window_s=2.0)
    assert ref.tolist() == [0, 0, 6, 6, 6, 2, 2, 2, 2]
    assert stable.tolist() == [False, False, False, False, True, False, False, True, True]
    assert settled.tolist() == [False] * 7 + [False, False]  # |2| is not < 2
    _, settled, _ = stability(counts, times, margin=3, window_s=2.0)
    assert settled.tolist()[-1] is True
    # before start_s: not stable, reference 0
    stable, _, ref = stability(counts, times, 2, 1.0, start_s=4.0)
    assert not stable[:4].any() and ref[:4].tolist() == [0] * 4


@pytest.mark.parametrize(
    "args, field",
    [
        (([1, 2], [0.0]), "stability.counts"),
        (([1.5], [0.0]), "stability.counts"),
        (([1], [0.0], -1), "stability.margin"),
        (([1], [0.0], 4, float("nan")), "stability.window_s"),
    ],
)
def test_stability_rejects_bad_input(args, field):
    with pytest.raises(ConfigError) as info:
        stability(np.asarray(args[0]), np.asarray(args[1]), *args[2:])
    assert info.value.field == field


# ---------------------------------------------------------------------- config

BASE = {"topology": {"kind": "complete", "n": 4}}


def controller_of(table: dict, **sections) -> CompiledController | None:
    """The controller of a config, compiled against its system."""
    run_cfg = validate({**BASE, "controller": table, **sections})
    law = build_controller(run_cfg)
    assert law == build_system(run_cfg).controller
    return build_system(run_cfg).compile_controller()


def test_config_builds_every_kind():
    assert controller_of({"kind": "none"}) is None
    assert controller_of({"kind": "p", "kp": 3e-8}).params.tolist() == [3e-8]
    assert controller_of({"kind": "p", "kp": 3e-8}).step is p_step
    pump = controller_of({"kind": "pump", "kp": 2e-8, "target_ppm": -1.5})
    assert pump.step is pump_step and pump.params.tolist() == [2e-8, -1.5e-6]
    bb = controller_of({"kind": "bangbang", "step_ppb": 20.0, "deadband": 3})
    assert bb.step is bangbang_step and bb.params.tolist() == [2e-8, 3.0]
    rf = controller_of({"kind": "reframing", "kp": 1e-8, "wait_s": 0.5, "ramp_s": 4.0},
                       stability={"margin": 3, "window_s": 1.0})
    assert rf.step is reframing_step
    # margin and window from [stability]; seconds → 200 µs updates; degree of complete(4)
    assert rf.params.tolist() == [1e-8, 0.0, 3, 5000, 2500, 20000, 3]
    rf = controller_of({"kind": "reframing", "margin": 5, "window_s": 2.0})
    assert rf.params.tolist()[2:4] == [5, 10000]


def test_config_sequence_and_freeze():
    seq = controller_of({"kind": "sequence", "after_s": 1.0,
                         "first": {"kind": "bangbang"}, "second": {"kind": "pump", "kp": 1e-8},
                         "freeze_s": 2.0})
    want = compiled(Freeze(Sequence(BangBang(10), Pump(1e-8), 5000), 10000))
    assert seq.step is want.step
    assert seq.params.tolist() == want.params.tolist()
    assert seq.state.tolist() == want.state.tolist()
    frozen = controller_of({"kind": "pi", "kp": 1e-8, "ki": 1e-15, "freeze_s": 0.1},
                           control={"update_period_ticks": 1000})
    assert frozen.params.tolist() == [12500, 1e-8, 1e-15, 1000.0]


def test_config_records_the_controller_spec():
    run_cfg = validate({**BASE, "controller": {"kind": "pump", "kp": 1e-8}})
    assert run_cfg.controller_kind == "pump" and run_cfg.kp == 1e-8 and run_cfg.ki == 0.0
    assert run_cfg.controller_spec == {"kind": "pump", "kp": 1e-8, "target_ppm": 0.0}
    run_cfg = validate({**BASE, "controller": {"kind": "bangbang"}})
    assert run_cfg.kp == 0.0
    assert run_cfg.controller_spec == {"kind": "bangbang", "step_ppb": 10.0, "deadband": 0}
    assert build_controller(run_cfg) == BangBang(step_ppb=10.0, deadband=0)
    run_cfg = validate({**BASE, "controller": {
        "kind": "sequence", "after_s": 1, "freeze_s": 3,
        "first": {"kind": "pi", "kp": 1e-7}, "second": {"kind": "reframing", "ramp_s": 0}}})
    assert run_cfg.controller_spec == {
        "kind": "sequence", "after_s": 1.0, "freeze_s": 3.0,
        "first": {"kind": "pi", "kp": 1e-7, "ki": 0.0},
        "second": {"kind": "reframing", "kp": 2e-8, "target_ppm": 0.0, "margin": 4,
                   "window_s": 2.0, "wait_s": 1.0, "ramp_s": 0.0}}
    assert build_controller(run_cfg) == Freeze(
        Sequence(PI(1e-7), Reframing(Pump(2e-8), ramp_s=0), after_s=1), after_s=3)


@pytest.mark.parametrize(
    "table, field, words",
    [
        ({"kind": "pump", "ki": 1e-12}, "controller.ki", "'pump'"),
        ({"kind": "p", "target_ppm": 1.0}, "controller.target_ppm", "not used"),
        ({"kind": "bangbang", "kp": 1e-8}, "controller.kp", "'bangbang'"),
        ({"kind": "bangbang", "step_ppb": 0.0}, "controller.step_ppb", "> 0"),
        ({"kind": "bangbang", "deadband": -1}, "controller.deadband", ">= 0"),
        ({"kind": "pump", "target_ppm": float("inf")}, "controller.target_ppm", "finite"),
        ({"kind": "reframing", "margin": 2.5}, "controller.margin", "integer"),
        ({"kind": "reframing", "wait_s": -1.0}, "controller.wait_s", ">= 0"),
        ({"kind": "reframing", "ramp_s": "5"}, "controller.ramp_s", "number"),
        ({"kind": "none", "freeze_s": 1.0}, "controller.freeze_s", "'none'"),
        ({"kind": "pump", "freeze_s": -1.0}, "controller.freeze_s", ">= 0"),
        ({"kind": "sequence", "first": {"kind": "p"}, "second": {"kind": "p"}},
         "controller.after_s", "required"),
        ({"kind": "sequence", "after_s": 1.0, "second": {"kind": "p"}},
         "controller.first", "required"),
        ({"kind": "sequence", "after_s": 1.0, "first": {"kind": "p", "kp": -1.0},
          "second": {"kind": "p"}}, "controller.first.kp", ">= 0"),
        ({"kind": "sequence", "after_s": 1.0, "first": {"kind": "none"},
          "second": {"kind": "p"}}, "controller.first.kind", "not 'none'"),
        ({"kind": "sequence", "after_s": 1.0, "first": 3, "second": {"kind": "p"}},
         "controller.first", "table"),
        ({"kind": "sequence", "after_s": 1.0, "first": {"kind": "p", "kpp": 1.0},
          "second": {"kind": "p"}}, "controller.first.kpp", "did you mean 'kp'"),
        ({"kind": "pump", "gain": 1.0}, "controller.gain", "not a known key"),
        ({"kind": "pump", "step": 1.0}, "controller.step", "not used by controller.kind = 'pump'"),
    ],
)
def test_config_errors_name_the_key(table, field, words):
    with pytest.raises(ConfigError) as info:
        validate({**BASE, "controller": table})
    assert info.value.field == field
    message = str(info.value)
    assert words in message and "\n" not in message


# ------------------------------------------------------------------ rig presets

RIG = sorted(p for p in PRESETS if p.startswith("hitl"))
PASSING = [p for p in RIG if p.startswith("hitl-")]


@pytest.mark.parametrize("name", RIG)
def test_rig_presets_use_the_pump_and_quantized_actuator(name):
    run_cfg = validate(load_config({"preset": name}))
    assert run_cfg.controller_spec == {"kind": "pump", "kp": RIG_KP, "target_ppm": 0.0}
    assert run_cfg.actuator == Actuator("quantized", step_ppb=10.0)
    assert run_cfg.update_period_ticks / run_cfg.f_nom_hz == pytest.approx(200e-6)
    assert run_cfg.measure == "ddc"
    assert (run_cfg.stability.margin, run_cfg.stability.window_s) == (4, 2.0)
    system = build_system(run_cfg)
    assert system.controller == Pump(kp=RIG_KP)
    ctl = system.compile_controller()
    assert ctl.step is pump_step and ctl.params.tolist() == [RIG_KP, 0.0]


@pytest.mark.parametrize("name", PASSING)
def test_rig_presets_converge_with_the_pump(name):
    run_cfg = validate(load_config({"preset": name}))
    trace = build_system(run_cfg).run(run_cfg.until_s, stop_on_fault=True)
    summary = trace.summary()
    assert trace.faults == [] and not trace.stopped_early
    assert summary["converged"] and summary["settle_time_s"] < 30.0
    assert trace.until_s == 60.0


def test_hourglass3_cannot_lock_within_buffers_armed_link_by_link():
    """The evidence that no gain passes ``hitl-hourglass3`` with buffers armed
    when each link is first stable (``buffer.arm = "stable"``); the preset
    arms them when every link is stable and passes.

    Nodes 0 and 2 have the same offset and start together, so the link 0→2
    is stable (its count unmoved) at 2.0 s, and armed link by link its
    32-frame buffer starts there. At the lock of the pump the count sums are
    ``c / kp``; on this graph that puts the count of 0→2 at
    ``3.3e-5 / kp`` frames from where it was armed, beyond the buffer's ±16
    for every ``kp < 2e-6``. Ideal buffers show the lock the 32-frame
    buffers cannot hold.
    """
    for kp in (5e-9, RIG_KP, 2e-8):
        run_cfg = validate(load_config({"preset": "hitl-hourglass3",
                                        "controller": {"kp": kp}, "buffer": {"depth": 0}}))
        system = build_system(run_cfg)
        trace = system.run(run_cfg.until_s)
        assert trace.summary()["converged"]
        link = system.topology.link_index(0, 2)
        times, ddc = trace.link_times(link), trace.link_counts(link, ddc=True)
        armed = int(np.argmax(trace.stable[link, : times.size] == 1))
        assert times[armed] == pytest.approx(2.0, abs=1e-3)
        assert abs(int(ddc[armed])) <= 1
        assert abs(int(ddc[-1]) - 3.3333e-5 / kp) < 3
        assert abs(int(ddc[-1]) - int(ddc[armed])) > 16
    # link by link, the buffers fault; armed together once all are stable, none does
    per_link = build_system(validate(load_config({"preset": "hitl-hourglass3",
                                                  "buffer": {"arm": "stable"}}))).run(60.0)
    together = build_system(validate(load_config({"preset": "hitl-hourglass3"}))).run(60.0)
    assert len(per_link.faults) == 8 and not per_link.converged
    assert together.faults == [] and together.converged
    # every buffer armed at its receiver's first sample after all were stable
    assert np.ptp(together.armed_at_s) <= 200e-6 * 1.001
