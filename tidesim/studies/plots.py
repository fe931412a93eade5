"""Figures of a run and of a sweep (matplotlib: ``pip install 'tidesim[plot]'``).

* :func:`plot_run` -- the view of the hardware rig's plots: each node's
  frequency offset over time above, every link's count below, the background
  shaded where all links are stable (and darker where they are settled).
* :func:`plot_sweep` -- one metric of a sweep against a swept key: the mean
  over seeds and repeats with its min--max band, one line per value of an
  optional grouping column; runs without a value are shown, not dropped.

Both write a PNG or an SVG, chosen by the path's suffix, and return the path.
Figures are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas,
never through ``pyplot``: nothing global changes (no backend switch, no open
figures), so they are safe in scripts, tests and worker processes.
matplotlib is imported when a figure is drawn, not with this module.

Long runs are drawn from at most :data:`MAX_POINTS` points per line: each line
is cut into bins of consecutive samples, and each bin keeps its first, last,
smallest and largest point (the M4 reduction), so the drawn line covers the
same pixels as the full one and a one-sample spike stays visible.

Example:
    >>> from tidesim.config import build_system, load_config, validate
    >>> from tidesim.studies.plots import plot_run
    >>> cfg = validate(load_config({"preset": "hitl-diamond", "run": {"until_s": 8.0}}))
    >>> trace = build_system(cfg).run(cfg.until_s)
    >>> plot_run(trace, "diamond.png").name  # doctest: +SKIP
    'diamond.png'
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._paths import check_output_file
from ..errors import ConfigError
from .metrics import settle_time_s, stable_periods
from .tables import aggregate, as_number, format_value

__all__ = [
    "MAX_POINTS",
    "PLOT_SUFFIXES",
    "check_plot_path",
    "decimate",
    "plot_run",
    "plot_sweep",
]

PLOT_SUFFIXES = (".png", ".svg")
"""File suffixes a plot can be written as."""

MAX_POINTS = 4000
"""Most points drawn per line of :func:`plot_run` (four per bin of samples)."""

_STABLE_COLOUR = "#d9f0d3"
_SETTLED_COLOUR = "#a6dba0"
_DPI = 100


def check_plot_path(path: str | Path) -> Path:
    """The path of a plot, checked before anything is drawn (or simulated).

    Args:
        path: where the figure goes; its suffix picks the format.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: (field ``plot.path``) the suffix is not ``.png`` or ``.svg``;
            (field ``plot``) matplotlib is not installed.
    """
    p = Path(path)
    if p.suffix.lower() not in PLOT_SUFFIXES:
        raise ConfigError("plot.path", str(path), "must end in .png or .svg")
    _require_matplotlib()
    return p


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("plot", "matplotlib",
                          "needs matplotlib (pip install 'tidesim[plot]')") from None


def _figure(width_in: float, height_in: float):
    """A constrained-layout figure on the Agg canvas (matplotlib imported here)."""
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    import matplotlib

    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix[1:].lower()
    # SVG: text stays text (searchable, editable) and no date, so that the
    # same figure gives the same file
    rc = {"svg.fonttype": "none", "svg.hashsalt": "tidesim"} if fmt == "svg" else {}
    with matplotlib.rc_context(rc):
        fig.savefig(path, dpi=_DPI, format=fmt,
                    metadata={"Date": None} if fmt == "svg" else None)
    return path


def _colours(n: int) -> list:
    """``n`` distinct colours: tab10, tab20 or a sampled viridis."""
    from matplotlib import colormaps

    if n <= 10:
        return list(colormaps["tab10"].colors[:n])
    if n <= 20:
        return list(colormaps["tab20"].colors[:n])
    return [colormaps["viridis"](x) for x in np.linspace(0.0, 0.95, n)]


# ------------------------------------------------------------------------ decimate


def decimate(t: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS
             ) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points of a line: first, last, min and max of each bin.

    Args:
        t: float64 ``[n]`` x values in drawing order.
        y: ``[n]`` y values.
        max_points: the most points to keep (at least 4).

    Returns:
        ``(t, y)`` of the kept points, in their original order (the input
        itself when it is short enough).
    """
    n = y.size
    if n <= max_points:
        return t, y
    per_bin = -(-n // max(max_points // 4, 1))
    full = (n // per_bin) * per_bin
    starts = np.arange(0, n, per_bin)
    body = y[:full].reshape(-1, per_bin)
    lo = np.argmin(body, axis=1) + starts[: body.shape[0]]
    hi = np.argmax(body, axis=1) + starts[: body.shape[0]]
    keep = [starts, np.minimum(starts + per_bin, n) - 1, lo, hi]
    if full < n:  # a shorter last bin
        tail = y[full:]
        keep.append(np.array([full + int(np.argmin(tail)), full + int(np.argmax(tail))]))
    idx = np.unique(np.concatenate(keep))
    return t[idx], y[idx]


# ----------------------------------------------------------------------------- run


def _window(trace, from_s: float | None, to_s: float | None) -> tuple[float, float]:
    end = float(trace.until_s)
    t0 = 0.0 if from_s is None else as_number(from_s)
    t1 = end if to_s is None else as_number(to_s)
    if t0 is None or isinstance(from_s, bool) or not 0.0 <= t0 < end:
        raise ConfigError("plot.from_s", from_s, f"must be a time in [0, {end:g}) s")
    if t1 is None or isinstance(to_s, bool) or t1 <= t0:
        raise ConfigError("plot.to_s", to_s, f"must be a time after from_s ({t0:g} s)")
    return t0, min(t1, end)


def _node_list(trace, nodes: Iterable[int] | None) -> list[int]:
    n = int(trace.n_nodes)
    if nodes is None:
        return list(range(n))
    expected = f"must be a non-empty list of node indices in [0, {n - 1}]"
    if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Iterable):
        raise ConfigError("plot.nodes", nodes, expected)
    out = list(dict.fromkeys(nodes))
    if not out or any(isinstance(j, bool) or not isinstance(j, (int, np.integer))
                      or not 0 <= j < n for j in out):
        raise ConfigError("plot.nodes", nodes, expected)
    return [int(j) for j in out]


def _steps_in(t: np.ndarray, v: np.ndarray, t0: float, t1: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """The steps of a piecewise-constant signal inside ``[t0, t1]``, ending at ``t1``."""
    i0 = max(int(np.searchsorted(t, t0, side="right")) - 1, 0)
    i1 = max(int(np.searchsorted(t, t1, side="right")), i0 + 1)
    x = np.append(t[i0:i1], t1)
    y = np.append(v[i0:i1], v[i1 - 1])
    x[0] = max(x[0], t0)
    return x, y


def plot_run(trace, path: str | Path, *, nodes: Iterable[int] | None = None,
             from_s: float | None = None, to_s: float | None = None) -> Path:
    """Draw a run: node frequencies above, link counts below, stable periods shaded.

    Top panel: each node's frequency offset ``(f/f0 - 1) · 1e6`` in ppm,
    drawn as steps from its frequency segments. Bottom panel: the count of
    every link, as the controller measures it (``Trace.measured``), from the
    link's start, coloured by the receiving node. Both panels are shaded
    where every link is stable and, darker, where every link is also settled
    (``|reference| < margin``; :func:`~tidesim.studies.metrics.stable_periods`),
    and a dashed line marks the settle time. The title names the run and the
    topology and says whether it converged.

    Args:
        trace: a :class:`~tidesim.models.Trace`.
        path: a ``.png`` or ``.svg`` file (its folder is created).
        nodes: draw only these nodes' frequencies and the links into them
            (default: all).
        from_s, to_s: the time window in seconds (default: the whole run).

    Returns:
        The path written.

    Raises:
        ConfigError: a bad suffix or a path that cannot be written
            (``plot.path``), node list (``plot.nodes``) or window
            (``plot.from_s``, ``plot.to_s``), or no matplotlib.
    """
    path = check_plot_path(path)
    chosen = _node_list(trace, nodes)
    t0, t1 = _window(trace, from_s, to_s)
    check_output_file("plot.path", path)
    sys_ = trace.system
    colours = dict(zip(range(trace.n_nodes), _colours(trace.n_nodes), strict=True))

    fig = _figure(10.0, 6.5)
    ax_f, ax_c = fig.subplots(2, 1, sharex=True)
    for j in chosen:
        t, rel = trace.segments(j)
        x, y = decimate(*_steps_in(t, rel * 1e6, t0, t1))
        ax_f.plot(x, y, drawstyle="steps-post", lw=0.9, color=colours[j], label=f"node {j}")

    links = trace.links
    into = set(chosen)
    up_s = sys_.link_up_s
    for l in np.flatnonzero(trace.link_up):
        j = int(links[l, 1])
        if j not in into:
            continue
        t = trace.link_times(l)
        keep = (t >= max(t0, up_s[l])) & (t <= t1)
        if keep.any():
            x, y = decimate(t[keep], trace.measured(l)[keep])
            ax_c.plot(x, y, lw=0.6, color=colours[j])

    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    periods = stable_periods(trace)
    handles = [Line2D([], [], lw=0.6, color="0.3",
                      label="one line per link (colour: receiving node)")]
    for kind, colour in (("stable", _STABLE_COLOUR), ("settled", _SETTLED_COLOUR)):
        spans = np.clip(periods[kind], t0, t1)
        spans = spans[spans[:, 1] > spans[:, 0]]
        if spans.size == 0:
            continue
        for ax in (ax_f, ax_c):
            ax.broken_barh([(a, b - a) for a, b in spans], (0.0, 1.0), color=colour,
                           transform=ax.get_xaxis_transform(), zorder=0, gid=f"{kind}-periods")
        handles.append(Patch(color=colour, label=f"all links {kind}"))
    settle = settle_time_s(trace)
    if settle is not None and t0 <= settle <= t1:
        for ax in (ax_f, ax_c):
            ax.axvline(settle, color="0.25", ls="--", lw=0.9)
        handles.append(Line2D([], [], color="0.25", ls="--", lw=0.9,
                              label=f"settle time {settle:.3g} s"))

    # buffer faults: a red mark at the top of both panels at each first fault
    faults = [f for f in trace.faults if f.node in chosen and t0 <= f.time_s <= t1]
    if faults:
        ft = np.array([f.time_s for f in faults])
        for ax in (ax_f, ax_c):
            ax.plot(ft, np.full(ft.size, 0.97), ls="none", marker="v", ms=6, color="red",
                    transform=ax.get_xaxis_transform(), gid="faults", zorder=5)
        kinds = ", ".join(f"{sum(f.kind == k for f in faults)} {k}"
                          for k in ("overflow", "underflow") if any(f.kind == k for f in faults))
        handles.append(Line2D([], [], ls="none", marker="v", ms=6, color="red",
                              label=f"first overflow / underflow of a link ({kinds})"))

    topo = sys_.topology.name
    head = sys_.name if sys_.name == topo else f"{sys_.name}: {topo}"
    state = (f"converged, settle time {settle:.3g} s" if settle is not None
             else "not converged")
    if trace.faults:
        state += f", {len(trace.faults)} buffer faults"
    fig.suptitle(f"{head}, {trace.n_nodes} nodes, {links.shape[0]} links — {state}")
    ax_f.set_ylabel("frequency offset (ppm)")
    what = "domain difference count" if sys_.measure == "ddc" else "buffer count"
    ax_c.set_ylabel(f"{what} (frames)")
    ax_c.set_xlabel("time (s)")
    ax_c.set_xlim(t0, t1)
    if len(chosen) <= 16:
        ax_f.legend(loc="upper right", fontsize="small", ncols=min(len(chosen), 8))
    ax_c.legend(handles=handles, loc="upper right", fontsize="small")
    for ax in (ax_f, ax_c):
        ax.grid(True, lw=0.3, alpha=0.5)
    return _save(fig, path)


# --------------------------------------------------------------------------- sweep


def _rows(results) -> tuple[list[Mapping[str, Any]], str]:
    """The rows of a sweep directory or of a list of rows, and a name for the title."""
    if isinstance(results, (str, Path)):
        from .sweep import RESULTS_JSONL, to_table

        d = Path(results)
        if not d.is_dir():
            raise ConfigError("plot.results", str(results), "must be a sweep output directory")
        if not (d / RESULTS_JSONL).is_file():
            raise ConfigError("plot.results", str(results),
                              f"must be a sweep output directory (with {RESULTS_JSONL})")
        rows, name = to_table(d), d.name
    elif isinstance(results, Iterable) and not isinstance(results, (bytes, Mapping)):
        rows, name = list(results), ""
        if not all(isinstance(r, Mapping) for r in rows):
            raise ConfigError("plot.results", type(results).__name__,
                              "must be a sweep directory or a list of rows (dicts)")
    else:
        raise ConfigError("plot.results", results, "must be a sweep directory or a list of rows")
    if not rows:
        raise ConfigError("plot.results", str(results), "must hold at least one run")
    return rows, name


def _check_column(field: str, column: Any, columns: Sequence[str]) -> None:
    if isinstance(column, str) and column in columns:
        return
    # "kp" is most likely the swept "controller.kp"
    close = [c for c in columns if c.rsplit(".", 1)[-1] == str(column)]
    close = close or difflib.get_close_matches(str(column), columns, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f": {', '.join(columns)}"
    raise ConfigError(field, column, f"must be a column of the results{hint}")


def _is_number(value: Any) -> bool:
    """A number, NaN or an infinity (``True``/``False`` count as 1/0)."""
    return as_number(value) is not None or isinstance(value, (float, np.floating))


# columns that number or time the runs rather than measure them
_ID_COLUMNS = ("index", "sample", "repeat", "seed", "wall_s", "run_s")


def _check_numeric(field: str, column: str, rows: Sequence[Mapping[str, Any]],
                   columns: Sequence[str]) -> None:
    """Refuse a ``y`` column without a single number but with text: it would plot nothing.

    A few values that are not numbers among numbers are runs without a value,
    marked on the plot; a column of ``None`` only is runs that never reached
    the metric (``settle_time_s`` of runs that never settled).
    """
    values = [r.get(column) for r in rows]
    if any(_is_number(v) for v in values) or all(v is None for v in values):
        return
    text = next(v for v in values if v is not None)
    numeric = [c for c in columns if c not in _ID_COLUMNS
               and any(as_number(r.get(c)) is not None for r in rows)]
    numeric.sort(key=lambda c: c != "settle_time_s")  # the default y first
    shown = ", ".join(numeric[:6]) + (", ..." if len(numeric) > 6 else "")
    raise ConfigError(field, column, f"must be a numeric column (it holds {text!r}; numeric "
                                     f"columns: {shown or 'none'})")


def _log_scale(values: Iterable[float]) -> bool:
    """Values that are all positive and span two decades or more."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    return v.size > 1 and bool(np.all(v > 0)) and v.max() >= 100.0 * v.min()


def plot_sweep(results, path: str | Path, *, x: str, y: str = "settle_time_s",
               by: str | None = None) -> Path:
    """Draw one metric of a sweep against a swept key.

    For every value of ``x`` (and of ``by``), the runs are summarised by
    :func:`~tidesim.studies.tables.aggregate`: a line through the mean, a
    band from the smallest to the largest value, the single runs as dots.
    Runs whose ``y`` is missing or not a number (``settle_time_s`` of a run
    that never settled is ``None``) are marked with a cross at the bottom of
    the plot and counted in the legend. A numeric ``x`` is drawn to scale (on
    a log axis when it spans two decades or more); any other is drawn as
    categories in the order they first appear. ``True``/``False`` values of
    ``y`` count as 1/0, so ``y = "converged"`` plots the share that converged.

    Args:
        results: a sweep output directory (its ``results.jsonl``, read by
            :func:`~tidesim.studies.sweep.to_table`) or a list of rows (dicts).
        path: a ``.png`` or ``.svg`` file (its folder is created).
        x: the column along the x axis (a swept key such as ``controller.kp``).
        y: the metric (a column of :func:`~tidesim.studies.metrics.run_metrics`).
        by: a column whose values get a line each (``topology_name``).

    Returns:
        The path written.

    Raises:
        ConfigError: a bad suffix or a path that cannot be written
            (``plot.path``), a directory that is not a sweep's
            (``plot.results``), an unknown column (``plot.x``, ``plot.y``,
            ``plot.by``), a ``y`` that holds text (``plot.y``), or no matplotlib.
    """
    path = check_plot_path(path)
    rows, name = _rows(results)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    _check_column("plot.x", x, columns)
    _check_column("plot.y", y, columns)
    _check_numeric("plot.y", y, rows, columns)
    if by is not None:
        _check_column("plot.by", by, columns)
    check_output_file("plot.path", path)

    raw_x = [r.get(x) for r in rows]
    numeric_x = all(as_number(v) is not None and not isinstance(v, bool) for v in raw_x)
    categories: dict[str, int] = {}
    if not numeric_x:
        for v in raw_x:
            categories.setdefault(format_value(v), len(categories))

    def position(v: Any) -> float:
        return as_number(v) if numeric_x else float(categories[format_value(v)])

    table = aggregate(rows, by=[by, x] if by is not None else [x], metrics=[y])
    groups: dict[str, list[dict]] = {}
    for g in table:
        groups.setdefault(format_value(g[by]) if by is not None else y, []).append(g)

    fig = _figure(8.0, 5.0)
    ax = fig.subplots()
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    bottom = blended_transform_factory(ax.transData, ax.transAxes)
    any_missing = False
    all_y: list[float] = []
    for (label, items), colour in zip(groups.items(), _colours(len(groups)), strict=True):
        items = sorted(items, key=lambda g: position(g[x]))
        xp = np.array([position(g[x]) for g in items])
        mean = np.array([np.nan if g[f"{y}_mean"] is None else g[f"{y}_mean"] for g in items])
        lo = np.array([np.nan if g[f"{y}_min"] is None else g[f"{y}_min"] for g in items])
        hi = np.array([np.nan if g[f"{y}_max"] is None else g[f"{y}_max"] for g in items])
        missing = np.array([g[f"{y}_missing"] for g in items])
        runs = int(sum(g["runs"] for g in items))
        has = ~np.isnan(mean)
        text = label
        if missing.sum():
            text += f" ({int(missing.sum())} of {runs} runs without a value)"
            any_missing = True
            ax.plot(xp[missing > 0], np.full(int((missing > 0).sum()), 0.02), ls="none",
                    marker="x", ms=8, mew=1.5, color=colour, transform=bottom, clip_on=False)
        ax.plot(xp[has], mean[has], marker="o", ms=4, lw=1.5, color=colour, label=text)
        if np.any(hi[has] > lo[has]):
            ax.fill_between(xp[has], lo[has], hi[has], color=colour, alpha=0.2, lw=0)
        in_group = [r for r in rows if by is None or format_value(r.get(by)) == label]
        pts = [(position(r.get(x)), as_number(r.get(y))) for r in in_group]
        pts = [p for p in pts if p[1] is not None]
        if pts:
            px, py = zip(*pts, strict=True)
            ax.plot(px, py, ls="none", marker=".", ms=3, alpha=0.5, color=colour)
            all_y.extend(py)

    handles, _ = ax.get_legend_handles_labels()
    if any_missing:
        handles.append(Line2D([], [], ls="none", marker="x", color="0.3",
                              label=f"runs without a {y} value"))
    ax.legend(handles=handles, fontsize="small", loc="best")
    if numeric_x:
        if _log_scale(as_number(v) for v in raw_x):
            ax.set_xscale("log")
    else:
        labels = list(categories)
        slanted = max(len(s) for s in labels) > 8  # long labels would overlap
        ax.set_xticks(range(len(labels)), labels, rotation=30 if slanted else 0,
                      ha="right" if slanted else "center")
    if _log_scale(all_y):
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    where = f" ({name})" if name else ""
    grouped = f", one line per {by}" if by is not None else ""
    ax.set_title(f"{y} against {x}{grouped}{where}\n{len(rows)} runs; line: mean, "
                 f"band: min–max, dots: single runs", fontsize="medium")
    ax.grid(True, lw=0.3, alpha=0.5)
    return _save(fig, path)
