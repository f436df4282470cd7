"""The contract suites of beautyspot.testing, run against the built-in default backends (the
Redis, PostgreSQL, S3 and fsspec backends run them in their own test modules)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from beautyspot.db.sqlite import SQLiteTaskDB
from beautyspot.storage.local import LocalStorage
from beautyspot.testing import (
    FullStorageContract,
    FullTaskDBContract,
    LeaseTaskDBContract,
    StatsTaskDBContract,
)


class TestSQLiteTaskDB(FullTaskDBContract, LeaseTaskDBContract, StatsTaskDBContract):
    @pytest.fixture
    def taskdb(self, tmp_path: Path) -> Iterator[SQLiteTaskDB]:
        db = SQLiteTaskDB(tmp_path / "tasks.db")
        yield db
        db.close()


class TestLocalStorage(FullStorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> LocalStorage:
        return LocalStorage(tmp_path / "blobs")


def test_save_comes_from_save_record_and_neither_recurses() -> None:
    from typing import Any

    from beautyspot.db.base import TaskDB, TaskRecord

    class RecordsOnly(TaskDB):
        def __init__(self) -> None:
            self.saved: list[TaskRecord] = []

        def save_record(self, record: TaskRecord) -> None:
            self.saved.append(record)

    class Neither(TaskDB):
        pass

    db = RecordsOnly()
    db.save("k", "f", "in", "v1", "inline", None, result_data=b"x")
    assert db.saved == [TaskRecord("k", "f", "in", "v1", "inline", None, result_data=b"x")]
    args: tuple[Any, ...] = ("k", "f", "in", None, "inline", None)
    with pytest.raises(NotImplementedError, match=r"must implement save\(\.\.\.\)"):
        Neither().save(*args)
    with pytest.raises(NotImplementedError, match="must implement save"):
        Neither().save_record(TaskRecord(*args))
