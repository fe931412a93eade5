"""waves: the application DSL of bittide (synchronous dataflow), named after ægir's.

An application is a graph of *actions*: functions with fixed-size typed
input and output ports and a state. A firing consumes ``rate`` tokens on
every input and produces ``rate`` tokens on every output. Modules group
actions (and modules) and expose ports; an :class:`App` is the top level.
:meth:`Module.graph` flattens and validates an app: balance equations,
repetition vector, deadlock check, one iteration's firing order.
:func:`functional_run` executes it sequentially in plain Python: the golden
reference for the scheduler and the logical-time executor, which fire
actions on 64-bit words through :func:`compiled` / :func:`fire_words`.

* ``In(dtype, shape=(), rate=1)``, ``Out(...)`` -- typed ports.
* ``@action(inputs=..., outputs=..., state=(dtype, shape), cycles=1, init=None)``.
* ``Module()``, ``App(name)`` -- ``add``, ``connect(src, dst, initial)``, ``expose``.
* ``Graph`` (``instances``, ``edges``, ``outputs``, ``repetitions``, ``order``).
* ``functional_run(app, iterations)`` -> ``FunctionalResult``.
* ``pack_tokens``, ``unpack_tokens``, ``pack_state``, ``unpack_state``, ``compiled``,
  ``fire_words`` -- the word layout.

``docs/waves.md`` explains each, with the SDF equations.

Example:
    >>> import numpy as np
    >>> from tidesim.waves import App, In, Out, action, functional_run
    >>> @action(inputs={"x": In("f8", (4,))}, outputs={"y": Out("f8", (4,), rate=2)},
    ...         state=("i8", (1,)))
    ... def dup(state, x, y):
    ...     y[0] = x
    ...     y[1] = x + state[0]
    ...     state[0] += 1
    >>> @action(outputs={"y": Out("f8", (4,))})
    ... def ones(state, y):
    ...     y[:] = 1.0
    >>> app = App("demo").add("src", ones).add("dup", dup).connect("src.y", "dup.x")
    >>> run = functional_run(app, iterations=2)
    >>> run.outputs["dup.y"][:, 0].tolist(), run.states["dup"].tolist()
    ([1.0, 1.0, 1.0, 2.0], [2])
"""

from ._action import Action, action, pack_state, unpack_state
from ._compile import FIRE_SIGNATURE, FIRE_TYPE, compiled, fire_words
from ._errors import WavesError
from ._functional import FunctionalResult, functional_run
from ._graph import App, Edge, Graph, Instance, Module
from ._ports import In, Out, Port, Ports, pack_tokens, unpack_tokens

__all__ = [
    "FIRE_SIGNATURE",
    "FIRE_TYPE",
    "Action",
    "App",
    "Edge",
    "FunctionalResult",
    "Graph",
    "In",
    "Instance",
    "Module",
    "Out",
    "Port",
    "Ports",
    "WavesError",
    "action",
    "compiled",
    "fire_words",
    "functional_run",
    "pack_state",
    "pack_tokens",
    "unpack_state",
    "unpack_tokens",
]
