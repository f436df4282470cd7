"""SQLiteTaskDB: the default TaskDB, one SQLite file shared by many threads and processes."""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import unquote, urlsplit

from beautyspot.db.base import (
    BLOB,
    FailureRecord,
    FunctionCounts,
    RecordQuery,
    TaskDB,
    TaskRecord,
)
from beautyspot.db.checks import check_counts, check_limit, check_query, stats_rows
from beautyspot.errors import ConfigurationError
from beautyspot.storage.local import make_private_dirs

__all__ = ["MIGRATIONS", "SQLiteTaskDB"]

_T = TypeVar("_T")

#: Schema steps: ``MIGRATIONS[n]`` takes a database from ``PRAGMA user_version`` n to n + 1,
#: in one transaction. Append a step to change the schema; never edit a released one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE tasks (
            cache_key TEXT PRIMARY KEY,
            func_name TEXT,
            input_id TEXT,
            input_preview TEXT,
            version TEXT,
            result_type TEXT,
            content_type TEXT,
            result_value TEXT,
            result_data BLOB,
            checksum TEXT,
            size INTEGER,
            duration REAL,
            created_at REAL,
            expires_at REAL
        )""",
        """CREATE TABLE failures (
            id INTEGER PRIMARY KEY,
            cache_key TEXT,
            func_name TEXT,
            input_preview TEXT,
            error_type TEXT,
            message TEXT,
            traceback TEXT,
            created_at REAL
        )""",
    ),
    # Key format 2 and the hit path: a WITHOUT ROWID table is one b-tree keyed by cache_key
    # (a lookup reads one tree, a save writes one), the fields a hit reads come first, and each
    # record keeps the fingerprint of the code that computed it. Format-1 records are kept for
    # history and gc; their keys can no longer be hit.
    (
        """CREATE TABLE tasks_v2 (
            cache_key TEXT PRIMARY KEY,
            result_type TEXT,
            result_value TEXT,
            result_data BLOB,
            checksum TEXT,
            expires_at REAL,
            code_fingerprint TEXT,
            func_name TEXT,
            input_id TEXT,
            version TEXT,
            content_type TEXT,
            size INTEGER,
            duration REAL,
            created_at REAL,
            input_preview TEXT,
            cost REAL,
            hits INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID""",
        """INSERT INTO tasks_v2 (cache_key, result_type, result_value, result_data, checksum,
            expires_at, func_name, input_id, version, content_type, size, duration, created_at,
            input_preview)
        SELECT cache_key, result_type, result_value, result_data, checksum, expires_at,
            func_name, input_id, version, content_type, size, duration, created_at, input_preview
        FROM tasks WHERE cache_key IS NOT NULL""",  # a NULL key (v1 allowed it) is never hit
        "DROP TABLE tasks",
        "ALTER TABLE tasks_v2 RENAME TO tasks",
        # The dashboard's first page, newest first, on millions of records.
        "CREATE INDEX tasks_by_created_at ON tasks (created_at DESC)",
        # Calls counted in memory and added here in batches (hits of each record: tasks.hits).
        """CREATE TABLE counts (
            func_name TEXT PRIMARY KEY,
            hits INTEGER NOT NULL DEFAULT 0,
            misses INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID""",
        # Leases (lease=): who computes a missing key while other processes wait for it.
        """CREATE TABLE leases (
            cache_key TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at REAL NOT NULL
        ) WITHOUT ROWID""",
    ),
    # Per-argument digests (explain): older records keep NULL, and explain says so.
    ("ALTER TABLE tasks ADD COLUMN arg_digests BLOB",),
)

# Constant SQL strings, so sqlite3's per-connection statement cache reuses prepared statements.
_TASK_COLUMNS = TaskRecord._fields
_FAILURE_COLUMNS = tuple(field.name for field in fields(FailureRecord))
_SAVE = (
    f"INSERT OR REPLACE INTO tasks ({', '.join(_TASK_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_TASK_COLUMNS))})"
)
_GET = "SELECT * FROM tasks WHERE cache_key = ?"
# HitRow's fields: the bytes or the location in one column, so a hit reads one tuple as is.
_LOOKUP = (
    "SELECT CASE result_type WHEN 'blob' THEN result_value WHEN 'inline' THEN result_data END, "
    "checksum, expires_at, code_fingerprint FROM tasks WHERE cache_key = ?"
)
_HISTORY = "SELECT * FROM tasks ORDER BY created_at DESC, cache_key LIMIT ?"
_DELETE = "DELETE FROM tasks WHERE cache_key = ?"
_COUNT = "SELECT COUNT(*) FROM tasks"
_DELETE_EXPIRED = "DELETE FROM tasks WHERE expires_at <= ?"
_BLOB_LOCATIONS = "SELECT result_value FROM tasks WHERE result_type = ?"
_RECORD_FAILURE = (
    f"INSERT INTO failures ({', '.join(_FAILURE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_FAILURE_COLUMNS))})"
)
_FAILURES = "SELECT * FROM failures ORDER BY id DESC LIMIT ?"
# A live lease of another owner makes the upsert change nothing (rowcount 0).
_ACQUIRE_LEASE = (
    "INSERT INTO leases (cache_key, owner, expires_at) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (cache_key) DO UPDATE "
    "SET owner = excluded.owner, expires_at = excluded.expires_at "
    "WHERE leases.expires_at <= ?4 OR leases.owner = excluded.owner"
)
_RENEW_LEASE = "UPDATE leases SET expires_at = ? WHERE cache_key = ? AND owner = ?"
_RELEASE_LEASE = "DELETE FROM leases WHERE cache_key = ? AND owner = ?"

# Pages of records (find_records): every column but the result's bytes, and their size.
_RESULT_SIZE = "coalesce(size, length(result_data))"  # length() reads no blob content
_PAGE_COLUMNS = ", ".join(
    [
        *(column for column in _TASK_COLUMNS if column != "result_data"),
        "hits",
        f"{_RESULT_SIZE} AS result_size",
    ]
)
# A filtered page walks the created_at index only when at least this many records match per
# record of the page (a record the walk skips costs a lookup, ~10 times a scanned one).
_INDEX_WALK_FACTOR = 10
_ORDER_COLUMNS = {"created_at": "created_at", "func_name": "func_name", "version": "version",
                  "size": _RESULT_SIZE, "duration": "duration", "hits": "hits"}  # fmt: skip
_FILTERS = {
    "func_name": "func_name = ?",
    "version": "version = ?",
    "content_type": "content_type = ?",
}
# Text search ignores case: LIKE (in C) does for ASCII; other text is folded as Python does.
_TEXT_LIKE = "input_preview LIKE ? ESCAPE '\\'"
_CASEFOLD = "beautyspot_casefold"
_TEXT_FOLDED = f"instr({_CASEFOLD}(input_preview), ?) > 0"
# Counts (add_counts, get_stats).
_ADD_COUNTS = (
    "INSERT INTO counts (func_name, hits, misses, failures) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (func_name) DO UPDATE SET hits = hits + excluded.hits, "
    "misses = misses + excluded.misses, failures = failures + excluded.failures"
)
_ADD_HITS = "UPDATE tasks SET hits = hits + ? WHERE cache_key = ?"
_RECORD_STATS = (
    "SELECT func_name, count(*), "
    f"sum(CASE result_type WHEN 'inline' THEN {_RESULT_SIZE} END), "
    "sum(CASE result_type WHEN 'blob' THEN size END), "
    "total(duration * hits), total(cost * hits) FROM tasks GROUP BY func_name"
)
_COUNTS = "SELECT func_name, hits, misses, failures FROM counts"
_FAILURE_COUNTS = "SELECT func_name, count(*) FROM failures GROUP BY func_name"


class _Connection(sqlite3.Connection):
    """A connection that knows who opened it: a forked child must not use its parent's, and
    one whose thread has ended is closed."""

    pid: int = 0
    thread: threading.Thread | None = None
    #: Reused by every lookup, with plain tuple rows (no sqlite3.Row for five known columns).
    lookup_cursor: sqlite3.Cursor


class _ThreadConnection(threading.local):
    conn: _Connection | None = None


class SQLiteTaskDB(TaskDB):
    """Task records in one SQLite file (WAL mode), safe for many threads and processes.

    Each thread has its own connection, opened on first use and re-opened in a forked child.
    The file is created owner-only (0600), with its parent folders. The schema is versioned
    by ``PRAGMA user_version`` and upgraded by :data:`MIGRATIONS`; a file written by a newer
    beautyspot is refused rather than guessed at.

    :param path: the database file (``.db``); a file that is not SQLite is never overwritten.
    :param timeout: seconds to wait for another process's write lock before giving up.

    >>> import tempfile
    >>> db = SQLiteTaskDB(tempfile.mkdtemp() + "/cache.db")
    >>> db.init_schema()
    >>> db.save("k1", "mod.fn", "in1", None, "inline", None, result_data=b"\\x01")
    >>> db.get("k1")["result_data"]
    b'\\x01'
    >>> db.close()
    """

    SCHEMES = ("sqlite",)
    local_reads = True
    #: The schema steps this class applies; a subclass may extend them.
    MIGRATIONS = MIGRATIONS

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = _check_path(path)
        self.timeout = _check_timeout(timeout)
        _create_db_file(self.path)
        self._thread = _ThreadConnection()
        # Every connection opened. In a forked child the parent's stay here, unused and never
        # closed: SQLite must not touch a connection across fork().
        self._connections: list[_Connection] = []
        self._ready_pid = 0
        _OPEN_DATABASES.add(self)

    @classmethod
    def from_url(
        cls, url: str, *, namespace: str | None = None, timeout: float = 30.0
    ) -> SQLiteTaskDB:
        """Open ``sqlite:///relative/path.db`` (three slashes: relative to the working folder)
        or ``sqlite:////absolute/path.db`` (four slashes). Percent-escapes are decoded. A file
        is its own namespace: ``namespace`` is accepted and unused.

        >>> SQLiteTaskDB.from_url("sqlite:////tmp/a/b.db").path.as_posix()
        '/tmp/a/b.db'
        """
        parts = urlsplit(url)
        if parts.scheme not in cls.SCHEMES or parts.netloc or not parts.path.startswith("/"):
            raise ConfigurationError(
                f"database URL {url!r} is not a SQLite URL: write sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        if parts.query or parts.fragment or parts.path == "/":
            raise ConfigurationError(
                f"database URL {url!r} must name a file and carry no query or fragment: "
                "write sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        return cls(unquote(parts.path[1:]), timeout=timeout)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles by configuration (path and timeout), never by its connections."""
        return (functools.partial(type(self), timeout=self.timeout), (str(self.path),))

    def init_schema(self) -> None:
        """Switch the file to WAL and apply missing schema steps; safe to call again and
        from several processes at once. Done on first use anyway; this does it now."""
        self._connection()

    def get(self, cache_key: str) -> dict[str, Any] | None:
        """Every column of the record under ``cache_key``, expired or not, or ``None``."""
        row = self._connection().execute(_GET, (cache_key,)).fetchone()
        return None if row is None else dict(row)

    def lookup(self, cache_key: str) -> tuple[Any, ...] | None:
        """The :class:`~beautyspot.db.base.HitRow` fields, as a plain tuple: the hot path of
        every cached call."""
        conn = self._thread.conn or self._connection()
        return conn.lookup_cursor.execute(_LOOKUP, (cache_key,)).fetchone()

    def save_record(self, record: TaskRecord) -> None:
        """Insert or replace ``record`` atomically; a missing ``created_at`` becomes now."""
        if record.created_at is None:
            record = record._replace(created_at=time.time())
        self._connection().execute(_SAVE, record)  # a NamedTuple in column order

    def get_history(self, limit: int = 1000) -> list[Mapping[str, Any]]:
        """Up to ``limit`` records, newest ``created_at`` first."""
        rows = self._connection().execute(_HISTORY, (check_limit(limit),))
        return [dict(row) for row in rows]

    def delete(self, cache_key: str) -> bool:
        """Remove the record for ``cache_key``; True if there was one."""
        return self._connection().execute(_DELETE, (cache_key,)).rowcount > 0

    def record_failure(self, failure: FailureRecord) -> None:
        """Keep one failed execution (the table grows until the CLI prunes it)."""
        values = tuple(getattr(failure, column) for column in _FAILURE_COLUMNS)
        self._connection().execute(_RECORD_FAILURE, values)

    def get_failures(self, limit: int = 100) -> list[Mapping[str, Any]]:
        """Up to ``limit`` failures, newest first, each with its row ``id``."""
        rows = self._connection().execute(_FAILURES, (check_limit(limit),))
        return [dict(row) for row in rows]

    def find_records(self, query: RecordQuery) -> tuple[list[Mapping[str, Any]], int]:
        """One page of records matching ``query`` (see :class:`~beautyspot.db.RecordQuery`),
        and how many match in all, from one snapshot. Rows hold every column but
        ``result_data``, plus ``hits`` and ``result_size`` (bytes of the stored result, what
        ``order_by="size"`` sorts by). Missing values sort as the smallest; ties go by
        ``cache_key`` in the same direction. ``text`` ignores case: LIKE's ASCII folding for
        an ASCII search, Python's ``casefold`` for any other.

        The newest-first page reads the ``created_at`` index, so it stays fast on millions of
        records (counting them all walks that index: ~50 ms a million); other orders and
        filters read the whole table.

        >>> import tempfile
        >>> db = SQLiteTaskDB(tempfile.mkdtemp() + "/cache.db")
        >>> db.save("k1", "mod.fn", "in1", None, "inline", None, result_data=b"abc")
        >>> rows, total = db.find_records(RecordQuery(func_name="mod.fn"))
        >>> total, rows[0]["cache_key"], rows[0]["result_size"], "result_data" in rows[0]
        (1, 'k1', 3, False)
        >>> db.close()
        """
        check_query(query)
        where, params = [], []
        for name, condition in _FILTERS.items():
            value = getattr(query, name)
            if value is not None:
                where.append(condition)
                params.append(value)
        text = query.text
        if text is not None and text.isascii():
            where.append(_TEXT_LIKE)
            params.append(f"%{_like_escaped(text)}%")
        elif text is not None:
            where.append(_TEXT_FOLDED)
            params.append(text.casefold())
        matching = f" WHERE {' AND '.join(where)}" if where else ""
        direction = "DESC" if query.descending else "ASC"
        order = _ORDER_COLUMNS[query.order_by]
        conn = self._connection()
        with _read_transaction(conn):  # the count and the page see one snapshot
            total = conn.execute(f"SELECT count(*) FROM tasks{matching}", params).fetchone()[0]
            if query.offset >= total or query.limit == 0:
                return [], int(total)
            if where and total < _INDEX_WALK_FACTOR * (query.offset + query.limit):
                # Few records match: scan the table once and sort them, rather than walk the
                # created_at index and look up every record it skips.
                order = f"+{order}"
            page = (
                f"SELECT {_PAGE_COLUMNS} FROM tasks{matching} "
                f"ORDER BY {order} {direction}, cache_key {direction} LIMIT ? OFFSET ?"
            )
            rows = conn.execute(page, (*params, query.limit, query.offset)).fetchall()
        return [dict(row) for row in rows], int(total)

    def add_counts(self, counts: Mapping[str, FunctionCounts], hits: Mapping[str, int]) -> None:
        """Add counted calls to the per-function totals (table ``counts``) and each record's
        ``hits``, in one transaction. Hits of a key with no record (deleted meanwhile) add to
        its function's total only."""
        per_function, per_key = check_counts(counts, hits)
        if not per_function and not per_key:
            return
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_ADD_COUNTS, per_function)
            conn.executemany(_ADD_HITS, [(added, key) for key, added in per_key])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def get_stats(self) -> list[Mapping[str, Any]]:
        """Per function: records, counted hits, misses and failures (or the failures kept, when
        more: see :func:`beautyspot.db.checks.stats_rows`), bytes inline and in blobs, and the
        time and tokens its records' hits saved. Reads every record.

        >>> import tempfile
        >>> db = SQLiteTaskDB(tempfile.mkdtemp() + "/cache.db")
        >>> db.save_record(TaskRecord("k1", "mod.fn", "in1", None, "inline", None,
        ...                           result_data=b"abc", duration=2.0, cost=10.0))
        >>> db.add_counts({"mod.fn": FunctionCounts(hits=3, misses=1)}, {"k1": 3})
        >>> stats = db.get_stats()[0]
        >>> stats["hits"], stats["misses"], stats["time_saved"], stats["tokens_saved"]
        (3, 1, 6.0, 30.0)
        >>> db.close()
        """
        conn = self._connection()
        with _read_transaction(conn):
            records = conn.execute(_RECORD_STATS).fetchall()
            counts = conn.execute(_COUNTS).fetchall()
            failures = conn.execute(_FAILURE_COUNTS).fetchall()
        return stats_rows(records, counts, failures)

    def count(self) -> int:
        """How many task records the file holds."""
        return int(self._connection().execute(_COUNT).fetchone()[0])

    def delete_expired(self, now: float | None = None) -> int:
        """Remove records whose ``expires_at`` is at or before ``now`` (default: the current
        time); return how many were removed. Their blobs become orphans for ``gc``."""
        at = time.time() if now is None else now
        return self._connection().execute(_DELETE_EXPIRED, (at,)).rowcount

    def iter_blob_locations(self) -> Iterator[str]:
        """The location of every blob a record points to, expired or not.

        >>> import tempfile
        >>> db = SQLiteTaskDB(tempfile.mkdtemp() + "/cache.db")
        >>> db.save("k1", "mod.fn", "in1", None, "blob", None, result_value="k1/k1-0a")
        >>> list(db.iter_blob_locations())
        ['k1/k1-0a']
        >>> db.close()
        """
        cursor = self._connection().execute(_BLOB_LOCATIONS, (BLOB,))
        for (location,) in cursor:
            yield location

    def acquire_lease(self, cache_key: str, owner: str, seconds: float) -> bool:
        """Take or extend ``owner``'s lease unless another owner's is live (this host's clock:
        the processes sharing one SQLite file share one machine)."""
        now = time.time()
        cursor = self._connection().execute(_ACQUIRE_LEASE, (cache_key, owner, now + seconds, now))
        return cursor.rowcount == 1

    def renew_lease(self, cache_key: str, owner: str, seconds: float) -> bool:
        """Extend ``owner``'s lease; False if another owner took it after it expired."""
        params = (time.time() + seconds, cache_key, owner)
        return self._connection().execute(_RENEW_LEASE, params).rowcount == 1

    def release_lease(self, cache_key: str, owner: str) -> None:
        """Give up ``owner``'s lease, if it is still theirs."""
        self._connection().execute(_RELEASE_LEASE, (cache_key, owner))

    def close(self) -> None:
        """Close this process's connections; the next call opens new ones."""
        self._thread = _ThreadConnection()
        self._close_connections(lambda conn: True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def _connection(self) -> _Connection:
        """This thread's connection, opened (and the schema made ready) on first use."""
        thread = self._thread
        conn = thread.conn
        if conn is None:  # a forked child starts with none: see _forget_inherited_connections
            conn = thread.conn = self._open()
        return conn

    def _close_connections(self, should_close: Callable[[_Connection], bool]) -> None:
        """Close this process's connections that ``should_close``; no lock is taken, so a
        fork() can never inherit it held (list operations are atomic; closing twice is fine)."""
        pid = os.getpid()
        for conn in list(self._connections):
            if conn.pid == pid and should_close(conn):
                with contextlib.suppress(ValueError):
                    self._connections.remove(conn)
                conn.close()

    def _open(self) -> _Connection:
        # Threads that have ended leave their connection behind: close those, so short-lived
        # threads do not leak file handles.
        self._close_connections(lambda conn: conn.thread is not None and not conn.thread.is_alive())
        pid = os.getpid()
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.timeout,
                isolation_level=None,
                check_same_thread=False,
                factory=_Connection,
            )
            conn.pid, conn.thread = pid, threading.current_thread()
            conn.lookup_cursor = conn.cursor()
            conn.lookup_cursor.row_factory = None
            try:
                self._configure(conn, prepare_schema=self._ready_pid != pid)
            except BaseException:
                conn.close()
                raise
        except sqlite3.DatabaseError as error:
            _raise_file_error(self.path, error)
        self._ready_pid = pid
        self._connections.append(conn)
        return conn

    def _configure(self, conn: sqlite3.Connection, *, prepare_schema: bool) -> None:
        conn.row_factory = sqlite3.Row
        conn.create_function(_CASEFOLD, 1, _casefold, deterministic=True)
        # NORMAL in WAL mode syncs at checkpoints, not at each commit: a crash of the
        # application (or a SIGKILL) loses nothing and never corrupts; only an OS crash or
        # power cut may roll back the last commits, which for a cache means recomputing them.
        conn.execute("PRAGMA synchronous = NORMAL")
        if prepare_schema:
            # Refuse a newer file before anything writes to it (switching to WAL does).
            self._refuse_newer(_user_version(conn))
            self._retry_while_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"))
            self._retry_while_locked(lambda: self._migrate(conn))

    def _retry_while_locked(self, action: Callable[[], _T]) -> _T:
        """Run ``action``, retrying with backoff while another process holds the file.

        Needed on first open: switching to WAL and creating the schema can meet a lock
        without SQLite calling its busy handler, so the busy timeout alone does not wait.
        """
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                return action()
            except sqlite3.OperationalError as error:
                if not _is_locked(error) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        target = len(self.MIGRATIONS)
        while (version := _user_version(conn)) < target:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-read under the write lock: another process may have migrated meanwhile.
                version = _user_version(conn)
                if version < target:
                    self._apply_step(conn, version)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        self._refuse_newer(version)

    def _refuse_newer(self, version: int) -> None:
        target = len(self.MIGRATIONS)
        if version > target:
            raise ConfigurationError(
                f"task database {self.path} has schema version {version}, newer than this "
                f"beautyspot knows ({target}): upgrade beautyspot, or use another file"
            )

    def _apply_step(self, conn: sqlite3.Connection, version: int) -> None:
        try:
            for statement in self.MIGRATIONS[version]:
                conn.execute(statement)
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError) and _is_locked(error):
                raise
            raise ConfigurationError(
                f"cannot upgrade task database {self.path} from schema version {version} to "
                f"{version + 1}: {error}. Was it written by another program? Use another file."
            ) from error
        # PRAGMA takes no bound parameters; ``version`` is an int read from the file.
        conn.execute(f"PRAGMA user_version = {version + 1}")


# A forked child must not use its parent's connections (SQLite forbids it). Forgetting them at
# fork time, once, spares every read an os.getpid() call.
_OPEN_DATABASES: weakref.WeakSet[SQLiteTaskDB] = weakref.WeakSet()


def _forget_inherited_connections() -> None:
    for db in list(_OPEN_DATABASES):
        db._thread = _ThreadConnection()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_connections)


@contextlib.contextmanager
def _read_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Reads that see one snapshot of the file (a deferred transaction, never a write lock)."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _casefold(text: object) -> object:
    return text.casefold() if isinstance(text, str) else text


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _is_locked(error: sqlite3.OperationalError) -> bool:
    message = str(error)
    return "locked" in message or "busy" in message


def _raise_file_error(path: Path, error: sqlite3.Error) -> NoReturn:
    """Re-raise ``error``, as a clear ConfigurationError when the file itself is unusable."""
    message = str(error)
    if "not a database" in message:
        raise ConfigurationError(
            f"{path} exists and is not a SQLite database; beautyspot will not overwrite it. "
            "Choose another path for the task database."
        ) from error
    if "readonly" in message or "unable to open" in message:
        raise ConfigurationError(
            f"cannot write the task database {path} ({message}): the file or its folder is "
            "read-only. SQLite needs to write the file and create -wal and -shm files beside it."
        ) from error
    raise error


def _create_db_file(path: Path) -> None:
    """Create ``path`` owner-only before SQLite sees it, or check an existing one is writable.

    Only a file this call just created is opened outside SQLite: closing any other handle to
    a database file would drop the POSIX locks SQLite holds on it in this process.
    """
    try:
        make_private_dirs(path.parent)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        _check_writable(path)
    except OSError as error:
        raise ConfigurationError(
            f"cannot create the task database {path}: {error.strerror}. "
            "Choose a path in a folder you can write to."
        ) from error


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise ConfigurationError(f"task database path {path} is a folder: give a file path")
    for target, what in ((path, "file"), (path.parent, "folder")):
        if not os.access(target, os.W_OK):
            raise ConfigurationError(
                f"cannot write the task database {path}: the {what} {target} is read-only. "
                "SQLite needs to write the file and create -wal and -shm files beside it."
            )


def _check_path(path: str | os.PathLike[str]) -> Path:
    if not isinstance(path, (str, os.PathLike)) or isinstance(os.fspath(path), bytes):
        raise TypeError(f"path must be a file path (str or os.PathLike), not {path!r}")
    if os.fspath(path) in ("", ":memory:"):
        raise ConfigurationError(
            f"path {str(path)!r} is not a database file: SQLiteTaskDB needs a file shared by "
            "all threads and processes, e.g. 'cache.db'"
        )
    return Path(path).absolute()


def _check_timeout(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {timeout!r}")
    if not timeout > 0:
        raise ConfigurationError(f"timeout must be more than 0 seconds, not {timeout!r}")
    return float(timeout)
