"""Composing controllers: run one law, then another; or stop and hold.

``Sequence(first, second, after_s)`` calls ``first`` for the node's first
``after_updates`` updates and ``second`` from then on, where
``after_updates = round(after_s · f_nom_hz / update_period_ticks)`` is
taken from the system when the run starts::

    c = first(meas)    for updates u = 0 … after_updates − 1
    c = second(meas)   for u ≥ after_updates

``Freeze(inner, after_s)`` calls ``inner`` for ``after_updates`` updates
(counted the same way) and then holds the last correction it returned (0
when ``after_updates = 0``)::

    c = inner(meas)    for u < after_updates
    c = c_last         for u ≥ after_updates

Each composite is itself a :class:`~tidesim.controllers.ControlLaw`, so they
nest (``Freeze(Sequence(a, b, 0.02), 1.0)``) and any controller can be a part,
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

from dataclasses import dataclass

from .._checks import number, set_fields
from ._contract import (
    CompiledController,
    ControlContext,
    ControlLaw,
    control_law,
    controller_step,
)

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


@dataclass(frozen=True)
class Sequence(ControlLaw):
    """``first`` for a node's first ``after_s`` seconds of updates, then ``second``.

    Args:
        first: the controller used first.
        second: the controller used from then on (it starts from its own
            initial state).
        after_s: how long ``first`` runs (s, >= 0), counted in the node's
            updates from its start: ``round(after_s · f_nom_hz /
            update_period_ticks)`` of them.

    Example:
        >>> from tidesim.controllers import BangBang, Pump, Sequence
        >>> from tidesim.models import ElasticBuffer, System, Topology
        >>> ctl = Sequence(BangBang(step_ppb=10), Pump(kp=2e-7), after_s=0.02)
        >>> system = System(Topology.complete(3), offsets_ppm=[-5.0, 0.0, 5.0],
        ...                 controller=ctl, buffer=ElasticBuffer(depth=0))
        >>> system.compile_controller().params[0]  # 20 ms of 200 µs updates
        np.float64(100.0)
        >>> system.run(0.05).controller_state[0, 0]  # updates counted
        np.float64(250.0)
    """

    first: ControlLaw
    second: ControlLaw
    after_s: float

    def __post_init__(self) -> None:
        control_law("controller.first", self.first)
        control_law("controller.second", self.second)
        set_fields(self, after_s=number("controller.after_s", self.after_s, lo=0))

    def compile(self, context: ControlContext) -> CompiledController:
        """Both parts compiled, behind one step (see the module docs for the layout)."""
        first, second = self.first.compile(context), self.second.compile(context)
        params = [context.updates(self.after_s), first.params.size, first.n_state,
                  second.params.size, second.n_state, *first.params, *second.params]
        state = [0.0, 0.0, *first.state, *second.state]
        return CompiledController(_sequence_step(first.step, second.step), params=params,
                                  state=state, name=f"sequence({first.name}, {second.name})")


@dataclass(frozen=True)
class Freeze(ControlLaw):
    """``inner`` for a node's first ``after_s`` seconds of updates, then hold its last correction.

    Args:
        inner: the controller to run, then stop.
        after_s: how long it runs (s, >= 0), counted in the node's updates
            from its start, as for :class:`Sequence`.

    Example:
        >>> from tidesim.controllers import Freeze, P
        >>> from tidesim.models import ElasticBuffer, System, Topology
        >>> system = System(Topology.complete(3), offsets_ppm=[-5.0, 0.0, 5.0],
        ...                 controller=Freeze(P(kp=4e-7), after_s=0.01),
        ...                 buffer=ElasticBuffer(depth=0))
        >>> trace = system.run(0.05)
        >>> held = trace.samp_c[0, 50 : trace.n_samp[0]]
        >>> bool((held == held[0]).all())  # held from the 50th update on
        True
    """

    inner: ControlLaw
    after_s: float

    def __post_init__(self) -> None:
        control_law("controller.inner", self.inner)
        set_fields(self, after_s=number("controller.after_s", self.after_s, lo=0))

    def compile(self, context: ControlContext) -> CompiledController:
        """``params = [after_updates, *inner.params]``, ``state = [u, c_last, *inner.state]``."""
        inner = self.inner.compile(context)
        return CompiledController(_freeze_step(inner.step),
                                  params=[context.updates(self.after_s), *inner.params],
                                  state=[0.0, 0.0, *inner.state], name=f"freeze({inner.name})")
