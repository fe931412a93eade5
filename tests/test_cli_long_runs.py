"""Long runs of ``tidesim run``: advanced in slices, with a progress bar and a clean Ctrl-C.

The slices must not change the run (bit for bit); a progress bar is drawn
only on a terminal and only for runs that take a while; Ctrl-C stops a run
between two slices and prints the summary of the part done, with exit
status 130. The Ctrl-C and terminal tests start the real command line in a
subprocess and send it a real SIGINT.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tidesim._slices import advance_in_slices
from tidesim.config import build_system, load_config, validate
from tidesim.testing import assert_same_run

REPO = Path(__file__).resolve().parents[1]
LONG_RUN = ("run", "--preset", "hitl8", "--fidelity", "cycle", "--until", "1000")
"""Hours of wall time: only ever interrupted."""


def _system(preset: str = "hitl-line4"):
    return build_system(validate(load_config({"preset": preset})))


# ----------------------------------------------------------------------- slices


@pytest.mark.parametrize("fidelity, until", [("event", 3.0), ("cycle", 0.004)])
def test_slices_give_the_run_of_one_call(fidelity, until):
    system = _system()
    whole = system.run(until, fidelity=fidelity, record_controller_state=True)
    sim = system.start(fidelity=fidelity, record="full", record_controller_state=True)
    ends = []
    # a tiny target makes many slices of every size the sizing chooses
    assert advance_in_slices(sim, until, target_wall_s=1e-4, on_slice=ends.append)
    assert len(ends) > 10 and ends == sorted(ends) and ends[-1] == until
    assert_same_run(whole, sim.trace(requested_until_s=until))


def test_slices_stop_when_asked():
    system = _system()
    sim = system.start(record="summary")
    ends = []
    assert not advance_in_slices(sim, 3.0, on_slice=ends.append, stop=lambda: len(ends) == 3)
    assert len(ends) == 3 and sim.time_s == ends[-1] < 3.0
    # the part done is the start of the same run
    assert_same_run(system.run(sim.time_s, record="summary"), sim.trace(),
                    samples=False, history=False)


def test_slices_check_a_full_recording_fits_before_running():
    from tidesim.errors import ConfigError

    sim = _system().start(record="full")
    with pytest.raises(ConfigError, match="must fit in memory"):
        advance_in_slices(sim, 1e9)
    assert sim.time_s == 0.0


# --------------------------------------------------------------- in-process CLI


@pytest.fixture
def ctrl_c_at_once(monkeypatch):
    """Make ``tidesim run`` see a Ctrl-C after its first slice."""
    import contextlib

    import tidesim.cli

    @contextlib.contextmanager
    def pressed():
        yield lambda: True

    monkeypatch.setattr(tidesim.cli, "_stop_on_ctrl_c", pressed)


def test_interrupted_run_prints_the_part_done(ctrl_c_at_once, capsys):
    from tidesim.cli import EXIT_INTERRUPTED, main

    assert main(["run", "--until", "60"]) == EXIT_INTERRUPTED
    out, err = capsys.readouterr()
    t = re.search(r"^simulated time +(\S+) s$", out, re.M).group(1)
    assert 0 < float(t) < 60
    assert re.search(rf"^interrupted +at t = {t} s of 60 s \(Ctrl-C\)$", out, re.M)
    assert err == f"tidesim: interrupted at t = {t} s of 60 s\n"

    assert main(["run", "--until", "60", "--json"]) == EXIT_INTERRUPTED
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["interrupted"] is True and summary["until_s"] == 60.0
    assert 0 < summary["simulated_s"] < 60 and summary["nodes"] == 8


def test_interrupted_run_writes_its_waveform_and_plot(ctrl_c_at_once, capsys, tmp_path):
    from tidesim.cli import main

    vcd, png = tmp_path / "w.vcd", tmp_path / "p.png"
    assert main(["run", "--until", "60", "--vcd", str(vcd), "--plot", str(png)]) == 130
    out = capsys.readouterr().out
    assert vcd.stat().st_size > 0 and png.stat().st_size > 0
    assert f"waveform: {vcd}" in out and f"plot: {png}" in out
    # a window the run did not reach: nothing to draw, said so
    vcd.unlink()
    assert main(["run", "--until", "60", "--vcd", str(vcd), "--from", "50"]) == 130
    out = capsys.readouterr().out
    assert not vcd.exists()
    assert "no waveform or plot: the run stopped before --from (50 s)" in out


def test_a_million_seconds_is_a_long_run_not_an_error(ctrl_c_at_once, capsys):
    from tidesim.cli import main

    # recording the summary, its memory does not grow: it runs, for an hour
    assert main(["run", "--until", "1e6", "--json"]) == 130
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["until_s"] == 1e6 and summary["record"] == "summary"
    assert err.startswith("tidesim: interrupted at t = ") and err.endswith(" s of 1e+06 s\n")


def test_a_run_that_ends_is_not_interrupted(ctrl_c_at_once, capsys):
    from tidesim.cli import main

    # one slice: the first covers 1e4 cycles, and this run is shorter
    assert main(["run", "--until", "5e-5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "interrupted" not in summary and summary["simulated_s"] == 5e-5


def test_first_ctrl_c_asks_the_second_interrupts():
    from tidesim.cli import _stop_on_ctrl_c

    before = signal.getsignal(signal.SIGINT)
    with _stop_on_ctrl_c() as pressed:
        assert not pressed()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler runs at the next bytecode
        assert pressed()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    assert signal.getsignal(signal.SIGINT) is before


def test_an_ignored_ctrl_c_stays_ignored():
    from tidesim.cli import _stop_on_ctrl_c

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _stop_on_ctrl_c() as pressed:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
            assert not pressed()
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_forced_bar_and_no_bar(capsys):
    from tidesim.cli import main

    assert main(["run", "--until", "1", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "simulated: 100%" in err and "1/1 s [" in err and " s/s]" in err
    assert main(["run", "--until", "1", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------ the real thing


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("COLUMNS", None)
    return env


def _start(args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tidesim", *args], cwd=REPO, env=_env(),
                            text=True, **kwargs)


@pytest.mark.parametrize("flags", [(), ("--json",)], ids=["text", "json"])
def test_ctrl_c_stops_a_long_run(flags):
    # a Ctrl-C during start-up (imports, the kernels' cache) ends with one
    # line and no summary; wait longer until the run itself was interrupted
    for delay in (3.0, 6.0, 12.0, 24.0):
        proc = _start([*LONG_RUN, *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=60)
        stopped_s = time.monotonic() - sent
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        if out:
            break
        assert err == "tidesim: error: interrupted\n"
    assert stopped_s < 3.0
    lines = err.splitlines()
    # one line: the run took over a second, yet no bar, as stderr is no terminal
    assert len(lines) == 1, err
    t = float(re.fullmatch(r"tidesim: interrupted at t = (\S+) s of 1000 s", lines[0]).group(1))
    assert 0 < t < 1000
    if flags:
        summary = json.loads(out)
        assert f"{summary['simulated_s']:.6g}" == f"{t:.6g}" and summary["interrupted"] is True
        assert summary["fidelity"] == "cycle" and summary["until_s"] == 1000
    else:
        assert re.search(rf"^simulated time +{lines[0].split()[5]} s$", out, re.M), out
        assert re.search(r"^interrupted +at t = .* of 1000 s \(Ctrl-C\)$", out, re.M), out
        assert "UGN" in out


def _read_terminal(fd: int, until: float, pattern: str | None = None) -> str:
    """What a child wrote to the terminal ``fd`` by time ``until`` (or ``pattern``)."""
    text = ""
    while time.monotonic() < until:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            text += chunk.decode(errors="replace")
            if pattern is not None and pattern in text:
                break
    return text


def test_bar_on_a_terminal_only_for_long_runs():
    primary, secondary = pty.openpty()
    # a new pseudo-terminal is 0 columns wide, where tqdm draws nothing
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = _start(LONG_RUN, stdout=subprocess.PIPE, stderr=secondary)
        shown = _read_terminal(primary, time.monotonic() + 60, "simulated:")
        os.kill(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        shown += _read_terminal(primary, time.monotonic() + 1)
        assert proc.returncode == 130
        assert re.search(r"simulated: +\d+%\|.*\| [0-9.e+-]+/1000 s \[", shown), shown
        assert "tidesim: interrupted at t = " in shown and "Traceback" not in shown
        assert "interrupted" in out

        # a short run, or --no-progress: nothing on the terminal
        for flags in (("--until", "1"), ("--until", "1000", "--no-progress", "--fidelity",
                                         "cycle")):
            proc = _start(["run", *flags], stdout=subprocess.PIPE, stderr=secondary)
            if "--no-progress" in flags:
                time.sleep(3.0)
                os.kill(proc.pid, signal.SIGINT)
            proc.communicate(timeout=60)
            shown = _read_terminal(primary, time.monotonic() + 0.5)
            assert "simulated:" not in shown, shown
    finally:
        os.close(primary)
        os.close(secondary)
