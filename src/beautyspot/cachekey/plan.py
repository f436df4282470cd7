"""Digests: a call's input id, the cache key, and KeyPlan, which makes both cheap per call."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from beautyspot.cachekey.core import (
    ATOMS,
    DICT,
    STR,
    TUPLE,
    Unkeyable,
    Walk,
    encode,
    encode_str,
    length,
)
from beautyspot.errors import CacheKeyError, ConfigurationError

__all__ = ["DIGEST_SIZE", "KeyPlan", "cache_key", "input_id"]

# 16-byte digests: an accidental collision among a billion records has odds below 1e-20, and
# keys stay short in every backend. The personalisation strings version the key format: a
# change of encoding changes them, so old and new keys can never meet (format 2: function
# identity with closures, receivers and code fingerprints; objects keyed by all their state).
DIGEST_SIZE = 16
_INPUT_PERSON = b"beautyspot.in.2"
_KEY_PERSON = b"beautyspot.key.2"
# Keys are hashed on every call: copying a hasher personalised once costs half of building one.
_INPUT_HASHER = hashlib.blake2b(digest_size=DIGEST_SIZE, person=_INPUT_PERSON)
_KEY_HASHER = hashlib.blake2b(digest_size=DIGEST_SIZE, person=_KEY_PERSON)


def input_id(arguments: Mapping[str, Any], walk: Walk | None = None) -> str:
    """Hex digest of a call's bound arguments (name -> value), whatever their order.

    Any mapping with the same items gives the same id (a dict, BoundArguments.arguments, ...).

    >>> input_id({"x": 1})
    '9ced08d60df2449dae2754568d7c949e'
    >>> input_id({"a": 1, "b": 2}) == input_id({"b": 2, "a": 1})
    True
    """
    walk = walk if walk is not None else Walk()
    entries = [
        _argument(_encoded_name(name), name, value, walk) for name, value in arguments.items()
    ]
    entries.sort()
    return _hex_digest(_INPUT_HASHER, DICT + length(len(entries)) + b"".join(entries))


@functools.lru_cache(maxsize=1024)
def _encoded_name(name: str) -> bytes:
    # A function's calls repeat the same few argument names.
    return encode_str(name)


def _hex_digest(hasher: Any, data: bytes) -> str:
    digest = hasher.copy()
    digest.update(data)
    return digest.hexdigest()


def _argument(encoded_name: bytes, name: str, value: Any, walk: Walk) -> bytes:
    """One entry of the arguments' dict encoding, or a CacheKeyError naming the argument."""
    try:
        return encoded_name + encode(value, walk)
    except Unkeyable as exc:
        raise _argument_error(name, exc.path, exc.reason) from None
    except RecursionError:
        raise _argument_error(name, "", "is nested too deeply to encode") from None


_RECEIVERS = frozenset({"self", "cls"})


def _argument_error(name: str, path: str, reason: str) -> CacheKeyError:
    where = f" (at {name}{path})" if path else ""
    if name in _RECEIVERS:  # ignoring a receiver would make every instance share results
        return CacheKeyError(
            f"argument {name!r}{where} {reason}; give its class a __beautyspot_key__(self) "
            "method that returns what results depend on, or compute the key yourself with "
            "input_key_fn="
        )
    return CacheKeyError(
        f"argument {name!r}{where} {reason}; leave it out of the key with ignore=({name!r},) "
        "or compute the key yourself with input_key_fn="
    )


def cache_key(func_id: str, version: str | None, input_id: str) -> str:
    """Hex digest naming one result: which function, which version of it, which input.

    ``version=None`` (never set) and ``version=""`` give different keys: a version is an opaque
    label and the key never guesses that two labels mean the same.

    >>> cache_key("mod.f", None, "00") == cache_key("mod.f", "", "00")
    False
    """
    return _hex_digest(_KEY_HASHER, _key_head(func_id, version) + encode_str(input_id))


@functools.lru_cache(maxsize=1024)
def _key_head(func_id: str, version: str | None) -> bytes:
    """The encoding of the tuple ``(func_id, version, input_id)`` up to ``input_id``: the same
    for every call of one function version."""
    return TUPLE + length(3) + encode(func_id, Walk()) + encode(version, Walk())


#: Encodings longer than this are not remembered (scalars and short strings are).
_RECENT_BODY_LIMIT = 256


class KeyPlan:
    """The keys of one function version's calls, with everything its calls share encoded once.

    ``names`` are the arguments that enter the key, in the order the caller will pass their
    values. ``keys(values)`` gives exactly ``input_id(dict(zip(names, values)))`` and the
    matching :func:`cache_key`, without building the dict, re-encoding the names or sorting.
    ``recent_entries`` > 0 remembers the keys of that many recent calls whose encoding is
    short, by that exact encoding.

    >>> plan = KeyPlan("mod.f", "v1", ("text", "n"))
    >>> plan.keys(("hi", 3)) == (
    ...     input_id({"text": "hi", "n": 3}),
    ...     cache_key("mod.f", "v1", input_id({"n": 3, "text": "hi"})),
    ... )
    True
    """

    __slots__ = (
        "_arguments",
        "_input_hasher",
        "_key_hasher",
        "_recent",
        "_recent_entries",
        "registered",
    )

    def __init__(
        self,
        func_id: str,
        version: str | None,
        names: Iterable[str],
        registered: Mapping[type, Any] | None = None,
        recent_entries: int = 0,
    ) -> None:
        names = tuple(names)
        if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
            raise ConfigurationError(f"names={names!r}: give distinct argument names (str)")
        # input_id sorts its entries; distinct names settle that order by themselves, since
        # each encoded name is self-delimiting. So it is fixed here, once.
        self._arguments = sorted(
            (encode_str(name), name, index) for index, name in enumerate(names)
        )
        # Every call's hashes start with the same bytes: fed once, copied per call.
        self._input_hasher = _INPUT_HASHER.copy()
        self._input_hasher.update(DICT + length(len(names)))
        # An input_id is always a 32-character hex str: its encoding's header is fixed too.
        self._key_hasher = _KEY_HASHER.copy()
        self._key_hasher.update(_key_head(func_id, version) + STR + length(2 * DIGEST_SIZE))
        self.registered = registered
        # Keys of recent calls by their exact encoding, so a repeated call skips both hashes:
        # worth its memory only in front of an in-process tier (see MarkedCall).
        self._recent: dict[bytes, tuple[str, str]] | None = {} if recent_entries > 0 else None
        self._recent_entries = recent_entries

    def walk(self) -> Walk:
        """A fresh encoding state that knows the Spot's registered types."""
        return Walk(self.registered)

    def keys(self, values: Sequence[Any]) -> tuple[str, str]:
        """``(input_id, cache_key)`` of a call whose key arguments are ``values``."""
        arguments = self._arguments
        if len(values) != len(arguments):
            raise TypeError(f"expected {len(arguments)} values, got {len(values)}")
        if len(arguments) == 1:  # the common case, without a list and a join
            encoded, name, _ = arguments[0]
            value = values[0]
            atom = ATOMS.get(type(value))  # needs no walk: no cycles, no registered types
            body = encoded + atom(value) if atom else _argument(encoded, name, value, self.walk())
        else:
            walk = Walk(self.registered)
            body = b"".join(
                [
                    _argument(encoded, name, values[index], walk)
                    for encoded, name, index in arguments
                ]
            )
        recent = self._recent
        if recent is not None and (found := recent.get(body)) is not None:
            return found
        digest = self._input_hasher.copy()
        digest.update(body)
        input_id = digest.hexdigest()
        digest = self._key_hasher.copy()
        digest.update(input_id.encode("ascii"))
        found = input_id, digest.hexdigest()
        if recent is not None and len(body) <= _RECENT_BODY_LIMIT:
            if len(recent) >= self._recent_entries:
                recent.clear()  # a bound, not an LRU: refilling costs one hash per call
            recent[body] = found
        return found

    def cache_key(self, input_id: str) -> str:
        """``cache_key(func_id, version, input_id)`` for an ``input_id`` from :func:`input_id`."""
        if len(input_id) != 2 * DIGEST_SIZE:
            raise ValueError(f"input_id={input_id!r}: expected a hex digest from input_id()")
        digest = self._key_hasher.copy()
        digest.update(input_id.encode("ascii"))
        return digest.hexdigest()
