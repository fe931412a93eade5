"""Waveforms of an application run in logical time (:func:`write_app_vcd`).

The run is repeated with the same fault injection, keeping the frame every
link carries at each step of the window; every other signal follows from the
schedule's tables, as the executor's kernel reads them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .._checks import integer
from ..errors import ConfigError
from ._vcdfmt import Body, id_codes, render_body

__all__ = ["APP_VCD_LIMIT", "write_app_vcd"]

#: Largest number of signal samples (steps of the window times the signals
#: that change every step) :func:`write_app_vcd` writes.
APP_VCD_LIMIT = 60_000_000

_TOP = "tidesim"
_X = 2  # scalar value "x"


def _name(text: str) -> str:
    """A VCD identifier made of the characters GTKWave keeps in a name."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _width(hi: int) -> int:
    return max(1, int(hi).bit_length())


class _Rows:
    """Signals given as rows ``[R, W]`` of values on the window's steps."""

    def __init__(self, times: np.ndarray):
        from .vcd import VcdVar

        self._var_type = VcdVar
        self.times = times  # int64 [W] file time of each step
        self.vars: list = []
        self.body = Body()

    def _declare(self, scope, name, width, fmt) -> int:
        # GTKWave finds a multi-bit wire only by its bit range; an integer by name
        kind = "wire" if fmt == "bit" else "integer"
        self.vars.append(self._var_type(tuple(scope), name, kind, width, fmt))
        return len(self.vars) - 1

    def add(self, scopes, name: str, width: int, fmt: str, values: np.ndarray,
            ok: np.ndarray | None = None) -> None:
        """One signal per row: ``values[r, q]`` from step ``q`` on (``ok`` False: x)."""
        values = np.atleast_2d(np.asarray(values, dtype=np.int64))
        R, W = values.shape
        if R == 0 or W == 0:
            return
        ids = np.array([self._declare(s, name, width, fmt) for s in scopes], dtype=np.int64)
        ok = np.ones_like(values, dtype=bool) if ok is None else np.atleast_2d(ok)
        bit = fmt == "bit"
        if bit:
            values = np.where(ok, values, _X)
        change = np.ones((R, W), dtype=bool)
        if bit:
            change[:, 1:] = values[:, 1:] != values[:, :-1]
        else:
            change[:, 1:] = (ok[:, 1:] != ok[:, :-1]) | (ok[:, 1:] & (values[:, 1:]
                                                                    != values[:, :-1]))
        r, q = np.nonzero(change)
        t = self.times[q]
        if bit:
            self.body.add_bit_codes(t, (ids[r] << 2) | values[r, q])
        else:
            v = values[r, q]
            if width < 64:
                v = v & ((1 << width) - 1)
            self.body.vec_t.append(t)
            self.body.vec_var.append(ids[r])
            self.body.vec_v.append(v)
            self.body.vec_ok.append(ok[r, q])


def write_app_vcd(sched, run, path: str | os.PathLike, *,
                  steps: tuple[int, int] | None = None, cycle_ps: int = 1000) -> Path:
    """Write an application run in logical time as a VCD, with a GTKWave save file.

    One time unit of the file is a picosecond and a step lasts ``cycle_ps``;
    time 0 is the window's first step. The top scope has ``clk`` and
    ``step`` (the global step ``g``). Each node's scope ``node_n`` has:

    * ``cycle`` (its application cycle ``c = g + base[n]``), ``slot``
      (``c mod M``), ``metacycle`` (``c // M``) and ``last_cycle``;
    * ``gather_entry``, ``scatter_entry``, ``switch_entry``: the entry each
      calendar's pointer is at;
    * ``fire_<instance>`` for each action instance placed on it, high on the
      cycles a firing starts, and ``iteration`` (the SDF iteration fired, x
      when nothing fires);
    * per outgoing link ``link_to_<d>``: ``frame`` (64-bit, x when the link
      idles), ``tx_word`` (the gathered Tx word, x otherwise) and ``switched``
      (the frame is forwarded); per incoming link ``link_from_<s>``:
      ``frame`` (as it arrives, λ' steps later) and ``rx_word`` (the Rx word
      the scatter calendar writes it to, x when discarded).

    Args:
        sched: the :class:`~tidesim.calendars.Schedule` that ran.
        run: its :class:`~tidesim.calendars.LogicalRun` (the run is repeated
            with the same iterations and fault injection).
        path: the VCD file; the save file is the same path with ``.gtkw``.
        steps: ``(first, end)`` global steps to write (default: the run's).
        cycle_ps: picoseconds per step (the nominal clock period).

    Returns:
        The VCD file's path.

    Raises:
        ConfigError: a bad window or period, a window too large
            (:data:`APP_VCD_LIMIT`), or no pyvcd.
    """
    from ..calendars import Hardware, build_tables, calendars_of, execute
    from ..calendars._calendar import MAX_CALENDAR_DEPTH
    from .vcd import _header, _write_gtkw, require_pyvcd

    g_lo, g_hi = (int(v) for v in run.steps)
    if steps is None:
        w0, w1 = g_lo, g_hi
    else:
        if not (isinstance(steps, tuple | list) and len(steps) == 2):
            raise ConfigError("vcd.steps", steps, "must be (first, end) global steps")
        w0 = integer("vcd.steps[0]", steps[0], lo=g_lo, hi=g_hi - 1)
        w1 = integer("vcd.steps[1]", steps[1], lo=w0 + 1, hi=g_hi)
    P = integer("vcd.cycle_ps", cycle_ps, lo=2)
    require_pyvcd()
    net = sched.network
    N, L, M = net.n_nodes, net.n_links, sched.metacycle_cycles
    W = w1 - w0
    size = W * (2 * N + 3 * L)
    if size > APP_VCD_LIMIT:
        raise ConfigError("vcd", f"{W} steps x {N} nodes",
                          f"is too large a waveform ({size:.3g} samples, at most "
                          f"{APP_VCD_LIMIT:.3g}): run fewer metacycles or pass a window")
    b = run.base
    lsrc, ldst = net.links[:, 0], net.links[:, 1]
    delay = net.latency_cycles + b[lsrc] - b[ldst]
    d_max = int(delay.max(initial=0))
    rec0 = w0 - d_max
    again = execute(sched, run.iterations, wire_steps=(rec0, w1), **run.faults)
    wire = again.wire.view(np.int64)
    T = build_tables(sched)
    n_iter = run.iterations
    crash = run.faults.get("crash")

    G = np.arange(w0, w1, dtype=np.int64)
    rows = _Rows((G - w0) * P)
    top = (_TOP,)
    # the clock: high at each step, low half a period later
    t_clk = np.empty(2 * W, dtype=np.int64)
    t_clk[0::2] = (G - w0) * P
    t_clk[1::2] = (G - w0) * P + P // 2
    clk = rows._declare(top, "clk", 1, "bit")
    rows.body.add_bit_codes(t_clk, (clk << 2) | np.tile(np.array([1, 0]), W))
    rows.add([top], "step", 64, "signed", G[None, :])

    C = G[None, :] + b[:, None]  # [N, W] application cycles
    X, Mc = C % M, C // M
    down = np.zeros((N, W), dtype=bool)
    if crash is not None:
        down[crash.node] = Mc[crash.node] >= crash.metacycle
    node_scopes = [(_TOP, f"node_{n}") for n in range(N)]
    rows.add(node_scopes, "cycle", 64, "signed", C)
    rows.add(node_scopes, "slot", _width(M - 1), "dec", X)
    rows.add(node_scopes, "metacycle", 64, "signed", Mc)
    rows.add(node_scopes, "last_cycle", 1, "bit", (X == M - 1).astype(np.int64))
    cals = calendars_of(sched, T, Hardware(calendar_depth=MAX_CALENDAR_DEPTH,
                                           max_repeat=max(M, 1)))
    for kind in ("gather", "scatter", "switch"):
        ptr = np.empty((N, W), dtype=np.int64)
        depth = 1
        for n in range(N):
            cal = cals[n][kind]
            ptr[n] = np.searchsorted(np.cumsum(cal.repeat + 1), X[n], side="right")
            depth = max(depth, cal.depth)
        rows.add(node_scopes, f"{kind}_entry", _width(depth - 1), "dec", ptr)

    # firings
    fid = np.take_along_axis(T.fire_id, X, axis=1)
    k = Mc - np.take_along_axis(T.fire_stage, X, axis=1)
    firing = (fid >= 0) & (k >= 0) & (k < n_iter) & ~down
    rows.add(node_scopes, "iteration", _width(n_iter), "dec", k, firing)
    inst_of = np.where(fid >= 0, sched.fire[np.maximum(fid, 0), 0], -1)
    names = [x.name for x in sched.graph.instances]
    for i, name in enumerate(names):
        n = int(sched.placement[i])
        rows.add([node_scopes[n]], f"fire_{_name(name)}", 1, "bit",
                 (firing[n] & (inst_of[n] == i)).astype(np.int64)[None, :])

    # links: what each sender puts on the wire, and what each receiver takes
    Xs, Ms = X[lsrc], Mc[lsrc]
    a = np.take_along_axis(T.gather_addr, Xs, axis=1)
    ka = Ms - np.take_along_axis(T.gather_stage, Xs, axis=1)
    gathers = (a >= 0) & (ka >= 0) & (ka < n_iter) & ~down[lsrc]
    s = np.take_along_axis(T.switch_in, Xs, axis=1)
    ks = Ms - np.take_along_axis(T.switch_stage, Xs, axis=1)
    switches = (a < 0) & (s >= 0) & (ks >= 0) & (ks < n_iter) & ~down[lsrc]
    on = gathers | switches
    out_scopes = [(_TOP, f"node_{int(lsrc[l])}", f"link_to_{int(ldst[l])}") for l in range(L)]
    in_scopes = [(_TOP, f"node_{int(ldst[l])}", f"link_from_{int(lsrc[l])}") for l in range(L)]
    for scopes in (out_scopes, in_scopes):
        seen: dict = {}
        for l, sc in enumerate(scopes):
            if sc in seen:  # parallel links between one pair: name them apart
                scopes[l] = (*sc[:-1], f"{sc[-1]}_{l}")
            seen[sc] = l
    rows.add(out_scopes, "frame", 64, "hex", wire[:, d_max:], on)
    rows.add(out_scopes, "tx_word", _width(int(sched.tx_words.max(initial=1))), "dec", a,
             gathers)
    rows.add(out_scopes, "switched", 1, "bit", switches.astype(np.int64))
    # the frame arriving at step g left its sender at g - delay[l]
    q_sent = np.arange(W, dtype=np.int64)[None, :] + d_max - delay[:, None]
    arriving = np.take_along_axis(wire, q_sent, axis=1)
    g_sent = G[None, :] - delay[:, None]
    Cs = g_sent + b[lsrc][:, None]
    Xa, Ma = Cs % M, Cs // M
    a2 = np.take_along_axis(T.gather_addr, Xa, axis=1)
    ka2 = Ma - np.take_along_axis(T.gather_stage, Xa, axis=1)
    s2 = np.take_along_axis(T.switch_in, Xa, axis=1)
    ks2 = Ma - np.take_along_axis(T.switch_stage, Xa, axis=1)
    was_on = (((a2 >= 0) & (ka2 >= 0) & (ka2 < n_iter))
              | ((a2 < 0) & (s2 >= 0) & (ks2 >= 0) & (ks2 < n_iter)))
    if crash is not None:
        was_on &= ~((lsrc[:, None] == crash.node) & (Ma >= crash.metacycle))
    rows.add(in_scopes, "frame", 64, "hex", arriving, was_on)
    Xr, Mr = X[ldst], Mc[ldst]
    sa = np.take_along_axis(T.scatter_addr, Xr, axis=1)
    kr = Mr - np.take_along_axis(T.scatter_stage, Xr, axis=1)
    rows.add(in_scopes, "rx_word", _width(int(sched.rx_words.max(initial=1))), "dec", sa,
             (sa >= 0) & (kr >= 0) & (kr < n_iter))

    # header order: the top's signals, then node by node, links after the node's own
    order = sorted(range(len(rows.vars)), key=lambda v: (_scope_key(rows.vars[v].scope), v))
    vars_ = [rows.vars[v] for v in order]
    ids = np.empty((len(order), id_codes(len(order)).shape[1]), dtype=np.uint8)
    ids[order] = id_codes(len(order))
    path = Path(path)
    t1 = W * P
    comment = (f"application in logical time: steps [{w0}, {w1}) of [{g_lo}, {g_hi}), "
               f"metacycle {M} cycles, {n_iter} iterations, {cycle_ps} ps per step")
    with open(path, "wb") as fh:
        fh.write(_header(vars_, ids[order], "1ps", comment))
        fh.write(b"#0\n")
        for chunk in render_body(rows.body, ids, 0):
            fh.write(chunk)
        fh.write(f"#{t1}\n".encode())
    _write_gtkw(vars_, path, 0, t1, colors=_COLORS, comment="tidesim.backends.write_app_vcd")
    return path


_COLORS = {"clk": "green", "last_cycle": "yellow", "frame": "blue", "switched": "orange",
           "iteration": "indigo"}


def _scope_key(scope: tuple[str, ...]) -> tuple:
    """The top's signals first; then node by node, its own signals before its links."""
    if len(scope) == 1:
        return (0,)
    node = int(scope[1].rsplit("_", 1)[1])
    if len(scope) == 2:
        return (1, node, 0)
    m = re.fullmatch(r"link_(to|from)_(\d+)(?:_(\d+))?", scope[2])
    return (1, node, 1, m[1] == "from", int(m[2]), int(m[3] or -1))
