"""beautyspot against the raw SQLite floor and its peers: one command, one table of ratios.

Every figure is a ratio of two timings taken in the same run, interleaved repeat by repeat, so a
noisy machine slows both sides alike. Each timing is the median of several repeats, after a
warm-up, with the garbage collector paused.

    python3 benchmarks/bench.py            # full run: a few minutes on 2 cores
    python3 benchmarks/bench.py --quick    # smoke run: seconds (smaller sizes, e.g. 1k -> 20k)
    python3 benchmarks/bench.py --cases hit,miss

The first run builds ``benchmarks/.venv`` (beautyspot from this checkout, editable, plus the
peers in ``benchmarks/requirements.txt``) and re-runs itself inside it. ``--here`` runs in the
current interpreter instead and skips the rows of any peer it lacks.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import hashlib
import inspect
import itertools
import multiprocessing
import os
import queue
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV = HERE / ".venv"
REQUIREMENTS = HERE / "requirements.txt"


# -- environment ------------------------------------------------------------------------------


def ensure_environment(argv: list[str]) -> None:
    """Re-run this script inside ``benchmarks/.venv``, building or updating it first."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    python = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        print(f"building {VENV} (first run only) ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    # beautyspot's own dependencies come from pyproject.toml: a change there reinstalls it.
    project = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    wanted = f"{REQUIREMENTS.read_text()}\n-e {REPO}  # pyproject.toml sha256 {project}\n"
    stamp = VENV / "bench-installed.txt"
    if not stamp.exists() or stamp.read_text() != wanted:
        print("installing beautyspot and the peers into it ...", file=sys.stderr)
        install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*install, "-r", str(REQUIREMENTS), "-e", str(REPO)], check=True)
        stamp.write_text(wanted)
    sys.stdout.flush()
    os.execv(python, [str(python), str(Path(__file__).resolve()), *argv])


# -- what is measured -------------------------------------------------------------------------

PAYLOAD = os.urandom(1 << 20)
CALLS = 0  # executions of a work function, across all memoizers (for the lost-record count)


def tiny(number: int) -> int:
    """The trivial function of the small-result cases."""
    global CALLS
    CALLS += 1
    return number


async def atiny(number: int) -> int:
    """The trivial function of the small-result cases, as ``async def``."""
    global CALLS
    CALLS += 1
    return number


def one_mebibyte(number: int) -> bytes:
    """A function whose result is 1 MiB of bytes."""
    return PAYLOAD


def labelled(number: int, label: str = "item", scale: float = 1.5) -> float:
    """A three-argument function (two of them defaults) of the digests case."""
    return number * scale


def keyed(array: Any) -> int:
    """A function whose argument is a large numpy array (only its key is computed)."""
    return len(array)


@dataclass(frozen=True)
class Sizes:
    """How much work each case does; ``--quick`` shrinks every one."""

    repeats: int
    ints: int  # distinct inputs of the small-result cases
    slow_ints: int  # the same for peers a hundred times slower (joblib, cachier)
    blob_calls: int
    records: int  # the large databases of the growth case
    probes: int  # records of its small databases, the inputs its hits read
    writers: int
    writes: int  # misses per writer process
    array_items: int  # float64 items of the keyed array
    imports: int
    map_hits: int  # cached items of one spot.map call
    map_misses: int  # new items of one spot.map(workers=MAP_WORKERS) call


FULL = Sizes(
    repeats=7, ints=2000, slow_ints=200, blob_calls=40, records=1_000_000, probes=1000,
    writers=4, writes=5000, array_items=10_000_000, imports=7, map_hits=10_000, map_misses=2000,
)  # fmt: skip
QUICK = Sizes(
    repeats=3, ints=200, slow_ints=20, blob_calls=4, records=20_000, probes=1000,
    writers=4, writes=300, array_items=1_000_000, imports=3, map_hits=1000, map_misses=200,
)  # fmt: skip
#: Threads of the spot.map miss case.
MAP_WORKERS = 8
WRITER_TIMEOUT = 300  # seconds a concurrent writer may take to start or to finish its writes
#: The growth case's row is a ratio of four timings, so it takes this many times the repeats
#: of the others, each timing ``GROWTH_PASSES`` reads of every probe.
GROWTH_REPEATS = 3
GROWTH_PASSES = 2


# -- timing -----------------------------------------------------------------------------------


def timed(loop: Callable[[], object], operations: int) -> float:
    """Microseconds per operation of one run of ``loop``, the garbage collector paused."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        loop()
        return (time.perf_counter() - start) / operations * 1e6
    finally:
        gc.enable()


class Timings:
    """Per-repeat timings of several runners, taken in turn within each repeat."""

    def __init__(self, samples: dict[str, list[float]]) -> None:
        self.samples = samples

    def __contains__(self, name: str) -> bool:
        return name in self.samples

    def __getitem__(self, name: str) -> float:
        """The median of ``name``'s timings, in microseconds."""
        return statistics.median(self.samples[name])

    def ratio(self, name: str, reference: str) -> float:
        """The median of per-repeat ratios: a repeat slowed by a neighbour slows both sides."""
        pairs = zip(self.samples[name], self.samples[reference], strict=True)
        return statistics.median(ours / theirs for ours, theirs in pairs)

    def row(self, case: str, name: str, reference: str, limit: float | None = None) -> Row:
        return Row(case, self[name], self[reference], self.ratio(name, reference), limit)


def race(runners: dict[str, Callable[[], float]], repeats: int) -> Timings:
    """Every runner once per repeat, in turn, so drift in the machine's speed hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            samples[name].append(run())
    return Timings(samples)


def call_each(func: Callable[[Any], Any], inputs: Iterable[Any]) -> Callable[[], None]:
    def loop() -> None:
        for value in inputs:
            func(value)

    return loop


class Scratch:
    """Fresh, numbered folders under one temporary root, removed at the end of the run."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="beautyspot-bench-"))
        self._numbers = itertools.count()
        self._closers: list[Callable[[], None]] = []

    def folder(self, label: str) -> Path:
        return self.root / f"{label.replace(' ', '-')}-{next(self._numbers)}"

    def on_close(self, close: Callable[[], object]) -> None:
        """Call ``close`` when the scratch closes (before its folders go)."""
        self._closers.append(close)

    def memoize(
        self, memoizer: Callable[..., Any], func: Callable[..., Any], label: str
    ) -> tuple[Any, Path]:
        """``func`` memoized in a new folder, closed with the scratch; and that folder."""
        folder = self.folder(label)
        memoized, close = memoizer(folder, func)
        self.on_close(close)
        return memoized, folder

    def close(self) -> None:
        for close in self._closers:
            close()
        shutil.rmtree(self.root, ignore_errors=True)


def hit_runner(scratch: Scratch, name: str, func: Callable[..., Any], inputs: list[Any]) -> Any:
    """A runner timing hits: ``inputs`` are stored once, then read on every repeat."""
    from _peers import MEMOIZERS

    memoized, _ = scratch.memoize(MEMOIZERS[name], func, name)
    call_each(memoized, inputs)()  # fill
    call_each(memoized, inputs)()  # warm up
    return lambda: timed(call_each(memoized, inputs), len(inputs))


def miss_runner(scratch: Scratch, name: str, func: Callable[..., Any], count: int) -> Any:
    """A runner timing misses: each repeat has a fresh store and ``count`` new inputs."""
    from _peers import MEMOIZERS

    def run() -> float:
        folder = scratch.folder(name)
        memoized, close = MEMOIZERS[name](folder, func)
        try:
            call_each(memoized, range(-8, 0))()  # warm up: open, create the schema, prepare
            return timed(call_each(memoized, range(count)), count)
        finally:
            close()
            shutil.rmtree(folder, ignore_errors=True)

    return run


# -- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table: beautyspot's figure against a reference measured alongside."""

    case: str
    ours: float | None  # microseconds
    reference: float | None
    ratio: float | None = None
    limit: float | None = None  # the target: ratio <= limit
    note: str = ""
    passed: bool | None = None  # set when the target is not a ratio

    @property
    def verdict(self) -> str:
        passed = self.passed
        if passed is None and self.limit is not None and self.ratio is not None:
            passed = self.ratio <= self.limit
        if passed is None:
            return "skip" if self.ratio is None else "info"
        return "MET" if passed else "MISS"


HEADER = ("case", "beautyspot µs", "reference µs", "ratio", "target", "result", "note")


def format_table(rows: list[Row]) -> str:
    cells = [HEADER] + [
        (
            row.case,
            _number(row.ours),
            _number(row.reference),
            "-" if row.ratio is None else f"{row.ratio:.2f}",
            _target(row),
            row.verdict,
            row.note,
        )
        for row in rows
    ]
    widths = [max(len(line[column]) for line in cells) for column in range(len(HEADER))]
    lines = [
        " | ".join(
            text.ljust(width) if column in (0, 4, 5, 6) else text.rjust(width)
            for column, (text, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in cells
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 1000 else f"{value:.2f}"


def _target(row: Row) -> str:
    if row.limit is not None:
        return f"<= {row.limit:g}"
    return "0 errors, 0 lost" if row.passed is not None else "-"


# -- cases ------------------------------------------------------------------------------------


@dataclass
class Run:
    """What every case needs: sizes, scratch folders and the peers that can be imported."""

    sizes: Sizes
    scratch: Scratch
    available: set[str]

    def skipped(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if name not in self.available]


PERSISTENT_PEERS = ("diskcache", "joblib", "cachier")
HIT_LIMITS = {"raw floor": 1.3, "diskcache": 0.45}
MISS_LIMITS = {"raw floor": 1.6, "diskcache": 0.5}
#: What each reference does, where the row's name alone would not say it.
REFERENCE_NOTES = {("small miss", "raw floor"): " (lookup + insert)"}


def case_hit(run: Run) -> list[Row]:
    """Small result, hit: 2,000 distinct ints stored, then read back."""
    sizes = run.sizes
    names = [n for n in ("beautyspot", "raw floor", *PERSISTENT_PEERS) if n in run.available]
    runners = {
        name: hit_runner(run.scratch, name, tiny, list(range(_count(name, sizes))))
        for name in names
    }
    times = race(runners, sizes.repeats)
    return _against(times, HIT_LIMITS, "small hit", run)


def case_miss(run: Run) -> list[Row]:
    """Small result, miss: every call a new input, a fresh store every repeat."""
    sizes = run.sizes
    names = [n for n in ("beautyspot", "raw floor", *PERSISTENT_PEERS) if n in run.available]
    runners = {name: miss_runner(run.scratch, name, tiny, _count(name, sizes)) for name in names}
    times = race(runners, sizes.repeats)
    return _against(times, MISS_LIMITS, "small miss", run)


def _count(name: str, sizes: Sizes) -> int:
    return sizes.slow_ints if name in ("joblib", "cachier") else sizes.ints


def _against(times: Timings, limits: dict[str, float], case: str, run: Run) -> list[Row]:
    rows = [
        times.row(
            f"{case} / {name}{REFERENCE_NOTES.get((case, name), '')}",
            "beautyspot",
            name,
            limits.get(name),
        )
        for name in ("raw floor", *PERSISTENT_PEERS)
        if name in times
    ]
    rows += [
        Row(f"{case} / {name}", times["beautyspot"], None, limit=limits.get(name), note="missing")
        for name in run.skipped(PERSISTENT_PEERS)
    ]
    return rows


def case_memory(run: Run) -> list[Row]:
    """Hit through the in-process memory tier against ``cachetools.cached``."""
    inputs = list(range(run.sizes.ints))
    case, limit = "memory-tier hit / cachetools", 4.0
    if "cachetools" not in run.available:
        return [Row(case, None, None, limit=limit, note="no cachetools")]
    runners = {"cachetools": hit_runner(run.scratch, "cachetools", tiny, inputs)}
    problem = _memory_tier_problem(run.scratch)
    memory = "beautyspot memory tier"
    if problem is None:
        runners[memory] = hit_runner(run.scratch, memory, tiny, inputs)
    runners["beautyspot"] = hit_runner(run.scratch, "beautyspot", tiny, inputs)
    times = race(runners, run.sizes.repeats)
    return [
        times.row(case, memory, "cachetools", limit)
        if problem is None
        else Row(case, None, times["cachetools"], limit=limit, note=problem),
        times.row("SQLite hit / cachetools", "beautyspot", "cachetools"),
    ]


def _memory_tier_problem(scratch: Scratch) -> str | None:
    """Why the memory tier cannot be measured, or None when it can."""
    from _peers import beautyspot_memory

    import beautyspot as bs

    if "memory_cache" not in inspect.signature(bs.Spot).parameters:
        return "Spot has no memory_cache= yet"
    try:
        _, close = beautyspot_memory(scratch.folder("probe"), tiny)
    except Exception as error:
        return f"Spot(memory_cache=...) refused: {error}"
    close()
    return None


def case_blob(run: Run) -> list[Row]:
    """1 MiB result: a miss saves a blob file, a hit loads it; against plain file I/O."""
    from _peers import read_file, write_and_rename

    sizes, scratch = run.sizes, run.scratch
    calls = sizes.blob_calls
    files = scratch.folder("files")
    write = write_and_rename(files, PAYLOAD)
    call_each(write, range(calls))()  # the files the read reference loads
    names = [n for n in ("beautyspot", "diskcache") if n in run.available]
    runners = {f"{name} miss": miss_runner(scratch, name, one_mebibyte, calls) for name in names}
    runners["write + rename"] = lambda: timed(call_each(write, range(calls)), calls)
    runners |= {
        f"{name} hit": hit_runner(scratch, name, one_mebibyte, list(range(calls))) for name in names
    }
    runners["read"] = lambda: timed(call_each(read_file(files), range(calls)), calls)
    times = race(runners, sizes.repeats)
    rows = [
        times.row("1 MiB blob save / write + rename", "beautyspot miss", "write + rename", 1.5),
        times.row("1 MiB blob load / file read", "beautyspot hit", "read", 2.0),
    ]
    if "diskcache hit" in times:
        rows += [
            times.row("1 MiB blob save / diskcache", "beautyspot miss", "diskcache miss"),
            times.row("1 MiB blob load / diskcache", "beautyspot hit", "diskcache hit"),
        ]
    return rows


def case_async(run: Run) -> list[Row]:
    """An ``async def`` marked function's hit, awaited in a loop in one event loop, against
    the sync hit of the same function written with ``def``."""
    from _peers import beautyspot

    inputs = list(range(run.sizes.ints))
    loop = asyncio.new_event_loop()
    run.scratch.on_close(loop.close)
    memoized, _ = run.scratch.memoize(beautyspot, atiny, "async")

    async def await_each() -> None:
        for value in inputs:
            await memoized(value)

    def awaited() -> None:
        loop.run_until_complete(await_each())

    awaited()  # fill
    awaited()  # warm up
    runners = {
        "sync": hit_runner(run.scratch, "beautyspot", tiny, inputs),
        "async": lambda: timed(awaited, len(inputs)),
    }
    times = race(runners, run.sizes.repeats)
    return [times.row("async hit / sync hit", "async", "sync", 1.3)]


def case_map(run: Run) -> list[Row]:
    """``spot.map`` over cached items against direct hits; ``spot.map(workers=8)`` over new
    items against sequential misses. Per item: the whole call over the number of items."""
    from _peers import beautyspot_spot

    sizes, scratch = run.sizes, run.scratch
    spot = beautyspot_spot(scratch.folder("map-hits"))
    scratch.on_close(spot.close)
    marked = spot.mark(tiny)
    items = list(range(sizes.map_hits))
    call_each(marked, items)()  # fill
    call_each(marked, items)()  # warm up
    spot.map(marked, items, progress=False)  # warm up
    hits = {
        "direct": lambda: timed(call_each(marked, items), len(items)),
        "map": lambda: timed(lambda: spot.map(marked, items, progress=False), len(items)),
    }
    misses = {
        "sequential": miss_runner(scratch, "beautyspot", tiny, sizes.map_misses),
        "map": _map_miss_runner(scratch, sizes.map_misses, MAP_WORKERS),
    }
    hit_times = race(hits, sizes.repeats)
    miss_times = race(misses, sizes.repeats)
    return [
        hit_times.row(
            f"spot.map over {sizes.map_hits:,} cached items, per item / a direct hit",
            "map",
            "direct",
            1.5,
        ),
        miss_times.row(
            f"spot.map(workers={MAP_WORKERS}) over {sizes.map_misses:,} trivial misses, "
            "per item / sequential misses",
            "map",
            "sequential",
            1.2,
        ),
    ]


def _map_miss_runner(scratch: Scratch, count: int, workers: int) -> Callable[[], float]:
    """As :func:`miss_runner`, the misses made by one ``spot.map(..., workers=workers)``."""
    from _peers import beautyspot_spot

    def run() -> float:
        folder = scratch.folder("map-misses")
        spot = beautyspot_spot(folder)
        try:
            marked = spot.mark(tiny)
            call_each(marked, range(-8, 0))()  # warm up: open, create the schema, prepare

            def mapped() -> None:
                spot.map(marked, range(count), workers=workers, progress=False)

            return timed(mapped, count)
        finally:
            spot.close()
            shutil.rmtree(folder, ignore_errors=True)

    return run


def case_growth(run: Run) -> list[Row]:
    """Hit latency in a file of ``probes`` records against one of ``records``, for beautyspot
    and for the raw floor; the row is beautyspot's growth over the floor's own growth.

    Each file holds the results of ``tiny(0..n-1)``; the hits read ``tiny(0..probes-1)``, in
    every file. The small files are written call by call; the large ones in bulk, with
    exactly the records the library and the floor write (see ``beautyspot_fill`` and
    ``raw_floor_fill``); the bulk records are checked against the call-by-call ones.
    """
    from _peers import beautyspot, beautyspot_fill, raw_floor, raw_floor_fill

    sizes, scratch = run.sizes, run.scratch
    probes = list(range(sizes.probes))
    folders = {name: scratch.folder(f"growth-{name}") for name in GROWTH_SIDES}
    built = time.perf_counter()
    for name, memoizer in (("ours small", beautyspot), ("floor small", raw_floor)):
        memoized, close = memoizer(folders[name], tiny)
        call_each(memoized, probes)()
        close()
    beautyspot_fill(folders["ours large"], tiny, range(sizes.records))
    raw_floor_fill(folders["floor large"], tiny, range(sizes.records))
    for name in GROWTH_SIDES:
        _checkpoint(folders[name])
    for side, file, table, key in (("ours", "bench.db", "tasks", "cache_key"),
                                   ("floor", "floor.db", "cache", "key")):  # fmt: skip
        small, large = folders[f"{side} small"] / file, folders[f"{side} large"] / file
        _check_bulk_records(small, large, table, key, sizes.records)
    built = time.perf_counter() - built
    reads = probes * GROWTH_PASSES
    runners = {}
    for name in GROWTH_SIDES:
        memoizer = beautyspot if name.startswith("ours") else raw_floor
        memoized, close = memoizer(folders[name], tiny)
        scratch.on_close(close)
        before = CALLS
        call_each(memoized, reads)()  # warm up; every read must be a hit
        missed = CALLS - before
        if missed:
            raise RuntimeError(f"growth case: {missed} probes missed in {name}")
        runners[name] = _hit_timer(memoized, reads)
    repeats = sizes.repeats * GROWTH_REPEATS
    times = race(runners, repeats)
    ours = [large / small for large, small in _pairs(times, "ours large", "ours small")]
    floor = [large / small for large, small in _pairs(times, "floor large", "floor small")]
    ratio = statistics.median(o / f for o, f in zip(ours, floor, strict=True))

    def growth(side: str) -> str:
        small, large = times[f"{side} small"], times[f"{side} large"]
        return f"{side} {small:.1f}->{large:.1f} µs ({large / small:.2f}x)"

    quick = ", quick sizes" if sizes is QUICK else ""
    note = f"{growth('ours')}, {growth('floor')}; {repeats} repeats, built in {built:.0f} s{quick}"
    case = (
        f"hit at {_short(sizes.records)} records / hit at {_short(sizes.probes)}, "
        "over the floor's own ratio"
    )
    return [Row(case, times["ours large"], times["ours small"], ratio, 1.15, note)]


GROWTH_SIDES = ("ours small", "ours large", "floor small", "floor large")


def _pairs(times: Timings, name: str, reference: str) -> Iterable[tuple[float, float]]:
    return zip(times.samples[name], times.samples[reference], strict=True)


def _short(count: int) -> str:
    """1000 -> '1k', 20000 -> '20k', 1000000 -> '1M'."""
    for size, suffix in ((1_000_000, "M"), (1000, "k")):
        if count >= size and count % size == 0:
            return f"{count // size}{suffix}"
    return f"{count:,}"


def _hit_timer(memoized: Callable[..., Any], inputs: list[Any]) -> Callable[[], float]:
    return lambda: timed(call_each(memoized, inputs), len(inputs))


def _checkpoint(folder: Path) -> None:
    """Move every page of the folder's database from its WAL into the file, as a long-lived
    cache has them, so that neither size is read through a WAL the other lacks."""
    for path in folder.glob("*.db"):
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()


def _check_bulk_records(small: Path, large: Path, table: str, key: str, count: int) -> None:
    """``large`` (written in bulk) holds ``count`` records, and every record of ``small``
    (written call by call), the same in every column but the times a call stamps."""
    stamped = {"created_at", "duration"}
    small_conn, large_conn = sqlite3.connect(small), sqlite3.connect(large)
    try:
        held = large_conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        if held != count:
            raise RuntimeError(f"growth case: {large} holds {held:,} records, not {count:,}")
        cursor = small_conn.execute(f"SELECT * FROM {table}")
        columns = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
        at = columns.index(key)
        for row in rows:
            found = large_conn.execute(
                f"SELECT * FROM {table} WHERE {key} = ?", (row[at],)
            ).fetchone()
            if found is None:
                raise RuntimeError(f"growth case: bulk file {large} lacks record {row[at]}")
            for column, expected, got in zip(columns, row, found, strict=True):
                if column not in stamped and expected != got:
                    raise RuntimeError(
                        f"growth case: the bulk record {row[at]} differs from the one a call "
                        f"wrote in {column}: {got!r} instead of {expected!r}"
                    )
    finally:
        small_conn.close()
        large_conn.close()


def case_processes(run: Run) -> list[Row]:
    """4 processes, each 5,000 misses, into one SQLite file: errors, lost records, speed."""
    sizes = run.sizes
    results = {
        name: write_together(run.scratch, name, sizes) for name in ("beautyspot", "raw floor")
    }
    (ours, our_errors, our_lost), (floor, floor_errors, floor_lost) = results.values()
    return [
        Row(
            f"{sizes.writers} processes x {sizes.writes:,} misses, per record / raw floor",
            ours,
            floor,
            ours / floor,
            note=f"errors {our_errors}, lost {our_lost} (floor: {floor_errors}, {floor_lost})",
            passed=our_errors == 0 and our_lost == 0,
        )
    ]


def write_together(scratch: Scratch, name: str, sizes: Sizes) -> tuple[float, int, int]:
    """Wall µs per record, errors and lost records of ``writers`` processes writing at once."""
    from _peers import MEMOIZERS

    folder = scratch.folder(f"writers-{name}")
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(sizes.writers + 1)
    done = context.Queue()
    workers = [
        context.Process(
            target=write_misses,
            args=(name, folder, number * sizes.writes, sizes.writes, start, done),
        )
        for number in range(sizes.writers)
    ]
    for worker in workers:
        worker.start()
    # A writer that dies (or hangs) must fail the run, not leave it waiting forever.
    try:
        start.wait(timeout=WRITER_TIMEOUT)
        began = time.perf_counter()
        errors = sum(done.get(timeout=WRITER_TIMEOUT) for _ in workers)
        elapsed = time.perf_counter() - began
    except (threading.BrokenBarrierError, queue.Empty) as stuck:
        codes = [worker.exitcode for worker in workers]
        for worker in workers:
            worker.kill()
        raise RuntimeError(f"{name}: a writer did not report (exit codes {codes})") from stuck
    for worker in workers:
        worker.join()
    total = sizes.writers * sizes.writes
    # Every stored result is a hit now: whatever runs the function again was lost.
    memoized, close = MEMOIZERS[name](folder, tiny)
    before = CALLS
    call_each(memoized, range(total))()
    close()
    return elapsed / total * 1e6, errors, CALLS - before


def write_misses(name: str, folder: Path, first: int, count: int, start: Any, done: Any) -> None:
    """One writer process: ``count`` misses; reports exceptions plus warnings as errors."""
    from _peers import MEMOIZERS

    errors = count  # reported as failed unless the writes finish
    try:
        memoized, close = MEMOIZERS[name](folder, tiny)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start.wait(timeout=WRITER_TIMEOUT)
            errors = 0
            for number in range(first, first + count):
                try:
                    memoized(number)
                except Exception:
                    errors += 1
        close()
        errors += len(caught)
    finally:
        done.put(errors)


def case_key(run: Run) -> list[Row]:
    """Key of an 80 MB numpy array argument against blake2b over its bytes."""
    import numpy as np
    from _peers import beautyspot

    array = np.arange(run.sizes.array_items, dtype=np.float64)
    memoized, _ = run.scratch.memoize(beautyspot, keyed, "key")
    data = memoryview(array).cast("B")
    runners = {
        "ours": lambda: timed(lambda: memoized.cache_key(array), 1),
        "blake2b": lambda: timed(lambda: hashlib.blake2b(data).digest(), 1),
    }
    times = race(runners, run.sizes.repeats)
    case = f"{array.nbytes / 1e6:.0f} MB array key / blake2b of its bytes"
    return [times.row(case, "ours", "blake2b", 1.05)]


def case_import(run: Run) -> list[Row]:
    """``import beautyspot`` in a fresh interpreter, against the raw floor's imports."""
    statements = {"beautyspot": "import beautyspot", "floor": "import sqlite3, hashlib, msgpack"}
    if "diskcache" in run.available:
        statements["diskcache"] = "import diskcache"
    runners = {name: _import_timer(code) for name, code in statements.items()}
    for runner in runners.values():
        runner()  # compile bytecode caches before timing
    times = race(runners, run.sizes.imports)
    rows = [times.row("import / sqlite3+hashlib+msgpack", "beautyspot", "floor")]
    if "diskcache" in times:
        rows.append(times.row("import / diskcache", "beautyspot", "diskcache"))
    return rows


def _import_timer(statement: str) -> Callable[[], float]:
    probe = (
        "import time; began = time.perf_counter(); "
        f"{statement}; print((time.perf_counter() - began) * 1e6)"
    )

    def run() -> float:
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        return float(done.stdout)

    return run


#: The dashboard's budget for its first page (DESIGN.md §8: fast on 1,000,000 records).
DASHBOARD_BUDGET_US = 300_000
DASHBOARD_PAGE = 50


def case_dashboard(run: Run) -> list[Row]:
    """The dashboard's first page in a file of ``records`` realistic records: the query it
    runs on opening (``find_records``, newest first, 50 rows, and the count of all), on a new
    connection each time as a new dashboard process opens one; against its 300 ms budget.

    The file is built in bulk, in ``created_at`` order, into the schema ``SQLiteTaskDB``'s
    migrations create (WITHOUT ROWID, keyed by cache key, with the ``created_at`` index).
    """
    from beautyspot.db.base import RecordQuery
    from beautyspot.db.sqlite import SQLiteTaskDB

    count = run.sizes.records
    folder = run.scratch.folder("dashboard")
    path = folder / "dashboard.db"
    built = time.perf_counter()
    schema = SQLiteTaskDB(path)
    schema.init_schema()
    schema.close()
    _bulk_dashboard_records(path, count)
    _checkpoint(folder)
    built = time.perf_counter() - built
    query = RecordQuery(order_by="created_at", descending=True, limit=DASHBOARD_PAGE)
    newest = _newest_keys(path, DASHBOARD_PAGE)

    def first_page() -> float:
        db = SQLiteTaskDB(path)
        try:
            gc.disable()
            start = time.perf_counter()
            rows, total = db.find_records(query)
            elapsed = (time.perf_counter() - start) * 1e6
        finally:
            gc.enable()
            db.close()
        if total != count or [row["cache_key"] for row in rows] != newest:
            raise RuntimeError(f"dashboard case: the first page is wrong ({total:,} records)")
        return elapsed

    def open_only() -> float:
        db = SQLiteTaskDB(path)
        try:
            start = time.perf_counter()
            db.init_schema()
            return (time.perf_counter() - start) * 1e6
        finally:
            db.close()

    first_page()  # warm up: the file's pages into the OS cache, as on any machine after a while
    times = race({"first page": first_page, "open": open_only}, run.sizes.repeats)
    ours = times["first page"]
    quick = ", quick sizes" if run.sizes is QUICK else ""
    note = (
        f"{ours / 1000:.1f} ms for {DASHBOARD_PAGE} rows + the count of {count:,} "
        f"(of which opening the file {times['open'] / 1000:.1f} ms); reference = the budget; "
        f"built in {built:.0f} s{quick}"
    )
    case = f"dashboard first page at {_short(count)} records / 300 ms"
    return [Row(case, ours, DASHBOARD_BUDGET_US, ours / DASHBOARD_BUDGET_US, 1.0, note)]


#: (name, content type, version, share of records, limiter tokens per call or None)
DASHBOARD_FUNCTIONS = (
    ("pipeline.summarize", "text/markdown", "v3", 30, 900.0),
    ("pipeline.extract_fields", "application/json", "v2", 25, 450.0),
    ("pipeline.classify", "application/json", "v1", 15, 120.0),
    ("pipeline.translate", "text/plain", "v1", 10, 700.0),
    ("pipeline.embed", None, None, 12, 40.0),
    ("reports.render_chart", "image/png", None, 3, None),
    ("reports.flow", "text/vnd.mermaid", None, 2, None),
    ("reports.page", "text/html", "v2", 3, None),
)


def _bulk_dashboard_records(path: Path, count: int) -> None:
    """``count`` records of an LLM pipeline's cache, oldest first, a transaction per 50,000."""
    import random

    from beautyspot.db.base import TaskRecord
    from beautyspot.integrity import checksum_of
    from beautyspot.serializer import Serializer

    rng = random.Random(20240601)
    serializer = Serializer()
    words = ("revenue", "cost", "margin", "growth", "churn", "cohort", "region", "forecast")
    payloads = []
    for n in range(64):  # results of varied sizes, reused: their bytes don't change the query
        text = " ".join(rng.choice(words) for _ in range(10 + n))  # 60 to 500 bytes
        data = serializer.dumps(text)
        payloads.append((data, checksum_of(data, cryptographic=False)))
    weights = [share for *_, share, _ in DASHBOARD_FUNCTIONS]
    # Records as a store keeps them, but without per-argument digests (they predate them).
    columns = (*(name for name in TaskRecord._fields if name != "arg_digests"), "hits")
    insert = f"INSERT INTO tasks ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    began = time.time() - count * 0.05

    def records(first: int, last: int) -> Iterable[tuple[Any, ...]]:
        for i in range(first, last):
            name, content_type, version, _, cost = rng.choices(DASHBOARD_FUNCTIONS, weights)[0]
            key = rng.randbytes(16).hex()
            blob = rng.random() < 0.02
            data, checksum = payloads[rng.randrange(len(payloads))]
            yield (
                key, name, rng.randbytes(16).hex(), version,
                "blob" if blob else "inline", content_type,
                f"{key[:2]}/{key}-{checksum[9:25]}" if blob else None,
                None if blob else data,
                f"doc='corpus/2024/{i:07d}.md', model='gpt-4o-mini', temperature=0.2",
                checksum, len(data), rng.uniform(0.2, 8.0), began + i * 0.05 + rng.random() / 50,
                None, rng.randbytes(8).hex(), cost, rng.choice((0, 0, 0, 1, 1, 2, 5)),
            )  # fmt: skip

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # a bulk load: a crash here loses only a test
        for first in range(0, count, 50_000):
            conn.execute("BEGIN")
            conn.executemany(insert, records(first, min(first + 50_000, count)))
            conn.execute("COMMIT")
    finally:
        conn.close()


def _newest_keys(path: Path, limit: int) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT cache_key FROM tasks ORDER BY created_at DESC, cache_key DESC LIMIT ?",
            (limit,),
        ).fetchall()
    finally:
        conn.close()
    return [key for (key,) in rows]


#: The digests case's timings are ratios near 1, so it takes this many times the repeats.
DIGEST_REPEATS = 3
#: Arrays of the digests case's array row: 1 MiB each.
DIGEST_ARRAYS, DIGEST_ARRAY_ITEMS = 20, 131_072


def case_digests(run: Run) -> list[Row]:
    """Misses with per-argument digests (what ``explain`` reads) against misses without
    them (the records' digests switched off): one int, three arguments, a 1 MiB array."""
    import numpy as np

    sizes = run.sizes
    ints = list(range(sizes.ints))
    arrays = [np.full(DIGEST_ARRAY_ITEMS, i, dtype=np.float64) for i in range(DIGEST_ARRAYS)]
    warm = [np.full(DIGEST_ARRAY_ITEMS, -1.0 - i) for i in range(2)]
    workloads = {
        "small miss, 1 argument": (tiny, ints, list(range(-8, 0))),
        "small miss, 3 arguments": (labelled, ints, list(range(-8, 0))),
        "1 MiB array argument miss": (keyed, arrays, warm),
    }
    rows = []
    for label, (func, inputs, warm_up) in workloads.items():
        runners = {
            digests: digest_runner(run.scratch, func, inputs, warm_up, digests=digests)
            for digests in ("with", "without")
        }
        times = race(runners, sizes.repeats * DIGEST_REPEATS)
        limit = None if "array" in label else 1.05
        row = times.row(f"digests / {label} (ref: no digests)", "with", "without", limit)
        alone = digest_cost(run.scratch, func, inputs)
        note = f"computing them alone: {alone:.2f} µs a miss ({alone / row.reference:.1%})"
        rows.append(dataclasses.replace(row, note=note))
    return rows


def digest_cost(scratch: Scratch, func: Callable[..., Any], inputs: list[Any]) -> float:
    """Microseconds the per-argument digests of one miss take by themselves: the figure the
    ratio measures, without the noise of the rest of a miss."""
    import beautyspot as bs
    from beautyspot.explain import record_digests

    spot = bs.Spot("digests", db=scratch.folder("digest-cost") / "cost.db")
    try:
        marked = spot.mark(func)._marked_call
        calls = [marked.bind((value,), {}) for value in inputs]
        return statistics.median(
            timed(lambda: [record_digests(marked, call) for call in calls], len(calls))
            for _ in range(5)
        )
    finally:
        spot.close()


def digest_runner(
    scratch: Scratch, func: Callable[..., Any], inputs: list[Any], warm_up: list[Any], digests: str
) -> Callable[[], float]:
    """Misses of ``func`` on ``inputs`` in a fresh store; ``digests="without"`` switches the
    records' per-argument digests off while it runs."""
    from _peers import MEMOIZERS

    import beautyspot.call

    def run() -> float:
        folder = scratch.folder(f"digests-{digests}")
        memoized, close = MEMOIZERS["beautyspot"](folder, func)
        kept = beautyspot.call.record_digests
        if digests == "without":
            beautyspot.call.record_digests = lambda marked, call: None
        try:
            call_each(memoized, warm_up)()
            return timed(call_each(memoized, inputs), len(inputs))
        finally:
            beautyspot.call.record_digests = kept
            close()
            shutil.rmtree(folder, ignore_errors=True)

    return run


CASES: dict[str, Callable[[Run], list[Row]]] = {
    "hit": case_hit,
    "miss": case_miss,
    "memory": case_memory,
    "async": case_async,
    "map": case_map,
    "blob": case_blob,
    "growth": case_growth,
    "processes": case_processes,
    "key": case_key,
    "digests": case_digests,
    "import": case_import,
    "dashboard": case_dashboard,
}


# -- main -------------------------------------------------------------------------------------


def installed_peers() -> set[str]:
    from _peers import MEMOIZERS

    modules = {"diskcache": "diskcache", "joblib": "joblib", "cachier": "cachier"}
    modules |= {"cachetools": "cachetools", "raw floor": "msgpack", "beautyspot": "beautyspot"}
    found = set()
    for name, module in modules.items():
        try:
            __import__(module)
        except ImportError:
            continue
        found.add(name)
    return found & set(MEMOIZERS)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument(
        "--here", action="store_true", help="run in this interpreter; skip missing peers"
    )
    parser.add_argument(
        "--cases",
        default=",".join(CASES),
        help=f"comma-separated subset of: {', '.join(CASES)}",
    )
    args = parser.parse_args(argv)
    args.cases = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = set(args.cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}: choose from {', '.join(CASES)}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not args.here:
        ensure_environment(argv)
    sys.path.insert(0, str(HERE))
    sizes = QUICK if args.quick else FULL
    run = Run(sizes, Scratch(), installed_peers())
    if "beautyspot" not in run.available:
        why = "run without --here"
        try:
            import beautyspot  # only for its error
        except ImportError as error:
            why = f"{error}; without --here its dependencies are installed"
        print(f"beautyspot is not importable here: {why}", file=sys.stderr)
        return 2
    began = time.perf_counter()
    rows: list[Row] = []
    try:
        for name in args.cases:
            rows += CASES[name](run)
    finally:
        run.scratch.close()
    import beautyspot

    print(
        f"beautyspot {beautyspot.__version__}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores, {'quick' if args.quick else 'full'} run of "
        f"{time.perf_counter() - began:.0f} s; medians of {sizes.repeats} interleaved repeats"
    )
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
