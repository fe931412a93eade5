"""The elastic buffer's RTL against its model, on every edge of both clocks.

The clocks are two nodes of a tidesim run (ppm offsets, link latency); the
scoreboard compares occupancy, count, underflow, adj_busy, the data read,
full and overflow after every edge. Copies of the RTL with one deliberate
bug each show that the scoreboard catches it, at the cycle worked out here
from the edge times alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tidesim.errors import ConfigError
from tidesim.models import System, Topology
from tidesim.rtl import ElasticBufferModel, elastic_buffer_scenario, rtl_files, rtl_path
from tidesim.testing.cocotb import simulate

pytestmark = pytest.mark.rtl
HERE = Path(__file__).resolve().parent
RTL = rtl_path("tidesim_elastic_buffer")


def trace_of(seed: int, spread_ppm: float = 300.0, until_s: float = 2e-4):
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(-spread_ppm, spread_ppm, 2)
    latency_s = float(rng.uniform(5e-9, 2e-7))
    # drift and seeded wander too: the edges carry every change of frequency
    system = System(Topology.complete(2, latency_s=latency_s), offsets_ppm=offsets.tolist(),
                    drift_ppb_per_s=[2e5, -3e5], wander_ppb_per_sqrt_s=2e3, seed=seed)
    return system.run(until_s=until_s, record="full")


def run_rtl(tmp_path: Path, scenario: dict, source: Path = RTL) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    np.savez(tmp_path / "scenario.npz", **scenario)
    return simulate(sources=[source, *rtl_files(RTL.stem)[1:]],
                    toplevel="tidesim_elastic_buffer", test_module="eb_tb",
                    test_dir=HERE, build_dir=tmp_path / "build",
                    parameters={"ADDR": int(scenario["addr"]), "SYNC": int(scenario["sync"])},
                    env={"TIDESIM_SCENARIO": str(tmp_path / "scenario.npz"),
                         "TIDESIM_WAVES": str(tmp_path / "waves")},
                    vcd=tmp_path / "rtl.vcd")


def model_of(scenario: dict):
    sc = scenario
    return ElasticBufferModel(int(sc["addr"]), int(sc["sync"])).run(
        sc["wr_fs"], sc["rd_fs"], wr_en=sc["wr_en"], wr_data=sc["wr_data"], rd_en=sc["rd_en"],
        adj_frames=sc["adj_frames"], wr_rst=sc["wr_rst"], rd_rst=sc["rd_rst"])


@pytest.mark.parametrize(("seed", "addr", "sync"), [(0, 5, 2), (1, 4, 3), (2, 6, 2)])
def test_rtl_follows_the_model_with_seeded_adjustments(tmp_path, seed, addr, sync):
    trace = trace_of(seed)
    assert len(set(trace.segments(1)[1].tolist())) >= 2  # the receiver's frequency moved
    sc = elastic_buffer_scenario(trace, cycles=4000, addr=addr, sync=sync,
                                 adjustments=8, seed=seed, max_frames=(1 << addr) // 4)
    assert (sc["adj_frames"] > 0).any() and (sc["adj_frames"] < 0).any()
    report = run_rtl(tmp_path, sc)
    assert report["passed"], report.get("mismatch")
    assert report["cycles"] == {"rd_clk": 4000, "wr_clk": len(sc["wr_fs"])}


@pytest.mark.parametrize("direction", ["overflow", "underflow"])
def test_faults_are_raised_on_the_models_cycle(tmp_path, direction):
    # 2000 ppm apart: 2 frames of drift every 1000 cycles, past 8 frames
    fast, slow = 1000.0, -1000.0
    offsets = [fast, slow] if direction == "overflow" else [slow, fast]
    system = System(Topology.complete(2, latency_s=4e-8), offsets_ppm=offsets)
    sc = elastic_buffer_scenario(system.run(until_s=1.2e-4, record="full"), cycles=12000,
                                 addr=4)
    model = model_of(sc)
    # the drift's own fault comes first (pointers that wrapped may raise the other later)
    first_s = {name: None if model.first(name) is None else
               int((sc["wr_fs"] if name == "overflow" else sc["rd_fs"])[model.first(name)])
               for name in ("overflow", "underflow")}
    other = "underflow" if direction == "overflow" else "overflow"
    assert first_s[direction] is not None
    assert first_s[other] is None or first_s[other] > first_s[direction]
    report = run_rtl(tmp_path, sc)
    assert report["passed"], report.get("mismatch")


def mutated(tmp_path: Path, old: str, new: str) -> Path:
    text = RTL.read_text()
    assert text.count(old) == 1, old
    out = tmp_path / RTL.name
    out.write_text(text.replace(old, new))
    return out


def assert_caught(tmp_path, report, *, clock, cycle, signals):
    assert not report["passed"]
    m = report["mismatch"]
    assert (m["clock"], m["cycle"]) == (clock, cycle) and m["signal"] in signals, m
    assert m["message"].startswith(f"{clock} cycle {cycle} (t=")
    for name in ("model", "compare", "gtkw"):
        assert Path(report["waves"][name]).stat().st_size > 0
    assert (tmp_path / "rtl.vcd").stat().st_size > 0
    gtkw = Path(report["waves"]["gtkw"]).read_text()
    assert f" {m['time_fs']} " in gtkw.split("\n*", 1)[1].splitlines()[0]  # the marker
    assert f"{clock}.rtl.{m['signal']}" in gtkw


def test_full_flag_off_by_one_is_caught(tmp_path):
    sc = elastic_buffer_scenario(trace_of(4), cycles=1500, addr=4)
    # fill the buffer to the brim: depth 16, centred at 8, +8 frames
    k = int(np.flatnonzero(sc["rd_en"])[0]) + 20
    sc["adj_frames"][k] = 8
    model = model_of(sc)
    # the buggy flag rises one frame early: where the write side first sees depth - 1
    want = int(np.flatnonzero(model.wr_occupancy == 15)[0])
    assert not model.full[want]
    assert run_rtl(tmp_path / "as-is", sc)["passed"]  # the scenario itself is fine
    src = mutated(tmp_path, "assign full = wr_level == DEPTH;",
                  "assign full = wr_level == DEPTH - 1;")
    assert_caught(tmp_path, run_rtl(tmp_path, sc, src), clock="wr_clk", cycle=want,
                  signals={"full"})


def test_missing_synchroniser_stage_is_caught(tmp_path):
    sc = elastic_buffer_scenario(trace_of(5), cycles=600, addr=4, sync=3)
    wr, rd = sc["wr_fs"], sc["rd_fs"]
    # the first frame written, after both resets
    w0 = int(np.flatnonzero(~sc["wr_rst"])[0])
    # with SYNC stages, read edge k shows the writes before edge k - SYNC + 1;
    # one stage short, before edge k - SYNC + 2: they first differ at the
    # first k whose edge k - SYNC + 2 comes after that write
    want = int(np.searchsorted(rd, wr[w0], side="right")) + 3 - 2
    assert run_rtl(tmp_path / "as-is", sc)["passed"]
    src = mutated(tmp_path, "tidesim_sync #(.W(ADDR + 1), .STAGES(SYNC)) wptr_sync",
                  "tidesim_sync #(.W(ADDR + 1), .STAGES(SYNC - 1)) wptr_sync")
    assert_caught(tmp_path, run_rtl(tmp_path, sc, src), clock="rd_clk", cycle=want,
                  signals={"occupancy", "count"})


def test_model_is_the_closed_form(tmp_path):
    """Read-side occupancy from edge counts alone: the writes before edge
    k - SYNC + 1, less the reads up to edge k (plain numpy, no stepping)."""
    sc = elastic_buffer_scenario(trace_of(6), cycles=5000, addr=5, sync=2)
    model = model_of(sc)
    wr, rd, sync = sc["wr_fs"], sc["rd_fs"], 2
    k = np.arange(len(rd))
    seen_at = rd[np.maximum(k - sync + 1, 0)]
    writes = np.searchsorted(wr, seen_at, side="left") - 2  # edges in reset write nothing
    writes = np.where(k - sync + 1 >= 2, np.maximum(writes, 0), 0)
    reads = np.cumsum(sc["rd_en"] & ~sc["rd_rst"])
    assert np.array_equal(model.occupancy, (writes - reads) % 64)
    # and the data read is the frame written that many reads ago
    valid = model.rd_data_valid
    assert valid.sum() > 4000
    assert np.array_equal(model.rd_data[valid], sc["wr_data"][2 + reads[valid] - 1])


def test_bad_model_input_is_one_line():
    model = ElasticBufferModel(addr=3)
    with pytest.raises(ConfigError, match=r"^rd_fs: must be increasing, got 'step -5 fs'$"):
        model.run([10, 20], [10, 5])
    with pytest.raises(ConfigError, match=r"^rd_en: must be one value per edge \(2\)"):
        model.run([10, 20], [10, 30], rd_en=[1])
    with pytest.raises(ConfigError,
                       match=r"^elastic_buffer.sync: must be an integer in \[2, 8\], got 1$"):
        ElasticBufferModel(sync=1)


def test_simultaneous_edges_see_each_others_old_values(tmp_path):
    """Both clocks at one frequency, edges at the same instants: each domain
    samples the other's registers as they were before the edge."""
    n = 400
    t = 8_000_000 * np.arange(1, n + 1, dtype=np.int64)  # 125 MHz, in fs
    model = ElasticBufferModel(addr=4, sync=2)
    rd_en = model.start_reading(t, t)
    adj = np.zeros(n, dtype=np.int64)
    adj[[100, 200]] = [3, -2]
    sc = {"wr_fs": t, "wr_rst": np.arange(n) < 2, "wr_en": np.ones(n, dtype=bool),
          "wr_data": np.arange(n, dtype=np.uint64), "rd_fs": t.copy(),
          "rd_rst": np.arange(n) < 2, "rd_en": rd_en, "adj_frames": adj,
          "addr": np.int64(4), "sync": np.int64(2)}
    out = model_of(sc)
    # two stages each way and the one-edge lag of a tie: steady at half depth
    assert set(out.occupancy[150:190].tolist()) == {int(out.occupancy[150])}
    assert run_rtl(tmp_path, sc)["passed"]
