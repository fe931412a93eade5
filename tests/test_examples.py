"""The worked studies of ``docs/studies.md`` run, and what they find holds.

Every script ``docs/examples/*.py`` (not the ``_*.py`` helpers) runs with
``--small`` in a subprocess, as a reader would start it, into a temporary
directory; its summary table and plots must be there, and the numbers sane.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "docs" / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# what each study writes besides summary.csv / summary.md
PLOTS = {
    "settle_vs_kp": ["settle_vs_kp.png", "energy_ratio.png"],
    "step_size": ["settle_time.png", "largest_count.png"],
    "size_scaling": ["settle_time.png", "largest_count.png"],
    "custom_controller": ["settle_time.png", "largest_count.png"],
    "bittide_vs_packets": ["time_vs_size.png", "time_vs_nodes.png", "speedup.png"],
}


def run_small(script: Path, out: Path) -> list[dict[str, str]]:
    """Run ``script --small --out OUT``; returns the rows of its summary.csv."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, str(script), "--small", "--out", str(out),
                           "--workers", "2"], capture_output=True, text=True, cwd=out.parent,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "runs in" in done.stdout and "| " in done.stdout
    for name in ["summary.md", *PLOTS[script.stem]]:
        assert (out / name).is_file(), name
    for name in PLOTS[script.stem]:
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000
    assert (out / "runs" / "results.csv").is_file()
    with (out / "summary.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def number(cell: str) -> float | None:
    return float(cell) if cell else None


def test_every_example_has_its_test():
    assert {p.stem for p in SCRIPTS} == set(PLOTS)


def test_settle_vs_kp(tmp_path):
    rows = run_small(EXAMPLES / "settle_vs_kp.py", tmp_path / "out")
    assert len(rows) == 4
    for row in rows:
        # the loop spends the energy the Laplacian predicts
        assert abs(number(row["energy_ratio_mean"]) - 1.0) < 0.05
    by = {(r["topology_name"], float(r["controller.kp"])): r for r in rows}
    # a larger gain settles sooner; the cycle is slower than the complete graph
    assert number(by["complete-8", 1e-7]["settle_time_s_mean"]) < number(
        by["complete-8", 1e-8]["settle_time_s_mean"])
    assert by["cycle-8", 1e-8]["settle_time_s_missing"] == "1"  # not within 6 s


def test_step_size(tmp_path):
    rows = run_small(EXAMPLES / "step_size.py", tmp_path / "out")
    assert [r["preset"] for r in rows] == ["hitl-diamond", "hitl-complete3"]
    for row in rows:
        assert number(row["settle_500"]) < number(row["settle_10"])
        assert 0 < number(row["count_500"]) <= number(row["count_10"])


def test_size_scaling(tmp_path):
    rows = run_small(EXAMPLES / "size_scaling.py", tmp_path / "out")
    assert [(r["family"], r["nodes"]) for r in rows] == [
        ("cycle", "4"), ("cycle", "6"), ("torus", "9"), ("hypercube", "4")]
    for row in rows:
        assert number(row["max_abs_count_mean"]) > 0
    lam2 = {r["topology_name"]: number(r["algebraic_connectivity_mean"]) for r in rows}
    assert lam2["cycle-4"] == pytest.approx(2.0) and lam2["cycle-6"] == pytest.approx(1.0)


def test_custom_controller(tmp_path):
    rows = run_small(EXAMPLES / "custom_controller.py", tmp_path / "out")
    assert [float(r["band_frames"]) for r in rows] == [0.0, 64.0]
    plain, banded = rows
    assert number(plain["settle_time_s_mean"]) is not None
    assert number(banded["settle_time_s_mean"]) is not None
    # the dead band lets the counts lock further from the centre
    assert number(banded["max_abs_count_mean"]) > number(plain["max_abs_count_mean"])


def test_bittide_vs_packets(tmp_path):
    from tidesim.packetnet import allreduce, ring_closed_form

    out = tmp_path / "out"
    rows = run_small(EXAMPLES / "bittide_vs_packets.py", out)
    by = {(int(r["nodes"]), int(r["size"])): r for r in rows}
    assert list(by) == [(n, v) for n in (2, 4) for v in (1, 64, 4096, 1_048_576)]
    f_hz, latency_s = 125e6, 1e-8  # the rig: 125 MHz, 10 ns links
    rate = 8 * f_hz  # one 64-bit frame per tick
    for (n, v), row in by.items():
        # the packet times are the packet network's own, at the bittide link's rate
        for alg in ("naive", "tree", "stream"):
            if v <= 4096:
                assert number(row[f"packet_{alg}_s"]) == allreduce(alg, n, latency_s, rate,
                                                                   v).time_s
        # naive in closed form: L + 8V(N-1)/R + 1e-9·N·V
        assert number(row["packet_naive_s"]) == pytest.approx(
            latency_s + 8 * v * (n - 1) / rate + 1e-9 * n * v, rel=1e-12)
    with (out / "runs" / "closed_form.csv").open(newline="", encoding="utf-8") as fh:
        checks = list(csv.DictReader(fh))
    # the closed forms the large vectors use agree with every real schedule, cycle for cycle
    assert {(c["app"], c["role"]) for c in checks} == {("ring", "check"), ("tree", "check"),
                                                       ("tree", "fit")}
    for c in checks:
        assert number(c["scheduled_cycles"]) == number(c["closed_form_cycles"]), c
    assert sum(c["app"] == "ring" and c["nodes"] == "4" for c in checks) == 8  # 4 .. 512
    assert {int(c["length"]) for c in checks if c["app"] == "tree" and c["role"] == "check"} == {
        128, 320}

    # latency-bound: one element on 4 nodes. The packet network's naive send is one
    # 10 ns message; bittide's best (the tree on 8 nodes) is five store-and-forward steps
    # over seven hops, each ~17.7 cycles of logical latency (the elastic buffer) plus a
    # switch cycle: 133 cycles
    r = by[(4, 1)]
    assert (r["winner"], r["packet_best"], r["bittide_best"]) == ("packet", "naive", "tree")
    assert number(r["bittide_s"]) * f_hz == pytest.approx(133)
    assert number(r["speedup"]) < 0.05
    # at the latency where they tie, the packet network's best equals bittide's time
    tie = number(r["tie_latency_s"])
    assert 1e-6 < tie < 1.1e-6
    assert min(allreduce(a, 4, tie, rate, 1).time_s for a in ("naive", "tree", "stream")) == \
        pytest.approx(number(r["bittide_s"]), rel=1e-9)

    # bandwidth-bound: 2^20 elements on 4 nodes. Bittide's ring (closed form: beyond the
    # calendars) takes M = ceil(1.25 · 2(n-1)c) cycles, the scheduler's step above the
    # link load, plus the spread of the nodes' last firings; the packet stream ~3.44 cycles
    # per element
    r = by[(4, 1_048_576)]
    assert (r["winner"], r["packet_best"], r["bittide_best"]) == ("bittide", "stream", "ring")
    c = 1_048_576 // 4
    with (out / "runs" / "schedules.csv").open(newline="", encoding="utf-8") as fh:
        route = next(json.loads(s["route_cycles"]) for s in csv.DictReader(fh)
                     if s["app"] == "ring" and s["nodes"] == "4")
    form = ring_closed_form(route, c)
    assert form.metacycle_cycles == math.ceil(1.25 * 2 * 3 * c)
    ring_s = number(r["bittide_ring_s"])
    assert ring_s * f_hz == pytest.approx(form.cycles, abs=1e-6)
    assert number(r["speedup"]) == pytest.approx(number(r["packet_stream_s"]) / ring_s)
    assert number(r["speedup"]) == pytest.approx(3.4375 / 1.875, rel=1e-3)
    # two nodes, bandwidth-bound: naive's compute (0.25 cycles per element) and the
    # ring's metacycle step (a quarter of its load) make them tie to within 2 cycles
    r = by[(2, 1_048_576)]
    assert abs(number(r["packet_s"]) - number(r["bittide_s"])) * f_hz < 2


def test_ring_closed_form_is_the_schedule():
    """The ring's closed form (what the study extrapolates with) against the
    scheduler, on rings of n + 1 nodes with seeded, uneven logical latencies."""
    import numpy as np

    from tidesim.calendars import LogicalNetwork, schedule
    from tidesim.packetnet import completion_cycles, ring_closed_form, ring_route_cycles
    from tidesim.waves.apps import get_app

    rng = np.random.default_rng(7)
    for n in (2, 3, 5):
        ring = LogicalNetwork.ring(n + 1)
        net = LogicalNetwork(n + 1, ring.links, rng.integers(3, 30, ring.n_links))
        for c in (1, 3, 17, 40):
            sched = schedule(get_app("allreduce-ring", n + 1, length=n * c).graph(), net,
                             "one-to-one")
            form = ring_closed_form(ring_route_cycles(sched), c)
            assert (completion_cycles(sched), sched.metacycle_cycles) == (
                form.cycles, form.metacycle_cycles), (n, c)
            assert form.need_cycles <= form.metacycle_cycles
