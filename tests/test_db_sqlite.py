"""SQLiteTaskDB: many threads and processes on one file, crashes, migrations, bad files."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import nobody, run_unprivileged

from beautyspot.db.base import TaskRecord
from beautyspot.db.sqlite import MIGRATIONS, SQLiteTaskDB
from beautyspot.errors import ConfigurationError

# --- helpers, also run inside spawned processes (so they live at module level) -------------


def save_key(db: SQLiteTaskDB, key: str) -> None:
    db.save(key, "tests.fn", f"in-{key}", "v1", "inline", None, result_data=key.encode())


def write_keys(path: str, prefix: str, count: int, start: Any) -> list[str]:
    """Open ``path`` the moment every writer is ready, save ``count`` keys; return errors."""
    errors: list[str] = []
    start.wait(timeout=60)
    try:
        db = SQLiteTaskDB(path)
        db.init_schema()
        for i in range(count):
            try:
                save_key(db, f"{prefix}-{i}")
            except Exception as error:
                errors.append(repr(error))
        db.close()
    except Exception as error:
        errors.append(repr(error))
    return errors


def writer_process(plan: list[tuple[str, int]], prefix: str, start: Any, results: Any) -> None:
    """One process: for each brand-new file, race the other process to open and fill it."""
    results.put([error for path, count in plan for error in write_keys(path, prefix, count, start)])


def write_until_killed(path: str, committed: Any) -> None:
    """Save keys forever, reporting each one after ``save`` returned (it is committed)."""
    db = SQLiteTaskDB(path)
    i = 0
    while True:
        save_key(db, f"k{i}")
        committed.send(i)
        i += 1


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def raw_execute(path: Path, *statements: str) -> list[tuple]:
    """Run SQL on ``path`` with plain sqlite3, outside SQLiteTaskDB; rows of the last one."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        rows: list[tuple] = []
        for statement in statements:
            rows = conn.execute(statement).fetchall()
        return rows
    finally:
        conn.close()


def columns(path: Path, table: str = "tasks") -> list[str]:
    return [row[1] for row in raw_execute(path, f"PRAGMA table_info({table})")]


def user_version(path: Path) -> int:
    return raw_execute(path, "PRAGMA user_version")[0][0]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tasks.db"


# --- many writers -------------------------------------------------------------------------


def test_two_processes_first_open_a_new_file_at_once(spawn, tmp_path: Path) -> None:
    # One file filled with 2 x 500 keys, then many small ones: the first-open race (WAL
    # switch, schema creation) goes wrong only now and then, so it is run many times.
    plan = [(str(tmp_path / "big.db"), 500)]
    plan += [(str(tmp_path / f"small-{i}.db"), 2) for i in range(300)]
    start, results = spawn.Barrier(2), spawn.Queue()
    workers = [
        spawn.Process(target=writer_process, args=(plan, name, start, results))
        for name in ("a", "b")
    ]
    for worker in workers:
        worker.start()
    try:
        errors = [results.get(timeout=120), results.get(timeout=120)]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            worker.kill()
    assert errors == [[], []]
    for path, count in plan:
        db = SQLiteTaskDB(path)
        assert db.count() == 2 * count
        keys = {f"{name}-{i}" for name in "ab" for i in (0, count - 1)}
        assert {db.get(key)["result_data"] for key in keys} == {key.encode() for key in keys}
        db.close()
    assert integrity(Path(plan[0][0])) == "ok"


def test_eight_threads_write_and_read_concurrently(db_path: Path) -> None:
    shared = SQLiteTaskDB(db_path)
    start = threading.Barrier(8)

    def work(worker: int) -> list[str]:
        start.wait()
        # Half the threads share one instance, half open their own on the same new file.
        db = shared if worker % 2 else SQLiteTaskDB(db_path)
        problems = []
        for i in range(100):
            key = f"t{worker}-{i}"
            save_key(db, key)
            if db.get(key)["result_data"] != key.encode():
                problems.append(key)
            db.get(f"t{(worker + 1) % 8}-{i}")  # read what another thread may be writing
        return problems

    with ThreadPoolExecutor(max_workers=8) as pool:
        problems = [key for found in pool.map(work, range(8)) for key in found]
    assert problems == []
    assert shared.count() == 800
    assert len(shared.get_history(limit=2000)) == 800
    shared.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_sigkilled_writer_leaves_a_sound_db_with_every_committed_key(spawn, db_path) -> None:
    SQLiteTaskDB(db_path).init_schema()
    receiver, sender = spawn.Pipe(duplex=False)
    writer = spawn.Process(target=write_until_killed, args=(str(db_path), sender))
    writer.start()
    sender.close()  # so recv() fails instead of hanging if the writer dies early
    committed = [receiver.recv() for _ in range(300)]
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(timeout=30)
    with contextlib.suppress(EOFError):  # reports already in the pipe were committed too
        while True:
            committed.append(receiver.recv())
    assert writer.exitcode == -signal.SIGKILL
    assert integrity(db_path) == "ok"
    db = SQLiteTaskDB(db_path)
    assert [key for key in committed if db.get(f"k{key}") is None] == []
    db.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (POSIX)")
def test_forked_child_can_use_the_instance_and_the_parent_goes_on(db_path: Path) -> None:
    db = SQLiteTaskDB(db_path)
    save_key(db, "parent-before")
    pid = os.fork()
    if pid == 0:  # the child: use the inherited instance, then leave without pytest's cleanup
        code = 1
        try:
            save_key(db, "child")
            code = 0 if db.get("parent-before") is not None else 2
            db.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    save_key(db, "parent-after")
    assert [db.get(key) is not None for key in ("child", "parent-after")] == [True, True]
    db.close()
    assert integrity(db_path) == "ok"


# --- schema -------------------------------------------------------------------------------


def test_new_file_gets_the_current_schema_in_wal_mode(db_path: Path) -> None:
    SQLiteTaskDB(db_path).init_schema()
    assert user_version(db_path) == len(MIGRATIONS)
    assert raw_execute(db_path, "PRAGMA journal_mode")[0][0] == "wal"
    assert set(columns(db_path)) >= set(TaskRecord._fields)
    assert "error_type" in columns(db_path, "failures")


class Upgraded(SQLiteTaskDB):
    """A later beautyspot: one more schema step."""

    MIGRATIONS = (*MIGRATIONS, ("ALTER TABLE tasks ADD COLUMN tokens INTEGER",))


def test_older_schema_is_migrated_and_keeps_its_data(db_path: Path) -> None:
    old = SQLiteTaskDB(db_path)
    save_key(old, "k1")
    old.close()
    assert "tokens" not in columns(db_path)

    new = Upgraded(db_path)
    record = new.get("k1")
    assert record is not None and record["result_data"] == b"k1"
    assert record["tokens"] is None
    assert user_version(db_path) == len(MIGRATIONS) + 1
    assert "tokens" in columns(db_path)
    new.close()


def test_failed_migration_step_is_rolled_back_whole(db_path: Path) -> None:
    old = SQLiteTaskDB(db_path)
    save_key(old, "k1")
    old.close()

    class Broken(SQLiteTaskDB):
        MIGRATIONS = (*MIGRATIONS, ("ALTER TABLE tasks ADD COLUMN a TEXT", "NOT SQL AT ALL"))

    with pytest.raises(ConfigurationError, match=r"cannot upgrade task database .*tasks\.db"):
        Broken(db_path).init_schema()
    assert "a" not in columns(db_path)
    assert user_version(db_path) == len(MIGRATIONS)
    assert raw_execute(db_path, "SELECT cache_key FROM tasks") == [("k1",)]


def test_foreign_tables_at_version_zero_are_refused_untouched(db_path: Path) -> None:
    raw_execute(
        db_path, "CREATE TABLE tasks (id INTEGER, name TEXT)", "INSERT INTO tasks VALUES (1, 'x')"
    )
    with pytest.raises(ConfigurationError, match="schema version 0 to 1"):
        SQLiteTaskDB(db_path).init_schema()
    assert columns(db_path) == ["id", "name"]
    assert raw_execute(db_path, "SELECT * FROM tasks") == [(1, "x")]
    assert user_version(db_path) == 0


def test_newer_schema_is_refused(db_path: Path) -> None:
    SQLiteTaskDB(db_path).init_schema()
    newer = len(MIGRATIONS) + 5
    raw_execute(db_path, f"PRAGMA user_version = {newer}")
    with pytest.raises(ConfigurationError, match=rf"{db_path.name} has schema version {newer}"):
        SQLiteTaskDB(db_path).init_schema()
    assert user_version(db_path) == newer


# --- files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content", [b"hello", b"name,value\n" * 500, bytes(100)], ids=["tiny", "csv", "zeros"]
)
def test_a_file_that_is_not_sqlite_is_refused_and_untouched(tmp_path: Path, content) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=r"notes\.db exists and is not a SQLite database"):
        SQLiteTaskDB(path).init_schema()
    assert path.read_bytes() == content
    assert os.listdir(tmp_path) == ["notes.db"]


def test_a_folder_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is a folder"):
        SQLiteTaskDB(tmp_path)


@pytest.fixture
def owner_only_umask() -> Iterator[None]:
    """umask 0, so the modes seen are the ones the code asks for, not the umask's."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_new_file_and_folders_are_owner_only(tmp_path: Path, owner_only_umask: None) -> None:
    path = tmp_path / "a" / "b" / "tasks.db"
    db = SQLiteTaskDB(path)
    save_key(db, "k1")
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode) for p in (path, path.parent, path.parent.parent)
    }
    assert modes == {"tasks.db": 0o600, "b": 0o700, "a": 0o700}
    assert stat.S_IMODE(os.stat(f"{path}-wal").st_mode) == 0o600
    db.close()


def hand_to_child(path: Path) -> None:
    """Make ``path`` belong to the user run_unprivileged runs as."""
    ids = nobody()
    if ids is not None:
        os.chown(path, *ids)


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A folder the unprivileged child can reach (pytest's tmp folders are root-only)."""
    folder = Path(tempfile.mkdtemp())
    os.chmod(folder, 0o755)
    yield folder
    os.chmod(folder, 0o700)
    shutil.rmtree(folder)


def open_db(path: Path) -> Callable[[], None]:
    return lambda: SQLiteTaskDB(path).init_schema()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (POSIX)")
def test_read_only_file_is_a_clear_error(public_dir: Path) -> None:
    folder = public_dir / "writable"
    folder.mkdir()
    hand_to_child(folder)
    path = folder / "tasks.db"
    db = SQLiteTaskDB(path)
    save_key(db, "k1")
    db.close()
    os.chmod(path, 0o444)
    outcome = run_unprivileged(open_db(path))
    assert outcome.startswith(f"ConfigurationError: cannot write the task database {path}")
    assert "read-only" in outcome
    assert SQLiteTaskDB(path).count() == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (POSIX)")
def test_read_only_folder_is_a_clear_error(public_dir: Path) -> None:
    path = public_dir / "tasks.db"
    SQLiteTaskDB(path).init_schema()
    hand_to_child(path)
    os.chmod(public_dir, 0o555)
    outcome = run_unprivileged(open_db(path))
    assert outcome.startswith(f"ConfigurationError: cannot write the task database {path}")
    assert f"folder {public_dir} is read-only" in outcome


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (POSIX)")
def test_new_file_in_read_only_folder_is_a_clear_error(public_dir: Path) -> None:
    path = public_dir / "tasks.db"
    os.chmod(public_dir, 0o555)
    outcome = run_unprivileged(open_db(path))
    assert outcome.startswith(f"ConfigurationError: cannot create the task database {path}")
    assert not path.exists()


# --- behaviour specific to SQLiteTaskDB ---------------------------------------------------


def test_get_returns_expired_records_as_stored(db_path: Path) -> None:
    db = SQLiteTaskDB(db_path)
    db.save_record(TaskRecord("k1", "fn", "in", None, "inline", None, None, b"x", expires_at=1.0))
    assert db.get("k1")["expires_at"] == 1.0
    db.close()


def test_delete_expired_removes_only_expired_records(db_path: Path) -> None:
    db = SQLiteTaskDB(db_path)
    for key, expires in (("old", 100.0), ("edge", 200.0), ("later", 300.0), ("forever", None)):
        db.save_record(
            TaskRecord(key, "fn", "in", None, "inline", None, None, b"x", expires_at=expires)
        )
    assert db.delete_expired(now=200.0) == 2
    assert sorted(record["cache_key"] for record in db.get_history()) == ["forever", "later"]
    assert db.count() == 2
    db.close()


def test_save_stamps_the_creation_time(db_path: Path) -> None:
    db = SQLiteTaskDB(db_path)
    before = time.time()
    save_key(db, "k1")
    assert before <= db.get("k1")["created_at"] <= time.time()
    db.close()


def test_close_then_use_again_reopens(db_path: Path) -> None:
    db = SQLiteTaskDB(db_path)
    save_key(db, "k1")
    db.close()
    assert db.get("k1") is not None
    db.close()


def test_from_url_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = SQLiteTaskDB.from_url("sqlite:///sub/my%20cache.db")
    assert relative.path == tmp_path / "sub" / "my cache.db"
    absolute = SQLiteTaskDB.from_url(f"sqlite:///{tmp_path}/abs.db")
    assert absolute.path == tmp_path / "abs.db"
    assert absolute.path.exists()


@pytest.mark.parametrize(
    "url", ["sqlite://host/x.db", "sqlite:///", "sqlite:x.db", "redis://h/0", "sqlite:///x.db?a=1"]
)
def test_from_url_refuses_other_urls(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"sqlite:///relative/path\.db"):
        SQLiteTaskDB.from_url(url)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"path": 123}, TypeError, "path must be a file path"),
        ({"path": ":memory:"}, ConfigurationError, "needs a file"),
        ({"path": "x.db", "timeout": 0}, ConfigurationError, "timeout must be more than 0"),
        ({"path": "x.db", "timeout": "5"}, TypeError, "timeout must be a number"),
        ({"path": "x.db", "retries": 3}, TypeError, "retries"),
    ],
)
def test_bad_arguments_are_named(workdir: Path, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        SQLiteTaskDB(**kwargs)


@pytest.mark.parametrize(("limit", "error"), [(-1, ValueError), ("10", TypeError)])
def test_bad_limit_is_named(db_path: Path, limit, error) -> None:
    with pytest.raises(error, match="limit must be"):
        SQLiteTaskDB(db_path).get_history(limit)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts handles in /proc (Linux)")
def test_ended_threads_do_not_leak_file_handles(db_path: Path) -> None:
    db = SQLiteTaskDB(db_path)
    db.init_schema()

    def handles_on_the_db() -> int:
        links = (os.readlink(fd) for fd in Path("/proc/self/fd").iterdir() if fd.is_symlink())
        return sum(link.startswith(str(db_path)) for link in links)

    for _ in range(30):
        thread = threading.Thread(target=db.get, args=("k1",))
        thread.start()
        thread.join()
    assert handles_on_the_db() <= 6  # this thread's and the last thread's connection
    db.close()
    assert handles_on_the_db() == 0
