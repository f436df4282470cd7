"""Error message text: type names, where a value sits in a result, what went wrong."""

from __future__ import annotations

import dataclasses
from typing import Any

from beautyspot.serializer.tags import FORMAT_VERSION


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
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            stack.extend(_attributes(obj, path))
    return "a value inside result"


def _attributes(obj: Any, path: str) -> list[tuple[Any, str]]:
    """A dataclass's fields and other attributes, all of which register_dataclass stores."""
    found = []
    for field in dataclasses.fields(obj):
        try:
            found.append((getattr(obj, field.name), f"{path}.{field.name}"))
        except Exception:
            continue  # an unset field or a failing descriptor: nothing to point at
    for name, value in getattr(obj, "__dict__", {}).items():
        found.append((value, f"{path}.{name}"))
    return found


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
