"""Composing controllers: run one law, then another; or stop and hold.

``Sequence(first, second, after_updates)`` calls ``first`` for the node's
first ``after_updates`` updates and ``second`` from then on::

    c = first(meas)    for updates u = 0 … after_updates − 1
    c = second(meas)   for u ≥ after_updates

``Freeze(inner, after_updates)`` calls ``inner`` for ``after_updates``
updates and then holds the last correction it returned (0 when
``after_updates = 0``)::

    c = inner(meas)    for u < after_updates
    c = c_last         for u ≥ after_updates

Each composite is itself a :class:`~tidesim.controllers.Controller`, so they
nest (``Freeze(Sequence(a, b, 100), 5000)``) and any controller can be a part,
including your own. One state vector holds everything::

    Sequence state  = [u, c_last, *first.state, *second.state]
    Sequence params = [after_updates, len(first.params), len(first.state),
                       len(second.params), len(second.state),
                       *first.params, *second.params]
    Freeze   state  = [u, c_last, *inner.state]
    Freeze   params = [after_updates, *inner.params]

``u`` counts the calls, i.e. the node's updates from its start; each part
keeps its own state, and ``second`` starts from its initial state at the
switch.

How it is compiled: the step signature is fixed, and a Numba function cannot
receive a list of step functions, so each composite gets a dedicated step
compiled from a closure over its parts' step functions. Such a closure
cannot be cached on disk (``cache=False``): the first composite of a given
pair of step functions costs a compilation (about a second) in every new
process. Within a process it is compiled once per pair of step functions and
reused, whatever the parameters, since sizes and durations live in
``params``; a sweep over gains compiles nothing new. The alternative, one
cached step that dispatches on an integer law code, would load instantly but
could only compose the built-in laws.
"""

from __future__ import annotations

from ..errors import ConfigError
from ._contract import Controller, controller_step

__all__ = ["Freeze", "Sequence"]

_SEQUENCE_STEPS: dict = {}
_FREEZE_STEPS: dict = {}


def _sequence_step(first_step, second_step):
    key = (first_step, second_step)
    step = _SEQUENCE_STEPS.get(key)
    if step is None:
        f1, f2 = first_step, second_step

        @controller_step(cache=False)
        def sequence_step(params, state, meas):
            np1 = int(params[1])
            ns1 = int(params[2])
            np2 = int(params[3])
            ns2 = int(params[4])
            u = state[0]
            state[0] = u + 1.0
            if u < params[0]:
                c = f1(params[5:5 + np1], state[2:2 + ns1], meas)
            else:
                c = f2(params[5 + np1:5 + np1 + np2], state[2 + ns1:2 + ns1 + ns2], meas)
            state[1] = c
            return c

        step = _SEQUENCE_STEPS[key] = sequence_step
    return step


def _freeze_step(inner_step):
    step = _FREEZE_STEPS.get(inner_step)
    if step is None:
        f = inner_step

        @controller_step(cache=False)
        def freeze_step(params, state, meas):
            u = state[0]
            state[0] = u + 1.0
            if u < params[0]:
                state[1] = f(params[1:], state[2:], meas)
            return state[1]

        step = _FREEZE_STEPS[inner_step] = freeze_step
    return step


def _updates(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"controller.{name}", value, "must be an integer >= 0")
    return int(value)


def _part(name: str, value) -> Controller:
    if not isinstance(value, Controller):
        raise ConfigError(f"controller.{name}", value, "must be a Controller")
    return value


def Sequence(first: Controller, second: Controller, after_updates: int) -> Controller:  # noqa: N802
    """``first`` for the first ``after_updates`` updates of a node, then ``second``.

    Args:
        first: the controller used first.
        second: the controller used from update ``after_updates`` on (it
            starts from its own initial state).
        after_updates: number of updates of ``first`` (>= 0).
    """
    first = _part("first", first)
    second = _part("second", second)
    after = _updates("after_updates", after_updates)
    params = [after, first.params.size, first.n_state, second.params.size, second.n_state,
              *first.params, *second.params]
    state = [0.0, 0.0, *first.state, *second.state]
    return Controller(_sequence_step(first.step, second.step), params=params, state=state,
                      name=f"sequence({first.name}, {second.name})")


def Freeze(inner: Controller, after_updates: int) -> Controller:  # noqa: N802
    """``inner`` for ``after_updates`` updates of a node, then hold its last correction.

    Args:
        inner: the controller to run, then stop.
        after_updates: number of updates before the hold (>= 0).
    """
    inner = _part("inner", inner)
    after = _updates("after_updates", after_updates)
    return Controller(_freeze_step(inner.step), params=[after, *inner.params],
                      state=[0.0, 0.0, *inner.state], name=f"freeze({inner.name})")
