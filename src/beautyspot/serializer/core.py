"""The Serializer: registration, dumps and loads, and the check of return annotations."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import itertools
import operator
import types
import typing
from collections import abc
from collections.abc import Callable
from datetime import tzinfo
from typing import Any

import msgpack

from beautyspot.errors import ConfigurationError, SerializationError
from beautyspot.serializer.arrays import _numpy_encoder
from beautyspot.serializer.codec import _Builder, _Encoder, _Unstorable
from beautyspot.serializer.frames import _pandas_encoder
from beautyspot.serializer.hooks import _IMPOSTORS, _Decoding, _Encoding
from beautyspot.serializer.messages import (
    _REGISTER_HINT,
    _brief_error,
    _locate,
    _pack_failure,
    _type_name,
    _version_problem,
)
from beautyspot.serializer.pytz_zones import _pytz_fields
from beautyspot.serializer.tables import _LIBRARY_BUILDERS, _STDLIB_ENCODERS
from beautyspot.serializer.tags import _PYTZ, _USER, FORMAT_VERSION
from beautyspot.serializer.user_types import _DataclassCodec, _user_fields

#: Types msgpack packs itself; ``default`` never sees them, so they cannot be registered.
_NATIVE_TYPES = frozenset({type(None), bool, int, float, str, bytes, list, dict, msgpack.Timestamp})


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
        # The registrations in order, replayed where a pickled copy is rebuilt.
        self._registrations: list[tuple[str, tuple[Any, ...]]] = []
        #: The user's types, class -> (code, encoder): cache keys encode their instances this way.
        self.registered: dict[type, tuple[int, Callable[[Any], Any]]] = {}
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
        self._register(type_, code, encoder, decoder)
        self._registrations.append(("register", (type_, code, encoder, decoder)))

    def _register(
        self,
        type_: type,
        code: int,
        encoder: Callable[[Any], Any],
        decoder: Callable[[Any], Any],
    ) -> None:
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
        self.registered[type_] = (code, encoder)
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
        self._register(enum_cls, code, encoder=operator.attrgetter("value"), decoder=enum_cls)
        self._registrations.append(("register_enum", (enum_cls, code)))

    def register_dataclass(self, cls: type, code: int) -> None:
        """Register a dataclass, stored as its exact instance state, rebuilt without ``__init__``.

        The state is every field by name, plus whatever else the instance holds (attributes set
        in ``__post_init__`` or later, set slots that are not fields); all of it must be storable.
        Decoding creates the instance with ``cls.__new__(cls)`` and sets that state back (through
        ``object.__setattr__``, so frozen and slots dataclasses work): ``__init__`` and
        ``__post_init__`` already ran on the value that was stored, and running them again could
        change it.

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
        self._register(cls, code, encoder=codec.encode, decoder=codec.decode)
        self._registrations.append(("register_dataclass", (cls, code)))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles by its registrations (classes and functions, by reference where pickle can),
        replayed in a fresh Serializer: for process pools and cluster workers."""
        return (_replayed, (self._registrations,))

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


_ABSTRACT_MODULES = frozenset({"typing", "typing_extensions", "collections.abc", "numbers", "abc"})
#: Generic origins whose type arguments are the types of the values they hold.
_ELEMENT_CONTAINERS = frozenset(
    {
        list, tuple, set, frozenset, dict,
        abc.Iterable, abc.Collection, abc.Sequence, abc.MutableSequence,
        abc.Set, abc.MutableSet, abc.Mapping, abc.MutableMapping,
    }
)  # fmt: skip


def _take(pool: list[Any]) -> Any:
    try:
        return pool.pop()
    except IndexError:
        return None


def _replayed(registrations: list[tuple[str, tuple[Any, ...]]]) -> Serializer:
    serializer = Serializer()
    for method, args in registrations:
        getattr(serializer, method)(*args)
    return serializer
