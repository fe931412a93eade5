"""Cycle-level checks of bittide systems from pytest.

Installing tidesim registers the pytest plugin :mod:`tidesim.testing.plugin`
(entry point ``pytest11``, name ``tidesim``), which provides the
``bittide_system`` fixture and writes the waveforms of every recorded trace
of a failing test (see ``docs/testing.md``). The helpers below work in any
test, with or without the fixture:

* :func:`run_cycles` -- run a system for a number of nominal cycles
  (cycle fidelity by default);
* :func:`assert_no_buffer_faults`, :func:`assert_converged`,
  :func:`assert_ugn_constant` -- the checks, with messages that name the
  node, link, cycle and time;
* :func:`assert_same_run` -- two traces are one run, bit for bit (two
  fidelities, a run advanced in pieces, another backend);
* :func:`make_system` -- the factory behind ``bittide_system``;
* :func:`record_trace` -- attach any other trace to the running test.
"""

from .checks import (
    assert_converged,
    assert_no_buffer_faults,
    assert_same_run,
    assert_ugn_constant,
    make_system,
    record_trace,
    run_cycles,
    ugn_per_sample,
)

__all__ = [
    "assert_converged",
    "assert_no_buffer_faults",
    "assert_same_run",
    "assert_ugn_constant",
    "make_system",
    "record_trace",
    "run_cycles",
    "ugn_per_sample",
]
