"""Exact, stable cache keys: a function's identity plus a canonical encoding of its arguments."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import functools
import hashlib
import inspect
import io
import os
import reprlib
import struct
import sys
import types
import uuid
import zoneinfo
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path, PosixPath, PurePosixPath, PureWindowsPath, WindowsPath
from typing import Any

from beautyspot.errors import CacheKeyError, ConfigurationError

__all__ = ["KeyGen", "KeyPlan", "cache_key", "canonical_bytes", "function_id", "input_id"]

# 16-byte digests: an accidental collision among a billion records has odds below 1e-20, and
# keys stay short in every backend. The personalisation strings version the key format: a
# change of encoding changes them, so old and new keys can never meet.
_DIGEST_SIZE = 16
_INPUT_PERSON = b"beautyspot.in.1"
_KEY_PERSON = b"beautyspot.key.1"
_FILE_PERSON = b"beautyspot.file"
# Keys are hashed on every call: copying a hasher personalised once costs half of building one.
_INPUT_HASHER = hashlib.blake2b(digest_size=_DIGEST_SIZE, person=_INPUT_PERSON)
_KEY_HASHER = hashlib.blake2b(digest_size=_DIGEST_SIZE, person=_KEY_PERSON)
# Large byte strings and array data enter the encoding as a 32-byte digest instead of a copy.
_INLINE_LIMIT = 1024
_BLOB_PERSON = b"beautyspot.blob"
_CHUNK_SIZE = 1 << 20

# One-byte tags of the core types; every other type is an _OBJECT tag plus a kind name.
_NONE, _TRUE, _FALSE, _INT, _FLOAT = b"N", b"T", b"F", b"i", b"f"
_STR, _BYTES, _BYTEARRAY = b"s", b"b", b"a"
_LIST, _TUPLE, _DICT, _SET, _FROZENSET = b"l", b"t", b"d", b"e", b"z"
_OBJECT = b"o"

_length = struct.Struct(">Q").pack
_double = struct.Struct(">d").pack
_CANONICAL_NAN = _FLOAT + _double(float("nan"))


# -- function identity ------------------------------------------------------------------------


def function_id(func: Callable[..., Any]) -> str:
    """``module.qualname`` of the undecorated ``func``; a script and its import agree.

    >>> import json
    >>> function_id(json.dumps)
    'json.dumps'
    """
    target = inspect.unwrap(func)
    if not hasattr(target, "__qualname__") or not hasattr(target, "__module__"):
        raise ConfigurationError(
            f"cannot name {func!r}: it has no __module__/__qualname__; "
            "mark a function defined with def"
        )
    return _qualified_name(target)


def _qualified_name(obj: Any) -> str:
    module = obj.__module__
    if module in _MAIN_NAMES:
        module = _main_module_name()
    return f"{module}.{obj.__qualname__}"


# A process started by multiprocessing's "spawn" (or "forkserver") runs the parent's script
# again as __mp_main__: its functions must keep the keys they have in the parent.
_MAIN_NAMES = ("__main__", "__mp_main__")


def _main_module_name() -> str:
    """The name ``__main__`` would have if it were imported instead of run."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:  # python -m pkg.mod
        return spec.name
    path = getattr(main, "__file__", None)
    return _module_name_of_file(path) if path else "__main__"  # REPL, -c, notebooks


@functools.lru_cache(maxsize=8)
def _module_name_of_file(path: str) -> str:
    file = Path(path).resolve()
    parts = [file.stem]
    folder = file.parent
    while (folder / "__init__.py").is_file():
        parts.append(folder.name)
        folder = folder.parent
    return ".".join(reversed(parts))


# -- canonical encoding -----------------------------------------------------------------------


class _Unkeyable(Exception):
    """A value deep inside an argument has no faithful encoding; gathers where it sits."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.where: list[str] = []  # innermost first, as the error climbs out

    @property
    def path(self) -> str:
        return "".join(reversed(self.where))


Encoder = Callable[[Any, set[int]], bytes]


def _encode(value: Any, active: set[int]) -> bytes:
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        return _encode_other(value, active)
    return encoder(value, active)


def _encode_at(value: Any, segment: str, active: set[int]) -> bytes:
    try:
        return _encode(value, active)
    except _Unkeyable as exc:
        exc.where.append(segment)
        raise


def _object(kind: str, *parts: bytes) -> bytes:
    # The kind is an encoded str, so it is self-delimiting; each kind has a fixed part count.
    return b"".join((_OBJECT, _encode_str(kind), *parts))


def _payload(data: bytes | bytearray | memoryview) -> bytes:
    size = len(data)
    if size <= _INLINE_LIMIT:
        return _length(size) + data
    return _length(size) + hashlib.blake2b(data, digest_size=32, person=_BLOB_PERSON).digest()


def _guard_cycles(encoder: Encoder) -> Encoder:
    """Refuse a container that (indirectly) contains itself instead of recursing forever."""

    @functools.wraps(encoder)
    def guarded(value: Any, active: set[int]) -> bytes:
        key = id(value)  # only compared while the value is alive on the stack
        if key in active:
            raise _Unkeyable("contains itself (a reference cycle)")
        active.add(key)
        try:
            return encoder(value, active)
        finally:
            active.discard(key)

    return guarded


def _brief(value: Any) -> str:
    return reprlib.repr(value)  # error messages only, never keys


# Scalars ---------------------------------------------------------------------------------------


def _encode_none(value: None, active: set[int]) -> bytes:
    return _NONE


def _encode_bool(value: bool, active: set[int]) -> bytes:
    return _TRUE if value else _FALSE


def _encode_int(value: int, active: set[int] | None = None) -> bytes:
    data = value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
    return _INT + _length(len(data)) + data


def _encode_float(value: float, active: set[int] | None = None) -> bytes:
    if value != value:  # every NaN is the same input
        return _CANONICAL_NAN
    return _FLOAT + _double(value)


def _encode_str(value: str, active: set[int] | None = None) -> bytes:
    # surrogatepass keeps lone surrogates distinct instead of failing
    return _STR + _payload(value.encode("utf-8", "surrogatepass"))


def _encode_bytes(value: bytes, active: set[int]) -> bytes:
    return _BYTES + _payload(value)


def _encode_bytearray(value: bytearray, active: set[int]) -> bytes:
    return _BYTEARRAY + _payload(value)


def _encode_complex(value: complex, active: set[int]) -> bytes:
    return _object("complex", _encode_float(value.real), _encode_float(value.imag))


def _encode_range(value: range, active: set[int]) -> bytes:
    return _object("range", *(_encode_int(n) for n in (value.start, value.stop, value.step)))


# Containers ------------------------------------------------------------------------------------


def _sequence(items: Iterable[Any], count: int, active: set[int]) -> bytes:
    parts = [_length(count)]
    for index, item in enumerate(items):
        try:
            parts.append(_encode(item, active))
        except _Unkeyable as exc:
            exc.where.append(f"[{index}]")
            raise
    return b"".join(parts)


def _unordered(items: Iterable[Any], count: int, active: set[int]) -> bytes:
    # Sorting the encodings (not the values) makes any iteration order give the same bytes.
    entries = []
    for item in items:
        try:
            entries.append(_encode(item, active))
        except _Unkeyable as exc:
            exc.where.append("{<element>}")
            raise
    entries.sort()
    return _length(count) + b"".join(entries)


def _entries(mapping: Mapping[Any, Any], active: set[int]) -> list[bytes]:
    entries = []
    for key, item in mapping.items():
        try:
            encoded_key = _encode(key, active)
        except _Unkeyable as exc:
            exc.where.append("[<key>]")
            raise
        try:
            encoded_item = _encode(item, active)
        except _Unkeyable as exc:
            exc.where.append(f"[{_brief(key)}]")  # only now: a repr per key would cost more
            raise
        entries.append(encoded_key + encoded_item)
    return entries


def _mapping(mapping: Mapping[Any, Any], active: set[int]) -> bytes:
    entries = _entries(mapping, active)
    entries.sort()  # as in _unordered: insertion order must not matter
    return _length(len(entries)) + b"".join(entries)


def _ordered_mapping(mapping: Mapping[Any, Any], active: set[int]) -> bytes:
    return _length(len(mapping)) + b"".join(_entries(mapping, active))


@_guard_cycles
def _encode_list(value: list[Any], active: set[int]) -> bytes:
    return _LIST + _sequence(value, len(value), active)


def _encode_tuple(value: tuple[Any, ...], active: set[int]) -> bytes:
    # Not guarded: a cycle through a tuple must pass through a guarded mutable container.
    return _TUPLE + _sequence(value, len(value), active)


@_guard_cycles
def _encode_dict(value: dict[Any, Any], active: set[int]) -> bytes:
    return _DICT + _mapping(value, active)


@_guard_cycles
def _encode_set(value: set[Any], active: set[int]) -> bytes:
    return _SET + _unordered(value, len(value), active)


def _encode_frozenset(value: frozenset[Any], active: set[int]) -> bytes:
    return _FROZENSET + _unordered(value, len(value), active)


@_guard_cycles
def _encode_ordered_dict(value: collections.OrderedDict[Any, Any], active: set[int]) -> bytes:
    # Order is what an OrderedDict adds to a dict (its == compares it), so it is kept.
    return _object("collections.OrderedDict", _ordered_mapping(value, active))


@_guard_cycles
def _encode_defaultdict(value: collections.defaultdict[Any, Any], active: set[int]) -> bytes:
    factory = _encode_at(value.default_factory, ".default_factory", active)
    return _object("collections.defaultdict", factory, _mapping(value, active))


@_guard_cycles
def _encode_counter(value: collections.Counter[Any], active: set[int]) -> bytes:
    return _object("collections.Counter", _mapping(value, active))


@_guard_cycles
def _encode_deque(value: collections.deque[Any], active: set[int]) -> bytes:
    maxlen = _encode(value.maxlen, active)
    return _object("collections.deque", maxlen, _sequence(value, len(value), active))


# Standard-library values -----------------------------------------------------------------------


def _encode_datetime(value: dt.datetime, active: set[int]) -> bytes:
    fields = (value.year, value.month, value.day, value.hour, value.minute, value.second)
    return _object(
        "datetime.datetime",
        _encode((*fields, value.microsecond, value.fold), active),
        _encode_at(value.tzinfo, ".tzinfo", active),
    )


def _encode_date(value: dt.date, active: set[int]) -> bytes:
    return _object("datetime.date", _encode((value.year, value.month, value.day), active))


def _encode_time(value: dt.time, active: set[int]) -> bytes:
    fields = (value.hour, value.minute, value.second, value.microsecond, value.fold)
    return _object(
        "datetime.time", _encode(fields, active), _encode_at(value.tzinfo, ".tzinfo", active)
    )


def _encode_timedelta(value: dt.timedelta, active: set[int]) -> bytes:
    fields = (value.days, value.seconds, value.microseconds)
    return _object("datetime.timedelta", _encode(fields, active))


def _encode_timezone(value: dt.timezone, active: set[int]) -> bytes:
    offset = _encode_timedelta(value.utcoffset(None), active)
    return _object("datetime.timezone", offset, _encode_str(value.tzname(None)))


def _encode_zoneinfo(value: zoneinfo.ZoneInfo, active: set[int]) -> bytes:
    if value.key is None:
        raise _Unkeyable("is a ZoneInfo read from a file, without a zone name to key on")
    return _object("zoneinfo.ZoneInfo", _encode_str(value.key))


def _encode_decimal(value: Decimal, active: set[int]) -> bytes:
    return _object("decimal.Decimal", _encode_str(str(value)))  # exact: keeps 1.0 != 1.00


def _encode_uuid(value: uuid.UUID, active: set[int]) -> bytes:
    return _object("uuid.UUID", _encode_bytes(value.bytes, active))


def _encode_path(value: PurePosixPath | PureWindowsPath, active: set[int]) -> bytes:
    # By class name, not __module__: pathlib's classes moved to pathlib._local in 3.13.
    return _object(f"pathlib.{type(value).__name__}", _encode_str(str(value)))


_ENCODERS: dict[type, Encoder] = {
    type(None): _encode_none,
    bool: _encode_bool,
    int: _encode_int,
    float: _encode_float,
    str: _encode_str,
    bytes: _encode_bytes,
    bytearray: _encode_bytearray,
    complex: _encode_complex,
    range: _encode_range,
    list: _encode_list,
    tuple: _encode_tuple,
    dict: _encode_dict,
    set: _encode_set,
    frozenset: _encode_frozenset,
    collections.OrderedDict: _encode_ordered_dict,
    collections.defaultdict: _encode_defaultdict,
    collections.Counter: _encode_counter,
    collections.deque: _encode_deque,
    dt.datetime: _encode_datetime,
    dt.date: _encode_date,
    dt.time: _encode_time,
    dt.timedelta: _encode_timedelta,
    dt.timezone: _encode_timezone,
    zoneinfo.ZoneInfo: _encode_zoneinfo,
    Decimal: _encode_decimal,
    uuid.UUID: _encode_uuid,
    PurePosixPath: _encode_path,
    PureWindowsPath: _encode_path,
    PosixPath: _encode_path,
    WindowsPath: _encode_path,
}


# Types known by shape rather than exact class -------------------------------------------------


def _encode_other(value: Any, active: set[int]) -> bytes:
    cls = type(value)
    if isinstance(value, type):
        return _object("type", _encode_str(_qualified_name(value)))
    if _belongs_to(cls, "numpy"):
        return _encode_numpy(value, active)
    if _belongs_to(cls, "pandas"):
        return _encode_pandas(value, active)
    if _belongs_to(cls, "pytz") and isinstance(value, dt.tzinfo):
        return _encode_pytz(value, active)
    if isinstance(value, enum.Enum):
        value_bytes = _encode_at(value.value, ".value", active)
        return _object("enum", _encode_str(_qualified_name(cls)), value_bytes)
    if dataclasses.is_dataclass(value):
        return _encode_dataclass(value, active)
    if callable(getattr(value, "model_dump", None)):
        return _encode_model(value, active)
    if isinstance(value, tuple) and hasattr(cls, "_fields"):  # a namedtuple
        fields = _sequence(value, len(value), active)
        return _object("namedtuple", _encode_str(_qualified_name(cls)), fields)
    raise _Unkeyable(_describe(value))


def _belongs_to(cls: type, package: str) -> bool:
    module = cls.__module__
    return module == package or module.startswith(package + ".")


@_guard_cycles
def _encode_dataclass(value: Any, active: set[int]) -> bytes:
    fields = [
        _encode_str(field.name) + _encode_at(getattr(value, field.name), f".{field.name}", active)
        for field in dataclasses.fields(value)
    ]
    kind = _encode_str(_qualified_name(type(value)))
    return _object("dataclass", kind, _length(len(fields)), *fields)


@_guard_cycles
def _encode_model(value: Any, active: set[int]) -> bytes:
    dumped = _encode_at(value.model_dump(), ".model_dump()", active)
    return _object("model", _encode_str(_qualified_name(type(value))), dumped)


_BUILTIN_BASES = (int, float, complex, str, bytes, bytearray, list, tuple, dict, set, frozenset)


def _describe(value: Any) -> str:
    """Why ``value`` has no faithful key, phrased to follow the argument's name."""
    cls = type(value)
    name = _qualified_name(cls)
    if isinstance(value, functools.partial) or (callable(value) and hasattr(value, "__qualname__")):
        label = getattr(value, "__qualname__", name)
        return f"is a function ({label}); code has no value a key could capture"
    if isinstance(value, io.IOBase):
        return f"is an open file or stream ({name})"
    if isinstance(value, (Iterator, AsyncIterator, types.CoroutineType)):
        return f"is an iterator or generator ({name}); its values exist only once consumed"
    for base in _BUILTIN_BASES:
        if isinstance(value, base):
            return (
                f"is a {name}, a subclass of {base.__name__} whose extra state beautyspot "
                f"cannot see; pass a plain {base.__name__}"
            )
    if cls.__eq__ is object.__eq__:
        return f"is a {name} object whose only identity is its address ({name} defines no __eq__)"
    return f"is a {name} object, a type beautyspot cannot encode exactly"


# pytz, numpy and pandas, recognised by module name so none is imported here ---------------------


def _encode_pytz(value: dt.tzinfo, active: set[int]) -> bytes:
    """A pytz time zone by name, as a ZoneInfo is keyed by its key.

    pytz objects have no ``__eq__``, but pytz keeps one object per zone name, and one more per
    offset the zone ever used: a localized datetime carries the latter, which is keyed by its
    zone plus the offset, DST and abbreviation it stands for.
    """
    zone = getattr(value, "zone", None)
    if zone is not None and _is_pytz_zone(zone, value):
        return _object("pytz.zone", _encode_str(zone))
    # pytz tells an instance's own offset only for a datetime that carries that instance.
    probe = dt.datetime(2000, 1, 1, tzinfo=value)
    if zone is None:  # pytz.FixedOffset(minutes)
        return _object("pytz.FixedOffset", _encode(probe.utcoffset(), active))
    fields = (zone, probe.utcoffset(), probe.dst(), probe.tzname())
    return _object("pytz.zone-offset", _encode(fields, active))


def _is_pytz_zone(zone: Any, value: dt.tzinfo) -> bool:
    """True if ``value`` is the object ``pytz.timezone(zone)`` returns."""
    try:
        return isinstance(zone, str) and sys.modules["pytz"].timezone(zone) is value
    except KeyError:  # pytz.UnknownTimeZoneError
        return False


def _encode_numpy(value: Any, active: set[int]) -> bytes:
    np = sys.modules["numpy"]
    cls = type(value)
    if cls is np.ndarray or cls is np.memmap:  # a memmap is keyed by its values, like an array
        return _encode_ndarray(value, active)
    if isinstance(value, np.generic):  # np.int64(1) != 1: the dtype travels with the bytes
        return _object("numpy.scalar", _encode_dtype(value.dtype), _payload(value.tobytes()))
    if isinstance(value, np.dtype):
        return _object("numpy.dtype", _encode_dtype(value))
    raise _Unkeyable(_describe(value))


def _encode_dtype(dtype: Any) -> bytes:
    # dtype.str names a plain dtype exactly ('<i8', '<M8[ns]', '<U5'); structured ones need descr.
    return _encode(dtype.str if dtype.fields is None else dtype.descr, set())


@_guard_cycles
def _encode_ndarray(array: Any, active: set[int]) -> bytes:
    np = sys.modules["numpy"]
    head = _encode_dtype(array.dtype) + _encode(array.shape, active)
    if array.dtype.kind == "O":
        elements = array.ravel().tolist()
        try:
            body = _sequence(elements, len(elements), active)
        except _Unkeyable as exc:
            exc.where.append(".flat")
            raise
        return _object("numpy.ndarray", head, body)
    if array.dtype.hasobject:
        raise _Unkeyable("is a structured numpy array with object fields; pass input_key_fn=")
    # C-contiguous data is hashed in place; only a strided view pays for a contiguous copy.
    data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return _object("numpy.ndarray", head, _payload(memoryview(data)))


def _encode_pandas(value: Any, active: set[int]) -> bytes:
    pd = sys.modules["pandas"]
    cls = type(value)
    if cls is pd.DataFrame:
        columns = [
            _pandas_values_at(value.iloc[:, position], f"[{_brief(label)}]", active)
            for position, label in enumerate(value.columns)
        ]
        return _object(
            "pandas.DataFrame",
            _encode_at(value.columns, ".columns", active),
            _encode_at(value.index, ".index", active),
            *columns,
        )
    if cls is pd.Series:
        return _object(
            "pandas.Series",
            _encode_at(value.name, ".name", active),
            _encode_at(value.index, ".index", active),
            _pandas_values_at(value, ".values", active),
        )
    if isinstance(value, pd.Index):
        names = _encode_at(tuple(value.names), ".names", active)
        return _object("pandas.Index", names, _pandas_values_at(value, ".values", active))
    if value is pd.NaT or value is pd.NA:
        return _object("pandas.NaT" if value is pd.NaT else "pandas.NA")
    if cls is pd.Timestamp:
        tz = _encode_at(value.tzinfo, ".tzinfo", active)
        return _object("pandas.Timestamp", _encode_numpy(value.asm8, active), tz)
    if cls is pd.Timedelta:
        return _object("pandas.Timedelta", _encode_numpy(value.asm8, active))
    raise _Unkeyable(_describe(value))


def _pandas_values_at(obj: Any, segment: str, active: set[int]) -> bytes:
    """The values of a Series or Index, with their dtype, exactly."""
    np, pd = sys.modules["numpy"], sys.modules["pandas"]
    try:
        dtype = obj.dtype
        if isinstance(dtype, np.dtype):
            return _encode_ndarray(obj.to_numpy(), active)
        if isinstance(dtype, pd.DatetimeTZDtype):
            # The zone's own key, not the dtype's name: that is the same for a pytz zone, a
            # ZoneInfo and a fixed offset named like the zone, even when there are no values.
            zone = _encode_at(dtype.tz, ".dtype.tz", active)
            utc = _encode_ndarray(obj.array.tz_convert(None).to_numpy(), active)
            return _object("pandas.DatetimeTZ", zone, utc)
        if isinstance(dtype, pd.CategoricalDtype):
            codes = _encode_ndarray(obj.array.codes, active)
            order = _encode_bool(dtype.ordered, active)
            return _object("pandas.Categorical", _encode(dtype.categories, active), order, codes)
        # Other extension dtypes (nullable ints, strings, ...) go element by element.
        elements = _encode_ndarray(np.asarray(obj.array, dtype=object), active)
        return _object("pandas.ExtensionArray", _encode_str(str(dtype)), elements)
    except _Unkeyable as exc:
        exc.where.append(segment)
        raise


# -- public keys ------------------------------------------------------------------------------


def canonical_bytes(value: Any) -> bytes:
    """The canonical, type-tagged encoding of ``value``: equal inputs, equal bytes.

    Byte strings and array data over 1 KiB appear as a digest of their bytes, so keying a large
    array neither copies it nor builds a large buffer.

    >>> canonical_bytes(1) == canonical_bytes(1.0)
    False
    >>> canonical_bytes({"a": 1, "b": 2}) == canonical_bytes({"b": 2, "a": 1})
    True
    """
    try:
        return _encode(value, set())
    except _Unkeyable as exc:
        where = f" (at value{exc.path})" if exc.path else ""
        raise CacheKeyError(
            f"the value{where} {exc.reason}; leave it out of the key or compute the key "
            "yourself with input_key_fn="
        ) from None
    except RecursionError:
        raise CacheKeyError(
            "the value is nested too deeply to encode; compute the key with input_key_fn="
        ) from None


def input_id(arguments: Mapping[str, Any]) -> str:
    """Hex digest of a call's bound arguments (name -> value), whatever their order.

    Any mapping with the same items gives the same id (a dict, BoundArguments.arguments, ...).

    >>> input_id({"x": 1})
    'ec24e41380e5cfb1739346b490a5b83e'
    >>> input_id({"a": 1, "b": 2}) == input_id({"b": 2, "a": 1})
    True
    """
    active: set[int] = set()
    entries = [
        _argument(_encoded_name(name), name, value, active) for name, value in arguments.items()
    ]
    entries.sort()
    return _hex_digest(_INPUT_HASHER, _DICT + _length(len(entries)) + b"".join(entries))


@functools.lru_cache(maxsize=1024)
def _encoded_name(name: str) -> bytes:
    # A function's calls repeat the same few argument names.
    return _encode_str(name)


def _hex_digest(hasher: Any, data: bytes) -> str:
    digest = hasher.copy()
    digest.update(data)
    return digest.hexdigest()


def _argument(encoded_name: bytes, name: str, value: Any, active: set[int]) -> bytes:
    """One entry of the arguments' dict encoding, or a CacheKeyError naming the argument."""
    try:
        return encoded_name + _encode(value, active)
    except _Unkeyable as exc:
        raise _argument_error(name, exc.path, exc.reason) from None
    except RecursionError:
        raise _argument_error(name, "", "is nested too deeply to encode") from None


def _argument_error(name: str, path: str, reason: str) -> CacheKeyError:
    where = f" (at {name}{path})" if path else ""
    return CacheKeyError(
        f"argument {name!r}{where} {reason}; leave it out of the key with ignore=({name!r},) "
        "or compute the key yourself with input_key_fn="
    )


def cache_key(func_id: str, version: str | None, input_id: str) -> str:
    """Hex digest naming one result: which function, which version of it, which input.

    ``version=None`` (never set) and ``version=""`` give different keys: a version is an opaque
    label and the key never guesses that two labels mean the same.

    >>> cache_key("mod.f", None, "00") == cache_key("mod.f", "", "00")
    False
    """
    return _hex_digest(_KEY_HASHER, _key_head(func_id, version) + _encode_str(input_id))


@functools.lru_cache(maxsize=1024)
def _key_head(func_id: str, version: str | None) -> bytes:
    """The encoding of the tuple ``(func_id, version, input_id)`` up to ``input_id``: the same
    for every call of one function version."""
    return _TUPLE + _length(3) + _encode(func_id, set()) + _encode(version, set())


class KeyPlan:
    """The keys of one function version's calls, with everything its calls share encoded once.

    ``names`` are the arguments that enter the key, in the order the caller will pass their
    values. ``keys(values)`` gives exactly ``input_id(dict(zip(names, values)))`` and the
    matching :func:`cache_key`, without building the dict, re-encoding the names or sorting.

    >>> plan = KeyPlan("mod.f", "v1", ("text", "n"))
    >>> plan.keys(("hi", 3)) == (
    ...     input_id({"text": "hi", "n": 3}),
    ...     cache_key("mod.f", "v1", input_id({"n": 3, "text": "hi"})),
    ... )
    True
    """

    __slots__ = ("_arguments", "_input_head", "_key_head")

    def __init__(self, func_id: str, version: str | None, names: Iterable[str]) -> None:
        names = tuple(names)
        if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
            raise ConfigurationError(f"names={names!r}: give distinct argument names (str)")
        # input_id sorts its entries; distinct names settle that order by themselves, since
        # each encoded name is self-delimiting. So it is fixed here, once.
        self._arguments = sorted(
            (_encode_str(name), name, index) for index, name in enumerate(names)
        )
        self._input_head = _DICT + _length(len(names))
        # An input_id is always a 32-character hex str: its encoding's header is fixed too.
        self._key_head = _key_head(func_id, version) + _STR + _length(2 * _DIGEST_SIZE)

    def keys(self, values: Sequence[Any]) -> tuple[str, str]:
        """``(input_id, cache_key)`` of a call whose key arguments are ``values``."""
        if len(values) != len(self._arguments):
            raise TypeError(f"expected {len(self._arguments)} values, got {len(values)}")
        active: set[int] = set()
        entries = [
            _argument(encoded, name, values[index], active)
            for encoded, name, index in self._arguments
        ]
        input_id = _hex_digest(_INPUT_HASHER, self._input_head + b"".join(entries))
        return input_id, self.cache_key(input_id)

    def cache_key(self, input_id: str) -> str:
        """``cache_key(func_id, version, input_id)`` for an ``input_id`` from :func:`input_id`."""
        if len(input_id) != 2 * _DIGEST_SIZE:
            raise ValueError(f"input_id={input_id!r}: expected a hex digest from input_id()")
        return _hex_digest(_KEY_HASHER, self._key_head + input_id.encode("ascii"))


# -- ready-made input_key_fn ------------------------------------------------------------------


class KeyGen:
    """Ready-made ``input_key_fn=`` functions for a call whose one argument is a file path."""

    @staticmethod
    def from_path_stat(path: str | os.PathLike[str]) -> str:
        """Key by path, size and modification time: cheap, and changes when the file does.

        A missing file gets a key of its own, so the function still runs and decides.

        >>> KeyGen.from_path_stat("no/such/file.csv")
        'missing:no/such/file.csv'
        """
        name = os.fspath(path)
        try:
            stat = os.stat(name)
        except (FileNotFoundError, NotADirectoryError):
            return f"missing:{name}"
        return f"stat:{stat.st_size}:{stat.st_mtime_ns}:{name}"

    @staticmethod
    def from_file_content(path: str | os.PathLike[str]) -> str:
        """Key by a digest of the file's bytes: same content, same key, wherever the file is.

        >>> KeyGen.from_file_content("no/such/file.csv")
        'missing:no/such/file.csv'
        """
        name = os.fspath(path)
        digest = hashlib.blake2b(digest_size=_DIGEST_SIZE, person=_FILE_PERSON)
        try:
            with open(name, "rb") as file:
                while chunk := file.read(_CHUNK_SIZE):
                    digest.update(chunk)
        except (FileNotFoundError, NotADirectoryError):
            return f"missing:{name}"
        return digest.hexdigest()
