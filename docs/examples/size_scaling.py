"""Settle time and largest count against the number of nodes: cycles, 2-D tori, hypercubes.

Every run uses the rig's settings (125 MHz, the pump with ``kp = 1e-8`` on the
domain difference counters, 10 ppb FINC/FDEC steps, one update per 200 µs,
±4 frames for 2 s to be stable, 60 s) with random offsets in ±100 ppm, all
nodes starting together, and ideal buffers, so that the largest count is what
a buffer would need to hold. The same three offset draws (seeds) are used for
every size. The table adds ``λ_2``, the algebraic connectivity, whose inverse
sets the slowest mode of the loop (``tidesim.studies.analysis``).

Usage::

    python docs/examples/size_scaling.py [--small] [--out DIR] [--workers N]

writes ``DIR/runs/`` (the sweep, resumable), ``DIR/summary.csv``,
``DIR/summary.md``, ``DIR/settle_time.png`` and ``DIR/largest_count.png``.
"""

from __future__ import annotations

from _study import parse_args, report

from tidesim.studies import Sweep, run_sweep
from tidesim.studies.plots import plot_sweep
from tidesim.studies.tables import aggregate

BASE = {"preset": "hitl8", "clock": {"start_s": 0.0}, "buffer": {"depth": 0}}
FULL = {
    "topology": [
        *({"kind": "cycle", "n": n} for n in (4, 8, 16, 32)),
        *({"kind": "torus", "dims": [k, k]} for k in (3, 4, 5, 6)),
        *({"kind": "hypercube", "d": d} for d in (2, 3, 4, 5)),
    ],
    "seed": [1, 2, 3],
}
SMALL = {
    "topology": [{"kind": "cycle", "n": 4}, {"kind": "cycle", "n": 6},
                 {"kind": "torus", "dims": [3, 3]}, {"kind": "hypercube", "d": 2}],
    "seed": [1],
}
METRICS = ["settle_time_s", "max_abs_count", "algebraic_connectivity"]


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(__doc__, argv, "out/size_scaling")
    sweep = Sweep(BASE, grid=SMALL if args.small else FULL, until_s=10.0 if args.small else None)
    result = run_sweep(sweep, args.out / "runs", workers=args.workers, progress=False)
    # the family of each topology, a column to draw one line per family by
    rows = [{**r, "family": r["topology"]["kind"]} for r in result.rows]
    table = aggregate(rows, by=["family", "nodes", "topology_name"], metrics=METRICS)
    for y, name in (("settle_time_s", "settle_time"), ("max_abs_count", "largest_count")):
        plot_sweep(rows, args.out / f"{name}.png", x="nodes", y=y, by="family")
    report(result, table, [
        ("topology_name", "topology"), ("nodes", "nodes"),
        ("algebraic_connectivity_mean", "λ_2"), ("runs", "runs"),
        ("settle_time_s_mean", "settle time (s)"), ("settle_time_s_missing", "not settled"),
        ("max_abs_count_mean", "largest count"),
    ], args.out, digits=3)
    return table


if __name__ == "__main__":
    main()
