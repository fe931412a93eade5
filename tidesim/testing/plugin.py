"""The ``tidesim`` pytest plugin (entry point ``pytest11``, loaded automatically).

* Fixture ``bittide_system``: a factory building :class:`~tidesim.models.System`
  objects whose runs are recorded on the test.
* While a test runs, every trace produced by such a system, by
  :func:`~tidesim.testing.run_cycles` or checked by one of the
  ``assert_*`` helpers is recorded on it.
* When the test fails, the plugin writes each recorded trace as a VCD and a
  GTKWave save file under ``<rootdir>/<tidesim_waves_dir>/<test node id>/``
  and adds a "tidesim waveforms" section with their paths to the failure
  report. The ini option ``tidesim_waves_dir`` (default ``tidesim-waves``)
  sets the directory; a relative one is taken from the rootdir. The paths
  are also the test's ``user_properties`` ``tidesim_vcd`` and
  ``tidesim_gtkw``, which ``pytest --junitxml`` writes as properties.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from . import checks

__all__ = ["WAVES_DIR_INI", "waves_dir_for"]

WAVES_DIR_INI = "tidesim_waves_dir"
_DEFAULT_DIR = "tidesim-waves"
_TRACES = pytest.StashKey[list]()
_WRITTEN = pytest.StashKey[list]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(WAVES_DIR_INI, "directory (relative to the rootdir) where tidesim writes the "
                  "waveforms of failing tests", default=_DEFAULT_DIR)


def waves_dir_for(config: pytest.Config, nodeid: str) -> Path:
    """The directory that receives the waveforms of the test ``nodeid``."""
    base = Path(config.getini(WAVES_DIR_INI) or _DEFAULT_DIR)
    if not base.is_absolute():
        base = Path(config.rootpath) / base
    parts = [re.sub(r"[^A-Za-z0-9._=-]+", "_", p).strip("_") or "_"
             for p in re.split(r"::|/", nodeid) if p]
    parts = [p if p not in (".", "..") else "_" for p in parts]
    return base.joinpath(*parts)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    traces: list = []
    item.stash[_TRACES] = traces

    def record(trace) -> None:
        if not any(t is trace for t in traces):
            traces.append(trace)

    checks._recorder.append(record)
    try:
        return (yield)
    finally:
        checks._recorder.remove(record)


def _write_waves(item: pytest.Item) -> tuple[list[str], list[tuple[str, str]]]:
    """Write the recorded traces of ``item``.

    Returns:
        The report's lines, and the ``(name, path)`` properties of the files written.
    """
    from ..backends.vcd import gtkw_path, write_vcd

    out = waves_dir_for(item.config, item.nodeid)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    lines: list[str] = []
    properties: list[tuple[str, str]] = []
    for n, trace in enumerate(item.stash.get(_TRACES, [])):
        path = out / f"trace_{n}.vcd"
        desc = (f"trace {n}: {trace.fidelity} fidelity, {trace.n_nodes} nodes, "
                f"{trace.until_s:.9g} s")
        try:
            write_vcd(trace, path)
        except Exception as exc:  # the report must not hide the test's own failure
            lines.append(f"{desc}: could not write waveforms: {exc!r}")
            continue
        lines.append(f"{desc}\n  VCD:  {path}\n  view: gtkwave {gtkw_path(path)}")
        properties += [("tidesim_vcd", str(path)), ("tidesim_gtkw", str(gtkw_path(path)))]
    return lines, properties


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and item.stash.get(_TRACES, None) and _WRITTEN not in item.stash:
        lines, properties = _write_waves(item)
        item.stash[_WRITTEN] = lines
        report.sections.append(("tidesim waveforms", "\n".join(lines)))
        report.user_properties.extend(properties)
        # --junitxml records the properties of the teardown report, which
        # copies the item's: this report was made before they were added
        item.user_properties.extend(properties)
    return report


@pytest.fixture
def bittide_system():
    """A factory of :class:`~tidesim.models.System` objects whose runs are recorded.

    ``bittide_system(config=None, /, **kwargs)``:

    * ``bittide_system("hitl8", seed=3)`` -- a preset name (or a path to a
      TOML config file); keyword arguments are config keys merged on top
      (``buffer={"depth": 64}``).
    * ``bittide_system({"topology": {...}, ...}, **overrides)`` -- a config dict.
    * ``bittide_system(topology=Topology.complete(3), offsets_ppm=[...])`` --
      no config: the keyword arguments are :class:`System`'s own.

    Every trace the returned system's ``run`` produces is recorded on the
    test, so the plugin can write its waveforms if the test fails.
    """
    return checks.make_system
