"""Vectorized text formatting of a VCD body (value changes sorted by time).

A general-purpose VCD writer formats one value change at a time, which costs
about a microsecond each; a cycle-level waveform of a few milliseconds holds
millions of clock toggles. Here the changes come as arrays in three
*families* (scalars, vectors, reals) and the text is produced in bulk:

* scalar changes are sorted by one integer key, ``time << S | code`` with
  ``code = variable << 2 | value``; vector and real changes (one per control
  sample, far fewer) are sorted by time and merged in behind the scalars of
  the same time;
* long runs of scalar changes at distinct times with the same number of
  digits (the clocks, between two control samples) take a fast path: a
  compiled loop writes each ``#t`` line and its change line as one
  fixed-width record, the digits four at a time from a table;
* everything else is rendered into fixed-width rows of a ``uint8`` matrix,
  NUL-padded wherever a line is shorter (leading zeros, the tail of a real);
  rows are whole 8-byte blocks, so placing the lines of all families in
  output order is one fancy assignment of ``uint64`` blocks per family, and
  the padding is dropped at the end with one boolean mask.

The caller gives times as integers in the file's time unit, at most one
change per variable and time; a ``#t`` line is written before the first
change of every new time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .._jit import njit

__all__ = ["Body", "id_codes", "render_body"]

CHUNK_ROWS = 1 << 17
_BLOCK = 8
_POW10 = np.array([10**k for k in range(1, 19)], dtype=np.int64)
# "0000" .. "9999" as 4 ASCII bytes each


def _digit_table(width: int) -> np.ndarray:
    """``uint8[10**width, width]``: every number below ``10**width`` as zero-padded digits."""
    i = np.arange(10**width, dtype=np.int64)[:, None]
    return (i // 10 ** np.arange(width - 1, -1, -1) % 10 + 48).astype(np.uint8)


_LUT4 = _digit_table(4)  # "0000" .. "9999"
_LUT4_WORD = _LUT4.view(np.uint32).ravel()
_BIT_CHARS = np.array([48, 49, 120], dtype=np.uint8)  # "0", "1", "x"
_FAST_MIN = 64  # shortest run of scalar changes worth the fast path


def id_codes(n: int) -> np.ndarray:
    """``uint8[n, w]``: distinct VCD identifier codes of one fixed width ``w``.

    Codes use the printable characters ``!`` (33) to ``~`` (126).
    """
    w = 1
    while 94**w < max(n, 1):
        w += 1
    idx = np.arange(n, dtype=np.int64)
    out = np.empty((n, w), dtype=np.uint8)
    for c in range(w - 1, -1, -1):
        out[:, c] = 33 + idx % 94
        idx //= 94
    return out


@dataclass
class Body:
    """Value changes of a VCD body, by family.

    Every family has parallel arrays of int64 times in file units (``*_t``)
    and values: ``bit_code`` (``variable << 2 | value``, value 0, 1 or 2 for
    ``x``), ``vec_var`` and ``vec_v`` (int64, written as an unsigned two's
    complement number of the variable's width) with ``vec_ok`` (False for
    ``x``), ``real_var`` and ``real_v`` (float64). Variables index the
    identifier table. A variable has at most one change per time.
    """

    bit_t: list[np.ndarray] = field(default_factory=list)
    bit_code: list[np.ndarray] = field(default_factory=list)
    bit_keys: list[tuple[np.ndarray, int]] = field(default_factory=list)
    vec_t: list[np.ndarray] = field(default_factory=list)
    vec_var: list[np.ndarray] = field(default_factory=list)
    vec_v: list[np.ndarray] = field(default_factory=list)
    vec_ok: list[np.ndarray] = field(default_factory=list)
    real_t: list[np.ndarray] = field(default_factory=list)
    real_var: list[np.ndarray] = field(default_factory=list)
    real_v: list[np.ndarray] = field(default_factory=list)

    def add_bits(self, var: int, t: np.ndarray, v: np.ndarray) -> None:
        self.add_bit_codes(t, (var << 2) | np.asarray(v, dtype=np.int64))

    def add_bit_codes(self, t: np.ndarray, code: np.ndarray) -> None:
        """Scalar changes given as ``variable << 2 | value`` codes."""
        self.bit_t.append(np.asarray(t, dtype=np.int64))
        self.bit_code.append(np.asarray(code, dtype=np.int64))

    def add_bit_keys(self, keys: np.ndarray, shift: int) -> None:
        """Scalar changes given as sort keys ``time << shift | code`` (times >= 0)."""
        self.bit_keys.append((np.asarray(keys, dtype=np.int64), int(shift)))

    def add_vector(self, var: int, width: int, t: np.ndarray, v: np.ndarray,
                   ok: np.ndarray | None = None) -> None:
        v = np.asarray(v, dtype=np.int64)
        if width < 64:
            v = v & ((1 << width) - 1)
        self.vec_t.append(np.asarray(t, dtype=np.int64))
        self.vec_var.append(np.full(len(t), var, dtype=np.int64))
        self.vec_v.append(v)
        self.vec_ok.append(np.ones(len(t), dtype=bool) if ok is None
                           else np.asarray(ok, dtype=bool))

    def add_real(self, var: int, t: np.ndarray, v: np.ndarray) -> None:
        self.real_t.append(np.asarray(t, dtype=np.int64))
        self.real_var.append(np.full(len(t), var, dtype=np.int64))
        self.real_v.append(np.asarray(v, dtype=np.float64))


def _cat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def _blocks(width: int) -> int:
    return -(-width // _BLOCK)


def _digit_groups(t: np.ndarray, groups: int) -> np.ndarray:
    """``uint8[n, 4 * groups]``: the decimal digits of ``t``, zero-padded on the left."""
    n = t.size
    words = np.empty((n, groups), dtype=np.uint32)
    rest = t
    for g in range(groups - 1, -1, -1):
        q = rest // 10_000
        words[:, g] = _LUT4_WORD[rest - q * 10_000]
        rest = q
    return words.view(np.uint8).reshape(n, 4 * groups)


def _render_times(t: np.ndarray) -> np.ndarray:
    """``#t\n`` lines, right-aligned in rows of whole blocks (NUL-padded)."""
    n = t.size
    nd = np.searchsorted(_POW10, t, side="right") + 1  # digits of each time
    groups = -(-int(nd.max()) // 4)
    w = _blocks(groups * 4 + 2) * _BLOCK
    m = np.zeros((n, w), dtype=np.uint8)
    m[:, w - 1 - groups * 4: w - 1] = _digit_groups(t, groups)
    m[:, w - 1] = 10
    start = w - 1 - nd  # first digit column
    m *= np.arange(w)[None, :] >= start[:, None]
    m[np.arange(n), start - 1] = ord("#")
    return m


@njit
def _fast_lines(t, nd, code, tails, lut4):
    """``#t`` lines each followed by one scalar change, all times new with ``nd`` digits.

    Args:
        t: int64[n] times (``nd`` digits each); code: int64[n] scalar codes.
        tails: uint8[codes, w]: ``"\n"`` and the change line of each code.
        lut4: uint8[10**4, 4]: the digits of every number below 10**4.

    Returns:
        uint8[n * (1 + nd + w)]: the text, one fixed-width record per change.
    """
    n = t.size
    w = tails.shape[1]
    rl = 1 + nd + w
    out = np.empty(n * rl, dtype=np.uint8)
    U = np.uint64  # unsigned indices: Numba adds no wraparound fix-up
    for r in range(n):
        base = r * rl
        out[U(base)] = 35  # "#"
        v = t[U(r)]
        end = base + nd  # the last digit; four at a time from the table
        while end - base >= 4:
            q = v // 10_000
            g = U(v - q * 10_000)
            out[U(end - 3)] = lut4[g, 0]
            out[U(end - 2)] = lut4[g, 1]
            out[U(end - 1)] = lut4[g, 2]
            out[U(end)] = lut4[g, 3]
            v = q
            end -= 4
        while end > base:
            q = v // 10
            out[U(end)] = 48 + (v - q * 10)
            v = q
            end -= 1
        c = U(code[U(r)])
        o = base + 1 + nd
        for x in range(w):
            out[U(o + x)] = tails[c, U(x)]
    return out


def _render_bits(v: np.ndarray, ids: np.ndarray) -> np.ndarray:
    n, iw = ids.shape
    k = _blocks(iw + 2)
    m = np.zeros((n, k * _BLOCK), dtype=np.uint8)
    m[:, 0] = _BIT_CHARS[v]
    m[:, 1:1 + iw] = ids
    m[:, 1 + iw] = 10
    return m


def _render_vectors(v: np.ndarray, ok: np.ndarray, ids: np.ndarray) -> np.ndarray:
    n, iw = ids.shape
    u = v.view(np.uint64)
    bits = ((u[:, None] >> np.arange(63, -1, -1, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    lead = np.where(bits.any(axis=1), bits.argmax(axis=1), 63)
    lead[~ok] = 63
    nb = 64 - int(lead.min())  # widest number of the chunk
    bits = bits[:, 64 - nb:]
    lead = lead - (64 - nb)
    k = _blocks(nb + iw + 3)
    m = np.zeros((n, k * _BLOCK), dtype=np.uint8)
    m[:, 0] = ord("b")
    body = bits + 48
    body[np.arange(nb)[None, :] < lead[:, None]] = 0
    body[~ok, :] = 0
    body[~ok, nb - 1] = ord("x")
    m[:, 1:1 + nb] = body
    m[:, 1 + nb] = 32
    m[:, 2 + nb:2 + nb + iw] = ids
    m[:, 2 + nb + iw] = 10
    return m


def _real_text(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shortest round-trip decimal text of every value: (bytes, start, length)."""
    if v.size == 0:
        return np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64)
    text = "\n".join(map(repr, v.tolist())).encode("ascii") + b"\n"
    buf = np.frombuffer(text, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    return buf, starts, ends - starts


def _render_reals(buf, starts, lens, ids) -> np.ndarray:
    n, iw = ids.shape
    tw = int(lens.max())
    k = _blocks(tw + iw + 3)
    m = np.zeros((n, k * _BLOCK), dtype=np.uint8)
    m[:, 0] = ord("r")
    cols = np.arange(tw)[None, :]
    src = np.minimum(starts[:, None] + cols, buf.size - 1)
    m[:, 1:1 + tw] = np.where(cols < lens[:, None], buf[src], 0)
    m[:, 1 + tw] = 32
    m[:, 2 + tw:2 + tw + iw] = ids
    m[:, 2 + tw + iw] = 10
    return m


def _sorted_bits(body: Body) -> tuple[np.ndarray, np.ndarray]:
    """Scalar changes sorted by time: (times, codes)."""
    t = _cat(body.bit_t, np.int64)
    code = _cat(body.bit_code, np.int64)
    shift = max([max(int(code.max()).bit_length(), 1) if code.size else 1]
                + [s for _, s in body.bit_keys])
    keyed = [k if s == shift else (k >> s << shift) | (k & ((1 << s) - 1))
             for k, s in body.bit_keys]
    if not keyed and t.size == 0:
        return t, code
    if t.size == 0 or (int(t.min()) >= 0 and int(t.max()) < 1 << (62 - shift)):
        if t.size:
            keyed.append((t << shift) | code)
        key = np.concatenate(keyed) if len(keyed) > 1 else keyed[0].copy()
        key.sort(kind="stable")
        return key >> shift, key & ((1 << shift) - 1)
    for k, s in body.bit_keys:  # times too large to share a key with the codes
        t = np.concatenate([t, k >> s])
        code = np.concatenate([code, k & ((1 << s) - 1)])
    order = np.argsort(t, kind="stable")
    return t[order], code[order]


def _sorted_others(body: Body):
    """Vector and real changes sorted by time: (times, family 1 or 2, index in family)."""
    vt = _cat(body.vec_t, np.int64)
    rt = _cat(body.real_t, np.int64)
    t = np.concatenate([vt, rt])
    order = np.argsort(t, kind="stable")
    fam = np.where(order < vt.size, 1, 2).astype(np.uint8)
    return t[order], fam, order - np.where(fam == 1, 0, vt.size)


def render_body(body: Body, ids: np.ndarray, t_start: int | None = None) -> Iterator[bytes]:
    """Yield the VCD body text of ``body`` in chunks, sorted by time.

    Args:
        body: the value changes.
        ids: ``uint8[n_vars, w]`` identifier codes (see :func:`id_codes`).
        t_start: a time whose ``#t`` line was already written (none is
            repeated for changes at that time).
    """
    tb, cb = _sorted_bits(body)
    to, fo, lo = _sorted_others(body)
    nb, no = tb.size, to.size
    if nb + no == 0:
        return
    vec_var, vec_v = _cat(body.vec_var, np.int64), _cat(body.vec_v, np.int64)
    vec_ok = _cat(body.vec_ok, bool)
    real_var = _cat(body.real_var, np.int64)
    rbuf, rstart, rlen = _real_text(_cat(body.real_v, np.float64))
    iw = ids.shape[1]
    # "\n" + the change line of every scalar code, for the fast path
    tails = np.zeros((ids.shape[0], 4, iw + 3), dtype=np.uint8)
    tails[:, :, 0] = 10
    tails[:, :3, 1] = _BIT_CHARS[None, :]
    tails[:, :, 2:2 + iw] = ids[:, None, :]
    tails[:, :, 2 + iw] = 10
    tails = tails.reshape(-1, iw + 3)

    # Other changes go behind the scalar changes of their time: O row r
    # follows the first sb[r] scalar rows.
    sb = np.searchsorted(tb, to, side="right")
    # scalar rows that start a new time (an O row is always earlier than the
    # scalar row after it, since sb counts the scalar rows at or before it)
    new = np.empty(nb, dtype=bool)
    if nb:
        np.not_equal(tb[1:], tb[:-1], out=new[1:])
        new[0] = t_start is None or tb[0] != t_start
    cuts = np.concatenate([sb, np.searchsorted(tb, _POW10, side="left"),
                           np.flatnonzero(new[1:] != new[:-1]) + 1])
    cuts = np.unique(cuts[(cuts > 0) & (cuts < nb)])
    starts = np.concatenate([[0], cuts]).astype(np.int64)
    ends = np.concatenate([cuts, [nb]]).astype(np.int64)
    fast = (ends - starts >= _FAST_MIN) & new[starts] if nb else np.zeros(0, dtype=bool)
    fast_runs = list(zip(starts[fast].tolist(), ends[fast].tolist(), strict=True))

    prev = [t_start]

    def general(b0: int, b1: int, o0: int, o1: int) -> Iterator[bytes]:
        """The rows of scalar changes b0:b1 and other changes o0:o1, merged."""
        if b1 <= b0 and o1 <= o0:
            return
        times = np.concatenate([tb[b0:b1], to[o0:o1]])
        fam = np.concatenate([np.zeros(b1 - b0, np.uint8), fo[o0:o1]])
        local = np.concatenate([np.arange(b0, b1), lo[o0:o1]])
        if o1 > o0 and b1 > b0:
            order = np.argsort(times, kind="stable")
            times, fam, local = times[order], fam[order], local[order]
        for c0 in range(0, times.size, CHUNK_ROWS):
            yield _general_chunk(times[c0:c0 + CHUNK_ROWS], fam[c0:c0 + CHUNK_ROWS],
                                 local[c0:c0 + CHUNK_ROWS], prev[0])
            prev[0] = int(times[min(c0 + CHUNK_ROWS, times.size) - 1])

    def _general_chunk(t, f, li, before):
        nw = np.empty(t.size, dtype=bool)
        nw[0] = before is None or t[0] != before
        np.not_equal(t[1:], t[:-1], out=nw[1:])
        parts = []
        for code in (0, 1, 2):
            sel = f == code
            if not sel.any():
                continue
            idx = li[sel]
            if code == 0:
                c = cb[idx]
                mat = _render_bits(c & 3, ids[c >> 2])
            elif code == 1:
                mat = _render_vectors(vec_v[idx], vec_ok[idx], ids[vec_var[idx]])
            else:
                mat = _render_reals(rbuf, rstart[idx], rlen[idx], ids[real_var[idx]])
            parts.append((sel, mat))
        tm = _render_times(t[nw]) if nw.any() else None
        kt = 0 if tm is None else tm.shape[1] // _BLOCK
        # blocks per row: the time line (when the time is new) then the change line
        kv = np.zeros(t.size, dtype=np.int64)
        for sel, mat in parts:
            kv[sel] = mat.shape[1] // _BLOCK
        end = np.cumsum(kv + kt * nw)
        value_at = end - kv
        out = np.zeros(int(end[-1]), dtype=np.uint64)
        if tm is not None:
            out[(value_at[nw] - kt)[:, None] + np.arange(kt)] = tm.view(np.uint64)
        for sel, mat in parts:
            k = mat.shape[1] // _BLOCK
            out[value_at[sel][:, None] + np.arange(k)] = mat.view(np.uint64)
        raw = out.view(np.uint8)
        return raw[raw != 0].tobytes()

    b_at = o_at = 0
    for s0, e0 in fast_runs:
        o_end = int(np.searchsorted(sb, s0, side="right"))
        yield from general(b_at, s0, o_at, o_end)
        nd = int(np.searchsorted(_POW10, tb[s0], side="right")) + 1
        for c0 in range(s0, e0, CHUNK_ROWS):
            c1 = min(c0 + CHUNK_ROWS, e0)
            yield _fast_lines(tb[c0:c1], nd, cb[c0:c1], tails, _LUT4).tobytes()
        prev[0] = int(tb[e0 - 1])
        b_at, o_at = e0, o_end
    yield from general(b_at, nb, o_at, no)
