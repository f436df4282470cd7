"""Registered types: user encoders wrapped for error reporting, dataclasses stored by field
name."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from beautyspot.errors import ConfigurationError
from beautyspot.serializer.codec import _Unstorable
from beautyspot.serializer.messages import _type_name


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
