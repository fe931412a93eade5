"""Proportional-integral control, as in Callisto.jl.

With ``r = Σ meas`` (frames, summed over the node's incoming links)::

    x ← x + p · r
    c = kp · r + ki · x

``p`` is the update period in local ticks, so ``ki`` integrates in ticks as
Callisto does. ``c`` is the desired relative frequency correction.
"""

from __future__ import annotations

from ..errors import ConfigError
from ._contract import Controller, controller_step

__all__ = ["PI", "pi_step"]


@controller_step
def pi_step(params, state, meas):
    """PI step. ``params = [kp, ki, p_ticks]``, ``state = [x]``."""
    r = meas.sum()  # counts are integers: the sum is exact
    state[0] += params[2] * r
    return params[0] * r + params[1] * state[0]


def PI(kp: float, ki: float = 0.0, *, update_period_ticks: int = 25_000) -> Controller:  # noqa: N802
    """A PI controller (``ki=0`` gives a pure proportional controller).

    Args:
        kp: proportional gain, relative frequency per frame.
        ki: integral gain, relative frequency per (frame · tick).
        update_period_ticks: the node's update period ``p`` in local ticks
            (the integrator's time step, as in Callisto).
    """
    for key, v in (("kp", kp), ("ki", ki)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v:
            raise ConfigError(f"controller.{key}", v, "must be a number")
    return Controller(pi_step, params=[kp, ki, float(update_period_ticks)], state=[0.0],
                      name="pi" if ki else "p")
