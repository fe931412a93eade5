"""The examples in the docstrings of the checks, the parts and the controllers run."""

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
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
