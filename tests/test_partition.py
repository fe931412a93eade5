"""A system run node by node (each node on its own, fed its senders' segments)
is the undivided run, bit for bit.

:func:`~tidesim.models._partition.run_split` is the in-process form of what
the distributed backends do over sockets: windows settled by iteration.
"""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fidelity import systems

from tidesim.config import build_system, load_config, validate
from tidesim.errors import ConfigError
from tidesim.models import _partition as part
from tidesim.models import simulation as simulation_module
from tidesim.testing import assert_same_run

EVERY = {"full": 1, "summary": 0, 3: 3}


def preset(name, **overrides):
    return build_system(validate(load_config({"preset": name, **overrides})))


@pytest.mark.parametrize(("name", "until", "fidelity", "record"), [
    ("hitl-cycle5", 0.3, "event", "full"),
    ("hitl-hourglass3", 1.0, "event", "full"),  # buffer faults
    ("hitl-line4", 0.2, "cycle", "full"),
    ("hitl8", 2.0, "event", "summary"),
    ("callisto-test", 2e4, "event", 3),
])
def test_presets_split_by_node_are_the_whole_run(name, until, fidelity, record):
    system = preset(name)
    whole = system.run(until_s=until, fidelity=fidelity, record=record)
    stats: dict = {}
    split = part.run_split(system, until, fidelity=fidelity, every=EVERY[record], stats=stats)
    kept = record != "summary"
    assert_same_run(whole, split, samples=kept, history=record == "full")
    assert split.summary() == whole.summary()
    assert stats["iterations"] >= 2 * stats["windows"]  # each window is confirmed once


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(systems(), st.floats(1e-3, 0.01), st.sampled_from([None, 3e-4, 2e-3]),
       st.sampled_from(["event", "cycle"]), st.sampled_from(["full", "summary", 3]))
def test_random_systems_split_by_node(system, until, window_s, fidelity, record):
    """Random systems and windows, a tiny segment window: split is whole."""
    whole = system.run(until_s=until, fidelity=fidelity, record=record)
    with mock.patch.object(simulation_module, "_WINDOW", 6):
        split = part.run_split(system, until, fidelity=fidelity, every=EVERY[record],
                               window_s=window_s)
    kept = record != "summary"
    assert_same_run(whole, split, samples=kept, history=record == "full")
    assert split.summary() == whole.summary()


def test_a_wrong_sender_segment_changes_the_run():
    """The check can fail: feeding one node a sender's segments one period late
    gives another run."""
    system = preset("hitl-cycle5")
    whole = system.run(until_s=0.2, record="full")
    original = part.NodeRun._add_ghost

    def late(self, i, segs):
        if self.node == 0:
            segs = segs._replace(seg=segs.seg.copy())
            segs.seg[:, 0] += segs.seg[:, 2]
        original(self, i, segs)

    with mock.patch.object(part.NodeRun, "_add_ghost", late):
        split = part.run_split(system, 0.2, every=1)
    with pytest.raises(AssertionError):
        assert_same_run(whole, split, samples=True, history=True)


def test_what_cannot_be_split_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^run.stop_on_fault: is not supported by the "
                                          r"processes backend \(use inprocess\), got True$"):
        part.check_splittable(preset("hitl-cycle5"), stop_on_fault=True, backend="processes")
