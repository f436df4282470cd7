"""What every type's codec is made of: its encoder and builder, and the errors and checks
they share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple


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


def _expect(value: Any, kind: type) -> Any:
    """``value``, if it has exactly type ``kind``; guards constructors that take sizes too."""
    if type(value) is not kind:
        raise ValueError(f"expected {kind.__name__}, found {type(value).__name__}")
    return value
