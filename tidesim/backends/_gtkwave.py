"""Open a save file in a real GTKWave on a private X server and grab the window as PNG.

Used by the test-suite and to make the screenshot in ``docs/waveforms.md``.
Needs the ``gtkwave`` and ``Xvfb`` programs (Debian packages ``gtkwave`` and
``xvfb``). Xvfb picks a free display itself (``-displayfd``), so parallel runs
do not collide; GTKWave runs a Tcl script that fits the whole dump into the
window, saves the picture with its own *File / Grab To File* command and quits.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["GtkwaveError", "available", "grab"]


class GtkwaveError(RuntimeError):
    """GTKWave or Xvfb could not be started, or produced no picture."""


def available() -> bool:
    """Whether both ``gtkwave`` and ``Xvfb`` are on the ``PATH``."""
    return shutil.which("gtkwave") is not None and shutil.which("Xvfb") is not None


def _tcl_quote(path: Path) -> str:
    return "{" + str(path) + "}"


def _start_xvfb(size: tuple[int, int], timeout_s: float) -> tuple[subprocess.Popen, str]:
    r, w = os.pipe()
    try:
        proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(w), "-screen", "0", f"{size[0]}x{size[1]}x24",
             "-nolisten", "tcp", "-noreset"],
            pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
    except BaseException:
        os.close(r)
        os.close(w)
        raise
    os.close(w)
    try:
        data = b""
        deadline = time.monotonic() + timeout_s
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                raise GtkwaveError(f"Xvfb did not report a display within {timeout_s} s")
            chunk = os.read(r, 64)
            if not chunk:
                raise GtkwaveError(f"Xvfb exited (status {proc.poll()}) without a display")
            data += chunk
    except BaseException:
        _stop(proc)
        raise
    finally:
        os.close(r)
    return proc, ":" + data.decode().strip()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def grab(save_file: str | os.PathLike, png: str | os.PathLike, *,
         size: tuple[int, int] = (1600, 1000), timeout_s: float = 120.0) -> Path:
    """Open ``save_file`` (a ``.gtkw`` naming its dump) in GTKWave and save a PNG of it.

    Args:
        save_file: the GTKWave save file.
        png: the picture to write.
        size: the virtual screen (and GTKWave window) size in pixels.
        timeout_s: how long GTKWave may take, in all.

    Returns:
        The path of the PNG.

    Raises:
        GtkwaveError: a program is missing, failed, timed out, or wrote no picture.
    """
    if not available():
        raise GtkwaveError("gtkwave and Xvfb are needed (apt-get install gtkwave xvfb)")
    save_file = Path(save_file).resolve()
    png = Path(png).resolve()
    png.unlink(missing_ok=True)
    xvfb, display = _start_xvfb(size, timeout_s=30.0)
    try:
        with tempfile.TemporaryDirectory(prefix="tidesim-gtkwave-") as tmp:
            script = Path(tmp) / "grab.tcl"
            script.write_text(
                "gtkwave::/Time/Zoom/Zoom_Best_Fit\n"
                f"gtkwave::/File/Grab_To_File {_tcl_quote(png)}\n"
                "gtkwave::/File/Quit\n", encoding="ascii")
            log = Path(tmp) / "gtkwave.log"
            env = {**os.environ, "DISPLAY": display, "HOME": tmp,
                   "XDG_CONFIG_HOME": tmp, "XDG_CACHE_HOME": tmp,
                   "NO_AT_BRIDGE": "1"}
            with open(log, "wb") as out:
                try:
                    proc = subprocess.run(
                        ["gtkwave", "--rcvar", f"initial_window_x {size[0]}",
                         "--rcvar", f"initial_window_y {size[1]}",
                         "-S", str(script), str(save_file)],
                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                        env=env, cwd=tmp, timeout=timeout_s, check=False)
                except subprocess.TimeoutExpired as exc:
                    raise GtkwaveError(f"gtkwave did not finish within {timeout_s} s; log:\n"
                                       + log.read_text(errors="replace")) from exc
            text = log.read_text(errors="replace")
            if proc.returncode != 0 or not png.is_file():
                raise GtkwaveError(f"gtkwave exited with status {proc.returncode} and "
                                   f"{'a' if png.is_file() else 'no'} picture; log:\n{text}")
    finally:
        _stop(xvfb)
    return png
