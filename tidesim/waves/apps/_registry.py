"""The registry of built-in apps, and loading an app from a file."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from ..._checks import integer
from ..._paths import import_file
from ...errors import ConfigError
from .._graph import App
from . import _allreduce_ring, _allreduce_tree, _counter, _kv, _life, _pipeline

__all__ = ["app_names", "describe", "get_app", "load_app"]

_APPS: dict[str, tuple[Callable[..., App], str]] = {
    "allreduce-ring": (_allreduce_ring.make_allreduce_ring, _allreduce_ring.DESCRIPTION),
    "allreduce-tree": (_allreduce_tree.make_allreduce_tree, _allreduce_tree.DESCRIPTION),
    "kv": (_kv.make_kv, _kv.DESCRIPTION),
    "pipeline": (_pipeline.make_pipeline, _pipeline.DESCRIPTION),
    "life": (_life.make_life, _life.DESCRIPTION),
    "counter": (_counter.make_counter, _counter.DESCRIPTION),
}


def app_names() -> list[str]:
    """The built-in apps' names."""
    return list(_APPS)


def _known(name: object) -> str:
    if not isinstance(name, str) or name not in _APPS:
        raise ConfigError("app", name, f"must be one of {', '.join(_APPS)}")
    return name


def describe(name: str) -> str:
    """One line on what the built-in app ``name`` computes.

    Raises:
        ConfigError: an unknown name.
    """
    return _APPS[_known(name)][1]


def parameters(name: str) -> tuple[str, ...]:
    """The keyword parameters :func:`get_app` takes for app ``name``."""
    sig = inspect.signature(_APPS[_known(name)][0])
    return tuple(p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY)


def get_app(name: str, n_nodes: int, **params) -> App:
    """The built-in app ``name`` for a network of ``n_nodes`` nodes.

    The app has at most ``n_nodes`` instances, so it fits one instance per
    node (``placement="one-to-one"``).

    Args:
        name: one of :func:`app_names`.
        n_nodes: nodes available, >= 1.
        **params: the app's parameters (see ``docs/app-NAME.md``).

    Returns:
        A new :class:`~tidesim.waves.App`.

    Raises:
        ConfigError: an unknown name or parameter, a bad parameter value, or an
            app that needs more nodes than ``n_nodes`` (the message says how many).
    """
    make = _APPS[_known(name)][0]
    n = integer("n_nodes", n_nodes, lo=1)
    allowed = parameters(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(f"{name} parameters", unknown,
                          f"must be among {', '.join(allowed) or 'none'}")
    return make(n, **params)


def load_app(name_or_path: str | Path, n_nodes: int) -> App:
    """A built-in app by name, or the app a Python file defines.

    A file ``FILE.py`` is imported (as a fresh module) and must define
    ``make_app(n_nodes)`` returning an :class:`~tidesim.waves.App`, or a
    module-level ``app``; ``make_app`` wins when it has both.

    Args:
        name_or_path: a name from :func:`app_names`, or a path to a ``.py`` file.
        n_nodes: nodes available, >= 1 (given to ``make_app``).

    Returns:
        The app.

    Raises:
        ConfigError: an unknown name, a missing file, a file that defines
            neither, or something else than an App.
    """
    if isinstance(name_or_path, str) and name_or_path in _APPS:
        return get_app(name_or_path, n_nodes)
    n = integer("n_nodes", n_nodes, lo=1)
    if not isinstance(name_or_path, (str, Path)):
        raise ConfigError("app", name_or_path, "must be an app name or a path to a FILE.py")
    path = Path(name_or_path)
    module = import_file("app", name_or_path,
                         f"must be one of {', '.join(_APPS)} or an existing FILE.py")
    make = getattr(module, "make_app", None)
    if callable(make):
        app, what = make(n), "make_app(n_nodes)"
    elif hasattr(module, "app"):
        app, what = module.app, "app"
    else:
        raise ConfigError("app", str(path), "must define make_app(n_nodes) or a module-level app")
    if not isinstance(app, App):
        raise ConfigError(f"{path.name}: {what}", type(app).__name__, "must be a tidesim.waves.App")
    return app
