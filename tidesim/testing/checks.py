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
from numpy.testing import assert_array_equal

__all__ = [
    "assert_converged",
    "assert_same_run",
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
    settle = trace.settle_time_s
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
    """The logical latency of ``link`` at each of its receiver's samples since
    its buffer was armed (:meth:`tidesim.models.Trace.logical_latency`).

    Returns:
        ``(sample indices, λ)``, both int64.
    """
    lam = trace.logical_latency()[link]
    idx = np.flatnonzero(~np.ma.getmaskarray(lam))
    return idx, np.asarray(lam.data[idx], dtype=np.int64)


def assert_ugn_constant(trace, reference=None) -> None:
    """Fail if a link's logical latency (UGN) changed.

    Without ``reference``: for every link whose buffer was armed, ``λ`` must
    be the same at every sample from the moment it was armed (link-up; first
    stability with ``arm = "stable"``; the receiver's first sample after all
    links were stable at once with ``arm = "all_stable"``) and at the end of
    the run. Any
    over- or underflow, adjustment or auto-centring changes it.

    With ``reference`` (another trace, or an array of one ``λ`` per link, or
    the ``[src, dst]`` matrix of :meth:`Trace.ugn_matrix`, masked arrays
    included): the UGNs at the end of ``trace`` must equal the reference's
    for every link reported in both.
    """
    __tracebackhide__ = True
    record_trace(trace)
    links = trace.links
    ugn = trace.ugn
    problems = []
    if reference is not None:
        if hasattr(reference, "ugn") and hasattr(reference, "links"):
            record_trace(reference)
            ref = reference.ugn
        else:
            ref = np.ma.asarray(reference)
            if ref.ndim == 2:
                ref = ref[links[:, 0], links[:, 1]]
            if ref.shape != (links.shape[0],):
                raise ValueError(f"reference must have one UGN per link ({links.shape[0]}) "
                                 f"or be an [n, n] matrix, got shape {ref.shape}")
        both = ~np.ma.getmaskarray(ugn) & ~np.ma.getmaskarray(ref)
        for l in np.flatnonzero(both & (ugn.data != np.ma.getdata(ref))).tolist():
            problems.append(f"  {_link_name(trace, l)}: UGN {int(ugn.data[l])}, "
                            f"reference {int(np.ma.getdata(ref)[l])}")
        if problems:
            raise AssertionError("UGNs differ from the reference:\n" + "\n".join(problems))
        return
    lam_all = trace.logical_latency()
    final = trace.final_logical_latency
    for l in np.flatnonzero(trace.armed & trace.link_up).tolist():
        j = int(links[l, 1])
        lam = lam_all[l]
        idx = np.flatnonzero(~np.ma.getmaskarray(lam))
        if idx.size == 0:
            continue
        vals = lam.data[idx]
        moved = np.flatnonzero(vals != vals[0])
        if moved.size:
            q = int(idx[moved[0]])
            problems.append(f"  {_link_name(trace, l)}: UGN {int(vals[0])} changed to "
                            f"{int(vals[moved[0]])} by cycle {int(trace.samp_m[j, q])}, "
                            f"t={float(trace.samp_t[j, q]):.12g} s")
        elif int(final.data[l]) != int(vals[0]):
            problems.append(f"  {_link_name(trace, l)}: UGN {int(vals[0])} changed to "
                            f"{int(final.data[l])} by the end of the run "
                            f"(t={trace.until_s:.12g} s)")
    if problems:
        raise AssertionError("logical latency not constant:\n" + "\n".join(problems))


_PER_SAMPLE = ("counts", "ddc", "flags", "n_samp", "samp_t", "samp_m", "samp_c", "samp_des")
_HISTORY = ("n_seg", "seg_hi", "seg_lo", "seg_k", "seg_P", "seg_rel")


def assert_same_run(a, b, *, samples: bool = True, history: bool = True) -> None:
    """Fail unless ``a`` and ``b`` are the same run, bit for bit, through everything
    a :class:`~tidesim.models.Trace` shows: per-sample records, segment history,
    final state of every node and link, faults and summary.

    Use it to check that one system gives one run whatever computes it: both
    fidelities, a run advanced in pieces, another backend.

    Args:
        a, b: the traces (their fidelity and recording may differ).
        samples: compare the per-sample records (both recorded them).
        history: compare the segment history (both kept it).
    """
    __tracebackhide__ = True
    if samples:
        for name in _PER_SAMPLE:
            assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        for x, y in ((a.controller_states, b.controller_states),):
            assert (x is None) == (y is None)
            if x is not None:
                assert_array_equal(x, y)
        lam_a, lam_b = a.logical_latency(), b.logical_latency()
        assert_array_equal(np.ma.getmaskarray(lam_a), np.ma.getmaskarray(lam_b))
        assert_array_equal(lam_a.filled(0), lam_b.filled(0))
    if history:
        for name in _HISTORY:
            assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("final_offsets_ppm", "n_updates", "link_up", "armed", "armed_cycle",
                 "stable_from_s", "controller_state", "ugn_reported"):
        assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert_array_equal(a.armed_at_s, b.armed_at_s)
    assert_array_equal(a.ugn.filled(0), b.ugn.filled(0))
    sa, sb = a.buffer_state(), b.buffer_state()
    for key in sa.keys() & sb.keys():
        assert_array_equal(sa[key], sb[key], err_msg=key)
    da, db = a.detector(), b.detector()
    for key in da:
        assert_array_equal(da[key], db[key], err_msg=key)
    for kind in ("buffer", "ddc"):
        assert_array_equal(a.max_abs_count(kind), b.max_abs_count(kind), err_msg=kind)
    assert a.faults == b.faults
    assert a.status == b.status
    assert a.until_s == b.until_s
    assert a.settle_time_s == b.settle_time_s
    assert a.faults_after_settle == b.faults_after_settle
    assert a.energy == b.energy
    assert a.energy_spread == b.energy_spread
    sum_a, sum_b = a.summary(), b.summary()
    for key in ("fidelity", "record"):
        sum_a.pop(key)
        sum_b.pop(key)
    assert sum_a == sum_b


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
