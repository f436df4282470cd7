"""The in-process GCRA limiter: exact schedules on an injected clock, threads, async, decorator."""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import FakeClock, fake_limiter

from beautyspot.errors import ConfigurationError
from beautyspot.limiter import Limiter, RedisLimiter, gcra, limiter_from


def starts(limiter: Limiter, clock: FakeClock, costs: list[float]) -> list[float]:
    """When each call, made back to back, was let through."""
    times = []
    for cost in costs:
        limiter.acquire(cost)
        times.append(clock.now)
    return times


# --- the schedule on an injected clock -------------------------------------------------------


def test_strict_pacing_spaces_unit_calls_one_interval_apart() -> None:
    limiter, clock = fake_limiter(tpm=60)
    assert starts(limiter, clock, [1, 1, 1, 1]) == [0, 1, 2, 3]


def test_cost_k_takes_k_intervals() -> None:
    limiter, clock = fake_limiter(tpm=120)
    assert starts(limiter, clock, [3, 3, 3]) == [0, 1.5, 3.0]


def test_burst_goes_at_once_then_paces() -> None:
    limiter, clock = fake_limiter(tpm=60, burst=3)
    assert starts(limiter, clock, [1] * 6) == [0, 0, 0, 1, 2, 3]


def test_long_idle_refills_burst_and_no_more() -> None:
    limiter, clock = fake_limiter(tpm=60, burst=2)
    assert starts(limiter, clock, [1, 1, 1]) == [0, 0, 1]
    clock.now = 100.0
    assert starts(limiter, clock, [1, 1, 1]) == [100, 100, 101]


def test_short_idle_refills_partly() -> None:
    limiter, clock = fake_limiter(tpm=60, burst=3)
    assert starts(limiter, clock, [1, 1, 1]) == [0, 0, 0]
    clock.now = 2.0  # two of the three tokens have drained
    assert starts(limiter, clock, [1, 1, 1]) == [2, 2, 3]


def test_mixed_costs_strict() -> None:
    limiter, clock = fake_limiter(tpm=60)
    assert starts(limiter, clock, [2, 1, 3, 1]) == [0, 2, 3, 6]


def test_mixed_costs_with_burst() -> None:
    limiter, clock = fake_limiter(tpm=60, burst=4)
    assert starts(limiter, clock, [3, 2, 1]) == [0, 1, 2]


def test_call_larger_than_burst_goes_alone_once_the_bucket_is_empty() -> None:
    limiter, clock = fake_limiter(tpm=60, burst=2)
    assert starts(limiter, clock, [5, 1, 1]) == [0, 4, 5]


def test_float_rate_and_cost() -> None:
    limiter, clock = fake_limiter(tpm=90)  # 2/3 s per token
    assert starts(limiter, clock, [1.5, 1.5, 1.5]) == pytest.approx([0, 1, 2])


def test_default_burst_is_strict_pacing() -> None:
    assert Limiter(tpm=60).burst == 0
    limiter, clock = fake_limiter(tpm=60, burst=None)
    assert starts(limiter, clock, [1, 1]) == [0, 1]


@given(
    tpm=st.sampled_from([7.0, 60.0, 600.0, 90_000.0]),
    burst=st.sampled_from([None, 1.0, 2.5, 10.0]),
    calls=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=5),  # idle gap before the call, in seconds
            st.floats(min_value=0.01, max_value=1),  # share of the budget
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_schedule_never_exceeds_rate_plus_capacity(
    tpm: float, burst: float | None, calls: list[tuple[float, float]]
) -> None:
    limiter, clock = fake_limiter(tpm, burst)
    interval = 60 / tpm
    budget = max(tpm, burst or 0)
    made: list[tuple[float, float, float]] = []  # (arrival, start, cost)
    for gap, share in calls:
        clock.now += gap
        arrival, cost = clock.now, share * budget
        limiter.acquire(cost)
        made.append((arrival, clock.now, cost))
    for i, (arrival, start, cost) in enumerate(made):
        assert start >= arrival
        if i:
            assert start >= made[i - 1][1]  # first come, first served
        spent = 0.0
        for _, earlier_start, earlier_cost in reversed(made[: i + 1]):
            spent += earlier_cost
            capacity = max(burst or 0, cost)
            assert spent <= (start - earlier_start) / interval + capacity + 1e-6


def test_async_and_sync_share_one_schedule() -> None:
    costs = [2, 1, 3, 1, 1]
    sync_limiter, sync_clock = fake_limiter(tpm=60, burst=2)
    async_limiter, async_clock = fake_limiter(tpm=60, burst=2)

    async def run() -> list[float]:
        times = []
        for cost in costs:
            await async_limiter.acquire_async(cost)
            times.append(async_clock.now)
        return times

    assert asyncio.run(run()) == starts(sync_limiter, sync_clock, costs)


def test_reserve_hands_out_slots_without_waiting() -> None:
    limiter, clock = fake_limiter(tpm=60)
    assert limiter.reserve(2) == gcra.Slot(now=0, start=0, tat=2)
    assert limiter.reserve(1) == gcra.Slot(now=0, start=2, tat=3)
    assert clock.now == 0


# --- threads --------------------------------------------------------------------------------


def test_threads_never_share_a_slot() -> None:
    limiter, _ = fake_limiter(tpm=60)  # the clock stands still: every slot is a distinct second
    slots: list[float] = []
    # Switch threads as often as possible, so an unguarded read-modify-write would show.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    def worker() -> None:
        for _ in range(500):
            slots.append(limiter.reserve(1).start)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    assert sorted(slots) == [float(i) for i in range(4000)]


def test_waiters_are_served_in_arrival_order_even_when_larger() -> None:
    arrived: dict[str, threading.Event] = {}
    served: list[str] = []

    def sleep(seconds: float) -> None:
        arrived[threading.current_thread().name].set()  # reserved, about to wait
        time.sleep(seconds)

    limiter = Limiter(tpm=1200, sleep=sleep)  # 50 ms a token
    limiter.acquire()  # every thread below has to wait

    def worker(cost: int) -> None:
        limiter.acquire(cost)
        served.append(threading.current_thread().name)

    costs = {"a": 3, "b": 1, "c": 2, "d": 1, "e": 1}
    threads = []
    for name, cost in costs.items():
        arrived[name] = threading.Event()
        thread = threading.Thread(target=worker, args=(cost,), name=name)
        thread.start()
        assert arrived[name].wait(5), f"thread {name} never reserved"
        threads.append(thread)
    for thread in threads:
        thread.join(5)
    assert served == list(costs)


# --- real time ------------------------------------------------------------------------------


def test_real_time_pacing() -> None:
    limiter = Limiter(tpm=600)  # 0.1 s a token
    began = time.monotonic()
    for _ in range(4):
        limiter.acquire()
    elapsed = time.monotonic() - began
    assert 0.29 <= elapsed < 1.5


def test_async_waits_without_blocking_the_loop() -> None:
    limiter = Limiter(tpm=600)

    async def run() -> tuple[float, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        began = time.monotonic()
        for _ in range(4):
            await limiter.acquire_async()
        elapsed = time.monotonic() - began
        done.set()
        await task
        return elapsed, ticks

    elapsed, ticks = asyncio.run(run())
    assert elapsed >= 0.29
    assert ticks >= 10  # ~30 if the loop ran freely; a blocking sleep would leave it at 1


# --- decorator and context manager ----------------------------------------------------------


def test_bare_decorator_costs_one_and_keeps_the_function() -> None:
    limiter, clock = fake_limiter(tpm=60)

    @limiter
    def double(x: int) -> int:
        """Double x."""
        return x * 2

    assert [double(1), double(2)] == [2, 4]
    assert clock.now == 1
    assert double.__name__ == "double"
    assert double.__doc__ == "Double x."
    assert inspect.signature(double) == inspect.signature(double.__wrapped__)


def test_decorator_with_fixed_cost() -> None:
    limiter, clock = fake_limiter(tpm=60)

    @limiter(cost=3)
    def call() -> str:
        return "ok"

    call()
    call()
    assert clock.now == 3


def test_cost_callable_receives_exactly_the_calls_arguments() -> None:
    limiter, clock = fake_limiter(tpm=60)
    seen = []

    def tokens(*args: object, **kwargs: object) -> int:
        seen.append((args, kwargs))
        return len(str(args[0]).split())

    @limiter(cost=tokens)
    def ask(prompt: str, *, model: str = "small") -> str:
        return prompt

    ask("four words go here", model="big")
    ask("two words")
    assert seen == [(("four words go here",), {"model": "big"}), (("two words",), {})]
    assert clock.now == 4


def test_async_function_stays_async_and_is_paced() -> None:
    limiter, clock = fake_limiter(tpm=60)

    @limiter(cost=2)
    async def fetch(x: int) -> int:
        return x + 1

    assert inspect.iscoroutinefunction(fetch)

    async def run() -> list[int]:
        return [await fetch(1), await fetch(2)]

    assert asyncio.run(run()) == [2, 3]
    assert clock.now == 2


def test_context_managers_acquire_one_token() -> None:
    limiter, clock = fake_limiter(tpm=60)
    with limiter as entered:
        assert entered is limiter
    with limiter:
        pass

    async def run() -> None:
        async with limiter:
            pass

    asyncio.run(run())
    assert clock.now == 2


def test_decorator_rejects_a_positional_cost() -> None:
    limiter = Limiter(tpm=60)
    with pytest.raises(TypeError, match="cost="):
        limiter(5)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("tpm", [0, -1, math.nan, math.inf, True, "60", None])
def test_bad_tpm_is_named(tpm: object) -> None:
    with pytest.raises(ConfigurationError, match="tpm"):
        Limiter(tpm)  # type: ignore[arg-type]


@pytest.mark.parametrize("burst", [-1, math.nan, math.inf, True, "2"])
def test_bad_burst_is_named(burst: object) -> None:
    with pytest.raises(ConfigurationError, match="burst"):
        Limiter(60, burst)  # type: ignore[arg-type]


@pytest.mark.parametrize("cost", [0, -1, math.nan, True, "1", None])
def test_bad_cost_is_named(cost: object) -> None:
    limiter = Limiter(tpm=60)
    with pytest.raises(ConfigurationError, match="cost"):
        limiter.acquire(cost)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="cost"):
        limiter(cost=cost)


def test_cost_above_the_whole_budget_is_an_error_not_a_wait() -> None:
    strict, _ = fake_limiter(tpm=100)
    strict.acquire(100)
    with pytest.raises(ConfigurationError, match=r"cost=101 .*at most max\(tpm, burst\) = 100"):
        strict.acquire(101)
    bursty, _ = fake_limiter(tpm=100, burst=150)
    bursty.acquire(150)
    with pytest.raises(ConfigurationError, match="cost=151"):
        bursty.acquire(151)


def test_bad_cost_from_a_callable_fails_the_call() -> None:
    limiter = Limiter(tpm=60)

    @limiter(cost=lambda n: n)
    def work(n: int) -> int:
        return n

    assert work(1) == 1
    with pytest.raises(ConfigurationError, match="cost=61"):
        work(61)


def test_decorator_checks_a_fixed_cost_when_decorating() -> None:
    with pytest.raises(ConfigurationError, match="cost=61"):
        Limiter(tpm=60)(cost=61)


# --- limiter_from: what Spot(..., tpm=, burst=, limiter=) builds -----------------------------


def test_limiter_from_nothing_is_no_limiter() -> None:
    assert limiter_from(None, tpm=None, burst=None, name="api") is None


def test_limiter_from_tpm_is_in_process() -> None:
    limiter = limiter_from(None, tpm=90_000, burst=500, name="api")
    assert isinstance(limiter, Limiter)
    assert (limiter.tpm, limiter.burst) == (90_000, 500)


def test_limiter_from_instance_is_itself() -> None:
    limiter = Limiter(tpm=60)
    assert limiter_from(limiter, tpm=None, burst=None, name="api") is limiter


@pytest.mark.parametrize(("tpm", "burst", "drop"), [(60, None, "tpm="), (None, 5, "burst=")])
def test_limiter_from_instance_with_a_rate_says_what_to_drop(
    tpm: float | None, burst: float | None, drop: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"drop {drop}"):
        limiter_from(Limiter(tpm=60), tpm=tpm, burst=burst, name="api")


def test_limiter_from_redis_url_keys_the_budget_by_name() -> None:
    limiter = limiter_from("redis://127.0.0.1:6379/0", tpm=60, burst=None, name="api_client")
    assert isinstance(limiter, RedisLimiter)
    assert "key='beautyspot:limiter:api_client'" in repr(limiter)


def test_limiter_from_redis_url_needs_tpm() -> None:
    with pytest.raises(ConfigurationError, match="tpm="):
        limiter_from("redis://127.0.0.1:6379/0", tpm=None, burst=None, name="api")


def test_limiter_from_burst_alone_needs_tpm() -> None:
    with pytest.raises(ConfigurationError, match="tpm="):
        limiter_from(None, tpm=None, burst=5, name="api")


@pytest.mark.parametrize("spec", ["sqlite:///x.db", 42, object()])
def test_limiter_from_anything_else_names_limiter(spec: object) -> None:
    with pytest.raises(ConfigurationError, match="limiter="):
        limiter_from(spec, tpm=60, burst=None, name="api")


def test_limiter_from_checks_the_rate() -> None:
    with pytest.raises(ConfigurationError, match="tpm"):
        limiter_from(None, tpm=-5, burst=None, name="api")
    with pytest.raises(ConfigurationError, match="burst"):
        limiter_from(None, tpm=60, burst=-1, name="api")


def test_importing_the_limiter_does_not_import_redis() -> None:
    code = "import sys, beautyspot.limiter; sys.exit('redis' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode == 0


@pytest.mark.parametrize(
    "module", ["beautyspot.limiter.base", "beautyspot.limiter.memory", "beautyspot.batch"]
)
def test_modules_used_by_sync_code_import_without_asyncio(module: str) -> None:
    # Importing asyncio is most of what `import beautyspot` costs; only async paths need it.
    # The package __init__ files (which import every module) are stubbed, to look at one alone.
    package = Path(inspect.getfile(Limiter)).parents[1]
    stubs = {"beautyspot": str(package), "beautyspot.limiter": str(package / "limiter")}
    code = f"""
import sys, types
for name, path in {stubs!r}.items():
    sys.modules[name] = types.ModuleType(name)
    sys.modules[name].__path__ = [path]
import {module}
sys.exit("asyncio" in sys.modules)
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode == 0


def test_a_paced_function_keeps_its_kind_and_streams_pay_before_their_first_item() -> None:
    limiter, clock = fake_limiter(tpm=60)

    @limiter(cost=2)
    def tokens(n: int) -> Iterator[int]:
        yield from range(n)

    @limiter(cost=3)
    async def async_tokens(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    @limiter(cost=1)
    async def one() -> int:
        return 1

    assert inspect.isgeneratorfunction(tokens) and inspect.isasyncgenfunction(async_tokens)
    assert inspect.iscoroutinefunction(one)
    stream = tokens(3)
    assert clock.now == 0  # nothing is spent until the stream is read
    assert list(stream) == [0, 1, 2]

    async def read() -> list[int]:
        return [item async for item in async_tokens(2)] + [await one()]

    assert asyncio.run(read()) == [0, 1, 1]
    assert clock.now == 5  # each waited its turn: 2 tokens, then 3, then the coroutine's 1
    assert limiter.reserve(1).start == 6
