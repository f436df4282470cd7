"""The Redis limiter against a real server: same schedule as the Python reference, one budget."""

from __future__ import annotations

import asyncio
import itertools
import math
import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import service_unavailable

from beautyspot.errors import ConfigurationError
from beautyspot.limiter import RedisLimiter, gcra

REDIS_URL = os.environ.get("BEAUTYSPOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_unavailable(
            f"Redis not reachable at {REDIS_URL} ({exc}); set BEAUTYSPOT_TEST_REDIS_URL"
        )
    yield client
    client.close()


@pytest.fixture
def key(client: Any) -> Iterator[str]:
    name = f"beautyspot:test:limiter:{uuid.uuid4().hex}"
    yield name
    client.delete(name)


@pytest.mark.parametrize(
    ("tpm", "burst", "costs"),
    [
        (60, None, [1, 1, 1, 1]),
        (7, 2.5, [1, 2, 0.5, 3, 1]),
        (90_000, 1000, [250, 999, 1, 1000, 17, 400]),
    ],
)
def test_lua_script_matches_the_python_reference(
    client: Any, key: str, tpm: float, burst: float | None, costs: list[float]
) -> None:
    limiter = RedisLimiter(client, tpm, burst, key=key)
    tat = -math.inf
    for cost in costs:
        slot = limiter.reserve(cost)
        expected = gcra.reserve(tat, slot.now, cost, gcra.emission_interval(tpm), burst or 0)
        assert slot == expected
        tat = expected.tat


def test_times_come_from_the_server_clock(
    client: Any, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = RedisLimiter(client, tpm=60, key=key)
    skewed = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: skewed)  # this host's clock is an hour off
    before = float(client.time()[0])
    slot = limiter.reserve()
    after = float(client.time()[0]) + 1
    assert before <= slot.now <= after


def test_limiters_on_one_key_share_one_schedule(client: Any, key: str) -> None:
    hosts = [RedisLimiter(REDIS_URL, tpm=60, key=key), RedisLimiter(client, tpm=60, key=key)]
    starts = [hosts[i % 2].reserve().start for i in range(6)]
    assert [later - starts[0] for later in starts] == pytest.approx(range(6), abs=1e-6)


def test_key_expires_once_the_bucket_drains(client: Any, key: str) -> None:
    RedisLimiter(client, tpm=60_000, key=key).reserve(5)  # drains in 5 ms
    assert 0 < client.pttl(key) <= 6  # 5 ms, rounded up to the next millisecond
    time.sleep(0.05)
    assert client.exists(key) == 0


def test_real_time_pacing_sync_and_async(client: Any, key: str) -> None:
    limiter = RedisLimiter(client, tpm=1200, key=key)  # 50 ms a token

    @limiter(cost=2)
    def work() -> None:
        pass

    async def run() -> int:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        for _ in range(3):
            await limiter.acquire_async()
        done.set()
        await task
        return ticks

    began = time.monotonic()
    work()
    work()  # waits 100 ms for the first call's two tokens
    ticks = asyncio.run(run())  # waits 100 + 50 + 50 ms
    elapsed = time.monotonic() - began
    assert 0.29 <= elapsed < 2.0
    assert ticks >= 5


def _hammer(url: str, key: str, go: Any, seconds: float, out: Any) -> None:
    """Acquire in a loop for ``seconds`` and report every slot the server handed out."""
    limiter = RedisLimiter(url, tpm=1200, burst=0, key=key)
    slots: list[gcra.Slot] = []
    reserve = limiter.reserve

    def recording(cost: float = 1) -> gcra.Slot:
        slot = reserve(cost)
        slots.append(slot)
        return slot

    limiter.reserve = recording  # type: ignore[method-assign]
    go.wait()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        limiter.acquire()
    out.put([slot.start for slot in slots])


def test_four_processes_share_one_budget(
    client: Any, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rate, seconds = 20.0, 2.0  # tpm=1200
    # Spawned children find _hammer by importing this module, as tests.test_limiter_redis.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    context = multiprocessing.get_context("spawn")
    go, out = context.Event(), context.Queue()
    workers = [
        context.Process(target=_hammer, args=(REDIS_URL, key, go, seconds, out)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.2)
    began = time.monotonic()
    go.set()
    starts = sorted(start for _ in workers for start in out.get(timeout=30))
    elapsed = time.monotonic() - began
    for worker in workers:
        worker.join(10)
        assert worker.exitcode == 0

    assert len(starts) <= elapsed * rate + 1
    assert len(starts) >= 0.8 * seconds * rate
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= 1 / rate - 1e-6  # strict pacing on the server's own timeline
    busiest = max(
        sum(1 for other in starts[i:] if other < start + 1.0 - 1e-6)
        for i, start in enumerate(starts)
    )
    assert busiest <= rate


def test_bad_client_or_key_is_named() -> None:
    with pytest.raises(ConfigurationError, match="url_or_client"):
        RedisLimiter("http://127.0.0.1:6379", tpm=60)
    with pytest.raises(ConfigurationError, match="url_or_client"):
        RedisLimiter(42, tpm=60)
    with pytest.raises(ConfigurationError, match="key"):
        RedisLimiter(REDIS_URL, tpm=60, key="")


def test_a_dead_server_is_a_storage_error_naming_host_and_port_not_the_password(
    tmp_path: Any,
) -> None:
    import socket
    import time

    import beautyspot as bs

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"redis://:s3cret-pw@127.0.0.1:{port}/0"
    spot = bs.Spot("dead", db=tmp_path / "dead.db", tpm=600, limiter=url)

    @spot.mark
    @spot.limiter(cost=1)
    def ask(x: int) -> int:
        return x

    started = time.monotonic()
    with pytest.raises(bs.StorageError) as caught:
        ask(1)
    assert time.monotonic() - started < 10
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "s3cret" not in str(caught.value) and caught.value.__cause__ is None
