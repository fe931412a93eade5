"""Settle time against the proportional gain kp, on four topologies of 8 nodes.

Every run has 8 nodes at 125 MHz with random offsets in ±50 ppm, a P
controller (``c = kp · Σ counts``) on the domain difference counters, a
continuous actuator, ideal buffers, one update per 200 µs and the rig's
stability detector (±4 frames for 2 s). The same three offset draws (seeds)
are used for every topology and gain, so the lines compare like with like.

Besides the settle time, the table compares the energy the loop spent pulling
the nodes together, ``Σ_i ∫ (ω_i - ω̄)² dt``, with its prediction
``ũᵀ L⁺ ũ / (2 · kp · f0)`` (``tidesim.studies.analysis.predicted_energy``,
summed exactly over the sampled loop).

Usage::

    python docs/examples/settle_vs_kp.py [--small] [--out DIR] [--workers N]

writes ``DIR/runs/`` (the sweep, resumable), ``DIR/summary.csv``,
``DIR/summary.md``, ``DIR/settle_vs_kp.png`` and ``DIR/energy_ratio.png``.
"""

from __future__ import annotations

from _study import parse_args, report

from tidesim.studies import Sweep, run_sweep
from tidesim.studies.plots import plot_sweep
from tidesim.studies.tables import aggregate

BASE = {
    "preset": "hitl8",
    "clock": {"offsets_ppm": {"random_ppm": 50.0}},
    "controller": {"kind": "p", "kp": 1e-8},
    "actuator": {"kind": "continuous"},
    "buffer": {"depth": 0},
}
FULL = {
    "topology": [{"kind": "complete", "n": 8}, {"kind": "hypercube", "d": 3},
                 {"kind": "star", "k": 7}, {"kind": "cycle", "n": 8}],
    "controller.kp": [1e-9, 3e-9, 1e-8, 3e-8, 1e-7, 3e-7, 1e-6],
    "seed": [1, 2, 3],
}
SMALL = {
    "topology": [{"kind": "complete", "n": 8}, {"kind": "cycle", "n": 8}],
    "controller.kp": [1e-8, 1e-7],
    "seed": [1],
}
METRICS = ["settle_time_s", "max_abs_count", "energy_spread", "predicted_energy", "energy_ratio"]


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(__doc__, argv, "out/settle_vs_kp")
    sweep = Sweep(BASE, grid=SMALL if args.small else FULL, until_s=6.0 if args.small else 30.0)
    result = run_sweep(sweep, args.out / "runs", workers=args.workers, progress=False)
    table = aggregate(result.rows, by=["topology_name", "controller.kp"], metrics=METRICS)
    for y, name in (("settle_time_s", "settle_vs_kp"), ("energy_ratio", "energy_ratio")):
        plot_sweep(result.rows, args.out / f"{name}.png", x="controller.kp", y=y,
                   by="topology_name")
    report(result, table, [
        ("topology_name", "topology"), ("controller.kp", "kp"), ("runs", "runs"),
        ("settle_time_s_mean", "settle time (s)"), ("settle_time_s_missing", "not settled"),
        ("max_abs_count_mean", "largest count"), ("energy_spread_mean", "energy (s)"),
        ("energy_ratio_mean", "energy / predicted"),
    ], args.out)
    return table


if __name__ == "__main__":
    main()
