"""One execution per missing key inside a process: later callers wait for the first one."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from concurrent.futures import Future
from typing import NamedTuple

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

    __slots__ = ("_resolved", "_table", "future", "is_leader", "key")

    def __init__(
        self,
        table: InFlight,
        key: str,
        future: Future[Outcome] | None,
        is_leader: bool,
        *,
        detached: bool = False,
    ) -> None:
        self._table = table
        self.key = key
        self.future = future  # a follower's; a leader's is made by its first follower
        self.is_leader = is_leader
        self._resolved = detached  # a re-entrant lead frees nothing: the outer lead will

    def resolve(self, outcome: Outcome) -> None:
        """Leader only: hand the outcome to the followers (if any came) and free the key."""
        if self._resolved:
            return
        self._resolved = True
        future = self._table._release(self.key)
        if future is not None:
            future.set_result(outcome)

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
        # key -> its followers' Future, made only when a first follower comes: most misses
        # have none, and a Future costs more than the rest of a claim.
        self._futures: dict[str, Future[Outcome] | None] = {}
        self._owners: dict[str, Hashable] = {}  # key -> the thread or task leading it
        #: Keys released so far: a lookup made before the latest release may be stale.
        self.releases = 0

    def claim(self, key: str, owner: Hashable = None) -> Claim:
        """Lead the computation of ``key``, or follow the caller that leads it.

        ``owner`` names the thread or task asking. When it already leads ``key`` (the
        computation calls itself with the same arguments), waiting would wait forever: it
        gets a detached lead instead, computes again and frees nothing.
        """
        with self._lock:
            if key not in self._futures:
                self._futures[key] = None
                self._owners[key] = owner
                return Claim(self, key, None, is_leader=True)
            if owner is not None and self._owners.get(key) == owner:
                return Claim(self, key, None, is_leader=True, detached=True)
            future = self._futures[key]
            if future is None:
                future = self._futures[key] = Future()
            return Claim(self, key, future, is_leader=False)

    def _release(self, key: str) -> Future[Outcome] | None:
        with self._lock:
            self.releases += 1
            self._owners.pop(key, None)
            return self._futures.pop(key, None)
