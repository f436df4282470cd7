"""Task-record backends: the TaskDB contract, SQLite by default, others chosen by URL."""

from __future__ import annotations

import os
from pathlib import Path

from beautyspot._registry import backend_from_url, scheme_of
from beautyspot.db.base import FailureRecord, TaskDB, TaskRecord
from beautyspot.db.sqlite import SQLiteTaskDB
from beautyspot.errors import ConfigurationError

__all__ = ["FailureRecord", "SQLiteTaskDB", "TaskDB", "TaskRecord", "taskdb_from"]

#: URL scheme -> "module:Class"; a new backend is one file plus one line here.
BACKENDS = {
    "sqlite": "beautyspot.db.sqlite:SQLiteTaskDB",
}


def taskdb_from(spec: TaskDB | str | os.PathLike[str]) -> TaskDB:
    """A TaskDB from an instance, a file path (SQLite) or a URL (``sqlite:///x.db``, ...)."""
    if isinstance(spec, TaskDB):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        if scheme_of(text) is None:
            return SQLiteTaskDB(Path(text))
        return backend_from_url(text, BACKENDS, "db")
    raise ConfigurationError(
        f"db={spec!r}: expected a TaskDB instance, a file path or a URL, not {type(spec).__name__}"
    )
