"""cocotb test of the elastic buffer: the scenario from $TIDESIM_SCENARIO (npz)."""

import os

import cocotb
import numpy as np

from tidesim.testing.cocotb import check_elastic_buffer


@cocotb.test()
async def elastic_buffer_matches_the_model(dut):
    scenario = dict(np.load(os.environ["TIDESIM_SCENARIO"]))
    await check_elastic_buffer(dut, scenario, waves=os.environ.get("TIDESIM_WAVES"))
