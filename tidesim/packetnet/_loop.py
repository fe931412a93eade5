"""A virtual-time event loop: tasks are coroutines, time moves only when
every task waits on the loop."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._checks import integer, number
from ..errors import SimulationFault


class Deadlock(SimulationFault, ValueError):
    """Every task waits and nothing is scheduled: the program can never go on
    (a fault of the program, so also a ``ValueError``: the CLI exits with 2).

    Attributes:
        time_s: the virtual time it stopped at; waiting: each waiting task,
            with the streams it waits on.
    """

    def __init__(self, time_s: float, waiting: list[str]) -> None:
        shown = "; ".join(waiting[:8]) + (f"; and {len(waiting) - 8} more"
                                           if len(waiting) > 8 else "")
        super().__init__(f"deadlock at t = {time_s:g} s: nothing is scheduled and "
                         f"{len(waiting)} task(s) wait: {shown}")
        self.time_s, self.waiting = time_s, waiting


class Stream:
    """A channel of events: timers deliver to it, tasks :meth:`Handle.poll` it.

    Events that arrive while no task polls the stream wait in it, oldest first.
    """

    def __init__(self, loop: EventLoop, index: int) -> None:
        self.loop, self.index = loop, index
        self.pending: deque[Event] = deque()

    def __repr__(self) -> str:
        return f"Stream({self.index})"


@dataclass(frozen=True)
class Event:
    """What :meth:`Handle.poll` returns: the ``stream`` it came on, its ``message``."""

    stream: Stream
    message: Any


@dataclass(order=True)
class Timer:
    """An event due at ``time_s`` (virtual seconds) on a stream (or, with
    ``stream`` None, a call of ``message``); :meth:`cancel` drops it."""

    time_s: float
    tie: float
    seq: int
    stream: Stream | None = field(compare=False)
    message: Any = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class _Wait:
    """What a task awaits: the loop resumes it with an :class:`Event`."""

    def __init__(self, streams: tuple[Stream, ...]) -> None:
        self.streams = streams

    def __await__(self):
        return (yield self)


class Handle:
    """A task's view of the loop (its ``h``).

    ``await h.poll(*streams)`` waits for the next event on any of
    ``streams``; ``await h.sleep(dt)`` lets ``dt`` virtual seconds pass;
    ``h.schedule(stream, message, delay)`` delivers ``message`` on
    ``stream`` ``delay`` seconds from now; ``h.time`` is the current
    virtual time.
    """

    def __init__(self, loop: EventLoop) -> None:
        self.loop = loop

    @property
    def time(self) -> float:
        return self.loop.time

    def schedule(self, stream: Stream, message: Any, delay: float) -> Timer:
        return self.loop.schedule(stream, message, delay)

    async def poll(self, *streams: Stream) -> Event:
        for s in streams:  # an event already waiting is taken at once
            if s.pending:
                return s.pending.popleft()
        return await _Wait(streams)

    async def sleep(self, dt: float) -> None:
        s = self.loop.stream()
        self.schedule(s, None, number("sleep.dt", dt, lo=0))
        await self.poll(s)


class EventLoop:
    """Runs tasks in virtual time.

    Args:
        tie_seed: ``None`` delivers events due at one instant in the order
            they were scheduled; a seed shuffles them (to show a result does
            not depend on the order, as the reference's random shuffle).

    Example (the reference's first example):

        >>> from tidesim.packetnet import EventLoop
        >>> loop = EventLoop()
        >>> stream = loop.stream()
        >>> async def reader(h):
        ...     msg = (await h.poll(stream)).message
        ...     print(msg, h.time)
        >>> async def writer(h):
        ...     h.schedule(stream, "Hello, world!", 15.5)
        >>> loop.go(reader); loop.go(writer); loop.run()
        Hello, world! 15.5
    """

    def __init__(self, *, tie_seed: int | None = None) -> None:
        self.time = 0.0
        self._timers: list[Timer] = []
        self._seq = 0
        self._streams = 0
        self._rng = None if tie_seed is None else np.random.default_rng(
            integer("tie_seed", tie_seed, lo=0))
        self._ready: deque = deque()        # (task, value to send)
        self._waiting: dict[Stream, list] = {}  # stream -> tasks polling it
        self._names: dict = {}  # each live task -> its name

    def stream(self) -> Stream:
        self._streams += 1
        return Stream(self, self._streams - 1)

    def schedule(self, stream: Stream, message: Any, delay: float) -> Timer:
        """Deliver ``message`` on ``stream`` at ``time + delay``."""
        return self._at(self.time + delay, stream, message)

    def call_at(self, time_s: float, fn: Callable[[], Any]) -> Timer:
        """Call ``fn()`` at virtual time ``time_s`` (as an event: in time order with the others)."""
        return self._at(time_s, None, fn)

    def _at(self, time_s: float, stream: Stream | None, message: Any) -> Timer:
        tie = float(self._rng.random()) if self._rng is not None else 0.0
        t = Timer(time_s, tie, self._seq, stream, message)
        self._seq += 1
        heapq.heappush(self._timers, t)
        return t

    def deliver(self, stream: Stream, message: Any) -> None:
        """Deliver ``message`` on ``stream`` now (from a :meth:`call_at` function)."""
        self._deliver(Event(stream, message))

    def tie_order(self, n: int) -> list[int]:
        """The order in which to deliver ``n`` events due at one instant."""
        if self._rng is None:
            return list(range(n))
        return self._rng.permutation(n).tolist()

    def go(self, fn: Callable[[Handle], Coroutine], name: str | None = None) -> None:
        """Start ``fn(handle)`` (an ``async def``) as a task (``name``: for messages)."""
        task = fn(Handle(self))
        self._names[task] = name or getattr(fn, "__qualname__", None) or f"task {len(self._names)}"
        self._ready.append((task, None))

    @property
    def live(self) -> int:
        """Tasks started and not finished."""
        return len(self._names)

    def run(self) -> None:
        """Run until every task has finished (``time``: the last delivery to a live task).

        Raises:
            Deadlock: tasks still wait and nothing is scheduled.
        """
        try:
            self._run()
        except BaseException:
            for task in list(self._names):  # no task is left half-run
                task.close()
            self._names.clear()
            raise

    def _run(self) -> None:
        while True:
            while self._ready:
                task, value = self._ready.popleft()
                try:
                    wait = task.send(value)
                except StopIteration:
                    del self._names[task]
                    continue
                for s in wait.streams:
                    self._waiting.setdefault(s, []).append((task, wait))
            if self.live == 0:
                return
            if not self._timers:
                raise Deadlock(self.time, self._waiters())
            t = heapq.heappop(self._timers)
            if t.cancelled:
                continue
            self.time = max(self.time, t.time_s)
            if t.stream is None:
                t.message()
            else:
                self._deliver(Event(t.stream, t.message))

    def _waiters(self) -> list[str]:
        """Each waiting task's name and the streams it waits on."""
        on: dict = {}
        for s, waiters in self._waiting.items():
            for task, _ in waiters:
                on.setdefault(task, []).append(s)
        return [f"{self._names[t]} (on {', '.join(map(repr, ss))})" for t, ss in on.items()]

    def _deliver(self, event: Event) -> None:
        waiters = self._waiting.get(event.stream)
        if not waiters:
            event.stream.pending.append(event)
            return
        task, wait = waiters.pop(0)
        for s in wait.streams:  # the task waits on none of its streams any more
            if s is not event.stream:
                self._waiting[s] = [w for w in self._waiting[s] if w[0] is not task]
        self._ready.append((task, event))
