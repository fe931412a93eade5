"""Modules, apps and the flattened, validated graph the scheduler reads.

A :class:`Module` holds named parts (actions and other modules), the
connections between their ports, and the ports it *exposes* to its parent.
An :class:`App` is the top-level module; :meth:`Module.graph` flattens it
into a :class:`Graph`: one :class:`Instance` per action (hierarchical names
joined with ``.``), one :class:`Edge` per connection from an output to an
input (an output feeding several inputs gives several edges), the app's
outputs (output ports that feed nothing), the repetition vector and one
iteration's firing order.

Example:
    >>> from tidesim.waves import App, In, Out, action
    >>> @action(outputs={"y": Out("i8", rate=2)})
    ... def src(state, y):
    ...     y[:] = 1
    >>> @action(inputs={"x": In("i8", rate=3)}, outputs={"y": Out("i8")})
    ... def add3(state, x, y):
    ...     y[...] = x.sum()
    >>> app = App("demo")
    >>> app.add("a", src).add("b", add3).connect("a.y", "b.x")
    App('demo', parts=[a, b])
    >>> g = app.graph()
    >>> g.repetitions.tolist(), [g.instances[i].name for i in g.order], g.output_names
    ([3, 2], ['a', 'a', 'b', 'a', 'b'], ('b.y',))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .._checks import is_integer
from ..errors import ConfigError
from ._action import Action, check_name
from ._errors import WavesError
from ._ports import Port, Ports
from ._sdf import edge_text, repetition_vector, schedule

__all__ = ["App", "Edge", "Graph", "Instance", "Module"]


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class Instance:
    """One use of an action in a graph.

    Attributes:
        name: hierarchical name (``"stage.filter"``).
        action: the :class:`~tidesim.waves.Action`.
        state0: the initial state (read-only; copy it to run).
        node: the node it is pinned to (``Module.add(..., node=k)``), or None:
            the placement chooses.
    """

    name: str
    action: Action
    state0: np.ndarray
    node: int | None = None


@dataclass(frozen=True, eq=False)
class Edge:
    """A connection from an output port to an input port, with its initial tokens.

    Attributes:
        src: the source instance's index in :attr:`Graph.instances`.
        src_port: the output port's index in the source action's ``outputs``.
        dst: the destination instance's index.
        dst_port: the input port's index in the destination action's ``inputs``.
        initial: ``(d, *shape)`` array of the port dtype: the ``d >= 0``
            tokens on the edge before the first firing (delays), first to be
            consumed first (read-only).
    """

    src: int
    src_port: int
    dst: int
    dst_port: int
    initial: np.ndarray

    @property
    def delay(self) -> int:
        """The number of initial tokens, ``d``."""
        return int(self.initial.shape[0])


@dataclass(frozen=True, eq=False)
class Graph:
    """A flattened, validated SDF graph (what :meth:`Module.graph` returns).

    Attributes:
        instances: one :class:`Instance` per action use, in the order the
            parts were added (depth first).
        edges: one :class:`Edge` per output-to-input connection.
        outputs: ``(instance, port)`` of every output port that feeds
            nothing: the app's outputs, in instance and port order.
        repetitions: int64 firings per iteration of each instance, the
            smallest positive solution of the balance equations
            ``q[src] * rate_out == q[dst] * rate_in`` per weakly connected
            component (read-only).
        order: a sequential firing order of one iteration (instance ``i``
            appears ``q[i]`` times), valid from the initial tokens.
        name: the app's name.
    """

    instances: tuple[Instance, ...]
    edges: tuple[Edge, ...]
    outputs: tuple[tuple[int, int], ...]
    repetitions: np.ndarray
    order: tuple[int, ...]
    name: str = "app"

    def index(self, name: str) -> int:
        """The index of the instance called ``name``.

        Raises:
            WavesError: no such instance.
        """
        for i, inst in enumerate(self.instances):
            if inst.name == name:
                return i
        raise WavesError(f"unknown action {name} in graph {self.name}")

    def edge_name(self, k: int) -> str:
        """``a.y -> b.x``: edge ``k`` as messages show it."""
        return edge_text(self.instances, self.edges[k])

    @functools.cached_property
    def output_names(self) -> tuple[str, ...]:
        """``"inst.port"`` of each of :attr:`outputs`."""
        return tuple(f"{self.instances[i].name}.{self.instances[i].action.outputs[p].name}"
                     for i, p in self.outputs)

    @functools.cached_property
    def input_edges(self) -> tuple[tuple[int, ...], ...]:
        """Per instance, per input port: the index of the edge that feeds it."""
        table = [[-1] * len(inst.action.inputs) for inst in self.instances]
        for k, e in enumerate(self.edges):
            table[e.dst][e.dst_port] = k
        return tuple(tuple(row) for row in table)

    @functools.cached_property
    def output_edges(self) -> tuple[tuple[tuple[int, ...], ...], ...]:
        """Per instance, per output port: the indices of the edges it feeds (maybe none)."""
        table: list[list[list[int]]] = [[[] for _ in inst.action.outputs]
                                        for inst in self.instances]
        for k, e in enumerate(self.edges):
            table[e.src][e.src_port].append(k)
        return tuple(tuple(tuple(ks) for ks in row) for row in table)

    def __repr__(self) -> str:
        return (f"Graph({self.name!r}, {len(self.instances)} instances, {len(self.edges)} edges, "
                f"{len(self.order)} firings per iteration)")


@dataclass(frozen=True)
class _Connection:
    src: tuple[str, str]
    dst: tuple[str, str]
    initial: np.ndarray


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(["d", *map(str, shape)]) + (",)" if not shape else ")")


def _initial_tokens(edge: str, port: Port, initial: object) -> np.ndarray:
    """``initial`` (None, a count or an array of tokens) as a read-only ``(d, *shape)`` array."""
    shape = _shape_text(port.shape)
    if initial is None:
        return _frozen(np.zeros((0, *port.shape), dtype=port.dtype))
    if is_integer(initial):
        if int(initial) < 0:  # type: ignore[call-overload]
            raise WavesError(f"initial tokens on {edge} must be a count >= 0 or an array of "
                             f"shape {shape}, got {initial}")
        return _frozen(np.zeros((int(initial), *port.shape), dtype=port.dtype))  # type: ignore
    try:
        arr = np.asarray(initial)
    except (TypeError, ValueError):
        arr = np.asarray(None)
    if arr.dtype.kind not in "biufc":
        raise WavesError(f"initial tokens on {edge} must be a count or an array of "
                         f"{port.dtype.name} tokens, got {type(initial).__name__}")
    if arr.shape[1:] != port.shape or arr.ndim != len(port.shape) + 1:
        raise WavesError(f"initial tokens on {edge} must have shape {shape} "
                         f"(d tokens of {port.type_text}), got {arr.shape}")
    same_ints = arr.dtype.kind in "biu" and port.dtype.kind in "biu"
    if not (same_ints or np.can_cast(arr.dtype, port.dtype, casting="same_kind")):
        raise WavesError(f"initial tokens on {edge} must be {port.dtype.name} values, "
                         f"got {arr.dtype.name}")
    return _frozen(np.array(arr, dtype=port.dtype, order="C"))


def _ports_of(part: Action | Module) -> tuple[Ports, Ports]:
    return part.inputs, part.outputs


class Module:
    """A reusable group of parts (actions and modules), their connections and exposed ports.

    Build it with :meth:`add`, :meth:`connect` and :meth:`expose` (each returns
    the module, so calls chain). A module can be added to several parents, or
    several times to one: each use is a separate copy in the flattened graph.

    Args:
        name: a name for messages (``module``).
    """

    def __init__(self, name: str = "module") -> None:
        self.name = check_name("Module.name", name)
        self._parts: dict[str, Action | Module] = {}
        self._states: dict[str, np.ndarray] = {}
        self._nodes: dict[str, int] = {}
        self._connections: list[_Connection] = []
        self._sources: dict[tuple[str, str], str] = {}  # input -> what feeds it, for messages
        self._exposed_in: dict[str, list[tuple[str, str]]] = {}
        self._exposed_out: dict[str, tuple[str, str]] = {}

    # ------------------------------------------------------------ building

    def add(self, name: str, part: Action | Module, state: object = None, *,
            node: int | None = None) -> Module:
        """Add an action or a module under ``name``.

        Args:
            name: the part's name in this module (no ``.``).
            part: an :class:`~tidesim.waves.Action` or a :class:`Module`.
            state: the initial state of this instance (an array-like of the
                action's state dtype and shape); default: the action's
                ``init(index)``, else zeros. Actions only.
            node: pin the part to this node (``>= 0``): every placement puts
                it there (a module's actions without a pin of their own go
                with it). Default: the placement chooses.

        Raises:
            ConfigError: a bad name, part or state.
            WavesError: the name is taken.
        """
        check_name(f"{self.name}.add", name)
        if not isinstance(part, (Action, Module)):
            raise ConfigError(f"{self.name}.{name}", type(part).__name__,
                              "must be an action or a Module")
        if name in self._parts:
            raise WavesError(f"{self.name} already has a part named {name}")
        if state is not None:
            if isinstance(part, Module):
                raise ConfigError(f"{self.name}.{name}.state", "state",
                                  "must be None for a module (give states to its actions)")
            self._states[name] = _frozen(part.state_array(f"{name}.state", state))
        if node is not None:
            if not is_integer(node) or int(node) < 0:
                raise ConfigError(f"{self.name}.{name}.node", node, "must be an integer >= 0")
            self._nodes[name] = int(node)
        self._parts[name] = part
        return self

    def connect(self, src: str, dst: str, initial: object = None) -> Module:
        """Connect output ``"part.port"`` to input ``"part.port"``.

        Args:
            src: the output (``"a.y"``); it may feed several inputs.
            dst: the input (``"b.x"``); it takes exactly one source.
            initial: the tokens on the edge before the first firing (delays):
                an array of shape ``(d, *shape)``, or an int ``d`` for ``d``
                zero tokens; default none.

        Raises:
            WavesError: an unknown part or port, mismatched types, two sources
                for one input, or initial tokens of the wrong shape.
        """
        s_part, s_port, sp = self._endpoint(src, output=True)
        d_part, d_port, dp = self._endpoint(dst, output=False)
        if sp.dtype != dp.dtype or sp.shape != dp.shape:
            raise WavesError(f"{dst} expects {dp.type_text}, {src} gives {sp.type_text}")
        tokens = _initial_tokens(f"{src} -> {dst}", sp, initial)
        previous = self._sources.get((d_part, d_port))
        if previous is not None:
            raise WavesError(f"{dst} has two sources: {previous}, {src}")
        self._sources[(d_part, d_port)] = src
        self._connections.append(_Connection((s_part, s_port), (d_part, d_port), tokens))
        return self

    def expose(self, name: str, *inner: str) -> Module:
        """Make ``"part.port"`` a port of this module, called ``name``.

        An exposed output may also feed inputs inside the module. An exposed
        input may name several inner inputs of the same type: the module's
        source then feeds them all.

        Raises:
            WavesError: the name is taken, an unknown part or port, outputs
                mixed with inputs, or an inner input that already has a source.
        """
        check_name(f"{self.name}.expose", name)
        if name in self._exposed_in or name in self._exposed_out:
            raise WavesError(f"{self.name} already exposes a port named {name}")
        if not inner:
            raise WavesError(f"{self.name}.expose({name!r}) names no inner port")
        ends = [self._endpoint(text, output=None) for text in inner]
        kinds = {port.direction for _, _, port in ends}
        if kinds == {"output"}:
            if len(ends) > 1:
                raise WavesError(f"{self.name} port {name} names {len(ends)} outputs "
                                 f"({', '.join(inner)}); an output has one source")
            self._exposed_out[name] = ends[0][:2]
            return self
        if kinds != {"input"}:
            raise WavesError(f"{self.name} port {name} mixes inputs and outputs "
                             f"({', '.join(inner)})")
        first = ends[0][2]
        for text, (part, port, p) in zip(inner, ends, strict=True):
            if p.dtype != first.dtype or p.shape != first.shape:
                raise WavesError(f"{text} expects {p.type_text}, {inner[0]} expects "
                                 f"{first.type_text}: they cannot share {self.name} input {name}")
            previous = self._sources.get((part, port))
            if previous is not None:
                raise WavesError(f"{text} has two sources: {previous}, {self.name} input {name}")
        for part, port, _ in ends:
            self._sources[(part, port)] = f"{self.name} input {name}"
        self._exposed_in[name] = [(part, port) for part, port, _ in ends]
        return self

    def _endpoint(self, text: object, output: bool | None) -> tuple[str, str, Port]:
        """``(part, port, Port)`` of ``"part.port"``; ``output``: which side it must be."""
        if not isinstance(text, str) or text.count(".") != 1 or "" in text.split("."):
            raise WavesError(f"{text!r} must name a part and its port: 'part.port'")
        part, port = text.split(".")
        if part not in self._parts:
            have = ", ".join(self._parts) or "no parts"
            raise WavesError(f"unknown action {part} in {text!r} ({self.name} has: {have})")
        ins, outs = _ports_of(self._parts[part])
        if output is None:
            if port in outs:
                return part, port, outs[port]
            if port in ins:
                return part, port, ins[port]
            raise WavesError(f"unknown port {text} ({part} has {_listing(ins, outs)})")
        side, other = (outs, ins) if output else (ins, outs)
        if port in side:
            return part, port, side[port]
        want = "outputs" if output else "inputs"
        if port in other:
            raise WavesError(f"{text} is an {'input' if output else 'output'}, not an "
                             f"{want[:-1]} ({part} has {_names(want, side)})")
        raise WavesError(f"unknown port {text} ({part} has {_names(want, side)})")

    # ------------------------------------------------------------ as a part

    @property
    def parts(self) -> dict[str, Action | Module]:
        """The parts by name, in the order they were added (a copy)."""
        return dict(self._parts)

    @property
    def inputs(self) -> Ports:
        """The exposed inputs, typed as the (first) inner input each feeds."""
        return Ports(_ports_of(self._parts[inner[0][0]])[0][inner[0][1]].named(name)
                     for name, inner in self._exposed_in.items())

    @property
    def outputs(self) -> Ports:
        """The exposed outputs, typed as the inner output each is."""
        return Ports(_ports_of(self._parts[part])[1][port].named(name)
                     for name, (part, port) in self._exposed_out.items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, parts=[{', '.join(self._parts)}])"

    # ------------------------------------------------------------ flattening

    def graph(self) -> Graph:
        """Flatten this module (as the top level) into a validated :class:`Graph`.

        Raises:
            WavesError: an input that is not connected or has two sources, a
                module that contains itself, inconsistent rates, a deadlock,
                or an app without actions.
        """
        flat = _Flat()
        flat.walk(self, "", (), None)
        instances = tuple(flat.instances)
        if not instances:
            raise WavesError(f"{self.name} has no actions")
        feeds: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for (s, d, _) in flat.links:
            feeds.setdefault(d, []).append(s)
        for i, inst in enumerate(instances):
            for p, port in enumerate(inst.action.inputs):
                sources = feeds.get((i, p), [])
                if not sources:
                    raise WavesError(f"{inst.name}.{port.name} is not connected")
                if len(sources) > 1:
                    names = ", ".join(f"{instances[si].name}."
                                      f"{instances[si].action.outputs[sp].name}"
                                      for si, sp in sources)
                    raise WavesError(f"{inst.name}.{port.name} has two sources: {names}")
        edges = tuple(Edge(s[0], s[1], d[0], d[1], tokens) for (s, d, tokens) in flat.links)
        used = {(e.src, e.src_port) for e in edges}
        outputs = tuple((i, p) for i, inst in enumerate(instances)
                        for p in range(len(inst.action.outputs)) if (i, p) not in used)
        q = repetition_vector(instances, edges)
        order = schedule(instances, edges, q)
        return Graph(instances, edges, outputs, _frozen(q), order, self.name)


class App(Module):
    """The top-level module of an application: ``App(name)``; see :class:`Module`."""

    def __init__(self, name: str = "app") -> None:
        super().__init__(name)


def _names(what: str, ports: Ports) -> str:
    return f"{what}: {', '.join(ports.names)}" if len(ports) else f"no {what}"


def _listing(ins: Ports, outs: Ports) -> str:
    return f"{_names('inputs', ins)}; {_names('outputs', outs)}"


class _Flat:
    """The instances and leaf connections of a module tree, collected depth first."""

    def __init__(self) -> None:
        self.instances: list[Instance] = []
        self.links: list[tuple[tuple[int, int], tuple[int, int], np.ndarray]] = []
        self.uses: dict[int, int] = {}  # id(action) -> instances so far (init's index)

    def walk(self, module: Module, prefix: str, stack: tuple[Module, ...], pin: int | None
             ) -> tuple[dict[str, list[tuple[int, int]]], dict[str, tuple[int, int]]]:
        """Flatten ``module`` (its unpinned parts go to node ``pin``); returns its
        exposed inputs and outputs as leaf ports."""
        if any(m is module for m in stack):
            path = ".".join([*(m.name for m in stack), module.name])
            raise WavesError(f"module {module.name} contains itself ({path})")
        stack = (*stack, module)
        child_in: dict[str, dict[str, list[tuple[int, int]]]] = {}
        child_out: dict[str, dict[str, tuple[int, int]]] = {}
        for name, part in module._parts.items():
            full = prefix + name
            node = module._nodes.get(name, pin)
            if isinstance(part, Action):
                index = len(self.instances)
                use = self.uses.get(id(part), 0)
                self.uses[id(part)] = use + 1
                state = module._states.get(name)
                state0 = _frozen(part.initial_state(use)) if state is None else state
                self.instances.append(Instance(full, part, state0, node))
                child_in[name] = {p.name: [(index, k)] for k, p in enumerate(part.inputs)}
                child_out[name] = {p.name: (index, k) for k, p in enumerate(part.outputs)}
            else:
                child_in[name], child_out[name] = self.walk(part, full + ".", stack, node)
        for c in module._connections:
            src = child_out[c.src[0]][c.src[1]]
            for dst in child_in[c.dst[0]][c.dst[1]]:
                self.links.append((src, dst, c.initial))
        ins = {name: [leaf for part, port in inner for leaf in child_in[part][port]]
               for name, inner in module._exposed_in.items()}
        outs = {name: child_out[part][port] for name, (part, port) in module._exposed_out.items()}
        return ins, outs
