"""Warm start of the CLI: a tiny `tidesim run` with the Numba cache filled."""

import subprocess
import sys
import time

from _common import emit

cmd = [sys.executable, "-m", "tidesim", "run", "--until", "0.001", "--json"]
subprocess.run(cmd, check=True, capture_output=True)  # fill the cache
walls = []
for _ in range(3):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    walls.append(time.perf_counter() - t)
emit("cli_warm_start", wall_s=min(walls), target_wall_s=2.0)
