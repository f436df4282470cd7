"""Leases: one caller computes a missing key while callers in other processes and hosts wait.

With ``@spot.mark(lease=seconds)``, a caller that misses takes a lease on the key in the TaskDB
before paying for the computation. A caller elsewhere that finds the lease taken waits for the
holder's record instead of computing, polling with a backoff (two requests a poll, at most ten
requests a second). The holder's :class:`Heartbeat` renews the lease while the function runs,
so a long computation keeps it; when the holder dies, renewals stop, the lease expires and a
waiter takes over. No wait is forever: past ``lease_wait`` a waiter computes the key itself,
with a warning. Callers in one process never poll: they wait for each other in memory.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from typing import TYPE_CHECKING

from beautyspot.errors import ConfigurationError

if TYPE_CHECKING:
    from beautyspot.db.base import TaskDB

__all__ = ["DEFAULT_LEASE_SECONDS", "DEFAULT_LEASE_WAIT", "Heartbeat", "lease_seconds", "new_owner"]

#: The lease of ``lease=True``: long enough that a heartbeat (every third of it) never misses.
DEFAULT_LEASE_SECONDS = 30.0
#: How long a waiter waits for another caller's lease before computing the key itself.
DEFAULT_LEASE_WAIT = 600.0
#: First pause between two polls of a waiter; each poll is two requests (try, then look).
FIRST_POLL = 0.2
#: Longest pause between two polls (and never more than half the lease).
MAX_POLL = 2.0


def lease_seconds(lease: bool | float | None, name: str = "lease") -> float | None:
    """The lease length of a ``lease=`` setting: None (no lease), True (the default length)
    or seconds.

    >>> lease_seconds(True), lease_seconds(None), lease_seconds(5)
    (30.0, None, 5.0)
    """
    if lease is None or lease is False:
        return None
    if lease is True:
        return DEFAULT_LEASE_SECONDS
    if isinstance(lease, (int, float)) and not isinstance(lease, bool) and lease > 0:
        return float(lease)
    raise ConfigurationError(f"{name}={lease!r}: give True, False, None or a number of seconds > 0")


def new_owner() -> str:
    """A name for one lease taker, unique across hosts, processes and calls."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def next_poll(delay: float, seconds: float) -> float:
    """The pause after ``delay``: growing, but never past half the lease or :data:`MAX_POLL`,
    so a waiter notices an expired lease within about the lease's length.

    >>> next_poll(0.2, 30.0), next_poll(2.0, 30.0), next_poll(0.2, 0.3)
    (0.30000000000000004, 2.0, 0.2)
    """
    return min(delay * 1.5, max(FIRST_POLL, seconds / 2), MAX_POLL)


class Heartbeat:
    """Renews a held lease every third of its length, in a thread, until :meth:`release`.

    A renewal that fails for a moment (a network hiccup) is tried again at the next beat. A
    lease found taken by another owner (this holder was paused past its lease) is not fought
    for: the holder's result is still returned and stored, and ``lost`` says it happened.
    """

    def __init__(self, db: TaskDB, cache_key: str, owner: str, seconds: float) -> None:
        self._db, self._key, self._owner, self._seconds = db, cache_key, owner, seconds
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(
            target=self._beat, name=f"beautyspot-lease-{cache_key[:8]}", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._seconds / 3):
            try:
                if not self._db.renew_lease(self._key, self._owner, self._seconds):
                    self.lost = True
                    return
            except Exception:  # transient (a network hiccup): the next beat tries again
                continue

    def release(self) -> None:
        """Stop renewing and give the lease up (if it is still ours)."""
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(Exception):  # unreleased, the lease simply expires
            self._db.release_lease(self._key, self._owner)
