"""Backends: where a bittide system's results go, and where its runs run.

* :mod:`tidesim.backends.hardware` -- :class:`Backend`, the hardware
  interface (nodes, links, time, start / stop / health, results), made by
  name with :func:`make_backend` (``--backend``; ``docs/backends.md``).

* :mod:`tidesim.backends.vcd` -- :func:`write_vcd` writes a run's waveforms
  as a VCD file with a GTKWave save file beside it (``docs/waveforms.md``);
  :func:`write_app_vcd` does the same for an application run in logical time
  (``docs/schedule.md``).
* :mod:`tidesim.backends.executors` -- :class:`SweepExecutor`, the workers a
  sweep's runs go to, made by name with :func:`make_executor`: ``"processes"``
  (local worker processes) or ``"dask"`` (a Dask cluster).

Names are imported on first use, so ``import tidesim.backends`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Backend",
    "ExecutorAdapter",
    "HardwareRun",
    "InProcessBackend",
    "NodeFailure",
    "SweepExecutor",
    "backend_names",
    "executor_names",
    "gtkw_path",
    "make_backend",
    "make_executor",
    "register_backend",
    "register_executor",
    "write_app_vcd",
    "write_vcd",
]

_MODULES = {
    "Backend": "hardware",
    "HardwareRun": "hardware",
    "InProcessBackend": "hardware",
    "NodeFailure": "hardware",
    "backend_names": "hardware",
    "make_backend": "hardware",
    "register_backend": "hardware",
    "gtkw_path": "vcd",
    "write_vcd": "vcd",
    "write_app_vcd": "vcd",
    "ExecutorAdapter": "executors",
    "SweepExecutor": "executors",
    "executor_names": "executors",
    "make_executor": "executors",
    "register_executor": "executors",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
