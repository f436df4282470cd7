"""The BlobStorageBase contract: where large encoded results live."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from beautyspot.errors import NotSupportedError, StorageError

__all__ = ["BlobStat", "BlobStorageBase"]


class BlobStat(NamedTuple):
    """Size and age of one stored blob, as :meth:`BlobStorageBase.stat` reports them."""

    size: int
    #: Last modification, Unix seconds: a fresh blob without a record is a save in flight.
    modified_at: float


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

    Optional (garbage collection needs the first three; see :mod:`beautyspot.maintenance`):
    ``delete(location)``, ``iter_locations()``, ``stat(location) -> BlobStat`` and
    ``remove_stale_temp_files(older_than) -> int`` (for a store that writes temp objects).

    Threat (``writable_apart_from_records``): whether someone may be able to write the blobs
    without being able to write the records that point to them, as with a bucket shared more
    widely than the TaskDB. The default, ``True``, is the safe one: a user's storage is taken
    to be remote, and its blobs get cryptographic checksums (sha256), so forged bytes read as
    a miss. A store whose blobs live beside the records, writable only by whoever can write
    those (``LocalStorage``), sets it ``False`` and gets a fast 128-bit hash that still catches
    corruption and truncation. See :mod:`beautyspot.integrity`.

    Thread-safety: the Spot calls one storage from many threads. The base class keeps no
    state, so a subclass need not call ``super().__init__()``.
    """

    #: Someone may write these blobs without being able to write their records (see above).
    writable_apart_from_records: bool = True

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

    def stat(self, location: str) -> BlobStat:
        """Size and last modification time of the object at ``location``; a missing one
        raises ``FileNotFoundError``."""
        raise NotSupportedError(
            f"{type(self).__name__} cannot tell a blob's age: implement stat(location)"
        )

    def remove_stale_temp_files(self, older_than: float) -> int:
        """Delete temp objects left by interrupted saves, unmodified for ``older_than``
        seconds; return how many were removed. A store whose saves leave none need not
        implement it."""
        raise NotSupportedError(
            f"{type(self).__name__} keeps no temp files: implement "
            "remove_stale_temp_files(older_than) if its saves can leave some"
        )


# -- naming rules every store shares ----------------------------------------------------------

#: A blob key or a path segment: letters, digits, ``-``, ``.``, ``_``, never starting with ``.``
#: (no hidden files, no ``..``), at most 200 characters.
BLOB_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


def check_key(key: str) -> None:
    """Refuse a blob key that could name anything but one file of the store.

    >>> check_key("ab12-3.bin")
    >>> check_key("../etc/passwd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    beautyspot.errors.StorageError: blob key '../etc/passwd' is not allowed: ...
    """
    if not isinstance(key, str) or not BLOB_NAME.fullmatch(key):
        raise StorageError(
            f"blob key {key!r} is not allowed: use 1-200 letters, digits, '-', '.' or '_', "
            "not starting with '.'"
        )


def checked_location(key: str, data: object) -> str:
    """Check what a ``save`` was given (a key that names one file, bytes to write) and return
    where the store keeps it (:func:`fan_out_location`).

    >>> checked_location("abc", b"x")
    'ab/abc'
    >>> checked_location("abc", "x")
    Traceback (most recent call last):
    TypeError: data must be bytes, not str
    """
    check_key(key)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    return fan_out_location(key)


def fan_out_location(key: str) -> str:
    """Where a store keeps ``key``: ``<key[:2]>/<key>``, so no folder grows too large."""
    return f"{key[:2]}/{key}"


def is_fan_out_location(location: str) -> bool:
    """Whether ``location`` is one :func:`fan_out_location` gives for a valid key.

    >>> is_fan_out_location("ab/abc"), is_fan_out_location("../ab/abc")
    (True, False)
    """
    head, slash, key = location.partition("/")
    return bool(slash) and BLOB_NAME.fullmatch(key) is not None and head == key[:2]


def check_location(location: str, within: str) -> str:
    """``location`` if :func:`is_fan_out_location`, else a refusal: a record's location can
    never lead out of the store (``within`` names it in the message)."""
    if not isinstance(location, str):
        raise TypeError(f"location must be a str returned by save(), not {location!r}")
    if not is_fan_out_location(location):
        raise StorageError(
            f"blob location {location!r} is refused: it must be '<key[:2]>/<key>' as returned "
            f"by save(), relative to {within} (no '..', no absolute path, no other folder)"
        )
    return location
