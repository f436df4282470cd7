"""Leases: a missing key is computed once across processes; waiters wait for the holder's record.

Two Spots on one file stand for two processes (each has its own in-memory waiting room), so most
tests run in threads; exactly-once and a SIGKILLed holder use real processes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import beautyspot as bs
from beautyspot.db.base import TaskDB
from beautyspot.lease import DEFAULT_LEASE_SECONDS

# -- helpers, also run in spawned processes (so at module level) ------------------------------


def _slow_square(x: int) -> int:
    log = os.environ.get("LEASE_LOG")
    if log:
        with open(log, "a") as file:
            file.write(f"{os.getpid()}\n")
    time.sleep(float(os.environ.get("LEASE_WORK", "0.5")))
    return x * x


def _racer(db: str, start: Any, results: Any) -> None:
    spot = bs.Spot("race", db=db, lease=2)
    marked = spot.mark(_slow_square)
    start.wait()
    results.put(marked(7))


def _hundred_more(x: int) -> int:
    started = os.environ.get("LEASE_HOLD")
    if started:  # in the holder's process: take the lease, say so, and never finish
        Path(started).write_text("holding")
        time.sleep(600)
    return x + 100


def _holder_forever(db: str, started: str) -> None:
    os.environ["LEASE_HOLD"] = started
    bs.Spot("race", db=db, lease=1).mark(_hundred_more)(3)


@pytest.fixture
def spawn(monkeypatch: pytest.MonkeyPatch) -> Any:
    root = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    return multiprocessing.get_context("spawn")


@pytest.fixture
def two_spots(tmp_path: Path) -> Iterator[tuple[bs.Spot, bs.Spot]]:
    """Two Spots on one file: two 'processes' as far as leases go."""
    first = bs.Spot("lease", db=tmp_path / "lease.db", lease=0.6)
    second = bs.Spot("lease", db=tmp_path / "lease.db", lease=0.6)
    yield first, second
    first.close()
    second.close()


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(call()))
    thread.start()
    return thread, box


def _count_calls(monkeypatch: pytest.MonkeyPatch, db: TaskDB, *names: str) -> list[str]:
    calls: list[str] = []
    for name in names:
        real = getattr(db, name)

        def counted(*args: Any, _real: Any = real, _name: str = name) -> Any:
            calls.append(_name)
            return _real(*args)

        monkeypatch.setattr(db, name, counted)
    return calls


# -- (a) exactly once -------------------------------------------------------------------------


@pytest.mark.slow
def test_racing_processes_compute_a_key_exactly_once(
    spawn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "log"
    monkeypatch.setenv("LEASE_LOG", str(log))
    db = str(tmp_path / "race.db")
    bs.Spot("race", db=db).close()  # the schema exists before the race
    start, results = spawn.Barrier(4), spawn.Queue()
    racers = [spawn.Process(target=_racer, args=(db, start, results)) for _ in range(4)]
    for racer in racers:
        racer.start()
    values = [results.get(timeout=60) for _ in racers]
    for racer in racers:
        racer.join(timeout=60)
    assert values == [49] * 4
    assert len(log.read_text().splitlines()) == 1


# -- (b) a heartbeat keeps a long computation's lease -----------------------------------------


def test_a_holder_computing_past_its_lease_is_never_duplicated(
    two_spots: tuple[bs.Spot, bs.Spot],
) -> None:
    first, second = two_spots
    runs: list[str] = []

    def work(x: int) -> str:
        runs.append("run")
        time.sleep(2.0)  # more than three leases of 0.6 s: only renewals keep it
        return f"done {x}"

    holder, held = _in_thread(lambda: first.mark(ignore=("runs",))(work)(1))
    time.sleep(0.3)
    assert second.mark(ignore=("runs",))(work)(1) == "done 1"
    holder.join()
    assert held == ["done 1"] and runs == ["run"]


# -- (c) a dead holder's lease expires ----------------------------------------------------------


@pytest.mark.slow
def test_a_sigkilled_holders_lease_expires_and_a_waiter_computes(
    spawn: Any, tmp_path: Path
) -> None:
    db, started = str(tmp_path / "race.db"), tmp_path / "started"
    bs.Spot("race", db=db).close()
    holder = spawn.Process(target=_holder_forever, args=(db, str(started)))
    holder.start()
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists()

    spot = bs.Spot("race", db=db, lease=1)
    marked = spot.mark(_hundred_more)
    assert marked.cache_key(3) == _holder_key(db)  # the key the holder is computing
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    killed = time.monotonic()
    assert marked(3) == 103
    # the lease (1 s) had up to 1/3 s renewed past the kill, then one poll of at most 0.5 s
    assert time.monotonic() - killed < 1 + 0.5 + 1.5


def _holder_key(db: str) -> str:
    import sqlite3

    with sqlite3.connect(db) as conn:
        (key,) = conn.execute("SELECT cache_key FROM leases").fetchone()
    return str(key)


# -- (d) waiters do not busy-poll -------------------------------------------------------------


def test_a_waiter_makes_at_most_ten_requests_a_second(
    two_spots: tuple[bs.Spot, bs.Spot], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two_spots

    def work(x: int) -> int:
        time.sleep(2.0)
        return x

    holder, _ = _in_thread(lambda: first.mark(work)(5))
    time.sleep(0.2)
    calls = _count_calls(monkeypatch, second.db, "acquire_lease", "lookup")
    started = time.monotonic()
    assert second.mark(work)(5) == 5
    waited = time.monotonic() - started
    holder.join()
    assert waited > 1.0
    assert len(calls) <= 10 * waited + 2, calls


# -- (e) a hit pays nothing for leases --------------------------------------------------------


def test_a_hit_never_touches_leases(
    two_spots: tuple[bs.Spot, bs.Spot], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = two_spots

    @first.mark
    def double(x: int) -> int:
        return 2 * x

    assert double(4) == 8
    calls = _count_calls(monkeypatch, first.db, "acquire_lease", "renew_lease", "release_lease")
    assert [double(4) for _ in range(5)] == [8] * 5
    assert calls == []


# -- (f) a holder whose lease was taken over still returns its result --------------------------


def test_a_holder_whose_lease_was_taken_over_returns_normally(
    two_spots: tuple[bs.Spot, bs.Spot], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two_spots
    # The first holder's renewals never land, as if its process were paused past its lease.
    monkeypatch.setattr(first.db, "renew_lease", lambda *args: False)
    state = {"calls": 0}

    def work(x: int) -> str:
        state["calls"] += 1
        mine = state["calls"]
        if mine == 1:
            time.sleep(1.5)
        return f"call {mine}"

    holder, held = _in_thread(lambda: first.mark(ignore=("state",))(work)(1))
    time.sleep(1.0)  # past the first holder's 0.6 s lease: the second takes it over
    assert second.mark(ignore=("state",))(work)(1) == "call 2"
    holder.join()
    assert held == ["call 1"]  # returned normally, no error


# -- (g) no wait is forever ----------------------------------------------------------------------


def test_past_lease_wait_a_waiter_computes_itself_with_a_warning(tmp_path: Path) -> None:
    first = bs.Spot("lease", db=tmp_path / "w.db", lease=0.6)
    second = bs.Spot("lease", db=tmp_path / "w.db", lease=0.6, lease_wait=0.5)
    runs: list[str] = []

    def work(x: int) -> int:
        runs.append("run")
        time.sleep(2.0)
        return x

    holder, _ = _in_thread(lambda: first.mark(ignore=("runs",))(work)(9))
    time.sleep(0.2)
    started = time.monotonic()
    with pytest.warns(bs.BeautyspotWarning, match="lease_wait=0.5s; computing it here"):
        assert second.mark(ignore=("runs",))(work)(9) == 9
    assert time.monotonic() - started < 2.0 + 0.5 + 1.5  # waited 0.5 s, then computed (2 s)
    holder.join()
    assert runs == ["run", "run"]


# -- async, configuration ---------------------------------------------------------------------


def test_async_waiters_wait_without_blocking_the_loop(
    two_spots: tuple[bs.Spot, bs.Spot],
) -> None:
    first, second = two_spots
    runs: list[str] = []

    async def work(x: int) -> int:
        runs.append("run")
        await asyncio.sleep(1.0)
        return x * 10

    async def main() -> list[int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        clock = asyncio.create_task(ticker())
        holder = asyncio.create_task(first.mark(ignore=("runs",))(work)(2))
        await asyncio.sleep(0.2)
        waiter = await second.mark(ignore=("runs",))(work)(2)
        clock.cancel()
        assert ticks >= 10  # the loop ran while the waiter waited
        return [await holder, waiter]

    assert asyncio.run(main()) == [20, 20]
    assert runs == ["run"]


def test_lease_needs_a_taskdb_with_leases(tmp_path: Path) -> None:
    class Minimal(TaskDB):
        def __init__(self) -> None:
            self.records: dict[str, Any] = {}

        def init_schema(self) -> None:
            pass

        def get(self, cache_key: str) -> Any:
            return self.records.get(cache_key)

        def save(self, cache_key: str, *args: Any, **kwargs: Any) -> None:
            self.records[cache_key] = kwargs

        def get_history(self, limit: int = 1000) -> list[Any]:
            return []

    spot = bs.Spot("m", db=Minimal(), storage=tmp_path / "blobs")
    with pytest.raises(bs.NotSupportedError, match="lease= needs a TaskDB with leases"):
        spot.mark(lease=True)(_slow_square)
    assert spot.mark(_slow_square) is not None  # without a lease it is a full cache


@pytest.mark.parametrize(
    ("value", "seconds"), [(True, DEFAULT_LEASE_SECONDS), (None, None), (False, None), (3, 3.0)]
)
def test_lease_settings(tmp_path: Path, value: Any, seconds: float | None) -> None:
    spot = bs.Spot("s", db=tmp_path / "s.db", lease=value)
    assert spot.lease_seconds == seconds
    marked = spot.mark(_slow_square)._marked_call
    assert marked.options.lease_seconds == seconds
    assert spot.mark(lease=False)(_slow_square)._marked_call.options.lease_seconds is None


@pytest.mark.parametrize("bad", [0, -1, "5", [1]])
def test_bad_lease_settings_are_named(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(bs.ConfigurationError, match="lease="):
        bs.Spot("s", db=tmp_path / "s.db", lease=bad)
    with pytest.raises(bs.ConfigurationError, match="lease_wait="):
        bs.Spot("s", db=tmp_path / "s.db", lease_wait=-1)


def test_a_lease_taken_after_the_holder_stored_and_left_is_a_hit(
    two_spots: tuple[bs.Spot, bs.Spot], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two_spots
    runs: list[int] = []

    def work(x: int) -> int:
        runs.append(x)
        return x + 1

    real_acquire = second.db.acquire_lease

    def others_finish_first(*args: Any) -> bool:
        # Between the second caller's look and its lease, the first computes, stores, lets go.
        assert first.mark(ignore=("runs",))(work)(1) == 2
        return real_acquire(*args)

    monkeypatch.setattr(second.db, "acquire_lease", others_finish_first)
    assert second.mark(ignore=("runs",))(work)(1) == 2
    assert runs == [1]  # computed once: the lease's new holder looked again first
