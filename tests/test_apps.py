"""tidesim.waves.apps: the built-in applications.

Every app's functional execution is checked against a model written here,
independently of the app's code: closed forms (counter), the pipeline's
transforms replayed on whole numpy streams, numpy sums of integer-valued
vectors (exact, so any order of addition gives them) for the allreduces, a
dict model with its own xorshift generator for the key-value store and a
whole-board numpy Game of Life (``np.roll``) for life. Then every app is
scheduled on a logical network, the schedule proved by ``check_schedule``,
and executed in logical time: outputs and final states must equal the
functional execution's bit for bit, for random per-link latencies too.

The apps' actions are made once per parameter set and Numba compiles each
once per process, so the tests reuse a few fixed sizes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidesim.calendars import LogicalNetwork, check_schedule, execute, schedule
from tidesim.errors import ConfigError
from tidesim.waves import App, functional_run
from tidesim.waves.apps import app_names, describe, get_app, load_app, parameters

REPO = Path(__file__).resolve().parents[1]
N_ITER = 6
MASK = (1 << 64) - 1
LATENCY_SETTINGS = settings(max_examples=6, deadline=None, derandomize=True,
                            suppress_health_check=[HealthCheck.too_slow])

# the sizes every test uses (each parameter set compiles its actions once)
COUNTER = dict(n_nodes=5)
PIPELINE = dict(n_nodes=7, stages=7, width=4)
RING = dict(n_nodes=5, length=8)  # 4 ring nodes + result
TREE = dict(n_nodes=12, length=3)  # 6 members
KV = dict(n_nodes=4, keys=4, seed=7)  # 3 shards
LIFE = dict(n_nodes=9, h=5, w=6, seed=3)  # 3 x 3 tiles


@cache
def app_of(name: str, **kw) -> App:
    return get_app(name, **kw)


@cache
def reference(name: str, **kw):
    return functional_run(app_of(name, **kw), N_ITER)


def ring_net(n: int, latencies=None, latency: int = 3) -> LogicalNetwork:
    net = LogicalNetwork.ring(n, latency_cycles=latency)
    if latencies is None:
        return net
    return LogicalNetwork(n, net.links, np.asarray(latencies[:net.n_links], dtype=np.int64))


def torus_links(rows: int, cols: int) -> np.ndarray:
    """Directed links of a ``rows x cols`` torus (node ``r·cols + c``), no duplicates."""
    links = set()
    for r in range(rows):
        for c in range(cols):
            a = r * cols + c
            for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                b = ((r + dr) % rows) * cols + (c + dc) % cols
                if a != b:
                    links.add((a, b))
    return np.array(sorted(links), dtype=np.int64)


def torus_net(rows: int, cols: int, latencies=None, latency: int = 4) -> LogicalNetwork:
    links = torus_links(rows, cols)
    lat = (np.full(len(links), latency) if latencies is None
           else np.asarray(latencies[:len(links)]))
    return LogicalNetwork(rows * cols, links, lat.astype(np.int64))


def assert_bit_identical(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key in want:
        a, b = np.asarray(got[key]), np.asarray(want[key])
        assert (a.dtype, a.shape) == (b.dtype, b.shape), key
        assert a.tobytes() == b.tobytes(), key


def run_logical(app: App, net: LogicalNetwork, iterations: int = N_ITER):
    sched = schedule(app.graph(), net, "one-to-one")
    check_schedule(sched)
    return execute(sched, iterations)


# ------------------------------------------------------------------ registry


def test_names_and_descriptions():
    assert app_names() == ["allreduce-ring", "allreduce-tree", "kv", "pipeline", "life",
                           "counter"]
    for name in app_names():
        line = describe(name)
        assert isinstance(line, str) and line and "\n" not in line
        assert isinstance(get_app(name, 16), App)


@pytest.mark.parametrize("name", ["allreduce-ring", "allreduce-tree", "kv", "pipeline", "life",
                                  "counter"])
@pytest.mark.parametrize("n_nodes", [3, 4, 9, 16])
def test_apps_fit_one_instance_per_node(name, n_nodes):
    graph = get_app(name, n_nodes).graph()
    assert len(graph.instances) <= n_nodes


@pytest.mark.parametrize("call, message", [
    (lambda: get_app("nope", 4),
     "app: must be one of allreduce-ring, allreduce-tree, kv, pipeline, life, counter, "
     "got 'nope'"),
    (lambda: describe("nope"),
     "app: must be one of allreduce-ring, allreduce-tree, kv, pipeline, life, counter, "
     "got 'nope'"),
    (lambda: get_app("pipeline", 2),
     "pipeline.n_nodes: must be >= 3 (pipeline needs 3 nodes for stages=3), got 2"),
    (lambda: get_app("pipeline", 4, stages=6),
     "pipeline.n_nodes: must be >= 6 (pipeline needs 6 nodes for stages=6), got 4"),
    (lambda: get_app("allreduce-ring", 2),
     "allreduce-ring.n_nodes: must be >= 3 (allreduce-ring needs 3 nodes for nodes=2, "
     "plus the result instance), got 2"),
    (lambda: get_app("allreduce-tree", 1),
     "allreduce-tree.n_nodes: must be >= 2 (allreduce-tree needs 2 nodes for members=1, "
     "two instances each), got 1"),
    (lambda: get_app("kv", 4, shards=5),
     "kv.n_nodes: must be >= 6 (kv needs 6 nodes for shards=5, plus the client), got 4"),
    (lambda: get_app("life", 4, rows=3, cols=2),
     "life.n_nodes: must be >= 6 (life needs 6 nodes for rows=3, cols=2), got 4"),
    (lambda: get_app("counter", 4, nodes=5),
     "counter.n_nodes: must be >= 5 (counter needs 5 nodes for nodes=5), got 4"),
    (lambda: get_app("counter", 0), "n_nodes: must be an integer >= 1, got 0"),
    (lambda: get_app("kv", 4, shard=2), "kv parameters: must be among shards, keys, seed, "
                                        "got ['shard']"),
    (lambda: get_app("allreduce-ring", 5, length=6),
     "allreduce-ring.length: must be a multiple of nodes=4, got 6"),
    (lambda: get_app("life", 4, h=0), "life.h: must be an integer >= 1, got 0"),
    (lambda: get_app("kv", 4, seed=-1), "kv.seed: must be an integer >= 0, got -1"),
    (lambda: get_app("pipeline", 5, width=2.5), "pipeline.width: must be an integer, got 2.5"),
    (lambda: load_app("no-such-app", 4),
     "app: must be one of allreduce-ring, allreduce-tree, kv, pipeline, life, counter or an "
     "existing FILE.py, got 'no-such-app'"),
    (lambda: load_app(3, 4), "app: must be an app name or a path to a FILE.py, got 3"),
])
def test_bad_inputs_are_one_line(call, message):
    with pytest.raises(ConfigError) as info:
        call()
    assert str(info.value) == message


def test_parameters():
    assert parameters("life") == ("rows", "cols", "h", "w", "seed", "density")
    assert parameters("counter") == ("nodes",)


APP_FILE = '''
import numpy as np
from tidesim.waves import App, In, Out, action


@action(outputs={"y": Out("i8")}, state=("i8", ()))
def count(state, y):
    state[()] += 1
    y[()] = state


@action(inputs={"x": In("i8")}, outputs={"y": Out("i8")})
def triple(state, x, y):
    y[()] = 3 * x
'''


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_load_app_from_a_file(tmp_path):
    maker = _write(tmp_path / "maker.py", APP_FILE + '''

def make_app(n_nodes):
    app = App(f"triples{n_nodes}").add("c", count)
    for k in range(n_nodes - 1):
        app.add(f"t{k}", triple).connect("c.y" if k == 0 else f"t{k - 1}.y", f"t{k}.x")
    return app
''')
    app = load_app(str(maker), 3)
    assert app.name == "triples3"
    assert functional_run(app, 3).outputs["t1.y"].tolist() == [9, 18, 27]
    plain = _write(tmp_path / "plain.py", APP_FILE + '''
app = App("plain").add("c", count).add("t", triple).connect("c.y", "t.x")
''')
    run = functional_run(load_app(plain, 99), 2)
    assert run.outputs["t.y"].tolist() == [3, 6]
    assert load_app("counter", 3).graph().output_names == ("c0.out", "c1.out", "c2.out")


@pytest.mark.parametrize("body, message", [
    ("x = 1\n", "app: must define make_app(n_nodes) or a module-level app, got '{path}'"),
    ("def make_app(n_nodes):\n    return 42\n",
     "bad.py: make_app(n_nodes): must be a tidesim.waves.App, got 'int'"),
    ("app = 'not an app'\n", "bad.py: app: must be a tidesim.waves.App, got 'str'"),
])
def test_load_app_bad_files(tmp_path, body, message):
    path = _write(tmp_path / "bad.py", body)
    with pytest.raises(ConfigError) as info:
        load_app(str(path), 4)
    assert str(info.value) == message.format(path=path)


def test_load_app_missing_file(tmp_path):
    missing = tmp_path / "missing.py"
    with pytest.raises(ConfigError) as info:
        load_app(str(missing), 4)
    assert str(info.value).endswith(f"or an existing FILE.py, got '{missing}'")
    assert "\n" not in str(info.value)


# ------------------------------------------------------- functional: models


def test_counter_closed_form():
    run = reference("counter", **COUNTER)
    n = COUNTER["n_nodes"]
    for i in range(n):
        p = (i - 1) % n
        want = [(i + k + 1) + (p + k) for k in range(N_ITER)]
        assert run.outputs[f"c{i}.out"].tolist() == want
        assert run.states[f"c{i}"].tolist() == [i + N_ITER]


def test_pipeline_model():
    app = app_of("pipeline", **PIPELINE)
    graph = app.graph()
    # source -> decim (2:1) -> scale -> integrate -> upsample (1:2) -> diff -> sink
    assert [x.name for x in graph.instances] == [
        "source", "decim1", "scale2", "integrate3", "upsample4", "diff5", "sink"]
    assert graph.repetitions.tolist() == [2, 1, 1, 1, 1, 2, 2]
    w = PIPELINE["width"]
    t = np.arange(2 * N_ITER)[:, None]
    j = np.arange(w)[None, :]
    v = ((t * w + j) % 17) - 8.0
    d = 0.5 * (v[0::2] + v[1::2])
    s = 0.5 * d + 1.0
    acc = np.cumsum(s, axis=0)
    up = np.empty((2 * N_ITER, w))
    up[0::2], up[1::2] = acc, acc[:, ::-1]
    diff = up - np.roll(up, 1, axis=1)
    want = diff @ np.arange(1.0, w + 1)
    run = reference("pipeline", **PIPELINE)
    assert run.outputs["sink.sum"].tolist() == want.tolist()
    assert run.states["integrate3"].tolist() == acc[-1].tolist()
    assert run.states["source"].tolist() == [2 * N_ITER]


def member_input(i: int, k: int, length: int) -> np.ndarray:
    """Both allreduces' input vector of member ``i`` in iteration ``k``."""
    return ((31 * i + 7 * np.arange(length) + 13 * k) % 19) - 9.0


def test_allreduce_ring_sums():
    n, V = RING["n_nodes"] - 1, RING["length"]
    c = V // n
    graph = app_of("allreduce-ring", **RING).graph()
    assert graph.repetitions.tolist() == [2 * (n - 1)] * n + [1]
    run = reference("allreduce-ring", **RING)
    for k in range(N_ITER):
        total = sum(member_input(i, k, V) for i in range(n))
        assert run.outputs["result.sum"][k].tolist() == total.tolist()
        for i in range(1, n):
            chunks = run.outputs[f"r{i}.out"].reshape(N_ITER, 2 * (n - 1), c)[k]
            assert not chunks[:n - 2].any()
            for t, chunk in enumerate(chunks[n - 2:]):
                idx = (i + 1 - t) % n
                assert chunk.tolist() == total[idx * c:(idx + 1) * c].tolist()


def test_allreduce_tree_sums():
    m, L = TREE["n_nodes"] // 2, TREE["length"]
    graph = app_of("allreduce-tree", **TREE).graph()
    assert len(graph.instances) == 2 * m and graph.repetitions.tolist() == [1] * (2 * m)
    run = reference("allreduce-tree", **TREE)
    for t in range(N_ITER):
        total = sum(member_input(k, t, L) for k in range(m))
        for k in range(m):
            assert run.outputs[f"down{k}.y"][t].tolist() == total.tolist()
    for k in range(m):
        assert run.states[f"up{k}"].tolist() == [k, N_ITER]


def xorshift(x: int) -> int:
    x ^= (x << 13) & MASK
    x ^= x >> 7
    x ^= (x << 17) & MASK
    return x


def test_kv_dict_model():
    S, K, seed = KV["n_nodes"] - 1, KV["keys"], KV["seed"]
    x = (seed * 0x9E3779B97F4A7C15 + 1) & MASK or 1
    tables: list[dict[int, int]] = [{} for _ in range(S)]
    replies = [(0, 0, 0)] * S
    log = []
    for _ in range(N_ITER):
        log.append([v for r in replies for v in r])
        replies = []
        for k in range(S):
            x = xorshift(x)
            op, key, value = x % 3, (x >> 8) % K, (x >> 24) % 1000
            if op == 0:
                replies.append((0, 0, 0))
                continue
            replies.append((op, key, tables[k].get(key, -1)))
            if op == 2:
                tables[k][key] = value
    run = reference("kv", **KV)
    assert run.outputs["client.log"].tolist() == log
    ops = {r[0] for row in log for r in zip(row[0::3], row[1::3], row[2::3], strict=True)}
    assert ops == {0, 1, 2}  # the mix has every kind of request
    for k in range(S):
        want = [tables[k].get(key, -1) for key in range(K)]
        assert run.states[f"shard{k}"].tolist() == want
    assert run.states["client"].tolist() == [x, K]


def life_step(board: np.ndarray) -> np.ndarray:
    k = sum(np.roll(np.roll(board, dr, 0), dc, 1)
            for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0))
    return ((k == 3) | ((k == 2) & (board == 1))).astype(np.uint8)


def check_life(run, rows: int, cols: int, h: int, w: int, board: np.ndarray) -> None:
    for g in range(run.iterations):
        board = life_step(board)
        for r in range(rows):
            for c in range(cols):
                tile = board[r * h:(r + 1) * h, c * w:(c + 1) * w]
                assert run.outputs[f"tile{r}_{c}.count"][g] == tile.sum()
    for r in range(rows):
        for c in range(cols):
            tile = board[r * h:(r + 1) * h, c * w:(c + 1) * w]
            assert run.states[f"tile{r}_{c}"].tolist() == tile.tolist()


def life_board(rows, cols, h, w, seed, density=0.35):
    return (np.random.default_rng(seed).random((rows * h, cols * w)) < density).astype(np.uint8)


def test_life_whole_board():
    h, w, seed = LIFE["h"], LIFE["w"], LIFE["seed"]
    board = life_board(3, 3, h, w, seed)
    run = reference("life", **LIFE)
    assert len(run.outputs) == 9
    check_life(run, 3, 3, h, w, board)
    assert board.sum() > 0


@pytest.mark.parametrize("rows, cols", [(1, 1), (1, 2), (2, 3)])
def test_life_small_tori(rows, cols):
    # tiles that are their own neighbours, or neighbours twice over
    app = get_app("life", rows * cols, rows=rows, cols=cols, h=4, w=5, seed=11)
    check_life(functional_run(app, 4), rows, cols, 4, 5, life_board(rows, cols, 4, 5, 11))


def test_life_grid_from_nodes():
    for n, want in [(1, (1, 1)), (2, (1, 2)), (8, (2, 4)), (9, (3, 3)), (10, (3, 3))]:
        names = get_app("life", n, h=2, w=2).graph().output_names
        assert len(names) == want[0] * want[1]
        assert names[-1] == f"tile{want[0] - 1}_{want[1] - 1}.count"


def test_apps_without_jit_agree():
    """The kernels run as plain Python (NUMBA_DISABLE_JIT=1), bit for bit, warning-free."""
    script = textwrap.dedent('''
        import hashlib
        from tidesim.waves import functional_run
        from tidesim.waves.apps import app_names, get_app
        for name in app_names():
            run = functional_run(get_app(name, 9), 3)
            h = hashlib.sha256()
            for k in sorted(run.outputs):
                h.update(run.outputs[k].tobytes())
            for k in sorted(run.states):
                h.update(run.states[k].tobytes())
            print(name, h.hexdigest())
    ''')
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-W", "error", "-c", script], env=env, cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    env.pop("NUMBA_DISABLE_JIT")
    jit = subprocess.run([sys.executable, "-W", "error", "-c", script], env=env, cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert out == jit and len(out.splitlines()) == 6


# ------------------------------------------------- logical time = functional


CASES = {
    "counter": (COUNTER, lambda: ring_net(5, latency=7)),
    "pipeline": (PIPELINE, lambda: ring_net(7, latency=2)),
    "allreduce-ring": (RING, lambda: ring_net(5, latency=5)),
    "allreduce-tree": (TREE, lambda: ring_net(12, latency=3)),
    "kv": (KV, lambda: ring_net(4, latency=6)),
    "life": (LIFE, lambda: torus_net(3, 3)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_logical_execution_matches_functional(name):
    params, net = CASES[name]
    ref = reference(name, **params)
    run = run_logical(app_of(name, **params), net())
    assert_bit_identical(run.outputs, ref.outputs)
    assert_bit_identical(run.states, ref.states)


def latencies(n_links: int):
    return st.lists(st.integers(1, 40), min_size=n_links, max_size=n_links)


@LATENCY_SETTINGS
@given(lat=latencies(10))
def test_counter_any_latencies(lat):
    run = run_logical(app_of("counter", **COUNTER), ring_net(5, lat))
    ref = reference("counter", **COUNTER)
    assert_bit_identical(run.outputs, ref.outputs)
    assert_bit_identical(run.states, ref.states)


@LATENCY_SETTINGS
@given(lat=latencies(10))
def test_allreduce_ring_any_latencies(lat):
    run = run_logical(app_of("allreduce-ring", **RING), ring_net(5, lat))
    ref = reference("allreduce-ring", **RING)
    assert_bit_identical(run.outputs, ref.outputs)
    assert_bit_identical(run.states, ref.states)


@LATENCY_SETTINGS
@given(lat=latencies(len(torus_links(3, 3))))
def test_life_any_latencies(lat):
    run = run_logical(app_of("life", **LIFE), torus_net(3, 3, lat))
    ref = reference("life", **LIFE)
    assert_bit_identical(run.outputs, ref.outputs)
    assert_bit_identical(run.states, ref.states)


@LATENCY_SETTINGS
@given(lat=latencies(8))
def test_kv_any_latencies(lat):
    run = run_logical(app_of("kv", **KV), ring_net(4, lat))
    ref = reference("kv", **KV)
    assert_bit_identical(run.outputs, ref.outputs)
    assert_bit_identical(run.states, ref.states)


# ------------------------------------------------------------------ scale


def test_allreduce_tree_schedules_on_1024_nodes():
    app = get_app("allreduce-tree", 1024)
    graph = app.graph()
    assert len(graph.instances) == 1024 and set(graph.repetitions.tolist()) == {1}
    # in-order binary tree: every up has at most two children, depth <= log2(512) + 1
    parent = {e.src // 2: e.dst // 2 for e in graph.edges
              if graph.instances[e.src].name.startswith("up")
              and graph.instances[e.dst].name.startswith("up")}
    assert len(parent) == 511
    fan_in = np.bincount(list(parent.values()), minlength=512)
    assert fan_in.max() == 2

    def depth(k):
        return 0 if k not in parent else 1 + depth(parent[k])

    assert max(depth(k) for k in range(512)) <= 9
    net = torus_net(32, 32, latency=10)
    t0 = time.perf_counter()
    sched = schedule(graph, net, "one-to-one")
    elapsed = time.perf_counter() - t0
    assert sched.n_firings == 1024
    assert elapsed < 10.0, f"scheduling took {elapsed:.1f} s"
