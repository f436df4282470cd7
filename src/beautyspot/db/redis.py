"""RedisTaskDB: task records in Redis, shared by every process and host that names the server.

Layout, under the prefix ``beautyspot:{namespace}:`` (the namespace is the Spot's name):

- ``r:{cache_key}``: one hash a record, a field for each :class:`~beautyspot.db.base.TaskRecord`
  field that is not None (bytes as stored, text in UTF-8, numbers as their exact ``repr``);
  a record with ``expires_at`` carries a Redis expiry (PEXPIREAT), so the server drops it.
- ``history``: a sorted set of cache keys by ``created_at`` (newest first in ``get_history``).
- ``expiry``: a sorted set of cache keys by ``expires_at``, for ``delete_expired``.
- ``blobs``: a hash from cache key to blob location, for garbage collection.
- ``failures``: a capped list of failed executions (JSON), newest first.
- ``counts``: a hash of calls counted per function (``add_counts``): fields
  ``hits:{func_name}``, ``misses:{func_name}`` and ``failures:{func_name}``.
- ``hits``: a hash from cache key to the hits of its record; a save resets them, a delete
  removes them.
- ``lease:{cache_key}``: the owner computing a missing key (``lease=``), expiring on the
  server's clock.
- ``schema``: the layout version, so a newer layout is refused rather than guessed at.

A save writes the record and its index entries in one MULTI/EXEC transaction; a hit reads the
record's hit fields with one HMGET. ``redis`` is imported only when a Redis URL is used.
"""

from __future__ import annotations

import heapq
import json
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.connection import ConnectionPool, parse_url
from redis.retry import Retry

from beautyspot._registry import redacted
from beautyspot.db.base import (
    BLOB,
    INLINE,
    FailureRecord,
    FunctionCounts,
    RecordQuery,
    TaskDB,
    TaskRecord,
)
from beautyspot.db.checks import check_counts, check_limit, check_query, stats_rows
from beautyspot.errors import ConfigurationError, StorageError

__all__ = ["RedisTaskDB"]

#: The key layout this module writes; a namespace marked with a larger one is refused.
LAYOUT_VERSION = 1

#: The fields a hit reads, in one HMGET.
_HIT_FIELDS = (b"result_type", b"result_value", b"result_data", b"checksum", b"expires_at",
               b"code_fingerprint")  # fmt: skip
_BLOB_TYPE, _INLINE_TYPE = BLOB.encode(), INLINE.encode()
_STORED_FIELDS = TaskRecord._fields[1:]  # the cache key is the hash's own key


def _text(raw: bytes) -> str:
    return raw.decode("utf-8")


def _same(raw: bytes) -> bytes:
    return raw


# How each stored field reads back; a field this version does not know is left out.
_DECODERS: dict[str, Any] = {name: _text for name in _STORED_FIELDS}
_DECODERS.update(
    result_data=_same, arg_digests=_same, size=int, duration=float, created_at=float,
    expires_at=float, cost=float,
)  # fmt: skip
#: What a page of records shows of each record: every field but the result's bytes.
_ROW_FIELDS = tuple(name for name in _STORED_FIELDS if name != "result_data")
#: What stats read of each record.
_STATS_FIELDS = ("func_name", "result_type", "size", "duration", "cost")
_COUNT_KINDS = FunctionCounts._fields  # hits, misses, failures
#: Records read per round trip when a page or the stats go through every record.
_SCAN_CHUNK = 1000

#: URL query parameters passed on to redis-py as they are (the timeouts are ours to resolve).
_PASSED_ON = frozenset({"db", "client_name", "health_check_interval", "socket_keepalive"})
_PASSED_ON_TLS = frozenset({"ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile",
                            "ssl_check_hostname", "ssl_min_version"})  # fmt: skip
_TIMEOUTS = ("socket_connect_timeout", "socket_timeout")
#: What parse_url takes from the URL's address rather than its query.
_FROM_ADDRESS = frozenset({"host", "port", "username", "password", "connection_class"})

#: Default seconds to open a connection, and to wait for an answer.
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_TIMEOUT = 5.0
#: Failures kept per namespace by default; older ones are dropped.
DEFAULT_MAX_FAILURES = 10_000

_PRUNE_CHUNK = 1000
_WATCH_ATTEMPTS = 50


class RedisTaskDB(TaskDB):
    """Task records in Redis, kept apart per Spot by a key prefix.

    :param url: ``redis://[[user]:password@]host[:port][/db]`` or ``rediss://`` (TLS). Query
        parameters: ``socket_connect_timeout``, ``socket_timeout`` (seconds), and redis-py's
        ``client_name``, ``health_check_interval``, ``socket_keepalive``, ``db``; with
        ``rediss://`` also its ``ssl_*`` options. Others are refused.
    :param namespace: keys live under ``beautyspot:{namespace}:`` (``:`` and ``%`` in it are
        percent-escaped); the Spot passes its name. Default ``"default"``.
    :param socket_connect_timeout: seconds to open a connection (default 5); overrides the URL.
    :param socket_timeout: seconds to wait for an answer (default 5); overrides the URL.
    :param max_failures: failed executions kept; older ones are dropped (default 10,000).

    Connections come from one pool, shared by threads and rebuilt in a forked child; a dead one
    is replaced on its next use. A call the server cannot answer (unreachable, timed out, lost
    mid-run) raises :class:`~beautyspot.errors.StorageError` naming ``host:port``, without
    retrying: ``spot.map(..., retry_on=StorageError)`` retries whole items, and the next call
    reconnects once the server is back. The password never appears in a repr or an error.

    Expired records are dropped by the server itself; ``delete_expired`` prunes what indexes
    them. Run the server with a ``noeviction`` (or ``volatile-*``) maxmemory policy: an evicted
    index would hide records from history and garbage collection. Needs Redis 6.2 or newer.
    A RedisTaskDB pickles as its URL and options, never as its connections.

    >>> RedisTaskDB("redis://:s3cret@cache.internal:6379/0", namespace="api")
    RedisTaskDB('redis://:***@cache.internal:6379/0', namespace='api')
    >>> db = RedisTaskDB("redis://127.0.0.1:6379/0", namespace="demo")
    >>> db.save("k1", "mod.fn", "in1", None, "inline", None, result_data=b"\\x01")  # doctest: +SKIP
    >>> db.lookup("k1")  # doctest: +SKIP
    (b'\\x01', None, None, None)
    """

    SCHEMES = ("redis", "rediss")
    local_reads = False

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "default",
        socket_connect_timeout: float | None = None,
        socket_timeout: float | None = None,
        max_failures: int = DEFAULT_MAX_FAILURES,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be a redis:// or rediss:// URL string, not {url!r}")
        if not isinstance(namespace, str) or not namespace:
            raise ConfigurationError(f"namespace must be a non-empty string, not {namespace!r}")
        if isinstance(max_failures, bool) or not isinstance(max_failures, int):
            raise TypeError(f"max_failures must be an int, not {max_failures!r}")
        if max_failures < 1:
            raise ConfigurationError(f"max_failures must be 1 or more, not {max_failures}")
        self.url = url
        self.namespace = namespace
        self.max_failures = max_failures
        # Only what the caller gave: a pickled copy resolves the rest from the URL again.
        self._given = {
            "socket_connect_timeout": socket_connect_timeout,
            "socket_timeout": socket_timeout,
        }
        options = _connection_options(url)
        for name in _TIMEOUTS:
            chosen = self._given[name]
            if chosen is not None:
                options[name] = _check_seconds(name, chosen, url)
        self.connect_timeout: float = options["socket_connect_timeout"]
        self.timeout: float = options["socket_timeout"]
        self._password = options.get("password")
        host, port = options.get("host", "localhost"), options.get("port", 6379)
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._db_number = options.get("db", 0)
        # No retries here: a failed call raises at once, within the timeouts.
        options["retry"] = Retry(NoBackoff(), 0)
        self._pool = ConnectionPool(**options)
        self._client = redis.Redis(connection_pool=self._pool)

        escaped = namespace.replace("%", "%25").replace(":", "%3A")
        prefix = f"beautyspot:{escaped}:"
        self._prefix = prefix
        self._record_prefix = (prefix + "r:").encode()
        self._history = prefix + "history"
        self._expiry = prefix + "expiry"
        self._blobs = prefix + "blobs"
        self._failures = prefix + "failures"
        self._schema = prefix + "schema"
        self._counts = prefix + "counts"
        self._hits = prefix + "hits"

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str | None = None,
        socket_connect_timeout: float | None = None,
        socket_timeout: float | None = None,
        max_failures: int = DEFAULT_MAX_FAILURES,
    ) -> RedisTaskDB:
        """Open ``redis://host:port/db`` or ``rediss://...`` for the Spot named ``namespace``
        (``"default"`` when None). Nothing connects until the first call.

        >>> RedisTaskDB.from_url("rediss://cache:6380/2?socket_timeout=1.5", namespace="x").timeout
        1.5
        """
        return cls(
            url,
            namespace="default" if namespace is None else namespace,
            socket_connect_timeout=socket_connect_timeout,
            socket_timeout=socket_timeout,
            max_failures=max_failures,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        options = dict(self._given, namespace=self.namespace, max_failures=self.max_failures)
        return (_rebuild, (type(self), self.url, options))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redacted(self.url)!r}, namespace={self.namespace!r})"

    # -- the contract -----------------------------------------------------------------------

    def init_schema(self) -> None:
        """Check the server answers and mark the namespace with the key layout version;
        refuse one written by a newer beautyspot. Nothing else needs creating."""
        try:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.setnx(self._schema, LAYOUT_VERSION)
                pipe.get(self._schema)
                _, stored = pipe.execute()
        except redis.RedisError as exc:
            self._fail(exc, "open the task records")
        if stored is None:  # removed between the two commands: nothing to refuse
            return
        if not stored.isdigit():
            raise ConfigurationError(
                f"key {self._schema!r} on Redis at {self.address} holds {stored!r}, not a "
                "beautyspot layout version: use another Spot name or database"
            )
        if int(stored) > LAYOUT_VERSION:
            raise ConfigurationError(
                f"namespace {self.namespace!r} on Redis at {self.address} holds records in "
                f"layout version {int(stored)}, newer than this beautyspot knows "
                f"({LAYOUT_VERSION}): upgrade beautyspot, or use another Spot name or database"
            )

    def get(self, cache_key: str) -> dict[str, Any] | None:
        """Every field of the record under ``cache_key`` (None for the missing ones), or
        ``None`` when there is no record (or the server has expired it)."""
        key = cache_key.encode()
        try:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.hgetall(self._record_prefix + key)
                pipe.hget(self._hits, key)  # kept apart, as SQLite keeps them in a column
                raw, hits = pipe.execute()
        except redis.RedisError as exc:
            self._fail(exc, "read a record")
        if not raw:
            return None
        record = _record_of(cache_key, raw)
        record["hits"] = int(hits or 0)
        return record

    def lookup(self, cache_key: str) -> tuple[Any, ...] | None:
        """The :class:`~beautyspot.db.base.HitRow` fields as a plain tuple, in one round trip:
        the hot path of every cached call."""
        try:
            kind, location, data, checksum, expires_at, fingerprint = self._client.execute_command(
                "HMGET", self._record_prefix + cache_key.encode(), *_HIT_FIELDS
            )
        except redis.RedisError as exc:
            self._fail(exc, "look up a record")
        if kind is None:
            return None
        if kind == _BLOB_TYPE:
            payload: Any = None if location is None else location.decode()
        else:
            payload = data if kind == _INLINE_TYPE else None
        return (
            payload,
            None if checksum is None else checksum.decode(),
            None if expires_at is None else float(expires_at),
            None if fingerprint is None else fingerprint.decode(),
        )

    def save_record(self, record: TaskRecord) -> None:
        """Insert or replace ``record`` and its index entries in one transaction; a missing
        ``created_at`` becomes now. A finite ``expires_at`` becomes the key's expiry."""
        created_at = time.time() if record.created_at is None else record.created_at
        fields = {
            name: value
            for name, value in zip(_STORED_FIELDS, record[1:], strict=True)
            if value is not None
        }
        fields["created_at"] = created_at
        key = record.cache_key
        record_key = self._record_prefix + key.encode()
        expires_at = record.expires_at
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(record_key)
                pipe.hset(record_key, mapping=fields)
                if expires_at is not None and math.isfinite(expires_at):
                    # Rounded up: the server never drops a record before the core would.
                    pipe.pexpireat(record_key, math.ceil(expires_at * 1000))
                    pipe.zadd(self._expiry, {key: expires_at})
                else:
                    pipe.zrem(self._expiry, key)
                pipe.zadd(self._history, {key: created_at})
                if record.result_type == BLOB and record.result_value is not None:
                    pipe.hset(self._blobs, key, record.result_value)
                else:
                    pipe.hdel(self._blobs, key)
                pipe.hdel(self._hits, key)  # a new record: its hits start again
                pipe.execute()
        except redis.RedisError as exc:
            self._fail(exc, "save a record")

    def get_history(self, limit: int = 1000) -> list[Mapping[str, Any]]:
        """Up to ``limit`` records, newest ``created_at`` first. Index entries of records the
        server has expired are skipped, and pruned."""
        wanted = check_limit(limit)
        records: list[Mapping[str, Any]] = []
        seen: set[bytes] = set()
        gone: list[bytes] = []
        start = 0
        try:
            while len(records) < wanted:
                page = wanted - len(records)
                keys = self._client.zrevrange(self._history, start, start + page - 1)
                with self._client.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.hgetall(self._record_prefix + key)
                    rows = pipe.execute()
                for key, raw in zip(keys, rows, strict=True):
                    if key in seen:  # a save moved it while we paged
                        continue
                    seen.add(key)
                    if raw:
                        records.append(_record_of(key.decode(), raw))
                    else:
                        gone.append(key)
                if len(keys) < page:
                    break
                start += len(keys)
            if gone:
                self._prune(gone, time.time())
        except redis.RedisError as exc:
            self._fail(exc, "read the history")
        return records[:wanted]

    def delete(self, cache_key: str) -> bool:
        """Remove the record for ``cache_key`` and its index entries; True if there was one."""
        record_key = self._record_prefix + cache_key.encode()
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(record_key)
                pipe.zrem(self._history, cache_key)
                pipe.zrem(self._expiry, cache_key)
                pipe.hdel(self._blobs, cache_key)
                pipe.hdel(self._hits, cache_key)
                deleted = pipe.execute()[0]
        except redis.RedisError as exc:
            self._fail(exc, "delete a record")
        return bool(deleted)

    def record_failure(self, failure: FailureRecord) -> None:
        """Keep one failed execution; beyond ``max_failures`` the oldest are dropped."""
        entry = json.dumps(asdict(failure))
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.lpush(self._failures, entry)
                pipe.ltrim(self._failures, 0, self.max_failures - 1)
                pipe.execute()
        except redis.RedisError as exc:
            self._fail(exc, "record a failure")

    def get_failures(self, limit: int = 100) -> list[Mapping[str, Any]]:
        """Up to ``limit`` failures, newest first."""
        wanted = check_limit(limit)
        if wanted == 0:
            return []
        try:
            entries = self._client.lrange(self._failures, 0, wanted - 1)
        except redis.RedisError as exc:
            self._fail(exc, "read failures")
        return [json.loads(entry) for entry in entries]

    def find_records(self, query: RecordQuery) -> tuple[list[Mapping[str, Any]], int]:
        """One page of records matching ``query`` (see :class:`~beautyspot.db.RecordQuery`),
        and how many match in all. Rows hold every field but ``result_data`` (None where
        missing), plus ``hits`` and ``result_size`` (bytes of the stored result, what
        ``order_by="size"`` sorts by). Missing values sort as the smallest; ties go by
        ``cache_key`` in the same direction; ``text`` ignores case (Python's ``casefold``).

        The unfiltered page by ``created_at`` reads its slice of the history index (fast on
        millions of records). Redis has no other index: filters and other orders read every
        record, a thousand per round trip, keeping only ``offset + limit`` rows in memory;
        a record saved meanwhile may be left out of that pass, never shown twice.
        """
        check_query(query)
        try:
            if query.order_by == "created_at" and not _filters_of(query):
                return self._history_page(query)
            return self._scanned_page(query)
        except redis.RedisError as exc:
            self._fail(exc, "page through records")

    def add_counts(self, counts: Mapping[str, FunctionCounts], hits: Mapping[str, int]) -> None:
        """Add counted calls to the per-function totals and each record's hits with HINCRBY,
        in one MULTI/EXEC transaction. Hits of a key with no record (deleted meanwhile) are
        kept under its key until a save or delete of that key clears them; stats read the hits
        of existing records only."""
        per_function, per_key = check_counts(counts, hits)
        if not per_function and not per_key:
            return
        try:
            with self._client.pipeline(transaction=True) as pipe:
                for name, *numbers in per_function:
                    for kind, added in zip(_COUNT_KINDS, numbers, strict=True):
                        if added:
                            pipe.hincrby(self._counts, f"{kind}:{name}", added)
                for key, added in per_key:
                    pipe.hincrby(self._hits, key, added)
                pipe.execute()
        except redis.RedisError as exc:
            self._fail(exc, "add call counts")

    def get_stats(self) -> list[Mapping[str, Any]]:
        """Per function: records, counted hits, misses and failures (or the failures kept, when
        more: see :func:`beautyspot.db.checks.stats_rows`), bytes inline and in blobs, and the
        time and tokens its records' hits saved. Reads every record, a thousand per round
        trip."""
        records: dict[str | None, list[Any]] = {}
        try:
            for keys in self._history_chunks():
                for row in self._read(keys, _STATS_FIELDS, hits=True):
                    if row is not None:
                        _add_to_stats(records, row)
            counts: dict[str, list[Any]] = {}
            for field, value in self._client.hgetall(self._counts).items():
                kind, _, name = field.decode().partition(":")
                if kind in _COUNT_KINDS:
                    totals = counts.setdefault(name, [name, 0, 0, 0])
                    totals[1 + _COUNT_KINDS.index(kind)] = int(value)
            entries = self._client.lrange(self._failures, 0, -1)
        except redis.RedisError as exc:
            self._fail(exc, "read the stats")
        failures = Counter(json.loads(entry).get("func_name") for entry in entries)
        return stats_rows(
            [[name, *totals] for name, totals in records.items()],
            counts.values(),
            failures.items(),
        )

    def count(self) -> int:
        """How many records the namespace holds (those the server has not expired)."""
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.zcard(self._history)
                pipe.zcount(self._expiry, "-inf", time.time())
                indexed, expired = pipe.execute()
        except redis.RedisError as exc:
            self._fail(exc, "count records")
        return max(0, int(indexed) - int(expired))

    def delete_expired(self, now: float | None = None) -> int:
        """Remove records whose ``expires_at`` is at or before ``now`` (default: the current
        time) with their index entries; return how many. A record the server has already
        dropped counts: its index entries are what remained of it."""
        at = time.time() if now is None else float(now)
        removed = 0
        try:
            while keys := self._client.zrangebyscore(
                self._expiry, "-inf", at, start=0, num=_PRUNE_CHUNK
            ):
                pruned = self._prune(keys, at)
                removed += pruned
                if pruned == 0:  # every candidate was re-saved meanwhile
                    break
        except redis.RedisError as exc:
            self._fail(exc, "delete expired records")
        return removed

    def iter_blob_locations(self) -> Iterator[str]:
        """The location of every blob a record points to, expired or not (until
        ``delete_expired`` prunes it)."""
        try:
            for _, location in self._client.hscan_iter(self._blobs, count=1000):
                yield location.decode()
        except redis.RedisError as exc:
            self._fail(exc, "list blob locations")

    def acquire_lease(self, cache_key: str, owner: str, seconds: float) -> bool:
        """Take or extend ``owner``'s lease unless another owner's is live; the server's
        clock times it (PX), so hosts whose clocks disagree still agree on who holds it."""
        key, ms = self._lease_key(cache_key), _lease_ms(seconds)
        try:
            if self._client.set(key, owner, nx=True, px=ms):  # none held: one round trip
                return True
            return self._if_held_by(
                key, owner, lambda pipe: pipe.set(key, owner, px=ms), or_unheld=True
            )
        except redis.RedisError as exc:
            self._fail(exc, "take a lease")

    def renew_lease(self, cache_key: str, owner: str, seconds: float) -> bool:
        """Extend ``owner``'s lease to ``seconds`` from now; False if it is no longer theirs."""
        key, ms = self._lease_key(cache_key), _lease_ms(seconds)
        try:
            return self._if_held_by(
                key, owner, lambda pipe: pipe.set(key, owner, px=ms), or_unheld=False
            )
        except redis.RedisError as exc:
            self._fail(exc, "renew a lease")

    def release_lease(self, cache_key: str, owner: str) -> None:
        """Give up ``owner``'s lease, if it is still theirs."""
        key = self._lease_key(cache_key)
        try:
            self._if_held_by(key, owner, lambda pipe: pipe.delete(key), or_unheld=False)
        except redis.RedisError as exc:
            self._fail(exc, "release a lease")

    def close(self) -> None:
        """Close the pool's connections; the next call opens new ones."""
        self._pool.disconnect()

    # -- helpers ----------------------------------------------------------------------------

    def _history_page(self, query: RecordQuery) -> tuple[list[Mapping[str, Any]], int]:
        """The unfiltered page by ``created_at``: its slice of the history index. Equal times
        sort by key in the index's own order, the order asked for."""
        rows: list[Mapping[str, Any]] = []
        for _ in range(3):  # index entries of records the server expired are pruned, then again
            if query.limit == 0:
                break
            last = query.offset + query.limit - 1
            read = self._client.zrevrange if query.descending else self._client.zrange
            keys = read(self._history, query.offset, last)
            found = self._read(keys, _ROW_FIELDS, hits=True)
            gone = [key for key, row in zip(keys, found, strict=True) if row is None]
            rows = [row for row in found if row is not None]
            if not gone or not self._prune(gone, time.time()):
                break
        return rows, self.count()

    def _scanned_page(self, query: RecordQuery) -> tuple[list[Mapping[str, Any]], int]:
        """A page read by going through every record, a few fields each (those the filters
        and the order need), keeping the best ``offset + limit``; then the page's rows."""
        matches = _filters_of(query)
        needed = [name for name in ("func_name", "version", "content_type") if getattr(query, name)]
        if query.text is not None:
            needed.append("input_preview")
        order = query.order_by
        if order in ("func_name", "version", "duration"):
            needed.append(order)
        elif order == "size":
            needed += ["size", "result_type"]
        total = 0
        gone: list[bytes] = []

        def matching() -> Iterator[dict[str, Any]]:
            nonlocal total
            for keys in self._history_chunks():
                rows = self._read(keys, needed, hits=order == "hits")
                for key, row in zip(keys, rows, strict=True):
                    if row is None:
                        gone.append(key)
                    elif all(match(row) for match in matches):
                        total += 1
                        yield row

        if query.limit == 0:
            deque(matching(), maxlen=0)  # only the count
            best: list[dict[str, Any]] = []
        else:
            pick = heapq.nlargest if query.descending else heapq.nsmallest
            wanted = query.offset + query.limit
            best = pick(wanted, matching(), key=_sort_key(order))  # reads them all
        if gone:
            self._prune(gone, time.time())
        page = [row["cache_key"].encode() for row in best[query.offset :]]
        rows = [row for row in self._read(page, _ROW_FIELDS, hits=True) if row is not None]
        return rows, total

    def _history_chunks(self) -> Iterator[list[bytes]]:
        """Every key of the history index, newest first, ``_SCAN_CHUNK`` a round trip. A cursor
        on (time, key) rather than on rank: a record saved meanwhile moves to the newest end,
        already passed, so no key comes twice."""
        high: Any = "+inf"
        seen_at_high = 0  # keys of the chunk boundary's time already given
        while True:
            entries = self._client.zrange(
                self._history, high, "-inf", desc=True, byscore=True, withscores=True,
                offset=seen_at_high, num=_SCAN_CHUNK,
            )  # fmt: skip
            if not entries:
                return
            yield [key for key, _ in entries]
            if len(entries) < _SCAN_CHUNK:
                return
            boundary = entries[-1][1]
            tied = sum(1 for _, score in entries if score == boundary)
            seen_at_high = tied + (seen_at_high if high == boundary else 0)
            high = boundary

    def _read(
        self, keys: list[bytes], fields: Iterable[str], *, hits: bool = False
    ) -> list[dict[str, Any] | None]:
        """``fields`` of the records of ``keys`` (with ``hits`` their hits too, and with
        ``size`` their ``result_size``), None for a record the server has expired: one round
        trip, two when inline records without a size need their bytes counted. Each field is
        a reply to parse, so a pass over every record asks for only those it needs."""
        if not keys:
            return []
        names = tuple(dict.fromkeys(("created_at", *fields)))  # every record has created_at
        asked = [name.encode() for name in names]
        with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(self._record_prefix + key, asked)
            if hits:
                pipe.hmget(self._hits, keys)
            replies = pipe.execute()
        per_key_hits = replies.pop() if hits else None
        rows: list[dict[str, Any] | None] = []
        for index, (key, values) in enumerate(zip(keys, replies, strict=True)):
            if values[0] is None:
                rows.append(None)
                continue
            row: dict[str, Any] = {"cache_key": key.decode()}
            for name, value in zip(names, values, strict=True):
                row[name] = None if value is None else _DECODERS[name](value)
            if per_key_hits is not None:
                row["hits"] = int(per_key_hits[index] or 0)
            rows.append(row)
        if "size" in names:
            self._add_result_sizes(rows)
        return rows

    def _add_result_sizes(self, rows: list[dict[str, Any] | None]) -> None:
        """Set each row's ``result_size``: its ``size``, or the length of an inline record's
        bytes when it has none (HSTRLEN: the bytes are not sent)."""
        unsized = []
        for row in rows:
            if row is not None:
                row["result_size"] = row["size"]
                if row["size"] is None and row.get("result_type") == INLINE:
                    unsized.append(row)
        if unsized:
            with self._client.pipeline(transaction=False) as pipe:
                for row in unsized:
                    pipe.hstrlen(self._record_prefix + row["cache_key"].encode(), "result_data")
                for row, length in zip(unsized, pipe.execute(), strict=True):
                    row["result_size"] = length

    def _prune(self, keys: list[bytes], at: float) -> int:
        """Remove the records among ``keys`` that expire at or before ``at``, with their index
        entries; a save racing with this wins (the transaction watches the records)."""
        record_keys = [self._record_prefix + key for key in keys]
        with self._client.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_ATTEMPTS):
                try:
                    pipe.watch(*record_keys)
                    scores = pipe.zmscore(self._expiry, keys)
                    doomed = [
                        key
                        for key, score in zip(keys, scores, strict=True)
                        if score is not None and score <= at
                    ]
                    if not doomed:
                        pipe.unwatch()
                        return 0
                    pipe.multi()
                    pipe.delete(*(self._record_prefix + key for key in doomed))
                    pipe.zrem(self._history, *doomed)
                    pipe.zrem(self._expiry, *doomed)
                    pipe.hdel(self._blobs, *doomed)
                    pipe.hdel(self._hits, *doomed)
                    pipe.execute()
                    return len(doomed)
                except redis.WatchError:
                    continue
        raise StorageError(
            f"Redis at {self.address}: records of namespace {self.namespace!r} kept changing "
            f"while expired ones were removed ({_WATCH_ATTEMPTS} attempts); try again later"
        )

    def _lease_key(self, cache_key: str) -> str:
        return f"{self._prefix}lease:{cache_key}"

    def _if_held_by(
        self, key: str, owner: str, change: Callable[[Any], object], *, or_unheld: bool
    ) -> bool:
        """Apply ``change`` to the lease at ``key`` in a transaction if ``owner`` holds it (or,
        with ``or_unheld``, nobody does); True if applied. A racing change makes it re-check."""
        mine = owner.encode()
        with self._client.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_ATTEMPTS):
                try:
                    pipe.watch(key)
                    holder = pipe.get(key)
                    if holder != mine and (holder is not None or not or_unheld):
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    change(pipe)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue
        raise StorageError(
            f"Redis at {self.address}: the lease {key!r} kept changing ({_WATCH_ATTEMPTS} "
            "attempts); try again later"
        )

    def _fail(self, exc: redis.RedisError, doing: str) -> NoReturn:
        """Raise ``exc`` as a StorageError that names the server (never the password)."""
        detail = str(exc) or type(exc).__name__
        leaks = False
        if self._password:
            for secret in {self._password, _quoted_password(self.url)}:
                if secret and secret in detail:
                    detail, leaks = detail.replace(secret, "***"), True
        where = f"Redis at {self.address} (db {self._db_number})"
        if isinstance(exc, redis.AuthenticationError):
            message = (
                f"cannot {doing}: {where} refused the credentials ({detail}); check the user "
                "and password in the URL"
            )
        elif isinstance(exc, redis.TimeoutError):
            message = (
                f"cannot {doing}: {where} did not answer in time ({detail}; connect timeout "
                f"{self.connect_timeout:g} s, read timeout {self.timeout:g} s); the call may "
                "be retried"
            )
        elif isinstance(exc, redis.ConnectionError):
            message = (
                f"cannot {doing}: {where} is unreachable ({detail}); check that the server "
                "is running and the URL's host and port. The call may be retried: the next "
                "one reconnects"
            )
        elif isinstance(exc, redis.exceptions.InvalidResponse):
            message = (
                f"cannot {doing}: what answered at {where} does not speak Redis ({detail}); "
                "check the URL's host and port"
            )
        elif isinstance(exc, redis.ResponseError):
            message = f"cannot {doing}: {where} refused the command ({detail})"
        else:
            message = f"cannot {doing} on {where}: {type(exc).__name__}: {detail}"
        if leaks:
            raise StorageError(message) from None
        raise StorageError(message) from exc


def _filters_of(query: RecordQuery) -> list[Callable[[Mapping[str, Any]], bool]]:
    """One test per filter ``query`` sets."""
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    for name in ("func_name", "version", "content_type"):
        wanted = getattr(query, name)
        if wanted is not None:
            tests.append(lambda row, name=name, wanted=wanted: row[name] == wanted)
    if query.text is not None:
        needle = query.text.casefold()
        tests.append(lambda row: needle in (row["input_preview"] or "").casefold())
    return tests


def _sort_key(order_by: str) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A row's place in ``order_by`` order: a missing value first, ties by key."""
    column = "result_size" if order_by == "size" else order_by

    def key(row: Mapping[str, Any]) -> tuple[Any, ...]:
        value = row[column]
        return (value is not None, value, row["cache_key"])

    return key


def _add_to_stats(records: dict[str | None, list[Any]], row: Mapping[str, Any]) -> None:
    """Add a record to its function's [records, bytes_inline, bytes_blob, time_saved,
    tokens_saved]."""
    totals = records.setdefault(row["func_name"], [0, 0, 0, 0.0, 0.0])
    totals[0] += 1
    if row["result_type"] == INLINE:
        totals[1] += row["result_size"] or 0
    elif row["result_type"] == BLOB:
        totals[2] += row["size"] or 0
    hits = row["hits"]
    if hits:
        totals[3] += (row["duration"] or 0.0) * hits
        totals[4] += (row["cost"] or 0.0) * hits


def _rebuild(cls: type[RedisTaskDB], url: str, options: dict[str, Any]) -> RedisTaskDB:
    """Unpickle: a new RedisTaskDB from the configuration, with a pool of its own."""
    return cls(url, **options)


def _record_of(cache_key: str, raw: Mapping[bytes, bytes]) -> dict[str, Any]:
    """A stored hash as the mapping ``get`` returns: every TaskRecord field, None if absent."""
    record: dict[str, Any] = dict.fromkeys(TaskRecord._fields)
    record["cache_key"] = cache_key
    for name, value in raw.items():
        field = name.decode()
        decode = _DECODERS.get(field)
        if decode is not None:
            record[field] = decode(value)
    return record


def _connection_options(url: str) -> dict[str, Any]:
    """redis-py's connection keywords for ``url``, with both timeouts resolved; a URL that is
    not ``redis://`` or ``rediss://``, or carries an option we do not pass on, is refused."""
    shown = redacted(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigurationError(
            f"database URL {shown!r} is malformed: write redis://[:password@]host[:port][/db]"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in RedisTaskDB.SCHEMES or not parts.netloc:
        raise ConfigurationError(
            f"database URL {shown!r} is not a Redis URL: write redis://host:port/db "
            "(or rediss:// for TLS)"
        )
    path = unquote(parts.path).strip("/")
    if path and not path.isdigit():
        raise ConfigurationError(
            f"database URL {shown!r}: the path must be a database number, like /0"
        )
    if parts.fragment:
        raise ConfigurationError(f"database URL {shown!r} must carry no #fragment")
    try:
        options = parse_url(url)
    except ValueError as exc:
        raise ConfigurationError(f"database URL {shown!r}: {exc}") from None
    allowed = _PASSED_ON | set(_TIMEOUTS) | (_PASSED_ON_TLS if scheme == "rediss" else set())
    query_names = {name for name in options if name not in _FROM_ADDRESS}
    unknown = sorted(query_names - allowed)
    if unknown:
        raise ConfigurationError(
            f"database URL {shown!r}: unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(allowed))}"
        )
    defaults = (DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT)
    for name, default in zip(_TIMEOUTS, defaults, strict=True):
        options[name] = _check_seconds(name, options.get(name, default), url)
    return options


def _quoted_password(url: str) -> str | None:
    try:
        return urlsplit(url).netloc.rpartition("@")[0].partition(":")[2] or None
    except ValueError:
        return None


def _check_seconds(name: str, value: Any, url: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ConfigurationError(
            f"{name}={value!r} for {redacted(url)!r}: must be a positive, finite number of seconds"
        )
    return float(value)


def _lease_ms(seconds: float) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"lease seconds must be a number, not {seconds!r}")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigurationError(f"lease seconds must be positive and finite, not {seconds!r}")
    return max(1, math.ceil(seconds * 1000))
