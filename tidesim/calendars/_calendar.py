"""Calendars: bittide-hardware's schedule of what each port does on each cycle.

A calendar is a list of entries ``(configuration, repeat)``; an entry holds
for ``repeat + 1`` cycles, and one pass over all entries is a *metacycle* of
``sum(repeat + 1)`` cycles. The configuration holds one integer per port,
whose meaning depends on the kind:

* ``gather`` (transmit), per outgoing link: the Tx-memory word address sent
  this cycle, ``-1`` = send nothing (a null frame);
* ``scatter`` (receive), per incoming link: the Rx-memory word address the
  arriving frame is written to, ``-1`` = discard it;
* ``switch``, per output port: the input it forwards, ``0`` = a null frame,
  ``k`` = input ``k - 1``.

    >>> from tidesim.calendars import Calendar
    >>> cal = Calendar("gather", [((0, -1), 2), ((1, 5), 0)], ports=2)
    >>> cal.metacycle_cycles
    4
    >>> cal.expand().tolist()
    [[0, -1], [0, -1], [0, -1], [1, 5]]
    >>> Calendar("scatter", [((4096,), 0)], ports=1)
    Traceback (most recent call last):
    ...
    tidesim.errors.ConfigError: scatter.entries[0].configuration[0]: must be an integer in \
[-1, 4095] (-1 = discard; rx_words = 4096), got 4096
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .._checks import choice, instance, integer, is_integer, set_fields
from ..errors import ConfigError

__all__ = [
    "KINDS",
    "MAX_CALENDAR_DEPTH",
    "MAX_MEMORY_WORDS",
    "MAX_REPEAT",
    "Calendar",
    "Hardware",
    "idle_value",
]

KINDS = ("gather", "scatter", "switch")
"""The calendar kinds, in data-path order (transmit, route, receive)."""

MAX_CALENDAR_DEPTH = 1 << 20
"""Largest ``Hardware.calendar_depth`` accepted (entries of one calendar)."""
MAX_REPEAT = (1 << 32) - 1
"""Largest ``Hardware.max_repeat`` accepted (a 32-bit repeat counter); with
:data:`MAX_CALENDAR_DEPTH` a metacycle stays far below 2**63 cycles."""
MAX_MEMORY_WORDS = 1 << 24
"""Largest ``Hardware.tx_words`` / ``rx_words`` accepted (64-bit words)."""


@dataclass(frozen=True)
class Hardware:
    """The sizes a calendar must fit in: one node's calendar and frame memories.

    The defaults are those of a small bittide-hardware build; every field is
    checked against a hard limit of this model.

    Attributes:
        calendar_depth: entries one calendar (active or shadow) holds, in
            ``[1, 2**20]``.
        tx_words: words (64-bit frames) of the transmit memory a gather
            calendar addresses, in ``[1, 2**24]``.
        rx_words: words of the receive memory a scatter calendar addresses,
            in ``[1, 2**24]``.
        max_repeat: largest repeat count of one entry (the width of the
            hardware's repeat counter), in ``[0, 2**32 - 1]``; an entry holds for
            at most ``max_repeat + 1`` cycles.
    """

    calendar_depth: int = 1024
    tx_words: int = 4096
    rx_words: int = 4096
    max_repeat: int = (1 << 16) - 1

    def __post_init__(self) -> None:
        set_fields(
            self,
            calendar_depth=integer("hardware.calendar_depth", self.calendar_depth,
                                   lo=1, hi=MAX_CALENDAR_DEPTH),
            tx_words=integer("hardware.tx_words", self.tx_words, lo=1, hi=MAX_MEMORY_WORDS),
            rx_words=integer("hardware.rx_words", self.rx_words, lo=1, hi=MAX_MEMORY_WORDS),
            max_repeat=integer("hardware.max_repeat", self.max_repeat, lo=0, hi=MAX_REPEAT),
        )


def idle_value(kind: str) -> int:
    """The configuration value of a port that does nothing: ``-1`` (gather,
    scatter: no frame sent, frame discarded) or ``0`` (switch: null frame)."""
    return 0 if choice("calendar.kind", kind, KINDS) == "switch" else -1


def _is_sequence(value: object) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim >= 1
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


class _Described:
    """An array as an error message shows it: its dtype and shape, on one line."""

    def __init__(self, array: np.ndarray) -> None:
        self.text = f"{array.dtype} array of shape {array.shape}"

    def __repr__(self) -> str:
        return self.text


def _value_range(kind: str, hardware: Hardware, inputs: int | None) -> tuple[int, int, str]:
    """``(lo, hi, why)``: the configuration values a port of ``kind`` accepts."""
    if kind == "gather":
        return -1, hardware.tx_words - 1, f"-1 = null frame; tx_words = {hardware.tx_words}"
    if kind == "scatter":
        return -1, hardware.rx_words - 1, f"-1 = discard; rx_words = {hardware.rx_words}"
    return 0, inputs, f"0 = null frame, k = input k-1; inputs = {inputs}"


def _configuration(where: str, value: object, ports: int, lo: int, hi: int,
                   why: str) -> tuple[int, ...]:
    """One entry's configuration, checked: ``ports`` integers in ``[lo, hi]``."""
    if not _is_sequence(value):
        raise ConfigError(where, value, f"must be a list with one integer per port ({ports})")
    arr = np.asarray(value) if isinstance(value, np.ndarray) else None
    if arr is not None and arr.ndim == 1 and arr.dtype.kind == "i":
        # an int array: checked at once; only a failure is located element by element
        if arr.shape[0] == ports and not ((arr < lo) | (arr > hi)).any():
            return tuple(arr.tolist())
        value = arr.tolist()
    items = list(value)
    if len(items) != ports:
        raise ConfigError(where, items, f"must have one integer per port ({ports})")
    for p, v in enumerate(items):
        if not is_integer(v) or not lo <= int(v) <= hi:
            raise ConfigError(f"{where}[{p}]", v, f"must be an integer in [{lo}, {hi}] ({why})")
    return tuple(int(v) for v in items)


@dataclass(frozen=True, repr=False)
class Calendar:
    """An immutable calendar of one kind, checked against the hardware.

    Args:
        kind: ``"gather"``, ``"scatter"`` or ``"switch"``.
        entries: a sequence of ``(configuration, repeat)`` pairs, at least one
            and at most ``hardware.calendar_depth``; ``configuration`` has one
            integer per port (see the module docstring for what it means per
            kind and the values allowed), ``repeat`` is in
            ``[0, hardware.max_repeat]`` (the entry holds for ``repeat + 1``
            cycles). Kept as a tuple of ``(tuple[int, ...], int)``.
        ports: outgoing links (gather), incoming links (scatter) or output
            ports (switch), ``>= 1``.
        hardware: the sizes checked against.
        inputs: a switch's number of inputs (a configuration value ``k`` must
            be ``<= inputs``); ``None`` means ``ports`` (a square crossbar).
            Only a switch has inputs: other kinds take ``None``.

    Attributes:
        config: ``int64[depth, ports]``, read-only: the entries' configurations.
        repeat: ``int64[depth]``, read-only: the entries' repeat counts.

    Raises:
        ConfigError: one line naming the field (``gather.entries[2].repeat``),
            the value and what was expected.
    """

    kind: str
    entries: tuple[tuple[tuple[int, ...], int], ...]
    ports: int
    hardware: Hardware = field(default_factory=Hardware)
    inputs: int | None = None
    config: np.ndarray = field(init=False, compare=False)
    repeat: np.ndarray = field(init=False, compare=False)

    def __post_init__(self) -> None:
        kind = choice("calendar.kind", self.kind, KINDS)
        hardware = instance(f"{kind}.hardware", self.hardware, Hardware, "a Hardware")
        ports = integer(f"{kind}.ports", self.ports, lo=1)
        inputs = self.inputs
        if kind == "switch":
            inputs = ports if inputs is None else integer("switch.inputs", inputs, lo=1)
        elif inputs is not None:
            raise ConfigError(f"{kind}.inputs", inputs, "must be None (only a switch has inputs)")
        raw = self.entries
        if not _is_sequence(raw):
            raise ConfigError(f"{kind}.entries", raw,
                              "must be a list of (configuration, repeat) pairs")
        if len(raw) > hardware.calendar_depth:
            raise ConfigError(f"{kind}.entries", len(raw),
                              f"at most {hardware.calendar_depth} entries (calendar_depth)")
        if len(raw) == 0:
            raise ConfigError(f"{kind}.entries", list(raw), "must have at least one entry")
        lo, hi, why = _value_range(kind, hardware, inputs)
        entries = []
        for e, entry in enumerate(raw):
            where = f"{kind}.entries[{e}]"
            if not _is_sequence(entry) or len(entry) != 2:
                raise ConfigError(where, entry, "must be a (configuration, repeat) pair")
            configuration = _configuration(f"{where}.configuration", entry[0], ports, lo, hi, why)
            repeat = entry[1]
            if not is_integer(repeat) or not 0 <= int(repeat) <= hardware.max_repeat:
                raise ConfigError(f"{where}.repeat", repeat,
                                  f"must be an integer in [0, {hardware.max_repeat}] (max_repeat)")
            entries.append((configuration, int(repeat)))
        config = np.array([c for c, _ in entries], dtype=np.int64).reshape(len(entries), ports)
        repeats = np.array([r for _, r in entries], dtype=np.int64)
        config.flags.writeable = False
        repeats.flags.writeable = False
        set_fields(self, kind=kind, hardware=hardware, ports=ports, inputs=inputs,
                   entries=tuple(entries), config=config, repeat=repeats)

    def __repr__(self) -> str:
        extra = f", inputs={self.inputs}" if self.kind == "switch" else ""
        return (f"Calendar({self.kind!r}, depth={self.depth}, ports={self.ports}{extra}, "
                f"metacycle_cycles={self.metacycle_cycles})")

    @property
    def depth(self) -> int:
        """Number of entries."""
        return int(self.repeat.shape[0])

    @property
    def metacycle_cycles(self) -> int:
        """Cycles of one metacycle: ``sum(repeat + 1)``."""
        return int(self.repeat.sum()) + self.depth

    def expand(self) -> np.ndarray:
        """The configuration active on each cycle of one metacycle.

        Returns:
            ``int64[metacycle_cycles, ports]``, a new array: row ``c`` is the
            configuration of cycle ``c`` of the metacycle.
        """
        return np.repeat(self.config, self.repeat + 1, axis=0)

    @classmethod
    def from_cycles(cls, kind: str, per_cycle_config: object, *,
                    hardware: Hardware | None = None, inputs: int | None = None) -> Calendar:
        """The calendar with the fewest entries whose :meth:`expand` is ``per_cycle_config``.

        Equal consecutive rows merge into one entry, as long as it holds for
        at most ``hardware.max_repeat + 1`` cycles (a longer run is split).

        Args:
            kind: the calendar kind.
            per_cycle_config: ``int[M, ports]``, ``M >= 1``: the configuration of
                each cycle of a metacycle.
            hardware: the sizes checked against (default ``Hardware()``).
            inputs: a switch's number of inputs (see :class:`Calendar`).

        Returns:
            The calendar; ``from_cycles(k, a).expand()`` equals ``a``.

        Raises:
            ConfigError: not a 2-D integer array with at least one row and one
                column, or the calendar is invalid (too many entries for
                ``calendar_depth``, a value out of range).
        """
        kind = choice("calendar.kind", kind, KINDS)
        hardware = Hardware() if hardware is None else hardware
        hardware = instance(f"{kind}.hardware", hardware, Hardware, "a Hardware")
        field_name = f"{kind}.per_cycle_config"
        try:
            cycles = np.asarray(per_cycle_config)
        except (ValueError, TypeError):  # ragged nested lists
            cycles = None
        if (cycles is None or cycles.ndim != 2 or cycles.dtype.kind not in "iu"
                or 0 in cycles.shape):
            raise ConfigError(field_name, _Described(cycles) if cycles is not None
                              else per_cycle_config,
                              "must be a 2-D integer array [cycles >= 1, ports >= 1]")
        if cycles.dtype.kind == "u" and cycles.size and int(cycles.max()) > np.iinfo(np.int64).max:
            raise ConfigError(field_name, int(cycles.max()), "values must fit in int64")
        cycles = cycles.astype(np.int64, copy=False)
        m = cycles.shape[0]
        # start of every run of equal rows, then each run cut into pieces of max_repeat + 1
        changes = np.flatnonzero((cycles[1:] != cycles[:-1]).any(axis=1)) + 1
        starts = np.concatenate(([0], changes))
        ends = np.concatenate((changes, [m]))
        span = hardware.max_repeat + 1
        pieces = (ends - starts + span - 1) // span
        first = np.repeat(starts, pieces) + span * (
            np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces))
        last = np.minimum(first + span, np.repeat(ends, pieces))
        entries = [(cycles[s], int(r)) for s, r in zip(first, last - first - 1, strict=True)]
        return cls(kind, entries, cycles.shape[1], hardware, inputs)

    @classmethod
    def idle(cls, kind: str, ports: int, cycles: int, *, hardware: Hardware | None = None,
             inputs: int | None = None) -> Calendar:
        """A calendar of ``cycles`` cycles on which no port does anything.

        Every port holds :func:`idle_value` (``-1``, or ``0`` for a switch), in
        as few entries as ``hardware.max_repeat`` allows.

        Raises:
            ConfigError: ``cycles`` not an integer ``>= 1``, or more cycles than
                ``calendar_depth * (max_repeat + 1)``.
        """
        value = idle_value(kind)
        hardware = Hardware() if hardware is None else hardware
        hardware = instance(f"{kind}.hardware", hardware, Hardware, "a Hardware")
        ports = integer(f"{kind}.ports", ports, lo=1)
        cycles = integer(f"{kind}.cycles", cycles, lo=1)
        span = hardware.max_repeat + 1
        full, rest = divmod(cycles, span)
        n_entries = full + (rest > 0)
        if n_entries > hardware.calendar_depth:
            raise ConfigError(f"{kind}.cycles", cycles,
                              f"must be <= {hardware.calendar_depth * span} "
                              "(calendar_depth * (max_repeat + 1))")
        configuration = (value,) * ports
        entries = [(configuration, span - 1)] * full + ([(configuration, rest - 1)] if rest else [])
        return cls(kind, entries, ports, hardware, inputs)
