"""Schema version 1 -> 2 of SQLiteTaskDB: data kept, one transaction, concurrent openers,
newer files refused, and old records that can only miss.

Version-1 files are built here from ``MIGRATIONS[0]`` with plain sqlite3, as the released
beautyspot left them (WAL mode, ``PRAGMA user_version = 1``); the first test pins that step's
text, so the files built here stay the ones users have.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import sqlite_dump

import beautyspot as bs
from beautyspot.cachekey import plan
from beautyspot.db.base import FailureRecord, HitRow, TaskRecord
from beautyspot.db.sqlite import MIGRATIONS, SQLiteTaskDB
from beautyspot.errors import ConfigurationError
from beautyspot.storage.local import LocalStorage

# --- the version-1 file -------------------------------------------------------------------

#: ``MIGRATIONS[0]`` as released (whitespace aside): a released step is never edited.
RELEASED_V1 = (
    "CREATE TABLE tasks ( cache_key TEXT PRIMARY KEY, func_name TEXT, input_id TEXT, "
    "input_preview TEXT, version TEXT, result_type TEXT, content_type TEXT, result_value TEXT, "
    "result_data BLOB, checksum TEXT, size INTEGER, duration REAL, created_at REAL, "
    "expires_at REAL )",
    "CREATE TABLE failures ( id INTEGER PRIMARY KEY, cache_key TEXT, func_name TEXT, "
    "input_preview TEXT, error_type TEXT, message TEXT, traceback TEXT, created_at REAL )",
)
V1_TASK_COLUMNS = (
    "cache_key", "func_name", "input_id", "input_preview", "version", "result_type",
    "content_type", "result_value", "result_data", "checksum", "size", "duration",
    "created_at", "expires_at",
)  # fmt: skip
V1_FAILURE_COLUMNS = (
    "id", "cache_key", "func_name", "input_preview", "error_type", "message", "traceback",
    "created_at",
)  # fmt: skip

#: What a hit reads, first in the version-2 table, in this order (after cache_key).
HIT_COLUMNS = (
    "result_type", "result_value", "result_data", "checksum", "expires_at", "code_fingerprint",
)  # fmt: skip

#: The schema version a file has once opened by this beautyspot.
LATEST = len(MIGRATIONS)

PAST, NOW, FUTURE = 1_700_000_100.0, 1_800_000_000.0, 2_000_000_000.0
BIG = bytes(range(256)) * 800  # 200 KB inline: overflow pages in the new b-tree


def checksum_of(data: bytes) -> str:
    """The tag version 1 wrote (sha256 only); later versions must keep verifying it."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def task(key: str | None, result_type: str, **values: Any) -> dict[str, Any]:
    """A version-1 row: every column, distinct values, so a shifted column shows."""
    row: dict[str, Any] = dict.fromkeys(V1_TASK_COLUMNS)
    row.update(cache_key=key, result_type=result_type)
    row.update(values)
    return row


def full(key: str, n: int, result_type: str, expires_at: float | None) -> dict[str, Any]:
    if result_type == "inline":
        data: bytes | None = f"value-{n}".encode()
        placement = {"result_value": None, "result_data": data}
    else:
        data = f"blob-bytes-{n}".encode()
        placement = {"result_value": f"{key[:2]}/{key}-{n:016x}", "result_data": None}
    return task(
        key,
        result_type,
        func_name=f"pkg.mod.fn{n}",
        input_id=f"{n:032x}",
        input_preview=f"text='héllo {n}'",
        version=f"v{n}",
        content_type="text/markdown" if n % 2 else "application/json",
        checksum=checksum_of(data),
        size=len(data) + 1000 * n,
        duration=0.25 * n,
        created_at=1_700_000_000.0 + n,
        expires_at=expires_at,
        **placement,
    )


V1_TASKS = [
    full("a1" * 16, 1, "inline", None),
    full("a2" * 16, 2, "inline", PAST),
    full("a3" * 16, 3, "inline", FUTURE),
    full("b1" * 16, 4, "blob", None),
    full("b2" * 16, 5, "blob", PAST),
    full("b3" * 16, 6, "blob", FUTURE),
    # Sparse and odd: NULLs where version 1 allowed them, empty bytes (not NULL), a big value.
    task("c1" * 16, "inline", func_name="fn", input_id="0" * 32, result_data=b""),
    task("c2" * 16, "inline", result_data=BIG, size=len(BIG), created_at=1_600_000_000.0),
]
V1_FAILURES = [
    (1, "a1" * 16, "pkg.mod.fn1", "x=1", "ValueError", "bad x", "Traceback ...\n", 1.7e9),
    (2, None, "pkg.mod.fn2", "", "KeyError", "'k'", "Traceback ...\n", 1.8e9),
]


def build_v1(
    path: Path,
    tasks: list[dict[str, Any]] = V1_TASKS,
    failures: list[tuple[Any, ...]] = V1_FAILURES,
    journal_mode: str = "wal",
) -> None:
    """A version-1 file, written with exactly ``MIGRATIONS[0]``'s statements."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA journal_mode = {journal_mode}")
        conn.execute("BEGIN")
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        for row in tasks:
            conn.execute(
                f"INSERT INTO tasks ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )
        conn.executemany(
            f"INSERT INTO failures VALUES ({', '.join('?' * len(V1_FAILURE_COLUMNS))})", failures
        )
        conn.execute("PRAGMA user_version = 1")
        conn.execute("COMMIT")
    finally:
        conn.close()


def migrated(row: dict[str, Any]) -> dict[str, Any]:
    """What a version-1 row must read as after the migration."""
    return {**row, "code_fingerprint": None, "cost": None, "hits": 0, "arg_digests": None}


def payload_of(found: Any) -> tuple[Any, ...]:
    """What a hit needs of a record, from ``get``/a row (a mapping) or from ``lookup`` (a
    :class:`HitRow` tuple): its bytes (inline) or location (blob), checksum and expiry."""
    if isinstance(found, Mapping):
        return tuple(HitRow.of(found))[:3]
    return tuple(found[:3])


def typed(row: Any) -> dict[str, tuple[str, Any]]:
    """A row with each value's type, so 1 and 1.0, or b"" and None, do not compare equal."""
    return {name: (type(value).__name__, value) for name, value in dict(row).items()}


# --- raw access, outside SQLiteTaskDB -----------------------------------------------------


def query(path: Path, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def user_version(path: Path) -> int:
    return query(path, "PRAGMA user_version")[0][0]


def columns(path: Path, table: str = "tasks") -> list[str]:
    return [row["name"] for row in query(path, f"PRAGMA table_info({table})")]


def schema(path: Path) -> set[tuple[str, str]]:
    return {(row["type"], row["name"]) for row in query(path, "SELECT * FROM sqlite_master")}


def has_rowid(path: Path, table: str = "tasks") -> bool:
    try:
        query(path, f"SELECT rowid FROM {table} LIMIT 1")
    except sqlite3.OperationalError as error:
        assert "no such column: rowid" in str(error)
        return False
    return True


def old_layout_rows(path: Path) -> list[tuple[Any, ...]]:
    """The tasks as a version-1 reader sees them: its columns, in its order, by rowid."""
    return [
        tuple(row)
        for row in query(path, f"SELECT {', '.join(V1_TASK_COLUMNS)} FROM tasks ORDER BY rowid")
    ]


def integrity(path: Path) -> str:
    return query(path, "PRAGMA integrity_check")[0][0]


@pytest.fixture
def v1_path(tmp_path: Path) -> Path:
    path = tmp_path / "tasks.db"
    build_v1(path)
    return path


# --- 0. the released step the tests build from -------------------------------------------


def test_released_version_1_step_is_unchanged() -> None:
    assert [" ".join(statement.split()) for statement in MIGRATIONS[0]] == list(RELEASED_V1)
    assert len(MIGRATIONS) == 3, "a new schema step: add its migration tests here"


# --- 1. in-place migration keeps everything ----------------------------------------------


@pytest.mark.parametrize("journal_mode", ["wal", "delete"])
def test_version_1_file_is_migrated_in_place_with_every_value(
    tmp_path: Path, journal_mode: str
) -> None:
    path = tmp_path / "tasks.db"
    build_v1(path, journal_mode=journal_mode)
    inode = path.stat().st_ino
    assert has_rowid(path) and user_version(path) == 1

    db = SQLiteTaskDB(path)
    db.init_schema()

    assert user_version(path) == LATEST
    assert path.stat().st_ino == inode  # in place, not a new file
    assert query(path, "PRAGMA journal_mode")[0][0] == "wal"
    assert integrity(path) == "ok"
    # WITHOUT ROWID, hit fields first, and nothing left of the copy.
    assert not has_rowid(path)
    (sql,) = query(path, "SELECT sql FROM sqlite_master WHERE name = 'tasks'")[0]
    assert re.search(r"\)\s*WITHOUT\s+ROWID\s*$", sql, re.IGNORECASE), sql
    assert columns(path)[: 1 + len(HIT_COLUMNS)] == ["cache_key", *HIT_COLUMNS]
    assert sorted(columns(path)) == sorted((*TaskRecord._fields, "hits"))
    fresh = tmp_path / "fresh.db"
    SQLiteTaskDB(fresh).init_schema()
    assert schema(path) == schema(fresh)

    # Every row, every column, every type; the new column NULL.
    rows = query(path, "SELECT * FROM tasks ORDER BY cache_key")
    assert [typed(row) for row in rows] == [typed(migrated(row)) for row in V1_TASKS]
    failures = query(path, "SELECT * FROM failures ORDER BY id")
    assert [tuple(row) for row in failures] == V1_FAILURES

    # The API on the migrated rows.
    by_key = {row["cache_key"]: migrated(row) for row in V1_TASKS}
    for key, expected in by_key.items():
        assert typed(db.get(key)) == typed(expected)
        assert payload_of(db.lookup(key)) == payload_of(expected)
    assert db.lookup("f0" * 16) is None
    newest_first = sorted(  # SQLite puts NULL last in DESC order
        V1_TASKS, key=lambda row: (row["created_at"] is None, -(row["created_at"] or 0))
    )
    assert [typed(row) for row in db.get_history()] == [
        typed(migrated(row)) for row in newest_first
    ]
    assert db.count() == len(V1_TASKS)
    assert [tuple(row.values()) for row in db.get_failures()] == V1_FAILURES[::-1]
    blobs = {row["result_value"] for row in V1_TASKS if row["result_type"] == "blob"}
    assert sorted(db.iter_blob_locations()) == sorted(blobs)

    expired = {row["cache_key"] for row in V1_TASKS if (row["expires_at"] or FUTURE) <= NOW}
    assert db.delete_expired(now=NOW) == len(expired) == 2
    assert {row["cache_key"] for row in db.get_history()} == set(by_key) - expired
    assert sorted(db.iter_blob_locations()) == [
        f"b1/{'b1' * 16}-{4:016x}",
        f"b3/{'b3' * 16}-{6:016x}",
    ]

    # And writes: a new record with its fingerprint, a replaced old one, a delete, a failure.
    db.save_record(TaskRecord("d1" * 16, "fn", "in", None, "inline", None, None, b"x",
                              code_fingerprint="fp-1"))  # fmt: skip
    db.save_record(TaskRecord("a1" * 16, "fn", "in", "v9", "inline", None, None, b"new"))
    assert db.get("d1" * 16)["code_fingerprint"] == "fp-1"
    assert payload_of(db.lookup("a1" * 16)) == (b"new", None, None)
    assert db.delete("c1" * 16) and not db.delete("c1" * 16)
    db.record_failure(FailureRecord("k", "fn", "", "OSError", "disk", "tb", 1.9e9))
    assert [row["id"] for row in db.get_failures()] == [3, 2, 1]
    db.close()
    assert integrity(path) == "ok"

    # Opening again is a no-op: already at the latest version.
    again = SQLiteTaskDB(path)
    assert again.count() == len(V1_TASKS) - len(expired)
    again.close()
    assert user_version(path) == LATEST


def test_version_2_file_gains_arg_digests_in_place_with_every_value(tmp_path: Path) -> None:
    """Version 2 -> 3 only adds the arg_digests column: every value of every row stays, old
    records read with no digests (explain says they predate them), new ones keep theirs."""
    path = tmp_path / "tasks.db"
    build_v1(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for statement in MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO tasks (cache_key, result_type, result_data, code_fingerprint, func_name, "
            "input_id, version, cost, hits, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ("e1" * 16, "inline", b"v2", "fp-2", "pkg.mod.fn", "9" * 32, "v2", 2.5, 7, 1.75e9),
        )
        conn.execute("PRAGMA user_version = 2")
        conn.execute("COMMIT")
    finally:
        conn.close()
    inode = path.stat().st_ino
    before = [typed(row) for row in query(path, "SELECT * FROM tasks ORDER BY cache_key")]
    failures = [tuple(row) for row in query(path, "SELECT * FROM failures ORDER BY id")]

    db = SQLiteTaskDB(path)
    db.init_schema()

    assert user_version(path) == LATEST == 3
    assert path.stat().st_ino == inode
    assert integrity(path) == "ok"
    after = [typed(row) for row in query(path, "SELECT * FROM tasks ORDER BY cache_key")]
    assert after == [{**row, "arg_digests": ("NoneType", None)} for row in before]
    assert [tuple(row) for row in query(path, "SELECT * FROM failures ORDER BY id")] == failures
    assert db.get("e1" * 16)["hits"] == 7 and db.get("e1" * 16)["arg_digests"] is None
    fresh = tmp_path / "fresh.db"
    SQLiteTaskDB(fresh).init_schema()
    assert sorted(columns(path)) == sorted(columns(fresh))
    db.save_record(TaskRecord("f1" * 16, "fn", "in", None, "inline", None, None, b"x",
                              arg_digests=b"\x92\x01\x81\xa1n\x01"))  # fmt: skip
    assert db.get("f1" * 16)["arg_digests"] == b"\x92\x01\x81\xa1n\x01"
    db.close()


# --- 2. one transaction -------------------------------------------------------------------

BAD_STATEMENTS = {
    "syntax": "NOT SQL AT ALL",  # sqlite3.OperationalError
    "constraint": "INSERT INTO failures (id) VALUES (1)",  # sqlite3.IntegrityError
}


def broken_migrations(position: int, bad: str) -> tuple[tuple[str, ...], ...]:
    """The real steps, with ``bad`` after the first ``position`` statements of step 2."""
    step = list(MIGRATIONS[1])
    step.insert(position, bad)
    return (MIGRATIONS[0], tuple(step))


@pytest.mark.parametrize("kind", list(BAD_STATEMENTS))
@pytest.mark.parametrize("position", range(1, len(MIGRATIONS[1]) + 1))
def test_a_step_failing_half_way_leaves_the_version_1_file_exactly_as_it_was(
    v1_path: Path, monkeypatch: pytest.MonkeyPatch, position: int, kind: str
) -> None:
    # Position 1: after the new table is made; 2: after the copy; 3: after the old table is
    # dropped; 4: after the rename (the step ends in the bad statement).
    before = sqlite_dump(v1_path)
    rows = old_layout_rows(v1_path)
    monkeypatch.setattr(
        SQLiteTaskDB, "MIGRATIONS", broken_migrations(position, BAD_STATEMENTS[kind])
    )

    db = SQLiteTaskDB(v1_path)
    with pytest.raises((ConfigurationError, sqlite3.Error)):
        db.init_schema()
    with pytest.raises((ConfigurationError, sqlite3.Error)):
        db.get("a1" * 16)  # a failed open is not remembered as done

    assert user_version(v1_path) == 1
    assert sqlite_dump(v1_path) == before  # tables, their SQL, every row and the failures
    assert has_rowid(v1_path)
    assert old_layout_rows(v1_path) == rows
    assert schema(v1_path) == {
        ("table", "tasks"), ("index", "sqlite_autoindex_tasks_1"), ("table", "failures")
    }  # fmt: skip
    assert integrity(v1_path) == "ok"

    # Nothing left behind blocks the real migration.
    monkeypatch.undo()
    db = SQLiteTaskDB(v1_path)
    assert db.count() == len(V1_TASKS)
    assert typed(db.get("c2" * 16)) == typed(migrated(V1_TASKS[-1]))
    db.close()
    assert user_version(v1_path) == LATEST


@pytest.mark.parametrize(
    "kind",
    [
        "syntax",
        "constraint",
    ],
)
def test_a_failing_step_is_a_configuration_error_naming_the_file_and_versions(
    v1_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setattr(SQLiteTaskDB, "MIGRATIONS", broken_migrations(4, BAD_STATEMENTS[kind]))
    with pytest.raises(ConfigurationError) as caught:
        SQLiteTaskDB(v1_path).init_schema()
    message = str(caught.value)
    assert f"cannot upgrade task database {v1_path} from schema version 1 to 2" in message
    assert user_version(v1_path) == 1


def test_a_version_1_row_with_a_null_key_does_not_make_the_file_unopenable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tasks.db"
    null_key = task(None, "inline", func_name="fn", result_data=b"x")
    build_v1(path, tasks=[*V1_TASKS, null_key])
    before = sqlite_dump(path)
    try:
        SQLiteTaskDB(path).init_schema()
    except ConfigurationError as error:  # refused clearly and left alone: acceptable
        assert f"cannot upgrade task database {path} from schema version 1 to 2" in str(error)
        assert sqlite_dump(path) == before
    else:  # or migrated, every row that has a key kept
        assert user_version(path) == LATEST
        keys = [row["cache_key"] for row in query(path, "SELECT cache_key FROM tasks")]
        assert set(keys) >= {row["cache_key"] for row in V1_TASKS}


# --- 3. two processes migrate one file at once -------------------------------------------

WRITES = 20


def written(name: str, i: int) -> TaskRecord:
    key = f"{name}-{i}"
    return TaskRecord(key, "tests.fn", f"in-{key}", "v1", "inline", None, None, key.encode(),
                      created_at=1.9e9, code_fingerprint=f"fp-{key}")  # fmt: skip


def migrate_at_once(paths: list[str], name: str, other: str, start: Any, results: Any) -> None:
    """For each version-1 file: open it the moment the other process does, check the old rows,
    write; then, once both have written, read the other's records. Report problems."""
    problems: list[str] = []
    for path in paths:
        db = None
        try:
            start.wait(timeout=60)
            db = SQLiteTaskDB(path)
            db.init_schema()
            for row in V1_TASKS:
                if typed(db.get(row["cache_key"])) != typed(migrated(row)):
                    problems.append(f"{path}: {row['cache_key']} changed")
            for i in range(WRITES):
                db.save_record(written(name, i))
        except Exception as error:
            problems.append(f"{path}: {error!r}")
        try:
            start.wait(timeout=60)
            if db is not None:
                for i in range(WRITES):
                    record = db.get(f"{other}-{i}")
                    if record is None or record["code_fingerprint"] != f"fp-{other}-{i}":
                        problems.append(f"{path}: {other}-{i} read as {record!r}")
        except Exception as error:
            problems.append(f"{path}: {error!r}")
        finally:
            if db is not None:
                db.close()
    results.put(problems)


def test_two_processes_open_one_version_1_file_at_once(spawn, tmp_path: Path) -> None:
    # The race goes wrong only now and then, so it is run on many files.
    paths = [tmp_path / f"tasks-{i}.db" for i in range(100)]
    for path in paths:
        build_v1(path)
    start, results = spawn.Barrier(2), spawn.Queue()
    names = {"a": "b", "b": "a"}
    workers = [
        spawn.Process(
            target=migrate_at_once, args=([str(p) for p in paths], name, other, start, results)
        )
        for name, other in names.items()
    ]
    for worker in workers:
        worker.start()
    try:
        problems = [results.get(timeout=240), results.get(timeout=240)]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            worker.kill()
    assert problems == [[], []]

    expected = {row["cache_key"]: typed(migrated(row)) for row in V1_TASKS}
    for name in names:
        for i in range(WRITES):
            record = written(name, i)
            expected[record.cache_key] = typed({**record._asdict(), "hits": 0})
    for path in paths:
        assert user_version(path) == LATEST
        assert not has_rowid(path)
        rows = query(path, "SELECT * FROM tasks")
        keys = [row["cache_key"] for row in rows]
        assert len(keys) == len(set(keys)) == len(expected)
        # Exactly the rows: none lost, none doubled, no fingerprint dropped by a second copy.
        assert {row["cache_key"]: typed(row) for row in rows} == expected
        assert [tuple(row) for row in query(path, "SELECT * FROM failures ORDER BY id")] == (
            V1_FAILURES
        )
    assert integrity(paths[0]) == "ok"


# --- 4. a newer file is refused, untouched ------------------------------------------------

NEWER = len(MIGRATIONS) + 1


@pytest.mark.parametrize(
    "journal_mode",
    [
        "wal",
        "delete",
    ],
)
def test_a_newer_file_is_refused_and_left_byte_for_byte(tmp_path: Path, journal_mode: str) -> None:
    path = tmp_path / "tasks.db"
    db = SQLiteTaskDB(path)
    db.save_record(TaskRecord("k1", "fn", "in", None, "inline", None, None, b"x"))
    db.close()
    conn = sqlite3.connect(path, isolation_level=None)  # what a later beautyspot might write
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.execute("ALTER TABLE tasks ADD COLUMN tokens INTEGER")
    conn.execute(f"PRAGMA user_version = {NEWER}")
    conn.close()
    content, listing = path.read_bytes(), sorted(os.listdir(tmp_path))

    newer = SQLiteTaskDB(path)
    pattern = (
        rf"task database {re.escape(str(path))} has schema version {NEWER}, newer than this "
        rf"beautyspot knows \({len(MIGRATIONS)}\): upgrade beautyspot"
    )
    with pytest.raises(ConfigurationError, match=pattern):
        newer.init_schema()
    with pytest.raises(ConfigurationError, match=pattern):
        newer.get("k1")  # refused on every use, never served
    newer.close()

    assert path.read_bytes() == content
    assert sorted(os.listdir(tmp_path)) == listing  # no -wal or -shm left behind
    assert user_version(path) == NEWER


# --- 5. old records only miss ------------------------------------------------------------

CALLS: list[int] = []


def compute(x: int) -> dict[str, int]:
    CALLS.append(x)
    return {"fresh": x}


MADE_UP_KEY = "0123456789abcdef0123456789abcdef"


def format_1_style_keys(
    spot: bs.Spot, args: list[int], monkeypatch: pytest.MonkeyPatch
) -> dict[int, str]:
    """The keys of ``compute``'s calls with key format 1's personalisation and today's
    encoding: the closest a format-1 key can come to a format-2 one (format-1 code is gone).
    Marked under the patch, since a function's key plan may copy the hashers when marked."""
    with monkeypatch.context() as patch:
        for name, person in (
            ("_INPUT_HASHER", b"beautyspot.in.1"),
            ("_KEY_HASHER", b"beautyspot.key.1"),
        ):
            patch.setattr(plan, name, hashlib.blake2b(digest_size=plan.DIGEST_SIZE, person=person))
        marked = spot.mark(compute)
        return {x: marked.cache_key(x) for x in args}


def stale(key: str, value: Any, n: int, storage: LocalStorage | None = None) -> dict[str, Any]:
    """A version-1 record of ``compute`` that would decode and pass its checksum if its key
    were hit: inline, or with ``storage`` a blob saved there."""
    data = bs.Serializer().dumps(value)
    if storage is None:
        placement = {"result_data": data}
    else:
        placement = {"result_value": storage.save(f"{key}-{n:016x}", data)}
    return task(key, "inline" if storage is None else "blob", func_name=f"{__name__}.compute",
                input_id=f"{n:032x}", checksum=checksum_of(data), size=len(data),
                created_at=1_700_000_000.0 + n, **placement)  # fmt: skip


def test_version_1_records_become_misses_never_wrong_hits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    CALLS.clear()
    # The keys, from a Spot on another file (the version-1 file must not be opened yet).
    scratch = bs.Spot("keys", db=tmp_path / "keys.db", storage=tmp_path / "keys_blobs")
    old_keys = format_1_style_keys(scratch, [7, 9], monkeypatch)
    marked = scratch.mark(compute)
    new_keys = {x: marked.cache_key(x) for x in (7, 8, 9, 10)}
    scratch.close()
    keys = [*new_keys.values(), *old_keys.values(), MADE_UP_KEY]
    assert len(set(keys)) == len(keys)

    path, storage = tmp_path / "tasks.db", LocalStorage(tmp_path / "blobs")
    old_rows = [
        stale(old_keys[7], {"fresh": -7}, 1),
        stale(old_keys[9], {"fresh": -9}, 2, storage),
        stale(MADE_UP_KEY, {"fresh": -1}, 3),
    ]
    # The controls: version-1 rows under format-2 keys are served, so the harness would see
    # a wrong hit if an old key ever met a new one.
    controls = [
        stale(new_keys[8], "planted inline", 4),
        stale(new_keys[10], "planted blob", 5, storage),
    ]
    build_v1(path, tasks=[*old_rows, *controls], failures=[])

    spot = bs.Spot("s", db=path, storage=storage.root)
    fn = spot.mark(compute)
    assert user_version(path) == LATEST
    assert not fn.is_cached(7) and not fn.is_cached(9)
    assert [fn(7), fn(9)] == [{"fresh": 7}, {"fresh": 9}]
    assert [fn(7), fn(9)] == [{"fresh": 7}, {"fresh": 9}]  # stored under format-2 keys, hit
    assert CALLS == [7, 9]
    assert [fn(8), fn(10)] == ["planted inline", "planted blob"]
    assert CALLS == [7, 9]

    history = {row["cache_key"]: row for row in spot.db.get_history()}
    assert set(history) == set(keys)
    for row in old_rows:  # still listed, exactly as they were
        assert typed(history[row["cache_key"]]) == typed(migrated(row))
    # The old blob stays known to gc, so its file is not collected while its record lives.
    assert old_rows[1]["result_value"] in set(spot.db.iter_blob_locations())
    spot.close()
