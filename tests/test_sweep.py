"""Sweeps: expansion and determinism, the results table, resuming, executors, the CLI.

The end-to-end checks drive the real command line in subprocesses: an
uninterrupted sweep on the local process pool is the reference; the same sweep
killed with SIGKILL part-way and re-run, and the same sweep on a real Dask
``LocalCluster`` (2 worker processes), must give the same table.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tidesim.errors import ConfigError
from tidesim.studies.sweep import (
    VOLATILE_COLUMNS,
    Sweep,
    SweepIncomplete,
    load_sweep,
    run_seed,
    run_sweep,
    to_table,
)

REPO = Path(__file__).resolve().parents[1]

# A small rig-like system with a linear controller: ~10 ms per run.
BASE = {
    "preset": "hitl-complete3",
    "clock": {"start_s": 0.0, "offsets_ppm": {"random_ppm": 50.0}},
    "controller": {"kind": "pi", "kp": 1e-6, "ki": 0.0},
    "actuator": {"kind": "continuous"},
    "run": {"until_s": 0.2},
}

# The end-to-end sweep: 48 runs of about 0.1 s each (time to kill it part-way).
E2E_SPEC = """\
seed = 11
repeats = 12
until_s = 10.0

[base]
preset = "hitl-complete3"
clock.start_s = 0.0
controller = {kind = "p", kp = 1e-6}
actuator = {kind = "continuous"}

[grid]
"topology.n" = [3, 4]

[random]
clock.offsets_ppm.random_ppm = {uniform = [5.0, 80.0]}
"""
E2E_SAMPLES = 2  # added to the spec below
E2E_RUNS = 2 * E2E_SAMPLES * 12


def tidesim(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tidesim", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=240, **kwargs)


def stable_rows(rows):
    """Rows keyed by run id, without the columns that differ between executions."""
    return {r["run_id"]: {k: v for k, v in r.items() if k not in VOLATILE_COLUMNS} for r in rows}


# ------------------------------------------------------------------------ expansion


def small_sweep(seed: int = 7) -> Sweep:
    return Sweep(
        BASE,
        grid={"topology.n": [3, 4], "controller.kp": [1e-7, 2e-7]},
        random={"clock.offsets_ppm.random_ppm": {"uniform": [1.0, 50.0]},
                "controller.ki": {"log_uniform": [1e-15, 1e-13]}},
        samples=3,
        repeats=2,
        seed=seed,
    )


def test_grid_times_samples_times_repeats():
    sweep = small_sweep()
    runs = sweep.runs()
    assert sweep.n_runs == len(runs) == 2 * 2 * 3 * 2
    assert [r.index for r in runs] == list(range(len(runs)))
    assert len({r.run_id for r in runs}) == len(runs)
    # grid point first, then sample, then repeat
    first = runs[:6]
    assert [(r.grid_point, r.sample, r.repeat) for r in first] == [
        (0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (0, 2, 0), (0, 2, 1)]
    for r in runs:
        assert r.seed == run_seed(7, r.index) == r.config["seed"]
        assert set(r.inputs) == {"topology.n", "controller.kp", "clock.offsets_ppm.random_ppm",
                                 "controller.ki"}
        assert 1.0 <= r.inputs["clock.offsets_ppm.random_ppm"] <= 50.0
        assert 1e-15 <= r.inputs["controller.ki"] <= 1e-13
        # the values sit at their paths of the merged config
        assert r.config["topology"]["n"] == r.inputs["topology.n"]
        assert r.config["controller"]["kp"] == r.inputs["controller.kp"]
        assert r.config["clock"]["offsets_ppm"] == {
            "random_ppm": r.inputs["clock.offsets_ppm.random_ppm"]}
        assert r.config["preset"] == "hitl-complete3"
        assert r.config["stability"]["window_s"] == 2.0  # from the preset


def test_expansion_is_deterministic_and_seeded():
    a, b, c = small_sweep(7).runs(), small_sweep(7).runs(), small_sweep(8).runs()
    assert [(r.run_id, r.seed, r.inputs) for r in a] == [(r.run_id, r.seed, r.inputs) for r in b]
    assert {r.run_id for r in a}.isdisjoint({r.run_id for r in c})
    assert [r.inputs["controller.ki"] for r in a] != [r.inputs["controller.ki"] for r in c]
    # paired design: every grid point sees the same random samples
    by_point = collections.defaultdict(list)
    for r in a:
        by_point[r.grid_point].append(r.inputs["clock.offsets_ppm.random_ppm"])
    assert len({tuple(v) for v in by_point.values()}) == 1
    # a sample's draws do not depend on the other random keys
    one = Sweep(BASE, random={"controller.ki": {"log_uniform": [1e-15, 1e-13]}}, samples=3,
                seed=7).runs()
    assert [r.inputs["controller.ki"] for r in one] == [
        r.inputs["controller.ki"] for r in a if r.grid_point == 0 and r.repeat == 0]


def test_integers_and_choice_distributions():
    sweep = Sweep(BASE, random={"topology.n": {"integers": [3, 5]},
                                "controller.kind": {"choice": ["p", "pi"]}}, samples=40, seed=2)
    runs = sweep.runs()
    ns = {r.inputs["topology.n"] for r in runs}
    kinds = {r.inputs["controller.kind"] for r in runs}
    assert ns == {3, 4, 5} and all(isinstance(n, int) for n in ns)
    assert kinds == {"p", "pi"}


def test_overrides_apply_before_the_preset_is_merged():
    sweep = Sweep({"preset": "hitl-complete3", "run": {"until_s": 0.1},
                   "clock": {"start_s": 0.0}},
                  grid={"topology": [{"kind": "star", "k": 3}, {"kind": "cycle", "n": 4}],
                        "clock.offsets_ppm": [{"random_ppm": 20.0}]})
    sweep.check()  # the preset's n = 3 is dropped along with its topology table
    topo = [r.config["topology"] for r in sweep.runs()]
    assert topo == [{"kind": "star", "k": 3, "latency_s": 1e-8},
                    {"kind": "cycle", "n": 4, "latency_s": 1e-8}]


def test_spec_file_quoted_and_dotted_keys_agree(tmp_path):
    quoted = tmp_path / "quoted.toml"
    dotted = tmp_path / "dotted.toml"
    quoted.write_text('seed = 4\nsamples = 2\nuntil_s = 0.5\nfidelity = "cycle"\n'
                      '[base]\npreset = "hitl-line4"\n'
                      '[grid]\n"controller.kp" = [1e-7, 2e-7]\n'
                      '[random]\n"clock.offsets_ppm.random_ppm" = {uniform = [0, 10]}\n')
    dotted.write_text('seed = 4\nsamples = 2\nuntil_s = 0.5\nfidelity = "cycle"\n'
                      '[base]\npreset = "hitl-line4"\n'
                      '[grid]\ncontroller.kp = [1e-7, 2e-7]\n'
                      '[random]\nclock.offsets_ppm.random_ppm = {uniform = [0, 10]}\n')
    a, b = load_sweep(quoted), load_sweep(dotted)
    assert [r.run_id for r in a.runs()] == [r.run_id for r in b.runs()]
    assert a.runs()[0].config["run"] == {"until_s": 0.5, "fidelity": "cycle"}
    assert a.to_dict()["grid"] == {"controller.kp": [1e-7, 2e-7]}
    assert [r.run_id for r in load_sweep(a.to_dict()).runs()] == [r.run_id for r in a.runs()]


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"grid": {"topology.n": []}}, "grid.topology.n", "non-empty list"),
        ({"grid": {"topology.n": 4}}, "grid.topology.n", "list of values"),
        ({"grid": {"topology..n": [4]}}, "grid.topology..n", "dotted config key"),
        ({"random": {"controller.kp": {"unifrom": [0, 1]}}, "samples": 2},
         "random.controller.kp.unifrom", "did you mean 'uniform'"),
        ({"random": {"controller.kp": {"uniform": [2, 1]}}, "samples": 2},
         "random.controller.kp.uniform", "lo <= hi"),
        ({"random": {"controller.kp": {"log_uniform": [0, 1]}}, "samples": 2},
         "random.controller.kp.log_uniform", "0 < lo"),
        ({"random": {"controller.kp": {"choice": []}}, "samples": 2},
         "random.controller.kp.choice", "non-empty"),
        ({"random": {"controller.kp": {"uniform": [0, 1]}}}, "samples", "must be >= 1"),
        ({"samples": 3}, "samples", "[random]"),
        ({"repeats": 0}, "repeats", ">= 1"),
        ({"seed": -1}, "seed", ">= 0"),
        ({"grid": {"clock": [{}]}, "random": {"clock.theta0": {"uniform": [0, 0.5]}},
          "samples": 1}, "random.clock.theta0", "overlaps"),
        ({"until_s": 0}, "until_s", "> 0"),
        ({"fidelity": "fast"}, "fidelity", "'event'"),
    ],
)
def test_malformed_specs(kwargs, field, words):
    with pytest.raises(ConfigError) as err:
        Sweep(BASE, **kwargs)
    assert err.value.field == field
    assert words in str(err.value)


def test_invalid_run_config_names_the_run():
    sweep = Sweep(BASE, grid={"topology.n": [3, 1]})
    with pytest.raises(ConfigError) as err:
        sweep.check()
    msg = str(err.value)
    assert msg.startswith("topology") and msg.endswith("(in run 1: topology.n=1)")
    with pytest.raises(ConfigError, match="is not a known key"):
        Sweep(BASE, grid={"controller.kpp": [1.0]}).check()
    with pytest.raises(ConfigError, match="did you mean 'grid'"):
        load_sweep({"base": BASE, "gird": {}})
    with pytest.raises(ConfigError, match="base"):
        load_sweep({"grid": {"topology.n": [3]}})


# ---------------------------------------------------------------------- in-process


def test_run_sweep_table_and_resume(tmp_path):
    sweep = Sweep(BASE, grid={"topology.n": [3, 4]}, repeats=3, seed=5)
    calls = []
    with cf.ThreadPoolExecutor(2) as pool:
        res = run_sweep(sweep, tmp_path, executor=pool, workers=2,
                        progress=lambda done, total: calls.append((done, total)))
    assert (res.total, res.ran, res.skipped, res.errors, res.missing) == (6, 6, 0, 0, 0)
    assert calls[-1] == (6, 6)
    assert [r["index"] for r in res.rows] == list(range(6))
    row = res.rows[0]
    assert list(row)[:6] == ["run_id", "index", "sample", "repeat", "seed", "topology.n"]
    for key in ("energy", "energy_spread", "settle_time_s", "final_frequency_ppm",
                "max_abs_count", "links_settled", "faults", "algebraic_connectivity",
                "predicted_energy", "error", "wall_s", "run_s", "worker"):
        assert key in row, key
    assert row["nodes"] == 3 and res.rows[3]["nodes"] == 4
    assert row["predicted_energy"] > 0 and row["error"] is None
    header = (tmp_path / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == list(row)[:6] and len(header) == len(row)
    assert json.loads((tmp_path / "sweep.json").read_text())["repeats"] == 3
    # a second call finds everything done and runs nothing (no executor needed)
    again = run_sweep(sweep, tmp_path, progress=False)
    assert (again.ran, again.skipped) == (0, 6)
    assert again.rows == res.rows
    assert to_table(tmp_path, sweep) == res.rows


def test_half_written_last_line_is_dropped_and_redone(tmp_path):
    sweep = Sweep(BASE, repeats=4, seed=9)
    with cf.ThreadPoolExecutor(1) as pool:
        first = run_sweep(sweep, tmp_path, executor=pool, progress=False)
    path = tmp_path / "results.jsonl"
    data = path.read_bytes()
    cut = data.rstrip(b"\n").rfind(b"\n") + 1 + 25  # 25 bytes into the last row
    path.write_bytes(data[:cut])
    assert len(to_table(tmp_path)) == 3  # readers ignore the torn line
    with cf.ThreadPoolExecutor(1) as pool:
        second = run_sweep(sweep, tmp_path, executor=pool, progress=False)
    assert (second.ran, second.skipped) == (1, 3)
    ids = [json.loads(line)["run_id"] for line in path.read_text().splitlines()]
    assert sorted(ids) == sorted(r.run_id for r in sweep.runs())
    assert stable_rows(second.rows) == stable_rows(first.rows)


class _LosesFirstTask(cf.ThreadPoolExecutor):
    """An executor whose first task fails, as if its worker had been killed."""

    lost = False

    def submit(self, fn, /, *args, **kwargs):
        if not self.lost:
            self.lost = True
            fut = cf.Future()
            fut.set_exception(RuntimeError("worker killed"))
            return fut
        return super().submit(fn, *args, **kwargs)


def test_lost_task_is_reported_and_resumed(tmp_path):
    sweep = Sweep(BASE, repeats=4, seed=3)
    with _LosesFirstTask(1) as pool, pytest.raises(SweepIncomplete) as err:
        run_sweep(sweep, tmp_path, executor=pool, chunk_size=1, progress=False)
    assert "1 of 4 runs did not finish" in str(err.value)
    assert "worker killed" in str(err.value)
    assert err.value.result.ran == 3
    with cf.ThreadPoolExecutor(1) as pool:
        res = run_sweep(sweep, tmp_path, executor=pool, progress=False)
    assert (res.ran, res.skipped, res.missing) == (1, 3, 0)


def test_unstable_runs_are_rows_with_an_error(tmp_path):
    sweep = Sweep(BASE, grid={"controller.kp": [1e-6, 1e-3]})
    with cf.ThreadPoolExecutor(1) as pool:
        res = run_sweep(sweep, tmp_path, executor=pool, progress=False)
    ok, bad = res.rows
    assert ok["error"] is None and res.errors == 1
    assert "unstable" in bad["error"] and bad["stopped_early"] is True


def test_default_process_pool(tmp_path):
    sweep = Sweep(BASE, repeats=4, seed=21)
    res = run_sweep(sweep, tmp_path, workers=2, progress=False)
    with cf.ThreadPoolExecutor(2) as pool:
        ref = run_sweep(sweep, tmp_path / "threads", executor=pool, progress=False)
    assert stable_rows(res.rows) == stable_rows(ref.rows)
    assert len({r["worker"] for r in res.rows} - {r["worker"] for r in ref.rows}) >= 1


def test_directory_in_use_is_refused(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         f"fd = os.open({str(tmp_path / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.lockf(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match="in use by another running sweep"):
            run_sweep(Sweep(BASE), tmp_path, progress=False)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


# ---------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """The end-to-end spec and its uninterrupted table (local process pool)."""
    root = tmp_path_factory.mktemp("sweep")
    spec = root / "spec.toml"
    spec.write_text(f"samples = {E2E_SAMPLES}\n" + E2E_SPEC)
    out = tidesim("sweep", str(spec), "--out", str(root / "reference"), "--workers", "2")
    assert out.returncode == 0, out.stderr
    assert f"{E2E_RUNS} runs: {E2E_RUNS} run now, 0 already done" in out.stdout
    assert out.stderr == ""  # no progress bar when stderr is not a terminal
    rows = to_table(root / "reference")
    assert len(rows) == E2E_RUNS
    return spec, root, stable_rows(rows)


def _proc_state(pid: int) -> str | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except FileNotFoundError:
        return None
    return None


def test_killed_sweep_resumes_to_the_same_table(e2e):
    spec, root, reference = e2e
    out = root / "killed"
    jsonl = out / "results.jsonl"
    cmd = [sys.executable, "-m", "tidesim", "sweep", str(spec), "--out", str(out),
           "--workers", "2", "--chunk", "1"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if jsonl.exists() and jsonl.read_bytes().count(b"\n") >= 3:
                break
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    before = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    assert 3 <= len(before) < E2E_RUNS, "killed part-way"
    # the workers went down with the sweep (they are dead, at most not yet reaped)
    if sys.platform.startswith("linux"):
        pids = {int(r["worker"].rsplit(":", 1)[1]) for r in before}
        time.sleep(0.5)
        assert all(_proc_state(pid) in (None, "Z", "X") for pid in pids)

    res = tidesim("sweep", str(spec), "--out", str(out), "--workers", "2")
    assert res.returncode == 0, res.stderr
    done = len({r["run_id"] for r in before})
    assert f"{E2E_RUNS - done} run now, {done} already done" in res.stdout
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    counts = collections.Counter(r["run_id"] for r in lines)
    assert set(counts) == set(reference) and set(counts.values()) == {1}
    assert stable_rows(to_table(out)) == reference


def test_dask_local_cluster_gives_the_same_table(e2e):
    pytest.importorskip("distributed")
    spec, root, reference = e2e
    out = root / "dask"
    res = tidesim("sweep", str(spec), "--out", str(out), "--dask-local", "2")
    assert res.returncode == 0, res.stderr
    rows = to_table(out)
    assert stable_rows(rows) == reference
    assert len({r["worker"] for r in rows}) == 2  # both Dask workers ran some


@pytest.mark.parametrize(
    ("spec", "flags", "words"),
    [
        ('[base]\npreset = "hitl8"\n[grid]\n"topology.n" = 4\n', (),
         ("grid.topology.n", "list of values")),
        ('samples = 2\n[base]\npreset = "hitl8"\n[random]\n"controller.kp" = {normal = [0, 1]}\n',
         (), ("random.controller.kp.normal", "not a known distribution")),
        ('[base]\npreset = "hitl8"\n[grid]\n"clock.theta0" = [0.5, 1.5]\n', (),
         ("clock.theta0", "got 1.5", "(in run 1: clock.theta0=1.5)")),
        ('[base]\npreset = "hitl8"\n', ("--workers", "0"), ("--workers", "0", ">= 1")),
    ],
    ids=["grid-not-a-list", "unknown-distribution", "invalid-run", "zero-workers"],
)
def test_bad_spec_is_one_line_exit_2(tmp_path, spec, flags, words):
    path = tmp_path / "spec.toml"
    path.write_text(spec)
    res = tidesim("sweep", str(path), "--out", str(tmp_path / "out"), *flags)
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tidesim: error: "), res.stderr
    for word in words:
        assert word in lines[0]
    assert not (tmp_path / "out").exists()  # nothing ran
