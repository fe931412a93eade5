"""Proportional control: ``P`` and the rig's ``Pump``.

With ``r = Σ meas`` (frames, summed over the node's incoming links that are up)::

    P:     c = kp · r
    Pump:  c = kp · r + target

``c`` is the desired relative frequency correction. ``Pump`` is the control law
of the hardware rig: paired with ``Actuator("quantized", step_ppb=10)`` the
applied correction moves by at most one step per update towards ``c`` (the
actuator does that; the law itself only computes the desired value).

Example:
    >>> import numpy as np
    >>> from tidesim.controllers import Pump
    >>> pump = Pump(kp=2e-8, target=1e-7)
    >>> c = pump.step(pump.params, pump.state.copy(), np.array([3.0, -1.0]))
    >>> round(c * 1e9, 6)  # ppb: 2e-8 · 2 frames + 100 ppb
    140.0
"""

from __future__ import annotations

from ..errors import ConfigError
from ._contract import Controller, controller_step

__all__ = ["P", "Pump", "check_number", "p_step", "pump_step"]


def check_number(name: str, value, *, lo: float | None = None, lo_open: bool = False) -> float:
    """A finite real number (``bool`` is not one), optionally bounded below.

    Raises:
        ConfigError: naming ``controller.<name>``.
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(f"controller.{name}", value, "must be a number")
    x = float(value)
    if x != x or x in (float("inf"), float("-inf")):
        raise ConfigError(f"controller.{name}", value, "must be a finite number")
    if lo is not None and (x <= lo if lo_open else x < lo):
        raise ConfigError(f"controller.{name}", value, f"must be {'>' if lo_open else '>='} {lo:g}")
    return x


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


def P(kp: float) -> Controller:  # noqa: N802
    """A proportional controller: ``c = kp · Σ meas``.

    Args:
        kp: gain, relative frequency per frame (``2e-8``: 20 ppb per frame).
    """
    kp = check_number("kp", kp)
    return Controller(p_step, params=[kp], state=[], name="p")


def Pump(kp: float, target: float = 0.0) -> Controller:  # noqa: N802
    """The rig's controller: ``c = kp · Σ meas + target``.

    Use it with ``Actuator("quantized", step_ppb=10)``: the applied correction
    then moves by one step per update towards ``c``.

    Args:
        kp: gain, relative frequency per frame.
        target: the correction wanted when every count is centred (relative).
    """
    kp = check_number("kp", kp)
    target = check_number("target", target)
    return Controller(pump_step, params=[kp, target], state=[], name="pump")
