"""The VCD and its save file open in a real GTKWave (under Xvfb) and show waveforms.

Needs the ``gtkwave`` and ``Xvfb`` programs (``make sysdeps`` installs them);
the test is skipped, with the reason, where they are missing.

Run as a script (``python tests/test_gtkwave.py``) it rewrites the screenshot
shown in ``docs/waveforms.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from test_vcd import healthy_system

from tidesim.backends import _gtkwave
from tidesim.backends.vcd import gtkw_path, write_app_vcd, write_vcd

DOCS_PNG = Path(__file__).resolve().parents[1] / "docs" / "img" / "gtkwave.png"
APP_PNG = DOCS_PNG.with_name("app-gtkwave.png")

needs_gtkwave = pytest.mark.skipif(not _gtkwave.available(),
                                   reason="gtkwave and Xvfb not installed (make sysdeps)")


def example_trace():
    """The three-node quantized PI system of the VCD tests (100 µs, cycle fidelity)."""
    return healthy_system().run(until_s=1e-4, fidelity="cycle")


def read_png(png: Path) -> np.ndarray:
    """float[h, w, 3] in [0, 1]."""
    import matplotlib.image as mpimg

    return np.asarray(mpimg.imread(png))[..., :3]


def picture_stats(img: np.ndarray) -> tuple[tuple[int, int], int, float]:
    """((height, width), distinct colours, fraction of pixels off the commonest colour)."""
    rgb = np.round(img * 255).astype(np.uint32)
    flat = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    values, counts = np.unique(flat, return_counts=True)
    return rgb.shape[:2], int(values.size), 1.0 - counts.max() / flat.size


@needs_gtkwave
def test_vcd_opens_in_gtkwave_and_shows_waveforms(tmp_path):
    vcd = write_vcd(example_trace(), tmp_path / "run.vcd", nodes=[0, 1])
    png = _gtkwave.grab(gtkw_path(vcd), tmp_path / "shot.png", timeout_s=120)
    img = read_png(png)
    (h, w), colours, busy = picture_stats(img)
    # the window the save file asks for (1400 x 900), give or take the frame
    assert 1200 <= w <= 1700 and 800 <= h <= 1100, (w, h)
    # waveforms in several trace colours on the black wave area, text, widgets
    assert colours >= 50, colours
    assert busy > 0.2, busy
    # the green clock, orange frequency and blue counts are drawn
    greenish = (img[..., 1] > 0.8) & (img[..., 0] < 0.3) & (img[..., 2] < 0.3)
    orange = (img[..., 0] > 0.8) & (img[..., 1] > 0.3) & (img[..., 1] < 0.8) & (img[..., 2] < 0.3)
    blue = (img[..., 2] > 0.7) & (img[..., 0] < 0.3) & (img[..., 1] < 0.3)
    assert greenish.sum() > 5000 and orange.sum() > 100 and blue.sum() > 300


def example_app_vcd(path: Path) -> Path:
    """The waveform of ``docs/schedule.md``: the counter app on a 3-node ring."""
    from tidesim.calendars import LogicalNetwork, execute, schedule
    from tidesim.waves.apps import get_app

    ring = LogicalNetwork.ring(3)
    net = LogicalNetwork(3, ring.links, np.array([4, 6, 5, 3, 7, 4]))
    sched = schedule(get_app("counter", 3).graph(), net)
    return write_app_vcd(sched, execute(sched, 4), path, cycle_ps=5000)


@needs_gtkwave
def test_app_vcd_opens_in_gtkwave(tmp_path):
    vcd = example_app_vcd(tmp_path / "app.vcd")
    png = _gtkwave.grab(gtkw_path(vcd), tmp_path / "app.png", timeout_s=120)
    img = read_png(png)
    (h, w), colours, busy = picture_stats(img)
    assert 1200 <= w <= 1700 and 800 <= h <= 1100, (w, h)
    assert colours >= 50 and busy > 0.2, (colours, busy)
    # the green clock and the blue frames are drawn
    greenish = (img[..., 1] > 0.8) & (img[..., 0] < 0.3) & (img[..., 2] < 0.3)
    blue = (img[..., 2] > 0.7) & (img[..., 0] < 0.3) & (img[..., 1] < 0.3)
    assert greenish.sum() > 5000 and blue.sum() > 300, (greenish.sum(), blue.sum())


@needs_gtkwave
def test_a_missing_dump_is_reported(tmp_path):
    vcd = write_vcd(example_trace(), tmp_path / "gone.vcd", t_to_s=1e-6)
    vcd.unlink()
    with pytest.raises(_gtkwave.GtkwaveError, match="status"):
        _gtkwave.grab(gtkw_path(vcd), tmp_path / "none.png", timeout_s=60)


def main() -> None:
    """Rewrite ``docs/img/gtkwave.png`` and ``docs/img/app-gtkwave.png``."""
    import tempfile

    DOCS_PNG.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        vcd = write_vcd(example_trace(), Path(tmp) / "run.vcd", nodes=[0, 1])
        _gtkwave.grab(gtkw_path(vcd), DOCS_PNG)
        _gtkwave.grab(gtkw_path(example_app_vcd(Path(tmp) / "app.vcd")), APP_PNG)
    for png in (DOCS_PNG, APP_PNG):
        print(png, picture_stats(read_png(png)))


if __name__ == "__main__":
    sys.exit(main())
