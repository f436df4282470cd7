"""The ``beautyspot`` command line: look into a cache and keep it tidy, from a shell or a script.

Commands (``beautyspot COMMAND --help`` tells more about each)::

    ls      DB               records, newest first (--failed: failed executions)
    show    DB KEY_PREFIX    one record: its metadata and its decoded value
    explain DB KEY_PREFIX    one record's key parts and its nearest records, with what differs
    stats   DB               per function: records, hits, misses, failures, bytes, savings
    clear   DB               delete records (all, or --func/--version) and their blobs
    prune   DB --older-than  delete records created longer ago than a duration ("7d")
    gc      DB               delete expired records, orphan blobs and stale temp files
    export  DB               records and their decoded values as JSON lines or CSV
    ui      DB               the web dashboard (pip install "beautyspot[dashboard]")

``DB`` is a SQLite file or a store URL (``sqlite:///cache.db``, ``redis://host:6379/0``,
``postgresql://user@host/db``); a URL's password is never printed. Results stored as blobs are
read from ``--storage``, by default the folder ``<NAME>_blobs`` beside a SQLite file, as a Spot
named after the file keeps them. Stored values are decoded by beautyspot's own format: nothing
is ever unpickled.

Exit status, for scripts: 0 done; 1 nothing matched (no record for the key prefix, the filters
or the age given, no statistics yet); 2 usage (a bad argument, an ``--import`` module that
cannot be loaded, a missing extra, a destructive command not confirmed); 3 the store cannot be
opened or cannot do what the command needs (a missing or non-SQLite file, an unreachable
server, a backend without the feature).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import dataclasses
import datetime as dt
import decimal
import enum
import io
import json
import math
import os
import pprint
import re
import sqlite3
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple
from urllib.parse import unquote, urlsplit

from beautyspot import __version__
from beautyspot._registry import redacted, scheme_of
from beautyspot.db import SQLiteTaskDB, TaskDB, taskdb_from
from beautyspot.db.base import BLOB, INLINE, RecordQuery
from beautyspot.errors import (
    BeautyspotWarning,
    ConfigurationError,
    NotSupportedError,
    SerializationError,
    StorageError,
)
from beautyspot.explain import explain_record
from beautyspot.integrity import matches
from beautyspot.maintenance import DEFAULT_OLDER_THAN, GCReport, collect_garbage
from beautyspot.reading import CustomValue, Decoder, custom_codes
from beautyspot.retention import retention_seconds
from beautyspot.storage import BlobStorageBase, LocalStorage, storage_from

__all__ = ["main"]

EXIT_OK, EXIT_NO_MATCH, EXIT_USAGE, EXIT_STORE = 0, 1, 2, 3

_EXIT_CODES = """\
exit status:
  0  done
  1  nothing matched (key prefix, filters or age; no statistics yet)
  2  usage: a bad argument, an --import module that cannot be loaded, a missing
     extra, or a destructive command not confirmed
  3  the store cannot be opened or cannot do what the command needs (missing or
     non-SQLite file, unreachable server, backend without the feature)"""

_IMPORT_HELP = """\
values of your own types:
  A value of a type registered in your code (register_type, register_dataclass,
  register_enum) decodes here once you name the module that registers it with
  --import MODULE (repeatable; the current folder is searched first). Either the
  module defines beautyspot_register(serializer), which is called with the
  command's Serializer (register your types on it as you do on spot.serializer),
  or, lacking that, the registrations of the Spots, Serializers and marked
  functions it (or a submodule it imports) holds at module level are copied;
  importing it then opens that Spot's store: prefer beautyspot_register.
  Without --import, such values show as "custom type code N, M bytes"."""

_PAGE = 1000  # records per find_records call while scanning
_HISTORY_LIMIT = 100_000  # records read from a TaskDB without find_records
_SHOW_CHARS = 20_000  # characters of a value `show` prints
_KEY_CHARS = 12  # characters of a key in tables
_LISTED_KEYS = 20  # keys named when a prefix is ambiguous


class _Exit(Exception):
    """Ends a command with exit status ``code``, saying ``message`` on stderr."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- the parser ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="beautyspot",
        description="Inspect and maintain beautyspot caches: any store, by path or URL.",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"beautyspot {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str, details: str = "", *, run: Callable[..., int]) -> Any:
        sub = commands.add_parser(
            name,
            parents=[] if name == "version" else [store],
            help=summary,
            description=f"{summary}.\n\n{details}".rstrip(),
            epilog=_EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=run)
        return sub

    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "db",
        metavar="DB",
        help="a SQLite file, or a store URL (sqlite:///cache.db, redis://host:6379/0, "
        "postgresql://user@host/db); a password in it is never printed",
    )
    store.add_argument(
        "--storage",
        metavar="S",
        help="the blob storage, a folder or URL (file:///..., s3://bucket/prefix, ...); "
        "default: the folder <NAME>_blobs beside a SQLite file, else ./<NAME>_blobs",
    )
    store.add_argument(
        "--name",
        help="the Spot's name: its namespace on a shared server (Redis) and the <NAME> of "
        "the default blob folder; default: the SQLite file's name without .db, else 'default'",
    )

    command("version", "print the installed beautyspot version", run=_version)

    ls = command(
        "ls",
        "list records, newest first",
        "Columns: short key, function, version, created (local time), stored size, hits.\n"
        "With --failed, failed executions instead (exceptions are recorded, never cached).",
        run=_ls,
    )
    _filters(ls)
    ls.add_argument("--failed", action="store_true", help="list failures instead of records")
    ls.add_argument(
        "-n", type=_positive_int, default=50, metavar="N", help="show at most N (default 50)"
    )

    show = command(
        "show",
        "show one record: its metadata and its decoded value",
        "KEY_PREFIX is the start of a key, as `ls` shows it; a prefix that several keys\n"
        "share is refused (status 2) with the keys listed. When no record matches, a\n"
        "recorded failure with that key is shown with its traceback.\n\n" + _IMPORT_HELP,
        run=_show,
    )
    show.add_argument("key", metavar="KEY_PREFIX", help="the key, or its first characters")
    _imports(show)

    explain = command(
        "explain",
        "explain one record: its key parts and its nearest records of the same function",
        "Shows the record's version, code fingerprint and per-argument digests (type and\n"
        "value for small scalars), then the records of its function that come nearest,\n"
        "each with what differs: the same report as fn.explain(...) in Python.\n"
        "KEY_PREFIX as for `show`.",
        run=_explain,
    )
    explain.add_argument("key", metavar="KEY_PREFIX", help="the key, or its first characters")

    command(
        "stats",
        "per function: records, hits, misses, failures, bytes, time and tokens saved",
        "Time saved is each record's compute time times its hits; tokens saved, the\n"
        "limiter tokens its computation spent times its hits.",
        run=_stats,
    )

    clear = command(
        "clear",
        "delete records and their blobs: all of them, or those of --func/--version",
        "Asks before deleting unless --yes; without a terminal to ask on, refuses (status 2).",
        run=_clear,
    )
    _filters(clear)
    _yes(clear)

    prune = command(
        "prune",
        "delete records created longer ago than --older-than, and their blobs",
        "Asks before deleting unless --yes; without a terminal to ask on, refuses (status 2).",
        run=_prune,
    )
    prune.add_argument(
        "--older-than",
        type=_duration,
        required=True,
        metavar="AGE",
        help="a duration: 30s, 15m, 12h, 7d, 2w, or seconds",
    )
    _yes(prune)

    gc = command(
        "gc",
        "delete expired records, orphan blobs and stale temp files, and report",
        "An orphan blob is one no record points to (of a deleted or expired record, or\n"
        "of a save interrupted before its record was written). A blob without a record\n"
        "may be a save in flight, so only those unmodified for --older-than go. The blob\n"
        "storage must belong to this DB alone: another store's blobs look like orphans.\n"
        "Asks before deleting unless --yes or --dry-run; without a terminal, refuses.",
        run=_gc,
    )
    gc.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")
    gc.add_argument(
        "--older-than",
        type=_age,
        default=DEFAULT_OLDER_THAN,
        metavar="AGE",
        help="minimum age of an orphan blob or temp file (default 1h; 0 for all)",
    )
    _yes(gc)

    export = command(
        "export",
        "write records and their decoded values as JSON lines or CSV, oldest first",
        "Each record is its metadata (times in Unix seconds) plus:\n"
        "  value       the value as JSON: tuples and sets become lists, bytes base64\n"
        "              text, dates ISO 8601 text, Decimal and UUID text, dataclasses\n"
        "              objects, numpy arrays lists, DataFrames {columns, index, data},\n"
        "              keys that are not strings their repr, anything else its repr\n"
        "  value_type  the Python type of the value (bytes: value is base64)\n"
        "  value_note  null, or why the value is incomplete or missing (an unread\n"
        "              blob, a failed checksum, types registered only in user code)\n"
        "In CSV, value is JSON text.\n\n" + _IMPORT_HELP,
        run=_export,
    )
    _filters(export)
    export.add_argument(
        "--format", choices=("jsonl", "csv"), default="jsonl", help="default: jsonl"
    )
    export.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE (default: standard output)"
    )
    _imports(export)

    ui = command(
        "ui",
        "serve the web dashboard",
        'Needs the dashboard extra: pip install "beautyspot[dashboard]". It binds\n'
        "127.0.0.1 unless told otherwise: bind another address only on a network you\n"
        "trust, and with --read-only.\n\n" + _IMPORT_HELP,
        run=_ui,
    )
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--port", type=_port, default=8080, help="port to listen on (default 8080)")
    ui.add_argument("--no-browser", action="store_true", help="do not open a browser")
    ui.add_argument(
        "--read-only", action="store_true", help="offer no way to delete or change records"
    )
    _imports(ui)
    return parser


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--func", metavar="F", help="only records of this function")
    parser.add_argument("--version", metavar="V", help="only records of this version")


def _yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-y", "--yes", action="store_true", help="delete without asking")


def _imports(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="a module that registers your types (repeatable; see above)",
    )


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number, 1 or more")
    return number


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: give a port number, 0 to 65535")
    return int(text)


def _duration(text: str) -> float:
    """Seconds in a duration given as text: a number of seconds, or 30s, 15m, 12h, 7d, 2w.

    >>> _duration("7d"), _duration("90")
    (604800.0, 90.0)
    """
    try:
        seconds = retention_seconds(_number_or_text(text), argument="--older-than")
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return float(seconds or 0)


def _age(text: str) -> float:
    """A duration that may also be 0 (everything unmodified since now)."""
    value = _number_or_text(text)
    return 0.0 if value == 0 else _duration(text)


def _number_or_text(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


# -- running a command --------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring).

    >>> main(["version"])  # doctest: +ELLIPSIS
    beautyspot ...
    0
    """
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    secrets = _secrets(argv)
    parser = build_parser()
    complaints = io.StringIO()  # argparse quotes arguments, URLs included
    try:
        with contextlib.redirect_stderr(complaints):
            args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error argparse has printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    finally:
        if complaints.getvalue():
            _say(complaints.getvalue().rstrip("\n"), secrets)
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("beautyspot: error: name a command (beautyspot --help lists them)", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except _Exit as stop:
        if stop.message:
            _say(f"beautyspot: {stop.message}", secrets)
        return stop.code
    except BrokenPipeError:  # `beautyspot ls ... | head`: the reader has what it wanted
        _silence_stdout()
        return EXIT_OK
    except (ConfigurationError, StorageError, NotSupportedError, OSError, sqlite3.Error) as exc:
        where = redacted(args.db) if hasattr(args, "db") else "beautyspot"
        _say(f"beautyspot: {where}: {exc}", secrets)
        return EXIT_STORE
    except KeyboardInterrupt:
        _say("beautyspot: interrupted", secrets)
        return 130


def _version(args: argparse.Namespace) -> int:
    print(f"beautyspot {__version__}")
    return EXIT_OK


def _say(message: str, secrets: Iterable[str]) -> None:
    """Print ``message`` on stderr with every password in ``secrets`` masked."""
    for secret in secrets:
        message = message.replace(secret, "***")
    print(_printable(message, keep_newlines=True), file=sys.stderr)


def _secrets(argv: Sequence[str]) -> list[str]:
    """The passwords inside the URLs among the arguments, as typed and decoded: never to be
    printed.

    >>> _secrets(["ls", "redis://:p%40ss@cache:6379/0", "--storage", "./blobs"])
    ['p%40ss', 'p@ss']
    """
    found = set()
    for url in argv:
        if scheme_of(url) is None:
            continue
        try:
            password = urlsplit(url).password
        except ValueError:
            continue
        if password:
            found.update({password, unquote(password)})
    return sorted(found, key=len, reverse=True)


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


class _Store:
    """The TaskDB a command works on, and its blob storage, opened when first needed."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.label = redacted(args.db)
        self._storage_spec: str | None = args.storage
        self._storage: BlobStorageBase | None = None
        sqlite_file = _sqlite_file(args.db)
        if sqlite_file is not None and not sqlite_file.exists():
            # SQLiteTaskDB would create it: a typo must not leave an empty cache behind.
            raise _Exit(EXIT_STORE, f"{self.label}: no such file; give an existing task database")
        self.name: str = args.name or (sqlite_file.stem if sqlite_file is not None else "default")
        #: Said when nothing matched: the records may be another Spot's, on a shared server.
        self.hint = (
            f" (of the Spot named {self.name!r}: --name picks another)"
            if sqlite_file is None and not args.name
            else ""
        )
        self.db: TaskDB = taskdb_from(args.db, self.name)
        try:
            self.db.init_schema()
        except BaseException:
            self.db.close()
            raise

    def storage(self) -> BlobStorageBase:
        if self._storage is None:
            if self._storage_spec:
                self._storage = storage_from(self._storage_spec, self.name)
            else:  # where a Spot of this name keeps them (Spot._default_blob_folder)
                folder = self.db.path.parent if isinstance(self.db, SQLiteTaskDB) else Path.cwd()
                self._storage = LocalStorage((folder / f"{self.name}_blobs").resolve())
        return self._storage

    def __enter__(self) -> _Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.db.close()


def _sqlite_file(spec: str) -> Path | None:
    """The file a plain path or a well-formed ``sqlite://`` URL names, else None."""
    scheme = scheme_of(spec)
    if scheme is None:
        return Path(spec)
    parts = urlsplit(spec)
    if scheme != "sqlite" or parts.netloc or not parts.path.startswith("/") or parts.path == "/":
        return None  # another backend, or a malformed URL its from_url explains
    return Path(unquote(parts.path[1:]))


# -- reading records ----------------------------------------------------------------------


def _records(db: TaskDB, func: str | None = None, version: str | None = None) -> Iterator[Any]:
    """Every record of ``func`` and ``version`` (None: any), oldest first, without its
    ``result_data``: pages of ``find_records``, or the history of a TaskDB without it."""
    query = RecordQuery(func_name=func, version=version, descending=False, limit=_PAGE)
    try:
        rows, _ = db.find_records(query)
    except NotSupportedError:
        yield from reversed(_history(db, func, version))
        return
    seen: set[str] = set()  # a record saved meanwhile shifts the pages
    while rows:
        for row in rows:
            if row["cache_key"] not in seen:
                seen.add(row["cache_key"])
                yield row
        if len(rows) < _PAGE:
            return
        query = query._replace(offset=query.offset + len(rows))
        rows, _ = db.find_records(query)


def _history(db: TaskDB, func: str | None, version: str | None) -> list[Mapping[str, Any]]:
    """The newest records of a TaskDB that cannot page through them, filtered here."""
    rows = db.get_history(limit=_HISTORY_LIMIT)
    if len(rows) >= _HISTORY_LIMIT:
        print(
            f"beautyspot: {type(db).__name__} has no find_records(): only its newest "
            f"{_HISTORY_LIMIT} records are looked at",
            file=sys.stderr,
        )
    return [
        row
        for row in rows
        if (func is None or row.get("func_name") == func)
        and (version is None or row.get("version") == version)
    ]


def _newest(db: TaskDB, func: str | None, version: str | None, limit: int) -> tuple[list[Any], int]:
    """Up to ``limit`` records, newest first, and how many match in all."""
    try:
        return db.find_records(RecordQuery(func_name=func, version=version, limit=limit))
    except NotSupportedError:
        rows = _history(db, func, version)
        return rows[:limit], len(rows)


def _reading_serializer(args: argparse.Namespace) -> Decoder:
    """A decoder taught the types of the modules named by ``--import`` (see
    :class:`beautyspot.reading.Decoder`)."""
    try:
        return Decoder(args.imports)
    except ConfigurationError as exc:
        raise _Exit(EXIT_USAGE, str(exc).replace("imports=", "--import ")) from None


class _Decoded(NamedTuple):
    """A record's value, if it could be read; ``note`` says what is missing, if anything."""

    readable: bool
    value: Any = None
    note: str | None = None


def _decode(record: Mapping[str, Any], store: _Store, serializer: Decoder) -> _Decoded:
    """The value stored in ``record`` (read from the blob storage if it is a blob)."""
    kind = record.get("result_type")
    cryptographic = False
    if kind == INLINE:
        data = record.get("result_data")
    elif kind == BLOB:
        location = record.get("result_value")
        storage = store.storage()
        cryptographic = storage.writable_apart_from_records
        try:
            data = storage.load(str(location))
        except (OSError, NotSupportedError) as exc:
            return _Decoded(
                False, note=f"blob {location!r} cannot be read ({exc}); is --storage right?"
            )
    else:
        return _Decoded(False, note=f"unknown result_type {kind!r}: the record is damaged")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return _Decoded(False, note="the record holds no stored bytes: it is damaged")
    data = bytes(data)
    checksum = record.get("checksum")
    if checksum and not matches(checksum, data, cryptographic=cryptographic):
        return _Decoded(False, note="the stored bytes fail their checksum: they are corrupt")
    try:
        value = serializer.loads(data)
    except SerializationError as exc:
        return _Decoded(False, note=f"cannot be decoded: {exc}")
    if unregistered := custom_codes(value):
        codes = ", ".join(sorted(map(str, unregistered)))
        return _Decoded(
            True,
            value,
            f"holds types registered in user code (code {codes}): name the module that "
            "registers them with --import MODULE",
        )
    return _Decoded(True, value)


def _full(db: TaskDB, row: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``row`` with its ``result_data``, which pages of records leave out."""
    if row.get("result_type") == INLINE and row.get("result_data") is None:
        return db.get(row["cache_key"])
    return row


# -- ls, show, stats ----------------------------------------------------------------------


def _ls(args: argparse.Namespace) -> int:
    if args.failed and args.version is not None:
        raise _Exit(EXIT_USAGE, "--version does not apply to --failed: failures keep no version")
    with _Store(args) as store:
        if args.failed:
            return _ls_failures(store, args)
        rows, total = _newest(store.db, args.func, args.version, args.n)
        if not rows:
            raise _Exit(EXIT_NO_MATCH, f"{store.label}: no records{_scope(args)}{store.hint}")
        table = [
            [
                _short(row.get("cache_key")),
                row.get("func_name"),
                row.get("version"),
                _when(row.get("created_at")),
                _size(row.get("size", row.get("result_size"))),
                row.get("hits") or 0,
            ]
            for row in rows
        ]
        print(_table(["KEY", "FUNCTION", "VERSION", "CREATED", "SIZE", "HITS"], table, {4, 5}))
        if total > len(rows):
            print(f"{len(rows)} of {total} records (-n {total} lists all)", file=sys.stderr)
        return EXIT_OK


def _ls_failures(store: _Store, args: argparse.Namespace) -> int:
    limit = args.n if args.func is None else max(args.n, _HISTORY_LIMIT)
    failures = [
        f
        for f in store.db.get_failures(limit=limit)
        if args.func is None or f.get("func_name") == args.func
    ][: args.n]
    if not failures:
        raise _Exit(EXIT_NO_MATCH, f"{store.label}: no failures{_scope(args)}")
    table = [
        [
            _short(f.get("cache_key")),
            f.get("func_name"),
            _when(f.get("created_at")),
            _clip(f"{f.get('error_type')}: {f.get('message')}", 60),
            _clip(f.get("input_preview") or "", 40),
        ]
        for f in failures
    ]
    print(_table(["KEY", "FUNCTION", "CREATED", "ERROR", "INPUT"], table))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    prefix = _key_prefix(args)
    serializer = _reading_serializer(args)
    with _Store(args) as store:
        record = _record_by_prefix(store, prefix)
        if record is not None:
            _print_record(record, _decode(record, store, serializer))
            return EXIT_OK
        failure = _failure_by_prefix(store.db, prefix)
        if failure is not None:
            _print_failure(failure)
            return EXIT_OK
        raise _no_record(store, prefix)


def _explain(args: argparse.Namespace) -> int:
    prefix = _key_prefix(args)
    with _Store(args) as store:
        record = _record_by_prefix(store, prefix)
        if record is None:
            raise _no_record(store, prefix)
        print(_printable(str(explain_record(store.db, record)), keep_newlines=True))
    return EXIT_OK


def _key_prefix(args: argparse.Namespace) -> str:
    prefix = str(args.key).strip()
    if not prefix:
        raise _Exit(EXIT_USAGE, "give a key, or its first characters")
    return prefix


def _no_record(store: _Store, prefix: str) -> _Exit:
    message = f"{store.label}: no record's key starts with {prefix!r}{store.hint}"
    return _Exit(EXIT_NO_MATCH, message)


def _record_by_prefix(store: _Store, prefix: str) -> Mapping[str, Any] | None:
    """The record whose key is ``prefix``, or the one key starting with it (several: an
    error listing them)."""
    exact = store.db.get(prefix)
    if exact is not None:
        return exact
    keys = sorted(
        str(row["cache_key"])
        for row in _records(store.db)
        if str(row["cache_key"]).startswith(prefix)
    )
    if len(keys) > 1:
        listed = "\n  ".join(keys[:_LISTED_KEYS])
        more = f"\n  ... and {len(keys) - _LISTED_KEYS} more" if len(keys) > _LISTED_KEYS else ""
        raise _Exit(
            EXIT_USAGE,
            f"{len(keys)} keys start with {prefix!r}; give more characters:\n  {listed}{more}",
        )
    return store.db.get(keys[0]) if keys else None


def _failure_by_prefix(db: TaskDB, prefix: str) -> Mapping[str, Any] | None:
    try:
        failures = db.get_failures(limit=_HISTORY_LIMIT)
    except NotSupportedError:
        return None
    return next((f for f in failures if str(f.get("cache_key", "")).startswith(prefix)), None)


def _print_record(record: Mapping[str, Any], decoded: _Decoded) -> None:
    kind = record.get("result_type")
    where = f"blob at {record.get('result_value')}" if kind == BLOB else str(kind)
    fields = [
        ("key", record.get("cache_key")),
        ("function", record.get("func_name")),
        ("version", record.get("version") or "-"),
        ("created", _when(record.get("created_at"))),
        ("expires", _expiry(record.get("expires_at"))),
        ("stored", f"{where}, {_size(record.get('size'))}"),
        ("content type", record.get("content_type") or "-"),
        ("compute time", _seconds(record.get("duration"))),
        ("hits", record.get("hits") or 0),
        ("input", record.get("input_preview") or "-"),
        ("checksum", record.get("checksum") or "-"),
        ("code", record.get("code_fingerprint") or "-"),
    ]
    if decoded.readable:
        fields.append(("value type", _type_name(decoded.value)))
    if decoded.note is not None:
        fields.append(("note", decoded.note))
    print(_fields(fields))
    if decoded.readable:
        print()
        print(_render(decoded.value))


def _print_failure(failure: Mapping[str, Any]) -> None:
    print(
        _fields(
            [
                ("key", failure.get("cache_key")),
                ("function", failure.get("func_name")),
                ("failed", _when(failure.get("created_at"))),
                ("input", failure.get("input_preview") or "-"),
                ("error", f"{failure.get('error_type')}: {failure.get('message')}"),
                ("note", "no result is stored for this key: failures are never cached"),
            ]
        )
    )
    print()
    print(_printable(str(failure.get("traceback") or ""), keep_newlines=True).rstrip())


def _stats(args: argparse.Namespace) -> int:
    with _Store(args) as store:
        rows = sorted(store.db.get_stats(), key=lambda row: str(row.get("func_name")))
        if not rows:
            raise _Exit(EXIT_NO_MATCH, f"{store.label}: no statistics yet{store.hint}")
        columns = ("records", "hits", "misses", "failures")
        table = []
        totals = dict.fromkeys((*columns, "bytes", "time_saved", "tokens_saved"), 0.0)
        for row in rows:
            numbers = {c: row.get(c) or 0 for c in columns}
            numbers["bytes"] = (row.get("bytes_inline") or 0) + (row.get("bytes_blob") or 0)
            numbers["time_saved"] = row.get("time_saved") or 0.0
            numbers["tokens_saved"] = row.get("tokens_saved") or 0
            for name, number in numbers.items():
                totals[name] += number
            table.append([row.get("func_name"), *_stat_cells(numbers)])
        if len(rows) > 1:
            table.append(["TOTAL", *_stat_cells(totals)])
        headers = ["FUNCTION", "RECORDS", "HITS", "MISSES", "FAILURES", "SIZE"]
        print(_table([*headers, "TIME SAVED", "TOKENS SAVED"], table, set(range(1, 8))))
        return EXIT_OK


def _stat_cells(numbers: Mapping[str, float]) -> list[str]:
    counts = [f"{int(numbers[c]):,}" for c in ("records", "hits", "misses", "failures")]
    tokens = numbers["tokens_saved"]
    shown = f"{int(tokens):,}" if float(tokens).is_integer() else f"{tokens:,.1f}"
    return [*counts, _size(numbers["bytes"]), _seconds(numbers["time_saved"]), shown]


# -- clear, prune, gc ---------------------------------------------------------------------


def _clear(args: argparse.Namespace) -> int:
    _check_can_ask(args)
    with _Store(args) as store:
        doomed = list(_records(store.db, args.func, args.version))
        if not doomed:
            raise _Exit(EXIT_NO_MATCH, f"{store.label}: no records{_scope(args)}{store.hint}")
        _confirm(
            args,
            f"Delete {_plural(len(doomed), 'record')}{_scope(args)} and their blobs "
            f"from {store.label}?",
        )
        _report_deleted(store, doomed)
        return EXIT_OK


def _prune(args: argparse.Namespace) -> int:
    _check_can_ask(args)
    cutoff = time.time() - args.older_than
    with _Store(args) as store:
        doomed = []
        for row in _records(store.db):  # oldest first
            created = row.get("created_at")
            if not isinstance(created, (int, float)):
                continue
            if created >= cutoff:
                break
            doomed.append(row)
        before = f"created before {_when(cutoff)}"
        if not doomed:
            raise _Exit(EXIT_NO_MATCH, f"{store.label}: no records {before}")
        _confirm(
            args,
            f"Delete {_plural(len(doomed), 'record')} {before}, and their blobs, "
            f"from {store.label}?",
        )
        _report_deleted(store, doomed)
        return EXIT_OK


def _report_deleted(store: _Store, rows: list[Mapping[str, Any]]) -> None:
    records = blobs = kept = 0
    for row in rows:
        if not store.db.delete(row["cache_key"]):
            continue  # gone meanwhile; its blob, if any, is left to gc
        records += 1
        if row.get("result_type") == BLOB:
            try:
                store.storage().delete(str(row.get("result_value")))
                blobs += 1
            except (OSError, NotSupportedError):
                kept += 1
    print(f"deleted {_plural(records, 'record')} and {_plural(blobs, 'blob')} from {store.label}")
    if kept:
        print(f"{_plural(kept, 'blob')} could not be deleted: `beautyspot gc` removes them later")


def _gc(args: argparse.Namespace) -> int:
    if not args.dry_run:
        _check_can_ask(args)
    with _Store(args) as store:
        storage = store.storage()
        if args.dry_run:
            report = _gc_plan(store.db, storage, args.older_than)
            print(f"would remove from {store.label} (dry run: nothing deleted)")
        else:
            _confirm(
                args,
                f"Delete expired records, and orphan blobs and temp files unmodified for "
                f"{_seconds(args.older_than)}, from {store.label} and {_storage_label(storage)}?",
            )
            report = collect_garbage(store.db, storage, older_than=args.older_than)
            print(f"removed from {store.label}")
        temp = "not counted in a dry run" if args.dry_run else report.temp_files
        print(
            _fields(
                [
                    ("expired records", report.expired_records),
                    ("orphan blobs", f"{report.orphan_blobs} ({_size(report.bytes_freed)})"),
                    ("temp files", temp),
                ]
            )
        )
        return EXIT_OK


def _gc_plan(db: TaskDB, storage: BlobStorageBase, older_than: float) -> GCReport:
    """What :func:`~beautyspot.maintenance.collect_garbage` would remove, temp files aside."""
    now = time.time()
    expired: list[Mapping[str, Any]] = []
    if type(db).delete_expired is not TaskDB.delete_expired:  # else gc keeps them
        expired = [row for row in _records(db) if _has_expired(row.get("expires_at"), now)]
    freed = {row.get("result_value") for row in expired if row.get("result_type") == BLOB}
    in_use = set(db.iter_blob_locations()) - freed
    orphans = size = 0
    for location in storage.iter_locations():
        if location in in_use:
            continue
        try:
            blob = storage.stat(location)
        except FileNotFoundError:
            continue
        if blob.modified_at <= now - older_than:
            orphans += 1
            size += blob.size
    return GCReport(expired_records=len(expired), orphan_blobs=orphans, bytes_freed=size)


def _check_can_ask(args: argparse.Namespace) -> None:
    if args.yes:
        return
    try:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed
        interactive = False
    if not interactive:
        raise _Exit(
            EXIT_USAGE,
            f"{args.command} deletes data and stdin is not a terminal to ask on: "
            "pass --yes to go ahead",
        )


def _confirm(args: argparse.Namespace, question: str) -> None:
    if args.yes:
        return
    sys.stderr.write(f"{_printable(question)} [y/N] ")
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise _Exit(EXIT_USAGE, "not confirmed: nothing deleted")


# -- export, ui ---------------------------------------------------------------------------

#: Record fields exported, in order; the value follows them.
_EXPORTED = (
    "cache_key", "func_name", "version", "input_id", "input_preview", "content_type",
    "result_type", "result_value", "size", "checksum", "duration", "created_at",
    "expires_at", "hits", "cost", "code_fingerprint",
)  # fmt: skip
_VALUE_FIELDS = ("value_type", "value_note", "value")


def _export(args: argparse.Namespace) -> int:
    serializer = _reading_serializer(args)
    with _Store(args) as store, _output(args.output, csv=args.format == "csv") as out:
        write = _csv_writer(out) if args.format == "csv" else _jsonl_writer(out)
        exported = 0
        for row in _records(store.db, args.func, args.version):
            record = _full(store.db, row)
            if record is None:  # deleted meanwhile
                continue
            write(_exported(record, _decode(record, store, serializer)))
            exported += 1
        if not exported:
            raise _Exit(EXIT_NO_MATCH, f"{store.label}: no records{_scope(args)}{store.hint}")
        return EXIT_OK


@contextlib.contextmanager
def _output(path: str | None, *, csv: bool) -> Iterator[IO[str]]:
    if path is None or path == "-":
        yield sys.stdout
        return
    try:
        file = open(path, "w", encoding="utf-8", newline="" if csv else None)  # noqa: SIM115
    except OSError as exc:
        raise _Exit(EXIT_USAGE, f"cannot write {path}: {exc.strerror or exc}") from None
    with file:
        yield file


def _jsonl_writer(out: IO[str]) -> Callable[[dict[str, Any]], None]:
    def write(row: dict[str, Any]) -> None:
        out.write(json.dumps(row, allow_nan=False) + "\n")

    return write


def _csv_writer(out: IO[str]) -> Callable[[dict[str, Any]], None]:
    writer = csv.DictWriter(out, fieldnames=[*_EXPORTED, *_VALUE_FIELDS])
    writer.writeheader()

    def write(row: dict[str, Any]) -> None:
        writer.writerow({**row, "value": json.dumps(row["value"], allow_nan=False)})

    return write


def _exported(record: Mapping[str, Any], decoded: _Decoded) -> dict[str, Any]:
    row = {name: _jsonable(record.get(name)) for name in _EXPORTED}
    row["value_type"] = _type_name(decoded.value) if decoded.readable else None
    row["value_note"] = decoded.note
    row["value"] = _jsonable(decoded.value)
    return row


def _jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data (see ``beautyspot export --help``).

    >>> import datetime
    >>> _jsonable({"when": datetime.date(2024, 5, 1), "raw": b"hi", 3: (1.5, {2})})
    {'when': '2024-05-01', 'raw': 'aGk=', '3': [1.5, [2]]}
    """
    if depth > 100:
        return _safe_repr(value)
    if isinstance(value, enum.Enum):
        return _jsonable(value.value, depth + 1)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else repr(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {
            k if isinstance(k, str) else _safe_repr(k): _jsonable(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, depth + 1) for item in value]
    if isinstance(value, (set, frozenset)):
        items = [_jsonable(item, depth + 1) for item in value]
        with contextlib.suppress(TypeError):
            items.sort()
        return items
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (decimal.Decimal, uuid.UUID, dt.tzinfo, CustomValue)):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return {f.name: _jsonable(getattr(value, f.name, None), depth + 1) for f in fields}
    return _library_jsonable(value, depth)


def _library_jsonable(value: Any, depth: int) -> Any:
    """numpy and pandas values as JSON data, anything else as its repr."""
    package = type(value).__module__.partition(".")[0]
    try:
        if package == "pandas" and hasattr(value, "to_dict"):
            if type(value).__name__ == "DataFrame":
                return _jsonable(value.to_dict(orient="split"), depth + 1)
            return _jsonable(value.to_dict(), depth + 1)
        if package in ("numpy", "pandas") and hasattr(value, "tolist"):
            return _jsonable(value.tolist(), depth + 1)
    except Exception:  # an exotic dtype: its repr will do
        pass
    return _safe_repr(value)


# -- ui -----------------------------------------------------------------------------------


def _ui(args: argparse.Namespace) -> int:
    try:
        from beautyspot.dashboard import exposure_warning, serve
    except ImportError as exc:
        name = exc.name or ""
        if name.startswith("beautyspot.") and name != "beautyspot.dashboard":
            raise  # our own module is broken: not something an install fixes
        raise _Exit(
            EXIT_USAGE,
            f'the dashboard needs its extra ({exc}): pip install "beautyspot[dashboard]"',
        ) from None
    _reading_serializer(args)  # a module that cannot be imported fails here, before serving
    exposed = exposure_warning(args.host, args.port, read_only=args.read_only)
    if exposed:
        print(f"beautyspot: warning: {exposed}", file=sys.stderr)
    with _Store(args) as store, warnings.catch_warnings():
        warnings.simplefilter("ignore", BeautyspotWarning)  # said once, just above
        serve(
            store.db,
            storage=store.storage(),
            host=args.host,
            port=args.port,
            open_browser=not args.no_browser,
            imports=tuple(args.imports),
            read_only=args.read_only,
        )
    return EXIT_OK


# -- text ---------------------------------------------------------------------------------

# Control characters (but newline and tab), and the bidirectional overrides that can make a
# terminal show text other than what it holds: cached output is untrusted.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNPRINTABLE_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _printable(text: str, *, keep_newlines: bool = False) -> str:
    r"""``text`` with control characters escaped, so it cannot drive the terminal.

    >>> _printable("ok\x1b[2J\nnext"), _printable("a\nb", keep_newlines=True)
    ('ok\\x1b[2J\\nnext', 'a\nb')
    """
    pattern = _UNPRINTABLE if keep_newlines else _UNPRINTABLE_IN_LINE
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _render(value: Any) -> str:
    """A value as `show` prints it: text as is, anything else pretty-printed."""
    if type(value) is str:
        text = value
    else:
        try:
            text = pprint.pformat(value, width=100, sort_dicts=False)
        except Exception:  # a user type's __repr__ may fail
            text = f"<{_type_name(value)} object; its repr failed>"
    text = _printable(text, keep_newlines=True)
    if len(text) > _SHOW_CHARS:
        rest = len(text) - _SHOW_CHARS
        text = f"{text[:_SHOW_CHARS]}\n... {rest:,} more characters (beautyspot export has all)"
    return text


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{_type_name(value)} object>"


def _type_name(value: Any) -> str:
    """The type of ``value`` as `show` and `export` name it.

    >>> _type_name(b""), _type_name(dt.date(2024, 5, 1))
    ('bytes', 'datetime.date')
    """
    if isinstance(value, CustomValue):
        return str(value)
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _table(headers: list[str], rows: list[list[Any]], right: Collection[int] = ()) -> str:
    """Rows as aligned columns under ``headers``; columns in ``right`` aligned right.

    >>> print(_table(["NAME", "N"], [["a", 1], ["bcd", 22]], {1}))
    NAME   N
    a      1
    bcd   22
    """
    cells = [headers, *([_cell(value) for value in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [
            text.rjust(width) if i in right else text.ljust(width)
            for i, (text, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _fields(pairs: list[tuple[str, Any]]) -> str:
    width = max(len(name) for name, _ in pairs)
    return "\n".join(f"{name.ljust(width)}  {_cell(value)}" for name, value in pairs)


def _cell(value: Any) -> str:
    return "-" if value is None else _printable(str(value))


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(key: Any) -> str:
    return "-" if key is None else str(key)[:_KEY_CHARS]


def _scope(args: argparse.Namespace) -> str:
    parts = []
    if getattr(args, "func", None) is not None:
        parts.append(f"of {args.func}")
    if getattr(args, "version", None) is not None:
        parts.append(f"version {args.version}")
    return f" {' '.join(parts)}" if parts else ""


def _plural(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural unless one.

    >>> _plural(1, "record"), _plural(2, "blob")
    ('1 record', '2 blobs')
    """
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _storage_label(storage: BlobStorageBase) -> str:
    root = getattr(storage, "root", None)
    return str(root) if isinstance(root, Path) else redacted(repr(storage))


def _size(size: Any) -> str:
    """A byte count for people.

    >>> _size(None), _size(512), _size(1536), _size(3 * 1024**3)
    ('-', '512 B', '1.5 KiB', '3.0 GiB')
    """
    if not isinstance(size, (int, float)):
        return "-"
    if size < 1024:
        return f"{int(size)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024 or unit == "TiB":
            break
    return f"{size:.1f} {unit}"


def _seconds(seconds: Any) -> str:
    """A duration for people.

    >>> _seconds(0.0123), _seconds(4.5), _seconds(725), _seconds(3725), _seconds(200000)
    ('12 ms', '4.5 s', '12m 05s', '1h 02m', '2d 07h')
    >>> _seconds(0), _seconds(0.00001), _seconds(None)
    ('0 s', '<1 ms', '-')
    """
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "-"
    if seconds < 0.001:
        return "0 s" if seconds <= 0 else "<1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600:02d}h"


def _when(moment: Any) -> str:
    """A time (Unix seconds) in local time, to the second."""
    if isinstance(moment, dt.datetime):
        return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(moment, (int, float)) and math.isfinite(moment):
        try:
            return dt.datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M:%S")
        except (OverflowError, OSError, ValueError):
            pass
    return "-" if moment is None else str(moment)


def _expiry(expires_at: Any) -> str:
    if expires_at is None:
        return "never"
    expired = " (expired)" if _has_expired(expires_at, time.time()) else ""
    return f"{_when(expires_at)}{expired}"


def _has_expired(expires_at: Any, now: float) -> bool:
    return isinstance(expires_at, (int, float)) and expires_at <= now


if __name__ == "__main__":
    sys.exit(main())
