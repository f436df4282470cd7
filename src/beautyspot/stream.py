"""Marked generator functions: a miss streams its items as they come and stores them; a hit
replays them.

A marked generator function (``def`` with ``yield``, or ``async def`` with ``yield``) keeps its
kind: calling it returns a generator, or an async generator. Its result is the list of its items,
stored like any result (inline or as a blob, by size), so the dashboard and the CLI show it.

- **A miss** runs the function and hands each item to the caller as soon as it is produced,
  while its encoding is added to the bytes that will be stored. Only a stream that runs to its
  end is stored. An exception raised by the function stores nothing and is recorded as a failure,
  as for any call; a caller that stops early (``break``, ``close()``), a Ctrl-C or a cancelled
  task stores nothing and records nothing: the next call computes again.
- **A hit** replays the stored items without running the function.
- **Another caller** of a key being streamed (a thread, a task, or with ``lease=`` another
  process) waits for the whole stream, then replays it.
- **An unstorable item** raises :class:`~beautyspot.errors.SerializationError` where it comes:
  the caller has had the items before it, and nothing is stored.

Each item is encoded once, as it comes, and only its bytes are kept: the stored bytes are the
serializer's version byte, a msgpack array header, then each item's encoding, which is exactly
how the serializer writes a list (with the array's 32-bit header, which msgpack allows for any
length, so the count can be written once the stream has ended). A stream's cost in memory is
its stored size, whatever the number of callers waiting for it.

The flow is :meth:`MarkedCall.steps <beautyspot.call.MarkedCall.steps>`, as for any call (the
rules of hits, claims and leases cannot drift): only its ``RUN`` step is carried out here, by
iterating the function and passing each item out to the caller.

A stream holds its key (and its lease) until it ends or is closed: a caller that keeps an
unfinished stream makes the other callers of that key wait.

>>> import tempfile, beautyspot as bs
>>> spot = bs.Spot("tokens", db=tempfile.mkdtemp() + "/tokens.db")
>>> @spot.mark
... def words(text):
...     yield from text.split()
>>> list(words("to be or not"))  # a miss: computed, streamed and stored
['to', 'be', 'or', 'not']
>>> list(words("to be or not")), words.is_cached("to be or not")  # a hit: replayed
(['to', 'be', 'or', 'not'], True)
"""

from __future__ import annotations

import contextlib
import inspect
import io
import struct
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any

from beautyspot.call import (
    _ABSENT,
    _MISS,
    RUN,
    BoundCall,
    Encoded,
    MarkedCall,
    Steps,
    _advance,
    _hand_on,
)
from beautyspot.errors import SerializationError
from beautyspot.limiter.base import SPENT
from beautyspot.serializer.tags import FORMAT_VERSION

__all__ = ["stream_kind", "streaming_wrapper"]

#: msgpack's array header with a 32-bit count: its length does not depend on the count.
_ARRAY32 = 0xDD
_HEADER = struct.Struct(">BBI")  # format version, array header, item count

#: A RUN step's reply, as MarkedCall._compute reads it: (ok, Encoded or the error, tokens spent).
_Reply = tuple[bool, Any, list[float]]


def stream_kind(func: Callable[..., Any]) -> str | None:
    """``"sync"`` for a generator function, ``"async"`` for an async generator function, else
    None. A wrapper made with ``functools.wraps`` (a limiter's) is judged by what it wraps.

    >>> def count():
    ...     yield 1
    >>> stream_kind(count), stream_kind(len)
    ('sync', None)
    """
    original = inspect.unwrap(func)
    if inspect.isasyncgenfunction(func) or inspect.isasyncgenfunction(original):
        return "async"
    if inspect.isgeneratorfunction(func) or inspect.isgeneratorfunction(original):
        return "sync"
    return None


def streaming_wrapper(marked: MarkedCall) -> Callable[..., Any]:
    """The function a marked generator function becomes: of the same kind (a generator
    function, or an async generator function); ``spot.mark`` adds its name and helpers."""
    if stream_kind(marked.func) == "async":

        async def stream_async(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            async with contextlib.aclosing(_streamed_async(marked, args, kwargs)) as items:
                async for item in items:
                    yield item

        return stream_async

    def stream_sync(*args: Any, **kwargs: Any) -> Iterator[Any]:
        yield from _streamed_sync(marked, args, kwargs)

    return stream_sync


class _Recording:
    """The stored bytes of a stream, built as its items come, and the tokens it spent."""

    __slots__ = ("_buffer", "_count", "_marked", "error", "spent")

    def __init__(self, marked: MarkedCall) -> None:
        self._marked = marked
        # A BytesIO hands its buffer over without a copy when the stream ends (in CPython).
        self._buffer = io.BytesIO()
        self._buffer.write(bytes(_HEADER.size))  # the header, written when the count is known
        self._count = 0
        self.error: SerializationError | None = None
        self.spent: list[float] = []

    def keep(self, item: Any) -> bool:
        """Add the item's encoding; False (and ``error`` set) if it cannot be stored."""
        try:
            encoded = self._marked.spot.serializer.dumps(item)
        except SerializationError as exc:
            self.error = SerializationError(
                f"{self._marked.func_id} yielded an item that cannot be stored (item "
                f"{self._count}, counting from 0), so nothing was saved; the items before it "
                f"were passed on (the item is on this error as .result): {exc}",
                result=item,
            )
            self.error.__cause__ = exc
            return False
        self._buffer.write(memoryview(encoded)[1:])  # without its format version byte
        self._count += 1
        return True

    def finished(self) -> _Reply:
        """The RUN step's reply for a stream that ended (or stopped at an unstorable item)."""
        if self.error is not None:
            return True, Encoded(None, self.error), self.spent
        buffer = self._buffer
        buffer.seek(0)
        buffer.write(_HEADER.pack(FORMAT_VERSION, _ARRAY32, self._count))
        return True, Encoded(buffer.getvalue()), self.spent

    def failed(self, error: BaseException) -> _Reply:
        """The RUN step's reply for a stream the function (or a Ctrl-C) broke off."""
        return False, error, self.spent

    @contextlib.contextmanager
    def spending(self) -> Iterator[None]:
        """Collect the limiter tokens one step of the function spends (see ``SPENT``); only
        during the step, so what the caller does between items is not counted."""
        step: list[float] = []
        token = SPENT.set(step)
        try:
            yield
        finally:
            _hand_on(token, step)
            self.spent.extend(step)


def _begin(
    marked: MarkedCall,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    owner: tuple[str, int],
    *,
    asynchronous: bool,
) -> tuple[Any, Steps | None]:
    """``(stored items, None)`` for a hit found at once, else ``(None, the call's flow)``; an
    async caller leaves blobs, and reads of a remote TaskDB, to the flow's worker threads."""
    input_id, key, arguments = marked.keys(args, kwargs)
    releases = marked.spot._inflight.releases
    read_db = not asynchronous or marked.spot.db.local_reads
    cached = marked.cached(key, read_db=read_db, load_blobs=not asynchronous)
    if cached is not _MISS and cached is not _ABSENT:
        return cached, None
    call = BoundCall(args, kwargs, arguments, input_id, key)
    return None, marked.steps(call, owner, releases if cached is _ABSENT else None)


def _replayed(marked: MarkedCall, items: Any) -> Iterator[Any]:
    """A stored stream's items, each let go once handed on (the caller may keep it)."""
    if type(items) is not list:
        raise SerializationError(
            f"a stored result of {marked.func_id} is a {type(items).__name__}, not the list of "
            "a stream's items: it was stored before the function became a generator. Pass a "
            "new version= to spot.mark, or invalidate the call"
        )
    items.reverse()
    while items:
        yield items.pop()


def _streamed_sync(
    marked: MarkedCall, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Iterator[Any]:
    """A call of a marked generator function: its items, computed or replayed."""
    found, steps = _begin(
        marked, args, kwargs, ("thread", threading.get_ident()), asynchronous=False
    )
    if steps is None:
        yield from _replayed(marked, found)
        return
    ran = False
    with contextlib.closing(steps):  # a caller that stops early frees the key for others
        finished, step = _advance(steps, None)
        while not finished:
            kind, payload = step
            if kind == RUN:
                ran = True
                reply = yield from _run_sync(marked, payload)
            else:
                reply = marked._carry_out(kind, payload)
            finished, step = _advance(steps, reply)
    if not ran:  # stored meanwhile, by another caller of this key
        yield from _replayed(marked, step)


def _run_sync(marked: MarkedCall, call: BoundCall) -> Generator[Any, None, _Reply]:
    """The RUN step: pass each item on as it comes; return the step's reply."""
    recording = _Recording(marked)
    try:
        with recording.spending():
            items = iter(marked.func(*call.args, **call.kwargs))
    except BaseException as exc:
        return recording.failed(exc)
    try:
        while True:
            try:
                with recording.spending():
                    item = next(items)
            except StopIteration:
                break
            except BaseException as exc:
                return recording.failed(exc)
            if not recording.keep(item):
                break
            yield item
    finally:  # the function's own cleanup runs when it stops early
        close = getattr(items, "close", None)
        if close is not None:
            close()
    return recording.finished()


async def _streamed_async(
    marked: MarkedCall, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> AsyncIterator[Any]:
    """A call of a marked async generator function: its items, computed or replayed."""
    import asyncio  # only async callers need it; keeps `import beautyspot` light

    owner = ("task", id(asyncio.current_task()))
    found, steps = _begin(marked, args, kwargs, owner, asynchronous=True)
    if steps is None:
        for item in _replayed(marked, found):
            yield item
        return
    ran = False
    with contextlib.closing(steps):  # a caller that stops early frees the key for others
        finished, step = _advance(steps, None)
        while not finished:
            kind, payload = step
            if kind != RUN:
                reply = await marked._carry_out_async(kind, payload)
                finished, step = _advance(steps, reply)
                continue
            # The RUN step (an async generator cannot delegate to another one).
            ran = True
            recording = _Recording(marked)
            try:
                with recording.spending():
                    items = marked.func(*payload.args, **payload.kwargs).__aiter__()
            except BaseException as exc:
                reply = recording.failed(exc)
            else:
                try:
                    while True:
                        try:
                            with recording.spending():
                                item = await items.__anext__()
                        except StopAsyncIteration:
                            reply = recording.finished()
                            break
                        except BaseException as exc:
                            reply = recording.failed(exc)
                            break
                        if not recording.keep(item):
                            reply = recording.finished()
                            break
                        yield item
                finally:  # the function's own cleanup runs when it stops early
                    close = getattr(items, "aclose", None)
                    if close is not None:
                        await close()
            finished, step = _advance(steps, reply)
    if not ran:  # stored meanwhile, by another caller of this key
        for item in _replayed(marked, step):
            yield item
