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

import numpy as np

from .._checks import choice, instance, integer, number, per_node, text
from ..controllers._contract import CompiledController, ControlContext, ControlLaw
from ..errors import ConfigError
from .parts import MEASURE_KINDS, Actuator, ElasticBuffer, Stability
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


MAX_OFFSET_PPM = 1e4
"""Largest ``|offsets_ppm|`` of a node (1 %)."""


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
        controller: a controller (:class:`~tidesim.controllers.PI`, ...,
            :class:`~tidesim.controllers.Controller`: any
            :class:`~tidesim.controllers.ControlLaw`), or ``None`` for
            free-running clocks. It is compiled against this system when a
            run starts (:meth:`compile_controller`).
        update_period_ticks: local ticks between two samples of a node, in
            ``[2, 2**26]``; the controllers take it from here.
        control_delay_ticks: ticks from a sample to the new frequency
            (``< update_period_ticks``).
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
        controller: ControlLaw | None = None,
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
        self.topology = instance("topology", topology, Topology, "a Topology")
        n = topology.n_nodes
        self.f_nom_hz = number("clock.f_nom_hz", f_nom_hz, lo=0, lo_open=True)
        _check_latency(topology, self.f_nom_hz)
        self.offsets_ppm = per_node("clock.offsets_ppm", offsets_ppm, n,
                                    lo=-MAX_OFFSET_PPM, hi=MAX_OFFSET_PPM)
        self.drift_ppb_per_s = per_node("clock.drift_ppb_per_s", drift_ppb_per_s, n)
        self.wander_ppb_per_sqrt_s = number("clock.wander_ppb_per_sqrt_s",
                                            wander_ppb_per_sqrt_s, lo=0)
        self.theta0 = per_node("clock.theta0", theta0, n, lo=0.0, hi=1.0, hi_open=True)
        self.start_s = per_node("clock.start_s", start_s, n, lo=0.0)
        if controller is not None:
            instance("controller", controller, ControlLaw,
                     "a controller (PI, P, Pump, ..., Controller) or None")
        self.controller = controller
        self.update_period_ticks = integer("control.update_period_ticks", update_period_ticks,
                                           lo=2, hi=_MAX_PERIOD_TICKS)
        self.control_delay_ticks = integer("control.delay_ticks", control_delay_ticks, lo=0)
        if self.control_delay_ticks >= self.update_period_ticks:
            raise ConfigError("control.delay_ticks", control_delay_ticks,
                              f"must be < control.update_period_ticks ({self.update_period_ticks})")
        self.actuator = Actuator() if actuator is None else instance(
            "actuator", actuator, Actuator, "an Actuator")
        self.buffer = ElasticBuffer() if buffer is None else instance(
            "buffer", buffer, ElasticBuffer, "an ElasticBuffer")
        self.measure = choice("control.measure", measure, MEASURE_KINDS)
        self.sample_at = choice("control.sample_at", sample_at, SAMPLE_AT)
        self.stability = Stability() if stability is None else instance(
            "stability", stability, Stability, "a Stability")
        self.seed = integer("seed", seed, lo=0)
        self.name = text("name", name)
        for i, a in enumerate(self.buffer.adjustments):
            integer(f"buffer.adjust[{i}].link", a.link, lo=0, hi=topology.n_links - 1)

    @property
    def n_nodes(self) -> int:
        return self.topology.n_nodes

    @property
    def link_up_s(self) -> np.ndarray:
        """float64[L]: time each link comes up (both ends started)."""
        links = self.topology.links
        return np.maximum(self.start_s[links[:, 0]], self.start_s[links[:, 1]])

    @property
    def control_context(self) -> ControlContext:
        """What the controller is compiled against: update period, ``f_nom_hz``, in-degree."""
        return ControlContext(update_period_ticks=self.update_period_ticks,
                              f_nom_hz=self.f_nom_hz,
                              max_in_degree=int(self.topology.degree().max()))

    def compile_controller(self) -> CompiledController | None:
        """The controller's step, parameters and initial state for this system.

        Durations in seconds become node updates,
        ``round(seconds · f_nom_hz / update_period_ticks)``; per-link state is
        sized for the topology's largest in-degree.

        Returns:
            The compiled controller, or ``None`` for free-running clocks.
        """
        if self.controller is None:
            return None
        compiled = self.controller.compile(self.control_context)
        return instance("controller", compiled, CompiledController,
                        "a controller whose compile() returns a CompiledController")

    def check_until(self, until_s: float | None = None, until_cycles: int | None = None
                    ) -> float:
        """An end time in seconds from ``until_s`` or ``until_cycles``, checked.

        Raises:
            ConfigError: neither or both given, not a positive number, or so far
                that the clocks' edge numbers would overflow (2**62 cycles).
        """
        if until_s is None and until_cycles is None:
            raise ConfigError("run.until_s", None, "is required (or run.until_cycles)")
        if until_s is not None and until_cycles is not None:
            raise ConfigError("run.until_cycles", until_cycles,
                              "must not be given together with run.until_s")
        if until_cycles is not None:
            until = integer("run.until_cycles", until_cycles, lo=1) / self.f_nom_hz
            field, value = "run.until_cycles", until_cycles
        else:
            until = number("run.until_s", until_s, lo=0, lo_open=True)
            field, value = "run.until_s", until_s
        limit = _MAX_EDGE / (self.f_nom_hz * (1 + MAX_REL))
        if not until < limit:
            raise ConfigError(field, value,
                              f"must be below 2**62 cycles of the clocks ({limit:.3g} s at "
                              f"clock.f_nom_hz = {self.f_nom_hz:.6g})")
        return until

    def check_run(self, until_s: float | None = None, until_cycles: int | None = None, *,
                  fidelity: str = "event", record="full") -> float:
        """Check the arguments of :meth:`run` without running.

        Returns:
            The end time in seconds.

        Raises:
            ConfigError: as :meth:`run` would, before simulating anything.
        """
        until = self.check_until(until_s, until_cycles)
        self._start_options(fidelity, record)
        return until

    @staticmethod
    def _start_options(fidelity: str, record) -> int:
        """Check ``fidelity`` and ``record``; returns every how many samples to record."""
        choice("run.fidelity", fidelity, FIDELITIES)
        return parse_record(record)

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
        every = self._start_options(fidelity, record)
        return Simulation(self, fidelity=fidelity, every=every,
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
