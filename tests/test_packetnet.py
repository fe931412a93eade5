"""The packet network's event loop and switch model against closed forms and
the published numbers of the reference's table (the naive allreduce rows,
whose completion time is L + 8n(N-1)/R + 1e-9·N·n)."""

from __future__ import annotations

import pytest

from tidesim.errors import ConfigError
from tidesim.packetnet import EventLoop, GreedyDropSwitcher, Message, Node, SwitcherNetwork


def network_of(n: int, rate: float, latency: float, tie_seed=None):
    loop = EventLoop(tie_seed=tie_seed)
    nodes = [Node(loop.stream()) for _ in range(n)]
    return loop, nodes, SwitcherNetwork(GreedyDropSwitcher(n, rate), nodes, latency)


@pytest.mark.parametrize(("lat", "size", "rate"),
                         [(0.25, 26, 2.0), (1e-3, 8e4, 1e6), (0.0, 5, 1e9)])
def test_a_lone_message_takes_latency_then_bytes(lat, size, rate):
    loop, (a, b), net = network_of(2, rate, lat)
    got = []

    async def send(h):
        net.send(h, Message(a, b, "x", size))

    async def recv(h):
        await b.recv(h)
        got.append(h.time)

    loop.go(send)
    loop.go(recv)
    loop.run()
    assert got == [pytest.approx(lat + size / rate, rel=1e-15)]


def test_a_message_in_its_latency_still_shares_the_sender():
    """A 1-byte message beside a big one halves the big one's rate until it
    is delivered: the big one ends at L + (S + 1)/R."""
    L, S, R = 0.5, 100.0, 4.0
    loop, (a, b, c), net = network_of(3, R, L)
    done = {}

    async def send(h):
        net.send(h, Message(a, b, "big", S), Message(a, c, "ack", 1.0))

    def receiver(node, name):
        async def run(h):
            await node.recv(h)
            done[name] = h.time
        return run

    loop.go(send)
    loop.go(receiver(b, "big"))
    loop.go(receiver(c, "ack"))
    loop.run()
    assert done["ack"] == pytest.approx(L + 1 / (R / 2))
    assert done["big"] == pytest.approx(L + (S + 1) / R)


def run_all(loop, tasks) -> float:
    """Run the tasks to the end: the virtual time of the last delivery."""
    for task in tasks:
        loop.go(task)
    loop.run()
    return loop.time


def naive_allreduce(n_nodes: int, latency: float, rate: float, size: int, tie_seed=None):
    loop, nodes, net = network_of(n_nodes, rate, latency, tie_seed)

    def program(i):
        async def run(h):
            net.send(h, *[Message(nodes[i], nodes[j], i, 8 * size)
                          for j in range(n_nodes) if j != i])
            for _ in range(n_nodes - 1):
                await nodes[i].recv(h)
            await h.sleep(1e-9 * n_nodes * size)  # the reduce over N vectors
        return run

    return run_all(loop, [program(i) for i in range(n_nodes)])


@pytest.mark.parametrize(("n", "lat", "rate", "size", "printed"), [
    (2, 0.1, 1e6, 10, "0.100080"), (2, 0.1, 1e6, 10000, "0.180020"),
    (16, 0.001, 1e6, 10, "0.002200"), (16, 0.001, 1e6, 10000, "1.201160"),
    (32, 0.0001, 1e9, 10000, "0.002900")])
def test_naive_allreduce_reproduces_the_published_cells(n, lat, rate, size, printed):
    assert f"{naive_allreduce(n, lat, rate, size):f}" == printed


def test_ties_do_not_change_the_result():
    want = naive_allreduce(16, 0.001, 1e6, 10)
    for seed in (1, 2, 3):
        assert naive_allreduce(16, 0.001, 1e6, 10, tie_seed=seed) == want


def test_bad_input_is_one_line():
    with pytest.raises(ConfigError, match=r"^switcher.rate_bytes_per_s: must be > 0, got 0$"):
        GreedyDropSwitcher(2, 0)
    loop = EventLoop()
    with pytest.raises(ConfigError, match=r"^network.nodes: must be the switcher's 3, got 2$"):
        SwitcherNetwork(GreedyDropSwitcher(3, 1.0), [Node(loop.stream()), Node(loop.stream())],
                        0.1)


def tree_allreduce(n_nodes: int, latency: float, rate: float, size: int, tie_seed=None):
    """Reduce up a heap-ordered binary tree, broadcast down (each child its own send)."""
    loop, nodes, net = network_of(n_nodes, rate, latency, tie_seed)

    def program(i):
        kids = [k for k in (2 * i + 1, 2 * i + 2) if k < n_nodes]

        async def run(h):
            for _ in kids:
                await nodes[i].recv(h)
            await h.sleep(1e-9 * (1 + len(kids)) * size)
            if i:
                net.send(h, Message(nodes[i], nodes[(i - 1) // 2], "up", 8 * size))
                await nodes[i].recv(h)
            for k in kids:
                net.send(h, Message(nodes[i], nodes[k], "down", 8 * size))
        return run

    return run_all(loop, [program(i) for i in range(n_nodes)])


@pytest.mark.parametrize(("n", "lat", "rate", "size", "printed"), [
    (2, 0.1, 1e6, 10, "0.200160"), (2, 0.1, 1e6, 10000, "0.360030"),
    (16, 0.001, 1e6, 10, "0.008880"), (16, 0.001, 1e6, 10000, "1.047350"),
    (16, 0.001, 1e6, 10000000, "1040.107250"), (32, 0.1, 1e6, 10000, "2.272630"),
    (32, 0.1, 1e6, 10000000, "1361.042500"), (32, 0.1, 1e9, 10, "1.000001"),
    (32, 0.0001, 1e9, 10000000, "1.490913")])
def test_tree_allreduce_reproduces_the_published_cells(n, lat, rate, size, printed):
    """Siblings arriving together share their parent's receive rate; a
    parent's two sends share its send rate: the cells need both."""
    assert f"{tree_allreduce(n, lat, rate, size):f}" == printed
    assert f"{tree_allreduce(n, lat, rate, size, tie_seed=5):f}" == printed


def stream_allreduce(N, latency, rate, n, tie_seed=None):  # noqa: N803 (the reference's names)
    """Reduce around a ring, then broadcast, a chunk at a time, each hop
    stop-and-wait (data 8·len + 1 bytes, ACKs 1 byte)."""
    loop, nodes, net = network_of(N, rate, latency, tie_seed)
    chunk = max(1, n // N)
    lens = [min(chunk, n - s) for s in range(0, n, chunk)]
    C = len(lens)

    def send(h, i, j, kind, c, size):
        net.send(h, Message(nodes[i], nodes[j], (kind, c), size))

    def root():
        async def run(h):
            send(h, 0, 1, "reduce", 0, 8 * lens[0] + 1)
            nxt, have = 1, 0
            while have < C:
                kind, c = (await nodes[0].recv(h)).message.message
                if kind == "reduce_ack":
                    if nxt < C:
                        send(h, 0, 1, "reduce", nxt, 8 * lens[nxt] + 1)
                        nxt += 1
                elif kind == "reduce":
                    have += 1
                    send(h, 0, N - 1, "reduce_ack", c, 1)
            for c in range(C):
                send(h, 0, 1, "bcast", c, 8 * lens[c] + 1)
                while True:
                    kind, _ = (await nodes[0].recv(h)).message.message
                    if kind == "bcast_ack":
                        break
        return run

    def node(i):
        nxt_node, prev = (i + 1) % N, i - 1
        last = i == N - 1
        async def run(h):
            queue, outstanding = [], False
            first = None
            while first is None:
                kind, c = (await nodes[i].recv(h)).message.message
                if kind == "reduce":
                    send(h, i, prev, "reduce_ack", c, 1)
                    await h.sleep(2e-9 * lens[c])
                    queue.append(c)
                elif kind == "reduce_ack":
                    outstanding = False
                elif kind == "bcast":
                    first = c
                    break
                if queue and not outstanding:
                    c2 = queue.pop(0)
                    send(h, i, nxt_node, "reduce", c2, 8 * lens[c2] + 1)
                    outstanding = True
            # broadcast
            got, buf, outstanding = 0, [], False
            c = first
            while True:
                if c is not None:
                    send(h, i, prev, "bcast_ack", c, 1)
                    got += 1
                    if not last:
                        buf.append(c)
                if buf and not outstanding:
                    c2 = buf.pop(0)
                    send(h, i, nxt_node, "bcast", c2, 8 * lens[c2] + 1)
                    outstanding = True
                if got == C and not buf:
                    return
                kind, cc = (await nodes[i].recv(h)).message.message
                c = None
                if kind == "bcast":
                    c = cc
                elif kind == "bcast_ack":
                    outstanding = False
        return run

    return run_all(loop, [root(), *(node(i) for i in range(1, N))])


@pytest.mark.parametrize(("n", "lat", "rate", "size", "printed"), [
    (2, 0.1, 1e6, 10, "0.800232"), (2, 0.1, 1e6, 10000, "1.020026"),
    (2, 0.1, 1e6, 10000000, "200.860011"), (16, 0.001, 1e6, 10, "0.067676"),
    (16, 0.001, 1e6, 10000, "0.419556"), (16, 0.001, 1e6, 10000000, "305.143356"),
    (32, 0.0001, 1e9, 10, "0.009901")])
def test_stream_allreduce_reproduces_the_published_cells(n, lat, rate, size, printed):
    """Stop-and-wait around a ring: ACKs in their latency phase share the
    sender's rate, every send re-plans."""
    assert f"{stream_allreduce(n, lat, rate, size):f}" == printed


def test_messages_of_one_pair_share_its_flow():
    """Two messages a -> b sent together each get half the flow: both land at
    L + 2S/R (and a third to c would not slow them: a's rate splits per
    destination, then per message)."""
    L, S, R = 0.5, 10.0, 4.0
    loop, (a, b, c), net = network_of(3, R, L)
    times = []

    async def send(h):
        net.send(h, Message(a, b, 1, S), Message(a, b, 2, S))

    async def recv(h):
        for _ in range(2):
            await b.recv(h)
            times.append(h.time)

    loop.go(send)
    loop.go(recv)
    loop.run()
    assert times == [pytest.approx(L + 2 * S / R)] * 2


# --------------------------------------------------------------------------- the library's atoms

PUBLISHED_TABLE = """\
| Nodes | Latency | NIC rate | Size | Naive | Tree | Stream |
|:--|:--|:--|:--|:--|:--|:--|
| 2 | 0.1 | 1E+06 | 10 | 0.100080 | 0.200160 | 0.800232 |
| 2 | 0.1 | 1E+06 | 10000 | 0.180020 | 0.360030 | 1.020026 |
| 2 | 0.1 | 1E+06 | 10000000 | 80.120000 | 160.230000 | 200.860011 |
| 16 | 0.001 | 1E+06 | 10 | 0.002200 | 0.008880 | 0.067676 |
| 16 | 0.001 | 1E+06 | 10000 | 1.201160 | 1.047350 | 0.419556 |
| 16 | 0.001 | 1E+06 | 10000000 | 1200.161000 | 1040.107250 | 305.143356 |
| 32 | 0.1 | 1E+06 | 10 | 0.102480 | 1.001120 | 9.901000 |
| 32 | 0.1 | 1E+06 | 10000 | 2.580320 | 2.272630 | 19.551941 |
| 32 | 0.1 | 1E+06 | 10000000 | 2480.420000 | 1361.042500 | 336.256147 |
| 32 | 0.1 | 1E+09 | 10 | 0.100003 | 1.000001 | 9.900001 |
| 32 | 0.1 | 1E+09 | 10000 | 0.102800 | 1.001270 | 19.100486 |
| 32 | 0.1 | 1E+09 | 10000000 | 2.900000 | 2.402500 | 19.185915 |
| 32 | 0.0001 | 1E+09 | 10 | 0.000103 | 0.001001 | 0.009901 |
| 32 | 0.0001 | 1E+09 | 10000 | 0.002900 | 0.002403 | 0.019586 |
| 32 | 0.0001 | 1E+09 | 10000000 | 2.800100 | 1.490913 | 0.358567 |"""


@pytest.fixture(scope="module")
def library_table():
    from tidesim.packetnet import table

    return table()


def test_the_library_reproduces_the_published_table(library_table):
    from tidesim.packetnet import format_table

    assert format_table(library_table) == PUBLISHED_TABLE


def test_the_whole_table_does_not_depend_on_how_ties_are_broken():
    from tidesim.packetnet import format_table, table

    assert format_table(table(tie_seed=11)) == PUBLISHED_TABLE


def test_the_atoms_take_the_plain_programs_times_to_the_bit(library_table):
    """The atom runtime adds nothing to the timing: every cell equals the
    plain node programs above (written without atoms) exactly."""
    programs = {"naive": naive_allreduce, "tree": tree_allreduce, "stream": stream_allreduce}
    for row in library_table:
        for name, program in programs.items():
            want = program(row["nodes"], row["latency_s"], row["rate_bytes_per_s"], row["size"])
            assert row[name] == want, (name, row)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_forms_hold_on_random_configurations(seed):
    """Naive: L + 8n(N-1)/R + 1e-9·N·n. Tree on 2 nodes: 2L + 16n/R + 3e-9·n.
    Stream with bandwidth to spare: L·[2(C-1) + N + max(2C, 2(C-1) + N - 1)]."""
    import numpy as np

    from tidesim.packetnet import allreduce

    rng = np.random.default_rng(seed)
    for _ in range(4):
        big_n = int(rng.integers(2, 12))
        lat = float(rng.uniform(1e-4, 1e-1))
        rate = float(rng.uniform(1e5, 1e9))
        n = int(rng.integers(1, 50_000))
        naive = allreduce("naive", big_n, lat, rate, n).time_s
        assert naive == pytest.approx(lat + 8 * n * (big_n - 1) / rate + 1e-9 * big_n * n,
                                      rel=1e-12)
        tree2 = allreduce("tree", 2, lat, rate, n).time_s
        assert tree2 == pytest.approx(2 * lat + 16 * n / rate + 3e-9 * n, rel=1e-12)
        c = -(-n // max(1, n // big_n))
        stream = allreduce("stream", big_n, lat, 1e18, n).time_s
        bound = lat * (2 * (c - 1) + big_n + max(2 * c, 2 * (c - 1) + big_n - 1))
        assert bound <= stream <= bound + 4e-9 * n * c  # + the reduces' compute


@pytest.mark.parametrize("algorithm", ["naive", "tree", "stream"])
@pytest.mark.parametrize(("n_nodes", "size"), [(1, 5), (2, 1), (3, 7), (5, 23), (8, 64)])
def test_every_algorithm_sums_the_vectors(algorithm, n_nodes, size):
    """With real data every node ends with the sum of all vectors
    (integer-valued, so any order of addition is exact), whatever the ties."""
    import numpy as np

    from tidesim.packetnet import allreduce

    rng = np.random.default_rng(n_nodes * 100 + size)
    vectors = rng.integers(-1000, 1000, (n_nodes, size)).astype(float)
    for tie_seed in (None, 3):
        run = allreduce(algorithm, n_nodes, 1e-3, 1e6, size, vectors=vectors, tie_seed=tie_seed)
        for got in run.results:
            np.testing.assert_array_equal(got, vectors.sum(axis=0))


def test_message_counts_match_the_reference():
    """Naive N(N-1), tree 2(N-1), stream C(4N-2): 620, 992 and 4158 for
    (16, 10), (16, 1e4) and (32, 1e4)."""
    from tidesim.packetnet import allreduce

    assert allreduce("naive", 16, 1e-3, 1e6, 10).messages == 240
    assert allreduce("tree", 32, 1e-3, 1e6, 10).messages == 62
    assert [allreduce("stream", nn, 1e-3, 1e6, n).messages
            for nn, n in ((16, 10), (16, 10_000), (32, 10_000))] == [620, 992, 4158]
