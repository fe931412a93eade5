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

``window_updates``, ``wait_updates`` and ``ramp_updates`` are the durations
``window_s``, ``wait_s`` and ``ramp_s`` in updates of the node,
``round(seconds · f_nom_hz / update_period_ticks)``.

The per-link state is sized for ``max_degree`` links, the system's largest
in-degree; a node with more incoming links returns NaN, which stops the run
with a ``SimulationFault``.
When the set of links that are up changes, every detector restarts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import instance, integer, number, set_fields
from ._contract import CompiledController, ControlContext, ControlLaw, controller_step
from .proportional import P, Pump

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


@dataclass(frozen=True)
class Reframing(ControlLaw):
    """Wrap a proportional law (``P`` or ``Pump``) with reframing.

    Defaults are the rig's: its stability detector (±4 frames for 2 s),
    1 s of wait and a 5 s ramp. Durations become a node's updates at the
    system's nominal frequency, ``round(seconds · f_nom_hz /
    update_period_ticks)``, and the per-link state is sized for the system's
    largest in-degree, both when the run starts.

    Args:
        inner: ``P(kp)`` or ``Pump(kp, target_ppm)``; its gain and target are used.
        margin: a link is stable while its count stays within ±margin frames
            of its reference (>= 0).
        window_s: ... for this long (s, >= 0).
        wait_s: time between the first all-stable update and the switch (s, >= 0).
        ramp_s: time over which the count reference slides to 0 (s, >= 0;
            0: at once).

    Example:
        >>> from tidesim.controllers import P, Reframing
        >>> from tidesim.models import ElasticBuffer, System, Topology
        >>> ctl = Reframing(P(kp=1.25e-5), window_s=0.5, wait_s=0.1, ramp_s=0.5)
        >>> system = System(Topology.complete(3), f_nom_hz=1e6, update_period_ticks=200,
        ...                 offsets_ppm=[-250.0, 62.5, 250.0], controller=ctl,
        ...                 buffer=ElasticBuffer(depth=32))
        >>> system.compile_controller().params.tolist()  # updates of 200 µs, degree 2
        [1.25e-05, 0.0, 4.0, 2500.0, 500.0, 2500.0, 2.0]
        >>> system.run(3.0).controller_state[:, 0].tolist()  # every node reframed
        [2.0, 2.0, 2.0]
    """

    inner: P | Pump
    margin: int = 4
    window_s: float = 2.0
    wait_s: float = 1.0
    ramp_s: float = 5.0

    def __post_init__(self) -> None:
        instance("controller.inner", self.inner, (P, Pump), "a P or Pump controller")
        set_fields(self, margin=integer("controller.margin", self.margin, lo=0),
                   window_s=number("controller.window_s", self.window_s, lo=0),
                   wait_s=number("controller.wait_s", self.wait_s, lo=0),
                   ramp_s=number("controller.ramp_s", self.ramp_s, lo=0))

    def compile(self, context: ControlContext) -> CompiledController:
        """``params = [kp, target, margin, window, wait, ramp (updates), max_degree]``."""
        target = self.inner.target if isinstance(self.inner, Pump) else 0.0
        max_degree = max(1, context.max_in_degree)
        params = [self.inner.kp, target, self.margin, context.updates(self.window_s),
                  context.updates(self.wait_s), context.updates(self.ramp_s), max_degree]
        state = np.zeros(_LINKS + 2 * max_degree)
        state[_NLINKS] = -1.0  # no links seen yet
        return CompiledController(reframing_step, params=params, state=state, name="reframing")
