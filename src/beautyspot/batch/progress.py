"""What the user sees of a batch: :class:`Progress`, the bar or callback, the summary line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from beautyspot.errors import ConfigurationError

__all__ = ["Progress", "Progressor", "Reporter", "summary"]

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


def summary(label: str, progress: Progress, why: str, *, failed: bool = False) -> str:
    """The one line a stopped batch leaves on stderr: where it stands, how to resume. A batch
    stopped by a failure resumes once that failure is fixed (or was passing).

    >>> print(summary("map(ask)", Progress(total=10, done=5, cached=2, failed=1), "interrupted"))
    ... # doctest: +NORMALIZE_WHITESPACE
    beautyspot: map(ask) interrupted: 5 of 10 done (2 from the cache), 1 failed,
    4 not started. Run the same code again to resume: only the 5 not done will run.
    """
    again = "Fix the failure and run" if failed else "Run"
    return (
        f"beautyspot: {label} {why}: {progress.done} of {progress.total} done "
        f"({progress.cached} from the cache), {progress.failed} failed, "
        f"{progress.not_started} not started. {again} the same code again to resume: only the "
        f"{progress.total - progress.done} not done will run."
    )


class Reporter:
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
