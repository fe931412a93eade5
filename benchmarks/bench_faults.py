"""Faults without a cliff: runs whose buffers over- and underflow against the
same runs with ideal buffers, event fidelity, summary recording.

Each case runs with its elastic buffers (``depth`` 32, faulting) and again with
``depth = 0`` (an ideal counter, never faults); the ratio is the cost of
computing the faults. Target: at most 2x; ``hitl-hourglass3`` 60 s under 3 s.
"""

from _common import best_of, emit

from tidesim.config import build_system, load_config, validate

CASES = {
    # the rig's hourglass with buffers armed link by link: 8 faults at 4.8 s
    # and 7.0 s, buffers pinned after (the preset arms them together and
    # never faults)
    "hitl-hourglass3": ({"preset": "hitl-hourglass3", "buffer": {"arm": "stable"}}, 60.0),
    # four nodes in a ring under a weak P controller: every buffer pinned
    "ring4": ({"topology": {"kind": "cycle", "n": 4}, "clock": {"offsets_ppm": [50, -50, 30, -30]},
               "controller": {"kind": "p", "kp": 1e-8}}, 60.0),
    # the rig with ±1 % offsets and buffers armed at link-up: every buffer
    # drifts through both limits every update
    "hitl8-1e4ppm": ({"preset": "hitl8", "clock": {"offsets_ppm": {"random_ppm": 1e4}},
                      "buffer": {"arm": "link_up"}, "control": {"measure": "buffer"}}, 10.0),
}


def main() -> None:
    for name, (cfg, until) in CASES.items():
        walls, faults = {}, 0
        for depth in (32, 0):
            rc = validate(load_config({**cfg, "buffer": {**cfg.get("buffer", {}), "depth": depth}}))
            system = build_system(rc)
            system.run(until_s=0.01, record="summary")  # compile or load the cache
            out = {}

            def run(system=system, out=out, until=until):
                out["trace"] = system.run(until_s=until, record="summary")

            walls[depth] = best_of(run, repeat=3)
            if depth:
                faults = sum(f.count for f in out["trace"].faults)
        emit(f"faults_{name}", simulated_s=until, wall_s=walls[32], wall_ideal_s=walls[0],
             ratio=walls[32] / walls[0], faulted_frames=faults, target_ratio=2.0,
             **({"target_wall_s": 3.0} if name == "hitl-hourglass3" else {}))


if __name__ == "__main__":
    main()
