"""Proportional control: ``P`` and the rig's ``Pump``.

With ``r = Σ meas`` (frames, summed over the node's incoming links that are up)::

    P:     c = kp · r
    Pump:  c = kp · r + target

``c`` is the desired relative frequency correction; ``Pump`` takes its
``target`` in ppm (``target = target_ppm · 1e-6``). ``Pump`` is the control
law of the hardware rig: paired with ``Actuator("quantized", step_ppb=10)``
the applied correction moves by at most one step per update towards ``c``
(the actuator does that; the law itself only computes the desired value).

Example:
    >>> import numpy as np
    >>> from tidesim.controllers import ControlContext, Pump
    >>> pump = Pump(kp=2e-8, target_ppm=0.1).compile(ControlContext())
    >>> c = pump.step(pump.params, pump.state.copy(), np.array([3.0, -1.0]))
    >>> round(c * 1e9, 6)  # ppb: 2e-8 · 2 frames + 100 ppb
    140.0
"""

from __future__ import annotations

from dataclasses import dataclass

from .._checks import number, set_fields
from ._contract import CompiledController, ControlContext, ControlLaw, controller_step
from .pi import gain

__all__ = ["P", "Pump", "p_step", "pump_step"]


@controller_step
def p_step(params, state, meas):
    """P step. ``params = [kp]``, no state."""
    r = meas.sum()  # counts are integers: the sum is exact
    return params[0] * r


@controller_step
def pump_step(params, state, meas):
    """Pump step. ``params = [kp, target]``, no state."""
    r = meas.sum()  # counts are integers: the sum is exact
    return params[0] * r + params[1]


@dataclass(frozen=True)
class P(ControlLaw):
    """A proportional controller: ``c = kp · Σ meas``.

    Args:
        kp: gain, relative frequency per frame (>= 0; ``2e-8``: 20 ppb per frame).

    Example:
        >>> from tidesim.controllers import P
        >>> from tidesim.models import ElasticBuffer, System, Topology
        >>> system = System(Topology.complete(3), offsets_ppm=[-5.0, 0.0, 5.0],
        ...                 controller=P(kp=4e-7), buffer=ElasticBuffer(depth=0))
        >>> float(abs(system.run(0.05).final_offsets_ppm).max()) < 1.0
        True
    """

    kp: float

    def __post_init__(self) -> None:
        set_fields(self, kp=gain("kp", self.kp))

    def compile(self, context: ControlContext) -> CompiledController:
        """``params = [kp]``, no state."""
        return CompiledController(p_step, params=[self.kp], name="p")


@dataclass(frozen=True)
class Pump(ControlLaw):
    """The rig's controller: ``c = kp · Σ meas + target_ppm · 1e-6``.

    Use it with ``Actuator("quantized", step_ppb=10)``: the applied correction
    then moves by one step per update towards ``c``.

    Args:
        kp: gain, relative frequency per frame (>= 0).
        target_ppm: the correction wanted when every count is centred (ppm).

    Example:
        >>> from tidesim.controllers import Pump
        >>> from tidesim.models import Actuator, System, Topology
        >>> system = System(Topology.complete(3), offsets_ppm=[-5.0, 0.0, 5.0],
        ...                 controller=Pump(kp=1e-8), measure="ddc",
        ...                 actuator=Actuator("quantized", step_ppb=10))
        >>> system.run(0.01).faults
        []
    """

    kp: float
    target_ppm: float = 0.0

    def __post_init__(self) -> None:
        set_fields(self, kp=gain("kp", self.kp),
                   target_ppm=number("controller.target_ppm", self.target_ppm))

    @property
    def target(self) -> float:
        """The target as a relative frequency (``target_ppm · 1e-6``)."""
        return self.target_ppm * 1e-6

    def compile(self, context: ControlContext) -> CompiledController:
        """``params = [kp, target]``, no state."""
        return CompiledController(pump_step, params=[self.kp, self.target], name="pump")
