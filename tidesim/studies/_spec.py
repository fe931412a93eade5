"""What a sweep is: its spec, the random draws, and the list of its runs.

A :class:`Sweep` varies any key of a run configuration, named by its dotted
path (``"topology.n"``, ``"controller.kp"``, ``"clock.offsets_ppm.random_ppm"``,
``"topology.kind"``, or a whole table such as ``"topology"``):

* ``grid`` maps keys to lists of values; every combination is a grid point;
* ``random`` maps keys to distributions, drawn ``samples`` times with seeded
  generators: ``{"uniform": [lo, hi]}``, ``{"log_uniform": [lo, hi]}``,
  ``{"integers": [lo, hi]}`` (both ends included) or ``{"choice": [...]}``;
* every (grid point, sample) pair is run ``repeats`` times.

Run ``index`` counts grid points first, then samples, then repeats. Each run
gets the top-level ``seed`` ``run_seed(sweep seed, index)`` (unless ``seed``
itself is swept), so random offsets (``offsets_ppm = {random_ppm = R}``),
latency draws and wander differ between runs and are reproducible. Sample
``s`` draws key ``k`` from its own generator, seeded by ``(sweep seed, s,
crc32(k))``: every grid point sees the same samples (a paired design), and
adding a key leaves the other keys' draws alone.

A sweep has at most :data:`MAX_RUNS` runs: a larger one is refused when it
is made, from its counts alone, before any run's config is built.

A run's overrides are written into the base config *before* its preset is
merged (so ``{"topology": {"kind": "star", "k": 4}}`` replaces a preset's
topology as it would in a config file), and its id is a hash of the merged
config with its sample and repeat numbers: the same inputs always give the
same id, and a changed preset gives new ids.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import math
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import choice, integer, number
from ..errors import ConfigError

__all__ = [
    "MAX_RUNS",
    "RANDOM_KINDS",
    "RunSpec",
    "Sweep",
    "canonical",
    "load_sweep",
    "run_seed",
    "to_python",
]

RANDOM_KINDS = ("uniform", "log_uniform", "integers", "choice")
"""Distributions a ``[random]`` key can name."""

MAX_RUNS = 1_000_000
"""Most runs a sweep may have.

Listing a run builds, merges and hashes its config: about 0.2 ms and 2.5 kB
before anything is simulated. A million runs take minutes and gigabytes to
list; a slip such as ``repeats = 1000000000`` would never finish.
"""

_SPEC_KEYS = ("base", "grid", "random", "samples", "repeats", "seed", "until_s", "fidelity")
_FIDELITIES = ("event", "cycle")


def run_seed(sweep_seed: int, index: int) -> int:
    """The config ``seed`` of run ``index`` of a sweep seeded with ``sweep_seed``.

    Returns:
        An integer in ``[0, 2**32)`` from ``numpy.random.SeedSequence``.
    """
    ss = np.random.SeedSequence(entropy=int(sweep_seed), spawn_key=(int(index),))
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def to_python(value: Any) -> Any:
    """Plain Python values (numpy scalars and arrays converted), recursively."""
    if isinstance(value, Mapping):
        return {str(k): to_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_python(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_python(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def canonical(obj: Any) -> str:
    """``obj`` as compact JSON with sorted keys: equal inputs give equal text."""
    return json.dumps(to_python(obj), sort_keys=True, separators=(",", ":"))


def _check_path(key: Any, where: str) -> tuple[str, ...]:
    if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
        raise ConfigError(f"{where}.{key}", key, "must be a dotted config key like 'topology.n'")
    return tuple(key.split("."))


def _set_path(cfg: dict, path: tuple[str, ...], value: Any) -> None:
    """Set ``cfg[a][b]...[z] = value``, creating (or replacing non-table) levels."""
    node = cfg
    for part in path[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[path[-1]] = copy.deepcopy(value)


def _flatten(table: Mapping, where: str, is_leaf: Callable[[Any], bool]) -> dict[str, Any]:
    """Nested TOML tables to dotted keys: ``{a: {b: [..]}}`` -> ``{"a.b": [..]}``."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping) and not is_leaf(value):
            if not value:
                raise ConfigError(f"{where}.{key}", {}, "must not be an empty table")
            for sub, v in _flatten(value, where, is_leaf).items():
                out[f"{key}.{sub}"] = v
        else:
            out[str(key)] = value
    return out


def _is_random_leaf(value: Any) -> bool:
    """A distribution table (``{uniform = [..]}``): it holds a value that is not a table."""
    return isinstance(value, Mapping) and (
        not value or any(not isinstance(v, Mapping) for v in value.values()))


def _random_spec(key: str, spec: Any) -> tuple[str, Any]:
    """Check one ``[random]`` entry; returns ``(kind, args)``."""
    name = f"random.{key}"
    kinds = ", ".join(f"{{{k} = ...}}" for k in RANDOM_KINDS)
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise ConfigError(name, spec, f"must be one of {kinds}")
    kind, args = next(iter(spec.items()))
    if kind not in RANDOM_KINDS:
        close = difflib.get_close_matches(str(kind), RANDOM_KINDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{name}.{kind}", args, f"is not a known distribution{hint}")
    where = f"{name}.{kind}"
    if kind == "choice":
        if not isinstance(args, (list, tuple)) or not args:
            raise ConfigError(where, args, "must be a non-empty list of values")
        return kind, [to_python(a) for a in args]
    if not isinstance(args, (list, tuple)) or len(args) != 2:
        raise ConfigError(where, args, "must be a pair [lo, hi]")
    if kind == "integers":
        lo, hi = (integer(where, a, lo=-(2**62)) for a in args)
    else:
        lo, hi = (number(where, a) for a in args)
    if lo > hi:
        raise ConfigError(where, list(args), "must have lo <= hi")
    if kind == "log_uniform" and lo <= 0:
        raise ConfigError(where, list(args), "must have 0 < lo <= hi")
    return kind, (lo, hi)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _draw(kind: str, args: Any, rng: np.random.Generator) -> Any:
    if kind == "uniform":
        return float(rng.uniform(args[0], args[1]))
    if kind == "log_uniform":
        return float(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
    if kind == "integers":
        return int(rng.integers(args[0], args[1], endpoint=True))
    return copy.deepcopy(args[int(rng.integers(len(args)))])


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep.

    Attributes:
        index: position in the sweep (grid point, then sample, then repeat).
        run_id: 16 hex digits, a hash of the merged config, sample and repeat.
        seed: the config's top-level ``seed``.
        grid_point, sample, repeat: which grid point, random sample and repetition.
        inputs: the swept keys and their values (dotted keys, in spec order).
        config: the run's config, merged on its preset (ready for ``validate``).
    """

    index: int
    run_id: str
    seed: int
    grid_point: int
    sample: int
    repeat: int
    inputs: dict[str, Any] = field(repr=False)
    config: dict[str, Any] = field(repr=False, compare=False)

    def row_head(self) -> dict[str, Any]:
        """The identifying columns of this run's table row."""
        return {"run_id": self.run_id, "index": self.index, "sample": self.sample,
                "repeat": self.repeat, "seed": self.seed, **self.inputs}


class Sweep:
    """A study: one base config, a grid, seeded random samples, repetitions.

    Args:
        base: a run config dict (may name a ``preset``), as for ``tidesim run``.
        grid: dotted key -> non-empty list of values.
        random: dotted key -> ``{"uniform" | "log_uniform" | "integers" |
            "choice": ...}``.
        samples: random samples per grid point (``>= 1`` when ``random`` is
            given, else 0).
        repeats: runs per (grid point, sample), each with its own seed.
        seed: the sweep's seed (random draws and per-run seeds).
        until_s: simulated time of every run (sets ``run.until_s``).
        fidelity: ``"event"`` or ``"cycle"`` for every run (sets ``run.fidelity``).

    Raises:
        ConfigError: a malformed spec (the run configs themselves are checked
            by :meth:`check`).
    """

    def __init__(
        self,
        base: Mapping[str, Any],
        grid: Mapping[str, Iterable] | None = None,
        random: Mapping[str, Mapping] | None = None,
        samples: int = 0,
        repeats: int = 1,
        seed: int = 0,
        *,
        until_s: float | None = None,
        fidelity: str | None = None,
    ) -> None:
        if not isinstance(base, Mapping):
            raise ConfigError("base", base, "must be a table (a run config)")
        self.base = to_python(dict(base))
        grid = {} if grid is None else grid
        random = {} if random is None else random
        if not isinstance(grid, Mapping):
            raise ConfigError("grid", grid, "must be a table of dotted keys -> lists")
        if not isinstance(random, Mapping):
            raise ConfigError("random", random, "must be a table of dotted keys -> distributions")
        self.grid: dict[str, list] = {}
        for key, values in grid.items():
            _check_path(key, "grid")
            if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
                raise ConfigError(f"grid.{key}", values, "must be a list of values")
            values = [to_python(v) for v in values]
            if not values:
                raise ConfigError(f"grid.{key}", values, "must be a non-empty list of values")
            self.grid[key] = values
        self.random: dict[str, dict] = {}
        self._random: dict[str, tuple[str, Any]] = {}
        for key, spec in random.items():
            _check_path(key, "random")
            self._random[key] = _random_spec(key, spec)
            self.random[key] = to_python(dict(spec))
        keys = list(self.grid) + list(self.random)
        for a, b in itertools.combinations(keys, 2):
            if a == b or b.startswith(a + ".") or a.startswith(b + "."):
                where = "random" if b in self.random else "grid"
                raise ConfigError(f"{where}.{b}", b, f"overlaps the swept key {a!r}")
        self.samples = integer("samples", samples, lo=0)
        if self.random and self.samples < 1:
            raise ConfigError("samples", samples, "must be >= 1 when [random] keys are given")
        if not self.random and self.samples:
            raise ConfigError("samples", samples, "needs [random] keys to draw (use repeats)")
        self.repeats = integer("repeats", repeats, lo=1)
        self.seed = integer("seed", seed, lo=0)
        self._check_size()
        if until_s is not None:
            number("until_s", until_s, lo=0, lo_open=True)
        self.until_s = until_s
        if fidelity is not None:
            choice("fidelity", fidelity, _FIDELITIES)
        self.fidelity = fidelity
        self._runs: list[RunSpec] | None = None
        self._checked = False

    # -- spec ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-ready dict (the keys of a sweep TOML file)."""
        out = {"base": self.base, "grid": self.grid, "random": self.random,
               "samples": self.samples, "repeats": self.repeats, "seed": self.seed}
        if self.until_s is not None:
            out["until_s"] = self.until_s
        if self.fidelity is not None:
            out["fidelity"] = self.fidelity
        return to_python(out)

    def _check_size(self) -> None:
        """Refuse a sweep of more than :data:`MAX_RUNS` runs, before any run is listed."""
        points = math.prod(len(v) for v in self.grid.values())
        samples = max(self.samples, 1)
        n = points * samples * self.repeats
        if n <= MAX_RUNS:
            return
        # name the factor most likely to be the mistake
        field, value = max((("grid", points), ("samples", samples), ("repeats", self.repeats)),
                           key=lambda item: item[1])
        raise ConfigError(field, value,
                          f"must keep the sweep within {MAX_RUNS} runs (it has {n} = "
                          f"{_count(points, 'grid point')} x {_count(samples, 'sample')} x "
                          f"{_count(self.repeats, 'repeat')})")

    @property
    def n_runs(self) -> int:
        """How many runs the sweep has."""
        points = math.prod(len(v) for v in self.grid.values())
        return points * max(self.samples, 1) * self.repeats

    def _sample(self, s: int) -> dict[str, Any]:
        out = {}
        for key, (kind, args) in self._random.items():
            rng = np.random.default_rng([self.seed, s, zlib.crc32(key.encode())])
            out[key] = _draw(kind, args, rng)
        return out

    def _base_config(self) -> dict:
        cfg = copy.deepcopy(self.base)
        if self.until_s is not None or self.fidelity is not None:
            run = cfg.get("run")
            run = dict(run) if isinstance(run, Mapping) else {}
            if self.until_s is not None:
                run["until_s"] = self.until_s
                run.pop("until_cycles", None)
            if self.fidelity is not None:
                run["fidelity"] = self.fidelity
            cfg["run"] = run
        return cfg

    # -- runs ----------------------------------------------------------------
    def runs(self) -> list[RunSpec]:
        """Every run of the sweep, in index order (computed once).

        Raises:
            ConfigError: the base config or a preset cannot be loaded, or two
                runs would be identical.
        """
        if self._runs is not None:
            return self._runs
        from ..config import load_config

        base = self._base_config()
        paths = {k: _check_path(k, "grid") for k in (*self.grid, *self.random)}
        points = list(itertools.product(*self.grid.values()))
        n_samples = max(self.samples, 1)
        draws = [self._sample(s) if self.random else {} for s in range(n_samples)]
        runs: list[RunSpec] = []
        seen: dict[str, int] = {}
        index = 0
        for g, point in enumerate(points):
            for s in range(n_samples):
                inputs = {**dict(zip(self.grid, point, strict=True)), **draws[s]}
                for r in range(self.repeats):
                    cfg = copy.deepcopy(base)
                    for key, value in inputs.items():
                        _set_path(cfg, paths[key], value)
                    if "seed" not in inputs:
                        cfg["seed"] = run_seed(self.seed, index)
                    merged = to_python(load_config(cfg))
                    run_id = hashlib.sha256(
                        canonical({"config": merged, "sample": s, "repeat": r}).encode()
                    ).hexdigest()[:16]
                    if run_id in seen:
                        raise ConfigError("grid", inputs, f"repeats run {seen[run_id]} exactly "
                                          f"(run {index}); remove the duplicate value")
                    seen[run_id] = index
                    seed = merged.get("seed", 0)
                    runs.append(RunSpec(index=index, run_id=run_id, seed=seed, grid_point=g,
                                        sample=s, repeat=r, inputs=copy.deepcopy(inputs),
                                        config=merged))
                    index += 1
        self._runs = runs
        return runs

    def check(self) -> None:
        """Validate every run's config before anything is simulated.

        Runs whose configs differ only in ``seed`` are validated once (the seed
        changes random draws, never whether a config is valid).

        Raises:
            ConfigError: the first invalid run, naming the key and the run.
        """
        if self._checked:
            return
        from ..config import validate

        done: set[str] = set()
        for run in self.runs():
            key = canonical({k: v for k, v in run.config.items() if k != "seed"})
            if key in done:
                continue
            try:
                validate(run.config)
            except ConfigError as exc:
                what = ", ".join(f"{k}={v!r}" for k, v in run.inputs.items())
                err = ConfigError(exc.field, exc.value, exc.expected)
                err.args = (f"{err} (in run {run.index}{': ' + what if what else ''})",)
                raise err from None
            done.add(key)
        self._checked = True


def load_sweep(source: str | Path | Mapping[str, Any]) -> Sweep:
    """Read a sweep spec (TOML file or dict) into a :class:`Sweep`.

    The file has a ``[base]`` table (a run config; it may name a ``preset``),
    an optional ``[grid]`` (dotted key -> list), an optional ``[random]``
    (dotted key -> distribution table), and top-level ``samples``, ``repeats``,
    ``seed``, ``until_s`` and ``fidelity``. Keys may be quoted
    (``"controller.kp" = [...]``) or written as TOML dotted keys
    (``controller.kp = [...]``)::

        seed = 1
        repeats = 4
        until_s = 2.0

        [base]
        preset = "hitl8"

        [grid]
        "topology.n" = [4, 8]

        [random]
        "controller.kp" = {log_uniform = [1e-8, 1e-6]}

    Raises:
        ConfigError: the file is unreadable or the spec is malformed.
    """
    if isinstance(source, Mapping):
        spec = to_python(dict(source))
    else:
        from ..config import read_toml

        spec = read_toml(source)
    for key in spec:
        if key not in _SPEC_KEYS:
            close = difflib.get_close_matches(str(key), _SPEC_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(str(key), spec[key], f"is not a known sweep key{hint}")
    if "base" not in spec:
        raise ConfigError("base", None, 'is required (a [base] run config, e.g. preset = "hitl8")')
    if not isinstance(spec["base"], Mapping):
        raise ConfigError("base", spec["base"], "must be a table (a run config)")
    grid = spec.get("grid", {})
    random = spec.get("random", {})
    if not isinstance(grid, Mapping):
        raise ConfigError("grid", grid, "must be a table of dotted keys -> lists")
    if not isinstance(random, Mapping):
        raise ConfigError("random", random, "must be a table of dotted keys -> distributions")
    return Sweep(
        spec["base"],
        grid=_flatten(grid, "grid", lambda v: False),
        random=_flatten(random, "random", _is_random_leaf),
        samples=spec.get("samples", 0),
        repeats=spec.get("repeats", 1),
        seed=spec.get("seed", 0),
        until_s=spec.get("until_s"),
        fidelity=spec.get("fidelity"),
    )


