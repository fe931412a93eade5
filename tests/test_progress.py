"""Progress bars: shown on stderr only when enabled, numbers to a callback, no thread."""

from __future__ import annotations

import concurrent.futures as cf
import threading

from tidesim._progress import progress_bar
from tidesim.studies.sweep import Sweep, run_sweep


def test_enabled_bar_counts_on_stderr(capsys):
    with progress_bar(4, initial=1, unit="run", desc="sweep", enabled=True) as bar:
        for _ in range(3):
            bar.update(1)
    err = capsys.readouterr().err
    assert "sweep" in err and "4/4" in err and "run/s" in err
    assert bar.done == 4


def test_disabled_bar_is_silent_and_still_counts(capsys):
    bar = progress_bar(3, enabled=False)
    bar.update(2)
    bar.close()
    bar.close()
    assert capsys.readouterr().err == ""
    assert bar.done == 2


def test_default_follows_the_terminal(capsys):
    # under pytest stderr is captured, not a terminal
    with progress_bar(2) as bar:
        bar.update(2)
    assert capsys.readouterr().err == ""


def test_callback_gets_the_numbers_instead_of_a_bar(capsys):
    calls = []
    with progress_bar(3, initial=1, enabled=True,
                      callback=lambda done, total: calls.append((done, total))) as bar:
        bar.update(1)
        bar.update(1)
    assert calls == [(2, 3), (3, 3)]
    assert capsys.readouterr().err == ""


def test_a_bar_starts_no_thread():
    # a local sweep forks its workers only from a single-threaded process
    before = threading.active_count()
    with progress_bar(2, enabled=True) as bar:
        assert threading.active_count() == before
        bar.update(2)


BASE = {"preset": "hitl-complete3", "clock": {"start_s": 0.0},
        "controller": {"kind": "p", "kp": 1e-6}, "actuator": {"kind": "continuous"},
        "run": {"until_s": 0.1}}


def test_sweep_progress_true_false(tmp_path, capsys):
    sweep = Sweep(BASE, repeats=3, seed=1)
    with cf.ThreadPoolExecutor(1) as pool:
        run_sweep(sweep, tmp_path / "a", executor=pool, progress=True)
    assert "3/3" in capsys.readouterr().err
    with cf.ThreadPoolExecutor(1) as pool:
        run_sweep(sweep, tmp_path / "b", executor=pool, progress=False)
        # resumed: nothing to run, no bar even when asked for one
        run_sweep(sweep, tmp_path / "b", executor=pool, progress=True)
    assert capsys.readouterr().err == ""
