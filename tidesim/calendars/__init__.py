"""bittide-hardware's calendars: gather, scatter and switch schedules, and the unit running them.

A :class:`Calendar` is an immutable list of ``(configuration, repeat)``
entries of one kind (``gather``, ``scatter`` or ``switch``), checked against
the :class:`Hardware` sizes; a :class:`CalendarUnit` runs one, cycle by cycle
(:meth:`~CalendarUnit.step`) or many cycles at once in a compiled kernel
(:meth:`~CalendarUnit.run`, returning a :class:`CalendarRun`), and swaps in a
shadow calendar at metacycle boundaries. See ``docs/calendars.md``.

On top of them: the scheduler (:func:`place`, :func:`schedule` -> a
:class:`Schedule` of an SDF graph on a :class:`LogicalNetwork`), the
independent :func:`check_schedule`, the logical-time executor
(:func:`execute` -> a :class:`LogicalRun`; an :class:`Execution` stepped
whole, or node by node with :func:`run_node` exchanging :class:`Frames`
through a :class:`FramePort`) and :func:`run_app`, which couples an
application to a physical run. See ``docs/schedule.md`` and
``docs/backends.md``.
"""

from ._calendar import (
    KINDS,
    MAX_CALENDAR_DEPTH,
    MAX_MEMORY_WORDS,
    MAX_REPEAT,
    Calendar,
    Hardware,
    idle_value,
)
from ._checker import ScheduleError, check_schedule
from ._executor import Crash, Execution, LogicalRun, execute
from ._network import LogicalNetwork
from ._nodes import FramePort, Frames, run_node
from ._run import AppFault, AppRun, run_app, synchronise
from ._schedule import Schedule, place, schedule
from ._tables import Tables, build_tables, calendars_of, check_hardware
from ._unit import CalendarRun, CalendarUnit

__all__ = [
    "AppFault",
    "AppRun",
    "Crash",
    "Execution",
    "FramePort",
    "Frames",
    "KINDS",
    "MAX_CALENDAR_DEPTH",
    "MAX_MEMORY_WORDS",
    "MAX_REPEAT",
    "Calendar",
    "CalendarRun",
    "CalendarUnit",
    "Hardware",
    "LogicalNetwork",
    "LogicalRun",
    "Schedule",
    "ScheduleError",
    "Tables",
    "build_tables",
    "calendars_of",
    "check_hardware",
    "check_schedule",
    "execute",
    "idle_value",
    "place",
    "run_app",
    "run_node",
    "schedule",
    "synchronise",
]
