"""What every limiter shares: validation, waiting (sync or async), decorator and context manager.

A limiter only decides *when* a call may start (:meth:`BaseLimiter._reserve`, one reservation
made with :func:`~beautyspot.limiter.gcra.reserve`); everything here is built on that one
decision, so threads and coroutines go through the same path and differ only in how they wait.
"""

from __future__ import annotations

import functools
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from numbers import Real
from types import TracebackType
from typing import Any, TypeVar

from beautyspot.errors import ConfigurationError
from beautyspot.limiter.gcra import Slot, emission_interval

__all__ = ["SPENT", "BaseLimiter", "Cost", "asyncio_sleep"]

F = TypeVar("F", bound=Callable[..., Any])
#: A call's cost: a number of tokens, or a callable receiving the call's (*args, **kwargs).
Cost = float | Callable[..., float]

#: Where the tokens spent in the current context are reported: a marked call puts a list here
#: while its function runs, and every acquire made meanwhile (a paced wrapper's, ``with
#: limiter:``, or a direct one; sync or async) appends its cost, so the call's record keeps
#: what computing it spent (``TaskRecord.cost``, the ``tokens_saved`` of stats).
SPENT: ContextVar[list[float] | None] = ContextVar("beautyspot_spent_tokens", default=None)


def _report_spent(cost: float) -> None:
    spent = SPENT.get()
    if spent is not None:
        spent.append(cost)


async def asyncio_sleep(seconds: float) -> None:
    """``asyncio.sleep``, with asyncio imported on first use: only async code needs it, and
    importing it is most of what ``import beautyspot`` would cost.

    >>> import asyncio
    >>> asyncio.run(asyncio_sleep(0))
    """
    import asyncio

    await asyncio.sleep(seconds)


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _checked_tpm(tpm: float) -> float:
    if not _is_number(tpm) or tpm <= 0:
        raise ConfigurationError(
            f"tpm must be a positive number of tokens per minute (e.g. tpm=60), got {tpm!r}"
        )
    return float(tpm)


def _checked_burst(burst: float | None) -> float:
    if burst is None:
        return 0.0
    if not _is_number(burst) or burst < 0:
        raise ConfigurationError(
            "burst must be a number of tokens >= 0 that may go at once after an idle spell "
            f"(None or 0: strict pacing), got {burst!r}"
        )
    return float(burst)


class BaseLimiter(ABC):
    """A GCRA limiter: ``tpm`` tokens per minute, ``burst`` tokens at once after an idle spell.

    A call may cost at most ``max(tpm, burst)`` tokens: one call above a whole minute's budget
    breaks the limit on its own, so it is a :class:`~beautyspot.errors.ConfigurationError`
    rather than a wait. Subclasses implement :meth:`_reserve`; a reservation is never refunded,
    so a waiter that is interrupted leaves its slot unused (the limit errs on the safe side).
    """

    def __init__(
        self,
        tpm: float,
        burst: float | None,
        *,
        sleep: Callable[[float], object],
        async_sleep: Callable[[float], Awaitable[object]] = asyncio_sleep,
    ) -> None:
        self._tpm = _checked_tpm(tpm)
        self._burst = _checked_burst(burst)
        self._interval = emission_interval(self._tpm)
        self._budget = max(self._tpm, self._burst)
        self._sleep = sleep
        self._async_sleep = async_sleep

    @property
    def tpm(self) -> float:
        """Tokens per minute."""
        return self._tpm

    @property
    def burst(self) -> float:
        """Tokens that may go at once after an idle spell (0: strict pacing)."""
        return self._burst

    @abstractmethod
    def _reserve(self, cost: float) -> Slot:
        """Reserve ``cost`` (already checked) tokens atomically and return the slot."""

    async def _reserve_async(self, cost: float) -> Slot:
        # Overridden where reserving does I/O; an in-memory reservation takes microseconds.
        return self._reserve(cost)

    def reserve(self, cost: float = 1) -> Slot:
        """Reserve ``cost`` tokens now and return the :class:`Slot`, without waiting for it.

        For schedulers of their own; most code calls :meth:`acquire`.

        >>> from beautyspot.limiter import Limiter
        >>> limiter = Limiter(tpm=60)
        >>> first, second = limiter.reserve(), limiter.reserve()
        >>> round(second.start - first.start, 3)
        1.0
        """
        return self._reserve(self._checked_cost(cost))

    def acquire(self, cost: float = 1) -> None:
        """Block the calling thread until ``cost`` tokens may be spent, then spend them."""
        wait = self.reserve(cost).wait
        _report_spent(cost)  # reserved: spent, even if the wait is interrupted
        if wait > 0:
            self._sleep(wait)

    async def acquire_async(self, cost: float = 1) -> None:
        """Await until ``cost`` tokens may be spent, then spend them; the event loop runs on."""
        wait = (await self._reserve_async(self._checked_cost(cost))).wait
        _report_spent(cost)
        if wait > 0:
            await self._async_sleep(wait)

    def __call__(self, func: F | None = None, /, *, cost: Cost = 1) -> Any:
        """Decorate a function (sync or ``async def``) so each call first acquires its cost.

        ``@limiter`` costs 1 a call, ``@limiter(cost=5)`` 5, and ``@limiter(cost=fn)`` whatever
        ``fn(*args, **kwargs)`` returns for the call's own arguments.

        >>> from beautyspot.limiter import Limiter
        >>> limiter = Limiter(tpm=6000, burst=100)
        >>> @limiter(cost=lambda prompt: len(prompt.split()))
        ... def ask(prompt):
        ...     return prompt.upper()
        >>> ask("three word prompt")
        'THREE WORD PROMPT'
        """
        if not callable(cost):
            self._checked_cost(cost)
        if func is None:
            return functools.partial(self._decorate, cost=cost)
        return self._decorate(func, cost=cost)

    def _decorate(self, func: F, *, cost: Cost) -> F:
        if not callable(func):
            raise TypeError(
                f"a limiter decorates a function, got {func!r}; pass the cost by keyword: "
                "@limiter(cost=5)"
            )
        marked = getattr(func, "_marked_call", None)
        if marked is not None:
            # Above @spot.mark, pace what the marked function computes, not the call: hits
            # stay free whichever order the decorators are written in.
            return marked.repaced(self._decorate(marked.func, cost=cost))  # type: ignore[no-any-return]
        cost_of = cost if callable(cost) else lambda *_args, **_kwargs: cost
        # The wrapper is of the same kind as the function (callers and @spot.mark tell
        # coroutines and streams by it); an async one awaits its turn, never blocking the loop.
        paced: Any
        if inspect.iscoroutinefunction(func):

            async def paced(*args: Any, **kwargs: Any) -> Any:
                await self.acquire_async(cost_of(*args, **kwargs))
                return await func(*args, **kwargs)

        elif inspect.isasyncgenfunction(func):

            async def paced(*args: Any, **kwargs: Any) -> Any:
                await self.acquire_async(cost_of(*args, **kwargs))
                async for item in func(*args, **kwargs):
                    yield item

        elif inspect.isgeneratorfunction(func):

            def paced(*args: Any, **kwargs: Any) -> Any:
                self.acquire(cost_of(*args, **kwargs))
                return (yield from func(*args, **kwargs))

        else:

            def paced(*args: Any, **kwargs: Any) -> Any:
                self.acquire(cost_of(*args, **kwargs))
                return func(*args, **kwargs)

        functools.update_wrapper(paced, func)
        paced.__beautyspot_transparent__ = True
        return paced  # type: ignore[no-any-return]

    def __enter__(self) -> BaseLimiter:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def __aenter__(self) -> BaseLimiter:
        await self.acquire_async()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def _checked_cost(self, cost: object) -> float:
        if not _is_number(cost) or cost <= 0:  # type: ignore[operator]
            raise ConfigurationError(
                f"cost must be a positive number of tokens (or a callable returning one), "
                f"got {cost!r}"
            )
        if cost > self._budget:  # type: ignore[operator]
            raise ConfigurationError(
                f"cost={cost!r} is more than this limiter's whole budget "
                f"(tpm={self._tpm:g}, burst={self._burst:g}): one call may spend at most "
                f"max(tpm, burst) = {self._budget:g} tokens; raise tpm= or burst=, or split "
                "the call"
            )
        return cost  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tpm={self._tpm:g}, burst={self._burst:g})"

    def __beautyspot_key__(self) -> None:
        """A limiter decides when a call runs, never what it returns: a function paced by it
        (``@spot.mark`` over ``@spot.limiter``) keeps the keys it has unpaced."""
        return None
