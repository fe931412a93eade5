"""The controller plug-in contract.

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

Example:
    >>> import numpy as np
    >>> from tidesim.controllers import Controller, controller_step
    >>> @controller_step
    ... def proportional(params, state, meas):
    ...     return params[0] * meas.sum()
    >>> ctl = Controller(proportional, params=[2e-8], state=[], name="p")
    >>> ctl.params.tolist(), ctl.n_state
    ([2e-08], 0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
from numba import types

from .._jit import JIT_FLAGS
from ..errors import ConfigError

__all__ = ["STEP_SIGNATURE", "STEP_TYPE", "Controller", "controller_step"]

_vec = types.float64[::1]
STEP_SIGNATURE = types.float64(_vec, _vec, _vec)
STEP_TYPE = types.FunctionType(STEP_SIGNATURE)


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


class Controller:
    """A step function with its parameters and initial per-node state.

    Args:
        step: a function compiled with :func:`controller_step`.
        params: parameter vector passed to every call (float64).
        state: initial state of one node (float64, copied for every node).
        name: a short name shown in summaries.

    Lifecycle: build once, pass to :class:`tidesim.models.System`; the system
    copies ``state`` into one row per node and calls ``step`` at every sample.
    """

    def __init__(
        self,
        step,
        params: Sequence[float] | np.ndarray = (),
        state: Sequence[float] | np.ndarray = (),
        name: str = "custom",
    ) -> None:
        if not callable(step):
            raise ConfigError("controller.step", step, "must be a compiled step function")
        self.step = step
        self.params = np.ascontiguousarray(np.asarray(params, dtype=np.float64).reshape(-1))
        self.state = np.ascontiguousarray(np.asarray(state, dtype=np.float64).reshape(-1))
        self.name = name

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
        return f"Controller({self.name!r}, params={self.params.tolist()})"
