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


# -- decorator order and the unpaced warning (issue 13, trap 2) -----------------------------


@pytest.mark.parametrize("limiter_above", [False, True], ids=["limiter-below", "limiter-above"])
def test_decorator_order_does_not_matter_hits_are_free(workdir: Path, limiter_above: bool) -> None:
    limiter, clock = fake_limiter(tpm=60)
    spot = bs.Spot("paid", limiter=limiter)
    executed = []

    def ask(prompt: str) -> str:
        executed.append(prompt)
        return prompt.upper()

    if limiter_above:
        ask = spot.limiter(cost=5)(spot.mark(ask))
    else:
        ask = spot.mark(spot.limiter(cost=5)(ask))
    try:
        assert [ask("a"), ask("a"), ask("b"), ask("a"), ask("b")] == ["A", "A", "B", "A", "B"]
        assert ask.is_cached("a") and ask.cache_key("a")  # the helpers are still there
        assert spot.map(ask, ["a", "b", "c"], progress=False) == ["A", "B", "C"]
    finally:
        spot.close()
    assert executed == ["a", "b", "c"]
    assert clock.now == 10  # three executions of five tokens; not one hit paid
    assert limiter.reserve(1).start == 15


def test_limiter_above_mark_keeps_the_keys_and_records_the_cost(workdir: Path) -> None:
    limiter, _ = fake_limiter(tpm=600)
    spot = bs.Spot("paid", limiter=limiter)

    @spot.mark(version="v1")
    def plain(x: int) -> int:
        return x

    paced = spot.limiter(cost=3)(plain)
    try:
        assert paced.cache_key(1) == plain.cache_key(1)  # pacing never changes what is stored
        assert paced(1) == 1 and plain.is_cached(1)
        (record,) = spot.db.get_history(limit=10)
        assert record["cost"] == 3
    finally:
        spot.close()


@pytest.mark.parametrize("how", ["direct", "map"])
def test_a_rated_spot_warns_once_when_a_miss_spends_no_tokens(workdir: Path, how: str) -> None:
    limiter, clock = fake_limiter(tpm=60)
    spot = bs.Spot("api", limiter=limiter)

    @spot.mark
    def unpaced(x: int) -> int:
        return x

    try:
        with pytest.warns(bs.BeautyspotWarning, match=r"spot\.limiter\(cost=") as caught:
            if how == "direct":
                assert [unpaced(1), unpaced(2), unpaced(1)] == [1, 2, 1]
            else:
                assert spot.map(unpaced, [1, 2, 3], progress=False) == [1, 2, 3]
        assert len([w for w in caught if "paces nothing" in str(w.message)]) == 1
        assert "'api'" in str(caught[0].message) and "paced=False" in str(caught[0].message)
    finally:
        spot.close()
    assert clock.now == 0  # and tpm= alone paced nothing, as the warning says


def test_paced_functions_and_paced_false_do_not_warn(workdir: Path) -> None:
    import warnings

    limiter, _ = fake_limiter(tpm=600)
    spot = bs.Spot("api", limiter=limiter)

    @spot.mark(paced=False)
    def local_parse(x: int) -> int:
        return x

    @spot.mark
    def paced_inside(x: int) -> int:
        with limiter:  # a function may pace itself: what counts is that the miss paid
            return x

    @spot.mark
    @spot.limiter(cost=2)
    def paced_by_decorator(x: int) -> int:
        return x

    unrated = bs.Spot("local", db=workdir / "local.db")

    @unrated.mark
    def no_rate(x: int) -> int:
        return x

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert [local_parse(1), paced_inside(1), paced_by_decorator(1), no_rate(1)] == [1] * 4
    finally:
        spot.close()
        unrated.close()


def test_paced_must_be_a_bool(workdir: Path) -> None:
    spot = bs.Spot("api", tpm=60)
    try:
        with pytest.raises(bs.ConfigurationError, match="paced='no'"):
            spot.mark(paced="no")  # type: ignore[call-overload]
    finally:
        spot.close()


# -- one exception family for configuration (issue 13, trap 6) -----------------------------


def test_a_missing_redis_library_for_limiter_is_a_configuration_error(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "redis", None)  # as if beautyspot[redis] were not installed
    monkeypatch.delitem(sys.modules, "beautyspot.db.redis", raising=False)  # imported afresh
    for spec in ({"limiter": "redis://:s3cret@127.0.0.1:6379/0"}, {"db": "redis://127.0.0.1/0"}):
        with pytest.raises(
            bs.ConfigurationError, match=r'pip install "beautyspot\[redis\]"'
        ) as err:
            bs.Spot("api", tpm=60, **spec)
        assert "s3cret" not in str(err.value)
    assert not list(workdir.iterdir())  # a refused Spot leaves nothing behind
