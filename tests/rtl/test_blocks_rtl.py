"""The domain difference counter and the pump controller, RTL against model.

The DDC model is a closed form of edge counts; the pump model is checked
against tidesim's own quantized actuator (a physical run's corrections,
step for step) before the RTL is checked against it.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from tidesim.controllers import Pump
from tidesim.errors import ConfigError
from tidesim.models import Actuator, System, Topology
from tidesim.rtl import PumpModel, ddc_model, link_edges_fs, rtl_files, rtl_path
from tidesim.testing.cocotb import simulate

pytestmark = pytest.mark.rtl
HERE = Path(__file__).resolve().parent


def run_rtl(tmp_path: Path, scenario: dict, *, module: str, parameters: dict,
            source: Path | None = None) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    with open(tmp_path / "scenario.pkl", "wb") as f:
        pickle.dump(scenario, f)
    return simulate(sources=[source or rtl_path(module), *rtl_files(module)[1:]],
                    toplevel=module,
                    test_module="blocks_tb", test_dir=HERE, build_dir=tmp_path / "build",
                    parameters=parameters,
                    env={"TIDESIM_SCENARIO": str(tmp_path / "scenario.pkl"),
                         "TIDESIM_WAVES": str(tmp_path / "waves")},
                    vcd=tmp_path / "rtl.vcd")


def ddc_scenario(seed: int, cycles: int = 3000) -> dict:
    rng = np.random.default_rng(seed)
    system = System(Topology.complete(2, latency_s=float(rng.uniform(1e-8, 1e-7))),
                    offsets_ppm=rng.uniform(-500, 500, 2).tolist())
    wr_fs, rd_fs = link_edges_fs(system.run(until_s=5e-5, record="full"), 0, 1, cycles=cycles)
    # the link comes and goes: seeded gaps on both sides
    return {"block": "ddc", "wr_fs": wr_fs, "rd_fs": rd_fs,
            "wr_en": rng.random(len(wr_fs)) > 0.05, "rd_en": rng.random(len(rd_fs)) > 0.05,
            "sync": 2, "width": 16}


@pytest.mark.parametrize("seed", [0, 1])
def test_ddc_follows_the_model(tmp_path, seed):
    sc = ddc_scenario(seed)
    want = ddc_model(sc["wr_fs"], sc["rd_fs"], wr_en=sc["wr_en"], rd_en=sc["rd_en"], width=16)
    assert len(set(want.tolist())) > 3  # it moves
    report = run_rtl(tmp_path, sc, module="tidesim_ddc", parameters={"W": 16, "SYNC": 2})
    assert report["passed"], report.get("mismatch")


def test_ddc_wraps_signed():
    wr = 8_000_000 * np.arange(1, 40, dtype=np.int64)
    rd = wr + 3_000_000
    got = ddc_model(wr, rd, rd_en=np.zeros(len(rd), dtype=bool), width=4)
    # 4 bits: after 7 frames the count wraps to -8
    assert got.min() == -8 and got.max() == 7


def rig_run(until_s: float = 0.05):
    system = System(Topology.complete(3), offsets_ppm=[-3.0, 0.5, 2.0],
                    controller=Pump(kp=2e-8, target_ppm=0.05),
                    actuator=Actuator("quantized", step_ppb=10))
    return system.run(until_s=until_s, record="full")


def node_counts(trace, j: int) -> np.ndarray:
    links = [ln for ln in range(trace.n_links) if trace.links[ln, 1] == j]
    return np.stack([trace.measured(ln) for ln in links], axis=1)


def test_pump_model_is_tidesims_quantized_actuator():
    """Fed a run's counts, one update an edge, the model's position is the
    run's applied correction in steps, at every sample of every node."""
    tr = rig_run()
    model = PumpModel(period=1, gain_steps_per_frame=2e-8 / 10e-9, target_steps=0.05e-6 / 10e-9)
    for j in range(3):
        counts = node_counts(tr, j)
        out = model.run(np.vstack([np.zeros((2, counts.shape[1]), dtype=np.int64), counts]))
        steps = np.rint(tr.samp_c[j, :tr.n_samp[j]] / 10e-9).astype(np.int64)
        assert np.array_equal(out["position"][2:], steps)
        assert out["finc"].sum() + out["fdec"].sum() >= 5


def pump_scenario(period: int = 8):
    tr = rig_run(0.03)
    counts = np.repeat(node_counts(tr, 2), period, axis=0)
    # a half-step target: the desired value lands exactly half a step from
    # the position, where neither pulse may come
    model = PumpModel(period=period, gain_steps_per_frame=2, target_steps=5.5)
    return {"block": "pump", "counts": counts, "model": model, "cw": 16}, model


def test_pump_follows_the_model(tmp_path):
    sc, model = pump_scenario()
    out = model.run(sc["counts"])
    assert out["finc"].sum() + out["fdec"].sum() >= 5
    assert out["update"].sum() == (len(sc["counts"]) - 2) // 8
    report = run_rtl(tmp_path, sc, module="tidesim_pump",
                     parameters={"N": 2, "CW": 16, **model.parameters})
    assert report["passed"], report.get("mismatch")


def test_pump_pulsing_every_cycle_is_caught(tmp_path):
    """A copy that ignores the update period pulses on the cycle after reset."""
    sc, model = pump_scenario()
    text = rtl_path("tidesim_pump").read_text()
    old = "if (tick == PERIOD - 1) begin"
    assert text.count(old) == 1
    bad = tmp_path / "tidesim_pump.v"
    bad.write_text(text.replace(old, "if (1'b1) begin"))
    report = run_rtl(tmp_path, sc, module="tidesim_pump", source=bad,
                     parameters={"N": 2, "CW": 16, **model.parameters})
    m = report["mismatch"]
    assert not report["passed"] and m["cycle"] == 2 and m["signal"] in {"finc", "fdec", "update"}


def test_pump_gain_must_be_exact():
    with pytest.raises(ConfigError, match=r"^pump.gain_steps_per_frame: must be a multiple "
                                          r"of 1/256 \(exact in fixed point\), got 0.001$"):
        PumpModel(gain_steps_per_frame=0.001)


def test_every_block_is_plain_verilog_2005(tmp_path):
    """Each block compiles (with the blocks it instantiates) as Verilog-2005,
    with every warning on and none given."""
    import subprocess

    from tidesim.rtl import rtl_sources

    sources = rtl_sources()
    assert {p.stem for p in sources} == {"tidesim_calendar", "tidesim_ddc",
                                         "tidesim_elastic_buffer", "tidesim_pump",
                                         "tidesim_switch", "tidesim_gather", "tidesim_scatter",
                                         "tidesim_sync"}
    assert rtl_files("tidesim_switch")[1:] == [rtl_path("tidesim_calendar")]
    assert rtl_files("tidesim_ddc")[1:] == [rtl_path("tidesim_sync")]
    for src in sources:
        res = subprocess.run(["iverilog", "-g2005", "-Wall", "-I", str(src.parent),
                              "-o", str(tmp_path / "a.out"),
                              *map(str, rtl_files(src.stem))],
                             capture_output=True, text=True)
        assert res.returncode == 0 and res.stdout + res.stderr == "", (src.name, res.stderr)
