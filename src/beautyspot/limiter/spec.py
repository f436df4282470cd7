"""Turn a Spot's ``limiter=``, ``tpm=`` and ``burst=`` into the limiter it should use."""

from __future__ import annotations

from typing import Any

from beautyspot.errors import ConfigurationError
from beautyspot.limiter.base import BaseLimiter
from beautyspot.limiter.memory import Limiter
from beautyspot.limiter.redis import RedisLimiter, is_redis_url

__all__ = ["limiter_from"]


def limiter_from(
    spec: Any, *, tpm: float | None, burst: float | None, name: str
) -> BaseLimiter | None:
    """The limiter a Spot named ``name`` gets, or ``None`` when it has no rate limit.

    :param spec: ``None`` (in-process when ``tpm`` is given), a ``redis://`` URL (a
        :class:`RedisLimiter` on the key ``beautyspot:limiter:<name>``, needs ``tpm``), or a
        limiter instance, used as it is (it carries its own ``tpm`` and ``burst``).

    >>> limiter_from(None, tpm=60, burst=None, name="api")
    Limiter(tpm=60, burst=0)
    >>> limiter_from(None, tpm=None, burst=None, name="api") is None
    True
    """
    if isinstance(spec, BaseLimiter):
        extra = [arg for arg, value in (("tpm", tpm), ("burst", burst)) if value is not None]
        if extra:
            raise ConfigurationError(
                f"limiter= is a ready limiter with its own rate ({spec!r}); drop "
                f"{' and '.join(f'{arg}=' for arg in extra)} or pass them to the limiter instead"
            )
        return spec
    if spec is None:
        if tpm is None:
            if burst is not None:
                raise ConfigurationError(f"burst={burst!r} needs a rate: add tpm= (tokens/minute)")
            return None
        return Limiter(tpm, burst)
    if is_redis_url(spec):
        if tpm is None:
            raise ConfigurationError(
                f"limiter={spec!r} shares a budget in Redis but has no rate: add tpm="
            )
        return RedisLimiter(spec, tpm, burst, key=f"beautyspot:limiter:{name}")
    raise ConfigurationError(
        "limiter= must be a Limiter or RedisLimiter instance or a redis://host:port/db URL, "
        f"got {spec!r}"
    )
