"""Tests of tidesim.calendars: calendars, the calendar unit and its kernel.

The reference behaviours (DESIGN.md, "Calendar") are checked on hand-computed
values; the unit's ``step`` and ``run`` are checked against ``model_cycles``
below, a plain-Python model written from the definition (entries held
``repeat + 1`` cycles, a shadow write swaps in at the next metacycle
boundary) that shares no code with the package.
"""

from __future__ import annotations

import dataclasses
import doctest
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tidesim.calendars
from tidesim.calendars import Calendar, CalendarRun, CalendarUnit, Hardware
from tidesim.calendars import _calendar as calendar_module
from tidesim.calendars import _unit as unit_module
from tidesim.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------ the model


def model_expand(entries):
    """The per-cycle configurations of one metacycle: each entry ``repeat + 1`` times."""
    out = []
    for configuration, repeat in entries:
        for _ in range(repeat + 1):
            out.append(list(configuration))
    return out


def model_cycles(initial, writes, n):
    """Cycles ``0 .. n - 1`` of a unit started on ``initial``.

    Args:
        initial: entries (list of ``(configuration, repeat)``) active at cycle 0.
        writes: ``(cycle, entries)`` shadow writes, sorted by cycle; a write at
            cycle ``w`` happens before cycle ``w`` executes.
        n: cycles.

    Returns:
        One ``(entry, metacycle, cycle_in_metacycle, last_cycle, configuration)``
        tuple per cycle.
    """
    rows = []
    active = initial
    metacycle = 0
    begin = 0  # first cycle of the metacycle in progress
    while len(rows) < n:
        position = 0
        for e, (configuration, repeat) in enumerate(active):
            for k in range(repeat + 1):
                last = e == len(active) - 1 and k == repeat
                rows.append((e, metacycle, position, last, list(configuration)))
                position += 1
        end = len(rows)  # the boundary: the first cycle of the next metacycle
        # a write made during this metacycle (after the previous boundary) swaps in here
        written = [entries for w, entries in writes if begin <= w < end]
        if written:
            active = written[-1]
        begin = end
        metacycle += 1
    return rows[:n]


# ------------------------------------------------------------------ strategies

SMALL = Hardware(calendar_depth=6, tx_words=8, rx_words=5, max_repeat=4)
SWITCH_INPUTS = 3


def value_range(kind):
    return {"gather": (-1, 7), "scatter": (-1, 4), "switch": (0, SWITCH_INPUTS)}[kind]


@st.composite
def entry_lists(draw, kind, ports):
    lo, hi = value_range(kind)
    n = draw(st.integers(1, SMALL.calendar_depth))
    return [(tuple(draw(st.lists(st.integers(lo, hi), min_size=ports, max_size=ports))),
             draw(st.integers(0, SMALL.max_repeat))) for _ in range(n)]


def make(kind, entries, ports):
    return Calendar(kind, entries, ports, SMALL,
                    inputs=SWITCH_INPUTS if kind == "switch" else None)


@st.composite
def scenarios(draw):
    """A calendar, shadow writes at random cycles, and a way to cut the cycles into
    runs and steps."""
    kind = draw(st.sampled_from(tidesim.calendars.KINDS))
    ports = draw(st.integers(1, 3))
    initial = draw(entry_lists(kind, ports))
    chunks = draw(st.lists(st.tuples(st.integers(0, 25), st.sampled_from(["run", "step"])),
                           min_size=1, max_size=5))
    n = sum(size for size, _ in chunks)
    writes = draw(st.lists(st.tuples(st.integers(0, n), entry_lists(kind, ports)), max_size=4))
    writes.sort(key=lambda w: w[0])  # stable: writes on one cycle keep their order
    return kind, ports, initial, writes, chunks


# ------------------------------------------------------------------ reference behaviours

A = [((1, -1), 2), ((2, 3), 0), ((-1, 4), 4)]  # 3 + 1 + 5 = 9 cycles


def test_metacycle_is_the_sum_of_repeat_plus_one():
    cal = Calendar("gather", A, 2)
    assert cal.metacycle_cycles == 9
    assert cal.depth == 3
    assert Calendar("scatter", [((0,), 0)], 1).metacycle_cycles == 1
    assert Calendar("switch", [((0,), 65535)], 1).metacycle_cycles == 65536


def test_expand_holds_each_entry_repeat_plus_one_cycles():
    expected = [[1, -1]] * 3 + [[2, 3]] + [[-1, 4]] * 5
    assert Calendar("gather", A, 2).expand().tolist() == expected
    assert Calendar("gather", A, 2).expand().dtype == np.int64


def test_last_cycle_only_on_the_final_cycle_of_each_metacycle():
    unit = CalendarUnit(Calendar("gather", A, 2))
    flags = []
    for _ in range(27):
        flags.append(unit.last_cycle)
        unit.step()
    assert [t for t, f in enumerate(flags) if f] == [8, 17, 26]
    run = CalendarUnit(Calendar("gather", A, 2)).run(27)
    assert np.flatnonzero(run.last_cycle).tolist() == [8, 17, 26]


def test_single_cycle_calendar_is_always_on_its_last_cycle():
    run = CalendarUnit(Calendar("switch", [((1, 0), 0)], 2)).run(5)
    assert run.last_cycle.all()
    assert run.metacycle.tolist() == [0, 1, 2, 3, 4]


def test_metacycle_counter_adds_one_per_metacycle():
    unit = CalendarUnit(Calendar("gather", A, 2))
    run = unit.run(40)
    assert run.metacycle.tolist() == [t // 9 for t in range(40)]
    assert unit.metacycle == 40 // 9
    assert unit.cycle_in_metacycle == 40 % 9
    assert unit.cycle == 40


B = [((7, 7), 1)]  # 2 cycles


@pytest.mark.parametrize("at", range(12))
def test_shadow_swaps_in_only_at_the_next_boundary(at):
    """A write on any cycle of a metacycle takes effect at the boundary that ends it
    (a write on a metacycle's first cycle: the boundary after that metacycle)."""
    unit = CalendarUnit(Calendar("gather", A, 2))
    configs = []
    for t in range(24):
        if t == at:
            unit.write_shadow(Calendar("gather", B, 2))
        configs.append(unit.step().tolist())
    swap = (at // 9 + 1) * 9
    assert configs[:swap] == (Calendar("gather", A, 2).expand().tolist() * 3)[:swap]
    assert configs[swap:] == [[7, 7]] * (24 - swap)
    # the same with the write made by run()
    run = CalendarUnit(Calendar("gather", A, 2)).run(24, writes=[(at, Calendar("gather", B, 2))])
    assert run.config.tolist() == configs


def test_writing_twice_before_the_boundary_keeps_the_last_write():
    unit = CalendarUnit(Calendar("gather", A, 2))
    unit.run(3)
    unit.write_shadow(Calendar("gather", B, 2))
    unit.write_shadow(Calendar("gather", [((5, 6), 0)], 2))
    assert unit.shadow.entries == (((5, 6), 0),)
    run = unit.run(8)
    assert run.config[:6].tolist() == Calendar("gather", A, 2).expand()[3:].tolist()
    assert run.config[6:].tolist() == [[5, 6], [5, 6]]
    assert unit.shadow is None
    assert unit.calendar.entries == (((5, 6), 0),)


def test_state_properties_describe_the_current_cycle():
    unit = CalendarUnit(Calendar("gather", A, 2))
    assert (unit.cycle, unit.entry, unit.metacycle, unit.cycle_in_metacycle) == (0, 0, 0, 0)
    assert unit.configuration.tolist() == [1, -1]
    for _ in range(8):
        unit.step()
    assert unit.last_cycle and unit.entry == 2 and unit.cycle_in_metacycle == 8
    assert unit.step().tolist() == [-1, 4]
    assert not unit.last_cycle and unit.entry == 0 and unit.metacycle == 1
    assert unit.kind == "gather" and unit.ports == 2


def test_run_of_zero_cycles_and_write_after_the_last_cycle():
    unit = CalendarUnit(Calendar("gather", A, 2))
    run = unit.run(0, writes=[(0, Calendar("gather", B, 2))])
    assert isinstance(run, CalendarRun)
    assert run.config.shape == (0, 2) and run.entry.shape == (0,)
    assert unit.shadow == Calendar("gather", B, 2)
    unit = CalendarUnit(Calendar("gather", A, 2))
    unit.run(9, writes=[(9, Calendar("gather", B, 2))])  # after the boundary: pending
    assert unit.calendar.entries == Calendar("gather", A, 2).entries
    assert unit.shadow is not None
    assert unit.run(11).config[9:].tolist() == [[7, 7], [7, 7]]


# ------------------------------------------------------------------ against the model


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_step_and_run_agree_with_the_model(scenario):
    kind, ports, initial, writes, chunks = scenario
    n = sum(size for size, _ in chunks)
    expected = model_cycles(initial, writes, n + 1)
    assert make(kind, initial, ports).expand().tolist() == model_expand(initial)
    for _, entries in writes:
        assert make(kind, entries, ports).expand().tolist() == model_expand(entries)

    unit = CalendarUnit(make(kind, initial, ports))
    got = []
    begin = 0
    for k, (size, mode) in enumerate(chunks):
        end = begin + size
        # writes on this chunk's cycles; those on cycle n with the last chunk
        mine = [(w, e) for w, e in writes
                if begin <= w < end or (w == n and k == len(chunks) - 1)]
        if mode == "run":
            run = unit.run(size, writes=[(w - begin, make(kind, e, ports)) for w, e in mine])
            assert run.entry.dtype == np.int64 and run.last_cycle.dtype == np.bool_
            got += [(int(e), int(m), bool(f), c)
                    for e, m, f, c in zip(run.entry, run.metacycle, run.last_cycle,
                                          run.config.tolist(), strict=True)]
        else:
            for t in range(begin, end):
                for _, e in [x for x in mine if x[0] == t]:
                    unit.write_shadow(make(kind, e, ports))
                row = (unit.entry, unit.metacycle, unit.last_cycle)
                got.append((*row, unit.step().tolist()))
            for _, e in [x for x in mine if x[0] == end]:
                unit.write_shadow(make(kind, e, ports))
        begin = end
    assert got == [(e, m, last, c) for e, m, _, last, c in expected[:n]]
    entry, metacycle, position, last, configuration = expected[n]
    assert (unit.cycle, unit.entry, unit.metacycle, unit.cycle_in_metacycle,
            unit.last_cycle) == (n, entry, metacycle, position, last)
    assert unit.configuration.tolist() == configuration


# ------------------------------------------------------------------ from_cycles


def expected_entry_count(rows, span):
    """Runs of equal consecutive rows, each cut into pieces of at most ``span`` cycles."""
    count, length = 0, 0
    for t, row in enumerate(rows):
        if t and row != rows[t - 1]:
            count += -(-length // span)
            length = 0
        length += 1
    return count + -(-length // span)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(kind=st.sampled_from(tidesim.calendars.KINDS), ports=st.integers(1, 3),
       max_repeat=st.integers(0, 5), seed=st.integers(0, 2**32 - 1),
       runs=st.lists(st.integers(1, 14), min_size=1, max_size=8))
def test_from_cycles_round_trip(kind, ports, max_repeat, seed, runs):
    rng = np.random.default_rng(seed)
    lo, hi = value_range(kind)
    rows = []
    for length in runs:  # runs of equal rows; neighbours may repeat too, by chance
        row = rng.integers(lo, hi + 1, size=ports).tolist()
        rows += [row] * length
    hardware = Hardware(calendar_depth=1024, tx_words=8, rx_words=5, max_repeat=max_repeat)
    inputs = SWITCH_INPUTS if kind == "switch" else None
    cal = Calendar.from_cycles(kind, np.array(rows), hardware=hardware, inputs=inputs)
    assert cal.expand().tolist() == rows
    assert cal.metacycle_cycles == len(rows)
    assert cal.depth == expected_entry_count(rows, max_repeat + 1)
    assert (cal.repeat <= max_repeat).all()
    for e in range(1, cal.depth):  # equal neighbours only where the first one is full
        if cal.config[e].tolist() == cal.config[e - 1].tolist():
            assert cal.repeat[e - 1] == max_repeat
    assert Calendar.from_cycles(kind, cal.expand(), hardware=hardware, inputs=inputs) == cal


def test_from_cycles_hand_computed():
    cal = Calendar.from_cycles("gather", [[3], [3], [3], [3], [3], [1], [3]],
                               hardware=Hardware(max_repeat=1))
    assert cal.entries == (((3,), 1), ((3,), 1), ((3,), 0), ((1,), 0), ((3,), 0))


def test_idle_calendar():
    cal = Calendar.idle("gather", 3, 10, hardware=Hardware(max_repeat=3))
    assert cal.entries == (((-1, -1, -1), 3), ((-1, -1, -1), 3), ((-1, -1, -1), 1))
    assert Calendar.idle("switch", 2, 1).entries == (((0, 0), 0),)
    assert Calendar.idle("scatter", 1, 65536 * 1024).depth == 1024


# ------------------------------------------------------------------ value semantics


def test_calendar_is_immutable_and_compares_by_value():
    cal = Calendar("gather", A, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cal.ports = 3
    with pytest.raises(ValueError):
        cal.config[0, 0] = 5
    with pytest.raises(ValueError):
        cal.repeat[0] = 5
    same = Calendar("gather", [(np.array([1, -1]), 2), ([2, 3], np.int64(0)), ((-1, 4), 4)], 2)
    assert same == cal and hash(same) == hash(cal)
    assert Calendar("scatter", A, 2) != cal
    assert cal.config.dtype == np.int64 and cal.config.shape == (3, 2)
    assert cal.repeat.tolist() == [2, 0, 4]
    assert repr(cal) == "Calendar('gather', depth=3, ports=2, metacycle_cycles=9)"


def test_switch_inputs_default_to_ports():
    assert Calendar("switch", [((3, 0, 1), 0)], 3).inputs == 3
    assert Calendar("switch", [((5,), 0)], 1, inputs=5).inputs == 5


# ------------------------------------------------------------------ bad input

BAD = [
    (lambda: Calendar("gather", [((0,), 0)] * 1025, 1),
     "gather.entries: at most 1024 entries (calendar_depth), got 1025"),
    (lambda: Calendar("scatter", [((0,), 0)] * 3, 1, Hardware(calendar_depth=2)),
     "scatter.entries: at most 2 entries (calendar_depth), got 3"),
    (lambda: Calendar.from_cycles("gather", np.arange(2000).reshape(2000, 1) % 2),
     "gather.entries: at most 1024 entries (calendar_depth), got 2000"),
    (lambda: Calendar("gather", [], 1), "gather.entries: must have at least one entry, got []"),
    (lambda: Calendar("gather", 5, 1),
     "gather.entries: must be a list of (configuration, repeat) pairs, got 5"),
    (lambda: Calendar("gather", [(0, 0, 0)], 1),
     "gather.entries[0]: must be a (configuration, repeat) pair, got (0, 0, 0)"),
    (lambda: Calendar("gather", [((0,), 0), ((0,), -1)], 1),
     "gather.entries[1].repeat: must be an integer in [0, 65535] (max_repeat), got -1"),
    (lambda: Calendar("switch", [((0,), 65536)], 1),
     "switch.entries[0].repeat: must be an integer in [0, 65535] (max_repeat), got 65536"),
    (lambda: Calendar("gather", [((0,), 1.0)], 1),
     "gather.entries[0].repeat: must be an integer in [0, 65535] (max_repeat), got 1.0"),
    (lambda: Calendar("gather", [((0, 4096), 0)], 2),
     "gather.entries[0].configuration[1]: must be an integer in [-1, 4095] "
     "(-1 = null frame; tx_words = 4096), got 4096"),
    (lambda: Calendar("gather", [((0, -2), 0)], 2),
     "gather.entries[0].configuration[1]: must be an integer in [-1, 4095] "
     "(-1 = null frame; tx_words = 4096), got -2"),
    (lambda: Calendar("scatter", [(np.array([3, 16]), 0)], 2, Hardware(rx_words=16)),
     "scatter.entries[0].configuration[1]: must be an integer in [-1, 15] "
     "(-1 = discard; rx_words = 16), got 16"),
    (lambda: Calendar("switch", [((5, 0), 0)], 2, inputs=4),
     "switch.entries[0].configuration[0]: must be an integer in [0, 4] "
     "(0 = null frame, k = input k-1; inputs = 4), got 5"),
    (lambda: Calendar("switch", [((3,), 0)], 2),
     "switch.entries[0].configuration: must have one integer per port (2), got [3]"),
    (lambda: Calendar("gather", [((0, 1, 2), 0)], 2),
     "gather.entries[0].configuration: must have one integer per port (2), got [0, 1, 2]"),
    (lambda: Calendar("gather", [(0, 0)], 1),
     "gather.entries[0].configuration: must be a list with one integer per port (1), got 0"),
    (lambda: Calendar("crossbar", [((0,), 0)], 1),
     "calendar.kind: must be one of ['gather', 'scatter', 'switch'], got 'crossbar'"),
    (lambda: Calendar("gather", [((0,), 0)], 0), "gather.ports: must be an integer >= 1, got 0"),
    (lambda: Calendar("gather", [((0,), 0)], 1, inputs=2),
     "gather.inputs: must be None (only a switch has inputs), got 2"),
    (lambda: Calendar("switch", [((0,), 0)], 1, inputs=0),
     "switch.inputs: must be an integer >= 1, got 0"),
    (lambda: Calendar("gather", [((0,), 0)], 1, hardware=1024),
     "gather.hardware: must be a Hardware, got 1024"),
    (lambda: Hardware(calendar_depth=2**21),
     "hardware.calendar_depth: must be an integer in [1, 1048576], got 2097152"),
    (lambda: Hardware(max_repeat=-1),
     "hardware.max_repeat: must be an integer in [0, 4294967295], got -1"),
    (lambda: Hardware(tx_words=0), "hardware.tx_words: must be an integer in [1, 16777216], got 0"),
    (lambda: Hardware(rx_words=2.5),
     "hardware.rx_words: must be an integer, got 2.5"),
    (lambda: Calendar.from_cycles("gather", [1, 2, 3]),
     "gather.per_cycle_config: must be a 2-D integer array [cycles >= 1, ports >= 1], "
     "got int64 array of shape (3,)"),
    (lambda: Calendar.from_cycles("gather", np.zeros((2, 2))),
     "gather.per_cycle_config: must be a 2-D integer array [cycles >= 1, ports >= 1], "
     "got float64 array of shape (2, 2)"),
    (lambda: Calendar.from_cycles("switch", [[0, 3]], inputs=2),
     "switch.entries[0].configuration[1]: must be an integer in [0, 2] "
     "(0 = null frame, k = input k-1; inputs = 2), got 3"),
    (lambda: Calendar.idle("gather", 1, 0), "gather.cycles: must be an integer >= 1, got 0"),
    (lambda: Calendar.idle("gather", 1, 9, hardware=Hardware(calendar_depth=2, max_repeat=3)),
     "gather.cycles: must be <= 8 (calendar_depth * (max_repeat + 1)), got 9"),
    (lambda: CalendarUnit([((0,), 0)]),
     "calendar: must be a Calendar, got [((0,), 0)]"),
    (lambda: CalendarUnit(Calendar("gather", A, 2)).write_shadow(
        Calendar("gather", [((0,), 0)], 1)),
     "shadow.ports: must be the unit's 2, got 1"),
    (lambda: CalendarUnit(Calendar("gather", A, 2)).write_shadow(Calendar("scatter", A, 2)),
     "shadow.kind: must be the unit's 'gather', got 'scatter'"),
    (lambda: CalendarUnit(Calendar("switch", [((0,), 0)], 1)).write_shadow(
        Calendar("switch", [((0,), 0)], 1, inputs=2)),
     "shadow.inputs: must be the unit's 1, got 2"),
    (lambda: CalendarUnit(Calendar("gather", A, 2)).write_shadow(
        Calendar("gather", A, 2, Hardware(tx_words=8))),
     "shadow.hardware: must be the unit's Hardware(calendar_depth=1024, tx_words=4096, "
     "rx_words=4096, max_repeat=65535), got Hardware(calendar_depth=1024, tx_words=8, "
     "rx_words=4096, max_repeat=65535)"),
    (lambda: CalendarUnit(Calendar("gather", A, 2)).run(-1), "n: must be an integer >= 0, got -1"),
    (lambda: CalendarUnit(Calendar("gather", A, 2)).run(5, writes=[(6, Calendar("gather", B, 2))]),
     "writes[0].offset: must be an integer in [0, 5], got 6"),
    (lambda: CalendarUnit(Calendar("gather", A, 2)).run(5, writes=[Calendar("gather", B, 2)]),
     "writes[0]: must be an (offset, Calendar) pair, got "
     "Calendar('gather', depth=1, ports=2, metacycle_cycles=2)"),
    (lambda: CalendarUnit(Calendar("gather", A, 2)).run(5, writes=[(1, B)]),
     "writes[0].calendar: must be a Calendar, got [((7, 7), 1)]"),
]


@pytest.mark.parametrize("make_bad, message", BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_bad_input_is_one_line_naming_field_value_expectation(make_bad, message):
    with pytest.raises(ConfigError) as info:
        make_bad()
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_a_bad_write_leaves_the_unit_unchanged():
    unit = CalendarUnit(Calendar("gather", A, 2))
    unit.run(4)
    with pytest.raises(ConfigError):
        unit.run(5, writes=[(1, Calendar("gather", B, 2)), (9, Calendar("gather", B, 2))])
    assert (unit.cycle, unit.entry, unit.shadow) == (4, 2, None)


# ------------------------------------------------------------------ the rest


@pytest.mark.parametrize("module", [calendar_module, unit_module], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_public_api():
    assert set(tidesim.calendars.__all__) >= {"Calendar", "CalendarUnit", "CalendarRun",
                                              "Hardware"}
    for name in tidesim.calendars.__all__:
        assert getattr(tidesim.calendars, name) is not None


def test_kernel_runs_without_jit():
    """The kernel is also plain Python (``NUMBA_DISABLE_JIT=1``), with the same results."""
    code = (
        "import json\n"
        "from tidesim.calendars import Calendar, CalendarUnit\n"
        "a = Calendar('switch', [((1, 2), 1), ((0, 1), 2)], 2)\n"
        "b = Calendar('switch', [((2, 2), 0)], 2)\n"
        "r = CalendarUnit(a).run(12, writes=[(6, b)])\n"
        "print(json.dumps([r.entry.tolist(), r.metacycle.tolist(), r.last_cycle.tolist(),"
        " r.config.tolist()]))\n"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=120, check=True)
    a = Calendar("switch", [((1, 2), 1), ((0, 1), 2)], 2)
    b = Calendar("switch", [((2, 2), 0)], 2)
    r = CalendarUnit(a).run(12, writes=[(6, b)])
    assert json.loads(out.stdout) == [r.entry.tolist(), r.metacycle.tolist(),
                                      r.last_cycle.tolist(), r.config.tolist()]
    assert r.config.tolist() == [[1, 2]] * 2 + [[0, 1]] * 3 + [[1, 2]] * 2 + [[0, 1]] * 3 \
        + [[2, 2]] * 2
