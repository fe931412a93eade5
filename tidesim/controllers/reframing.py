"""Reframing: lock with a proportional law, then bring the counts back to the centre.

A proportional law ``c = kp · r + target`` (``r = Σ meas``) locks the
frequencies with non-zero counts: node ``j`` needs ``r_j = (c_j − target)/kp``
frames to hold the correction ``c_j`` that cancels its offset. Reframing
learns that correction once the node is locked, makes it the steady-state
target, and walks the counts back to 0 while the frequencies stay locked.

Per link ``l`` (``meas[l]``) the controller keeps its own stability detector,
counted in updates: a reference ``ref_l`` and the number ``k_l`` of updates
since it was taken::

    if |meas[l] − ref_l| > margin:  ref_l = meas[l];  k_l = 0
    else:                           k_l = k_l + 1
    stable_l = (k_l >= window_updates)

Phases of one node:

1. *detect* -- ``c = kp · r + target``; at the first update where every link
   is stable, store ``c* = c`` and ``s* = r`` (the correction and the count
   sum that hold the lock) and go to *wait*.
2. *wait* -- ``c = kp · r + target`` for ``wait_updates`` more updates.
3. *reframed* -- with ``u`` the updates since the wait ended::

       s(u) = s* · max(0, 1 − u / ramp_updates)     (s = 0 when ramp_updates = 0)
       c    = kp · (r − s(u)) + c*

   At ``u = 0`` this is exactly the proportional law (``c* = kp·s* + target``),
   so nothing jumps. The count reference ``s`` then slides linearly from
   ``s*`` to 0, and the law ends as ``c = kp · r + c*``: ``c*`` is the steady
   -state target and the counts that hold the lock are ``r = 0``.

Why the frequencies stay locked: every node tracks ``r_j ≈ s_j(u) − mean(s)``
(the sum of all counts over all links stays constant), so the counts move at
about ``s*/ramp_updates`` frames per update, which takes a frequency
difference of only ``s* / (ramp_updates · p)`` (relative, ``p`` the update
period in ticks) spread over the node's links. A slow ramp keeps it below the
actuator's step. ``ramp_updates = 0`` switches at once, which kicks every
frequency by ``kp · s*``.

Node sums at 0 centre every link when the counts are differences of node
phases (a tree, or a graph whose links all came up at the same time); on a
graph with cycles whose links came up at different times, the counts around
a cycle keep what accumulated between those link-up times.

The per-link state is sized for ``max_degree`` links; a node with more
incoming links returns NaN, which stops the run with a ``SimulationFault``.
When the set of links that are up changes, every detector restarts.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ._contract import Controller, controller_step
from .proportional import p_step, pump_step

__all__ = ["REFRAMING_PHASES", "Reframing", "reframing_step"]

REFRAMING_PHASES = ("detect", "wait", "reframed")
"""Names of the values of the phase slot (``state[0]``)."""

# params slots
_KP, _TARGET, _MARGIN, _WINDOW, _WAIT, _RAMP, _DEG = range(7)
# state slots; the per-link references and counters follow at _LINKS
_PHASE, _COUNT, _CSTAR, _SSTAR, _NLINKS, _LINKS = range(6)


@controller_step
def reframing_step(params, state, meas):
    """Reframing step (see the module docstring for the equations).

    ``params = [kp, target, margin, window_updates, wait_updates, ramp_updates,
    max_degree]``; ``state = [phase, count, c*, s*, n_links, ref[D], k[D]]``.
    """
    deg = int(params[_DEG])
    n = meas.size
    if n > deg:
        return np.nan
    kp = params[_KP]
    r = meas.sum()  # counts are integers: the sum is exact
    phase = state[_PHASE]
    if phase == 2.0:
        state[_COUNT] += 1.0
        ramp = params[_RAMP]
        s = 0.0
        if state[_COUNT] < ramp:
            s = state[_SSTAR] * (1.0 - state[_COUNT] / ramp)
        return kp * (r - s) + state[_CSTAR]
    c = kp * r + params[_TARGET]
    if phase == 1.0:
        state[_COUNT] += 1.0
        if state[_COUNT] >= params[_WAIT]:
            state[_PHASE] = 2.0
            state[_COUNT] = 0.0
        return c
    # detect
    ref = state[_LINKS:_LINKS + deg]
    cnt = state[_LINKS + deg:_LINKS + 2 * deg]
    if n != state[_NLINKS]:
        state[_NLINKS] = n
        for l in range(n):
            ref[l] = meas[l]
            cnt[l] = 0.0
    all_stable = n > 0
    for l in range(n):
        if abs(meas[l] - ref[l]) > params[_MARGIN]:
            ref[l] = meas[l]
            cnt[l] = 0.0
        else:
            cnt[l] += 1.0
        if cnt[l] < params[_WINDOW]:
            all_stable = False
    if all_stable:
        state[_CSTAR] = c
        state[_SSTAR] = r
        state[_COUNT] = 0.0
        state[_PHASE] = 1.0
        if params[_WAIT] <= 0.0:
            state[_PHASE] = 2.0
    return c


def _count(name: str, value, lo: int = 0) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < lo:
        raise ConfigError(f"controller.{name}", value, f"must be an integer >= {lo}")
    return int(value)


def Reframing(  # noqa: N802
    inner: Controller,
    margin: int = 4,
    window_updates: int = 10_000,
    wait_updates: int = 5_000,
    ramp_updates: int = 25_000,
    max_degree: int = 16,
) -> Controller:
    """Wrap a proportional law (``P`` or ``Pump``) with reframing.

    Defaults are the rig's at one update per 200 µs: a 2 s stability window,
    1 s of wait and a 5 s ramp.

    Args:
        inner: ``P(kp)`` or ``Pump(kp, target)``; its gain and target are used.
        margin: a link is stable while its count stays within ±margin frames
            of its reference.
        window_updates: ... for this many consecutive updates.
        wait_updates: updates between the first all-stable update and the switch.
        ramp_updates: updates over which the count reference slides to 0
            (0: at once).
        max_degree: the most incoming links of a node (the per-link state is
            sized for it); pass ``topology.degree().max()``.
    """
    if not isinstance(inner, Controller) or inner.step not in (p_step, pump_step):
        raise ConfigError("controller.inner", inner, "must be a P or Pump controller")
    kp = float(inner.params[0])
    target = float(inner.params[1]) if inner.step is pump_step else 0.0
    margin = _count("margin", margin)
    window_updates = _count("window_updates", window_updates)
    wait_updates = _count("wait_updates", wait_updates)
    ramp_updates = _count("ramp_updates", ramp_updates)
    max_degree = _count("max_degree", max_degree, lo=1)
    params = [kp, target, margin, window_updates, wait_updates, ramp_updates, max_degree]
    state = np.zeros(_LINKS + 2 * max_degree)
    state[_NLINKS] = -1.0  # no links seen yet
    return Controller(reframing_step, params=params, state=state, name="reframing")
