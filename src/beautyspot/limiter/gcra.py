"""GCRA, the generic cell rate algorithm, as one pure function shared by every limiter.

The state is a single number, the theoretical arrival time (TAT): the moment the virtual bucket
will be empty again if nothing more is reserved. Each token adds one *emission interval*
(``60 s / tpm``) to it. A call of ``cost`` tokens may start once the bucket holds no more than
``capacity - cost`` tokens, where ``capacity = max(burst, cost)``: ``burst`` tokens may go at once
after an idle spell, and a call larger than ``burst`` still goes alone once the bucket is empty
(so ``burst=0``, the default, is strict pacing). In classic GCRA terms the delay-variation
tolerance of a call is ``(capacity - cost) * interval``.

The limiter *reserves*: the TAT moves forward at once and the caller waits until its start
time. Starts are therefore handed out in arrival order, a large call is never overtaken by
smaller ones, and the calls starting in any span of ``w`` seconds cost less than
``w / interval + max(burst, largest cost)`` tokens.

``gcra.lua`` repeats :func:`reserve` line for line on the Redis server; this function is the
reference the tests hold it to.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Slot", "emission_interval", "reserve"]


class Slot(NamedTuple):
    """One reservation: the clock reading it was made at, when the call may start, the new TAT."""

    now: float
    start: float
    tat: float

    @property
    def wait(self) -> float:
        """Seconds from the reservation until the call may start (0 when it may go at once).

        >>> Slot(now=10.0, start=12.5, tat=13.5).wait
        2.5
        """
        return self.start - self.now


def emission_interval(tpm: float) -> float:
    """Seconds one token takes to drain at ``tpm`` tokens per minute.

    >>> emission_interval(60)
    1.0
    """
    return 60.0 / tpm


def reserve(tat: float, now: float, cost: float, interval: float, burst: float) -> Slot:
    """Reserve ``cost`` tokens at time ``now`` on a bucket whose state is ``tat``.

    :param tat: the current theoretical arrival time (anything ``<= now`` means idle).
    :param now: the clock reading, in seconds.
    :param cost: tokens this call spends, ``> 0``.
    :param interval: seconds per token, from :func:`emission_interval`.
    :param burst: tokens that may go at once after an idle spell, ``>= 0``.
    :returns: the :class:`Slot` to wait for; its ``tat`` is the new state.

    Strict pacing at one token a second: back-to-back calls start one second apart.

    >>> first = reserve(float("-inf"), now=0.0, cost=1, interval=1.0, burst=0)
    >>> first
    Slot(now=0.0, start=0.0, tat=1.0)
    >>> reserve(first.tat, now=0.0, cost=1, interval=1.0, burst=0)
    Slot(now=0.0, start=1.0, tat=2.0)
    """
    capacity = max(burst, cost)
    new_tat = max(tat, now) + cost * interval
    start = max(now, new_tat - capacity * interval)
    return Slot(now, start, new_tat)
