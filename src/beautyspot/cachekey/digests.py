"""Per-argument digests: a few bytes a record keeps about each key argument, so ``explain``
can say which argument made a call miss and how it differs (``1`` against ``1.0``, other
dtypes), without keeping the arguments.

Each argument becomes one *entry*:

- a small builtin scalar (None, bool, int in 64 bits, float, str or bytes of at most
  :data:`SHOWN_LIMIT` characters/bytes) is kept as it is: msgpack keeps its exact type, and it
  is short enough to show;
- anything else is ``[digest, type name]`` or ``[digest, type name, detail]``: ``digest`` is 4
  bytes of xxh3 over the argument's canonical key encoding, ``detail`` says what the type alone
  cannot: a length, a numpy array's dtype and shape, a DataFrame's shape, a digest of its
  column names and its dtypes. When only one argument is not shown, its digest is None: the
  record's input id (a digest of every argument's encoding) stands for it, since the others
  are kept exactly. So the usual large argument (beside small settings) is never encoded a
  second time; only calls with several large arguments encode those again, on a miss.

A record keeps ``msgpack([FORMAT, [name, ...], [entry, ...]])``: 4 bytes, plus per argument
its name and its entry: ``n=1`` costs 3 bytes, a large numpy array about 30. They are computed
on a miss only, never when keys are computed for a hit.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack
from xxhash import xxh3_64_digest

from beautyspot.cachekey.core import Unkeyable, Walk, encode

__all__ = [
    "SHOWN_LIMIT",
    "KeyedArguments",
    "argument_entries",
    "entries_equal",
    "entry_type",
    "is_shown",
    "pack_arguments",
    "pack_entries",
    "unpack_entries",
]

#: Version of the stored layout; a record of another layout is read as having no digests.
FORMAT = 1
#: str and bytes up to this length are kept as they are (shown by ``explain``).
SHOWN_LIMIT = 32
_DIGEST_BYTES = 4
_DTYPES_LIMIT = 80  # characters of a DataFrame's dtypes kept as text; longer ones as a digest
_INT_RANGE = (-(2**63), 2**64 - 1)  # what msgpack keeps as an int


class _Packer(threading.local):
    """A packer per thread, reused by every miss (building one costs more than packing)."""

    def __init__(self) -> None:
        self.pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack


_PACKER = _Packer()


class KeyedArguments(dict[str, Any]):
    """A call's bound arguments and the value its ``input_key_fn`` returned for them: a miss
    records that value (and ``explain`` shows it) without calling ``input_key_fn`` again.

    >>> keyed = KeyedArguments({"path": "a.txt"}, key_value="a.txt:5:1700000000")
    >>> dict(keyed), keyed.key_value
    ({'path': 'a.txt'}, 'a.txt:5:1700000000')
    """

    __slots__ = ("key_value",)

    def __init__(self, arguments: Mapping[str, Any], key_value: Any) -> None:
        super().__init__(arguments)
        self.key_value = key_value


def argument_entries(arguments: Mapping[str, Any], registered: Any = None) -> dict[str, Any]:
    """The entry of each argument (name -> entry), as the record keeps them; ``registered``:
    the Spot's registered types (how they are keyed).

    >>> entries = argument_entries({"n": 1, "xs": [1, 2, 3], "ys": [4]})
    >>> entries["n"], entries["xs"][1:], len(entries["xs"][0])
    (1, ['list', 3], 4)
    >>> argument_entries({"n": 1, "xs": [1, 2, 3]})["xs"]  # the input id stands for it
    [None, 'list', 3]
    """
    return dict(zip(arguments, _entries(list(arguments.values()), registered), strict=True))


def pack_arguments(names: tuple[str, ...], values: Sequence[Any], registered: Any) -> bytes:
    """``pack_entries(argument_entries(dict(zip(names, values)), ...))``, byte for byte, at a
    fraction of its cost: what every miss pays to keep its digests.

    >>> pack_arguments(("n", "xs"), (1, [1, 2]), None) == pack_entries(
    ...     argument_entries({"n": 1, "xs": [1, 2]}))
    True
    """
    return _prefix(names) + _PACKER.pack(_entries(values, registered))  # type: ignore[no-any-return]


def _entries(values: Sequence[Any], registered: Any) -> Sequence[Any]:
    """The entries of ``values``: the values themselves when all are kept as they are (the
    common case, which every miss pays for: hence one inlined pass)."""
    others = []  # the values not kept as they are: small scalars of exact builtin types
    low, high = _INT_RANGE
    for index, value in enumerate(values):
        cls = type(value)
        if cls is int:
            if low <= value <= high:
                continue
        elif cls is str or cls is bytes:
            if len(value) <= SHOWN_LIMIT:
                continue
        elif cls is float or cls is bool or value is None:
            continue
        others.append(index)
    if not others:
        return values
    entries = list(values)
    for index in others:  # a lone one has no digest: the input id stands for it
        entries[index] = _entry(values[index], registered, with_digest=len(others) > 1)
    return entries


@functools.lru_cache(maxsize=1024)
def _prefix(names: tuple[str, ...]) -> bytes:
    """The bytes every record of these argument names starts with: ``[FORMAT, names, ``."""
    return b"\x93" + _packed([FORMAT, list(names)])[1:]


def pack_entries(entries: Mapping[str, Any]) -> bytes:
    """The bytes a record keeps for ``entries``: ``[FORMAT, names, entries]``.

    >>> pack_entries(argument_entries({"n": 1}))
    b'\\x93\\x01\\x91\\xa1n\\x91\\x01'
    """
    return _packed([FORMAT, list(entries), list(entries.values())])


def _packed(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def unpack_entries(data: Any) -> dict[str, Any] | None:
    """The entries a record keeps, or None when it has none (it predates digests) or they
    cannot be read.

    >>> unpack_entries(pack_entries({"n": 1.0}))
    {'n': 1.0}
    >>> unpack_entries(None) is None
    True
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return None
    try:
        stored = msgpack.unpackb(bytes(data), raw=False, strict_map_key=False)
    except Exception:  # damaged or foreign bytes: explain says the digests are missing
        return None
    if not (isinstance(stored, list) and len(stored) == 3 and stored[0] == FORMAT):
        return None
    names, entries = stored[1], stored[2]
    valid = isinstance(names, list) and isinstance(entries, list) and len(names) == len(entries)
    if not valid or not all(isinstance(name, str) for name in names):
        return None
    return dict(zip(names, entries, strict=True))


def is_shown(entry: Any) -> bool:
    """True for an entry that is the argument's value itself (a small builtin scalar)."""
    return not isinstance(entry, list)


def entry_type(entry: Any) -> str:
    """The type name an entry records.

    >>> entry_type(1.0), entry_type([b"1234", "ndarray", "int64 (3,)"])
    ('float', 'ndarray')
    """
    if is_shown(entry):
        return "None" if entry is None else type(entry).__name__
    return str(entry[1]) if len(entry) > 1 else "?"


def entries_equal(first: Any, second: Any) -> bool | None:
    """True if two entries stand for the same key encoding (as far as 4 bytes can tell), None
    when that cannot be told from them (an entry whose digest is the record's input id).

    >>> entries_equal(1, 1), entries_equal(1, 1.0), entries_equal(0.0, -0.0)
    (True, False, False)
    """
    if is_shown(first) or is_shown(second):
        if not (is_shown(first) and is_shown(second)) or type(first) is not type(second):
            return False
        return bool(encode(first, Walk()) == encode(second, Walk()))
    if first[0] is None or second[0] is None:
        return None
    return bool(first[0] == second[0])


def _entry(value: Any, registered: Any, *, with_digest: bool) -> list[Any]:
    """The entry of a value that is not shown: its digest (None: the input id stands for it),
    type name and detail."""
    digest = None
    if with_digest:
        try:
            encoded = encode(value, Walk(registered))
        except (Unkeyable, RecursionError):  # keyed already: cannot happen for a key argument
            encoded = b""
        digest = xxh3_64_digest(encoded)[:_DIGEST_BYTES]
    entry = [digest, type(value).__qualname__]
    detail = _detail(value)
    if detail is not None:
        entry.append(detail)
    return entry


def _detail(value: Any) -> Any:
    """What the type name alone does not say: lengths, dtypes and shapes."""
    cls = type(value)
    module = getattr(cls, "__module__", "") or ""
    try:
        if module == "numpy" and cls.__name__ == "ndarray":
            return f"{value.dtype} {tuple(value.shape)}"
        if module.startswith("pandas") and cls.__name__ == "DataFrame":
            columns = "\x00".join(map(str, value.columns)).encode("utf-8", "surrogatepass")
            dtypes = ",".join(str(dtype) for dtype in value.dtypes)
            kept: Any = dtypes if len(dtypes) <= _DTYPES_LIMIT else _short_digest(dtypes)
            return [list(value.shape), xxh3_64_digest(columns)[:_DIGEST_BYTES], kept]
        if isinstance(value, (str, bytes, bytearray, list, tuple, dict, set, frozenset)):
            return len(value)
    except Exception:  # a detail is only a hint: never fail a save for one
        return None
    return None


def _short_digest(text: str) -> bytes:
    return xxh3_64_digest(text.encode("utf-8", "surrogatepass"))[:_DIGEST_BYTES]
