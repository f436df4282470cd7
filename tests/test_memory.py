"""The optional in-process memory tier."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import beautyspot as bs
from beautyspot.memory import MemoryCache


def test_lru_bounded_by_entries_and_bytes():
    by_entries = MemoryCache(max_entries=2)
    for key in "abc":
        by_entries.put(key, key.encode(), None)
    assert by_entries.get("a") is None and by_entries.get("c") == b"c"
    by_bytes = MemoryCache(max_entries=None, max_bytes=10)
    by_bytes.put("x", b"12345", None)
    by_bytes.put("y", b"12345", None)
    by_bytes.get("x")  # recently used, so y is evicted first
    by_bytes.put("z", b"123", None)
    assert by_bytes.get("x") == b"12345" and by_bytes.get("y") is None
    by_bytes.put("huge", b"0" * 11, None)
    assert by_bytes.get("huge") is None and by_bytes.get("x") == b"12345"


def test_expired_entries_are_not_served():
    tier = MemoryCache()
    tier.put("old", b"1", time.time() - 1)
    tier.put("new", b"2", time.time() + 60)
    assert tier.get("old") is None and tier.get("new") == b"2"


@pytest.mark.parametrize("bad", [0, -1, True, "10", 2.5])
def test_bad_bounds_are_rejected(workdir: Path, bad: object):
    with pytest.raises(bs.ConfigurationError, match="memory_cache"):
        bs.Spot("m", memory_cache=bad)  # type: ignore[arg-type]
    with pytest.raises(bs.ConfigurationError):
        MemoryCache(max_entries=bad)  # type: ignore[arg-type]


def test_memory_hits_skip_the_db_and_return_independent_copies(workdir: Path, monkeypatch):
    spot = bs.Spot("m", memory_cache=100)
    runs = []

    @spot.mark
    def make(n):
        runs.append(n)
        return {"items": list(range(n))}

    first = make(3)
    first["items"].append("mutated")

    def no_db(cache_key: str) -> None:
        raise AssertionError("the memory tier should have answered")

    monkeypatch.setattr(spot.db, "lookup", no_db)
    second = make(3)
    assert second == {"items": [0, 1, 2]}
    second["items"].clear()
    assert make(3) == {"items": [0, 1, 2]}
    assert runs == [3]


def test_db_hits_fill_the_memory_tier(workdir: Path):
    runs = []

    def value(x):
        runs.append(x)
        return x * 3

    writer = bs.Spot("shared")
    writer.mark(ignore=("runs",))(value)(2)  # runs is a side channel, not part of the key
    reader = bs.Spot("shared", memory_cache=10)
    assert reader.mark(ignore=("runs",))(value)(2) == 6  # the same function, another Spot
    assert runs == [2], "must be served from the db"
    assert reader.memory is not None and len(reader.memory) == 1


def test_invalidate_clears_the_memory_tier(workdir: Path):
    spot = bs.Spot("m", memory_cache=10)
    runs = []

    @spot.mark
    def f(x):
        runs.append(x)
        return x

    f(1), f(1)
    assert f.invalidate(1)
    f(1)
    assert runs == [1, 1]


@pytest.mark.parametrize("tier", [None, 200], ids=["sqlite-hits", "memory-tier-hits"])
def test_hits_hold_no_memory_that_outlives_them(workdir: Path, tier: int | None) -> None:
    import gc
    import tracemalloc

    spot = bs.Spot("leak", memory_cache=tier)

    @spot.mark
    def double(x: int) -> list[int]:
        return [x, x]

    keys = 1000  # more than the tier holds: it evicts and refills all along
    for n in range(keys):
        double(n)
    tracemalloc.start()
    try:
        for n in range(2 * keys):  # warm: the tier and its remembered keys are full
            double(n % keys)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for n in range(100_000):
            double(n % keys)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        spot.close()
    # The tier is bounded (200 entries, a few hundred bytes each); a leak of even 3 bytes a
    # hit would pass 256 KiB.
    assert grown < 256 * 1024, f"{grown} bytes held after 100,000 hits"
