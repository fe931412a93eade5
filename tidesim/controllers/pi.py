"""Proportional-integral control, as in Callisto.jl.

With ``r = Σ meas`` (frames, summed over the node's incoming links)::

    x ← x + p · r
    c = kp · r + ki · x

``p`` is the update period in local ticks, so ``ki`` integrates in ticks as
Callisto does. ``c`` is the desired relative frequency correction.

Example:
    >>> import numpy as np
    >>> from tidesim.controllers import PI, ControlContext
    >>> ctl = PI(kp=1e-7, ki=1e-13).compile(ControlContext(update_period_ticks=1000))
    >>> ctl.params.tolist()
    [1e-07, 1e-13, 1000.0]
    >>> state = ctl.state.copy()
    >>> _ = ctl.step(ctl.params, state, np.array([2.0]))
    >>> state.tolist()  # x = p · r
    [2000.0]
"""

from __future__ import annotations

from dataclasses import dataclass

from .._checks import number, set_fields
from ._contract import CompiledController, ControlContext, ControlLaw, controller_step

__all__ = ["PI", "pi_step"]


@controller_step
def pi_step(params, state, meas):
    """PI step. ``params = [kp, ki, p_ticks]``, ``state = [x]``."""
    r = meas.sum()  # counts are integers: the sum is exact
    state[0] += params[2] * r
    return params[0] * r + params[1] * state[0]


def gain(name: str, value: object) -> float:
    """A controller gain: a finite number >= 0 (a negative gain drives the clocks apart)."""
    return number(f"controller.{name}", value, lo=0)


@dataclass(frozen=True)
class PI(ControlLaw):
    """A PI controller (``ki=0`` gives a pure proportional controller).

    Args:
        kp: proportional gain, relative frequency per frame (>= 0).
        ki: integral gain, relative frequency per (frame · tick) (>= 0).

    The integrator's time step is the system's update period ``p`` in local
    ticks (as in Callisto), taken from the system when the run starts.

    Example:
        >>> from tidesim.controllers import PI
        >>> from tidesim.models import System, Topology
        >>> system = System(Topology.complete(3), offsets_ppm=[-5.0, 0.0, 5.0],
        ...                 controller=PI(kp=1e-7, ki=1e-13), update_period_ticks=25_000)
        >>> trace = system.run(0.01)
        >>> system.compile_controller().params.tolist()
        [1e-07, 1e-13, 25000.0]
    """

    kp: float
    ki: float = 0.0

    def __post_init__(self) -> None:
        set_fields(self, kp=gain("kp", self.kp), ki=gain("ki", self.ki))

    def compile(self, context: ControlContext) -> CompiledController:
        """``params = [kp, ki, p]``, ``state = [x = 0]``."""
        return CompiledController(pi_step, params=[self.kp, self.ki,
                                                   float(context.update_period_ticks)],
                                  state=[0.0], name="pi" if self.ki else "p")
