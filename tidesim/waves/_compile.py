"""Firing an action on words: the executor's view of an action.

The logical-time executor keeps every token as 64-bit words (one word is one
frame; see :mod:`tidesim.waves._ports` for the layout). To fire an action it
hands three word arrays to a function of the fixed signature
:data:`FIRE_SIGNATURE`::

    fire(state: uint64[::1], inputs: uint64[::1], outputs: uint64[::1]) -> None

* ``state`` -- the instance's state block (``action.state_words`` words),
  updated in place;
* ``inputs`` -- one firing's input block (``action.in_words``): the input
  port blocks, declared order;
* ``outputs`` -- one firing's output block (``action.out_words``), zeroed by
  the caller, written by the firing.

:func:`compiled` generates that function for an ``@njit`` action: it
reinterprets the words as typed arrays in place (a view) and calls the
user's function on them. Only a port with ``rate > 1`` whose tokens do not
fill whole words (``token_bytes % 8 != 0``) is copied, because its tokens
are not contiguous in memory: its typed array is gathered from (inputs) or
scattered back to (outputs) the padded words. Because the signature is fixed,
an executor kernel can take any action's adapter as a first-class function
(:data:`FIRE_TYPE`). :func:`fire_words` does the same in plain Python for any
action.

Example:
    >>> import numpy as np
    >>> from tidesim.waves import In, Out, action, fire_words, pack_tokens, unpack_tokens
    >>> @action(inputs={"x": In("i4", (3,))}, outputs={"y": Out("i4", (3,), rate=2)})
    ... def twice(state, x, y):
    ...     y[0] = x
    ...     y[1] = 2 * x
    >>> out = np.zeros(twice.out_words, np.uint64)
    >>> fire_words(twice, np.zeros(0, np.uint64), pack_tokens(twice.inputs[0], [1, 2, 3]), out)
    >>> unpack_tokens(twice.outputs["y"], out).tolist()
    [[1, 2, 3], [2, 4, 6]]
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numba
import numpy as np
from numba import types

from .._checks import instance
from .._jit import JIT_FLAGS
from ..errors import ConfigError
from ._action import Action
from ._errors import WavesError
from ._ports import WORD_BYTES, Port, pack_tokens, unpack_tokens

__all__ = ["FIRE_SIGNATURE", "FIRE_TYPE", "adapter_source", "compiled", "fire_words"]

_words = types.uint64[::1]
FIRE_SIGNATURE = types.void(_words, _words, _words)
"""``void(uint64[::1] state, uint64[::1] inputs, uint64[::1] outputs)``."""
FIRE_TYPE = types.FunctionType(FIRE_SIGNATURE)
"""The Numba type of a compiled adapter passed to a kernel as a first-class function."""

_CACHE: weakref.WeakKeyDictionary[Action, Callable] = weakref.WeakKeyDictionary()
_BY_CODE: dict[tuple, Callable] = {}
_NUMBA_UNSUPPORTED = (np.float16,)


def _copied(port: Port) -> bool:
    """Whether a port's typed array must be a copy: several tokens, each with padding."""
    return port.rate > 1 and port.token_bytes % WORD_BYTES != 0


def adapter_source(action: Action) -> tuple[str, dict[str, object]]:
    """The Python source of ``action``'s adapter, and the globals it needs.

    The adapter is ``adapter(state_w, in_w, out_w)``; the globals hold
    ``np``, the user's function (``fn``) and the element types (``t_s``,
    ``t_i0``, ...).

    Returns:
        ``(source, globals)``: ``exec`` the source in the globals, then
        compile ``adapter`` with Numba (what :func:`compiled` does).
    """
    env: dict[str, object] = {"np": np, "fn": action.fn, "t_s": action.state_dtype.type}
    lines = ["def adapter(state_w, in_w, out_w):"]
    lines.append(f"    s = state_w[0:{action.state_words}].view(np.uint8)"
                 f"[:{action.state_bytes}].view(t_s).reshape({action.state_shape!r})")
    after: list[str] = []
    args = ["s"]
    for side, ports, offs, words in (("i", action.inputs, action.in_offsets, "in_w"),
                                     ("o", action.outputs, action.out_offsets, "out_w")):
        for k, (port, at) in enumerate(zip(ports, offs, strict=True)):
            var, t = f"{side}{k}", f"t_{side}{k}"
            env[t] = port.dtype.type
            tb, tw, r = port.token_bytes, port.token_words, port.rate
            block = f"{words}[{at}:{at + port.block_words}].view(np.uint8)"
            if not _copied(port):
                # contiguous: one token (padding after it), or tokens that fill whole words
                lines.append(f"    {var} = {block}[:{r * tb}].view({t})"
                             f".reshape({port.arg_shape!r})")
            else:
                lines.append(f"    b_{var} = {block}")
                alloc = "empty" if side == "i" else "zeros"
                lines.append(f"    c_{var} = np.{alloc}({r * tb}, np.uint8)")
                copy_in = (f"        c_{var}[k * {tb}:(k + 1) * {tb}] = "
                           f"b_{var}[k * {tw * WORD_BYTES}:k * {tw * WORD_BYTES} + {tb}]")
                copy_out = (f"        b_{var}[k * {tw * WORD_BYTES}:k * {tw * WORD_BYTES} + {tb}]"
                            f" = c_{var}[k * {tb}:(k + 1) * {tb}]")
                if side == "i":
                    lines += [f"    for k in range({r}):", copy_in]
                else:
                    after += [f"    for k in range({r}):", copy_out]
                lines.append(f"    {var} = c_{var}.view({t}).reshape({port.arg_shape!r})")
            args.append(var)
    lines.append(f"    fn({', '.join(args)})")
    lines += after
    return "\n".join(lines) + "\n", env


def compiled(action: Action) -> Callable | None:
    """``action``'s adapter compiled with Numba to :data:`FIRE_SIGNATURE`, or ``None``.

    ``None`` when the action's function is plain Python (use
    :func:`fire_words`), and always when ``NUMBA_DISABLE_JIT=1``. The adapter
    is compiled once per action (in memory: it is generated code, which
    Numba cannot cache on disk) and reused.

    Raises:
        WavesError: the user's function does not compile for the action's
            port types, or a port type Numba does not support (``float16``).
    """
    action = instance("action", action, Action, "an Action (made with @action)")
    if not action.is_jit:
        return None
    found = _CACHE.get(action)
    if found is not None:
        return found
    for port in (*action.inputs, *action.outputs):
        if port.dtype.type in _NUMBA_UNSUPPORTED:
            raise WavesError(f"{action.name}.{port.name}: Numba does not support "
                             f"{port.dtype.name}; use a plain Python function")
    if action.state_dtype.type in _NUMBA_UNSUPPORTED:
        raise WavesError(f"{action.name}.state: Numba does not support "
                         f"{action.state_dtype.name}; use a plain Python function")
    source, env = adapter_source(action)
    # an equal action (the same function and ports: one unpickled on a node,
    # say) shares the adapter
    code = (action.fn, source, tuple((k, v) for k, v in env.items() if k not in ("np", "fn")))
    found = _BY_CODE.get(code)
    if found is not None:
        _CACHE[action] = found
        return found
    exec(compile(source, f"<waves adapter of {action.name}>", "exec"), env)
    flags = dict(JIT_FLAGS)
    flags["cache"] = False
    try:
        fire = numba.njit(FIRE_SIGNATURE, **flags)(env["adapter"])
    except numba.core.errors.NumbaError as exc:
        raise WavesError(f"{action.name} does not compile for its ports "
                         f"({_port_types(action)}): {_first_lines(str(exc))}") from exc
    _CACHE[action] = _BY_CODE[code] = fire
    return fire


def _port_types(action: Action) -> str:
    return ", ".join(f"{p.name}: {p.dtype.name}{p.arg_shape}"
                     for p in (*action.inputs, *action.outputs))


def _first_lines(text: str, limit: int = 300) -> str:
    """The informative start of a Numba message, on one line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("Failed in nopython mode")] or lines
    short = " ".join(lines[:2])
    return short if len(short) <= limit else short[: limit - 3] + "..."


def _words_arg(field: str, value: object, n: int) -> np.ndarray:
    if not (isinstance(value, np.ndarray) and value.dtype == np.uint64 and value.ndim == 1
            and value.flags.c_contiguous):
        raise ConfigError(field, type(value).__name__, "must be a contiguous uint64[::1] array")
    if value.size != n:
        raise ConfigError(field, value.size, f"must be {n} words long")
    return value


def fire_words(action: Action, state_w: np.ndarray, in_w: np.ndarray,
               out_w: np.ndarray) -> None:
    """One firing of ``action`` on words, in plain Python: what :func:`compiled` does.

    Works for any action (plain Python or ``@njit``): the user's function is
    called directly on typed views of the words (copies for ports with
    ``rate > 1`` and padded tokens). As with the compiled adapter, the caller
    zeroes ``out_w`` before the call.

    Args:
        action: the action.
        state_w: uint64[action.state_words], the state, updated in place.
        in_w: uint64[action.in_words], one firing's input block.
        out_w: uint64[action.out_words], written in place.

    Raises:
        ConfigError: an argument that is not a contiguous uint64 array of the
            right length.
    """
    action = instance("action", action, Action, "an Action (made with @action)")
    state_w = _words_arg(f"{action.name}.state_w", state_w, action.state_words)
    in_w = _words_arg(f"{action.name}.in_w", in_w, action.in_words)
    out_w = _words_arg(f"{action.name}.out_w", out_w, action.out_words)
    state = state_w.view(np.uint8)[: action.state_bytes].view(action.state_dtype)
    args = [state.reshape(action.state_shape)]
    for port, at in zip(action.inputs, action.in_offsets, strict=True):
        args.append(_typed(port, in_w[at:at + port.block_words]))
    outs = []
    for port, at in zip(action.outputs, action.out_offsets, strict=True):
        block = out_w[at:at + port.block_words]
        arr = _typed(port, block)
        outs.append((port, block, arr))
        args.append(arr)
    action.fn(*args)
    for port, block, arr in outs:
        if _copied(port):
            block[:] = pack_tokens(port, arr.reshape(port.tokens_shape))


def _typed(port: Port, block: np.ndarray) -> np.ndarray:
    """A port block as the typed array the function gets: a view where contiguous."""
    if _copied(port):
        return unpack_tokens(port, block).reshape(port.arg_shape)
    raw = block.view(np.uint8)[: port.rate * port.token_bytes]
    return raw.view(port.dtype).reshape(port.arg_shape)
