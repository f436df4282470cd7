"""PostgresTaskDB: task records in PostgreSQL, shared by every process and host that reaches it.

psycopg 3 and psycopg_pool are imported with this module, which the URL registry loads only
for a ``postgresql://`` URL (``pip install "beautyspot[postgres]"``).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from beautyspot._registry import redacted, scheme_of
from beautyspot.db.base import (
    BLOB,
    FailureRecord,
    FunctionCounts,
    RecordQuery,
    TaskDB,
    TaskRecord,
)
from beautyspot.db.checks import check_counts, check_limit, check_query, stats_rows
from beautyspot.errors import ConfigurationError, StorageError

__all__ = ["MIGRATIONS", "PostgresTaskDB"]

_T = TypeVar("_T")

#: Schema steps: ``MIGRATIONS[n]`` takes a database from version n to n + 1 (the highest
#: ``version`` in ``beautyspot_schema``), in one transaction. Append a step to change the
#: schema; never edit a released one. Version 1 is SQLite's version-2 layout.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE beautyspot_tasks (
            cache_key text PRIMARY KEY,
            result_type text,
            result_value text,
            result_data bytea,
            checksum text,
            expires_at double precision,
            code_fingerprint text,
            func_name text,
            input_id text,
            version text,
            content_type text,
            size bigint,
            duration double precision,
            created_at double precision,
            input_preview text,
            cost double precision,
            hits bigint NOT NULL DEFAULT 0
        )""",
        # History pages newest first; stats group by function; pruning finds expired records.
        """CREATE INDEX beautyspot_tasks_history
            ON beautyspot_tasks (created_at DESC NULLS LAST, cache_key)""",
        "CREATE INDEX beautyspot_tasks_func_name ON beautyspot_tasks (func_name)",
        """CREATE INDEX beautyspot_tasks_expires_at ON beautyspot_tasks (expires_at)
            WHERE expires_at IS NOT NULL""",
        """CREATE TABLE beautyspot_failures (
            id bigserial PRIMARY KEY,
            cache_key text,
            func_name text,
            input_preview text,
            error_type text,
            message text,
            traceback text,
            created_at double precision
        )""",
        # Calls counted in memory and added here in batches (hits of each record: tasks.hits).
        """CREATE TABLE beautyspot_counts (
            func_name text PRIMARY KEY,
            hits bigint NOT NULL DEFAULT 0,
            misses bigint NOT NULL DEFAULT 0,
            failures bigint NOT NULL DEFAULT 0
        )""",
        # Leases (lease=), timed by the server's clock so hosts need not agree on the time.
        """CREATE TABLE beautyspot_leases (
            cache_key text PRIMARY KEY,
            owner text NOT NULL,
            expires_at timestamptz NOT NULL
        )""",
    ),
    # Per-argument digests (explain): older records keep NULL, and explain says so.
    ("ALTER TABLE beautyspot_tasks ADD COLUMN arg_digests bytea",),
)

# A live lease of another owner makes the upsert change nothing (rowcount 0).
_ACQUIRE_LEASE = """INSERT INTO beautyspot_leases (cache_key, owner, expires_at)
    VALUES (%(key)s, %(owner)s, clock_timestamp() + make_interval(secs => %(seconds)s))
    ON CONFLICT (cache_key) DO UPDATE
    SET owner = excluded.owner, expires_at = excluded.expires_at
    WHERE beautyspot_leases.expires_at <= clock_timestamp()
        OR beautyspot_leases.owner = excluded.owner"""
_RENEW_LEASE = """UPDATE beautyspot_leases
    SET expires_at = clock_timestamp() + make_interval(secs => %(seconds)s)
    WHERE cache_key = %(key)s AND owner = %(owner)s"""
_RELEASE_LEASE = "DELETE FROM beautyspot_leases WHERE cache_key = %(key)s AND owner = %(owner)s"

_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS beautyspot_schema (
    version integer PRIMARY KEY,
    applied_at double precision NOT NULL
)"""
_SCHEMA_EXISTS = "SELECT to_regclass('beautyspot_schema') IS NOT NULL"
_SCHEMA_VERSION = "SELECT coalesce(max(version), 0) FROM beautyspot_schema"
_SCHEMA_STEP_DONE = "INSERT INTO beautyspot_schema (version, applied_at) VALUES (%s, %s)"
# One lock per PostgreSQL schema (the tables live in the first schema of the search_path), so
# databases separated by schema migrate independently. 0x62737074 is "bspt".
_SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(1651732596, hashtext(coalesce(current_schema(), '')))"

_TASK_COLUMNS = TaskRecord._fields
_FAILURE_COLUMNS = tuple(field.name for field in fields(FailureRecord))
# A save replaces the whole record, its hits included (as SQLite's INSERT OR REPLACE does).
_SAVE = (
    f"INSERT INTO beautyspot_tasks ({', '.join(_TASK_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(_TASK_COLUMNS))}) "
    "ON CONFLICT (cache_key) DO UPDATE SET "
    + ", ".join(f"{column} = EXCLUDED.{column}" for column in _TASK_COLUMNS[1:])
    + ", hits = 0"
)
_GET = "SELECT * FROM beautyspot_tasks WHERE cache_key = %s"
# HitRow's fields. The location (text) and the bytes (bytea) cannot share a column, so each
# has its own and only the one the record uses is sent; the other is NULL.
_LOOKUP = (
    "SELECT CASE result_type WHEN 'blob' THEN result_value END, "
    "CASE result_type WHEN 'inline' THEN result_data END, "
    "checksum, expires_at, code_fingerprint FROM beautyspot_tasks WHERE cache_key = %s"
)
_HISTORY = "SELECT * FROM beautyspot_tasks ORDER BY created_at DESC NULLS LAST, cache_key LIMIT %s"
_DELETE = "DELETE FROM beautyspot_tasks WHERE cache_key = %s"
_COUNT = "SELECT count(*) FROM beautyspot_tasks"
_DELETE_EXPIRED = "DELETE FROM beautyspot_tasks WHERE expires_at <= %s"
# Keyset paging on the primary key: no connection is held while the caller works on a page.
_FIRST_BLOB_LOCATIONS = (
    "SELECT cache_key, result_value FROM beautyspot_tasks "
    "WHERE result_type = %s ORDER BY cache_key LIMIT %s"
)
_NEXT_BLOB_LOCATIONS = (
    "SELECT cache_key, result_value FROM beautyspot_tasks "
    "WHERE result_type = %s AND cache_key > %s ORDER BY cache_key LIMIT %s"
)
_BLOB_PAGE = 1000
_RECORD_FAILURE = (
    f"INSERT INTO beautyspot_failures ({', '.join(_FAILURE_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(_FAILURE_COLUMNS))})"
)
_FAILURES = "SELECT * FROM beautyspot_failures ORDER BY id DESC LIMIT %s"

# Pages of records (find_records): every column but the result's bytes, and their size
# (octet_length reads a stored value's length, not its bytes).
_RESULT_SIZE = "coalesce(size, octet_length(result_data))"
_PAGE_COLUMNS = ", ".join(
    [
        *(column for column in _TASK_COLUMNS if column != "result_data"),
        "hits",
        f"{_RESULT_SIZE} AS result_size",
    ]
)
# Text sorts by code point (COLLATE "C"), as SQLite and Python sort it, whatever the locale.
_ORDER_COLUMNS = {"created_at": "created_at", "func_name": 'func_name COLLATE "C"',
                  "version": 'version COLLATE "C"', "size": _RESULT_SIZE,
                  "duration": "duration", "hits": "hits"}  # fmt: skip
_FILTERS = {
    "func_name": "func_name = %s",
    "version": "version = %s",
    "content_type": "content_type = %s",
    "text": "input_preview ILIKE %s",
}
# Counts (add_counts, get_stats). Rows are updated in key order, so concurrent flushes never
# deadlock.
_ADD_COUNTS = """INSERT INTO beautyspot_counts (func_name, hits, misses, failures)
    VALUES (%s, %s, %s, %s)
    ON CONFLICT (func_name) DO UPDATE SET hits = beautyspot_counts.hits + EXCLUDED.hits,
        misses = beautyspot_counts.misses + EXCLUDED.misses,
        failures = beautyspot_counts.failures + EXCLUDED.failures"""
_ADD_HITS = "UPDATE beautyspot_tasks SET hits = hits + %s WHERE cache_key = %s"
_RECORD_STATS = f"""SELECT func_name, count(*),
    sum(CASE result_type WHEN 'inline' THEN {_RESULT_SIZE} END),
    sum(CASE result_type WHEN 'blob' THEN size END),
    sum(duration * hits), sum(cost * hits)
    FROM beautyspot_tasks GROUP BY func_name"""
_COUNTS = "SELECT func_name, hits, misses, failures FROM beautyspot_counts"
_FAILURE_COUNTS = "SELECT func_name, count(*) FROM beautyspot_failures GROUP BY func_name"


class PostgresTaskDB(TaskDB):
    """Task records in PostgreSQL, through a small pool of connections (psycopg 3).

    Nothing connects until first use; then the schema is created or upgraded (by
    :data:`MIGRATIONS`, under an advisory lock, so many processes may open a fresh database at
    once) and a pool of ``min_size`` to ``max_size`` connections serves every thread, one
    connection per call, in autocommit mode. A connection the server dropped fails its call
    with :class:`~beautyspot.errors.StorageError`; the pool then discards the broken ones and
    later calls reconnect. A database written by a newer beautyspot is refused.

    The tables (``beautyspot_tasks``, ``beautyspot_failures``, ``beautyspot_schema``) are one
    set per database, or per PostgreSQL schema: they are created in the first schema of the
    ``search_path``, so ``?options=-csearch_path%3Dteam_a`` keeps one team's records apart.
    Spots sharing the tables share records harmlessly, as two Spots on one SQLite file do:
    every key includes the function's identity.

    :param url: ``postgresql://user:password@host:port/dbname?param=value`` (also
        ``postgres://`` and ``postgresql+psycopg://``); any libpq parameter may be a query
        parameter. The password is never shown: reprs and errors use the redacted URL.
    :param timeout: seconds to wait for the server to answer a connection attempt, and for a
        free connection from the pool (unless the URL sets ``connect_timeout``).
    :param min_size: connections kept open.
    :param max_size: connections opened at most, by this process.

    >>> PostgresTaskDB("postgresql://app:s3cret@db.internal:5432/cache")
    PostgresTaskDB('postgresql://app:***@db.internal:5432/cache')
    """

    SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
    local_reads = False
    #: The schema steps this class applies; a subclass may extend them.
    MIGRATIONS = MIGRATIONS

    def __init__(
        self, url: str, *, timeout: float = 5.0, min_size: int = 1, max_size: int = 10
    ) -> None:
        self.url = url
        self.timeout = _check_timeout(timeout)
        self.min_size, self.max_size = _check_sizes(min_size, max_size)
        self._conninfo, self.address, self._secrets = _conninfo_of(url, self.timeout)
        self._lock = threading.Lock()
        self._pool: ConnectionPool[Any] | None = None
        self._schema_ready = False
        _OPEN_DATABASES.add(self)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str | None = None,
        timeout: float = 5.0,
        min_size: int = 1,
        max_size: int = 10,
    ) -> PostgresTaskDB:
        """Open ``postgresql://``, ``postgres://`` or ``postgresql+psycopg://`` URLs.

        ``namespace`` (the Spot's name) is accepted and unused: the database, or the
        PostgreSQL schema the URL selects, is the namespace (see the class docstring).
        """
        return cls(url, timeout=timeout, min_size=min_size, max_size=max_size)

    def __reduce__(self) -> tuple[Any, ...]:
        # By configuration: a worker that unpickles this opens its own pool on first use.
        options = {"timeout": self.timeout, "min_size": self.min_size, "max_size": self.max_size}
        return (_rebuild, (type(self), self.url, options))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redacted(self.url)!r})"

    # -- the contract --------------------------------------------------------------------

    def init_schema(self) -> None:
        """Connect, create or upgrade the schema; safe to call again and from several
        processes at once. Done on first use anyway; this does it now."""
        if self._pool is None:
            self._open()

    def get(self, cache_key: str) -> dict[str, Any] | None:
        """Every column of the record under ``cache_key``, expired or not, or ``None``."""

        def read(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
            cursor = conn.cursor(row_factory=dict_row, binary=True)
            return cursor.execute(_GET, (cache_key,), prepare=True).fetchone()

        return self._run("read a record", read)

    def lookup(self, cache_key: str) -> tuple[Any, ...] | None:
        """The :class:`~beautyspot.db.base.HitRow` fields, as a plain tuple, in one round
        trip of a prepared statement: the hot path of every cached call."""
        pool = self._pool or self._open()
        try:
            conn = pool.getconn()
        except psycopg.Error as error:
            raise self._storage_error("look up a record", error) from error
        try:
            try:
                row = conn.execute(_LOOKUP, (cache_key,), prepare=True, binary=True).fetchone()
            finally:
                pool.putconn(conn)
        except psycopg.Error as error:
            self._after_error(pool, conn)
            raise self._storage_error("look up a record", error) from error
        if row is None:
            return None
        location, data, checksum, expires_at, fingerprint = row
        return (data if location is None else location, checksum, expires_at, fingerprint)

    def save_record(self, record: TaskRecord) -> None:
        """Insert or replace ``record`` in one statement (atomic); a missing ``created_at``
        becomes now."""
        if record.created_at is None:
            record = record._replace(created_at=time.time())
        self._run("save a record", lambda conn: conn.execute(_SAVE, record, prepare=True))

    def get_history(self, limit: int = 1000) -> list[Mapping[str, Any]]:
        """Up to ``limit`` records, newest ``created_at`` first."""
        return self._rows("read the history", _HISTORY, (check_limit(limit),))

    def delete(self, cache_key: str) -> bool:
        """Remove the record for ``cache_key``; True if there was one."""
        cursor = self._run("delete a record", lambda conn: conn.execute(_DELETE, (cache_key,)))
        return cursor.rowcount > 0

    def record_failure(self, failure: FailureRecord) -> None:
        """Keep one failed execution (the table grows until the CLI prunes it). PostgreSQL
        text cannot hold NUL characters: they are kept as the four characters ``\\x00``."""
        values = tuple(_text_safe(getattr(failure, column)) for column in _FAILURE_COLUMNS)
        self._run("record a failure", lambda conn: conn.execute(_RECORD_FAILURE, values))

    def get_failures(self, limit: int = 100) -> list[Mapping[str, Any]]:
        """Up to ``limit`` failures, newest first, each with its row ``id``."""
        return self._rows("read the failures", _FAILURES, (check_limit(limit),))

    def find_records(self, query: RecordQuery) -> tuple[list[Mapping[str, Any]], int]:
        """One page of records matching ``query`` (see :class:`~beautyspot.db.RecordQuery`),
        and how many match in all, from one snapshot. Rows hold every column but
        ``result_data``, plus ``hits`` and ``result_size`` (bytes of the stored result, what
        ``order_by="size"`` sorts by). Missing values sort as the smallest; ties go by
        ``cache_key`` in the same direction; text sorts by code point. ``text`` ignores case
        (ILIKE: as the database's locale folds it).

        The newest-first page reads the history index (fast on millions of records; counting
        them all is a scan, ~100 ms a million); other orders and filters scan the table."""
        check_query(query)
        where, params = [], []
        for name, condition in _FILTERS.items():
            value = getattr(query, name)
            if value is not None:
                where.append(condition)
                value = _text_safe(value)  # as NUL characters are stored
                params.append(f"%{_like_escaped(value)}%" if name == "text" else value)
        matching = f" WHERE {' AND '.join(where)}" if where else ""
        direction = "DESC NULLS LAST" if query.descending else "ASC NULLS FIRST"
        key_direction = "DESC" if query.descending else "ASC"
        page = (
            f"SELECT {_PAGE_COLUMNS} FROM beautyspot_tasks{matching} "
            f"ORDER BY {_ORDER_COLUMNS[query.order_by]} {direction}, "
            f'cache_key COLLATE "C" {key_direction} LIMIT %s OFFSET %s'
        )
        count = f"SELECT count(*) FROM beautyspot_tasks{matching}"

        def read(conn: psycopg.Connection[Any]) -> tuple[list[Any], int]:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                total = conn.execute(count, params).fetchone()[0]  # type: ignore[index]
                if query.offset >= total or query.limit == 0:
                    return [], int(total)
                cursor = conn.cursor(row_factory=dict_row, binary=True)
                rows = cursor.execute(page, (*params, query.limit, query.offset)).fetchall()
            return rows, int(total)

        return self._run("page through records", read)  # type: ignore[arg-type]

    def add_counts(self, counts: Mapping[str, FunctionCounts], hits: Mapping[str, int]) -> None:
        """Add counted calls to the per-function totals (``beautyspot_counts``) and each
        record's ``hits``, in one transaction. Hits of a key with no record (deleted
        meanwhile) add to its function's total only."""
        per_function, per_key = check_counts(counts, hits)
        if not per_function and not per_key:
            return

        def add(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction(), conn.cursor() as cursor:
                if per_function:
                    cursor.executemany(_ADD_COUNTS, per_function)
                if per_key:
                    cursor.executemany(_ADD_HITS, [(added, key) for key, added in per_key])

        self._run("add call counts", add)

    def get_stats(self) -> list[Mapping[str, Any]]:
        """Per function: records, counted hits, misses and failures (or the failures kept, when
        more: see :func:`beautyspot.db.checks.stats_rows`), bytes inline and in blobs, and the
        time and tokens its records' hits saved, from one snapshot. Reads every record."""

        def read(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                return (
                    conn.execute(_RECORD_STATS).fetchall(),
                    conn.execute(_COUNTS).fetchall(),
                    conn.execute(_FAILURE_COUNTS).fetchall(),
                )

        return stats_rows(*self._run("read the stats", read))

    def count(self) -> int:
        """How many task records the database holds."""
        row = self._run("count records", lambda conn: conn.execute(_COUNT).fetchone())
        return int(row[0])

    def delete_expired(self, now: float | None = None) -> int:
        """Remove records whose ``expires_at`` is at or before ``now`` (default: the current
        time); return how many were removed. Their blobs become orphans for ``gc``."""
        at = time.time() if now is None else now
        cursor = self._run(
            "delete expired records", lambda conn: conn.execute(_DELETE_EXPIRED, (at,))
        )
        return cursor.rowcount

    def acquire_lease(self, cache_key: str, owner: str, seconds: float) -> bool:
        """Take or extend ``owner``'s lease unless another owner's is live (server clock)."""
        params = {"key": cache_key, "owner": owner, "seconds": float(seconds)}
        cursor = self._run("take a lease", lambda conn: conn.execute(_ACQUIRE_LEASE, params))
        return cursor.rowcount == 1

    def renew_lease(self, cache_key: str, owner: str, seconds: float) -> bool:
        """Extend ``owner``'s lease; False if another owner took it after it expired."""
        params = {"key": cache_key, "owner": owner, "seconds": float(seconds)}
        cursor = self._run("renew a lease", lambda conn: conn.execute(_RENEW_LEASE, params))
        return cursor.rowcount == 1

    def release_lease(self, cache_key: str, owner: str) -> None:
        """Give up ``owner``'s lease, if it is still theirs."""
        params = {"key": cache_key, "owner": owner}
        self._run("release a lease", lambda conn: conn.execute(_RELEASE_LEASE, params))

    def iter_blob_locations(self) -> Iterator[str]:
        """The location of every blob a record points to, expired or not, a page at a time
        (no connection is held between pages)."""
        after = None
        while True:
            rows = self._run("list blob locations", _page_of_blobs(after))
            for _, location in rows:
                yield location
            if len(rows) < _BLOB_PAGE:
                return
            after = rows[-1][0]

    def close(self) -> None:
        """Close this process's pool; the next call opens a new one."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # -- connections ---------------------------------------------------------------------

    def _open(self) -> ConnectionPool[Any]:
        """The pool, made on first use after the schema is known to be ready."""
        with self._lock:
            if self._pool is not None:
                return self._pool
            if not self._schema_ready:
                self._prepare_schema()
                self._schema_ready = True
            pool: ConnectionPool[Any] = ConnectionPool(
                self._conninfo,
                kwargs={"autocommit": True},
                min_size=self.min_size,
                max_size=self.max_size,
                timeout=self.timeout,
                name=f"beautyspot {self.address}",
                open=False,
            )
            pool.open(wait=False)
            self._pool = pool
            return pool

    def _run(self, doing: str, work: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """``work`` done on a connection from the pool; psycopg's errors as StorageError."""
        pool = self._pool or self._open()
        try:
            conn = pool.getconn()
        except psycopg.Error as error:
            raise self._storage_error(doing, error) from error
        try:
            try:
                return work(conn)
            finally:
                pool.putconn(conn)  # a broken connection is discarded and replaced here
        except psycopg.Error as error:
            self._after_error(pool, conn)
            raise self._storage_error(doing, error) from error

    def _rows(self, doing: str, sql: str, params: tuple[Any, ...]) -> list[Mapping[str, Any]]:
        def read(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
            cursor = conn.cursor(row_factory=dict_row, binary=True)
            return cursor.execute(sql, params).fetchall()

        return self._run(doing, read)  # type: ignore[return-value]

    @staticmethod
    def _after_error(pool: ConnectionPool[Any], conn: psycopg.Connection[Any]) -> None:
        """When the server dropped this connection it may have dropped the idle ones too
        (a restart, a failover): test them now, so the next call gets a working one."""
        if conn.broken or conn.closed:
            with contextlib.suppress(psycopg.Error):  # the pool is closing: nothing to repair
                pool.check()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as error:
            raise self._storage_error("connect", error) from error

    def _prepare_schema(self) -> None:
        conn = self._connect()
        try:
            # Checked before any lock or write: a newer database is refused untouched.
            version = _schema_version(conn)
            self._refuse_newer(version)
            if version < len(self.MIGRATIONS):
                self._migrate(conn)
        except psycopg.Error as error:
            raise self._schema_error("prepare the schema", error) from error
        finally:
            conn.close()

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        target = len(self.MIGRATIONS)
        with conn.transaction():
            # Held to the end of the transaction: concurrent openers of a fresh database take
            # turns, and the second finds the first's work done.
            conn.execute(_SCHEMA_LOCK)
            try:
                conn.execute(_SCHEMA_TABLE)
            except psycopg.DatabaseError as error:
                raise self._schema_error("create the version table", error) from error
            version = _schema_version(conn)
            self._refuse_newer(version)
            while version < target:
                try:
                    for statement in self.MIGRATIONS[version]:
                        conn.execute(statement)  # type: ignore[arg-type]  # constants
                except psycopg.DatabaseError as error:
                    step = f"upgrade from schema version {version} to {version + 1}"
                    raise self._schema_error(step, error) from error
                version += 1
                conn.execute(_SCHEMA_STEP_DONE, (version, time.time()))

    def _refuse_newer(self, version: int) -> None:
        target = len(self.MIGRATIONS)
        if version > target:
            raise ConfigurationError(
                f"task database {redacted(self.url)} has schema version {version}, newer than "
                f"this beautyspot knows ({target}): upgrade beautyspot, or use another database"
            )

    def _schema_error(self, doing: str, error: psycopg.Error) -> Exception:
        if isinstance(error, psycopg.OperationalError):
            return self._storage_error(doing, error)
        return ConfigurationError(
            f"cannot {doing} in task database {redacted(self.url)}: "
            f"{self._scrub(error).rstrip('.')}. "
            "Were its beautyspot_* tables made by another program, or does the user lack "
            "the right to create tables in the schema? Use another database or schema."
        )

    def _storage_error(self, doing: str, error: psycopg.Error) -> StorageError:
        return StorageError(
            f"PostgreSQL at {self.address} ({redacted(self.url)}): cannot {doing}: "
            f"{self._scrub(error)}"
        )

    def _scrub(self, error: BaseException) -> str:
        return _scrub(" ".join(str(error).split()), self._secrets)


def _rebuild(cls: type[PostgresTaskDB], url: str, options: dict[str, Any]) -> PostgresTaskDB:
    return cls(url, **options)


def _page_of_blobs(after: str | None) -> Callable[[psycopg.Connection[Any]], list[Any]]:
    """Reads the page of blob records whose keys follow ``after`` (None: the first page)."""
    if after is None:
        return lambda conn: conn.execute(_FIRST_BLOB_LOCATIONS, (BLOB, _BLOB_PAGE)).fetchall()
    return lambda conn: conn.execute(_NEXT_BLOB_LOCATIONS, (BLOB, after, _BLOB_PAGE)).fetchall()


def _schema_version(conn: psycopg.Connection[Any]) -> int:
    if not conn.execute(_SCHEMA_EXISTS).fetchone()[0]:  # type: ignore[index]
        return 0
    return int(conn.execute(_SCHEMA_VERSION).fetchone()[0])  # type: ignore[index]


# A forked child must not use its parent's connections: it opens its own pool on first use.
# The parent's pool is kept referenced, never closed or collected, so nothing in the child
# touches the parent's sockets or waits for its worker threads.
_OPEN_DATABASES: weakref.WeakSet[PostgresTaskDB] = weakref.WeakSet()
_INHERITED_POOLS: list[Any] = []


def _forget_inherited_pools() -> None:
    for db in list(_OPEN_DATABASES):
        if db._pool is not None:
            _INHERITED_POOLS.append(db._pool)
        db._pool = None
        db._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_pools)


def _conninfo_of(url: str, timeout: float) -> tuple[str, str, tuple[str, ...]]:
    """libpq connection parameters of ``url``, the ``host:port`` it names, and the forms of
    its password an error message must never show."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a postgresql:// URL (str), not {type(url).__name__}")
    scheme = scheme_of(url)
    if scheme not in PostgresTaskDB.SCHEMES:
        raise ConfigurationError(
            f"database URL {redacted(url)!r} is not a PostgreSQL URL: write "
            "postgresql://user:password@host:5432/dbname"
        )
    libpq_url = "postgresql" + url[len(scheme) :]  # libpq knows neither +psycopg nor case
    secrets = _password_forms(url)
    try:
        params = conninfo_to_dict(libpq_url)
    except psycopg.ProgrammingError as error:
        raise ConfigurationError(
            f"database URL {redacted(url)!r} cannot be read: "
            f"{_scrub(' '.join(str(error).split()), secrets)}"
        ) from None  # libpq's message may quote the password
    params.setdefault("connect_timeout", str(max(2, math.ceil(timeout))))
    params.setdefault("application_name", "beautyspot")
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    address = f"{host}:{params.get('port') or 5432}"
    return make_conninfo("", **params), address, secrets


def _password_forms(url: str) -> tuple[str, ...]:
    try:
        password = urlsplit(url).password
    except ValueError:  # a malformed port: take the password by hand
        userinfo = urlsplit(url).netloc.rpartition("@")[0]
        password = userinfo.partition(":")[2] if ":" in userinfo else None
    if not password:
        return ()
    return tuple({password, unquote(password)})


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    # A very short password would match ordinary words; libpq never echoes one anyway.
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _like_escaped(text: str) -> str:
    """``text`` matched literally by LIKE/ILIKE (whose escape character is a backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _text_safe(value: Any) -> Any:
    return value.replace("\x00", "\\x00") if isinstance(value, str) else value


def _check_timeout(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {timeout!r}")
    if not timeout > 0 or math.isinf(timeout):
        raise ConfigurationError(f"timeout must be a finite number of seconds > 0, not {timeout}")
    return float(timeout)


def _check_sizes(min_size: int, max_size: int) -> tuple[int, int]:
    for name, value in (("min_size", min_size), ("max_size", max_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, not {value!r}")
    if min_size < 0 or max_size < max(min_size, 1):
        raise ConfigurationError(
            f"pool sizes must satisfy 0 <= min_size <= max_size and max_size >= 1, "
            f"not min_size={min_size}, max_size={max_size}"
        )
    return min_size, max_size
