"""Kernels of the packet network's fluid-flow planner.

Flights (messages in the network) are flat arrays indexed by flight:
``src``/``dst`` int64[F] (ports), ``lat``/``size`` float64[F] (latency left
in s, bytes left), ``rate`` float64[F] (bytes/s). Ports' rates are
float64[N]. The arithmetic follows the reference planner operation for
operation, so that times agree to the last bit.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit


@njit
def greedy_drop_rates(src, dst, send_rate, recv_rate, out):
    """Each flight's rate under the greedy-drop switch, into ``out`` (float64[F]).

    Row step: each sender's rate splits evenly over its distinct
    destinations. Column step: a receiver offered more than its rate scales
    its incoming flows down (sums taken in source order). A pair's rate
    splits evenly over its flights.
    """
    n = send_rate.size
    count = np.zeros((n, n))
    for k in range(src.size):
        count[src[k], dst[k]] += 1.0
    m = np.zeros((n, n))
    for s in range(n):
        dests = 0.0
        for d in range(n):
            if count[s, d] > 0.0:
                dests += 1.0
        if dests > 0.0:
            share = send_rate[s] / dests
            for d in range(n):
                if count[s, d] > 0.0:
                    m[s, d] = share
    for d in range(n):
        col = 0.0
        for s in range(n):
            col += m[s, d]
        if col > recv_rate[d]:
            f = recv_rate[d] / col
            for s in range(n):
                m[s, d] *= f
    for k in range(src.size):
        out[k] = m[src[k], dst[k]] / count[src[k], dst[k]]


@njit
def plan_segment(src, dst, lat, size, send_rate, recv_rate, rate, done):
    """Rates for the segment that starts now, and its length.

    Sets ``rate`` and ``done`` (bool[F]: the flights whose ETA,
    ``max(0, lat + size/rate)``, is the least); returns that least ETA (s).
    """
    greedy_drop_rates(src, dst, send_rate, recv_rate, rate)
    first = np.inf
    for k in range(src.size):
        eta = max(0.0, lat[k] + size[k] / rate[k])
        done[k] = False
        if eta < first:
            first = eta
    for k in range(src.size):
        if max(0.0, lat[k] + size[k] / rate[k]) == first:
            done[k] = True
    return first


@njit
def add_time(lat, size, rate, t):
    """Let ``t`` seconds pass for every flight: latency first, then bytes."""
    for k in range(lat.size):
        if t < lat[k]:
            lat[k] -= t
        else:
            size[k] -= rate[k] * (t - lat[k])
            lat[k] = 0.0
