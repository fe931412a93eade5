"""A controller of your own in a sweep: proportional control with a dead band.

``deadband_p`` below is written here, not in tidesim: it is the P law
``c = kp · e`` on the count sum ``r`` of a node, with ``e = 0`` while ``|r|``
stays within ``±band`` frames and ``e = r ∓ band`` outside (so ``c`` does not
jump at the band's edge). A dead band keeps the correction still while the
counts wander a little, at the price of counts that lock ``band`` frames
further from the centre.

A sweep names it in its config as ``controller = {kind = "python", step =
"custom_controller:deadband_p", params = [kp, band]}``: every worker imports
this file as the module ``custom_controller`` (a script's own folder is on the
path of the workers a local sweep starts) and finds the compiled step there.
The sweep varies ``controller.params`` on three of the rig's experiments (their
offsets and start-up delays, a continuous actuator, ideal buffers, 30 s).

Usage::

    python docs/examples/custom_controller.py [--small] [--out DIR] [--workers N]

writes ``DIR/runs/`` (the sweep, resumable), ``DIR/summary.csv``,
``DIR/summary.md``, ``DIR/settle_time.png`` and ``DIR/largest_count.png``.
"""

from __future__ import annotations

from pathlib import Path

from _study import parse_args, report

from tidesim.controllers import controller_step
from tidesim.studies import Sweep, run_sweep
from tidesim.studies.plots import plot_sweep
from tidesim.studies.tables import aggregate

KP = 1e-7


@controller_step
def deadband_p(params, state, meas):
    """``params = [kp, band]``; ``state[0]`` counts the updates spent inside the band."""
    r = meas.sum()
    e = r - min(max(r, -params[1]), params[1])  # 0 inside the band, r ∓ band outside
    if e == 0.0:
        state[0] += 1.0
    return params[0] * e


BASE = {
    "controller": {"kind": "python", "step": f"{Path(__file__).stem}:deadband_p",
                   "params": [KP, 0.0], "state": [0.0]},
    "actuator": {"kind": "continuous"},
    "buffer": {"depth": 0},
}
FULL = {
    "preset": ["hitl-cycle5", "hitl-torus2x3", "hitl-star7"],
    "controller.params": [[KP, band] for band in (0.0, 4.0, 16.0, 64.0, 256.0)],
}
SMALL = {
    "preset": ["hitl-cycle5"],
    "controller.params": [[KP, 0.0], [KP, 64.0]],
}
METRICS = ["settle_time_s", "max_abs_count", "final_spread_ppb"]


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(__doc__, argv, "out/custom_controller")
    sweep = Sweep(BASE, grid=SMALL if args.small else FULL, until_s=8.0 if args.small else 30.0)
    result = run_sweep(sweep, args.out / "runs", workers=args.workers, progress=False)
    rows = [{**r, "band_frames": r["controller.params"][1]} for r in result.rows]
    table = aggregate(rows, by=["preset", "band_frames"], metrics=METRICS)
    for y, name in (("settle_time_s", "settle_time"), ("max_abs_count", "largest_count")):
        plot_sweep(rows, args.out / f"{name}.png", x="band_frames", y=y, by="preset")
    report(result, table, [
        ("preset", "experiment"), ("band_frames", "band (frames)"),
        ("settle_time_s_mean", "settle time (s)"), ("max_abs_count_mean", "largest count"),
        ("final_spread_ppb_mean", "final spread (ppb)"),
    ], args.out)
    return table


if __name__ == "__main__":
    main()
