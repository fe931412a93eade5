"""cocotb tests of the DDC and the pump controller: $TIDESIM_SCENARIO (pickle)
says which block and with what."""

import os
import pickle

import cocotb

from tidesim.testing.cocotb import check_ddc, check_pump


@cocotb.test()
async def block_matches_the_model(dut):
    with open(os.environ["TIDESIM_SCENARIO"], "rb") as f:
        scenario = pickle.load(f)
    check = check_ddc if scenario["block"] == "ddc" else check_pump
    await check(dut, scenario, waves=os.environ.get("TIDESIM_WAVES"))
