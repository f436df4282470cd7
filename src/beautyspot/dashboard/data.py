"""What the dashboard reads: pages of records, one record with its value, failures, stats.

No web framework here: each method is a plain blocking call the page runs in a worker thread.
A TaskDB that lacks an optional method still serves what it can, and the page says what is
missing (the ``note`` of each answer) instead of failing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from beautyspot._registry import redacted, scheme_of
from beautyspot.db import SQLiteTaskDB, TaskDB
from beautyspot.db.base import BLOB, INLINE, RECORD_ORDERS, RecordQuery
from beautyspot.errors import NotSupportedError, SerializationError
from beautyspot.explain import explain_record
from beautyspot.integrity import matches
from beautyspot.storage import BlobStorageBase, LocalStorage

__all__ = ["Answer", "Decoded", "Source", "describe", "guess_storage"]

#: A backend without ``find_records`` is paged in memory over this many newest records.
FALLBACK_RECORDS = 10_000
#: Failures read for the failures view and the ``failed`` filter (newest first).
FAILURES_READ = 5_000
#: Seconds the function names offered by the filter are reused.
NAMES_FRESH_FOR = 60.0
#: Stored results larger than this are not decoded for display.
MAX_DECODED_BYTES = 64 * 2**20


class Answer(NamedTuple):
    """Rows for one page, how many match in all, and what the page should say about them."""

    rows: list[dict[str, Any]]
    total: int
    note: str | None = None


class Decoded(NamedTuple):
    """A record's stored value, or why it cannot be shown, and what was checked on the way."""

    value: Any = None
    error: str | None = None
    size: int | None = None
    checksum_ok: bool | None = None  # None: the record has no checksum to check
    where: str = ""  # "inline", or the blob location


def describe(spec: object) -> str:
    """How the page names a database: a URL with its password replaced, a path, or a type.

    >>> describe("postgresql://app:s3cret@db/cache")
    'postgresql://app:***@db/cache'
    >>> describe(object())
    'object'
    """
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        return redacted(text) if scheme_of(text) else os.path.abspath(text)
    if isinstance(spec, SQLiteTaskDB):
        return str(spec.path)
    url = getattr(spec, "url", None)
    if isinstance(url, str):
        return f"{type(spec).__name__} {redacted(url)}"
    return type(spec).__name__


def guess_storage(db: TaskDB) -> BlobStorageBase | None:
    """The blob folder a Spot gives a SQLite file by default (``<name>_blobs`` beside
    ``<name>.db``), when it exists; None otherwise."""
    if not isinstance(db, SQLiteTaskDB):
        return None
    folder = db.path.with_name(f"{db.path.stem}_blobs")
    return LocalStorage(folder) if folder.is_dir() else None


class Source:
    """The dashboard's view of one TaskDB (and the blob storage its large results live in).

    :param db: the task records.
    :param storage: where blob results live; without it they are listed but not shown.
    :param loads: bytes -> value (a :class:`~beautyspot.reading.Decoder`'s ``loads``).
    """

    def __init__(
        self,
        db: TaskDB,
        storage: BlobStorageBase | None,
        loads: Callable[[bytes], Any],
    ) -> None:
        self.db = db
        self.storage = storage
        self.loads = loads
        self._names: tuple[list[str] | None, float] = (None, 0.0)
        self._names_lock = threading.Lock()

    # -- lists -------------------------------------------------------------------------------

    def records(self, query: RecordQuery) -> Answer:
        """One page of records (without their result bytes)."""
        if query.order_by not in RECORD_ORDERS:
            query = query._replace(order_by="created_at")
        try:
            rows, total = self.db.find_records(query)
        except NotSupportedError:
            return self._records_in_memory(query)
        return Answer([_listed(row) for row in rows], int(total))

    def _records_in_memory(self, query: RecordQuery) -> Answer:
        history = self.db.get_history(FALLBACK_RECORDS)
        rows = [_listed(row) for row in history if _matches(row, query)]
        rows.sort(key=lambda row: _sort_key(row.get(query.order_by)), reverse=query.descending)
        note = (
            f"{type(self.db).__name__} cannot page through records (no find_records): "
            f"showing only the newest {FALLBACK_RECORDS:,} records"
        )
        return Answer(rows[query.offset : query.offset + query.limit], len(rows), note)

    def failures(
        self, func_name: str | None = None, text: str | None = None, offset: int = 0,
        limit: int = 50,
    ) -> Answer:  # fmt: skip
        """One page of recorded failures, newest first, filtered by function and by text in
        the input preview, the error type or the message."""
        try:
            found = self.db.get_failures(FAILURES_READ)
        except NotSupportedError:
            return Answer([], 0, f"{type(self.db).__name__} does not keep failures")
        needle = (text or "").lower()
        rows = [
            dict(row)
            for row in found
            if (not func_name or row.get("func_name") == func_name)
            and (not needle or needle in _failure_text(row))
        ]
        note = None
        if len(found) >= FAILURES_READ:
            note = f"searching the newest {FAILURES_READ:,} failures"
        return Answer(rows[offset : offset + limit], len(rows), note)

    def stats(self) -> Answer:
        """Per-function counts, sizes and savings, most records first."""
        try:
            rows = [dict(row) for row in self.db.get_stats()]
        except NotSupportedError:
            return Answer([], 0, f"{type(self.db).__name__} keeps no stats (no get_stats)")
        rows.sort(key=lambda row: (-(row.get("records") or 0), str(row.get("func_name"))))
        return Answer(rows, len(rows))

    def function_names(self) -> list[str]:
        """Names of the functions with records, for the filter's choices; read at most once a
        minute (stats read every record, which takes a while on millions)."""
        with self._names_lock:
            names, read_at = self._names
            if names is not None and time.monotonic() - read_at < NAMES_FRESH_FOR:
                return names
            rows = self.stats().rows
            if not rows:
                rows = self._records_in_memory(RecordQuery(limit=FALLBACK_RECORDS)).rows
            names = sorted({str(row["func_name"]) for row in rows if row.get("func_name")})
            self._names = (names, time.monotonic())
            return names

    # -- one record --------------------------------------------------------------------------

    def record(self, cache_key: str) -> Mapping[str, Any] | None:
        return self.db.get(cache_key)

    def explanation(self, record: Mapping[str, Any]) -> str:
        """The record explained (key parts, nearest records of its function), as text; an
        error becomes text for the page."""
        try:
            return str(explain_record(self.db, record))
        except Exception as error:  # the rest of the page stands without it
            return f"cannot explain this record: {type(error).__name__}: {error}"

    def value_of(self, record: Mapping[str, Any]) -> Decoded:
        """The stored result of ``record``, decoded; errors become text for the page."""
        result_type = record.get("result_type")
        if result_type == INLINE:
            data, where = record.get("result_data"), "inline"
        elif result_type == BLOB:
            where = str(record.get("result_value"))
            if self.storage is None:
                return Decoded(
                    error=f"the result is in blob storage at {where!r}; start the dashboard "
                    "with the Spot's storage (--storage) to see it",
                    where=where,
                )
            try:
                data = self.storage.load(where)
            except Exception as error:
                return Decoded(error=f"cannot load the blob: {error}", where=where)
        else:
            return Decoded(error=f"unknown result_type {result_type!r}: a damaged record")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            return Decoded(error="the record holds no result bytes: a damaged record", where=where)
        data = bytes(data)
        checksum = record.get("checksum")
        checksum_ok = None if not checksum else matches(checksum, data)
        if len(data) > MAX_DECODED_BYTES:
            return Decoded(
                error=f"the result is {len(data):,} bytes: too large to show here",
                size=len(data), checksum_ok=checksum_ok, where=where,
            )  # fmt: skip
        try:
            value = self.loads(data)
        except SerializationError as error:
            return Decoded(error=str(error), size=len(data), checksum_ok=checksum_ok, where=where)
        return Decoded(value, None, len(data), checksum_ok, where)

    def delete(self, cache_key: str) -> bool:
        """Remove one record (its blob, if any, becomes an orphan for ``gc``)."""
        return self.db.delete(cache_key)


def _listed(row: Mapping[str, Any]) -> dict[str, Any]:
    """A record as a list row: no result bytes travel to the page."""
    return {key: value for key, value in row.items() if key != "result_data"}


def _matches(row: Mapping[str, Any], query: RecordQuery) -> bool:
    return (
        (query.func_name is None or row.get("func_name") == query.func_name)
        and (query.version is None or row.get("version") == query.version)
        and (query.content_type is None or row.get("content_type") == query.content_type)
        and (query.text is None or query.text.lower() in str(row.get("input_preview")).lower())
    )


def _sort_key(value: Any) -> tuple[bool, Any]:
    return (value is not None, value if value is not None else 0)


def _failure_text(row: Mapping[str, Any]) -> str:
    parts = (row.get("input_preview"), row.get("error_type"), row.get("message"))
    return " ".join(str(part) for part in parts if part).lower()
