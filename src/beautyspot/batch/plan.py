"""The plan of a batch: its items, and the steps that run them (look up, start, wait, stop).

:meth:`Batch.plan` holds the rules both drivers follow; a driver only carries out its steps.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any, NamedTuple

from beautyspot.batch.progress import Progress, Progressor, Reporter, summary
from beautyspot.batch.retries import RetryPolicy
from beautyspot.call import NOT_CACHED
from beautyspot.errors import CacheKeyError, ConfigurationError

__all__ = [
    "LOOKUP",
    "START",
    "STOP",
    "WAIT",
    "Attempted",
    "Batch",
    "Call",
    "Step",
    "Steps",
    "calls_of",
    "captured",
    "check_marked",
    "check_one_argument",
    "new_batch",
    "positive",
]

#: Step kinds a driver carries out; the reply each one expects is on :meth:`Batch.plan`.
LOOKUP = "lookup"  # the item's cached result, if it has one
START = "start"  # hand it to a worker
WAIT = "wait"  # until at least one started item finishes
STOP = "stop"  # the batch failed: start nothing more, cut retries short

Step = tuple[str, int]
Steps = Generator[Step, Any, None]


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


def captured(
    cached_result: Callable[[tuple[Any, ...], dict[str, Any]], Any], call: Call
) -> tuple[bool, Any]:
    """``(True, cached result or NOT_CACHED)`` or ``(False, error)``: a lookup that fails
    (a call that cannot be keyed) fails its item only."""
    try:
        return True, cached_result(call.args, call.kwargs)
    except Exception as exc:
        return False, exc


# -- the arguments both drivers check --------------------------------------------------------


def positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name}={value!r}: give how many calls may run at once (>= 1)")
    return value


def check_marked(fn: Any, *, asynchronous: bool) -> None:
    if not callable(fn) or getattr(fn, "_marked_call", None) is None:
        raise TypeError(
            f"fn must be a function decorated with @spot.mark, got {fn!r}: mark it first, "
            "so each finished item is saved and a re-run skips it"
        )
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise ConfigurationError(
            f"fn ({fn.__qualname__}) is a generator function, and a batch does not run "
            "streams: collect with list(fn(x)) in a normal marked function, or iterate the stream"
        )
    if inspect.iscoroutinefunction(fn) != asynchronous:
        fix = "await spot.amap(fn, items)" if not asynchronous else "spot.map(fn, items)"
        kind = "an async def function" if not asynchronous else "not an async def function"
        raise TypeError(f"fn ({fn.__qualname__}) is {kind}: use {fix}")


def check_one_argument(fn: Any, item: Any) -> None:
    """Refuse, before anything runs, a batch whose items cannot each be ``fn``'s only
    argument: every item would fail the same way, and no re-run could do better."""
    signature = fn._marked_call.signature
    try:
        signature.bind(item)
    except TypeError as exc:
        example = "(1, 2)" if isinstance(item, (tuple, list)) else "(x, y)"
        raise ConfigurationError(
            f"{fn.__name__}{signature} cannot take each item as its only argument ({exc}): "
            f"pass star=True to unpack items such as {example} as positional arguments, or "
            "dicts as keyword arguments"
        ) from None


# -- the batch: its state and its rules, shared by both drivers ------------------------------


class Batch:
    """One batch: its calls, results and progress, and the plan that runs it."""

    def __init__(
        self,
        label: str,
        calls: list[Call],
        window: int,
        return_exceptions: bool,
        reporter: Reporter,
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
            why = f"stopped at a failure ({reason})"
            self.reporter.say(summary(self.label, self.progress, why, failed=True))
            raise self.error
        return self.results


def new_batch(
    kind: str,
    fn: Callable[..., Any],
    items: Iterable[Any],
    window: int,
    *,
    star: bool,
    progress: bool | Progressor | None,
    return_exceptions: bool,
    policy: RetryPolicy,
) -> Batch | None:
    """The batch ``kind`` (``map``, ``amap``) of ``fn`` over ``items``; None when empty."""
    calls = calls_of(items, star)
    if not calls:
        return None
    if not star:
        check_one_argument(fn, calls[0].args[0])
    reporter = Reporter(progress, fn.__name__, len(calls))
    return Batch(f"{kind}({fn.__name__})", calls, window, bool(return_exceptions), reporter, policy)
