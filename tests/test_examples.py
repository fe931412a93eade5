"""The worked studies of ``docs/studies.md`` run, and what they find holds.

Every script ``docs/examples/*.py`` (not the ``_*.py`` helpers) runs with
``--small`` in a subprocess, as a reader would start it, into a temporary
directory; its summary table and plots must be there, and the numbers sane.
"""

from __future__ import annotations

import csv
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
