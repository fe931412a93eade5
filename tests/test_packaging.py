"""What ``pyproject.toml`` promises is there: package data, extras, their names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_data_pattern_matches_a_file():
    for package, patterns in PYPROJECT["tool"]["setuptools"]["package-data"].items():
        root = REPO / package.replace(".", "/")
        for pattern in patterns:
            assert list(root.glob(pattern)), f"{package}: {pattern} matches no file"
    assert (REPO / "tidesim" / "py.typed").is_file()


def test_the_pyvcd_extra_is_vcd():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert any(req.startswith("pyvcd") for req in extras["vcd"])
    # `waves` is the name of the application DSL, tidesim.waves
    assert "waves" not in extras
    assert re.search(r"\bvcd\b", extras["all"][0])


def test_no_file_names_the_old_extra():
    files = [REPO / "README.md", REPO / "Makefile", REPO / "pyproject.toml",
             *REPO.glob("docs/**/*.md"), *REPO.glob("docs/**/*.py"), *REPO.glob("tidesim/**/*.py")]
    old = "tidesim" + "[waves"  # split, so that this file does not match itself
    assert not [f.name for f in files if old in f.read_text(encoding="utf-8")]
