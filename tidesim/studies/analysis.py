"""The analytic view of a bittide system: graph Laplacian, resistances, predicted energy.

A linear controller on the elastic-buffer counts makes the node frequencies
diffuse over the graph, so the graph Laplacian ``L = D - A`` of the topology
(every undirected edge, i.e. every pair of opposite links, counts once)
decides how fast and how expensively a system converges.

**Spectrum.** ``0 = λ_1 < λ_2 ≤ … ≤ λ_n`` (the graph is connected). ``λ_2`` is
the *algebraic connectivity*: the slowest mode of the frequency spread decays
like ``exp(-kp · f0 · λ_2 · t)``. Known values: complete graph of n nodes:
``λ_2 = n``; cycle of n nodes: ``λ_2 = 2 - 2 cos(2π/n)``.

**Effective resistance.** With ``L⁺`` the Moore–Penrose pseudo-inverse,
``R_ab = L⁺_aa + L⁺_bb - 2 L⁺_ab`` is the resistance between nodes ``a`` and
``b`` when every edge is a 1 Ω resistor (``2/3`` for any pair of a triangle).

**Energy.** The simulator's energy is ``Σ_i ∫_0^T (f_i/f0 - 1)² dt`` (seconds;
``Trace.energy``). Let ``u`` be the intrinsic offsets as relative frequencies
(``offsets_ppm · 1e-6``), ``ū`` their mean and ``ũ = u - ū``. A link's count
grows as ``dβ_ij/dt = f0 · (ω_i - ω_j)`` frames per second (one frame per tick;
``ω`` relative frequencies), and a proportional controller sets
``c_j = kp · Σ_i β_ij`` with ``kp`` in relative frequency per frame. Together::

    dω/dt = -kp · f0 · L ω          (kp · f0 has units 1/s)

The mean ``ū`` is conserved and the rest decays, so::

    Σ_i ∫_0^∞ (ω_i - ū)² dt = ũᵀ ∫ exp(-2 kp f0 L t) dt ũ = ũᵀ L⁺ ũ / (2 · kp · f0)

in seconds. Writing ``ũᵀ L⁺ ũ = α² · R`` with ``α = (max u - min u) / 2``
(half the peak-to-peak spread of the offsets) gives Callisto's form::

    energy ≈ α² · R / (2 · kp · f0)

For offsets ``+α, -α`` on two nodes ``a, b`` (and 0 elsewhere) ``R`` is exactly
the effective resistance ``R_ab``; in general ``R = -½ Σ_ab ũ_a ũ_b R_ab / α²``.
The Callisto test (complete graph of 3, offsets ``[1e-4, -1e-4, 0]``,
``kp = 2e-8``, ``f0 = 1`` Hz) gives ``R = 2/3`` and
``(1e-4)² · (2/3) / (2 · 2e-8) = 0.1667`` s. At ``f0 = 125 MHz`` the same
``kp`` gives an energy ``1.25e8`` times smaller, because the counts grow
``f0`` times faster per second. The integral term of a PI controller
(``ki``) does not change this continuous-time value: per Laplacian mode the
loop is ``ω'' + a ω' + b ω = 0`` with ``a = kp f0 λ``, ``b = ki f0² λ`` and
``ω'(0) = -a ω(0)``, whose ``∫ω² dt = ω(0)² / (2a)`` for every ``b > 0``.

**The sampled loop.** The controller acts once per ``p`` local ticks (a
zero-order hold), which the continuous formula neglects; it is accurate when
the loop gain ``kp · p · λ_n`` is small (``6e-3`` for the Callisto test,
``0.2`` for the rig). :func:`predicted_energy` therefore uses, by default, the
exact sum of the discrete loop. Per mode ``λ``, with ``g = kp·p``,
``h = ki·p²·λ`` and ``y = ki·p·r`` (the integrator's share of the
correction)::

    ω[k+1] = (1 - g λ - h) ω[k] + y[k]
    y[k+1] = y[k] - h ω[k]              ω[0] = ũ_λ, y[0] = 0

and the energy is ``(p / f0) · Σ_k ω[k]²``, a discrete Lyapunov sum. It tends
to the continuous value as ``g λ → 0``.

What the prediction leaves out: the control delay (``d < p`` ticks), start-up
delays (it assumes every node starts at ``t = 0``), drift and wander, buffer
faults and adjustments, and any nonlinearity (a quantized actuator, other
controllers: there it is ``None``). Counts are integers, too: the rounding of
each measured count (±½ frame) keeps the corrections moving by about
``kp · sqrt(degree / 12)`` after convergence, which adds roughly
``n · degree · kp² / 12`` per second of run; compare runs whose transient
energy is well above that (with ``kp = 1e-6`` on the rig this floor is
``~5e-13`` per second for 3 nodes, as much as the whole transient of offsets of
±14 ppm on a triangle). It predicts the spread part of the energy,
``Σ_i ∫ (ω_i - ω̄)² dt`` (``metrics.energy_spread``), which equals
``Trace.energy`` when the final common frequency is nominal, as in the
Callisto test; otherwise ``Trace.energy`` also holds ``n · ω̄² · T``.

Example:
    >>> from tidesim.models import Topology
    >>> from tidesim.studies.analysis import algebraic_connectivity, effective_resistance
    >>> round(algebraic_connectivity(Topology.complete(5)), 9)
    5.0
    >>> round(effective_resistance(Topology.complete(3), 0, 1), 9)
    0.666666667
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from ..errors import ConfigError

__all__ = [
    "OffsetResistance",
    "algebraic_connectivity",
    "analysis_summary",
    "controller_gains",
    "effective_resistance",
    "laplacian",
    "laplacian_spectrum",
    "offset_resistance",
    "predicted_energy",
]

_ZERO_EIG = 1e-9  # eigenvalues below this (relative to n) are the null space


def _graph(obj) -> nx.Graph:
    """The undirected graph of a Topology, a System (its topology) or a networkx graph."""
    if isinstance(obj, nx.Graph):
        return obj
    topology = getattr(obj, "topology", obj)
    graph = getattr(topology, "graph", topology)
    if not isinstance(graph, nx.Graph):
        raise ConfigError("topology", obj, "must be a Topology, a System or a networkx Graph")
    return graph


def _edge_key(obj) -> tuple[int, bytes]:
    """A hashable key of the graph's structure (node count and sorted edges)."""
    g = _graph(obj)
    n = g.number_of_nodes()
    index = {v: i for i, v in enumerate(sorted(g.nodes()))}
    edges = np.array(sorted(tuple(sorted((index[a], index[b]))) for a, b in g.edges()),
                     dtype=np.int64).reshape(-1, 2)
    return n, edges.tobytes()


@functools.lru_cache(maxsize=64)
def _eig_cached(n: int, edges: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Laplacian, eigenvalues, eigenvectors of a graph given by its edge list."""
    e = np.frombuffer(edges, dtype=np.int64).reshape(-1, 2)
    L = np.zeros((n, n))
    for a, b in e:
        if a == b:
            continue
        L[a, b] -= 1.0
        L[b, a] -= 1.0
        L[a, a] += 1.0
        L[b, b] += 1.0
    lam, vec = np.linalg.eigh(L)
    lam[np.abs(lam) < _ZERO_EIG * max(n, 1)] = 0.0
    for arr in (L, lam, vec):
        arr.setflags(write=False)
    return L, lam, vec


def _eig(obj) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _eig_cached(*_edge_key(obj))


def laplacian(obj) -> np.ndarray:
    """The graph Laplacian ``L = D - A`` (float64 ``[n, n]``, read-only).

    Args:
        obj: a :class:`~tidesim.models.Topology`, a ``System`` (its topology)
            or a networkx graph (nodes in sorted order).

    Returns:
        ``L`` with one unit weight per undirected edge (the two links of a cable).
    """
    return _eig(obj)[0]


def laplacian_spectrum(obj) -> np.ndarray:
    """Eigenvalues of the Laplacian in ascending order (float64 ``[n]``; the first is 0)."""
    return _eig(obj)[1].copy()


def algebraic_connectivity(obj) -> float:
    """``λ_2``, the second-smallest Laplacian eigenvalue (0 for a disconnected graph)."""
    lam = _eig(obj)[1]
    return float(lam[1]) if lam.size > 1 else 0.0


def _pinv(obj) -> np.ndarray:
    _, lam, vec = _eig(obj)
    inv = np.zeros_like(lam)
    nz = lam > 0
    inv[nz] = 1.0 / lam[nz]
    return (vec * inv) @ vec.T


def effective_resistance(obj, a: int | None = None, b: int | None = None):
    """Effective resistance between nodes, every edge a 1 Ω resistor.

    Args:
        obj: a Topology, a System or a networkx graph.
        a, b: two node indices, or both ``None`` for the whole matrix.

    Returns:
        ``R_ab = L⁺_aa + L⁺_bb - 2 L⁺_ab`` as a float, or the float64 ``[n, n]``
        matrix of all pairs.
    """
    P = _pinv(obj)
    d = np.diag(P)
    if a is None and b is None:
        R = d[:, None] + d[None, :] - 2.0 * P
        np.fill_diagonal(R, 0.0)
        return R
    if a is None or b is None:
        raise ConfigError("effective_resistance", (a, b), "needs both nodes, or neither")
    n = P.shape[0]
    for node in (a, b):
        if not isinstance(node, (int, np.integer)) or not 0 <= node < n:
            raise ConfigError("node", node, f"must be a node index in [0, {n - 1}]")
    return float(P[a, a] + P[b, b] - 2.0 * P[a, b]) if a != b else 0.0


@dataclass(frozen=True)
class OffsetResistance:
    """How hard a set of offsets is to pull together on a graph.

    Attributes:
        alpha: half the peak-to-peak spread of the offsets, ``(max - min) / 2``
            (in the unit of the offsets given).
        quadratic: ``ũᵀ L⁺ ũ`` with ``ũ`` the offsets minus their mean (unit²).
        resistance: ``R = quadratic / alpha²`` (dimensionless); ``None`` when
            all offsets are equal.
    """

    alpha: float
    quadratic: float
    resistance: float | None


def offset_resistance(obj, offsets) -> OffsetResistance:
    """The ``α`` and ``R`` of ``energy ≈ α² R / (2 kp f0)`` for given offsets.

    Args:
        obj: a Topology, a System or a networkx graph.
        offsets: one offset per node (any unit; ``alpha`` and ``quadratic``
            come out in that unit and its square).

    Returns:
        An :class:`OffsetResistance`. For offsets ``[α, -α, 0]`` on a triangle,
        ``resistance = 2/3``.
    """
    u = np.asarray(offsets, dtype=np.float64).reshape(-1)
    n = _eig(obj)[1].size
    if u.size != n:
        raise ConfigError("offsets", u.tolist(), f"must have one entry per node ({n})")
    ut = u - u.mean()
    quad = float(ut @ _pinv(obj) @ ut)
    alpha = float(u.max() - u.min()) / 2.0
    return OffsetResistance(alpha=alpha, quadratic=quad,
                            resistance=quad / alpha**2 if alpha > 0 else None)


def controller_gains(system) -> tuple[float, float] | None:
    """``(kp, ki)`` of a system's linear controller, else ``None``.

    Recognises any controller that carries ``kp`` (and optionally ``ki``):
    ``PI``, ``P`` and ``Pump`` (its constant target moves every node alike,
    so the spread is that of a P loop); and a ``Controller`` of the built-in
    step functions ``pi_step`` (``params = [kp, ki, p]``), ``p_step``
    (``[kp]``) or ``pump_step`` (``[kp, target]``). Composites and
    reframing are not linear: ``None``.
    """
    ctl = getattr(system, "controller", None)
    if ctl is None:
        return None
    kp = getattr(ctl, "kp", None)
    if kp is not None:
        return float(kp), float(getattr(ctl, "ki", 0.0) or 0.0)
    from .. import controllers

    step = getattr(ctl, "step", None)
    params = np.asarray(getattr(ctl, "params", ()), dtype=np.float64)
    if step is None or params.size == 0:
        return None
    if step is getattr(controllers, "pi_step", None) and params.size >= 2:
        return float(params[0]), float(params[1])
    for name in ("p_step", "pump_step"):
        if step is getattr(controllers, name, None):
            return float(params[0]), 0.0
    return None


def _mode_sums(lam: np.ndarray, g: float, ki_p2: float) -> np.ndarray:
    """``Σ_k ω[k]²`` per mode for ``ω[0] = 1`` (inf where the loop is unstable)."""
    out = np.full(lam.shape, np.inf)
    for idx, lm in enumerate(lam):
        h = ki_p2 * lm
        if h == 0.0:  # P: ω[k] = (1 - g λ)^k
            a = 1.0 - g * lm
            if abs(a) < 1.0:
                out[idx] = 1.0 / (1.0 - a * a)
            continue
        M = np.array([[1.0 - g * lm - h, 1.0], [-h, 1.0]])
        if np.max(np.abs(np.linalg.eigvals(M))) >= 1.0:
            continue
        # X - Mᵀ X M = e1 e1ᵀ; vec(Mᵀ X M) = (Mᵀ ⊗ Mᵀ) vec(X)
        K = np.eye(4) - np.kron(M.T, M.T)
        X = np.linalg.solve(K, np.array([1.0, 0.0, 0.0, 0.0]))
        out[idx] = X[0]
    return out


def predicted_energy(system, *, sampled: bool = True, kp: float | None = None,
                     ki: float | None = None) -> float | None:
    """Predicted ``Σ_i ∫ (f_i/f0 - ω̄)² dt`` (seconds) of a linear controller.

    See the module documentation for the derivation and what it neglects.

    Args:
        system: a :class:`~tidesim.models.System`.
        sampled: ``True`` (default) sums the sampled loop exactly (one update
            per ``update_period_ticks``); ``False`` gives the continuous-time
            closed form ``ũᵀ L⁺ ũ / (2 kp f0) = α² R / (2 kp f0)``.
        kp, ki: gains to use instead of the system's controller's.

    Returns:
        The energy in seconds (``inf`` when the loop is unstable), or ``None``
        when there is no linear controller or the actuator is quantized.
    """
    gains = controller_gains(system)
    if kp is None and gains is None:
        return None
    kp = float(kp if kp is not None else gains[0])
    ki = float(ki if ki is not None else (gains[1] if gains is not None else 0.0))
    actuator = getattr(system, "actuator", None)
    if actuator is not None and getattr(actuator, "kind", "continuous") != "continuous":
        return None
    u = np.asarray(system.offsets_ppm, dtype=np.float64) * 1e-6
    ut = u - u.mean()
    _, lam, vec = _eig(system)
    coef = vec.T @ ut
    nz = lam > 0
    lam, coef = lam[nz], coef[nz]
    if not np.any(coef != 0.0):
        return 0.0
    f0 = float(system.f_nom_hz)
    if not sampled:
        if kp <= 0.0:
            return math.inf
        return float(np.sum(coef**2 / lam) / (2.0 * kp * f0))
    p = float(system.update_period_ticks)
    sums = _mode_sums(lam, kp * p, ki * p * p)
    used = coef != 0.0
    if np.any(np.isinf(sums[used])):
        return math.inf
    return float(p / f0 * np.sum(coef[used] ** 2 * sums[used]))


def analysis_summary(system) -> dict:
    """The analytic numbers of a system, as a flat dict of scalars.

    Keys: ``nodes``, ``edges``, ``algebraic_connectivity`` (``λ_2``),
    ``laplacian_max`` (``λ_n``), ``eigenratio`` (``λ_2 / λ_n``),
    ``total_resistance`` (``Σ_{a<b} R_ab``, the Kirchhoff index),
    ``offset_alpha_ppm`` and ``offset_resistance`` (the ``α`` and ``R`` of the
    offsets), ``controller_kp``, ``controller_ki`` (``None`` without a linear
    controller), ``loop_gain`` (``kp · p · λ_n``; the sampled P loop is stable
    below 2), ``time_constant_s`` (``1 / (kp f0 λ_2)``), ``predicted_energy``
    (sampled loop) and ``predicted_energy_continuous`` (``α² R / (2 kp f0)``).
    """
    _, lam, _ = _eig(system)
    n = int(lam.size)
    g = _graph(system)
    lam2 = float(lam[1]) if n > 1 else 0.0
    lam_max = float(lam[-1])
    nz = lam > 0
    ores = offset_resistance(system, np.asarray(system.offsets_ppm, dtype=np.float64))
    gains = controller_gains(system)
    kp, ki = gains if gains is not None else (None, None)
    p = int(system.update_period_ticks)
    f0 = float(system.f_nom_hz)
    return {
        "nodes": n,
        "edges": int(g.number_of_edges()),
        "algebraic_connectivity": lam2,
        "laplacian_max": lam_max,
        "eigenratio": lam2 / lam_max if lam_max > 0 else 0.0,
        "total_resistance": float(n * np.sum(1.0 / lam[nz])),
        "offset_alpha_ppm": ores.alpha,
        "offset_resistance": ores.resistance,
        "controller_kp": kp,
        "controller_ki": ki,
        "loop_gain": kp * p * lam_max if kp is not None else None,
        "time_constant_s": (1.0 / (kp * f0 * lam2) if kp and lam2 > 0 else None),
        "predicted_energy": predicted_energy(system),
        "predicted_energy_continuous": predicted_energy(system, sampled=False),
    }
