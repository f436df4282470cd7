"""What every TaskDB backend checks of its arguments, and how it shapes its answers: one copy,
so SQLite, Redis and PostgreSQL refuse and answer alike."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from beautyspot.db.base import RECORD_ORDERS, FunctionCounts, RecordQuery

__all__ = ["check_counts", "check_limit", "check_query", "stats_rows"]


def check_limit(limit: int, name: str = "limit") -> int:
    """``limit`` if it is a count of rows (an int >= 0); else a TypeError or ValueError naming
    ``name``.

    >>> check_limit(5)
    5
    >>> check_limit(-1, "offset")
    Traceback (most recent call last):
    ...
    ValueError: offset must be 0 or more, not -1
    """
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"{name} must be an int, not {limit!r}")
    if limit < 0:
        raise ValueError(f"{name} must be 0 or more, not {limit}")
    return limit


def check_query(query: RecordQuery) -> RecordQuery:
    """``query``, if every field is what :class:`~beautyspot.db.RecordQuery` documents; else a
    TypeError or ValueError naming the field.

    >>> check_query(RecordQuery(order_by="name"))
    Traceback (most recent call last):
    ...
    ValueError: order_by='name' is not a column records can be ordered by: use one of created_at, func_name, version, size, duration, hits
    """  # noqa: E501
    if not isinstance(query, RecordQuery):
        raise TypeError(f"query must be a RecordQuery, not {type(query).__name__}")
    for name in ("func_name", "version", "content_type", "text"):
        value = getattr(query, name)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str or None, not {value!r}")
    if query.order_by not in RECORD_ORDERS:
        raise ValueError(
            f"order_by={query.order_by!r} is not a column records can be ordered by: use one "
            f"of {', '.join(RECORD_ORDERS)}"
        )
    if not isinstance(query.descending, bool):
        raise TypeError(f"descending must be True or False, not {query.descending!r}")
    check_limit(query.offset, "offset")
    check_limit(query.limit, "limit")
    return query


def check_counts(
    counts: Mapping[str, FunctionCounts], hits: Mapping[str, int]
) -> tuple[list[tuple[str, int, int, int]], list[tuple[str, int]]]:
    """``add_counts``' arguments checked, as ``(function, hits, misses, failures)`` and ``(cache
    key, hits)`` rows with something to add, sorted (so concurrent writers lock rows in one
    order and never deadlock).

    >>> check_counts({"fn": FunctionCounts(2, 1, 0), "idle": FunctionCounts()}, {"k": 2})
    ([('fn', 2, 1, 0)], [('k', 2)])
    """
    per_function = []
    for name, value in counts.items():
        if not isinstance(name, str):
            raise TypeError(f"counts are keyed by function name (str), not {name!r}")
        numbers = tuple(value)
        if len(numbers) != 3 or not all(_is_count(n) for n in numbers):
            raise TypeError(
                f"counts[{name!r}] must be a FunctionCounts(hits, misses, failures) of ints "
                f">= 0, not {value!r}"
            )
        if any(numbers):
            per_function.append((name, *numbers))
    per_key = []
    for key, added in hits.items():
        if not isinstance(key, str) or not _is_count(added):
            raise TypeError(f"hits maps cache keys (str) to ints >= 0, not {key!r}: {added!r}")
        if added:
            per_key.append((key, added))
    per_function.sort()
    per_key.sort()
    return per_function, per_key  # type: ignore[return-value]


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def stats_rows(
    records: Iterable[Sequence[Any]],
    counts: Iterable[Sequence[Any]],
    failures: Iterable[Sequence[Any]],
) -> list[dict[str, Any]]:
    """The rows of ``get_stats``, one per function that has records, counts or kept failures,
    sorted by name, from rows as a query gives them: ``records`` of ``(func_name, records,
    bytes_inline, bytes_blob, time_saved, tokens_saved)``, ``counts`` of ``(func_name, hits,
    misses, failures)`` and ``failures`` of ``(func_name, failures kept)``. None reads as 0.

    ``failures`` is the larger of the counted failures and the kept ones: both are lower bounds
    (failures before counting began are kept but not counted; a pruned or capped failure log
    keeps fewer than were counted).

    >>> stats_rows([("f", 2, 10, None, 1.5, None)], [("f", 4, 2, 0)], [("f", 1)])
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'func_name': 'f', 'records': 2, 'hits': 4, 'misses': 2, 'failures': 1,
      'bytes_inline': 10, 'bytes_blob': 0, 'time_saved': 1.5, 'tokens_saved': 0.0}]
    """
    kept = {row[0]: row[1:] for row in records}
    counted = {row[0]: row[1:] for row in counts}
    logged = {row[0]: row[1] for row in failures}
    rows = []
    for name in sorted(kept.keys() | counted.keys() | logged.keys(), key=_name_order):
        stored, size_inline, size_blob, time_saved, tokens_saved = kept.get(name, (0,) * 5)
        hits, misses, failed = counted.get(name, (0, 0, 0))
        rows.append(
            {
                "func_name": name,
                "records": int(stored or 0),
                "hits": int(hits or 0),
                "misses": int(misses or 0),
                "failures": max(int(failed or 0), int(logged.get(name) or 0)),
                "bytes_inline": int(size_inline or 0),
                "bytes_blob": int(size_blob or 0),
                "time_saved": float(time_saved or 0.0),
                "tokens_saved": float(tokens_saved or 0.0),
            }
        )
    return rows


def _name_order(name: str | None) -> tuple[bool, str]:
    return name is None, name or ""
