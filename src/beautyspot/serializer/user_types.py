"""Registered types: user encoders wrapped for error reporting, dataclasses stored as their
exact instance state."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from beautyspot.errors import ConfigurationError
from beautyspot.serializer.codec import _Unstorable


def _user_fields(code: int, encoder: Callable[[Any], Any]) -> Callable[[Any], tuple[int, Any]]:
    def fields(obj: Any) -> tuple[int, Any]:
        try:
            return (code, encoder(obj))
        except Exception as exc:
            raise _Unstorable(obj, f"its registered encoder failed: {exc!r}") from exc

    return fields


class _DataclassCodec:
    """Encoder and decoder of one dataclass: its fields by name, plus any other instance state.

    The payload is ``{field: value}`` when the instance holds nothing but its fields (the only
    form written before other state was kept), else ``[fields, other __dict__ entries, other
    slots that are set]``. Decoding never calls ``__init__`` or ``__post_init__``: they ran when
    the value was first made, and running them again may change it.
    """

    def __init__(self, cls: type) -> None:
        fields = dataclasses.fields(cls)
        # A built-in base (list, Exception, ...) holds state outside fields and __dict__, which
        # decoding without __init__ could not bring back: the hit would differ from the value.
        builtin = next((b for b in cls.__mro__[1:-1] if b.__module__ == "builtins"), None)
        if builtin is not None:
            raise ConfigurationError(
                f"register_dataclass cannot store {cls.__qualname__} exactly: it inherits from "
                f"{builtin.__name__}, whose state is not a field; use register_type with your "
                "own encoder and decoder"
            )
        self._cls = cls
        # Constructor arguments first, as the payload has always listed them.
        self._fields = [f.name for f in fields if f.init] + [f.name for f in fields if not f.init]
        self._names = frozenset(self._fields)
        self._slots = {
            name: slot for name, slot in _slot_descriptors(cls).items() if name not in self._names
        }

    def encode(self, obj: Any) -> Any:
        fields = {name: getattr(obj, name) for name in self._fields}
        try:
            instance_dict = object.__getattribute__(obj, "__dict__")
        except AttributeError:
            instance_dict = {}
        others = {k: v for k, v in instance_dict.items() if k not in self._names}
        slots = {}
        for name, slot in self._slots.items():
            try:
                slots[name] = slot.__get__(obj, self._cls)
            except AttributeError:
                continue  # never set: stays unset
        return [fields, others, slots] if others or slots else fields

    def decode(self, state: Any) -> Any:
        fields, others, slots = (state, {}, {}) if type(state) is dict else _three_dicts(state)
        if fields.keys() != self._names or not slots.keys() <= self._slots.keys():
            raise ValueError(f"stored fields do not match {self._cls.__qualname__}'s fields")
        obj = self._cls.__new__(self._cls)
        for name in self._fields:
            object.__setattr__(obj, name, fields[name])  # as a frozen dataclass's __init__ does
        if others:
            # Raw, as read: these may back a descriptor, or sit behind a property of that name.
            object.__getattribute__(obj, "__dict__").update(others)
        for name, value in slots.items():
            self._slots[name].__set__(obj, value)
        return obj


def _three_dicts(state: Any) -> list[dict[Any, Any]]:
    if type(state) is not list or len(state) != 3 or any(type(d) is not dict for d in state):
        raise ValueError("stored dataclass state is malformed")
    return state


def _slot_descriptors(cls: type) -> dict[str, Any]:
    """The slot descriptors of ``cls`` by attribute name, the most derived class's first."""
    found: dict[str, Any] = {}
    for klass in cls.__mro__:
        declared = klass.__dict__.get("__slots__", ())
        for name in (declared,) if isinstance(declared, str) else declared:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{klass.__name__.lstrip('_')}{name}"  # private names are mangled
            descriptor = klass.__dict__.get(name)
            if descriptor is not None and hasattr(descriptor, "__set__"):
                found.setdefault(name, descriptor)
    return found
