"""The memoizers the benchmark compares, each as ``(folder, func) -> (memoized, close)``.

Every peer is used through its normal, documented decorator with its defaults, except where a
default would measure something else than a memoizer (noted on the function). A peer that is not
installed raises ``ImportError`` when used, so ``--here`` can skip its rows.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "MEMOIZERS",
    "Memoized",
    "Memoizer",
    "beautyspot",
    "beautyspot_fill",
    "beautyspot_memory",
    "beautyspot_spot",
    "cachetools_cached",
    "cachier_memoize",
    "diskcache_memoize",
    "joblib_memory",
    "raw_floor",
    "raw_floor_fill",
    "read_file",
    "write_and_rename",
]

Memoized = tuple[Callable[..., Any], Callable[[], None]]
Memoizer = Callable[[Path, Callable[..., Any]], Memoized]

#: Entries of every bounded in-memory cache here: more than any case calls distinct inputs.
MEMORY_ENTRIES = 10_000

_FLOOR_SCHEMA = "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value BLOB)"
_FLOOR_GET = "SELECT value FROM cache WHERE key = ?"
_FLOOR_PUT = "INSERT OR REPLACE INTO cache (key, value) VALUES (?, ?)"


def raw_floor(folder: Path, func: Callable[..., Any]) -> Memoized:
    """The least a persistent memoizer can do, written inline: the key is a blake2b of the
    msgpack-packed arguments, a hit is one select by primary key and a msgpack unpack, a miss
    adds a pack and one autocommit insert (WAL, ``synchronous=NORMAL``)."""
    import msgpack

    conn = _floor_connection(folder)

    def memoized(*args: Any) -> Any:
        key = hashlib.blake2b(msgpack.packb(args), digest_size=16).hexdigest()
        row = conn.execute(_FLOOR_GET, (key,)).fetchone()
        if row is not None:
            return msgpack.unpackb(row[0])
        value = func(*args)
        conn.execute(_FLOOR_PUT, (key, msgpack.packb(value)))
        return value

    return memoized, conn.close


def raw_floor_fill(folder: Path, func: Callable[..., Any], inputs: Iterable[Any]) -> None:
    """Store ``func(value)`` for every input exactly as :func:`raw_floor`'s misses would (same
    keys, values and insert order), in one transaction: the floor's side of the growth case."""
    import msgpack

    def row(value: Any) -> tuple[str, bytes]:
        key = hashlib.blake2b(msgpack.packb((value,)), digest_size=16).hexdigest()  # as above
        return key, msgpack.packb(func(value))

    conn = _floor_connection(folder)
    try:
        rows = (row(value) for value in inputs)
        conn.execute("BEGIN")
        conn.executemany(_FLOOR_PUT, rows)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _floor_connection(folder: Path) -> sqlite3.Connection:
    folder.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(folder / "floor.db", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(_FLOOR_SCHEMA)
    return conn


def beautyspot_spot(folder: Path, **options: Any) -> Any:
    """A Spot of its own: ``folder/bench.db`` and ``folder/blobs`` (``db=`` may replace it)."""
    import beautyspot as bs

    options.setdefault("db", folder / "bench.db")
    return bs.Spot("bench", storage=folder / "blobs", **options)


def beautyspot(folder: Path, func: Callable[..., Any], **options: Any) -> Memoized:
    """``@spot.mark`` on a Spot of its own: ``folder/bench.db`` and ``folder/blobs``."""
    spot = beautyspot_spot(folder, **options)
    return spot.mark(func), spot.close


def beautyspot_fill(
    folder: Path, func: Callable[..., Any], inputs: Iterable[Any], chunk: int = 50_000
) -> int:
    """Store ``func(value)`` for every input in ``folder/bench.db`` as :func:`beautyspot` would,
    but in large transactions instead of one per call; returns how many records were written.

    The records are made by the library itself: every input is a real miss through
    ``@spot.mark`` on a Spot whose TaskDB (:func:`_collector`) finds nothing and keeps what the
    call path hands to ``save_record``. They are inserted in call order into a file whose
    schema ``SQLiteTaskDB`` created, with the library's insert (every ``TaskRecord`` field, in
    field order). Only the commits are batched.
    """
    from beautyspot.db import SQLiteTaskDB

    path = folder / "bench.db"
    created = SQLiteTaskDB(path)
    created.init_schema()
    created.close()
    collector = _collector()
    spot = beautyspot_spot(folder, db=collector)
    memoized = spot.mark(func)
    conn = sqlite3.connect(path, isolation_level=None)
    written = 0
    try:
        conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: only speeds the build up
        batch = iter(inputs)
        while True:
            for value in itertools.islice(batch, chunk):
                memoized(value)
            if not collector.records:
                break
            fields = collector.records[0]._fields
            insert = (
                f"INSERT OR REPLACE INTO tasks ({', '.join(fields)}) "
                f"VALUES ({', '.join('?' * len(fields))})"
            )
            conn.execute("BEGIN")
            conn.executemany(insert, collector.records)
            conn.execute("COMMIT")
            written += len(collector.records)
            collector.records.clear()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
        spot.close()
    return written


def _collector() -> Any:
    """A ``beautyspot.db.TaskDB`` that never has a record and keeps every record it is asked
    to save, in ``.records``."""
    from beautyspot.db import TaskDB

    class Collector(TaskDB):
        local_reads = True

        def __init__(self) -> None:
            self.records: list[Any] = []

        def init_schema(self) -> None:
            return None

        def get(self, cache_key: str) -> None:
            return None

        def lookup(self, cache_key: str) -> None:
            return None

        def get_history(self, limit: int = 1000) -> list[Any]:
            return []

        def save_record(self, record: Any) -> None:
            self.records.append(record)

    return Collector()


def beautyspot_memory(folder: Path, func: Callable[..., Any]) -> Memoized:
    """beautyspot with its in-process memory tier in front of SQLite."""
    return beautyspot(folder, func, memory_cache=MEMORY_ENTRIES)


def diskcache_memoize(folder: Path, func: Callable[..., Any]) -> Memoized:
    """``diskcache.Cache(folder).memoize()``."""
    import diskcache

    cache = diskcache.Cache(str(folder))
    return cache.memoize()(func), cache.close


def joblib_memory(folder: Path, func: Callable[..., Any]) -> Memoized:
    """``joblib.Memory(folder, verbose=0).cache``."""
    import joblib

    return joblib.Memory(str(folder), verbose=0).cache(func), _nothing


def cachier_memoize(folder: Path, func: Callable[..., Any]) -> Memoized:
    """``@cachier(cache_dir=folder, separate_files=True)``: its default keeps one pickle file per
    function, rewritten whole on every miss, which would time the file size, not the cache."""
    import cachier

    return cachier.cachier(cache_dir=str(folder), separate_files=True)(func), _nothing


def cachetools_cached(folder: Path, func: Callable[..., Any]) -> Memoized:
    """``cachetools.cached(LRUCache(...))``: the in-memory floor (the folder is unused)."""
    import cachetools

    return cachetools.cached(cachetools.LRUCache(maxsize=MEMORY_ENTRIES))(func), _nothing


def write_and_rename(folder: Path, data: bytes) -> Callable[[int], None]:
    """Reference for a blob save: write ``data`` to a temp file, rename it to its name."""
    folder.mkdir(parents=True, exist_ok=True)

    def save(number: int) -> None:
        temp = folder / f".{number}.tmp"
        with open(temp, "wb") as file:
            file.write(data)
        os.replace(temp, folder / str(number))

    return save


def read_file(folder: Path) -> Callable[[int], bytes]:
    """Reference for a blob load: read back a file :func:`write_and_rename` wrote."""

    def load(number: int) -> bytes:
        with open(folder / str(number), "rb") as file:
            return file.read()

    return load


def _nothing() -> None:
    return None


MEMOIZERS: dict[str, Memoizer] = {
    "beautyspot": beautyspot,
    "beautyspot memory tier": beautyspot_memory,
    "raw floor": raw_floor,
    "diskcache": diskcache_memoize,
    "joblib": joblib_memory,
    "cachier": cachier_memoize,
    "cachetools": cachetools_cached,
}
