"""Shared set-up of the benchmark scripts (each prints one JSON object)."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

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


def rss_mb(field: str = "VmHWM") -> float:
    """Resident memory of this process (MB): ``VmHWM`` is the peak so far,
    ``VmRSS`` the current; from ``/proc``, else the peak from getrusage."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
