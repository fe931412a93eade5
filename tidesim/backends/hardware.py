"""The hardware interface: where a bittide system's nodes run, behind one small class.

A :class:`Backend` is the hardware as the runtime sees it. :meth:`Backend.start`
creates a system's nodes and links and loads each node's program (its clock
model and controller, from the :class:`~tidesim.models.System`), and returns
a :class:`HardwareRun`: the running hardware, whose simulated time moves with
:meth:`~HardwareRun.advance` (in the in-process mode it costs no wall time
beyond the computation), whose nodes report :meth:`~HardwareRun.health`, and
whose results come back as a :class:`~tidesim.models.Trace`
(:meth:`~HardwareRun.trace`). :meth:`~HardwareRun.stop` ends it; used as a
context manager it stops on exit.

Backends are made by name (``tidesim run --backend NAME``):

* ``"inprocess"`` -- the Numba core in this process (the default, and the
  fastest).
* ``"processes"`` -- one OS process per node, each in its own network
  namespace where the machine allows, links over TCP
  (:mod:`tidesim.backends._nodeproc`).
* ``"containers"`` -- each node in its own Podman container, on a container
  network where nodes reach each other by name
  (:mod:`tidesim.backends._containers`).
* ``"dask"`` -- each node a task on a Dask cluster, a local one or any
  scheduler's (:mod:`tidesim.backends._dasknodes`).

:func:`register_backend` adds a name; classes named as ``"module:Class"``
are imported when first made. ``docs/backends.md`` describes the interface
and each backend.

Example:
    >>> from tidesim.backends import make_backend
    >>> from tidesim.config import build_system, load_config, validate
    >>> system = build_system(validate(load_config({"preset": "hitl-cycle5"})))
    >>> with make_backend("inprocess").start(system, record="summary") as run:
    ...     run.advance(1e-3).health()[0], run.time_s
    ('up', 0.001)
"""

from __future__ import annotations

import abc
import difflib
import importlib
from typing import Any, ClassVar

from ..errors import ConfigError, SimulationFault

__all__ = [
    "Backend",
    "HardwareRun",
    "InProcessBackend",
    "NodeFailure",
    "backend_names",
    "make_backend",
    "register_backend",
]

#: What :meth:`HardwareRun.health` says of a node.
HEALTH = ("up", "stopped", "dead")


class NodeFailure(SimulationFault):
    """A node process died or a link went silent; ``trace`` holds the run up
    to the last window every node finished.

    Attributes:
        node: the node (the receiver, for a link).
        link: ``(sender, receiver)`` for a silent link, else None.
        time_s: the last simulated time every node reached (s).
    """

    def __init__(self, message: str, trace: object = None, *, node: int,
                 link: tuple[int, int] | None = None, time_s: float = 0.0) -> None:
        super().__init__(message, trace)
        self.node, self.link, self.time_s = node, link, time_s


class HardwareRun(abc.ABC):
    """A system running on some hardware: advance it, ask its health, collect results.

    Attributes:
        system: the :class:`~tidesim.models.System` it runs.
        fidelity: ``"event"`` or ``"cycle"``.
    """

    system: Any
    fidelity: str

    @property
    @abc.abstractmethod
    def time_s(self) -> float:
        """The simulated time every node has reached (s)."""

    @property
    @abc.abstractmethod
    def stopped(self) -> bool:
        """True once the run stopped (a fault with ``stop_on_fault``, or :meth:`stop`)."""

    @abc.abstractmethod
    def advance(self, until_s: float | None = None, *,
                until_cycles: int | None = None) -> HardwareRun:
        """Run every node to simulated time ``until_s`` (or ``until_cycles`` nominal cycles)."""

    @abc.abstractmethod
    def trace(self, *, requested_until_s: float | None = None):
        """The run so far, as a :class:`~tidesim.models.Trace`."""

    @abc.abstractmethod
    def health(self) -> dict[int, str]:
        """Each node's state: ``"up"``, ``"stopped"`` or ``"dead"``."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop every node and free what the run holds (idempotent)."""

    def execute(self, sched, iterations: int, *, flip_probability: float = 0.0,
                seed: int = 0, crash=None, fault_cycles=None):
        """Run a schedule's calendars and actions in logical time on these nodes.

        ``sched`` is a :class:`~tidesim.calendars.Schedule` on this system's
        links; the other arguments are those of
        :func:`~tidesim.calendars.execute`, and so is the result (a
        :class:`~tidesim.calendars.LogicalRun`, the same on every backend).
        The default runs every node in this process; a backend with nodes
        elsewhere runs each node's calendars on its node, with frames over
        its links.
        """
        from ..calendars import execute

        self._check_schedule(sched)
        return execute(sched, iterations, flip_probability=flip_probability, seed=seed,
                       crash=crash, fault_cycles=fault_cycles)

    def run_atoms(self, atoms, *, timeout_s: float = 60.0, tie_seed: int | None = None):
        """Run one :class:`~tidesim.packetnet.Atom` per node; an
        :class:`~tidesim.packetnet.AtomRun`.

        The default runs them in this process, in virtual time, over the
        system's links (:func:`~tidesim.packetnet.run_on_links`): each link
        carries one 64-bit frame per nominal tick (``8 * f_nom_hz``
        bytes/s) after its latency, and a packet for a node further away
        hops along shortest paths. A backend with nodes elsewhere runs each
        atom on its node, in wall time, with packets over the node's link
        connections (``timeout_s``: how long the atoms may take).

        Raises:
            ConfigError: not one atom per node, a system whose nodes cannot
                all reach each other, or a stopped run.
            Deadlock: (in process) every atom waits and no packet is on its way.
        """
        from ..packetnet._links import run_on_links

        atoms = self._check_atoms(atoms, timeout_s)
        topo = self.system.topology
        return run_on_links(atoms, topo.links, topo.latency_s, 8.0 * self.system.f_nom_hz,
                            tie_seed=tie_seed)

    def _check_atoms(self, atoms, timeout_s: float) -> list:
        from .._checks import number
        from ..packetnet._atoms import check_atoms

        if self.stopped:
            raise ConfigError("run_atoms", "atoms", "the run was stopped")
        number("run_atoms.timeout_s", timeout_s, lo=0, lo_open=True)
        atoms = check_atoms(atoms)
        if len(atoms) != self.system.n_nodes:
            raise ConfigError("atoms", len(atoms),
                              f"must be one per node of the system ({self.system.n_nodes})")
        return atoms

    def _check_schedule(self, sched) -> None:
        """Refuse a schedule whose network is not this system's nodes and links."""
        if self.stopped:
            raise ConfigError("execute", "schedule", "the run was stopped")
        if sched.network.n_nodes != self.system.n_nodes:
            raise ConfigError("schedule.network.n_nodes", sched.network.n_nodes,
                              f"must be the system's {self.system.n_nodes} nodes")
        have = {(int(a), int(b)) for a, b in self.system.topology.links}
        for a, b in sched.network.links.tolist():
            if (a, b) not in have:
                raise ConfigError("schedule.network.links", [a, b],
                                  "must be links of the system the run is on")

    def reserve(self, until_s: float) -> None:
        """A hint that the run will be advanced to ``until_s`` (to size records once).

        The default does nothing: a backend that records into arrays overrides it.
        """
        return None

    def __enter__(self) -> HardwareRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Backend(abc.ABC):
    """A kind of hardware: makes :class:`HardwareRun` s of systems.

    Subclasses set :attr:`name` and implement :meth:`start`.
    """

    name: ClassVar[str] = ""
    """The name it is registered under (``"inprocess"``)."""

    def __init__(self, **options: Any) -> None:
        if options:
            key = next(iter(options))
            raise ConfigError(f"backend.{key}", options[key],
                              f"is not an option of the {self.name} backend")

    @abc.abstractmethod
    def start(self, system, *, fidelity: str = "event", record="summary",
              stop_on_fault: bool = False,
              record_controller_state: bool = False) -> HardwareRun:
        """Create ``system``'s nodes and links, load their programs, and start at ``t = 0``.

        The arguments are those of :meth:`tidesim.models.System.start`.
        """


class _InProcessRun(HardwareRun):
    """A :class:`~tidesim.models.Simulation` seen through the hardware interface."""

    def __init__(self, sim) -> None:
        self._sim = sim
        self.system = sim.system
        self.fidelity = sim.fidelity
        self._stopped = False

    @property
    def time_s(self) -> float:
        return self._sim.time_s

    @property
    def stopped(self) -> bool:
        return self._stopped or self._sim.stopped

    def advance(self, until_s=None, *, until_cycles=None) -> HardwareRun:
        if self._stopped:
            raise ConfigError("advance", until_s, "the run was stopped")
        self._sim.advance(until_s, until_cycles=until_cycles)
        return self

    def trace(self, *, requested_until_s=None):
        return self._sim.trace(requested_until_s=requested_until_s)

    def reserve(self, until_s: float) -> None:
        self._sim.reserve(until_s)

    def health(self) -> dict[int, str]:
        state = "stopped" if self.stopped else "up"
        return dict.fromkeys(range(self.system.n_nodes), state)

    def stop(self) -> None:
        self._stopped = True


class InProcessBackend(Backend):
    """The Numba core in this process: simulated time costs only the computation."""

    name = "inprocess"

    def start(self, system, *, fidelity="event", record="summary", stop_on_fault=False,
              record_controller_state=False) -> HardwareRun:
        return _InProcessRun(system.start(fidelity=fidelity, record=record,
                                          stop_on_fault=stop_on_fault,
                                          record_controller_state=record_controller_state))


_REGISTRY: dict[str, type[Backend] | str] = {
    "inprocess": InProcessBackend,
    "processes": "tidesim.backends._nodeproc:ProcessBackend",
    "containers": "tidesim.backends._containers:ContainerBackend",
    "dask": "tidesim.backends._dasknodes:DaskBackend",
}


def register_backend(name: str, cls: type[Backend] | str) -> None:
    """Make ``cls`` (a :class:`Backend` subclass or ``"module:Class"``) available as ``name``."""
    if not isinstance(name, str) or not name:
        raise ConfigError("backend", name, "must be a non-empty name")
    is_class = isinstance(cls, type) and issubclass(cls, Backend)
    if not is_class and not (isinstance(cls, str) and ":" in cls):
        raise ConfigError(f"backend.{name}", cls, "must be a Backend subclass or 'module:Class'")
    _REGISTRY[name] = cls


def backend_names() -> tuple[str, ...]:
    """The registered backends, in registration order."""
    return tuple(_REGISTRY)


def make_backend(name: str = "inprocess", /, **options: Any) -> Backend:
    """The backend registered as ``name``, made with ``options``.

    Raises:
        ConfigError: an unknown name (with the closest known one), or an
            option the backend does not take.
    """
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError("backend", name,
                          f"must be one of {', '.join(_REGISTRY)}{hint}")
    if isinstance(cls, str):
        module, _, attr = cls.partition(":")
        cls = getattr(importlib.import_module(module), attr)
    return cls(**options)
