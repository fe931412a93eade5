"""A controller written outside tidesim plugs into a System through the contract.

The controller below is defined here, not in ``tidesim.controllers``: a
proportional controller with a dead band and a little state. It must run in
both fidelities with identical results, see the recorded measurements, keep
its state between calls, and drive a 3-node system to a common frequency.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from tidesim.controllers import PI, STEP_SIGNATURE, Controller, controller_step, p_step
from tidesim.errors import ConfigError
from tidesim.models import ElasticBuffer, System, Topology
from tidesim.models import _kernels as K

# state slots of the dead-band controller
CALLS = 0  # number of calls
LAST_R = 1  # the summed measurement of the last call
IN_BAND = 2  # number of calls that fell inside the dead band
TOTAL_ABS_R = 3  # running sum of |r|


@controller_step
def deadband_p(params, state, meas):
    """Proportional control outside a dead band: ``params = [kp, band]``."""
    r = 0.0
    for v in meas:
        r += v
    state[CALLS] += 1.0
    state[LAST_R] = r
    state[TOTAL_ABS_R] += abs(r)
    band = params[1]
    if r > band:
        e = r - band
    elif r < -band:
        e = r + band
    else:
        e = 0.0
        state[IN_BAND] += 1.0
    return params[0] * e


def deadband_reference(kp: float, band: float, r: float) -> float:
    """The same control law in plain Python."""
    if r > band:
        return kp * (r - band)
    if r < -band:
        return kp * (r + band)
    return 0.0


KP = 1e-7
BAND = 2.0
OFFSETS = [-50.0, 0.0, 50.0]  # an initial spread of 100 ppm


def make_controller() -> Controller:
    return Controller(deadband_p, params=[KP, BAND], state=[0.0, 0.0, 0.0, 0.0], name="deadband")


def make_system(**kwargs) -> System:
    kwargs.setdefault("start_s", 0.0)
    return System(Topology.complete(3, latency_s=[2e-8, 1e-8, 5e-8]), offsets_ppm=OFFSETS,
                  theta0=[0.1, 0.5, 0.8], controller=make_controller(),
                  update_period_ticks=25_000, control_delay_ticks=500,
                  buffer=ElasticBuffer(depth=0), **kwargs)


def test_step_follows_the_contract():
    assert STEP_SIGNATURE in deadband_p.nopython_signatures
    state = np.zeros(4)
    params = np.array([KP, BAND])
    assert deadband_p(params, state, np.array([3.0, 4.0])) == KP * 5.0
    assert deadband_p(params, state, np.array([1.0, -2.0])) == 0.0
    assert deadband_p(params, state, np.array([-10.0])) == -KP * 8.0
    assert_array_equal(state, [3.0, -10.0, 1.0, 18.0])
    ctl = make_system().compile_controller()
    assert ctl.step is deadband_p and ctl.n_state == 4 and ctl.name == "deadband"
    assert_array_equal(ctl.initial_states(3), np.zeros((3, 4)))


def test_plugin_runs_identically_in_both_fidelities():
    system = make_system(start_s=[0.0, 1e-4, 3e-4])
    ev = system.run(until_s=4e-3, fidelity="event")
    cy = system.run(until_s=4e-3, fidelity="cycle")
    for name in ("counts", "ddc", "stable", "n_samp", "samp_t", "samp_m", "samp_c", "samp_des",
                 "n_seg", "seg_hi", "seg_lo", "seg_k", "seg_P", "seg_rel", "controller_state"):
        assert_array_equal(getattr(ev, name), getattr(cy, name), err_msg=name)
    assert_array_equal(ev.ugn, cy.ugn)
    assert ev.faults == cy.faults == []
    # the controller did act: the outer nodes' frequencies moved, while the
    # middle node (its two counts cancel) stayed inside its dead band
    assert (ev.n_seg[[0, 2]] > 1).all()
    assert ev.controller_state[1, IN_BAND] == ev.controller_state[1, CALLS] > 0


def test_plugin_sees_the_recorded_counts_and_keeps_its_state():
    start = [0.0, 1e-3, 2e-3]
    system = make_system(start_s=start)
    trace = system.run(until_s=0.01)
    state = trace.controller_state
    assert state.shape == (3, 4)
    in_off, in_idx = system.topology.incoming()
    for j in range(3):
        n = int(trace.n_samp[j])
        times = trace.samp_t[j, :n]
        started = times >= start[j]
        # called once per sample from the node's start on, never before
        assert state[j, CALLS] == started.sum() > 0
        assert (trace.samp_des[j, :n][~started] == 0).all()
        assert (trace.samp_c[j, :n][~started] == 0).all()
        in_band = 0
        total = 0.0
        for q in np.flatnonzero(started):
            r = 0.0
            for link in in_idx[in_off[j]:in_off[j + 1]]:
                if times[q] >= system.link_up_s[link]:
                    r += float(trace.counts[link, q])
            # the core handed the recorded counts to the step, unchanged
            assert trace.samp_des[j, q] == deadband_reference(KP, BAND, r), (j, q)
            assert trace.samp_c[j, q] == trace.samp_des[j, q]  # continuous actuator
            in_band += abs(r) <= BAND
            total += abs(r)
        assert state[j, LAST_R] == r
        assert state[j, IN_BAND] == in_band
        assert state[j, TOTAL_ABS_R] == total
    # every run starts from the controller's initial state
    again = system.run(until_s=0.01)
    assert_array_equal(again.controller_state, state)
    assert system.controller.state == (0.0, 0.0, 0.0, 0.0)
    assert_array_equal(system.compile_controller().state, [0.0, 0.0, 0.0, 0.0])


def test_plugin_drives_three_nodes_to_a_common_frequency():
    trace = make_system().run(until_s=0.3)
    assert np.ptp(OFFSETS) == 100.0
    final = trace.final_offsets_ppm
    assert np.ptp(final) < 1.0, final  # from 100 ppm apart to within 1 ppm
    # converged to the mean offset (the counts settle where the corrections
    # cancel the offsets)
    assert abs(final.mean()) < 1.0
    # the buffers stopped moving: the last few samples of every link agree
    # within a frame or two
    for link in range(trace.links.shape[0]):
        tail = trace.link_counts(link)[-50:]
        assert np.ptp(tail) <= 2, link
    # the middle node sits in its dead band at the end
    assert trace.controller_state[1, IN_BAND] > 0
    assert trace.controller_state[:, CALLS].min() > 1000


def test_plugin_does_not_recompile_the_core():
    make_system().run(until_s=1e-3)
    System(Topology.line(2), controller=PI(kp=1e-7), buffer=ElasticBuffer(depth=0)).run(
        until_s=1e-3)
    make_system().run(until_s=1e-3, fidelity="cycle")
    # one compiled core serves every controller (function pointer, fixed signature)
    assert len(K.advance.signatures) == 1


@pytest.mark.parametrize("step", [3, "deadband_p", None, 1.5e-7, [deadband_p], abs,
                                  deadband_p.py_func])
def test_non_step_function_is_a_config_error(step):
    with pytest.raises(ConfigError, match="controller.step: must be a function compiled with"):
        Controller(step, params=[KP, BAND])


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"params": [KP, "2"]}, "controller.params[1]"),
    ({"params": 2.0}, "controller.params"),
    ({"state": [float("nan")]}, "controller.state[0]"),
    ({"name": ""}, "controller.name"),
])
def test_bad_params_and_state_are_config_errors(kwargs, field):
    with pytest.raises(ConfigError) as err:
        Controller(deadband_p, **kwargs)
    assert err.value.field == field


def test_params_and_state_are_kept_as_floats():
    ctl = Controller(deadband_p, params=np.array([1, 2]), state=[0])
    assert ctl.params == (1.0, 2.0) and ctl.state == (0.0,)
    assert ctl == Controller(deadband_p, params=(1.0, 2.0), state=(0.0,))


def test_a_non_controller_is_a_config_error():
    with pytest.raises(ConfigError, match="controller"):
        System(Topology.line(2), controller=deadband_p)


# ------------------------------------------------------------ named in a config


def python_config(step, **controller) -> dict:
    return {"preset": "hitl-diamond", "run": {"until_s": 1.0},
            "controller": {"kind": "python", "step": step, **controller}}


def test_config_names_a_step_function_by_module_and_name():
    from tidesim.config import build_controller, build_system, load_config, validate

    named = validate(load_config(python_config("tidesim.controllers:p_step", params=[2e-8])))
    builtin = validate(load_config({"preset": "hitl-diamond", "run": {"until_s": 1.0},
                                    "controller": {"kind": "p", "kp": 2e-8}}))
    ctl = build_controller(named)
    assert ctl == Controller(p_step, params=[2e-8], name="p_step")
    ctl = build_system(named).compile_controller()
    assert ctl.name == "p_step" and ctl.params.tolist() == [2e-8] and ctl.n_state == 0
    a, b = build_system(named).run(1.0), build_system(builtin).run(1.0)
    assert_array_equal(a.seg_rel, b.seg_rel)
    assert_array_equal(a.ddc, b.ddc)


def test_config_python_state_and_freeze():
    from tidesim.config import build_system, load_config, validate

    rc = validate(load_config(python_config("tidesim.controllers:pi_step",
                                            params=[1e-8, 1e-15, 25_000], state=[0.0],
                                            freeze_s=1.0)))
    ctl = build_system(rc).compile_controller()
    assert ctl.state.tolist() == [0.0, 0.0, 0.0]  # Freeze's two slots, then the PI's own
    assert ctl.params.tolist() == [5000, 1e-8, 1e-15, 25_000]


@pytest.mark.parametrize(("controller", "field", "words"), [
    ({"step": "no_such_module_xyz:f"}, "controller.step", "importable module"),
    ({"step": "tidesim.controllers:no_such"}, "controller.step", "function of the module"),
    ({"step": "tidesim.controllers:PI"}, "controller.step", "controller_step"),
    ({"step": "p_step"}, "controller.step", "'module:function'"),
    ({"step": 3}, "controller.step", "'module:function'"),
    ({}, "controller.step", "is required"),
    ({"step": "tidesim.controllers:p_step", "params": "1e-8"}, "controller.params", "list"),
    ({"step": "tidesim.controllers:p_step", "params": [True]}, "controller.params[0]", "number"),
    ({"step": "tidesim.controllers:p_step", "kp": 1e-8}, "controller.kp", "not used"),
])
def test_config_python_errors(controller, field, words):
    from tidesim.config import load_config, validate

    cfg = {"preset": "hitl-diamond", "controller": {"kind": "python", **controller}}
    with pytest.raises(ConfigError) as err:
        validate(load_config(cfg))
    assert err.value.field == field
    assert words in str(err.value)


def test_sweep_runs_a_named_step_function(tmp_path):
    import concurrent.futures as cf

    from tidesim.studies.sweep import Sweep, run_sweep

    sweep = Sweep(python_config("tidesim.controllers:p_step", params=[1e-8]),
                  grid={"controller.params": [[1e-8], [1e-7]]}, until_s=0.5)
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        result = run_sweep(sweep, tmp_path, executor=pool, progress=False)
    assert [r["error"] for r in result.rows] == [None, None]
    assert [r["controller_kp"] for r in result.rows] == [1e-8, 1e-7]  # analysis sees a P law
