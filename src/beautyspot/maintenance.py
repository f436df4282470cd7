"""Garbage collection: remove what no record needs any more.

Three kinds of garbage build up in a cache: records past their retention, *orphan* blobs (a blob
no record points to: the loser of two writers racing on one key, the blob of a deleted or
expired record, or one saved by a process killed before it wrote the record), and temp files
left by saves interrupted mid-write.

A writer saves the blob *before* its record, so a blob without a record may just be a save in
flight. Only blobs and temp files unmodified for ``older_than`` seconds are removed, and a
blob's age is read again right before it goes: keep ``older_than`` far above the time one call
takes to store its result. The storage must belong to this TaskDB alone: a blob referenced only
by another TaskDB's records looks like an orphan here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from beautyspot.db.base import TaskDB
from beautyspot.errors import ConfigurationError, NotSupportedError
from beautyspot.storage.base import BlobStorageBase

__all__ = ["DEFAULT_OLDER_THAN", "GCReport", "collect_garbage"]

#: Default minimum age, in seconds, of an orphan blob or temp file before it is removed.
DEFAULT_OLDER_THAN = 3600.0


@dataclass(frozen=True)
class GCReport:
    """What one garbage collection removed.

    ``bytes_freed`` counts the orphan blobs' bytes (temp files are counted, not sized).
    """

    expired_records: int = 0
    orphan_blobs: int = 0
    temp_files: int = 0
    bytes_freed: int = 0


def collect_garbage(
    db: TaskDB, storage: BlobStorageBase, *, older_than: float = DEFAULT_OLDER_THAN
) -> GCReport:
    """Delete expired records, then orphan blobs and stale temp files older than ``older_than``.

    :param db: the TaskDB whose records say which blobs are in use; it needs
        ``iter_blob_locations`` (and ``delete_expired``, or expired records are kept).
    :param storage: the blob storage to clean; it needs ``iter_locations``, ``stat`` and
        ``delete`` (and ``remove_stale_temp_files`` if its saves leave temp files).
    :param older_than: seconds since an orphan blob or temp file was last modified before it
        counts as garbage rather than a save in flight.
    :raises NotSupportedError: a backend cannot list or delete what garbage collection needs.

    >>> import tempfile
    >>> from beautyspot.db import SQLiteTaskDB
    >>> from beautyspot.storage import LocalStorage
    >>> folder = tempfile.mkdtemp()
    >>> db, storage = SQLiteTaskDB(folder + "/cache.db"), LocalStorage(folder + "/blobs")
    >>> kept = storage.save("aa11", b"in use")
    >>> db.save("k", "mod.fn", "in", None, "blob", None, result_value=kept)
    >>> orphan = storage.save("bb22", b"no record")
    >>> collect_garbage(db, storage, older_than=0)
    GCReport(expired_records=0, orphan_blobs=1, temp_files=0, bytes_freed=9)
    >>> list(storage.iter_locations())
    ['aa/aa11']
    """
    seconds = _check_older_than(older_than)
    expired = _delete_expired(db)
    # Read the records after the expired ones are gone, so their blobs go in this same pass.
    in_use = _referenced_locations(db)
    orphans, freed = _remove_orphans(storage, in_use, cutoff=time.time() - seconds)
    return GCReport(
        expired_records=expired,
        orphan_blobs=orphans,
        temp_files=_remove_temp_files(storage, seconds),
        bytes_freed=freed,
    )


def _check_older_than(older_than: float) -> float:
    if isinstance(older_than, bool) or not isinstance(older_than, (int, float)):
        raise TypeError(f"older_than must be a number of seconds, not {older_than!r}")
    if not (older_than >= 0 and math.isfinite(older_than)):
        raise ConfigurationError(
            f"older_than={older_than!r}: give the seconds a blob must sit unmodified before "
            "it is removed (0 or more; the default is an hour)"
        )
    return float(older_than)


def _delete_expired(db: TaskDB) -> int:
    try:
        return db.delete_expired()
    except NotSupportedError:  # its expired records are misses anyway; their blobs stay in use
        return 0


def _referenced_locations(db: TaskDB) -> set[str]:
    try:
        return set(db.iter_blob_locations())
    except NotSupportedError as exc:
        raise NotSupportedError(
            f"garbage collection needs to know which blobs are in use, and {exc}"
        ) from exc


def _remove_orphans(storage: BlobStorageBase, in_use: set[str], cutoff: float) -> tuple[int, int]:
    """Delete unreferenced blobs last modified at or before ``cutoff``: (count, bytes)."""
    removed = freed = 0
    for location in _unreferenced(storage, in_use):
        size = _size_if_older(storage, location, cutoff)
        if size is None:
            continue
        storage.delete(location)
        removed += 1
        freed += size
    return removed, freed


def _unreferenced(storage: BlobStorageBase, in_use: set[str]) -> list[str]:
    try:
        locations = list(storage.iter_locations())
    except NotSupportedError as exc:
        raise NotSupportedError(f"garbage collection needs to list blobs, and {exc}") from exc
    return [location for location in locations if location not in in_use]


def _size_if_older(storage: BlobStorageBase, location: str, cutoff: float) -> int | None:
    """The blob's size if it was last modified at or before ``cutoff``, else None."""
    try:
        blob = storage.stat(location)
    except FileNotFoundError:  # deleted meanwhile (by invalidate, or another collector)
        return None
    except NotSupportedError as exc:
        raise NotSupportedError(
            f"garbage collection must not delete a blob still being saved, and {exc}"
        ) from exc
    return blob.size if blob.modified_at <= cutoff else None


def _remove_temp_files(storage: BlobStorageBase, older_than: float) -> int:
    try:
        return storage.remove_stale_temp_files(older_than)
    except NotSupportedError:  # a store whose saves are atomic uploads leaves no temp files
        return 0
