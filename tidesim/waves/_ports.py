"""Typed ports and the word layout of their tokens.

A port carries *tokens*: one token is one numpy array of the port's ``dtype``
and ``shape``. A firing consumes (:class:`In`) or produces (:class:`Out`)
``rate`` tokens on the port.

On the wire and in the executor's memories, one 64-bit word is one frame. A
token occupies ``token_words = ceil(token_bytes / 8)`` words: its bytes,
little-endian, from the start of its first word, then zero padding. A
firing's block of a port is ``rate * token_words`` words, token ``k`` at words
``[k * token_words, (k + 1) * token_words)``.

Example:
    >>> import numpy as np
    >>> from tidesim.waves import In, pack_tokens, unpack_tokens
    >>> x = In("i2", (3,), rate=2)
    >>> x.token_bytes, x.token_words, x.block_words
    (6, 1, 2)
    >>> words = pack_tokens(x, [[1, 2, 3], [-1, 0, 0]])
    >>> [hex(int(w)) for w in words]
    ['0x300020001', '0xffff']
    >>> unpack_tokens(x, words).tolist()
    [[1, 2, 3], [-1, 0, 0]]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from .._checks import integer, is_integer, set_fields
from ..errors import ConfigError

__all__ = [
    "In",
    "Out",
    "Port",
    "Ports",
    "canonical_dtype",
    "canonical_shape",
    "pack_tokens",
    "unpack_tokens",
]

WORD_BYTES = 8
_NUMERIC_KINDS = "biufc"  # bool, signed, unsigned, float, complex
_DTYPE_EXPECTED = "must be a fixed-size numeric numpy dtype (bool, int, uint, float, complex)"


def canonical_dtype(field: str, value: object) -> np.dtype:
    """A token dtype, little-endian: bool, an integer, a float or a complex type.

    ``long double`` types are refused: their size and layout depend on the platform.

    Raises:
        ConfigError: anything else (``x.dtype: must be a fixed-size numeric ...``).
    """
    try:
        dtype = np.dtype(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ConfigError(field, value, _DTYPE_EXPECTED) from None
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype:
        raise ConfigError(field, value, _DTYPE_EXPECTED)
    if dtype.type in (np.longdouble, np.clongdouble) and dtype.itemsize > 8 * (
            1 + (dtype.kind == "c")):
        raise ConfigError(field, value, _DTYPE_EXPECTED + " of a portable size")
    return dtype.newbyteorder("<") if dtype.byteorder not in ("|", "<") else dtype


def canonical_shape(field: str, value: object) -> tuple[int, ...]:
    """A token shape: a tuple of positive integers (an int ``n`` means ``(n,)``).

    Raises:
        ConfigError: ``x.shape: must be a tuple of positive integers``.
    """
    expected = "must be a tuple of positive integers"
    if is_integer(value):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not all(is_integer(n) and n > 0 for n in value):
        raise ConfigError(field, value, expected)
    return tuple(int(n) for n in value)


def type_text(dtype: np.dtype, shape: tuple[int, ...]) -> str:
    """``float64 (4,)``: a token type as messages show it."""
    return f"{dtype.name} {shape}"


@dataclass(frozen=True)
class Port:
    """A typed port of an action: ``rate`` tokens of ``dtype``/``shape`` per firing.

    Use :class:`In` and :class:`Out`; an action gives each its name.

    Args:
        dtype: the element type of a token (anything ``np.dtype`` takes:
            ``"f8"``, ``np.int16``, ``bool``, ``"c16"``).
        shape: the shape of one token (``()``: a scalar).
        rate: tokens consumed or produced per firing (>= 1).
        name: the port's name in its action (set by :func:`~tidesim.waves.action`).

    Attributes:
        token_bytes: bytes of one token (``itemsize * prod(shape)``).
        token_words: 64-bit words of one token, ``ceil(token_bytes / 8)``.
        block_words: words of one firing's tokens, ``rate * token_words``.
        arg_shape: the shape of the array the action's function gets:
            ``shape`` when ``rate == 1``, else ``(rate, *shape)``.
        tokens_shape: ``(rate, *shape)``, whatever the rate.
    """

    dtype: np.dtype
    shape: tuple[int, ...] = ()
    rate: int = 1
    name: str = ""

    direction: ClassVar[str] = "port"

    def __post_init__(self) -> None:
        kind = type(self).__name__
        set_fields(self, dtype=canonical_dtype(f"{kind}.dtype", self.dtype),
                   shape=canonical_shape(f"{kind}.shape", self.shape),
                   rate=integer(f"{kind}.rate", self.rate, lo=1))
        if not isinstance(self.name, str):
            raise ConfigError(f"{kind}.name", self.name, "must be a string")

    @property
    def token_bytes(self) -> int:
        """Bytes of one token."""
        return self.dtype.itemsize * math.prod(self.shape)

    @property
    def token_words(self) -> int:
        """64-bit words of one token (the last one zero-padded)."""
        return -(-self.token_bytes // WORD_BYTES)

    @property
    def block_words(self) -> int:
        """Words of one firing's ``rate`` tokens."""
        return self.rate * self.token_words

    @property
    def arg_shape(self) -> tuple[int, ...]:
        """The shape of the array the action's function receives for this port."""
        return self.shape if self.rate == 1 else (self.rate, *self.shape)

    @property
    def tokens_shape(self) -> tuple[int, ...]:
        """``(rate, *shape)``: one firing's tokens, stacked."""
        return (self.rate, *self.shape)

    @property
    def type_text(self) -> str:
        """``float64 (4,)``: dtype and token shape, as messages show them."""
        return type_text(self.dtype, self.shape)

    def named(self, name: str) -> Port:
        """This port, under ``name``."""
        return replace(self, name=name)

    def __repr__(self) -> str:
        rate = f", rate={self.rate}" if self.rate != 1 else ""
        name = f", name={self.name!r}" if self.name else ""
        return f"{type(self).__name__}({self.dtype.name!r}, {self.shape}{rate}{name})"


@dataclass(frozen=True, repr=False)
class In(Port):
    """An input port: a firing consumes ``rate`` tokens of ``dtype``/``shape``.

    ``In(dtype, shape=(), rate=1)``; see :class:`Port`.
    """

    direction: ClassVar[str] = "input"


@dataclass(frozen=True, repr=False)
class Out(Port):
    """An output port: a firing produces ``rate`` tokens of ``dtype``/``shape``.

    ``Out(dtype, shape=(), rate=1)``; see :class:`Port`. The arrays are
    zero-filled before every firing; the function writes them in place.
    """

    direction: ClassVar[str] = "output"


class Ports(tuple):
    """The ports of one side of an action, in declared order.

    A tuple of :class:`Port` (``ports[0]``, iteration, ``len``) that is also
    looked up by name like a read-only dict (``ports["x"]``, ``"x" in ports``,
    ``ports.names``, ``ports.items()``, ``ports.index("x")``).
    """

    def __new__(cls, ports: Iterable[Port] = ()) -> Ports:
        return super().__new__(cls, tuple(ports))

    @property
    def names(self) -> tuple[str, ...]:
        """The port names, in order."""
        return tuple(p.name for p in self)

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            return super().__getitem__(self.index(key))
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return key in self.names
        return super().__contains__(key)

    def index(self, key, *args) -> int:  # type: ignore[override]
        """The position of the port named ``key`` (or of the port ``key``)."""
        if isinstance(key, str):
            try:
                return self.names.index(key)
            except ValueError:
                raise KeyError(key) from None
        return super().index(key, *args)

    def get(self, name: str, default=None):
        """The port named ``name``, or ``default``."""
        return self[name] if name in self.names else default

    def keys(self) -> tuple[str, ...]:
        """The port names, in order."""
        return self.names

    def values(self) -> tuple[Port, ...]:
        """The ports, in order."""
        return tuple(self)

    def items(self) -> tuple[tuple[str, Port], ...]:
        """``(name, port)`` pairs, in order."""
        return tuple((p.name, p) for p in self)

    def __repr__(self) -> str:
        return f"Ports({list(self)!r})"


def offsets(ports: Sequence[Port]) -> tuple[int, ...]:
    """The word offset of each port's block in a firing's block (ports concatenated)."""
    out, at = [], 0
    for p in ports:
        out.append(at)
        at += p.block_words
    return tuple(out)


def tokens_array(field: str, dtype: np.dtype, shape: tuple[int, ...], value: object,
                 what: str = "tokens") -> np.ndarray:
    """``value`` as ``dtype`` values whose trailing dimensions are ``shape``, C-contiguous.

    Integers go into floats, narrower into wider types; a cast that changes
    the kind (float to int, complex to float) is refused.

    Raises:
        ConfigError: not numbers, an unsafe cast, or the wrong trailing shape.
    """
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise ConfigError(field, type(value).__name__, f"must be an array of {what}") from None
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise ConfigError(field, arr.dtype.name, f"must be numbers of type {dtype.name}")
    if not np.can_cast(arr.dtype, dtype, casting="same_kind") and not (
            arr.dtype.kind in "biu" and dtype.kind in "biu"):
        raise ConfigError(field, arr.dtype.name, f"must be numbers of type {dtype.name}")
    nd = len(shape)
    if arr.shape[arr.ndim - nd:] != shape or arr.ndim < nd:
        raise ConfigError(field, arr.shape, f"must be {what} of shape {shape}")
    return np.asarray(arr.astype(dtype, copy=False), order="C")  # keeps 0-d arrays 0-d


def to_words(raw: np.ndarray, n: int, nbytes: int, nwords: int) -> np.ndarray:
    """``n`` items of ``nbytes`` bytes each (``raw``, C-contiguous), as ``n * nwords`` words."""
    out = np.zeros((n, nwords * WORD_BYTES), dtype=np.uint8)
    if nbytes and n:
        out[:, :nbytes] = raw.reshape(n, -1).view(np.uint8).reshape(n, nbytes)
    return out.reshape(-1).view("<u8").astype(np.uint64, copy=False)


def from_words(words: np.ndarray, n: int, nbytes: int, nwords: int, dtype: np.dtype,
               shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`to_words`: ``n`` items, as a new ``(n, *shape)`` array."""
    raw = np.ascontiguousarray(words, dtype="<u8").view(np.uint8).reshape(n, nwords * WORD_BYTES)
    data = np.ascontiguousarray(raw[:, :nbytes])
    return data.view(dtype).reshape((n, *shape)).copy()


def pack_tokens(port: Port, array: object) -> np.ndarray:
    """Tokens as the words that carry them (the word layout of the module docstring).

    Args:
        port: the port the tokens belong to.
        array: tokens of ``port.dtype``, shape ``(..., *port.shape)``: the
            leading dimensions count the tokens, in C order (``port.shape``
            alone is one token; one firing's tokens are ``(rate, *shape)``).

    Returns:
        uint64[n_tokens * port.token_words], a new array.

    Raises:
        ConfigError: the wrong trailing shape, or values that do not cast
            safely to ``port.dtype``.
    """
    _check_port(port)
    arr = tokens_array(_port_field(port, "tokens"), port.dtype, port.shape, array)
    n = arr.size // max(math.prod(port.shape), 1)
    return to_words(arr, n, port.token_bytes, port.token_words)


def unpack_tokens(port: Port, words: object) -> np.ndarray:
    """Words as the tokens they carry: the inverse of :func:`pack_tokens`.

    Args:
        port: the port the tokens belong to.
        words: 1-D unsigned 64-bit words, a whole number of tokens
            (``len % port.token_words == 0``).

    Returns:
        A new ``(n_tokens, *port.shape)`` array of ``port.dtype``.

    Raises:
        ConfigError: not 1-D words, or not a whole number of tokens.
    """
    _check_port(port)
    field = _port_field(port, "words")
    arr = np.asarray(words)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "ui"):
        raise ConfigError(field, arr.shape, "must be a 1-D array of uint64 words")
    if arr.size % port.token_words:
        raise ConfigError(field, arr.size,
                          f"must hold whole tokens ({port.token_words} words each)")
    n = arr.size // port.token_words
    return from_words(arr.astype(np.uint64, copy=False), n, port.token_bytes, port.token_words,
                      port.dtype, port.shape)


def _check_port(port: object) -> None:
    if not isinstance(port, Port):
        raise ConfigError("port", type(port).__name__, "must be an In or Out port")


def _port_field(port: Port, what: str) -> str:
    return f"{port.name}.{what}" if port.name else what
