"""Shared set-up of the benchmark scripts (each prints one JSON object)."""

from __future__ import annotations

import json
import os
import platform
import time

import numpy as np

from tidesim.config import build_system, load_config, validate


def rig_system(seed: int = 1, **overrides):
    """The ``hitl8`` rig with seeded random offsets, as the CLI builds it."""
    cfg = load_config({"preset": "hitl8", "seed": seed, **overrides})
    return build_system(validate(cfg))


def best_of(fn, repeat: int = 3) -> float:
    """Smallest wall time (s) of ``repeat`` calls of ``fn``."""
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return float(best)


def emit(name: str, **numbers) -> None:
    print(json.dumps({"benchmark": name, "machine": platform.machine(),
                      "cpus": os.cpu_count(), **numbers}))
