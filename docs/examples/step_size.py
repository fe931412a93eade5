"""The FINC/FDEC step size: the rig's 10 ppb against 100 and 500 ppb.

The rig's oscillators are steered one quantized step per 200 µs update, so the
step size sets how fast a node can slew: 50 ppm/s at 10 ppb, 2500 ppm/s at
500 ppb. Every run is one of the rig's experiments (its topology, offsets,
start-up delays, pump controller with ``kp = 1e-8`` on the domain difference
counters, 60 s) with ideal buffers, so that the control loop alone is compared;
``hitl8`` uses seed 0, as ``tidesim run --preset hitl8`` does.

Usage::

    python docs/examples/step_size.py [--small] [--out DIR] [--workers N]

writes ``DIR/runs/`` (the sweep, resumable), ``DIR/summary.csv``,
``DIR/summary.md``, ``DIR/settle_time.png`` and ``DIR/largest_count.png``.
"""

from __future__ import annotations

from _study import parse_args, report

from tidesim.studies import Sweep, run_sweep
from tidesim.studies.plots import plot_sweep

BASE = {"buffer": {"depth": 0}}
FULL = {
    "preset": ["hitl-diamond", "hitl-complete3", "hitl-cycle5", "hitl-torus2x3", "hitl-star7",
               "hitl-line4", "hitl-hourglass3", "hitl8"],
    "actuator.step_ppb": [10.0, 100.0, 500.0],
    "seed": [0],  # swept, so every run of hitl8 draws the same offsets
}
SMALL = {
    "preset": ["hitl-diamond", "hitl-complete3"],
    "actuator.step_ppb": [10.0, 500.0],
    "seed": [0],
}


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(__doc__, argv, "out/step_size")
    sweep = Sweep(BASE, grid=SMALL if args.small else FULL, until_s=20.0 if args.small else None)
    result = run_sweep(sweep, args.out / "runs", workers=args.workers, progress=False)
    # one row per experiment, one column per step size and metric
    steps = [f"{s:g}" for s in sweep.grid["actuator.step_ppb"]]
    by_preset: dict[str, dict] = {}
    for row in result.rows:
        line = by_preset.setdefault(row["preset"], {"preset": row["preset"]})
        line[f"settle_{row['actuator.step_ppb']:g}"] = row["settle_time_s"]
        line[f"count_{row['actuator.step_ppb']:g}"] = row["max_abs_count"]
    for y, name in (("settle_time_s", "settle_time"), ("max_abs_count", "largest_count")):
        plot_sweep(result.rows, args.out / f"{name}.png", x="preset", y=y,
                   by="actuator.step_ppb")
    table = list(by_preset.values())
    report(result, table, [("preset", "experiment"),
                           *((f"settle_{s}", f"settle (s), {s} ppb") for s in steps),
                           *((f"count_{s}", f"largest count, {s} ppb") for s in steps)],
           args.out, digits=3)
    return table


if __name__ == "__main__":
    main()
