"""TOML run configurations: load, validate, build a :class:`~tidesim.models.system.System`.

A config is a TOML file (or the equivalent dict) with the sections ``[run]``,
``[topology]``, ``[clock]``, ``[control]``, ``[controller]``, ``[actuator]``,
``[buffer]`` and ``[stability]``; ``docs/config.md`` documents every key.
Three steps turn it into a system:

1. :func:`load_config` reads the file and, when it names a ``preset``, merges it
   on top of that preset (user keys win).
2. :func:`validate` checks every key, type and range, builds the topology and
   resolves per-node values, and returns a frozen :class:`RunConfig`.
3. :func:`build_system` turns a :class:`RunConfig` into a ``System``.

Every problem is reported as one :class:`~tidesim.errors.ConfigError` line that
names the key, the value and what was expected, before anything is simulated.

Example:
    >>> from tidesim.config import load_config, validate
    >>> cfg = load_config({"preset": "hitl8", "run": {"until_s": 1.0}})
    >>> run_cfg = validate(cfg)
    >>> run_cfg.until_s, run_cfg.n_nodes, run_cfg.measure
    (1.0, 8, 'ddc')
"""

from __future__ import annotations

import copy
import difflib
import importlib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .models.parts import MEASURE_KINDS
from .presets import PRESETS, preset_names

if TYPE_CHECKING:
    from .models.parts import Actuator, ElasticBuffer, Stability
    from .models.system import System
    from .models.topology import Topology

__all__ = [
    "DEFAULT_UNTIL_S",
    "RunConfig",
    "build_controller",
    "build_system",
    "deep_merge",
    "import_step",
    "load_config",
    "read_toml",
    "validate",
]

DEFAULT_UNTIL_S = 10.0
"""Simulated time (s) when a config gives neither ``run.until_s`` nor ``run.until_cycles``."""

CONTROLLER_KINDS = ("pi", "p", "pump", "bangbang", "reframing", "sequence", "python", "none")

# The keys of a [controller] table (or of its `first` / `second` tables) that
# each kind uses; `freeze_s` is shared by every kind but "none".
_CONTROLLER_KEYS: dict[str, tuple[str, ...]] = {
    "pi": ("kp", "ki"),
    "p": ("kp",),
    "pump": ("kp", "target_ppm"),
    "bangbang": ("step_ppb", "deadband"),
    "reframing": ("kp", "target_ppm", "margin", "window_s", "wait_s", "ramp_s"),
    "sequence": ("first", "second", "after_s"),
    "python": ("step", "params", "state"),
    "none": (),
}
_CONTROLLER_TABLE_KEYS = ("kind", *dict.fromkeys(
    k for keys in _CONTROLLER_KEYS.values() for k in keys), "freeze_s")

# Keys of the topology table that shape the graph; make_topology checks which
# ones a kind needs and their values.
_TOPOLOGY_SHAPE_KEYS = ("n", "k", "d", "rows", "cols", "dims", "depth", "branching", "m", "edges")

_SECTIONS: dict[str, tuple[str, ...]] = {
    "run": ("until_s", "until_cycles", "fidelity", "record"),
    "topology": ("kind", *_TOPOLOGY_SHAPE_KEYS, "latency_s"),
    "clock": (
        "f_nom_hz",
        "offsets_ppm",
        "drift_ppb_per_s",
        "wander_ppb_per_sqrt_s",
        "theta0",
        "start_s",
    ),
    "control": ("update_period_ticks", "delay_ticks", "measure", "sample_at"),
    "controller": _CONTROLLER_TABLE_KEYS,
    "actuator": ("kind", "step_ppb"),
    "buffer": ("depth", "reference", "arm", "auto_centre", "adjust"),
    "stability": ("margin", "window_s"),
}
_TOP_LEVEL_KEYS = ("preset", "name", "seed", *_SECTIONS)
_ADJUST_KEYS = ("link", "at_s", "frames")
_LATENCY_DIST_KEYS = ("distribution", "low_s", "high_s", "mean_s", "std_s")
_RANDOM_OFFSET_KEYS = ("random_ppm",)

# When a user table sets a different ``kind`` than its preset, the preset's
# table is dropped except for these keys (they mean the same for every kind).
_KIND_INDEPENDENT_KEYS: dict[str, frozenset[str]] = {
    "topology": frozenset({"latency_s"}),
    "controller": frozenset(),
    "actuator": frozenset({"step_ppb"}),
}

PerNode = float | tuple[float, ...]


# --------------------------------------------------------------------------- loading


def read_toml(path: str | Path) -> dict:
    """Read one TOML file into a dict, without merging any preset.

    Args:
        path: the file to read.

    Returns:
        The parsed TOML document.

    Raises:
        ConfigError: the file is missing, unreadable, or not valid TOML.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError("config", str(p), "must be an existing file")
    if not p.is_file():
        raise ConfigError("config", str(p), "must be a file")
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), _one_line(str(exc)), "must be valid TOML") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(p), _one_line(str(exc)), "must be UTF-8 text") from None
    except OSError as exc:
        raise ConfigError("config", str(p), f"must be readable ({exc.strerror})") from None


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """Merge ``override`` on top of ``base`` and return a new dict.

    Tables merge key by key, recursively; any other value (lists included)
    in ``override`` replaces the one in ``base``. A top-level table that
    sets a different ``kind`` than ``base`` (``[topology]``, ``[controller]``,
    ``[actuator]``) replaces ``base``'s table, keeping only the keys that mean
    the same for every kind (``topology.latency_s``, ``actuator.step_ppb``).

    Args:
        base: the preset (or any base config); not modified.
        override: the user's config; not modified.

    Returns:
        A new, independent dict.
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, Mapping):
            keep = _KIND_INDEPENDENT_KEYS.get(key)
            if keep is not None and value.get("kind", old.get("kind")) != old.get("kind"):
                old = {k: v for k, v in old.items() if k in keep}
            out[key] = _merge_tables(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_tables(base: dict, override: Mapping) -> dict:
    """Recursive key-by-key merge of two tables (no ``kind`` rule below the top)."""
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, Mapping):
            out[key] = _merge_tables(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(source: str | Path | Mapping) -> dict:
    """Load a config and merge it on top of its preset.

    Args:
        source: a path to a TOML file, or a config dict.

    Returns:
        The merged config dict (a new dict; ``source`` is not modified). When
        a preset is named, the result keeps the ``preset`` key.

    Raises:
        ConfigError: the file cannot be read or parsed, the config is not a
            table, or the preset is unknown.
    """
    if isinstance(source, Mapping):
        cfg = copy.deepcopy(dict(source))
    elif isinstance(source, (str, Path)):
        cfg = read_toml(source)
    else:
        raise ConfigError("config", source, "must be a path or a dict")
    for key in cfg:
        if not isinstance(key, str):
            raise ConfigError("config", key, "keys must be strings")
    if "preset" not in cfg:
        return cfg
    name = cfg["preset"]
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError("preset", name, f"must be one of {preset_names()}")
    merged = deep_merge(PRESETS[name], cfg)
    merged["preset"] = name
    return merged


# ------------------------------------------------------------------------ validated


@dataclass(frozen=True)
class RunConfig:
    """A validated run configuration (see ``docs/config.md``).

    Per-node values are either one number for every node or a tuple with one
    entry per node. Build a system from it with :func:`build_system`.

    Attributes:
        name: run name shown in summaries.
        preset: the preset it was merged on, or ``None``.
        seed: seed for random offsets, latency distributions and wander.
        until_s: simulated time in seconds, or ``None`` when ``until_cycles`` is set.
        until_cycles: simulated time in cycles of the nominal clock, or ``None``.
        fidelity: ``"event"`` or ``"cycle"``.
        record: ``"full"``, ``"summary"``, every N-th sample, or ``None``:
            what the caller needs (``tidesim run`` keeps a summary unless it
            writes a waveform or a plot).
        topology: the built topology.
        topology_spec: the ``[topology]`` table as validated (for reports).
        f_nom_hz: nominal oscillator frequency (Hz).
        offsets_ppm: intrinsic frequency offsets (ppm), random ones already drawn.
        drift_ppb_per_s: linear frequency drift (ppb/s).
        wander_ppb_per_sqrt_s: random-walk wander (ppb/√s).
        theta0: initial clock phase in ticks, each in [0, 1).
        start_s: node start-up delays (s).
        update_period_ticks: control update period ``p`` in local ticks.
        control_delay_ticks: delay ``d`` from sample to applied correction (ticks).
        sample_at: ``"edge"`` or ``"phase"`` (where samples fall, see
            :class:`~tidesim.models.System`).
        measure: ``"buffer"`` (elastic-buffer counts) or ``"ddc"`` (domain
            difference counters).
        controller_kind: one of ``CONTROLLER_KINDS`` (``"pi"``, ``"p"``,
            ``"pump"``, ``"bangbang"``, ``"reframing"``, ``"sequence"``,
            ``"python"``, ``"none"``).
        kp: proportional gain (relative frequency per frame); 0 for a kind
            without one.
        ki: integral gain (relative frequency per frame·tick).
        controller_spec: the validated ``[controller]`` table with every
            default filled in (``first`` and ``second`` of a sequence are
            tables of the same form); ``build_system`` builds the controller
            from it (``None``: from ``controller_kind``, ``kp`` and ``ki``).
        actuator: the actuator.
        buffer: the elastic buffer, adjustments resolved to link indices.
        stability: the stability detector.
        source: the merged config dict it was validated from.
    """

    name: str
    preset: str | None
    seed: int
    until_s: float | None
    until_cycles: int | None
    fidelity: str
    record: str | int | None
    topology: Topology = field(repr=False)
    topology_spec: Mapping[str, Any]
    f_nom_hz: float
    offsets_ppm: PerNode
    drift_ppb_per_s: PerNode
    wander_ppb_per_sqrt_s: float
    theta0: PerNode
    start_s: PerNode
    update_period_ticks: int
    control_delay_ticks: int
    measure: str
    sample_at: str
    controller_kind: str
    kp: float
    ki: float
    actuator: Actuator
    buffer: ElasticBuffer
    stability: Stability
    source: Mapping[str, Any] = field(repr=False, compare=False)
    controller_spec: Mapping[str, Any] | None = None

    @property
    def n_nodes(self) -> int:
        """Number of nodes in the topology."""
        return int(self.topology.n_nodes)


# ----------------------------------------------------------------------- primitives


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any, name: str, *, lo: float | None = None, lo_open: bool = False) -> float:
    """A finite number (bool is not a number), optionally bounded below."""
    if not _is_number(value):
        raise ConfigError(name, value, "must be a number")
    x = float(value)
    if not math.isfinite(x):
        raise ConfigError(name, value, "must be a finite number")
    if lo is not None and (x <= lo if lo_open else x < lo):
        raise ConfigError(name, value, f"must be {'>' if lo_open else '>='} {lo:g}")
    return x


def _integer(value: Any, name: str, *, lo: int | None = None) -> int:
    if not _is_int(value):
        raise ConfigError(name, value, "must be an integer")
    if lo is not None and value < lo:
        raise ConfigError(name, value, f"must be an integer >= {lo}")
    return int(value)


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(name, value, f"must be one of {list(choices)}")
    return value


def _table(value: Any, name: str, known: tuple[str, ...]) -> dict:
    """Check that ``value`` is a table whose keys are all in ``known``."""
    if not isinstance(value, Mapping):
        raise ConfigError(name, value, "must be a table")
    for key, item in value.items():
        if key not in known:
            where = f"{name}.{key}" if name else str(key)
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(where, item, f"is not a known key{hint}")
    return dict(value)


def _per_node(value: Any, name: str, n_nodes: int, check) -> PerNode:
    """One number for every node, or a list with one entry per node."""
    if isinstance(value, (list, tuple)):
        if len(value) != n_nodes:
            raise ConfigError(name, value, f"must have one entry per node ({n_nodes})")
        return tuple(check(v, f"{name}[{i}]") for i, v in enumerate(value))
    if not _is_number(value):
        raise ConfigError(name, value, "must be a number or a list with one entry per node")
    return check(value, name)


# ------------------------------------------------------------------------ sections


def _run(t: dict) -> tuple[float | None, int | None, str, str | int | None]:
    from .models.simulation import FIDELITIES, parse_record

    if "until_s" in t and "until_cycles" in t:
        raise ConfigError(
            "run.until_cycles", t["until_cycles"], "must not be given together with run.until_s"
        )
    until_s = until_cycles = None
    if "until_cycles" in t:
        until_cycles = _integer(t["until_cycles"], "run.until_cycles", lo=1)
    else:
        until_s = _number(t.get("until_s", DEFAULT_UNTIL_S), "run.until_s", lo=0, lo_open=True)
    fidelity = _choice(t.get("fidelity", "event"), "run.fidelity", FIDELITIES)
    record = t.get("record")
    if record is not None:
        parse_record(record)
    return until_s, until_cycles, fidelity, record


def _topology_spec(t: dict) -> dict:
    """The arguments of ``make_topology``; it checks the shape keys and latencies."""
    if "kind" not in t:
        raise ConfigError("topology.kind", None, "is required (or name a preset)")
    latency = t.get("latency_s", 1e-8)
    if isinstance(latency, Mapping):
        _table(latency, "topology.latency_s", _LATENCY_DIST_KEYS)
    return {**t, "latency_s": latency}


def _build_topology(spec: dict, seed: int) -> Topology:
    """Build the topology; whole-graph errors quote the user's shape keys."""
    from .models.topology import make_topology

    kwargs = {k: v for k, v in spec.items() if k != "kind"}
    try:
        return make_topology(spec["kind"], seed=seed, **kwargs)
    except ConfigError as exc:
        if exc.field != "topology":
            raise
        shape = {k: v for k, v in spec.items() if k != "latency_s"}
        raise ConfigError("topology", shape, exc.expected) from None


def _offsets(value: Any, n_nodes: int, seed: int) -> PerNode:
    name = "clock.offsets_ppm"
    if isinstance(value, Mapping):
        t = _table(value, name, _RANDOM_OFFSET_KEYS)
        if "random_ppm" not in t:
            raise ConfigError(f"{name}.random_ppm", t, "is required for random offsets")
        spread = _number(t["random_ppm"], f"{name}.random_ppm", lo=0)
        import numpy as np

        rng = np.random.default_rng(seed)
        return tuple(float(x) for x in rng.uniform(-spread, spread, n_nodes))
    return _per_node(value, name, n_nodes, _number)


def _theta(v: Any, name: str) -> float:
    x = _number(v, name)
    if not 0.0 <= x < 1.0:
        raise ConfigError(name, v, "must be in [0, 1)")
    return x


def _start(v: Any, name: str) -> float:
    return _number(v, name, lo=0)


def _controller(t: Any, name: str, stability: Stability) -> dict:
    """Validate a controller table; returns it with every default filled in.

    ``name`` is the table's dotted path (``controller``, ``controller.first``).
    Reframing's ``margin`` and ``window_s`` default to the ``[stability]`` ones.
    """
    t = _table(t, name, _CONTROLLER_TABLE_KEYS)
    kind = _choice(t.get("kind", "pi"), f"{name}.kind", CONTROLLER_KINDS)
    allowed = _CONTROLLER_KEYS[kind] + (("freeze_s",) if kind != "none" else ())
    for key in t:
        if key != "kind" and key not in allowed:
            raise ConfigError(f"{name}.{key}", t[key], f"is not used by {name}.kind = {kind!r}")
    spec: dict[str, Any] = {"kind": kind}
    if "kp" in allowed:
        spec["kp"] = _number(t.get("kp", 2e-8), f"{name}.kp", lo=0)
    if "ki" in allowed:
        spec["ki"] = _number(t.get("ki", 0.0), f"{name}.ki", lo=0)
    if "target_ppm" in allowed:
        spec["target_ppm"] = _number(t.get("target_ppm", 0.0), f"{name}.target_ppm")
    if kind == "bangbang":
        spec["step_ppb"] = _number(t.get("step_ppb", 10.0), f"{name}.step_ppb", lo=0, lo_open=True)
        spec["deadband"] = _number(t.get("deadband", 0), f"{name}.deadband", lo=0)
    if kind == "reframing":
        spec["margin"] = _integer(t.get("margin", stability.margin), f"{name}.margin", lo=0)
        spec["window_s"] = _number(t.get("window_s", stability.window_s), f"{name}.window_s", lo=0)
        spec["wait_s"] = _number(t.get("wait_s", 1.0), f"{name}.wait_s", lo=0)
        spec["ramp_s"] = _number(t.get("ramp_s", 5.0), f"{name}.ramp_s", lo=0)
    if kind == "sequence":
        for key in ("first", "second", "after_s"):
            if key not in t:
                raise ConfigError(f"{name}.{key}", None, "is required for kind = 'sequence'")
        for key in ("first", "second"):
            if isinstance(t[key], Mapping) and t[key].get("kind", "pi") == "none":
                raise ConfigError(f"{name}.{key}.kind", "none", "must be a controller, not 'none'")
            spec[key] = _controller(t[key], f"{name}.{key}", stability)
        spec["after_s"] = _number(t["after_s"], f"{name}.after_s", lo=0)
    if kind == "python":
        if "step" not in t:
            raise ConfigError(f"{name}.step", None,
                              "is required for kind = 'python' (a step function 'module:function')")
        import_step(t["step"], f"{name}.step")  # fail here, not in a sweep's workers
        spec["step"] = t["step"]
        spec["params"] = _numbers(t.get("params", []), f"{name}.params")
        spec["state"] = _numbers(t.get("state", []), f"{name}.state")
    if "freeze_s" in t:
        spec["freeze_s"] = _number(t["freeze_s"], f"{name}.freeze_s", lo=0)
    return spec


def _numbers(value: Any, name: str) -> list[float]:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(name, value, "must be a list of numbers")
    return [_number(v, f"{name}[{i}]") for i, v in enumerate(value)]


def import_step(ref: Any, field: str = "controller.step"):
    """The controller step function that ``"module:function"`` names.

    This is how a config (``[controller] kind = "python"``) and the workers of
    a sweep find a user's controller: by importing its module, which must be
    importable where the run happens (on ``sys.path``; a script's own folder
    is, for the workers a local sweep starts).

    Args:
        ref: ``"package.module:function"`` (``function`` may be dotted, an
            attribute of an attribute).
        field: the config key named in errors.

    Returns:
        The compiled step function (see :func:`tidesim.controllers.controller_step`).

    Raises:
        ConfigError: a malformed name, a module that does not import, a missing
            function, or one not compiled with ``controller_step``.
    """
    from .controllers import STEP_SIGNATURE

    parts = ref.split(":") if isinstance(ref, str) else []
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ConfigError(field, ref, "must name a step function as 'module:function'")
    module_name, attr = (p.strip() for p in parts)
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - whatever the user's module raises, it is input
        reason = _one_line(f"{type(exc).__name__}: {exc}")
        raise ConfigError(field, ref, f"must name an importable module ({reason})") from None
    for name in attr.split("."):
        obj = getattr(obj, name, None)
        if obj is None:
            raise ConfigError(field, ref, f"must name a function of the module {module_name!r}")
    if STEP_SIGNATURE not in getattr(obj, "nopython_signatures", ()):
        raise ConfigError(field, ref,
                          "must name a function compiled with tidesim.controllers.controller_step")
    return obj


def _actuator(t: dict) -> Actuator:
    from .models.parts import Actuator  # checks the kind itself

    step = _number(t.get("step_ppb", 10.0), "actuator.step_ppb", lo=0, lo_open=True)
    return Actuator(kind=t.get("kind", "continuous"), step_ppb=step)


def _buffer(t: dict, topology: Topology) -> ElasticBuffer:
    """The elastic buffer; ElasticBuffer checks depth, reference and arm itself."""
    from .models.parts import Adjustment, ElasticBuffer

    auto_centre = None
    if "auto_centre" in t:
        auto_centre = _integer(t["auto_centre"], "buffer.auto_centre", lo=0)
    adjust = t.get("adjust", [])
    if not isinstance(adjust, (list, tuple)):
        raise ConfigError("buffer.adjust", adjust, "must be a list of tables ([[buffer.adjust]])")
    adjustments = tuple(
        Adjustment(**_adjustment(a, f"buffer.adjust[{i}]", topology)) for i, a in enumerate(adjust)
    )
    return ElasticBuffer(
        depth=t.get("depth", 32),
        reference=t.get("reference"),
        arm=t.get("arm", "link_up"),
        auto_centre=auto_centre,
        adjustments=adjustments,
    )


def _adjustment(value: Any, name: str, topology: Topology) -> dict:
    t = _table(value, name, _ADJUST_KEYS)
    for key in _ADJUST_KEYS:
        if key not in t:
            raise ConfigError(f"{name}.{key}", t, "is required")
    link = t["link"]
    if not isinstance(link, (list, tuple)) or len(link) != 2:
        raise ConfigError(f"{name}.link", link, "must be a pair [src, dst] of node indices")
    try:
        index = topology.link_index(*link)
    except ConfigError:
        expected = "must be a link [src, dst] of the topology"
        raise ConfigError(f"{name}.link", link, expected) from None
    frames = _integer(t["frames"], f"{name}.frames")
    if frames == 0:
        raise ConfigError(f"{name}.frames", frames, "must be a non-zero integer")
    return {
        "link": int(index),
        "at_s": _number(t["at_s"], f"{name}.at_s", lo=0),
        "frames": frames,
    }


def _stability(t: dict) -> Stability:
    from .models.parts import Stability

    margin = _integer(t.get("margin", 4), "stability.margin", lo=0)
    window_s = _number(t.get("window_s", 2.0), "stability.window_s", lo=0)
    return Stability(margin=margin, window_s=window_s)


# ------------------------------------------------------------------------- validate


def validate(cfg: Mapping[str, Any]) -> RunConfig:
    """Validate a config dict and resolve it into a :class:`RunConfig`.

    A ``preset`` key that has not been merged yet is merged first (merging
    twice gives the same result). The topology is built here, so per-node
    lists and adjustment links are checked against it.

    Args:
        cfg: a config dict, usually from :func:`load_config`.

    Returns:
        The validated, frozen run configuration.

    Raises:
        ConfigError: the first problem found, as one line naming the key.
    """
    cfg = load_config(cfg)
    top = _table(cfg, "", _TOP_LEVEL_KEYS)
    sections = {s: _table(top.get(s, {}), s, keys) for s, keys in _SECTIONS.items()}

    preset = top.get("preset")
    name = top.get("name", preset or "custom")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("name", name, "must be a non-empty string")
    seed = _integer(top.get("seed", 0), "seed", lo=0)

    until_s, until_cycles, fidelity, record = _run(sections["run"])

    # Check every scalar before building anything.
    spec = _topology_spec(sections["topology"])
    clock = sections["clock"]
    f_nom_hz = _number(clock.get("f_nom_hz", 125e6), "clock.f_nom_hz", lo=0, lo_open=True)
    wander = _number(clock.get("wander_ppb_per_sqrt_s", 0.0), "clock.wander_ppb_per_sqrt_s", lo=0)
    control = sections["control"]
    period = _integer(
        control.get("update_period_ticks", 25_000), "control.update_period_ticks", lo=2
    )
    delay = _integer(control.get("delay_ticks", 0), "control.delay_ticks", lo=0)
    if delay >= period:
        raise ConfigError(
            "control.delay_ticks", delay, f"must be < control.update_period_ticks ({period})"
        )
    measure = _choice(control.get("measure", "buffer"), "control.measure", MEASURE_KINDS)
    sample_at = _choice(control.get("sample_at", "edge"), "control.sample_at", ("edge", "phase"))
    actuator = _actuator(sections["actuator"])
    stability = _stability(sections["stability"])
    controller_spec = _controller(sections["controller"], "controller", stability)

    topology = _build_topology(spec, seed)
    n = int(topology.n_nodes)
    buffer = _buffer(sections["buffer"], topology)

    return RunConfig(
        name=name,
        preset=preset,
        seed=seed,
        until_s=until_s,
        until_cycles=until_cycles,
        fidelity=fidelity,
        record=record,
        topology=topology,
        topology_spec=spec,
        f_nom_hz=f_nom_hz,
        offsets_ppm=_offsets(clock.get("offsets_ppm", 0.0), n, seed),
        drift_ppb_per_s=_per_node(
            clock.get("drift_ppb_per_s", 0.0), "clock.drift_ppb_per_s", n, _number
        ),
        wander_ppb_per_sqrt_s=wander,
        theta0=_per_node(clock.get("theta0", 0.1), "clock.theta0", n, _theta),
        start_s=_per_node(clock.get("start_s", 0.0), "clock.start_s", n, _start),
        update_period_ticks=period,
        control_delay_ticks=delay,
        measure=measure,
        sample_at=sample_at,
        controller_kind=controller_spec["kind"],
        kp=controller_spec.get("kp", 0.0),
        ki=controller_spec.get("ki", 0.0),
        actuator=actuator,
        buffer=buffer,
        stability=stability,
        source=cfg,
        controller_spec=controller_spec,
    )


# -------------------------------------------------------------------------- build


def build_system(run_cfg: RunConfig) -> System:
    """Build the :class:`~tidesim.models.system.System` a run configuration describes.

    Args:
        run_cfg: the output of :func:`validate`.

    Returns:
        A ready-to-run system (call ``.run(run_cfg.until_s,
        until_cycles=run_cfg.until_cycles, fidelity=run_cfg.fidelity)``).
    """
    from .models.system import System

    controller = build_controller(run_cfg)  # None: free-running clocks
    return System(
        run_cfg.topology,
        f_nom_hz=run_cfg.f_nom_hz,
        offsets_ppm=run_cfg.offsets_ppm,
        drift_ppb_per_s=run_cfg.drift_ppb_per_s,
        wander_ppb_per_sqrt_s=run_cfg.wander_ppb_per_sqrt_s,
        theta0=run_cfg.theta0,
        start_s=run_cfg.start_s,
        controller=controller,
        update_period_ticks=run_cfg.update_period_ticks,
        control_delay_ticks=run_cfg.control_delay_ticks,
        actuator=run_cfg.actuator,
        buffer=run_cfg.buffer,
        measure=run_cfg.measure,
        sample_at=run_cfg.sample_at,
        stability=run_cfg.stability,
        seed=run_cfg.seed,
        name=run_cfg.name,
    )


def build_controller(run_cfg: RunConfig):
    """The :class:`~tidesim.controllers.Controller` of a run configuration.

    Durations in seconds become node updates at the nominal frequency,
    ``round(seconds · f_nom_hz / update_period_ticks)``; ppm and ppb become
    relative values; reframing's per-link state is sized for the topology's
    largest in-degree.

    Args:
        run_cfg: the output of :func:`validate`.

    Returns:
        The controller, or ``None`` for ``kind = "none"``.
    """
    spec = run_cfg.controller_spec
    if spec is None:
        spec = {"kind": run_cfg.controller_kind, "kp": run_cfg.kp, "ki": run_cfg.ki}
    return _make_controller(spec, run_cfg)


def _make_controller(spec: Mapping[str, Any], run_cfg: RunConfig):
    from . import controllers as C

    def updates(seconds: float) -> int:
        return int(round(seconds * run_cfg.f_nom_hz / run_cfg.update_period_ticks))

    kind = spec["kind"]
    if kind == "none":
        return None
    if kind == "pi":
        ctl = C.PI(spec["kp"], spec["ki"], update_period_ticks=run_cfg.update_period_ticks)
    elif kind == "p":
        ctl = C.P(spec["kp"])
    elif kind == "pump":
        ctl = C.Pump(spec["kp"], spec["target_ppm"] * 1e-6)
    elif kind == "bangbang":
        ctl = C.BangBang(spec["step_ppb"] * 1e-9, spec["deadband"])
    elif kind == "reframing":
        ctl = C.Reframing(
            C.Pump(spec["kp"], spec["target_ppm"] * 1e-6),
            margin=spec["margin"],
            window_updates=updates(spec["window_s"]),
            wait_updates=updates(spec["wait_s"]),
            ramp_updates=updates(spec["ramp_s"]),
            max_degree=max(1, int(run_cfg.topology.degree().max())),
        )
    elif kind == "python":
        ctl = C.Controller(import_step(spec["step"]), spec["params"], spec["state"],
                           name=spec["step"].rsplit(":", 1)[-1].strip())
    else:  # sequence
        ctl = C.Sequence(_make_controller(spec["first"], run_cfg),
                         _make_controller(spec["second"], run_cfg), updates(spec["after_s"]))
    if "freeze_s" in spec:
        ctl = C.Freeze(ctl, updates(spec["freeze_s"]))
    return ctl
