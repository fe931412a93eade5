"""VCD export: what pyvcd's reader gets back equals the trace, value for value."""

from __future__ import annotations

import io
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from vcd.reader import TokenKind, tokenize

from tidesim.backends._vcdfmt import CHUNK_ROWS, Body, id_codes, render_body
from tidesim.backends.vcd import gtkw_path, write_vcd
from tidesim.controllers import PI
from tidesim.errors import ConfigError
from tidesim.models import Actuator, ElasticBuffer, Stability, System, Topology

FS = 1e15  # ticks per second of the default time unit


def read_vcd(path: Path) -> tuple[dict, dict]:
    """``(changes, header)``: ``changes[path] = [(time, value), ...]`` in file order."""
    ids: dict[str, str] = {}
    scope: list[str] = []
    changes: dict[str, list] = {}
    header: dict = {"vars": {}}
    t = None
    with open(path, "rb") as fh:
        for tok in tokenize(fh):
            kind = tok.kind
            if kind is TokenKind.SCOPE:
                scope.append(tok.data.ident)
            elif kind is TokenKind.UPSCOPE:
                scope.pop()
            elif kind is TokenKind.TIMESCALE:
                header["timescale"] = tok.data
            elif kind is TokenKind.VAR:
                name = ".".join([*scope, tok.data.reference])
                ids[tok.data.id_code] = name
                changes[name] = []
                header["vars"][name] = tok.data
            elif kind is TokenKind.CHANGE_TIME:
                assert t is None or tok.data >= t, "times must not decrease"
                t = tok.data
            elif kind in (TokenKind.CHANGE_SCALAR, TokenKind.CHANGE_VECTOR,
                          TokenKind.CHANGE_REAL):
                changes[ids[tok.data.id_code]].append((t, tok.data.value))
    header["last_time"] = t
    return changes, header


def value_at(changes: list, t: int):
    """Value of a signal after every change at or before ``t``."""
    v = None
    for tc, x in changes:
        if tc > t:
            break
        v = x
    return v


def signed(v, bits: int = 32):
    return v - (1 << bits) if isinstance(v, int) and v >= 1 << (bits - 1) else v


def ticks(t) -> int:
    return int(np.rint(float(t) * FS))


def healthy_system() -> System:
    """Three nodes, staggered starts, quantized PI, 16-deep FIFOs armed at link-up."""
    return System(
        Topology.complete(3, latency_s=[3e-8, 1e-8, 2e-8]),
        offsets_ppm=[-60.0, 10.0, 80.0],
        theta0=[0.1, 0.5, 0.9],
        start_s=[0.0, 2e-6, 5e-6],
        controller=PI(kp=2e-7),
        update_period_ticks=400,
        control_delay_ticks=40,
        actuator=Actuator("quantized", 100.0),
        buffer=ElasticBuffer(depth=16),
        stability=Stability(margin=3, window_s=2e-5),
    )


def faulty_system() -> System:
    """Free-running clocks ±3000 ppm apart into 4-deep FIFOs: both kinds of fault."""
    return System(Topology.complete(3), offsets_ppm=[-3000.0, 0.0, 3000.0],
                  buffer=ElasticBuffer(depth=4), update_period_ticks=100)


@pytest.fixture(scope="module")
def healthy():
    system = healthy_system()
    return system, system.run(until_s=1e-4, fidelity="cycle", record_controller_state=True)


@pytest.fixture(scope="module")
def healthy_vcd(healthy, tmp_path_factory):
    _, trace = healthy
    path = write_vcd(trace, tmp_path_factory.mktemp("vcd") / "healthy.vcd")
    return path, *read_vcd(path)


def incoming(trace, j):
    return [(l, int(trace.links[l, 0])) for l in range(trace.links.shape[0])
            if int(trace.links[l, 1]) == j]


# ------------------------------------------------------------------- value for value


def test_header_scopes_and_timescale(healthy, healthy_vcd):
    _, trace = healthy
    path, changes, header = healthy_vcd
    assert str(header["timescale"]) in ("1 fs", "1fs")
    names = set(header["vars"])
    for j in range(3):
        for sig in ("clk", "cycle", "freq_ppm", "corr_ppm", "desired_ppm", "finc", "fdec",
                    "ctl_state_0"):
            assert f"tidesim.node_{j}.{sig}" in names
        for _, i in incoming(trace, j):
            for sig in ("up", "count", "ddc", "stable", "settled", "overflow", "underflow",
                        "ugn", "seq_read"):
                assert f"tidesim.node_{j}.link_from_{i}.{sig}" in names
    assert header["vars"]["tidesim.node_0.freq_ppm"].type_.value == "real"
    assert header["last_time"] == ticks(trace.until_s)


def test_samples_equal_the_trace(healthy, healthy_vcd):
    """At every sample time each per-sample signal holds the trace's value."""
    _, trace = healthy
    _, changes, _ = healthy_vcd
    for j in range(3):
        nq = int(trace.n_samp[j])
        ts = [ticks(t) for t in trace.samp_t[j, :nq]]
        node = f"tidesim.node_{j}"
        assert changes[f"{node}.cycle"][0] == (0, "x")  # no sample yet at t = 0
        # a change happens only at a sample (or at the first time, for initial values)
        for sig in ("cycle", "corr_ppm", "desired_ppm"):
            assert {t for t, _ in changes[f"{node}.{sig}"][1:]} <= set(ts)
        for q, t in enumerate(ts):
            assert value_at(changes[f"{node}.cycle"], t) == trace.samp_m[j, q]
            assert value_at(changes[f"{node}.corr_ppm"], t) == trace.samp_c[j, q] * 1e6
            assert value_at(changes[f"{node}.desired_ppm"], t) == trace.samp_des[j, q] * 1e6
            assert value_at(changes[f"{node}.ctl_state_0"], t) == trace.controller_states[j, q, 0]
            for l, i in incoming(trace, j):
                link = f"{node}.link_from_{i}"
                assert signed(value_at(changes[f"{link}.count"], t)) == trace.counts[l, q]
                assert signed(value_at(changes[f"{link}.ddc"], t)) == trace.ddc[l, q]
                assert value_at(changes[f"{link}.stable"], t) == str(trace.stable[l, q])
                assert value_at(changes[f"{link}.settled"], t) == str(trace.settled[l, q])
        for l, i in incoming(trace, j):
            link = f"{node}.link_from_{i}"
            up = value_at(changes[f"{link}.up"], ticks(trace.system.link_up_s[l]))
            assert up == "1"
            # the logical latency at the last sample is the run's final UGN
            assert signed(value_at(changes[f"{link}.ugn"], ts[-1]), 64) == trace.ugn[l]


def test_frequency_equals_the_segments(healthy, healthy_vcd):
    _, trace = healthy
    _, changes, _ = healthy_vcd
    for j in range(3):
        sig = changes[f"tidesim.node_{j}.freq_ppm"]
        n = int(trace.n_seg[j])
        assert sig[0] == (0, trace.seg_rel[j, 0] * 1e6)
        expect = [(ticks(trace.seg_hi[j, s] + trace.seg_lo[j, s]), trace.seg_rel[j, s] * 1e6)
                  for s in range(1, n)]
        assert sig[1:] == expect
        assert n > 3  # the controller moved every clock


def test_clock_edges_at_the_exact_edge_times(healthy, healthy_vcd):
    """Rising edges at et(k), falling edges halfway to et(k + 1), rounded to 1 fs."""
    _, trace = healthy
    _, changes, _ = healthy_vcd
    for j in range(3):
        clk = changes[f"tidesim.node_{j}.clk"]
        rises = np.array([t for t, v in clk[1:] if v == "1"])
        falls = np.array([t for t, v in clk[1:] if v == "0"])
        n = int(trace.n_seg[j])
        k = np.arange(0, int(trace.until_s * 125e6 * 1.001) + 2)
        # the kernel's expression, evaluated edge by edge from the owning segment
        s = np.maximum(np.searchsorted(trace.seg_k[j, :n], k, side="left") - 1, 0)
        et = trace.seg_hi[j, s] + (trace.seg_lo[j, s] + (k - trace.seg_k[j, s]) * trace.seg_P[j, s])
        mid = 0.5 * (et[:-1] + et[1:])
        inside = (et > 0) & (et <= trace.until_s)
        np.testing.assert_array_equal(rises, np.rint(et[inside] * FS).astype(np.int64))
        inside = (mid > 0) & (mid <= trace.until_s)
        np.testing.assert_array_equal(falls, np.rint(mid[inside] * FS).astype(np.int64))
        # and Trace.edge_time agrees at a few edges
        for kk in (1, 400, 441, 5000, int(k[-1]) - 50):
            assert np.rint(trace.edge_time(j, kk) * FS) == np.rint(et[kk] * FS)
        # samples are at rising edges of the node's own clock
        for q in range(int(trace.n_samp[j])):
            assert ticks(trace.samp_t[j, q]) in set(rises.tolist())


def test_finc_fdec_pulses_follow_the_quantized_correction(healthy, healthy_vcd):
    _, trace = healthy
    _, changes, _ = healthy_vcd
    seen = {"finc": 0, "fdec": 0}
    for j in range(3):
        nq = int(trace.n_samp[j])
        c = np.concatenate([[0.0], trace.samp_c[j, :nq]])
        for name, sign in (("finc", 1), ("fdec", -1)):
            sig = changes[f"tidesim.node_{j}.{name}"]
            rises = [t for t, v in sig[1:] if v == "1"]
            falls = [t for t, v in sig[1:] if v == "0"]
            qs = np.flatnonzero(np.sign(np.diff(c)) == sign)
            assert rises == [ticks(trace.samp_t[j, q]) for q in qs]
            assert falls == [ticks(trace.edge_time(j, int(trace.samp_m[j, q]) + 1)) for q in qs]
            seen[name] += len(rises)
    assert seen["finc"] > 0 and seen["fdec"] > 0


def test_seq_read_is_the_frame_the_fifo_read(healthy, healthy_vcd):
    """seq_read = m - λ equals the kernel's last sequence number read at that sample."""
    system, trace = healthy
    _, changes, _ = healthy_vcd
    checked = 0
    for j in range(3):
        for q in (2, 9, int(trace.n_samp[j]) - 1):
            t = float(trace.samp_t[j, q])
            upto = system.run(until_s=t, fidelity="cycle")  # ends on this very sample
            for l, i in incoming(trace, j):
                v = value_at(changes[f"tidesim.node_{j}.link_from_{i}.seq_read"], ticks(t))
                assert v == upto.buffer_state()["last_read_seq"][l]
                assert v == trace.samp_m[j, q] - trace.ugn[l]
                checked += 1
    assert checked == 18


def test_event_and_cycle_traces_give_the_same_waveforms(healthy, tmp_path):
    """The fidelities agree exactly, so do their VCDs (but seq_read, cycle only)."""
    system, cycle = healthy
    event = system.run(until_s=1e-4, fidelity="event", record_controller_state=True)
    a, _ = read_vcd(write_vcd(cycle, tmp_path / "c.vcd", t_to_s=2e-5))
    b, _ = read_vcd(write_vcd(event, tmp_path / "e.vcd", t_to_s=2e-5, clocks=True))
    assert {k for k in a if not k.endswith("seq_read")} == set(b)
    assert all(a[k] == b[k] for k in b)


def test_fault_flags_rise_at_the_fault_time(tmp_path):
    trace = faulty_system().run(until_cycles=5000, fidelity="cycle")
    faults = trace.faults
    assert {f.kind for f in faults} == {"overflow", "underflow"}
    changes, _ = read_vcd(write_vcd(trace, tmp_path / "f.vcd", clocks=False))
    for f in faults:
        link = f"tidesim.node_{f.node}.link_from_{f.src}"
        assert changes[f"{link}.{f.kind}"] == [(0, "0"), (ticks(f.time_s), "1")]
        other = "underflow" if f.kind == "overflow" else "overflow"
        if not any(g.link == f.link and g.kind == other for g in faults):
            assert changes[f"{link}.{other}"] == [(0, "0")]
        if f.kind == "overflow":
            # after a dropped write the FIFO's contents are no longer derivable
            seq = changes[f"{link}.seq_read"]
            assert seq[-1][1] == "x" and seq[-1][0] >= ticks(f.time_s)


# ------------------------------------------------------------- window, nodes, decimation


def test_window_starts_with_the_values_in_force(healthy, healthy_vcd, tmp_path):
    _, trace = healthy
    _, full, _ = healthy_vcd
    a, b = 31.3e-6, 47.9e-6
    win, header = read_vcd(write_vcd(trace, tmp_path / "w.vcd", t_from_s=a, t_to_s=b))
    ta, tb = ticks(a), ticks(b)
    assert header["last_time"] == tb
    for name, sig in win.items():
        assert sig[0][0] == ta, name
        assert all(ta < t <= tb for t, _ in sig[1:]), name
        assert sig[0][1] == value_at(full[name], ta), name
        # every later change is the full file's change at that time
        assert [c for c in sig[1:]] == [c for c in full[name] if ta < c[0] <= tb], name


def test_node_selection(healthy, tmp_path):
    _, trace = healthy
    changes, _ = read_vcd(write_vcd(trace, tmp_path / "n.vcd", nodes=[2], t_to_s=1e-5))
    assert {name.split(".")[1] for name in changes} == {"node_2"}
    assert "tidesim.node_2.link_from_0.count" in changes
    with pytest.raises(ConfigError, match="vcd.nodes"):
        write_vcd(trace, tmp_path / "bad.vcd", nodes=[3])


def test_decimation_keeps_every_kth_sample(healthy, tmp_path):
    system, _ = healthy
    trace = system.run(until_s=2e-3)  # event fidelity
    path = write_vcd(trace, tmp_path / "d.vcd", decimate=7)
    changes, header = read_vcd(path)
    assert "tidesim.node_0.clk" not in changes  # no clocks for event traces by default
    assert not any(name.endswith("seq_read") for name in changes)
    for j in range(3):
        nq = int(trace.n_samp[j])
        kept = [ticks(t) for t in trace.samp_t[j, :nq:7]]
        cyc = changes[f"tidesim.node_{j}.cycle"]
        assert [t for t, _ in cyc[1:]] == kept
        assert [v for _, v in cyc[1:]] == trace.samp_m[j, :nq:7].tolist()
        # the frequency keeps the last change between kept samples, at its own time
        freq = changes[f"tidesim.node_{j}.freq_ppm"]
        n = int(trace.n_seg[j])
        starts = {ticks(trace.seg_hi[j, s] + trace.seg_lo[j, s]) for s in range(1, n)}
        assert {t for t, _ in freq[1:]} <= starts
        assert freq[-1][1] == trace.seg_rel[j, n - 1] * 1e6
        assert len(freq) < n
    full = path.stat().st_size
    assert write_vcd(trace, tmp_path / "d1.vcd").stat().st_size > 3 * full
    # a factor beyond the sample count, however large, keeps the first sample
    huge, _ = read_vcd(write_vcd(trace, tmp_path / "huge.vcd", decimate=10**20))
    assert [t for t, _ in huge["tidesim.node_0.cycle"][1:]] == [ticks(trace.samp_t[0, 0])]


def test_clock_default_and_timescales(healthy, tmp_path):
    system, trace = healthy
    long_event = system.run(until_s=2e-3)
    changes, _ = read_vcd(write_vcd(trace, tmp_path / "a.vcd", t_to_s=1e-6))
    assert "tidesim.node_0.clk" in changes
    changes, _ = read_vcd(write_vcd(trace, tmp_path / "b.vcd", t_to_s=1e-6, clocks=False))
    assert "tidesim.node_0.clk" not in changes
    assert "tidesim.node_0.clk" not in read_vcd(write_vcd(long_event, tmp_path / "c.vcd"))[0]
    ps, header = read_vcd(write_vcd(trace, tmp_path / "p.vcd", t_to_s=1e-6, timescale="1ps"))
    assert str(header["timescale"]) in ("1 ps", "1ps")
    fs, _ = read_vcd(tmp_path / "a.vcd")
    rises_ps = [t for t, v in ps["tidesim.node_1.clk"][1:] if v == "1"]
    rises_fs = [t for t, v in fs["tidesim.node_1.clk"][1:] if v == "1"]
    assert rises_ps == [round(t / 1000) for t in rises_fs]


def test_clocks_far_from_time_zero(tmp_path):
    """At 40 s a tick no longer fits beside the codes in one sort key: same edges."""
    system = System(Topology.complete(2), offsets_ppm=[-7.0, 3.0], update_period_ticks=10**6,
                    buffer=ElasticBuffer(depth=0))  # an ideal buffer: no per-edge walks
    trace = system.run(until_s=40.0)
    a, b = 40.0 - 1e-7, 40.0 - 2e-8
    changes, _ = read_vcd(write_vcd(trace, tmp_path / "late.vcd", t_from_s=a, t_to_s=b,
                                    clocks=True))
    for j in range(2):
        clk = changes[f"tidesim.node_{j}.clk"]
        rises = [t for t, v in clk[1:] if v == "1"]
        k0 = int(np.floor(a * 125e6 * (1 + system.offsets_ppm[j] * 1e-6))) - 3
        et = [trace.edge_time(j, k) for k in range(k0, k0 + 20)]
        assert rises == [int(np.rint(e * FS)) for e in et if a < e <= b]
        assert len(rises) == 10
        first = [e for e in et if e <= a][-1]
        assert clk[0] == (ticks(a), "1" if 0.5 * (first + et[et.index(first) + 1]) > a else "0")


def test_gtkw_save_file_references_every_signal(healthy, healthy_vcd):
    path, changes, _ = healthy_vcd
    save = gtkw_path(path)
    text = save.read_text()
    assert f'[dumpfile] "{path.resolve()}"' in text
    traced = {line.split("} ", 1)[1] for line in text.splitlines() if line.startswith("+{")}
    assert traced == set(changes)
    # one group per node and per link, closed in order
    assert text.count("-node_") == 6 and text.count("-link_from_") == 12


def test_bad_arguments(healthy, tmp_path):
    _, trace = healthy
    with pytest.raises(ConfigError, match="t_from_s"):
        write_vcd(trace, tmp_path / "x.vcd", t_from_s=5e-5, t_to_s=4e-5)
    with pytest.raises(ConfigError, match="t_to_s"):
        write_vcd(trace, tmp_path / "x.vcd", t_to_s=-1.0)
    with pytest.raises(ConfigError, match="decimate"):
        write_vcd(trace, tmp_path / "x.vcd", decimate=0)
    with pytest.raises(ConfigError, match="timescale"):
        write_vcd(trace, tmp_path / "x.vcd", timescale="1s")


# ------------------------------------------------------------------------ the formatter


def reference_body(rows, ids) -> bytes:
    """Straightforward formatting of (time, family, var, value, ok) rows."""
    out, prev = [], None
    order = {"bit": 0, "vec": 1, "real": 2}  # families at one time: scalars, vectors, reals
    for t, fam, var, v, ok in sorted(rows, key=lambda r: (r[0], order[r[1]])):
        if t != prev:
            out.append(f"#{t}\n")
            prev = t
        code = bytes(ids[var]).decode()
        if fam == "bit":
            out.append(f"{'01x'[v]}{code}\n")
        elif fam == "vec":
            out.append(f"b{v:b} {code}\n" if ok else f"bx {code}\n")
        else:
            out.append(f"r{v!r} {code}\n")
    return "".join(out).encode()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_formatter_matches_a_line_by_line_reference(seed):
    rng = random.Random(seed)
    ids = id_codes(200)
    body, rows = Body(), []
    # long runs of distinct times (the fast path), across powers of ten
    for var in range(3):
        t = np.unique(np.array([rng.randrange(1, 10**(5 + 3 * var)) for _ in range(3000)]))
        v = np.array([rng.randrange(3) for _ in t], dtype=np.uint8)
        body.add_bits(var, t, v)
        rows += [(int(a), "bit", var, int(b), True) for a, b in zip(t, v, strict=True)]
    # sample-like bursts: many variables at one time (the general path)
    for _ in range(300):
        t = rng.randrange(0, 10**9)
        for var in range(3, 3 + rng.randrange(1, 40)):
            fam = rng.choice(["bit", "vec32", "vec64", "real"])
            if fam == "bit":
                v = rng.randrange(3)
                body.add_bits(var, [t], [v])
                rows.append((t, "bit", var, v, True))
            elif fam.startswith("vec"):
                width = int(fam[3:])
                v = rng.randrange(-(1 << (width - 1)), 1 << (width - 1))
                ok = rng.random() > 0.1
                body.add_vector(var, width, [t], [v], [ok])
                rows.append((t, "vec", var, v & ((1 << width) - 1), ok))
            else:
                v = rng.choice([0.0, -0.0, 1.5e-7, -123.456, 1 / 3, 1e22, rng.gauss(0, 50)])
                body.add_real(var, [t], [v])
                rows.append((t, "real", var, v, True))
    if seed == 2:  # times too large to share a sort key with the codes
        t = np.arange(3000, dtype=np.int64) * 7 + (1 << 60)
        body.add_bits(199, t, t % 2)
        rows += [(int(a), "bit", 199, int(a % 2), True) for a in t]
    if seed == 1:  # pre-made sort keys, with a narrower shift than the codes need
        t = np.arange(500, dtype=np.int64) * 11 + 5
        body.add_bit_keys((t << 4) | (3 << 2) | 1, 4)
        rows += [(int(a), "bit", 3, 1, True) for a in t]
    text = b"".join(render_body(body, ids))
    assert text == reference_body(rows, ids)
    assert len(rows) > CHUNK_ROWS // 20
    # and pyvcd reads it back
    header = b"$timescale 1 fs $end\n$scope module t $end\n" + b"".join(
        f"$var wire 64 {bytes(ids[v]).decode()} v{v} $end\n".encode() for v in range(200)
    ) + b"$upscope $end\n$enddefinitions $end\n"
    per_var = defaultdict(int)
    for tok in tokenize(io.BytesIO(header + text)):
        if tok.kind in (TokenKind.CHANGE_SCALAR, TokenKind.CHANGE_VECTOR, TokenKind.CHANGE_REAL):
            per_var[tok.data.id_code] += 1
    assert sum(per_var.values()) == len(rows)


def test_healthy_run_shows_stable_settled_and_controller_state(healthy):
    """The value-for-value checks above are not vacuous for the newer signals."""
    _, trace = healthy
    assert trace.stable.any() and trace.settled.any()
    assert (trace.settled <= trace.stable).all()
    assert np.unique(trace.controller_states[:, :, 0]).size > 3
