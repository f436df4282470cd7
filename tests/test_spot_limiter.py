"""The limiter under a Spot: the seed's snippet paces calls, and only executions consume."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from tests.conftest import fake_limiter

import beautyspot as bs


def test_seed_snippet_paces_one_call_per_second(workdir: Path) -> None:
    # TPM (Tokens Per Minute) = 60 (1秒に1回)
    spot = bs.Spot("api_client", tpm=60)

    @spot.mark
    @spot.limiter(cost=1)  # 1回の実行で1トークン消費
    def call_api(request: int) -> int:
        return request * 10

    try:
        began = time.monotonic()
        assert [call_api(1), call_api(2), call_api(3)] == [10, 20, 30]
        elapsed = time.monotonic() - began
        assert 1.9 <= elapsed < 5.0  # the first call goes at once, then one a second
        assert (workdir / "api_client.db").exists()
    finally:
        spot.close()


def test_seed_snippet_without_arguments_pays_once(workdir: Path) -> None:
    spot = bs.Spot("api_client", tpm=60)

    @spot.mark
    @spot.limiter(cost=1)
    def call_api(): ...

    try:
        began = time.monotonic()
        assert [call_api(), call_api(), call_api()] == [None, None, None]
        assert time.monotonic() - began < 0.9  # two cache hits: no second-long wait
    finally:
        spot.close()


def test_cache_hits_do_not_consume(workdir: Path) -> None:
    limiter, clock = fake_limiter(tpm=60)
    spot = bs.Spot("paid", limiter=limiter)
    executed = []

    @spot.mark
    @spot.limiter(cost=5)
    def ask(prompt: str) -> str:
        executed.append(prompt)
        return prompt.upper()

    try:
        assert [ask("a"), ask("a"), ask("b"), ask("a"), ask("b")] == ["A", "A", "B", "A", "B"]
    finally:
        spot.close()
    assert executed == ["a", "b"]
    assert clock.now == 5  # "b" waited for "a"'s five tokens; the hits waited for nothing
    assert limiter.reserve(1).start == 10  # exactly two executions' worth was spent


def test_async_cache_hits_do_not_consume(workdir: Path) -> None:
    limiter, clock = fake_limiter(tpm=60)
    spot = bs.Spot("paid_async", limiter=limiter)

    @spot.mark
    @spot.consume(cost=lambda prompt: len(prompt))
    async def ask(prompt: str) -> str:
        return prompt[::-1]

    async def run() -> list[str]:
        return [await ask("abc"), await ask("abc"), await ask("de")]

    try:
        assert asyncio.run(run()) == ["cba", "cba", "ed"]
    finally:
        spot.close()
    assert clock.now == 3
    assert limiter.reserve(1).start == 5


def test_spot_with_a_limiter_instance_refuses_its_own_rate(workdir: Path) -> None:
    with pytest.raises(bs.ConfigurationError, match="drop tpm="):
        bs.Spot("api", tpm=60, limiter=bs.Limiter(tpm=60))
