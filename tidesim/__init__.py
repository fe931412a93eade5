"""tidesim: cycle-accurate models of bittide distributed systems.

Subpackages: :mod:`tidesim.models` (the core), :mod:`tidesim.controllers`,
:mod:`tidesim.calendars`, :mod:`tidesim.waves`, :mod:`tidesim.backends`,
:mod:`tidesim.studies`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
