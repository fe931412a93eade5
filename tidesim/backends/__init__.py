"""Backends: where a bittide system's results go, and (later) where it runs.

* :mod:`tidesim.backends.vcd` -- :func:`write_vcd` writes a run's waveforms
  as a VCD file with a GTKWave save file beside it (``docs/waveforms.md``).

Names are imported on first use, so ``import tidesim.backends`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["gtkw_path", "write_vcd"]


def __getattr__(name: str) -> Any:
    if name in ("gtkw_path", "write_vcd"):
        from . import vcd

        return getattr(vcd, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
