"""Cost of advancing in slices: 60 s of hitl8 (event fidelity) in one call and
as ``tidesim run`` advances it (slices of about 0.3 s of wall time, each
ending with a pass over the links), recording the summary as ``tidesim run``
does; and in 1000 equal slices, which gives the cost of one more ``advance``
call (``per_slice_us``).

The three are timed in turn, ``--repeat`` times each, so that a machine
shared with other work slows both alike; reported are the best of each, the
median of the per-pair ratios, how many slices the run took, and the
overhead those slices cost at ``per_slice_us`` each. Target: the overhead
(best sliced / best one call - 1) within 2 %.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import emit, rig_system

from tidesim._slices import advance_in_slices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--until", type=float, default=60.0, help="simulated seconds")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    system = rig_system()
    system.run(until_s=0.01, record="summary")  # compile or load the cache
    slices = []

    def one_call() -> float:
        t = time.perf_counter()
        system.start(record="summary").advance(args.until)
        return time.perf_counter() - t

    def sliced() -> float:
        sim = system.start(record="summary")
        ends = []
        t = time.perf_counter()
        advance_in_slices(sim, args.until, on_slice=ends.append)
        wall = time.perf_counter() - t
        slices.append(len(ends))
        return wall

    def thousand() -> float:
        sim = system.start(record="summary")
        t = time.perf_counter()
        for k in range(1, 1001):
            sim.advance(args.until * k / 1000)
        return time.perf_counter() - t

    runs = [(one_call(), sliced(), thousand()) for _ in range(args.repeat)]
    pairs = [(a, b) for a, b, _ in runs]
    best_one = min(a for a, _ in pairs)
    best_sliced = min(b for _, b in pairs)
    per_slice = (min(c for _, _, c in runs) - best_one) / 999
    emit("slices_hitl8_event", simulated_s=args.until, repeat=args.repeat,
         one_call_wall_s=best_one, sliced_wall_s=best_sliced, slices=max(slices),
         overhead_pct=(best_sliced / best_one - 1) * 100,
         median_pair_ratio=statistics.median(b / a for a, b in pairs),
         per_slice_us=per_slice * 1e6,
         # the same from the cost of a call: robust where timings are noisy
         overhead_from_per_slice_pct=max(slices) * per_slice / best_one * 100,
         target_overhead_pct=2.0)


if __name__ == "__main__":
    main()
