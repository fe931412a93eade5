"""Parameter sweeps: many runs of one base configuration, one tidy results table.

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

A run's overrides are written into the base config *before* its preset is
merged (so ``{"topology": {"kind": "star", "k": 4}}`` replaces a preset's
topology as it would in a config file), and its id is a hash of the merged
config with its sample and repeat numbers: the same inputs always give the
same id, and a changed preset gives new ids.

:func:`run_sweep` runs the runs that are not yet in ``OUT/results.jsonl``, in
chunks, on a :class:`concurrent.futures.Executor` (default: a local process
pool with one worker per CPU; a Dask ``Client.get_executor()`` works too), and
appends one JSON line per finished run, flushed and fsync'd. Re-running the
same sweep into the same directory therefore resumes it: finished runs are
skipped, a half-written last line is dropped and the run redone. At the end
``OUT/results.csv`` holds the sweep's table, one row per run, in index order:
``run_id, index, sample, repeat, seed``, the swept keys, the metrics of
:func:`tidesim.studies.metrics.run_metrics`, ``error`` and the volatile
``wall_s`` (whole run in the worker), ``run_s`` (``System.run``: the kernel)
and ``worker``.

Example:
    >>> from tidesim.studies.sweep import Sweep
    >>> sw = Sweep({"preset": "hitl-complete3"}, grid={"controller.kp": [1e-7, 2e-7]},
    ...            repeats=2, seed=1)
    >>> [(r.index, r.inputs["controller.kp"], r.repeat) for r in sw.runs()]
    [(0, 1e-07, 0), (1, 1e-07, 1), (2, 2e-07, 0), (3, 2e-07, 1)]
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import copy
import csv
import difflib
import hashlib
import itertools
import json
import math
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, TidesimError

__all__ = [
    "RANDOM_KINDS",
    "VOLATILE_COLUMNS",
    "RunSpec",
    "Sweep",
    "SweepIncomplete",
    "SweepResult",
    "load_sweep",
    "prepare_dask_workers",
    "run_seed",
    "run_sweep",
    "to_table",
    "write_csv",
]

RANDOM_KINDS = ("uniform", "log_uniform", "integers", "choice")
"""Distributions a ``[random]`` key can name."""

VOLATILE_COLUMNS = ("wall_s", "run_s", "worker")
"""Columns that differ between two executions of the same run."""

RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
SPEC_JSON = "sweep.json"

_SPEC_KEYS = ("base", "grid", "random", "samples", "repeats", "seed", "until_s", "fidelity")
_FIDELITIES = ("event", "cycle")
_MAX_CHUNK = 16


class SweepIncomplete(TidesimError):
    """Some runs did not finish (a worker died or a run crashed); re-run to resume.

    Attributes:
        result: the :class:`SweepResult` of what did finish.
    """

    def __init__(self, message: str, result: SweepResult) -> None:
        self.result = result
        super().__init__(message)


# --------------------------------------------------------------------------- specs


def run_seed(sweep_seed: int, index: int) -> int:
    """The config ``seed`` of run ``index`` of a sweep seeded with ``sweep_seed``.

    Returns:
        An integer in ``[0, 2**32)`` from ``numpy.random.SeedSequence``.
    """
    ss = np.random.SeedSequence(entropy=int(sweep_seed), spawn_key=(int(index),))
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def _to_python(value: Any) -> Any:
    """Plain Python values (numpy scalars and arrays converted), recursively."""
    if isinstance(value, Mapping):
        return {str(k): _to_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_python(v) for v in value]
    if isinstance(value, np.ndarray):
        return _to_python(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def _canonical(obj: Any) -> str:
    return json.dumps(_to_python(obj), sort_keys=True, separators=(",", ":"))


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


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, value, "must be a number")
    if not math.isfinite(value):
        raise ConfigError(name, value, "must be a finite number")
    return value


def _integer(value: Any, name: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(name, value, "must be an integer")
    if value < lo:
        raise ConfigError(name, value, f"must be an integer >= {lo}")
    return int(value)


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
        return kind, [_to_python(a) for a in args]
    if not isinstance(args, (list, tuple)) or len(args) != 2:
        raise ConfigError(where, args, "must be a pair [lo, hi]")
    if kind == "integers":
        lo, hi = (_integer(a, where, -(2**62)) for a in args)
    else:
        lo, hi = (_number(a, where) for a in args)
    if lo > hi:
        raise ConfigError(where, list(args), "must have lo <= hi")
    if kind == "log_uniform" and lo <= 0:
        raise ConfigError(where, list(args), "must have 0 < lo <= hi")
    return kind, (lo, hi)


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
        self.base = _to_python(dict(base))
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
            values = [_to_python(v) for v in values]
            if not values:
                raise ConfigError(f"grid.{key}", values, "must be a non-empty list of values")
            self.grid[key] = values
        self.random: dict[str, dict] = {}
        self._random: dict[str, tuple[str, Any]] = {}
        for key, spec in random.items():
            _check_path(key, "random")
            self._random[key] = _random_spec(key, spec)
            self.random[key] = _to_python(dict(spec))
        keys = list(self.grid) + list(self.random)
        for a, b in itertools.combinations(keys, 2):
            if a == b or b.startswith(a + ".") or a.startswith(b + "."):
                where = "random" if b in self.random else "grid"
                raise ConfigError(f"{where}.{b}", b, f"overlaps the swept key {a!r}")
        self.samples = _integer(samples, "samples", 0)
        if self.random and self.samples < 1:
            raise ConfigError("samples", samples, "must be >= 1 when [random] keys are given")
        if not self.random and self.samples:
            raise ConfigError("samples", samples, "needs [random] keys to draw (use repeats)")
        self.repeats = _integer(repeats, "repeats", 1)
        self.seed = _integer(seed, "seed", 0)
        if until_s is not None and (_number(until_s, "until_s") <= 0):
            raise ConfigError("until_s", until_s, "must be > 0")
        self.until_s = until_s
        if fidelity is not None and fidelity not in _FIDELITIES:
            raise ConfigError("fidelity", fidelity, f"must be one of {list(_FIDELITIES)}")
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
        return _to_python(out)

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
                    merged = _to_python(load_config(cfg))
                    run_id = hashlib.sha256(
                        _canonical({"config": merged, "sample": s, "repeat": r}).encode()
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
            key = _canonical({k: v for k, v in run.config.items() if k != "seed"})
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
        spec = _to_python(dict(source))
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


# ------------------------------------------------------------------------- workers


def _worker_id() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def _warm() -> None:
    """Import tidesim and load every compiled kernel a run uses (from the cache)."""
    from ..config import build_system, load_config, validate
    from .metrics import run_metrics

    cfg = {"topology": {"kind": "complete", "n": 3}, "clock": {"offsets_ppm": [1.0, 0.0, -1.0]},
           "control": {"update_period_ticks": 1000}, "run": {"until_s": 1e-4},
           "controller": {"kind": "pi", "kp": 1e-7}}
    rc = validate(load_config(cfg))
    run_metrics(build_system(rc).run(rc.until_s))


def _keep_heap() -> None:
    """Let glibc reuse freed memory for the next run instead of returning it.

    Every run allocates its trace arrays afresh (tens of MB for the rig); by
    default glibc maps blocks that large anew each time and the kernel faults
    and zeroes every page, which costs a quarter of a 10 s ``hitl8`` run.
    Serving blocks up to 32 MiB from the heap and keeping up to 256 MiB of
    freed heap makes later runs reuse the pages. Linux/glibc only; a no-op
    elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 256 << 20)
    except (OSError, AttributeError):
        pass


def _worker_setup() -> None:
    """Prepare a dedicated worker process (a local Dask worker): heap reuse, warm kernels."""
    _keep_heap()
    _warm()


def prepare_dask_workers(client, *, own_cluster: bool = False) -> None:
    """Warm every worker of a Dask client before a sweep runs on it.

    Each worker imports tidesim and loads the compiled kernels once (from the
    Numba cache), so no run pays for it. On the workers of a cluster the
    caller started itself (``own_cluster``), glibc is also told to keep freed
    memory for the next run's trace; workers shared with others are left as
    they are.

    Args:
        client: a ``distributed.Client``.
        own_cluster: True for a cluster this process started (``LocalCluster``).
    """
    client.run(_worker_setup if own_cluster else _warm)


def _worker_init() -> None:
    """Initializer of the local process pool's workers.

    Workers ignore Ctrl-C (the parent stops them) and, on Linux, ask the kernel
    to kill them when their parent dies, so a killed sweep leaves nothing behind.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    _keep_heap()
    # a failed warm-up shows up again, and is reported, in the first real run
    with contextlib.suppress(Exception):
        _warm()


def _run_one(run_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate, build, simulate and measure one run (in a worker)."""
    from ..config import build_system, validate
    from ..errors import SimulationFault
    from .metrics import run_metrics

    t0 = time.perf_counter()
    run_s = None
    metrics: dict[str, Any] = {}
    error = None
    try:
        rc = validate(config)
        system = build_system(rc)
        t1 = time.perf_counter()
        try:
            trace = system.run(rc.until_s, until_cycles=rc.until_cycles, fidelity=rc.fidelity)
        except SimulationFault as exc:
            trace = exc.trace
            error = " ".join(str(exc).split())
        run_s = time.perf_counter() - t1
        if trace is not None:
            metrics = run_metrics(trace)
    except TidesimError as exc:
        error = " ".join(str(exc).split())
    except Exception as exc:  # noqa: BLE001 - reported, not recorded: a re-run retries it
        return {"run_id": run_id, "crash": f"{type(exc).__name__}: {exc}"}
    return {"run_id": run_id, "metrics": metrics, "error": error,
            "wall_s": time.perf_counter() - t0, "run_s": run_s, "worker": _worker_id()}


def _run_chunk(items: list[tuple[str, dict]]) -> list[dict[str, Any]]:
    """Run a chunk of ``(run_id, config)`` pairs in one worker task."""
    return [_run_one(run_id, config) for run_id, config in items]


def _process_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A local process pool whose workers start with tidesim imported and warm.

    On Linux, from a process with a single thread, workers are forked: they
    inherit the imported modules and the loaded kernels. Otherwise a fork
    server imports tidesim once and every worker is forked from it (or, where
    neither exists, workers are spawned and import it themselves).
    """
    import multiprocessing as mp
    import threading

    modules = ["tidesim.config", "tidesim.studies.metrics", "tidesim.studies.analysis",
               "tidesim.studies.sweep"]
    methods = mp.get_all_start_methods()
    if "fork" in methods and sys.platform.startswith("linux") and threading.active_count() == 1:
        import importlib

        for name in modules:
            importlib.import_module(name)
        ctx = mp.get_context("fork")
    elif "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(modules)
    else:
        ctx = mp.get_context("spawn")
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                  initializer=_worker_init)


def _stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Cancel what is queued and stop the pool's worker processes now."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:  # Python >= 3.14
        terminate()
        return
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)


def _executor_workers(executor: cf.Executor) -> int:
    n = getattr(executor, "_max_workers", None)
    if isinstance(n, int) and n > 0:
        return n
    client = getattr(executor, "_client", None)
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # noqa: BLE001 - any answer will do for sizing chunks
            pass
    return os.cpu_count() or 1


def _chunks(runs: list[RunSpec], workers: int, chunk_size: int | None) -> list[list[RunSpec]]:
    """Split runs into tasks; automatic sizes shrink towards the end (load balance)."""
    if chunk_size is not None:
        return [runs[i:i + chunk_size] for i in range(0, len(runs), chunk_size)]
    out, i = [], 0
    while i < len(runs):
        size = min(_MAX_CHUNK, max(1, math.ceil((len(runs) - i) / (4 * workers))))
        out.append(runs[i:i + size])
        i += size
    return out


# --------------------------------------------------------------------------- store


class _Store:
    """``results.jsonl``: one JSON object per line, appended and fsync'd per row."""

    def __init__(self, out_dir: Path) -> None:
        self.dir = out_dir
        self.path = out_dir / RESULTS_JSONL
        self._fh = None
        self._lock_fd: int | None = None

    def lock(self) -> None:
        """Refuse a second sweep writing into the same directory at the same time."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # a POSIX record lock belongs to this process only: it is neither
            # inherited by worker processes nor left behind when we are killed
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError("--out", str(self.dir), "is in use by another running sweep") \
                from None
        self._lock_fd = fd

    def load(self, *, repair: bool) -> dict[str, dict]:
        """Rows by run id (the first of duplicates); drops a torn last line."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        end = data.rfind(b"\n") + 1
        if repair and end < len(data):
            with self.path.open("r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
        rows: dict[str, dict] = {}
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a damaged line: that run is simply done again
            if isinstance(row, dict) and isinstance(row.get("run_id"), str):
                rows.setdefault(row["run_id"], row)
        return rows

    def append(self, row: Mapping[str, Any]) -> None:
        if self._fh is None:
            new = not self.path.exists()
            self._fh = self.path.open("ab")
            if new:
                _fsync_dir(self.dir)
        self._fh.write(json.dumps(row, separators=(",", ":")).encode() + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _clean(value: Any) -> Any:
    """JSON-safe: numpy to Python, non-finite floats to None."""
    value = _to_python(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_table(out_dir: str | Path, sweep: Sweep | None = None, *,
             volatile: bool = True) -> list[dict[str, Any]]:
    """The results of a sweep directory as a list of rows (dicts).

    Args:
        out_dir: the directory given to :func:`run_sweep`.
        sweep: when given, only its runs, in index order (runs not done yet are
            missing); otherwise every row of ``results.jsonl``, by index.
        volatile: keep the :data:`VOLATILE_COLUMNS` (wall times, worker).

    Returns:
        One dict per run, never two with the same ``run_id``.
    """
    rows = _Store(Path(out_dir)).load(repair=False)
    if sweep is not None:
        out = [rows[r.run_id] for r in sweep.runs() if r.run_id in rows]
    else:
        out = sorted(rows.values(), key=lambda r: (r.get("index", 0), r["run_id"]))
    if not volatile:
        out = [{k: v for k, v in r.items() if k not in VOLATILE_COLUMNS} for r in out]
    return out


def write_csv(rows: list[Mapping[str, Any]], path: str | Path) -> Path:
    """Write rows as CSV (columns in first-seen order; None is empty; lists as JSON).

    The file is written next to its final name and renamed into place.
    """
    path = Path(path)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))

    def cell(v: Any) -> Any:
        if v is None:
            return ""
        if isinstance(v, (bool, list, dict)):
            return json.dumps(v)
        if isinstance(v, float):
            return repr(v)
        return v

    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(columns))
        for row in rows:
            writer.writerow([cell(row.get(c)) for c in columns])
    os.replace(tmp, path)
    return path


# -------------------------------------------------------------------------- running


@dataclass
class SweepResult:
    """What :func:`run_sweep` did.

    Attributes:
        rows: the sweep's table (every finished run, index order).
        total: runs in the sweep.
        skipped: runs already in the table when it started (resumed).
        ran: runs finished by this call.
        errors: rows of this call whose run failed (``error`` is set:
            an invalid config or an unstable controller).
        missing: runs without a row (crashed or lost with a worker).
        wall_s: wall time of this call (s).
        out_dir: the directory; ``results.jsonl`` and ``results.csv`` are in it.
    """

    rows: list[dict[str, Any]]
    total: int
    skipped: int
    ran: int
    errors: int
    missing: int
    wall_s: float
    out_dir: Path

    @property
    def csv_path(self) -> Path:
        return self.out_dir / RESULTS_CSV


class _Progress:
    """``done/total``, rate and ETA on one self-overwriting line of stderr."""

    def __init__(self, total: int, done: int, setting: Any) -> None:
        self.total = total
        self.done = done
        self.start_done = done
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.callback = setting if callable(setting) else None
        if setting is None:
            setting = sys.stderr.isatty()
        self.enabled = bool(setting) and self.callback is None
        self.shown = False

    def advance(self, n: int) -> None:
        self.done += n
        if self.callback is not None:
            self.callback(self.done, self.total)
            return
        now = time.perf_counter()
        if self.enabled and (now - self.last >= 0.1 or self.done >= self.total):
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        width = 24
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        new = self.done - self.start_done
        elapsed = now - self.t0
        rate = new / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else math.nan
        eta_s = "--:--" if not math.isfinite(eta) else f"{int(eta) // 60:d}:{int(eta) % 60:02d}"
        sys.stderr.write(f"\r[{bar}] {self.done}/{self.total} runs  {rate:.1f} runs/s  "
                         f"ETA {eta_s} ")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def run_sweep(
    sweep: Sweep,
    out_dir: str | Path,
    executor: cf.Executor | None = None,
    progress: bool | Callable[[int, int], Any] | None = None,
    *,
    workers: int | None = None,
    chunk_size: int | None = None,
) -> SweepResult:
    """Run every run of ``sweep`` that ``out_dir`` does not hold yet.

    Args:
        sweep: the study.
        out_dir: results directory (created); ``results.jsonl`` is appended
            per finished run, ``results.csv`` and ``sweep.json`` are written.
        executor: any :class:`concurrent.futures.Executor` (for instance
            ``distributed.Client(...).get_executor()``); default: a local
            process pool of ``workers`` processes, shut down at the end.
        progress: ``None``: a progress line on stderr when it is a terminal;
            ``True``/``False``: always/never; a callable: called as
            ``progress(done, total)`` after every finished chunk.
        workers: size of the default pool (default ``os.cpu_count()``); with an
            executor, how many tasks it runs at once (used to size chunks).
        chunk_size: runs per task (default: automatic, at most 16).

    Returns:
        A :class:`SweepResult`.

    Raises:
        ConfigError: an invalid run config (nothing is run), or ``out_dir`` is
            in use by another sweep.
        SweepIncomplete: some runs did not finish; the others are in the table.
        KeyboardInterrupt: after stopping the local pool; finished runs are kept.
    """
    t_start = time.perf_counter()
    if workers is not None:
        workers = _integer(workers, "--workers", 1)
    if chunk_size is not None:
        chunk_size = _integer(chunk_size, "--chunk", 1)
    sweep.check()
    runs = sweep.runs()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", str(out), "must be a directory")
    out.mkdir(parents=True, exist_ok=True)
    store = _Store(out)
    store.lock()
    try:
        (out / SPEC_JSON).write_text(json.dumps(sweep.to_dict(), indent=2) + "\n")
        done = store.load(repair=True)
        pending = [r for r in runs if r.run_id not in done]
        skipped = len(runs) - len(pending)
        ran = errors = 0
        problems: list[str] = []
        bar = _Progress(len(runs), skipped, progress)
        own = executor is None and bool(pending)
        pool = None
        if own:
            n = workers or os.cpu_count() or 1
            pool = executor = _process_pool(min(n, len(pending)))
        try:
            if pending:
                n_workers = workers or _executor_workers(executor)
                by_id = {r.run_id: r for r in pending}
                futures = {
                    executor.submit(_run_chunk, [(r.run_id, r.config) for r in chunk]): chunk
                    for chunk in _chunks(pending, n_workers, chunk_size)
                }
                try:
                    for fut in cf.as_completed(futures):
                        chunk = futures[fut]
                        try:
                            results = fut.result()
                        except Exception as exc:  # noqa: BLE001 - a lost task: re-run later
                            problems.append(f"{type(exc).__name__}: {exc}")
                            bar.advance(len(chunk))
                            continue
                        for res in results:
                            if "crash" in res:
                                problems.append(f"run {by_id[res['run_id']].index}: "
                                                f"{res['crash']}")
                                continue
                            row = _row(by_id[res["run_id"]], res)
                            store.append(row)
                            done[row["run_id"]] = row
                            ran += 1
                            errors += row["error"] is not None
                        bar.advance(len(chunk))
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    if pool is not None:
                        _stop_pool(pool)
                        pool = None
                    raise
        finally:
            bar.close()
            if pool is not None:
                pool.shutdown(wait=True)
        rows = [done[r.run_id] for r in runs if r.run_id in done]
        write_csv(rows, out / RESULTS_CSV)
        result = SweepResult(rows=rows, total=len(runs), skipped=skipped, ran=ran, errors=errors,
                             missing=len(runs) - len(rows),
                             wall_s=time.perf_counter() - t_start, out_dir=out)
    finally:
        store.close()
    if result.missing:
        first = " ".join(problems[0].split()) if problems else "unknown"
        raise SweepIncomplete(
            f"{result.missing} of {result.total} runs did not finish (first: {first}); "
            f"run the same sweep again to resume", result)
    return result


def _row(spec: RunSpec, res: Mapping[str, Any]) -> dict[str, Any]:
    """One table row: identity, inputs, metrics, error, volatile timings."""
    row = spec.row_head()
    for key, value in res["metrics"].items():
        if key not in row:
            row[key] = value
    row["error"] = res["error"]
    row["wall_s"] = res["wall_s"]
    row["run_s"] = res["run_s"]
    row["worker"] = res["worker"]
    return {k: _clean(v) for k, v in row.items()}
