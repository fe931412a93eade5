"""Bang-bang control: move the correction one fixed step by the sign of the counts.

With ``r = Σ meas`` (frames), the dead band ``b`` and ``step = step_ppb · 1e-9``::

    c ← c + step   if r >  b
    c ← c − step   if r < −b
    (unchanged otherwise)

``c`` (the state) starts at 0 and is the desired correction returned. With a
quantized actuator of the same step size this is the FINC/FDEC decision
itself: one step up, one step down, or none, every update.

Example:
    >>> import numpy as np
    >>> from tidesim.controllers import BangBang, ControlContext
    >>> bb = BangBang(step_ppb=10, deadband=2).compile(ControlContext())
    >>> state = bb.state.copy()
    >>> [float(bb.step(bb.params, state, np.array(m))) for m in ([5.0], [1.0], [-3.0, -1.0])]
    [1e-08, 1e-08, 0.0]
"""

from __future__ import annotations

from dataclasses import dataclass

from .._checks import number, set_fields
from ._contract import CompiledController, ControlContext, ControlLaw, controller_step

__all__ = ["BangBang", "bangbang_step"]


@controller_step
def bangbang_step(params, state, meas):
    """Bang-bang step. ``params = [step, deadband]``, ``state = [c]``."""
    r = meas.sum()  # counts are integers: the sum is exact
    if r > params[1]:
        state[0] += params[0]
    elif r < -params[1]:
        state[0] -= params[0]
    return state[0]


@dataclass(frozen=True)
class BangBang(ControlLaw):
    """A bang-bang controller.

    Args:
        step_ppb: how far the desired correction moves per update (ppb, > 0).
        deadband: no move while ``|Σ meas| <= deadband`` (frames, >= 0).

    Example:
        >>> from tidesim.controllers import BangBang
        >>> from tidesim.models import ElasticBuffer, System, Topology
        >>> system = System(Topology.complete(3), offsets_ppm=[-5.0, 0.0, 5.0],
        ...                 controller=BangBang(step_ppb=10), buffer=ElasticBuffer(depth=0))
        >>> float(system.run(0.05).controller_state[0, 0]) > 0  # the slow node sped up
        True
    """

    step_ppb: float = 10.0
    deadband: float = 0.0

    def __post_init__(self) -> None:
        set_fields(self,
                   step_ppb=number("controller.step_ppb", self.step_ppb, lo=0, lo_open=True),
                   deadband=number("controller.deadband", self.deadband, lo=0))

    def compile(self, context: ControlContext) -> CompiledController:
        """``params = [step_ppb · 1e-9, deadband]``, ``state = [c = 0]``."""
        return CompiledController(bangbang_step, params=[self.step_ppb * 1e-9, self.deadband],
                                  state=[0.0], name="bangbang")
