"""Bang-bang control: move the correction one fixed step by the sign of the counts.

With ``r = Σ meas`` (frames) and the dead band ``b``::

    c ← c + step   if r >  b
    c ← c − step   if r < −b
    (unchanged otherwise)

``c`` (the state) starts at 0 and is the desired correction returned. With a
quantized actuator of the same step size this is the FINC/FDEC decision
itself: one step up, one step down, or none, every update.

Example:
    >>> import numpy as np
    >>> from tidesim.controllers import BangBang
    >>> bb = BangBang(step=1e-8, deadband=2)
    >>> state = bb.state.copy()
    >>> [float(bb.step(bb.params, state, np.array(m))) for m in ([5.0], [1.0], [-3.0, -1.0])]
    [1e-08, 1e-08, 0.0]
"""

from __future__ import annotations

from ._contract import Controller, controller_step
from .proportional import check_number

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


def BangBang(step: float, deadband: float = 0) -> Controller:  # noqa: N802
    """A bang-bang controller.

    Args:
        step: how far the desired correction moves per update (relative,
            ``1e-8`` is 10 ppb), > 0.
        deadband: no move while ``|Σ meas| <= deadband`` (frames), >= 0.
    """
    step = check_number("step", step, lo=0, lo_open=True)
    deadband = check_number("deadband", deadband, lo=0)
    return Controller(bangbang_step, params=[step, deadband], state=[0.0], name="bangbang")
