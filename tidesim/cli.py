"""The ``tidesim`` command line.

Usage::

    tidesim run [CONFIG.toml] [--preset NAME] [--until SECONDS]
                [--fidelity event|cycle] [--record full|summary|N] [--seed N] [--json]
                [--vcd OUT.vcd [--decimate N]] [--plot OUT.png|OUT.svg] [--from S] [--to S]
                [--progress | --no-progress] [--backend NAME] [--scheduler ADDR]
    tidesim sweep SPEC.toml --out DIR [--workers N | --scheduler ADDR | --dask-local N]
                  [--chunk RUNS]
    tidesim plot DIR [--x KEY] [--y METRIC] [--by KEY] [--out FILE]
    tidesim app NAME|FILE.py [CONFIG.toml] [--preset P] [--metacycles N] [--seed S]
                [--placement P] [--calendar-depth N] [--backend NAME] [--scheduler ADDR] [--vcd F]
                [--json] | --list
    tidesim packetnet table [--json]
    tidesim packetnet allreduce --nodes N --latency S --rate B/S --size N
                                --algorithm naive|tree|stream|FILE.py:CLASS [--json]

With neither a config file nor ``--preset``, ``run`` simulates the ``hitl8``
preset. ``sweep`` runs a study (``tidesim.studies.sweep``) into one results
table, resuming when ``DIR`` already holds finished runs; ``plot`` draws one
metric of that table against a swept key (``tidesim.studies.plots``). Flags
override the config's values. Bad input is reported as one line,
``tidesim: error: <key>: <expected>, got <value>``, with exit status 2, before
anything is simulated: the output paths of ``run`` included (each must be
writable and differ from the config file and from the other outputs).

``run`` advances the simulation in slices of about 0.3 s of wall time
(:mod:`tidesim._slices`): between two slices it draws a progress bar on
stderr (when stderr is a terminal and the run has taken a second), and a
Ctrl-C stops the run there: the summary of the run so far is printed (and
the waveform and plot of it written, when asked for), then one
``tidesim: interrupted at t = ... s of ... s`` line on stderr, exit status
130. A second Ctrl-C stops at once, without a summary.

Each subcommand is a ``_cmd_*`` function registered in :func:`build_parser`;
heavy modules (the Numba kernels) are imported inside those functions, so
``tidesim --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import numbers
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._paths import check_output_file
from ._slices import advance_in_slices
from .errors import ConfigError, TidesimError, compact_repr

__all__ = ["EXIT_INTERRUPTED", "EXIT_NODE_FAILED", "EXIT_USAGE", "build_parser", "format_summary",
           "main"]

PROG = "tidesim"
EXIT_USAGE = 2
"""Exit status for bad input (argparse's own convention)."""
EXIT_NODE_FAILED = 3
"""Exit status when a node of a distributed backend died or a link went silent."""
EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT)."""
DEFAULT_PRESET = "hitl8"
TEXT_NODES = 32
"""Largest system whose text summary lists every node and the UGN matrix."""
TEXT_FAULTS = 20
"""Faults the text summary lists one by one."""
PROGRESS_AFTER_S = 1.0
"""Wall time after which a run draws its progress bar (by default): a shorter
run shows nothing."""
DECIMATE_MAX = 10**9
"""Largest ``--decimate``: far beyond any run's sample count (a 60 s ``hitl8``
run has 300 000 samples per node), so it never limits a real use."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one ``tidesim: error: ...`` line."""

    def error(self, message: str) -> NoReturn:
        """Print ``tidesim: error: <message>`` to stderr and exit with status 2."""
        self.exit(EXIT_USAGE, f"{PROG}: error: {_one_line(message)}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per subcommand.

    Returns:
        A parser whose parsed namespace carries the subcommand function in ``func``.
    """
    parser = _Parser(
        prog=PROG,
        description="Cycle-accurate simulator of bittide distributed systems.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="simulate one configuration and print its summary",
        description=(
            "Simulate one configuration. With neither CONFIG nor --preset, runs the "
            f"{DEFAULT_PRESET!r} preset. Flags override the config's values."
        ),
    )
    run.add_argument("config", nargs="?", metavar="CONFIG.toml", help="TOML config file")
    run.add_argument("--preset", metavar="NAME", help="base preset (overrides the file's)")
    run.add_argument(
        "--until", type=float, metavar="SECONDS", help="simulated time (sets run.until_s)"
    )
    run.add_argument("--fidelity", choices=("event", "cycle"), help="sets run.fidelity")
    run.add_argument("--record", metavar="full|summary|N",
                     help="what the run keeps (sets run.record): every sample, the summary "
                          "only, or every N-th sample (default: the summary, or full "
                          "with --vcd or --plot)")
    run.add_argument("--seed", type=int, metavar="N", help="sets seed")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument("--vcd", metavar="OUT.vcd", help="write the run as a VCD (+ .gtkw beside it)")
    run.add_argument("--backend", default="inprocess", metavar="NAME",
                     help="the hardware the run is on (default inprocess; docs/backends.md)")
    run.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                     help="with --backend dask: a running cluster (default a local one)")
    run.add_argument("--plot", metavar="OUT.png",
                     help="draw the run: node frequencies, link counts, stable periods "
                          "(.png or .svg)")
    run.add_argument("--from", dest="vcd_from", type=float, metavar="SECONDS",
                     help="start of the VCD and plot window (needs --vcd or --plot)")
    run.add_argument("--to", dest="vcd_to", type=float, metavar="SECONDS",
                     help="end of the VCD and plot window (needs --vcd or --plot)")
    run.add_argument("--decimate", metavar="N",
                     help="keep every N-th control sample in the VCD, an integer from 1 "
                          f"(the default: every sample) to {DECIMATE_MAX:.0e}; needs --vcd")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction,
                     help="draw a progress bar of the simulated time on stderr (default: when "
                          "stderr is a terminal, once the run has taken a second)")
    run.set_defaults(func=_cmd_run)

    sweep = sub.add_parser(
        "sweep",
        help="run a parameter study into one results table (resumable)",
        description=(
            "Run every run of a sweep spec (a [base] config, [grid] and [random] keys, "
            "samples, repeats, seed) that DIR does not hold yet; rows go to "
            "DIR/results.jsonl as runs finish, the table to DIR/results.csv at the end. "
            "Run it again to resume an interrupted sweep."
        ),
    )
    sweep.add_argument("spec", metavar="SPEC.toml", help="TOML sweep spec")
    sweep.add_argument("--out", required=True, metavar="DIR", help="results directory")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="local worker processes (default: one per CPU)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="run on the Dask cluster of this scheduler")
    where.add_argument("--dask-local", type=int, metavar="N",
                       help="start a local Dask cluster of N worker processes")
    sweep.add_argument("--chunk", type=int, metavar="RUNS",
                       help="runs per worker task (default: automatic)")
    sweep.set_defaults(func=_cmd_sweep)

    plot = sub.add_parser(
        "plot",
        help="plot one metric of a sweep's results against a swept key",
        description=(
            "Draw the metric Y of the sweep in DIR against the column X: the mean over "
            "seeds and repeats with its min-max band, one line per value of BY. Runs "
            "without a value (never settled) are marked and counted."
        ),
    )
    plot.add_argument("dir", metavar="DIR", help="a sweep's output directory")
    plot.add_argument("--x", metavar="KEY", help="x column (default: the first swept key)")
    plot.add_argument("--y", metavar="METRIC", default="settle_time_s",
                      help="y column (default: settle_time_s)")
    plot.add_argument("--by", metavar="KEY", help="one line per value of this column")
    plot.add_argument("--out", metavar="FILE",
                      help="the figure, .png or .svg (default: DIR/plot.png)")
    plot.set_defaults(func=_cmd_plot)

    app = sub.add_parser(
        "app",
        help="run an application in logical time on a synchronised system",
        description=(
            "Bring the physical system (CONFIG.toml or --preset, as for `run`; default "
            f"{DEFAULT_PRESET!r}) to logical synchrony, take its UGNs, schedule the app on "
            "them, run N metacycles of calendars in logical time while the physical run "
            "proves no elastic buffer faults, and compare the outputs with the app's "
            "functional execution. NAME is a built-in app (--list), FILE.py a file "
            "defining make_app(n_nodes) or app."
        ),
    )
    app.add_argument("app", nargs="?", metavar="NAME|FILE.py", help="the application")
    app.add_argument("config", nargs="?", metavar="CONFIG.toml", help="TOML config file")
    app.add_argument("--list", action="store_true", help="list the built-in apps")
    app.add_argument("--preset", metavar="NAME", help="base preset (overrides the file's)")
    app.add_argument("--metacycles", type=int, default=10, metavar="N",
                     help="SDF iterations to run, one per metacycle (default 10)")
    app.add_argument("--seed", type=int, metavar="N", help="sets seed (physical system)")
    app.add_argument("--placement", default="greedy",
                     choices=("greedy", "one-to-one", "optimal"),
                     help="how actions are placed on nodes (default greedy)")
    app.add_argument("--fidelity", choices=("event", "cycle"),
                     help="of the physical run (default event)")
    app.add_argument("--flip-probability", type=float, default=0.0, metavar="P",
                     help="inject a bit flip into each frame with this probability")
    app.add_argument("--crash", metavar="NODE@METACYCLE",
                     help="crash a node at a metacycle, e.g. 3@5")
    app.add_argument("--calendar-depth", type=int, metavar="N",
                     help="entries one calendar holds (sets hardware.calendar_depth; "
                          "default 1024)")
    app.add_argument("--backend", default="inprocess", metavar="NAME",
                     help="the hardware the physical run is on (default inprocess)")
    app.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                     help="with --backend dask: a running cluster (default a local one)")
    app.add_argument("--vcd", metavar="FILE",
                     help="write the application's waveform (calendar pointers, metacycle "
                          "counters, frames on every link, firings) and FILE.gtkw")
    app.add_argument("--json", action="store_true", help="print one JSON object")
    app.set_defaults(func=_cmd_app, until=None, record=None, plot=None)

    pnet = sub.add_parser(
        "packetnet",
        help="the switched packet-network baseline: allreduce in virtual time",
        description="Allreduce on a switched packet network (fluid-flow switch, one latency), "
                    "in virtual time: the baseline bittide is compared to.",
    )
    pnet_sub = pnet.add_subparsers(dest="packetnet_command", metavar="WHAT", required=True)
    ptable = pnet_sub.add_parser(
        "table", help="print the reference table: 45 completion times (s)",
        description="Print the reference's table: naive, tree and stream allreduce for each "
                    "(nodes, latency, NIC rate, size), completion times in virtual seconds.")
    ptable.add_argument("--json", action="store_true", help="print one JSON list of rows")
    ptable.set_defaults(func=_cmd_packetnet_table)
    pall = pnet_sub.add_parser(
        "allreduce", help="one allreduce: its completion time (virtual s)",
        description="One allreduce on the packet network; prints its completion time.")
    pall.add_argument("--nodes", required=True, metavar="N", help="nodes (an integer >= 1)")
    pall.add_argument("--latency", required=True, metavar="S", help="latency (s, >= 0)")
    pall.add_argument("--rate", required=True, metavar="B/S",
                      help="every NIC's rate (bytes/s, > 0)")
    pall.add_argument("--size", required=True, metavar="N",
                      help="vector length in float64 elements (an integer >= 1)")
    pall.add_argument("--algorithm", required=True, metavar="A",
                      help="naive, tree, stream, or FILE.py:CLASS (an Atom subclass)")
    pall.add_argument("--tie-seed", metavar="N",
                      help="shuffle events due at one instant with this seed")
    pall.add_argument("--json", action="store_true", help="print one JSON object")
    pall.set_defaults(func=_cmd_packetnet_allreduce)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: the arguments after the program name (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 on bad input, 130 after Ctrl-C,
        1 when the simulation itself fails, 3 when a node of a distributed
        backend died or a link went silent.
    """
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (``tidesim run | head``): not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except TidesimError as exc:
        _error(str(exc))
        # a TidesimError that is also a ValueError is bad input (an app's graph)
        return EXIT_USAGE if isinstance(exc, ValueError) else 1


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (links and ``..`` resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return a.resolve() == b.resolve()


def _check_outputs(args: argparse.Namespace, command: str = "run") -> None:
    """Check the output files of ``run`` (or ``app``) before anything is simulated.

    Every output (the VCD, the ``.gtkw`` written beside it, the plot) must be
    writable, and must be neither the config file nor another output.

    Raises:
        ConfigError: on ``run.vcd`` or ``run.plot`` (``app.vcd``).
    """
    from .backends.vcd import gtkw_path, require_pyvcd

    # (field, path as given, file written, its name in messages, what it is to `given`)
    outputs: list[tuple[str, str, Path, str, str]] = []
    if args.vcd is not None:
        require_pyvcd()
        vcd, gtkw = Path(args.vcd), gtkw_path(args.vcd)
        outputs += [(f"{command}.vcd", args.vcd, vcd, f"the VCD file {vcd}", ""),
                    (f"{command}.vcd", args.vcd, gtkw, f"the GTKWave save file {gtkw}",
                     f"its GTKWave save file {gtkw}")]
    if args.plot is not None:
        from .studies.plots import check_plot_path

        plot = check_plot_path(args.plot)
        outputs.append(("run.plot", args.plot, plot, f"the plot file {plot}", ""))
    taken: list[tuple[Path, str]] = []
    if args.config is not None:
        taken.append((Path(args.config), f"the config file {args.config}"))
    for field, given, path, name, what in outputs:
        for other, other_name in taken:
            if _same_file(path, other):
                verb = f"must not write {what} over" if what else "must not overwrite"
                raise ConfigError(field, given, f"{verb} {other_name}")
        check_output_file(field, path, given=given, what=what)
        taken.append((path, name))


def _window_flags(args: argparse.Namespace, until_s: float | None) -> None:
    """Check ``--from``/``--to`` against each other and the run's length.

    Args:
        args: the parsed flags.
        until_s: the run's length in seconds (``None`` when it is given in cycles).

    Raises:
        ConfigError: on ``--from`` or ``--to``.
    """
    for flag, value in (("--from", args.vcd_from), ("--to", args.vcd_to)):
        if value is None:
            continue
        if args.vcd is None and args.plot is None:
            raise ConfigError(flag, value, "needs --vcd or --plot")
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(flag, value, "must be a finite time in seconds >= 0")
    if args.vcd_from is not None and until_s is not None and args.vcd_from >= until_s:
        raise ConfigError("--from", args.vcd_from,
                          f"must be before the end of the run ({until_s:g} s)")
    if None not in (args.vcd_from, args.vcd_to) and args.vcd_to <= args.vcd_from:
        raise ConfigError("--to", args.vcd_to, f"must be after --from ({args.vcd_from:g} s)")


def _decimate(args: argparse.Namespace) -> int:
    """The ``--decimate`` factor: an integer in [1, DECIMATE_MAX], only with ``--vcd``.

    ``1e3`` is read as 1000; a fraction, a word, or a number out of range is refused.
    """
    text = args.decimate
    if text is None:
        return 1
    expected = f"must be an integer from 1 to {DECIMATE_MAX:.0e}"
    value = _integer_arg("--decimate", text, expected)
    if not 1 <= value <= DECIMATE_MAX:
        raise ConfigError("--decimate", value, expected)
    if args.vcd is None:
        raise ConfigError("--decimate", value, "needs --vcd")
    return value


def _error(message: str) -> None:
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)


# ----------------------------------------------------------------------------- run


def _cmd_run(args: argparse.Namespace) -> int:
    """``tidesim run``: validate, build, simulate, report."""
    from .config import build_system

    decimate = _decimate(args)
    run_cfg = _run_config(args)
    _window_flags(args, run_cfg.until_s)
    _check_outputs(args)
    record = _record(run_cfg.record, args)
    system = build_system(run_cfg)
    until = system.check_until(run_cfg.until_s, run_cfg.until_cycles)
    sim = _backend(args).start(system, fidelity=run_cfg.fidelity, record=record,
                               record_controller_state=args.vcd is not None)
    from .backends.hardware import NodeFailure

    start = time.perf_counter()
    failure = None
    try:
        with _stop_on_ctrl_c() as pressed, _RunProgress(until, args.progress) as bar:
            advance_in_slices(sim, until, on_slice=bar.show, stop=pressed)
        trace = sim.trace(requested_until_s=until)
    except NodeFailure as exc:
        # the run up to the last time every node reached is kept and reported
        failure, trace = exc, exc.trace
    finally:
        sim.stop()
    wall_s = time.perf_counter() - start
    interrupted = failure is None and pressed() and sim.time_s < until

    summary = dict(trace.summary())
    summary.update(preset=run_cfg.preset, fidelity=run_cfg.fidelity, wall_s=wall_s)
    if failure is not None:
        summary.update(failed=str(failure), until_s=until)
    if interrupted:
        summary.update(interrupted=True, until_s=until)
    # an interrupted run may not have reached the window of the waveform and plot
    window = not interrupted or args.vcd_from is None or args.vcd_from < trace.until_s
    if args.vcd is not None and window:
        from .backends.vcd import gtkw_path, write_vcd

        vcd = write_vcd(trace, args.vcd, t_from_s=args.vcd_from, t_to_s=args.vcd_to,
                        decimate=decimate)
        summary.update(vcd=str(vcd), gtkw=str(gtkw_path(vcd)))
    if args.plot is not None and window:
        from .studies.plots import plot_run

        summary["plot"] = str(plot_run(trace, args.plot, from_s=args.vcd_from,
                                       to_s=args.vcd_to))
    if args.json:
        print(json.dumps(summary, default=_json_default))
    else:
        print(format_summary(summary, name=run_cfg.name))
        if "vcd" in summary:
            print(f"\nwaveform: {summary['vcd']} (GTKWave: gtkwave {summary['gtkw']})")
        if "plot" in summary:
            print(f"\nplot: {summary['plot']}")
        if not window:
            print(f"\nno waveform or plot: the run stopped before --from ({args.vcd_from:g} s)")
    if failure is not None:
        _error(str(failure))
        return EXIT_NODE_FAILED
    if interrupted:
        print(f"{PROG}: interrupted at {_stopped_at(summary)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _backend(args: argparse.Namespace):
    """The backend of ``--backend`` (and ``--scheduler``)."""
    from .backends.hardware import make_backend

    if args.scheduler is None:
        return make_backend(args.backend)
    if args.backend != "dask":
        raise ConfigError("--scheduler", args.scheduler, "needs --backend dask")
    return make_backend("dask", scheduler=args.scheduler)


def _run_config(args: argparse.Namespace):
    """The validated run config of CONFIG.toml / --preset (default: ``hitl8``) and the flags."""
    from .config import load_config, read_toml, validate

    raw = read_toml(args.config) if args.config is not None else {}
    if args.preset is not None:
        raw["preset"] = args.preset
    elif args.config is None:
        raw["preset"] = DEFAULT_PRESET
    cfg = load_config(raw)
    _apply_overrides(cfg, args)
    return validate(cfg)


def _stopped_at(summary: Mapping[str, Any]) -> str:
    """Where an interrupted run stopped: ``t = 12.5 s of 1000 s``."""
    return f"t = {_fmt_s(summary.get('simulated_s'))} of {_fmt_s(summary.get('until_s'))}"


@contextlib.contextmanager
def _stop_on_ctrl_c() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a request to stop between two slices of a run.

    A kernel call cannot be interrupted, and a KeyboardInterrupt raised
    between two Python lines could leave the simulation half-updated; so the
    first SIGINT only sets a flag, which the run reads after each slice. A
    second one raises KeyboardInterrupt as usual (no summary: the way out of
    a slow start, such as the first compilation of the kernels). Outside the
    main thread signals cannot be handled, and a process that ignores SIGINT
    (started with ``nohup``) goes on ignoring it: there nothing changes.

    Yields:
        A function telling whether Ctrl-C was pressed.
    """
    pressed: list[bool] = []
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        yield lambda: False
        return

    def on_sigint(signum: int, frame: object) -> None:
        if pressed:
            raise KeyboardInterrupt
        pressed.append(True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: bool(pressed)
    finally:
        signal.signal(signal.SIGINT, previous)


class _RunProgress:
    """The progress bar of ``tidesim run``: simulated seconds done of ``total``.

    ``enabled`` is ``--progress``: ``True`` draws the bar from the start,
    ``False`` never; ``None`` draws it on a terminal once the run has taken
    :data:`PROGRESS_AFTER_S`, so that short runs print nothing.
    """

    def __init__(self, total: float, enabled: bool | None) -> None:
        self._total = total
        self._enabled = sys.stderr.isatty() if enabled is None else enabled
        self._after_s = PROGRESS_AFTER_S if enabled is None else 0.0
        self._start = time.perf_counter()
        self._bar = None

    def show(self, t: float) -> None:
        """The run has reached ``t`` (s)."""
        if self._bar is None:
            if not self._enabled or time.perf_counter() - self._start < self._after_s:
                return
            from ._progress import progress_bar

            # seconds in four digits, padded so that the bar keeps its width
            width = len(f"{self._total:.4g}")
            self._bar = progress_bar(
                self._total, unit=" s", desc="simulated", enabled=True,
                bar_format=f"{{desc}}: {{percentage:3.0f}}%|{{bar}}| {{n:>{width}.4g}}/"
                           "{total:.4g} s [{elapsed}<{remaining}, {rate_noinv_fmt}]")
        self._bar.update(t - self._bar.done)

    def __enter__(self) -> _RunProgress:
        if self._after_s == 0.0:
            self.show(0.0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _record(record, args: argparse.Namespace):
    """What the run keeps: no more than its outputs need (a waveform or a plot
    needs every sample and the segment history; the summary needs neither)."""
    needs = "--vcd" if args.vcd is not None else "--plot" if args.plot is not None else None
    if record is None:
        return "full" if needs else "summary"
    if needs and record not in ("full", 1):
        raise ConfigError(needs, record, "needs run.record = 'full'")
    return record


def _cmd_sweep(args: argparse.Namespace) -> int:
    """``tidesim sweep``: check the whole spec, then run what is not done yet."""
    from .studies.sweep import load_sweep, run_sweep

    for flag, value in (("--workers", args.workers), ("--dask-local", args.dask_local),
                        ("--chunk", args.chunk)):
        if value is not None and value < 1:
            raise ConfigError(flag, value, "must be an integer >= 1")
    sweep = load_sweep(args.spec)
    sweep.check()  # every run's config, before any worker starts
    if args.scheduler is not None:
        executor, workers, options = "dask", None, {"scheduler": args.scheduler}
    elif args.dask_local is not None:
        executor, workers, options = "dask", args.dask_local, {}
    else:
        executor, workers, options = "processes", args.workers, {}
    result = run_sweep(sweep, args.out, executor=executor, workers=workers,
                       chunk_size=args.chunk, executor_options=options)
    print(f"{result.total} runs: {result.ran} run now, {result.skipped} already done, "
          f"{result.errors} with errors, in {result.wall_s:.3g} s; table: {result.csv_path}")
    return 0


def _cmd_app(args: argparse.Namespace) -> int:
    """``tidesim app``: synchronise, schedule, run in logical time, compare."""
    from .config import build_system
    from .waves.apps import app_names, describe, load_app

    if args.list:
        for name in app_names():
            print(f"{name:16s} {describe(name)}")
        return 0
    if args.app is None:
        raise ConfigError("app", None, "must name a built-in app (tidesim app --list) or "
                                       "a FILE.py")
    run_cfg = _run_config(args)
    _check_outputs(args, "app")
    crash = None
    if args.crash is not None:
        from .calendars import Crash

        node, _, meta = args.crash.partition("@")
        if not (node.isdigit() and meta.isdigit()):
            raise ConfigError("--crash", args.crash, "must be NODE@METACYCLE, e.g. 3@5")
        crash = Crash(int(node), int(meta))
    hardware = None
    if args.calendar_depth is not None:
        from .calendars import Hardware

        hardware = Hardware(calendar_depth=args.calendar_depth)
    backend = _backend(args)  # an unknown name is refused before anything runs
    system = build_system(run_cfg)
    app = load_app(args.app, system.n_nodes)
    from .calendars import run_app

    result = run_app(app, system, metacycles=args.metacycles, placement=args.placement,
                     fidelity=run_cfg.fidelity, sync_until_s=run_cfg.until_s,
                     flip_probability=args.flip_probability, seed=run_cfg.seed, crash=crash,
                     hardware=hardware, backend=backend)
    summary = result.summary()
    if args.vcd is not None:
        from .backends.vcd import gtkw_path, write_app_vcd

        vcd = write_app_vcd(result.schedule, result.logical, args.vcd,
                            cycle_ps=max(2, round(1e12 / system.f_nom_hz)))
        summary["vcd"], summary["gtkw"] = str(vcd), str(gtkw_path(vcd))
    if args.json:
        print(json.dumps(summary, default=_json_default))
    else:
        print(format_app_summary(summary, preset=run_cfg.preset))
    return 0


def format_app_summary(summary: Mapping[str, Any], *, preset: str | None = None) -> str:
    """The text summary of ``tidesim app``."""
    on = f" on {preset}" if preset else ""
    lines = [
        f"app {summary['app']}{on}: {summary['nodes']} nodes, {summary['links']} links "
        f"({summary['fidelity']} fidelity)",
        f"  logical synchrony at  {_fmt_s(summary['sync_s'])}",
        f"  metacycle             {summary['metacycle_cycles']} cycles",
        f"  ran                   {summary['iterations']} iterations, {summary['cycles']} "
        f"cycles",
        f"  matches functional    {'yes' if summary['matches_functional'] else 'NO'}",
        f"  output digest         {summary['output_digest'][:16]}",
        f"  link utilisation      {summary['link_utilisation']:.1%}",
        f"  faults                {len(summary['faults']) or 'none'}",
    ]
    lines += [f"    {f}" for f in summary["faults"][:TEXT_FAULTS]]
    if summary.get("first_corrupted"):
        lines.append(f"  first corrupted       {summary['first_corrupted']}")
    rate = summary.get("node_cycles_per_s")
    lines.append(f"  wall time             {summary['wall_s']:.3g} s"
                 + (f" ({rate:.3g} node-cycles/s)" if rate else ""))
    if "vcd" in summary:
        lines.append(f"\nwaveform: {summary['vcd']} (GTKWave: gtkwave {summary['gtkw']})")
    return "\n".join(lines)


def _cmd_packetnet_table(args: argparse.Namespace) -> int:
    """``tidesim packetnet table``: the reference table, recomputed."""
    from .packetnet import format_table, table

    rows = table()
    print(json.dumps(rows) if args.json else format_table(rows))
    return 0


def _number_arg(flag: str, text: str, *, lo: float, lo_open: bool = False) -> float:
    """A command-line number, or a one-line error naming the flag."""
    from ._checks import number

    try:
        value = float(text)
    except ValueError:
        raise ConfigError(flag, text, "must be a number") from None
    return number(flag, value, lo=lo, lo_open=lo_open)


def _integer_arg(flag: str, text: str, expected: str) -> int:
    """A command-line integer (``1e3`` is read as 1000), or a one-line error
    naming the flag: a fraction or a word is refused with ``expected``."""
    try:
        return int(text)
    except ValueError:
        try:
            x = float(text)
        except ValueError:
            x = math.nan
        if not (math.isfinite(x) and x.is_integer()):
            raise ConfigError(flag, text, expected) from None
        return int(x)


def _count_arg(flag: str, text: str, *, lo: int) -> int:
    """A command-line integer ``>= lo``."""
    expected = f"must be an integer >= {lo}"
    value = _integer_arg(flag, text, expected)
    if value < lo:
        raise ConfigError(flag, value, expected)
    return value


def _cmd_packetnet_allreduce(args: argparse.Namespace) -> int:
    """``tidesim packetnet allreduce``: one cell, any configuration."""
    from .packetnet import allreduce, load_algorithm

    nodes = _count_arg("--nodes", args.nodes, lo=1)
    latency = _number_arg("--latency", args.latency, lo=0)
    rate = _number_arg("--rate", args.rate, lo=0, lo_open=True)
    size = _count_arg("--size", args.size, lo=1)
    tie_seed = None if args.tie_seed is None else _count_arg("--tie-seed", args.tie_seed, lo=0)
    cls = load_algorithm(args.algorithm, "--algorithm")
    run = allreduce(cls, nodes, latency, rate, size, tie_seed=tie_seed)
    out = {"algorithm": args.algorithm, "nodes": nodes, "latency_s": latency,
           "rate_bytes_per_s": rate, "size": size, "time_s": run.time_s,
           "messages": run.messages, "bytes": run.bytes, "wall_s": run.wall_s}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{args.algorithm} allreduce of {size} float64 on {nodes} nodes "
              f"(latency {latency:g} s, {rate:g} B/s): {run.time_s:f} s virtual, "
              f"{run.messages} messages, {run.wall_s:.3g} s wall")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    """``tidesim plot``: one metric of a sweep directory against a swept key."""
    from .studies.plots import check_plot_path, plot_sweep

    out = check_plot_path(args.out) if args.out is not None else Path(args.dir) / "plot.png"
    x = args.x if args.x is not None else _first_swept_key(Path(args.dir))
    print(f"plot: {plot_sweep(args.dir, out, x=x, y=args.y, by=args.by)}")
    return 0


def _first_swept_key(directory: Path) -> str:
    """The first key of the ``[grid]`` (else of ``[random]``) of the sweep in ``directory``."""
    from .studies.sweep import SPEC_JSON

    spec_path = directory / SPEC_JSON
    if not directory.is_dir():
        raise ConfigError("plot.results", str(directory), "must be a sweep output directory")
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ConfigError("--x", None, f"is required ({spec_path} is missing or unreadable)") \
            from None
    if not isinstance(spec, dict):
        raise ConfigError("--x", None, f"is required ({spec_path} is not a sweep spec)")
    keys = [*(spec.get("grid") or {}), *(spec.get("random") or {})]
    if not keys:
        raise ConfigError("--x", None, f"is required ({spec_path} sweeps no key)")
    return str(keys[0])


def _apply_overrides(cfg: dict, args: argparse.Namespace) -> None:
    """Write the command-line flags into the merged config (validated afterwards)."""
    if args.seed is not None:
        cfg["seed"] = args.seed
    if args.until is None and args.fidelity is None and getattr(args, "record", None) is None:
        return
    run = cfg.setdefault("run", {})
    if not isinstance(run, dict):
        return  # validate() reports "run: must be a table"
    if args.until is not None:
        run["until_s"] = args.until
        run.pop("until_cycles", None)
    if args.fidelity is not None:
        run["fidelity"] = args.fidelity
    if getattr(args, "record", None) is not None:
        text = args.record
        run["record"] = int(text) if text.isdigit() else text


def _json_default(value: Any) -> Any:
    """JSON encoding of numpy scalars and arrays."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# -------------------------------------------------------------------------- report


def _fmt_s(seconds: float | None, digits: int = 6) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    return f"{seconds:.{digits}g} s"


def _fmt_ppm(value: float) -> str:
    """An offset in ppm: six decimals, or six digits with an exponent when huge."""
    return f"{value:+.6f}" if abs(value) < 1e9 else f"{value:+.6g}"


def _fmt_count(value: Any) -> str:
    """A count in frames: exact, or six digits with an exponent beyond 64 bits."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return compact_repr(int(value))
    return str(value)


def format_summary(summary: Mapping[str, Any], *, name: str | None = None) -> str:
    """Render a run summary (``Trace.summary()`` plus ``preset``/``wall_s``) as text.

    Args:
        summary: the summary dict.
        name: the run name shown in the header.

    Returns:
        A multi-line report: headline figures, per-node final offsets (up to
        :data:`TEXT_NODES` nodes), the UGN matrix (``.`` where there is no link,
        or its buffer is not armed both ways; for larger systems only the
        range of λ), the faults (the first :data:`TEXT_FAULTS`) and warnings.
    """
    preset = summary.get("preset")
    settle = summary.get("settle_time_s")
    converged = "yes" if summary.get("converged") else "no"
    settle_text = _fmt_s(settle) if settle is not None else "not within the run"
    rows = [
        ("name", name or preset or "custom"),
        ("preset", preset or "none"),
        ("topology", summary.get("topology", "-")),
        ("nodes", summary.get("nodes", "-")),
        ("links", summary.get("links", "-")),
        ("fidelity", summary.get("fidelity", "-")),
        ("simulated time", _fmt_s(summary.get("simulated_s"))),
        *([("interrupted", f"at {_stopped_at(summary)} (Ctrl-C)")]
          if summary.get("interrupted") else []),
        ("wall time", _fmt_s(summary.get("wall_s"), 3)),
        ("converged", converged),
        ("settle time", settle_text),
        ("final spread", f"{summary.get('final_spread_ppb', float('nan')):.6g} ppb"),
        ("largest |count|", f"{_fmt_count(summary.get('max_abs_count', '-'))} frames"),
        ("energy", f"{summary.get('energy', float('nan')):.6g} s"),
    ]
    if "common_offset_ppm" in summary:
        rows.insert(-2, ("common offset", f"{_fmt_ppm(float(summary['common_offset_ppm']))} ppm"))
    if summary.get("faults_after_settle"):
        rows.append(("faults after settling", f"{summary['faults_after_settle']} frames"))
    if summary.get("stopped_early"):
        rows.append(("stopped early", "yes (see faults)"))
    lines = [f"{label:<16} {value}" for label, value in rows]

    offsets = list(summary.get("final_offsets_ppm") or [])
    n_nodes = int(summary.get("nodes") or len(offsets))
    if offsets and n_nodes <= TEXT_NODES:
        lines += ["", "final offsets", "  node   offset (ppm)"]
        lines += [f"  {i:>4}   {_fmt_ppm(float(x))}" for i, x in enumerate(offsets)]
    elif offsets:
        lines += ["", f"final offsets: {_fmt_ppm(min(offsets))} to {_fmt_ppm(max(offsets))} ppm "
                      f"over {n_nodes} nodes (--json lists each)"]

    lines += ["", *_ugn_grid(summary.get("ugn") or [], n_nodes)]

    faults = summary.get("faults") or []
    lines.append("")
    if not faults:
        lines.append("no faults")
    else:
        lines.append(f"faults ({len(faults)})")
        for f in faults[:TEXT_FAULTS]:
            lines.append(
                f"  node {f.get('node')} link {f.get('link')}: {f.get('kind')} "
                f"at {_fmt_s(f.get('time_s'))} (cycle {f.get('cycle')})"
            )
        if len(faults) > TEXT_FAULTS:
            lines.append(f"  ... {len(faults) - TEXT_FAULTS} more (--json lists each)")
    for w in summary.get("warnings") or []:
        lines += ["", f"warning: {w}"]
    return "\n".join(lines)


def _ugn_grid(ugn: Sequence[Sequence[Any]], n_nodes: int) -> list[str]:
    """The UGN matrix as text: row = source, column = destination; for more
    than :data:`TEXT_NODES` nodes, how many links report λ and its range."""
    if n_nodes > TEXT_NODES:
        if not ugn:
            return ["UGN λ: no link is armed both ways"]
        lams = [int(x[2]) for x in ugn]
        return [f"UGN λ: {len(lams)} links armed both ways, λ from {min(lams)} to "
                f"{max(lams)} frames (--json lists each)"]
    grid = [["."] * n_nodes for _ in range(n_nodes)]
    for src, dst, lam in ugn:
        if 0 <= int(src) < n_nodes and 0 <= int(dst) < n_nodes:
            grid[int(src)][int(dst)] = str(lam)
    index_width = len(str(n_nodes - 1))
    width = max([index_width, *(len(c) for row in grid for c in row)])
    head = " " * (index_width + 4) + " ".join(f"{j:>{width}}" for j in range(n_nodes))
    title = ("UGN λ (frames; row = source, column = destination; '.' = no link, or not "
             "armed both ways)")
    out = [title, head]
    for i, row in enumerate(grid):
        out.append(f"  {i:>{index_width}}  " + " ".join(f"{c:>{width}}" for c in row))
    return out
