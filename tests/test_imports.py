"""Import directions between the subpackages, so that no cycle can creep in.

* ``tidesim.controllers`` never imports ``tidesim.models`` (a controller is
  compiled against a ``ControlContext``, not a ``System``);
* ``tidesim.models`` imports from ``tidesim.controllers`` only the step
  contract and the stability detector (``_contract``, ``_detector``);
* ``tidesim._checks`` imports neither;
* each of them imports on its own, first, in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "tidesim"
MODELS_MAY_USE = {"tidesim.controllers._contract", "tidesim.controllers._detector"}


def _loaded_by(module: str) -> set[str]:
    """The ``tidesim`` modules that importing ``module`` loads, in a fresh interpreter."""
    code = (f"import json, sys, {module}; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('tidesim'))))")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=120, check=True)
    return set(json.loads(out.stdout))


def _imports(path: Path) -> set[str]:
    """Absolute names of the ``tidesim`` modules a file imports (at any depth)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return {n for n in names if n.startswith("tidesim")}


@pytest.mark.parametrize("module", ["tidesim._checks", "tidesim.controllers", "tidesim.models",
                                    "tidesim.config"])
def test_each_subpackage_imports_first(module):
    assert module in _loaded_by(module)


def test_controllers_do_not_load_the_models():
    loaded = _loaded_by("tidesim.controllers")
    assert not {m for m in loaded if m.startswith(("tidesim.models", "tidesim.config"))}


def test_checks_load_nothing_but_the_errors():
    assert _loaded_by("tidesim._checks") == {"tidesim", "tidesim._checks", "tidesim.errors"}


@pytest.mark.parametrize("path", sorted((PACKAGE / "controllers").glob("*.py")),
                         ids=lambda p: p.name)
def test_no_controller_module_imports_the_models(path):
    assert not {m for m in _imports(path) if m.startswith("tidesim.models")}


@pytest.mark.parametrize("path", sorted((PACKAGE / "models").glob("*.py")), ids=lambda p: p.name)
def test_models_use_only_the_controller_contract(path):
    used = {m for m in _imports(path) if m.startswith("tidesim.controllers")}
    # ``from ..controllers._contract import X`` names the module and its member
    other = {m for m in used if not any(m == ok or m.startswith(f"{ok}.") for ok in MODELS_MAY_USE)}
    assert not other, sorted(other)
