"""Run a marked function over many inputs: bounded, paced, retried and resumable (DESIGN.md §7).

Each item is one call. An item already in the cache is served by the caller without a worker
and without a rate token; the others go to workers (threads, any ``concurrent.futures``
executor, or event-loop tasks), each retried with backoff. Every finished call is saved by the
marked function itself, so a batch that stops anywhere resumes by running the same code again.

The rules are written once: :meth:`.plan.Batch.plan` turns the batch into *steps* (look an
item up and serve it if cached, start it, wait for one to finish, stop), :class:`RetryPolicy`
decides retries, :class:`Progress` and :func:`summary` say where the batch stands. :func:`map`
and :func:`amap` only carry the steps out, one blocking, one awaiting, like the call path in
``call.py``.

Modules: :mod:`.plan` (items, steps, the batch), :mod:`.retries`, :mod:`.progress` (what the
user sees), :mod:`.threads` (:func:`map`), :mod:`.tasks` (:func:`amap`).
"""

from beautyspot.batch.progress import Progress, summary
from beautyspot.batch.retries import MAX_BACKOFF, RetryPolicy, backoff_delay
from beautyspot.batch.tasks import amap
from beautyspot.batch.threads import map

__all__ = ["MAX_BACKOFF", "Progress", "RetryPolicy", "amap", "backoff_delay", "map", "summary"]
