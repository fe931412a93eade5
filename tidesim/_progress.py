"""Progress bars on stderr (tqdm), for anything that counts towards a known total.

:func:`progress_bar` shows a bar only where someone can watch it: by default
when stderr is a terminal, so logs and pipes stay clean. A caller that wants
the numbers instead (a GUI, a test) passes a ``callback``, called as
``callback(done, total)`` after every update, and no bar is drawn.

Example:
    >>> from tidesim._progress import progress_bar
    >>> with progress_bar(3, unit="run", enabled=False) as bar:
    ...     for _ in range(3):
    ...         bar.update(1)
    >>> bar.done
    3
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

__all__ = ["ProgressBar", "progress_bar"]


class _Tqdm(tqdm):
    # tqdm's monitor thread would make the process multi-threaded, and a
    # local sweep forks its workers only from a single-threaded process
    monitor_interval = 0


class ProgressBar:
    """``done`` of ``total``, drawn by tqdm when enabled, reported to a callback when given.

    Make it with :func:`progress_bar`.

    Attributes:
        total: the count when the work is done.
        done: the count so far (``initial`` plus every :meth:`update`).
    """

    def __init__(self, total: float, *, initial: float = 0, unit: str = "it",
                 desc: str | None = None, enabled: bool | None = None,
                 callback: Callable[[float, float], Any] | None = None,
                 bar_format: str | None = None) -> None:
        self.total = total
        self.done = initial
        self._callback = callback
        show = sys.stderr.isatty() if enabled is None else bool(enabled)
        self._bar: tqdm | None = None
        if show and callback is None:
            self._bar = _Tqdm(total=total, initial=initial, unit=unit, desc=desc,
                              file=sys.stderr, dynamic_ncols=True, mininterval=0.1,
                              bar_format=bar_format)

    def update(self, n: float = 1) -> None:
        """Count ``n`` more done."""
        self.done += n
        if self._callback is not None:
            self._callback(self.done, self.total)
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        """End the bar (its last state stays on the terminal); safe to call twice."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(total: float, *, initial: float = 0, unit: str = "it",
                 desc: str | None = None, enabled: bool | None = None,
                 callback: Callable[[float, float], Any] | None = None,
                 bar_format: str | None = None) -> ProgressBar:
    """A progress bar on stderr: count, rate (``unit``/s) and time left.

    Args:
        total: the count when the work is done (runs of a sweep, simulated
            seconds of a run...); a count need not be a whole number.
        initial: the count already done (a resumed sweep).
        unit: what is counted, singular (``"run"``).
        desc: a label in front of the bar.
        enabled: ``None``: draw when stderr is a terminal; ``True``/``False``:
            always/never.
        callback: called as ``callback(done, total)`` after every update;
            with it no bar is drawn.
        bar_format: tqdm's ``bar_format``, e.g. to show a count that is not
            a whole number (``{n:.4g}``); default: tqdm's own.

    Returns:
        A :class:`ProgressBar`; use it as a context manager, or call ``close()``.
    """
    return ProgressBar(total, initial=initial, unit=unit, desc=desc, enabled=enabled,
                       callback=callback, bar_format=bar_format)
