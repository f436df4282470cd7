"""Spot: where results live and how calls are paced; ``mark`` puts a function under it."""

from __future__ import annotations

import functools
import inspect
import os
import typing
import warnings
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar, overload

from beautyspot import batch
from beautyspot.call import MarkedCall, MarkOptions
from beautyspot.db import SQLiteTaskDB, TaskDB, taskdb_from
from beautyspot.errors import BeautyspotWarning, ConfigurationError, NotSupportedError
from beautyspot.explain import Explanation, explainer
from beautyspot.inflight import InFlight
from beautyspot.lease import DEFAULT_LEASE_WAIT, lease_seconds
from beautyspot.limiter import limiter_from
from beautyspot.maintenance import DEFAULT_OLDER_THAN, GCReport, collect_garbage
from beautyspot.memory import MemoryCache
from beautyspot.retention import Retention, retention_seconds
from beautyspot.serializer import Serializer
from beautyspot.stats import Tally
from beautyspot.storage import BlobStorageBase, storage_from
from beautyspot.stream import stream_kind, streaming_wrapper

__all__ = ["DEFAULT_BLOB_THRESHOLD", "MarkedFunction", "Project", "Spot"]

P = ParamSpec("P")
R = TypeVar("R")

#: Encoded results larger than this go to blob storage when ``save_blob=None``.
DEFAULT_BLOB_THRESHOLD = 256 * 1024


class _Inherit:
    """Marks a ``mark`` option left out, so the Spot's setting applies (None is a real value)."""

    def __repr__(self) -> str:
        return "<the Spot's setting>"


_INHERIT: Any = _Inherit()


class MarkedFunction(Protocol[P, R]):
    """What ``spot.mark`` returns: the function, called as before, computed once per input.

    It keeps the function's name, docstring and signature (``__wrapped__`` is the original) and
    adds helpers that take the same arguments as the function.
    """

    __wrapped__: Callable[P, R]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The key this call's result is stored under."""
        ...

    def is_cached(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """True if a live (unexpired) record exists for this call."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Forget this call's result so the next call recomputes; True if one was stored."""
        ...

    def explain(self, *args: P.args, **kwargs: P.kwargs) -> Explanation:
        """Whether this call would hit and, if not, why; runs and writes nothing."""
        ...

    def map(self, items: Iterable[Any], /, **options: Any) -> list[Any]:
        """``spot.map(fn, items, ...)`` for this function (see :func:`beautyspot.batch.map`)."""
        ...

    async def amap(self, items: Iterable[Any], /, **options: Any) -> list[Any]:
        """``spot.amap(fn, items, ...)`` for this function (see :func:`beautyspot.batch.amap`)."""
        ...


def _marked_function(marked: MarkedCall) -> Any:
    """A plain function (so methods, ``inspect`` and asyncio treat it as before) over ``marked``."""
    if inspect.iscoroutinefunction(marked.func):

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            return await marked.run_async(args, kwargs)

        wrapper: Any = call_async
    elif stream_kind(marked.func) is not None:  # a generator function: see beautyspot.stream
        wrapper = streaming_wrapper(marked)
    else:

        def call_sync(*args: Any, **kwargs: Any) -> Any:
            return marked.run_sync(args, kwargs)

        wrapper = call_sync
    functools.update_wrapper(wrapper, marked.func)
    wrapper._marked_call = marked  # for batches: beautyspot's own, not part of the API
    wrapper.cache_key = marked.cache_key
    wrapper.is_cached = marked.is_cached
    wrapper.invalidate = marked.invalidate
    wrapper.explain = explainer(marked)
    wrapper.map = functools.partial(batch.map, wrapper)
    wrapper.amap = functools.partial(batch.amap, wrapper)
    return wrapper


class Spot:
    """A place where results live: a TaskDB for records, a blob storage, a rate limit.

    :param name: names the defaults: ``./{name}.db`` and the blob folder ``./{name}_blobs``.
    :param db: a :class:`~beautyspot.db.TaskDB`, a SQLite file path, or a URL.
    :param storage: a :class:`~beautyspot.storage.BlobStorageBase`, a folder, or a URL.
    :param save_blob: default for ``mark``: None = by size, True = always, False = never.
    :param blob_threshold: bytes above which a result goes to blob storage (``save_blob=None``).
    :param retention: default lifetime of results: None (forever), seconds, "7d", a timedelta.
    :param serializer: a :class:`~beautyspot.serializer.Serializer` (one per Spot by default).
    :param tpm: tokens per minute for ``@spot.limiter`` (alias ``tokens_per_minute``).
    :param burst: tokens that may go at once after idle (default: strict pacing).
    :param limiter: a limiter instance, or a ``redis://`` URL to share one budget.
    :param memory_cache: an in-process tier in front of ``db``: a number of entries, or a
        :class:`~beautyspot.memory.MemoryCache` (bounded by entries and/or bytes). Off by default.
    :param lease: default for ``mark``: a missing key is computed by one caller across processes
        and hosts while the others wait (see :mod:`beautyspot.lease`): True, or the lease's
        seconds. Off by default.
    :param lease_wait: seconds a caller waits for another's lease before computing itself.

    >>> import tempfile, beautyspot as bs
    >>> spot = bs.Spot("demo", db=tempfile.mkdtemp() + "/demo.db")
    >>> @spot.mark
    ... def double(x):
    ...     return x * 2
    >>> double(21), double.is_cached(21), double.is_cached(22)
    (42, True, False)
    """

    def __init__(
        self,
        name: str,
        db: TaskDB | str | os.PathLike[str] | None = None,
        storage: BlobStorageBase | str | os.PathLike[str] | None = None,
        *,
        save_blob: bool | None = None,
        blob_threshold: int = DEFAULT_BLOB_THRESHOLD,
        retention: Retention = None,
        serializer: Serializer | None = None,
        tpm: float | None = None,
        tokens_per_minute: float | None = None,
        burst: float | None = None,
        limiter: Any = None,
        memory_cache: int | MemoryCache | None = None,
        lease: bool | float | None = None,
        lease_wait: float = DEFAULT_LEASE_WAIT,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"name={name!r}: give the Spot a non-empty string name")
        if save_blob not in (None, True, False):
            raise ConfigurationError(f"save_blob={save_blob!r}: use None (by size), True or False")
        if isinstance(blob_threshold, bool) or not isinstance(blob_threshold, int):
            raise ConfigurationError(f"blob_threshold={blob_threshold!r}: give a number of bytes")
        if blob_threshold < 0:
            raise ConfigurationError(f"blob_threshold={blob_threshold!r}: must be >= 0")
        if tokens_per_minute is not None:
            if tpm is not None:
                raise ConfigurationError(
                    "tpm and tokens_per_minute are the same setting: give only one"
                )
            tpm = tokens_per_minute
        if serializer is not None and not isinstance(serializer, Serializer):
            raise ConfigurationError(
                f"serializer={serializer!r}: expected a beautyspot Serializer instance"
            )
        self.name = name
        self.save_blob = save_blob
        self.blob_threshold = blob_threshold
        self.retention_seconds = retention_seconds(retention)
        self.lease_seconds = lease_seconds(lease)
        self.lease_wait = _lease_wait(lease_wait)
        self.serializer = serializer if serializer is not None else Serializer()
        # Settings are checked before anything is opened, so a typo leaves no file behind.
        self._limiter = limiter_from(limiter, tpm=tpm, burst=burst, name=name)
        self.db = taskdb_from(db if db is not None else Path(f"{name}.db").resolve(), name)
        self.storage = storage_from(
            storage if storage is not None else self._default_blob_folder(), name
        )
        self.memory = _memory_tier(memory_cache)
        self._inflight = InFlight()
        self.db.init_schema()
        # Hits, misses and failures, counted in memory and added to the TaskDB in batches; what
        # is left is flushed when the Spot is collected or the interpreter exits.
        self._tally = Tally(self.db)
        weakref.finalize(self, self._tally.flush)

    def __reduce__(self) -> tuple[Any, ...]:
        """A Spot pickles by configuration (its backends by their own configuration: paths and
        URLs), never by open connections, so process pools and cluster workers (Dask, Ray)
        rebuild it. Each process gets its own memory tier and, unless the limiter is a
        RedisLimiter, its own rate budget."""
        options = {
            "save_blob": self.save_blob,
            "blob_threshold": self.blob_threshold,
            "retention": self.retention_seconds,
            "serializer": self.serializer,
            "limiter": self._limiter,
            "memory_cache": self.memory,
            "lease": self.lease_seconds,
            "lease_wait": self.lease_wait,
        }
        return (_rebuilt_spot, (type(self), self.name, self.db, self.storage, options))

    def _default_blob_folder(self) -> Path:
        folder = self.db.path.parent if isinstance(self.db, SQLiteTaskDB) else Path.cwd()
        return (folder / f"{self.name}_blobs").resolve()

    def __repr__(self) -> str:
        """Its name and backends (URLs without passwords), and the settings that differ from
        the defaults.

        >>> import tempfile, beautyspot as bs
        >>> bs.Spot("api", db=tempfile.mkdtemp() + "/api.db", tpm=60)  # doctest: +ELLIPSIS
        Spot('api', db=SQLiteTaskDB('.../api.db'), storage=LocalStorage('...'), limiter=...)
        """
        settings = [f"db={self.db!r}", f"storage={self.storage!r}"]
        if self._limiter is not None:
            settings.append(f"limiter={self._limiter!r}")
        if self.memory is not None:
            settings.append(f"memory_cache={self.memory!r}")
        if self.lease_seconds is not None:
            settings.append(f"lease={self.lease_seconds:g}")
        return f"{type(self).__name__}({self.name!r}, {', '.join(settings)})"

    # -- decorators -------------------------------------------------------------------------

    @overload
    def mark(self, func: Callable[P, R], /) -> MarkedFunction[P, R]: ...
    @overload
    def mark(
        self,
        func: None = None,
        /,
        *,
        save_blob: bool | None = ...,
        input_key_fn: Callable[..., Any] | None = ...,
        keygen: Callable[..., Any] | None = ...,
        version: str | None = ...,
        content_type: str | None = ...,
        retention: Retention = ...,
        ignore: Iterable[str] = ...,
        lease: bool | float | None = ...,
        lease_wait: float = ...,
        paced: bool = ...,
    ) -> Callable[[Callable[P, R]], MarkedFunction[P, R]]: ...

    def mark(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        save_blob: bool | None = _INHERIT,
        input_key_fn: Callable[..., Any] | None = None,
        keygen: Callable[..., Any] | None = None,
        version: str | None = None,
        content_type: str | None = None,
        retention: Retention = _INHERIT,
        ignore: Iterable[str] = (),
        lease: bool | float | None = _INHERIT,
        lease_wait: float = _INHERIT,
        paced: bool = True,
    ) -> Any:
        """Make ``func``'s results persistent: computed once per distinct input, ever.

        ``func`` may be a plain or ``async def`` function, or a generator function of either
        kind, whose items stream on a miss and replay on a hit (see :mod:`beautyspot.stream`).

        :param save_blob: None = by size (``blob_threshold``), True = always blob storage,
            False = always inline in the TaskDB. Default: the Spot's setting.
        :param input_key_fn: compute the key yourself from the call's arguments (e.g.
            ``KeyGen.from_path_stat``); alias ``keygen``.
        :param version: change it to invalidate every result of this function; ``"auto"``
            puts a fingerprint of the code into the key, so every code change recomputes.
        :param content_type: a hint for the dashboard (``"application/json"``, ...).
        :param retention: lifetime of results (None = forever). Default: the Spot's setting.
        :param ignore: argument or closure-variable names left out of the key (e.g. a
            client or a logger): the result must not depend on them.
        :param lease: compute a missing key once across processes and hosts (True, or the
            lease's seconds); needs a TaskDB with leases. Default: the Spot's setting.
        :param lease_wait: seconds to wait for another caller's lease before computing here.
        :param paced: on a Spot with a rate (``tpm=``), the first miss that spends no tokens
            warns, since ``tpm=`` alone paces nothing: pace the function with
            ``@spot.limiter(cost=...)`` (above or below ``@spot.mark``: only misses pay), or
            pass ``paced=False`` to say it needs no pacing.
        """
        if keygen is not None:
            if input_key_fn is not None:
                raise ConfigurationError("input_key_fn and keygen are the same option: give one")
            input_key_fn = keygen
        if input_key_fn is not None and not callable(input_key_fn):
            raise ConfigurationError(f"input_key_fn={input_key_fn!r}: must be callable")
        if save_blob is _INHERIT:
            save_blob = self.save_blob
        elif save_blob not in (None, True, False):
            raise ConfigurationError(f"save_blob={save_blob!r}: use None (by size), True or False")
        if version is not None and not isinstance(version, str):
            raise ConfigurationError(f"version={version!r}: give a string such as 'v2'")
        if content_type is not None and not isinstance(content_type, str):
            raise ConfigurationError(f"content_type={content_type!r}: give a MIME type string")
        if isinstance(ignore, str):
            ignore = (ignore,)
        if not isinstance(paced, bool):
            raise ConfigurationError(f"paced={paced!r}: give True or False")
        options = MarkOptions(
            save_blob=save_blob,
            input_key_fn=input_key_fn,
            version=version,
            content_type=content_type,
            retention_seconds=self.retention_seconds
            if retention is _INHERIT
            else retention_seconds(retention),
            ignore=frozenset(ignore),
            lease_seconds=self.lease_seconds if lease is _INHERIT else lease_seconds(lease),
            lease_wait=self.lease_wait if lease_wait is _INHERIT else _lease_wait(lease_wait),
            paced=paced,
        )

        def decorate(target: Callable[..., Any]) -> MarkedFunction[Any, Any]:
            return self._mark_function(target, options)

        return decorate if func is None else decorate(func)

    def _mark_function(self, func: Any, options: MarkOptions) -> Any:
        # Over a staticmethod or classmethod object, mark the function inside and wrap it
        # again, so the class binds it as before; a classmethod's ``cls`` is then keyed like
        # any argument, so a subclass never gets its base class's results.
        if isinstance(func, staticmethod | classmethod):
            return type(func)(self._mark_function(func.__func__, options))
        if not callable(func):
            raise TypeError(f"spot.mark decorates a function, not {type(func).__name__}")
        if options.lease_seconds is not None and not _has_leases(self.db):
            raise NotSupportedError(
                f"lease= needs a TaskDB with leases; {type(self.db).__name__} has none: "
                "implement acquire_lease, renew_lease and release_lease, or drop lease="
            )
        if options.retention_seconds is not None and not _keeps_expiry(self.db):
            # Its records would never expire: an expired result would go on being served.
            raise NotSupportedError(
                f"retention= needs a TaskDB that stores expiry; {type(self.db).__name__} keeps "
                "only what save() takes: implement save_record(record) (it carries "
                "expires_at), or drop retention="
            )
        marked = MarkedCall(self, func, options)
        free_variables = getattr(getattr(func, "__code__", None), "co_freevars", ())
        unknown = options.ignore - set(marked.signature.parameters) - set(free_variables)
        if unknown:
            raise ConfigurationError(
                f"ignore={sorted(unknown)!r}: {func.__qualname__} has no such parameter "
                f"or closure variable (it has {list(marked.signature.parameters)})"
            )
        self._warn_if_unstorable(func)
        return _marked_function(marked)  # type: ignore[no-any-return]

    def _warn_if_unstorable(self, func: Callable[..., Any]) -> None:
        try:
            annotation = typing.get_type_hints(func).get("return", None)
        except Exception:  # unresolvable forward references: don't guess
            return
        reason = None if annotation is None else self.serializer.check_annotation(annotation)
        if reason:
            warnings.warn(
                f"{func.__qualname__}: {reason} (before the first call)",
                BeautyspotWarning,
                stacklevel=4,
            )

    def limiter(self, cost: float | Callable[..., float] = 1) -> Callable[[Callable[P, R]], Any]:
        """Pace a function at the Spot's ``tpm``; ``cost`` is tokens per call, or a callable
        of the call's arguments. Above or below ``@spot.mark``, only misses pay: a cache hit
        costs nothing.
        """
        if self._limiter is None:
            raise ConfigurationError(
                f"spot.limiter needs a rate: create the Spot with tpm=... "
                f"(e.g. bs.Spot({self.name!r}, tpm=60)) or limiter=..."
            )
        return self._limiter(cost=cost)  # type: ignore[no-any-return]

    consume = limiter

    #: ``spot.map(fn, items, ...)``: run a marked function (of any Spot) over many inputs.
    map = staticmethod(batch.map)
    #: ``await spot.amap(fn, items, ...)``: the same for an ``async def`` marked function.
    amap = staticmethod(batch.amap)

    def register_type(
        self,
        type_: type | None = None,
        code: int | None = None,
        encoder: Callable[[Any], Any] | None = None,
        decoder: Callable[[Any], Any] | None = None,
        *,
        type_class: type | None = None,
    ) -> None:
        """Teach the serializer a type of yours: ``code`` 0-127, ``encoder(obj) -> bytes``,
        ``decoder(bytes) -> obj``. ``type_class`` is an alias of ``type_``.
        """
        if type_class is not None:
            if type_ is not None:
                raise ConfigurationError("type_ and type_class are the same argument: give one")
            type_ = type_class
        missing = [n for n, v in (("type_", type_), ("code", code)) if v is None]
        missing += [n for n, v in (("encoder", encoder), ("decoder", decoder)) if v is None]
        if missing:
            raise ConfigurationError(f"register_type needs {', '.join(missing)}")
        self.serializer.register(type_, code, encoder, decoder)  # type: ignore[arg-type]

    def gc(self, *, older_than: float = DEFAULT_OLDER_THAN) -> GCReport:
        """Remove expired records, then orphan blobs and temp files left by interrupted saves
        that sat unmodified for ``older_than`` seconds (younger ones may be saves in flight).
        See :func:`beautyspot.maintenance.collect_garbage`.

        >>> import tempfile, beautyspot as bs
        >>> bs.Spot("tidy", db=tempfile.mkdtemp() + "/tidy.db").gc()
        GCReport(expired_records=0, orphan_blobs=0, temp_files=0, bytes_freed=0)
        """
        return collect_garbage(self.db, self.storage, older_than=older_than)

    def close(self) -> None:
        """Save the calls counted so far (stats), then release the TaskDB's connections."""
        self._tally.flush(then=self.db.close)


def _rebuilt_spot(
    cls: type[Spot], name: str, db: TaskDB, storage: BlobStorageBase, options: dict[str, Any]
) -> Spot:
    return cls(name, db, storage, **options)


def _has_leases(db: TaskDB) -> bool:
    methods = ("acquire_lease", "renew_lease", "release_lease")
    return all(getattr(type(db), m) is not getattr(TaskDB, m) for m in methods)


def _keeps_expiry(db: TaskDB) -> bool:
    return type(db).save_record is not TaskDB.save_record


def _lease_wait(seconds: float) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
        raise ConfigurationError(f"lease_wait={seconds!r}: give a number of seconds >= 0")
    return float(seconds)


def _memory_tier(spec: int | MemoryCache | None) -> MemoryCache | None:
    if spec is None or isinstance(spec, MemoryCache):
        return spec
    if isinstance(spec, int) and not isinstance(spec, bool) and spec > 0:
        return MemoryCache(max_entries=spec)
    raise ConfigurationError(
        f"memory_cache={spec!r}: give a number of entries (e.g. 10_000), a MemoryCache, or None"
    )


_warned_v1 = False


class Project(Spot):
    """The v1 name of :class:`Spot`; its decorator is ``task`` (``mark`` in v2)."""

    def task(self, func: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        """v1 spelling of :meth:`Spot.mark` (same options); warns once per process."""
        global _warned_v1
        if not _warned_v1:
            _warned_v1 = True
            warnings.warn(
                "Project/@project.task is the v1 API: use Spot/@spot.mark (same behaviour)",
                DeprecationWarning,
                stacklevel=2,
            )
        return self.mark(func, **options)
