"""Results to bytes and back, exactly: msgpack plus type tags, never pickle (DESIGN.md §4).

``loads(dumps(x))`` returns a value of the same type and value as ``x`` all the way down, or
``dumps`` refuses with a :class:`~beautyspot.errors.SerializationError` naming the type, where it
sits in the result and how to register it. ``loads`` raises only ``SerializationError``, whatever
the bytes.

Wire format, version 1::

    byte 0     format version (0x01)
    bytes 1..  one msgpack object

msgpack itself carries None, bool, int in [-2**63, 2**64), float, str, bytes and the exact
``list`` and ``dict`` types (keys of any storable type, order kept). Every other value is a
*tagged array*: a msgpack array whose first item is an empty extension value, followed by the
fields that rebuild it, ``[ExtType(tag, b""), field, ...]``. Fields are stored values themselves,
so tags nest freely and ``loads`` never parses a payload twice. An extension value appears nowhere
but at the head of a tagged array. beautyspot owns all 128 extension codes:

    ===  ====================================  ===============================================
    tag  value                                 fields
    ===  ====================================  ===============================================
    0    a type registered with ``register``   user code (0..127), what its encoder returned
    1-3  tuple, set, frozenset                 the items
    4    bytearray                             bytes
    5    int outside msgpack's 64-bit range    two's-complement big-endian bytes
    6    decimal.Decimal                       str(value) (exact digits, exponent, NaN payload)
    7    uuid.UUID                             16 bytes, is_safe
    8    datetime.datetime                     y, m, d, H, M, S, us, fold, tzinfo or None
                                               [, utcoffset, dst, tzname: see pytz below]
    9    datetime.date                         y, m, d
    10   datetime.time                         H, M, S, us, fold, tzinfo or None
    11   datetime.timedelta                    days, seconds, microseconds
    12   datetime.timezone                     offset[, name]
    13   zoneinfo.ZoneInfo                     key
    14   pytz time zone                        zone name, or minutes of a pytz.FixedOffset
    32   numpy.ndarray                         dtype, shape, Fortran order?, raw bytes
    33   numpy scalar                          dtype, raw bytes
    48   pandas ExtensionArray                 kind, kind-specific fields
    49   pandas Index (Datetime, Categorical)  array, name, freq
    50   pandas RangeIndex                     start, stop, step, name
    51   pandas MultiIndex                     levels, codes, names, sortorder
    52   pandas Series                         array, index, name, attrs, allows duplicates
    53   pandas DataFrame                      column arrays, index, columns, attrs, allows dup.
    54   pd.NA, pd.NaT, Timestamp, Timedelta   kind, numpy datetime64/timedelta64, tzinfo
    ===  ====================================  ===============================================

A pytz zone has one tzinfo object per offset it ever used, and a localized datetime carries the
one of its offset. A datetime whose tzinfo is such an object is tag 8 with its zone in place of
the tzinfo, followed by the offset, DST and abbreviation it had: it is rebuilt from that instant
in the zone, and checked to give the same wall time and the same three. ``dumps`` refuses pytz
values that this does not rebuild exactly (a localized datetime moved by arithmetic without
``zone.normalize()``, or such an offset object on its own).

A numpy dtype is its ``str`` (``"<f8"``, ``"<M8[ns]"``), a ``[dtype, shape]`` pair for a
sub-array, or a dict of names, formats, offsets, itemsize, titles and alignment for a structured
dtype. User codes sit inside tag 0, so they never collide with the library's tags and the library
can add tags without touching anyone's data.

numpy and pandas are optional and never imported here: a value is recognised by its type's
module, and decoding imports them only when the stored value holds their data.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import gc
import inspect
import itertools
import math
import operator
import re
import types
import typing
import uuid
import zoneinfo
from collections import abc
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any, NamedTuple

import msgpack

from beautyspot.errors import ConfigurationError, SerializationError

__all__ = ["FORMAT_VERSION", "Serializer"]

#: First byte of every output; bump it when the layout changes.
FORMAT_VERSION = 1

_USER, _TUPLE, _SET, _FROZENSET, _BYTEARRAY, _BIGINT, _DECIMAL, _UUID = range(8)
_DATETIME, _DATE, _TIME, _TIMEDELTA, _TIMEZONE, _ZONEINFO, _PYTZ = range(8, 15)
_NDARRAY, _NUMPY_SCALAR = 32, 33
_PD_ARRAY, _PD_INDEX, _PD_RANGE_INDEX, _PD_MULTI_INDEX, _PD_SERIES, _PD_FRAME = range(48, 54)
_PD_SCALAR = 54

#: Types msgpack packs itself; ``default`` never sees them, so they cannot be registered.
_NATIVE_TYPES = frozenset({type(None), bool, int, float, str, bytes, list, dict, msgpack.Timestamp})
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
#: Below this size loads copies the body; above it, a memoryview avoids copying the whole blob.
_COPY_BODY_BELOW = 4096
#: A Packer's buffer never shrinks; one that wrote more than this is dropped after use.
_KEEP_PACKER_BELOW = 1 << 20


class Serializer:
    """Encodes values to bytes and back, exactly, with msgpack and type tags.

    One instance per Spot; safe to share between threads.

    >>> s = Serializer()
    >>> s.loads(s.dumps({"scores": (1, 2.5), 7: {b"raw"}}))
    {'scores': (1, 2.5), 7: {b'raw'}}
    """

    def __init__(self) -> None:
        self._encoders: dict[type, _Encoder] = dict(_STDLIB_ENCODERS)
        self._builders: dict[int, _Builder] = {
            **_LIBRARY_BUILDERS,
            _USER: _Builder(self._build_user),
        }
        self._user_decoders: dict[int, tuple[type, Callable[[Any], Any]]] = {}
        self._user_codes: dict[type, int] = {}
        # Packers and unpack hooks keep per-call state, so each call borrows its own set;
        # list.pop and list.append are atomic, so this pool needs no lock.
        self._encodings: list[_Encoding] = []
        self._decodings: list[_Decoding] = []

    # -- registration -----------------------------------------------------------------------

    def register(
        self,
        type_: type,
        code: int,
        encoder: Callable[[Any], Any],
        decoder: Callable[[Any], Any],
    ) -> None:
        """Store instances of ``type_`` (exactly that class) with your own encoder and decoder.

        :param type_: the class; subclasses are not covered, register them separately.
        :param code: 0..127, unique per serializer; it is written into the data, keep it stable.
        :param encoder: turns an instance into bytes, or into any value this serializer stores.
        :param decoder: gets back exactly what ``encoder`` returned and rebuilds the instance.
        :raises ConfigurationError: on a bad or taken code, a non-class, or a type already stored.

        >>> class Point:
        ...     def __init__(self, x, y):
        ...         self.x, self.y = x, y
        >>> s = Serializer()
        >>> s.register(Point, 10, encoder=lambda p: (p.x, p.y), decoder=lambda xy: Point(*xy))
        >>> p = s.loads(s.dumps([Point(1, 2)]))[0]
        >>> (type(p).__name__, p.x, p.y)
        ('Point', 1, 2)
        """
        if not isinstance(type_, type):
            raise ConfigurationError(f"type_ must be a class, got {type_!r}")
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 127:
            raise ConfigurationError(f"code must be an int from 0 to 127, got {code!r}")
        for name, function in (("encoder", encoder), ("decoder", decoder)):
            if not callable(function):
                raise ConfigurationError(f"{name} must be callable, got {function!r}")
        if type_ in _NATIVE_TYPES | _IMPOSTORS or self._library_encoder(type_) is not None:
            raise ConfigurationError(
                f"{_type_name(type_)} is stored by beautyspot itself; register only your own types"
            )
        if type_ in self._user_codes:
            raise ConfigurationError(
                f"{_type_name(type_)} is already registered with code {self._user_codes[type_]}"
            )
        if code in self._user_decoders:
            taken_by = _type_name(self._user_decoders[code][0])
            raise ConfigurationError(f"code {code} is already taken by {taken_by}; pick another")
        self._user_decoders[code] = (type_, decoder)
        self._user_codes[type_] = code
        self._encoders[type_] = _Encoder(_USER, _user_fields(code, encoder), holds_values=True)

    def register_enum(self, enum_cls: type[enum.Enum], code: int) -> None:
        """Register an Enum (or Flag) class, stored by member value.

        >>> import enum
        >>> class Color(enum.Enum):
        ...     RED = "r"
        >>> s = Serializer()
        >>> s.register_enum(Color, 1)
        >>> s.loads(s.dumps(Color.RED)) is Color.RED
        True
        """
        if not (isinstance(enum_cls, type) and issubclass(enum_cls, enum.Enum)):
            raise ConfigurationError(f"enum_cls must be an Enum class, got {enum_cls!r}")
        self.register(enum_cls, code, encoder=operator.attrgetter("value"), decoder=enum_cls)

    def register_dataclass(self, cls: type, code: int) -> None:
        """Register a dataclass, stored as its fields by name and rebuilt through its ``__init__``.

        Fields with ``init=False`` are set after construction, so they come back as stored.

        >>> import dataclasses
        >>> @dataclasses.dataclass
        ... class Hit:
        ...     url: str
        ...     score: float = 0.0
        >>> s = Serializer()
        >>> s.register_dataclass(Hit, 2)
        >>> s.loads(s.dumps(Hit("https://a.example", 0.5)))
        Hit(url='https://a.example', score=0.5)
        """
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ConfigurationError(f"cls must be a dataclass, got {cls!r}")
        codec = _DataclassCodec(cls)
        self.register(cls, code, encoder=codec.encode, decoder=codec.decode)

    # -- bytes ------------------------------------------------------------------------------

    def dumps(self, value: Any) -> bytes:
        """Encode ``value``; raise :class:`SerializationError` (with ``.result``) if it can't be.

        >>> Serializer().dumps({"a": 1})
        b'\\x01\\x81\\xa1a\\x01'
        """
        encoding = _take(self._encodings) or _Encoding(self._encoder_for)
        try:
            data = encoding.encode(value)
        except _Unstorable as exc:
            message = f"cannot store {_locate(value, exc.obj)} ({_type_name(type(exc.obj))}): "
            raise SerializationError(message + exc.reason, result=value) from exc.__cause__
        except Exception as exc:
            raise SerializationError(_pack_failure(exc), result=value) from exc
        if len(data) < _KEEP_PACKER_BELOW:
            self._encodings.append(encoding)
        return data

    def loads(self, data: bytes) -> Any:
        """Decode bytes written by :meth:`dumps`; any malformed input is a SerializationError.

        >>> Serializer().loads(b'\\x01\\x81\\xa1a\\x01')
        {'a': 1}
        """
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise SerializationError(f"loads expects bytes, got {_type_name(type(data))}")
            data = bytes(data)
        if not data or data[0] != FORMAT_VERSION:
            raise SerializationError(_version_problem(data))
        body = data[1:] if len(data) < _COPY_BODY_BELOW else memoryview(data)[1:]
        decoding = _take(self._decodings) or _Decoding(self._builders)
        try:
            value = msgpack.unpackb(
                body,
                ext_hook=decoding.ext_hook,
                list_hook=decoding.list_hook,
                strict_map_key=False,
            )
            if decoding.open_tags:
                raise SerializationError("stored bytes are corrupt: a type tag outside its array")
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(
                f"stored bytes are corrupt or truncated ({_brief_error(exc)})"
            ) from exc
        finally:
            decoding.open_tags = 0
            self._decodings.append(decoding)
        return value

    # -- annotations ------------------------------------------------------------------------

    def check_annotation(self, annotation: Any) -> str | None:
        """Say why a return annotation names a type that cannot be stored, or return None.

        Only what is certain is reported: Any, object, type variables, abstract classes and
        unresolved strings pass.

        >>> class Unregistered: ...
        >>> s = Serializer()
        >>> s.check_annotation(dict[str, list[int]]) is None
        True
        >>> print(s.check_annotation(list[Unregistered] | None))  # doctest: +ELLIPSIS
        the return annotation ... names ...Unregistered, which beautyspot cannot store; ...
        """
        offender = self._unstorable_in(annotation, depth=0)
        if offender is None:
            return None
        shown = annotation.__qualname__ if isinstance(annotation, type) else repr(annotation)
        return (
            f"the return annotation {shown} names {_type_name(offender)}, which beautyspot "
            f"cannot store; {_REGISTER_HINT}"
        )

    def _unstorable_in(self, annotation: Any, depth: int) -> type | None:
        if depth > 32 or annotation is inspect.Signature.empty:
            return None  # a runaway alias, or no annotation at all
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is None:
            if isinstance(annotation, type):
                return None if self._may_store(annotation) else annotation
            underlying = getattr(annotation, "__supertype__", None)  # NewType
            if underlying is None and type(annotation).__name__ == "TypeAliasType":
                underlying = annotation.__value__
            return self._unstorable_in(underlying, depth + 1) if underlying else None
        if origin is typing.Literal:
            return next((type(v) for v in args if not self._may_store(type(v))), None)
        if origin is typing.Annotated:
            args = args[:1]
        elif origin is not typing.Union and origin is not types.UnionType:
            if not isinstance(origin, type):
                return None
            if not self._may_store(origin):
                return origin
            if origin not in _ELEMENT_CONTAINERS:
                return None
        inner = (self._unstorable_in(arg, depth + 1) for arg in args if arg is not Ellipsis)
        return next((offender for offender in inner if offender is not None), None)

    def _may_store(self, cls: type) -> bool:
        """True unless instances of ``cls`` surely cannot be stored."""
        if cls in _NATIVE_TYPES or cls in self._encoders or self._library_encoder(cls):
            return True
        if cls is object or inspect.isabstract(cls) or cls.__module__ in _ABSTRACT_MODULES:
            return True
        if getattr(cls, "_is_protocol", False):  # a typing.Protocol: says nothing about values
            return True
        return any(
            issubclass(known, cls) for known in itertools.chain(_NATIVE_TYPES, self._encoders)
        )

    # -- encoding internals -----------------------------------------------------------------

    def _encoder_for(self, obj: Any) -> _Encoder:
        """The encoder of ``obj``'s exact type; raises _Unstorable if there is none."""
        cls = type(obj)
        encoder = self._encoders.get(cls)
        if encoder is None:
            encoder = self._library_encoder(cls)  # numpy and pandas types, met for the first time
            if encoder is None:
                raise _Unstorable(
                    obj, f"beautyspot has no encoding for this type; {_REGISTER_HINT}"
                )
            self._encoders[cls] = encoder
        return encoder

    @staticmethod
    def _library_encoder(cls: type) -> _Encoder | None:
        if cls in _STDLIB_ENCODERS:
            return _STDLIB_ENCODERS[cls]
        package = cls.__module__.partition(".")[0]
        if package == "numpy":
            return _numpy_encoder(cls)
        if package == "pandas":
            return _pandas_encoder(cls)
        if package == "pytz" and issubclass(cls, tzinfo):
            return _Encoder(_PYTZ, _pytz_fields)
        return None

    def _build_user(self, fields: list[Any]) -> Any:
        code, encoded = fields
        if code not in self._user_decoders:
            raise SerializationError(
                f"the stored value holds a registered type with code {code!r}, but no type is "
                "registered with that code here; register it before loading"
            )
        type_, decoder = self._user_decoders[code]
        try:
            return decoder(encoded)
        except Exception as exc:
            raise SerializationError(
                f"the decoder registered for {_type_name(type_)} (code {code}) failed: "
                f"{_brief_error(exc)}"
            ) from exc


def _brief_error(exc: BaseException) -> str:
    """Name an error without repr() of what it carries: msgpack's ExtraData holds the decoded
    value, whose repr() can be huge or can itself raise on hostile data."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


_REGISTER_HINT = (
    "register it with spot.register_type(type_=..., code=0..127, encoder=..., decoder=...)"
    " (an Enum or a dataclass: spot.serializer.register_enum / register_dataclass)"
)
_ABSTRACT_MODULES = frozenset({"typing", "typing_extensions", "collections.abc", "numbers", "abc"})
#: Generic origins whose type arguments are the types of the values they hold.
_ELEMENT_CONTAINERS = frozenset(
    {
        list, tuple, set, frozenset, dict,
        abc.Iterable, abc.Collection, abc.Sequence, abc.MutableSequence,
        abc.Set, abc.MutableSet, abc.Mapping, abc.MutableMapping,
    }
)  # fmt: skip


# -- the two hooks ----------------------------------------------------------------------------


class _Encoder(NamedTuple):
    """How ``default`` writes one type: its tag and the fields that rebuild it."""

    tag: int
    fields: Callable[[Any], Iterable[Any]]  # must return a re-iterable collection
    holds_values: bool = False  # fields may hold arbitrary stored values


class _Builder:
    """What ``ext_hook`` returns for a tag: the head of a tagged array, until it is closed."""

    __slots__ = ("build",)

    def __init__(self, build: Callable[[list[Any]], Any]) -> None:
        self.build = build


class _Unstorable(Exception):
    """Raised inside ``default``; ``dumps`` turns it into a SerializationError with a path."""

    def __init__(self, obj: Any, reason: str) -> None:
        super().__init__(reason)
        self.obj = obj
        self.reason = reason


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


def _take(pool: list[Any]) -> Any:
    try:
        return pool.pop()
    except IndexError:
        return None


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


def _pack_failure(exc: Exception) -> str:
    if isinstance(exc, (ValueError, RecursionError)) and "recursion" in str(exc).lower():
        return "cannot store result: it is nested too deeply (over ~1000 levels) or contains itself"
    return f"cannot store result: {exc}"


def _version_problem(data: bytes | bytearray | memoryview) -> str:
    if not data:
        return "stored bytes are empty"
    return (
        f"stored bytes have format version {data[0]}, this beautyspot reads version "
        f"{FORMAT_VERSION}; they were written by another version or are not beautyspot data"
    )


def _type_name(cls: type) -> str:
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _locate(root: Any, target: Any) -> str:
    """Where ``target`` sits inside ``root``, as ``result[2]['x']``, for error messages."""
    stack: list[tuple[Any, str]] = [(root, "result")]
    seen: set[int] = set()
    while stack:
        obj, path = stack.pop()
        if obj is target:
            return path
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        kind = type(obj)
        if kind is list or kind is tuple:
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(obj))
        elif kind is dict:
            for i, (key, item) in enumerate(obj.items()):
                stack.append((key, f"{path}.keys()[{i}]"))
                stack.append((item, f"{path}[{_short_repr(key)}]"))
        elif kind is set or kind is frozenset:
            stack.extend((item, f"{path}{{…}}") for item in obj)
    return "a value inside result"


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _user_fields(code: int, encoder: Callable[[Any], Any]) -> Callable[[Any], tuple[int, Any]]:
    def fields(obj: Any) -> tuple[int, Any]:
        try:
            return (code, encoder(obj))
        except Exception as exc:
            raise _Unstorable(obj, f"its registered encoder failed: {exc!r}") from exc

    return fields


class _DataclassCodec:
    """Encoder and decoder of one dataclass, by field name."""

    def __init__(self, cls: type) -> None:
        fields = dataclasses.fields(cls)
        self._cls = cls
        self._names = frozenset(field.name for field in fields)
        self._init = [field.name for field in fields if field.init]
        self._after_init = [field.name for field in fields if not field.init]
        try:
            inspect.signature(cls).bind(**dict.fromkeys(self._init))
        except TypeError as exc:
            raise ConfigurationError(
                f"register_dataclass cannot rebuild {_type_name(cls)} from its fields ({exc}); "
                "use register_type with your own encoder and decoder"
            ) from exc

    def encode(self, obj: Any) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in (*self._init, *self._after_init)}

    def decode(self, state: Any) -> Any:
        if type(state) is not dict or state.keys() != self._names:
            raise ValueError(f"stored fields do not match {self._cls.__qualname__}'s fields")
        obj = self._cls(**{name: state[name] for name in self._init})
        for name in self._after_init:
            object.__setattr__(obj, name, state[name])
        return obj


def _expect(value: Any, kind: type) -> Any:
    """``value``, if it has exactly type ``kind``; guards constructors that take sizes too."""
    if type(value) is not kind:
        raise ValueError(f"expected {kind.__name__}, found {type(value).__name__}")
    return value


# -- standard library types -------------------------------------------------------------------


def _int_to_bytes(number: int) -> tuple[bytes]:
    return (number.to_bytes(number.bit_length() // 8 + 1, "big", signed=True),)


def _build_int(fields: list[Any]) -> int:
    return int.from_bytes(_expect(*fields, bytes), "big", signed=True)


def _uuid_fields(value: uuid.UUID) -> tuple[bytes, int | None]:
    return (value.bytes, value.is_safe.value)


def _build_uuid(fields: list[Any]) -> uuid.UUID:
    raw, safe = fields
    return uuid.UUID(bytes=_expect(raw, bytes), is_safe=uuid.SafeUUID(safe))


def _storable_tz(owner: Any, tz: tzinfo | None) -> tzinfo | None:
    if tz is None or type(tz) is timezone or (type(tz) is zoneinfo.ZoneInfo and tz.key):
        return tz
    if _is_pytz(tz):
        if _pytz_key(tz) is None:
            raise _Unstorable(owner, _PYTZ_OFFSET_ALONE)
        return tz
    raise _Unstorable(
        owner,
        f"its time zone is a {_type_name(type(tz))}; only datetime.timezone, "
        "zoneinfo.ZoneInfo (created by key) and pytz time zones can be stored",
    )


def _expect_tz(tz: Any) -> tzinfo | None:
    if tz is not None and not isinstance(tz, tzinfo):
        raise ValueError(f"expected a time zone, found {type(tz).__name__}")
    return tz


def _datetime_fields(d: datetime) -> tuple[Any, ...]:
    wall = (d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond, d.fold)
    if _is_pytz(d.tzinfo) and _pytz_key(d.tzinfo) is None:
        return (*wall, *_pytz_local_fields(d))
    return (*wall, _storable_tz(d, d.tzinfo))


def _build_datetime(fields: list[Any]) -> datetime:
    if len(fields) == 12:
        *parts, fold, zone, offset, dst, name = fields
        return _in_pytz_zone(datetime(*parts, fold=fold), zone, offset, dst, name)
    *parts, fold, tz = fields
    return datetime(*parts, tzinfo=tz, fold=fold)


def _time_fields(t: time) -> tuple[Any, ...]:
    return (t.hour, t.minute, t.second, t.microsecond, t.fold, _storable_tz(t, t.tzinfo))


def _build_time(fields: list[Any]) -> time:
    *parts, fold, tz = fields
    return time(*parts, tzinfo=tz, fold=fold)


def _timedelta_fields(delta: timedelta) -> tuple[int, int, int]:
    return (delta.days, delta.seconds, delta.microseconds)


def _timezone_fields(tz: timezone) -> tuple[Any, ...]:
    # The pickle hook tells apart timezone(offset) from timezone(offset, name).
    return tz.__getinitargs__()  # type: ignore[attr-defined, no-any-return]


def _zoneinfo_fields(tz: zoneinfo.ZoneInfo) -> tuple[str]:
    if not tz.key:
        raise _Unstorable(tz, "a ZoneInfo without a key (from a file) cannot be stored")
    return (tz.key,)


def _build_zoneinfo(fields: list[Any]) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(_expect(*fields, str))


# -- pytz --------------------------------------------------------------------------------------

_PYTZ_OFFSET_ALONE = (
    "the pytz time zone is the object of one of its zone's offsets (a localized datetime's "
    "tzinfo), which pytz rebuilds only along with that datetime; use pytz.timezone(tz.zone)"
)
_PYTZ_OFFSET_MISMATCH = (
    "its pytz time zone object is not the one its zone has in force at that time (a datetime "
    "given tzinfo=zone instead of zone.localize(), or moved by arithmetic without "
    "zone.normalize()), so it cannot be rebuilt exactly; normalize it, or use zoneinfo"
)
#: IANA zone names: 'UTC', 'Etc/GMT+5', 'America/Argentina/Buenos_Aires', 'America/Port-au-Prince'.
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,39}(/[A-Za-z][A-Za-z0-9_+-]{0,39}){0,2}")


def _pytz() -> Any:
    try:
        import pytz
    except ImportError as exc:
        raise SerializationError("the stored value holds a pytz time zone; install pytz") from exc
    return pytz


def _is_pytz(tz: Any) -> bool:
    # By package, not by prefix: pytz_deprecation_shim's zones are not pytz's.
    return type(tz).__module__.partition(".")[0] == "pytz"


def _pytz_zone(key: Any) -> tzinfo:
    """The pytz zone named ``key``, or the pytz.FixedOffset of ``key`` minutes."""
    pytz = _pytz()
    if type(key) is int and -1440 < key < 1440:
        fixed: tzinfo = pytz.FixedOffset(key)
        return fixed
    # Only names of the form pytz writes: pytz.timezone reads a file named by its argument.
    if type(key) is str and _ZONE_NAME.fullmatch(key):
        zone: tzinfo = pytz.timezone(key)
        if getattr(zone, "zone", None) == key:  # pytz also accepts other spellings of a name
            return zone
    raise ValueError(f"bad pytz time zone {key!r:.60}")


def _pytz_key(tz: tzinfo) -> str | int | None:
    """What ``_pytz_zone`` rebuilds exactly ``tz`` from, or None if nothing does."""
    zone = getattr(tz, "zone", None)
    if zone is None:  # pytz.FixedOffset(minutes) has no name
        offset = tz.utcoffset(None)
        zone = offset // timedelta(minutes=1) if type(offset) is timedelta else None
    try:
        return zone if _pytz_zone(zone) is tz else None
    except (ValueError, KeyError):  # pytz.UnknownTimeZoneError is a KeyError
        return None


def _pytz_fields(tz: tzinfo) -> tuple[str | int]:
    key = _pytz_key(tz)
    if key is None:
        raise _Unstorable(tz, _PYTZ_OFFSET_ALONE)
    return (key,)


def _pytz_zone_of(owner: Any, tz: tzinfo) -> tzinfo:
    """The zone whose offset object ``tz`` is."""
    zone = getattr(tz, "zone", None)
    try:
        return tz if zone is None else _pytz_zone(zone)
    except (ValueError, KeyError):
        raise _Unstorable(owner, _PYTZ_OFFSET_ALONE) from None


def _pytz_local_fields(d: datetime) -> tuple[Any, ...]:
    zone = _pytz_zone_of(d, d.tzinfo)
    fields = (zone, d.utcoffset(), d.dst(), d.tzname())
    try:
        exact = _in_pytz_zone(d.replace(tzinfo=None), *fields).tzinfo is d.tzinfo
    except (ValueError, OverflowError):
        exact = False
    if not exact:
        raise _Unstorable(d, _PYTZ_OFFSET_MISMATCH)
    return fields


def _in_pytz_zone(wall: datetime, zone: Any, offset: Any, dst: Any, name: Any) -> datetime:
    """The naive ``wall`` time in pytz ``zone``, at the ``offset`` it was stored with."""
    if not _is_pytz(zone):
        raise ValueError(f"expected a pytz time zone, found {type(zone).__name__}")
    instant = (wall - _expect(offset, timedelta)).replace(tzinfo=timezone.utc)
    local = instant.astimezone(zone)  # pytz picks the object of the offset in force then
    if local.replace(tzinfo=None) != wall or (
        (local.utcoffset(), local.dst(), local.tzname()) != (offset, dst, name)
    ):
        raise ValueError("the pytz time zone does not give this wall time its stored offset")
    return local.replace(fold=wall.fold)


def _build_pytz(fields: list[Any]) -> tzinfo:
    return _pytz_zone(*fields)


_STDLIB_CODECS: list[tuple[int, type, Callable[[Any], Any], Callable[[list[Any]], Any], bool]] = [
    (_TUPLE, tuple, lambda t: t, tuple, True),
    (_SET, set, lambda s: s, set, True),
    (_FROZENSET, frozenset, lambda s: s, frozenset, True),
    (_BYTEARRAY, bytearray, lambda b: (bytes(b),), lambda f: bytearray(_expect(*f, bytes)), False),
    (_BIGINT, int, _int_to_bytes, _build_int, False),
    (_DECIMAL, Decimal, lambda d: (str(d),), lambda f: Decimal(_expect(*f, str)), False),
    (_UUID, uuid.UUID, _uuid_fields, _build_uuid, False),
    (_DATETIME, datetime, _datetime_fields, _build_datetime, False),
    (_DATE, date, lambda d: (d.year, d.month, d.day), lambda f: date(*f), False),
    (_TIME, time, _time_fields, _build_time, False),
    (_TIMEDELTA, timedelta, _timedelta_fields, lambda f: timedelta(*f), False),
    (_TIMEZONE, timezone, _timezone_fields, lambda f: timezone(*f), False),
    (_ZONEINFO, zoneinfo.ZoneInfo, _zoneinfo_fields, _build_zoneinfo, False),
]  # fmt: skip


# -- numpy ------------------------------------------------------------------------------------


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise SerializationError("the stored value holds numpy data; install numpy") from exc
    return numpy


def _numpy_encoder(cls: type) -> _Encoder | None:
    np = _numpy()
    if cls is np.ndarray:
        return _Encoder(_NDARRAY, _ndarray_fields)
    if issubclass(cls, np.generic):
        return _Encoder(_NUMPY_SCALAR, _numpy_scalar_fields)
    return None


def _ndarray_fields(array: Any) -> tuple[Any, ...]:
    fortran = array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous
    order = "F" if fortran else "C"
    return (_dtype_wire(array, array.dtype), list(array.shape), fortran, array.tobytes(order))


def _build_ndarray(fields: list[Any]) -> Any:
    np = _numpy()
    wire, shape, fortran, raw = fields
    dtype = _dtype_from_wire(np, wire)
    if (
        type(shape) is not list
        or len(shape) > 64
        or any(type(n) is not int or n < 0 for n in shape)
    ):
        raise ValueError(f"bad array shape {shape!r}")
    if math.prod(shape) * dtype.itemsize != len(_expect(raw, bytes)):
        raise ValueError("array data does not match its shape and dtype")
    return _array_from_bytes(np, raw, dtype, shape, "F" if _expect(fortran, bool) else "C")


def _array_from_bytes(np: Any, raw: bytes, dtype: Any, shape: Any, order: str) -> Any:
    # Byte for byte, so padding inside structured items comes back as it was written.
    array = np.empty(shape, dtype, order=order)
    array.ravel(order="K").view(np.uint8)[:] = np.frombuffer(raw, np.uint8)
    return array


def _numpy_scalar_fields(scalar: Any) -> tuple[Any, bytes]:
    return (_dtype_wire(scalar, scalar.dtype), scalar.tobytes())


def _build_numpy_scalar(fields: list[Any]) -> Any:
    np = _numpy()
    wire, raw = fields
    dtype = _dtype_from_wire(np, wire)
    if len(_expect(raw, bytes)) != dtype.itemsize:
        raise ValueError("scalar data does not match its dtype")
    return _array_from_bytes(np, raw, dtype, (), "C")[()]


_NUMPY_KINDS = frozenset("biufcmMSUV")


def _dtype_wire(owner: Any, dtype: Any) -> Any:
    try:
        # dtype equality ignores the type code ('q' == 'l') and alignment, so both are in the key.
        return _cached_dtype_wire(dtype, dtype.char, dtype.isalignedstruct)
    except ValueError as exc:
        raise _Unstorable(owner, str(exc)) from None


@functools.lru_cache(maxsize=512)
def _cached_dtype_wire(dtype: Any, char: str, aligned: bool) -> Any:
    if dtype.hasobject or dtype.kind not in _NUMPY_KINDS:
        raise ValueError(f"numpy dtype {dtype} holds Python objects or is not a built-in dtype")
    if dtype.metadata or dtype.itemsize == 0:
        raise ValueError(f"numpy dtype {dtype} has metadata or zero size, which is not stored")
    wire = _dtype_to_wire(dtype)
    back = _dtype_from_wire(_numpy(), wire)
    if back != dtype or back.type is not dtype.type or back.isalignedstruct != aligned:
        raise ValueError(f"numpy dtype {dtype!r} cannot be stored exactly")
    return wire


def _dtype_to_wire(dtype: Any) -> Any:
    if dtype.fields is not None:
        names = list(dtype.names)
        entries = [dtype.fields[name] for name in names]
        return {
            "names": names,
            "formats": [_dtype_to_wire(entry[0]) for entry in entries],
            "offsets": [entry[1] for entry in entries],
            "titles": [entry[2] if len(entry) > 2 else None for entry in entries],
            "itemsize": dtype.itemsize,
            "aligned": dtype.isalignedstruct,
        }
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return [_dtype_to_wire(base), list(shape)]
    # '<i8' names int64; a 'q' (longlong) dtype with the same layout needs its type code.
    return dtype.str if _numpy().dtype(dtype.str).type is dtype.type else dtype.str[0] + dtype.char


#: byte order, type character, item size, datetime unit: '<i8', '|b1', '<M8[ns]', '<U5', '<q'.
#: A unit's multiple is never 0: numpy accepts '<M8[0s]', but pandas 2 dies dividing by it.
_SIMPLE_DTYPE = re.compile(r"[<>|=][A-Za-z?][0-9]{0,6}(\[([1-9][0-9]{0,5})?[A-Za-z]{1,3}\])?")


def _dtype_from_wire(np: Any, wire: Any) -> Any:
    kind = type(wire)
    if kind is str:
        # Only the forms _dtype_to_wire writes: numpy parses other strings with a Python parser,
        # which hostile stored text should never reach.
        if not _SIMPLE_DTYPE.fullmatch(wire):
            raise ValueError(f"bad numpy dtype {wire[:40]!r}")
        dtype = np.dtype(wire)
    elif kind is list:
        base, shape = wire
        dtype = np.dtype((_dtype_from_wire(np, base), tuple(_expect(shape, list))))
    elif kind is dict:
        spec = {key: wire[key] for key in ("names", "offsets", "titles", "itemsize")}
        spec["formats"] = [_dtype_from_wire(np, item) for item in _expect(wire["formats"], list)]
        dtype = np.dtype(spec, align=_expect(wire["aligned"], bool))
    else:
        raise ValueError(f"bad numpy dtype {wire!r}")
    if dtype.hasobject or dtype.itemsize == 0:
        raise ValueError(f"numpy dtype {dtype} is not allowed in stored data")
    return dtype


# -- pandas -----------------------------------------------------------------------------------


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise SerializationError("the stored value holds pandas data; install pandas") from exc
    return pandas


def _pandas_encoder(cls: type) -> _Encoder | None:
    pd = _pandas()
    if cls in (pd.Index, pd.DatetimeIndex, pd.TimedeltaIndex, pd.CategoricalIndex):
        return _Encoder(_PD_INDEX, _index_fields, holds_values=True)
    if cls is pd.RangeIndex:
        return _Encoder(_PD_RANGE_INDEX, _range_index_fields, holds_values=True)
    if cls is pd.MultiIndex:
        return _Encoder(_PD_MULTI_INDEX, _multi_index_fields, holds_values=True)
    if cls is pd.Series:
        return _Encoder(_PD_SERIES, _series_fields, holds_values=True)
    if cls is pd.DataFrame:
        return _Encoder(_PD_FRAME, _frame_fields, holds_values=True)
    if issubclass(cls, pd.api.extensions.ExtensionArray):
        return _Encoder(_PD_ARRAY, _pandas_array_fields, holds_values=True)
    if cls in (pd.Timestamp, pd.Timedelta, type(pd.NA), type(pd.NaT)):
        return _Encoder(_PD_SCALAR, _pandas_scalar_fields)
    return None


def _pandas_scalar_fields(value: Any) -> tuple[Any, ...]:
    pd = _pandas()
    if value is pd.NA or value is pd.NaT:
        return ("NA" if value is pd.NA else "NaT",)
    if type(value) is pd.Timedelta:
        return ("Timedelta", value.asm8)
    return ("Timestamp", value.asm8, _timestamp_zone(value))  # asm8 is in UTC


def _timestamp_zone(stamp: Any) -> tzinfo | None:
    tz = stamp.tz
    if not _is_pytz(tz):
        return _storable_tz(stamp, tz)
    # pandas gives a stamp the object of the offset in force, and converting to the zone picks
    # it again, unless the stamp was made from a datetime that carried another offset's object.
    zone = _pytz_zone_of(stamp, tz)
    if stamp.tz_convert(zone).tzinfo is not tz:
        raise _Unstorable(stamp, _PYTZ_OFFSET_MISMATCH)
    return _storable_tz(stamp, zone)


def _build_pandas_scalar(fields: list[Any]) -> Any:
    pd, np = _pandas(), _numpy()
    kind, *rest = fields
    if kind == "NA" or kind == "NaT":
        return pd.NA if kind == "NA" else pd.NaT
    if kind == "Timedelta":
        return pd.Timedelta(_expect(*rest, np.timedelta64))
    value, tz = rest
    stamp = pd.Timestamp(_expect(value, np.datetime64))
    return stamp.tz_localize("UTC").tz_convert(tz) if _expect_tz(tz) else stamp


_MASKED_DTYPES = frozenset(
    {"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"}
    | {"Float32", "Float64", "boolean"}
)


def _array_kind(pd: Any, array: Any) -> str | None:
    """Which of the stored layouts fits a pandas array, or None if none does exactly."""
    dtype = array.dtype
    if type(array) is pd.arrays.NumpyExtensionArray:  # StringArray subclasses it
        return "object" if dtype.numpy_dtype.kind == "O" else "numpy"
    if isinstance(array, pd.arrays.DatetimeArray):
        return "datetime"
    if isinstance(array, pd.arrays.TimedeltaArray):
        return "timedelta"
    if isinstance(array, pd.Categorical):
        return "categorical"
    if dtype.name in _MASKED_DTYPES and type(array) is dtype.construct_array_type():
        return "masked"
    if isinstance(dtype, pd.StringDtype) and type(array) is dtype.construct_array_type():
        return "string"
    return None


def _storable_array(owner: Any, array: Any, what: str) -> Any:
    kind = _array_kind(_pandas(), array)
    if kind is None:
        raise _Unstorable(owner, f"{what} has dtype {array.dtype}, which cannot be stored exactly")
    if kind == "datetime":
        _storable_tz(owner, array.tz)
    return array


def _pandas_array_fields(array: Any) -> tuple[Any, ...]:
    pd = _pandas()
    kind = _array_kind(pd, array)
    if kind == "numpy" or kind == "timedelta":
        return (kind, array.to_numpy())
    if kind == "object":
        return (kind, array.to_numpy().tolist())
    if kind == "datetime":
        tz = _storable_tz(array, array.tz)
        return (kind, array.tz_convert(None).to_numpy() if tz else array.to_numpy(), tz)
    if kind == "categorical":
        return (kind, array.categories, array.codes, array.ordered)
    if kind == "masked":
        numpy_dtype = array.dtype.numpy_dtype
        values = array.to_numpy(numpy_dtype, na_value=numpy_dtype.type(0))
        return (kind, array.dtype.name, values, array.isna())
    if kind == "string":
        nan_missing = array.dtype.na_value is not pd.NA
        items = array.to_numpy(object, na_value=None).tolist()
        return (kind, array.dtype.storage, nan_missing, items)
    raise _Unstorable(array, f"pandas arrays of dtype {array.dtype} cannot be stored exactly")


def _build_pandas_array(fields: list[Any]) -> Any:
    pd, np = _pandas(), _numpy()
    kind, *rest = fields
    if kind == "numpy":
        return pd.arrays.NumpyExtensionArray(_expect(*rest, np.ndarray))
    if kind == "object":
        return pd.arrays.NumpyExtensionArray(_object_array(np, *rest))
    if kind == "timedelta":
        return pd.array(_expect(*rest, np.ndarray))
    if kind == "datetime":
        values, tz = rest
        array = pd.array(_expect(values, np.ndarray))
        return array.tz_localize("UTC").tz_convert(tz) if _expect_tz(tz) else array
    if kind == "categorical":
        categories, codes, ordered = rest
        dtype = pd.CategoricalDtype(_expect_index(pd, categories), ordered=_expect(ordered, bool))
        return pd.Categorical.from_codes(_expect(codes, np.ndarray), dtype=dtype)
    if kind == "masked":
        name, values, mask = rest
        if name not in _MASKED_DTYPES:
            raise ValueError(f"bad masked dtype {name!r}")
        array_type = pd.api.types.pandas_dtype(name).construct_array_type()
        return array_type(_expect(values, np.ndarray), _expect(mask, np.ndarray))
    if kind == "string":
        storage, nan_missing, items = rest
        dtype = pd.StringDtype(storage, na_value=np.nan if nan_missing else pd.NA)
        return pd.array(_expect(items, list), dtype=dtype)
    raise ValueError(f"bad pandas array kind {kind!r}")


def _object_array(np: Any, items: Any) -> Any:
    # fromiter keeps each item whole; np.array would unpack tuples into a second dimension.
    return np.fromiter(_expect(items, list), dtype=object, count=len(items))


def _expect_index(pd: Any, value: Any) -> Any:
    if not isinstance(value, pd.Index):
        raise ValueError(f"expected a pandas Index, found {type(value).__name__}")
    return value


def _column_data(pd: Any, array: Any) -> tuple[Any, Any]:
    """Data and dtype to build a Series or Index from, so pandas infers nothing."""
    if type(array) is pd.arrays.NumpyExtensionArray:
        values = array.to_numpy()
        return values, values.dtype
    if not isinstance(array, pd.api.extensions.ExtensionArray):
        raise ValueError(f"expected a pandas array, found {type(array).__name__}")
    return array, array.dtype


def _index_fields(index: Any) -> tuple[Any, ...]:
    freq = getattr(index, "freq", None)
    if freq is not None and _pandas().tseries.frequencies.to_offset(freq.freqstr) != freq:
        raise _Unstorable(index, f"its freq {freq!r} cannot be stored exactly")
    array = _storable_array(index, index.array, "the index")
    return (array, index.name, None if freq is None else freq.freqstr)


def _build_index(fields: list[Any]) -> Any:
    pd = _pandas()
    array, name, freq = fields
    data, dtype = _column_data(pd, array)
    index = pd.Index(data, dtype=dtype, name=name, copy=False)
    return index if freq is None else type(index)(index, freq=_expect(freq, str), name=name)


def _range_index_fields(index: Any) -> tuple[Any, ...]:
    return (index.start, index.stop, index.step, index.name)


def _build_range_index(fields: list[Any]) -> Any:
    start, stop, step, name = fields
    return _pandas().RangeIndex(
        _expect(start, int), _expect(stop, int), _expect(step, int), name=name
    )


def _multi_index_fields(index: Any) -> tuple[Any, ...]:
    return (list(index.levels), list(index.codes), list(index.names), index.sortorder)


def _build_multi_index(fields: list[Any]) -> Any:
    levels, codes, names, sortorder = fields
    return _pandas().MultiIndex(levels=levels, codes=codes, names=names, sortorder=sortorder)


def _series_fields(series: Any) -> tuple[Any, ...]:
    array = _storable_array(series, series.array, "the series")
    flags = series.flags.allows_duplicate_labels
    return (array, series.index, series.name, series.attrs, flags)


def _build_series(fields: list[Any]) -> Any:
    pd = _pandas()
    array, index, name, attrs, allows_duplicates = fields
    data, dtype = _column_data(pd, array)
    series = pd.Series(data, index=_expect_index(pd, index), name=name, dtype=dtype, copy=False)
    return _with_attrs_and_flags(series, attrs, allows_duplicates)


def _frame_fields(frame: Any) -> tuple[Any, ...]:
    arrays = [
        _storable_array(frame, column.array, f"column {_short_repr(label)}")
        for label, column in frame.items()
    ]
    flags = frame.flags.allows_duplicate_labels
    return (arrays, frame.index, frame.columns, frame.attrs, flags)


def _build_frame(fields: list[Any]) -> Any:
    pd = _pandas()
    arrays, index, columns, attrs, allows_duplicates = fields
    # Build on a plain 0..n-1 index so nothing aligns, then put the real axes in place.
    positions = pd.RangeIndex(len(_expect_index(pd, index)))
    series = {}
    for i, array in enumerate(_expect(arrays, list)):
        data, dtype = _column_data(pd, array)
        series[i] = pd.Series(data, index=positions, dtype=dtype, copy=False)
    frame = pd.DataFrame(series, index=positions, copy=False)
    frame.index = index
    frame.columns = _expect_index(pd, columns)
    return _with_attrs_and_flags(frame, attrs, allows_duplicates)


def _with_attrs_and_flags(obj: Any, attrs: Any, allows_duplicates: Any) -> Any:
    obj.attrs = _expect(attrs, dict)
    obj.flags.allows_duplicate_labels = _expect(allows_duplicates, bool)
    return obj


# -- tables -----------------------------------------------------------------------------------

_STDLIB_ENCODERS: dict[type, _Encoder] = {
    cls: _Encoder(tag, fields, holds_values) for tag, cls, fields, _, holds_values in _STDLIB_CODECS
}
_LIBRARY_BUILDERS: dict[int, _Builder] = {
    **{tag: _Builder(build) for tag, _, _, build, _ in _STDLIB_CODECS},
    _NDARRAY: _Builder(_build_ndarray),
    _NUMPY_SCALAR: _Builder(_build_numpy_scalar),
    _PD_ARRAY: _Builder(_build_pandas_array),
    _PD_INDEX: _Builder(_build_index),
    _PD_RANGE_INDEX: _Builder(_build_range_index),
    _PD_MULTI_INDEX: _Builder(_build_multi_index),
    _PD_SERIES: _Builder(_build_series),
    _PD_FRAME: _Builder(_build_frame),
    _PD_SCALAR: _Builder(_build_pandas_scalar),
    _PYTZ: _Builder(_build_pytz),
}
