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
