"""The rig's stability detector, applied after a run to any series of counts.

It is the detector the core runs on every link (``tidesim.models.Stability``,
see ``docs/model.md``), one step per sample::

    if |v − r| > margin:  r = v;  t_r = t
    stable  = (t − t_r >= window_s)
    settled = stable and |r| < margin

starting with ``r = 0`` and ``t_r = start_s`` (the link-up time; by default
the first sample's time). Samples before ``start_s`` are neither stable nor
settled and report a reference of 0.

Example:
    >>> import numpy as np
    >>> from tidesim.controllers import stability
    >>> stable, settled, ref = stability(np.array([0, 9, 10, 9, 9]), np.arange(5.0),
    ...                                  margin=4, window_s=2.0)
    >>> stable.tolist(), settled.tolist(), ref.tolist()
    ([False, False, False, True, True], [False, False, False, False, False], [0, 9, 9, 9, 9])
"""

from __future__ import annotations

import numpy as np

from .._checks import integer, number
from .._jit import njit
from ..errors import ConfigError
from ._detector import stability_update

__all__ = ["stability"]


@njit
def _detect(counts, times, margin, window, t_start, stable, settled, reference):
    ref = np.int64(0)
    since = t_start
    for q in range(counts.size):
        t = times[q]
        if t < t_start:
            continue
        ref, since = stability_update(counts[q], ref, since, t, margin)
        reference[q] = ref
        if t - since >= window:
            stable[q] = True
            settled[q] = abs(ref) < margin


def stability(
    counts,
    times_s,
    margin: int = 4,
    window_s: float = 2.0,
    *,
    start_s: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the stability detector over one link's counts.

    Args:
        counts: int[q] counts (frames), e.g. ``trace.measured(link)``.
        times_s: float[q] their sample times (s), e.g. ``trace.link_times(link)``.
        margin: allowed deviation from the reference (frames, >= 0).
        window_s: how long the counts must stay within the margin (s, >= 0).
        start_s: when the detector starts (the link-up time,
            ``trace.system.link_up_s[link]``); default: the first sample.

    Returns:
        ``(stable, settled, reference)``: bool[q], bool[q], int64[q].
    """
    c = np.ascontiguousarray(counts)
    t = np.ascontiguousarray(times_s, dtype=np.float64)
    if c.ndim != 1 or t.ndim != 1 or c.shape != t.shape:
        raise ConfigError("stability.counts", c.shape, f"must match times_s {t.shape} (1-D)")
    is_int = np.issubdtype(c.dtype, np.integer)
    if c.size and not is_int and not np.array_equal(c, np.round(c)):
        raise ConfigError("stability.counts", c.dtype.name, "must be integers")
    c = c.astype(np.int64)
    margin = integer("stability.margin", margin, lo=0)
    window_s = number("stability.window_s", window_s, lo=0)
    if start_s is None:
        start_s = float(t[0]) if t.size else 0.0
    start_s = number("stability.start_s", start_s)
    stable = np.zeros(c.size, dtype=bool)
    settled = np.zeros(c.size, dtype=bool)
    reference = np.zeros(c.size, dtype=np.int64)
    _detect(c, t, np.int64(margin), float(window_s), float(start_s), stable, settled, reference)
    return stable, settled, reference
