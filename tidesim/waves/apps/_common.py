"""What the built-in apps share: checking their parameters."""

from __future__ import annotations

import numpy as np

from ..._checks import integer
from ..._jit import njit
from ...errors import ConfigError

__all__ = ["count", "fill_input", "input_vector", "needs_nodes"]


@njit
def fill_input(buf, who, iteration):
    """Write ``x_who(iteration)`` into float64 ``buf``: the allreduces' inputs,
    small integers, so that every sum is exact whatever its order."""
    for j in range(buf.shape[0]):
        buf[j] = float((31 * who + 7 * j + 13 * iteration) % 19) - 9.0


def input_vector(who: int, iteration: int, length: int) -> np.ndarray:
    """``x_who(iteration)``: float64 ``[length]``, a member's input vector."""
    buf = np.zeros(length, dtype=np.float64)
    fill_input(buf, who, iteration)
    return buf


def count(app: str, name: str, value: object, lo: int, hi: int | None = None) -> int:
    """An integer parameter of an app, within ``[lo, hi]``.

    Raises:
        ConfigError: ``pipeline.stages: must be an integer >= 3, got 2``.
    """
    return integer(f"{app}.{name}", value, lo=lo, hi=hi)


def needs_nodes(app: str, needed: int, n_nodes: int, why: str) -> None:
    """Refuse an app that needs more nodes (one instance per node) than there are.

    Args:
        app: the app's name.
        needed: the nodes it needs (its instance count).
        n_nodes: the nodes available.
        why: what makes it need them (``"stages=5"``).

    Raises:
        ConfigError: ``pipeline.n_nodes: must be >= 5 (pipeline needs 5 nodes for
            stages=5), got 3``.
    """
    if needed > n_nodes:
        raise ConfigError(f"{app}.n_nodes", n_nodes,
                          f"must be >= {needed} ({app} needs {needed} nodes for {why})")
