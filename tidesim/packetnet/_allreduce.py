"""Allreduce as atoms: naive, tree and stream, written once for every runtime.

Each node holds a vector of ``length`` float64 elements (or only its length,
when the data does not matter: the packets then carry sizes, not values).
Reducing ``k`` vectors of ``len`` elements costs ``FLOP_TIME_S * k * len``
seconds of compute. Sums are taken in a fixed order, so one algorithm gives
the same bits on every runtime.
"""

from __future__ import annotations

import numpy as np

from .._checks import integer, number
from .._paths import import_file
from ..errors import ConfigError
from ._atoms import Atom, Runtime, interrupt

__all__ = ["ALGORITHMS", "FLOP_TIME_S", "TABLE_ROWS", "TABLE_SIZES", "Allreduce",
           "NaiveAllreduce", "StreamAllreduce", "TreeAllreduce", "allreduce", "format_table",
           "load_algorithm", "make_allreduce", "table"]

FLOP_TIME_S = 1e-9
"""Compute time of one element of one input vector of a reduction (s)."""


def _add(vectors):
    """The elementwise sum, left to right (None where only lengths travel)."""
    if vectors[0] is None:
        return None
    acc = np.array(vectors[0], dtype=np.float64)
    for v in vectors[1:]:
        acc += v
    return acc


class Allreduce(Atom):
    """An allreduce node: its result is the sum of every node's vector.

    Args:
        length: elements per vector (an integer >= 1).
        vector: this node's float64 vector of ``length`` elements, or None
            to move sizes only (the result is then None).
    """

    name = ""

    def __init__(self, length: int, vector=None) -> None:
        self.length = integer("allreduce.size", length, lo=1)
        if vector is not None:
            vector = np.asarray(vector, dtype=np.float64)
            if vector.shape != (self.length,):
                raise ConfigError("allreduce.vector", vector.shape,
                                  f"must be ({self.length},)")
        self.vector = vector

    def part(self, start: int, stop: int):
        return None if self.vector is None else self.vector[start:stop]

    async def reduce(self, rt: Runtime, vectors, length: int):
        """Sum ``vectors`` (each ``length`` elements), paying the compute time."""
        await rt.sleep(FLOP_TIME_S * len(vectors) * length)
        return _add(vectors)


class NaiveAllreduce(Allreduce):
    """Every node sends its vector to every other node, then sums all N.

    Completion on the switched network: ``L + 8n(N-1)/R + 1e-9·N·n``.
    """

    name = "naive"

    def __init__(self, length: int, vector=None) -> None:
        super().__init__(length, vector)
        self.got: dict[int, object] = {}

    async def invoke(self, rt: Runtime):
        for j in range(rt.n_nodes):
            if j != rt.node:
                rt.send(j, "vector", self.vector, size_bytes=8 * self.length)
        await rt.until(lambda: len(self.got) == rt.n_nodes - 1)
        self.got[rt.node] = self.vector
        return await self.reduce(rt, [self.got[j] for j in range(rt.n_nodes)], self.length)

    @interrupt("vector")
    def on_vector(self, rt: Runtime, p) -> None:
        self.got[p.source] = p.payload


class TreeAllreduce(Allreduce):
    """Reduce up a heap-ordered binary tree (parent ``(i-1)//2``), then
    broadcast down: each child gets its own send."""

    name = "tree"

    def __init__(self, length: int, vector=None) -> None:
        super().__init__(length, vector)
        self.up: dict[int, object] = {}
        self.down: list = []

    async def invoke(self, rt: Runtime):
        i, n = rt.node, self.length
        kids = [k for k in (2 * i + 1, 2 * i + 2) if k < rt.n_nodes]
        await rt.until(lambda: len(self.up) == len(kids))
        total = await self.reduce(rt, [self.vector, *(self.up[k] for k in kids)], n)
        if i:
            rt.send((i - 1) // 2, "up", total, size_bytes=8 * n)
            await rt.until(lambda: self.down)
            total = self.down[0]
        for k in kids:
            rt.send(k, "down", total, size_bytes=8 * n)
        return total

    @interrupt("up")
    def on_up(self, rt: Runtime, p) -> None:
        self.up[p.source] = p.payload

    @interrupt("down")
    def on_down(self, rt: Runtime, p) -> None:
        self.down.append(p.payload)


class StreamAllreduce(Allreduce):
    """Chunks stream around a ring twice, each hop stop-and-wait: once
    reducing (node 0 starts each chunk, node i adds its own), once
    broadcasting the sums from node 0.

    Chunks are ``max(1, n // N)`` elements; a data packet is ``8·len + 1``
    bytes, an acknowledgement 1 byte.
    """

    name = "stream"

    def __init__(self, length: int, vector=None) -> None:
        super().__init__(length, vector)
        self.result: dict[int, object] = {}  # chunk -> its sum
        self.to_reduce: list = []     # reduced chunks waiting for the link downstream
        self.reduce_busy = False      # a reduce sent downstream, not acknowledged yet
        self.to_bcast: list = []
        self.bcast_busy = False
        self.bcast_acks = 0
        self.started_bcast = False

    async def invoke(self, rt: Runtime):
        n, big_n = self.length, rt.n_nodes
        step = max(1, n // big_n)
        self.bounds = [(s, min(s + step, n)) for s in range(0, n, step)]
        chunks = len(self.bounds)
        if big_n == 1:
            return await self.reduce(rt, [self.vector], n)
        if rt.node == 0:
            self.next_chunk = 1
            self._send_data(rt, "reduce", 0, self.part(*self.bounds[0]))
            await rt.until(lambda: len(self.result) == chunks)
            for c in range(chunks):
                self._send_data(rt, "bcast", c, self.result[c])
                await rt.until(lambda c=c: self.bcast_acks > c)
        else:
            await rt.until(lambda: len(self.result) == chunks and not self.to_bcast)
        return self._whole()

    def _whole(self):
        if self.vector is None:
            return None
        return np.concatenate([self.result[c] for c in range(len(self.bounds))])

    def _send_data(self, rt: Runtime, kind: str, c: int, data) -> None:
        lo, hi = self.bounds[c]
        rt.send((rt.node + 1) % rt.n_nodes, kind, (c, data), size_bytes=8 * (hi - lo) + 1)

    def _ack(self, rt: Runtime, kind: str, c: int) -> None:
        rt.send((rt.node - 1) % rt.n_nodes, kind, c, size_bytes=1)

    def _pump_reduce(self, rt: Runtime) -> None:
        if self.to_reduce and not self.reduce_busy:
            c, data = self.to_reduce.pop(0)
            self._send_data(rt, "reduce", c, data)
            self.reduce_busy = True

    def _pump_bcast(self, rt: Runtime) -> None:
        if self.to_bcast and not self.bcast_busy:
            self._send_data(rt, "bcast", *self.to_bcast.pop(0))
            self.bcast_busy = True

    @interrupt("reduce")
    async def on_reduce(self, rt: Runtime, p) -> None:
        c, data = p.payload
        self._ack(rt, "reduce_ack", c)
        if rt.node == 0:  # the whole ring's sum of chunk c
            self.result[c] = data
            return
        lo, hi = self.bounds[c]
        self.to_reduce.append((c, await self.reduce(rt, [data, self.part(lo, hi)], hi - lo)))
        self._pump_reduce(rt)

    @interrupt("reduce_ack")
    def on_reduce_ack(self, rt: Runtime, p) -> None:
        if rt.node == 0:
            if self.next_chunk < len(self.bounds):
                c = self.next_chunk
                self.next_chunk += 1
                self._send_data(rt, "reduce", c, self.part(*self.bounds[c]))
            return
        self.reduce_busy = False
        self._pump_reduce(rt)

    @interrupt("bcast")
    def on_bcast(self, rt: Runtime, p) -> None:
        c, data = p.payload
        self._ack(rt, "bcast_ack", c)
        self.result[c] = data
        if rt.node != rt.n_nodes - 1:
            self.to_bcast.append((c, data))
            self._pump_bcast(rt)

    @interrupt("bcast_ack")
    def on_bcast_ack(self, rt: Runtime, p) -> None:
        if rt.node == 0:
            self.bcast_acks += 1
            return
        self.bcast_busy = False
        self._pump_bcast(rt)


ALGORITHMS: dict[str, type[Allreduce]] = {
    cls.name: cls for cls in (NaiveAllreduce, TreeAllreduce, StreamAllreduce)}
"""The built-in algorithms, by name."""


def load_algorithm(algorithm, field: str = "algorithm") -> type[Atom]:
    """An allreduce atom class: a name of :data:`ALGORITHMS`, an
    :class:`~tidesim.packetnet.Atom` subclass, or ``"FILE.py:CLASS"`` (a class
    in a Python file; it is made as ``CLASS(length, vector)``)."""
    if isinstance(algorithm, type) and issubclass(algorithm, Atom):
        return algorithm
    expected = f"must be one of {', '.join(ALGORITHMS)} or FILE.py:CLASS"
    if not isinstance(algorithm, str):
        raise ConfigError(field, algorithm, expected)
    if algorithm in ALGORITHMS:
        return ALGORITHMS[algorithm]
    path, _, name = algorithm.rpartition(":")
    if not path.endswith(".py") or not name:
        raise ConfigError(field, algorithm, expected)
    module = import_file(field, path, expected)
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Atom)):
        raise ConfigError(field, algorithm, f"must name an Atom subclass in {path}")
    return cls


def make_allreduce(algorithm, n_nodes: int, length: int, vectors=None) -> list[Atom]:
    """One atom per node of ``algorithm`` (see :func:`load_algorithm`).

    ``vectors``: an ``(n_nodes, length)`` array, or None to move sizes only.
    """
    cls = load_algorithm(algorithm)
    n_nodes = integer("nodes", n_nodes, lo=1)
    if vectors is not None:
        vectors = np.asarray(vectors, dtype=np.float64)
        if vectors.shape[:1] != (n_nodes,):
            raise ConfigError("vectors", vectors.shape, f"must have {n_nodes} rows")
    return [cls(length, None if vectors is None else vectors[j]) for j in range(n_nodes)]


def allreduce(algorithm, n_nodes: int, latency_s: float, rate_bytes_per_s: float,
              size: int, *, vectors=None, tie_seed: int | None = None):
    """One allreduce on the switched packet network; an :class:`~tidesim.packetnet.AtomRun`
    whose ``time_s`` is the completion time (virtual s).

    Example (a cell of the reference's table):
        >>> from tidesim.packetnet import allreduce
        >>> f"{allreduce('stream', 16, 1e-3, 1e6, 10_000).time_s:f}"
        '0.419556'
    """
    from ._atoms import run_atoms

    latency_s = number("latency_s", latency_s, lo=0)
    rate = number("rate_bytes_per_s", rate_bytes_per_s, lo=0, lo_open=True)
    atoms = make_allreduce(algorithm, n_nodes, integer("size", size, lo=1), vectors)
    return run_atoms(atoms, latency_s=latency_s, rate_bytes_per_s=rate, tie_seed=tie_seed)


#: The reference table's rows: (nodes, latency in s, NIC rate in bytes/s).
TABLE_ROWS = ((2, 0.1, 1e6), (16, 1e-3, 1e6), (32, 0.1, 1e6), (32, 0.1, 1e9), (32, 1e-4, 1e9))
#: The reference table's vector sizes (float64 elements).
TABLE_SIZES = (10, 10_000, 10_000_000)


def table(*, tie_seed: int | None = None) -> list[dict]:
    """Every cell of the reference table: one dict per row (nodes,
    latency_s, rate_bytes_per_s, size, and each algorithm's time_s);
    ``tie_seed`` shuffles events due at one instant."""
    rows = []
    for n_nodes, lat, rate in TABLE_ROWS:
        for size in TABLE_SIZES:
            row = {"nodes": n_nodes, "latency_s": lat, "rate_bytes_per_s": rate, "size": size}
            for name in ALGORITHMS:
                row[name] = allreduce(name, n_nodes, lat, rate, size, tie_seed=tie_seed).time_s
            rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    """The rows as the reference prints them: times ``%f``, the latency as
    its shortest decimal, the rate as ``1E+06``."""
    lines = ["| Nodes | Latency | NIC rate | Size | Naive | Tree | Stream |",
             "|:--|:--|:--|:--|:--|:--|:--|"]
    for r in rows:
        lat = np.format_float_positional(r["latency_s"], trim="-")
        rate = np.format_float_scientific(r["rate_bytes_per_s"], trim="-", exp_digits=2).upper()
        times = " | ".join(f"{r[name]:f}" for name in ALGORITHMS)
        lines.append(f"| {r['nodes']} | {lat} | {rate} | {r['size']} | {times} |")
    return "\n".join(lines)
