"""Logical-time execution of a schedule: the calendars run cycle by cycle.

Example:
    >>> import numpy as np
    >>> from tidesim.calendars import LogicalNetwork, execute, schedule
    >>> from tidesim.waves import App, In, Out, action
    >>> @action(outputs={"y": Out("i8")}, state=("i8", (1,)))
    ... def count(state, y):
    ...     state[0] += 1
    ...     y[...] = state[0]
    >>> @action(inputs={"x": In("i8")}, outputs={"y": Out("i8")})
    ... def double(state, x, y):
    ...     y[...] = 2 * x
    >>> app = App("demo").add("src", count).add("dbl", double).connect("src.y", "dbl.x")
    >>> sched = schedule(app.graph(), LogicalNetwork.ring(2, latency_cycles=5))
    >>> run = execute(sched, iterations=4)
    >>> run.outputs["dbl.y"].tolist()
    [2, 4, 6, 8]
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numba
import numpy as np

from .._checks import integer, number
from .._jit import entry_point, function_pointer
from ..errors import ConfigError
from . import _exec_kernels as K
from ._tables import build_tables

__all__ = ["Crash", "LogicalRun", "execute"]


@dataclass(frozen=True)
class Crash:
    """A node that stops (computes and sends nothing) from a metacycle on."""

    node: int
    metacycle: int


@dataclass(frozen=True, eq=False)
class LogicalRun:
    """The result of :func:`execute`.

    Attributes:
        outputs: ``"inst.port"`` -> every token that app output produced, in
            order, shape ``(iterations * q * rate, *shape)`` (as
            :func:`~tidesim.waves.functional_run`).
        states: ``"inst"`` -> final state.
        corrupted: ``"inst.port"`` -> bool ``[tokens]``: the token depends on
            a corrupted frame (a bit flip, a crashed node, a buffer fault).
        iterations: ``N``; cycles: application cycles run (per node).
        wall_s: the kernel's wall time.
        steps: ``(first, end)`` the global steps run; node ``n``'s application
            cycle at step ``g`` is ``g + base[n]`` (int64 ``[N]``).
        wire, wire_from: uint64 ``[L, W]`` the frame on each link at steps
            ``wire_from ..`` (empty unless ``execute(wire_steps=...)``).
        faults: the fault-injection arguments of :func:`execute`, so that
            the run can be repeated exactly.
    """

    outputs: dict
    states: dict
    corrupted: dict
    iterations: int
    cycles: int
    metacycles: int
    wall_s: float
    steps: tuple = (0, 0)
    base: np.ndarray | None = None
    wire: np.ndarray | None = None
    wire_from: int = 0
    faults: dict = field(default_factory=dict)

    def first_corrupted(self) -> tuple[str, int] | None:
        """``(output, token index)`` of the earliest corrupted output token, or None."""
        best = None
        for name, bad in self.corrupted.items():
            idx = np.flatnonzero(bad)
            if len(idx) and (best is None or idx[0] < best[1]):
                best = (name, int(idx[0]))
        return best

    def digest(self) -> str:
        """sha256 over every output's bytes, in output-name order."""
        h = hashlib.sha256()
        for name in sorted(self.outputs):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.outputs[name]).tobytes())
        return h.hexdigest()


_DISPATCH_CACHE: dict[tuple, object] = {}
_RUN = entry_point(K.run_logical)  # called once per chunk: no per-call typing
_NO_DISPATCH = function_pointer(K.no_dispatch, K.DISPATCH_SIGNATURE)


def _dispatch_for(kinds, used=None):
    """One compiled ``dispatch(kind, state, inputs, outputs)`` for these action
    types (only those ``used``, when given: the others never fire)."""
    from ..waves import compiled

    fns = [compiled(a) if a.is_jit and (used is None or used[k]) else None
           for k, a in enumerate(kinds)]
    if all(f is None for f in fns):
        return _NO_DISPATCH
    key = tuple(id(f) for f in fns)
    hit = _DISPATCH_CACHE.get(key)
    if hit is not None:
        return hit[0]
    lines = ["def dispatch(kind, state, inputs, outputs):"]
    glb = {}
    first = True
    for k, f in enumerate(fns):
        if f is None:
            continue
        glb[f"_a{k}"] = f
        lines.append(f"    {'if' if first else 'elif'} kind == {k}:")
        lines.append(f"        _a{k}(state, inputs, outputs)")
        first = False
    ns: dict = {}
    exec(compile("\n".join(lines), "<tidesim dispatch>", "exec"), glb, ns)
    fn = function_pointer(numba.njit(K.DISPATCH_SIGNATURE, cache=False)(ns["dispatch"]),
                          K.DISPATCH_SIGNATURE)
    _DISPATCH_CACHE[key] = (fn, fns)  # keep the adapters alive with the key's ids
    return fn


def execute(sched, iterations: int, *, flip_probability: float = 0.0, seed: int = 0,
            crash: Crash | None = None, fault_cycles=None,
            wire_steps: tuple[int, int] | None = None) -> LogicalRun:
    """Run ``iterations`` SDF iterations of a schedule in logical time.

    Args:
        sched: a :class:`~tidesim.calendars.Schedule`.
        iterations: ``N`` >= 1.
        flip_probability: chance that a frame gets one bit flipped (seeded).
        seed: seed of the bit flips.
        crash: a node that stops at a metacycle.
        fault_cycles: int ``[L]``, per link the receiver's application cycle
            from which it reads corrupted frames (an elastic-buffer fault),
            -1 for none.
        wire_steps: ``(first, end)`` global steps whose frames on every link
            are kept in :attr:`LogicalRun.wire` (for waveforms).

    Returns:
        A :class:`LogicalRun`.
    """
    ex = Execution(sched, iterations, flip_probability=flip_probability, seed=seed,
                   crash=crash, fault_cycles=fault_cycles, wire_steps=wire_steps)
    t0 = time.perf_counter()
    ex.run(ex.g0, ex.g1)
    return ex.result(time.perf_counter() - t0)


class Execution:
    """The memories, tables and taints of one logical-time run, stepped by :meth:`run`.

    :func:`execute` runs every node at once; a node of a distributed run
    (:func:`run_node`) runs its own node only, with its in-links' frames
    written into :attr:`ring` as they arrive. The arguments are those of
    :func:`execute`.

    Attributes:
        g0, g1: the global steps of the whole run (``g0 .. g1 - 1``).
        lsrc, ldst, delay, base: int64 ``[L]``, ``[L]``, ``[L]``, ``[N]``.
        ring, taint_ring: frames in flight, ``[L, R]``; the frame link ``l``
            carries at step ``g`` sits at ``(g + delay[l]) mod R``.
    """

    def __init__(self, sched, iterations: int, *, flip_probability: float = 0.0,
                 seed: int = 0, crash: Crash | None = None, fault_cycles=None,
                 wire_steps: tuple[int, int] | None = None, ring_extra: int = 0) -> None:
        from ..waves import pack_state

        n_iter = integer("iterations", iterations, lo=1)
        flip_p = number("flip_probability", flip_probability, lo=0, hi=1)
        seed = integer("seed", seed, lo=0)
        graph, net = sched.graph, sched.network
        M = sched.metacycle_cycles
        N, L = net.n_nodes, net.n_links
        if crash is not None:
            integer("crash.node", crash.node, lo=0, hi=N - 1)
            integer("crash.metacycle", crash.metacycle, lo=0)
        fc = np.full(L, -1, dtype=np.int64) if fault_cycles is None else np.asarray(
            fault_cycles, dtype=np.int64)
        if fc.shape != (L,):
            raise ConfigError("fault_cycles", fault_cycles, f"must be {L} integers")
        self.sched, self.n_iter = sched, n_iter
        self.tables = T = build_tables(sched)
        self.inst = inst = graph.instances
        kinds: list = []
        kind_of = {}
        for x in inst:
            if id(x.action) not in kind_of:
                kind_of[id(x.action)] = len(kinds)
                kinds.append(x.action)
        self.kinds = kinds
        self.dispatch = None  # compiled when first run (a merge needs none)
        is_py = np.array([not a.is_jit for a in kinds], dtype=np.bool_)

        tx_base = np.concatenate([[0], np.cumsum(sched.tx_words)[:-1]]).astype(np.int64)
        rx_base = np.concatenate([[0], np.cumsum(sched.rx_words)[:-1]]).astype(np.int64)
        st_base = np.concatenate([[0], np.cumsum(sched.state_words)[:-1]]).astype(np.int64)
        self.tx = tx = np.zeros(max(1, int(sched.tx_words.sum())), dtype=np.uint64)
        rx = np.zeros(max(1, int(sched.rx_words.sum())), dtype=np.uint64)
        self.state = state = np.zeros(max(1, int(sched.state_words.sum())), dtype=np.uint64)
        self.st_lo = st_lo = np.array([st_base[sched.placement[i]] + sched.state_base[i]
                                       for i in range(len(inst))], dtype=np.int64)
        self.st_hi = st_hi = st_lo + np.array([x.action.state_words for x in inst],
                                              dtype=np.int64)
        for i, x in enumerate(inst):
            state[st_lo[i]:st_hi[i]] = pack_state(x.action, x.state0)
        for (node, a), v in zip(sched.rx_init.tolist(), sched.rx_init_values, strict=True):
            rx[rx_base[node] + a] = v

        F = sched.n_firings
        fi = sched.fire
        f_kind = np.array([kind_of[id(inst[i].action)] for i in fi[:, 0]], dtype=np.int64)
        self.f_inst = f_inst = fi[:, 0].copy()
        self.f_in = f_in = rx_base[fi[:, 2]] + sched.in_base
        self.f_out = f_out = tx_base[fi[:, 2]] + sched.out_base
        self.f_nin = f_nin = np.array([inst[i].action.in_words for i in fi[:, 0]],
                                      dtype=np.int64)
        self.f_nout = f_nout = np.array([inst[i].action.out_words for i in fi[:, 0]],
                                        dtype=np.int64)

        # the app's outputs: per firing, which out-block words go to which record column
        out_ports = list(graph.outputs)
        rec_cols: dict[tuple[int, int], tuple[int, int]] = {}  # (inst, port) -> (col0, words)
        col = 0
        for i, p in out_ports:
            port = inst[i].action.outputs[p]
            per = int(graph.repetitions[i]) * port.rate * port.token_words
            rec_cols[(i, p)] = (col, per)
            col += per
        self.rec_cols = rec_cols
        ptr, src, dst = [0], [], []
        for k in range(F):
            i, f = int(fi[k, 0]), int(fi[k, 1])
            off = 0
            for p, port in enumerate(inst[i].action.outputs):
                n_w = port.rate * port.token_words
                if (i, p) in rec_cols:
                    c0 = rec_cols[(i, p)][0] + f * n_w
                    src.extend(range(off, off + n_w))
                    dst.extend(range(c0, c0 + n_w))
                off += n_w
            ptr.append(len(src))
        self.rec_ptr = rec_ptr = np.array(ptr, dtype=np.int64)
        self.rec_src = rec_src = np.array(src, dtype=np.int64)
        self.rec_dst = rec_dst = np.array(dst, dtype=np.int64)
        self.rec = rec = np.zeros((n_iter, max(1, col)), dtype=np.uint64)

        self.base = b = net.potentials()
        self.lsrc = lsrc = np.ascontiguousarray(net.links[:, 0])
        self.ldst = ldst = np.ascontiguousarray(net.links[:, 1])
        self.delay = delay = net.latency_cycles + b[lsrc] - b[ldst]
        R = int(delay.max(initial=0)) + 1 + int(ring_extra)
        self.ring = ring = np.zeros((L, R), dtype=np.uint64)
        last = np.zeros(L, dtype=np.uint64)
        lo, hi = sched.span_cycles
        self.lo = lo
        self.last_cycle = last_cycle = hi + (n_iter - 1) * M  # exclusive, node's app time
        self.g0 = int(lo - b.max())
        self.g1 = int(last_cycle - b.min())

        if wire_steps is None:
            w0, w1 = 0, 0
        else:
            w0, w1 = (int(v) for v in wire_steps)
            if w1 < w0:
                raise ConfigError("wire_steps", wire_steps,
                                  "must be (first, end) with end >= first")
        self.wire = wire = np.zeros((L, w1 - w0), dtype=np.uint64)
        self.wire_from = w0
        self.taint = taint = {name: np.zeros(a.shape, dtype=np.uint8) for name, a in (
            ("tx", tx), ("rx", rx), ("state", state), ("ring", ring), ("last", last),
            ("rec", rec))}
        self.taint_ring = taint["ring"]
        crash_node = -1 if crash is None else int(crash.node)
        crash_m = 0 if crash is None else int(crash.metacycle)
        self._args = (b, lsrc, ldst, delay, T.gather_addr, T.gather_stage, T.switch_in,
                      T.switch_stage, T.scatter_addr, T.scatter_stage, T.copy_ptr, T.copy_tx,
                      T.copy_rx, T.copy_stage, T.fire_id, T.fire_stage, f_kind, f_inst, f_in,
                      f_nin, f_out, f_nout, is_py, st_lo, st_hi, tx, rx, state, tx_base,
                      rx_base, ring, last, rec_ptr, rec_src, rec_dst, rec, taint["tx"],
                      taint["rx"], taint["state"], taint["ring"], taint["last"],
                      taint["rec"], flip_p, seed, crash_node, crash_m, fc, wire, w0)
        self.rx = rx
        self.faults = dict(flip_probability=flip_p, seed=seed, crash=crash,
                           fault_cycles=None if fault_cycles is None else fc)

    def prepare(self, own: int = -1) -> None:
        """Compile the dispatch of the actions that fire (on node ``own``, if
        ``>= 0``) now, else when first run."""
        if self.dispatch is None:
            used = None
            if own >= 0:
                used = np.zeros(len(self.kinds), dtype=bool)
                mine = self.sched.placement == own
                used[[self.kinds.index(x.action) for x, m in zip(self.inst, mine, strict=True)
                      if m]] = True
            self.dispatch = _dispatch_for(self.kinds, used)

    def run(self, g: int, g_end: int, own: int = -1) -> None:
        """Run global steps ``g .. g_end - 1`` (of node ``own`` only, if ``>= 0``)."""
        from ..waves import fire_words

        M, n_iter, args, inst = self.sched.metacycle_cycles, self.n_iter, self._args, self.inst
        tx, rx, state = self.tx, self.rx, self.state
        self.prepare(own)
        resume = -1
        while True:
            status, g, n, fid, k = _RUN(self.dispatch, M, n_iter, g, g_end, resume, *args, own)
            if status == K.DONE:
                return
            i = int(self.f_inst[fid])
            fire_words(inst[i].action, state[self.st_lo[i]:self.st_hi[i]],
                       rx[self.f_in[fid]:self.f_in[fid] + self.f_nin[fid]],
                       tx[self.f_out[fid]:self.f_out[fid] + self.f_nout[fid]])
            K.post_fire(fid, k, tx, self.f_out[fid], self.rec_ptr, self.rec_src, self.rec_dst,
                        self.rec, self.taint["tx"], self.taint["rec"])
            resume = n + 1

    def part(self, own: int) -> dict:
        """What node ``own`` computed: its firings' record columns and its
        instances' state, for :meth:`merge`."""
        mine = np.flatnonzero(self.sched.fire[:, 2] == own)
        cols = np.concatenate([self.rec_dst[self.rec_ptr[f]:self.rec_ptr[f + 1]]
                               for f in mine] + [np.zeros(0, dtype=np.int64)])
        words = np.concatenate([np.arange(self.st_lo[i], self.st_hi[i])
                                for i in np.flatnonzero(self.sched.placement == own)]
                               + [np.zeros(0, dtype=np.int64)])
        return {"cols": cols, "rec": self.rec[:, cols], "taint_rec": self.taint["rec"][:, cols],
                "words": words, "state": self.state[words]}

    def merge(self, part: dict) -> None:
        """Take in a node's :meth:`part` (every node's make the whole run)."""
        cols, words = part["cols"], part["words"]
        self.rec[:, cols] = part["rec"]
        self.taint["rec"][:, cols] = part["taint_rec"]
        self.state[words] = part["state"]

    def result(self, wall_s: float) -> LogicalRun:
        """The :class:`LogicalRun` of what :meth:`run` computed."""
        from ..waves import unpack_state, unpack_tokens

        inst = self.inst
        outputs, corrupted = {}, {}
        for (i, p), (c0, per) in self.rec_cols.items():
            port = inst[i].action.outputs[p]
            words = self.rec[:, c0:c0 + per].reshape(-1)
            name = f"{inst[i].name}.{port.name}"
            outputs[name] = unpack_tokens(port, words)
            bad = self.taint["rec"][:, c0:c0 + per].reshape(-1, port.token_words).any(axis=1)
            corrupted[name] = bad
        states = {x.name: unpack_state(x.action, self.state[self.st_lo[i]:self.st_hi[i]])
                  for i, x in enumerate(inst)}
        M, lo = self.sched.metacycle_cycles, self.lo
        return LogicalRun(outputs=outputs, states=states, corrupted=corrupted,
                          iterations=self.n_iter, cycles=int(self.last_cycle - lo),
                          metacycles=int(-(-(self.last_cycle - min(lo, 0)) // M)),
                          wall_s=wall_s, steps=(self.g0, self.g1), base=self.base,
                          wire=self.wire, wire_from=self.wire_from, faults=self.faults)
