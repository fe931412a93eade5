"""Waveforms of a run for GTKWave: a VCD file and a ``.gtkw`` save file.

:func:`write_vcd` turns a :class:`~tidesim.models.Trace` into a Value Change
Dump with one scope per node and, inside it, one scope per incoming link
(``link_from_3`` is the elastic buffer of the link from node 3), and writes a
GTKWave save file beside it that groups and formats the signals. Every value
comes from the trace's arrays; the clock comes from the frequency segments
with the kernel's own edge-time expression. ``docs/waveforms.md`` lists the
signals, how each is derived, and the time unit.

Example:
    >>> from tidesim.backends.vcd import write_vcd
    >>> path = write_vcd(trace, "run.vcd", t_to_s=20e-6)   # doctest: +SKIP
    >>> path.with_suffix(".gtkw").exists()                   # doctest: +SKIP
    True
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from .._checks import choice, integer, number
from .._jit import njit
from ..errors import ConfigError
from ._appvcd import APP_VCD_LIMIT, write_app_vcd
from ._vcdfmt import Body, id_codes, render_body

__all__ = ["APP_VCD_LIMIT", "CLOCK_EDGE_LIMIT", "TIMESCALES", "gtkw_path", "require_pyvcd",
           "write_app_vcd", "write_vcd"]

#: Time units a VCD can be written in, and how many of them make a second:
#: a time ``t`` (s) is written as the integer ``round(t * TIMESCALES[unit])``.
TIMESCALES = {"1fs": 1e15, "1ps": 1e12, "1ns": 1e9}

#: ``clocks=None`` writes clocks (cycle fidelity only) when the selected nodes
#: have at most this many edges in the window, in all.
CLOCK_EDGE_LIMIT = 4_000_000

_TOP = "tidesim"
_X = 2  # scalar value "x"


@dataclass(frozen=True)
class VcdVar:
    """One signal of the VCD.

    Attributes:
        scope: scope names from the top (``("tidesim", "node_2", "link_from_0")``).
        name: the signal's name in its scope.
        kind: VCD variable type: ``"wire"``, ``"integer"`` or ``"real"``.
        width: bits (64 for a real).
        fmt: how the ``.gtkw`` shows it: ``"bit"``, ``"dec"``, ``"signed"``,
            ``"step"`` (signed analog steps), ``"real_step"`` or
            ``"real_line"`` (analog, interpolated).
    """

    scope: tuple[str, ...]
    name: str
    kind: str
    width: int
    fmt: str

    @property
    def path(self) -> str:
        """The dotted name GTKWave uses (``tidesim.node_0.clk``)."""
        return ".".join((*self.scope, self.name))


def require_pyvcd() -> None:
    """Check that pyvcd, which writes the GTKWave save file, is installed.

    Raises:
        ConfigError: (field ``vcd``) pyvcd is missing, with the command that installs it.
    """
    try:
        import vcd.gtkw  # noqa: F401
    except ImportError:
        raise ConfigError("vcd", "pyvcd", "needs pyvcd (pip install 'tidesim[vcd]')") from None


def gtkw_path(vcd_path: str | os.PathLike) -> Path:
    """The GTKWave save file written beside ``vcd_path``."""
    return Path(vcd_path).with_suffix(".gtkw")


# ---------------------------------------------------------------------------- helpers


def _window(t: np.ndarray, v: np.ndarray, a: float, b: float, init,
            ok: np.ndarray | None = None):
    """Value in force at ``a`` and the changes in ``(a, b]`` of a step signal.

    ``t`` is sorted; the signal holds ``init`` before ``t[0]`` and ``v[i]`` from
    ``t[i]`` on. Consecutive equal values are merged (``ok`` False is ``x``,
    equal to any other ``x``).

    Returns:
        ``(v0, ok0, times, values, oks)``.
    """
    if ok is None:
        ok = np.ones(v.size, dtype=bool)
    i0 = int(np.searchsorted(t, a, side="right"))
    i1 = int(np.searchsorted(t, b, side="right"))
    v0, ok0 = (v[i0 - 1], bool(ok[i0 - 1])) if i0 > 0 else (init, init is not None)
    tw, vw, kw = t[i0:i1], v[i0:i1], ok[i0:i1]
    if tw.size:
        pv = np.empty_like(vw)
        pk = np.empty_like(kw)
        pv[0] = v0 if ok0 else vw[0]
        pk[0] = ok0
        pv[1:], pk[1:] = vw[:-1], kw[:-1]
        same = (pk == kw) & ((pv == vw) | ~kw)
        tw, vw, kw = tw[~same], vw[~same], kw[~same]
    return v0, ok0, tw, vw, kw


@njit
def _clock_rows(E, scale, t0, a, b, var):
    """Ticks and codes of a clock's toggles in the window ``[a, b]`` (s).

    ``E`` holds the edge times (s) from the last edge at or before ``a`` to
    the first after ``b``. Row 0 is the window's start ``t0``, row ``2i + 1``
    the fall halfway between edges ``E[i]`` and ``E[i + 1]``, row ``2i + 2``
    the rise at ``E[i + 1]``; a row's code is ``var << 2 | value``. A clock
    low at ``a`` starts with the row of the first fall, moved to ``t0``; a
    fall at ``t0`` replaces row 0, and a fall after ``b`` is dropped.
    """
    n = 2 * E.size - 2
    T = np.empty(n, dtype=np.int64)
    T[0] = t0
    for i in range(E.size - 1):
        T[2 * i + 1] = np.int64(np.rint(0.5 * (E[i] + E[i + 1]) * scale))
        if i + 1 < E.size - 1:
            T[2 * i + 2] = np.int64(np.rint(E[i + 1] * scale))
    high = 0.5 * (E[0] + E[1]) > a  # high at a: it falls at the first mid-point
    if not high:
        T[1] = t0
    first = 1 if not high or T[1] == t0 else 0
    last = n - 1 if 0.5 * (E[-2] + E[-1]) > b else n
    C = np.empty(last - first, dtype=np.int64)
    for x in range(last - first):
        C[x] = (var << 2) | ((first + x) % 2 == 0)  # the rises: even rows
    if first == 0:
        C[0] = (var << 2) | 1  # row 0 at t0, high
    return T[first:last].copy(), C


def _check(trace, t_from_s, t_to_s, nodes, decimate, timescale):
    a = 0.0 if t_from_s is None else t_from_s
    b = float(trace.until_s) if t_to_s is None else t_to_s
    a, b = number("vcd.t_from_s", a, lo=0), min(number("vcd.t_to_s", b, lo=0),
                                                float(trace.until_s))
    if not a < b:
        raise ConfigError("vcd.t_from_s", t_from_s,
                          f"must be before the end of the window ({b:.9g} s)")
    n = trace.n_nodes
    if nodes is None:
        sel = list(range(n))
    else:
        try:
            sel = sorted({int(x) for x in nodes})
        except (TypeError, ValueError):
            raise ConfigError("vcd.nodes", nodes, "must be node indices") from None
        if not sel or sel[0] < 0 or sel[-1] >= n:
            raise ConfigError("vcd.nodes", nodes, f"must be node indices in [0, {n - 1}]")
    decimate = integer("vcd.decimate", decimate, lo=1)
    if timescale is None:
        timescale = "1fs" if b * 1e15 < 2.0**62 else "1ps" if b * 1e12 < 2.0**62 else "1ns"
    else:
        choice("vcd.timescale", timescale, TIMESCALES)
    return a, b, sel, decimate, timescale


# ---------------------------------------------------------------------------- builder


class _Builder:
    def __init__(self, trace, a, b, per_s):
        self.trace = trace
        self.a, self.b = a, b
        self.scale = per_s
        self.t0 = int(np.rint(a * self.scale))
        self.vars: list[VcdVar] = []
        self.clocks: list[tuple[int, int]] = []  # (variable, node)
        self.body = Body()

    def ticks(self, t: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(t, dtype=np.float64) * self.scale).astype(np.int64)

    def var(self, scope, name, kind, width, fmt) -> int:
        self.vars.append(VcdVar(tuple(scope), name, kind, width, fmt))
        return len(self.vars) - 1

    def step(self, scope, name, kind, width, fmt, t, v, init, ok=None) -> None:
        """A signal that holds ``v[i]`` from ``t[i]`` (seconds) on."""
        i = self.var(scope, name, kind, width, fmt)
        v0, ok0, tw, vw, kw = _window(np.asarray(t, dtype=np.float64), np.asarray(v),
                                      self.a, self.b, init, ok)
        times = np.concatenate([[self.t0], self.ticks(tw)])
        keep = _last_per_tick(times)
        times = times[keep]
        if kind == "real":
            self.body.add_real(i, times, np.concatenate([[v0], vw])[keep])
        elif kind == "wire" and width == 1:
            vals = np.concatenate([[v0 if ok0 else _X], np.where(kw, vw, _X)])
            self.body.add_bits(i, times, vals[keep])
        else:
            self.body.add_vector(i, width, times,
                                 np.concatenate([[v0 if ok0 else 0], vw]).astype(np.int64)[keep],
                                 np.concatenate([[ok0], kw])[keep])

    def samples(self, ts: np.ndarray) -> _Samples:
        """The window of a node's (kept) sample times, shared by its per-sample signals."""
        i0 = int(np.searchsorted(ts, self.a, side="right"))
        i1 = int(np.searchsorted(ts, self.b, side="right"))
        times = np.concatenate([[self.t0], self.ticks(ts[i0:i1])])
        keep = _last_per_tick(times)
        return _Samples(i0, i1, times, None if keep.all() else keep)

    def sampled(self, scope, name, kind, width, fmt, S: _Samples, v: np.ndarray, init,
                ok: np.ndarray | None = None) -> None:
        """A signal that holds ``v[q]`` from sample ``q`` on (``ok`` False: ``x``)."""
        i = self.var(scope, name, kind, width, fmt)
        if S.i0 > 0:
            v0 = v[S.i0 - 1]
            ok0 = True if ok is None else bool(ok[S.i0 - 1])
        else:
            v0, ok0 = init, init is not None
        vals = np.empty(S.i1 - S.i0 + 1, dtype=v.dtype)
        vals[0] = v0 if ok0 else 0
        vals[1:] = v[S.i0:S.i1]
        times = S.times
        if ok is None and ok0:
            oks = None
        else:
            oks = np.empty(vals.size, dtype=bool)
            oks[0] = ok0
            oks[1:] = True if ok is None else ok[S.i0:S.i1]
        if S.keep is not None:
            times, vals = times[S.keep], vals[S.keep]
            oks = None if oks is None else oks[S.keep]
        change = np.empty(vals.size, dtype=bool)
        change[0] = True
        if oks is None:
            np.not_equal(vals[1:], vals[:-1], out=change[1:])
        else:
            change[1:] = (oks[1:] != oks[:-1]) | (oks[1:] & (vals[1:] != vals[:-1]))
        if not change.all():
            times, vals = times[change], vals[change]
            oks = None if oks is None else oks[change]
        if kind == "real":
            self.body.add_real(i, times, vals)
        elif kind == "wire" and width == 1:
            self.body.add_bits(i, times, vals if oks is None else np.where(oks, vals, _X))
        else:
            self.body.add_vector(i, width, times, vals, oks)

    def event(self, scope, name, t: float | None) -> None:
        """A flag that is 0 until time ``t`` (never, if None) and 1 from then on."""
        i = self.var(scope, name, "wire", 1, "bit")
        if t is None or t > self.b:
            self.body.add_bits(i, [self.t0], [0])
        elif t <= self.a:
            self.body.add_bits(i, [self.t0], [1])
        else:
            tick = int(np.rint(t * self.scale))
            if tick == self.t0:
                self.body.add_bits(i, [self.t0], [1])
            else:
                self.body.add_bits(i, [self.t0, tick], [0, 1])

    def clock(self, scope, j: int) -> None:
        """Declare node ``j``'s clock; its toggles are made by :meth:`finish`."""
        self.clocks.append((self.var(scope, "clk", "wire", 1, "bit"), j))

    def finish(self) -> None:
        """Add the clocks' toggles: high at each edge, low halfway to the next one.

        Done last, when every variable is known, so that each toggle can be
        written straight away as the sort key ``tick << S | variable << 2 | value``.
        """
        shift = max(len(self.vars) * 4 - 1, 1).bit_length()
        for var, j in self.clocks:
            tr = self.trace
            k_lo = tr.last_edge(j, self.a)  # E(k_lo) <= a < E(k_lo + 1)
            k_hi = tr.last_edge(j, self.b)
            E = tr.edge_times(j, np.arange(k_lo, k_hi + 2, dtype=np.int64))
            T, C = _clock_rows(E, self.scale, self.t0, self.a, self.b, var)
            if T.size and int(T[-1]) < 1 << (62 - shift):
                T <<= shift
                T |= C
                self.body.add_bit_keys(T, shift)
            else:
                self.body.add_bit_codes(T, C)


@dataclass(frozen=True)
class _Samples:
    i0: int  # first sample after the window's start
    i1: int  # one past the last sample in the window
    times: np.ndarray  # the window's start, then the ticks of samples i0:i1
    keep: np.ndarray | None  # rows kept when several round to one tick


def _last_per_tick(times: np.ndarray) -> np.ndarray:
    """Mask keeping the last of several changes that round to the same time."""
    keep = np.ones(times.size, dtype=bool)
    keep[:-1] = times[1:] != times[:-1]
    return keep


def _node_signals(bld: _Builder, j: int, decimate: int, clocks: bool, lam_all,
                  first_fault) -> None:
    tr = bld.trace
    sysm = tr.system
    scope = (_TOP, f"node_{j}")
    nq = int(tr.n_samp[j])
    # a factor beyond the sample count keeps sample 0 alone; capped, it also
    # stays an int64 step however large it was given
    q = np.arange(0, nq, min(decimate, max(nq, 1)))
    ts = tr.samp_t[j, q]
    m = tr.samp_m[j, q]
    S = bld.samples(ts)
    if clocks:
        bld.clock(scope, j)
    bld.sampled(scope, "cycle", "integer", 64, "dec", S, m, None)
    # frequency: segment s holds from when it takes effect (segment 0 from t = 0)
    ns = int(tr.n_seg[j])
    seg_t = tr.seg_t[j, :ns].copy()
    seg_t[0] = -1.0
    rel = tr.seg_rel[j, :ns] * 1e6
    if decimate > 1 and ns > 1:
        # the last segment that starts between two kept samples stands for them
        bucket = np.searchsorted(ts, seg_t, side="right")
        last = np.ones(ns, dtype=bool)
        last[:-1] = bucket[:-1] != bucket[1:]
        last[0] = True
        seg_t, rel = seg_t[last], rel[last]
    bld.step(scope, "freq_ppm", "real", 64, "real_line", seg_t, rel, float(rel[0]))
    c = tr.samp_c[j, q]
    bld.sampled(scope, "corr_ppm", "real", 64, "real_step", S, c * 1e6, 0.0)
    bld.sampled(scope, "desired_ppm", "real", 64, "real_step", S, tr.samp_des[j, q] * 1e6, 0.0)
    if sysm.actuator.kind == "quantized":
        # one-cycle pulses from the sample's edge m to edge m + 1
        d = np.diff(c, prepend=0.0)
        t_next = tr.edge_times(j, m + 1) if m.size else np.zeros(0)
        for name, hit in (("finc", d > 0), ("fdec", d < 0)):
            T = np.empty(2 * int(hit.sum()))
            T[0::2], T[1::2] = ts[hit], t_next[hit]
            V = np.zeros(T.size, dtype=np.uint8)
            V[0::2] = 1
            bld.step(scope, name, "wire", 1, "bit", T, V, 0)
    ctl = sysm.compile_controller() if tr.controller_states is not None else None
    if ctl is not None:
        # the controller's state after each sample (e.g. PI's integrator)
        for c in range(ctl.n_state):
            bld.sampled(scope, f"ctl_state_{c}", "real", 64, "real_step", S,
                        tr.controller_states[j, q, c], float(ctl.state[c]))
    in_off, _ = sysm.topology.incoming()
    t_up_all = sysm.link_up_s
    links = np.arange(int(in_off[j]), int(in_off[j + 1]))
    cnt_all = tr.counts[links][:, q].astype(np.int64)
    ddc_all = tr.ddc[links][:, q].astype(np.int64)
    stable_all = tr.stable[links][:, q].astype(np.uint8)
    settled_all = tr.settled[links][:, q].astype(np.uint8)
    lam_node = lam_all[links][:, q]
    for r, l in enumerate(links.tolist()):
        i = int(tr.links[l, 0])
        lscope = (*scope, f"link_from_{i}")
        came_up = bool(tr.link_up[l])
        bld.event(lscope, "up", float(t_up_all[l]) if came_up else None)
        bld.sampled(lscope, "count", "integer", 32, "step", S, cnt_all[r], 0)
        bld.sampled(lscope, "ddc", "integer", 32, "signed", S, ddc_all[r], 0)
        bld.sampled(lscope, "stable", "wire", 1, "bit", S, stable_all[r], 0)
        bld.sampled(lscope, "settled", "wire", 1, "bit", S, settled_all[r], 0)
        ovf, unf = first_fault.get((l, "overflow")), first_fault.get((l, "underflow"))
        bld.event(lscope, "overflow", ovf)
        bld.event(lscope, "underflow", unf)
        # λ once the buffer is armed; the oldest frame in the FIFO follows
        # frame m - λ until the first overflow drops one
        lam = lam_node[r]
        armed = ~np.ma.getmaskarray(lam)
        bld.sampled(lscope, "ugn", "integer", 64, "signed", S, lam.data, None, armed)
        if tr.fidelity == "cycle":
            if ovf is not None:
                armed = armed & (ts < ovf)
            bld.sampled(lscope, "seq_read", "integer", 64, "dec", S, m - lam.data, None, armed)


# ---------------------------------------------------------------------------- output


def _header(vars_: list[VcdVar], ids: np.ndarray, timescale: str, comment: str) -> bytes:
    lines = [f"$version tidesim {__version__} $end", f"$comment {comment} $end",
             f"$timescale {timescale} $end"]
    open_scope: tuple[str, ...] = ()
    for v, code in zip(vars_, ids, strict=True):
        common = 0
        while (common < min(len(open_scope), len(v.scope))
               and open_scope[common] == v.scope[common]):
            common += 1
        lines += ["$upscope $end"] * (len(open_scope) - common)
        lines += [f"$scope module {s} $end" for s in v.scope[common:]]
        open_scope = v.scope
        lines.append(f"$var {v.kind} {v.width} {bytes(code).decode()} {v.name} $end")
    lines += ["$upscope $end"] * len(open_scope)
    lines.append("$enddefinitions $end")
    return ("\n".join(lines) + "\n").encode("ascii")


def _write_gtkw(vars_: list[VcdVar], vcd_path: Path, t0: int, t1: int, *,
                colors: dict[str, str] | None = None,
                comment: str = "tidesim.backends.vcd.write_vcd") -> Path:
    """The ``.gtkw`` save file of a VCD: a group per scope, colours by signal name."""
    from vcd.gtkw import GTKWColor, GTKWFlag, GTKWSave

    out = gtkw_path(vcd_path)
    color = {name: GTKWColor[c] for name, c in colors.items()} if colors else {
             "clk": GTKWColor.green, "freq_ppm": GTKWColor.orange,
             "corr_ppm": GTKWColor.yellow, "desired_ppm": GTKWColor.yellow,
             "finc": GTKWColor.red, "fdec": GTKWColor.red, "count": GTKWColor.blue,
             "ddc": GTKWColor.indigo, "stable": GTKWColor.green, "settled": GTKWColor.green,
             "overflow": GTKWColor.red, "underflow": GTKWColor.red}
    analog = {"step": (GTKWFlag.analog_step, 2), "real_step": (GTKWFlag.analog_step, 1),
              "real_line": (GTKWFlag.analog_interpolated, 2)}
    with open(out, "w", encoding="ascii") as fh:
        g = GTKWSave(fh)
        g.comment(f"written by {comment}")
        # GTKWave resolves a moved pair from these two paths (relative to each other)
        g.dumpfile(str(vcd_path), abspath=True)
        g.savefile(str(out), abspath=True)
        g.timestart(t0)
        g.size(1400, 900)
        g.zoom_markers(-math.log2(max(t1 - t0, 1) / 1000.0))
        g.signals_width(220)
        g.sst_expanded(True)
        g.treeopen(_TOP)
        open_groups: list[str] = []  # scope names below the top, one group each
        for v in vars_:
            want = list(v.scope[1:])
            common = 0
            while (common < min(len(open_groups), len(want))
                   and open_groups[common] == want[common]):
                common += 1
            while len(open_groups) > common:
                g.end_group(open_groups.pop())
            for name in want[common:]:
                g.begin_group(name)
                open_groups.append(name)
            flags, stretch = analog.get(v.fmt, (GTKWFlag.none, 0))
            datafmt = {"bit": "hex", "hex": "hex", "dec": "dec", "signed": "signed",
                       "step": "signed", "real_step": "real", "real_line": "real"}[v.fmt]
            g.trace(v.path, alias=v.name, color=color.get(v.name), datafmt=datafmt,
                    extraflags=flags)
            for _ in range(stretch):
                g.blank(analog_extend=True)
        while open_groups:
            g.end_group(open_groups.pop())
    return out


def write_vcd(trace, path: str | os.PathLike, *, t_from_s: float | None = None,
              t_to_s: float | None = None, nodes: Iterable[int] | None = None,
              decimate: int = 1, clocks: bool | None = None,
              timescale: str | None = None) -> Path:
    """Write ``trace`` as a VCD file, and a GTKWave save file beside it.

    Args:
        trace: the :class:`~tidesim.models.Trace` of a run.
        path: the VCD file to write (its parent directory must exist); the
            save file is the same path with the suffix ``.gtkw``.
        t_from_s, t_to_s: the time window (default: the whole run). Values in
            force at ``t_from_s`` are written at ``t_from_s``; changes follow up
            to and including ``t_to_s``. Times stay absolute.
        nodes: the nodes to write (default: all), each with its incoming links.
        decimate: keep every ``decimate``-th control sample of each node
            (for long runs; any factor beyond the sample count keeps the first
            sample only); clocks, link-up and fault flags keep every change.
        clocks: write each node's clock. ``None``: only for cycle-fidelity
            traces whose window holds at most :data:`CLOCK_EDGE_LIMIT` edges
            of the selected nodes in all.
        timescale: ``"1fs"``, ``"1ps"`` or ``"1ns"``; ``None`` picks the finest
            one whose integer times of the window fit in 62 bits (1 fs up to
            about 4600 s).

    Returns:
        The path of the VCD file.

    Raises:
        ConfigError: a bad window, node list, decimation or timescale, or no pyvcd.
    """
    a, b, sel, decimate, timescale = _check(trace, t_from_s, t_to_s, nodes, decimate, timescale)
    require_pyvcd()
    if clocks is None:
        edges = (b - a) * trace.system.f_nom_hz * 1.0001 * len(sel)
        clocks = trace.fidelity == "cycle" and edges <= CLOCK_EDGE_LIMIT
    path = Path(path)
    bld = _Builder(trace, a, b, TIMESCALES[timescale])
    lam_all = trace.logical_latency()
    first_fault = {(f.link, f.kind): f.time_s for f in trace.faults}
    for j in sel:
        _node_signals(bld, j, decimate, bool(clocks), lam_all, first_fault)
    bld.finish()
    ids = id_codes(len(bld.vars))
    t1 = int(np.rint(b * bld.scale))
    comment = (f"fidelity={trace.fidelity} window=[{a!r}, {b!r}] s nodes={sel} "
               f"decimate={decimate} clocks={bool(clocks)}")
    with open(path, "wb") as fh:
        fh.write(_header(bld.vars, ids, timescale, comment))
        fh.write(f"#{bld.t0}\n".encode())
        for chunk in render_body(bld.body, ids, bld.t0):
            fh.write(chunk)
        if t1 > bld.t0:
            fh.write(f"#{t1}\n".encode())
    _write_gtkw(bld.vars, path, bld.t0, t1)
    return path
