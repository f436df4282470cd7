"""Why a value has no faithful key, in words that follow the argument's name; and what part of
an object's state Python lets beautyspot see.

Nothing here looks at a value's attributes: only at its type (``type(value)``, the classes'
own ``__dict__`` and their layout), so an object whose ``__getattr__`` raises, or a test double
that answers every attribute, is described like any other.
"""

from __future__ import annotations

import functools
import io
import struct
import sys
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

__all__ = [
    "BUILTIN_BASES",
    "advice",
    "describe",
    "hidden_state",
    "is_c_type",
    "is_test_double",
    "own_slots",
    "type_name",
]

#: Builtin types whose subclasses are keyed by their builtin content (read through the base
#: type's own methods) plus their attributes.
BUILTIN_BASES = (int, float, complex, str, bytes, bytearray, list, tuple, dict, set, frozenset)

_POINTER = struct.calcsize("P")
# Type flags (Include/object.h): where CPython keeps __dict__ and __weakref__ outside the
# instance's fixed layout (3.11+ and 3.12+), and the flags of types made by C code.
_MANAGED_WEAKREF = 1 << 3
_MANAGED_DICT = 1 << 4
_IMMUTABLE_TYPE = 1 << 8
_HEAP_TYPE = 1 << 9

_FUNCTION_TYPES = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodWrapperType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
    functools.partial,
    staticmethod,
    classmethod,
)
_GENERIC_ALIASES = (types.GenericAlias, types.UnionType)


def type_name(cls: type) -> str:
    """``module.qualname`` of a class, for messages."""
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", "?")
    return f"{module}.{qualname}" if module and module != "builtins" else str(qualname)


def own_slots(cls: type) -> tuple[str, ...]:
    """The storage slots ``cls`` itself declares (``__slots__``), as written (not mangled)."""
    declared = vars(cls).get("__slots__", ())
    names = (declared,) if isinstance(declared, str) else tuple(declared)
    return tuple(name for name in names if name not in ("__dict__", "__weakref__"))


def _adds_hidden_fields(cls: type) -> bool:
    """True if instances of ``cls`` hold more than its base's layout plus what Python shows:
    the ``__slots__`` it declares, a ``__dict__`` and a ``__weakref__``. A class defined in
    Python never does; a type written in C with fields of its own (a lock, a socket, a
    connection, ``functools.partial``) always does."""
    base = cls.__base__
    if base is None:
        return False
    if cls.__itemsize__ != base.__itemsize__:
        return True
    extra = cls.__basicsize__ - base.__basicsize__ - _POINTER * len(own_slots(cls))
    flags = cls.__flags__
    if cls.__dictoffset__ and not base.__dictoffset__ and not flags & _MANAGED_DICT:
        extra -= _POINTER
    if cls.__weakrefoffset__ and not base.__weakrefoffset__ and not flags & _MANAGED_WEAKREF:
        extra -= _POINTER
    return extra != 0


def hidden_state(cls: type) -> type | None:
    """The first class in ``cls``'s MRO that keeps instance state Python cannot show (fields
    of a type written in C), or None if all of an instance's state is its builtin content, its
    ``__dict__`` and its slots."""
    for klass in cls.__mro__:
        if klass is not object and klass not in BUILTIN_BASES and _adds_hidden_fields(klass):
            return klass
    return None


def is_c_type(cls: type) -> bool:
    """True for a type made by C code (builtin or extension), never for a ``class`` statement."""
    flags = cls.__flags__
    return not flags & _HEAP_TYPE or bool(flags & _IMMUTABLE_TYPE) or _adds_hidden_fields(cls)


def is_test_double(cls: type) -> bool:
    mock = sys.modules.get("unittest.mock")
    return mock is not None and issubclass(cls, mock.NonCallableMock)


def _is_library(cls: type) -> bool:
    """A class that is not the user's to change: of the standard library, beautyspot, an
    installed package, or a package's private module."""
    module_name = getattr(cls, "__module__", None) or ""
    if module_name.partition(".")[0] in (*sys.stdlib_module_names, "builtins", "beautyspot"):
        return True
    if module_name not in ("__main__", "__mp_main__") and any(
        part.startswith("_") for part in module_name.split(".")
    ):
        return True
    path = getattr(sys.modules.get(module_name), "__file__", None) or ""
    return "site-packages" in path or "dist-packages" in path


def describe(value: Any) -> str:
    """Why ``value`` has no faithful key, phrased to follow the argument's name."""
    try:
        return _describe(value)
    except Exception:  # describing must never fail in its turn
        return f"is a {type_name(type(value))} object, a type beautyspot cannot encode exactly"


def _describe(value: Any) -> str:
    cls = type(value)
    name = type_name(cls)
    if is_test_double(cls):
        return (
            f"is a {name}, a test double: it answers every attribute and records calls, so it "
            "has no value a key could capture; pass a real value"
        )
    if issubclass(cls, _GENERIC_ALIASES):
        return f"is a type annotation ({value!r}) whose parts cannot be keyed"
    if issubclass(cls, _FUNCTION_TYPES):
        label = getattr(value, "__qualname__", None) or name
        return f"is a function ({label}); code has no value a key could capture"
    if issubclass(cls, type):
        return f"is the class {type_name(value)}, which beautyspot cannot key"
    if issubclass(cls, io.IOBase):
        return f"is an open file or stream ({name})"
    if issubclass(cls, (Iterator, AsyncIterator, types.CoroutineType, types.GeneratorType)):
        return f"is an iterator or generator ({name}); its values exist only once consumed"
    if cls is object:
        return "is a bare object(), whose only identity is its address"
    if issubclass(cls, BaseException):
        return f"is an exception ({name}), whose traceback and context a key cannot capture"
    hidden = hidden_state(cls)
    for base in BUILTIN_BASES:
        if issubclass(cls, base):
            where = f" (in {type_name(hidden)})" if hidden not in (None, base) else ""
            reason = (
                f"is a {name}, a subclass of {base.__name__} whose extra state{where} "
                f"beautyspot cannot see; pass a plain {base.__name__}"
            )
            return reason + advice(cls, hidden)
    if cls.__eq__ is object.__eq__:
        reason = f"is a {name} object whose only identity is its address ({name} defines no __eq__)"
    else:
        reason = f"is a {name} object, a type beautyspot cannot encode exactly"
    return reason + advice(cls, hidden)


def advice(cls: type, hidden: type | None = None) -> str:
    """Points a class defined in Python, outside the standard library, at the key protocol:
    ``""`` for any other class (its user cannot add a method to it)."""
    try:
        if _is_library(cls) or is_c_type(cls):
            return ""
    except Exception:
        return ""
    name = type_name(cls)
    inside = ""
    if hidden is not None and hidden is not cls:
        inside = f"its base {type_name(hidden)} keeps state in C that beautyspot cannot see; "
    return f" ({inside}give {name} a __beautyspot_key__(self) method returning what identifies it)"
