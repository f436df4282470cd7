"""Stored values read back for people (the CLI and the dashboard): the Serializer (never
pickle), taught the user's types by importing modules the user names, and tolerant of types it
was not taught, which show as ``custom type code N, M bytes``."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgpack

from beautyspot.errors import ConfigurationError
from beautyspot.serializer import Serializer

__all__ = ["CustomValue", "Decoder", "custom_codes", "serializers_in"]


@dataclass(frozen=True)
class CustomValue:
    """A value of a user type this dashboard was not taught (no ``--import`` registers it).

    >>> CustomValue(code=7, size=12)
    custom type code 7, 12 bytes
    """

    code: Any
    size: int

    def __repr__(self) -> str:
        return f"custom type code {self.code}, {self.size:,} bytes"

    __str__ = __repr__


def _size_of(encoded: Any) -> int:
    """Roughly what a user encoder's output took in the stored bytes."""
    if isinstance(encoded, (bytes, bytearray)):
        return len(encoded)
    if isinstance(encoded, str):
        return len(encoded.encode("utf-8", "replace"))
    try:
        return len(msgpack.packb(encoded, default=repr, strict_types=False))
    except Exception:
        return len(repr(encoded))


class _TolerantSerializer(Serializer):
    """A Serializer that shows a value of an unregistered user type as a :class:`CustomValue`
    instead of refusing the whole result (a record may hold many values, most of them known)."""

    def _build_user(self, fields: list[Any]) -> Any:
        code, encoded = fields
        if code not in self._user_decoders:
            return CustomValue(code, _size_of(encoded))
        return super()._build_user(fields)


class Decoder:
    """Decodes stored results with every type registered by the Spots and Serializers that the
    given modules (and their imported submodules) hold as globals.

    >>> s = Serializer()
    >>> class Point:
    ...     def __init__(self, x): self.x = x
    >>> s.register(Point, 5, encoder=lambda p: p.x, decoder=Point)
    >>> Decoder().loads(s.dumps([1, Point(2)]))
    [1, custom type code 5, 1 bytes]
    >>> decoder = Decoder()
    >>> decoder.adopt(s)
    >>> decoder.loads(s.dumps(Point(3))).x
    3
    """

    def __init__(self, imports: Iterable[str] = ()) -> None:
        self.serializer = _TolerantSerializer()
        #: Registrations skipped because another Spot registered the same type or code.
        self.conflicts: list[str] = []
        for name in imports:
            self.import_types(name)

    def import_types(self, module_name: str) -> None:
        """Import ``module_name`` (from the working folder too) and take its types: it calls
        its ``beautyspot_register(serializer)`` if it has one, else adopts the registrations
        of the Spots, Serializers and marked functions it (or a submodule it imported) holds
        as globals. The user names these modules; nothing read from the database is imported.
        """
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            raise ConfigurationError(
                f"imports={module_name!r}: importing it failed ({type(error).__name__}: "
                f"{error}); give a module importable from here (check PYTHONPATH)"
            ) from error
        hook = getattr(module, "beautyspot_register", None)
        if callable(hook):
            hook(self.serializer)
            return
        prefix = module_name + "."
        found = serializers_in(
            value
            for name, loaded in list(sys.modules.items())
            if loaded is not None and (name == module_name or name.startswith(prefix))
            for value in vars(loaded).values()
        )
        if not found:
            raise ConfigurationError(
                f"imports={module_name!r} defines no beautyspot_register(serializer) and holds "
                "no Spot, Serializer or marked function: its types cannot be found"
            )
        for serializer in found:
            self.adopt(serializer)

    def adopt(self, serializer: Serializer) -> None:
        """Register every type ``serializer`` knows here too (in its registration order)."""
        for method, args in serializer._registrations:
            try:
                getattr(self.serializer, method)(*args)
            except ConfigurationError as error:
                if "already registered" not in str(error):  # the same type from another Spot
                    self.conflicts.append(str(error))

    def loads(self, data: bytes) -> Any:
        """The value stored as ``data``; raises SerializationError on bytes it cannot read."""
        return self.serializer.loads(data)


def serializers_in(objects: Iterable[Any]) -> list[Serializer]:
    """The Serializers among ``objects``: themselves, or those of Spots and marked functions."""
    from beautyspot.spot import Spot

    found: list[Serializer] = []
    for obj in objects:
        candidate = None
        if isinstance(obj, Serializer):
            candidate = obj
        elif isinstance(obj, Spot):
            candidate = obj.serializer
        else:
            marked = getattr(obj, "_marked_call", None) if callable(obj) else None
            spot = getattr(marked, "spot", None)
            candidate = getattr(spot, "serializer", None)
        if isinstance(candidate, Serializer) and all(candidate is not s for s in found):
            found.append(candidate)
    return found


def custom_codes(value: Any, depth: int = 0) -> set[Any]:
    """The codes of the :class:`CustomValue` placeholders inside ``value`` (containers are
    searched; other objects are not).

    >>> sorted(custom_codes([1, {"a": (CustomValue(7, 2),)}, {CustomValue(3, 1)}]))
    [3, 7]
    """
    if isinstance(value, CustomValue):
        return {value.code}
    if depth > 100:
        return set()
    if isinstance(value, dict):
        items: Iterable[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        return set()
    return set().union(*(custom_codes(item, depth + 1) for item in items))
