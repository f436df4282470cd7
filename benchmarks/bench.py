"""beautyspot against the raw SQLite floor and its peers: one command, one table of ratios.

Every figure is a ratio of two timings taken in the same run, interleaved repeat by repeat, so a
noisy machine slows both sides alike. Each timing is the median of several repeats, after a
warm-up, with the garbage collector paused.

    python3 benchmarks/bench.py            # full run: a few minutes on 2 cores
    python3 benchmarks/bench.py --quick    # smoke run: seconds
    python3 benchmarks/bench.py --cases hit,miss

The first run builds ``benchmarks/.venv`` (beautyspot from this checkout, editable, plus the
peers in ``benchmarks/requirements.txt``) and re-runs itself inside it. ``--here`` runs in the
current interpreter instead and skips the rows of any peer it lacks.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import inspect
import itertools
import multiprocessing
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import venv
import warnings
from collections.abc import Callable, Iterable, Iterator
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
    wanted = f"{REQUIREMENTS.read_text()}\n-e {REPO}\n"
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


def one_mebibyte(number: int) -> bytes:
    """A function whose result is 1 MiB of bytes."""
    return PAYLOAD


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
    records: int  # the large database of the scaling case
    probes: int  # records of the small database of the scaling case
    writers: int
    writes: int  # misses per writer process
    array_items: int  # float64 items of the keyed array
    imports: int


FULL = Sizes(7, 2000, 200, 40, 1_000_000, 1000, 4, 5000, 10_000_000, 7)
QUICK = Sizes(3, 200, 20, 4, 20_000, 200, 4, 300, 1_000_000, 3)


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

    def memoize(
        self, memoizer: Callable[..., Any], func: Callable[..., Any], label: str
    ) -> tuple[Any, Path]:
        """``func`` memoized in a new folder, closed with the scratch; and that folder."""
        folder = self.folder(label)
        memoized, close = memoizer(folder, func)
        self._closers.append(close)
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
        return "ok" if passed else "MISS"


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
HIT_LIMITS = {"raw floor": 1.5, "diskcache": 0.6}
MISS_LIMITS = {"raw floor": 2.0, "diskcache": 0.5}


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
        times.row(f"{case} / {name}", "beautyspot", name, limits.get(name))
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
    if "cachetools" not in run.available:
        return [Row("memory hit / cachetools", None, None, limit=5.0, note="no cachetools")]
    runners = {"cachetools": hit_runner(run.scratch, "cachetools", tiny, inputs)}
    problem = _memory_tier_problem(run.scratch)
    memory = "beautyspot memory tier"
    if problem is None:
        runners[memory] = hit_runner(run.scratch, memory, tiny, inputs)
    runners["beautyspot"] = hit_runner(run.scratch, "beautyspot", tiny, inputs)
    times = race(runners, run.sizes.repeats)
    return [
        times.row("memory hit / cachetools", memory, "cachetools", 5.0)
        if problem is None
        else Row("memory hit / cachetools", None, times["cachetools"], limit=5.0, note=problem),
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
        times.row("1 MiB save / write + rename", "beautyspot miss", "write + rename", 1.5),
        times.row("1 MiB load / read", "beautyspot hit", "read", 1.5),
    ]
    if "diskcache hit" in times:
        rows += [
            times.row("1 MiB save / diskcache", "beautyspot miss", "diskcache miss"),
            times.row("1 MiB load / diskcache", "beautyspot hit", "diskcache hit"),
        ]
    return rows


def case_scale(run: Run) -> list[Row]:
    """Hit latency with 1,000 records in the file against 1,000,000."""
    from _peers import beautyspot

    sizes, scratch = run.sizes, run.scratch
    inputs = list(range(sizes.probes))
    runners = {}
    for label, records in (("small", sizes.probes), ("large", sizes.records)):
        memoized, folder = scratch.memoize(beautyspot, tiny, f"scale-{label}")
        call_each(memoized, inputs)()
        pad_records(folder / "bench.db", records)
        call_each(memoized, inputs)()  # warm up
        runners[label] = _hit_timer(memoized, inputs)
    times = race(runners, sizes.repeats)
    case = f"hit at {sizes.records:,} / at {sizes.probes:,} records"
    return [times.row(case, "large", "small", 1.3)]


def _hit_timer(memoized: Callable[..., Any], inputs: list[Any]) -> Callable[[], float]:
    return lambda: timed(call_each(memoized, inputs), len(inputs))


def pad_records(db_path: Path, total: int) -> None:
    """Grow the ``tasks`` table to ``total`` rows: copies of its first row under random keys.

    Writing a million records through the decorator would take minutes; the lookups only care
    how many keys the primary-key index holds.
    """
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        cursor = conn.execute("SELECT * FROM tasks LIMIT 1")
        columns = [column[0] for column in cursor.description]
        template = list(cursor.fetchone())
        missing = total - conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        key_at = columns.index("cache_key")
        keys = random.Random(0)

        def rows() -> Iterator[tuple[Any, ...]]:
            for _ in range(missing):
                template[key_at] = f"{keys.getrandbits(128):032x}"
                yield tuple(template)

        insert = (
            f"INSERT INTO tasks ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        )
        conn.execute("BEGIN")
        conn.executemany(insert, rows())
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


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
    start.wait()
    began = time.perf_counter()
    errors = sum(done.get() for _ in workers)
    elapsed = time.perf_counter() - began
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

    memoized, close = MEMOIZERS[name](folder, tiny)
    errors = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start.wait()
        for number in range(first, first + count):
            try:
                memoized(number)
            except Exception:
                errors += 1
    close()
    done.put(errors + len(caught))


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
    megabytes = array.nbytes / 1e6
    return [times.row(f"key of a {megabytes:.0f} MB array / blake2b", "ours", "blake2b", 1.2)]


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


CASES: dict[str, Callable[[Run], list[Row]]] = {
    "hit": case_hit,
    "miss": case_miss,
    "memory": case_memory,
    "blob": case_blob,
    "scale": case_scale,
    "processes": case_processes,
    "key": case_key,
    "import": case_import,
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
        print("beautyspot is not importable here: run without --here", file=sys.stderr)
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
