"""``tidesim app`` and ``run_app`` end to end, on a physical system.

* Bad input through the real command line (``tidesim.cli.main`` in this
  process): an app file whose graph cannot run, an app too big for the
  topology, a calendar deeper than ``--calendar-depth`` allows, a bad
  ``--calendar-depth``; each is one ``tidesim: error: ...`` line naming the
  field, action or port, with exit status 2 and nothing on stdout.
* The ``--json`` summary's keys and values, and ``--list``.
* The same app on physical systems with other seeds, oscillator offsets,
  phases and link latencies: the outputs are bit for bit the same, and
  those of the app's functional execution.
* Elastic buffers that fault while the application runs (buffer adjustments
  of more frames than the buffer holds, issued just after logical
  synchrony): ``run_app`` and ``--json`` name the node, link and cycle of
  each fault and the first corrupted output.
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidesim.calendars import AppFault, run_app, synchronise
from tidesim.cli import main
from tidesim.config import build_system, load_config, validate
from tidesim.waves import functional_run
from tidesim.waves.apps import app_names, get_app

PRESET = "hitl-cycle5"  # 5 nodes, 10 links: in logical synchrony after 7 s, quickly
N_NODES = 5
ERROR = "tidesim: error: "


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``tidesim ARGS`` in this process: exit status, stdout, stderr."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(capsys, *args: str) -> str:
    """Run ``tidesim ARGS``; check exit status 2, no output, one stderr line, no traceback."""
    code, out, err = run_cli(capsys, *args)
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(ERROR), err
    return lines[0]


def digest(outputs: dict) -> str:
    """sha256 over every output's name and bytes, in name order (``LogicalRun.digest``)."""
    h = hashlib.sha256()
    for name in sorted(outputs):
        h.update(name.encode())
        h.update(np.ascontiguousarray(outputs[name]).tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------ bad input

ACTIONS = '''
import numpy as np
from tidesim.waves import App, In, Out, action


@action(outputs={"y": Out("i8")}, state=("i8", ()))
def count(state, y):
    state[()] += 1
    y[()] = state


@action(inputs={"x": In("i8")}, outputs={"y": Out("i8")})
def inc(state, x, y):
    y[()] = x + 1


@action(inputs={"x": In("i8", rate=2)}, outputs={"y": Out("i8")})
def pair(state, x, y):
    y[()] = x[0] + x[1]


@action(inputs={"x": In("i8"), "z": In("i8")}, outputs={"y": Out("i8")})
def add(state, x, z, y):
    y[()] = x + z


@action(inputs={"x": In("f8", shape=(3,))}, outputs={"y": Out("f8", shape=(3,))})
def vec3(state, x, y):
    y[:] = x
'''

BAD_APPS = {
    "cycle-without-tokens": (
        "def make_app(n_nodes):\n"
        "    return (App('loop').add('a', inc).add('b', inc)\n"
        "            .connect('a.y', 'b.x').connect('b.y', 'a.x'))\n",
        "waves: deadlock: cycle a.y -> b.x, b.y -> a.x has too few initial tokens "
        "(0 in all; 0 of 2 firings of the iteration ran)"),
    "inconsistent-rates": (
        "app = (App('rates').add('c', count).add('p', pair).add('a', add)\n"
        "       .connect('c.y', 'p.x').connect('c.y', 'a.x').connect('p.y', 'a.z'))\n",
        "waves: inconsistent rates on p.y -> a.z (p fires 1x per a firing but the path "
        "c.y -> p.x, c.y -> a.x makes it 1/2x)"),
    "dtype-mismatch": (
        "app = App('types').add('c', count).add('v', vec3).connect('c.y', 'v.x')\n",
        "waves: v.x expects float64 (3,), c.y gives int64 ()"),
    "shape-mismatch": (
        "@action(outputs={'y': Out('f8', shape=(4,))})\n"
        "def vec4(state, y):\n"
        "    y[:] = 1.0\n\n\n"
        "app = App('shapes').add('s', vec4).add('v', vec3).connect('s.y', 'v.x')\n",
        "waves: v.x expects float64 (3,), s.y gives float64 (4,)"),
    "unknown-action": (
        "def make_app(n_nodes):\n"
        "    return App('wires').add('c', count).add('i', inc).connect('c.y', 'x.nope')\n",
        "waves: unknown action x in 'x.nope' (wires has: c, i)"),
    "unknown-port": (
        "app = App('wires').add('c', count).add('i', inc).connect('c.y', 'i.nope')\n",
        "waves: unknown port i.nope (i has inputs: x)"),
    "port-not-connected": (
        "app = App('open').add('c', count).add('a', add).connect('c.y', 'a.x')\n",
        "waves: a.z is not connected"),
}


@pytest.mark.parametrize("case", list(BAD_APPS))
def test_bad_app_file_is_one_line(case, tmp_path, capsys):
    body, message = BAD_APPS[case]
    path = tmp_path / "bad_app.py"
    path.write_text(ACTIONS + "\n\n" + textwrap.dedent(body), encoding="utf-8")
    line = one_error_line(capsys, "app", str(path), "--preset", PRESET, "--metacycles", "2")
    assert line == ERROR + message


def test_app_with_more_instances_than_nodes(tmp_path, capsys):
    path = tmp_path / "chain.py"
    path.write_text(ACTIONS + textwrap.dedent('''

        def make_app(n_nodes):
            app = App("chain").add("c", count)
            for k in range(n_nodes + 1):
                app.add(f"i{k}", inc).connect("c.y" if k == 0 else f"i{k - 1}.y", f"i{k}.x")
            return app
    '''), encoding="utf-8")
    args = ("app", str(path), "--preset", PRESET, "--metacycles", "2")
    line = one_error_line(capsys, *args, "--placement", "one-to-one")
    assert line == (ERROR + "placement: needs 7 nodes for 7 instances, the topology has 5, "
                    "got 'one-to-one'")
    # the greedy placement shares nodes: the same app runs
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 0, err
    assert json.loads(out)["matches_functional"] is True


def test_placement_refused_before_the_physical_run():
    """A placement the node count rules out is refused before synchronising:
    with no time to synchronise in, the refusal is still the placement's."""
    from tidesim.calendars import run_app
    from tidesim.config import build_system, load_config, validate
    from tidesim.errors import ConfigError
    from tidesim.waves import App, In, Out, action

    @action(inputs={"x": In("i8")}, outputs={"y": Out("i8")})
    def ident(state, x, y):
        y[...] = x

    system = build_system(validate(load_config({"preset": PRESET})))
    ring = App("ring")
    for k in range(system.n_nodes + 1):
        ring.add(f"a{k}", ident)
    for k in range(system.n_nodes + 1):
        ring.connect(f"a{k}.y", f"a{(k + 1) % (system.n_nodes + 1)}.x",
                     initial=1 if k == 0 else None)
    with pytest.raises(ConfigError, match="placement: needs 6 nodes"):
        run_app(ring, system, placement="one-to-one", sync_until_s=1e-9)
    pinned = App("pinned").add("a", ident, node=system.n_nodes).connect("a.y", "a.x", initial=1)
    with pytest.raises(ConfigError, match=r"^a\.node: the app needs node 5, the topology has 5 "
                                          r"nodes \(0 \.\. 4\), got 5$"):
        run_app(pinned, system, sync_until_s=1e-9)


def test_builtin_app_on_too_few_nodes(tmp_path, capsys):
    cfg = tmp_path / "two.toml"
    cfg.write_text('preset = "hitl8"\n[topology]\nn = 2\n', encoding="utf-8")
    line = one_error_line(capsys, "app", "allreduce-ring", str(cfg))
    assert line == (ERROR + "allreduce-ring.n_nodes: must be >= 3 (allreduce-ring needs 3 "
                    "nodes for nodes=2, plus the result instance), got 2")


def test_calendar_deeper_than_the_hardware(capsys):
    args = ("app", "counter", "--preset", PRESET, "--metacycles", "2", "--json")
    line = one_error_line(capsys, *args, "--calendar-depth", "2")
    assert re.fullmatch(ERROR + r"hardware\.calendar_depth: is too small: node \d+'s "
                        r"(gather|scatter|switch) calendar needs (\d+) entries, got 2", line), line
    needed = int(re.search(r"needs (\d+) entries", line).group(1))
    assert needed > 2
    # exactly that depth is enough
    code, out, err = run_cli(capsys, *args, "--calendar-depth", str(needed))
    assert code == 0, err
    assert json.loads(out)["matches_functional"] is True


@pytest.mark.parametrize("value, message", [
    ("0", "hardware.calendar_depth: must be an integer in [1, 1048576], got 0"),
    ("-4", "hardware.calendar_depth: must be an integer in [1, 1048576], got -4"),
    ("2097152", "hardware.calendar_depth: must be an integer in [1, 1048576], got 2097152"),
    ("deep", "argument --calendar-depth: invalid int value: 'deep'"),
])
def test_bad_calendar_depth_flag(value, message, capsys):
    line = one_error_line(capsys, "app", "counter", "--preset", PRESET, "--calendar-depth", value)
    assert line == ERROR + message


# ------------------------------------------------------------------ --json, --list


def test_json_summary(capsys):
    code, out, err = run_cli(capsys, "app", "counter", "--preset", PRESET, "--metacycles", "5",
                             "--json")
    assert code == 0, err
    assert err == ""
    summary = json.loads(out)
    types = {"app": str, "nodes": int, "links": int, "fidelity": str, "metacycle_cycles": int,
             "metacycles": int, "cycles": int, "matches_functional": bool,
             "output_digest": str, "link_utilisation": float, "faults": list,
             "wall_s": float, "node_cycles_per_s": float}
    for key, kind in types.items():
        assert isinstance(summary[key], kind), (key, summary[key])
    assert summary["app"] == "counter"
    assert (summary["nodes"], summary["links"]) == (N_NODES, 2 * N_NODES)
    assert summary["fidelity"] == "event"
    assert summary["metacycle_cycles"] >= 1
    # five iterations, pipelined over at least five metacycles
    assert summary["metacycles"] >= 5 and summary["iterations"] == 5
    assert 5 * summary["metacycle_cycles"] <= summary["cycles"] \
        <= summary["metacycles"] * summary["metacycle_cycles"]
    assert summary["matches_functional"] is True
    assert re.fullmatch(r"[0-9a-f]{64}", summary["output_digest"])
    assert summary["output_digest"] == digest(functional_run(get_app("counter", N_NODES),
                                                             5).outputs)
    assert 0.0 < summary["link_utilisation"] <= 1.0
    assert summary["faults"] == [] and summary["first_corrupted"] is None
    assert summary["wall_s"] > 0
    assert summary["node_cycles_per_s"] == pytest.approx(
        N_NODES * summary["cycles"] / summary["wall_s"])


def test_vcd_flag(tmp_path, capsys):
    vcd = tmp_path / "counter.vcd"
    code, out, err = run_cli(capsys, "app", "counter", "--preset", PRESET, "--metacycles", "3",
                             "--vcd", str(vcd), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["vcd"] == str(vcd) and summary["gtkw"] == str(vcd.with_suffix(".gtkw"))
    text = vcd.read_text()
    # one step per nominal period of the preset (125 MHz: 8000 ps)
    assert "$timescale 1ps $end" in text and "8000 ps per step" in text
    assert text.count("$var integer 64") >= 5 * 3 and "fire_c4" in text
    assert "tidesim.node_4.link_to_0.frame" in vcd.with_suffix(".gtkw").read_text()
    # an unwritable VCD is refused before anything runs
    line = one_error_line(capsys, "app", "counter", "--preset", PRESET, "--vcd", str(tmp_path))
    assert line == f"{ERROR}app.vcd: must be a file path, not a directory, got '{tmp_path}'"


def test_list(capsys):
    code, out, err = run_cli(capsys, "app", "--list")
    assert code == 0 and err == ""
    names = [line.split()[0] for line in out.splitlines()]
    assert names == ["allreduce-ring", "allreduce-tree", "kv", "pipeline", "life", "counter"]
    assert names == app_names()
    assert all(len(line.split(maxsplit=1)) == 2 for line in out.splitlines())  # described


# ------------------------------------------- outputs independent of the physical system

METACYCLES = 4


def physical_system(seed: int, spread_ppm: float, theta0: float, latency_hi_s: float):
    """``hitl-cycle5`` with random offsets, phases and link latencies drawn from ``seed``."""
    cfg = load_config({
        "preset": PRESET, "seed": seed,
        "clock": {"offsets_ppm": {"random_ppm": spread_ppm}, "theta0": theta0},
        "topology": {"latency_s": {"distribution": "uniform", "low_s": 1e-8,
                                   "high_s": latency_hi_s}},
    })
    return build_system(validate(cfg))


def test_outputs_do_not_depend_on_the_physical_system():
    apps = {name: get_app(name, N_NODES) for name in ("counter", "allreduce-ring")}
    want = {name: digest(functional_run(app, METACYCLES).outputs) for name, app in apps.items()}
    networks = set()

    @settings(max_examples=6, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(seed=st.integers(0, 2**32 - 1), spread=st.floats(0.0, 100.0),
           theta0=st.floats(0.0, 0.99), latency_hi=st.floats(2e-8, 2e-6))
    def same_outputs(seed, spread, theta0, latency_hi):
        system = physical_system(seed, spread, theta0, latency_hi)
        for name, app in apps.items():
            result = run_app(app, system, metacycles=METACYCLES)
            assert result.faults == []
            assert result.matches_functional
            assert result.logical.digest() == want[name], name
            net = result.schedule.network
            networks.add((tuple(result.epoch_cycles.tolist()), tuple(net.latency_cycles.tolist())))

    same_outputs()
    # the systems differed where the schedule can see it: epochs and logical latencies
    assert len(networks) >= 3


# ------------------------------------------------------- faults during the application

FAULT_METACYCLES = 3000  # past the next control sample after the adjustments (200 µs)
OVERFLOW_FRAMES = 40  # more than the buffer (depth 32) holds


@pytest.fixture(scope="module")
def synced():
    """``hitl-cycle5`` and its simulation, stopped at logical synchrony."""
    system = build_system(validate(load_config({"preset": PRESET})))
    return system, synchronise(system)


@pytest.fixture(scope="module")
def sync_s(synced) -> float:
    """When ``hitl-cycle5`` reaches logical synchrony (``run_app`` starts the app there)."""
    return synced[1].time_s


def test_logical_network_is_the_ugns_seen_from_the_epoch(synced):
    system, sim = synced
    result = run_app(get_app("counter", N_NODES), system, metacycles=2)
    assert result.sync_s == sim.time_s
    full = system.start(fidelity="event", record="full")  # edge times need the full record
    full.advance(sim.time_s)
    trace = full.trace()
    # the epoch is one physical instant: each node's last edge at synchrony;
    # the nodes started at other times, so their cycle counts differ there
    epoch = result.epoch_cycles
    assert epoch.tolist() == [trace.last_edge(n, sim.time_s) for n in range(N_NODES)]
    assert len(set(epoch.tolist())) == N_NODES
    # a frame sent at application cycle s of i (physical cycle epoch[i] + s) is
    # read at physical cycle epoch[i] + s + ugn of j: application cycle s + latency
    src, dst = system.topology.links.T
    assert trace.ugn_reported.all()
    want = np.asarray(trace.ugn) + epoch[src] - epoch[dst]
    assert result.schedule.network.latency_cycles.tolist() == want.tolist()


def adjustments(sync_s: float) -> list[dict]:
    """+40 frames on every link, issued at the first control sample after synchrony."""
    links = [(i, (i + d) % N_NODES) for i in range(N_NODES) for d in (1, -1)]
    return [{"link": list(link), "at_s": sync_s + 1e-6, "frames": OVERFLOW_FRAMES}
            for link in links]


@pytest.fixture(scope="module")
def faulty(sync_s):
    """``run_app`` of counter on ``hitl-cycle5`` whose buffers overflow after synchrony."""
    cfg = load_config({"preset": PRESET, "buffer": {"adjust": adjustments(sync_s)}})
    system = build_system(validate(cfg))
    return system, run_app(get_app("counter", N_NODES), system, metacycles=FAULT_METACYCLES)


def test_fault_names_node_link_and_cycle(faulty, sync_s):
    system, result = faulty
    assert result.sync_s == sync_s  # the adjustments did not move synchrony
    links = system.topology.links
    sched = result.schedule
    M = sched.metacycle_cycles
    lo, hi = sched.span_cycles
    assert result.faults
    for f in result.faults:
        assert isinstance(f, AppFault)
        assert (f.src, f.node) == tuple(links[f.link].tolist())
        assert f.kind == "overflow"
        assert f.cycle == result.epoch_cycles[f.node] + f.app_cycle
        # during the application's cycles
        assert lo <= f.app_cycle < lo + result.logical.cycles
        assert re.fullmatch(rf"node {f.node}, link {f.link} \({f.src}->{f.node}\): overflow "
                            rf"at cycle {f.cycle} \(application cycle {f.app_cycle}\)", str(f))
    # every link overflowed, those that carry the app's frames included
    assert sorted(f.link for f in result.faults) == list(range(len(links)))
    assert (sched.link_utilisation() > 0).any()

    # corrupted tokens cannot be trusted, whatever their values
    assert result.matches_functional is False
    assert result.first_corrupted is not None
    name, token = result.first_corrupted
    assert name in sched.graph.output_names
    corrupted = result.logical.corrupted
    assert corrupted[name][token]
    # a counter output has one token per iteration, whose operations all lie in
    # [lo + k M, hi + k M): iterations done before the first fault are clean
    first = min(f.app_cycle for f in result.faults)
    assert token * M + hi > first
    clean = max(0, (first - hi) // M)
    assert not any(bad[:clean].any() for bad in corrupted.values())
    assert result.summary()["first_corrupted"] == f"{name}[{token}]"


def test_no_adjustment_no_fault(sync_s):
    late = sync_s + 1.0  # after the application's cycles
    cfg = load_config({"preset": PRESET, "buffer": {"adjust": [
        {**a, "at_s": late} for a in adjustments(sync_s)]}})
    result = run_app(get_app("counter", N_NODES), build_system(validate(cfg)),
                     metacycles=FAULT_METACYCLES)
    assert result.faults == [] and result.first_corrupted is None
    assert result.matches_functional


def test_fault_in_json(faulty, sync_s, tmp_path, capsys):
    _, result = faulty
    lines = [f'preset = "{PRESET}"']
    for a in adjustments(sync_s):
        lines += ["[[buffer.adjust]]", f"link = {a['link']}", f"at_s = {a['at_s']!r}",
                  f"frames = {a['frames']}"]
    cfg = tmp_path / "overflow.toml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "app", "counter", str(cfg), "--metacycles",
                             str(FAULT_METACYCLES), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["faults"] == [str(f) for f in result.faults]
    for text in summary["faults"]:
        assert re.fullmatch(r"node \d+, link \d+ \(\d+->\d+\): overflow at cycle \d+ "
                            r"\(application cycle \d+\)", text), text
    name, token = result.first_corrupted
    assert summary["first_corrupted"] == f"{name}[{token}]"
    assert re.fullmatch(r"c\d+\.out\[\d+\]", summary["first_corrupted"])
