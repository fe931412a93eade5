"""cocotb test of the elastic buffer: the scenario from $TIDESIM_SCENARIO (npz)."""

import os

import cocotb
import numpy as np

from tidesim.testing.cocotb import ElasticBufferMonitor, check_elastic_buffer


@cocotb.test()
async def elastic_buffer_matches_the_model(dut):
    scenario = dict(np.load(os.environ["TIDESIM_SCENARIO"]))
    monitor = ElasticBufferMonitor(dut).start()
    board = await check_elastic_buffer(dut, scenario, waves=os.environ.get("TIDESIM_WAVES"))
    monitor.stop()
    # the monitor saw every read edge the scoreboard checked, with the same values
    got = board.got["rd_clk"]
    seen = [monitor.recv_nowait() for _ in range(monitor.count())]
    assert len(seen) == len(scenario["rd_fs"])
    for name in ("occupancy", "count", "underflow", "adj_busy"):
        assert [t[name] for t in seen] == got[name].tolist(), name
