"""The ``pipeline`` app: a streaming pipeline of ``k`` stages, with rate changes.

Stage 0 is ``source``, stage ``k-1`` is ``sink``; the stages between cycle
through five transforms (``decim``, ``scale``, ``integrate``, ``upsample``,
``diff``), named by kind and position (``decim1``, ``scale2``, ...). Tokens
are float64 vectors of ``width`` elements. With ``x`` the input and ``y`` the
output of one firing (``j`` indexes the vector, ``w = width``):

* ``source``: ``y[j] = ((t·w + j) mod 17) - 8`` at its ``t``-th firing (from 0);
* ``decim`` (consumes 2 tokens, produces 1): ``y = 0.5·(x₀ + x₁)``;
* ``scale``: ``y = 0.5·x + 1``;
* ``integrate``: a running sum, ``acc += x; y = acc`` (state ``acc``);
* ``upsample`` (consumes 1, produces 2): ``y₀ = x``, ``y₁[j] = x[w-1-j]``;
* ``diff``: ``y[j] = x[j] - x[j-1]``, with ``x[-1]`` the last element;
* ``sink``: outputs ``Σ_j (j+1)·x[j]`` (float64, summed in order of ``j``).
"""

from __future__ import annotations

from functools import cache

from ..._jit import njit
from .. import App, In, Out, action
from ._common import count, needs_nodes

__all__ = ["DESCRIPTION", "MIDDLE", "make_pipeline", "stage_kinds"]

DESCRIPTION = ("a streaming pipeline: a source, stages with different transforms "
               "(a 2:1 decimator, a 1:2 upsampler), a checksum sink")

MIDDLE = ("decim", "scale", "integrate", "upsample", "diff")
"""The transforms of the middle stages, in the order they repeat."""


@njit
def _source(state, y):
    w = y.shape[0]
    t = state[0]
    for j in range(w):
        y[j] = float((t * w + j) % 17) - 8.0
    state[0] = t + 1


@njit
def _decim(state, x, y):
    for j in range(y.shape[0]):
        y[j] = 0.5 * (x[0, j] + x[1, j])


@njit
def _scale(state, x, y):
    for j in range(y.shape[0]):
        y[j] = 0.5 * x[j] + 1.0


@njit
def _integrate(state, x, y):
    for j in range(y.shape[0]):
        state[j] += x[j]
        y[j] = state[j]


@njit
def _upsample(state, x, y):
    w = x.shape[0]
    for j in range(w):
        y[0, j] = x[j]
        y[1, j] = x[w - 1 - j]


@njit
def _diff(state, x, y):
    w = x.shape[0]
    for j in range(w):
        y[j] = x[j] - x[(j - 1 + w) % w]


@njit
def _sink(state, x, s):
    acc = 0.0
    for j in range(x.shape[0]):
        acc += (j + 1) * x[j]
    s[()] = acc


@cache
def _actions(width: int) -> dict:
    """The stage actions for vectors of ``width`` elements (made once per width)."""
    v = ("f8", (width,))
    return {
        "source": action(_source, outputs={"y": Out(*v)}, state=("i8", (1,)), name="source"),
        "decim": action(_decim, inputs={"x": In(*v, rate=2)}, outputs={"y": Out(*v)},
                        name="decim"),
        "scale": action(_scale, inputs={"x": In(*v)}, outputs={"y": Out(*v)}, name="scale"),
        "integrate": action(_integrate, inputs={"x": In(*v)}, outputs={"y": Out(*v)},
                            state=v, name="integrate"),
        "upsample": action(_upsample, inputs={"x": In(*v)}, outputs={"y": Out(*v, rate=2)},
                           name="upsample"),
        "diff": action(_diff, inputs={"x": In(*v)}, outputs={"y": Out(*v)}, name="diff"),
        "sink": action(_sink, inputs={"x": In(*v)}, outputs={"sum": Out("f8")}, name="sink"),
    }


def stage_kinds(stages: int) -> list[str]:
    """The kind of every stage of a ``stages``-stage pipeline, in order."""
    return ["source", *(MIDDLE[k % len(MIDDLE)] for k in range(stages - 2)), "sink"]


def make_pipeline(n_nodes: int, *, stages: int | None = None, width: int = 8) -> App:
    """A pipeline of ``stages`` stages (default ``min(n_nodes, 5)``, at least 3).

    Args:
        n_nodes: the nodes available (one stage per node).
        stages: 3 or more: source, at least one transform, sink.
        width: elements of every vector token, >= 1.

    Returns:
        The app ``pipeline``; its output is ``sink.sum``.
    """
    k = max(min(n_nodes, 5), 3) if stages is None else count("pipeline", "stages", stages, 3)
    w = count("pipeline", "width", width, 1)
    needs_nodes("pipeline", k, n_nodes, f"stages={k}")
    acts = _actions(w)
    app = App("pipeline")
    names = []
    for pos, kind in enumerate(stage_kinds(k)):
        name = kind if kind in ("source", "sink") else f"{kind}{pos}"
        app.add(name, acts[kind], node=pos)
        names.append(name)
    for a, b in zip(names, names[1:], strict=False):
        app.connect(f"{a}.y", f"{b}.x")
    return app
