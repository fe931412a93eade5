"""The one place that holds the Numba compilation flags.

Every kernel is compiled with ``cache=True`` (a cold compile of the core costs
seconds, a warm start loads machine code from ``__pycache__``) and without
``fastmath``: the kernels compare floating-point edge times for equality and
ordering, which fast-math reassociation would make non-deterministic.
Setting ``NUMBA_DISABLE_JIT=1`` runs every kernel as plain Python.
"""

from __future__ import annotations

import numba
from numba.core import cgutils, types
from numba.core.types.function_type import WrapperAddressProtocol
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array

__all__ = ["JIT_FLAGS", "borrowed", "entry_point", "function_pointer", "jit_signature", "njit"]

JIT_FLAGS = {"cache": True, "fastmath": False, "nogil": True}


def njit(*args, **kwargs):
    """``numba.njit`` with the project's flags (``cache=True``, no fastmath)."""
    flags = dict(JIT_FLAGS)
    flags.update(kwargs)
    if args and callable(args[0]) and not isinstance(args[0], (str, numba.core.types.Type)):
        return numba.njit(**flags)(args[0])
    return numba.njit(*args, **flags)


def jit_signature(sig):
    """Decorator compiling a function eagerly for one explicit signature."""
    return numba.njit(sig, **JIT_FLAGS)


def entry_point(kernel):
    """The compiled machine code of a kernel of one explicit signature, as a
    Python callable that skips the dispatcher's per-call typing of every
    argument (tens of microseconds for a kernel of fifty arguments, which a
    caller that calls it thousands of times a second pays each time).

    The arguments must have exactly the kernel's types. With
    ``NUMBA_DISABLE_JIT=1`` (or several signatures) it returns ``kernel``.
    """
    sigs = getattr(kernel, "signatures", None)
    if not sigs or len(sigs) != 1:
        return kernel
    return kernel.overloads[sigs[0]].entry_point


class _FunctionPointer(WrapperAddressProtocol):
    """A compiled function passed to kernels by its address (see :func:`function_pointer`)."""

    def __init__(self, fn, sig) -> None:
        from numba.experimental.function_type import _get_wrapper_address

        self.fn, self.sig = fn, sig  # (the code lives as long as fn)
        self.address = _get_wrapper_address(fn, sig)

    def __wrapper_address__(self) -> int:
        return self.address

    def signature(self):
        return self.sig

    def __call__(self, *args):
        return self.fn(*args)


def function_pointer(fn, sig):
    """``fn`` (compiled for ``sig``), as a first-class function argument whose
    address is looked up once, not on every call of the kernel it is passed to
    (a Numba dispatcher costs about 30 microseconds per call that way).

    With ``NUMBA_DISABLE_JIT=1`` it returns ``fn``.
    """
    if not isinstance(fn, numba.core.dispatcher.Dispatcher):
        return fn
    return _FunctionPointer(fn, sig)


def borrowed(a):
    """``a`` itself, passed on inside a kernel without a reference of its own.

    Numba reference-counts every array it hands to a function pointer (an
    atomic increment and decrement per array and call). A kernel that calls a
    controller's step once per sample passes ``borrowed(buf)`` instead: the
    same data, shape and strides with no owner, so the counting is skipped.
    Valid only while ``a`` itself is alive (the whole kernel, for buffers the
    kernel allocated); never return a borrowed array. In plain Python (and
    with ``NUMBA_DISABLE_JIT=1``) it returns ``a``.
    """
    return a


@intrinsic
def _borrowed(typingctx, arr):
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        src = make_array(arr)(context, builder, value=args[0])
        out = make_array(arr)(context, builder)
        for field in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(out, field, getattr(src, field))
        out.meminfo = cgutils.get_null_value(out.meminfo.type)
        out.parent = cgutils.get_null_value(out.parent.type)
        return out._getvalue()

    return arr(arr), codegen


@overload(borrowed)
def _borrowed_overload(a):
    if isinstance(a, types.Array):
        return lambda a: _borrowed(a)
    return None
