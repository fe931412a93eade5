"""RTL co-simulation: the elastic buffer's RTL under Icarus Verilog against its model.

One scenario: a link of a 2-node run (±300 ppm, 30 ns), 20 000 receiver
cycles, 8 adjustments. Timed:

* the RTL: cycles/s of the cocotb test itself (both clocks driven edge by
  edge from Python, every output compared on every edge), from the test's
  report, and the whole ``simulate`` call (build included);
* the model (:class:`tidesim.rtl.ElasticBufferModel`, Numba) on the same
  edges, best of 5.

Target: ``model_over_rtl >= 1000``.
"""

import tempfile
import time
from pathlib import Path

import numpy as np
from _common import best_of, emit

from tidesim.models import System, Topology
from tidesim.rtl import ElasticBufferModel, elastic_buffer_scenario, rtl_files
from tidesim.testing.cocotb import simulate

CYCLES = 20_000
TB = Path(__file__).resolve().parent.parent / "tests" / "rtl"

system = System(Topology.complete(2, latency_s=3e-8), offsets_ppm=[-300.0, 300.0])
sc = elastic_buffer_scenario(system.run(until_s=2e-4, record="full"), cycles=CYCLES,
                             adjustments=8, seed=1)
model = ElasticBufferModel(int(sc["addr"]), int(sc["sync"]))
per_edge = {k: sc[k] for k in ("wr_en", "wr_data", "rd_en", "adj_frames", "wr_rst", "rd_rst")}
model.run(sc["wr_fs"], sc["rd_fs"], **per_edge)  # compile or load the cache
model_s = best_of(lambda: model.run(sc["wr_fs"], sc["rd_fs"], **per_edge), repeat=5)

with tempfile.TemporaryDirectory() as tmp:
    np.savez(Path(tmp) / "sc.npz", **sc)
    t = time.perf_counter()
    report = simulate(sources=rtl_files("tidesim_elastic_buffer"),
                      toplevel="tidesim_elastic_buffer", test_module="eb_tb", test_dir=TB,
                      build_dir=Path(tmp) / "build",
                      env={"TIDESIM_SCENARIO": str(Path(tmp) / "sc.npz")})
    total_s = time.perf_counter() - t

assert report["passed"], report
rtl_s = report["wall_s"]
emit("rtl", cycles=CYCLES, rtl_test_s=rtl_s, rtl_cycles_per_s=CYCLES / rtl_s,
     simulate_total_s=total_s, model_s=model_s, model_cycles_per_s=CYCLES / model_s,
     model_over_rtl=rtl_s / model_s, target_met=rtl_s / model_s >= 1000)
