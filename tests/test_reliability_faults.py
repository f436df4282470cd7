"""Faults: a full disk, unreadable blobs, read-only or foreign DB files.

A failed save never costs the caller the result: the call returns what it computed, warns once,
and leaves nothing half-written (at most a complete orphan blob, which ``gc`` removes). A DB that
cannot be used is refused when the Spot is created, naming the file, and never overwritten.

Covered elsewhere: one failed ``save_record`` warns and returns the result (test_spot.py); a
``os.replace`` failure leaves no temp file (test_storage_local.py); SQLiteTaskDB refusing
read-only and foreign files (test_db_sqlite.py, here checked through ``bs.Spot``).
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import sqlite3
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import nobody, run_unprivileged

import beautyspot as bs

NO_SPACE = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def record_warnings(action: Callable[[], Any], *, simplefilter: str = "always") -> list[str]:
    """Run ``action`` and return the BeautyspotWarning messages it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter(simplefilter)
        action()
    return [str(w.message) for w in caught if issubclass(w.category, bs.BeautyspotWarning)]


RUNS: list[Any] = []


@pytest.fixture(autouse=True)
def no_runs_yet() -> None:
    RUNS.clear()


def work(x: Any, size: int = 10) -> str:
    """A paid computation: counts its executions, returns a result of a chosen size."""
    RUNS.append(x)
    return f"{x}:" + "r" * size


def other_work(x: Any, size: int = 10) -> str:
    return work(x, size)


@pytest.fixture
def full_disk_on_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blob files fill up half-way: the first write puts half the bytes, then ENOSPC."""
    real_fdopen = os.fdopen

    class HalfWritten(io.BufferedWriter):
        def write(self, data: Any) -> int:
            super().write(bytes(data)[: len(data) // 2])
            self.flush()
            raise NO_SPACE

    def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode != "wb":
            return real_fdopen(fd, mode, *args, **kwargs)
        return HalfWritten(io.FileIO(fd, "wb"))

    monkeypatch.setattr(os, "fdopen", fdopen)


# -- disk full, injected at the seams ---------------------------------------------------------


def test_disk_full_writing_a_blob_returns_the_result_warns_once_leaves_nothing(
    spot: bs.Spot, full_disk_on_write: None, monkeypatch: pytest.MonkeyPatch
):
    f = spot.mark(save_blob=True)(work)
    result: list[str] = []

    messages = record_warnings(lambda: result.append(f(1, size=50_000)))

    assert result == ["1:" + "r" * 50_000]
    assert len(messages) == 1 and "No space left on device" in messages[0]
    assert files_under(Path(spot.storage.root)) == []  # the half-written temp file is gone
    assert spot.db.get(f.cache_key(1)) is None
    monkeypatch.undo()  # space again: the next call computes and keeps it
    assert f(1, size=50_000) == result[0] == f(1, size=50_000)
    assert RUNS == [1, 1]


@pytest.mark.parametrize(
    "error",
    [NO_SPACE, sqlite3.OperationalError("database or disk is full")],
    ids=["ENOSPC", "SQLITE_FULL"],
)
def test_disk_full_writing_the_record_leaves_only_an_orphan_blob_for_gc(
    spot: bs.Spot, monkeypatch: pytest.MonkeyPatch, error: Exception
):
    def full(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(spot.db, "save_record", full)
    blob, inline = spot.mark(save_blob=True)(work), spot.mark(save_blob=False)(other_work)
    results: list[str] = []

    messages = record_warnings(lambda: results.extend([blob(1), inline(2)]))

    assert results == ["1:" + "r" * 10, "2:" + "r" * 10]
    assert len(messages) == 2 and all("not saved" in m for m in messages)
    monkeypatch.undo()
    assert spot.db.count() == 0
    (_orphan,) = files_under(Path(spot.storage.root))  # complete, saved before the record
    assert spot.gc().orphan_blobs == 0  # fresh: could be a save in flight
    assert spot.gc(older_than=0).orphan_blobs == 1
    assert files_under(Path(spot.storage.root)) == []
    with sqlite3.connect(spot.db.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_disk_full_recording_a_failure_keeps_the_users_exception(
    spot: bs.Spot, monkeypatch: pytest.MonkeyPatch
):
    def full(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(spot.db, "record_failure", full)

    @spot.mark
    def fails(x):
        raise ValueError(f"bad input {x}")

    def call() -> None:
        with pytest.raises(ValueError, match="bad input 3"):
            fails(3)

    messages = record_warnings(call)
    assert len(messages) == 1 and "could not be recorded" in messages[0]


def test_an_unreadable_blob_is_recomputed_and_rewritten(
    spot: bs.Spot, monkeypatch: pytest.MonkeyPatch
):
    f = spot.mark(save_blob=True)(work)
    f(1)

    def io_error(location: str) -> bytes:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(spot.storage, "load", io_error)
    messages = record_warnings(lambda: f(1))
    assert len(messages) == 1 and "Input/output error" in messages[0]
    monkeypatch.undo()
    assert f(1) == "1:" + "r" * 10
    assert RUNS == [1, 1]


def test_a_full_disk_warns_once_per_function_and_every_call_returns(
    spot: bs.Spot, full_disk_on_write: None
):
    f = spot.mark(save_blob=True)(work)
    g = spot.mark(save_blob=True, version="other")(work)
    results: list[str] = []
    per_call = [len(record_warnings(lambda i=i: results.append(f(i)))) for i in range(5)]
    assert per_call == [1, 0, 0, 0, 0]  # even under the "always" filter
    assert results == [f"{i}:" + "r" * 10 for i in range(5)]
    assert len(record_warnings(lambda: g(0))) == 1  # another function says so for itself


@pytest.mark.parametrize(
    "where",
    [
        "blob",
        "record",
    ],
)
def test_a_batch_on_a_full_disk_shows_one_warning_under_default_filters(
    spot: bs.Spot, monkeypatch: pytest.MonkeyPatch, full_disk_on_write: None, where: str
):
    if where == "record":
        monkeypatch.undo()  # blobs fit; the record does not

        def full(*args: Any, **kwargs: Any) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(spot.db, "save_record", full)
    f = spot.mark(save_blob=True)(work)
    messages = record_warnings(lambda: [f(i) for i in range(20)], simplefilter="default")
    assert len(messages) == 1


# -- a real full disk -------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs; needs root and a kernel that lets this process mount."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a real full disk needs root to mount a 1 MiB tmpfs")
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def fill(folder: Path) -> Path:
    """Write a file in ``folder`` until the disk is full; return it."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


def test_a_really_full_disk_costs_no_result_and_corrupts_nothing(tiny_disk: Path):
    spot = bs.Spot("full", db=tiny_disk / "full.db", blob_threshold=64 * 1024)
    try:
        f = spot.mark(work)
        big = "2:" + "r" * 2_000_000  # larger than the whole disk: the blob cannot be written
        results: list[str] = []
        messages = record_warnings(lambda: results.append(f(2, size=2_000_000)))
        assert results == [big]
        assert len(messages) == 1 and "No space left on device" in messages[0]
        assert files_under(tiny_disk / "full_blobs") == []

        inline = spot.mark(save_blob=False)(other_work)
        filler = fill(tiny_disk)  # now SQLite itself cannot grow its write-ahead log
        messages = record_warnings(lambda: results.append(inline(3, size=300_000)))
        assert results[-1] == "3:" + "r" * 300_000
        assert len(messages) == 1 and "database or disk is full" in messages[0]
        filler.unlink()

        with sqlite3.connect(spot.db.path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 0
        conn.close()
        assert inline(3, size=300_000) == results[-1] == inline(3, size=300_000)
        assert RUNS == [2, 3, 3]
    finally:
        spot.close()


# -- files the DB cannot use -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"my notes, not a database\n", os.urandom(5000), b"SQLite format 3\0" + bytes(range(256)) * 8],
    ids=["text", "random", "fake header"],
)
def test_a_db_path_holding_another_file_is_refused_by_name_and_kept(tmp_path: Path, content: bytes):
    path = tmp_path / "results.db"
    path.write_bytes(content)
    with pytest.raises(bs.ConfigurationError, match=f"{path} exists and is not a SQLite database"):
        bs.Spot("results", db=path)
    assert path.read_bytes() == content
    assert sorted(os.listdir(tmp_path)) == ["results.db"]


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder owned by the unprivileged child's user, inside one it can enter."""
    outer = Path(tempfile.mkdtemp())
    os.chmod(outer, 0o755)
    folder = outer / "cache"
    folder.mkdir()
    ids = nobody()
    if ids is not None:
        os.chown(folder, *ids)
    yield folder
    os.chmod(folder, 0o700)
    shutil.rmtree(outer)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (POSIX)")
@pytest.mark.parametrize("read_only", ["file", "folder"])
def test_a_read_only_db_is_a_clear_error_when_the_spot_is_created(
    shared_folder: Path, read_only: str
):
    path = shared_folder / "results.db"
    first = bs.Spot("results", db=path)
    first.mark(work)(1)
    first.close()
    for created in shared_folder.iterdir():  # the child's, as if it had made them
        os.chown(created, shared_folder.stat().st_uid, shared_folder.stat().st_gid)
    target = path if read_only == "file" else shared_folder
    os.chmod(target, 0o444 if read_only == "file" else 0o555)
    before = path.read_bytes()

    outcome = run_unprivileged(lambda: bs.Spot("results", db=path))

    assert outcome.startswith(f"ConfigurationError: cannot write the task database {path}")
    assert f"{read_only} {target} is read-only" in outcome
    os.chmod(target, 0o755 if read_only == "folder" else 0o600)
    assert path.read_bytes() == before
