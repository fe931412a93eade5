"""cocotb helpers: check RTL against tidesim's models, cycle by cycle.

Three pieces, in the style of cocotbext drivers and monitors:

* :class:`EdgeClock` drives a clock with rising edges at given instants (in
  femtoseconds, e.g. a node's edges from a tidesim run, ppm offsets, wander
  and all: :func:`tidesim.rtl.link_edges_fs`), puts the inputs of each cycle
  on the DUT before its edge and samples the outputs after it;
* :class:`ModelScoreboard` holds the model's expected outputs per edge and
  checks every sample as it comes (in step with the DUT): the first
  difference fails the test with the cycle, the signal and both values, and
  leaves side-by-side waveforms (:meth:`ModelScoreboard.write_waves`);
* :func:`simulate` builds and runs a cocotb test module on Icarus Verilog
  through ``cocotb_tools.runner`` and returns its report.

:func:`check_elastic_buffer` strings them together for an elastic buffer
with ``tidesim_elastic_buffer``'s ports. See ``docs/rtl.md``.

Needs the ``rtl`` extra (``pip install 'tidesim[rtl]'``) and Icarus Verilog.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["CalendarMonitor", "EdgeClock", "ElasticBufferMonitor", "Expect", "Monitor",
           "ModelScoreboard", "ScoreboardMismatch",
           "calendar_expectations", "check_calendar", "check_ddc", "check_elastic_buffer",
           "check_pump",
           "elastic_buffer_expectations", "simulate"]

TIMESCALE = ("1ns", "1fs")
"""The simulator's time unit and precision (edges are given in femtoseconds)."""

REPORT_ENV = "TIDESIM_COCOTB_REPORT"
"""Where :func:`simulate` asks the cocotb test to write its JSON report."""


class ScoreboardMismatch(AssertionError):
    """The DUT and the model differ: ``clock``'s ``cycle``, ``signal``, ``got``, ``want``."""

    def __init__(self, clock: str, cycle: int, time_fs: int, signal: str, got, want) -> None:
        super().__init__(f"{clock} cycle {cycle} (t={time_fs} fs): {signal}: "
                         f"RTL {got}, model {want}")
        self.clock, self.cycle, self.time_fs = clock, cycle, time_fs
        self.signal, self.got, self.want = signal, got, want


@dataclass
class Expect:
    """A model's values of one DUT output, one per edge of its clock.

    ``care``: bool per edge, False where the value is not compared (an
    undefined read after a fault, say); default: every edge.
    """

    values: np.ndarray
    care: np.ndarray | None = None
    signed: bool = False


@dataclass
class ModelScoreboard:
    """Compares a DUT's samples with a model's values, edge by edge, as they come.

    Args:
        expect: per clock name, per signal name, an :class:`Expect`.
        edges_fs: per clock name, its rising edges (fs).

    After a run, ``got`` holds every sample taken (per clock, per signal) and
    ``mismatch`` the first difference (or None).
    """

    expect: Mapping[str, Mapping[str, Expect]]
    edges_fs: Mapping[str, np.ndarray]
    got: dict = field(default_factory=dict)
    mismatch: ScoreboardMismatch | None = None

    def __post_init__(self) -> None:
        for clock, sigs in self.expect.items():
            n = len(self.edges_fs[clock])
            # (object: buses wider than 64 bits)
            self.got[clock] = {name: np.zeros(n, dtype=object) for name in sigs}
        self.taken = dict.fromkeys(self.expect, 0)
        self.started = time.perf_counter()  # the report's wall_s counts from here

    def check(self, clock: str, cycle: int, sample: Mapping[str, int]) -> None:
        """Take the samples after ``clock``'s edge ``cycle``; raise at the first difference."""
        got = self.got[clock]
        for name, value in sample.items():
            got[name][cycle] = value
        self.taken[clock] = cycle + 1
        for name, value in sample.items():
            e = self.expect[clock][name]
            want = int(e.values[cycle])
            if value != want and (e.care is None or e.care[cycle]):
                self.mismatch = ScoreboardMismatch(clock, cycle, int(self.edges_fs[clock][cycle]),
                                                   name, value, want)
                raise self.mismatch

    def write_waves(self, folder: Path, *, rtl_vcd: str | None = None) -> dict[str, Path]:
        """The model's outputs (``model.vcd``) and both side by side, as
        sampled at each edge (``compare.vcd``, with ``compare.gtkw`` showing
        ``model`` over ``rtl`` for every signal, the first difference marked)."""
        from vcd import VCDWriter

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = {}
        for name, scopes in (("model", ("model",)), ("compare", ("model", "rtl"))):
            path = folder / f"{name}.vcd"
            with open(path, "w") as f, VCDWriter(f, timescale="1 fs", date="today") as w:
                events = []
                for clock, sigs in self.expect.items():
                    t = np.asarray(self.edges_fs[clock], dtype=np.int64)
                    clk = w.register_var(clock, "edge", "event")
                    events += [(int(x), clk, True) for x in t]
                    for sig, e in sigs.items():
                        got = self.got[clock][sig][:self.taken[clock]]
                        bits = max([64] + [int(v).bit_length() for v in (*e.values, *got)])
                        for scope in scopes:
                            var = w.register_var(f"{clock}.{scope}", sig, "integer", size=bits)
                            vals = e.values if scope == "model" else got
                            prev = None
                            for k, v in enumerate(vals.tolist()):
                                if v != prev:
                                    events.append((int(t[k]), var, int(v) if v >= 0 else "x"))
                                    prev = v
                events.sort(key=lambda ev: ev[0])
                for when, var, v in events:
                    w.change(var, when, v)
            out[name] = path
        out["gtkw"] = self._write_gtkw(folder / "compare.gtkw", out["compare"], rtl_vcd)
        return out

    def _write_gtkw(self, gtkw: Path, vcd: Path, rtl_vcd: str | None) -> Path:
        """Every signal's model trace over its RTL trace; the view and the
        marker on the first difference (else the start)."""
        import math

        from vcd.gtkw import GTKWColor, GTKWSave

        ends = [int(np.asarray(t)[-1]) for t in self.edges_fs.values()]
        periods = [int(np.diff(np.asarray(t)[:2])[0]) if len(t) > 1 else 1
                   for t in self.edges_fs.values()]
        at = self.mismatch.time_fs if self.mismatch is not None else 0
        span = min(max(ends), 80 * max(periods))
        with open(gtkw, "w", encoding="ascii") as fh:
            g = GTKWSave(fh)
            g.comment("tidesim.testing.cocotb: the model over the RTL, signal by signal")
            if rtl_vcd is not None:
                g.comment(f"every signal of the RTL: {rtl_vcd}")
            g.dumpfile(str(vcd), abspath=True)
            g.savefile(str(gtkw), abspath=True)
            g.timestart(max(0, at - span // 2))
            g.size(1400, 900)
            g.zoom_markers(-math.log2(max(span, 1) / 1000.0), marker=at)
            g.signals_width(260)
            for clock, sigs in self.expect.items():
                for sig in sigs:
                    g.trace(f"{clock}.model.{sig}", alias=f"{clock} {sig} (model)",
                            color=GTKWColor.green, datafmt="dec")
                    g.trace(f"{clock}.rtl.{sig}", alias=f"{clock} {sig} (RTL)",
                            color=GTKWColor.yellow, datafmt="dec")
        return gtkw


class EdgeClock:
    """Drives ``clk`` with rising edges at ``edges_fs`` (falling edges halfway
    between), the inputs of each cycle set at the falling edge before it.

    Args:
        clk: the DUT's clock signal.
        edges_fs: int rising edges (fs, increasing, the first > 0).
        drive: signal -> int array, the value for each edge.
        sample: name -> signal, read after each edge (in the read-only phase)
            and handed to ``scoreboard.check``.
        name: the clock's name in reports.
        scoreboard: checks each cycle's samples; a sample is read as two's
            complement where the scoreboard's :class:`Expect` says ``signed``.
    """

    def __init__(self, clk, edges_fs, *, drive: Mapping | None = None,
                 sample: Mapping | None = None, name: str = "clk",
                 scoreboard: ModelScoreboard | None = None) -> None:
        self.clk, self.name = clk, name
        self.edges = np.asarray(edges_fs, dtype=np.int64).tolist()
        self.drive = [(sig, [int(x) for x in np.asarray(v).tolist()])
                      for sig, v in (drive or {}).items()]
        self.sample = dict(sample or {}) if scoreboard is not None else {}
        expect = scoreboard.expect.get(name, {}) if scoreboard is not None else {}
        self.signed = {n: n in expect and expect[n].signed for n in self.sample}
        self.scoreboard = scoreboard

    async def run(self) -> None:
        """Drive every edge; raise the scoreboard's mismatch at the first one."""
        from cocotb.triggers import ReadOnly, Timer

        clk, edges, drive, sample, signed = (self.clk, self.edges, self.drive, self.sample,
                                             self.signed)
        now = 0
        clk.value = 0
        for sig, vals in drive:
            sig.value = vals[0]
        for k, t in enumerate(edges):
            await Timer(t - now, "fs")
            clk.value = 1
            await ReadOnly()
            if sample:
                self.scoreboard.check(self.name, k, {n: _as_int(s.value, signed[n])
                                                     for n, s in sample.items()})
            nxt = edges[k + 1] if k + 1 < len(edges) else t + 2 * (t - (edges[k - 1] if k else 0))
            fall = (t + nxt) // 2
            await Timer(fall - t, "fs")
            clk.value = 0
            if k + 1 < len(edges):
                for sig, vals in drive:
                    sig.value = vals[k + 1]
            now = fall


async def _checked(board: ModelScoreboard, clocks, report, waves) -> ModelScoreboard:
    """Run the clocks together; report (and draw the waves of a mismatch) either way."""
    from cocotb.triggers import gather

    try:
        await gather(*(c.run() for c in clocks))
    finally:
        _report(board, report, waves)
    return board


class Monitor:
    """Watches some of a DUT's outputs: one transaction (a dict of ints) per
    rising edge of ``clock``, sampled in the read-only phase, in cocotbext's
    style.

    Args:
        clock: the clock signal.
        signals: name -> signal to sample.
        signed: the names read as two's complement.

    ``start()`` begins watching (from the next edge), ``await recv()`` takes
    the oldest transaction, ``recv_nowait()`` too or raises
    ``cocotb.queue.QueueEmpty``; ``count()``, ``empty()``, and ``stop()``.
    """

    def __init__(self, clock, signals: Mapping, *, signed: Sequence[str] = ()) -> None:
        from cocotb.queue import Queue

        self.clock, self.signals = clock, dict(signals)
        self.signed = {n: n in signed for n in self.signals}
        self.queue: Queue = Queue()
        self._task = None

    def start(self) -> Monitor:
        import cocotb

        if self._task is None:
            self._task = cocotb.start_soon(self._run())
        return self

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        from cocotb.triggers import ReadOnly, RisingEdge

        edge = RisingEdge(self.clock)
        while True:
            await edge
            await ReadOnly()
            self.queue.put_nowait({n: _as_int(s.value, self.signed[n])
                                   for n, s in self.signals.items()})

    async def recv(self) -> dict:
        return await self.queue.get()

    def recv_nowait(self) -> dict:
        return self.queue.get_nowait()

    def count(self) -> int:
        return self.queue.qsize()

    def empty(self) -> bool:
        return self.queue.empty()


class ElasticBufferMonitor(Monitor):
    """The read side of an elastic buffer with ``tidesim_elastic_buffer``'s
    ports: ``occupancy``, ``count``, ``underflow``, ``adj_busy``, ``rd_data``
    after every ``rd_clk`` edge (``prefix`` for ports named ``PREFIX_occupancy``...)."""

    def __init__(self, dut, prefix: str = "") -> None:
        names = ("occupancy", "count", "underflow", "adj_busy", "rd_data")
        super().__init__(getattr(dut, f"{prefix}rd_clk"),
                         {n: getattr(dut, f"{prefix}{n}") for n in names}, signed=("count",))


class CalendarMonitor(Monitor):
    """A calendar unit with ``tidesim_calendar``'s ports: ``cfg``, ``entry``,
    ``metacycle``, ``last_cycle`` after every ``clk`` edge."""

    def __init__(self, dut, prefix: str = "") -> None:
        names = ("cfg", "entry", "metacycle", "last_cycle")
        super().__init__(getattr(dut, f"{prefix}clk"),
                         {n: getattr(dut, f"{prefix}{n}") for n in names})


def _as_int(v, signed: bool) -> int:
    """A sampled value as an int (-1: not resolvable, an X or Z in it)."""
    if not v.is_resolvable:
        return -1
    if signed:
        return v.to_signed()
    return v.to_unsigned() if hasattr(v, "to_unsigned") else int(v)


def elastic_buffer_expectations(run) -> dict:
    """A :class:`ModelScoreboard`'s ``expect`` from a
    :class:`~tidesim.rtl.ElasticBufferRun`: occupancy, count, underflow,
    adj_busy and rd_data (while defined) per read edge; full and overflow per
    write edge."""
    return {
        "rd_clk": {"occupancy": Expect(run.occupancy), "count": Expect(run.count, signed=True),
                   "underflow": Expect(run.underflow.astype(np.int64)),
                   "adj_busy": Expect(run.adj_busy.astype(np.int64)),
                   "rd_data": Expect(run.rd_data.astype(np.int64), care=run.rd_data_valid)},
        "wr_clk": {"full": Expect(run.full.astype(np.int64)),
                   "overflow": Expect(run.overflow.astype(np.int64))},
    }


async def check_elastic_buffer(dut, scenario: Mapping[str, np.ndarray], *,
                               model_run=None, report: str | os.PathLike | None = None,
                               waves: str | os.PathLike | None = None) -> ModelScoreboard:
    """Drive an elastic buffer with ``tidesim_elastic_buffer``'s ports and
    check it against :class:`~tidesim.rtl.ElasticBufferModel` on every edge.

    Args:
        dut: the DUT (ports ``wr_clk wr_rst wr_en wr_data full overflow rd_clk
            rd_rst rd_en rd_data occupancy count underflow adj_valid
            adj_frames adj_busy``).
        scenario: ``wr_fs``, ``rd_fs``, ``wr_rst``, ``wr_en``, ``wr_data``,
            ``rd_rst``, ``rd_en``, ``adj_frames`` (one value per edge), and
            ``addr``, ``sync`` (the model's parameters).
        model_run: the model's outputs, if already computed.
        report: where to write the JSON report (default: ``$TIDESIM_COCOTB_REPORT``).
        waves: a folder for ``model.vcd``, ``compare.vcd`` and
            ``compare.gtkw`` when they differ.

    Raises:
        ScoreboardMismatch: at the first differing edge.
    """
    from ..rtl import ElasticBufferModel

    sc = scenario
    wr_fs, rd_fs = np.asarray(sc["wr_fs"]), np.asarray(sc["rd_fs"])
    if model_run is None:
        model_run = ElasticBufferModel(int(sc["addr"]), int(sc["sync"])).run(
            wr_fs, rd_fs, wr_en=sc["wr_en"], wr_data=sc["wr_data"], rd_en=sc["rd_en"],
            adj_frames=sc["adj_frames"], wr_rst=sc["wr_rst"], rd_rst=sc["rd_rst"])
    expect = elastic_buffer_expectations(model_run)
    sb = ModelScoreboard(expect, {"wr_clk": wr_fs, "rd_clk": rd_fs})
    adj = np.asarray(sc["adj_frames"], dtype=np.int64)
    wr = EdgeClock(dut.wr_clk, wr_fs, name="wr_clk", scoreboard=sb,
                   drive={dut.wr_rst: sc["wr_rst"], dut.wr_en: sc["wr_en"],
                          dut.wr_data: np.asarray(sc["wr_data"]).astype(np.int64)},
                   sample={"full": dut.full, "overflow": dut.overflow})
    rd = EdgeClock(dut.rd_clk, rd_fs, name="rd_clk", scoreboard=sb,
                   drive={dut.rd_rst: sc["rd_rst"], dut.rd_en: sc["rd_en"],
                          dut.adj_valid: adj != 0, dut.adj_frames: adj & 0xFFFF},
                   sample={"occupancy": dut.occupancy, "count": dut.count,
                           "underflow": dut.underflow, "adj_busy": dut.adj_busy,
                           "rd_data": dut.rd_data})
    return await _checked(sb, (wr, rd), report, waves)


def calendar_expectations(scenario: Mapping, *, width: int = 64) -> dict:
    """A scoreboard's ``expect`` for a unit on ``tidesim_calendar``, from a
    :func:`~tidesim.rtl.calendar_scenario` (after edge ``k`` the unit shows
    cycle ``k - reset_edges + 1``), and for its datapath where
    ``scenario["unit"]`` names one:

    * ``"switch"``: ``out_frames`` from ``in_words`` (uint64 ``[E, inputs]``);
    * ``"gather"``: ``out_frames`` and ``out_valid`` from the memory writes
      ``mem_wr_en mem_wr_addr mem_wr_data`` (``[E]``), ``ma`` address bits;
    * ``"scatter"``: ``mem_rd_data`` at ``mem_rd_addr`` (``[E]``) from ``in_words``.

    A word never written is not compared.
    """
    from ..rtl import _kernels as RK
    from ..rtl import pack_ports

    r = int(scenario["reset_edges"])
    n = len(scenario["entry"])
    E = len(scenario["rst"])
    cyc = np.arange(E) - r + 1
    care = (cyc >= 0) & (cyc < n)
    at = np.clip(cyc, 0, n - 1)
    expect = {name: Expect(np.asarray(scenario[name], dtype=object)[at], care=care)
              for name in ("entry", "metacycle", "last_cycle")}
    expect["cfg"] = Expect(np.asarray(scenario["config"], dtype=object)[at], care=care)
    unit = scenario.get("unit", "calendar")
    ports = np.ascontiguousarray(scenario["config_ports"], dtype=np.int64)
    P = ports.shape[1]
    ended = np.arange(E) - r  # the cycle that edge k ended
    live = (ended >= 0) & (ended < n)
    if unit == "switch":
        words = np.asarray(scenario["in_words"], dtype=np.uint64)
        sel = np.zeros((E, P), dtype=np.int64)
        sel[live] = ports[ended[live]]
        sel = np.where(sel <= words.shape[1], sel, 0)
        out = np.where(sel > 0, np.take_along_axis(words, np.maximum(sel - 1, 0), axis=1),
                       np.uint64(0))
        expect["out_frames"] = Expect(pack_ports(out, width, signed=False), care=ended >= -1)
    elif unit == "gather":
        out = np.zeros((E, P), dtype=np.uint64)
        valid = np.zeros((E, P), dtype=np.bool_)
        defined = np.zeros(E, dtype=np.bool_)
        RK.gather_unit(r, int(scenario["ma"]), ports,
                       np.asarray(scenario["mem_wr_en"], dtype=np.bool_),
                       np.asarray(scenario["mem_wr_addr"], dtype=np.int64),
                       np.asarray(scenario["mem_wr_data"], dtype=np.uint64), out, valid, defined)
        expect["out_frames"] = Expect(pack_ports(out, width, signed=False), care=defined)
        expect["out_valid"] = Expect(pack_ports(valid, 1, signed=False))
    elif unit == "scatter":
        data = np.zeros(E, dtype=np.uint64)
        defined = np.zeros(E, dtype=np.bool_)
        RK.scatter_unit(r, int(scenario["ma"]), ports,
                        np.ascontiguousarray(scenario["in_words"], dtype=np.uint64),
                        np.asarray(scenario["mem_rd_addr"], dtype=np.int64), data, defined)
        expect["mem_rd_data"] = Expect(data.astype(object), care=defined)
    return expect


async def check_calendar(dut, scenario: Mapping, *, period_fs: int = 8_000_000,
                         width: int = 64, report: str | os.PathLike | None = None,
                         waves: str | os.PathLike | None = None) -> ModelScoreboard:
    """Drive a unit on ``tidesim_calendar`` (the calendar alone, or
    ``scenario["unit"]``: a switch, a gather or a scatter unit with its
    datapath inputs, see :func:`calendar_expectations`) and check it against
    :class:`~tidesim.calendars.CalendarUnit` and its datapath's model on
    every cycle.

    Raises:
        ScoreboardMismatch: at the first differing cycle.
    """
    from ..rtl import pack_ports

    E = len(scenario["rst"])
    edges = period_fs * np.arange(1, E + 1, dtype=np.int64)
    expect = calendar_expectations(scenario, width=width)
    sb = ModelScoreboard({"clk": expect}, {"clk": edges})
    drive = {dut.rst: scenario["rst"], dut.wr_en: scenario["wr_en"],
             dut.wr_addr: scenario["wr_addr"], dut.wr_config: scenario["wr_config"],
             dut.wr_repeat: scenario["wr_repeat"], dut.swap_req: scenario["swap_req"],
             dut.swap_depth: scenario["swap_depth"]}
    unit = scenario.get("unit", "calendar")
    if unit in ("switch", "scatter"):
        drive[dut.in_frames] = pack_ports(np.asarray(scenario["in_words"], dtype=np.uint64),
                                          width, signed=False)
    if unit == "gather":
        for name in ("mem_wr_en", "mem_wr_addr", "mem_wr_data"):
            drive[getattr(dut, name)] = scenario[name]
    if unit == "scatter":
        drive[dut.mem_rd_addr] = scenario["mem_rd_addr"]
    sample = {name: getattr(dut, name) for name in expect}
    clock = EdgeClock(dut.clk, edges, name="clk", drive=drive, sample=sample, scoreboard=sb)
    return await _checked(sb, (clock,), report, waves)


async def check_ddc(dut, scenario: Mapping, *, report=None, waves=None) -> ModelScoreboard:
    """Drive ``tidesim_ddc`` (``wr_fs rd_fs wr_en rd_en``, reset on each
    domain's first ``reset_edges`` edges) and check ``ddc`` after every read
    edge against :func:`~tidesim.rtl.ddc_model`.

    Raises:
        ScoreboardMismatch: at the first differing edge.
    """
    from ..rtl import ddc_model

    wr_fs, rd_fs = np.asarray(scenario["wr_fs"]), np.asarray(scenario["rd_fs"])
    r = int(scenario.get("reset_edges", 2))
    want = ddc_model(wr_fs, rd_fs, wr_en=scenario["wr_en"], rd_en=scenario["rd_en"],
                     reset_edges=r, sync=int(scenario.get("sync", 2)),
                     width=int(scenario.get("width", 32)))
    sb = ModelScoreboard({"rd_clk": {"ddc": Expect(want, signed=True)}},
                         {"rd_clk": rd_fs})
    wr = EdgeClock(dut.wr_clk, wr_fs, name="wr_clk",
                   drive={dut.wr_rst: np.arange(len(wr_fs)) < r, dut.wr_en: scenario["wr_en"]})
    rd = EdgeClock(dut.rd_clk, rd_fs, name="rd_clk", scoreboard=sb,
                   drive={dut.rd_rst: np.arange(len(rd_fs)) < r, dut.rd_en: scenario["rd_en"]},
                   sample={"ddc": dut.ddc})
    return await _checked(sb, (wr, rd), report, waves)


async def check_pump(dut, scenario: Mapping, *, period_fs: int = 8_000_000, report=None,
                     waves=None) -> ModelScoreboard:
    """Drive ``tidesim_pump`` with ``counts`` (int ``[E, N]``, packed ``cw``
    bits a link) after ``reset_edges`` reset edges, and check ``finc fdec
    update position`` after every edge against :class:`~tidesim.rtl.PumpModel`
    (``scenario["model"]``).

    Raises:
        ScoreboardMismatch: at the first differing edge.
    """
    from ..rtl import pack_ports

    counts = np.asarray(scenario["counts"], dtype=np.int64)
    r = int(scenario.get("reset_edges", 2))
    want = scenario["model"].run(counts, reset_edges=r)
    E = len(counts)
    edges = period_fs * np.arange(1, E + 1, dtype=np.int64)
    sb = ModelScoreboard({"clk": {
        "finc": Expect(want["finc"].astype(np.int64)),
        "fdec": Expect(want["fdec"].astype(np.int64)),
        "update": Expect(want["update"].astype(np.int64)),
        "position": Expect(want["position"], signed=True)}}, {"clk": edges})
    clock = EdgeClock(dut.clk, edges, name="clk", scoreboard=sb,
                      drive={dut.rst: np.arange(E) < r,
                             dut.counts: pack_ports(counts, int(scenario.get("cw", 16)))},
                      sample={"finc": dut.finc, "fdec": dut.fdec, "update": dut.update,
                              "position": dut.position})
    return await _checked(sb, (clock,), report, waves)


def _report(sb: ModelScoreboard, report, waves) -> None:
    report = report or os.environ.get(REPORT_ENV)
    files = {}
    if sb.mismatch is not None and waves is not None:
        files = {k: str(v) for k, v in sb.write_waves(Path(waves)).items()}
    if report:
        m = sb.mismatch
        Path(report).write_text(json.dumps({
            "cycles": sb.taken, "wall_s": time.perf_counter() - sb.started,
            "mismatch": None if m is None else {
                "clock": m.clock, "cycle": m.cycle, "time_fs": m.time_fs, "signal": m.signal,
                "rtl": m.got, "model": m.want, "message": str(m)},
            "waves": files}))


def _vcd_runner(runner):
    """The Icarus runner, with vvp writing VCD (the runner asks for FST or nothing)."""

    class IcarusVCD(type(runner)):
        def _test_command(self):
            return [["-vcd" if a == "-none" else a for a in cmd]
                    for cmd in super()._test_command()]

    return IcarusVCD()


def simulate(*, sources: Sequence[os.PathLike | str], toplevel: str, test_module: str,
             test_dir: os.PathLike | str, build_dir: os.PathLike | str,
             parameters: Mapping[str, int] | None = None, env: Mapping[str, str] | None = None,
             vcd: os.PathLike | str | None = None) -> dict:
    """Build ``sources`` with Icarus Verilog and run cocotb ``test_module`` on ``toplevel``.

    Args:
        test_dir: the folder of ``test_module`` (it runs there).
        vcd: where the RTL's every signal goes (a VCD), if given.

    Returns:
        The test's JSON report (:data:`REPORT_ENV`), with ``passed``: whether
        cocotb's results say every test passed.
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    srcs = [Path(s).resolve() for s in sources]
    build_args: list[str] = []
    if vcd is not None:
        dump = build_dir / "tidesim_vcd_dump.v"
        dump.write_text(
            "module tidesim_vcd_dump;\n"
            "  reg [8*1024-1:0] path;\n"
            "  initial if ($value$plusargs(\"vcd=%s\", path)) begin\n"
            "    $dumpfile(path);\n"
            f"    $dumpvars(0, {toplevel});\n"
            "  end\n"
            "endmodule\n")
        srcs.append(dump)
        build_args += ["-s", "tidesim_vcd_dump"]
    runner = get_runner("icarus")
    if vcd is not None:
        runner = _vcd_runner(runner)
    # `include files are looked for beside the sources
    runner.build(sources=srcs, hdl_toplevel=toplevel, parameters=dict(parameters or {}),
                 includes=sorted({str(s.parent) for s in srcs}),
                 build_dir=build_dir, build_args=build_args,
                 timescale=TIMESCALE, always=True)
    report = build_dir / f"{test_module}.report.json"
    report.unlink(missing_ok=True)
    extra_env = {REPORT_ENV: str(report), **(env or {})}
    # asserts are rewritten in the test module only (all of *.py costs 5x)
    extra_env.setdefault("COCOTB_REWRITE_ASSERTION_FILES", f"{test_module}.py")
    results = build_dir / f"{test_module}.results.xml"
    results.unlink(missing_ok=True)
    # under pytest the runner exits on a failed test: the report says more
    with contextlib.suppress(SystemExit):
        runner.test(hdl_toplevel=toplevel, test_module=test_module,
                    test_dir=Path(test_dir).resolve(), build_dir=build_dir,
                    extra_env=extra_env, timescale=TIMESCALE, results_xml=str(results),
                    plusargs=[f"+vcd={Path(vcd).resolve()}"] if vcd is not None else [])
    n_tests, n_failed = get_results(results) if results.exists() else (0, 0)
    out = json.loads(report.read_text()) if report.exists() else {}
    out["passed"] = n_failed == 0 and n_tests > 0
    return out
