"""Marked generator functions: a miss streams and stores, a hit replays; interruptions at every
point store nothing; concurrent callers wait for one stream; blobs, leases and memory."""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import beautyspot as bs
from beautyspot.call import Encoded
from beautyspot.db.base import BLOB, INLINE
from beautyspot.errors import ConfigurationError, SerializationError
from beautyspot.stream import _Recording

ROOT = Path(__file__).resolve().parents[1]

# -- helpers, also run in spawned processes (so at module level) ------------------------------


def _slow_letters(n: int) -> Iterator[str]:
    """Logs its process id, says when its first item is out, then yields slowly."""
    with open(os.environ["STREAM_LOG"], "a") as log:
        log.write(f"{os.getpid()}\n")
    for index in range(n):
        yield "abcdefghij"[index]
        if index == 0:
            Path(os.environ["STREAM_STARTED"]).write_text("first item out")
        time.sleep(0.1)


def _stream_in_process(db: str, n: int, results: Any) -> None:
    spot = bs.Spot("lease", db=db, lease=True)
    results.put(list(spot.mark(_slow_letters)(n)))
    spot.close()


def _stored(spot: bs.Spot, fn: Any, *args: Any) -> Any:
    """The record of ``fn(*args)``, or None."""
    return spot.db.get(fn.cache_key(*args))


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _counts(spot: bs.Spot, fn: Any) -> tuple[int, int, int]:
    """(hits, misses, failures) of ``fn`` so far."""
    spot._tally.flush()
    rows = {row["func_name"]: row for row in spot.db.get_stats()}
    row = rows.get(fn._marked_call.func_id)
    return (0, 0, 0) if row is None else (row["hits"], row["misses"], row["failures"])


# -- a miss streams, a hit replays ------------------------------------------------------------


def test_a_miss_passes_each_item_on_before_the_next_is_made_and_a_hit_replays(spot: bs.Spot):
    events: list[str] = []

    @spot.mark
    def tokens(text: str) -> Iterator[str]:
        for word in text.split():
            events.append(f"made {word}")
            yield word
        events.append("done")

    assert inspect.isgeneratorfunction(tokens)
    assert tokens.__name__ == "tokens" and tokens.__wrapped__.__name__ == "tokens"
    for word in tokens("a b c"):
        events.append(f"got {word}")
    assert events == ["made a", "got a", "made b", "got b", "made c", "got c", "done"]
    assert tokens.is_cached("a b c")
    events.clear()
    assert list(tokens("a b c")) == ["a", "b", "c"]
    assert events == []  # replayed: the function did not run
    assert inspect.isgenerator(tokens("a b c"))
    assert _counts(spot, tokens) == (1, 1, 0)


def test_an_async_miss_streams_and_a_hit_replays_as_an_async_generator(spot: bs.Spot):
    events: list[str] = []

    @spot.mark
    async def tokens(text: str) -> AsyncIterator[str]:
        for word in text.split():
            await asyncio.sleep(0)
            events.append(f"made {word}")
            yield word
        events.append("done")

    assert inspect.isasyncgenfunction(tokens)

    async def main() -> list[str]:
        async for word in tokens("a b c"):
            events.append(f"got {word}")
        assert inspect.isasyncgen(tokens("a b c"))
        return [word async for word in tokens("a b c")]

    assert asyncio.run(main()) == ["a", "b", "c"]
    assert events == ["made a", "got a", "made b", "got b", "made c", "got c", "done"]
    assert _counts(spot, tokens) == (1, 1, 0)


def test_the_stored_value_is_the_list_of_items(spot: bs.Spot):
    @spot.mark
    def pairs(n: int) -> Iterator[tuple[int, int]]:
        for i in range(n):
            yield i, i * i

    assert list(pairs(3)) == [(0, 0), (1, 1), (2, 4)]
    record = _stored(spot, pairs, 3)
    assert record["result_type"] == INLINE
    assert spot.serializer.loads(record["result_data"]) == [(0, 0), (1, 1), (2, 4)]


@pytest.mark.parametrize(
    "items",
    [
        [],
        [1],
        ["a", (1, 2), {3: b"x"}, {4}, bytearray(b"y"), None, 2.5, -(2**70)],
        list(range(70_000)),  # more than msgpack's 16-bit array count
    ],
    ids=["empty", "one", "mixed", "many"],
)
def test_items_encoded_one_by_one_decode_as_the_whole_list(spot: bs.Spot, items: list[Any]):
    @spot.mark
    def nothing() -> Iterator[int]:
        yield from ()

    recording = _Recording(nothing._marked_call)
    assert all(recording.keep(item) for item in items)
    ok, encoded, _ = recording.finished()
    assert ok and isinstance(encoded, Encoded) and encoded.error is None
    serializer = spot.serializer
    assert serializer.loads(encoded.data) == serializer.loads(serializer.dumps(items)) == items


def test_version_is_cached_and_invalidate_work_for_streams(spot: bs.Spot):
    runs: list[str] = []

    def letters(word: str) -> Iterator[str]:
        runs.append(word)
        yield from word

    first = spot.mark(version="v1")(letters)
    assert not first.is_cached("ab")
    assert list(first("ab")) == ["a", "b"] and first.is_cached("ab")
    assert list(first("ab")) == ["a", "b"] and runs == ["ab"]
    assert first.invalidate("ab") and not first.is_cached("ab")
    assert list(first("ab")) == ["a", "b"] and runs == ["ab", "ab"]
    second = spot.mark(version="v2")(letters)
    assert second.cache_key("ab") != first.cache_key("ab")
    assert list(second("ab")) == ["a", "b"] and runs == ["ab", "ab", "ab"]


def test_a_batch_refuses_a_stream_before_running_it(spot: bs.Spot):
    @spot.mark
    def letters(word: str) -> Iterator[str]:
        yield from word

    for run in (lambda: spot.map(letters, ["ab"]), lambda: letters.map(["ab"])):
        with pytest.raises(ConfigurationError, match=r"list\(fn\(x\)\)"):
            run()
    assert not letters.is_cached("ab")


# -- interruptions: nothing stored, the next call computes again -------------------------------

FAIL_POINTS = {"before the first item": 0, "mid-stream": 2, "after the last item": 4}


@pytest.mark.parametrize("fail_at", FAIL_POINTS.values(), ids=FAIL_POINTS.keys())
def test_an_exception_stores_nothing_records_a_failure_and_the_next_call_computes(
    spot: bs.Spot, fail_at: int
):
    failing = [True]

    @spot.mark
    def numbers(n: int) -> Iterator[int]:
        for i in range(n):
            if failing[0] and i == fail_at:
                raise ValueError(f"broke at {i}")
            yield i
        if failing[0] and fail_at == n:
            raise ValueError(f"broke at {n}")

    received: list[int] = []
    with pytest.raises(ValueError, match=f"broke at {fail_at}"):
        for i in numbers(4):
            received.append(i)
    assert received == list(range(fail_at))
    assert not numbers.is_cached(4)
    [failure] = spot.db.get_failures()
    assert failure["error_type"] == "ValueError" and failure["input_preview"] == "n=4"
    failing[0] = False
    assert list(numbers(4)) == [0, 1, 2, 3] and numbers.is_cached(4)
    assert _counts(spot, numbers) == (0, 1, 1)


@pytest.mark.parametrize("fail_at", FAIL_POINTS.values(), ids=FAIL_POINTS.keys())
def test_an_async_exception_stores_nothing_and_records_a_failure(spot: bs.Spot, fail_at: int):
    @spot.mark
    async def numbers(n: int) -> AsyncIterator[int]:
        for i in range(n):
            if i == fail_at:
                raise ValueError(f"broke at {i}")
            await asyncio.sleep(0)
            yield i
        raise ValueError(f"broke at {n}")

    received: list[int] = []

    async def main() -> None:
        async for i in numbers(4):
            received.append(i)

    with pytest.raises(ValueError, match=f"broke at {fail_at}"):
        asyncio.run(main())
    assert received == list(range(fail_at))
    assert not numbers.is_cached(4)
    assert [f["error_type"] for f in spot.db.get_failures()] == ["ValueError"]


@pytest.mark.parametrize("stop_after", [0, 1, 3, 4], ids=["0", "1", "all-but-last", "all"])
def test_a_caller_that_stops_early_stores_nothing_and_records_no_failure(
    spot: bs.Spot, stop_after: int
):
    events: list[str] = []

    @spot.mark
    def numbers(n: int) -> Iterator[int]:
        events.append("started")
        try:
            yield from range(n)
        finally:
            events.append("cleaned up")

    stream = numbers(4)
    received = [next(stream) for _ in range(stop_after)]
    stream.close()  # what a `break` out of a for loop does
    assert received == list(range(stop_after))
    # Never started: nothing to clean up. Started: the function's cleanup ran at once.
    assert events == ([] if stop_after == 0 else ["started", "cleaned up"])
    assert not numbers.is_cached(4)
    assert spot.db.get_failures() == []
    for i in numbers(4):  # the key is free: this call computes, and a break stores nothing
        if i == 2:
            break
    assert not numbers.is_cached(4)
    assert list(numbers(4)) == [0, 1, 2, 3] and numbers.is_cached(4)


@pytest.mark.parametrize("stop_after", [0, 1, 3], ids=["0", "1", "all-but-last"])
def test_an_async_caller_that_stops_early_stores_nothing(spot: bs.Spot, stop_after: int):
    events: list[str] = []

    @spot.mark
    async def numbers(n: int) -> AsyncIterator[int]:
        events.append("started")
        try:
            for i in range(n):
                await asyncio.sleep(0)
                yield i
        finally:
            events.append("cleaned up")

    async def main() -> list[int]:
        stream = numbers(4)
        received = [await stream.__anext__() for _ in range(stop_after)]
        await stream.aclose()
        return received

    assert asyncio.run(main()) == list(range(stop_after))
    assert events == ([] if stop_after == 0 else ["started", "cleaned up"])
    assert not numbers.is_cached(4) and spot.db.get_failures() == []


def test_ctrl_c_mid_stream_stores_nothing_and_frees_the_key(spot: bs.Spot):
    interrupt = [True]

    @spot.mark
    def numbers(n: int) -> Iterator[int]:
        for i in range(n):
            if interrupt[0] and i == 2:
                raise KeyboardInterrupt
            yield i

    received: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        for i in numbers(4):
            received.append(i)
    assert received == [0, 1]
    assert not numbers.is_cached(4) and spot.db.get_failures() == []
    interrupt[0] = False
    assert list(numbers(4)) == [0, 1, 2, 3]  # computes again (no claim was left behind)


def test_a_cancelled_async_stream_stores_nothing_and_the_next_call_computes(spot: bs.Spot):
    hang = [True]

    @spot.mark
    async def numbers(n: int) -> AsyncIterator[int]:
        for i in range(n):
            if hang[0] and i == 2:
                await asyncio.Event().wait()  # never set: only a cancel ends it
            yield i

    received: list[int] = []

    async def consume() -> None:
        async for i in numbers(4):
            received.append(i)

    async def main() -> list[int]:
        task = asyncio.create_task(consume())
        while len(received) < 2:
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not numbers.is_cached(4)
        hang[0] = False
        return [i async for i in numbers(4)]

    assert asyncio.run(main()) == [0, 1, 2, 3]
    assert received == [0, 1]
    assert spot.db.get_failures() == []


def test_an_unstorable_item_raises_where_it_comes_and_stores_nothing(spot: bs.Spot):
    events: list[str] = []
    unstorable: list[object] = []

    @spot.mark
    def items(n: int) -> Iterator[Any]:
        try:
            yield 1
            yield 2
            unstorable.append(object())
            yield unstorable[0]
            events.append("went on")
            yield 3
        finally:
            events.append("cleaned up")

    received: list[Any] = []
    with pytest.raises(SerializationError, match=r"item 2.*nothing was saved") as raised:
        for item in items(1):
            received.append(item)
    assert received == [1, 2]
    assert raised.value.result is unstorable[0]
    assert events == ["cleaned up"]  # the function was stopped at the bad item
    assert not items.is_cached(1)
    assert spot.db.get_failures() == []  # as for a normal call's unstorable result


def test_an_unstorable_async_item_raises_where_it_comes(spot: bs.Spot):
    @spot.mark
    async def items() -> AsyncIterator[Any]:
        yield "fine"
        yield lambda: None

    received: list[Any] = []

    async def main() -> None:
        async for item in items():
            received.append(item)

    with pytest.raises(SerializationError, match="item 1"):
        asyncio.run(main())
    assert received == ["fine"] and not items.is_cached()


# -- concurrent callers -----------------------------------------------------------------------


def test_threads_on_a_key_being_streamed_wait_for_it_and_replay_it(spot: bs.Spot):
    runs: list[int] = []
    go_on = threading.Event()

    @spot.mark(ignore=["go_on"])
    def numbers(n: int) -> Iterator[int]:
        runs.append(n)
        yield 0
        go_on.wait(10)
        yield from range(1, n)

    results: list[list[int]] = []
    first_out = threading.Event()

    def lead() -> None:
        stream = numbers(5)
        received = [next(stream)]
        first_out.set()
        results.append(received + list(stream))

    threads = [threading.Thread(target=lead)]
    threads[0].start()
    first_out.wait(10)
    for _ in range(4):
        thread = threading.Thread(target=lambda: results.append(list(numbers(5))))
        threads.append(thread)
        thread.start()
    key = numbers.cache_key(5)
    _wait_for(lambda: spot._inflight._futures.get(key) is not None, "a waiting caller")
    go_on.set()
    for thread in threads:
        thread.join(10)
    assert results == [[0, 1, 2, 3, 4]] * 5
    assert runs == [5]
    assert _counts(spot, numbers) == (4, 1, 0)


def test_tasks_on_a_key_being_streamed_wait_for_it_and_replay_it(spot: bs.Spot):
    runs: list[int] = []

    async def main() -> list[list[int]]:
        go_on = asyncio.Event()

        @spot.mark
        async def numbers(n: int) -> AsyncIterator[int]:
            runs.append(n)
            yield 0
            await go_on.wait()
            for i in range(1, n):
                yield i

        async def collect() -> list[int]:
            return [i async for i in numbers(5)]

        tasks = [asyncio.create_task(collect()) for _ in range(5)]
        key = numbers.cache_key(5)
        while spot._inflight._futures.get(key) is None:
            await asyncio.sleep(0.001)
        go_on.set()
        return await asyncio.wait_for(asyncio.gather(*tasks), 10)

    assert asyncio.run(main()) == [[0, 1, 2, 3, 4]] * 5
    assert runs == [5]


def test_a_waiting_thread_computes_when_the_leader_stops_early(spot: bs.Spot):
    runs: list[int] = []
    go_on = threading.Event()

    @spot.mark(ignore=["go_on"])
    def numbers(n: int) -> Iterator[int]:
        runs.append(n)
        yield 0
        go_on.wait(10)
        yield from range(1, n)

    leader = numbers(3)
    assert next(leader) == 0
    results: list[list[int]] = []
    follower = threading.Thread(target=lambda: results.append(list(numbers(3))))
    follower.start()
    key = numbers.cache_key(3)
    _wait_for(lambda: spot._inflight._futures.get(key) is not None, "the follower")
    leader.close()
    go_on.set()
    follower.join(10)
    assert results == [[0, 1, 2]] and runs == [3, 3]


def test_one_thread_iterating_two_streams_of_a_key_at_once_does_not_wait_for_itself(
    spot: bs.Spot,
):
    runs: list[int] = []

    @spot.mark
    def numbers(n: int) -> Iterator[int]:
        runs.append(n)
        yield from range(n)

    assert list(zip(numbers(3), numbers(3), strict=True)) == [(0, 0), (1, 1), (2, 2)]
    assert runs == [3, 3] and numbers.is_cached(3)


def test_a_limiter_on_either_side_paces_a_stream_and_its_cost_is_recorded(workdir: Path):
    spot = bs.Spot("paced", tpm=60_000)

    @spot.mark
    @spot.limiter(cost=2)
    def below(word: str) -> Iterator[str]:
        yield from word

    @spot.limiter(cost=3)
    @spot.mark
    def above(word: str) -> Iterator[str]:
        yield from word

    for fn, cost in ((below, 2.0), (above, 3.0)):
        assert inspect.isgeneratorfunction(fn)
        assert list(fn("ab")) == list(fn("ab")) == ["a", "b"]
        assert _stored(spot, fn, "ab")["cost"] == cost
    spot.close()


# -- blobs ------------------------------------------------------------------------------------


def test_a_stream_past_the_blob_threshold_goes_to_blob_storage_and_replays(workdir: Path):
    spot = bs.Spot("blobs", blob_threshold=1000)
    runs: list[int] = []

    @spot.mark
    def chunks(n: int) -> Iterator[bytes]:
        runs.append(n)
        for i in range(n):
            yield bytes([i]) * 100

    expected = [bytes([i]) * 100 for i in range(20)]
    assert list(chunks(20)) == expected
    assert _stored(spot, chunks, 20)["result_type"] == BLOB
    assert list(chunks(2)) == expected[:2]
    assert _stored(spot, chunks, 2)["result_type"] == INLINE
    assert list(chunks(20)) == expected and runs == [20, 2]

    @spot.mark(save_blob=False)
    def inline_chunks(n: int) -> Iterator[bytes]:
        yield from chunks(n)

    assert list(inline_chunks(20)) == expected
    assert _stored(spot, inline_chunks, 20)["result_type"] == INLINE
    spot.close()


def test_an_async_stream_replays_from_blob_storage(workdir: Path):
    spot = bs.Spot("blobs", blob_threshold=100)
    runs: list[int] = []

    @spot.mark
    async def chunks(n: int) -> AsyncIterator[bytes]:
        runs.append(n)
        for i in range(n):
            yield bytes([i]) * 50

    async def main() -> tuple[list[bytes], list[bytes]]:
        return [c async for c in chunks(5)], [c async for c in chunks(5)]

    first, second = asyncio.run(main())
    assert first == second == [bytes([i]) * 50 for i in range(5)]
    assert _stored(spot, chunks, 5)["result_type"] == BLOB and runs == [5]
    spot.close()


# -- leases -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_another_process_waits_for_a_leased_stream_then_replays_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    log, started = tmp_path / "runs.log", tmp_path / "started"
    monkeypatch.setenv("STREAM_LOG", str(log))
    monkeypatch.setenv("STREAM_STARTED", str(started))
    db = str(tmp_path / "lease.db")
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    streamer = spawn.Process(target=_stream_in_process, args=(db, 5, results))
    streamer.start()
    try:
        _wait_for(started.exists, "the other process's first item")
        spot = bs.Spot("lease", db=db, lease=True)
        assert list(spot.mark(_slow_letters)(5)) == list("abcde")
        spot.close()
        assert results.get(timeout=30) == list("abcde")
    finally:
        streamer.join(30)
    assert len(log.read_text().split()) == 1  # computed once, in the other process


# -- memory -----------------------------------------------------------------------------------


def test_a_stream_keeps_about_its_stored_size_in_memory(spot: bs.Spot):
    count, size = 200, 20_000

    @spot.mark
    def chunks(n: int) -> Iterator[bytes]:
        for i in range(n):
            yield bytes([i % 256]) * size

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        for _ in chunks(count):
            pass  # the caller keeps nothing
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    stored = _stored(spot, chunks, count)["size"]
    assert stored >= count * size
    # One copy of the stored bytes (and a little slack), not a list of items plus its encoding.
    assert peak < 1.5 * stored, (peak, stored)


# -- the example ------------------------------------------------------------------------------


def test_the_streaming_chat_example_streams_then_replays(tmp_path: Path):
    script = ROOT / "examples" / "streaming_chat.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    runs = [
        subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
            text=True, check=True, timeout=60,
        ).stdout
        for _ in range(2)
    ]  # fmt: skip
    assert "streamed from the model" in runs[0] and "replayed from the cache" not in runs[0]
    assert "replayed from the cache" in runs[1] and "streamed from the model" not in runs[1]
    assert runs[0].splitlines()[0] == runs[1].splitlines()[0]  # the same reply, word for word
