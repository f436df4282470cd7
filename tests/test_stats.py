"""Stats through a Spot: hits, misses and failures counted in memory and flushed in batches;
time and tokens saved; counts from threads and processes; backends without counts.

The three TaskDB methods themselves are tested on every backend by
:class:`beautyspot.testing.StatsTaskDBContract` (tests/test_contract_builtin.py,
tests/test_db_postgres.py, tests/test_db_redis.py).
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import fake_limiter, service_unavailable

import beautyspot as bs
from beautyspot import stats
from beautyspot.db.base import FunctionCounts, RecordQuery, TaskDB
from beautyspot.db.sqlite import SQLiteTaskDB
from beautyspot.errors import BeautyspotWarning, NotSupportedError, StorageError
from beautyspot.stats import Tally

REDIS_URL = os.environ.get("BEAUTYSPOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "BEAUTYSPOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def stats_of(db: TaskDB) -> dict[str | None, Mapping[str, Any]]:
    return {row["func_name"]: row for row in db.get_stats()}


def records_of(db: TaskDB) -> dict[str, Mapping[str, Any]]:
    return {row["cache_key"]: row for row in db.find_records(RecordQuery(limit=10_000))[0]}


def double(x: int) -> int:
    return 2 * x


@pytest.fixture
def spot(workdir: Path) -> Iterator[bs.Spot]:
    """A Spot whose counts are flushed only when a test says so."""
    created = bs.Spot("stats")
    created._tally.interval = 3600
    yield created
    created.close()


# -- what is counted ------------------------------------------------------------------------


def test_hits_misses_and_failures_are_counted_and_flushed_on_close(spot: bs.Spot) -> None:
    calls = []

    @spot.mark
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    @spot.mark
    def broken(x: int) -> int:
        raise ValueError(f"bad {x}")

    assert [square(n) for n in (1, 1, 1, 2, 2, 1)] == [1, 1, 1, 4, 4, 1]
    for n in range(2):
        with pytest.raises(ValueError):
            broken(n)
    assert calls == [1, 2]
    assert all(row["hits"] == 0 for row in spot.db.get_stats())  # counted in memory only
    spot.close()
    by_name = stats_of(spot.db)
    counted = by_name[square._marked_call.func_id]
    assert (counted["records"], counted["hits"], counted["misses"]) == (2, 4, 2)
    assert counted["failures"] == 0
    failed = by_name[broken._marked_call.func_id]
    assert (failed["records"], failed["hits"], failed["misses"], failed["failures"]) == (0, 0, 0, 2)
    per_record = {row["input_preview"]: row["hits"] for row in records_of(spot.db).values()}
    assert per_record == {"x=1": 3, "x=2": 1}


def test_hits_write_nothing_until_a_flush(spot: bs.Spot, monkeypatch: pytest.MonkeyPatch) -> None:
    flushes: list[tuple[Any, Any]] = []
    real = spot.db.add_counts
    monkeypatch.setattr(spot.db, "add_counts", lambda c, h: (flushes.append((c, h)), real(c, h)))
    marked = spot.mark(double)
    for n in range(5000):
        marked(n % 10)
    assert flushes == []
    spot._tally.flush()
    assert len(flushes) == 1
    counts, hits = flushes[0]
    assert counts == {marked._marked_call.func_id: FunctionCounts(4990, 10, 0)}
    assert sorted(hits.values()) == [499] * 10


def test_memory_tier_hits_and_waiters_count_as_hits(workdir: Path) -> None:
    spot = bs.Spot("tiered", memory_cache=100)
    started, release = threading.Event(), threading.Event()

    @spot.mark(ignore=("started", "release"))
    def slow(x: int) -> int:
        started.set()
        release.wait(10)
        return x

    with ThreadPoolExecutor(4) as pool:
        leader = pool.submit(slow, 1)
        started.wait(10)
        waiters = [pool.submit(slow, 1) for _ in range(3)]  # wait for the leader, or hit
        time.sleep(0.2)
        release.set()
        assert [f.result() for f in (leader, *waiters)] == [1, 1, 1, 1]
    assert slow(1) == 1  # from the memory tier
    spot.close()
    counted = stats_of(spot.db)[slow._marked_call.func_id]
    assert (counted["hits"], counted["misses"]) == (4, 1)


def test_a_cached_item_of_a_batch_is_a_hit(spot: bs.Spot) -> None:
    marked = spot.mark(double)
    assert marked.map(range(5)) == [0, 2, 4, 6, 8]
    assert marked.map(range(5)) == [0, 2, 4, 6, 8]
    spot.close()
    counted = stats_of(spot.db)[marked._marked_call.func_id]
    assert (counted["hits"], counted["misses"]) == (5, 5)


# -- time and tokens saved --------------------------------------------------------------------


def test_time_saved_is_each_records_duration_times_its_hits(spot: bs.Spot) -> None:
    @spot.mark
    def slow(x: int) -> int:
        time.sleep(0.02 * x)
        return x

    for x, hits in ((1, 3), (2, 1)):
        for _ in range(hits + 1):
            slow(x)
    spot.close()
    rows = list(records_of(spot.db).values())
    durations = {row["input_preview"]: row["duration"] for row in rows}
    assert durations["x=1"] >= 0.02 and durations["x=2"] >= 0.04
    expected = durations["x=1"] * 3 + durations["x=2"] * 1
    assert stats_of(spot.db)[slow._marked_call.func_id]["time_saved"] == pytest.approx(expected)


def test_tokens_saved_is_each_records_limiter_cost_times_its_hits(workdir: Path) -> None:
    limiter, _ = fake_limiter(tpm=60, burst=1000)  # a fake clock: nothing sleeps
    spot = bs.Spot("tokens", limiter=limiter)

    @spot.mark
    @spot.limiter(cost=lambda text: len(text))
    def ask(text: str) -> str:
        return text.upper()

    @spot.mark
    @spot.limiter(cost=7)
    def fixed(x: int) -> int:
        return x

    for _ in range(3):
        ask("four")  # cost 4: one miss, two hits
    ask("sixteen letters!")  # cost 16, never hit
    fixed(1), fixed(1)  # cost 7, one hit
    spot.close()
    costs = {row["input_preview"]: row["cost"] for row in records_of(spot.db).values()}
    assert costs == {"text='four'": 4.0, "text='sixteen letters!'": 16.0, "x=1": 7.0}
    assert stats_of(spot.db)[ask._marked_call.func_id]["tokens_saved"] == 8.0
    assert stats_of(spot.db)[fixed._marked_call.func_id]["tokens_saved"] == 7.0


def test_an_unpaced_record_has_no_cost(spot: bs.Spot) -> None:
    marked = spot.mark(double)
    marked(1), marked(1)
    spot.close()
    (row,) = records_of(spot.db).values()
    assert row["cost"] is None
    assert stats_of(spot.db)[marked._marked_call.func_id]["tokens_saved"] == 0.0


def test_async_calls_record_their_cost_and_count(workdir: Path) -> None:
    limiter, _ = fake_limiter(tpm=60, burst=1000)
    spot = bs.Spot("async", limiter=limiter)

    @spot.mark
    @spot.limiter(cost=5)
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x

    async def main() -> list[int]:
        return [await fetch(1) for _ in range(3)]

    assert asyncio.run(main()) == [1, 1, 1]
    spot.close()
    counted = stats_of(spot.db)[fetch._marked_call.func_id]
    assert (counted["hits"], counted["misses"], counted["tokens_saved"]) == (2, 1, 10.0)


def test_an_outer_computation_keeps_the_tokens_of_the_inner_ones_it_computed(
    workdir: Path,
) -> None:
    limiter, _ = fake_limiter(tpm=60, burst=1000)
    spot = bs.Spot("nested", limiter=limiter)

    @spot.mark
    @spot.limiter(cost=3)
    def inner(x: int) -> int:
        return x

    @spot.mark
    @spot.limiter(cost=1)
    def outer(x: int) -> int:
        return inner(x) + inner(x) + inner(x + 1)  # two inner misses (3 each), one inner hit

    outer(1)
    spot.close()
    costs = {
        (row["func_name"], row["input_preview"]): row["cost"]
        for row in records_of(spot.db).values()
    }
    assert costs[(outer._marked_call.func_id, "x=1")] == 1 + 3 + 3
    assert costs[(inner._marked_call.func_id, "x=1")] == 3


# -- threads, processes, the Spot's lifetime ----------------------------------------------------


@pytest.mark.parametrize("memory_cache", [None, 50], ids=["sqlite-hits", "memory-tier-hits"])
def test_no_count_is_lost_by_threads_hitting_at_once(
    workdir: Path, memory_cache: int | None
) -> None:
    spot = bs.Spot("threads", memory_cache=memory_cache)
    marked = spot.mark(double)
    keys = 10
    for n in range(keys):
        marked(n)
    threads, calls = 8, 3000
    stop = threading.Event()

    def hammer_flushes() -> None:  # flushes race with the hits all along
        while not stop.is_set():
            spot._tally.flush()
            time.sleep(0.001)

    def hit(worker: int) -> None:
        for n in range(calls):
            marked((worker + n) % keys)

    flusher = threading.Thread(target=hammer_flushes)
    flusher.start()
    try:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(hit, range(threads)))
    finally:
        stop.set()
        flusher.join()
    spot.close()
    counted = stats_of(spot.db)[marked._marked_call.func_id]
    assert (counted["hits"], counted["misses"]) == (threads * calls, keys)
    per_record = sorted(row["hits"] for row in records_of(spot.db).values())
    assert per_record == [threads * calls // keys] * keys


def _hit_in_a_process(path: str, times: int) -> int:
    """Hit ``double(1)`` ``times`` times and exit without closing: the exit flushes."""
    spot = bs.Spot("processes", db=path)
    marked = spot.mark(double)
    for _ in range(times):
        marked(1)
    return os.getpid()


def test_counts_from_spawned_processes_add_up(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    spot = bs.Spot("processes", db=path)
    marked = spot.mark(double)
    marked(1)  # the one miss
    spot.close()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        pids = set(pool.map(_hit_in_a_process, [path] * 4, [50] * 4))
    assert os.getpid() not in pids
    counted = stats_of(SQLiteTaskDB(path))[marked._marked_call.func_id]
    assert (counted["hits"], counted["misses"]) == (200, 1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_flushes_its_own_counts_at_exit(tmp_path: Path) -> None:
    spot = bs.Spot("forked", db=tmp_path / "forked.db")
    spot._tally.interval = 3600
    marked = spot.mark(double)
    marked(1)
    for _ in range(5):
        marked(1)  # the parent's 5 hits: flushed by the parent, never by the child too
    ctx = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running
        worker = ctx.Process(target=_hit_marked, args=(marked, 30))
        worker.start()
    worker.join(30)
    assert worker.exitcode == 0
    spot.close()
    counted = stats_of(spot.db)[marked._marked_call.func_id]
    assert (counted["hits"], counted["misses"]) == (35, 1)


def _hit_marked(marked: Callable[[int], int], times: int) -> None:
    for _ in range(times):
        marked(1)


def test_a_collected_spot_flushes_its_counts(tmp_path: Path) -> None:
    path = tmp_path / "collected.db"

    def use() -> str:
        spot = bs.Spot("collected", db=path)
        marked = spot.mark(double)
        for _ in range(4):
            marked(3)
        return marked._marked_call.func_id

    func_id = use()
    gc.collect()
    counted = stats_of(SQLiteTaskDB(path))[func_id]
    assert (counted["hits"], counted["misses"]) == (3, 1)


# -- backends that cannot count, or fail to ---------------------------------------------------


class MinimalDB(TaskDB):
    """The four required methods, in a dict: no counts, no stats."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def init_schema(self) -> None:
        pass

    def get(self, cache_key: str) -> dict[str, Any] | None:
        return self.records.get(cache_key)

    def save(self, cache_key: str, func_name: str, input_id: str, version: str | None,
             result_type: str, content_type: str | None, result_value: str | None = None,
             result_data: bytes | None = None) -> None:  # fmt: skip
        self.records[cache_key] = {"result_type": result_type, "result_value": result_value,
                                   "result_data": result_data, "func_name": func_name}  # fmt: skip

    def get_history(self, limit: int = 1000) -> list[Mapping[str, Any]]:
        return list(self.records.values())[:limit]


class RefusingDB(MinimalDB):
    """Has an ``add_counts`` that says it cannot (a wrapper over a backend without counts)."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def add_counts(self, counts: Any, hits: Any) -> None:
        self.attempts += 1
        raise NotSupportedError("no counts here")


@pytest.mark.parametrize("backend", [MinimalDB, RefusingDB])
def test_a_backend_without_counts_still_caches_silently(
    workdir: Path, backend: type[MinimalDB]
) -> None:
    db = backend()
    spot = bs.Spot("minimal", db=db)
    calls = []

    @spot.mark
    def f(x: int) -> int:
        calls.append(x)
        return x

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [f(n % 3) for n in range(2000)] == [n % 3 for n in range(2000)]
        spot._tally.flush()
        assert [f(n % 3) for n in range(2000)] == [n % 3 for n in range(2000)]
        spot.close()
    assert calls == [0, 1, 2]
    assert spot._tally.enabled is False
    assert getattr(db, "attempts", 1) == 1  # asked once, then never again
    assert len(spot._tally.hits_of(f._marked_call.func_id)) <= stats.COMPACT_AT  # not kept


class FlakyDB(SQLiteTaskDB):
    """A SQLite file whose server is 'down' while ``down`` is set."""

    down = False

    def add_counts(self, counts: Any, hits: Any) -> None:
        if self.down:
            raise StorageError("server at 127.0.0.1:1 is unreachable")
        super().add_counts(counts, hits)


def test_a_failed_flush_keeps_the_counts_for_the_next(workdir: Path) -> None:
    db = FlakyDB(workdir / "flaky.db")
    spot = bs.Spot("flaky", db=db)
    marked = spot.mark(double)
    marked(1)
    db.down = True
    for _ in range(3):
        marked(1)
    with pytest.warns(BeautyspotWarning, match="kept and saved with a later flush"):
        spot._tally.flush()
    marked(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spot._tally.flush()  # warned once: still down, still kept
    db.down = False
    spot.close()
    counted = stats_of(db)[marked._marked_call.func_id]
    assert (counted["hits"], counted["misses"]) == (4, 1)
    assert [row["hits"] for row in records_of(db).values()] == [4]


def test_counts_kept_past_the_cap_drop_the_oldest_keys_once(tmp_path: Path) -> None:
    db = FlakyDB(tmp_path / "capped.db")
    db.init_schema()
    db.down = True
    tally = Tally(db, interval=3600, max_pending_keys=3)
    hits = tally.hits_of("pkg.fn")
    for key in ("k1", "k2", "k3", "k4", "k5"):
        hits.append(key)
    with pytest.warns(BeautyspotWarning) as warned:
        tally.flush()
    assert any("not kept" in str(w.message) for w in warned)
    hits.append("k6")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tally.flush()  # both warnings were given once
    db.down = False
    tally.flush()
    assert stats_of(db)["pkg.fn"]["hits"] == 6  # per-function totals are never dropped
    assert dict(tally._key_hits) == {}
    # The per-record hits kept are the newest keys': k4, k5, k6 (none of them has a record).


def test_a_due_flush_runs_in_the_background_and_no_thread_stays(workdir: Path) -> None:
    spot = bs.Spot("background")
    spot._tally.interval = 3600
    marked = spot.mark(double)
    marked(1)  # a miss: no flush due yet
    before = set(threading.enumerate())
    spot._tally.interval = 0.0  # now every fold and every miss finds one due
    for _ in range(stats.COMPACT_AT + 1):
        marked(1)  # the hit that passes COMPACT_AT folds them and starts a flush
    deadline = time.monotonic() + 10
    func_id = marked._marked_call.func_id
    while stats_of(spot.db).get(func_id, {}).get("hits") != stats.COMPACT_AT + 1:
        assert time.monotonic() < deadline, "no flush came"
        time.sleep(0.02)
    assert stats_of(spot.db)[func_id]["misses"] == 1
    while any(t.name == "beautyspot-stats" for t in set(threading.enumerate()) - before):
        assert time.monotonic() < deadline, "the flushing thread stayed"
        time.sleep(0.02)
    spot.close()


def test_counting_starts_no_thread(spot: bs.Spot) -> None:
    before = set(threading.enumerate())
    marked = spot.mark(double)
    for n in range(3 * stats.COMPACT_AT):
        marked(n % 7)
    assert set(threading.enumerate()) == before  # a thread alive slows every SQLite hit


# -- the other built-in backends, end to end ---------------------------------------------------


@pytest.fixture
def redis_url() -> Iterator[str]:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_unavailable(f"Redis not reachable at {REDIS_URL} ({exc})")
    name = f"test-stats-{uuid.uuid4().hex}"
    yield name
    keys = list(client.scan_iter(match=f"beautyspot:{name}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        service_unavailable(f"PostgreSQL not reachable ({exc})")
    schema = f"bs_stats_{uuid.uuid4().hex[:16]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    admin.execute(f"DROP SCHEMA {schema} CASCADE")
    admin.close()


@pytest.mark.parametrize("service", ["redis", "postgres"])
def test_stats_through_a_spot_on_a_server(
    workdir: Path, service: str, request: pytest.FixtureRequest
) -> None:
    if service == "redis":
        name, db = request.getfixturevalue("redis_url"), REDIS_URL
    else:
        name, db = "served", request.getfixturevalue("postgres_url")
    limiter, _ = fake_limiter(tpm=60, burst=1000)
    spot = bs.Spot(name, db=db, limiter=limiter)

    @spot.mark
    @spot.limiter(cost=2)
    def paced(x: int) -> int:
        return x

    for n in (1, 1, 1, 2):
        paced(n)
    spot.close()
    counted = stats_of(spot.db)[paced._marked_call.func_id]
    assert (counted["records"], counted["hits"], counted["misses"]) == (2, 2, 2)
    assert counted["tokens_saved"] == 4.0
    rows, total = spot.db.find_records(RecordQuery(order_by="hits"))
    assert total == 2 and [row["hits"] for row in rows] == [2, 0]
    spot.db.close()
