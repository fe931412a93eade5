"""The examples in the docstrings of the checks, the parts, the controllers, the
calendars and the waves DSL run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tidesim._checks",
    "tidesim.models.parts",
    "tidesim.models.system",
    "tidesim.controllers",
    "tidesim.controllers._contract",
    "tidesim.controllers.bangbang",
    "tidesim.controllers.compose",
    "tidesim.controllers.pi",
    "tidesim.controllers.proportional",
    "tidesim.controllers.reframing",
    "tidesim.controllers.stability",
    "tidesim.calendars._calendar",
    "tidesim.calendars._unit",
    "tidesim.calendars._network",
    "tidesim.calendars._executor",
    "tidesim.calendars._run",
    "tidesim.backends.hardware",
    "tidesim.models._partition",
    "tidesim.waves",
    "tidesim.waves._action",
    "tidesim.waves._compile",
    "tidesim.waves._functional",
    "tidesim.waves._graph",
    "tidesim.waves._ports",
    "tidesim.rtl",
    "tidesim.packetnet._loop",
    "tidesim.packetnet._network",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
