"""The shared limiter: GCRA state in Redis, one budget for every process and host that uses it.

Each reservation is one atomic server-side script (``gcra.lua``, shipped with the package) that
reads the Redis server's clock, so hosts whose clocks disagree still share one timeline; the
client only sleeps for the duration the server hands back. ``redis`` is imported on first use.
"""

from __future__ import annotations

import functools
import inspect
import time
from typing import Any

from beautyspot._registry import redacted
from beautyspot.errors import ConfigurationError, StorageError
from beautyspot.limiter.base import BaseLimiter
from beautyspot.limiter.gcra import Slot

__all__ = ["REDIS_SCHEMES", "RedisLimiter", "is_redis_url"]

#: Seconds to connect to the server, and to wait for a reply.
_TIMEOUT = 5.0
#: URL schemes :meth:`redis.Redis.from_url` understands.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def is_redis_url(value: object) -> bool:
    """Whether ``value`` is a URL for a Redis server.

    >>> is_redis_url("redis://127.0.0.1:6379/0"), is_redis_url("sqlite:///x.db")
    (True, False)
    """
    return isinstance(value, str) and value.startswith(REDIS_SCHEMES)


@functools.cache
def _script_source() -> str:
    from importlib.resources import files  # here, not at import: it costs a few ms

    return files("beautyspot.limiter").joinpath("gcra.lua").read_text(encoding="utf-8")


def _client_from(url_or_client: Any) -> Any:
    if is_redis_url(url_or_client):
        try:
            import redis
        except ImportError as exc:
            raise ConfigurationError(
                f"a Redis limiter ({redacted(url_or_client)!r}) needs redis, which is not "
                'installed: pip install "beautyspot[redis]"'
            ) from exc
        # Connect and read timeouts: a dead server is an error within seconds, never a hang.
        return redis.Redis.from_url(
            url_or_client, socket_connect_timeout=_TIMEOUT, socket_timeout=_TIMEOUT
        )
    execute = getattr(url_or_client, "execute_command", None)
    if not hasattr(url_or_client, "register_script") or inspect.iscoroutinefunction(execute):
        raise ConfigurationError(
            "url_or_client must be a redis://, rediss:// or unix:// URL or a synchronous "
            f"redis.Redis client, got {url_or_client!r}"
        )
    return url_or_client


class RedisLimiter(BaseLimiter):
    """Pace calls to ``tpm`` tokens per minute across every process sharing ``key`` in Redis.

    :param url_or_client: ``redis://host:port/db`` (or ``rediss://``, ``unix://``), or a
        synchronous ``redis.Redis`` client.
    :param tpm: tokens per minute, ``> 0``.
    :param burst: tokens that may go at once after an idle spell; ``None`` (or 0) is strict.
    :param key: the Redis key holding the budget; limiters with the same key share it.

    Same API as :class:`~beautyspot.limiter.Limiter`. A reservation costs one round trip;
    ``acquire_async`` makes it in a worker thread so the event loop never waits on the network.
    Every limiter on one key should use the same ``tpm`` and ``burst``.

    >>> RedisLimiter("redis://127.0.0.1:6379/0", tpm=90_000, burst=1000, key="openai")
    RedisLimiter(tpm=90000, burst=1000, key='openai')
    """

    def __init__(
        self,
        url_or_client: Any,
        tpm: float,
        burst: float | None = None,
        *,
        key: str = "beautyspot:limiter:default",
    ) -> None:
        super().__init__(tpm, burst, sleep=time.sleep)
        if not isinstance(key, str) or not key:
            raise ConfigurationError(f"key must be a non-empty string, got {key!r}")
        self._key = key
        # A URL rebuilds it in another process; a client instance cannot be shipped.
        self._config = (url_or_client, tpm, burst) if isinstance(url_or_client, str) else None
        self._script = _client_from(url_or_client).register_script(_script_source())

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles by configuration (its URL), so workers share the same budget in Redis."""
        if self._config is None:
            raise TypeError(
                "a RedisLimiter built on a redis.Redis client cannot be pickled: build it from "
                "a redis:// URL so other processes can connect on their own"
            )
        url, tpm, burst = self._config
        return (_rebuild, (url, tpm, burst, self._key))

    def _reserve(self, cost: float) -> Slot:
        try:
            reply = self._script(keys=[self._key], args=[self._interval, self._burst, cost])
        except Exception as exc:
            if type(exc).__module__.split(".")[0] != "redis":
                raise
            raise StorageError(
                f"the Redis limiter at {self._where()} cannot reserve tokens "
                f"({type(exc).__name__}); is the server running and reachable?"
            ) from None  # the redis error may quote the URL, password included
        now, start, tat = reply
        return Slot(float(now), float(start), float(tat))

    def _where(self) -> str:
        """host:port of the server (never the URL: it may hold a password)."""
        kwargs = self._script.registered_client.connection_pool.connection_kwargs
        if "path" in kwargs:
            return str(kwargs["path"])
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"

    async def _reserve_async(self, cost: float) -> Slot:
        import asyncio  # only async callers need it; keeps `import beautyspot` light

        return await asyncio.to_thread(self._reserve, cost)

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, key={self._key!r})"


def _rebuild(url: str, tpm: float, burst: float | None, key: str) -> RedisLimiter:
    return RedisLimiter(url, tpm, burst, key=key)
