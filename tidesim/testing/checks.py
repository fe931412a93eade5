"""Cycle-level checks of bittide behaviour for tests: run helpers and assertions.

Each helper records the traces it sees on the running pytest test (see
:mod:`tidesim.testing.plugin`), so when the test fails the plugin writes their
waveforms and names the files in the failure report. Outside pytest the
recording does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

__all__ = [
    "assert_converged",
    "assert_no_buffer_faults",
    "assert_ugn_constant",
    "make_system",
    "record_trace",
    "run_cycles",
    "ugn_per_sample",
]

# Set by the pytest plugin while a test runs: called with every trace a helper sees.
_recorder: list[Callable[[object], None]] = []


def record_trace(trace) -> None:
    """Attach ``trace`` to the running test; its waveforms are written if it fails."""
    if _recorder:
        _recorder[-1](trace)


def _link_name(trace, link: int) -> str:
    src, dst = (int(x) for x in trace.links[link])
    return f"node {dst}, link {link} (from node {src})"


def run_cycles(system, n_cycles: int, fidelity: str = "cycle", **kwargs):
    """Run ``system`` for ``n_cycles`` cycles of the nominal clock and record the trace.

    Args:
        system: a :class:`~tidesim.models.System`.
        n_cycles: cycles of the nominal clock (``n_cycles / f_nom_hz`` seconds).
        fidelity: ``"cycle"`` (default: every edge through real FIFOs) or ``"event"``.
        **kwargs: passed on to :meth:`System.run` (``stop_on_fault``).

    Returns:
        The :class:`~tidesim.models.Trace`.
    """
    return _run_recorded(system.run, until_cycles=n_cycles, fidelity=fidelity, **kwargs)


def _run_recorded(run, *args, **kwargs):
    """Call ``run`` and record its trace, or the partial trace of a fault it raises."""
    try:
        trace = run(*args, **kwargs)
    except Exception as exc:
        partial = getattr(exc, "trace", None)
        if partial is not None:
            record_trace(partial)
        raise
    record_trace(trace)
    return trace


def assert_no_buffer_faults(trace) -> None:
    """Fail if any elastic buffer overflowed or underflowed.

    The message has one line per fault: the receiving node, the link and its
    source, the kind, the receiver's cycle and the time, and how many frames
    were affected.
    """
    __tracebackhide__ = True
    record_trace(trace)
    faults = trace.faults
    if not faults:
        return
    lines = [f"{len(faults)} elastic-buffer fault(s):"]
    for f in faults:
        lines.append(f"  node {f.node}, link {f.link} (from node {f.src}): {f.kind} at cycle "
                     f"{f.cycle}, t={f.time_s:.12g} s ({f.count} frame(s) in all)")
    raise AssertionError("\n".join(lines))


def assert_converged(trace, *, within_s: float | None = None,
                     max_spread_ppb: float | None = None) -> None:
    """Fail unless every link that came up is stable from some sample to the end.

    Stability is the run's detector (``System(stability=...)``): a link is
    stable when its measurement stayed within ``±margin`` of a reference for
    ``window_s``.

    Args:
        trace: the run.
        within_s: also require the settle time to be at most this (s).
        max_spread_ppb: also require the final frequencies to lie within this
            spread (ppb, largest minus smallest).
    """
    __tracebackhide__ = True
    from ..studies.metrics import settle_time_s

    record_trace(trace)
    problems = []
    for l in range(trace.links.shape[0]):
        if not trace.link_up[l]:
            continue
        j = int(trace.links[l, 1])
        q = int(trace.n_samp[j])
        if q == 0 or trace.stable[l, q - 1] == 0:
            meas = trace.measured(l)
            last = int(meas[-1]) if meas.size else 0
            t = float(trace.samp_t[j, q - 1]) if q else 0.0
            problems.append(f"  {_link_name(trace, l)}: not stable at its last sample "
                            f"(cycle {int(trace.samp_m[j, q - 1]) if q else 0}, t={t:.9g} s, "
                            f"measurement {last})")
    if problems:
        raise AssertionError(f"not converged at t={trace.until_s:.9g} s; "
                             f"{len(problems)} link(s) unstable:\n" + "\n".join(problems))
    settle = settle_time_s(trace)
    if within_s is not None and settle is not None and settle > within_s:
        raise AssertionError(f"converged at t={settle:.9g} s, later than {within_s:.9g} s")
    if max_spread_ppb is not None:
        off = trace.final_offsets_ppm
        spread = float(off.max() - off.min()) * 1e3
        if spread > max_spread_ppb:
            raise AssertionError(f"final frequency spread {spread:.6g} ppb exceeds "
                                 f"{max_spread_ppb:.6g} ppb (offsets in ppm: "
                                 f"{np.array2string(off, precision=4)})")


def ugn_per_sample(trace, link: int) -> tuple[np.ndarray, np.ndarray]:
    """The logical latency of ``link`` at each of its receiver's samples after link-up.

    At a sample the buffer holds ``count + reference`` frames and ``A - R =
    ddc + (A0 - R0)``, so ``λ = occupancy - A + R`` is
    ``count + reference - ddc - (A0 - R0)``.

    Returns:
        ``(sample indices, λ)`` of the samples at or after link-up.
    """
    from ..models import _kernels as K

    j = int(trace.links[link, 1])
    q = int(trace.n_samp[j])
    t = trace.samp_t[j, :q]
    if not trace.link_up[link]:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    idx = np.flatnonzero(t >= trace.system.link_up_s[link])
    ref = trace.system.buffer.reference_frames
    lam = (trace.counts[link, idx].astype(np.int64) + ref - trace.ddc[link, idx]
           - int(trace.link_state[link, K.LS_BASE]))
    return idx, lam


def assert_ugn_constant(trace, reference=None) -> None:
    """Fail if a link's logical latency (UGN) changed.

    Without ``reference``: for every link that came up, ``λ`` must be the
    same at every sample from the moment its buffer was armed (link-up, or
    first stability with ``arm = "stable"``) and at the end of the run. Any
    over- or underflow, adjustment or auto-centring changes it.

    With ``reference`` (another trace, or an array of one ``λ`` per link, or
    the ``[src, dst]`` matrix of :meth:`Trace.ugn_matrix`): the UGNs at the end
    of ``trace`` must equal the reference's for every link up in both.
    """
    __tracebackhide__ = True
    from ..models import _kernels as K

    record_trace(trace)
    links = trace.links
    problems = []
    if reference is not None:
        if hasattr(reference, "ugn") and hasattr(reference, "link_up"):
            record_trace(reference)
            ref_ugn, ref_up = np.asarray(reference.ugn), np.asarray(reference.link_up)
        else:
            arr = np.asarray(reference, dtype=np.int64)
            if arr.ndim == 2:
                arr = arr[links[:, 0], links[:, 1]]
            if arr.shape != (links.shape[0],):
                raise ValueError(f"reference must have one UGN per link ({links.shape[0]}) "
                                 f"or be an [n, n] matrix, got shape {arr.shape}")
            ref_ugn, ref_up = arr, arr >= 0
        for l in range(links.shape[0]):
            if trace.link_up[l] and ref_up[l] and trace.ugn[l] != ref_ugn[l]:
                problems.append(f"  {_link_name(trace, l)}: UGN {int(trace.ugn[l])}, "
                                f"reference {int(ref_ugn[l])}")
        if problems:
            raise AssertionError("UGNs differ from the reference:\n" + "\n".join(problems))
        return
    for l in range(links.shape[0]):
        if not trace.link_up[l]:
            continue
        j = int(links[l, 1])
        idx, lam = ugn_per_sample(trace, l)
        armed_t = trace.link_fstate[l, K.LF_ARM_T]
        if trace.link_state[l, K.LS_ARMED] == 1:
            keep = trace.samp_t[j, idx] >= armed_t
            idx, lam = idx[keep], lam[keep]
        if lam.size == 0:
            continue
        moved = np.flatnonzero(lam != lam[0])
        if moved.size:
            q = int(idx[moved[0]])
            problems.append(f"  {_link_name(trace, l)}: UGN {int(lam[0])} changed to "
                            f"{int(lam[moved[0]])} by cycle {int(trace.samp_m[j, q])}, "
                            f"t={float(trace.samp_t[j, q]):.12g} s")
        elif int(trace.ugn[l]) != int(lam[0]):
            problems.append(f"  {_link_name(trace, l)}: UGN {int(lam[0])} changed to "
                            f"{int(trace.ugn[l])} by the end of the run "
                            f"(t={trace.until_s:.12g} s)")
    if problems:
        raise AssertionError("logical latency not constant:\n" + "\n".join(problems))


def make_system(config=None, /, **kwargs):
    """Build a :class:`~tidesim.models.System` whose runs are recorded on the running test.

    This is the factory the ``bittide_system`` fixture returns.

    Args:
        config: a preset name, a path to a TOML config, a config dict, or
            ``None``.
        **kwargs: with a config, config keys merged on top of it
            (``seed=2, buffer={"depth": 64}``); without, the arguments of
            :class:`System` (``topology=...``, ``offsets_ppm=...``).
    """
    from ..config import build_system, deep_merge, load_config, validate
    from ..models import System

    if config is None:
        system = System(**kwargs)
    else:
        if isinstance(config, Mapping):
            cfg = deep_merge(load_config(config), kwargs) if kwargs else load_config(config)
        elif isinstance(config, (str, Path)):
            text = str(config)
            if text.endswith(".toml") or Path(text).is_file():
                cfg = load_config(Path(text))
                if kwargs:
                    cfg = deep_merge(cfg, kwargs)
            else:
                cfg = load_config({"preset": text, **kwargs})
        else:
            raise TypeError("config must be a preset name, a TOML path, a dict or None, "
                            f"not {type(config).__name__}")
        system = build_system(validate(cfg))
    return _recorded(system)


def _recorded(system):
    run = system.run

    def recorded_run(*args, **kwargs):
        # the waves of a failing test show the controller's state too
        kwargs.setdefault("record_controller_state", True)
        return _run_recorded(run, *args, **kwargs)

    recorded_run.__doc__ = run.__doc__
    system.run = recorded_run
    return system
