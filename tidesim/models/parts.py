"""Small value types describing the parts of a bittide node and link.

Every quantity carries its unit in its name (``step_ppb``, ``window_s``).
Each is a frozen dataclass that checks its fields when built, naming them as
a config does:

    >>> from tidesim.models import Actuator, ElasticBuffer, Stability
    >>> ElasticBuffer(depth=32).reference_frames
    16
    >>> Stability(margin=4, window_s=2)
    Stability(margin=4, window_s=2.0)
    >>> Actuator("quantized", step_ppb=0)
    Traceback (most recent call last):
    ...
    tidesim.errors.ConfigError: actuator.step_ppb: must be > 0, got 0
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._checks import choice, instance, integer, is_integer, number, set_fields
from ..errors import ConfigError

__all__ = ["Actuator", "Adjustment", "ElasticBuffer", "Stability"]

ACTUATOR_KINDS = ("continuous", "quantized")
MEASURE_KINDS = ("buffer", "ddc")
ARM_KINDS = ("link_up", "stable", "all_stable")
MAX_ADJUST_FRAMES = 1 << 30
"""Largest ``|frames|`` of one :class:`Adjustment`."""


@dataclass(frozen=True)
class Actuator:
    """How a desired correction reaches the oscillator.

    ``continuous`` applies it exactly. ``quantized`` models the Si539x FINC/FDEC
    pins: the frequency moves by at most one ``step_ppb`` step per update,
    towards the desired correction.
    """

    kind: str = "continuous"
    step_ppb: float = 10.0

    def __post_init__(self) -> None:
        choice("actuator.kind", self.kind, ACTUATOR_KINDS)
        set_fields(self, step_ppb=number("actuator.step_ppb", self.step_ppb, lo=0, lo_open=True))


@dataclass(frozen=True)
class Adjustment:
    """A scheduled elastic-buffer adjustment on one link.

    ``frames > 0`` suppresses that many reads (the buffer fills); ``frames < 0``
    drops that many writes (it drains). Issued at the receiver's first sample
    at or after ``at_s`` at which the link is up and its buffer armed (one due
    earlier waits for the first armed sample); it changes the link's logical
    latency by ``frames``.

    Attributes:
        link: index of the link (``topology.link_index(src, dst)``); the
            :class:`~tidesim.models.System` checks it against its topology.
        at_s: when to issue it (s, >= 0).
        frames: non-zero, at most ``2**30`` either way.
    """

    link: int
    at_s: float
    frames: int

    def __post_init__(self) -> None:
        link = integer("buffer.adjust.link", self.link, lo=0)
        at_s = number("buffer.adjust.at_s", self.at_s, lo=0)
        frames = integer("buffer.adjust.frames", self.frames,
                         lo=-MAX_ADJUST_FRAMES, hi=MAX_ADJUST_FRAMES)
        if frames == 0:
            raise ConfigError("buffer.adjust.frames", self.frames, "must be a non-zero integer")
        set_fields(self, link=link, at_s=at_s, frames=frames)


@dataclass(frozen=True)
class Stability:
    """The rig's stability detector.

    A link is *stable* when its count stays within ``±margin`` frames of a
    reference for ``window_s`` seconds (the reference is re-taken whenever the
    count leaves the band); *settled* when it is stable and ``|reference| < margin``.
    """

    margin: int = 4
    window_s: float = 2.0

    def __post_init__(self) -> None:
        set_fields(self, margin=integer("stability.margin", self.margin, lo=0),
                   window_s=number("stability.window_s", self.window_s, lo=0))


@dataclass(frozen=True)
class ElasticBuffer:
    """Elastic buffer configuration, the same for every link.

    Attributes:
        depth: FIFO depth in frames, a power of two (hardware demos use 32);
            ``0`` models an ideal unbounded counter: no FIFO, never faults.
        reference: occupancy at link-up, and the point counts are relative to;
            ``None`` means the midpoint ``depth // 2`` (0 for an ideal buffer).
        arm: ``"link_up"``: the buffer runs (and may fault) from link-up;
            ``"stable"``: it is re-centred and armed when the link's stability
            detector first reports stable; ``"all_stable"``: every buffer is
            re-centred and armed at its receiver's first sample after every
            link of the system was stable at once (the rig controls on domain
            difference counters and centres its buffers when the whole
            system is stable).
        auto_centre: if set, at every receiver sample where
            ``|count| > auto_centre`` and no adjustment is pending, the buffer
            adjusts by ``-count`` frames.
        adjustments: scheduled :class:`Adjustment` commands.
    """

    depth: int = 32
    reference: int | None = None
    arm: str = "link_up"
    auto_centre: int | None = None
    adjustments: tuple[Adjustment, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        d = self.depth
        if not is_integer(d) or d < 0 or (d & (d - 1)) != 0:
            raise ConfigError("buffer.depth", d, "must be a power of two (or 0 for ideal)")
        if d == 1:
            raise ConfigError("buffer.depth", d, "must be >= 2")
        reference = self.reference
        if reference is not None:
            reference = integer("buffer.reference", reference, lo=0 if d else None,
                                hi=int(d) if d else None)
        choice("buffer.arm", self.arm, ARM_KINDS)
        auto_centre = self.auto_centre
        if auto_centre is not None:
            auto_centre = integer("buffer.auto_centre", auto_centre, lo=0)
        if not isinstance(self.adjustments, (tuple, list)):
            raise ConfigError("buffer.adjust", self.adjustments,
                              "must be a sequence of Adjustment")
        adjustments = tuple(instance(f"buffer.adjust[{i}]", a, Adjustment, "an Adjustment")
                            for i, a in enumerate(self.adjustments))
        set_fields(self, depth=int(d), reference=reference, auto_centre=auto_centre,
                   adjustments=adjustments)

    @property
    def reference_frames(self) -> int:
        """Reference occupancy in frames."""
        if self.reference is not None:
            return self.reference
        return self.depth // 2
