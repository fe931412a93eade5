"""Clock controllers and the plug-in contract they share.

Every controller is a :class:`Controller`: a step function compiled with
:func:`controller_step`, its parameters and one node's initial state.

* ``PI(kp, ki)`` -- Callisto's proportional-integral law.
* ``P(kp)`` -- proportional.
* ``Pump(kp, target)`` -- the rig's law, for the quantized (FINC/FDEC) actuator.
* ``BangBang(step, deadband)`` -- one fixed step by the sign of the counts.
* ``Reframing(inner, ...)`` -- lock, then bring the counts back to the centre.
* ``Sequence(first, second, after_updates)``, ``Freeze(inner, after_updates)``
  -- composition.
* ``stability(counts, times_s, ...)`` -- the rig's stability detector, after a run.

``docs/controllers.md`` gives the equations of each.
"""

from ._contract import STEP_SIGNATURE, STEP_TYPE, Controller, controller_step
from .bangbang import BangBang, bangbang_step
from .compose import Freeze, Sequence
from .pi import PI, pi_step
from .proportional import P, Pump, p_step, pump_step
from .reframing import REFRAMING_PHASES, Reframing, reframing_step
from .stability import stability

__all__ = [
    "PI",
    "REFRAMING_PHASES",
    "STEP_SIGNATURE",
    "STEP_TYPE",
    "BangBang",
    "Controller",
    "Freeze",
    "P",
    "Pump",
    "Reframing",
    "Sequence",
    "bangbang_step",
    "controller_step",
    "p_step",
    "pi_step",
    "pump_step",
    "reframing_step",
    "stability",
]
