"""Functional execution: the golden reference result of an app.

Plain Python, sequential, no calendars and no time: each iteration fires the
instances in :attr:`Graph.order`, each firing calls the user's function
directly on typed arrays, and tokens travel through one FIFO per edge that
starts with the edge's initial tokens. Whatever the scheduler and the
logical-time executor do, an app must produce exactly these tokens.

Example:
    >>> from tidesim.waves import App, In, Out, action, functional_run
    >>> @action(outputs={"y": Out("i8")}, state=("i8", ()))
    ... def count(state, y):
    ...     state[...] += 1
    ...     y[...] = state
    >>> @action(inputs={"x": In("i8", rate=2)}, outputs={"s": Out("i8")})
    ... def pairs(state, x, s):
    ...     s[...] = x[0] * 10 + x[1]
    >>> app = App().add("c", count).add("p", pairs).connect("c.y", "p.x")
    >>> run = functional_run(app, iterations=2)
    >>> run.outputs["p.s"].tolist(), run.states["c"].tolist()
    ([12, 34], 4)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .._checks import instance, integer
from ._graph import Graph, Module

__all__ = ["FunctionalResult", "functional_run"]


@dataclass(frozen=True, eq=False)
class FunctionalResult:
    """What :func:`functional_run` gives.

    Attributes:
        outputs: every token produced on each app output, in order, keyed
            ``"inst.port"``: shape ``(iterations * q * rate, *shape)``.
        states: the final state of each instance, keyed by its name.
        graph: the graph that ran.
        iterations: the iterations run.
    """

    outputs: dict[str, np.ndarray]
    states: dict[str, np.ndarray]
    graph: Graph
    iterations: int


def functional_run(app: Module | Graph, iterations: int) -> FunctionalResult:
    """Run ``iterations`` iterations of an app, sequentially, in plain Python.

    Args:
        app: an :class:`~tidesim.waves.App` (or any module: it is flattened
            with :meth:`~tidesim.waves.Module.graph`) or a :class:`Graph`.
        iterations: complete iterations to run (>= 0); one iteration fires
            every instance ``q`` times.

    Returns:
        The tokens on every app output and the final states.

    Raises:
        ConfigError: a bad ``app`` or ``iterations``.
        WavesError: the app's graph is invalid.
    """
    app = instance("app", app, (Module, Graph), "an App, a Module or a Graph")
    n_iter = integer("iterations", iterations, lo=0)
    graph = app if isinstance(app, Graph) else app.graph()
    states = [inst.state0.copy() for inst in graph.instances]
    fifos = [deque(e.initial.copy()) for e in graph.edges]
    in_edges = graph.input_edges
    out_edges = graph.output_edges
    outputs_of = {key: [] for key in graph.outputs}
    for _ in range(n_iter):
        for i in graph.order:
            act = graph.instances[i].action
            args = []
            for p, port in enumerate(act.inputs):
                fifo = fifos[in_edges[i][p]]
                tokens = np.array([fifo.popleft() for _ in range(port.rate)], dtype=port.dtype)
                args.append(tokens.reshape(port.arg_shape))
            outs = [np.zeros(port.arg_shape, dtype=port.dtype) for port in act.outputs]
            act.fn(states[i], *args, *outs)
            for p, port in enumerate(act.outputs):
                tokens = outs[p].reshape(port.tokens_shape)
                for k in out_edges[i][p]:
                    # each consumer gets its own copies: a function may write its inputs
                    fifos[k].extend(tokens.copy())
                if (i, p) in outputs_of:
                    outputs_of[(i, p)].append(tokens.copy())
    outputs = {}
    for name, (i, p) in zip(graph.output_names, graph.outputs, strict=True):
        port = graph.instances[i].action.outputs[p]
        chunks = outputs_of[(i, p)]
        outputs[name] = (np.concatenate(chunks) if chunks
                         else np.zeros((0, *port.shape), dtype=port.dtype))
    return FunctionalResult(outputs, {inst.name: s for inst, s in
                                      zip(graph.instances, states, strict=True)},
                            graph, n_iter)
