"""Small value types describing the parts of a bittide node and link.

Every quantity carries its unit in its name (``step_ppb``, ``window_s``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = ["Actuator", "Adjustment", "ElasticBuffer", "Stability"]

ACTUATOR_KINDS = ("continuous", "quantized")
MEASURE_KINDS = ("buffer", "ddc")
ARM_KINDS = ("link_up", "stable", "all_stable")


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
        if self.kind not in ACTUATOR_KINDS:
            raise ConfigError("actuator.kind", self.kind, f"must be one of {list(ACTUATOR_KINDS)}")
        if not (self.step_ppb > 0):
            raise ConfigError("actuator.step_ppb", self.step_ppb, "must be > 0")


@dataclass(frozen=True)
class Adjustment:
    """A scheduled elastic-buffer adjustment on one link.

    ``frames > 0`` suppresses that many reads (the buffer fills); ``frames < 0``
    drops that many writes (it drains). Issued at the receiver's first sample
    at or after ``at_s``; it changes the link's logical latency by ``frames``.
    """

    link: int
    at_s: float
    frames: int


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
        if not isinstance(self.margin, int) or self.margin < 0:
            raise ConfigError("stability.margin", self.margin, "must be an integer >= 0")
        if not (self.window_s >= 0):
            raise ConfigError("stability.window_s", self.window_s, "must be >= 0")


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
        if not isinstance(d, int) or isinstance(d, bool) or d < 0 or (d & (d - 1)) != 0:
            raise ConfigError("buffer.depth", d, "must be a power of two (or 0 for ideal)")
        if d == 1:
            raise ConfigError("buffer.depth", d, "must be >= 2")
        if self.reference is not None:
            if not isinstance(self.reference, int) or isinstance(self.reference, bool):
                raise ConfigError("buffer.reference", self.reference, "must be an integer")
            if d and not (0 <= self.reference <= d):
                raise ConfigError("buffer.reference", self.reference, f"must be in [0, {d}]")
        if self.arm not in ARM_KINDS:
            raise ConfigError("buffer.arm", self.arm, f"must be one of {list(ARM_KINDS)}")
        if self.auto_centre is not None and (
            not isinstance(self.auto_centre, int) or self.auto_centre < 0
        ):
            raise ConfigError("buffer.auto_centre", self.auto_centre, "must be an integer >= 0")

    @property
    def reference_frames(self) -> int:
        """Reference occupancy in frames."""
        if self.reference is not None:
            return self.reference
        return self.depth // 2
