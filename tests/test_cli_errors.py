"""Bad input through the real command line: one clear line, exit status 2.

Every ``run`` case runs ``python -m tidesim run ...`` in a subprocess and
checks that stderr is exactly one ``tidesim: error: ...`` line naming the
offending key and value, with no traceback, and that nothing was simulated
(stdout is empty). The ``sweep`` and ``plot`` cases call
``tidesim.cli.main`` in this process and check the same, and that nothing
was written.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    """One bad input: the config text (``None``: no file), extra flags, expected text."""

    id: str
    toml: str | None
    flags: tuple[str, ...]
    expect: tuple[str, ...]


RIG = 'preset = "hitl8"\n'

CASES = [
    Case(
        "wrong-type",
        RIG + '[control]\nupdate_period_ticks = "25000"\n',
        (),
        ("control.update_period_ticks", "'25000'", "must be an integer"),
    ),
    Case("unknown-top-level-key", RIG + 'colour = "red"\n', (), ("colour", "'red'", "not a known")),
    Case(
        "unknown-nested-key",
        RIG + "[clock]\noffset_ppm = 5.0\n",
        (),
        ("clock.offset_ppm", "5.0", "did you mean 'offsets_ppm'?"),
    ),
    Case(
        "unknown-adjust-key",
        RIG + "[[buffer.adjust]]\nlink = [0, 1]\nat_s = 0.1\nframe = 4\n",
        (),
        ("buffer.adjust[0].frame", "4", "did you mean 'frames'?"),
    ),
    Case(
        "negative-latency",
        RIG + "[topology]\nlatency_s = -1e-9\n",
        (),
        ("topology.latency_s", "-1e-09", ">= 0"),
    ),
    Case(
        "negative-latency-in-list",
        '[topology]\nkind = "line"\nn = 3\nlatency_s = [1e-8, -2e-8]\n',
        (),
        ("topology.latency_s[1]", "-2e-08", ">= 0"),
    ),
    Case(
        "disconnected-topology",
        '[topology]\nkind = "edges"\nedges = [[0, 1], [2, 3]]\n',
        (),
        ("topology", "[[0, 1], [2, 3]]", "connected"),
    ),
    Case(
        "buffer-depth-not-power-of-two",
        RIG + "[buffer]\ndepth = 24\n",
        (),
        ("buffer.depth", "24", "power of two"),
    ),
    Case("unknown-preset-in-file", 'preset = "hitl9"\n', (), ("preset", "'hitl9'", "hitl8")),
    Case("unknown-preset-flag", None, ("--preset", "nope"), ("preset", "'nope'", "hitl8")),
    Case(
        "bad-fidelity-in-file",
        RIG + '[run]\nfidelity = "fast"\n',
        (),
        ("run.fidelity", "'fast'", "event"),
    ),
    Case("bad-fidelity-flag", None, ("--fidelity", "fast"), ("--fidelity", "'fast'")),
    Case("toml-syntax-error", "[run\nuntil_s = 1.0\n", (), ("{path}", "line 1", "valid TOML")),
    Case("missing-file", None, ("{missing}",), ("does-not-exist.toml", "existing file")),
    Case(
        "per-node-list-wrong-length",
        RIG + "[clock]\noffsets_ppm = [1.0, 2.0, 3.0]\n",
        (),
        ("clock.offsets_ppm", "[1.0, 2.0, 3.0]", "one entry per node (8)"),
    ),
    Case(
        "theta0-out-of-range",
        RIG + "[clock]\ntheta0 = 1.5\n",
        (),
        ("clock.theta0", "1.5", "[0, 1)"),
    ),
    Case(
        "theta0-entry-out-of-range",
        'preset = "hitl-line4"\n[clock]\ntheta0 = [0.1, 0.2, -0.3, 0.4]\n',
        (),
        ("clock.theta0[2]", "-0.3", "[0, 1)"),
    ),
    Case(
        "negative-start-delay",
        RIG + "[clock]\nstart_s = -0.5\n",
        (),
        ("clock.start_s", "-0.5", ">= 0"),
    ),
    Case(
        "delay-not-below-update-period",
        RIG + "[control]\ndelay_ticks = 25000\n",
        (),
        ("control.delay_ticks", "25000", "update_period_ticks"),
    ),
    Case(
        "until-s-and-until-cycles",
        RIG + "[run]\nuntil_s = 1.0\nuntil_cycles = 1000\n",
        (),
        ("run.until_cycles", "1000", "until_s"),
    ),
    Case("negative-until-in-file", RIG + "[run]\nuntil_s = -1.0\n", (), ("run.until_s", "-1.0")),
    Case("negative-until-flag", None, ("--until", "-5"), ("run.until_s", "-5.0", "> 0")),
    Case(
        "bool-for-number",
        RIG + "[clock]\nf_nom_hz = true\n",
        (),
        ("clock.f_nom_hz", "True", "must be a number"),
    ),
    Case(
        "unknown-controller-kind",
        RIG + '[controller]\nkind = "pd"\n',
        (),
        ("controller.kind", "'pd'", "'pi'"),
    ),
    Case(
        "nan-value",
        RIG + "[clock]\ndrift_ppb_per_s = nan\n",
        (),
        ("clock.drift_ppb_per_s", "nan", "finite"),
    ),
    Case("nan-flag", None, ("--until", "nan"), ("run.until_s", "nan", "finite")),
    Case("negative-seed-flag", None, ("--seed", "-1"), ("seed", "-1", ">= 0")),
    Case(
        "unknown-topology-kind",
        '[topology]\nkind = "ring"\nn = 4\n',
        (),
        ("topology.kind", "'ring'", "'cycle'"),
    ),
    Case(
        "ki-for-p-controller",
        RIG + '[controller]\nkind = "p"\nkp = 1e-6\nki = 1e-12\n',
        (),
        ("controller.ki", "1e-12", "'p'"),
    ),
    Case(
        "adjust-link-not-in-topology",
        'preset = "hitl-line4"\n[[buffer.adjust]]\nlink = [0, 3]\nat_s = 0.1\nframes = 2\n',
        (),
        ("buffer.adjust[0].link", "[0, 3]", "of the topology"),
    ),
    Case(
        "negative-random-offsets",
        RIG + "[clock]\noffsets_ppm = {random_ppm = -5}\n",
        (),
        ("clock.offsets_ppm.random_ppm", "-5", "in [0, 10000]"),
    ),
    Case("section-not-a-table", RIG + "run = 5\n", (), ("run", "5", "table")),
    Case("not-a-number-flag", None, ("--until", "soon"), ("--until", "'soon'")),
    # outputs are checked before the run, so a long run is not lost at the end
    Case("vcd-under-a-file", RIG, ("--vcd", "{path}/out.vcd"),
         ("run.vcd", "out.vcd", "must be in a directory that can be created")),
    Case("plot-under-a-file", RIG, ("--plot", "{path}/out.png"),
         ("run.plot", "out.png", "must be in a directory that can be created")),
    Case("vcd-is-a-directory", RIG, ("--vcd", "docs"),
         ("run.vcd", "'docs'", "must be a file path, not a directory")),
    # the frames in flight of a 1e15 s link have edge numbers beyond int64:
    # the run would never end
    Case("absurd-latency", RIG + "[topology]\nlatency_s = 1e15\n", (),
         ("topology.latency_s", "must be below 2**42 cycles of the clocks (3.52e+04 s at "
          "clock.f_nom_hz = 1.25e+08)", "got 1000000000000000.0")),
    Case("absurd-frequency", RIG + "[clock]\nf_nom_hz = 1e300\n", (),
         ("topology.latency_s", "clock.f_nom_hz = 1e+300", "got 1e-08")),
    Case("absurd-until-flag", None, ("--until", "1e30"),
         ("run.until_s", "must be below 2**62 cycles of the clocks (3.51e+10 s", "got 1e+30")),
    Case("full-record-beyond-memory", None, ("--until", "1e9", "--record", "full"),
         ("run.until_s", "must fit in memory", "got 1000000000.0")),
]


def _run_cli(args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "tidesim", "run", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def test_at_least_eighteen_cases():
    assert len(CASES) >= 18


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2(case: Case, tmp_path: Path):
    cfg_path = tmp_path / "cfg.toml"
    missing = tmp_path / "does-not-exist.toml"
    args = []
    if case.toml is not None:
        cfg_path.write_text(case.toml, encoding="utf-8")
        args.append(str(cfg_path))
    args += [f.format(path=cfg_path, missing=missing) for f in case.flags]

    proc = _run_cli(args)

    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("tidesim: error: ")
    for text in case.expect:
        assert text.format(path=cfg_path) in line, line


# ------------------------------------------------------------------- in-process


def test_config_error_in_process(capsys):
    from tidesim.cli import main

    assert main(["run", "--preset", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tidesim: error: preset: ") and err.count("\n") == 1


def test_usage_error_in_process(capsys):
    from tidesim.cli import main

    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tidesim: error: ") and "frobnicate" in err and err.count("\n") == 1


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    import tidesim.config
    from tidesim.cli import main

    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(tidesim.config, "validate", interrupted)
    assert main(["run"]) == 130
    assert capsys.readouterr().err == "tidesim: error: interrupted\n"


def test_help_does_not_load_the_kernels():
    code = "import sys, tidesim.cli; print(sorted({'numba', 'networkx'} & set(sys.modules)))"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_report_marks_missing_links():
    from tidesim.cli import format_summary

    summary = {
        "nodes": 3,
        "links": 4,
        "fidelity": "event",
        "simulated_s": 1.0,
        "wall_s": 0.5,
        "converged": True,
        "settle_time_s": 0.25,
        "final_offsets_ppm": [1.0, -1.0, 0.5],
        "final_spread_ppb": 2000.0,
        "max_abs_count": 3,
        "energy": 1e-9,
        "faults": [],
        "ugn": [[0, 1, 12], [1, 0, -8], [1, 2, 7], [2, 1, 5]],
        "preset": None,
    }
    text = format_summary(summary, name="demo")
    assert re.search(r"settle time +0.25 s", text) and "no faults" in text
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("UGN"))
    grid = lines[top : top + 5]
    assert grid[1].split() == ["0", "1", "2"]
    assert grid[2].split() == ["0", ".", "12", "."]
    assert grid[3].split() == ["1", "-8", ".", "7"]
    assert grid[4].split() == ["2", ".", "5", "."]
    faulty = format_summary(
        {
            **summary,
            "faults": [{"node": 1, "link": 0, "kind": "overflow", "time_s": 0.5, "cycle": 9}],
        }
    )
    assert "overflow" in faulty and "no faults" not in faulty


# ------------------------------------------------------------------ sweep and plot

SWEEP_BASE = (
    '[base]\npreset = "hitl-complete3"\nclock = {start_s = 0.0}\n'
    'controller = {kind = "p", kp = 1e-6}\nactuator = {kind = "continuous"}\n'
    "run = {until_s = 0.1}\n"
)


@dataclass(frozen=True)
class SweepCase:
    """A bad sweep: text before the spec's ``[base]``, flags, expected text of the line."""

    id: str
    head: str
    flags: tuple[str, ...]
    expect: tuple[str, ...]


SWEEP_CASES = [
    SweepCase("huge-repeats", "repeats = 1000000000\n", (),
              ("repeats", "within 1000000 runs", "it has 1000000000", "got 1000000000")),
    SweepCase("float-repeats", "repeats = 1e9\n", (),
              ("repeats", "must be an integer", "got 1000000000.0")),
    SweepCase("float-samples",
              'samples = 2.5\n[random]\n"controller.kp" = {uniform = [1e-7, 1e-6]}\n', (),
              ("samples", "must be an integer", "got 2.5")),
    SweepCase("huge-product",
              'samples = 1000\nrepeats = 1000\n[grid]\n"topology.n" = [3, 4, 5, 6]\n'
              '[random]\n"controller.kp" = {uniform = [1e-7, 1e-6]}\n', (),
              ("samples", "it has 4000000 = 4 grid points x 1000 samples x 1000 repeats",
               "got 1000")),
    SweepCase("huge-grid",
              '[grid]\n"controller.kp" = [' + ", ".join(f"{k}e-9" for k in range(1, 1201))
              + ']\n"controller.ki" = [' + ", ".join(f"{k}e-15" for k in range(1, 1001))
              + "]\n", (), ("grid", "it has 1200000 = 1200000 grid points", "got 1200000")),
    SweepCase("zero-workers", "", ("--workers", "0"), ("--workers", ">= 1", "got 0")),
    SweepCase("negative-workers", "", ("--workers", "-2"), ("--workers", "got -2")),
    SweepCase("zero-dask-local", "", ("--dask-local", "0"), ("--dask-local", ">= 1", "got 0")),
    SweepCase("negative-dask-local", "", ("--dask-local", "-1"), ("--dask-local", "got -1")),
    SweepCase("zero-chunk", "", ("--chunk", "0"), ("--chunk", ">= 1", "got 0")),
    SweepCase("out-under-a-file", "", ("--out", "{spec}/out"),
              ("--out", "must be a directory that can be created", "is a file")),
    SweepCase("out-is-a-file", "", ("--out", "{spec}"), ("--out", "must be a directory")),
]


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("tidesim: error: ")
    return lines[0]



# ------------------------------------------- output paths, --decimate, --from/--to


@pytest.fixture
def no_run(monkeypatch):
    """Fail the test if a system is built: bad input must stop ``run`` before that."""
    import tidesim.config

    def built(*args, **kwargs):
        raise AssertionError("a system was built (the run would have started)")

    monkeypatch.setattr(tidesim.config, "build_system", built)


def one_error_line(capsys, args: list[str]) -> str:
    """Run ``tidesim run ARGS`` in-process; check exit 2, one stderr line, no output."""
    from tidesim.cli import main

    code = main(["run", *args])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tidesim: error: ")
    return lines[0]



@pytest.mark.parametrize("case", SWEEP_CASES, ids=[c.id for c in SWEEP_CASES])
def test_bad_sweep_is_one_line_exit_2(case: SweepCase, tmp_path: Path, capsys):
    from tidesim.cli import main

    spec = tmp_path / "spec.toml"
    spec.write_text(case.head + SWEEP_BASE, encoding="utf-8")
    out = tmp_path / "out"
    flags = [f.format(spec=spec) for f in case.flags]
    if "--out" not in flags:
        flags += ["--out", str(out)]
    assert main(["sweep", str(spec), *flags]) == 2
    line = _one_error_line(capsys)
    for text in case.expect:
        assert text in line, line
    assert not out.exists()  # refused before anything ran
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_sweep_out_under_proc(tmp_path: Path, capsys):
    from tidesim.cli import main

    spec = tmp_path / "spec.toml"
    spec.write_text(SWEEP_BASE, encoding="utf-8")
    assert main(["sweep", str(spec), "--out", "/proc/tidesim-out"]) == 2
    line = _one_error_line(capsys)
    assert "--out" in line and "/proc/tidesim-out" in line


def test_dask_cluster_that_cannot_start(tmp_path: Path, capsys, monkeypatch):
    distributed = pytest.importorskip("distributed")
    from tidesim.cli import main

    def broken(*args, **kwargs):
        raise OSError("no ports left")

    monkeypatch.setattr(distributed, "LocalCluster", broken)
    spec = tmp_path / "spec.toml"
    spec.write_text(SWEEP_BASE, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--dask-local", "2"]) == 2
    line = _one_error_line(capsys)
    assert "--dask-local" in line and "must start a local Dask cluster" in line
    assert "no ports left" in line
    assert not (out / "results.jsonl").exists()


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    """A finished sweep of three short runs."""
    import concurrent.futures as cf

    from tidesim.studies.sweep import load_sweep, run_sweep

    root = tmp_path_factory.mktemp("plotted")
    spec = root / "spec.toml"
    spec.write_text('[grid]\n"controller.kp" = [1e-7, 1e-6, 2e-6]\n' + SWEEP_BASE
                    .replace("kp = 1e-6", "kp = 1e-7"), encoding="utf-8")
    with cf.ThreadPoolExecutor(1) as pool:
        run_sweep(load_sweep(spec), root / "out", executor=pool, progress=False)
    return root / "out"


@pytest.mark.parametrize(
    ("flags", "expect"),
    [
        (("--y", "worker"), ("plot.y", "must be a numeric column", "got 'worker'",
                             "numeric columns: ", "nodes")),
        (("--y", "topology_name"), ("plot.y", "'complete-3'", "got 'topology_name'")),
        (("--out", "{dir}/results.csv/plot.png"),
         ("plot.path", "must be in a directory that can be created", "results.csv is a file")),
        (("--out", "{tmp}/a-dir.png"), ("plot.path", "must be a file path, not a directory")),
    ],
    ids=["text-y", "name-y", "out-under-a-file", "out-is-a-directory"],
)
def test_bad_plot_is_one_line_exit_2(sweep_dir: Path, flags, expect, tmp_path: Path, capsys):
    from tidesim.cli import main

    (tmp_path / "a-dir.png").mkdir()
    before = sorted(p.name for p in sweep_dir.iterdir())
    args = [f.format(dir=sweep_dir, tmp=tmp_path) for f in flags]
    assert main(["plot", str(sweep_dir), *args]) == 2
    line = _one_error_line(capsys)
    for text in expect:
        assert text in line, line
    assert sorted(p.name for p in sweep_dir.iterdir()) == before  # nothing drawn


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_plot_out_under_proc(sweep_dir: Path, capsys):
    from tidesim.cli import main

    assert main(["plot", str(sweep_dir), "--out", "/proc/tidesim-plot.png"]) == 2
    line = _one_error_line(capsys)
    assert "plot.path" in line and "/proc/tidesim-plot.png" in line


@pytest.fixture
def cfg(tmp_path, monkeypatch) -> Path:
    """A short run's config file in the working directory (a temporary one)."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "c.toml"
    path.write_text('preset = "callisto-test"\n[run]\nuntil_s = 1e7\n', encoding="utf-8")
    return path


def test_vcd_must_not_overwrite_the_config(cfg, capsys, no_run):
    before = cfg.read_bytes()
    line = one_error_line(capsys, ["c.toml", "--vcd", "c.toml"])
    assert line == ("tidesim: error: run.vcd: must not overwrite the config file c.toml, "
                    "got 'c.toml'")
    # the same file by another spelling, and through a link
    (cfg.parent / "sub").mkdir()
    line = one_error_line(capsys, [str(cfg), "--vcd", "sub/../c.toml"])
    assert "run.vcd: must not overwrite the config file" in line
    (cfg.parent / "link.toml").symlink_to(cfg)
    line = one_error_line(capsys, ["c.toml", "--plot", "out.png", "--vcd", "link.toml"])
    assert "run.vcd: must not overwrite the config file c.toml, got 'link.toml'" in line
    assert cfg.read_bytes() == before


def test_plot_must_not_overwrite_the_config(tmp_path, capsys, no_run, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.png").write_text('preset = "callisto-test"\n', encoding="utf-8")
    line = one_error_line(capsys, ["c.png", "--plot", "./c.png"])
    assert line.endswith("run.plot: must not overwrite the config file c.png, got './c.png'")


def test_outputs_must_differ(cfg, capsys, no_run):
    line = one_error_line(capsys, ["c.toml", "--vcd", "a.png", "--plot", "a.png"])
    assert line.endswith("run.plot: must not overwrite the VCD file a.png, got 'a.png'")
    # the .gtkw written beside the VCD is an output too
    line = one_error_line(capsys, ["c.toml", "--vcd", "a.gtkw"])
    assert line.endswith("run.vcd: must not write its GTKWave save file a.gtkw over the VCD "
                         "file a.gtkw, got 'a.gtkw'")
    gtkw_cfg = cfg.parent / "c.gtkw"
    gtkw_cfg.write_bytes(cfg.read_bytes())
    line = one_error_line(capsys, ["c.gtkw", "--vcd", "c.vcd"])
    assert line.endswith("run.vcd: must not write its GTKWave save file c.gtkw over the "
                         "config file c.gtkw, got 'c.vcd'")
    assert not (cfg.parent / "c.vcd").exists()  # the checks leave no files behind


@pytest.mark.parametrize("flag, path, expect", [
    ("--vcd", "{cfg}/out.vcd", "run.vcd: must be in a directory that can be created"),
    ("--plot", "{cfg}/out.png", "run.plot: must be in a directory that can be created"),
    ("--vcd", "/proc/tidesim-test.vcd", "run.vcd: must be in a writable directory ("),
    ("--plot", "/proc/tidesim-test.png", "run.plot: must be in a writable directory ("),
    ("--vcd", "/sys/tidesim-test.vcd", "run.vcd: must be in a writable directory ("),
    ("--plot", "/sys/tidesim-test.svg", "run.plot: must be in a writable directory ("),
    ("--vcd", "/sys/tidesim-test/out.vcd", "run.vcd: must be in a directory that can be created"),
    ("--vcd", "/dev/null", "run.vcd: must be a regular file path"),
    ("--vcd", "/proc/self/status", "its GTKWave save file /proc/self/status.gtkw must be in "
                                   "a writable directory"),
    ("--vcd", "here.vcd", "its GTKWave save file here.gtkw must be a file path, not a directory"),
])
def test_unwritable_outputs_fail_before_the_run(cfg, capsys, no_run, flag, path, expect):
    # root ignores permission bits: these paths cannot be written by anyone
    (cfg.parent / "here.gtkw").mkdir()
    given = path.format(cfg=cfg)
    line = one_error_line(capsys, ["c.toml", flag, given])
    assert expect in line and line.endswith(f"got {given!r}"), line


@pytest.mark.parametrize("value, shown", [
    ("1e20", "1e+20"),
    ("1" + "0" * 400, "1e+400"),
    ("1000000001", "1000000001"),
    ("0", "0"),
    ("-3", "-3"),
    ("2.5", "'2.5'"),
    ("nan", "'nan'"),
    ("many", "'many'"),
])
def test_decimate_is_checked_before_the_run(cfg, capsys, no_run, value, shown):
    line = one_error_line(capsys, ["c.toml", "--vcd", "w.vcd", "--decimate", value])
    assert line == ("tidesim: error: --decimate: must be an integer from 1 to 1e+09, "
                    f"got {shown}")


def test_decimate_needs_vcd(cfg, capsys, no_run):
    line = one_error_line(capsys, ["c.toml", "--plot", "p.png", "--decimate", "25"])
    assert line == "tidesim: error: --decimate: needs --vcd, got 25"


def test_decimate_in_exponent_notation(cfg, capsys):
    from tidesim.cli import main

    assert main(["run", "c.toml", "--vcd", "w.vcd", "--decimate", "1e3", "--json"]) == 0
    capsys.readouterr()
    header = (cfg.parent / "w.vcd").read_text(encoding="ascii").split("$enddefinitions")[0]
    assert "decimate=1000 " in header


@pytest.mark.parametrize("flags, expect", [
    (["--from", "1"], "--from: needs --vcd or --plot, got 1.0"),
    (["--to", "1"], "--to: needs --vcd or --plot, got 1.0"),
    (["--vcd", "w.vcd", "--from", "-1"], "--from: must be a finite time in seconds >= 0, "
                                         "got -1.0"),
    (["--plot", "p.png", "--to", "inf"], "--to: must be a finite time in seconds >= 0, got inf"),
    (["--vcd", "w.vcd", "--from", "2e7"], "--from: must be before the end of the run "
                                          "(1e+07 s), got 20000000.0"),
    (["--plot", "p.png", "--from", "3", "--to", "2"], "--to: must be after --from (3 s), got 2.0"),
])
def test_window_flags_are_checked_before_the_run(cfg, capsys, no_run, flags, expect):
    assert one_error_line(capsys, ["c.toml", *flags]) == f"tidesim: error: {expect}"


# ------------------------------------------------------------- huge numbers stay short


def test_python_api_refuses_absurd_times_and_latencies():
    from tidesim.errors import ConfigError
    from tidesim.models import System, Topology

    system = System(Topology.complete(3, latency_s=1e-8))
    with pytest.raises(ConfigError, match=r"^run.until_s: must be below 2\*\*62 cycles .*"
                                          r"got 1e\+30$"):
        system.run(until_s=1e30)
    with pytest.raises(ConfigError, match=r"^topology.latency_s: must be below 2\*\*42 "):
        System(Topology.complete(3, latency_s=1e15))
    # the bound is in cycles: a 1 Hz clock (Callisto.jl's units) takes long latencies
    System(Topology.complete(3, latency_s=5e3), f_nom_hz=1.0)


def test_unstable_controller_message_is_compact(tmp_path, capsys, monkeypatch):
    from tidesim.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "kp.toml").write_text('preset = "hitl8"\n[controller]\nkind = "p"\n'
                                      'kp = 1e300\n[actuator]\nkind = "continuous"\n'
                                      '[run]\nuntil_s = 0.01\n')
    assert main(["run", "kp.toml"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and len(err) < 200, err
    assert re.match(r"tidesim: error: node \d+: frequency offset -?[0-9.]+e\+\d+ ppm at t=", err)


def test_huge_numbers_in_messages_are_compact(tmp_path, capsys, no_run, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kp.toml").write_text('preset = "hitl8"\n[controller]\nkp = -1e300\n')
    line = one_error_line(capsys, ["kp.toml"])
    assert line == "tidesim: error: controller.kp: must be >= 0, got -1e+300"
    line = one_error_line(capsys, ["--seed", "-1" + "0" * 300])
    assert line == "tidesim: error: seed: must be an integer >= 0, got -1e+300"


def test_compact_repr():
    from tidesim.errors import ConfigError, compact_repr

    assert compact_repr(10**300) == "1e+300"
    assert compact_repr(-(10**5000)) == "-1e+5000"  # beyond float and str() limits
    assert compact_repr(2**63 - 1) == "9223372036854775807"  # 64-bit integers stay exact
    assert compact_repr([1.5, 10**40, (True, "x")]) == "[1.5, 1e+40, (True, 'x')]"
    assert compact_repr({"kp": 10**30}) == "{'kp': 1e+30}"
    assert str(ConfigError("k", 10**310, "must be small")) == "k: must be small, got 1e+310"


def test_summary_prints_huge_numbers_compactly():
    from tidesim.cli import format_summary

    text = format_summary({"nodes": 2, "final_offsets_ppm": [1e300, -2.5],
                           "max_abs_count": 10**300, "energy": 1e300,
                           "final_spread_ppb": 1e300, "simulated_s": 1e300})
    assert max(len(line) for line in text.splitlines()) < 90, text
    assert "+1e+300" in text and "-2.500000" in text and "1e+300 frames" in text


@pytest.mark.parametrize("module, flags, expect", [
    ("vcd", ["--vcd", "w.vcd"], "vcd: needs pyvcd (pip install 'tidesim[vcd]'), got 'pyvcd'"),
    ("matplotlib", ["--plot", "p.png"],
     "plot: needs matplotlib (pip install 'tidesim[plot]'), got 'matplotlib'"),
])
def test_missing_extra_is_reported_before_the_run(cfg, capsys, no_run, monkeypatch, module,
                                                  flags, expect):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    assert one_error_line(capsys, ["c.toml", *flags]) == f"tidesim: error: {expect}"
