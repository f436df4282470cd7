"""Run a marked function over many inputs: bounded, paced, retried and resumable (DESIGN.md §7).

Each item is one call. An item already in the cache is served by the caller without a worker
and without a rate token; the others go to workers (threads, any ``concurrent.futures``
executor, or event-loop tasks), each retried with backoff. Every finished call is saved by the
marked function itself, so a batch that stops anywhere resumes by running the same code again.

The rules are written once: :meth:`_Batch.plan` turns the batch into *steps* (look an item up
and serve it if cached, start it, wait for one to finish, stop), :class:`RetryPolicy` decides
retries, :class:`Progress` and :func:`summary` say where the batch stands. :func:`map` and
:func:`amap` only carry the steps out, one blocking, one awaiting, like the call path in
``call.py``.
"""

from __future__ import annotations

import inspect
import math
import queue
import random as _random
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, Any, NamedTuple

from beautyspot.call import NOT_CACHED
from beautyspot.errors import CacheKeyError, ConfigurationError

if TYPE_CHECKING:
    # At run time the async code imports it: it is most of what `import beautyspot` would cost.
    import asyncio

__all__ = ["MAX_BACKOFF", "Progress", "RetryPolicy", "amap", "backoff_delay", "map", "summary"]

#: Longest wait between two attempts of one item with a numeric ``backoff``, in seconds.
MAX_BACKOFF = 60.0

#: Seconds between two looks at a deferred Ctrl-C while waiting for running items.
_CTRL_C_POLL = 0.1

#: Step kinds a driver carries out; the reply each one expects is on :meth:`_Batch.plan`.
LOOKUP = "lookup"  # the item's cached result, if it has one
START = "start"  # hand it to a worker
WAIT = "wait"  # until at least one started item finishes
STOP = "stop"  # the batch failed: start nothing more, cut retries short

Step = tuple[str, int]
Steps = Generator[Step, Any, None]
Progressor = Callable[["Progress"], object]


@dataclass(frozen=True)
class Progress:
    """Where a batch stands; ``progress=callable`` receives one after every finished item.

    :param total: items in the batch.
    :param done: items with a result, ``cached`` of them served from the cache (not run).
    :param failed: items whose last attempt raised.
    :param retries: failed attempts that were tried again.

    >>> p = Progress(total=10, done=5, cached=2, failed=1, retries=3)
    >>> p.computed, p.not_started
    (3, 4)
    """

    total: int
    done: int = 0
    cached: int = 0
    failed: int = 0
    retries: int = 0

    @property
    def computed(self) -> int:
        """Items run (and saved) by this batch."""
        return self.done - self.cached

    @property
    def not_started(self) -> int:
        """Items neither done nor failed."""
        return self.total - self.done - self.failed


def summary(label: str, progress: Progress, why: str) -> str:
    """The one line a stopped batch leaves on stderr: where it stands, how to resume.

    >>> print(summary("map(ask)", Progress(total=10, done=5, cached=2, failed=1), "interrupted"))
    ... # doctest: +NORMALIZE_WHITESPACE
    beautyspot: map(ask) interrupted: 5 of 10 done (2 from the cache), 1 failed,
    4 not started. Run the same code again to resume: only the 5 not done will run.
    """
    return (
        f"beautyspot: {label} {why}: {progress.done} of {progress.total} done "
        f"({progress.cached} from the cache), {progress.failed} failed, "
        f"{progress.not_started} not started. Run the same code again to resume: only the "
        f"{progress.total - progress.done} not done will run."
    )


# -- retries ---------------------------------------------------------------------------------


def backoff_delay(
    backoff: float | Callable[[int], float], retry: int, random: Callable[[], float]
) -> float:
    """Seconds to wait before retry number ``retry`` (1, 2, ...).

    A number is the base of an exponential backoff with full jitter: a random wait of up to
    ``backoff * 2 ** (retry - 1)`` seconds, at most :data:`MAX_BACKOFF`, so workers that fail
    together do not retry together. A callable gets ``retry`` and returns the wait itself.

    >>> [backoff_delay(1.0, retry, random=lambda: 0.5) for retry in (1, 2, 3, 10)]
    [0.5, 1.0, 2.0, 30.0]
    >>> backoff_delay(lambda retry: retry * 10, 2, random=lambda: 0.5)
    20.0
    """
    if callable(backoff):
        delay = backoff(retry)
        if not _is_number(delay) or delay < 0:
            raise ConfigurationError(
                f"backoff returned {delay!r} for retry {retry}: it must return seconds >= 0"
            )
        return float(delay)
    return random() * min(MAX_BACKOFF, backoff * 2.0 ** (retry - 1))


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failed item again and how long to wait first.

    ``random`` is the jitter source (None: :func:`random.random` of the process running the
    item, so worker processes do not share one sequence).

    >>> policy = RetryPolicy(retries=2, retry_on=(TimeoutError,), backoff=lambda n: n)
    >>> [policy.delay_after(TimeoutError(), attempt) for attempt in (1, 2, 3)]
    [1.0, 2.0, None]
    >>> policy.delay_after(KeyError(), 1) is None
    True
    """

    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    backoff: float | Callable[[int], float] = 1.0
    random: Callable[[], float] | None = None

    def delay_after(self, error: BaseException, attempt: int) -> float | None:
        """Seconds to wait before the next attempt after ``attempt`` failed, or None: give up."""
        if attempt > self.retries or not isinstance(error, self.retry_on):
            return None
        return backoff_delay(self.backoff, attempt, self.random or _random.random)


def retry_policy(
    retries: int,
    retry_on: type[Exception] | Iterable[type[Exception]],
    backoff: float | Callable[[int], float],
    random: Callable[[], float] | None,
) -> RetryPolicy:
    """A :class:`RetryPolicy` from ``map``'s arguments, each checked."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigurationError(
            f"retries={retries!r}: give how many times a failed item is tried again (0 or more)"
        )
    classes = (retry_on,) if isinstance(retry_on, type) else retry_on
    if not isinstance(classes, (tuple, list)) or not all(
        isinstance(cls, type) and issubclass(cls, Exception) for cls in classes
    ):
        raise ConfigurationError(
            f"retry_on={retry_on!r}: give an exception class or a tuple of them, e.g. "
            "retry_on=(TimeoutError, ConnectionError)"
        )
    if not callable(backoff) and not (_is_number(backoff) and backoff >= 0):
        raise ConfigurationError(
            f"backoff={backoff!r}: give a base in seconds (e.g. 1.0) or a callable "
            "retry_number -> seconds"
        )
    if random is not None and not callable(random):
        raise ConfigurationError(f"random={random!r}: give a callable returning a float in [0, 1)")
    return RetryPolicy(retries, tuple(classes), backoff, random)


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


# -- items and their outcomes ----------------------------------------------------------------


class Call(NamedTuple):
    """One item's arguments."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class Attempted(NamedTuple):
    """An item's outcome: its result (``ok``) or the last error, and how many times it ran.

    ``attempts == 0`` means it did not run: served from the cache, or it could not even be
    looked up (its arguments do not fit the function, or cannot be keyed).
    """

    ok: bool
    value: Any
    attempts: int


def calls_of(items: Iterable[Any], star: bool) -> list[Call]:
    """Each item as a call: the only argument, or with ``star`` a tuple of positional
    arguments or a dict of keyword arguments.

    >>> calls_of(["a"], star=False)
    [Call(args=('a',), kwargs={})]
    >>> calls_of([(1, 2), {"x": 1}], star=True)
    [Call(args=(1, 2), kwargs={}), Call(args=(), kwargs={'x': 1})]
    """
    if not isinstance(star, bool):
        raise ConfigurationError(f"star={star!r}: give True or False")
    try:
        materialized = list(items)
    except TypeError:
        raise TypeError(
            f"items must be an iterable of inputs (a list, a generator...), got "
            f"{type(items).__name__}"
        ) from None
    if not star:
        return [Call((item,), {}) for item in materialized]
    return [_unpacked(index, item) for index, item in enumerate(materialized)]


def _unpacked(index: int, item: Any) -> Call:
    if isinstance(item, Mapping):
        return Call((), dict(item))
    if isinstance(item, (tuple, list)):
        return Call(tuple(item), {})
    raise TypeError(
        f"star=True: item {index} is a {type(item).__name__}; give each item as a tuple of "
        "positional arguments or a dict of keyword arguments (or use star=False to pass each "
        "item as the only argument)"
    )


def _captured(
    cached_result: Callable[[tuple[Any, ...], dict[str, Any]], Any], call: Call
) -> tuple[bool, Any]:
    """``(True, cached result or NOT_CACHED)`` or ``(False, error)``: a lookup that fails
    (a call that cannot be keyed) fails its item only."""
    try:
        return True, cached_result(call.args, call.kwargs)
    except Exception as exc:
        return False, exc


# -- what the user sees ----------------------------------------------------------------------


class _Reporter:
    """Progress for the user: a bar on a terminal, their callable, or nothing; and the
    summary line of a stopped batch on stderr (silenced only by ``progress=False``)."""

    def __init__(self, progress: bool | Progressor | None, label: str, total: int) -> None:
        if not (progress is None or isinstance(progress, bool) or callable(progress)):
            raise ConfigurationError(
                f"progress={progress!r}: give None (a bar when stderr is a terminal), True, "
                "False, or a callable receiving a beautyspot.batch.Progress"
            )
        self._callback = None if progress is None or isinstance(progress, bool) else progress
        self._quiet = progress is False
        self._bar = None
        if progress is True or (progress is None and _is_terminal(sys.stderr)):
            self._bar = _open_bar(label, total, required=progress is True)
        #: Whether :meth:`update` shows anything (else a batch need not build a Progress).
        self.active = self._callback is not None or self._bar is not None

    def update(self, progress: Progress) -> None:
        if self._callback is not None:
            self._callback(progress)
        if self._bar is not None:
            self._bar.set_postfix(cached=progress.cached, failed=progress.failed, refresh=False)
            self._bar.update(progress.done + progress.failed - self._bar.n)

    def say(self, line: str) -> None:
        self.close()
        if not self._quiet:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _open_bar(label: str, total: int, *, required: bool) -> Any:
    try:
        from tqdm import tqdm  # only a batch that draws a bar pays for the import
    except ImportError:
        if required:
            raise ConfigurationError(
                "progress=True draws a bar with tqdm: pip install tqdm"
            ) from None
        return None
    return tqdm(total=total, desc=label, unit="item", file=sys.stderr, dynamic_ncols=True)


# -- the batch: its state and its rules, shared by both drivers ------------------------------


class _Batch:
    """One batch: its calls, results and progress, and the plan that runs it."""

    def __init__(
        self,
        label: str,
        calls: list[Call],
        window: int,
        return_exceptions: bool,
        reporter: _Reporter,
        policy: RetryPolicy,
    ) -> None:
        self.label = label
        self.policy = policy
        self.calls = calls
        self.window = window
        self.return_exceptions = return_exceptions
        self.reporter = reporter
        self.results: list[Any] = [None] * len(calls)
        self._counts = [0, 0, 0, 0]  # done, cached, failed, retries: a Progress only when asked
        self.error: Exception | None = None
        self._next = 0
        self._running = 0
        self._recorded = [False] * len(calls)

    def plan(self) -> Steps:
        """The batch as steps, in input order, at most ``window`` items running at once.

        Replies a driver sends back: ``LOOKUP`` gets ``(ok, cached result or NOT_CACHED, or
        the error of a call that cannot be keyed)``;
        ``WAIT`` gets ``[(index, Attempted | None), ...]`` for the items that finished
        (None: cancelled before it started); ``START`` and ``STOP`` get nothing.
        """
        stopping = False
        while True:
            while self._may_start():
                index = self._next
                self._next += 1
                settled = yield from self._from_cache(index)
                if settled is None:
                    yield START, index
                    self._running += 1
                else:
                    self.record(index, settled)
            if self.error is not None and not stopping:
                stopping = True
                yield STOP, -1
            if not self._running:
                return
            finished = yield WAIT, -1
            for index, attempted in finished:
                self._running -= 1
                if attempted is not None:
                    self.record(index, attempted)

    def _may_start(self) -> bool:
        return self.error is None and self._next < len(self.calls) and self._running < self.window

    def _from_cache(self, index: int) -> Generator[Step, Any, Attempted | None]:
        """The item's outcome when it needs no worker (a hit, or a call that cannot even be
        looked up); None when it must run."""
        ok, found = yield LOOKUP, index
        if ok and found is NOT_CACHED:
            return None
        # A store out for a moment, say: a worker looks again, with retries. An argument that
        # cannot be keyed never will be.
        retryable = not ok and not isinstance(found, CacheKeyError)
        if retryable and self.policy.delay_after(found, 1) is not None:
            return None
        return Attempted(ok, found, 0)

    def record(self, index: int, attempted: Attempted) -> None:
        """Count one finished item, once; the first failure stops the batch unless
        ``return_exceptions``."""
        if self._recorded[index]:
            return
        ok, value, attempts = attempted
        self.results[index] = value
        self._recorded[index] = True
        counts = self._counts
        if ok:
            counts[0] += 1
            counts[1] += attempts == 0
        else:
            counts[2] += 1
        counts[3] += max(attempts - 1, 0)
        if not ok and not self.return_exceptions and self.error is None:
            self.error = value
        if self.reporter.active:
            self.reporter.update(self.progress)

    @property
    def progress(self) -> Progress:
        done, cached, failed, retries = self._counts
        return Progress(len(self.calls), done, cached, failed, retries)

    def record_all(self, finished: Iterable[tuple[int, Attempted | None]]) -> None:
        """Count the items a stopped driver reports: it reports every finished one, so those
        already counted are skipped."""
        for index, attempted in finished:
            if attempted is not None:
                self.record(index, attempted)

    def interrupted(self, still_running: int) -> None:
        """Say where the batch stands after Ctrl-C or cancellation."""
        why = "interrupted" if not still_running else f"interrupted ({still_running} left running)"
        self.reporter.say(summary(self.label, self.progress, why))

    def outcome(self) -> list[Any]:
        """The results in input order, or the first failure raised after saying where the
        batch stopped."""
        if self.error is not None:
            reason = f"{type(self.error).__name__}: {self.error}".splitlines()[0][:120]
            self.reporter.say(
                summary(self.label, self.progress, f"stopped at a failure ({reason})")
            )
            raise self.error
        return self.results


# -- the thread driver -----------------------------------------------------------------------


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
            return _captured(self.cached_result, self.calls[index])
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
    return _positive(workers, "workers")


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name}={value!r}: give how many calls may run at once (>= 1)")
    return value


def _check_marked(fn: Any, *, asynchronous: bool) -> None:
    if not callable(fn) or getattr(fn, "_marked_call", None) is None:
        raise TypeError(
            f"fn must be a function decorated with @spot.mark, got {fn!r}: mark it first, "
            "so each finished item is saved and a re-run skips it"
        )
    if inspect.iscoroutinefunction(fn) != asynchronous:
        fix = "await spot.amap(fn, items)" if not asynchronous else "spot.map(fn, items)"
        kind = "an async def function" if not asynchronous else "not an async def function"
        raise TypeError(f"fn ({fn.__qualname__}) is {kind}: use {fix}")


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
    _check_marked(fn, asynchronous=False)
    window = _window(workers, executor)
    policy = retry_policy(retries, retry_on, backoff, random)
    calls = calls_of(items, star)
    reporter = _Reporter(progress, fn.__name__, len(calls)) if calls else None
    if reporter is None:
        return []
    batch = _Batch(f"map({fn.__name__})", calls, window, bool(return_exceptions), reporter, policy)
    pool = executor or ThreadPoolExecutor(window, thread_name_prefix=f"beautyspot-{fn.__name__}")
    with _first_ctrl_c_deferred() as ctrl_c:
        return _run_threads(batch, _Threads(fn, calls, pool, policy, sleep, ctrl_c), executor)


def _run_threads(batch: _Batch, threads: _Threads, executor: Executor | None) -> list[Any]:
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


# -- the task driver -------------------------------------------------------------------------


async def _attempt_async(
    fn: Callable[..., Awaitable[Any]],
    call: Call,
    policy: RetryPolicy,
    pause: Callable[[float], Awaitable[bool]],
) -> Attempted:
    """One item with its retries, as a task runs it; the twin of :meth:`_Job.__call__`."""
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
            return await asyncio.to_thread(_captured, lookup, self.calls[index])
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

    _check_marked(fn, asynchronous=True)
    window = _positive(concurrency, "concurrency")
    policy = retry_policy(retries, retry_on, backoff, random)
    calls = calls_of(items, star)
    reporter = _Reporter(progress, fn.__name__, len(calls)) if calls else None
    if reporter is None:
        return []
    batch = _Batch(f"amap({fn.__name__})", calls, window, bool(return_exceptions), reporter, policy)
    tasks = _Tasks(fn, calls, policy, sleep)
    try:
        await tasks.carry_out(batch.plan())
        return batch.outcome()
    except (asyncio.CancelledError, KeyboardInterrupt):
        batch.record_all(await tasks.cancel())
        batch.interrupted(0)
        raise
    finally:
        reporter.close()
