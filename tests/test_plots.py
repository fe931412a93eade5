"""Plots of runs and sweeps: real files, the right content, clear errors.

Every figure is written to disk and read back: PNGs through matplotlib's own
reader (size, and enough distinct colours to not be blank), SVGs as XML (the
drawn paths, the shaded stable periods, the legend's text). The command line
is driven through ``tidesim.cli.main`` and, once each way, a real subprocess.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from tidesim.cli import main  # noqa: E402
from tidesim.config import build_system, load_config, validate  # noqa: E402
from tidesim.errors import ConfigError  # noqa: E402
from tidesim.studies.metrics import (  # noqa: E402
    _all_on,
    settle_time_s,
    stable_periods,
)
from tidesim.studies.plots import MAX_POINTS, decimate, plot_run, plot_sweep  # noqa: E402
from tidesim.studies.sweep import Sweep, run_sweep  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Three nodes within ±1 ppm and a strong P loop: every count stays within a
# frame of the centre, so the links are stable and settled after the window.
SETTLES = {
    "preset": "hitl-complete3",
    "clock": {"offsets_ppm": [-1.0, 0.0, 1.0], "start_s": 0.0},
    "controller": {"kind": "p", "kp": 1e-6},
    "actuator": {"kind": "continuous"},
    "stability": {"window_s": 0.5},
    "run": {"until_s": 3.0},
}
# A small sweep with a linear controller: the weakest gain never settles.
SWEEP_BASE = {
    "preset": "hitl-complete3",
    "clock": {"start_s": 0.0, "offsets_ppm": {"random_ppm": 20.0}},
    "controller": {"kind": "p", "kp": 1e-7},
    "actuator": {"kind": "continuous"},
    "stability": {"window_s": 0.2},
}


def simulate(cfg: dict):
    rc = validate(load_config(cfg))
    return build_system(rc).run(rc.until_s)


@pytest.fixture(scope="module")
def settled():
    return simulate(SETTLES)


@pytest.fixture(scope="module")
def diamond():
    """The rig's diamond for 8 s: stable from 6.15 s, never settled, 40 001 samples a node."""
    return simulate({"preset": "hitl-diamond", "run": {"until_s": 8.0}})


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """Four runs (two gains, two sizes) of 0.6 s, run on threads."""
    out = tmp_path_factory.mktemp("sweep")
    sweep = Sweep(SWEEP_BASE, grid={"controller.kp": [1e-9, 1e-6], "topology.n": [3, 4]},
                  seed=5, until_s=0.6)
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        run_sweep(sweep, out, executor=pool, progress=False)
    return out


def png_colours(path: Path) -> int:
    """Distinct colours of a PNG (read with matplotlib), after checking its header."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_MAGIC
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] >= 300 and img.shape[1] >= 500
    rgb = np.round(img[..., :3] * 255).astype(np.int64).reshape(-1, 3)
    return int(np.unique(rgb[:, 0] * 65536 + rgb[:, 1] * 256 + rgb[:, 2]).size)


def svg_root(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def svg_ids(root: ET.Element) -> set[str]:
    return {el.get("id") for el in root.iter() if el.get("id")}


def svg_text(root: ET.Element) -> str:
    return " ".join("".join(el.itertext()) for el in root.iter(f"{SVG}text"))


# ----------------------------------------------------------------------------- runs


def test_run_png_is_a_real_image(settled, tmp_path):
    path = plot_run(settled, tmp_path / "sub" / "run.png")
    assert path == tmp_path / "sub" / "run.png"
    assert png_colours(path) >= 8  # lines, shading, text: not a blank canvas


def test_run_svg_has_paths_and_both_shadings(settled, tmp_path):
    root = svg_root(plot_run(settled, tmp_path / "run.svg"))
    assert root.tag == f"{SVG}svg"
    assert len(list(root.iter(f"{SVG}path"))) >= 10
    assert {"stable-periods", "settled-periods"} <= svg_ids(root)
    text = svg_text(root)
    assert "converged, settle time 0.5 s" in text
    assert "all links settled" in text


def test_stable_but_not_settled_run(diamond, tmp_path):
    root = svg_root(plot_run(diamond, tmp_path / "diamond.svg"))
    ids = svg_ids(root)
    assert "stable-periods" in ids and "settled-periods" not in ids
    assert "domain difference count (frames)" in svg_text(root)


def test_no_shading_while_nothing_is_stable(tmp_path):
    trace = simulate({"preset": "hitl-complete3", "run": {"until_s": 4.0}})
    assert settle_time_s(trace) is None
    root = svg_root(plot_run(trace, tmp_path / "c3.svg"))
    assert not {"stable-periods", "settled-periods"} & svg_ids(root)
    assert "not converged" in svg_text(root)


def test_buffer_faults_are_marked(settled, tmp_path):
    from tidesim.models import ElasticBuffer, System, Topology

    # free-running clocks 6000 ppm apart into 4-deep FIFOs: both kinds of fault
    trace = System(Topology.complete(3), offsets_ppm=[-3000.0, 0.0, 3000.0],
                   buffer=ElasticBuffer(depth=4), update_period_ticks=100).run(until_s=2e-4)
    assert {f.kind for f in trace.faults} == {"overflow", "underflow"}
    root = svg_root(plot_run(trace, tmp_path / "faults.svg"))
    assert "faults" in svg_ids(root)
    text = svg_text(root)
    assert f"{len(trace.faults)} buffer faults" in text
    assert "overflow" in text and "underflow" in text
    # a clean run has no marks
    assert "faults" not in svg_ids(svg_root(plot_run(settled, tmp_path / "clean.svg")))


def test_long_lines_are_decimated(diamond, tmp_path):
    assert diamond.link_times(0).size > 5 * MAX_POINTS
    root = svg_root(plot_run(diamond, tmp_path / "diamond.svg"))
    vertices = [sum(c in "ML" for c in p.get("d", "")) for p in root.iter(f"{SVG}path")]
    # a step line draws two vertices a point (matplotlib may drop collinear ones)
    assert 2 * MAX_POINTS + 4 >= max(vertices) > 500


def test_window_and_nodes(diamond, tmp_path):
    path = plot_run(diamond, tmp_path / "window.png", nodes=[0, 2], from_s=5.0, to_s=7.0)
    assert png_colours(path) >= 6


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"nodes": [4]}, "plot.nodes"),
    ({"nodes": []}, "plot.nodes"),
    ({"nodes": "0"}, "plot.nodes"),
    ({"from_s": 8.0}, "plot.from_s"),
    ({"from_s": -1.0}, "plot.from_s"),
    ({"from_s": 3.0, "to_s": 2.0}, "plot.to_s"),
])
def test_bad_run_plot_arguments(diamond, tmp_path, kwargs, field):
    with pytest.raises(ConfigError) as err:
        plot_run(diamond, tmp_path / "x.png", **kwargs)
    assert err.value.field == field
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("name", ["x.jpg", "x.pdf", "x", "png"])
def test_suffix_picks_the_format(settled, tmp_path, name):
    with pytest.raises(ConfigError) as err:
        plot_run(settled, tmp_path / name)
    assert err.value.field == "plot.path"
    assert "must end in .png or .svg" in str(err.value)


# ------------------------------------------------------------------ stable periods


def test_stable_periods_agree_with_the_core(diamond):
    periods = stable_periods(diamond)
    assert periods["stable"][-1].tolist() == [settle_time_s(diamond), 8.0]
    assert periods["settled"].shape == (0, 2)


def test_settled_periods(settled):
    periods = stable_periods(settled)
    assert periods["settled"].tolist() == [[settle_time_s(settled), 3.0]]


def test_periods_of_all_sets_intersect_and_merge():
    starts = [np.array([0.0, 5.0]), np.array([1.0, 4.0])]
    stops = [np.array([3.0, 9.0]), np.array([2.0, 7.0])]
    assert _all_on(starts, stops).tolist() == [[1.0, 2.0], [5.0, 7.0]]
    # one set ends where another starts: one period
    assert _all_on([np.array([0.0, 2.0])], [np.array([2.0, 4.0])]).tolist() == [[0.0, 4.0]]
    assert _all_on([], []).shape == (0, 2)


def test_decimate_keeps_spikes_order_and_short_lines():
    t = np.arange(100_000, dtype=float)
    y = np.sin(t / 5000.0)
    y[31_337] = 50.0
    y[77_001] = -50.0
    td, yd = decimate(t, y, 1000)
    assert td.size <= 1000 + 2
    assert np.all(np.diff(td) > 0)
    assert 50.0 in yd and -50.0 in yd
    assert td[0] == 0 and td[-1] == t[-1]
    short = np.arange(10.0)
    assert decimate(short, short)[0] is short


# --------------------------------------------------------------------------- sweeps


ROWS = [
    {"kp": 1e-9, "topology": "cycle", "settle_time_s": None},
    {"kp": 1e-9, "topology": "cycle", "settle_time_s": 20.0},
    {"kp": 1e-8, "topology": "cycle", "settle_time_s": 6.0},
    {"kp": 1e-7, "topology": "cycle", "settle_time_s": 2.5},
    {"kp": 1e-9, "topology": "complete", "settle_time_s": 12.0},
    {"kp": 1e-8, "topology": "complete", "settle_time_s": "n/a"},
    {"kp": 1e-7, "topology": "complete", "settle_time_s": 2.0},
]


def test_sweep_rows_with_missing_values_are_counted(tmp_path):
    root = svg_root(plot_sweep(ROWS, tmp_path / "s.svg", x="kp", y="settle_time_s",
                               by="topology"))
    text = svg_text(root)
    assert "cycle (1 of 4 runs without a value)" in text
    assert "complete (1 of 3 runs without a value)" in text
    assert "runs without a settle_time_s value" in text
    assert "7 runs" in text
    png = plot_sweep(ROWS, tmp_path / "s.png", x="kp", y="settle_time_s", by="topology")
    assert png_colours(png) >= 6


def test_sweep_categories_and_booleans(tmp_path):
    rows = [{"preset": p, "converged": c, "step": s}
            for p, c, s in [("hitl-a", True, 10), ("hitl-b", False, 10), ("hitl-a", True, 500)]]
    root = svg_root(plot_sweep(rows, tmp_path / "c.svg", x="preset", y="converged", by="step"))
    text = svg_text(root)
    assert "hitl-a" in text and "hitl-b" in text
    assert "without a value" not in text  # booleans are numbers


def test_sweep_directory(sweep_dir, tmp_path):
    root = svg_root(plot_sweep(sweep_dir, tmp_path / "d.svg", x="controller.kp",
                               by="topology_name"))
    text = svg_text(root)
    assert "complete-3" in text and "complete-4" in text
    assert "without a value" in text  # kp = 1e-9 does not settle in 0.6 s


@pytest.mark.parametrize(("results", "kwargs", "field", "words"), [
    (ROWS, {"x": "kpp"}, "plot.x", "must be a column of the results"),
    (ROWS, {"x": "kp", "y": "settle"}, "plot.y", "did you mean 'settle_time_s'"),
    (ROWS, {"x": "kp", "by": "colour"}, "plot.by", "must be a column"),
    ([{"a": 1}], {"x": "controller.kp"}, "plot.x", "must be a column"),
    ([], {"x": "kp"}, "plot.results", "at least one run"),
    ([1, 2], {"x": "kp"}, "plot.results", "list of rows"),
    ("/nonexistent/sweep", {"x": "kp"}, "plot.results", "sweep output directory"),
    (ROWS, {"x": "kp", "y": "topology"}, "plot.y", "must be a numeric column (it holds 'cycle'"),
    (ROWS, {"x": "kp", "y": "topology"}, "plot.y", "numeric columns: settle_time_s, kp)"),
    ([{"kp": 1, "f": [1.0]}], {"x": "kp", "y": "f"}, "plot.y", "numeric column"),
])
def test_bad_sweep_plot_arguments(tmp_path, results, kwargs, field, words):
    with pytest.raises(ConfigError) as err:
        plot_sweep(results, tmp_path / "bad.png", **kwargs)
    assert err.value.field == field
    assert words in str(err.value)


def test_directory_without_results(tmp_path):
    with pytest.raises(ConfigError, match="results.jsonl"):
        plot_sweep(tmp_path, tmp_path / "p.png", x="kp")


def test_column_hint_names_the_swept_key(sweep_dir, tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'controller.kp'"):
        plot_sweep(sweep_dir, tmp_path / "p.png", x="kp")


# ------------------------------------------------------------------ command line


def test_cli_run_plot(tmp_path, capsys):
    out = tmp_path / "run.png"
    assert main(["run", "--preset", "hitl-diamond", "--until", "8", "--plot", str(out)]) == 0
    assert f"plot: {out}" in capsys.readouterr().out
    assert png_colours(out) >= 8


def test_cli_plot_defaults(sweep_dir, capsys):
    assert main(["plot", str(sweep_dir)]) == 0
    assert capsys.readouterr().out.strip() == f"plot: {sweep_dir / 'plot.png'}"
    assert png_colours(sweep_dir / "plot.png") >= 6


def test_cli_plot_options(sweep_dir, tmp_path, capsys):
    out = tmp_path / "counts.svg"
    args = ["plot", str(sweep_dir), "--x", "topology.n", "--y", "max_abs_count",
            "--by", "controller.kp", "--out", str(out)]
    assert main(args) == 0
    text = svg_text(svg_root(out))
    assert "max_abs_count against topology.n" in text


@pytest.mark.parametrize(("args", "words"), [
    (["plot", "{tmp}/missing"], "plot.results: must be a sweep output directory"),
    (["plot", "{sweep}", "--x", "nope"], "plot.x: must be a column of the results"),
    (["plot", "{sweep}", "--y", "settle"], "plot.y: must be a column"),
    (["plot", "{sweep}", "--out", "{tmp}/p.txt"], "plot.path: must end in .png or .svg"),
    (["plot", "{tmp}"], "--x: is required"),
    (["run", "--preset", "hitl-diamond", "--plot", "{tmp}/r.jpg"], "plot.path"),
])
def test_cli_bad_input_is_one_line_exit_2(sweep_dir, tmp_path, capsys, monkeypatch, args,
                                          words):
    from tidesim.models.system import System

    def not_simulated(*_a, **_k):
        raise AssertionError("bad input must be reported before simulating")

    monkeypatch.setattr(System, "run", not_simulated)
    argv = [a.format(tmp=tmp_path, sweep=sweep_dir) for a in args]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tidesim: error: ")
    assert words in lines[0]


def _tidesim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "tidesim", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def test_subprocess_run_plot_and_bad_plot(sweep_dir, tmp_path):
    done = _tidesim("run", "--preset", "hitl-complete3", "--until", "8", "--plot", "r.svg",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "not converged" in svg_text(svg_root(tmp_path / "r.svg"))
    bad = _tidesim("plot", str(sweep_dir), "--by", "colour", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.startswith("tidesim: error: plot.by: must be a column")
    assert len(bad.stderr.splitlines()) == 1 and "Traceback" not in bad.stderr
