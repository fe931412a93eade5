"""Tests of tidesim.config and tidesim.presets (no simulation runs)."""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from pathlib import Path

import pytest

from tidesim.config import (
    DEFAULT_UNTIL_S,
    RunConfig,
    build_system,
    deep_merge,
    load_config,
    read_toml,
    validate,
)
from tidesim.controllers import PI
from tidesim.errors import ConfigError
from tidesim.models.parts import Adjustment
from tidesim.models.system import System
from tidesim.presets import PRESETS, RIG_F_NOM_HZ, preset_names, rig_start_s

DOCS = Path(__file__).resolve().parents[1] / "docs" / "config.md"

LINE3 = {"topology": {"kind": "line", "n": 3}}


def _with(base: dict, section: str, **values) -> dict:
    """``base`` with ``values`` set in ``[section]`` (a new dict)."""
    return deep_merge(base, {section: values})


def _error(cfg: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    return info.value


# ------------------------------------------------------------------------ loading


def test_load_config_reads_a_file(tmp_path: Path):
    path = tmp_path / "run.toml"
    path.write_text('name = "x"\n[topology]\nkind = "line"\nn = 3\n', encoding="utf-8")
    assert load_config(path) == {"name": "x", "topology": {"kind": "line", "n": 3}}
    assert load_config(str(path)) == load_config(path)


def test_missing_file_names_the_path(tmp_path: Path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="nope.toml") as info:
        load_config(path)
    assert "existing file" in str(info.value)


def test_directory_is_not_a_config(tmp_path: Path):
    with pytest.raises(ConfigError, match="must be a file"):
        read_toml(tmp_path)


def test_toml_syntax_error_is_one_line(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text("[run]\nuntil_s = = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert "valid TOML" in message and "line 2" in message


def test_non_utf8_file(tmp_path: Path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="latin1.toml"):
        load_config(path)


def test_load_config_does_not_modify_its_input():
    user = {"preset": "hitl8", "clock": {"f_nom_hz": 100e6}}
    cfg = load_config(user)
    cfg["clock"]["theta0"] = 0.5
    cfg["control"]["delay_ticks"] = 7
    assert user == {"preset": "hitl8", "clock": {"f_nom_hz": 100e6}}
    assert PRESETS["hitl8"]["clock"]["theta0"] == 0.1
    assert PRESETS["hitl8"]["control"]["delay_ticks"] == 0


# ------------------------------------------------------------------------- presets


def test_preset_merge_is_deep_and_user_keys_win():
    cfg = load_config({"preset": "hitl8", "clock": {"f_nom_hz": 100e6}, "run": {"until_s": 1.0}})
    assert cfg["preset"] == "hitl8"
    assert cfg["clock"]["f_nom_hz"] == 100e6
    assert cfg["clock"]["offsets_ppm"] == {"random_ppm": 100.0}  # kept from the preset
    assert cfg["run"] == {"until_s": 1.0, "fidelity": "event"}
    assert cfg["control"] == PRESETS["hitl8"]["control"]


def test_preset_lists_are_replaced_not_merged():
    cfg = load_config({"preset": "hitl-line4", "clock": {"offsets_ppm": [1.0, 2.0, 3.0, 4.0]}})
    assert cfg["clock"]["offsets_ppm"] == [1.0, 2.0, 3.0, 4.0]


def test_changing_a_kind_drops_the_presets_kind_specific_keys():
    cfg = load_config({"preset": "hitl8", "topology": {"kind": "torus", "dims": [2, 3]}})
    assert cfg["topology"] == {"kind": "torus", "dims": [2, 3], "latency_s": 1e-8}
    cfg = load_config({"preset": "hitl8", "controller": {"kind": "none"}})
    assert cfg["controller"] == {"kind": "none"}
    run_cfg = validate(cfg)
    assert run_cfg.controller_kind == "none"


def test_same_kind_merges_key_by_key():
    cfg = load_config({"preset": "hitl8", "topology": {"kind": "complete", "n": 4}})
    assert cfg["topology"] == {"kind": "complete", "n": 4, "latency_s": 1e-8}


def test_merging_twice_gives_the_same_config():
    cfg = load_config({"preset": "hitl-diamond", "topology": {"kind": "diamond", "latency_s": 0}})
    assert load_config(cfg) == cfg


@pytest.mark.parametrize("source", ["preset", "file"])
def test_unknown_preset(source: str, tmp_path: Path):
    if source == "file":
        path = tmp_path / "cfg.toml"
        path.write_text('preset = "hitl9"\n', encoding="utf-8")
        cfg = path
    else:
        cfg = {"preset": "hitl9"}
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    err = info.value
    assert err.field == "preset" and err.value == "hitl9"
    assert "hitl8" in err.expected and "callisto-test" in err.expected


def test_preset_names():
    names = preset_names()
    assert names[0] == "hitl8"
    assert set(names) == set(PRESETS)
    assert {
        "hitl-diamond",
        "hitl-complete3",
        "hitl-cycle5",
        "hitl-torus2x3",
        "hitl-star7",
        "hitl-line4",
        "hitl-hourglass3",
        "callisto-test",
    } <= set(names)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_validates_and_builds(name: str):
    run_cfg = validate(load_config({"preset": name}))
    assert isinstance(run_cfg, RunConfig)
    assert run_cfg.preset == name and run_cfg.name == name
    system = build_system(run_cfg)
    assert isinstance(system, System)
    assert system.topology.n_nodes == run_cfg.n_nodes


RIG_EXPERIMENTS = {
    # name: (nodes, offsets_ppm, starts in millions of 125 MHz cycles)
    "hitl-diamond": (4, [-10, -5, 20, 30], [0, 10, 200, 3]),
    "hitl-complete3": (3, [-100, 0, 100], [200, 0, 200]),
    "hitl-cycle5": (5, [0, 5, 10, 15, 20], [0, 10, 0, 100, 0]),
    "hitl-torus2x3": (6, [-30, -35, -40, 40, 35, 30], [0, 0, 0, 100, 100, 100]),
    "hitl-star7": (8, [0, 10, -10, 20, -20, 30, -30, 40], [0, 40, 80, 120, 160, 200, 240, 280]),
    "hitl-line4": (4, [100, 0, 0, -100], [200, 0, 0, 200]),
    "hitl-hourglass3": (6, [100, -100, 100, -100, 100, -100], [0, 200, 0, 200, 0, 200]),
}


@pytest.mark.parametrize("name", sorted(RIG_EXPERIMENTS))
def test_rig_experiment_presets(name: str):
    nodes, offsets, starts = RIG_EXPERIMENTS[name]
    rig = validate({"preset": "hitl8"})
    run_cfg = validate({"preset": name})
    assert run_cfg.n_nodes == nodes
    assert run_cfg.offsets_ppm == tuple(float(x) for x in offsets)
    assert run_cfg.start_s == pytest.approx(tuple(d * 1e6 / 125e6 for d in starts))
    assert run_cfg.until_s == 60.0
    for key in (
        "f_nom_hz",
        "update_period_ticks",
        "control_delay_ticks",
        "measure",
        "buffer",
        "stability",
        "actuator",
        "controller_kind",
        "kp",
        "ki",
    ):
        assert getattr(run_cfg, key) == getattr(rig, key), key


def test_hitl8_preset():
    run_cfg = validate({"preset": "hitl8"})
    assert run_cfg.n_nodes == 8 and run_cfg.topology.n_links == 56
    assert run_cfg.f_nom_hz == 125e6
    assert run_cfg.update_period_ticks / run_cfg.f_nom_hz == pytest.approx(200e-6)
    assert run_cfg.measure == "ddc"
    assert (run_cfg.buffer.depth, run_cfg.buffer.arm) == (32, "all_stable")
    assert (run_cfg.stability.margin, run_cfg.stability.window_s) == (4, 2.0)
    assert run_cfg.until_s == 60.0
    assert len(run_cfg.offsets_ppm) == 8
    assert all(-100 <= x <= 100 for x in run_cfg.offsets_ppm)


def test_callisto_preset():
    run_cfg = validate({"preset": "callisto-test"})
    assert run_cfg.f_nom_hz == 1.0
    assert run_cfg.n_nodes == 3 and run_cfg.topology.n_links == 6
    assert [x * 1e-6 for x in run_cfg.offsets_ppm] == pytest.approx([1e-4, -1e-4, 0.0])
    assert run_cfg.topology.latency_s.tolist() == [5000.0] * 6
    assert run_cfg.theta0 == 0.1
    assert (run_cfg.update_period_ticks, run_cfg.control_delay_ticks) == (100_000, 1000)
    assert run_cfg.buffer.depth == 0 and run_cfg.buffer.reference_frames == 50
    assert (run_cfg.kp, run_cfg.ki) == (2e-8, 1e-15)
    assert run_cfg.until_s == 2e8
    assert run_cfg.stability.window_s == 2e7


def test_rig_start_s():
    assert rig_start_s(200, 0, 3) == [1.6, 0.0, 0.024]
    assert RIG_F_NOM_HZ == 125e6


# ---------------------------------------------------------------------- validation


def test_defaults():
    run_cfg = validate(LINE3)
    assert run_cfg.name == "custom" and run_cfg.preset is None and run_cfg.seed == 0
    assert (run_cfg.until_s, run_cfg.until_cycles) == (DEFAULT_UNTIL_S, None)
    assert run_cfg.fidelity == "event"
    assert run_cfg.f_nom_hz == 125e6
    assert run_cfg.offsets_ppm == 0.0 and run_cfg.theta0 == 0.1 and run_cfg.start_s == 0.0
    assert (run_cfg.update_period_ticks, run_cfg.control_delay_ticks) == (25_000, 0)
    assert run_cfg.measure == "buffer"
    assert (run_cfg.controller_kind, run_cfg.kp, run_cfg.ki) == ("pi", 2e-8, 0.0)
    assert run_cfg.actuator.kind == "continuous" and run_cfg.actuator.step_ppb == 10.0
    assert run_cfg.buffer.depth == 32 and run_cfg.buffer.reference_frames == 16
    assert run_cfg.topology.latency_s.tolist() == [1e-8] * 4


def test_run_config_is_frozen():
    run_cfg = validate(LINE3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run_cfg.seed = 3  # type: ignore[misc]


def test_topology_kind_is_required():
    err = _error({"clock": {"theta0": 0.5}})
    assert err.field == "topology.kind"


@pytest.mark.parametrize(
    ("cfg", "field", "hint"),
    [
        ({**LINE3, "colour": 1}, "colour", None),
        ({**LINE3, "sed": 1}, "sed", "seed"),
        (_with(LINE3, "clock", offset_ppm=5.0), "clock.offset_ppm", "offsets_ppm"),
        (_with(LINE3, "run", until=1.0), "run.until", "until_s"),
        (_with(LINE3, "topology", latency=0.0), "topology.latency", "latency_s"),
        (
            _with(LINE3, "topology", latency_s={"distribution": "uniform", "low": 0, "high_s": 1}),
            "topology.latency_s.low",
            "low_s",
        ),
        (
            _with(LINE3, "clock", offsets_ppm={"random": 5}),
            "clock.offsets_ppm.random",
            "random_ppm",
        ),
        (_with(LINE3, "clock", offsets_ppm={"spread": 5}), "clock.offsets_ppm.spread", None),
        (
            _with(LINE3, "buffer", adjust=[{"link": [0, 1], "at_s": 0.0, "frame": 1}]),
            "buffer.adjust[0].frame",
            "frames",
        ),
    ],
)
def test_unknown_keys(cfg: dict, field: str, hint: str | None):
    err = _error(cfg)
    assert err.field == field
    assert "is not a known key" in err.expected
    if hint is None:
        assert "did you mean" not in err.expected
    else:
        assert f"(did you mean {hint!r}?)" in err.expected


def test_unknown_key_message_format():
    err = _error(_with(LINE3, "clock", offset_ppm=[1.0, 2.0]))
    assert str(err) == (
        "clock.offset_ppm: is not a known key (did you mean 'offsets_ppm'?), got [1.0, 2.0]"
    )


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("control", "update_period_ticks", "25000", "must be an integer"),
        ("control", "update_period_ticks", 25000.0, "must be an integer"),
        ("control", "update_period_ticks", True, "must be an integer"),
        ("control", "update_period_ticks", 1, "in [2, 67108864]"),
        ("control", "delay_ticks", -1, ">= 0"),
        ("control", "measure", "phase", "one of"),
        ("clock", "f_nom_hz", True, "must be a number"),
        ("clock", "f_nom_hz", 0.0, "> 0"),
        ("clock", "f_nom_hz", math.inf, "finite"),
        ("clock", "drift_ppb_per_s", math.nan, "finite"),
        ("clock", "wander_ppb_per_sqrt_s", -1.0, ">= 0"),
        ("clock", "theta0", 1.0, "[0, 1)"),
        ("clock", "theta0", -0.1, "[0, 1)"),
        ("clock", "start_s", -1.0, ">= 0"),
        ("clock", "offsets_ppm", "100", "must be a number"),
        ("run", "until_s", 0.0, "> 0"),
        ("run", "until_s", False, "must be a number"),
        ("run", "until_cycles", 0, ">= 1"),
        ("run", "fidelity", "fast", "one of"),
        ("controller", "kind", "pd", "one of"),
        ("controller", "kp", -1e-8, ">= 0"),
        ("controller", "ki", math.nan, "finite"),
        ("actuator", "kind", "stepper", "one of"),
        ("actuator", "step_ppb", 0.0, "> 0"),
        ("buffer", "depth", 24, "power of two"),
        ("buffer", "depth", 1, ">= 2"),
        ("buffer", "depth", 32.0, "power of two"),
        ("buffer", "reference", 40, "[0, 32]"),
        ("buffer", "arm", "never", "one of"),
        ("buffer", "auto_centre", True, "must be an integer"),
        ("buffer", "auto_centre", -1, ">= 0"),
        ("buffer", "adjust", {"link": [0, 1]}, "list"),
        ("stability", "margin", 4.5, "must be an integer"),
        ("stability", "window_s", -2.0, ">= 0"),
        ("topology", "n", 1, ">= 2"),
        ("topology", "n", 3.0, "must be an integer"),
        ("topology", "latency_s", -1e-9, ">= 0"),
        ("topology", "latency_s", math.nan, "number"),
        ("topology", "latency_s", [1e-8], "one entry per edge (2)"),
    ],
)
def test_bad_values(section: str, key: str, value, expected: str):
    err = _error(_with(LINE3, section, **{key: value}))
    assert err.field.startswith(f"{section}.{key}")
    assert expected in err.expected
    assert "\n" not in str(err)


def test_section_must_be_a_table():
    err = _error({**LINE3, "clock": 5})
    assert (err.field, err.value) == ("clock", 5)


@pytest.mark.parametrize("key", ["offsets_ppm", "drift_ppb_per_s", "theta0", "start_s"])
def test_per_node_lists(key: str):
    ok = validate(_with(LINE3, "clock", **{key: [0.0, 0.5, 0.25]}))
    assert getattr(ok, key) == (0.0, 0.5, 0.25)
    err = _error(_with(LINE3, "clock", **{key: [0.0, 0.5]}))
    assert err.field == f"clock.{key}"
    assert err.expected == "must have one entry per node (3)"


def test_per_node_entry_is_named_by_index():
    err = _error(_with(LINE3, "clock", theta0=[0.1, 0.2, 1.5]))
    assert (err.field, err.value) == ("clock.theta0[2]", 1.5)
    err = _error(_with(LINE3, "clock", offsets_ppm=[0.0, True, 1.0]))
    assert err.field == "clock.offsets_ppm[1]"


def test_random_offsets_are_seeded():
    cfg = _with(LINE3, "clock", offsets_ppm={"random_ppm": 50})
    a, b = validate(cfg), validate(cfg)
    c = validate({**cfg, "seed": 1})
    assert a.offsets_ppm == b.offsets_ppm != c.offsets_ppm
    assert len(a.offsets_ppm) == 3 and all(-50 <= x <= 50 for x in a.offsets_ppm)
    err = _error(_with(LINE3, "clock", offsets_ppm={}))
    assert err.field == "clock.offsets_ppm.random_ppm"


def test_seed_must_be_a_non_negative_integer():
    assert _error({**LINE3, "seed": -1}).field == "seed"
    assert _error({**LINE3, "seed": 1.5}).field == "seed"


def test_name():
    assert validate({**LINE3, "name": "demo"}).name == "demo"
    assert _error({**LINE3, "name": ""}).field == "name"
    assert _error({**LINE3, "name": 3}).field == "name"


def test_until_s_and_until_cycles_are_exclusive():
    err = _error(_with(LINE3, "run", until_s=1.0, until_cycles=10))
    assert err.field == "run.until_cycles"
    run_cfg = validate(_with(LINE3, "run", until_cycles=10))
    assert (run_cfg.until_s, run_cfg.until_cycles) == (None, 10)


def test_delay_must_be_below_the_update_period():
    err = _error(_with(LINE3, "control", update_period_ticks=100, delay_ticks=100))
    assert err.field == "control.delay_ticks"
    assert "(100)" in err.expected
    assert validate(_with(LINE3, "control", update_period_ticks=100, delay_ticks=99))


def test_controller_kinds():
    assert validate(_with(LINE3, "controller", kind="p", kp=1e-7)).ki == 0.0
    err = _error(_with(LINE3, "controller", kind="p", ki=1e-12))
    assert err.field == "controller.ki" and "'p'" in err.expected
    err = _error(_with(LINE3, "controller", kind="none", kp=1e-7))
    assert err.field == "controller.kp"
    assert build_system(validate(_with(LINE3, "controller", kind="none"))).controller is None
    system = build_system(validate(_with(LINE3, "controller", kind="pi", kp=3e-8, ki=1e-14)))
    assert system.controller == PI(kp=3e-8, ki=1e-14)
    # the period reaches the integrator from the system, given once
    assert system.compile_controller().params.tolist() == [3e-8, 1e-14, 25_000.0]


def test_topology_errors_come_from_make_topology():
    err = _error({"topology": {"kind": "ring", "n": 4}})
    assert err.field == "topology.kind"
    err = _error({"topology": {"kind": "line"}})
    assert err.field == "topology.n"
    err = _error({"topology": {"kind": "diamond", "n": 4}})
    assert err.field == "topology.n"


def test_disconnected_topology_quotes_the_edges():
    err = _error({"topology": {"kind": "edges", "edges": [[0, 1], [2, 3]]}})
    assert err.field == "topology"
    assert err.value == {"kind": "edges", "edges": [[0, 1], [2, 3]]}
    assert "connected" in err.expected


def test_latency_forms():
    per_edge = validate(_with(LINE3, "topology", latency_s=[1e-8, 2e-8]))
    assert sorted(per_edge.topology.latency_s.tolist()) == [1e-8, 1e-8, 2e-8, 2e-8]
    dist = {"distribution": "uniform", "low_s": 1e-8, "high_s": 2e-8}
    cfg = _with(LINE3, "topology", latency_s=dist)
    drawn = validate(cfg).topology.latency_s.tolist()
    assert all(1e-8 <= x <= 2e-8 for x in drawn)
    assert drawn == validate(cfg).topology.latency_s.tolist()
    err = _error(_with(LINE3, "topology", latency_s={**dist, "high_s": 0.0}))
    assert err.field == "topology.latency_s.high_s"


def test_adjustments_resolve_to_link_indices():
    cfg = _with(
        LINE3,
        "buffer",
        auto_centre=2,
        adjust=[
            {"link": [0, 1], "at_s": 1e-3, "frames": 4},
            {"link": [2, 1], "at_s": 0, "frames": -2},
        ],
    )
    run_cfg = validate(cfg)
    topo = run_cfg.topology
    assert run_cfg.buffer.auto_centre == 2
    assert run_cfg.buffer.adjustments == (
        Adjustment(link=topo.link_index(0, 1), at_s=1e-3, frames=4),
        Adjustment(link=topo.link_index(2, 1), at_s=0.0, frames=-2),
    )


@pytest.mark.parametrize(
    ("adjust", "field"),
    [
        ({"link": [0, 2], "at_s": 0.0, "frames": 1}, "buffer.adjust[0].link"),
        ({"link": [0, 9], "at_s": 0.0, "frames": 1}, "buffer.adjust[0].link"),
        ({"link": 0, "at_s": 0.0, "frames": 1}, "buffer.adjust[0].link"),
        ({"link": [0, 1], "at_s": -1.0, "frames": 1}, "buffer.adjust[0].at_s"),
        ({"link": [0, 1], "at_s": 0.0, "frames": 0}, "buffer.adjust[0].frames"),
        ({"link": [0, 1], "at_s": 0.0, "frames": 1.5}, "buffer.adjust[0].frames"),
        ({"link": [0, 1], "frames": 1}, "buffer.adjust[0].at_s"),
        (5, "buffer.adjust[0]"),
    ],
)
def test_bad_adjustments(adjust, field: str):
    assert _error(_with(LINE3, "buffer", adjust=[adjust])).field == field


def test_build_system_passes_every_value():
    cfg = {
        "name": "all",
        "seed": 3,
        "topology": {"kind": "cycle", "n": 3, "latency_s": 2e-8},
        "clock": {
            "f_nom_hz": 100e6,
            "offsets_ppm": [1.0, 2.0, 3.0],
            "drift_ppb_per_s": 0.5,
            "wander_ppb_per_sqrt_s": 0.25,
            "theta0": [0.0, 0.25, 0.5],
            "start_s": [0.0, 1e-3, 2e-3],
        },
        "control": {"update_period_ticks": 1000, "delay_ticks": 10, "measure": "ddc"},
        "actuator": {"kind": "quantized", "step_ppb": 100.0},
        "buffer": {"depth": 64, "reference": 20, "arm": "stable"},
        "stability": {"margin": 2, "window_s": 0.5},
    }
    run_cfg = validate(cfg)
    system = build_system(run_cfg)
    assert system.name == "all" and system.seed == 3
    assert system.f_nom_hz == 100e6
    assert system.offsets_ppm.tolist() == [1.0, 2.0, 3.0]
    assert system.drift_ppb_per_s.tolist() == [0.5] * 3
    assert system.wander_ppb_per_sqrt_s == 0.25
    assert system.theta0.tolist() == [0.0, 0.25, 0.5]
    assert system.start_s.tolist() == [0.0, 1e-3, 2e-3]
    assert (system.update_period_ticks, system.control_delay_ticks) == (1000, 10)
    assert system.measure == "ddc"
    assert system.actuator == run_cfg.actuator and system.actuator.kind == "quantized"
    assert system.buffer.reference_frames == 20 and system.buffer.arm == "stable"
    assert system.stability.margin == 2
    assert system.topology.latency_s.tolist() == [2e-8] * 6


# ---------------------------------------------------------------------------- docs


def _toml_blocks(text: str) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)


def test_docs_toml_examples_are_valid_configs():
    blocks = _toml_blocks(DOCS.read_text(encoding="utf-8"))
    assert blocks
    for block in blocks:
        validate(load_config(tomllib.loads(block)))


def test_docs_name_every_key_and_preset():
    text = DOCS.read_text(encoding="utf-8")
    keys = {
        "preset", "name", "seed", "until_s", "until_cycles", "fidelity", "kind", "latency_s",
        "f_nom_hz", "offsets_ppm", "random_ppm", "drift_ppb_per_s", "wander_ppb_per_sqrt_s",
        "theta0", "start_s", "update_period_ticks", "delay_ticks", "measure", "kp", "ki",
        "step_ppb", "depth", "reference", "arm", "auto_centre", "link", "at_s", "frames",
        "margin", "window_s", "low_s", "high_s", "dims", "edges",
    }  # fmt: skip
    for key in keys:
        assert f"`{key}`" in text, key
    for name in preset_names():
        assert f"`{name}`" in text, name
