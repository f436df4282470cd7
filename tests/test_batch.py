"""spot.map / spot.amap: order, cache, retries, failures, executors, progress, stopping."""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import FakeClock

import beautyspot as bs
from beautyspot.batch import Progress


class Runs:
    """Records each execution of a function under test and how many overlap."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def __beautyspot_key__(self) -> None:
        return None  # a side channel of the test: results never depend on it

    def enter(self, value: Any) -> None:
        with self._lock:
            self.calls.append(value)
            self.active += 1
            self.most_active = max(self.most_active, self.active)

    def leave(self) -> None:
        with self._lock:
            self.active -= 1


def flaky(failures: int, error: type[Exception] = TimeoutError) -> Any:
    """A body that raises ``error`` for its first ``failures`` calls per input."""
    seen: dict[Any, int] = {}

    def body(x: Any) -> Any:
        seen[x] = seen.get(x, 0) + 1
        if seen[x] <= failures:
            raise error(f"attempt {seen[x]} of {x}")
        return x * 10

    return body


# -- results and the cache -------------------------------------------------------------------


def test_results_come_back_in_input_order_while_workers_overlap(spot: bs.Spot):
    runs = Runs()

    @spot.mark
    def slow_square(x):
        runs.enter(x)
        time.sleep(0.01 * (8 - x))  # later items finish first
        runs.leave()
        return x * x

    assert spot.map(slow_square, range(8), workers=4, progress=False) == [x * x for x in range(8)]
    assert sorted(runs.calls) == list(range(8))
    assert runs.most_active == 4


def test_fn_map_and_a_marked_function_of_another_spot(spot: bs.Spot, workdir: Path):
    other = bs.Spot("other")

    @other.mark
    def shout(text):
        return text.upper()

    try:
        assert shout.map(["a", "b"]) == ["A", "B"]
        assert spot.map(shout, ["b", "c"]) == ["B", "C"]
        assert shout.is_cached("c") and other.db.get(shout.cache_key("c")) is not None
    finally:
        other.close()


def test_star_items_are_positional_tuples_or_keyword_dicts(spot: bs.Spot):
    @spot.mark
    def power(base, exponent=2):
        return base**exponent

    items = [(3,), (2, 5), {"base": 4}, {"base": 2, "exponent": 3}, [5, 1]]
    assert spot.map(power, items, star=True) == [9, 32, 16, 8, 5]
    # without star, each item is the one argument
    assert spot.map(power, [3, 4]) == [9, 16]


def test_cached_items_are_served_without_running_or_rate_tokens(workdir: Path):
    clock = FakeClock()
    limiter = bs.Limiter(60, clock=clock, sleep=clock.sleep)
    spot = bs.Spot("paced", limiter=limiter)
    runs = Runs()

    @spot.mark
    @spot.limiter()
    def fetch(x):
        runs.enter(x)
        runs.leave()
        return -x

    try:
        assert fetch.map([1, 2, 3]) == [-1, -2, -3]
        assert clock.now == 2.0  # three tokens at one a second: the first goes at once
        seen: list[Progress] = []
        assert fetch.map([1, 2, 3, 4, 5], progress=seen.append) == [-1, -2, -3, -4, -5]
        assert runs.calls == [1, 2, 3, 4, 5]  # 1-3 ran once, in the first batch only
        assert limiter.reserve().start == 5.0  # five tokens in all: cache hits spent none
        assert seen[-1] == Progress(total=5, done=5, cached=3)
        assert seen[-1].computed == 2
    finally:
        spot.close()


def test_repeated_items_run_once(spot: bs.Spot):
    runs = Runs()

    @spot.mark
    def slow(x):
        runs.enter(x)
        time.sleep(0.05)
        runs.leave()
        return [x]

    assert spot.map(slow, [7, 7, 7, 8], workers=4) == [[7], [7], [7], [8]]
    assert sorted(runs.calls) == [7, 8]


def test_an_empty_batch_returns_an_empty_list(spot: bs.Spot):
    @spot.mark
    def never(x):
        raise AssertionError("not called")

    assert spot.map(never, []) == []
    assert asyncio.run(spot.amap(_async_double_of(spot), iter(()))) == []


# -- retries ---------------------------------------------------------------------------------


def test_retries_back_off_exponentially_with_jitter_and_every_failure_is_recorded(spot: bs.Spot):
    waits: list[float] = []
    fetch = spot.mark(flaky(3))
    seen: list[Progress] = []

    results = fetch.map(
        [1],
        retries=3,
        retry_on=TimeoutError,
        backoff=1.0,
        sleep=waits.append,
        random=lambda: 0.5,
        progress=seen.append,
    )
    assert results == [10]
    assert waits == [0.5, 1.0, 2.0]  # half of 1, 2 and 4 seconds: the jitter draw was 0.5
    assert seen[-1] == Progress(total=1, done=1, retries=3)
    failures = spot.db.get_failures()
    assert [f["message"] for f in failures] == [f"attempt {n} of 1" for n in (3, 2, 1)]


def test_backoff_is_capped_and_a_callable_gives_the_waits_itself(spot: bs.Spot):
    capped: list[float] = []
    spot.mark(flaky(9)).map([1], retries=9, backoff=1.0, sleep=capped.append, random=lambda: 1.0)
    assert capped == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    chosen: list[float] = []
    spot.mark(version="2")(flaky(2)).map(
        [1], retries=2, backoff=lambda retry: retry / 10, sleep=chosen.append
    )
    assert chosen == [0.1, 0.2]


def test_retries_stop_at_the_limit_and_skip_other_exceptions(spot: bs.Spot):
    waits: list[float] = []
    always = spot.mark(flaky(99))
    [error] = always.map([1], retries=2, sleep=waits.append, return_exceptions=True)
    assert isinstance(error, TimeoutError) and str(error) == "attempt 3 of 1"
    assert len(waits) == 2

    not_retried = spot.mark(version="2")(flaky(1, error=KeyError))
    [error] = not_retried.map(
        [1], retries=5, retry_on=(TimeoutError, ConnectionError), return_exceptions=True
    )
    assert isinstance(error, KeyError)
    assert len(spot.db.get_failures()) == 3 + 1


def test_every_attempt_goes_through_the_limiter(workdir: Path):
    clock = FakeClock()
    limiter = bs.Limiter(60, clock=clock, sleep=clock.sleep)
    spot = bs.Spot("paced", limiter=limiter)
    fetch = spot.mark(spot.limiter()(flaky(2)))
    try:
        assert fetch.map([1], retries=2, backoff=0, sleep=clock.sleep) == [10]
        assert clock.now == 2.0  # attempts at 0, 1 and 2 seconds: one token each
    finally:
        spot.close()


def test_a_stopped_batch_cuts_a_retry_wait_short(spot: bs.Spot):
    attempts = Runs()

    @spot.mark
    def work(x):
        attempts.enter(x)
        if x == 0:
            time.sleep(0.2)
            raise ValueError("the first item is broken")
        raise TimeoutError("busy")

    started = time.monotonic()
    with pytest.raises(ValueError, match="broken"):
        work.map([0, 1], workers=2, retries=5, retry_on=TimeoutError, backoff=lambda n: 60)
    assert time.monotonic() - started < 10  # not the 60 s backoff
    assert attempts.calls.count(1) == 1


# -- failures --------------------------------------------------------------------------------


def test_return_exceptions_puts_each_failure_in_place_and_finishes_the_rest(spot: bs.Spot):
    @spot.mark
    def invert(x):
        return 1 / x

    seen: list[Progress] = []
    results = spot.map(
        invert, [1, 0, 4, 0], workers=2, return_exceptions=True, progress=seen.append
    )
    assert results[0] == 1.0 and results[2] == 0.25
    assert all(isinstance(results[i], ZeroDivisionError) for i in (1, 3))
    assert seen[-1] == Progress(total=4, done=2, failed=2)


def test_the_first_failure_stops_new_work_lets_running_items_save_and_raises(
    spot: bs.Spot, capsys: pytest.CaptureFixture[str]
):
    runs = Runs()

    @spot.mark
    def work(x):
        runs.enter(x)
        time.sleep(0.05)
        runs.leave()
        if x == 2:
            raise ValueError("item 2 is broken")
        return x

    with pytest.raises(ValueError, match="item 2 is broken"):
        spot.map(work, range(30), workers=3)
    assert 3 <= len(runs.calls) < 30
    saved = [x for x in runs.calls if x != 2]
    assert all(work.is_cached(x) for x in saved)  # the running ones finished and were saved
    line = capsys.readouterr().err.strip()
    assert line.startswith("beautyspot: map(work) stopped at a failure (ValueError: item 2")
    assert (
        f"{len(saved)} of 30 done" in line and "Fix the failure and run the same code again" in line
    )


def test_a_call_that_cannot_be_keyed_fails_its_item_only(spot: bs.Spot):
    @spot.mark
    def length(x):
        return len(x)

    results = spot.map(length, ["ab", threading.Lock(), "c"], return_exceptions=True)
    assert results[0] == 2 and results[2] == 1
    assert isinstance(results[1], bs.CacheKeyError)


# -- executors -------------------------------------------------------------------------------


class CountingExecutor(ThreadPoolExecutor):
    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers)
        self.submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_an_injected_executor_runs_the_uncached_items_and_is_left_open(spot: bs.Spot):
    runs = Runs()

    @spot.mark
    def work(x):
        runs.enter(x)
        time.sleep(0.02)
        runs.leave()
        return x + 1

    work(0)
    with CountingExecutor(max_workers=3) as executor:
        assert spot.map(work, range(10), executor=executor) == list(range(1, 11))
        assert executor.submitted == 9  # item 0 was cached
        assert runs.most_active == 3  # its max_workers is the default window
        assert spot.map(work, range(10, 20), executor=executor, workers=2)[-1] == 20
        assert runs.most_active == 3 and executor.submitted == 19


def test_an_executor_that_does_not_tell_its_size_needs_workers(spot: bs.Spot):
    class Sizeless(Executor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
            future: Future[Any] = Future()
            future.set_result(fn(*args, **kwargs))
            return future

    @spot.mark
    def one(x):
        return 1

    with pytest.raises(bs.ConfigurationError, match="workers="):
        spot.map(one, [1], executor=Sizeless())
    assert spot.map(one, [1, 2], executor=Sizeless(), workers=4) == [1, 1]


def _cube(x: int) -> int:
    return x**3


def test_a_process_pool_runs_a_module_level_marked_function(
    spot: bs.Spot, monkeypatch: pytest.MonkeyPatch
):
    # A marked function pickles by reference, so the module attribute must be the marked one.
    cube = spot.mark(_cube)
    monkeypatch.setattr(sys.modules[__name__], "_cube", cube)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        assert spot.map(cube, range(6), executor=executor) == [x**3 for x in range(6)]
    assert all(cube.is_cached(x) for x in range(6))  # saved by the worker processes


# -- progress --------------------------------------------------------------------------------


def test_a_progress_callable_sees_every_item(spot: bs.Spot):
    @spot.mark
    def half(x):
        if x < 0:
            raise ValueError(x)
        return x / 2

    half(2)
    seen: list[Progress] = []
    spot.map(half, [2, 4, -1, 6], progress=seen.append, return_exceptions=True)
    assert [p.done + p.failed for p in seen] == [1, 2, 3, 4]
    assert seen[-1] == Progress(total=4, done=3, cached=1, failed=1)


def test_progress_true_draws_a_bar_and_false_is_silent(
    spot: bs.Spot, capsys: pytest.CaptureFixture[str]
):
    @spot.mark
    def fail_on_odd(x):
        if x % 2:
            raise ValueError("odd")
        return x

    spot.map(fail_on_odd, range(4), progress=True, return_exceptions=True)
    bar = capsys.readouterr().err
    assert "fail_on_odd" in bar and "4/4" in bar and "failed=2" in bar
    with pytest.raises(ValueError):
        spot.map(fail_on_odd, range(4), progress=False)
    spot.map(fail_on_odd, [0, 2])  # None: stderr is not a terminal here, so no bar
    assert capsys.readouterr().err == ""


# -- arguments -------------------------------------------------------------------------------


def test_fn_must_be_a_marked_function_of_the_right_kind(spot: bs.Spot):
    def plain(x):
        return x

    with pytest.raises(TypeError, match=r"fn must be a function decorated with @spot\.mark"):
        spot.map(plain, [1])
    with pytest.raises(TypeError, match=r"await spot\.amap"):
        spot.map(_async_double_of(spot), [1])
    with pytest.raises(TypeError, match=r"spot\.map\(fn, items\)"):
        asyncio.run(spot.amap(spot.mark(plain), [1]))


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"workers": 0}, "workers"),
        ({"workers": "8"}, "workers"),
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"retry_on": "TimeoutError"}, "retry_on"),
        ({"retry_on": (KeyboardInterrupt,)}, "retry_on"),
        ({"backoff": -1}, "backoff"),
        ({"progress": "yes"}, "progress"),
        ({"star": 1}, "star"),
        ({"executor": object()}, "executor"),
    ],
)
def test_bad_options_name_themselves(spot: bs.Spot, options: dict[str, Any], named: str):
    @spot.mark
    def never(x):
        raise AssertionError("not called")

    with pytest.raises(bs.ConfigurationError, match=named):
        spot.map(never, [1], **options)


def test_bad_items_and_unknown_options_are_type_errors(spot: bs.Spot):
    @spot.mark
    def never(x):
        raise AssertionError("not called")

    with pytest.raises(TypeError, match="items must be an iterable"):
        spot.map(never, 5)
    with pytest.raises(TypeError, match="item 1 is a int"):
        spot.map(never, [(1,), 2], star=True)
    with pytest.raises(TypeError, match="worker"):
        spot.map(never, [1], worker=2)
    with pytest.raises(bs.ConfigurationError, match="concurrency"):
        asyncio.run(spot.amap(_async_double_of(spot), [1], concurrency=0))


# -- async -----------------------------------------------------------------------------------


def _async_double_of(spot: bs.Spot, runs: Runs | None = None, pause: float = 0.0) -> Any:
    @spot.mark
    async def double(x):
        if runs is not None:
            runs.enter(x)
        await asyncio.sleep(pause)
        if runs is not None:
            runs.leave()
        if x < 0:
            raise ValueError(f"negative: {x}")
        return x * 2

    return double


def test_amap_keeps_order_and_bounds_concurrency(spot: bs.Spot):
    runs = Runs()
    double = _async_double_of(spot, runs, pause=0.02)
    assert asyncio.run(double.amap(range(12), concurrency=3)) == [x * 2 for x in range(12)]
    assert runs.most_active == 3 and sorted(runs.calls) == list(range(12))


def test_amap_serves_cached_items_and_retries_with_its_own_sleep(spot: bs.Spot):
    runs = Runs()
    double = _async_double_of(spot, runs)
    asyncio.run(double(1))
    waits: list[float] = []

    async def record_wait(seconds: float) -> None:
        waits.append(seconds)

    fetch = spot.mark(_async_flaky(2))
    seen: list[Progress] = []

    async def main() -> tuple[list[Any], list[Any]]:
        first = await spot.amap(double, [1, 2, 3], progress=seen.append)
        second = await fetch.amap(
            [5], retries=2, backoff=1.0, sleep=record_wait, random=lambda: 0.5
        )
        return first, second

    assert asyncio.run(main()) == ([2, 4, 6], [50])
    assert runs.calls == [1, 2, 3] and seen[-1] == Progress(total=3, done=3, cached=1)
    assert waits == [0.5, 1.0]


def _async_flaky(failures: int) -> Any:
    body = flaky(failures)

    async def fetch(x):
        return body(x)

    return fetch


def test_amap_return_exceptions_and_the_first_failure(
    spot: bs.Spot, capsys: pytest.CaptureFixture[str]
):
    runs = Runs()
    double = _async_double_of(spot, runs, pause=0.02)
    results = asyncio.run(double.amap([1, -1, 2], return_exceptions=True))
    assert results[0] == 2 and results[2] == 4 and isinstance(results[1], ValueError)
    with pytest.raises(ValueError, match="negative: -3"):
        asyncio.run(double.amap([-3, *range(10, 30)], concurrency=2))
    assert len(runs.calls) < 3 + 21  # no new work after the failure
    assert "amap(double) stopped at a failure" in capsys.readouterr().err


def test_a_cancelled_amap_keeps_what_finished_and_says_where_it_stopped(
    spot: bs.Spot, capsys: pytest.CaptureFixture[str]
):
    runs = Runs()
    double = _async_double_of(spot, runs, pause=0.05)

    async def main() -> None:
        batch = asyncio.create_task(double.amap(range(40), concurrency=2))
        await asyncio.sleep(0.3)
        batch.cancel()
        await batch

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())
    done = [x for x in range(40) if double.is_cached(x)]
    assert 2 <= len(done) < 40
    assert set(done) < set(runs.calls)  # the two running when cancelled were not kept
    line = capsys.readouterr().err
    assert f"amap(double) interrupted: {len(done)} of 40 done" in line


def test_an_unkeyable_item_is_not_retried(spot: bs.Spot):
    attempts = []

    @spot.mark
    def length(x):
        attempts.append(x)
        return len(x)

    lock = threading.Lock()
    results = spot.map(length, ["ab", lock], retries=3, backoff=0, return_exceptions=True)
    assert results[0] == 2 and isinstance(results[1], bs.CacheKeyError)
    assert attempts == ["ab"]


def test_tuples_without_star_are_refused_before_anything_runs(spot, capsys) -> None:
    ran = []

    @spot.mark
    def two(a, b):
        ran.append((a, b))
        return a + b

    with pytest.raises(bs.ConfigurationError, match=r"star=True") as caught:
        spot.map(two, [(1, 2), (3, 4)])
    assert "two(a, b)" in str(caught.value)
    assert ran == [] and not two.is_cached(1, 2)
    assert "resume" not in capsys.readouterr().err  # no promise a re-run cannot keep
    assert spot.map(two, [(1, 2), (3, 4)], star=True) == [3, 7]


def test_one_argument_functions_still_take_tuples_whole(spot) -> None:
    @spot.mark
    def size(pair, scale=1):
        return len(pair) * scale

    assert spot.map(size, [(1, 2), (3, 4, 5)], progress=False) == [2, 3]


def test_async_tuples_without_star_are_refused(spot) -> None:
    @spot.mark
    async def two(a, b):
        return a + b

    with pytest.raises(bs.ConfigurationError, match=r"star=True"):
        asyncio.run(spot.amap(two, [(1, 2)]))
