"""The task driver: :func:`amap` carries out a batch's plan with event-loop tasks.

asyncio is imported where it is used: it is most of what ``import beautyspot`` would cost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import FIRST_COMPLETED
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from beautyspot.batch.plan import (
    LOOKUP,
    START,
    WAIT,
    Attempted,
    Call,
    Steps,
    captured,
    check_marked,
    new_batch,
    positive,
)
from beautyspot.batch.progress import Progressor
from beautyspot.batch.retries import RetryPolicy, retry_policy

if TYPE_CHECKING:
    import asyncio

__all__ = ["amap"]


async def _attempt_async(
    fn: Callable[..., Awaitable[Any]],
    call: Call,
    policy: RetryPolicy,
    pause: Callable[[float], Awaitable[bool]],
) -> Attempted:
    """One item with its retries, as a task runs it; the twin of :meth:`.threads._Job.__call__`."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return Attempted(True, await fn(*call.args, **call.kwargs), attempt)
        except Exception as exc:
            delay = policy.delay_after(exc, attempt)
            if delay is None or not await pause(delay):
                return Attempted(False, exc, attempt)


class _Tasks:
    """Carries out a plan with event-loop tasks; lookups run in a worker thread so a remote
    TaskDB never stalls the loop."""

    def __init__(
        self,
        fn: Callable[..., Awaitable[Any]],
        calls: list[Call],
        policy: RetryPolicy,
        sleep: Callable[[float], Awaitable[object]] | None,
    ) -> None:
        import asyncio

        self.fn, self.calls, self.policy, self.sleep = fn, calls, policy, sleep
        self.stop = asyncio.Event()
        self.started: dict[asyncio.Task[Attempted], int] = {}
        self.pending: set[asyncio.Task[Attempted]] = set()

    async def carry_out(self, plan: Steps) -> None:
        reply: Any = None
        while True:
            try:
                kind, index = plan.send(reply)
            except StopIteration:
                return
            reply = await self._step(kind, index)

    async def _step(self, kind: str, index: int) -> Any:
        import asyncio

        if kind == LOOKUP:
            lookup = self.fn._marked_call.cached_result  # type: ignore[attr-defined]
            return await asyncio.to_thread(captured, lookup, self.calls[index])
        if kind == START:
            job = _attempt_async(self.fn, self.calls[index], self.policy, self._pause)
            task = asyncio.create_task(job)
            self.started[task] = index
            self.pending.add(task)
            return None
        if kind == WAIT:
            finished, self.pending = await asyncio.wait(self.pending, return_when=FIRST_COMPLETED)
            return [(self.started[task], task.result()) for task in finished]
        self.stop.set()
        return None

    async def _pause(self, seconds: float) -> bool:
        """Wait before a retry; False when the batch stopped meanwhile (don't retry)."""
        import asyncio

        if self.sleep is None:
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), seconds)
        else:
            await self.sleep(seconds)
        return not self.stop.is_set()

    async def cancel(self) -> list[tuple[int, Attempted | None]]:
        """Cancel the running items; every finished one."""
        import asyncio

        for task in self.pending:
            task.cancel()
        await asyncio.gather(*self.pending, return_exceptions=True)
        return [(i, None if t.cancelled() else t.result()) for t, i in self.started.items()]


async def amap(
    fn: Callable[..., Awaitable[Any]],
    items: Iterable[Any],
    /,
    *,
    concurrency: int = 8,
    progress: bool | Progressor | None = None,
    retries: int = 0,
    retry_on: type[Exception] | tuple[type[Exception], ...] = (Exception,),
    backoff: float | Callable[[int], float] = 1.0,
    return_exceptions: bool = False,
    star: bool = False,
    sleep: Callable[[float], Awaitable[object]] | None = None,
    random: Callable[[], float] | None = None,
) -> list[Any]:
    """The async twin of :func:`map` for an ``async def`` marked function; same options.

    Also ``await spot.amap(fn, items, ...)`` and ``await fn.amap(items, ...)``. At most
    ``concurrency`` items run at once, as tasks on the running loop; the limiter under ``fn``
    is awaited, never blocking the loop. Cancelling the batch (Ctrl-C under
    ``asyncio.run``) cancels its running items, keeps everything finished, and says on
    stderr how many are done. ``sleep`` is awaited before a retry (for tests).

    >>> import asyncio, tempfile, beautyspot as bs
    >>> spot = bs.Spot("abatch", db=tempfile.mkdtemp() + "/abatch.db")
    >>> @spot.mark
    ... async def square(x):
    ...     return x * x
    >>> asyncio.run(spot.amap(square, [1, 2, 3], concurrency=2))
    [1, 4, 9]
    """
    import asyncio

    check_marked(fn, asynchronous=True)
    window = positive(concurrency, "concurrency")
    policy = retry_policy(retries, retry_on, backoff, random)
    batch = new_batch(
        "amap", fn, items, window, star=star, progress=progress,
        return_exceptions=return_exceptions, policy=policy,
    )  # fmt: skip
    if batch is None:
        return []
    tasks = _Tasks(fn, batch.calls, policy, sleep)
    try:
        await tasks.carry_out(batch.plan())
        return batch.outcome()
    except (asyncio.CancelledError, KeyboardInterrupt):
        batch.record_all(await tasks.cancel())
        batch.interrupted(0)
        raise
    finally:
        batch.reporter.close()
