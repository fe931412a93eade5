"""The error of the waves layer: one line naming the actions and ports involved."""

from __future__ import annotations

from ..errors import TidesimError

__all__ = ["WavesError"]


class WavesError(TidesimError, ValueError):
    """A waves application that cannot run: its graph, rates or initial tokens.

    Bad single values (a negative rate, an unknown dtype) are
    :class:`~tidesim.errors.ConfigError` lines; a ``WavesError`` is about the
    structure, which has no single value to show. The message is one line that
    starts with ``waves:`` and names the actions and ports involved::

        waves: b.x expects float64 (4,), a.y gives int64 (4,)

    Args:
        message: the line, without the ``waves:`` prefix.
    """

    def __init__(self, message: str) -> None:
        self.detail = " ".join(str(message).split())  # one line, whatever it quotes
        super().__init__(f"waves: {self.detail}")
