"""What one call of a marked function does; sync and async share this one path.

The flow (DESIGN.md §2) is written once, as a generator of *steps*. Each step names a wait the
flow needs: read the TaskDB, do blocking I/O, wait for another caller computing the same key, or
run the user's function. Two small drivers carry the steps out: the sync one calls and blocks;
the async one awaits, running blocking I/O in a worker thread so the event loop never stalls.
That way the rules (what is a hit, when a record is written, who runs once) cannot drift
between sync and async code.
"""

from __future__ import annotations

import inspect
import reprlib
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Generator, Hashable, Mapping
from contextlib import closing, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from beautyspot import cachekey
from beautyspot.cachekey.digests import KeyedArguments
from beautyspot.db.base import BLOB, INLINE, FailureRecord, TaskRecord
from beautyspot.errors import (
    BeautyspotWarning,
    CacheKeyError,
    NotSupportedError,
    SerializationError,
)
from beautyspot.explain import record_digests
from beautyspot.inflight import Outcome
from beautyspot.integrity import checksum_of, matches
from beautyspot.lease import DEFAULT_LEASE_WAIT, FIRST_POLL, Heartbeat, new_owner, next_poll
from beautyspot.limiter.base import SPENT
from beautyspot.stats import COMPACT_AT

if TYPE_CHECKING:
    from beautyspot.spot import Spot

__all__ = ["NOT_CACHED", "MarkOptions", "MarkedCall"]

#: Step kinds a driver understands.
READ = "read"  # a TaskDB read: cheap when the backend says ``local_reads``
IO = "io"  # blocking I/O: blob load/save, TaskDB writes
WAIT = "wait"  # another caller's computation of the same key
RUN = "run"  # the user's function
SLEEP = "sleep"  # a pause between two looks at another process's lease

Step = tuple[str, Any]
Steps = Generator[Step, Any, Any]

#: What :meth:`MarkedCall.cached_result` returns for a call with no usable stored result.
NOT_CACHED: Any = object()
_MISS = object()
_ABSENT = object()  # a miss after a full look: no usable record (none, expired or damaged)
_PREVIEW_CHARS = 200
_RECENT_KEYS = 100_000  # at most ~40 MB of remembered keys, whatever the memory tier's size
_preview_repr = reprlib.Repr()
_preview_repr.maxstring = 80
_preview_repr.maxother = 80


def preview_of(arguments: Mapping[str, Any]) -> str:
    """A short, human-readable view of a call's arguments for the dashboard and failures.

    >>> preview_of({"text": "A", "n": list(range(100))})
    "text='A', n=[0, 1, 2, 3, 4, 5, ...]"
    """
    parts = []
    for name, value in arguments.items():
        try:
            shown = _preview_repr.repr(value)
        except Exception:  # a user's __repr__ may raise; the preview is only a hint
            shown = f"<{type(value).__qualname__}>"
        parts.append(f"{name}={shown}")
    text = ", ".join(parts)
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 3] + "..."


def call_signature(func: Callable[..., Any]) -> inspect.Signature:
    """The signature callers actually call: the function's own, or, for a ``(*args,
    **kwargs)`` wrapper made with ``functools.wraps``, the wrapped function's."""
    own = inspect.signature(func, follow_wrapped=False)
    kinds = [parameter.kind for parameter in own.parameters.values()]
    if kinds == [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]:
        return inspect.signature(func)
    return own


@dataclass(frozen=True)
class MarkOptions:
    """Per-function settings given to ``spot.mark``, already validated."""

    save_blob: bool | None
    input_key_fn: Callable[..., Any] | None
    version: str | None
    content_type: str | None
    retention_seconds: float | None
    ignore: frozenset[str]
    lease_seconds: float | None = None  # None: no lease (see beautyspot.lease)
    lease_wait: float = DEFAULT_LEASE_WAIT
    paced: bool = True  # False: computes without the Spot's rate on purpose (no warning)


class BoundCall(NamedTuple):
    """One call's arguments and the keys derived from them."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    arguments: Mapping[str, Any] | None  # None until needed, for plain positional calls
    input_id: str
    cache_key: str


class Encoded(NamedTuple):
    """A RUN step's result that its driver encoded as it came (a stream's items, see
    :mod:`beautyspot.stream`): the bytes to store, or why they cannot be stored."""

    data: bytes | None
    error: SerializationError | None = None


class MarkedCall:
    """Everything a marked function needs per call, prepared once at decoration time."""

    def __init__(
        self,
        spot: Spot,
        func: Callable[..., Any],
        options: MarkOptions,
        identity: cachekey.FunctionIdentity | None = None,
    ) -> None:
        self.spot = spot
        self.func = func
        self.options = options
        registered = spot.serializer.registered
        # Closure values and a method's receiver are read now, once: state that changes after
        # decoration (a list the function appends to) must not change its keys. A copy in
        # another process keeps the identity given here (see __reduce__).
        self.identity = identity or cachekey.identify(
            func, version_auto=options.version == "auto", ignore=options.ignore,
            registered=registered,
        )  # fmt: skip
        self.func_id = self.identity.name
        self.signature = call_signature(func)
        # A binding plan for the common signature (plain parameters, no */**): binding by hand
        # costs a fraction of Signature.bind, which stays the path for everything else.
        parameters = self.signature.parameters.values()
        plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters)
        self._names = tuple(p.name for p in parameters) if plain else None
        self._defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
        key_names = tuple(p.name for p in parameters if p.name not in options.ignore)
        if options.input_key_fn is not None:
            key_names = ("input_key_fn",)
        # In front of a memory tier, a hit costs little but its keys: remember recent ones.
        memory = spot.memory
        recent = 0 if memory is None else min(memory.max_entries or _RECENT_KEYS, _RECENT_KEYS)
        self._plan = cachekey.KeyPlan(
            self.identity.key, options.version, key_names, registered, recent_entries=recent
        )
        self._stale_code_reported = False
        # A Spot with a rate, and a function that may be expected to use it: warn at the first
        # miss that spent no tokens (tpm= alone paces nothing; see Spot.mark's paced=).
        self._unpaced_unreported = options.paced and spot._limiter is not None
        # A call passing every key argument positionally needs no binding at all.
        self._positional_arity = (
            len(self._names)
            if self._names is not None and not options.ignore and options.input_key_fn is None
            else -1
        )
        self._save_failures_reported: set[type[BaseException]] = set()
        # Stats: a hit appends its key to a list, nothing more (see beautyspot.stats).
        self._tally = spot._tally
        self._hits = self._tally.hits_of(self.func_id)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles by configuration, keeping the identity computed where the function was
        marked: a function of a script's ``__main__`` shipped by value to a cluster worker
        (cloudpickle) would otherwise be identified there as code without a stable name."""
        return (type(self), (self.spot, self.func, self.options, self.identity))

    def repaced(self, paced: Callable[..., Any]) -> Any:
        """This marked function again, computing through ``paced``: a limiter's wrapper of
        :attr:`func` (a limiter written above ``@spot.mark`` so paces misses only)."""
        from beautyspot.spot import _marked_function  # spot.py imports this module

        return _marked_function(MarkedCall(self.spot, paced, self.options, self.identity))

    def __beautyspot_key__(self) -> tuple[str, str | None]:
        """A marked function captured by another one, or passed as an argument, is keyed by
        what names its results, never by its Spot's connections and locks."""
        return self.identity.key, self.options.version

    # -- keys -------------------------------------------------------------------------------

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Parameter name -> value for this call, defaults applied (as Signature.bind does)."""
        names = self._names
        if names is not None and len(args) <= len(names):
            arguments = dict(zip(names, args, strict=False))  # names may outnumber args
            used = 0
            for name in names[len(args) :]:
                if name in kwargs:
                    arguments[name] = kwargs[name]
                    used += 1
                elif name in self._defaults:
                    arguments[name] = self._defaults[name]
                else:
                    break  # a missing argument: let Signature.bind raise the usual TypeError
            else:
                if used == len(kwargs):
                    return arguments
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.arguments

    def keys(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[str, str, Mapping[str, Any] | None]:
        """``(input_id, cache_key, arguments)`` of a call; ``arguments`` (bound, defaults
        applied) is None when the call needed no binding to be keyed."""
        plan = self._plan
        if not kwargs and len(args) == self._positional_arity:
            input_id, key = plan.keys(args)
            return input_id, key, None
        arguments = self._arguments(args, kwargs)
        if self.options.ignore:
            arguments = {k: v for k, v in arguments.items() if k not in self.options.ignore}
        if self.options.input_key_fn is not None:
            custom_key = self.options.input_key_fn(*args, **kwargs)
            try:
                input_id = cachekey.input_id({"input_key_fn": custom_key}, plan.walk())
            except CacheKeyError as exc:
                raise CacheKeyError(
                    f"the input_key_fn of {self.func_id} returned a value that cannot be keyed; "
                    f"return a str, bytes, number or a tuple of them ({exc})"
                ) from None
            arguments = KeyedArguments(arguments, custom_key)
        else:
            input_id = cachekey.input_id(arguments, plan.walk())
        return input_id, plan.cache_key(input_id), arguments

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> BoundCall:
        """Bind a call to the signature (defaults applied) and derive its keys."""
        input_id, key, arguments = self.keys(args, kwargs)
        return BoundCall(args, kwargs, arguments, input_id, key)

    def arguments_of(self, call: BoundCall) -> Mapping[str, Any]:
        """The call's arguments by name (bound lazily: a hit never needs them)."""
        if call.arguments is not None:
            return call.arguments
        assert self._names is not None  # only plain signatures skip binding
        return dict(zip(self._names, call.args, strict=True))

    # -- the flow ---------------------------------------------------------------------------

    def cached(self, cache_key: str, *, read_db: bool, load_blobs: bool) -> Any:
        """A hit served by the caller itself, else ``_ABSENT`` (the TaskDB holds no usable
        record: none, expired or damaged) or ``_MISS`` (not looked at fully): from the memory
        tier or, with ``read_db``, from the TaskDB, loading a blob only with ``load_blobs`` (an
        async caller leaves that to a worker thread).
        """
        memory = self.spot.memory
        if memory is not None and (data := memory.get(cache_key)) is not None:
            found = self._decode(cache_key, data)
            if found is not None:
                hits = self._hits
                hits.append(cache_key)
                if len(hits) > COMPACT_AT:
                    self._tally.fold()
                return found[0]
        if not read_db:
            return _MISS
        row = self.spot.db.lookup(cache_key)
        if row is None:
            return _ABSENT
        data, _, expires_at, _ = row
        if expires_at is not None and not _is_live(expires_at):
            return _ABSENT
        if type(data) is str:  # a blob's location
            if not load_blobs:
                return _MISS
            data = self._load_blob(data)
        found = self._verify(cache_key, row, data)
        if found is None:
            return _ABSENT
        hits = self._hits  # counted: one append (see beautyspot.stats)
        hits.append(cache_key)
        if len(hits) > COMPACT_AT:
            self._tally.fold()
        return found[0]

    def steps(self, call: BoundCall, owner: Hashable, absent_as_of: int | None = None) -> Steps:
        """The call after :meth:`cached` missed, as steps; returns the result.

        ``owner`` is the thread or task making the call: a call that the computation of the
        same key makes (a refresh-and-retry) computes again instead of waiting for itself.

        ``absent_as_of``: :meth:`cached` found no usable record while the in-flight table had
        seen this many releases. If none happened since, no leader of this process stored the key
        in between, so the look before paying can be skipped.
        """
        while True:
            claim = self.spot._inflight.claim(call.cache_key, owner)
            if claim.is_leader:
                break
            outcome: Outcome = yield WAIT, claim.future
            if outcome.error is not None:
                raise outcome.error
            if outcome.encoded is not None:
                self._count_hit(call.cache_key)  # served by another caller's computation
                return self.spot.serializer.loads(outcome.encoded)
        try:
            # Another process, or a leader that finished before our claim, may have stored it
            # meanwhile; and an async caller's blob records come here to be loaded.
            found = heartbeat = None
            if absent_as_of != self.spot._inflight.releases:
                found = yield from self._lookup(call.cache_key)
            if found is None and self.options.lease_seconds is not None:
                heartbeat, found = yield from self._lease(call.cache_key)
            if found is not None:
                self._count_hit(call.cache_key)
                value, encoded = found
            else:
                try:
                    value, encoded = yield from self._compute(call)
                except BaseException:
                    if heartbeat is not None:
                        heartbeat.release()  # no step here: the flow may be closing
                    raise
                if heartbeat is not None:
                    yield IO, (heartbeat.release,)
            claim.resolve(Outcome(encoded=encoded))
            return value
        except Exception as exc:
            claim.resolve(Outcome(error=exc))
            raise
        finally:
            # No-op once resolved; on cancellation, Ctrl-C or a closed flow, waiters retry.
            claim.abandon()

    def _compute(self, call: BoundCall) -> Steps:
        """Run the function and store its result: ``(value, stored bytes)``."""
        started = time.perf_counter()
        ok, value, spent = yield RUN, call
        duration = time.perf_counter() - started
        if not ok:
            if isinstance(value, Exception):
                self._tally.count_failure(self.func_id)
                yield IO, (self._record_failure, call, value)
            raise value
        self._tally.count_miss(self.func_id)
        if self._unpaced_unreported and not spent:
            self._warn_unpaced()
        encoded = self._encode(value)
        cost = float(sum(spent)) if spent else None
        yield IO, (self._store, call, encoded, duration, cost)
        return value, encoded

    def _lease(self, cache_key: str) -> Steps:
        """Take the key's lease, or wait for its holder's record: ``(Heartbeat, None)`` to
        compute, ``(None, (value, stored bytes))`` when the holder's record came, ``(None,
        None)`` to compute without a lease after ``lease_wait``."""
        db, seconds = self.spot.db, self.options.lease_seconds
        assert seconds is not None
        owner = new_owner()
        deadline = time.monotonic() + self.options.lease_wait
        delay = FIRST_POLL
        while True:
            if (yield IO, (db.acquire_lease, cache_key, owner, seconds)):
                # The previous holder may have stored the key and let go since we looked.
                found = yield from self._lookup(cache_key)
                if found is not None:
                    yield IO, (db.release_lease, cache_key, owner)
                    return None, found
                return Heartbeat(db, cache_key, owner, seconds), None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _warn(
                    f"{self.func_id}: another caller has held the lease on {cache_key} for more "
                    f"than lease_wait={self.options.lease_wait:g}s; computing it here"
                )
                return None, None
            yield SLEEP, min(delay, remaining)
            found = yield from self._lookup(cache_key)
            if found is not None:
                return None, found
            delay = next_poll(delay, seconds)

    def _lookup(self, cache_key: str) -> Steps:
        """``(result, stored bytes)`` of a live, intact record, or None."""
        row = yield READ, (self.spot.db.lookup, cache_key)
        if row is None or (row[2] is not None and not _is_live(row[2])):
            return None
        data = row[0]
        if type(data) is str:  # a blob's location
            data = yield IO, (self._load_blob, data)
        return self._verify(cache_key, row, data)

    def _count_hit(self, cache_key: str) -> None:
        """Count a hit off the hot path (a hit in :meth:`cached` does the same inline)."""
        self._hits.append(cache_key)
        if len(self._hits) > COMPACT_AT:
            self._tally.fold()

    def _verify(self, cache_key: str, row: tuple[Any, ...], data: Any) -> tuple[Any, bytes] | None:
        """Decode a record's bytes if they are what was stored; bad records are misses.
        ``row`` is the record's :class:`~beautyspot.db.base.HitRow`; ``data`` its bytes
        (None when a blob could not be read, which ``_load_blob`` has said)."""
        payload, checksum, expires_at, fingerprint = row
        if type(data) is not bytes:
            if data is None and type(payload) is str:
                return None  # a blob that could not be read: _load_blob said why
            _warn(f"record {cache_key} has no readable result; recomputing")
            return None
        # A blob that others may write is trusted only on a cryptographic tag (DESIGN.md §2).
        blob = type(payload) is str
        cryptographic = blob and self.spot.storage.writable_apart_from_records
        if checksum and not matches(checksum, data, cryptographic=cryptographic):
            _warn(f"record {cache_key}: stored bytes fail their checksum; recomputing")
            return None
        found = self._decode(cache_key, data)
        if found is None:
            return None
        memory = self.spot.memory
        if memory is not None:
            memory.put(cache_key, data, expires_at)
        if fingerprint != self.identity.fingerprint and fingerprint is not None:
            self._warn_stale_code()
        return found

    def _warn_stale_code(self) -> None:
        """Warn once when a hit was computed by other code: ``version=`` decides what is
        stale, so the result is served, but the user should know."""
        if self._stale_code_reported:
            return
        self._stale_code_reported = True
        _warn(
            f"results of {self.func_id} were computed by different code (or another Python "
            f"version); they are served because version={self.options.version!r} did not "
            "change. Pass a new version= to recompute, or version='auto' to recompute whenever "
            "the code changes"
        )

    def _warn_unpaced(self) -> None:
        """Warn once that a Spot's rate limit did not pace this function: ``tpm=`` states a
        budget, but only the function can say what a call costs."""
        self._unpaced_unreported = False
        _warn(
            f"{self.func_id} was computed without spending any of the rate limit of Spot "
            f"{self.spot.name!r} ({self.spot._limiter!r}): a Spot's tpm= paces nothing by "
            "itself. Add @spot.limiter(cost=...) to the function (tokens per call, or a "
            "callable of its arguments), or mark it with paced=False if it needs no pacing"
        )

    def _decode(self, cache_key: str, data: bytes) -> tuple[Any, bytes] | None:
        try:
            return self.spot.serializer.loads(data), data
        except SerializationError as exc:
            _warn(f"record {cache_key} cannot be decoded ({exc}); recomputing")
            return None

    def cached_result(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """This call's live, intact stored result, or :data:`NOT_CACHED`; blocking (a batch
        looks its items up with it, serving hits without a worker)."""
        found = self.cached(self.keys(args, kwargs)[1], read_db=True, load_blobs=True)
        return NOT_CACHED if found is _MISS or found is _ABSENT else found

    # -- helpers offered on the marked function ----------------------------------------------

    def cache_key(self, *args: Any, **kwargs: Any) -> str:
        """The key this call's result is stored under."""
        return self.keys(args, kwargs)[1]

    def is_cached(self, *args: Any, **kwargs: Any) -> bool:
        """True if a live (unexpired) record exists for this call; the result is not read."""
        row = self.spot.db.lookup(self.keys(args, kwargs)[1])
        return row is not None and (row[2] is None or _is_live(row[2]))

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Forget this call's result so the next call recomputes; True if one was stored."""
        key = self.keys(args, kwargs)[1]
        if self.spot.memory is not None:
            self.spot.memory.discard(key)
        record = self.spot.db.get(key)
        deleted = self.spot.db.delete(key)
        if record is not None and record.get("result_type") == BLOB:
            # An orphan blob is harmless (garbage collection removes it); a stale record isn't.
            with suppress(OSError, NotSupportedError):
                self.spot.storage.delete(record["result_value"])
        return deleted

    def _load_blob(self, location: str) -> bytes | None:
        try:
            return self.spot.storage.load(location)
        except OSError as exc:
            _warn(f"blob {location!r} cannot be read ({exc}); recomputing")
            return None

    def _encode(self, value: Any) -> bytes:
        if type(value) is Encoded:
            if value.error is not None:
                raise value.error
            assert value.data is not None
            return value.data
        try:
            return self.spot.serializer.dumps(value)
        except SerializationError as exc:
            raise SerializationError(
                f"{self.func_id} returned a value that cannot be stored, so nothing was saved "
                f"(the value is on this error as .result): {exc}",
                result=value,
            ) from exc

    def _store(
        self, call: BoundCall, encoded: bytes, duration: float, cost: float | None = None
    ) -> None:
        """Write the blob (if any), then the record; a failed save warns, the result stands.
        ``cost``: the limiter tokens computing it spent (None when nothing paced it)."""
        options = self.options
        as_blob = (
            len(encoded) > self.spot.blob_threshold
            if options.save_blob is None
            else options.save_blob
        )
        # Bytes beside their records get a fast tag; blobs others may write, a cryptographic one.
        cryptographic = as_blob and self.spot.storage.writable_apart_from_records
        checksum = checksum_of(encoded, cryptographic=cryptographic)
        now = time.time()
        expires_at = None if options.retention_seconds is None else now + options.retention_seconds
        try:
            if as_blob:
                # The checksum in the blob's name lets two writers of one key never overwrite
                # each other's blob while their records race; the loser's blob is an orphan
                # that garbage collection removes.
                blob_key = f"{call.cache_key}-{checksum.partition(':')[2][:16]}"
                location = self.spot.storage.save(blob_key, encoded)
                placement: dict[str, Any] = {"result_type": BLOB, "result_value": location}
            else:
                placement = {"result_type": INLINE, "result_data": encoded}
            self.spot.db.save_record(
                TaskRecord(
                    cache_key=call.cache_key,
                    func_name=self.func_id,
                    input_id=call.input_id,
                    version=options.version,
                    content_type=options.content_type,
                    input_preview=preview_of(self.arguments_of(call)),
                    checksum=checksum,
                    size=len(encoded),
                    duration=duration,
                    created_at=now,
                    expires_at=expires_at,
                    code_fingerprint=self.identity.fingerprint,
                    cost=cost,
                    arg_digests=record_digests(self, call),  # for explain; a miss only
                    **placement,
                )
            )
        except Exception as exc:  # the result is paid for: return it even if it can't be kept
            # Once per error type: a full disk would otherwise warn for every item of a batch.
            if type(exc) not in self._save_failures_reported:
                self._save_failures_reported.add(type(exc))
                _warn(
                    f"{self.func_id}: result computed but not saved ({type(exc).__name__}: {exc}); "
                    "the call returns it anyway, and further such failures are not repeated"
                )
            return
        if self.spot.memory is not None:
            self.spot.memory.put(call.cache_key, encoded, expires_at)

    def _record_failure(self, call: BoundCall, error: Exception) -> None:
        failure = FailureRecord(
            cache_key=call.cache_key,
            func_name=self.func_id,
            input_preview=preview_of(self.arguments_of(call)),
            error_type=type(error).__qualname__,
            message=str(error),
            traceback="".join(traceback.format_exception(error)),
            created_at=time.time(),
        )
        try:
            self.spot.db.record_failure(failure)
        except Exception as exc:  # the user's own error matters more than its record
            _warn(f"{self.func_id}: failure could not be recorded ({type(exc).__name__}: {exc})")

    # -- drivers: the only code that differs between sync and async -----------------------

    def run_sync(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Carry out a call in the calling thread."""
        input_id, key, arguments = self.keys(args, kwargs)
        releases = self.spot._inflight.releases
        cached = self.cached(key, read_db=True, load_blobs=True)
        if cached is not _MISS and cached is not _ABSENT:
            return cached
        call = BoundCall(args, kwargs, arguments, input_id, key)
        owner = ("thread", threading.get_ident())
        steps = self.steps(call, owner, releases if cached is _ABSENT else None)
        with closing(steps):  # an interrupted wait frees this key for other callers
            finished, item = _advance(steps, None)
            while not finished:
                finished, item = _advance(steps, self._carry_out(*item))
            return item

    async def run_async(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Carry out a call on the event loop; blocking I/O goes to a worker thread."""
        import asyncio  # only async callers need it; keeps `import beautyspot` light

        input_id, key, arguments = self.keys(args, kwargs)
        releases = self.spot._inflight.releases
        local = self.spot.db.local_reads
        cached = self.cached(key, read_db=local, load_blobs=False)
        if cached is not _MISS and cached is not _ABSENT:
            return cached
        call = BoundCall(args, kwargs, arguments, input_id, key)
        owner = ("task", id(asyncio.current_task()))
        steps = self.steps(call, owner, releases if cached is _ABSENT else None)
        with closing(steps):  # a cancelled wait frees this key for other callers
            finished, item = _advance(steps, None)
            while not finished:
                finished, item = _advance(steps, await self._carry_out_async(*item))
            return item

    def _carry_out(self, kind: str, payload: Any) -> Any:
        if kind == RUN:
            spent: list[float] = []  # the limiter tokens the function spends (see SPENT)
            token = SPENT.set(spent)
            try:
                return True, self.func(*payload.args, **payload.kwargs), spent
            except BaseException as exc:
                return False, exc, spent
            finally:
                _hand_on(token, spent)
        if kind == WAIT:
            return payload.result()
        if kind == SLEEP:
            return time.sleep(payload)
        function, *arguments = payload
        return function(*arguments)

    async def _carry_out_async(self, kind: str, payload: Any) -> Any:
        import asyncio  # only async callers need it; keeps `import beautyspot` light

        if kind == RUN:
            spent: list[float] = []
            token = SPENT.set(spent)
            try:
                return True, await self.func(*payload.args, **payload.kwargs), spent
            except BaseException as exc:
                return False, exc, spent
            finally:
                _hand_on(token, spent)
        if kind == WAIT:
            return await asyncio.wrap_future(payload)
        if kind == SLEEP:
            return await asyncio.sleep(payload)
        function, *arguments = payload
        if kind == READ and self.spot.db.local_reads:
            return function(*arguments)
        return await asyncio.to_thread(function, *arguments)


def _hand_on(token: Any, spent: list[float]) -> None:
    """Restore the caller's token report (:data:`SPENT`) and add to it what this call spent: a
    marked function computing inside another one spent its tokens on the outer computation."""
    SPENT.reset(token)
    outer = SPENT.get()
    if outer is not None and spent:
        outer.extend(spent)


def _advance(steps: Steps, reply: Any) -> tuple[bool, Any]:
    """Send ``reply`` into the flow: ``(False, next_step)`` or ``(True, result)``."""
    try:
        return False, steps.send(reply)
    except StopIteration as done:
        return True, done.value


def _is_live(expires_at: Any) -> bool:
    """True unless ``expires_at`` (a record's, not None) has passed or is not a time."""
    if isinstance(expires_at, (int, float)) and not isinstance(expires_at, bool):
        return expires_at > time.time()
    _warn(f"a record's expires_at is not a time ({type(expires_at).__name__}); recomputing")
    return False


def _warn(message: str) -> None:
    warnings.warn(message, BeautyspotWarning, stacklevel=2)
