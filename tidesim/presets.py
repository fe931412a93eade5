"""Named base configurations (``preset = "hitl8"`` in a config file).

Each preset is a config dict in the schema of :mod:`tidesim.config`; a user
config that names one is deep-merged on top of it (user keys win).

* ``hitl8`` -- the hardware rig: 8 nodes, complete graph, 125 MHz, random
  offsets in ±100 ppm, one update every 25 000 ticks (200 µs).
* ``hitl-*`` -- the rig's seven offset experiments: the rig's clock, control,
  buffer and stability settings, with their own topology, per-node offsets
  (ppm) and start-up delays.
* ``callisto-test`` -- the reference test of Callisto.jl (``test/testsim.jl``):
  3 nodes, nominal frequency 1, latency 5000, an ideal buffer with reference 50.

Example:
    >>> from tidesim.presets import PRESETS, preset_names
    >>> "hitl8" in preset_names()
    True
    >>> PRESETS["hitl-line4"]["clock"]["offsets_ppm"]
    [100.0, 0.0, 0.0, -100.0]
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "RIG_F_NOM_HZ", "RIG_KP", "preset_names", "rig_start_s"]

RIG_F_NOM_HZ = 125e6
"""Nominal frequency of the rig's oscillators (Hz)."""


RIG_KP = 1e-8
"""Gain of the rig's pump controller: one 10 ppb step per frame of summed count."""


def rig_start_s(*delays_million_cycles: float) -> list[float]:
    """Convert the rig's start-up delays to seconds.

    Args:
        *delays_million_cycles: one delay per node, in millions of 125 MHz cycles.

    Returns:
        The delays in seconds (``200`` million cycles is ``1.6`` s).
    """
    return [d * 1e6 / RIG_F_NOM_HZ for d in delays_million_cycles]


def _rig(topology: dict[str, Any], offsets_ppm: Any, start_s: Any, until_s: float) -> dict:
    """A rig configuration: the shared settings plus what differs per experiment."""
    return {
        "seed": 0,
        "run": {"until_s": until_s, "fidelity": "event"},
        "topology": {**topology, "latency_s": 1e-8},
        "clock": {
            "f_nom_hz": RIG_F_NOM_HZ,
            "offsets_ppm": offsets_ppm,
            "drift_ppb_per_s": 0.0,
            "wander_ppb_per_sqrt_s": 0.0,
            "theta0": 0.1,
            "start_s": start_s,
        },
        "control": {"update_period_ticks": 25_000, "delay_ticks": 0, "measure": "ddc"},
        # the rig's controller: the pump law on the domain difference
        # counters, one 10 ppb FINC/FDEC step per update at most
        "controller": {"kind": "pump", "kp": RIG_KP, "target_ppm": 0.0},
        "actuator": {"kind": "quantized", "step_ppb": 10.0},
        # as the rig: the buffers are centred once every link is stable (a
        # link stable early would otherwise fault while the rest converge)
        "buffer": {"depth": 32, "arm": "all_stable"},
        "stability": {"margin": 4, "window_s": 2.0},
    }


def _floats(*values: float) -> list[float]:
    """The values as a list of floats (TOML-like: offsets are floats)."""
    return [float(v) for v in values]


# Preset name -> config dict. Treat as read-only: load_config merges a deep copy.
PRESETS: dict[str, dict] = {
    # 60 s, the rig's run length: with one 10 ppb step per 200 µs update the
    # pump needs seconds to slew ±100 ppm, and stability takes a 2 s window
    "hitl8": _rig({"kind": "complete", "n": 8}, {"random_ppm": 100.0}, 0.0, 60.0),
    "hitl-diamond": _rig(
        {"kind": "diamond"}, _floats(-10, -5, 20, 30), rig_start_s(0, 10, 200, 3), 60.0
    ),
    "hitl-complete3": _rig(
        {"kind": "complete", "n": 3}, _floats(-100, 0, 100), rig_start_s(200, 0, 200), 60.0
    ),
    "hitl-cycle5": _rig(
        {"kind": "cycle", "n": 5},
        _floats(0, 5, 10, 15, 20),
        rig_start_s(0, 10, 0, 100, 0),
        60.0,
    ),
    "hitl-torus2x3": _rig(
        {"kind": "torus", "dims": [2, 3]},
        _floats(-30, -35, -40, 40, 35, 30),
        rig_start_s(0, 0, 0, 100, 100, 100),
        60.0,
    ),
    "hitl-star7": _rig(
        {"kind": "star", "k": 7},
        _floats(0, 10, -10, 20, -20, 30, -30, 40),
        rig_start_s(*range(0, 281, 40)),
        60.0,
    ),
    "hitl-line4": _rig(
        {"kind": "line", "n": 4}, _floats(100, 0, 0, -100), rig_start_s(200, 0, 0, 200), 60.0
    ),
    "hitl-hourglass3": _rig(
        {"kind": "hourglass", "k": 3},
        _floats(100, -100, 100, -100, 100, -100),
        rig_start_s(0, 200, 0, 200, 0, 200),
        60.0,
    ),
    "callisto-test": {
        "seed": 0,
        "run": {"until_s": 2e8, "fidelity": "event"},
        "topology": {"kind": "complete", "n": 3, "latency_s": 5000.0},
        "clock": {
            "f_nom_hz": 1.0,
            "offsets_ppm": _floats(100, -100, 0),
            "drift_ppb_per_s": 0.0,
            "wander_ppb_per_sqrt_s": 0.0,
            "theta0": 0.1,
            "start_s": 0.0,
        },
        # Callisto.jl samples at phase theta0 + k p, not on whole edges
        "control": {"update_period_ticks": 100_000, "delay_ticks": 1000, "measure": "buffer",
                    "sample_at": "phase"},
        "controller": {"kind": "pi", "kp": 2e-8, "ki": 1e-15},
        "actuator": {"kind": "continuous", "step_ppb": 10.0},
        "buffer": {"depth": 0, "reference": 50, "arm": "link_up"},
        "stability": {"margin": 4, "window_s": 2e7},
    },
}


def preset_names() -> list[str]:
    """The names of all presets, in definition order."""
    return list(PRESETS)
