"""Actions: a function with typed input and output ports, a state and a latency.

An action is the unit of an SDF graph (ægir's *action function*): each firing
consumes ``rate`` tokens on every input, runs the function once, and produces
``rate`` tokens on every output. The function is called as
``fn(state, *inputs, *outputs)`` (declared order) on numpy arrays: it updates
``state`` and writes the outputs in place (they are zero-filled before every
firing); what it returns is ignored.

Example:
    >>> import numpy as np
    >>> from tidesim.waves import In, Out, action
    >>> @action(inputs={"x": In("f8", (2,))}, outputs={"y": Out("f8", (2,), rate=2)},
    ...         state=("i8", (1,)))
    ... def dup(state, x, y):
    ...     y[0] = x
    ...     y[1] = x + state[0]
    ...     state[0] += 1
    >>> dup.in_words, dup.out_words, dup.state_words
    (2, 4, 1)
    >>> state = dup.initial_state()
    >>> (y,) = dup.fire(state, np.array([1.0, 2.0]))
    >>> y.tolist(), state.tolist()
    ([[1.0, 2.0], [1.0, 2.0]], [1])
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from .._checks import integer
from ..errors import ConfigError
from ._errors import WavesError
from ._ports import (
    WORD_BYTES,
    In,
    Out,
    Port,
    Ports,
    canonical_dtype,
    canonical_shape,
    from_words,
    offsets,
    to_words,
    tokens_array,
    type_text,
)

__all__ = ["Action", "action", "check_name", "pack_state", "unpack_state"]

NO_STATE_DTYPE = np.dtype(np.float64)
NO_STATE_SHAPE = (0,)


def check_name(field_name: str, value: object) -> str:
    """A name of a port, an action or a part: non-empty, no ``.``, no blanks.

    Raises:
        ConfigError: ``m.add: must be a name without '.' or blanks, got 'a.b'``.
    """
    if (not isinstance(value, str) or not value or "." in value
            or any(c.isspace() for c in value)):
        raise ConfigError(field_name, value, "must be a name without '.' or blanks")
    return value


def _ports(field_name: str, value: object, kind: type[Port]) -> Ports:
    what = f"must be a dict of {kind.__name__}(dtype, shape, rate) ports by name"
    if value is None:
        return Ports()
    if not isinstance(value, Mapping):
        raise ConfigError(field_name, type(value).__name__, what)
    ports = []
    for name, port in value.items():
        check_name(f"{field_name} name", name)
        if not isinstance(port, kind):
            raise ConfigError(f"{field_name}.{name}", port, f"must be an {kind.__name__}(...)")
        ports.append(port.named(name))
    return Ports(ports)


def _state_spec(field_name: str, value: object) -> tuple[np.dtype, tuple[int, ...], bool]:
    if value is None:
        return NO_STATE_DTYPE, NO_STATE_SHAPE, False
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigError(field_name, value, "must be a (dtype, shape) pair")
    return (canonical_dtype(f"{field_name}.dtype", value[0]),
            canonical_shape(f"{field_name}.shape", value[1]), True)


def is_jit(fn: object) -> bool:
    """Whether ``fn`` is a Numba dispatcher (``@njit``)."""
    return isinstance(fn, numba.core.dispatcher.Dispatcher)


def _check_arity(name: str, fn: Callable, args: list[str]) -> None:
    """Refuse a function that cannot take ``(state, *inputs, *outputs)``."""
    target = getattr(fn, "py_func", fn)
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):  # a builtin or C function: let the call say
        return
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if not len(required) <= len(args) <= len(positional):
        raise WavesError(f"{name} takes {len(positional)} arguments, but its ports need "
                         f"{len(args)}: ({', '.join(args)})")


@dataclass(frozen=True, eq=False)
class Action:
    """A function with typed ports, a state and a compute latency: what
    :func:`action` makes.

    Calling an action calls its function.

    Attributes:
        fn: the user's function, plain Python or a Numba dispatcher.
        inputs: the input ports, in declared order (a :class:`~tidesim.waves.Ports`).
        outputs: the output ports, in declared order.
        state_dtype: the state's dtype (``float64`` when the action has no state).
        state_shape: the state's shape (``(0,)`` when the action has no state).
        cycles: compute latency of one firing, in cycles (>= 1).
        init: ``init(index) -> array``, the initial state of the ``index``-th
            instance of this action in a graph (``None``: zeros).
        name: the function's name, unless given.
    """

    fn: Callable
    inputs: Ports
    outputs: Ports
    state_dtype: np.dtype = NO_STATE_DTYPE
    state_shape: tuple[int, ...] = NO_STATE_SHAPE
    cycles: int = 1
    init: Callable[[int], Any] | None = None
    name: str = ""
    has_state: bool = field(default=False, repr=False)

    @property
    def is_jit(self) -> bool:
        """Whether the function is a Numba dispatcher (``@njit``)."""
        return is_jit(self.fn)

    @property
    def in_words(self) -> int:
        """Words of one firing's input block (input port blocks, declared order)."""
        return sum(p.block_words for p in self.inputs)

    @property
    def out_words(self) -> int:
        """Words of one firing's output block."""
        return sum(p.block_words for p in self.outputs)

    @property
    def in_offsets(self) -> tuple[int, ...]:
        """Word offset of each input port's block in the input block."""
        return offsets(self.inputs)

    @property
    def out_offsets(self) -> tuple[int, ...]:
        """Word offset of each output port's block in the output block."""
        return offsets(self.outputs)

    @property
    def state_bytes(self) -> int:
        """Bytes of the state (0 without state)."""
        return self.state_dtype.itemsize * math.prod(self.state_shape)

    @property
    def state_words(self) -> int:
        """Words of the state block (its bytes, zero-padded to words)."""
        return -(-self.state_bytes // WORD_BYTES)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        ins = ", ".join(p.name for p in self.inputs)
        outs = ", ".join(p.name for p in self.outputs)
        return f"Action({self.name!r}, inputs=({ins}), outputs=({outs}))"

    # ---------------------------------------------------------------- state

    def state_array(self, field_name: str, value: object) -> np.ndarray:
        """``value`` as a state of this action: a new array of its dtype and shape.

        Raises:
            ConfigError: ``a.state: must have shape (1,), got (2,)`` (or a bad type).
        """
        if not self.has_state:
            raise ConfigError(field_name, type(value).__name__,
                              f"must be None ({self.name} has no state)")
        arr = tokens_array(field_name, self.state_dtype, (), value, "a state")
        if arr.shape != self.state_shape:
            raise ConfigError(field_name, arr.shape,
                              f"must have shape {self.state_shape} "
                              f"({type_text(self.state_dtype, self.state_shape)})")
        return arr.copy()

    def initial_state(self, index: int = 0) -> np.ndarray:
        """The initial state of this action's ``index``-th instance in a graph.

        ``init(index)`` when the action has one, else zeros (a zero-length
        float64 array for an action without state). A new array.
        """
        if self.init is None:
            return np.zeros(self.state_shape, dtype=self.state_dtype)
        return self.state_array(f"{self.name}.init({index})", self.init(index))

    def pack_state(self, state: object) -> np.ndarray:
        """A state as its block of words (bytes little-endian, zero-padded).

        Returns:
            uint64[state_words].
        """
        arr = self.state_array(f"{self.name}.state", state) if self.has_state else \
            np.zeros(0)
        return to_words(arr, 1, self.state_bytes, self.state_words)

    def unpack_state(self, words: object) -> np.ndarray:
        """The state held by a block of ``state_words`` words (a new array)."""
        arr = np.asarray(words)
        if arr.shape != (self.state_words,) or (arr.size and arr.dtype.kind not in "ui"):
            raise ConfigError(f"{self.name}.state words", arr.shape,
                              f"must be {self.state_words} uint64 words")
        return from_words(arr.astype(np.uint64, copy=False), 1, self.state_bytes,
                          self.state_words, self.state_dtype, self.state_shape)[0]

    # ---------------------------------------------------------------- firing

    def fire(self, state: np.ndarray, *inputs: object) -> tuple[np.ndarray, ...]:
        """One firing on typed arrays: ``fn(state, *inputs, *outputs)``.

        Args:
            state: the state, updated in place (an array of ``state_dtype``
                and ``state_shape``).
            inputs: one array per input port, ``port.arg_shape`` (``shape``
                when ``rate == 1``, else ``(rate, *shape)``).

        Returns:
            One new array per output port, ``port.arg_shape``.

        Raises:
            ConfigError: the wrong number of inputs, or one of the wrong shape.
        """
        if len(inputs) != len(self.inputs):
            raise ConfigError(f"{self.name}.fire", len(inputs),
                              f"must get {len(self.inputs)} input arrays")
        args = []
        for port, value in zip(self.inputs, inputs, strict=True):
            arr = tokens_array(f"{self.name}.{port.name}", port.dtype, port.shape, value)
            if arr.shape != port.arg_shape:
                raise ConfigError(f"{self.name}.{port.name}", arr.shape,
                                  f"must have shape {port.arg_shape}")
            args.append(arr)
        outs = tuple(np.zeros(p.arg_shape, dtype=p.dtype) for p in self.outputs)
        self.fn(state, *args, *outs)
        return outs


def action(fn: Callable | None = None, *, inputs: Mapping[str, In] | None = None,
           outputs: Mapping[str, Out] | None = None, state: tuple | None = None,
           cycles: int = 1, init: Callable[[int], Any] | None = None,
           name: str | None = None):
    """Make an :class:`Action` of a function: use as a decorator.

    Args:
        fn: the function, ``fn(state, *inputs, *outputs)``, plain Python or
            ``@njit`` (put ``@action`` above ``@njit``).
        inputs: ``{name: In(dtype, shape, rate)}``, in argument order.
        outputs: ``{name: Out(dtype, shape, rate)}``, in argument order.
        state: ``(dtype, shape)`` of the state array (``None``: no state; the
            function then gets a zero-length float64 array).
        cycles: compute latency of one firing, in cycles (>= 1).
        init: ``init(index) -> array``, the initial state of the action's
            ``index``-th instance in a graph (counted in the graph's order,
            from 0); default zeros. A state given to ``Module.add`` wins.
        name: the action's name (default: the function's).

    Returns:
        The :class:`Action` (or, without ``fn``, a decorator that makes it).

    Raises:
        ConfigError: a bad port, state, cycle count or name.
        WavesError: a function that cannot take ``(state, *inputs, *outputs)``.
    """

    def make(f: Callable) -> Action:
        if not callable(f):
            raise ConfigError("action", type(f).__name__, "must decorate a function")
        label = name if name is not None else getattr(f, "__name__", "action")
        check_name("action name", label)
        ins = _ports(f"{label}.inputs", inputs, In)
        outs = _ports(f"{label}.outputs", outputs, Out)
        clash = set(ins.names) & set(outs.names)
        if clash:
            raise ConfigError(f"{label}.outputs", sorted(clash), "must not reuse input names")
        sdtype, sshape, has_state = _state_spec(f"{label}.state", state)
        if init is not None and not callable(init):
            raise ConfigError(f"{label}.init", type(init).__name__,
                              "must be a function init(index) -> array")
        if init is not None and not has_state:
            raise ConfigError(f"{label}.init", getattr(init, "__name__", "init"),
                              "needs a state=(dtype, shape)")
        n_cycles = integer(f"{label}.cycles", cycles, lo=1)
        _check_arity(label, f, ["state", *ins.names, *outs.names])
        return Action(fn=f, inputs=ins, outputs=outs, state_dtype=sdtype, state_shape=sshape,
                      cycles=n_cycles, init=init, name=label, has_state=has_state)

    if fn is None:
        return make
    return make(fn)


def pack_state(action: Action, state: object) -> np.ndarray:
    """``action.pack_state(state)``: a state as its uint64[state_words] block.

    Raises:
        ConfigError: not an action, or a state of the wrong type or shape.
    """
    if not isinstance(action, Action):
        raise ConfigError("action", type(action).__name__, "must be an Action (made with @action)")
    return action.pack_state(state)


def unpack_state(action: Action, words: object) -> np.ndarray:
    """``action.unpack_state(words)``: the state a block of ``state_words`` words holds.

    Raises:
        ConfigError: not an action, or not ``state_words`` words.
    """
    if not isinstance(action, Action):
        raise ConfigError("action", type(action).__name__, "must be an Action (made with @action)")
    return action.unpack_state(words)
