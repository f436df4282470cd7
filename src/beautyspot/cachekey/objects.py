"""Keys of user-level objects: classes, enums, dataclasses, pydantic-style models, namedtuples."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from beautyspot.cachekey.core import (
    Walk,
    encode_at,
    encode_object,
    encode_str,
    guard_cycles,
    length,
    sequence,
)
from beautyspot.cachekey.identity import qualified_name

__all__ = ["encode_class", "encode_instance"]


def encode_class(value: Any, walk: Walk) -> bytes | None:
    if not isinstance(value, type):
        return None
    return encode_object("type", encode_str(qualified_name(value)))


def encode_instance(value: Any, walk: Walk) -> bytes | None:
    cls = type(value)
    if isinstance(value, enum.Enum):
        value_bytes = encode_at(value.value, ".value", walk)
        return encode_object("enum", encode_str(qualified_name(cls)), value_bytes)
    if dataclasses.is_dataclass(value):
        return _encode_dataclass(value, walk)
    if callable(getattr(value, "model_dump", None)):
        return _encode_model(value, walk)
    if isinstance(value, tuple) and hasattr(cls, "_fields"):  # a namedtuple
        fields = sequence(value, len(value), walk)
        return encode_object("namedtuple", encode_str(qualified_name(cls)), fields)
    return None


@guard_cycles
def _encode_dataclass(value: Any, walk: Walk) -> bytes:
    fields = [
        encode_str(field.name) + encode_at(getattr(value, field.name), f".{field.name}", walk)
        for field in dataclasses.fields(value)
    ]
    kind = encode_str(qualified_name(type(value)))
    return encode_object("dataclass", kind, length(len(fields)), *fields)


@guard_cycles
def _encode_model(value: Any, walk: Walk) -> bytes:
    dumped = encode_at(value.model_dump(), ".model_dump()", walk)
    return encode_object("model", encode_str(qualified_name(type(value))), dumped)
