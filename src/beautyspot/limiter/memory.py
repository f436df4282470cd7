"""The in-process limiter: GCRA state in memory, shared by every thread and coroutine."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from beautyspot.limiter import gcra
from beautyspot.limiter.base import BaseLimiter, asyncio_sleep

__all__ = ["Limiter"]


class Limiter(BaseLimiter):
    """Pace calls in this process to ``tpm`` tokens per minute (GCRA).

    :param tpm: tokens per minute, ``> 0``.
    :param burst: tokens that may go at once after an idle spell; ``None`` (or 0) is strict
        pacing: a call starts only once everything reserved before it has drained.
    :param clock: seconds, monotonic; inject a fake one in tests.
    :param sleep: how a thread waits; inject one that advances a fake clock in tests.
    :param async_sleep: how a coroutine waits.

    Thread-safe and fair: each call reserves its start time under a lock, so waiters start in
    the order they arrived and a large call is never overtaken by smaller ones. Use it as a
    decorator (``@limiter``, ``@limiter(cost=...)``), as ``with limiter:`` / ``async with
    limiter:`` (cost 1), or call :meth:`acquire` / :meth:`acquire_async` yourself. The budget
    lives in this process: worker processes that share one budget need a
    :class:`~beautyspot.limiter.RedisLimiter`.

    >>> limiter = Limiter(tpm=6000)            # one token every 10 ms
    >>> @limiter
    ... def call_api(x):
    ...     return x * 2
    >>> [call_api(i) for i in range(3)]
    [0, 2, 4]
    >>> with limiter:
    ...     pass
    >>> limiter
    Limiter(tpm=6000, burst=0)
    """

    def __init__(
        self,
        tpm: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        async_sleep: Callable[[float], Awaitable[object]] = asyncio_sleep,
    ) -> None:
        super().__init__(tpm, burst, sleep=sleep, async_sleep=async_sleep)
        self._config = (tpm, burst, clock, sleep, async_sleep)
        self._clock = clock
        self._lock = threading.Lock()
        self._tat = -math.inf

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles by configuration: each process that unpickles it gets a fresh budget of its
        own (share one budget across processes with a RedisLimiter)."""
        tpm, burst, clock, sleep, async_sleep = self._config
        return (_rebuild, (tpm, burst, clock, sleep, async_sleep))

    def _reserve(self, cost: float) -> gcra.Slot:
        # The clock is read under the lock so reservations see time moving forward in order.
        with self._lock:
            slot = gcra.reserve(self._tat, self._clock(), cost, self._interval, self._burst)
            self._tat = slot.tat
        return slot


def _rebuild(
    tpm: float,
    burst: float | None,
    clock: Callable[[], float],
    sleep: Callable[[float], object],
    async_sleep: Callable[[float], Awaitable[object]],
) -> Limiter:
    return Limiter(tpm, burst, clock=clock, sleep=sleep, async_sleep=async_sleep)
