"""An optional in-process tier in front of the TaskDB: recent results as encoded bytes.

It keeps bytes, not objects, so every hit decodes a fresh copy: a caller that mutates its result
cannot change what the next caller gets. It is per process; another process's ``invalidate`` is
not seen here until the entry is evicted or expires.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from beautyspot.errors import ConfigurationError

__all__ = ["MemoryCache"]


class MemoryCache:
    """A thread-safe LRU of encoded results, bounded by entry count and/or total bytes.

    >>> tier = MemoryCache(max_entries=2)
    >>> tier.put("a", b"1", None); tier.put("b", b"2", None); tier.put("c", b"3", None)
    >>> tier.get("a"), tier.get("c"), len(tier)
    (None, b'3', 2)
    """

    def __init__(self, max_entries: int | None = 10_000, max_bytes: int | None = None) -> None:
        for name, bound in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int) or bound <= 0
            ):
                raise ConfigurationError(f"{name}={bound!r}: give a positive int, or None")
        if max_entries is None and max_bytes is None:
            raise ConfigurationError("MemoryCache needs max_entries or max_bytes (or both)")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles by its bounds: a process that unpickles it starts with an empty tier."""
        return (type(self), (self.max_entries, self.max_bytes))

    def __repr__(self) -> str:
        bounds = f"max_entries={self.max_entries!r}, max_bytes={self.max_bytes!r}"
        return f"{type(self).__name__}({bounds})"

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key`` if present and unexpired, else None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            data, expires_at = entry
            if expires_at is not None and expires_at <= time.time():
                self._remove(key)
                return None
            self._entries.move_to_end(key)
            return data

    def put(self, key: str, data: bytes, expires_at: float | None) -> None:
        """Keep ``data`` under ``key``, evicting the least recently used entries to fit."""
        if self.max_bytes is not None and len(data) > self.max_bytes:
            return  # would evict everything and still not fit
        with self._lock:
            self._remove(key)
            self._entries[key] = (data, expires_at)
            self._bytes += len(data)
            while (self.max_entries is not None and len(self._entries) > self.max_entries) or (
                self.max_bytes is not None and self._bytes > self.max_bytes
            ):
                self._remove(next(iter(self._entries)))

    def discard(self, key: str) -> None:
        with self._lock:
            self._remove(key)

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[0])
