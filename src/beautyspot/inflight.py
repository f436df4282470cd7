"""One execution per missing key inside a process: later callers wait for the first one."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any, NamedTuple

__all__ = ["Claim", "InFlight", "Outcome"]


class Outcome(NamedTuple):
    """What a leader hands to its followers.

    ``encoded`` holds the stored bytes (each follower decodes its own copy, so no two callers
    share a mutable result); ``error`` an exception to re-raise; both None means "the leader
    gave up (cancelled or interrupted): try again yourself".
    """

    encoded: bytes | None = None
    error: BaseException | None = None


_RETRY = Outcome()


class Claim:
    """A caller's place for one key: the leader runs the function, followers wait on ``future``.

    A ``concurrent.futures.Future`` is thread-safe and awaitable through
    ``asyncio.wrap_future``, so threads and event-loop tasks share one mechanism.
    """

    __slots__ = ("_table", "future", "is_leader", "key")

    def __init__(self, table: InFlight, key: str, future: Future[Outcome], is_leader: bool):
        self._table = table
        self.key = key
        self.future = future
        self.is_leader = is_leader

    def resolve(self, outcome: Outcome) -> None:
        """Leader only: hand the outcome to the followers and free the key."""
        self._table._release(self.key, self.future)
        if not self.future.done():
            self.future.set_result(outcome)

    def abandon(self) -> None:
        """Leader only: free the key without an outcome; followers retry."""
        self.resolve(_RETRY)


class InFlight:
    """The keys being computed right now in this process.

    >>> table = InFlight()
    >>> first, second = table.claim("k"), table.claim("k")
    >>> first.is_leader, second.is_leader
    (True, False)
    >>> first.resolve(Outcome(encoded=b"x")); second.future.result().encoded
    b'x'
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[str, Future[Outcome]] = {}

    def claim(self, key: str) -> Claim:
        with self._lock:
            future = self._futures.get(key)
            if future is not None:
                return Claim(self, key, future, is_leader=False)
            future = self._futures[key] = Future()
            return Claim(self, key, future, is_leader=True)

    def _release(self, key: str, future: Future[Any]) -> None:
        with self._lock:
            if self._futures.get(key) is future:
                del self._futures[key]
