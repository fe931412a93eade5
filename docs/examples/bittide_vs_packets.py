"""Allreduce completion time, bittide against a packet network, over node count and vector size.

The packet network (``tidesim.packetnet``) runs its three algorithms, naive,
tree and stream, at the bittide link's rate (one 64-bit frame per tick:
``8 · f_nom`` bytes/s) and its physical latency (``topology.latency_s``, the
elastic buffer not added). Bittide runs the scheduled apps ``allreduce-ring``
(on a cycle of ``N + 1`` nodes) and ``allreduce-tree`` (on a hypercube of
``2N`` nodes) with the logical latencies (UGNs) of a converged physical run
of the hardware rig's settings (``hitl8``, seed 1): one allreduce in cycles
(``tidesim.packetnet.completion_cycles``), divided by ``f_nom``.

Vectors too large for the calendars (the default ``Hardware()``) are not
scheduled: the ring's closed form (``ring_closed_form``) and the tree's
affine law, each checked cycle for cycle against real schedules, give
their times, and those cells are marked extrapolated. The table gives, for
every cell, the packet latency at which the packet network would tie where
it wins.

Usage::

    python docs/examples/bittide_vs_packets.py [--small] [--out DIR] [--workers N]

writes ``DIR/runs/results.csv`` (every time, one row per system, algorithm
and cell), ``DIR/runs/closed_form.csv`` (the closed forms against real
schedules), ``DIR/summary.csv``, ``DIR/summary.md``,
``DIR/time_vs_size.png``, ``DIR/time_vs_nodes.png`` and ``DIR/speedup.png``.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _study import parse_args

from tidesim.calendars import Hardware, LogicalNetwork, check_schedule, schedule, synchronise
from tidesim.config import build_system, load_config, validate
from tidesim.errors import ConfigError
from tidesim.packetnet import allreduce, completion_cycles, ring_closed_form, ring_route_cycles
from tidesim.studies import write_csv
from tidesim.studies.tables import markdown_table
from tidesim.waves.apps import get_app

SEED = 1  # the physical run's random offsets
PRESET = "hitl8"  # the rig: 125 MHz, 10 ns links, 32-frame buffers, the pump controller
SYNC_UNTIL_S = 600.0  # a cycle of 33 nodes takes 170 s of physical time to settle
ALGORITHMS = ("naive", "tree", "stream")
APPS = ("ring", "tree")
FULL = {"nodes": (2, 4, 8, 16, 32),
        "sizes": (1, 8, 64, 512, 4096, 32_768, 262_144, 2_097_152, 16_777_216)}
SMALL = {"nodes": (2, 4), "sizes": (1, 64, 4096, 1_048_576)}
# the tree's affine law: fitted through 192 and 256 elements, checked at 128 and 320
TREE_ANCHORS = (128, 192, 256, 320)
TREE_FIT = (192, 256)
# from 4096 elements on, a node writes more than Hardware().tx_words (4096)
# words per iteration: such vectors are never scheduled
LARGEST_SCHEDULED = 512
HARDWARE = Hardware()


def topology(app: str, nodes: int) -> dict:
    """The bittide topology of an app of ``nodes`` members."""
    if app == "ring":  # ring nodes 0..N-1 and the result instance on node N
        return {"kind": "cycle", "n": nodes + 1}
    d = round(math.log2(2 * nodes))  # up and down of every member
    if 2 ** d != 2 * nodes:
        raise ValueError(f"the tree runs on a hypercube: nodes must be a power of 2, got {nodes}")
    return {"kind": "hypercube", "d": d}


def converge(app: str, nodes: int) -> dict:
    """Synchronise the physical system; its logical network and link parameters."""
    cfg = {"preset": PRESET, "seed": SEED, "topology": topology(app, nodes)}
    system = build_system(validate(load_config(cfg)))
    sim = synchronise(system, until_s=SYNC_UNTIL_S)
    try:
        trace = sim.trace()
        net = LogicalNetwork.of_trace(trace)
        sync_s = float(sim.time_s)
    finally:
        sim.stop()
    links = system.topology.links
    lam = np.asarray(trace.final_logical_latency.filled(0), dtype=np.int64)
    back = {(int(a), int(b)): k for k, (a, b) in enumerate(links.tolist())}
    round_trip = [lam[k] + lam[back[(b, a)]] for k, (a, b) in enumerate(links.tolist())]
    latency = np.unique(np.asarray(system.topology.latency_s, dtype=np.float64))
    if len(latency) != 1:
        raise ValueError(f"links of different latencies: {latency}")
    return {"app": app, "nodes": nodes, "network": net, "f_nom_hz": float(system.f_nom_hz),
            "latency_s": float(latency[0]), "sync_s": sync_s,
            "hop_cycles": float(np.mean(round_trip)) / 2, "topology": topology(app, nodes)}


def app_length(app: str, nodes: int, size: int) -> int:
    """Elements the app moves per member: the ring pads to a multiple of ``nodes``."""
    return nodes * math.ceil(size / nodes) if app == "ring" else size


def make_app(app: str, nodes: int, length: int):
    if app == "ring":
        return get_app("allreduce-ring", nodes + 1, length=length)
    return get_app("allreduce-tree", 2 * nodes, length=length)


def schedule_one(app: str, nodes: int, length: int, net: LogicalNetwork) -> dict:
    """Schedule one app on the converged network, within ``Hardware()``; check it."""
    row = {"app": app, "nodes": nodes, "length": length}
    t0 = time.perf_counter()
    try:
        sched = schedule(make_app(app, nodes, length).graph(), net, "one-to-one",
                         hardware=HARDWARE)
    except ConfigError as exc:
        return {**row, "fits": False, "refused": str(exc),
                "schedule_wall_s": time.perf_counter() - t0}
    check_schedule(sched)
    row.update(fits=True, cycles=completion_cycles(sched),
               metacycle_cycles=sched.metacycle_cycles, stages=sched.stages,
               schedule_wall_s=time.perf_counter() - t0)
    if app == "ring":
        row["route_cycles"] = ring_route_cycles(sched).tolist()
    return row


def packet_times(nodes: int, size: int, latency_s: float, rate: float) -> dict[str, float]:
    return {a: allreduce(a, nodes, latency_s, rate, size).time_s for a in ALGORITHMS}


def tie_latency_s(nodes: int, size: int, rate: float, target_s: float,
                  latency_s: float) -> float | None:
    """The packet latency at which the packet network's best time reaches
    ``target_s`` (None when it already does at ``latency_s``).

    Every algorithm's time grows with the latency, piecewise linearly: the
    best reaches the target when the last of them does. Each is found by
    regula falsi (Illinois), to a relative 1e-9."""
    found = latency_s
    for alg in ALGORITHMS:
        def gap(lat, alg=alg):
            return allreduce(alg, nodes, lat, rate, size).time_s - target_s
        lo, g_lo = latency_s, gap(latency_s)
        if g_lo >= 0:
            continue
        hi = max(2 * lo, target_s)
        g_hi = gap(hi)
        while g_hi < 0:
            lo, g_lo, hi = hi, g_hi, 4 * hi
            g_hi = gap(hi)
        side = 0
        for _ in range(200):
            mid = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
            g_mid = gap(mid)
            if abs(g_mid) <= 1e-9 * target_s or hi - lo <= 1e-12 * hi:
                lo = hi = mid
                break
            if g_mid < 0:
                lo, g_lo = mid, g_mid
                g_hi = g_hi / 2 if side == -1 else g_hi
                side = -1
            else:
                hi, g_hi = mid, g_mid
                g_lo = g_lo / 2 if side == 1 else g_lo
                side = 1
        found = max(found, hi)
    return None if found == latency_s else found


def tree_law(points: dict[int, int]) -> tuple[float, float]:
    """``T = a + b·L`` through two ``(L, T)`` points."""
    (l1, t1), (l2, t2) = sorted(points.items())
    b = (t2 - t1) / (l2 - l1)
    return t2 - b * l2, b


def run(nodes_list, sizes, workers) -> dict:
    """Every schedule and packet run; the closed forms checked against the schedules."""
    with ProcessPoolExecutor(max_workers=workers) as pool:
        nets = {(r["app"], r["nodes"]): r for r in pool.map(
            converge, *zip(*[(a, n) for n in nodes_list for a in APPS], strict=True))}
        jobs = set()
        for app, nodes in nets:
            want = {app_length(app, nodes, s) for s in sizes if s <= LARGEST_SCHEDULED}
            if app == "tree":
                want |= set(TREE_ANCHORS)
            else:  # the ring's closed form is checked at chunks of 1, 2, 4, ... elements
                want |= {nodes * 2 ** k for k in range(10) if nodes * 2 ** k <= LARGEST_SCHEDULED}
            jobs |= {(app, nodes, length) for length in want}
        # the longest first, so that the pool is busy to the end
        order = sorted(jobs, key=lambda j: (j[1] * j[2] ** 2, j), reverse=True)
        futures = [pool.submit(schedule_one, app, nodes, length, nets[(app, nodes)]["network"])
                   for app, nodes, length in order]
        packets = {}
        for nodes in nodes_list:
            info = nets[("ring", nodes)]
            for size in sizes:
                packets[(nodes, size)] = packet_times(nodes, size, info["latency_s"],
                                                      8 * info["f_nom_hz"])
        scheds = {(r["app"], r["nodes"], r["length"]): r for r in (f.result() for f in futures)}
    return {"nets": nets, "scheds": scheds, "packets": packets}


def closed_forms(nodes_list, scheds) -> tuple[dict, list[dict]]:
    """The ring's closed form and the tree's affine law per node count, each
    checked against every real schedule it can be compared with.

    Raises:
        RuntimeError: a closed form that disagrees with a real schedule.
    """
    forms, checks = {}, []
    for nodes in nodes_list:
        ring = {k[2]: r for k, r in scheds.items() if k[:2] == ("ring", nodes) and r["fits"]}
        routes = {tuple(r["route_cycles"]) for r in ring.values()}
        if len(routes) != 1:
            raise RuntimeError(f"ring of {nodes}: routes differ between schedules: {routes}")
        route = list(routes.pop())
        forms[("ring", nodes)] = route
        for length, r in sorted(ring.items()):
            form = ring_closed_form(route, length // nodes)
            checks.append({"app": "ring", "nodes": nodes, "length": length, "role": "check",
                           "scheduled_cycles": r["cycles"], "closed_form_cycles": form.cycles,
                           "scheduled_metacycle": r["metacycle_cycles"],
                           "closed_form_metacycle": form.metacycle_cycles})
        tree = {k[2]: r for k, r in scheds.items() if k[:2] == ("tree", nodes) and r["fits"]}
        missing = [a for a in TREE_ANCHORS if a not in tree]
        if missing:
            raise RuntimeError(f"tree of {nodes}: anchors {missing} do not fit the hardware")
        a, b = tree_law({L: tree[L]["cycles"] for L in TREE_FIT})
        forms[("tree", nodes)] = (a, b)
        for length, r in sorted(tree.items()):
            if length < TREE_ANCHORS[0]:
                continue  # below the anchors the latency still shapes the schedule
            role = "fit" if length in TREE_FIT else "check"
            checks.append({"app": "tree", "nodes": nodes, "length": length, "role": role,
                           "scheduled_cycles": r["cycles"], "closed_form_cycles": a + b * length,
                           "scheduled_metacycle": r["metacycle_cycles"],
                           "closed_form_metacycle": None})
    bad = [c for c in checks if c["scheduled_cycles"] != c["closed_form_cycles"]
           or (c["closed_form_metacycle"] is not None
               and c["scheduled_metacycle"] != c["closed_form_metacycle"])]
    if bad:
        raise RuntimeError(f"closed form and schedule disagree: {bad}")
    return forms, checks


def bittide_cycles(app, nodes, size, scheds, forms) -> tuple[int, str, dict]:
    """Cycles of one allreduce: a real schedule where it fits, else the closed form."""
    length = app_length(app, nodes, size)
    r = scheds.get((app, nodes, length))
    if r is not None and r["fits"]:
        return r["cycles"], "schedule", r
    if app == "ring":
        return ring_closed_form(forms[("ring", nodes)], length // nodes).cycles, "closed form", {}
    a, b = forms[("tree", nodes)]
    if length < TREE_ANCHORS[0]:
        raise RuntimeError(f"tree of {nodes}, {length} elements: not scheduled, below the law")
    return round(a + b * length), "closed form", {}


def segmented_cycles(app, nodes, size, scheds) -> tuple[int, int, int]:
    """Cycles of the vector cut into the segments of the largest schedule that fits
    (one iteration each, back to back: ``T + (k - 1)·M``); the segment, and ``k``."""
    fit = max((r for k, r in scheds.items() if k[:2] == (app, nodes) and r["fits"]),
              key=lambda r: r["length"])
    k = math.ceil(app_length(app, nodes, size) / fit["length"])
    return fit["cycles"] + (k - 1) * fit["metacycle_cycles"], fit["length"], k


def tabulate(nodes_list, sizes, data) -> tuple[list[dict], list[dict], list[dict]]:
    nets, scheds, packets = data["nets"], data["scheds"], data["packets"]
    forms, checks = closed_forms(nodes_list, scheds)
    results, summary = [], []
    for nodes in nodes_list:
        for size in sizes:
            info = nets[("ring", nodes)]
            f_hz, lat, rate = info["f_nom_hz"], info["latency_s"], 8 * info["f_nom_hz"]
            cell = {"nodes": nodes, "size": size}
            pk = packets[(nodes, size)]
            for alg, t in pk.items():
                results.append({**cell, "system": "packet", "algorithm": alg, "time_s": t,
                                "cycles": t * f_hz, "source": "packetnet", "length": size,
                                "latency_s": lat, "rate_bytes_per_s": rate,
                                "metacycle_cycles": None, "stages": None,
                                "extrapolated": False})
            bt = {}
            for app in APPS:
                cyc, source, r = bittide_cycles(app, nodes, size, scheds, forms)
                bt[app] = (cyc / nets[(app, nodes)]["f_nom_hz"], source)
                results.append({**cell, "system": "bittide", "algorithm": app,
                                "time_s": bt[app][0], "cycles": cyc, "source": source,
                                "length": app_length(app, nodes, size), "latency_s": lat,
                                "rate_bytes_per_s": rate,
                                "metacycle_cycles": r.get("metacycle_cycles"),
                                "stages": r.get("stages"),
                                "extrapolated": source != "schedule"})
            seg = {}
            for app in APPS:
                cyc, length, k = segmented_cycles(app, nodes, size, scheds)
                if k == 1:
                    cyc = round(bt[app][0] * nets[(app, nodes)]["f_nom_hz"])
                seg[app] = cyc / nets[(app, nodes)]["f_nom_hz"]
                results.append({**cell, "system": "bittide", "algorithm": f"{app}-segmented",
                                "time_s": seg[app], "cycles": cyc, "source": "schedule",
                                "length": length * k, "latency_s": lat,
                                "rate_bytes_per_s": rate, "metacycle_cycles": None,
                                "stages": None, "extrapolated": False,
                                "segment_length": length, "segments": k})
            p_alg = min(pk, key=pk.get)
            b_alg = min(bt, key=lambda a: bt[a][0])
            p_s, b_s = pk[p_alg], bt[b_alg][0]
            summary.append({
                **cell, "packet_best": p_alg, "packet_s": p_s,
                "packet_naive_s": pk["naive"], "packet_tree_s": pk["tree"],
                "packet_stream_s": pk["stream"],
                "bittide_ring_s": bt["ring"][0], "bittide_tree_s": bt["tree"][0],
                "bittide_best": b_alg, "bittide_s": b_s,
                "winner": "bittide" if b_s < p_s else "packet",
                "speedup": p_s / b_s,
                "packet_cycles_per_element": p_s * f_hz / size,
                "bittide_cycles_per_element": b_s * f_hz / size,
                "tie_latency_s": (tie_latency_s(nodes, size, rate, b_s, lat)
                                  if p_s < b_s else None),
                "extrapolated": bt[b_alg][1] != "schedule",
                "segmented_best": min(seg, key=seg.get), "bittide_segmented_s": min(seg.values()),
            })
    return results, summary, checks


# -- plots ----------------------------------------------------------------------------

COLOURS = {"ring": "tab:orange", "tree": "tab:green", "packet": "black"}


def _figure(w, h):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _bittide_line(ax, xs, rows, app, label):
    ys = [r[f"bittide_{app}_s"] for r in rows]
    ax.plot(xs, ys, "-", color=COLOURS[app], label=label)
    for x, y, r in zip(xs, ys, rows, strict=True):
        extra = r["_extra"][app]
        ax.plot([x], [y], "o", color=COLOURS[app], mfc="white" if extra else COLOURS[app])


def plot_sizes(summary, nodes_list, path: Path) -> None:
    cols = min(3, len(nodes_list))
    rows_n = math.ceil(len(nodes_list) / cols)
    fig = _figure(4.2 * cols, 3.4 * rows_n)
    axes = fig.subplots(rows_n, cols, squeeze=False).ravel()
    for ax, nodes in zip(axes, nodes_list, strict=False):
        rows = [r for r in summary if r["nodes"] == nodes]
        xs = [r["size"] for r in rows]
        for alg, style in zip(ALGORITHMS, (":", "--", "-."), strict=True):
            ax.plot(xs, [r[f"packet_{alg}_s"] for r in rows], style, color="grey", lw=1,
                    label=f"packet {alg}")
        ax.plot(xs, [r["packet_s"] for r in rows], "-", color="black", lw=2.2, alpha=0.35,
                label="packet, best")
        ax.set_xscale("log")
        _bittide_lines(ax, xs, rows, f"{nodes} nodes", "vector size (float64 elements)",
                       "allreduce completion time (s)")
    axes[0].legend(fontsize=7, title="hollow: closed form", title_fontsize=7)
    for ax in axes[len(nodes_list):]:
        ax.axis("off")
    fig.suptitle("One allreduce at 125 MHz: 8-byte frames, 10 ns links")
    fig.savefig(path, dpi=110)


def _bittide_lines(ax, xs, rows, title: str, xlabel: str, ylabel: str) -> None:
    """The two bittide apps' lines, on a log time axis, and the labels."""
    _bittide_line(ax, xs, rows, "ring", "bittide ring")
    _bittide_line(ax, xs, rows, "tree", "bittide tree")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)


def plot_nodes(summary, nodes_list, sizes, path: Path) -> None:
    # the smallest, the one nearest 512 elements (where the winner changes), the largest
    picks = [sizes[0], min(sizes[1:-1], key=lambda s: abs(math.log2(s) - 9)), sizes[-1]]
    fig = _figure(4.2 * len(picks), 3.6)
    axes = fig.subplots(1, len(picks), squeeze=False).ravel()
    for ax, size in zip(axes, picks, strict=True):
        rows = [r for r in summary if r["size"] == size]
        xs = [r["nodes"] for r in rows]
        ax.plot(xs, [r["packet_s"] for r in rows], "s-", color="black", label="packet, best")
        for x, r in zip(xs, rows, strict=True):
            ax.annotate(r["packet_best"], (x, r["packet_s"]), fontsize=6,
                        textcoords="offset points", xytext=(2, -9))
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        _bittide_lines(ax, xs, rows, f"vectors of {size} element{'s' if size > 1 else ''}",
                       "nodes (allreduce members)", "completion time (s)")
    axes[0].legend(fontsize=7, title="hollow: closed form", title_fontsize=7)
    fig.savefig(path, dpi=110)


def plot_speedup(summary, nodes_list, sizes, path: Path) -> None:
    grid = np.array([[next(r for r in summary if r["nodes"] == n and r["size"] == s)
                      for s in sizes] for n in nodes_list])
    val = np.vectorize(lambda r: math.log10(r["speedup"]))(grid)
    lim = max(1.0, float(np.abs(val).max()))
    fig = _figure(1.0 + 0.95 * len(sizes), 1.2 + 0.6 * len(nodes_list))
    ax = fig.subplots()
    im = ax.imshow(val, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto", origin="lower")
    for i in range(len(nodes_list)):
        for j in range(len(sizes)):
            r = grid[i, j]
            text = f"{r['speedup']:.3g}" + ("*" if r["extrapolated"] else "")
            how = r["bittide_best"] if r["winner"] == "bittide" else r["packet_best"]
            ax.text(j, i, f"{text}\n{how}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(sizes)), [str(s) for s in sizes], rotation=45, fontsize=7)
    ax.set_yticks(range(len(nodes_list)), [str(n) for n in nodes_list])
    ax.set_xlabel("vector size (float64 elements)")
    ax.set_ylabel("nodes")
    ax.set_title("packet time / bittide time (blue: bittide wins; * closed form)", fontsize=9)
    fig.colorbar(im, ax=ax, label="log10(packet / bittide)")
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(__doc__, argv, "out/bittide_vs_packets")
    grid = SMALL if args.small else FULL
    nodes_list, sizes = grid["nodes"], grid["sizes"]
    t0 = time.perf_counter()
    data = run(nodes_list, sizes, args.workers)
    results, summary, checks = tabulate(nodes_list, sizes, data)
    wall = time.perf_counter() - t0
    out = args.out
    (out / "runs").mkdir(parents=True, exist_ok=True)
    write_csv(results, out / "runs" / "results.csv")
    write_csv(checks, out / "runs" / "closed_form.csv")
    write_csv(sorted(data["scheds"].values(), key=lambda r: (r["app"], r["nodes"], r["length"])),
              out / "runs" / "schedules.csv")
    nets = [{k: v for k, v in info.items() if k != "network"} for info in data["nets"].values()]
    write_csv(nets, out / "runs" / "networks.csv")
    write_csv(summary, out / "summary.csv")
    for r in summary:
        r["_extra"] = {app: next(x["extrapolated"] for x in results
                                 if x["system"] == "bittide" and x["algorithm"] == app
                                 and x["nodes"] == r["nodes"] and x["size"] == r["size"])
                       for app in APPS}
    plot_sizes(summary, nodes_list, out / "time_vs_size.png")
    plot_nodes(summary, nodes_list, sizes, out / "time_vs_nodes.png")
    plot_speedup(summary, nodes_list, sizes, out / "speedup.png")
    text = markdown_table(summary, [
        ("nodes", "nodes"), ("size", "size"), ("packet_best", "packet best"),
        ("packet_s", "packet (s)"), ("bittide_ring_s", "bittide ring (s)"),
        ("bittide_tree_s", "bittide tree (s)"), ("winner", "winner"),
        ("speedup", "packet / bittide"), ("bittide_cycles_per_element", "bittide cyc/elem"),
        ("tie_latency_s", "packet L for a tie (s)"), ("extrapolated", "closed form"),
    ], digits=3)
    (out / "summary.md").write_text(text + "\n", encoding="utf-8")
    n_runs = sum(1 for r in data["scheds"].values()) + 3 * len(data["packets"]) + len(nets)
    print(f"{n_runs} runs in {wall:.1f} s; tables and plots in {out}")
    hops = ", ".join(f"{i['app']} {i['nodes']}: {i['hop_cycles']:.2f}"
                     for i in data["nets"].values())
    print(f"one-way logical latency per hop (cycles): {hops}")
    print(f"closed forms match {len(checks)} real schedules")
    print(text)
    return summary


if __name__ == "__main__":
    main()
