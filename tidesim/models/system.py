"""The top-level object: a bittide system (topology, clocks, buffers, control).

Lifecycle::

    >>> from tidesim.models import System, Topology
    >>> from tidesim.controllers import PI
    >>> topo = Topology.complete(3, latency_s=1e-8)
    >>> sys = System(topo, offsets_ppm=[-50, 0, 50], controller=PI(kp=1e-7, ki=1e-13),
    ...              update_period_ticks=25_000, buffer=ElasticBuffer(depth=0))
    >>> trace = sys.run(until_s=0.05)               # event fidelity by default
    >>> trace.n_nodes, len(trace.ugn)
    (3, 6)

A :class:`System` is immutable input; every :meth:`System.run` starts from the
same initial state and returns a new :class:`Trace`, so runs are repeatable:
the same system and arguments give bit-identical traces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..controllers._contract import Controller
from ..errors import ConfigError
from .parts import MEASURE_KINDS, Actuator, Adjustment, ElasticBuffer, Stability
from .simulation import FIDELITIES, MAX_REL, Simulation, parse_record
from .topology import Topology
from .trace import Trace

__all__ = ["FIDELITIES", "SAMPLE_AT", "System"]

_MAX_PERIOD_TICKS = 1 << 26
SAMPLE_AT = ("edge", "phase")
_MAX_EDGE = 2.0**62  # edge numbers are int64
_MAX_LATENCY_CYCLES = 2.0**42
"""Longest link latency, in periods of the nominal clock. An arrival is an
edge time plus a latency in float64 seconds, whose rounding grows with the
latency: at 2**42 periods it is 2**-10 of a period, so every frame still
arrives in its own cycle. Far beyond it arrivals bunch up (a 1e9 s latency at
125 MHz rounds them to 15 cycles), and from 2**63 periods the edge numbers of
the frames in flight no longer fit in int64."""


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _per_node(name: str, value, n: int, *, lo=None, hi=None, hi_open=False) -> np.ndarray:
    """Broadcast a scalar or check a per-node sequence; returns float64[n]."""
    if _is_number(value):
        arr = np.full(n, float(value))
    elif isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        if len(value) != n:
            raise ConfigError(name, list(value), f"must have one entry per node ({n})")
        for v in value:
            if not _is_number(v):
                raise ConfigError(name, v, "must be a number")
        arr = np.asarray(value, dtype=np.float64).copy()
    else:
        raise ConfigError(name, value, "must be a number or a list with one number per node")
    for v in arr:
        if not math.isfinite(v):
            raise ConfigError(name, float(v), "must be finite")
        if lo is not None and v < lo:
            raise ConfigError(name, float(v), f"must be >= {lo}")
        if hi is not None and (v >= hi if hi_open else v > hi):
            raise ConfigError(name, float(v), f"must be {'<' if hi_open else '<='} {hi}")
    return arr


def _int_param(name: str, value, lo: int, hi: int | None = None) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise ConfigError(name, value, "must be an integer")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ConfigError(name, value, f"must be {rng}")
    return int(value)


def _check_latency(topology: Topology, f_nom_hz: float) -> None:
    """Refuse a latency the clocks' time resolution cannot carry (see
    :data:`_MAX_LATENCY_CYCLES`), before a run is started."""
    lat = float(np.max(topology.latency_s, initial=0.0))
    limit = _MAX_LATENCY_CYCLES / f_nom_hz
    if not lat < limit:
        raise ConfigError("topology.latency_s", lat,
                          f"must be below 2**42 cycles of the clocks ({limit:.3g} s at "
                          f"clock.f_nom_hz = {f_nom_hz:.6g})")


class System:
    """A bittide system: topology, node clocks, elastic buffers and control.

    Args:
        topology: the graph and per-link physical latencies.
        f_nom_hz: nominal node frequency (Hz); one frame per tick per link.
        offsets_ppm: intrinsic oscillator offsets, scalar or one per node.
        drift_ppb_per_s: linear frequency drift, scalar or one per node.
        wander_ppb_per_sqrt_s: random-walk wander (seeded by ``seed``).
        theta0: initial phase of each node in ticks, in ``[0, 1)``.
        start_s: time each node's controller starts (its links come up when
            both ends have started).
        controller: a :class:`~tidesim.controllers.Controller`, or ``None`` for
            free-running clocks.
        update_period_ticks: local ticks between two samples of a node.
        control_delay_ticks: ticks from a sample to the new frequency.
        actuator: continuous or quantized (FINC/FDEC) actuation.
        buffer: elastic buffer configuration, shared by every link.
        measure: ``"buffer"`` (elastic-buffer counts) or ``"ddc"`` (domain
            difference counters) is what the controller sees.
        sample_at: where a node's samples fall: ``"edge"``, on whole clock
            edges ``⌈θ0⌉ + k·p`` (the hardware), or ``"phase"``, at phase
            ``θ0 + k·p`` with the new frequency from phase ``θ0 + k·p + d``
            (Callisto.jl).
        stability: the stability detector (margin, window).
        seed: seed of every random choice of the run (wander).
        name: a label carried into summaries.
    """

    def __init__(
        self,
        topology: Topology,
        *,
        f_nom_hz: float = 125e6,
        offsets_ppm=0.0,
        drift_ppb_per_s=0.0,
        wander_ppb_per_sqrt_s: float = 0.0,
        theta0=0.1,
        start_s=0.0,
        controller: Controller | None = None,
        update_period_ticks: int = 25_000,
        control_delay_ticks: int = 0,
        actuator: Actuator | None = None,
        buffer: ElasticBuffer | None = None,
        measure: str = "buffer",
        sample_at: str = "edge",
        stability: Stability | None = None,
        seed: int = 0,
        name: str = "custom",
    ) -> None:
        if not isinstance(topology, Topology):
            raise ConfigError("topology", topology, "must be a Topology")
        n = topology.n_nodes
        self.topology = topology
        if not _is_number(f_nom_hz) or not (0 < f_nom_hz < math.inf):
            raise ConfigError("clock.f_nom_hz", f_nom_hz, "must be a number > 0")
        self.f_nom_hz = float(f_nom_hz)
        _check_latency(topology, self.f_nom_hz)
        self.offsets_ppm = _per_node("clock.offsets_ppm", offsets_ppm, n, lo=-1e4, hi=1e4)
        self.drift_ppb_per_s = _per_node("clock.drift_ppb_per_s", drift_ppb_per_s, n)
        if not _is_number(wander_ppb_per_sqrt_s) or not (0 <= wander_ppb_per_sqrt_s < math.inf):
            raise ConfigError("clock.wander_ppb_per_sqrt_s", wander_ppb_per_sqrt_s, "must be >= 0")
        self.wander_ppb_per_sqrt_s = float(wander_ppb_per_sqrt_s)
        self.theta0 = _per_node("clock.theta0", theta0, n, lo=0.0, hi=1.0, hi_open=True)
        self.start_s = _per_node("clock.start_s", start_s, n, lo=0.0)
        if controller is not None and not isinstance(controller, Controller):
            raise ConfigError("controller", controller, "must be a Controller or None")
        self.controller = controller
        self.update_period_ticks = _int_param(
            "control.update_period_ticks", update_period_ticks, 2, _MAX_PERIOD_TICKS)
        self.control_delay_ticks = _int_param(
            "control.delay_ticks", control_delay_ticks, 0, self.update_period_ticks - 1)
        self.actuator = actuator if actuator is not None else Actuator()
        self.buffer = buffer if buffer is not None else ElasticBuffer()
        if measure not in MEASURE_KINDS:
            raise ConfigError("control.measure", measure, f"must be one of {list(MEASURE_KINDS)}")
        self.measure = measure
        if sample_at not in SAMPLE_AT:
            raise ConfigError("control.sample_at", sample_at, f"must be one of {list(SAMPLE_AT)}")
        self.sample_at = sample_at
        self.stability = stability if stability is not None else Stability()
        self.seed = _int_param("seed", seed, 0)
        self.name = name
        for a in self.buffer.adjustments:
            if not isinstance(a, Adjustment):
                raise ConfigError("buffer.adjust", a, "must be an Adjustment")
            _int_param("buffer.adjust.link", a.link, 0, topology.links.shape[0] - 1)
            _int_param("buffer.adjust.frames", a.frames, -(1 << 30), 1 << 30)

    @property
    def n_nodes(self) -> int:
        return self.topology.n_nodes

    @property
    def link_up_s(self) -> np.ndarray:
        """float64[L]: time each link comes up (both ends started)."""
        links = self.topology.links
        return np.maximum(self.start_s[links[:, 0]], self.start_s[links[:, 1]])

    def check_until(self, until_s: float | None = None, until_cycles: int | None = None
                    ) -> float:
        """An end time in seconds from ``until_s`` or ``until_cycles``, checked.

        Raises:
            ConfigError: neither or both given, not a positive number, or so far
                that the clocks' edge numbers would overflow (2**62 cycles).
        """
        if (until_s is None) == (until_cycles is None):
            raise ConfigError("run.until_s", until_s,
                              "exactly one of until_s and until_cycles is required")
        if until_cycles is not None:
            until = _int_param("run.until_cycles", until_cycles, 1) / self.f_nom_hz
            field, value = "run.until_cycles", until_cycles
        else:
            if not _is_number(until_s) or not (0 < until_s < math.inf):
                raise ConfigError("run.until_s", until_s, "must be a number > 0")
            until = float(until_s)
            field, value = "run.until_s", until_s
        limit = _MAX_EDGE / (self.f_nom_hz * (1 + MAX_REL))
        if not until < limit:
            raise ConfigError(field, value,
                              f"must be below 2**62 cycles of the clocks ({limit:.3g} s at "
                              f"clock.f_nom_hz = {self.f_nom_hz:.6g})")
        return until

    def start(self, *, fidelity: str = "event", record="full", stop_on_fault: bool = False,
              record_controller_state: bool = False) -> Simulation:
        """A new run of this system at ``t = 0``, to advance in steps.

        Args:
            fidelity: ``"event"`` (exact, per control update) or ``"cycle"``
                (every edge, real FIFOs); both give identical results.
            record: ``"full"`` (every sample and the segment history),
                ``"summary"`` (the summary only: memory does not grow with
                simulated time) or an integer N (every N-th sample).
            stop_on_fault: stop at the first sample that sees a buffer fault.
            record_controller_state: keep every node's controller state after
                every recorded sample (``Trace.controller_states``), e.g. for
                waveforms.

        Returns:
            A :class:`~tidesim.models.Simulation` at ``t = 0``.
        """
        if fidelity not in FIDELITIES:
            raise ConfigError("run.fidelity", fidelity, f"must be one of {list(FIDELITIES)}")
        return Simulation(self, fidelity=fidelity, every=parse_record(record),
                          stop_on_fault=bool(stop_on_fault),
                          record_controller_state=bool(record_controller_state))

    def run(self, until_s: float | None = None, *, until_cycles: int | None = None,
            fidelity: str = "event", record="full", stop_on_fault: bool = False,
            record_controller_state: bool = False) -> Trace:
        """Simulate from ``t = 0`` to ``until_s`` (or ``until_cycles / f_nom_hz``).

        The same as ``start(...).advance(until_s).trace()``; see :meth:`start`
        for the arguments.

        Returns:
            The :class:`~tidesim.models.Trace` of the run (kept whole even when
            it stopped early).

        Raises:
            SimulationFault: a node's frequency left ±5 % of nominal (an
                unstable controller); ``exc.trace`` holds the run up to there.
        """
        until = self.check_until(until_s, until_cycles)
        sim = self.start(fidelity=fidelity, record=record, stop_on_fault=stop_on_fault,
                         record_controller_state=record_controller_state)
        return sim.advance(until).trace()
