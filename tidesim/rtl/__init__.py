"""Verilog of bittide's hardware blocks, and the cycle models they are checked against.

The ``.v`` files here are synthesizable Verilog-2005, shipped with the
package (:func:`rtl_sources`). Each block has a model here, stepped edge by
edge from the same clock edges the RTL simulation uses; the cocotb helpers in
:mod:`tidesim.testing.cocotb` compare the two on every cycle. See
``docs/rtl.md``.

Lifecycle, for the elastic buffer: clock edges of a sender and a receiver
from a tidesim run, the model run on them, and its outputs per cycle:

    >>> from tidesim.models import System, Topology
    >>> from tidesim.rtl import ElasticBufferModel, link_edges_fs
    >>> system = System(Topology.complete(2, latency_s=3e-8), offsets_ppm=[-50.0, 50.0])
    >>> trace = system.run(until_s=2e-5, record="full")
    >>> wr_fs, rd_fs = link_edges_fs(trace, 0, 1, cycles=2000)
    >>> model = ElasticBufferModel(addr=5)
    >>> out = model.run(wr_fs, rd_fs, rd_en=model.start_reading(wr_fs, rd_fs))
    >>> int(out.occupancy[-1]) in range(14, 19), bool(out.underflow.any())
    (True, False)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import integer, number
from ..errors import ConfigError
from . import _kernels as K

__all__ = ["ElasticBufferModel", "ElasticBufferRun", "PumpModel", "calendar_scenario", "ddc_model",
           "elastic_buffer_scenario", "link_edges_fs", "pack_ports", "random_calendar",
           "rtl_files", "rtl_path", "rtl_sources"]

_HERE = Path(__file__).resolve().parent
FS_PER_S = 10**15


def rtl_sources() -> list[Path]:
    """The Verilog files of every block (sorted)."""
    return sorted(_HERE.glob("*.v"))


def rtl_path(module: str) -> Path:
    """The Verilog file of ``module`` (e.g. ``"tidesim_elastic_buffer"``)."""
    p = _HERE / f"{module}.v"
    if not p.is_file():
        names = ", ".join(q.stem for q in rtl_sources())
        raise ConfigError("rtl.module", module, f"must be one of {names}")
    return p


def rtl_files(module: str) -> list[Path]:
    """``module``'s Verilog file, then those of the modules it instantiates
    (read from its text and the files it includes, transitively): what to
    build it from."""
    out = [rtl_path(module)]
    for p in out:
        text = p.read_text()
        text += "".join((_HERE / inc).read_text()
                        for inc in re.findall(r'^`include "([\w.]+)"', text, re.MULTILINE))
        for dep in re.findall(r"^\s*(tidesim_\w+)\s+#", text, re.MULTILINE):
            if rtl_path(dep) not in out:
                out.append(rtl_path(dep))
    return out


def link_edges_fs(trace, src: int, dst: int, *, cycles: int, first: int = 0):
    """Rising edges (integer fs) of a link's two clock domains, from a run.

    The write domain is the sender's clock as the frames arrive (its edges
    plus the link's latency); the read domain is the receiver's own clock.

    Args:
        trace: a :class:`~tidesim.models.Trace`.
        src, dst: the link's nodes.
        cycles: how many receiver cycles, from receiver edge ``first``.

    Returns:
        ``(wr_fs, rd_fs)``: int64 arrays, the write edges covering the same
        span, both shifted so that the first edge of either is at 1 ns.
    """
    cycles = integer("cycles", cycles, lo=1)
    link = trace.system.topology.link_index(src, dst)
    lat_s = float(trace.system.topology.latency_s[link])
    rd_s = trace.edge_times(dst, np.arange(first, first + cycles))
    k0 = trace.last_edge(src, rd_s[0] - lat_s)
    k1 = trace.last_edge(src, rd_s[-1] - lat_s) + 1
    wr_s = trace.edge_times(src, np.arange(k0, k1 + 1)) + lat_s
    rd_fs = np.rint(rd_s * FS_PER_S).astype(np.int64)
    wr_fs = np.rint(wr_s * FS_PER_S).astype(np.int64)
    # the simulation starts at 0: the first edge 1 ns after
    base = min(int(wr_fs[0]), int(rd_fs[0])) - 1_000_000
    return wr_fs - base, rd_fs - base


@dataclass(frozen=True)
class ElasticBufferRun:
    """The model's outputs on every edge.

    Read domain, ``[R]`` each (after each read edge): ``occupancy``,
    ``count`` (occupancy minus half the depth), ``underflow``, ``adj_busy``,
    ``rd_data`` and ``rd_data_valid`` (False once a flag was raised: the
    frames can no longer be trusted, nor compared). Write domain, ``[W]``
    each: ``full``, ``overflow``, and ``wr_occupancy``, the occupancy as the
    write side sees it (not a port: it says when ``full`` will rise).
    """

    occupancy: np.ndarray
    count: np.ndarray
    underflow: np.ndarray
    adj_busy: np.ndarray
    rd_data: np.ndarray
    rd_data_valid: np.ndarray
    full: np.ndarray
    overflow: np.ndarray
    wr_occupancy: np.ndarray

    def first(self, name: str) -> int | None:
        """The first edge (index) at which flag ``name`` is raised, or None."""
        hit = np.flatnonzero(getattr(self, name))
        return int(hit[0]) if len(hit) else None


class ElasticBufferModel:
    """The elastic buffer of ``tidesim_elastic_buffer.v``, cycle by cycle.

    Args:
        addr: ``ADDR``: the depth is ``2**addr`` frames (1..20).
        sync: ``SYNC``: synchroniser stages (2..8).
    """

    def __init__(self, addr: int = 5, sync: int = 2) -> None:
        self.addr = integer("elastic_buffer.addr", addr, lo=1, hi=20)
        self.sync = integer("elastic_buffer.sync", sync, lo=2, hi=8)
        self.depth = 1 << self.addr

    def run(self, wr_fs, rd_fs, *, wr_en=None, wr_data=None, rd_en=None, adj_frames=None,
            wr_rst=None, rd_rst=None) -> ElasticBufferRun:
        """Step the buffer over these edges.

        Args:
            wr_fs, rd_fs: int rising edges of the write and read clocks (fs,
                increasing), ``[W]`` and ``[R]``.
            wr_en: bool ``[W]`` (default: always); wr_data: uint64 ``[W]``
                (default: the write edge's index).
            rd_en: bool ``[R]`` (default: always).
            adj_frames: int ``[R]``: an adjustment issued at that read edge
                (0: none).
            wr_rst, rd_rst: bool ``[W]``, ``[R]`` synchronous resets (default:
                the first two edges of each domain).
        """
        wr_t = _edges("wr_fs", wr_fs)
        rd_t = _edges("rd_fs", rd_fs)
        W, R = len(wr_t), len(rd_t)
        wr_en = _per_edge("wr_en", wr_en, W, True, np.bool_)
        wr_data = _per_edge("wr_data", wr_data, W, None, np.uint64)
        if wr_data is None:
            wr_data = np.arange(W, dtype=np.uint64)
        rd_en = _per_edge("rd_en", rd_en, R, True, np.bool_)
        adj = _per_edge("adj_frames", adj_frames, R, 0, np.int64)
        wr_rst = _per_edge("wr_rst", wr_rst, W, None, np.bool_)
        rd_rst = _per_edge("rd_rst", rd_rst, R, None, np.bool_)
        if wr_rst is None:
            wr_rst = np.arange(W) < 2
        if rd_rst is None:
            rd_rst = np.arange(R) < 2
        rd_out = np.zeros((R, 3), dtype=np.int64)
        data = np.zeros(R, dtype=np.uint64)
        wr_out = np.zeros((W, 3), dtype=np.int64)
        K.elastic_buffer(self.addr, self.sync, wr_t, wr_rst, wr_en, wr_data, rd_t, rd_rst,
                         rd_en, adj, rd_out, data, wr_out)
        occ = rd_out[:, K.RD_OCC]
        under = rd_out[:, K.RD_UNDERFLOW].astype(bool)
        over = wr_out[:, K.WR_OVERFLOW].astype(bool)
        # a read edge that comes after an overflowing write edge
        first_over = np.flatnonzero(over)
        t_over = wr_t[first_over[0]] if len(first_over) else np.iinfo(np.int64).max
        return ElasticBufferRun(
            occupancy=occ, count=occ - self.depth // 2, underflow=under,
            adj_busy=rd_out[:, K.RD_BUSY].astype(bool), rd_data=data,
            rd_data_valid=~under & (rd_t <= t_over) & (np.cumsum(rd_en & ~rd_rst) > 0),
            full=wr_out[:, K.WR_FULL].astype(bool), overflow=over,
            wr_occupancy=wr_out[:, K.WR_LEVEL])

    def start_reading(self, wr_fs, rd_fs, *, at: int | None = None) -> np.ndarray:
        """``rd_en`` that starts reading once the buffer is half full.

        Returns:
            bool ``[R]``: False until the first read edge after the one at
            which the occupancy (reading nothing) reaches ``at`` (default:
            half the depth), True from then on.
        """
        at = self.depth // 2 if at is None else integer("at", at, lo=0, hi=self.depth)
        rd_t = _edges("rd_fs", rd_fs)
        idle = self.run(wr_fs, rd_t, rd_en=np.zeros(len(rd_t), dtype=bool))
        hit = np.flatnonzero(idle.occupancy >= at)
        if not len(hit):
            raise ConfigError("rd_fs", f"{len(rd_t)} edges",
                              f"must span the time the buffer takes to reach {at} frames")
        return np.arange(len(rd_t)) > hit[0]


def elastic_buffer_scenario(trace, *, src: int = 0, dst: int = 1, cycles: int = 2000,
                            addr: int = 5, sync: int = 2, adjustments: int = 0,
                            seed: int = 0, max_frames: int = 6) -> dict[str, np.ndarray]:
    """Stimulus for an elastic buffer on link ``src -> dst`` of a run.

    The clocks are the link's (:func:`link_edges_fs`); the data is the
    sender's frame number; reading starts once the buffer is half full; then
    ``adjustments`` adjustments of ``1..max_frames`` frames either way are
    issued at seeded random read cycles, far enough apart for each to
    complete. Feed it to :meth:`ElasticBufferModel.run` (``**`` the
    per-edge arrays) and to :func:`tidesim.testing.cocotb.check_elastic_buffer`.

    Returns:
        ``wr_fs wr_rst wr_en wr_data rd_fs rd_rst rd_en adj_frames`` (one
        value per edge), ``addr``, ``sync``.
    """
    model = ElasticBufferModel(addr, sync)
    adjustments = integer("adjustments", adjustments, lo=0)
    max_frames = integer("max_frames", max_frames, lo=1, hi=model.depth)
    wr_fs, rd_fs = link_edges_fs(trace, src, dst, cycles=cycles)
    rd_en = model.start_reading(wr_fs, rd_fs)
    R = len(rd_fs)
    adj = np.zeros(R, dtype=np.int64)
    if adjustments:
        start = int(np.flatnonzero(rd_en)[0]) + 4 * sync
        gap = 4 * sync + 2 * max_frames + 8
        if start + adjustments * gap >= R:
            raise ConfigError("adjustments", adjustments,
                              f"must fit {R} read cycles, {gap} apart after cycle {start}")
        rng = np.random.default_rng(seed)
        slack = R - start - adjustments * gap
        at = start + np.sort(rng.integers(0, slack, adjustments)) + gap * np.arange(adjustments)
        n = rng.integers(1, max_frames + 1, adjustments) * rng.choice([-1, 1], adjustments)
        adj[at] = n
    k0 = int(trace.last_edge(src, 0.0))
    return {"wr_fs": wr_fs, "wr_rst": np.arange(len(wr_fs)) < 2,
            "wr_en": np.ones(len(wr_fs), dtype=bool),
            "wr_data": np.arange(len(wr_fs), dtype=np.uint64) + np.uint64(max(k0, 0)),
            "rd_fs": rd_fs, "rd_rst": np.arange(R) < 2, "rd_en": rd_en, "adj_frames": adj,
            "addr": np.int64(addr), "sync": np.int64(sync)}


def ddc_model(wr_fs, rd_fs, *, wr_en=None, rd_en=None, reset_edges: int = 2, sync: int = 2,
              width: int = 32) -> np.ndarray:
    """``tidesim_ddc``'s output after each read edge (int64 ``[R]``, signed).

    In closed form: the write count as sampled ``sync - 1`` read edges
    earlier (the writes strictly before that edge: a write at the same
    instant is not yet seen), less the reads so far; both domains in reset
    for their first ``reset_edges`` edges.
    """
    wr_t, rd_t = _edges("wr_fs", wr_fs), _edges("rd_fs", rd_fs)
    sync = integer("sync", sync, lo=2, hi=8)
    width = integer("width", width, lo=2, hi=63)
    W, R = len(wr_t), len(rd_t)
    live_w = _per_edge("wr_en", wr_en, W, True, np.bool_) & (np.arange(W) >= reset_edges)
    live_r = _per_edge("rd_en", rd_en, R, True, np.bool_) & (np.arange(R) >= reset_edges)
    wcount = np.concatenate([[0], np.cumsum(live_w)])  # after i write edges
    k = np.arange(R)
    at = k - sync + 1
    seen = wcount[np.searchsorted(wr_t, rd_t[np.maximum(at, 0)], side="left")]
    seen = np.where(at >= reset_edges, seen, 0)
    diff = (seen - np.cumsum(live_r)) % (1 << width)
    return np.where(diff >= 1 << (width - 1), diff - (1 << width), diff)


class PumpModel:
    """``tidesim_pump`` (the rig's FINC/FDEC controller), edge by edge.

    Args:
        period: clock cycles between updates.
        gain_steps_per_frame, target_steps: the law ``kp / step`` and
            ``target / step``, exact in ``frac`` fractional bits.
        frac: fractional bits (1..24).
    """

    def __init__(self, *, period: int = 16, gain_steps_per_frame: float = 1.0,
                 target_steps: float = 0.0, frac: int = 8) -> None:
        self.period = integer("pump.period", period, lo=1)
        self.frac = integer("pump.frac", frac, lo=1, hi=24)
        scale = 1 << self.frac
        self.gain = _fixed("pump.gain_steps_per_frame", gain_steps_per_frame, scale)
        self.target = _fixed("pump.target_steps", target_steps, scale)

    @property
    def parameters(self) -> dict[str, int]:
        """The RTL's parameters for this model."""
        return {"PERIOD": self.period, "FRAC": self.frac, "GAIN": self.gain,
                "TARGET": self.target}

    def run(self, counts, *, reset_edges: int = 2) -> dict[str, np.ndarray]:
        """``finc fdec update`` (bool) and ``position`` (int) after each edge.

        Args:
            counts: int ``[E, N]``, each link's count at each edge.
        """
        c = np.ascontiguousarray(counts, dtype=np.int64)
        if c.ndim != 2:
            raise ConfigError("counts", f"shape {c.shape}", "must be [edges, links]")
        E = len(c)
        out = {k: np.zeros(E, dtype=np.bool_) for k in ("finc", "fdec", "update")}
        out["position"] = np.zeros(E, dtype=np.int64)
        K.pump(self.period, self.gain, self.target, self.frac, np.arange(E) < reset_edges, c,
               out["finc"], out["fdec"], out["update"], out["position"])
        return out


def _fixed(field: str, value, scale: int) -> int:
    v = number(field, value) * scale
    if v != round(v):
        raise ConfigError(field, value, f"must be a multiple of 1/{scale} (exact in fixed point)")
    return int(round(v))


def pack_ports(values, bits: int, *, signed: bool = True) -> np.ndarray:
    """Per-port values ``[n, ports]`` packed as the RTL's buses (port 0 in the
    low bits, ``bits`` bits each, two's complement where ``signed``): Python
    ints ``[n]`` (a bus may be wider than 64 bits)."""
    values = np.asarray(values, dtype=np.int64 if signed else np.uint64)
    mask = (1 << bits) - 1
    out = np.zeros(len(values), dtype=object)
    for p in range(values.shape[1]):
        out += np.array([(v & mask) << (p * bits) for v in values[:, p].tolist()], dtype=object)
    return out


def random_calendar(rng, kind: str, ports: int, *, inputs: int | None = None,
                    max_depth: int = 16, max_repeat: int = 3, values: int = 8):
    """A seeded random :class:`~tidesim.calendars.Calendar` (for stimulus)."""
    from ..calendars import Calendar

    depth = int(rng.integers(1, max_depth + 1))
    if kind == "switch":
        lo, hi = 0, (inputs or ports) + 1
    else:
        lo, hi = -1, values
    entries = [(tuple(int(v) for v in rng.integers(lo, hi, ports)),
                int(rng.integers(0, max_repeat + 1))) for _ in range(depth)]
    return Calendar(kind, entries, ports=ports, inputs=inputs if kind == "switch" else None)


def calendar_scenario(first, rewrites=(), *, cycles: int, cw: int = 8, aw: int = 4,
                      mw: int = 16) -> dict:
    """Stimulus for ``tidesim_calendar`` (or a unit built on it), and what
    :class:`~tidesim.calendars.CalendarUnit` says it must do.

    ``first`` is written during reset and swapped in at once; each
    ``(cycle, calendar)`` of ``rewrites`` is written into the shadow bank one
    entry a cycle just before ``cycle``, whose ``swap_req`` asks for the swap
    (the model's ``write_shadow`` before that cycle). A rewrite may start
    only once the previous swap was taken.

    Returns:
        Per edge (``[E]``): ``rst wr_en wr_addr wr_config wr_repeat swap_req
        swap_depth``; ``reset_edges``; the model's ``entry metacycle
        last_cycle config`` per cycle (``[cycles]``, config packed) and
        ``config_ports`` (``[cycles, ports]``).
    """
    from ..calendars import CalendarUnit

    cycles = integer("cycles", cycles, lo=1)
    cals = [first] + [c for _, c in rewrites]
    for k, cal in enumerate(cals):
        if cal.depth > 1 << aw:
            raise ConfigError(f"calendars[{k}].depth", cal.depth, f"must be <= 2**aw = {1 << aw}")
    r = first.depth + 1
    E = r + cycles
    rst = np.arange(E) < r
    wr_en = np.zeros(E, dtype=bool)
    wr_addr = np.zeros(E, dtype=np.int64)
    wr_config = np.zeros(E, dtype=object)
    wr_repeat = np.zeros(E, dtype=np.int64)
    swap_req = np.zeros(E, dtype=bool)
    swap_depth = np.zeros(E, dtype=np.int64)

    def write(at_edge: int, cal) -> None:
        packed = pack_ports(cal.config, cw)
        for e in range(cal.depth):
            k = at_edge - cal.depth + e
            wr_en[k], wr_addr[k], wr_config[k] = True, e, packed[e]
            wr_repeat[k] = int(cal.repeat[e])
        swap_req[at_edge], swap_depth[at_edge] = True, cal.depth

    write(r - 1, first)
    unit = CalendarUnit(first)
    want = unit.run(cycles, writes=list(rewrites))
    # each rewrite's writes must come after the previous swap was taken
    boundaries = np.flatnonzero(want.last_cycle)
    taken = -1
    for k, (c, cal) in enumerate(rewrites):
        c = integer(f"rewrites[{k}].cycle", c, lo=0, hi=cycles - 1)
        if c - cal.depth <= taken:
            raise ConfigError(f"rewrites[{k}].cycle", c,
                              f"must leave {cal.depth} cycles to write after cycle {taken}, "
                              "when the previous swap was taken")
        write(r + c, cal)
        later = boundaries[boundaries >= c]
        taken = int(later[0]) if len(later) else cycles
    return {"rst": rst, "wr_en": wr_en, "wr_addr": wr_addr, "wr_config": wr_config,
            "wr_repeat": wr_repeat, "swap_req": swap_req, "swap_depth": swap_depth,
            "reset_edges": r, "entry": want.entry, "metacycle": want.metacycle % (1 << mw),
            "last_cycle": want.last_cycle, "config": pack_ports(want.config, cw),
            "config_ports": want.config}


def _edges(field: str, value) -> np.ndarray:
    t = np.ascontiguousarray(value, dtype=np.int64)
    if t.ndim != 1 or len(t) == 0:
        raise ConfigError(field, f"shape {t.shape}", "must be a non-empty 1-D array of edges")
    if len(t) > 1 and (np.diff(t) <= 0).any():
        raise ConfigError(field, f"step {int(np.diff(t).min())} fs", "must be increasing")
    return t


def _per_edge(field: str, value, n: int, default, dtype):
    if value is None:
        return None if default is None else np.full(n, default, dtype=dtype)
    a = np.ascontiguousarray(value, dtype=dtype)
    if a.shape != (n,):
        raise ConfigError(field, f"shape {a.shape}", f"must be one value per edge ({n})")
    return a
