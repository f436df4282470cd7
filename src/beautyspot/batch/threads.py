"""The thread driver: :func:`map` carries out a batch's plan with threads or any executor."""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import contextmanager, suppress
from typing import Any

from beautyspot.batch.plan import (
    LOOKUP,
    START,
    WAIT,
    Attempted,
    Batch,
    Call,
    Steps,
    captured,
    check_marked,
    new_batch,
    positive,
)
from beautyspot.batch.progress import Progressor
from beautyspot.batch.retries import RetryPolicy, retry_policy
from beautyspot.errors import ConfigurationError

__all__ = ["map"]

#: Seconds between two looks at a deferred Ctrl-C while waiting for running items.
_CTRL_C_POLL = 0.1


class _Job:
    """One item with its retries, as a worker runs it: a plain picklable callable, so
    process and cluster executors can ship it (a module-level marked function pickles by
    reference). The stop signal stays in this process: a copy elsewhere gets its own."""

    def __init__(
        self,
        fn: Callable[..., Any],
        call: Call,
        policy: RetryPolicy,
        sleep: Callable[[float], object] | None,
        stop: threading.Event,
    ) -> None:
        self.fn, self.call, self.policy, self.sleep, self.stop = fn, call, policy, sleep, stop

    def __call__(self) -> Attempted:
        attempt = 0
        while True:
            attempt += 1
            try:
                return Attempted(True, self.fn(*self.call.args, **self.call.kwargs), attempt)
            except Exception as exc:
                delay = self.policy.delay_after(exc, attempt)
                if delay is None or not self._pause(delay):
                    return Attempted(False, exc, attempt)

    def _pause(self, seconds: float) -> bool:
        """Wait before a retry; False when the batch stopped meanwhile (don't retry)."""
        if self.sleep is None:
            self.stop.wait(seconds)
        else:
            self.sleep(seconds)
        return not self.stop.is_set()

    def __getstate__(self) -> dict[str, Any]:
        return {name: value for name, value in vars(self).items() if name != "stop"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state, stop=threading.Event())


class _CtrlC:
    """Whether the first Ctrl-C of a batch has come (set by :func:`_first_ctrl_c_deferred`)."""

    pressed = False


@contextmanager
def _first_ctrl_c_deferred() -> Iterator[_CtrlC]:
    """While a batch runs in the main thread, the first Ctrl-C only sets a flag that the
    driver acts on between two steps: a KeyboardInterrupt raised mid-step could lose an item
    that was started or finished but not yet counted. A second Ctrl-C raises at once, as
    usual. Left alone when another thread runs the batch or the program has its own handler.
    """
    ctrl_c = _CtrlC()
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield ctrl_c
        return

    def note(signum: int, frame: Any) -> None:
        # Only a flag: a handler runs between any two bytecodes, maybe inside a lock.
        ctrl_c.pressed = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, note)
    try:
        yield ctrl_c
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class _Threads:
    """Carries out a plan with an executor: lookups and cache hits in the caller's thread,
    everything else in the executor."""

    def __init__(
        self,
        fn: Callable[..., Any],
        calls: list[Call],
        executor: Executor,
        policy: RetryPolicy,
        sleep: Callable[[float], object] | None,
        ctrl_c: _CtrlC,
    ) -> None:
        self.fn, self.calls, self.executor = fn, calls, executor
        self.policy, self.sleep, self.ctrl_c = policy, sleep, ctrl_c
        self.cached_result = fn._marked_call.cached_result  # type: ignore[attr-defined]
        self.stop = threading.Event()
        self.started: dict[Future[Attempted], int] = {}
        self.pending: set[Future[Attempted]] = set()
        # Futures report here as they finish: waiting on a queue costs the same whatever the
        # window, where concurrent.futures.wait visits every pending future each time.
        self.finished: queue.SimpleQueue[Future[Attempted]] = queue.SimpleQueue()

    def carry_out(self, plan: Steps) -> None:
        reply: Any = None
        while True:
            try:
                kind, index = plan.send(reply)
            except StopIteration:
                return
            if self.ctrl_c.pressed:
                raise KeyboardInterrupt
            reply = self._step(kind, index)

    def _step(self, kind: str, index: int) -> Any:
        if kind == LOOKUP:
            return captured(self.cached_result, self.calls[index])
        if kind == START:
            job = _Job(self.fn, self.calls[index], self.policy, self.sleep, self.stop)
            future = self.executor.submit(job)
            self.started[future] = index
            self.pending.add(future)
            future.add_done_callback(self.finished.put)
            return None
        if kind == WAIT:
            finished: list[Future[Attempted]] = []
            while not finished and not self.ctrl_c.pressed:
                with suppress(queue.Empty):
                    finished.append(self.finished.get(timeout=_CTRL_C_POLL))
            with suppress(queue.Empty):
                while True:  # and every other item that finished meanwhile
                    finished.append(self.finished.get_nowait())
            self.pending.difference_update(finished)
            return [(self.started[future], _attempted(future)) for future in finished]
        self.halt()
        return None

    def halt(self) -> None:
        """Start nothing more: cancel what has not started, end retries at their next wait."""
        self.stop.set()
        for future in self.pending:
            future.cancel()

    def busy(self) -> int:
        """Items running right now."""
        return sum(not future.done() for future in self.pending)

    def drain(self) -> list[tuple[int, Attempted | None]]:
        """Wait for the running items (a second Ctrl-C stops waiting); every finished one."""
        with suppress(KeyboardInterrupt):
            wait_futures(self.pending)
        return [(index, _attempted(f)) for f, index in self.started.items() if f.done()]


def _attempted(future: Future[Attempted]) -> Attempted | None:
    if future.cancelled():
        return None
    try:
        return future.result()
    except Exception as exc:  # the executor could not run the job at all (e.g. pickling)
        return Attempted(False, exc, 1)


def _window(workers: int | None, executor: Executor | None) -> int:
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ConfigurationError(
            f"executor={executor!r}: give a concurrent.futures.Executor (anything with submit)"
        )
    if workers is None:
        if executor is None:
            return 1
        size = getattr(executor, "_max_workers", None)
        if isinstance(size, int) and size > 0:
            return size
        raise ConfigurationError(
            f"workers=None: {type(executor).__name__} does not tell how many calls it runs at "
            "once; say how many items to hand it at a time, e.g. workers=32"
        )
    return positive(workers, "workers")


def map(
    fn: Callable[..., Any],
    items: Iterable[Any],
    /,
    *,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: bool | Progressor | None = None,
    retries: int = 0,
    retry_on: type[Exception] | tuple[type[Exception], ...] = (Exception,),
    backoff: float | Callable[[int], float] = 1.0,
    return_exceptions: bool = False,
    star: bool = False,
    sleep: Callable[[float], object] | None = None,
    random: Callable[[], float] | None = None,
) -> list[Any]:
    """Call the marked function ``fn`` once per item; the results, in input order.

    Also ``spot.map(fn, items, ...)`` and ``fn.map(items, ...)``. Items already cached are
    served without running and without rate tokens; each finished item is saved as it
    finishes, so a batch stopped anywhere (Ctrl-C, a failure, a crash) resumes by running the
    same code again. The Spot's limiter under ``fn`` paces every attempt, retries included.

    :param fn: a function decorated with ``@spot.mark`` (of any Spot), not ``async def``.
    :param items: the inputs; each is ``fn``'s only argument, or see ``star``.
    :param workers: how many items run at once: the threads of a pool made for this batch
        (default 1), or the items handed to ``executor`` at a time (default: its
        ``max_workers``; an executor that does not tell needs ``workers=``).
    :param executor: any ``concurrent.futures.Executor`` (a process pool, Dask, Ray...); it is
        not shut down. Process and cluster executors need ``fn`` defined at module level.
    :param progress: None: a bar (tqdm) when stderr is a terminal, quiet otherwise; True: a
        bar; False: silent, not even the summary of a stopped batch; a callable: receives a
        :class:`Progress` after every item.
    :param retries: how many times a failed item is tried again (0: never). Every failed
        attempt is recorded with the Spot's failures, like any failed call.
    :param retry_on: the exception class(es) worth a retry; others fail the item at once.
    :param backoff: base seconds of an exponential backoff with full jitter (see
        :func:`backoff_delay`), or a callable ``retry_number -> seconds``.
    :param return_exceptions: True: a failed item's last exception takes its place in the
        results and the rest go on. False: the first failure starts nothing more, lets
        running items finish and save, then is raised.
    :param star: False: each item is the only argument. True: each item is a tuple of
        positional arguments or a dict of keyword arguments.
    :param sleep: how a worker waits before a retry (default: a wait that ends early when
        the batch stops); for tests or advanced use.
    :param random: the jitter source, a callable returning a float in [0, 1); for tests.

    Ctrl-C stops cleanly: nothing new starts, running items finish and save (press again to
    stop waiting), a line on stderr says how many are done, and ``KeyboardInterrupt`` goes on.

    >>> import tempfile, beautyspot as bs
    >>> spot = bs.Spot("batch", db=tempfile.mkdtemp() + "/batch.db")
    >>> @spot.mark
    ... def square(x):
    ...     return x * x
    >>> spot.map(square, [1, 2, 3], workers=2)
    [1, 4, 9]
    >>> square.map([3, 4], progress=lambda p: print(f"{p.done}/{p.total}, {p.cached} cached"))
    1/2, 1 cached
    2/2, 1 cached
    [9, 16]
    """
    check_marked(fn, asynchronous=False)
    window = _window(workers, executor)
    policy = retry_policy(retries, retry_on, backoff, random)
    batch = new_batch(
        "map", fn, items, window, star=star, progress=progress,
        return_exceptions=return_exceptions, policy=policy,
    )  # fmt: skip
    if batch is None:
        return []
    pool = executor or ThreadPoolExecutor(window, thread_name_prefix=f"beautyspot-{fn.__name__}")
    with _first_ctrl_c_deferred() as ctrl_c:
        threads = _Threads(fn, batch.calls, pool, policy, sleep, ctrl_c)
        return _run_threads(batch, threads, executor)


def _run_threads(batch: Batch, threads: _Threads, executor: Executor | None) -> list[Any]:
    """Run the batch; on Ctrl-C, let the running items finish and say where it stopped."""
    reporter, pool = batch.reporter, threads.executor
    try:
        threads.carry_out(batch.plan())
        return batch.outcome()
    except KeyboardInterrupt:
        threads.halt()
        busy = threads.busy()
        if busy:
            reporter.say(
                f"beautyspot: stopping {batch.label}: waiting for {busy} running "
                f"item{'s' if busy > 1 else ''} to finish and save (Ctrl-C again to stop waiting)"
            )
        batch.record_all(threads.drain())
        batch.interrupted(threads.busy())
        raise
    finally:
        threads.halt()  # after an unexpected error too: start nothing more, end retries
        if executor is None:
            pool.shutdown(wait=not threads.busy(), cancel_futures=True)
        reporter.close()
