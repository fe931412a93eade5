"""The controller plug-in contract, and how a controller is compiled against a system.

A controller is a Numba-compiled *step function* plus a parameter vector and an
initial per-node state vector. The core calls the step function at each node's
sample instant with that node's measurements and gets back the *desired*
correction (a relative frequency, dimensionless: ``1e-6`` is 1 ppm). The
actuator then applies it (exactly, or one quantized step at a time).

The step function has the fixed signature :data:`STEP_SIGNATURE`::

    step(params: float64[::1], state: float64[::1], meas: float64[::1]) -> float64

* ``params`` -- read-only parameters (same for every node).
* ``state`` -- this node's state, updated in place (``len == n_state``).
* ``meas`` -- one measurement per incoming link that is up, in frames,
  relative to the link's reference occupancy (a count of 0 is centred).

Because the signature is fixed, the core kernel is compiled (and cached) once,
and any step function compiled with :func:`controller_step` plugs into it
through a function pointer, without touching the core.

What a user writes is a :class:`ControlLaw`: a small frozen dataclass that
checks its fields when built (gains, durations in seconds) and, through
:meth:`ControlLaw.compile`, gives the :class:`CompiledController` (step,
parameter vector, initial state) for a given :class:`ControlContext`: the
system's update period, nominal frequency and largest in-degree. The
:class:`~tidesim.models.System` does that compilation when a run starts, so
the update period is given once, to the system. :class:`Controller` wraps a
step function of your own.

Example:
    >>> import numpy as np
    >>> from tidesim.controllers import ControlContext, Controller, controller_step
    >>> @controller_step(cache=False)  # an interactive session: no file to cache next to
    ... def proportional(params, state, meas):
    ...     return params[0] * meas.sum()
    >>> law = Controller(proportional, params=[2e-8], name="p")
    >>> ctl = law.compile(ControlContext(update_period_ticks=25_000))
    >>> ctl.params.tolist(), ctl.n_state
    ([2e-08], 0)
    >>> float(ctl.step(ctl.params, ctl.state.copy(), np.array([3.0, -1.0])))
    4e-08
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numba
import numpy as np
from numba import types

from .._checks import instance, integer, number, numbers, set_fields, text
from .._jit import JIT_FLAGS
from ..errors import ConfigError

__all__ = [
    "STEP_SIGNATURE",
    "STEP_TYPE",
    "CompiledController",
    "ControlContext",
    "ControlLaw",
    "Controller",
    "controller_step",
    "is_step_function",
    "no_control_step",
]

_vec = types.float64[::1]
STEP_SIGNATURE = types.float64(_vec, _vec, _vec)
STEP_TYPE = types.FunctionType(STEP_SIGNATURE)

_STEP_EXPECTED = "must be a function compiled with tidesim.controllers.controller_step"
_MAX_UPDATES = 2**62
"""Durations are capped here: edge numbers are int64, so no run gets that far."""


def controller_step(func=None, *, cache: bool = True):
    """Compile ``func`` as a controller step function (:data:`STEP_SIGNATURE`).

    Use as a bare decorator. ``cache=False`` is needed only for functions
    defined where Numba cannot cache (an interactive session).
    """

    def wrap(f):
        flags = dict(JIT_FLAGS)
        flags["cache"] = cache
        return numba.njit(STEP_SIGNATURE, **flags)(f)

    if func is None:
        return wrap
    return wrap(func)


def is_step_function(obj: object) -> bool:
    """Whether ``obj`` was compiled with :func:`controller_step` (or has its signature)."""
    if numba.config.DISABLE_JIT:  # every kernel runs as Python: nothing is compiled
        return callable(obj)
    return STEP_SIGNATURE in getattr(obj, "nopython_signatures", ())


@controller_step
def no_control_step(params, state, meas):
    """The step of free-running clocks: no correction (the core never calls it)."""
    return 0.0


@dataclass(frozen=True)
class ControlContext:
    """What a controller is compiled against: the system's timing and degree.

    :meth:`tidesim.models.System.compile_controller` builds it from the system;
    build one yourself to call a step function outside a run.

    Attributes:
        update_period_ticks: local ticks between two updates of a node (``p``).
        f_nom_hz: nominal node frequency (Hz).
        max_in_degree: the most incoming links of a node (per-link state is
            sized for it).
    """

    update_period_ticks: int = 25_000
    f_nom_hz: float = 125e6
    max_in_degree: int = 1

    def __post_init__(self) -> None:
        set_fields(
            self,
            update_period_ticks=integer("control.update_period_ticks",
                                        self.update_period_ticks, lo=1),
            f_nom_hz=number("clock.f_nom_hz", self.f_nom_hz, lo=0, lo_open=True),
            max_in_degree=integer("topology.max_in_degree", self.max_in_degree, lo=0),
        )

    def updates(self, seconds: float) -> int:
        """A duration as a number of a node's updates at the nominal frequency.

        ``round(seconds · f_nom_hz / update_period_ticks)``.
        """
        x = seconds * self.f_nom_hz / self.update_period_ticks
        return int(round(x)) if x < _MAX_UPDATES else _MAX_UPDATES


@dataclass(frozen=True, eq=False)
class CompiledController:
    """A step function with its parameters and one node's initial state: what the core runs.

    Attributes:
        step: a function compiled with :func:`controller_step`.
        params: float64[k], passed to every call (shared by all nodes).
        state: float64[s], one node's initial state (copied for every node).
        name: a short name shown in summaries.
    """

    step: Callable
    params: np.ndarray = field(default_factory=lambda: np.zeros(0))
    state: np.ndarray = field(default_factory=lambda: np.zeros(0))
    name: str = "custom"

    def __post_init__(self) -> None:
        if not is_step_function(self.step):
            raise ConfigError("controller.step", self.step, _STEP_EXPECTED)
        set_fields(self, params=_vector(self.params), state=_vector(self.state))

    @property
    def n_state(self) -> int:
        """Length of one node's state vector."""
        return int(self.state.size)

    def initial_states(self, n_nodes: int) -> np.ndarray:
        """State matrix ``float64[n_nodes, max(n_state, 1)]`` for a run."""
        width = max(self.n_state, 1)
        out = np.zeros((n_nodes, width), dtype=np.float64)
        out[:, : self.n_state] = self.state
        return out

    def __repr__(self) -> str:
        return f"CompiledController({self.name!r}, params={self.params.tolist()})"


def _vector(values) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))


class ControlLaw(abc.ABC):
    """A controller as the user gives it: checked when built, compiled per system.

    Every built-in controller (``PI``, ``P``, ``Pump``, ``BangBang``,
    ``Reframing``, ``Sequence``, ``Freeze``) and :class:`Controller` is one; a
    class of your own that implements :meth:`compile` is one too, and can be
    passed to a ``System`` or composed.
    """

    @abc.abstractmethod
    def compile(self, context: ControlContext) -> CompiledController:
        """The step, parameters and initial state for a system.

        Args:
            context: the system's update period, nominal frequency and
                largest in-degree.
        """


def control_law(field_name: str, value: object) -> ControlLaw:
    """``value`` if it is a :class:`ControlLaw` (a part of a composite)."""
    return instance(field_name, value, ControlLaw, "a controller (PI, P, Pump, ..., Controller)")


@dataclass(frozen=True)
class Controller(ControlLaw):
    """Your own step function, with its parameters and initial per-node state.

    Args:
        step: a function compiled with :func:`controller_step`.
        params: parameter vector passed to every call (numbers).
        state: initial state of one node (numbers, copied for every node).
        name: a short name shown in summaries.

    Lifecycle: build once, pass to :class:`tidesim.models.System` (or compose
    it); when a run starts the system compiles it, copies ``state`` into one
    row per node and calls ``step`` at every sample.
    """

    step: Callable
    params: Sequence[float] = ()
    state: Sequence[float] = ()
    name: str = "custom"

    def __post_init__(self) -> None:
        if not is_step_function(self.step):
            raise ConfigError("controller.step", self.step, _STEP_EXPECTED)
        set_fields(self, params=numbers("controller.params", self.params),
                   state=numbers("controller.state", self.state),
                   name=text("controller.name", self.name))

    def compile(self, context: ControlContext) -> CompiledController:
        """The step as given: it needs nothing from the system."""
        return CompiledController(self.step, self.params, self.state, self.name)
