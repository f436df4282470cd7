"""Task-record backends: the TaskDB contract, SQLite by default, others chosen by URL."""

from __future__ import annotations

import os

from beautyspot._registry import backend_from
from beautyspot.db.base import FailureRecord, TaskDB, TaskRecord
from beautyspot.db.sqlite import SQLiteTaskDB

__all__ = ["FailureRecord", "SQLiteTaskDB", "TaskDB", "TaskRecord", "taskdb_from"]

#: URL scheme -> ("module:Class", the extra that installs its library); a new backend is one
#: file plus one line here.
BACKENDS = {
    "sqlite": ("beautyspot.db.sqlite:SQLiteTaskDB", ""),
    "redis": ("beautyspot.db.redis:RedisTaskDB", "redis"),
    "rediss": ("beautyspot.db.redis:RedisTaskDB", "redis"),
    "postgresql": ("beautyspot.db.postgres:PostgresTaskDB", "postgres"),
    "postgres": ("beautyspot.db.postgres:PostgresTaskDB", "postgres"),
    "postgresql+psycopg": ("beautyspot.db.postgres:PostgresTaskDB", "postgres"),
}


def taskdb_from(spec: TaskDB | str | os.PathLike[str], namespace: str | None = None) -> TaskDB:
    """A TaskDB from an instance, a file path (SQLite) or a URL (``sqlite:///x.db``, ...);
    ``namespace`` (the Spot's name) keeps Spots apart on a shared server."""
    return backend_from(
        spec, contract=TaskDB, from_path=SQLiteTaskDB, backends=BACKENDS, what="db",
        namespace=namespace,
    )  # fmt: skip
