"""The two msgpack hooks: tagging values while packing, rebuilding tagged arrays while
unpacking, and the check for values msgpack packs without asking."""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

import msgpack

from beautyspot.errors import SerializationError
from beautyspot.serializer.codec import _Builder, _Encoder, _Unstorable
from beautyspot.serializer.tables import _STDLIB_ENCODERS
from beautyspot.serializer.tags import FORMAT_VERSION

#: Types msgpack packs itself but that would not come back as they went in.
_IMPOSTORS = frozenset({bytearray, memoryview, msgpack.ExtType})
#: translate() table deleting every byte but those that can start a bin or extension value.
_ALL_BUT_BIN_AND_EXT_HEADERS = bytes(
    sorted(set(range(256)) - {*range(0xC4, 0xCA), *range(0xD4, 0xD9)})
)
#: Scanning about this many output bytes costs as much as walking one object of the value.
_SCANNED_BYTES_PER_OBJECT = 32
#: Below this size an output is scanned for impostors' headers at once: a walk would cost more.
_WALK_FIRST_FROM = 1024


class _Encoding:
    """One Packer and the bookkeeping of the dumps call using it."""

    __slots__ = ("_packer", "_tagging")

    def __init__(self, encoder_for: Callable[[Any], _Encoder]) -> None:
        # The packer calls back into a _Tagging that does not point back at the packer: without
        # that cycle, a dropped encoding frees its buffer at once rather than at the next gc run.
        self._tagging = _Tagging(encoder_for)
        self._packer = msgpack.Packer(
            default=self._tagging.default, use_bin_type=True, strict_types=True, autoreset=False
        )

    def encode(self, value: Any) -> bytes:
        tagging = self._tagging
        try:
            data = self._pack(value)
            if tagging.packed_an_impostor(value, data):
                tagging.tag_bytearrays = True
                data = self._pack(_with_bytearrays_tagged(value))
            return data
        finally:
            tagging.reset()

    def _pack(self, value: Any) -> bytes:
        self._packer.pack(FORMAT_VERSION)
        self._packer.pack(value)
        data = self._packer.bytes()
        self._packer.reset()
        return data


class _Tagging:
    """The Packer's ``default`` hook, and what it saw during one dumps call."""

    __slots__ = ("_encoder_for", "_fields_seen", "_tags", "tag_bytearrays")

    def __init__(self, encoder_for: Callable[[Any], _Encoder]) -> None:
        self._encoder_for = encoder_for
        self._fields_seen: list[Iterable[Any]] = []
        self._tags = 0
        self.tag_bytearrays = False

    def reset(self) -> None:
        self._fields_seen.clear()
        self._tags = 0
        self.tag_bytearrays = False

    def default(self, obj: Any) -> list[Any]:
        encoder = self._encoder_for(obj)
        fields = encoder.fields(obj)
        if encoder.holds_values:
            if self.tag_bytearrays:
                fields = [_with_bytearrays_tagged(field) for field in fields]
            else:
                self._fields_seen.append(fields)
        self._tags += 1
        return [_MARKERS[encoder.tag], *fields]

    def packed_an_impostor(self, value: Any, data: bytes) -> bool:
        """True if packing ``value`` into ``data`` wrote a bytearray, memoryview or ExtType.

        msgpack packs those as bin or extension data without asking ``default``, so they would
        come back as bytes, or as one of our tags. They can only sit in lists and dicts (or in
        the fields of tagged values, which ``default`` saw), so a walk of those finds them. Each
        of our tags writes one ext header byte, so if ``data`` holds no other bin or ext header
        bytes (real ones, or look-alikes inside other data), there is nothing to find.
        """
        # The walk costs per object and the scan per byte: on a large output, walk first while
        # the walk is the cheaper of the two (a few large bytes, arrays or strings).
        if len(data) >= _WALK_FIRST_FROM:
            found = _holds_impostor(self._roots(value), len(data) // _SCANNED_BYTES_PER_OBJECT)
            if found is not None:
                return found
        headers = data.translate(None, _ALL_BUT_BIN_AND_EXT_HEADERS)
        return len(headers) != self._tags and _holds_impostor(self._roots(value)) is True

    def _roots(self, value: Any) -> list[Any]:
        return [value, *itertools.chain.from_iterable(self._fields_seen)]


class _Decoding:
    """The unpack hooks of the loads call using them, and how many tags are still open."""

    __slots__ = ("_builders", "ext_hook", "list_hook", "open_tags")

    def __init__(self, builders: dict[int, _Builder]) -> None:
        self._builders = builders
        self.open_tags = 0
        self.ext_hook = self._open
        self.list_hook = self._close

    def _open(self, code: int, data: bytes) -> _Builder:
        builder = self._builders.get(code)
        if builder is None or data:
            raise SerializationError(f"stored bytes hold an unknown extension type {code}")
        self.open_tags += 1
        return builder

    def _close(self, items: list[Any]) -> Any:
        if items and type(items[0]) is _Builder:
            self.open_tags -= 1
            return items[0].build(items[1:])
        return items


_MARKERS = {tag: msgpack.ExtType(tag, b"") for tag in range(128)}


def _holds_impostor(level: list[Any], budget: float = math.inf) -> bool | None:
    """True if msgpack packed a bytearray, memoryview or ExtType somewhere in ``level``, or
    None if finding out would look at more than about ``budget`` objects."""
    sizing = budget < math.inf
    budget -= len(level)
    if budget < 0:
        return None
    while level:
        types = set(map(type, level))
        if not _IMPOSTORS.isdisjoint(types):
            return True
        if _PLAIN_CONTAINERS.isdisjoint(types):
            return False
        walked = level
        if sizing or not types <= _PLAIN_CONTAINERS_AND_ATOMS:
            walked = list(itertools.compress(level, map(_IS_PLAIN_CONTAINER, map(type, level))))
        if sizing:
            # Size the next level before building it: a list holds len() items, a dict len()
            # values (and as many keys, unless all are str).
            budget -= sum(map(len, walked))
            if budget < 0:
                return None
        # gc.get_referents yields exactly the items of lists, the keys (unless all are str) and
        # values of dicts, and nothing for atoms, without a Python-level loop; packing
        # succeeded, so the structure is finite.
        level = gc.get_referents(*walked)
    return False


_PLAIN_CONTAINERS = frozenset({list, dict})
_IS_PLAIN_CONTAINER = _PLAIN_CONTAINERS.__contains__
#: Lists, dicts, and the types in whose instances gc.get_referents finds nothing.
_PLAIN_CONTAINERS_AND_ATOMS = _PLAIN_CONTAINERS | {type(None), bool, int, float, str, bytes}


def _with_bytearrays_tagged(value: Any) -> Any:
    """``value`` with every bytearray in its lists and dicts replaced by its tagged array."""
    kind = type(value)
    if kind is list:
        return [_with_bytearrays_tagged(item) for item in value]
    if kind is dict:
        return {_with_bytearrays_tagged(k): _with_bytearrays_tagged(v) for k, v in value.items()}
    if kind is bytearray:
        encoder = _STDLIB_ENCODERS[bytearray]
        return [_MARKERS[encoder.tag], *encoder.fields(value)]
    if kind is memoryview:
        raise _Unstorable(value, "it would come back as bytes; store bytes(view) instead")
    if kind is msgpack.ExtType:
        raise _Unstorable(value, "msgpack extension types are reserved for beautyspot's own tags")
    return value
