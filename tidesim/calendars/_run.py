"""An application on a physical system: synchronise, take the UGNs, schedule, run.

Example:
    >>> from tidesim.calendars import run_app
    >>> from tidesim.config import build_system, load_config, validate
    >>> from tidesim.waves.apps import get_app
    >>> system = build_system(validate(load_config({"preset": "hitl-cycle5"})))
    >>> result = run_app(get_app("counter", 5), system, metacycles=20)
    >>> result.matches_functional, result.faults, result.sync_s
    (True, [], 7.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._checks import integer
from ..errors import SimulationFault
from ._calendar import Hardware
from ._checker import check_schedule
from ._executor import Crash, LogicalRun
from ._network import LogicalNetwork
from ._schedule import Schedule, check_fits, schedule

__all__ = ["AppFault", "AppRun", "run_app", "synchronise"]


@dataclass(frozen=True)
class AppFault:
    """An elastic buffer that faulted while the application ran.

    Attributes:
        node, link, src: receiver, link index and sender.
        kind: ``"overflow"`` or ``"underflow"``.
        cycle: the receiver's local cycle (from its start), and
        app_cycle: the same in application cycles (from the epoch).
    """

    node: int
    link: int
    src: int
    kind: str
    cycle: int
    app_cycle: int

    def __str__(self) -> str:
        return (f"node {self.node}, link {self.link} ({self.src}->{self.node}): "
                f"{self.kind} at cycle {self.cycle} (application cycle {self.app_cycle})")


@dataclass(frozen=True, eq=False)
class AppRun:
    """What :func:`run_app` did.

    Attributes:
        schedule: the :class:`Schedule`; logical: the :class:`LogicalRun`.
        functional: the :class:`~tidesim.waves.FunctionalResult` of the same
            iterations; matches_functional: every output and final state
            equal, bit for bit, and no output token corrupted by a fault.
        epoch_cycles: int64 ``[n]`` each node's cycle at the application's start.
        sync_s: the physical time the application started at.
        faults: :class:`AppFault` s during the application's cycles.
        first_corrupted: ``(output, token)`` of the first output a fault
            corrupted, or None.
    """

    app: str
    schedule: Schedule
    logical: LogicalRun
    functional: object
    matches_functional: bool
    epoch_cycles: np.ndarray
    sync_s: float
    fidelity: str
    faults: list = field(default_factory=list)
    first_corrupted: tuple | None = None

    def summary(self) -> dict:
        """The JSON summary of ``tidesim app --json``."""
        sched, run = self.schedule, self.logical
        util = sched.link_utilisation()
        n = sched.network.n_nodes
        return {
            "app": self.app,
            "nodes": n,
            "links": sched.network.n_links,
            "fidelity": self.fidelity,
            "metacycle_cycles": sched.metacycle_cycles,
            "metacycles": run.metacycles,
            "iterations": run.iterations,
            "cycles": run.cycles,
            "matches_functional": self.matches_functional,
            "output_digest": run.digest(),
            "link_utilisation": float(util.mean()) if len(util) else 0.0,
            "faults": [str(f) for f in self.faults],
            "first_corrupted": (None if self.first_corrupted is None
                                else f"{self.first_corrupted[0]}[{self.first_corrupted[1]}]"),
            "sync_s": self.sync_s,
            "wall_s": run.wall_s,
            "node_cycles_per_s": n * run.cycles / run.wall_s if run.wall_s > 0 else None,
        }


def outputs_equal(a: dict, b: dict) -> bool:
    """Same keys, and every array equal byte for byte (NaNs included)."""
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        if x.shape != y.shape or x.dtype != y.dtype or \
                np.ascontiguousarray(x).tobytes() != np.ascontiguousarray(y).tobytes():
            return False
    return True


def synchronise(system, *, fidelity: str = "event", until_s: float | None = None,
                backend=None):
    """Run ``system`` until logical synchrony: every link armed both ways and settled.

    Args:
        system: the physical system.
        fidelity: of the physical run.
        until_s: give up after this long (default the system's run length, or 60 s).
        backend: the :class:`~tidesim.backends.Backend` it runs on (default in-process).

    Returns:
        The :class:`~tidesim.backends.HardwareRun`, stopped at the first
        slice end where that holds (summary recording).

    Raises:
        SimulationFault: not in logical synchrony by ``until_s`` (default the
            system's configured run length, or 60 s).
    """
    if backend is None:
        from ..backends.hardware import InProcessBackend

        backend = InProcessBackend()
    sim = backend.start(system, fidelity=fidelity, record="summary")
    end = float(until_s if until_s is not None else
                (getattr(system, "until_s", None) or 60.0))
    step = max(end / 60, 1e-6)
    t = 0.0
    try:
        while t < end:
            t = min(end, t + step)
            sim.advance(t)
            tr = sim.trace()
            if (tr.ugn_reported.all() and tr.settle_time_s is not None
                    and not tr.faults_after_settle):
                return sim
        raise SimulationFault(f"the physical system did not reach logical synchrony by "
                              f"{end:g} s (links armed both ways and settled)", sim.trace())
    except BaseException:
        sim.stop()
        raise


def run_app(app, system, *, metacycles: int = 10, placement="greedy",
            fidelity: str = "event", sync_until_s: float | None = None, hardware=None,
            check: bool = True, flip_probability: float = 0.0, seed: int = 0,
            crash: Crash | None = None, backend=None) -> AppRun:
    """Bring ``system`` to logical synchrony, schedule ``app`` on its UGNs and run it.

    The physical run goes on over the application's cycles and proves that
    no elastic buffer faults meanwhile; a fault is reported with node, link
    and cycle, and the outputs it corrupted are marked.

    Args:
        app: a :class:`~tidesim.waves.App` (or its ``Graph``).
        system: the physical :class:`~tidesim.models.System`.
        metacycles: SDF iterations to run (one per metacycle).
        placement: see :func:`~tidesim.calendars.place`.
        fidelity: of the physical run.
        sync_until_s: give up on synchrony after this long.
        hardware: calendar and memory limits (default: :class:`Hardware` ()).
        check: prove the schedule with :func:`check_schedule`.
        flip_probability, seed, crash: fault injection (:func:`execute`).
        backend: the :class:`~tidesim.backends.Backend` the physical run
            is on (default in-process).
    """
    n_iter = integer("metacycles", metacycles, lo=1)
    graph = app.graph() if hasattr(app, "graph") and callable(app.graph) else app
    name = getattr(app, "name", "app")
    hardware = Hardware() if hardware is None else hardware
    check_fits(graph, system.n_nodes, placement)  # before the physical run
    sim = synchronise(system, fidelity=fidelity, until_s=sync_until_s, backend=backend)
    try:
        return _run_synchronised(sim, graph, name, system, placement, hardware, check, n_iter,
                                 flip_probability, seed, crash, fidelity)
    finally:
        sim.stop()


def _run_synchronised(sim, graph, name, system, placement, hardware, check, n_iter,
                      flip_probability, seed, crash, fidelity) -> AppRun:
    from ..waves import functional_run

    tr = sim.trace()
    epoch = tr.final_cycles
    net = LogicalNetwork.of_trace(tr)
    sched = schedule(graph, net, placement, hardware=hardware)
    if check:
        check_schedule(sched)
    run = sim.execute(sched, n_iter, flip_probability=flip_probability, seed=seed, crash=crash)
    # the physical run over the application's cycles
    t0 = sim.time_s
    counts0 = tr.fault_counts().copy()
    lo, _hi = sched.span_cycles
    end_cycle = epoch + lo + run.cycles
    f_hz = float(system.f_nom_hz)
    t = t0
    while True:
        t = t + max(float((end_cycle - tr.final_cycles).max()) / f_hz * 1.001, 1e-9)
        sim.advance(t)
        tr = sim.trace()
        if (tr.final_cycles >= end_cycle).all():
            break
    faults = []
    new = tr.fault_counts() > counts0
    for fl in tr.faults:
        if new[fl.link]:
            cyc = fl.cycle if fl.time_s >= t0 else int(epoch[fl.node] + lo)
            faults.append(AppFault(fl.node, fl.link, fl.src, fl.kind, int(cyc),
                                   int(cyc - epoch[fl.node])))
    if faults:
        fc = np.full(net.n_links, -1, dtype=np.int64)
        for f in faults:
            fc[f.link] = f.app_cycle if fc[f.link] < 0 else min(fc[f.link], f.app_cycle)
        run = sim.execute(sched, n_iter, flip_probability=flip_probability, seed=seed,
                          crash=crash, fault_cycles=fc)
    func = functional_run(graph, n_iter)
    # a token that depends on a corrupted frame cannot be trusted, even where
    # its value happens to be right (a buffer fault marks frames, it does not
    # invent their contents)
    matches = (run.first_corrupted() is None and outputs_equal(run.outputs, func.outputs)
               and outputs_equal(run.states, func.states))
    return AppRun(app=name, schedule=sched, logical=run, functional=func,
                  matches_functional=matches, epoch_cycles=epoch, sync_s=t0,
                  fidelity=fidelity, faults=faults, first_corrupted=run.first_corrupted())

