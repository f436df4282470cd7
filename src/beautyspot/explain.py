"""Why a call would recompute: its key's parts against the records its function has stored.

``fn.explain(*args, **kwargs)`` (and, for a stored record, ``beautyspot explain DB KEY`` and
the dashboard's record view) answers with an :class:`Explanation`: whether the call would hit,
the parts of its key (function identity, version, code fingerprint, one digest per argument),
and the nearest stored records of the same function with what differs from each. Per-argument
digests are what records keep for this (:mod:`beautyspot.cachekey.digests`); a record saved
before them still shows its version and code, and says its arguments cannot be compared.

Explaining reads only: it never runs the function and never writes to the store.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from beautyspot import cachekey
from beautyspot._registry import redacted
from beautyspot.cachekey.digests import (
    KeyedArguments,
    argument_entries,
    entries_equal,
    entry_type,
    is_shown,
    pack_arguments,
    unpack_entries,
)
from beautyspot.db.base import RecordQuery, TaskDB
from beautyspot.errors import NotSupportedError, StorageError

if TYPE_CHECKING:
    from beautyspot.call import BoundCall, MarkedCall

__all__ = ["ArgumentPart", "Explanation", "Neighbour", "explain_call", "explain_record"]

#: Records of the function compared, newest first; and how many of the nearest are shown.
SCANNED_RECORDS = 1000
NEIGHBOURS = 3
#: Roles of an argument in the key.
KEYED, IGNORED, BY_INPUT_KEY_FN = "keyed", "ignored", "keyed by input_key_fn"


class ArgumentPart(NamedTuple):
    """One argument as the key sees it.

    ``role`` is ``"keyed"``, ``"ignored"`` (``ignore=``) or ``"keyed by input_key_fn"`` (the
    function's ``input_key_fn`` stands for it, as the keyed part named ``input_key_fn``).
    ``type_name`` is None where not keyed; ``value`` is the value itself when the record keeps
    it (``shown``: a small builtin scalar); else ``digest`` is 4 bytes of xxh3 of its key
    encoding (hex), or None when the input id stands for it (the only argument not shown), and
    ``detail`` describes it (``ndarray int64 (3,)``, ``list of length 2``).
    """

    name: str
    role: str
    type_name: str | None = None
    digest: str | None = None
    value: Any = None
    shown: bool = False
    detail: str | None = None


class Neighbour(NamedTuple):
    """A stored record of the same function, and what differs from the explained key."""

    cache_key: str
    created_at: float | None
    version: str | None
    differences: tuple[str, ...]


@dataclass(frozen=True)
class Explanation:
    """Whether a call would hit and, if not, why; ``str()`` of it reads as a report.

    ``would_hit`` is None when a stored record is explained (not a call). ``reasons`` say why
    the call would miss (empty for a hit; for a hit computed by other code, a note).
    ``neighbours`` are the nearest other records of the function (of the newest
    ``records_compared``). ``digests_known`` is False for a record saved before per-argument
    digests.

    >>> import tempfile, beautyspot as bs
    >>> spot = bs.Spot("demo", db=tempfile.mkdtemp() + "/demo.db")
    >>> @spot.mark(version="v1")
    ... def double(n):
    ...     return n * 2
    >>> double(1)
    2
    >>> double.explain(1).would_hit
    True
    >>> double.explain(1.0).reasons
    ('argument n: stored 1 (int), now 1.0 (float)',)
    >>> spot.mark(version="v2")(double.__wrapped__).explain(1).reasons
    ("stored under version 'v1', now 'v2'",)
    >>> spot.close()
    """

    func_name: str
    cache_key: str
    input_id: str
    version: str | None
    code_fingerprint: str | None
    would_hit: bool | None
    reasons: tuple[str, ...]
    arguments: tuple[ArgumentPart, ...]
    neighbours: tuple[Neighbour, ...]
    store: str
    identity_key: str | None = None
    call_text: str | None = None
    digests_known: bool = True
    records_compared: int = 0
    record: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        return (
            f"Explanation(func_name={self.func_name!r}, would_hit={self.would_hit!r}, "
            f"cache_key={self.cache_key!r}, reasons={self.reasons!r})"
        )

    def __str__(self) -> str:
        lines = [self._headline()]
        lines += [f"  - {reason}" for reason in self.reasons]
        lines.append("key")
        parts = [
            ("cache key", self.cache_key),
            ("function", self.func_name),
            ("identity", self.identity_key if self.identity_key != self.func_name else None),
            ("version", repr(self.version)),
            ("code", self.code_fingerprint or "-"),
            ("input id", self.input_id),
            ("store", self.store),
        ]
        lines += [f"  {label:<10} {value}" for label, value in parts if value is not None]
        lines.append("arguments")
        if not self.digests_known:
            lines.append("  (this record predates per-argument digests)")
        lines += [f"  {_argument_line(part)}" for part in self.arguments]
        if self.neighbours:
            lines.append(
                f"nearest records of {self.func_name} "
                f"({len(self.neighbours)} of {self.records_compared} compared)"
            )
            for neighbour in self.neighbours:
                lines.append(
                    f"  {neighbour.cache_key[:12]}  {_when(neighbour.created_at)}  "
                    f"version {neighbour.version!r}"
                )
                differences = neighbour.differences or ("same key parts",)
                lines += [f"      {difference}" for difference in differences]
        return "\n".join(lines)

    def _headline(self) -> str:
        subject = self.call_text or f"record {self.cache_key}"
        if self.would_hit is None:
            return f"{subject}: a stored record of {self.func_name}"
        return f"{subject}: would {'hit' if self.would_hit else 'miss'}"


# -- what records keep ---------------------------------------------------------------------


def record_digests(marked: MarkedCall, call: BoundCall) -> bytes | None:
    """The ``arg_digests`` of a record of ``call``, computed on a miss; None (the record is
    kept without them) if they cannot be: a hint never costs a result its record."""
    try:
        options, plain = marked.options, marked._names
        if call.arguments is None:  # a plain positional call: every argument is keyed
            names: tuple[str, ...] = plain or ()
            values: Sequence[Any] = call.args
        elif plain is not None and options.input_key_fn is None and not options.ignore:
            # Bound to a plain signature: every parameter, in its order.
            names, values = plain, list(call.arguments.values())
        else:
            keyed = _keyed_arguments(marked, call.args, call.kwargs, call.arguments)
            names, values = tuple(keyed), list(keyed.values())
        return pack_arguments(names, values, marked._plan.registered)
    except Exception:
        return None


def _keyed_arguments(
    marked: MarkedCall, args: tuple[Any, ...], kwargs: dict[str, Any], arguments: Mapping[str, Any]
) -> Mapping[str, Any]:
    """What enters the key, by name: the arguments not ignored, or the input_key_fn's value
    (already computed when ``arguments`` are the :class:`KeyedArguments` of the call's keys)."""
    options = marked.options
    if isinstance(arguments, KeyedArguments):
        return {"input_key_fn": arguments.key_value}
    if options.input_key_fn is not None:
        return {"input_key_fn": options.input_key_fn(*args, **kwargs)}
    if not options.ignore:
        return arguments
    return {name: value for name, value in arguments.items() if name not in options.ignore}


# -- explaining ------------------------------------------------------------------------------


class _Parts(NamedTuple):
    """The parts of one key (a call's, or a stored record's) that explanations compare."""

    version: str | None
    fingerprint: str | None
    input_id: str
    cache_key: str
    entries: dict[str, Any] | None  # None: a record saved before per-argument digests
    preview: str | None = None


class _Wording(NamedTuple):
    theirs: str  # how the compared record is named
    ours: str  # how the explained key is named
    the_record: str


_CALL = _Wording("stored", "now", "the record")
_RECORD = _Wording("other", "this", "that record")


def explain_call(marked: MarkedCall, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Explanation:
    """Explain a call of ``marked`` without running it or writing anything."""
    from beautyspot.call import preview_of  # call imports this module

    spot, options = marked.spot, marked.options
    input_id, key, bound = marked.keys(args, kwargs)
    arguments = bound if isinstance(bound, KeyedArguments) else marked._arguments(args, kwargs)
    keyed = _keyed_arguments(marked, args, kwargs, arguments)
    entries = argument_entries(keyed, marked._plan.registered)
    ours = _Parts(options.version, marked.identity.fingerprint, input_id, key, entries)
    parts = [_part(name, KEYED, entry) for name, entry in entries.items()]
    for name in arguments:
        if options.input_key_fn is not None:
            parts.append(ArgumentPart(name, BY_INPUT_KEY_FN))
        elif name in options.ignore:
            parts.append(ArgumentPart(name, IGNORED))

    db = spot.db
    record = db.get(key)
    live = record is not None and _is_live(record.get("expires_at"))
    records = _records_of(db, marked.func_id, key)

    def compare(theirs: _Parts) -> list[str]:
        return _differences(ours, theirs, _CALL, identity_key=marked.identity.key)

    neighbours = _nearest(ours, records, compare)
    reasons: list[str] = []
    if live:
        fingerprint = record.get("code_fingerprint") if record else None
        if fingerprint and fingerprint != marked.identity.fingerprint:
            reasons.append(
                f"served although computed by other code (fingerprint {fingerprint}, now "
                f"{marked.identity.fingerprint}): version={options.version!r} did not change"
            )
    elif record is not None:
        reasons.append(f"the record of this key expired at {_when(record.get('expires_at'))}")
    elif not records:
        reasons.append(_no_records(db, marked.func_id, marked.func.__qualname__))
    elif neighbours:
        reasons += neighbours[0].differences or [
            "a record with the same key parts exists under another key"
        ]
    return Explanation(
        func_name=marked.func_id,
        cache_key=key,
        input_id=input_id,
        version=options.version,
        code_fingerprint=marked.identity.fingerprint,
        would_hit=live,
        reasons=tuple(reasons),
        arguments=tuple(parts),
        neighbours=tuple(neighbours),
        store=_store_label(db),
        identity_key=marked.identity.key,
        call_text=f"{marked.func_id}({preview_of(arguments)})",
        records_compared=len(records),
        record=record,
    )


def explain_record(db: TaskDB, record: Mapping[str, Any]) -> Explanation:
    """Explain a stored record: its key parts and argument digests, and its nearest
    neighbours of the same function with what differs (for the CLI and the dashboard)."""
    ours = _parts_of(record)
    func_name = str(record.get("func_name"))
    records = _records_of(db, func_name, ours.cache_key)
    neighbours = _nearest(ours, records, lambda theirs: _differences(ours, theirs, _RECORD))
    entries = ours.entries or {}
    return Explanation(
        func_name=func_name,
        cache_key=ours.cache_key,
        input_id=ours.input_id,
        version=ours.version,
        code_fingerprint=ours.fingerprint,
        would_hit=None,
        reasons=(),
        arguments=tuple(_part(name, KEYED, entry) for name, entry in entries.items()),
        neighbours=tuple(neighbours),
        store=_store_label(db),
        digests_known=ours.entries is not None,
        records_compared=len(records),
        record=record,
    )


def _parts_of(record: Mapping[str, Any]) -> _Parts:
    return _Parts(
        record.get("version"),
        record.get("code_fingerprint"),
        str(record.get("input_id")),
        str(record.get("cache_key")),
        unpack_entries(record.get("arg_digests")),
        record.get("input_preview"),
    )


def _records_of(db: TaskDB, func_name: str, but: str) -> list[Mapping[str, Any]]:
    """The newest records of ``func_name`` (up to :data:`SCANNED_RECORDS`), but the one
    under the key ``but``."""
    try:
        rows, _ = db.find_records(RecordQuery(func_name=func_name, limit=SCANNED_RECORDS))
    except NotSupportedError:  # a backend without pages: its newest records
        rows = [row for row in db.get_history(SCANNED_RECORDS) if row.get("func_name") == func_name]
    return [row for row in rows if row.get("cache_key") != but]


def _nearest(
    ours: _Parts, records: list[Mapping[str, Any]], compare: Callable[[_Parts], list[str]]
) -> list[Neighbour]:
    """The records with the fewest differences; among those, the closest values, then the
    newest."""
    scored = []
    for row in records:
        theirs = _parts_of(row)
        differences = compare(theirs)
        created = row.get("created_at")
        newest_first = -created if isinstance(created, (int, float)) else 0.0
        neighbour = Neighbour(str(row.get("cache_key")), created, row.get("version"),
                              tuple(differences))  # fmt: skip
        closeness = _distance(ours.entries, theirs.entries)
        scored.append((len(differences), closeness, newest_first, neighbour.cache_key, neighbour))
    scored.sort(key=lambda item: item[:4])
    return [item[4] for item in scored[:NEIGHBOURS]]


def _distance(ours: dict[str, Any] | None, theirs: dict[str, Any] | None) -> float:
    """How far apart the values kept as they are lie (0 to 1 each): ``1`` and ``1.0`` not at
    all, ``'alice=3'`` and ``'alice=3.0'`` a little, ``'bob=5'`` further."""
    if not ours or not theirs:
        return 0.0
    total = 0.0
    for name, mine in ours.items():
        other = theirs.get(name, _ABSENT)
        if is_shown(mine) and other is not _ABSENT and is_shown(other):
            total += _value_distance(mine, other)
    return total


def _value_distance(first: Any, second: Any) -> float:
    numbers = (int, float)
    if isinstance(first, numbers) and isinstance(second, numbers):
        if first == second:
            return 0.0
        scale = abs(first) + abs(second)
        return min(1.0, abs(first - second) / scale) if math.isfinite(scale) else 1.0
    if isinstance(first, (str, bytes)) and type(first) is type(second):
        import difflib  # explaining only: keeps `import beautyspot` light

        return 1.0 - difflib.SequenceMatcher(None, first, second).ratio()
    return 0.0 if first == second else 1.0


def _differences(
    ours: _Parts, theirs: _Parts, wording: _Wording, identity_key: str | None = None
) -> list[str]:
    """What differs between two keys' parts, in words (theirs is the compared record)."""
    found = []
    if theirs.version != ours.version:
        found.append(f"{wording.theirs} under version {theirs.version!r}, {wording.ours} "
                     f"{ours.version!r}")  # fmt: skip
    code_changed = bool(theirs.fingerprint and ours.fingerprint) and (
        theirs.fingerprint != ours.fingerprint
    )
    if code_changed:
        found.append(
            f"function code changed since {wording.the_record} was stored (fingerprint "
            f"{theirs.fingerprint}, {wording.ours} {ours.fingerprint})"
        )
    if theirs.input_id == ours.input_id:
        if identity_key is not None:
            key_then = cachekey.cache_key(identity_key, theirs.version, theirs.input_id)
            identity_differs = key_then != theirs.cache_key
        else:
            identity_differs = theirs.cache_key != ours.cache_key
        if theirs.version == ours.version and identity_differs and not code_changed:
            found.append(
                "same arguments and version, but the function's identity differs: the "
                "values its closure captured, its receiver (self), or its code"
            )
        return found
    if theirs.entries is None or ours.entries is None:
        older = wording.the_record if theirs.entries is None else "this record"
        shown = f" ({wording.theirs} input: {theirs.preview})" if theirs.preview else ""
        found.append(
            f"arguments differ; {older} predates per-argument digests, so which cannot be "
            f"told{shown}"
        )
        return found
    found += _argument_differences(ours.entries, theirs.entries, wording)
    return found


def _argument_differences(
    ours: dict[str, Any], theirs: dict[str, Any], wording: _Wording
) -> list[str]:
    """Which arguments differ, given that the input ids do. An argument whose digest is the
    input id differs for sure when every other argument is the same; otherwise only a change
    of its type or shape can be told."""
    told, untold = [], []
    for name in dict.fromkeys([*ours, *theirs]):
        mine, other = ours.get(name, _ABSENT), theirs.get(name, _ABSENT)
        if mine is _ABSENT or other is _ABSENT or entries_equal(mine, other) is not None:
            text = _argument_difference(name, mine, other, wording, differs=None)
            if text is not None:
                told.append(text)
        else:
            untold.append(name)
    for name in untold:
        differs = None if told else True
        text = _argument_difference(name, ours[name], theirs[name], wording, differs=differs)
        if text is not None:
            told.append(text)
    return told or ["arguments differ, by more than their 4-byte digests can show"]


_ABSENT: Any = object()


def _argument_difference(
    name: str, ours: Any, theirs: Any, wording: _Wording, differs: bool | None
) -> str | None:
    """One argument's difference in words, or None. ``differs``: known to differ (True), or
    None to tell from the entries, where an entry without a digest shows only its type and
    shape."""
    if ours is _ABSENT:
        return f"argument {name}: only {wording.the_record} has it (a removed parameter?)"
    if theirs is _ABSENT:
        return f"argument {name}: {wording.the_record} has no such argument (a new parameter?)"
    if differs is None:
        equal = entries_equal(ours, theirs)
        if equal or (equal is None and ours[1:] == theirs[1:]):  # type and shape alike
            return None
    then, now = f"{wording.theirs} {_shown(theirs)}", f"{wording.ours} {_shown(ours)}"
    if is_shown(ours) or is_shown(theirs) or entry_type(ours) != entry_type(theirs):
        return f"argument {name}: {then}, {now}"
    ours_detail, theirs_detail = _detail_of(ours), _detail_of(theirs)
    if entry_type(ours) == "DataFrame" and isinstance(ours_detail, list):
        frame = _frame_difference(ours_detail, theirs_detail, wording)
        if frame is not None:
            return f"argument {name}: {frame}"
    if ours_detail == theirs_detail:
        return f"argument {name}: same type and shape ({_shown(ours)}), other values"
    return f"argument {name}: {then}, {now}"


def _frame_difference(ours: list[Any], theirs: Any, wording: _Wording) -> str | None:
    """Columns and dtypes of two DataFrames (``[shape, columns digest, dtypes]``)."""
    if not (isinstance(theirs, list) and len(theirs) == 3 and len(ours) == 3):
        return None
    if ours[1] != theirs[1]:
        return (
            f"columns differ ({wording.theirs} {_frame_shape(theirs)}, "
            f"{wording.ours} {_frame_shape(ours)})"
        )
    if ours[2] == theirs[2]:
        return f"same columns and dtypes ({wording.ours} {_frame_shape(ours)}), other values"
    if isinstance(ours[2], str) and isinstance(theirs[2], str):
        pairs = [
            f"{was} vs {now}"
            for was, now in zip(theirs[2].split(","), ours[2].split(","), strict=False)
            if was != now
        ]
        return f"same columns, dtypes differ ({', '.join(pairs)})"
    return "same columns, dtypes differ"


def _frame_shape(detail: list[Any]) -> str:
    shape = detail[0]
    return " x ".join(map(str, shape)) if isinstance(shape, list) else "?"


def _detail_of(entry: Any) -> Any:
    return entry[2] if isinstance(entry, list) and len(entry) > 2 else None


def _shown(entry: Any) -> str:
    """An entry for a message: ``1 (int)``, ``ndarray int64 (3,)``, ``list of length 3``."""
    if is_shown(entry):
        return f"{entry!r} ({entry_type(entry)})"
    return _described(entry)


def _described(entry: Any) -> str:
    kind, detail = entry_type(entry), _detail_of(entry)
    if detail is None:
        return kind
    if isinstance(detail, int):
        return f"{kind} of length {detail}"
    if isinstance(detail, list):
        return f"{kind} {_frame_shape(detail)}"
    return f"{kind} {detail}"


def _part(name: str, role: str, entry: Any) -> ArgumentPart:
    if is_shown(entry):
        return ArgumentPart(name, role, entry_type(entry), value=entry, shown=True)
    digest = entry[0].hex() if isinstance(entry[0], bytes) else None
    return ArgumentPart(name, role, entry_type(entry), digest, detail=_described(entry))


def _argument_line(part: ArgumentPart) -> str:
    if part.role != KEYED:
        return f"{part.name:<12} {part.role}"
    if part.shown:
        return f"{part.name:<12} {part.value!r} ({part.type_name})"
    digest = part.digest or "in the input id"  # its only digest: the record's input id
    return f"{part.name:<12} {part.detail}, digest {digest}"


# -- the store -------------------------------------------------------------------------------


def _store_label(db: TaskDB) -> str:
    """Which store: a SQLite file's path, else the backend and its redacted URL (never a
    password), else its class name (a user's backend may put anything in its repr)."""
    path = getattr(db, "path", None)
    if isinstance(path, Path):
        return _path_text(path)
    url = getattr(db, "url", None)
    if isinstance(url, str):
        namespace = getattr(db, "namespace", None)
        where = f", namespace {namespace!r}" if isinstance(namespace, str) else ""
        return f"{type(db).__name__} at {redacted(url)}{where}"
    return type(db).__name__


def _no_records(db: TaskDB, func_name: str, qualname: str) -> str:
    """No record of the function at all: the likely causes are a function stored under another
    module's name (moved, or its script renamed) and another store."""
    namesakes = _namesakes(db, func_name, qualname)
    if namesakes:
        (other, count), *_ = namesakes
        return (
            f"no record of {func_name} in this store, but {other} has {count}: a function "
            "is named by its module, so was it moved, or its script renamed? Results are "
            "not shared between the two names"
        )
    label = _store_label(db)
    path = getattr(db, "path", None)
    if not isinstance(path, Path):
        return (
            f"no record of this function in this store ({label}): is the Spot's db the same "
            "store, and (on a shared server) the Spot's name the same?"
        )
    question = "no record of this function in this store: is the Spot's db the same file?"
    others = sorted(p for p in path.parent.glob("*.db") if p.resolve() != path.resolve())
    holding = [(other, n) for other in others if (n := _records_in_file(other, func_name)) > 0]
    if holding:
        other, count = holding[0]
        return f"{question} ({label} vs {_path_text(other)}, which holds {count} of its records)"
    if others:
        names = ", ".join(_path_text(other) for other in others[:5])
        return f"{question} (this Spot uses {label}; beside it: {names}, none with its records)"
    return f"{question} (this Spot uses {label})"


def _namesakes(db: TaskDB, func_name: str, qualname: str) -> list[tuple[str, int]]:
    """Functions of this store with the same qualified name in another module, most records
    first; empty when the store keeps no stats (a diagnosis, read only here)."""
    try:
        rows = db.get_stats()
    except (NotSupportedError, StorageError):  # only a hint: the other causes are said next
        return []
    found = [
        (str(row["func_name"]), int(row["records"]))
        for row in rows
        if row["records"] and row["func_name"] != func_name
        and str(row["func_name"]).endswith("." + qualname)
    ]  # fmt: skip
    return sorted(found, key=lambda item: -item[1])


def _records_in_file(path: Path, func_name: str) -> int:
    """Records of ``func_name`` in another SQLite file, read-only; 0 when unreadable (not
    SQLite, another program's, locked)."""
    for flags in ("mode=ro", "immutable=1"):  # a closed WAL file has no -shm for mode=ro
        try:
            conn = sqlite3.connect(f"file:{quote(str(path))}?{flags}", uri=True, timeout=0.2)
        except sqlite3.Error:
            continue
        try:
            row = conn.execute("SELECT count(*) FROM tasks WHERE func_name = ?", (func_name,))
            return int(row.fetchone()[0])
        except sqlite3.Error:
            continue
        finally:
            conn.close()
    return 0


def _path_text(path: Path) -> str:
    """``./a.db`` for a file under the working folder, else its absolute path."""
    try:
        return "./" + path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):  # elsewhere, or the working folder is gone
        return str(path)


def _is_live(expires_at: Any) -> bool:
    return expires_at is None or (isinstance(expires_at, (int, float)) and expires_at > time.time())


def _when(moment: Any) -> str:
    if not isinstance(moment, (int, float)):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(moment))


def explainer(marked: MarkedCall) -> Callable[..., Explanation]:
    """The ``explain`` helper of a marked function: the same arguments as the function."""

    def explain(*args: Any, **kwargs: Any) -> Explanation:
        """Whether this call would hit and, if not, why (see :class:`Explanation`); runs
        nothing and writes nothing, for async functions too (it is a plain call)."""
        return explain_call(marked, args, kwargs)

    return explain
