"""The one place that holds the Numba compilation flags.

Every kernel is compiled with ``cache=True`` (a cold compile of the core costs
seconds, a warm start loads machine code from ``__pycache__``) and without
``fastmath``: the kernels compare floating-point edge times for equality and
ordering, which fast-math reassociation would make non-deterministic.
Setting ``NUMBA_DISABLE_JIT=1`` runs every kernel as plain Python.
"""

from __future__ import annotations

import numba

__all__ = ["JIT_FLAGS", "njit", "jit_signature"]

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
