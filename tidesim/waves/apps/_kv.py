"""The ``kv`` app: a sharded key-value store and a client.

``S`` shards ``shard0 .. shard{S-1}``, each holding a table of ``K`` int64
values (``-1``: no value), and one ``client``. Every iteration the client
sends one request to every shard and logs the replies it got to the
previous iteration's requests. A request is three int64 ``(op, key, value)``:
``op`` 0 is a no-op, 1 a get, 2 a put of ``value`` at ``key`` (``0 <= key <
K``, a key of that shard). A shard's reply is ``(op, key, result)``: for a
get the stored value, for a put the value it replaced (``-1`` for none), for
a no-op ``(0, 0, 0)``.

The requests are pseudo-random, from the client's xorshift64 generator
(``x ^= x << 13; x ^= x >> 7; x ^= x << 17`` on 64 bits, state
``x₀ = (seed · 0x9E3779B97F4A7C15 + 1) mod 2⁶⁴``, or 1 if that is 0): per
iteration and shard, in shard order, it steps ``x`` once and asks
``op = x mod 3``, ``key = (x >> 8) mod K``, ``value = (x >> 24) mod 1000``.

Replies come back over edges with one initial token each (a no-op reply),
so the client's firing ``t`` reads the replies to the requests of firing
``t - 1``: output ``client.log`` is ``3·S`` int64 per iteration, the
replies of shards ``0 .. S-1`` (all no-ops in iteration 0).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..._jit import njit
from .. import App, In, Out, action
from ._common import count, needs_nodes

__all__ = ["DESCRIPTION", "first_state", "make_kv"]

DESCRIPTION = ("a sharded key-value store: S shards, a client issuing pseudo-random "
               "gets and puts to every shard, a log of the replies")

_GOLDEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


@njit
def _client(state, *ports):
    # ports: S reply inputs, then S request outputs and the log (all int64 [3] or [3S])
    S = (len(ports) - 1) // 2
    log = ports[2 * S]
    for k in range(S):
        for j in range(3):
            log[3 * k + j] = ports[k][j]
    x = state[0]
    keys = state[1]
    for k in range(S):
        x ^= x << np.uint64(13)
        x ^= x >> np.uint64(7)
        x ^= x << np.uint64(17)
        req = ports[S + k]
        req[0] = np.int64(x % np.uint64(3))
        req[1] = np.int64((x >> np.uint64(8)) % keys)
        req[2] = np.int64((x >> np.uint64(24)) % np.uint64(1000))
    state[0] = x


@njit
def _shard(state, q, r):
    op = q[0]
    if op == 0:
        return
    key = q[1]
    r[0] = op
    r[1] = key
    r[2] = state[key]
    if op == 2:
        state[key] = q[2]


@cache
def _actions(shards: int, keys: int) -> tuple:
    """The client of ``shards`` shards and the shard of ``keys`` keys (made once each)."""
    ins = {f"r{k}": In("i8", (3,)) for k in range(shards)}
    outs = {f"q{k}": Out("i8", (3,)) for k in range(shards)}
    outs["log"] = Out("i8", (3 * shards,))
    client = action(_client, inputs=ins, outputs=outs, state=("u8", (2,)), name="client")
    shard = action(_shard, inputs={"q": In("i8", (3,))}, outputs={"r": Out("i8", (3,))},
                   state=("i8", (keys,)), name="shard")
    return client, shard


def first_state(seed: int) -> int:
    """``x₀``, the client generator's first state for ``seed``."""
    x = (seed * _GOLDEN + 1) & _MASK
    return x or 1


def make_kv(n_nodes: int, *, shards: int | None = None, keys: int = 8, seed: int = 0) -> App:
    """A key-value store of ``shards`` shards (default ``min(n_nodes - 1, 8)``) and a client.

    Args:
        n_nodes: the nodes available (one instance per node; ``shards + 1``).
        shards: ``S``, >= 1.
        keys: ``K``, keys per shard, >= 1.
        seed: the client's seed, >= 0.

    Returns:
        The app ``kv``; its output is ``client.log``.
    """
    S = max(min(n_nodes - 1, 8), 1) if shards is None else shards
    S = count("kv", "shards", S, 1)
    K = count("kv", "keys", keys, 1)
    seed = count("kv", "seed", seed, 0)
    needs_nodes("kv", S + 1, n_nodes, f"shards={S}, plus the client")
    client, shard = _actions(S, K)
    app = App("kv").add("client", client, state=np.array([first_state(seed), K], np.uint64),
                         node=0)
    for k in range(S):
        app.add(f"shard{k}", shard, state=np.full(K, -1, dtype=np.int64), node=k + 1)
        app.connect(f"client.q{k}", f"shard{k}.q")
        app.connect(f"shard{k}.r", f"client.r{k}", initial=1)
    return app
