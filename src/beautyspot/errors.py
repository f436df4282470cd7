"""Every error beautyspot raises, in one place; each message names the thing and the fix."""

from __future__ import annotations

from typing import Any

__all__ = [
    "BeautyspotError",
    "BeautyspotWarning",
    "CacheKeyError",
    "ConfigurationError",
    "NotSupportedError",
    "SerializationError",
    "StorageError",
]


class BeautyspotError(Exception):
    """Base class of all beautyspot errors."""


class ConfigurationError(BeautyspotError, ValueError):
    """A Spot, a decorator or a backend was set up with a value it cannot use."""


class CacheKeyError(BeautyspotError, TypeError):
    """An argument cannot be turned into a faithful cache key.

    The message names the argument and says how to proceed: leave it out of the key with
    ``ignore=("name",)`` or compute the key yourself with ``input_key_fn=``.
    """


class SerializationError(BeautyspotError, TypeError):
    """A result cannot be stored, or stored bytes cannot be read back.

    When raised after the function ran, the computed value travels on the exception as
    ``result`` so a paid result is never lost; nothing was written.
    """

    def __init__(self, message: str, *, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class StorageError(BeautyspotError, OSError):
    """Blob storage refused a key or location, or could not read or write it."""


class NotSupportedError(BeautyspotError, NotImplementedError):
    """A backend does not implement an optional feature (stats, delete, history, ...)."""


class BeautyspotWarning(UserWarning):
    """Something was skipped or recomputed (a corrupt blob, a failed save); no wrong result."""
