"""The canonical encoding: tags, the walk over a value, and the builtin scalars and containers.

Every rule writes self-delimiting bytes (a tag, then a length or fixed-size fields), so
concatenations of encodings never meet by accident. Exact types dispatch through
:data:`ENCODERS`; any other value goes through the *shape* rules of the family modules, in the
order :mod:`beautyspot.cachekey` gives them, and is refused if none claims it.
"""

from __future__ import annotations

import functools
import hashlib
import reprlib
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from beautyspot.cachekey.describe import describe
from beautyspot.errors import CacheKeyError

# Large byte strings and array data enter the encoding as a 32-byte digest instead of a copy.
INLINE_LIMIT = 1024
_BLOB_PERSON = b"beautyspot.blob"

# One-byte tags of the core types; every other type is an OBJECT tag plus a kind name.
NONE, TRUE, FALSE, INT, FLOAT = b"N", b"T", b"F", b"i", b"f"
STR, BYTES, BYTEARRAY = b"s", b"b", b"a"
LIST, TUPLE, DICT, SET, FROZENSET = b"l", b"t", b"d", b"e", b"z"
OBJECT = b"o"

length = struct.Struct(">Q").pack
_double = struct.Struct(">d").pack
_CANONICAL_NAN = FLOAT + _double(float("nan"))


class Unkeyable(Exception):
    """A value deep inside an argument has no faithful encoding; gathers where it sits."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.where: list[str] = []  # innermost first, as the error climbs out

    @property
    def path(self) -> str:
        return "".join(reversed(self.where))


class Walk:
    """The state of one encoding: containers on the stack (cycle guard) and the Spot's
    registered types, whose instances are keyed by what their encoder returns."""

    __slots__ = ("active", "registered")

    def __init__(self, registered: Mapping[type, Any] | None = None) -> None:
        self.active: set[int] = set()
        self.registered: Mapping[type, Any] = registered if registered is not None else {}


Encoder = Callable[[Any, Walk], bytes]
#: A rule for values known by shape rather than exact class: bytes, or None if not its kind.
Shape = Callable[[Any, Walk], "bytes | None"]

ENCODERS: dict[type, Encoder] = {}
SHAPES: list[Shape] = []


def encode(value: Any, walk: Walk) -> bytes:
    encoder = ENCODERS.get(type(value))
    if encoder is None:
        return _encode_other(value, walk)
    return encoder(value, walk)


def _encode_other(value: Any, walk: Walk) -> bytes:
    for shape in SHAPES:
        encoded = shape(value, walk)
        if encoded is not None:
            return encoded
    raise Unkeyable(describe(value))


def encode_at(value: Any, segment: str, walk: Walk) -> bytes:
    try:
        return encode(value, walk)
    except Unkeyable as exc:
        exc.where.append(segment)
        raise


def encode_object(kind: str, *parts: bytes) -> bytes:
    # The kind is an encoded str, so it is self-delimiting; each kind has a fixed part count.
    return b"".join((OBJECT, encode_str(kind), *parts))


def payload(data: bytes | bytearray | memoryview) -> bytes:
    size = len(data)
    if size <= INLINE_LIMIT:
        return length(size) + data
    return length(size) + hashlib.blake2b(data, digest_size=32, person=_BLOB_PERSON).digest()


def payload_of_chunks(size: int, chunks: Iterable[bytes | memoryview]) -> bytes:
    """``payload()`` of the concatenation of ``chunks`` (``size`` bytes in all), without
    building it: for data over :data:`INLINE_LIMIT` that must be gathered from pieces."""
    digest = hashlib.blake2b(digest_size=32, person=_BLOB_PERSON)
    for chunk in chunks:
        digest.update(chunk)
    return length(size) + digest.digest()


def guard_cycles(encoder: Encoder) -> Encoder:
    """Refuse a container that (indirectly) contains itself instead of recursing forever."""

    @functools.wraps(encoder)
    def guarded(value: Any, walk: Walk) -> bytes:
        key = id(value)  # only compared while the value is alive on the stack
        active = walk.active
        if key in active:
            raise Unkeyable("contains itself (a reference cycle)")
        active.add(key)
        try:
            return encoder(value, walk)
        finally:
            active.discard(key)

    return guarded


def brief(value: Any) -> str:
    return reprlib.repr(value)  # error messages only, never keys


# Scalars ---------------------------------------------------------------------------------------


def encode_none(value: None, walk: Walk | None = None) -> bytes:
    return NONE


def encode_bool(value: bool, walk: Walk | None = None) -> bytes:
    return TRUE if value else FALSE


def encode_int(value: int, walk: Walk | None = None) -> bytes:
    data = value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
    return INT + length(len(data)) + data


def encode_float(value: float, walk: Walk | None = None) -> bytes:
    if value != value:  # every NaN is the same input
        return _CANONICAL_NAN
    return FLOAT + _double(value)


def encode_str(value: str, walk: Walk | None = None) -> bytes:
    # surrogatepass keeps lone surrogates distinct instead of failing
    return STR + payload(value.encode("utf-8", "surrogatepass"))


def encode_bytes(value: bytes, walk: Walk | None = None) -> bytes:
    return BYTES + payload(value)


def encode_bytearray(value: bytearray, walk: Walk | None = None) -> bytes:
    return BYTEARRAY + payload(value)


def encode_complex(value: complex, walk: Walk | None = None) -> bytes:
    return encode_object("complex", encode_float(value.real), encode_float(value.imag))


def encode_range(value: range, walk: Walk | None = None) -> bytes:
    return encode_object("range", *(encode_int(n) for n in (value.start, value.stop, value.step)))


# Containers ------------------------------------------------------------------------------------


def sequence(items: Iterable[Any], count: int, walk: Walk) -> bytes:
    parts = [length(count)]
    for index, item in enumerate(items):
        try:
            parts.append(encode(item, walk))
        except Unkeyable as exc:
            exc.where.append(f"[{index}]")
            raise
    return b"".join(parts)


def unordered(items: Iterable[Any], count: int, walk: Walk) -> bytes:
    # Sorting the encodings (not the values) makes any iteration order give the same bytes.
    entries = []
    for item in items:
        try:
            entries.append(encode(item, walk))
        except Unkeyable as exc:
            exc.where.append("{<element>}")
            raise
    entries.sort()
    return length(count) + b"".join(entries)


def _entries(mapping: Mapping[Any, Any], walk: Walk) -> list[bytes]:
    entries = []
    for key, item in mapping.items():
        try:
            encoded_key = encode(key, walk)
        except Unkeyable as exc:
            exc.where.append("[<key>]")
            raise
        try:
            encoded_item = encode(item, walk)
        except Unkeyable as exc:
            exc.where.append(f"[{brief(key)}]")  # only now: a repr per key would cost more
            raise
        entries.append(encoded_key + encoded_item)
    return entries


def mapping(value: Mapping[Any, Any], walk: Walk) -> bytes:
    entries = _entries(value, walk)
    entries.sort()  # as in unordered: insertion order must not matter
    return length(len(entries)) + b"".join(entries)


def ordered_mapping(value: Mapping[Any, Any], walk: Walk) -> bytes:
    return length(len(value)) + b"".join(_entries(value, walk))


@guard_cycles
def encode_list(value: list[Any], walk: Walk) -> bytes:
    return LIST + sequence(value, len(value), walk)


def encode_tuple(value: tuple[Any, ...], walk: Walk) -> bytes:
    # Not guarded: a cycle through a tuple must pass through a guarded mutable container.
    return TUPLE + sequence(value, len(value), walk)


@guard_cycles
def encode_dict(value: dict[Any, Any], walk: Walk) -> bytes:
    return DICT + mapping(value, walk)


@guard_cycles
def encode_set(value: set[Any], walk: Walk) -> bytes:
    return SET + unordered(value, len(value), walk)


def encode_frozenset(value: frozenset[Any], walk: Walk) -> bytes:
    return FROZENSET + unordered(value, len(value), walk)


#: Exact types whose encoding needs no walk (no containers, no registered types).
ATOMS: dict[type, Callable[[Any], bytes]] = {
    type(None): encode_none,
    bool: encode_bool,
    int: encode_int,
    float: encode_float,
    str: encode_str,
    bytes: encode_bytes,
}

ENCODERS.update(
    {
        type(None): encode_none,
        bool: encode_bool,
        int: encode_int,
        float: encode_float,
        str: encode_str,
        bytes: encode_bytes,
        bytearray: encode_bytearray,
        complex: encode_complex,
        range: encode_range,
        list: encode_list,
        tuple: encode_tuple,
        dict: encode_dict,
        set: encode_set,
        frozenset: encode_frozenset,
    }
)


def canonical_bytes(value: Any, walk: Walk | None = None) -> bytes:
    """The canonical, type-tagged encoding of ``value``: equal inputs, equal bytes.

    Byte strings and array data over 1 KiB appear as a digest of their bytes, so keying a large
    array neither copies it nor builds a large buffer.

    >>> canonical_bytes(1) == canonical_bytes(1.0)
    False
    >>> canonical_bytes({"a": 1, "b": 2}) == canonical_bytes({"b": 2, "a": 1})
    True
    """
    try:
        return encode(value, walk if walk is not None else Walk())
    except Unkeyable as exc:
        where = f" (at value{exc.path})" if exc.path else ""
        raise CacheKeyError(
            f"the value{where} {exc.reason}; leave it out of the key or compute the key "
            "yourself with input_key_fn="
        ) from None
    except RecursionError:
        raise CacheKeyError(
            "the value is nested too deeply to encode; compute the key with input_key_fn="
        ) from None
