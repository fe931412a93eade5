"""cocotb test of a calendar unit or switch: the scenario from $TIDESIM_SCENARIO (pickle)."""

import os
import pickle

import cocotb

from tidesim.testing.cocotb import CalendarMonitor, check_calendar


@cocotb.test()
async def calendar_matches_the_model(dut):
    with open(os.environ["TIDESIM_SCENARIO"], "rb") as f:
        scenario = pickle.load(f)
    monitor = CalendarMonitor(dut).start()
    board = await check_calendar(dut, scenario, waves=os.environ.get("TIDESIM_WAVES"))
    monitor.stop()
    seen = [monitor.recv_nowait() for _ in range(monitor.count())]
    assert [t["entry"] for t in seen] == board.got["clk"]["entry"].tolist()
