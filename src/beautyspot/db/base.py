"""The TaskDB contract: where a Spot keeps one record per cached call.

This is a seam, like a transport in an HTTP client: plain values in, plain values out. A backend
needs four methods to serve as a cache (``init_schema``, ``get``, ``save``, ``get_history``);
the others are optional and, where a backend lacks them, the feature that needs them says so
with :class:`~beautyspot.errors.NotSupportedError` instead of guessing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from beautyspot.errors import NotSupportedError

__all__ = [
    "RECORD_ORDERS",
    "FailureRecord",
    "FunctionCounts",
    "HitRow",
    "RecordQuery",
    "TaskDB",
    "TaskRecord",
]

#: ``result_type`` of a record whose encoded result sits in ``result_data``.
INLINE = "inline"
#: ``result_type`` of a record whose encoded result sits in blob storage at ``result_value``.
BLOB = "blob"


class HitRow(NamedTuple):
    """What serving a hit reads of a record: the shape :meth:`TaskDB.lookup` returns (a plain
    tuple in this order will do).

    ``payload`` is the encoded result (bytes) of an inline record and the blob location (str)
    of a blob record: its type tells which, so a hit reads no ``result_type``. Anything else
    (None for a record of an unknown ``result_type``) is a damaged record.
    """

    payload: Any
    checksum: str | None
    expires_at: Any
    code_fingerprint: str | None

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> HitRow:
        """The hit fields of a full record, as :meth:`TaskDB.get` returns it."""
        placement = {BLOB: "result_value", INLINE: "result_data"}.get(record.get("result_type"))
        return cls(
            None if placement is None else record.get(placement),
            record.get("checksum"),
            record.get("expires_at"),
            record.get("code_fingerprint"),
        )


class TaskRecord(NamedTuple):
    """One cached result, as the core hands it to :meth:`TaskDB.save_record`.

    ``result_type`` is ``"inline"`` (the encoded result is ``result_data``) or ``"blob"`` (the
    result is in blob storage and ``result_value`` is its location). Times are Unix seconds.
    """

    cache_key: str
    func_name: str
    input_id: str
    version: str | None
    result_type: str
    content_type: str | None
    result_value: str | None = None
    result_data: bytes | None = None
    input_preview: str | None = None
    checksum: str | None = None
    size: int | None = None
    duration: float | None = None
    created_at: float | None = None
    expires_at: float | None = None
    code_fingerprint: str | None = None
    cost: float | None = None  # the limiter tokens the computation spent, when paced
    #: What ``explain`` knows of each key argument (:mod:`beautyspot.cachekey.digests`).
    arg_digests: bytes | None = None

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


class RecordQuery(NamedTuple):
    """One page of records for the CLI and the dashboard: filters, order, page.

    ``text`` matches inside the input preview; ``order_by`` is one of :data:`RECORD_ORDERS`.
    """

    func_name: str | None = None
    version: str | None = None
    content_type: str | None = None
    text: str | None = None
    order_by: str = "created_at"
    descending: bool = True
    offset: int = 0
    limit: int = 50


#: Columns a page of records may be ordered by.
RECORD_ORDERS = ("created_at", "func_name", "version", "size", "duration", "hits")


class FunctionCounts(NamedTuple):
    """Calls of one function counted in memory, added to the TaskDB's totals in batches."""

    hits: int = 0
    misses: int = 0
    failures: int = 0


@dataclass(frozen=True)
class FailureRecord:
    """One failed execution: exceptions are recorded, never cached."""

    cache_key: str
    func_name: str
    input_preview: str
    error_type: str
    message: str
    traceback: str
    created_at: float


class TaskDB:
    """Base class and contract of a task-record backend.

    Required (enough for caching; a user's subclass may implement only these four):

    ``init_schema()``
        Create tables/indexes if missing. Called once by the Spot before first use; must be
        safe to call again and from several processes at once.
    ``get(cache_key) -> Mapping | None``
        The record saved under ``cache_key``, or ``None`` when there is none. The mapping holds
        at least ``result_type``, and ``result_value`` (str) and/or ``result_data`` (bytes);
        when present, ``checksum`` and ``expires_at`` are honoured by the core.
    ``save(cache_key, func_name, input_id, version, result_type, content_type,
    result_value=None, result_data=None)``
        Insert or replace the record for ``cache_key``. With ``result_type == "blob"`` the
        result lives in blob storage and ``result_value`` is its location (a str); with
        ``"inline"`` the encoded result is ``result_data`` (bytes). A save must be atomic: a
        reader sees the old record or the new one, never a mix.
    ``get_history(limit)``
        The most recent records, newest first, as mappings.

    Optional (the base implementations degrade as documented on each):
    ``lookup``, ``save_record``, ``delete``, ``record_failure``, ``get_failures``, ``close``;
    for garbage collection (:mod:`beautyspot.maintenance`): ``iter_blob_locations`` and
    ``delete_expired``; for ``lease=``: ``acquire_lease``, ``renew_lease``, ``release_lease``.

    Thread-safety: the Spot calls one TaskDB from many threads; a backend that is not
    thread-safe must guard itself. The base class keeps no state, so a subclass need not call
    ``super().__init__()``.
    """

    #: True when ``get`` is a cheap local read (no network), so an event loop may call it
    #: directly instead of in a worker thread.
    local_reads: bool = False

    def init_schema(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement init_schema()")

    def get(self, cache_key: str) -> Mapping[str, Any] | None:
        raise NotImplementedError(f"{type(self).__name__} must implement get(cache_key)")

    def save(
        self,
        cache_key: str,
        func_name: str,
        input_id: str,
        version: str | None,
        result_type: str,
        content_type: str | None,
        result_value: str | None = None,
        result_data: bytes | None = None,
    ) -> None:
        # A backend that implements save_record gets this one from it.
        if type(self).save_record is TaskDB.save_record:
            raise NotImplementedError(
                f"{type(self).__name__} must implement save(...) (or save_record(record))"
            )
        self.save_record(
            TaskRecord(
                cache_key,
                func_name,
                input_id,
                version,
                result_type,
                content_type,
                result_value=result_value,
                result_data=result_data,
            )
        )

    def get_history(self, limit: int = 1000) -> list[Mapping[str, Any]]:
        raise NotImplementedError(f"{type(self).__name__} must implement get_history(limit)")

    def lookup(self, cache_key: str) -> tuple[Any, ...] | None:
        """The record's :class:`HitRow` fields (a tuple in that order), or None: the read
        behind every hit. The default reads them from :meth:`get`; a backend may override it
        to fetch just those fields.
        """
        record = self.get(cache_key)
        return None if record is None else HitRow.of(record)

    def save_record(self, record: TaskRecord) -> None:
        """Save a full record. The default keeps what :meth:`save` can hold and drops the rest
        (preview, checksum, size, duration, times), so expiry needs a backend that overrides it.
        """
        self.save(
            record.cache_key,
            record.func_name,
            record.input_id,
            record.version,
            record.result_type,
            record.content_type,
            result_value=record.result_value,
            result_data=record.result_data,
        )

    def delete(self, cache_key: str) -> bool:
        """Remove the record for ``cache_key``; True if there was one."""
        raise NotSupportedError(
            f"{type(self).__name__} cannot delete records: implement delete(cache_key) -> bool"
        )

    def iter_blob_locations(self) -> Iterator[str]:
        """The ``result_value`` of every record whose ``result_type`` is ``"blob"``, expired
        or not: the blobs garbage collection must keep."""
        raise NotSupportedError(
            f"{type(self).__name__} cannot list the blobs its records use: implement "
            "iter_blob_locations() to garbage-collect blob storage"
        )

    def delete_expired(self, now: float | None = None) -> int:
        """Remove records whose ``expires_at`` is at or before ``now`` (default: the current
        time); return how many were removed."""
        raise NotSupportedError(
            f"{type(self).__name__} cannot delete expired records: implement "
            "delete_expired(now=None) -> int"
        )

    def record_failure(self, failure: FailureRecord) -> None:
        """Keep a failed execution for inspection. The default drops it (nothing is cached)."""

    def get_failures(self, limit: int = 100) -> list[Mapping[str, Any]]:
        """The most recent failures, newest first."""
        raise NotSupportedError(
            f"{type(self).__name__} does not keep failures: implement "
            "record_failure(failure) and get_failures(limit)"
        )

    def acquire_lease(self, cache_key: str, owner: str, seconds: float) -> bool:
        """Take the lease on ``cache_key`` for ``owner`` for ``seconds``, atomically, unless
        another owner holds a live one; True if ``owner`` holds it now (taking it again
        extends it). Leases let one caller compute a missing key while callers in other
        processes and hosts wait for its record (``@spot.mark(lease=...)``)."""
        raise NotSupportedError(
            f"{type(self).__name__} has no leases: implement acquire_lease, renew_lease and "
            "release_lease, or mark without lease="
        )

    def renew_lease(self, cache_key: str, owner: str, seconds: float) -> bool:
        """Extend ``owner``'s lease to ``seconds`` from now; False if it is no longer theirs
        (it expired and another owner took it)."""
        raise NotSupportedError(f"{type(self).__name__} has no leases: implement renew_lease")

    def release_lease(self, cache_key: str, owner: str) -> None:
        """Give up ``owner``'s lease on ``cache_key``; nothing if it is no longer theirs."""
        raise NotSupportedError(f"{type(self).__name__} has no leases: implement release_lease")

    def find_records(self, query: RecordQuery) -> tuple[list[Mapping[str, Any]], int]:
        """One page of records matching ``query`` (every field but ``result_data``), and how
        many match in all: server-side filtering, ordering and paging, fast on millions of
        records (the CLI's ``ls`` and the dashboard's list)."""
        raise NotSupportedError(
            f"{type(self).__name__} cannot page through records: implement find_records(query)"
        )

    def add_counts(self, counts: Mapping[str, FunctionCounts], hits: Mapping[str, int]) -> None:
        """Add calls counted in memory to the totals: per function name (``counts``) and per
        record (``hits``: cache key -> hits, which stats multiply by the record's duration
        and cost). Additive and atomic, so processes' counts add up."""
        raise NotSupportedError(f"{type(self).__name__} keeps no counts: implement add_counts")

    def get_stats(self) -> list[Mapping[str, Any]]:
        """Per function: ``func_name``, ``records``, ``hits``, ``misses``, ``failures``,
        ``bytes_inline``, ``bytes_blob``, ``time_saved`` (seconds: each record's duration times
        its hits) and ``tokens_saved`` (its limiter cost times its hits)."""
        raise NotSupportedError(f"{type(self).__name__} keeps no stats: implement get_stats")

    def close(self) -> None:
        """Release connections. The default has nothing to release."""
