"""The floor of event fidelity on this machine: a stripped node-update kernel.

``bench_event.py`` measures the core. This script measures what no exact
event kernel can avoid on the complete-8 rig, so that the core's numbers can
be read against the machine rather than against a guess. The kernel below
does, per node-update, only:

* for each of the 7 incoming links: step the sender's segment to the one in
  force at ``t - lat``, take its phase there, ``floor`` it (the last frame to
  arrive), form the domain difference count, run the stability detector,
  record count and flags;
* the pump law on the counts, the quantized actuator, a new frequency segment
  when the correction changed, and the node's next sample in the sample order.

It has no double-double anchors, no phase band or edge-time check, no fault
bound or edge walk, no adjustments, no controller call through a function
pointer and no fidelity or link-up switches: it is a lower bound on the work,
not a model (its counts differ from the core's in the last bits of phase).
Its arrays are allocated once and reused.

Below the floor, ``bound_kernel`` keeps only the arithmetic of a node-update:
for each incoming link one multiply-subtract of the sender's current phase,
its ``floor`` and the count; the pump, the quantizer and the node's new rate
and next sample time. Nodes take their turns round-robin; nothing is
recorded, no segment is kept, nothing is exact. An event kernel that samples
every link of the rig does all of this and more, so the bound shows how much
of a node-update's time the arithmetic alone takes.

Reported: node-updates per second of the bound, the floor and the core,
measured in alternation in one process (the machine's speed drifts; the
ratios do not), and the floor's time per 10 s run when two kernels run at
once on the two CPUs, which bounds the kernel part of the 1000-run sweep of
``bench_sweep.py`` from below.
"""

from __future__ import annotations

import math
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from _common import emit, rig_system

from tidesim._jit import njit
from tidesim.models._kernels import order_requeue

SIM_S = 10.0
ROUNDS = 6


@njit(nogil=True)
def floor_kernel(until, f0, p, kp, qstep, margin, window, eps0, theta0, in_off, in_src, in_lat,
                 seg_hi, seg_k, seg_f, seg_p, rec_cnt, rec_flags):
    """Run the stripped rig to ``until`` (s); returns the number of node-updates.

    Args:
        eps0, theta0: float64[n] relative offset and initial phase (cycles).
        in_off, in_src, in_lat: int64[n+1], int64[E], float64[E] incoming
            links of each node (CSR): sender and latency (s).
        seg_hi, seg_k, seg_f, seg_p: float64/int64/float64/float64[n, S]
            segment start time (s), start edge, frequency (Hz), period (s).
        rec_cnt, rec_flags: int32/int8[Q, E] count and stability flags of
            every incoming link at every sample of its receiver.
    """
    n = eps0.size
    n_e = in_src.size
    n_seg = np.ones(n, dtype=np.int64)
    for j in range(n):
        seg_f[j, 0] = f0 * (1.0 + eps0[j])
        seg_p[j, 0] = 1.0 / seg_f[j, 0]
        seg_hi[j, 0] = -theta0[j] * seg_p[j, 0]
        seg_k[j, 0] = 0
    sp = np.zeros(n_e, dtype=np.int64)
    base = np.zeros(n_e, dtype=np.int64)
    stref = np.zeros(n_e, dtype=np.int64)
    since = np.zeros(n_e)
    zq = np.zeros(n, dtype=np.int64)
    n_q = np.zeros(n, dtype=np.int64)
    # the core's sample order
    hk = np.empty(n)
    hid = np.argsort(seg_hi[:, 0], kind="mergesort")
    for r in range(n):
        hk[r] = seg_hi[hid[r], 0]
    head = 0
    updates = 0
    while True:
        t = hk[head]
        j = hid[head]
        if t > until:
            break
        q = n_q[j]
        m = q * p
        r_sum = 0
        for e in range(in_off[j], in_off[j + 1]):
            i = in_src[e]
            y = t - in_lat[e]
            s = sp[e]
            s += (s + 1 < n_seg[i]) & (seg_hi[i, s + 1] <= y)
            sp[e] = s
            a = seg_k[i, s] + np.int64(math.floor((y - seg_hi[i, s]) * seg_f[i, s]))
            if q == 0:  # the domain difference counter starts at 0
                base[e] = a - m
            cnt = a - m - base[e]
            reset = abs(cnt - stref[e]) > margin
            stref[e] = cnt if reset else stref[e]
            since[e] = t if reset else since[e]
            stable = np.int8(t - since[e] >= window)
            rec_cnt[q, e] = cnt
            rec_flags[q, e] = stable * (np.int8(1) + np.int8(2) * np.int8(abs(stref[e]) < margin))
            r_sum += cnt
        des = kp * r_sum
        cur = zq[j] * qstep
        zq[j] += np.int64(des > cur + 0.5 * qstep) - np.int64(des < cur - 0.5 * qstep)
        f = f0 * (1.0 + eps0[j] + zq[j] * qstep)
        s = n_seg[j] - 1
        if f != seg_f[j, s]:
            seg_hi[j, s + 1] = seg_hi[j, s] + (m - seg_k[j, s]) * seg_p[j, s]
            seg_k[j, s + 1] = m
            seg_f[j, s + 1] = f
            seg_p[j, s + 1] = 1.0 / f
            s += 1
            n_seg[j] = s + 1
        n_q[j] = q + 1
        key = seg_hi[j, s] + (m + p - seg_k[j, s]) * seg_p[j, s]
        head = order_requeue(hk, hid, head, key, j)
        updates += 1
    return updates


@njit(nogil=True)
def bound_kernel(n_updates, f0, p, kp, qstep, eps0, in_off, in_src, in_lat):
    """``n_updates`` node-updates of the bare arithmetic; returns the summed counts.

    Args:
        eps0: float64[n] relative offset of each node.
        in_off, in_src, in_lat: int64[n+1], int64[E], float64[E] incoming
            links of each node (CSR): sender and latency (s).
    """
    n = eps0.size
    t_a = np.zeros(n)  # current segment: anchor time (s), edge, frequency (Hz)
    k_a = np.zeros(n, dtype=np.int64)
    f = np.empty(n)
    for j in range(n):
        f[j] = f0 * (1.0 + eps0[j])
    t_next = np.zeros(n)
    m = np.zeros(n, dtype=np.int64)
    zq = np.zeros(n, dtype=np.int64)
    total = 0
    j = 0
    for _ in range(n_updates):
        t = t_next[j]
        r_sum = 0
        for e in range(in_off[j], in_off[j + 1]):
            i = in_src[e]
            a = k_a[i] + np.int64(math.floor((t - in_lat[e] - t_a[i]) * f[i]))
            r_sum += a - m[j]
        des = kp * r_sum
        cur = zq[j] * qstep
        zq[j] += np.int64(des > cur + 0.5 * qstep) - np.int64(des < cur - 0.5 * qstep)
        t_a[j] = t
        k_a[j] = m[j]
        f[j] = f0 * (1.0 + eps0[j] + zq[j] * qstep)
        m[j] += p
        t_next[j] = t + p / f[j]
        total += r_sum
        j = j + 1 if j + 1 < n else 0
    return total


class Floor:
    """The stripped kernel's inputs and reusable arrays for one rig system."""

    def __init__(self, system) -> None:
        links = system.topology.links
        order = np.lexsort((links[:, 0], links[:, 1]))  # by receiver
        self.in_src = np.ascontiguousarray(links[order, 0], dtype=np.int64)
        self.in_lat = np.ascontiguousarray(system.topology.latency_s[order], dtype=np.float64)
        n = system.n_nodes
        self.in_off = np.searchsorted(links[order, 1], np.arange(n + 1)).astype(np.int64)
        self.system = system
        cap = int(math.ceil(SIM_S * system.f_nom_hz * 1.001 / system.update_period_ticks)) + 4
        self.seg = (np.zeros((n, cap)), np.zeros((n, cap), dtype=np.int64),
                    np.zeros((n, cap)), np.zeros((n, cap)))
        self.rec = (np.zeros((cap, links.shape[0]), dtype=np.int32),
                    np.zeros((cap, links.shape[0]), dtype=np.int8))

    def bound(self, n_updates: int) -> int:
        s = self.system
        return bound_kernel(n_updates, s.f_nom_hz, s.update_period_ticks, 1e-8, 1e-8,
                            s.offsets_ppm * 1e-6, self.in_off, self.in_src, self.in_lat)

    def run(self, until_s: float) -> int:
        s = self.system
        return floor_kernel(until_s, s.f_nom_hz, s.update_period_ticks, 1e-8, 1e-8,
                            s.stability.margin, s.stability.window_s,
                            s.offsets_ppm * 1e-6, s.theta0, self.in_off, self.in_src,
                            self.in_lat, *self.seg, *self.rec)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    system = rig_system()
    floors = [Floor(system), Floor(rig_system(seed=2))]
    floors[0].run(0.01)  # compile or load the cache
    floors[0].bound(1000)
    system.run(until_s=0.01)
    updates = floors[0].run(SIM_S)
    core_updates = int(system.run(until_s=SIM_S, record="summary").n_updates.sum())
    t_bound, t_floor, t_core, t_two = [], [], [], []
    with ThreadPoolExecutor(2) as pool:
        for _ in range(ROUNDS):
            t_bound.append(timed(lambda: floors[0].bound(updates)))
            t_floor.append(timed(lambda: floors[0].run(SIM_S)))
            t_core.append(timed(lambda: system.run(until_s=SIM_S, record="summary")))
            # two kernels at once (they release the GIL): one per CPU
            t_two.append(timed(lambda: list(pool.map(lambda f: f.run(SIM_S), floors))))
    bound_s = min(t_bound)
    floor_s = min(t_floor)
    core_s = min(t_core)
    two_s = min(t_two)
    emit("event_floor_hitl8_10s", simulated_s=SIM_S, node_updates=updates,
         bound_wall_s=bound_s, bound_node_updates_per_s=updates / bound_s,
         bound_ns_per_node_update=bound_s / updates * 1e9,
         floor_wall_s=floor_s, floor_node_updates_per_s=updates / floor_s,
         floor_ns_per_node_update=floor_s / updates * 1e9,
         core_wall_s=core_s, core_node_updates_per_s=core_updates / core_s,
         core_over_floor=statistics.median(c / f for c, f in zip(t_core, t_floor, strict=True)),
         floor_over_bound=statistics.median(f / b for f, b in zip(t_floor, t_bound, strict=True)),
         floor_two_at_once_s_per_run=two_s,
         sweep_1000_kernel_floor_s=1000 * two_s / 2,
         target_node_updates_per_s=1.5e7)


if __name__ == "__main__":
    main()
