"""When a failed item is tried again, and how long it waits first: backoff with full jitter."""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from numbers import Real

from beautyspot.errors import ConfigurationError

__all__ = ["MAX_BACKOFF", "RetryPolicy", "backoff_delay", "retry_policy"]

#: Longest wait between two attempts of one item with a numeric ``backoff``, in seconds.
MAX_BACKOFF = 60.0


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
