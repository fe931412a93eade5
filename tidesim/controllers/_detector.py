"""The rig's stability detector, one step: the kernel both the core and
:func:`tidesim.controllers.stability` run.

A link is *stable* when its count stays within ``±margin`` frames of a
reference for a window of time; the reference is re-taken whenever the
count leaves the band (``docs/model.md``, "The stability detector").
"""

from __future__ import annotations

from .._jit import njit

__all__ = ["stability_update"]


@njit(inline="always")  # called once per link and sample
def stability_update(v, ref, since, t, margin):
    """One step of the stability detector for a link.

    Args:
        v: the count just sampled (frames).
        ref: the detector's reference (frames).
        since: time the reference was taken (s).
        t: sample time (s).
        margin: allowed deviation from the reference (frames).

    Returns:
        ``(ref, since)`` after the sample; the link is stable when
        ``t - since >= window``.
    """
    # selects, not a branch: while links converge, resets are a coin flip
    reset = abs(v - ref) > margin
    return (v if reset else ref), (t if reset else since)
