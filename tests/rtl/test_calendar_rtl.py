"""The calendar unit's and the switch's RTL against tidesim's CalendarUnit,
on every cycle, with calendars rewritten mid-run (seeded), and a copy of the
RTL that swaps mid-metacycle caught at the cycle worked out from the
calendars alone."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from tidesim.calendars import Calendar
from tidesim.errors import ConfigError
from tidesim.rtl import calendar_scenario, random_calendar, rtl_files, rtl_path
from tidesim.testing.cocotb import simulate

pytestmark = pytest.mark.rtl
HERE = Path(__file__).resolve().parent
CALENDAR = rtl_path("tidesim_calendar")


def rewrites_of(rng, kind, ports, *, cycles, n, inputs=None):
    """``n`` random calendars at random cycles, each after the last swap was taken."""
    out, at = [], 0
    for _ in range(n):
        cal = random_calendar(rng, kind, ports, inputs=inputs)
        at += cal.depth + int(rng.integers(1, 40)) + 2 * 16 * 4  # past a whole metacycle
        if at >= cycles:
            break
        out.append((at, cal))
    return out


def run_rtl(tmp_path: Path, scenario: dict, *, sources, toplevel, parameters) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    with open(tmp_path / "scenario.pkl", "wb") as f:
        pickle.dump(scenario, f)
    return simulate(sources=sources, toplevel=toplevel, test_module="calendar_tb",
                    test_dir=HERE, build_dir=tmp_path / "build", parameters=parameters,
                    env={"TIDESIM_SCENARIO": str(tmp_path / "scenario.pkl"),
                         "TIDESIM_WAVES": str(tmp_path / "waves")},
                    vcd=tmp_path / "rtl.vcd")


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", ["gather", "scatter"])
def test_calendar_unit_follows_the_model(tmp_path, kind, seed):
    rng = np.random.default_rng(seed)
    first = random_calendar(rng, kind, 3)
    cycles = 3000
    rewrites = rewrites_of(rng, kind, 3, cycles=cycles, n=12)
    sc = calendar_scenario(first, rewrites, cycles=cycles)
    assert len(rewrites) >= 8 and sc["last_cycle"].sum() > 50
    report = run_rtl(tmp_path, sc, sources=[CALENDAR], toplevel="tidesim_calendar",
                     parameters={"PORTS": 3})
    assert report["passed"], report.get("mismatch")
    assert report["cycles"] == {"clk": len(sc["rst"])}


def test_switch_follows_the_model(tmp_path):
    rng = np.random.default_rng(7)
    inputs, outputs, cycles = 3, 2, 2000
    first = random_calendar(rng, "switch", outputs, inputs=inputs)
    sc = calendar_scenario(first, rewrites_of(rng, "switch", outputs, cycles=cycles, n=8,
                                              inputs=inputs), cycles=cycles)
    sc["unit"] = "switch"
    sc["in_words"] = rng.integers(0, 2**64, (len(sc["rst"]), inputs), dtype=np.uint64)
    report = run_rtl(tmp_path, sc, sources=rtl_files("tidesim_switch"), toplevel="tidesim_switch",
                     parameters={"INPUTS": inputs, "PORTS": outputs})
    assert report["passed"], report.get("mismatch")


@pytest.mark.parametrize("unit", ["gather", "scatter"])
def test_memory_units_follow_the_model(tmp_path, unit):
    """Gather: each link sends the word its calendar addresses (the node
    rewriting the memory meanwhile); scatter: each link's frame lands where
    its calendar says, and the node reads it back."""
    rng = np.random.default_rng(11)
    links, ma, cycles = 3, 4, 1500
    first = random_calendar(rng, unit, links, values=1 << ma)
    sc = calendar_scenario(first, rewrites_of(rng, unit, links, cycles=cycles, n=6),
                           cycles=cycles)
    E = len(sc["rst"])
    sc.update(unit=unit, ma=ma)
    if unit == "gather":
        sc["mem_wr_en"] = rng.random(E) < 0.3
        sc["mem_wr_addr"] = rng.integers(0, 1 << ma, E)
        sc["mem_wr_data"] = rng.integers(0, 2**64, E, dtype=np.uint64)
    else:
        sc["in_words"] = rng.integers(0, 2**64, (E, links), dtype=np.uint64)
        sc["mem_rd_addr"] = rng.integers(0, 1 << ma, E)
    report = run_rtl(tmp_path, sc, sources=rtl_files(f"tidesim_{unit}"),
                     toplevel=f"tidesim_{unit}", parameters={"PORTS": links, "MA": ma})
    assert report["passed"], report.get("mismatch")
    assert report["cycles"] == {"clk": E}


def test_swap_taken_mid_metacycle_is_caught(tmp_path):
    first = Calendar("gather", [((0,), 3), ((1,), 2)], ports=1)     # metacycle of 7
    second = Calendar("gather", [((5,), 0), ((6,), 1)], ports=1)
    swap_at = 7 * 5 + 2  # cycle 2 of metacycle 5
    sc = calendar_scenario(first, [(swap_at, second)], cycles=80)
    # right: swapped at the end of metacycle 5, its last cycle being 7 * 6 - 1
    assert sc["entry"][7 * 6 - 1] == 1 and sc["config_ports"][7 * 6, 0] == 5
    text = CALENDAR.read_text()
    old = "        end else if (!last_cycle) begin\n            swap_pending <= pending;"
    assert text.count(old) == 1
    bad = tmp_path / CALENDAR.name
    bad.write_text(text.replace(old, "        end else if (!last_cycle) begin\n"
                                     "            swap_pending <= pending;\n"
                                     "            if (pending) begin\n"
                                     "                active <= ~active;\n"
                                     "                depth_active <= next_depth;\n"
                                     "                entry <= 0;\n"
                                     "            end"))
    report = run_rtl(tmp_path, sc, sources=[bad], toplevel="tidesim_calendar",
                     parameters={"PORTS": 1})
    assert not report["passed"]
    m = report["mismatch"]
    # the bad unit swaps on the edge that ends the requesting cycle: the
    # next cycle shows the other calendar
    r = sc["reset_edges"]
    assert m["clock"] == "clk" and m["cycle"] == r + swap_at and m["signal"] in {"cfg", "entry"}
    gtkw = Path(report["waves"]["gtkw"])
    assert gtkw.read_text().count("clk.rtl.") == 4
    shot_of(gtkw, tmp_path / "compare.png")
    assert run_rtl(tmp_path / "as-is", sc, sources=[CALENDAR], toplevel="tidesim_calendar",
                   parameters={"PORTS": 1})["passed"]


def shot_of(gtkw: Path, png: Path) -> None:
    """GTKWave opens the side-by-side save file and draws waveforms."""
    import matplotlib.image as mpimg

    from tidesim.backends import _gtkwave

    if not _gtkwave.available():
        pytest.skip("gtkwave and Xvfb not installed (make sysdeps)")
    img = np.asarray(mpimg.imread(_gtkwave.grab(gtkw, png, timeout_s=120)))[..., :3]
    # the black wave area carries green (model) and yellow (RTL) traces
    wave = img[150:800, 400:1500]
    green = ((wave[..., 1] > 0.6) & (wave[..., 0] < 0.4)).mean()
    yellow = ((wave[..., 0] > 0.6) & (wave[..., 1] > 0.6) & (wave[..., 2] < 0.4)).mean()
    assert img.shape[1] >= 1200 and green > 1e-3 and yellow > 1e-3, (img.shape, green, yellow)


def test_a_rewrite_too_soon_is_refused():
    first = Calendar("gather", [((0,), 9)], ports=1)
    second = Calendar("gather", [((1,), 0), ((2,), 0)], ports=1)
    with pytest.raises(ConfigError, match=r"^rewrites\[1\].cycle: must leave 2 cycles"):
        calendar_scenario(first, [(5, second), (11, second)], cycles=40)
