"""The ``tidesim`` pytest plugin, as a user's test-suite sees it (via ``pytester``)."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from tidesim.models import ElasticBuffer, Stability, System, Topology
from tidesim.testing import (
    assert_converged,
    assert_no_buffer_faults,
    assert_ugn_constant,
    make_system,
    run_cycles,
    ugn_per_sample,
)

pytest_plugins = ["pytester"]

USER_TESTS = '''
from tidesim.controllers import PI
from tidesim.models import ElasticBuffer, Topology
from tidesim.testing import assert_no_buffer_faults, assert_ugn_constant, run_cycles


def test_small_offsets_keep_logical_latency(bittide_system):
    system = bittide_system(topology=Topology.complete(3), offsets_ppm=[-1.0, 0.0, 1.0],
                            update_period_ticks=500)
    trace = run_cycles(system, 4000)
    assert_no_buffer_faults(trace)
    assert_ugn_constant(trace)


def test_large_offsets_overflow_a_small_fifo(bittide_system):
    system = bittide_system(topology=Topology.complete(3), offsets_ppm=[-3000.0, 0.0, 3000.0],
                            buffer=ElasticBuffer(depth=4), update_period_ticks=100)
    trace = run_cycles(system, 5000)
    assert_no_buffer_faults(trace)


def test_preset_with_overrides(bittide_system):
    system = bittide_system("hitl8", seed=3, buffer={"depth": 64})
    assert system.buffer.depth == 64 and system.n_nodes == 8
    trace = system.run(until_cycles=2000, fidelity="cycle")
    assert trace.fidelity == "cycle"
'''


def vcd_paths(output: str) -> list[Path]:
    return [Path(p) for p in re.findall(r"VCD:\s+(\S+\.vcd)", output)]


def test_passing_and_failing_checks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    # the message names node, link, kind, cycle and time
    result.stdout.fnmatch_lines([
        "*elastic-buffer fault(s):*",
        "*node 0, link 1 (from node 2): overflow at cycle *, t=* s (* frame(s) in all)*",
        "*tidesim waveforms*",
    ])
    paths = vcd_paths(out)
    assert len(paths) == 1
    vcd = paths[0]
    expect = pytester.path / "tidesim-waves" / "test_user.py" / \
        "test_large_offsets_overflow_a_small_fifo" / "trace_0.vcd"
    assert vcd == expect
    assert vcd.is_file() and vcd.with_suffix(".gtkw").is_file()
    assert f"gtkwave {vcd.with_suffix('.gtkw')}" in out
    text = vcd.read_text()
    assert "$scope module link_from_2 $end" in text and "overflow" in text
    # passing tests leave nothing behind
    assert [p.name for p in (pytester.path / "tidesim-waves" / "test_user.py").iterdir()] == [
        "test_large_offsets_overflow_a_small_fifo"]


def test_waves_dir_ini_option(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntidesim_waves_dir = out/waves\n")
    pytester.makepyfile(test_one='''
import pytest
from tidesim.models import Topology
from tidesim.testing import run_cycles

@pytest.mark.parametrize("n", [3])
def test_fails_after_two_runs(bittide_system, n):
    system = bittide_system(topology=Topology.complete(n))
    run_cycles(system, 1000)
    system.run(until_cycles=500)
    assert False, "on purpose"
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    paths = vcd_paths(result.stdout.str())
    base = pytester.path / "out" / "waves" / "test_one.py" / "test_fails_after_two_runs_3"
    assert paths == [base / "trace_0.vcd", base / "trace_1.vcd"]
    assert all(p.is_file() for p in paths)
    assert "cycle fidelity" in result.stdout.str() and "event fidelity" in result.stdout.str()


def test_a_rerun_replaces_old_waveforms(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x='''
from tidesim.models import Topology
from tidesim.testing import record_trace

def test_x(bittide_system):
    record_trace(bittide_system(topology=Topology.complete(3)).run(until_cycles=300))
    assert False
''')
    stale = pytester.path / "tidesim-waves" / "test_x.py" / "test_x" / "trace_7.vcd"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(failed=1)
    assert sorted(p.name for p in stale.parent.iterdir()) == ["trace_0.gtkw", "trace_0.vcd"]


def test_junit_xml_records_the_waveforms(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_j='''
from tidesim.models import Topology

def test_fails(bittide_system):
    bittide_system(topology=Topology.complete(3)).run(until_cycles=300)
    assert False, "on purpose"

def test_passes(bittide_system):
    bittide_system(topology=Topology.complete(3)).run(until_cycles=300)
''')
    xml = pytester.path / "junit.xml"
    pytester.runpytest("-p", "no:cacheprovider", f"--junitxml={xml}").assert_outcomes(
        passed=1, failed=1)
    cases = {case.get("name"): case for case in ElementTree.parse(xml).iter("testcase")}
    props = [(p.get("name"), p.get("value")) for p in cases["test_fails"].iter("property")]
    base = pytester.path / "tidesim-waves" / "test_j.py" / "test_fails"
    assert props == [("tidesim_vcd", str(base / "trace_0.vcd")),
                     ("tidesim_gtkw", str(base / "trace_0.gtkw"))]
    assert all(Path(value).is_file() for _, value in props)
    assert list(cases["test_passes"].iter("property")) == []


# ------------------------------------------------------------------ the helpers directly


def small(**kw) -> System:
    return System(Topology.complete(3), **{"offsets_ppm": [-1.0, 0.0, 1.0],
                                           "update_period_ticks": 500, **kw})


def test_assert_ugn_constant_detects_a_changed_latency() -> None:
    trace = run_cycles(small(offsets_ppm=[-3000.0, 0.0, 3000.0], buffer=ElasticBuffer(depth=4)),
                       5000)
    with pytest.raises(AssertionError, match=r"node \d, link \d \(from node \d\): UGN \d+ "
                                             r"changed to \d+ by cycle \d+, t="):
        assert_ugn_constant(trace)
    good = run_cycles(small(), 4000)
    assert_ugn_constant(good)
    for l in range(good.links.shape[0]):
        _, lam = ugn_per_sample(good, l)
        assert np.all(lam == good.ugn[l])
    # between two runs of the same system, and against a UGN matrix
    again = run_cycles(small(), 6000, fidelity="event")
    assert_ugn_constant(again, good)
    assert_ugn_constant(again, good.ugn_matrix())
    with pytest.raises(AssertionError, match="differ from the reference"):
        assert_ugn_constant(again, good.ugn + 1)


def test_assert_converged() -> None:
    quick = Stability(margin=4, window_s=1e-5)
    drifting = run_cycles(small(offsets_ppm=[-3000.0, 0.0, 3000.0], stability=quick,
                                buffer=ElasticBuffer(depth=0)), 5000)
    with pytest.raises(AssertionError, match=r"not converged.*\n.*node \d, link \d "
                                             r"\(from node \d\): not stable at its last "
                                             r"sample \(cycle \d+, t=.* s, measurement -?\d+\)"):
        assert_converged(drifting)
    steady = run_cycles(small(stability=quick), 5000)
    assert_converged(steady)
    assert_converged(steady, within_s=2e-5, max_spread_ppb=2001.0)
    with pytest.raises(AssertionError, match="later than"):
        assert_converged(steady, within_s=1e-6)
    with pytest.raises(AssertionError, match="spread 2000 ppb exceeds"):
        assert_converged(steady, max_spread_ppb=1000.0)


def test_assert_no_buffer_faults_passes_on_a_clean_run() -> None:
    assert_no_buffer_faults(run_cycles(small(), 2000))


def test_make_system_sources(tmp_path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text('preset = "hitl8"\nseed = 2\n[buffer]\ndepth = 16\n')
    assert make_system(cfg).buffer.depth == 16
    assert make_system(str(cfg), buffer={"depth": 8}).buffer.depth == 8
    assert make_system({"preset": "hitl8"}, seed=5).seed == 5
    assert make_system(topology=Topology.complete(4)).n_nodes == 4
    with pytest.raises(TypeError):
        make_system(42)
