"""Rate limiting with GCRA: in this process (:class:`Limiter`) or shared in Redis."""

from __future__ import annotations

from beautyspot.limiter.base import BaseLimiter, Cost
from beautyspot.limiter.gcra import Slot
from beautyspot.limiter.memory import Limiter
from beautyspot.limiter.redis import RedisLimiter
from beautyspot.limiter.spec import limiter_from

__all__ = ["BaseLimiter", "Cost", "Limiter", "RedisLimiter", "Slot", "limiter_from"]
