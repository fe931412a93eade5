"""TOML run configurations: load, validate, build a :class:`~tidesim.models.system.System`.

A config is a TOML file (or the equivalent dict) with the sections ``[run]``,
``[topology]``, ``[clock]``, ``[control]``, ``[controller]``, ``[actuator]``,
``[buffer]`` and ``[stability]``; ``docs/config.md`` documents every key.
Three steps turn it into a system:

1. :func:`load_config` reads the file and, when it names a ``preset``, merges it
   on top of that preset (user keys win).
2. :func:`validate` checks the keys (an unknown one gets a "did you mean"),
   builds the topology, draws random offsets, resolves adjustment links, maps
   every table onto the keyword arguments of the objects it describes (the
   controller, the parts, the ``System``) and builds them, and returns a
   frozen :class:`RunConfig`.
3. :func:`build_system` turns a :class:`RunConfig` into a ``System``.

The values are checked once, by those objects (:mod:`tidesim._checks`), under
the config's own key names; a nested table renames them (``controller.kp`` of
a sequence's ``first`` part is reported as ``controller.first.kp``). Every
problem is reported as one :class:`~tidesim.errors.ConfigError` line that
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
import tomllib
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._checks import choice, number, renamed
from .controllers import (
    PI,
    BangBang,
    ControlLaw,
    Controller,
    Freeze,
    P,
    Pump,
    Reframing,
    Sequence,
    is_step_function,
)
from .errors import ConfigError
from .models import Actuator, Adjustment, ElasticBuffer, Stability, System, Topology
from .models.system import MAX_OFFSET_PPM
from .models.topology import make_topology
from .presets import PRESETS, preset_names

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
_CONTROLLER_REQUIRED: dict[str, dict[str, str]] = {
    "sequence": dict.fromkeys(("first", "second", "after_s"), "is required for kind = 'sequence'"),
    "python": {"step": "is required for kind = 'python' (a step function 'module:function')"},
}
_LAWS = {"pi": PI, "p": P, "pump": Pump}
_DEFAULT_KP = 2e-8
"""``kp`` of a controller table that does not give one (relative frequency per frame)."""

# [control] key -> System keyword
_CONTROL_KEYWORDS = {
    "update_period_ticks": "update_period_ticks",
    "delay_ticks": "control_delay_ticks",
    "measure": "measure",
    "sample_at": "sample_at",
}

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
            default filled in, as the controller holds it (``first`` and
            ``second`` of a sequence are tables of the same form);
            :func:`build_controller` builds the controller from it (``None``:
            from ``controller_kind``, ``kp`` and ``ki``).
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


def _given(t: Mapping, keys: Seq[str] | Mapping[str, str]) -> dict:
    """The keyword arguments for the ``keys`` present in ``t`` (names, or a key -> keyword map)."""
    pairs = keys.items() if isinstance(keys, Mapping) else ((k, k) for k in keys)
    return {keyword: t[key] for key, keyword in pairs if key in t}


def _as_given(value: Any, checked: np.ndarray) -> PerNode:
    """A per-node value as the System checked it, in the shape the config gave it."""
    if isinstance(value, (list, tuple)):
        return tuple(checked.tolist())
    return float(checked[0])


# ------------------------------------------------------------------------ sections


def _topology_spec(t: dict) -> dict:
    """The arguments of ``make_topology``; it checks the shape keys and latencies."""
    if "kind" not in t:
        raise ConfigError("topology.kind", None, "is required (or name a preset)")
    latency = t.get("latency_s", 1e-8)
    if isinstance(latency, Mapping):
        _table(latency, "topology.latency_s", _LATENCY_DIST_KEYS)
    return {**t, "latency_s": latency}


def _build_topology(spec: dict, seed: Any) -> Topology:
    """Build the topology; whole-graph errors quote the user's shape keys."""
    kwargs = {k: v for k, v in spec.items() if k != "kind"}
    try:
        with renamed("topology.seed", "seed"):
            return make_topology(spec["kind"], seed=seed, **kwargs)
    except ConfigError as exc:
        if exc.field != "topology":
            raise
        shape = {k: v for k, v in spec.items() if k != "latency_s"}
        raise ConfigError("topology", shape, exc.expected) from None


def _offsets(value: Any, n_nodes: int, seed: int) -> Any:
    """Draws random offsets (``{random_ppm = ...}``); any other value is the System's to check."""
    name = "clock.offsets_ppm"
    if not isinstance(value, Mapping):
        return value
    t = _table(value, name, _RANDOM_OFFSET_KEYS)
    if "random_ppm" not in t:
        raise ConfigError(f"{name}.random_ppm", t, "is required for random offsets")
    spread = number(f"{name}.random_ppm", t["random_ppm"], lo=0, hi=MAX_OFFSET_PPM)
    rng = np.random.default_rng(seed)
    return tuple(float(x) for x in rng.uniform(-spread, spread, n_nodes))


def _controller(t: Any, name: str, stability: Stability) -> tuple[ControlLaw | None, dict]:
    """Map a controller table onto a controller; the controller checks the values.

    ``name`` is the table's dotted path (``controller``, ``controller.first``):
    the controllers report ``controller.kp``, renamed here to ``name.kp``.
    Reframing's ``margin`` and ``window_s`` default to the ``[stability]`` ones.

    Returns:
        The controller (``None`` for ``kind = "none"``), and the table with
        every default filled in, as the controller holds it.
    """
    t = _table(t, name, _CONTROLLER_TABLE_KEYS)
    kind = choice(f"{name}.kind", t.get("kind", "pi"), CONTROLLER_KINDS)
    keys = _CONTROLLER_KEYS[kind]
    for key in t:
        if key not in ("kind", *keys, *(("freeze_s",) if kind != "none" else ())):
            raise ConfigError(f"{name}.{key}", t[key], f"is not used by {name}.kind = {kind!r}")
    if kind == "none":
        return None, {"kind": kind}
    for key in _CONTROLLER_REQUIRED.get(kind, ()):
        if key not in t:
            raise ConfigError(f"{name}.{key}", None, _CONTROLLER_REQUIRED[kind][key])
    parts = {}
    for key in ("first", "second") if kind == "sequence" else ():
        if isinstance(t[key], Mapping) and t[key].get("kind", "pi") == "none":
            raise ConfigError(f"{name}.{key}.kind", "none", "must be a controller, not 'none'")
        parts[key] = _controller(t[key], f"{name}.{key}", stability)
    with renamed("controller", name):
        law = _law(kind, t, {k: law for k, (law, _) in parts.items()}, stability)
        spec = {"kind": kind, **{k: _spec_value(law, k, t, parts) for k in keys}}
        if "freeze_s" in t:
            with renamed("controller.after_s", "controller.freeze_s"):
                law = Freeze(law, t["freeze_s"])
            spec["freeze_s"] = law.after_s
    return law, spec


def _law(kind: str, t: Mapping, parts: Mapping[str, ControlLaw], stability: Stability
         ) -> ControlLaw:
    """The controller a table of ``kind`` describes (keys checked, values not)."""
    given = {k: v for k, v in t.items() if k not in ("kind", "freeze_s")}
    if kind in ("pi", "p", "pump"):
        return _LAWS[kind](**{"kp": _DEFAULT_KP, **given})
    if kind == "bangbang":
        return BangBang(**given)
    if kind == "reframing":
        inner = Pump(**{"kp": _DEFAULT_KP, **_given(given, ("kp", "target_ppm"))})
        timing = {"margin": stability.margin, "window_s": stability.window_s,
                  **_given(given, ("margin", "window_s", "wait_s", "ramp_s"))}
        return Reframing(inner, **timing)
    if kind == "sequence":
        return Sequence(parts["first"], parts["second"], given["after_s"])
    step = import_step(given["step"])  # fail here, not in a sweep's workers
    return Controller(step, params=given.get("params", ()), state=given.get("state", ()),
                      name=given["step"].rsplit(":", 1)[-1].strip())


def _spec_value(law: ControlLaw, key: str, t: Mapping, parts: Mapping[str, tuple]) -> Any:
    """The value of ``key`` of a controller table, as ``law`` holds it (defaults included)."""
    if key in parts:
        return parts[key][1]
    if key == "step":
        return t["step"]  # the name, not the function: a spec stays plain data
    owner = law.inner if isinstance(law, Reframing) and key in ("kp", "target_ppm") else law
    value = getattr(owner, key)
    return list(value) if isinstance(value, tuple) else value


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
    if not is_step_function(obj):
        raise ConfigError(field, ref,
                          "must name a function compiled with tidesim.controllers.controller_step")
    return obj


def _buffer(t: dict, topology: Topology) -> ElasticBuffer:
    """The elastic buffer; adjustments name their link as ``[src, dst]``."""
    adjust = t.get("adjust", [])
    if not isinstance(adjust, (list, tuple)):
        raise ConfigError("buffer.adjust", adjust, "must be a list of tables ([[buffer.adjust]])")
    adjustments = tuple(
        _adjustment(a, f"buffer.adjust[{i}]", topology) for i, a in enumerate(adjust)
    )
    kwargs = _given(t, ("depth", "reference", "arm", "auto_centre"))
    return ElasticBuffer(**kwargs, adjustments=adjustments)


def _adjustment(value: Any, name: str, topology: Topology) -> Adjustment:
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
    with renamed("buffer.adjust", name):
        return Adjustment(link=int(index), at_s=t["at_s"], frames=t["frames"])


# ------------------------------------------------------------------------- validate


def validate(cfg: Mapping[str, Any]) -> RunConfig:
    """Validate a config dict and resolve it into a :class:`RunConfig`.

    A ``preset`` key that has not been merged yet is merged first (merging
    twice gives the same result). Here the keys are checked (unknown ones,
    with a "did you mean"), the topology is built, random offsets are drawn
    and adjustment links resolved; the values themselves are checked by the
    objects they build (the controller, the parts, the ``System``), which
    name the same keys.

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
    seed = top.get("seed", 0)
    run = sections["run"]
    until_cycles = run.get("until_cycles")
    until_s = run.get("until_s", DEFAULT_UNTIL_S if until_cycles is None else None)

    spec = _topology_spec(sections["topology"])
    actuator = Actuator(**_given(sections["actuator"], _SECTIONS["actuator"]))
    stability = Stability(**_given(sections["stability"], _SECTIONS["stability"]))
    controller, controller_spec = _controller(sections["controller"], "controller", stability)
    topology = _build_topology(spec, seed)
    buffer = _buffer(sections["buffer"], topology)

    clock = dict(sections["clock"])
    if "offsets_ppm" in clock:
        clock["offsets_ppm"] = _offsets(clock["offsets_ppm"], topology.n_nodes, seed)
    system = System(
        topology,
        **_given(clock, _SECTIONS["clock"]),
        **_given(sections["control"], _CONTROL_KEYWORDS),
        controller=controller,
        actuator=actuator,
        buffer=buffer,
        stability=stability,
        seed=seed,
        name=top.get("name", preset or "custom"),
    )
    system.check_run(until_s, until_cycles, fidelity=run.get("fidelity", "event"),
                     record=run.get("record", "full"))

    return RunConfig(
        name=system.name,
        preset=preset,
        seed=system.seed,
        until_s=None if until_s is None else float(until_s),
        until_cycles=until_cycles,
        fidelity=run.get("fidelity", "event"),
        record=run.get("record"),
        topology=topology,
        topology_spec=spec,
        f_nom_hz=system.f_nom_hz,
        offsets_ppm=_as_given(clock.get("offsets_ppm"), system.offsets_ppm),
        drift_ppb_per_s=_as_given(clock.get("drift_ppb_per_s"), system.drift_ppb_per_s),
        wander_ppb_per_sqrt_s=system.wander_ppb_per_sqrt_s,
        theta0=_as_given(clock.get("theta0"), system.theta0),
        start_s=_as_given(clock.get("start_s"), system.start_s),
        update_period_ticks=system.update_period_ticks,
        control_delay_ticks=system.control_delay_ticks,
        measure=system.measure,
        sample_at=system.sample_at,
        controller_kind=controller_spec["kind"],
        kp=float(controller_spec.get("kp", 0.0)),
        ki=float(controller_spec.get("ki", 0.0)),
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
    return System(
        run_cfg.topology,
        f_nom_hz=run_cfg.f_nom_hz,
        offsets_ppm=run_cfg.offsets_ppm,
        drift_ppb_per_s=run_cfg.drift_ppb_per_s,
        wander_ppb_per_sqrt_s=run_cfg.wander_ppb_per_sqrt_s,
        theta0=run_cfg.theta0,
        start_s=run_cfg.start_s,
        controller=build_controller(run_cfg),  # None: free-running clocks
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


def build_controller(run_cfg: RunConfig) -> ControlLaw | None:
    """The controller of a run configuration (``PI``, ``Pump``, ``Sequence``, ...).

    Durations stay in seconds and ppm and ppb stay as given: the system
    compiles the controller (``System.compile_controller``) when a run starts.

    Args:
        run_cfg: the output of :func:`validate`.

    Returns:
        The controller, or ``None`` for ``kind = "none"``.
    """
    spec = run_cfg.controller_spec
    if spec is None:
        kind = run_cfg.controller_kind
        gains = {"kp": run_cfg.kp, "ki": run_cfg.ki}
        spec = {"kind": kind, **{k: v for k, v in gains.items() if k in _CONTROLLER_KEYS[kind]}}
    return _controller(spec, "controller", run_cfg.stability)[0]
