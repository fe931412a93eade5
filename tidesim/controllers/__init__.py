"""Clock controllers and the plug-in contract they share.

Every controller is a small frozen dataclass, a :class:`ControlLaw`, that
checks its fields when built; the :class:`~tidesim.models.System` compiles it
(:meth:`ControlLaw.compile`) into a :class:`CompiledController` -- a step
function compiled with :func:`controller_step`, its parameters and one node's
initial state -- taking the update period, the nominal frequency and the
largest in-degree from the system. Durations are in seconds.

* ``PI(kp, ki)`` -- Callisto's proportional-integral law.
* ``P(kp)`` -- proportional.
* ``Pump(kp, target_ppm)`` -- the rig's law, for the quantized (FINC/FDEC) actuator.
* ``BangBang(step_ppb, deadband)`` -- one fixed step by the sign of the counts.
* ``Reframing(inner, margin, window_s, wait_s, ramp_s)`` -- lock, then bring
  the counts back to the centre.
* ``Sequence(first, second, after_s)``, ``Freeze(inner, after_s)`` -- composition.
* ``Controller(step, params, state)`` -- a step function of your own.
* ``stability(counts, times_s, ...)`` -- the rig's stability detector, after a run.

``docs/controllers.md`` gives the equations of each.

Example:
    >>> from tidesim.controllers import PI, Freeze
    >>> from tidesim.models import System, Topology
    >>> law = Freeze(PI(kp=1e-7, ki=1e-13), after_s=0.5)
    >>> system = System(Topology.complete(3), controller=law, update_period_ticks=25_000)
    >>> system.compile_controller()
    CompiledController('freeze(pi)', params=[2500.0, 1e-07, 1e-13, 25000.0])
"""

from ._contract import (
    STEP_SIGNATURE,
    STEP_TYPE,
    CompiledController,
    ControlContext,
    ControlLaw,
    Controller,
    controller_step,
    is_step_function,
)
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
    "CompiledController",
    "ControlContext",
    "ControlLaw",
    "Controller",
    "Freeze",
    "P",
    "Pump",
    "Reframing",
    "Sequence",
    "bangbang_step",
    "controller_step",
    "is_step_function",
    "p_step",
    "pi_step",
    "pump_step",
    "reframing_step",
    "stability",
]
