"""The BlobStorageBase contract: where large encoded results live."""

from __future__ import annotations

from collections.abc import Iterator

from beautyspot.errors import NotSupportedError

__all__ = ["BlobStorageBase"]


class BlobStorageBase:
    """Base class and contract of a blob store.

    Required (a user's subclass may implement only these two):

    ``save(key, data) -> location``
        Store ``data`` (bytes) under ``key`` and return a string ``location`` that ``load``
        accepts. ``key`` is made by the core from hex digits, ``-`` and ``.`` only. The write
        must be atomic: once ``save`` returns, ``load(location)`` gives exactly ``data``; a
        crash mid-write must never leave a partial object under ``location``.
    ``load(location) -> bytes``
        The bytes saved at ``location``. A missing object raises ``FileNotFoundError`` (or any
        ``OSError``); the core then treats the record as a miss.

    Optional: ``delete(location)`` and ``iter_locations()`` (used to remove orphan blobs).

    Thread-safety: the Spot calls one storage from many threads. The base class keeps no
    state, so a subclass need not call ``super().__init__()``.
    """

    def save(self, key: str, data: bytes) -> str:
        raise NotImplementedError(f"{type(self).__name__} must implement save(key, data)")

    def load(self, location: str) -> bytes:
        raise NotImplementedError(f"{type(self).__name__} must implement load(location)")

    def delete(self, location: str) -> None:
        """Remove the object at ``location``; a missing one is not an error."""
        raise NotSupportedError(
            f"{type(self).__name__} cannot delete blobs: implement delete(location)"
        )

    def iter_locations(self) -> Iterator[str]:
        """Every location this storage holds (for garbage collection)."""
        raise NotSupportedError(
            f"{type(self).__name__} cannot list blobs: implement iter_locations()"
        )
