"""A schedule as per-cycle tables and as calendars.

The executor reads flat tables indexed by ``[link or node, cycle mod M]``;
the same content, run-length encoded, is each node's gather, scatter and
switch :class:`~tidesim.calendars.Calendar`. Every operation also carries its
pipeline stage ``t // M``: node software enables stage ``s`` from metacycle
``s`` on (the pipeline's prologue) and stops after ``N`` iterations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, SimulationFault

__all__ = ["Tables", "build_tables", "calendars_of", "check_hardware"]


@dataclass(frozen=True, eq=False)
class Tables:
    """Per-cycle operation tables of a schedule (int64; -1 = nothing).

    Attributes:
        gather_addr, gather_stage: ``[L, M]`` Tx word put on link ``l`` by its sender.
        switch_in, switch_stage: ``[L, M]`` incoming link whose last frame the
            sender forwards on ``l`` (the switch), or -1.
        scatter_addr, scatter_stage: ``[L, M]`` Rx word the receiver writes
            the arriving frame to.
        copy_ptr: ``[N * M + 1]`` CSR pointers of local copies per ``(node, x)``.
        copy_tx, copy_rx, copy_stage: ``[C]`` the copies.
        fire_id, fire_stage: ``[N, M]`` firing started by a node.
    """

    gather_addr: np.ndarray
    gather_stage: np.ndarray
    switch_in: np.ndarray
    switch_stage: np.ndarray
    scatter_addr: np.ndarray
    scatter_stage: np.ndarray
    copy_ptr: np.ndarray
    copy_tx: np.ndarray
    copy_rx: np.ndarray
    copy_stage: np.ndarray
    fire_id: np.ndarray
    fire_stage: np.ndarray


def _put(table, stage, row: int, t: int, value: int, M: int, what: str) -> None:
    x = t % M
    if table[row, x] != -1:
        raise SimulationFault(f"calendar conflict: {what} {row} cycle {x} of the metacycle "
                              f"is used twice")
    table[row, x] = value
    stage[row, x] = t // M


def build_tables(sched) -> Tables:
    """The per-cycle tables of a :class:`~tidesim.calendars.Schedule`."""
    M = sched.metacycle_cycles
    L, N = sched.network.n_links, sched.network.n_nodes
    lat = sched.network.latency_cycles

    def blank(rows):
        return np.full((rows, M), -1, dtype=np.int64), np.zeros((rows, M), dtype=np.int64)

    ga, gs = blank(L)
    si, ss = blank(L)
    sa, sst = blank(L)
    fi, fs = blank(N)
    for s, route in enumerate(sched.hops):
        t = int(sched.sends[s, 3])
        _put(ga, gs, int(route[0]), t, int(sched.sends[s, 4]), M, "link")
        for k in range(1, len(route)):
            t += int(lat[route[k - 1]]) + 1
            if ga[route[k], t % M] != -1:
                raise SimulationFault(f"calendar conflict: link {int(route[k])} cycle "
                                      f"{t % M} of the metacycle is used twice")
            _put(si, ss, int(route[k]), t, int(route[k - 1]), M, "link")
        t += int(lat[route[-1]])
        _put(sa, sst, int(route[-1]), t, int(sched.sends[s, 5]), M, "scatter on link")
    both = (ga >= 0) & (si >= 0)
    if both.any():
        l, x = (int(v[0]) for v in np.nonzero(both))
        raise SimulationFault(f"calendar conflict: link {l} cycle {x} of the metacycle "
                              "is used twice")
    for k in range(sched.n_firings):
        _put(fi, fs, int(sched.fire[k, 2]), int(sched.fire[k, 3]), k, M, "node")
    # local copies, grouped by (node, x)
    cp = sched.copies
    if len(cp):
        dst = np.array([e.dst for e in sched.graph.edges], dtype=np.int64)
        node = sched.placement[dst[cp[:, 0]]]
        key = node * M + cp[:, 3] % M
        order = np.argsort(key, kind="stable")
        counts = np.bincount(key, minlength=N * M)
        ptr = np.zeros(N * M + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        ctx, crx, cst = cp[order, 4], cp[order, 5], cp[order, 3] // M
    else:
        ptr = np.zeros(N * M + 1, dtype=np.int64)
        ctx = crx = cst = np.zeros(0, dtype=np.int64)
    return Tables(ga, gs, si, ss, sa, sst, ptr, np.ascontiguousarray(ctx),
                  np.ascontiguousarray(crx), np.ascontiguousarray(cst), fi, fs)


def calendars_of(sched, tables: Tables | None = None, hardware=None) -> list[dict]:
    """Each node's ``{"gather", "scatter", "switch"}`` :class:`Calendar`.

    Ports: gather and switch outputs are the node's outgoing links in link
    order; scatter ports and switch inputs are its incoming links (switch
    input ``k`` is incoming link ``k - 1``).
    """
    from ._calendar import Calendar, Hardware

    hw = hardware if hardware is not None else Hardware()
    t = tables if tables is not None else build_tables(sched)
    net = sched.network
    out = []
    for n in range(net.n_nodes):
        outs, ins = net.out_links[n], net.in_links[n]
        # switch input k is incoming link k - 1 of this node; 0 is the null frame
        port_of = np.zeros(net.n_links + 1, dtype=np.int64)
        port_of[ins] = np.arange(1, len(ins) + 1)
        sw = port_of[t.switch_in[outs].T]  # -1 indexes the trailing 0: no frame
        out.append({
            "gather": Calendar.from_cycles("gather", t.gather_addr[outs].T, hardware=hw),
            "scatter": Calendar.from_cycles("scatter", t.scatter_addr[ins].T, hardware=hw),
            "switch": Calendar.from_cycles("switch", sw, inputs=len(ins), hardware=hw),
        })
    return out


def check_memory(tx_words, rx_words, hardware) -> None:
    """Refuse Tx/Rx memories (words per node, int64 ``[N]``) beyond ``hardware``'s.

    The layout is known before any metacycle is tried, so this refuses an app
    at once, where scheduling it first could take minutes.
    """
    for what, used, cap in (("tx_words", tx_words, hardware.tx_words),
                            ("rx_words", rx_words, hardware.rx_words)):
        if used.max(initial=0) > cap:
            n = int(np.argmax(used))
            raise ConfigError(f"hardware.{what}", int(cap),
                              f"is too small: node {n} needs {int(used[n])} words")


def check_hardware(sched, hardware) -> None:
    """Refuse a schedule that needs more memory or calendar depth than ``hardware`` has."""
    check_memory(sched.tx_words, sched.rx_words, hardware)
    from dataclasses import replace

    from ._calendar import MAX_CALENDAR_DEPTH

    # built as deep as the model allows, so that a refusal names the node and its need
    deep = replace(hardware, calendar_depth=MAX_CALENDAR_DEPTH)
    for n, cals in enumerate(calendars_of(sched, hardware=deep)):
        for kind, cal in cals.items():
            if cal.depth > hardware.calendar_depth:
                raise ConfigError("hardware.calendar_depth", hardware.calendar_depth,
                                  f"is too small: node {n}'s {kind} calendar needs "
                                  f"{cal.depth} entries")
