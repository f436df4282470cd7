"""PostgresTaskDB against a real server: the contract, URLs, concurrent first opens, versions,
failing services, pickling and redaction.

Each test gets its own PostgreSQL schema (selected by ``options=-csearch_path=...`` in the URL,
as a user keeps teams apart) and drops it afterwards. The server is at
``BEAUTYSPOT_TEST_POSTGRES_URL``; without one, these tests skip.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import time
import traceback
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from tests.conftest import service_unavailable

import beautyspot as bs
from beautyspot._registry import redacted
from beautyspot.db import taskdb_from
from beautyspot.db.base import FailureRecord, TaskRecord
from beautyspot.errors import ConfigurationError, StorageError
from beautyspot.testing import (
    FullTaskDBContract,
    LeaseTaskDBContract,
    StatsTaskDBContract,
)

psycopg = pytest.importorskip("psycopg")
postgres = pytest.importorskip("beautyspot.db.postgres")
PostgresTaskDB = postgres.PostgresTaskDB

POSTGRES_URL = os.environ.get(
    "BEAUTYSPOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
SECRET = "Sup3rSecretPw"

#: SQLite's version-3 layout, column for column.
TASK_COLUMNS = [
    "cache_key", "result_type", "result_value", "result_data", "checksum", "expires_at",
    "code_fingerprint", "func_name", "input_id", "version", "content_type", "size", "duration",
    "created_at", "input_preview", "cost", "hits", "arg_digests",
]  # fmt: skip


def with_params(url: str, **params: str) -> str:
    """``url`` with libpq query parameters added."""
    parts = urlsplit(url)
    extra = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
    return urlunsplit(parts._replace(query="&".join(filter(None, [parts.query, extra]))))


def with_scheme(url: str, scheme: str) -> str:
    return scheme + url[url.index("://") :]


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}:{password}@{host}"))


def schema_url(schema: str) -> str:
    """The test server, with its tables in ``schema``; connections named after it."""
    return with_params(POSTGRES_URL, options=f"-csearch_path={schema}", application_name=schema)


def record(key: str, **values: Any) -> TaskRecord:
    fields = {"created_at": 1.9e9, "code_fingerprint": f"fp-{key}", **values}
    return TaskRecord(key, "tests.fn", f"in-{key}", "v1", "inline", None, None, key.encode(),
                      **fields)  # fmt: skip


@pytest.fixture(scope="module")
def admin() -> Iterator[Any]:
    """A plain connection to the test server, outside PostgresTaskDB."""
    try:
        conn = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        service_unavailable(
            f"PostgreSQL not reachable at {redacted(POSTGRES_URL)} ({exc}); "
            "set BEAUTYSPOT_TEST_POSTGRES_URL"
        )
    yield conn
    conn.close()


def create_schema(admin: Any) -> str:
    name = f"bs_test_{uuid.uuid4().hex[:16]}"
    admin.execute(f"CREATE SCHEMA {name}")
    return name


def drop_schema(admin: Any, name: str) -> None:
    admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture
def schema(admin: Any) -> Iterator[str]:
    name = create_schema(admin)
    yield name
    drop_schema(admin, name)


@pytest.fixture
def url(schema: str) -> str:
    return schema_url(schema)


@pytest.fixture
def db(url: str) -> Iterator[Any]:
    opened = PostgresTaskDB(url)
    opened.init_schema()
    yield opened
    opened.close()


def rows(admin: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return admin.execute(sql, params).fetchall()


# --- 1. the contract ------------------------------------------------------------------------


class TestPostgresTaskDB(FullTaskDBContract, LeaseTaskDBContract, StatsTaskDBContract):
    @pytest.fixture
    def taskdb(self, url: str) -> Iterator[Any]:
        opened = PostgresTaskDB(url)
        yield opened
        opened.close()


def test_schema_mirrors_sqlite_and_is_version_2(db: Any, admin: Any, schema: str) -> None:
    columns = rows(
        admin,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'beautyspot_tasks' ORDER BY ordinal_position",
        (schema,),
    )
    assert [name for (name,) in columns] == TASK_COLUMNS
    assert rows(admin, f"SELECT version FROM {schema}.beautyspot_schema") == [(1,), (2,)]
    indexes = {name for (name,) in rows(
        admin, "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,)
    )}  # fmt: skip
    assert {"beautyspot_tasks_history", "beautyspot_tasks_func_name"} <= indexes


def test_count_and_paged_blob_locations(
    db: Any, admin: Any, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "_BLOB_PAGE", 3)  # pages of 3, so 10 blobs take 4 pages
    for i in range(10):  # "" sorts first of all keys: the first page must still hold it
        key = "" if i == 0 else f"b{i:02d}"
        db.save(key, "fn", "in", None, "blob", None, result_value=f"loc/{i}")
    db.save("inline", "fn", "in", None, "inline", None, result_data=b"x")
    assert db.count() == 11
    seen = []
    for location in db.iter_blob_locations():
        seen.append(location)
        db.save(f"a-new-{location}", "fn", "in", None, "inline", None, result_data=b"x")
    assert sorted(seen) == sorted(f"loc/{i}" for i in range(10))


def test_failure_text_with_nul_is_kept_readable(db: Any) -> None:
    db.record_failure(FailureRecord("k", "fn", "fn('a\\x00')", "ValueError", "a\x00b", "tb", 1.0))
    assert db.get_failures()[0]["message"] == "a\\x00b"


# --- 2. URLs and Spots ------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_every_scheme_opens_the_database(url: str, scheme: str) -> None:
    db = taskdb_from(with_scheme(url, scheme), namespace="spot-name")
    try:
        assert type(db) is PostgresTaskDB
        db.save_record(record("k1"))
        assert db.lookup("k1") == (b"k1", None, None, "fp-k1")
    finally:
        db.close()


SQUARED: list[int] = []


def square(x: int) -> int:
    SQUARED.append(x)
    return x * x


def test_spots_on_one_url_compute_once(url: str, workdir: Path) -> None:
    calls = SQUARED
    calls.clear()
    first = bs.Spot("analysis", db=url)
    assert first.mark(square)(8) == 64
    # Another Spot (another process, another name) on the same database: every key already
    # names the function, so records are shared, as on one SQLite file.
    for name in ("analysis", "another-name"):
        again = bs.Spot(name, db=with_scheme(url, "postgresql+psycopg"))
        assert again.mark(square)(8) == 64
        again.close()
    assert calls.count(8) == 1
    # A pickled Spot rebuilds its database from the URL and hits too.
    clone = pickle.loads(pickle.dumps(first))
    assert clone.mark(square)(8) == 64
    assert calls.count(8) == 1
    clone.close()
    first.close()


def test_unknown_options_are_type_errors(url: str) -> None:
    with pytest.raises(TypeError):
        PostgresTaskDB.from_url(url, namespace="x", pool_size=3)
    with pytest.raises(ConfigurationError, match="min_size"):
        PostgresTaskDB(url, min_size=5, max_size=2)
    with pytest.raises(ConfigurationError, match="not a PostgreSQL URL"):
        PostgresTaskDB("redis://127.0.0.1:6379/0")


# --- 3. the schema: concurrent first opens, newer versions, foreign tables ------------------


def open_at_once(urls: list[str], name: str, start: Any, results: Any) -> None:
    """For each fresh schema: open it the moment the other processes do, then write."""
    problems = []
    for url in urls:
        try:
            start.wait(timeout=60)
            db = PostgresTaskDB(url)
            db.init_schema()
            db.save_record(record(name))
            db.close()
        except Exception as error:
            problems.append(f"{name}: {error!r}")
    results.put(problems)


def test_processes_initialise_a_fresh_database_at_once(spawn: Any, admin: Any) -> None:
    schemas = [create_schema(admin) for _ in range(8)]  # the race is won differently each time
    names = ["a", "b", "c"]
    start, results = spawn.Barrier(len(names)), spawn.Queue()
    workers = [
        spawn.Process(
            target=open_at_once, args=([schema_url(s) for s in schemas], name, start, results)
        )
        for name in names
    ]
    try:
        for worker in workers:
            worker.start()
        problems = [results.get(timeout=60) for _ in workers]
        assert problems == [[]] * len(names)
        for schema in schemas:
            assert rows(admin, f"SELECT version FROM {schema}.beautyspot_schema") == [(1,), (2,)]
            keys = rows(admin, f"SELECT cache_key FROM {schema}.beautyspot_tasks ORDER BY 1")
            assert keys == [(name,) for name in names]
    finally:
        for worker in workers:
            worker.join(timeout=10)
            worker.kill()
        for schema in schemas:
            drop_schema(admin, schema)


def test_a_newer_database_is_refused_untouched(db: Any, admin: Any, schema: str) -> None:
    db.save_record(record("k1"))
    admin.execute(f"INSERT INTO {schema}.beautyspot_schema VALUES (7, 0)")
    before = rows(admin, f"SELECT * FROM {schema}.beautyspot_tasks")
    newer = PostgresTaskDB(with_password(db.url, SECRET))
    with pytest.raises(ConfigurationError, match="schema version 7, newer than") as info:
        newer.init_schema()
    assert SECRET not in str(info.value) and "***" in str(info.value)
    assert rows(admin, f"SELECT * FROM {schema}.beautyspot_tasks") == before
    assert rows(admin, f"SELECT version FROM {schema}.beautyspot_schema") == [(1,), (2,), (7,)]


def test_a_version_1_database_is_migrated_in_place_with_every_value(
    url: str, admin: Any, schema: str
) -> None:
    """Version 1 -> 2 adds arg_digests; every value of a record saved before stays, and the
    record reads as one that predates digests."""
    with admin.transaction():
        admin.execute(f"SET LOCAL search_path = {schema}")
        admin.execute(postgres._SCHEMA_TABLE)
        for statement in postgres.MIGRATIONS[0]:
            admin.execute(statement)
        admin.execute("INSERT INTO beautyspot_schema VALUES (1, 0)")
    old = record("old", input_preview="n=1", cost=3.5, checksum="xxh3:00", size=3)
    old_columns = [c for c in TaskRecord._fields if c != "arg_digests"]
    admin.execute(
        f"INSERT INTO {schema}.beautyspot_tasks ({', '.join(old_columns)}) "
        f"VALUES ({', '.join(['%s'] * len(old_columns))})",
        [getattr(old, c) for c in old_columns],
    )
    admin.execute(f"UPDATE {schema}.beautyspot_tasks SET hits = 4")
    migrated = PostgresTaskDB(url)
    try:
        stored = migrated.get("old")
        assert stored == {**old.as_dict(), "hits": 4}  # arg_digests: None, as saved before
        assert rows(admin, f"SELECT version FROM {schema}.beautyspot_schema") == [(1,), (2,)]
        migrated.save_record(record("new", arg_digests=b"\x92\x01\x80"))
        assert migrated.get("new")["arg_digests"] == b"\x92\x01\x80"
    finally:
        migrated.close()


def test_tables_of_another_program_are_refused(url: str, admin: Any, schema: str) -> None:
    admin.execute(f"CREATE TABLE {schema}.beautyspot_tasks (id int)")
    with pytest.raises(ConfigurationError, match="another program"):
        PostgresTaskDB(url).init_schema()
    assert rows(admin, f"SELECT to_regclass('{schema}.beautyspot_schema')") == [(None,)]


def test_a_missing_schema_is_a_clear_error(admin: Any) -> None:
    with pytest.raises(ConfigurationError, match="create the version table"):
        PostgresTaskDB(schema_url("bs_test_no_such_schema")).init_schema()


# --- 4. services that fail --------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_server_is_a_storage_error_naming_the_address(
    caplog: pytest.LogCaptureFixture, workdir: Path
) -> None:
    port = closed_port()
    url = f"postgresql://app:{SECRET}@127.0.0.1:{port}/test"
    started = time.monotonic()
    with (
        caplog.at_level(logging.DEBUG),
        warnings.catch_warnings(record=True) as caught,
        pytest.raises(StorageError) as info,
    ):
        warnings.simplefilter("always")
        bs.Spot("offline", db=url, storage="blobs")
    assert time.monotonic() - started < 5.0
    assert f"127.0.0.1:{port}" in str(info.value)
    shown = [
        "".join(traceback.format_exception(info.value)),
        repr(info.value),
        caplog.text,
        *(str(w.message) for w in caught),
    ]
    assert not [text for text in shown if SECRET in text]


def test_a_silent_host_fails_within_the_timeout() -> None:
    # 192.0.2.0/24 is reserved for documentation: packets go nowhere (or are refused at once).
    db = PostgresTaskDB(f"postgresql://app:{SECRET}@192.0.2.1:5432/test", timeout=2)
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"192\.0\.2\.1:5432") as info:
        db.lookup("k1")
    assert time.monotonic() - started < 2 + 1.5
    assert SECRET not in "".join(traceback.format_exception(info.value))


def wait_for_connections(admin: Any, application_name: str, count: int) -> None:
    deadline = time.monotonic() + 5
    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
    while rows(admin, sql, (application_name,)) != [(count,)]:
        assert time.monotonic() < deadline, f"the pool did not open {count} connections"
        time.sleep(0.01)


def kill_connections(admin: Any, application_name: str) -> int:
    """Terminate every server process of the named connections; wait until they are gone."""
    (killed,) = admin.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
        (application_name,),
    ).fetchone()
    deadline = time.monotonic() + 5
    while rows(
        admin, "SELECT 1 FROM pg_stat_activity WHERE application_name = %s", (application_name,)
    ):
        assert time.monotonic() < deadline, "the server did not end the connections"
        time.sleep(0.01)
    return int(killed)


def test_killed_connections_fail_one_call_then_reconnect(
    url: str, admin: Any, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A password in the URL (the test server trusts local users, so it is never asked for).
    secret = urlsplit(url).password or SECRET
    db = PostgresTaskDB(with_password(url, secret), min_size=3, max_size=3)
    try:
        with caplog.at_level(logging.DEBUG):
            db.save_record(record("k1"))
            with ThreadPoolExecutor(max_workers=6) as pool:
                assert set(pool.map(lambda _: db.lookup("k1")[0], range(300))) == {b"k1"}
            wait_for_connections(admin, schema, 3)  # the pool is full: none opens meanwhile
            assert kill_connections(admin, schema) == 3
            with pytest.raises(StorageError, match="cannot look up a record") as info:
                db.lookup("k1")
            # The failed call had the pool test its idle connections: every later call works.
            assert [db.lookup("k1")[0] for _ in range(20)] == [b"k1"] * 20
            db.save_record(record("k2"))
            assert db.get("k2")["input_id"] == "in-k2"
    finally:
        db.close()
    assert db.address in str(info.value)
    assert secret not in "".join(traceback.format_exception(info.value))
    assert "discarding broken connection" in caplog.text  # the pool's own log ...
    assert secret not in caplog.text  # ... never shows the password


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with the pool's threads
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_opens_its_own_connections(db: Any) -> None:
    db.save_record(record("parent"))
    pid = os.fork()
    if pid == 0:  # the child: its own pool, the parent's sockets untouched
        code = 1
        try:
            db.save_record(record("child"))
            code = 0 if db.lookup("parent")[0] == b"parent" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [db.lookup(key)[0] for key in ("parent", "child")] == [b"parent", b"child"]


# --- 5. pickling and redaction ----------------------------------------------------------------


def test_pickles_by_configuration(db: Any) -> None:
    db.save_record(record("k1"))
    configured = PostgresTaskDB(db.url, timeout=3, min_size=0, max_size=4)
    configured.init_schema()  # open: the pool must not travel
    data = pickle.dumps(configured)
    assert b"ConnectionPool" not in data
    clone = pickle.loads(data)
    try:
        assert (clone.url, clone.timeout, clone.min_size, clone.max_size) == (db.url, 3, 0, 4)
        assert clone._pool is None  # nothing connects until first use
        assert clone.lookup("k1") == (b"k1", None, None, "fp-k1")
    finally:
        clone.close()
        configured.close()


def test_the_password_never_shows() -> None:
    url = f"postgresql+psycopg://app:{SECRET}@db.internal:6543/cache?sslmode=require"
    db = PostgresTaskDB(url)
    assert repr(db) == (
        "PostgresTaskDB('postgresql+psycopg://app:***@db.internal:6543/cache?sslmode=require')"
    )
    assert db.address == "db.internal:6543"
    # libpq quotes the bad part of a URL it cannot read: here, the password itself.
    with pytest.raises(ConfigurationError) as info:
        PostgresTaskDB(f"postgresql://app:{SECRET}%zz@db/cache")
    assert SECRET not in "".join(traceback.format_exception(info.value))
