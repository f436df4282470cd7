"""Exact, stable cache keys: a function's identity plus a canonical encoding of its arguments.

The rules, stated once (each family module holds one group of them):

- Equal values give equal bytes; unequal values give unequal bytes. Every encoding is
  type-tagged (``1``, ``1.0``, ``True`` and ``"1"`` differ; so do a list and a tuple) and
  self-delimiting, and order-free where equality is (dicts, sets).
- A value is keyed by all of the state that makes it what it is, or refused with a
  :class:`~beautyspot.errors.CacheKeyError` naming the argument and what to do. Nothing falls
  back to ``str()`` or ``repr()``.
- Byte strings and array data over 1 KiB enter the encoding as a digest of their bytes.

Modules: :mod:`.core` (tags, the walk, builtins), :mod:`.stdlib`, :mod:`.arrays` (numpy),
:mod:`.frames` (pandas), :mod:`.objects` (classes, enums, dataclasses, models, namedtuples),
:mod:`.identity` (function identity), :mod:`.plan` (digests), :mod:`.keygen`.
"""

from beautyspot.cachekey import arrays, core, frames, identity, objects, stdlib
from beautyspot.cachekey.core import canonical_bytes
from beautyspot.cachekey.identity import FunctionIdentity, code_fingerprint, function_id, identify
from beautyspot.cachekey.keygen import KeyGen
from beautyspot.cachekey.plan import KeyPlan, cache_key, input_id

__all__ = [
    "FunctionIdentity",
    "KeyGen",
    "KeyPlan",
    "cache_key",
    "canonical_bytes",
    "code_fingerprint",
    "function_id",
    "identify",
    "input_id",
]

# Values known by shape rather than exact class, tried in this order. What a class declares
# (__beautyspot_key__, register_type; test doubles refused) comes before any rule that looks
# at the value; the instance rule comes last: it claims any object whose whole state Python
# shows, so every more specific rule must have had its turn.
core.SHAPES.extend(
    [
        objects.encode_declared,
        objects.encode_class,
        arrays.encode_numpy,
        frames.encode_pandas,
        stdlib.encode_pytz,
        identity.encode_function,
        objects.encode_instance,
    ]
)
