"""The packet network: the reference's whole allreduce table, and atoms on node processes.

Timed:

* ``tidesim packetnet table`` as a user starts it (a fresh process: imports
  and cached kernels included), best of 3; target < 4 s (the original
  takes about 40 s, a plain Python port about 45 s);
* the table in this process once warm (``table()``), best of 3;
* the slowest cells, each algorithm's largest (32 nodes, n = 1e4 and 1e7);
* allreduce atoms (tree, 5 nodes, 1 000 elements) on the ``processes``
  backend: wall time per allreduce, next to the in-process run over links.

Checked on the way: the table equals the published one.
"""

import subprocess
import sys
import time

import numpy as np
from _common import best_of, emit

from tidesim.backends import make_backend
from tidesim.config import build_system, load_config, validate
from tidesim.packetnet import allreduce, format_table, make_allreduce, table

PUBLISHED_STREAM_32 = "| 32 | 0.0001 | 1E+09 | 10000000 | 2.800100 | 1.490913 | 0.358567 |"


def cli_table() -> None:
    out = subprocess.run([sys.executable, "-m", "tidesim", "packetnet", "table"],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == PUBLISHED_STREAM_32, out


cli_s = best_of(cli_table, repeat=3)
rows = table()
assert format_table(rows).splitlines()[-1] == PUBLISHED_STREAM_32
warm_s = best_of(table, repeat=3)
cells = {f"{a}_32_{n:g}": best_of(lambda a=a, n=n: allreduce(a, 32, 0.1, 1e6, n), repeat=3)
         for a in ("naive", "tree", "stream") for n in (10_000, 10_000_000)}

system = build_system(validate(load_config({"preset": "hitl-cycle5"})))
vectors = np.random.default_rng(1).standard_normal((5, 1000))
with make_backend("processes").start(system) as run:
    t = time.perf_counter()
    run.run_atoms(make_allreduce("tree", 5, 1000, vectors))  # first: imports on the nodes
    first_s = time.perf_counter() - t
    procs_s = best_of(lambda: run.run_atoms(make_allreduce("tree", 5, 1000, vectors)), 5)
with make_backend("inprocess").start(system) as run:
    inproc_s = best_of(lambda: run.run_atoms(make_allreduce("tree", 5, 1000, vectors)), 5)

emit("packetnet", table_cli_s=round(cli_s, 3), table_warm_s=round(warm_s, 3),
     table_target_s=4.0, cells_s={k: round(v, 4) for k, v in cells.items()},
     atoms_tree5_processes_first_s=round(first_s, 4),
     atoms_tree5_processes_s=round(procs_s, 4), atoms_tree5_inprocess_s=round(inproc_s, 5))
