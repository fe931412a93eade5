"""cocotb test of a calendar unit or switch: the scenario from $TIDESIM_SCENARIO (pickle)."""

import os
import pickle

import cocotb

from tidesim.testing.cocotb import check_calendar


@cocotb.test()
async def calendar_matches_the_model(dut):
    with open(os.environ["TIDESIM_SCENARIO"], "rb") as f:
        scenario = pickle.load(f)
    await check_calendar(dut, scenario, waves=os.environ.get("TIDESIM_WAVES"))
