"""Stats per function: calls counted in memory and added to the TaskDB's totals in batches.

A hit must pay nothing measurable for being counted. So a hit appends its cache key to its
function's list (``list.append`` is atomic in CPython: no lock, no clock, no count lost between
threads), and only when that list passes :data:`COMPACT_AT` keys does the hit that sees it fold
them into per-key totals, in memory (never waiting for another thread or for I/O). Misses and
failures, paid for anyway, append a small event. A :class:`Tally` (one per Spot) hands its
totals to :meth:`~beautyspot.db.TaskDB.add_counts` in one call:

- once :data:`FLUSH_INTERVAL` seconds have passed since the last flush (or :data:`FLUSH_KEYS`
  keys have hits waiting), as a fold or a miss finds: in a short-lived thread, so no call
  waits for it. There is no timer thread: a thread merely alive in the process slows every
  SQLite hit by a few percent (each query releases and retakes the GIL), so until a function
  passes :data:`COMPACT_AT` more hits, or the next miss, a quiet process keeps its last counts;
- on ``spot.close()``, when the Spot is garbage-collected, and at interpreter exit (also at
  the exit of a forked ``multiprocessing`` worker, which skips ``atexit``).

A flush that fails (the server is down) keeps its counts for the next one; per-record hits of
more than :data:`MAX_PENDING_KEYS` keys are not kept (the oldest go, with one warning), while the
per-function totals never drop. A TaskDB without ``add_counts`` turns counting off, silently.

What counts: a *hit* is a call served from a stored result (the memory tier, the TaskDB, or
another caller's computation of the same key); a *miss* a call whose function ran and returned;
a *failure* a call whose function raised an ``Exception``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
import weakref
from collections import Counter
from collections.abc import Callable
from itertools import islice

from beautyspot.db.base import FunctionCounts, TaskDB
from beautyspot.errors import BeautyspotWarning, NotSupportedError

__all__ = [
    "COMPACT_AT",
    "FLUSH_INTERVAL",
    "FLUSH_KEYS",
    "MAX_PENDING_KEYS",
    "Tally",
    "flush_all",
]

#: Keys a function's list of hits holds before the hit that passes it folds them into totals
#: (and looks whether a flush is due): what counting holds at most per function between two
#: folds, some 30 KiB.
COMPACT_AT = 256
#: Seconds between two flushes of a Spot's counts to its TaskDB (when there is anything to add).
FLUSH_INTERVAL = 5.0
#: Keys with hits waiting that make a flush due before the interval has passed.
FLUSH_KEYS = 20_000
#: Keys whose per-record hits a failing TaskDB may keep waiting; beyond, the oldest are dropped.
MAX_PENDING_KEYS = 200_000

_HIT, _MISS, _FAILURE = 0, 1, 2


class Tally:
    """The calls of one Spot's marked functions, counted in memory until a flush adds them to
    ``db``'s totals (see the module docstring).

    A marked function appends each hit's key to :meth:`hits_of` its name, and calls
    :meth:`fold` once that list holds more than :data:`COMPACT_AT` keys.

    >>> import tempfile, beautyspot as bs
    >>> spot = bs.Spot("tally", db=tempfile.mkdtemp() + "/t.db")
    >>> hits = spot._tally.hits_of("pkg.fn")
    >>> hits.append("key-1"); hits.append("key-1"); spot._tally.count_miss("pkg.fn")
    >>> spot.close()                                     # flushes
    >>> [(row["func_name"], row["hits"], row["misses"]) for row in spot.db.get_stats()]
    [('pkg.fn', 2, 1)]
    """

    def __init__(
        self,
        db: TaskDB,
        *,
        interval: float = FLUSH_INTERVAL,
        flush_keys: int = FLUSH_KEYS,
        max_pending_keys: int = MAX_PENDING_KEYS,
    ) -> None:
        self.db = db
        self.interval = interval
        self.flush_keys = flush_keys
        self.max_pending_keys = max_pending_keys
        #: False once the TaskDB turned out to keep no counts: calls are no longer kept.
        self.enabled = type(db).add_counts is not TaskDB.add_counts
        # Appended to without a lock by any thread; only a fold (under _fold_lock) takes.
        self._hits: dict[str, list[str]] = {}  # function name -> cache keys hit
        self._events: list[tuple[str, int]] = []  # (function name, _MISS or _FAILURE)
        # Folded, not yet added to the TaskDB (or a flush failed).
        self._counts: dict[str, list[int]] = {}  # function name -> [hits, misses, failures]
        self._key_hits: Counter[str] = Counter()  # cache key -> hits, oldest first
        self._fold_lock = threading.Lock()  # in memory only: held for microseconds
        self._flush_lock = threading.Lock()  # one add_counts at a time
        self._last_flush = time.monotonic()
        self._failure_reported = self._drop_reported = False
        if self.enabled:
            with _tallies_lock:
                _tallies.add(self)

    def hits_of(self, func_name: str) -> list[str]:
        """The list a marked function appends the key of each hit to (one per function
        name, shared by every function marked with it)."""
        return self._hits.setdefault(func_name, [])

    def count_miss(self, func_name: str) -> None:
        """Count a call whose function ran and returned."""
        self._count(func_name, _MISS)

    def count_failure(self, func_name: str) -> None:
        """Count a call whose function raised an exception."""
        self._count(func_name, _FAILURE)

    def _count(self, func_name: str, kind: int) -> None:
        if self.enabled:
            self._events.append((func_name, kind))
            if len(self._events) > COMPACT_AT:
                self.fold()
            elif self._due():
                self._flush_soon()

    def fold(self) -> None:
        """Fold the keys and events appended so far into the totals, unless another thread is
        doing it right now (then this caller goes on: the keys wait for the next fold); then
        start a flush if one is due."""
        if self._fold_lock.acquire(blocking=False):
            try:
                self._fold()
            finally:
                self._fold_lock.release()
            if self.enabled and self._due():
                self._flush_soon()

    def flush(self, then: Callable[[], object] | None = None) -> None:
        """Add what was counted to the TaskDB's totals now. Never raises: a failure warns
        (once) and keeps the counts for the next flush. ``then`` runs before any other flush
        may start (``spot.close()`` closes the TaskDB with it)."""
        with self._flush_lock:
            try:
                self._flush_locked()
            finally:
                if then is not None:
                    then()

    def _due(self) -> bool:
        return (
            time.monotonic() - self._last_flush >= self.interval
            or len(self._key_hits) >= self.flush_keys
        )

    def _flush_soon(self) -> None:
        """Flush in a thread of its own, unless a flush is running: the caller goes on."""
        if not self._flush_lock.acquire(blocking=False):
            return
        self._last_flush = time.monotonic()  # no other caller starts one meanwhile
        try:
            flusher = threading.Thread(
                target=self._flush_then_release, name="beautyspot-stats", daemon=True
            )
            flusher.start()
        except RuntimeError:  # no new threads (the interpreter is exiting): exit flushes
            self._flush_lock.release()

    def _flush_then_release(self) -> None:
        try:
            self._flush_locked()
        finally:
            self._flush_lock.release()

    def _fold(self) -> None:
        """Move what the lists hold into the totals (``_fold_lock`` held). A slice copy and a
        slice delete are each atomic: a key appended between them lands past the taken ones
        and stays for the next fold."""
        keep = self.enabled
        for func_name, keys in list(self._hits.items()):
            taken = len(keys)
            if not taken:
                continue
            batch = keys[:taken]
            del keys[:taken]
            if keep:
                self._totals_of(func_name)[_HIT] += taken
                self._key_hits.update(batch)  # counts the keys in C
        taken = len(self._events)
        if taken:
            events = self._events[:taken]
            del self._events[:taken]
            if keep:
                for func_name, kind in events:
                    self._totals_of(func_name)[kind] += 1

    def _totals_of(self, func_name: str) -> list[int]:
        totals = self._counts.get(func_name)
        if totals is None:
            totals = self._counts[func_name] = [0, 0, 0]
        return totals

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        with self._fold_lock:
            self._fold()
            counts, key_hits = self._counts, self._key_hits
            self._counts, self._key_hits = {}, Counter()
        if not counts or not self.enabled:
            return
        try:
            self.db.add_counts(
                {name: FunctionCounts(*totals) for name, totals in counts.items()}, key_hits
            )
        except NotSupportedError:  # a TaskDB without counts: stop counting, silently
            self.enabled = False
        except Exception as exc:  # the service is down: keep the counts for the next flush
            with self._fold_lock:
                dropped = self._keep(counts, key_hits)
            self._report_failure(exc)  # warnings last: one turned into an error loses nothing
            if dropped:
                self._report_drop()

    def _keep(self, counts: dict[str, list[int]], key_hits: Counter[str]) -> bool:
        """Put back the counts a flush could not add, before those folded since (older keys
        first, so the oldest are the ones dropped past the cap); True if some were dropped."""
        for name, totals in self._counts.items():
            kept = counts.setdefault(name, [0, 0, 0])
            for kind, added in enumerate(totals):
                kept[kind] += added
        key_hits.update(self._key_hits)
        self._counts, self._key_hits = counts, key_hits
        excess = len(key_hits) - self.max_pending_keys
        for key in list(islice(key_hits, max(excess, 0))):
            del key_hits[key]
        return excess > 0

    def _report_failure(self, exc: Exception) -> None:
        if not self._failure_reported:
            self._failure_reported = True
            _warn(
                f"call counts (stats) could not be saved to {self.db!r} "
                f"({type(exc).__name__}: {exc}); they are kept and saved with a later flush"
            )

    def _report_drop(self) -> None:
        if not self._drop_reported:
            self._drop_reported = True
            _warn(
                f"{self.db!r} has not accepted call counts for a while: per-record hits of "
                f"more than {self.max_pending_keys:,} keys are not kept (the oldest were "
                "dropped, so time and tokens saved will read low); per-function totals are kept"
            )

    def _forget_inherited(self) -> None:
        """In a forked child: the parent counts and flushes what it had counted."""
        self._fold_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        for keys in list(self._hits.values()):
            del keys[:]  # in place: marked functions append to these very lists
        del self._events[:]
        self._counts, self._key_hits = {}, Counter()
        self._last_flush = time.monotonic()


def _warn(message: str) -> None:
    warnings.warn(message, BeautyspotWarning, stacklevel=3)


# -- every Tally of the process, for the exit of a forked worker ---------------------------

_tallies: weakref.WeakSet[Tally] = weakref.WeakSet()
_tallies_lock = threading.Lock()


def flush_all() -> None:
    """Flush every Spot's counts in this process now."""
    with _tallies_lock:
        tallies = list(_tallies)
    for tally in tallies:
        tally.flush()


def _after_fork_in_child() -> None:
    global _tallies_lock
    _tallies_lock = threading.Lock()
    for tally in list(_tallies):
        tally._forget_inherited()
    if _tallies:
        _flush_at_worker_exit()


def _flush_at_worker_exit() -> None:
    """A forked ``multiprocessing`` worker ends with ``os._exit``, skipping ``atexit``; its
    exit does run multiprocessing's finalizers, which are reset just after the fork, so one is
    registered from multiprocessing's own after-fork hook."""
    util = sys.modules.get("multiprocessing.util")
    if util is None:  # not a multiprocessing child (nor one it could fork)
        return
    util.register_after_fork(_EXIT_FLUSH, _register_exit_flush)


def _register_exit_flush(_: object) -> None:
    import multiprocessing.util  # already imported: this runs from its after-fork hook

    multiprocessing.util.Finalize(None, flush_all, exitpriority=0)


class _ExitFlush:
    """A weak-referenceable token for multiprocessing's after-fork registry."""


_EXIT_FLUSH = _ExitFlush()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
