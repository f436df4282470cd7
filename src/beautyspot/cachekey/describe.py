"""Why a value has no faithful key, in words that follow the argument's name."""

from __future__ import annotations

import functools
import io
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

_BUILTIN_BASES = (int, float, complex, str, bytes, bytearray, list, tuple, dict, set, frozenset)


def describe(value: Any) -> str:
    """Why ``value`` has no faithful key, phrased to follow the argument's name."""
    cls = type(value)
    name = f"{cls.__module__}.{cls.__qualname__}"
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
