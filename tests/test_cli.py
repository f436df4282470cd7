"""The ``beautyspot`` command line, on a SQLite store filled through a real Spot."""

from __future__ import annotations

import base64
import csv
import importlib
import io
import json
import os
import pickle
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import beautyspot as bs
from beautyspot import cli
from beautyspot.db import SQLiteTaskDB, TaskDB
from beautyspot.db.base import FunctionCounts
from beautyspot.serializer import Serializer
from beautyspot.storage import LocalStorage

SCRIPT = Path(sys.executable).with_name("beautyspot")
TYPES = "bs_cli_test_types"  # a module of the user's, registering Point with code 7
TYPES_SOURCE = textwrap.dedent(
    """
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Point:
        x: int
        y: int

    def beautyspot_register(serializer):
        serializer.register(
            Point, 7,
            encoder=lambda p: f"{p.x},{p.y}".encode(),
            decoder=lambda b: Point(*map(int, b.decode().split(","))),
        )
    """
)


def run(*args: str, stdin: Any = subprocess.DEVNULL, cwd: Path | None = None) -> Any:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=60, stdin=stdin, cwd=cwd
    )


def cli_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@dataclass
class Filled:
    """A store written by a Spot: its file, blob folder, marked functions and their names."""

    db: Path
    blobs: Path
    spot: bs.Spot
    keys: dict[str, str]  # label -> cache key
    names: dict[str, str]  # label -> function name as stored

    def count(self) -> int:
        with sqlite3.connect(self.db) as conn:
            return conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]

    def has(self, label: str) -> bool:
        return self.spot.db.get(self.keys[label]) is not None

    def age(self, label: str, days: float) -> None:
        with sqlite3.connect(self.db) as conn:
            conn.execute(
                "UPDATE tasks SET created_at = created_at - ? WHERE cache_key = ?",
                (days * 86400, self.keys[label]),
            )


@pytest.fixture
def types_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    folder = tmp_path / "usercode"
    folder.mkdir()
    (folder / f"{TYPES}.py").write_text(TYPES_SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, TYPES, raising=False)
    return importlib.import_module(TYPES)


@pytest.fixture
def filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, types_module: types.ModuleType
) -> Filled:
    monkeypatch.chdir(tmp_path)
    spot = bs.Spot("cache", db=tmp_path / "cache.db")
    types_module.beautyspot_register(spot.serializer)

    @spot.mark
    def double(x):
        return x * 2

    @spot.mark(save_blob=True, version="v2")
    def payload(n):
        return b"\x00\xff" * n

    @spot.mark
    def point(x):
        return types_module.Point(x, -x)

    @spot.mark(retention=0.001)
    def brief(x):
        return {"x": x, "pair": (1, 2)}

    @spot.mark
    def broken(x):
        raise ValueError("bad input")

    assert (double(1), double(2), payload(3)) == (2, 4, b"\x00\xff" * 3)
    assert point(3) == types_module.Point(3, -3) and brief(1)["x"] == 1
    with pytest.raises(ValueError):
        broken(1)
    time.sleep(0.01)  # brief's record expires
    keys = {
        "double1": double.cache_key(1),
        "double2": double.cache_key(2),
        "payload": payload.cache_key(3),
        "point": point.cache_key(3),
        "brief": brief.cache_key(1),
        "broken": broken.cache_key(1),
    }
    names = {
        label: spot.db.get(key)["func_name"] for label, key in keys.items() if label != "broken"
    }
    names["broken"] = spot.db.get_failures(1)[0]["func_name"]
    spot.close()  # its counted calls (2 misses of double, ...) are in the file now
    yield Filled(tmp_path / "cache.db", tmp_path / "cache_blobs", spot, keys, names)
    spot.close()


def blob_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# -- entry points, help, version -----------------------------------------------------------


def test_console_script_is_installed_and_prints_help():
    done = run("--help")
    assert done.returncode == 0
    assert "usage: beautyspot" in done.stdout and "exit status" in done.stdout
    for command in ("ls", "show", "explain", "stats", "clear", "prune", "gc", "export", "ui",
                    "version"):  # fmt: skip
        assert command in done.stdout


def test_version_command_prints_the_package_version():
    done = run("version")
    assert done.returncode == 0 and done.stdout.strip() == f"beautyspot {bs.__version__}"


def test_version_flag_through_the_script_and_python_m():
    assert run("--version").stdout.strip() == f"beautyspot {bs.__version__}"
    done = subprocess.run(
        [sys.executable, "-m", "beautyspot", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == f"beautyspot {bs.__version__}"


def test_unknown_command_fails_with_usage():
    done = run("frobnicate")
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_no_command_is_a_usage_error(capsys):
    code, _, err = cli_main(capsys)
    assert code == 2 and "name a command" in err


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        ("ls", "--failed"),
        ("show", "beautyspot_register(serializer)"),
        ("explain", "fn.explain(...)"),
        ("stats", "Time saved"),
        ("clear", "--yes"),
        ("prune", "--older-than"),
        ("gc", "--dry-run"),
        ("export", "base64"),
        ("ui", 'pip install "beautyspot[dashboard]"'),
        ("version", "version"),
    ],
)
def test_every_command_has_help(capsys, command, mentions):
    code, out, _ = cli_main(capsys, command, "--help")
    assert code == 0
    assert f"usage: beautyspot {command}" in out and mentions in " ".join(out.split())
    if command != "version":
        assert "--storage" in out and "exit status" in out


def test_usage_errors_exit_2(capsys, filled):
    assert cli_main(capsys, "prune", filled.db, "--older-than", "7x", "--yes")[0] == 2
    assert cli_main(capsys, "prune", filled.db, "--yes")[0] == 2  # --older-than is required
    assert cli_main(capsys, "ls", filled.db, "-n", "0")[0] == 2
    assert cli_main(capsys, "export", filled.db, "--format", "xml")[0] == 2
    assert cli_main(capsys, "ls", filled.db, "--failed", "--version", "v2")[0] == 2
    assert filled.count() == 5


# -- ls ------------------------------------------------------------------------------------


def test_ls_lists_records_newest_first(capsys, filled):
    code, out, _ = cli_main(capsys, "ls", filled.db)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["KEY", "FUNCTION", "VERSION", "CREATED", "SIZE", "HITS"]
    assert len(lines) == 1 + 5
    for label in ("double1", "double2", "payload", "point", "brief"):
        assert filled.keys[label][:12] in out and filled.names[label] in out
    assert filled.keys["double1"] not in out  # short keys only
    payload_line = next(line for line in lines if filled.keys["payload"][:12] in line)
    assert " v2 " in payload_line


def test_ls_filters_and_limits(capsys, filled):
    code, out, _ = cli_main(capsys, "ls", filled.db, "--func", filled.names["double1"])
    assert code == 0 and len(out.splitlines()) == 3
    code, out, _ = cli_main(capsys, "ls", filled.db, "--version", "v2")
    assert code == 0 and len(out.splitlines()) == 2 and filled.keys["payload"][:12] in out
    code, out, err = cli_main(capsys, "ls", filled.db, "-n", "2")
    assert code == 0 and len(out.splitlines()) == 3 and "2 of 5 records" in err


def test_ls_with_nothing_matching_exits_1(capsys, filled):
    code, out, err = cli_main(capsys, "ls", filled.db, "--func", "no.such.function")
    assert code == 1 and out == "" and "no records" in err


def test_ls_failed_lists_failures(capsys, filled):
    code, out, _ = cli_main(capsys, "ls", filled.db, "--failed")
    assert code == 0
    assert "ValueError: bad input" in out and filled.keys["broken"][:12] in out
    assert cli_main(capsys, "ls", filled.db, "--failed", "--func", "other")[0] == 1


def test_ls_without_find_records_reads_the_history(filled):
    class Minimal(TaskDB):  # only what caching needs
        def __init__(self, inner: TaskDB) -> None:
            self.inner = inner

        def get_history(self, limit: int = 1000) -> list[Any]:
            return self.inner.get_history(limit)

    rows = list(cli._records(Minimal(filled.spot.db), func=filled.names["double1"]))
    assert [r["cache_key"] for r in rows] == [filled.keys["double1"], filled.keys["double2"]]
    assert cli._newest(Minimal(filled.spot.db), None, "v2", 10)[1] == 1


# -- show ----------------------------------------------------------------------------------


def test_show_an_inline_record_by_key_prefix(capsys, filled):
    code, out, _ = cli_main(capsys, "show", filled.db, filled.keys["double2"][:10])
    assert code == 0
    assert filled.keys["double2"] in out and filled.names["double2"] in out
    assert "inline" in out and "x=2" in out and "value type    int" in out
    assert out.rstrip().endswith("\n4")


def test_show_a_blob_record(capsys, filled):
    code, out, _ = cli_main(capsys, "show", filled.db, filled.keys["payload"])
    assert code == 0
    assert "blob at" in out and "v2" in out
    assert repr(b"\x00\xff" * 3) in out


def test_show_a_registered_type_without_and_with_its_module(capsys, filled):
    code, out, err = cli_main(capsys, "show", filled.db, filled.keys["point"])
    assert code == 0 and "Traceback" not in out + err
    assert "custom type code 7, 4 bytes" in out and "--import" in out
    code, out, _ = cli_main(capsys, "show", filled.db, filled.keys["point"], "--import", TYPES)
    assert code == 0 and "Point(x=3, y=-3)" in out and "custom type" not in out


def test_import_copies_the_registrations_of_a_modules_spot(capsys, filled, tmp_path):
    folder = tmp_path / "usercode"
    (folder / "bs_cli_test_app.py").write_text(
        "import beautyspot as bs\n"
        f"from {TYPES} import Point, beautyspot_register\n"
        "spot = bs.Spot('app', db='app.db')\n"
        "beautyspot_register(spot.serializer)\n"
    )
    code, out, _ = cli_main(
        capsys, "show", filled.db, filled.keys["point"], "--import", "bs_cli_test_app"
    )
    assert code == 0 and "Point(x=3, y=-3)" in out
    sys.modules.pop("bs_cli_test_app", None)


def test_import_of_a_module_that_cannot_be_used_exits_2(capsys, filled, tmp_path):
    code, _, err = cli_main(capsys, "show", filled.db, "ab", "--import", "no_such_module_xyz")
    assert code == 2 and "importing it failed" in err and "Traceback" not in err
    (tmp_path / "usercode" / "bs_cli_test_empty.py").write_text("X = 1\n")
    code, _, err = cli_main(capsys, "show", filled.db, "ab", "--import", "bs_cli_test_empty")
    assert code == 2 and "beautyspot_register" in err
    sys.modules.pop("bs_cli_test_empty", None)


def test_show_a_failure_with_its_traceback(capsys, filled):
    code, out, _ = cli_main(capsys, "show", filled.db, filled.keys["broken"][:12])
    assert code == 0
    assert "ValueError: bad input" in out and "Traceback (most recent call last)" in out
    assert "never cached" in out


def test_show_ambiguous_and_missing_prefixes(capsys, tmp_path):
    db = SQLiteTaskDB(tmp_path / "keys.db")
    one = Serializer().dumps(1)
    for key in ("abc1", "abc2", "abd3"):
        db.save(key, "m.f", "in", None, "inline", None, result_data=one)
    db.close()
    code, _, err = cli_main(capsys, "show", tmp_path / "keys.db", "abc")
    assert code == 2 and "abc1" in err and "abc2" in err and "abd3" not in err
    assert cli_main(capsys, "show", tmp_path / "keys.db", "abd")[0] == 0
    code, _, err = cli_main(capsys, "show", tmp_path / "keys.db", "zz")
    assert code == 1 and "no record" in err
    assert cli_main(capsys, "show", tmp_path / "keys.db", " ")[0] == 2


def test_show_never_unpickles_and_escapes_the_terminal(capsys, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    db = SQLiteTaskDB(tmp_path / "hostile.db")
    db.save("aa", "m.f", "in", None, "inline", None, result_data=pickle.dumps(Exploit()))
    text = Serializer().dumps("clear\x1b[2J\x1b]0;title\x07done")
    db.save("bb", "m.f", "in", None, "inline", None, result_data=text)
    db.close()
    code, out, _ = cli_main(capsys, "show", tmp_path / "hostile.db", "aa")
    assert code == 0 and "cannot be decoded" in out and not marker.exists()
    code, out, _ = cli_main(capsys, "show", tmp_path / "hostile.db", "bb")
    assert code == 0 and "\x1b" not in out and "\x07" not in out and "\\x1b[2J" in out


# -- stats (needs TaskDB.get_stats: failing until SQLite implements it) ----------------------


def test_stats_per_function(capsys, filled):
    name = filled.names["double1"]
    filled.spot.db.add_counts({name: FunctionCounts(hits=3)}, {filled.keys["double1"]: 3})
    code, out, _ = cli_main(capsys, "stats", filled.db)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:5] == ["FUNCTION", "RECORDS", "HITS", "MISSES", "FAILURES"]
    row = next(line for line in rows if line.startswith(name + " "))
    assert row.split()[1:5] == ["2", "3", "2", "0"]  # records, hits, misses, failures
    broken = next(line for line in rows if line.startswith(filled.names["broken"] + " "))
    assert (broken.split()[1], broken.split()[4]) == ("0", "1")  # no record, one failure
    assert rows[-1].startswith("TOTAL")


def test_stats_on_an_empty_store_exits_1(capsys, tmp_path):
    SQLiteTaskDB(tmp_path / "empty.db").init_schema()
    assert cli_main(capsys, "stats", tmp_path / "empty.db")[0] == 1


# -- clear, prune, gc ----------------------------------------------------------------------


def test_destructive_commands_refuse_without_a_terminal(capsys, filled):
    for args in (["clear"], ["prune", "--older-than", "1s"], ["gc", "--older-than", "0"]):
        code, _, err = cli_main(capsys, args[0], filled.db, *args[1:])
        assert code == 2 and "--yes" in err
    assert filled.count() == 5 and len(blob_files(filled.blobs)) == 1


def test_destructive_commands_refuse_through_the_script(filled):
    done = run("clear", str(filled.db), stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "--yes" in done.stderr
    assert filled.count() == 5


def test_clear_asks_on_a_terminal(capsys, filled, monkeypatch):
    monkeypatch.setattr(sys, "stdin", FakeTerminal("n\n"))
    code, _, err = cli_main(capsys, "clear", filled.db)
    assert code == 2 and "Delete 5 records" in err and "nothing deleted" in err
    assert filled.count() == 5
    monkeypatch.setattr(sys, "stdin", FakeTerminal("y\n"))
    code, out, _ = cli_main(capsys, "clear", filled.db, "--version", "v2")
    assert code == 0 and "deleted 1 record and 1 blob" in out
    assert filled.count() == 4 and blob_files(filled.blobs) == []


def test_clear_by_function_with_yes(capsys, filled):
    code, out, _ = cli_main(capsys, "clear", filled.db, "--func", filled.names["double1"], "-y")
    assert code == 0 and "deleted 2 records" in out
    assert not filled.has("double1") and not filled.has("double2") and filled.has("point")
    code, _, _ = cli_main(capsys, "clear", filled.db, "--func", filled.names["double1"], "-y")
    assert code == 1


def test_clear_everything_removes_the_blobs(capsys, filled):
    code, out, _ = cli_main(capsys, "clear", filled.db, "--yes")
    assert code == 0 and "deleted 5 records and 1 blob" in out
    assert filled.count() == 0 and blob_files(filled.blobs) == []


def test_prune_deletes_records_older_than_the_duration(capsys, filled):
    assert cli_main(capsys, "prune", filled.db, "--older-than", "7d", "--yes")[0] == 1
    filled.age("payload", days=10)
    filled.age("double1", days=8)
    code, out, _ = cli_main(capsys, "prune", filled.db, "--older-than", "7d", "--yes")
    assert code == 0 and "deleted 2 records and 1 blob" in out
    assert not filled.has("payload") and not filled.has("double1") and filled.has("double2")
    assert blob_files(filled.blobs) == []


def test_gc_dry_run_then_collect(capsys, filled):
    orphan = LocalStorage(filled.blobs).save("ffee", b"no record")
    code, out, _ = cli_main(capsys, "gc", filled.db, "--dry-run", "--older-than", "0")
    assert code == 0 and "dry run" in out
    assert "expired records  1" in out and "orphan blobs     1 (9 B)" in out
    assert filled.has("brief") and len(blob_files(filled.blobs)) == 2
    # Young orphans may be saves in flight: the default age keeps them.
    code, out, _ = cli_main(capsys, "gc", filled.db, "--dry-run")
    assert "orphan blobs     0" in out
    code, out, _ = cli_main(capsys, "gc", filled.db, "--yes", "--older-than", "0")
    assert code == 0 and "expired records  1" in out and "orphan blobs     1 (9 B)" in out
    assert not filled.has("brief") and filled.has("payload")
    assert orphan.rpartition("/")[2] not in blob_files(filled.blobs)
    assert len(blob_files(filled.blobs)) == 1


# -- export --------------------------------------------------------------------------------


def test_export_jsonl_parses_back(capsys, filled):
    code, out, _ = cli_main(capsys, "export", filled.db)
    assert code == 0
    rows = {row["cache_key"]: row for row in map(json.loads, out.splitlines())}
    assert len(rows) == 5
    double = rows[filled.keys["double2"]]
    assert (double["value"], double["value_type"], double["value_note"]) == (4, "int", None)
    assert double["func_name"] == filled.names["double2"] and double["input_preview"] == "x=2"
    payload = rows[filled.keys["payload"]]
    assert payload["value_type"] == "bytes" and payload["result_type"] == "blob"
    assert base64.b64decode(payload["value"]) == b"\x00\xff" * 3
    assert rows[filled.keys["brief"]]["value"] == {"x": 1, "pair": [1, 2]}
    point = rows[filled.keys["point"]]
    assert point["value"] == "custom type code 7, 4 bytes" and "--import" in point["value_note"]


def test_export_csv_to_a_file_with_registered_types(capsys, filled, tmp_path):
    target = tmp_path / "out.csv"
    code, out, _ = cli_main(
        capsys, "export", filled.db, "--format", "csv", "-o", target, "--import", TYPES
    )
    assert code == 0 and out == ""
    with target.open(newline="", encoding="utf-8") as file:
        rows = {row["cache_key"]: row for row in csv.DictReader(file)}
    assert len(rows) == 5
    point = rows[filled.keys["point"]]
    assert json.loads(point["value"]) == {"x": 3, "y": -3}
    assert point["value_type"] == f"{TYPES}.Point" and point["value_note"] == ""
    assert json.loads(rows[filled.keys["double1"]]["value"]) == 2


def test_export_filters(capsys, filled):
    code, out, _ = cli_main(capsys, "export", filled.db, "--version", "v2")
    assert code == 0 and len(out.splitlines()) == 1
    assert cli_main(capsys, "export", filled.db, "--func", "nothing")[0] == 1


# -- ui (the dashboard is another module: faked here) ---------------------------------------


def test_ui_serves_the_dashboard(capsys, filled, monkeypatch):
    calls = []
    fake = types.ModuleType("beautyspot.dashboard")
    fake.serve = lambda db, **options: calls.append((db, options))
    fake.exposure_warning = lambda host, port, read_only: None
    monkeypatch.setitem(sys.modules, "beautyspot.dashboard", fake)
    args = ("--port", "9999", "--no-browser", "--read-only", "--import", TYPES)
    code, _, err = cli_main(capsys, "ui", filled.db, *args)
    assert code == 0 and err == ""
    [(db, options)] = calls
    assert isinstance(db, SQLiteTaskDB) and db.path == filled.db
    assert options["storage"].root == filled.blobs
    assert options["host"] == "127.0.0.1" and options["port"] == 9999
    assert options["open_browser"] is False and options["read_only"] is True
    assert options["imports"] == (TYPES,)


def test_ui_without_the_extra_says_what_to_install(capsys, filled, monkeypatch):
    monkeypatch.setitem(sys.modules, "beautyspot.dashboard", None)
    code, _, err = cli_main(capsys, "ui", filled.db)
    assert code == 2 and 'pip install "beautyspot[dashboard]"' in err


# -- stores that cannot be opened ----------------------------------------------------------


def test_a_missing_file_exits_3_and_is_not_created(capsys, tmp_path):
    code, _, err = cli_main(capsys, "ls", tmp_path / "nope.db")
    assert code == 3 and "no such file" in err
    assert not (tmp_path / "nope.db").exists()
    assert cli_main(capsys, "ls", f"sqlite:///{tmp_path}/nope.db")[0] == 3
    assert not (tmp_path / "nope.db").exists()


def test_a_file_that_is_not_sqlite_exits_3(capsys, tmp_path):
    (tmp_path / "notes.db").write_text("just some notes\n" * 100)
    code, _, err = cli_main(capsys, "ls", tmp_path / "notes.db")
    assert code == 3 and "not a SQLite database" in err and "Traceback" not in err
    assert (tmp_path / "notes.db").read_text().startswith("just some notes")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_redis_exits_3_and_never_shows_the_password(capsys):
    url = f"redis://:hunter2s3cret@127.0.0.1:{free_port()}/0"
    for command in (["ls"], ["stats"], ["show", "ab"], ["export"]):
        code, out, err = cli_main(capsys, command[0], url, *command[1:])
        assert code == 3 and "127.0.0.1" in err
        assert "hunter2s3cret" not in out + err
    done = run("ls", url, "--name", "demo")
    assert done.returncode == 3 and "hunter2s3cret" not in done.stdout + done.stderr


def test_a_password_in_a_misplaced_argument_is_not_echoed(capsys, filled):
    code, out, err = cli_main(capsys, "ls", filled.db, "postgresql://app:hunter2s3cret@db/x")
    assert code == 2 and "unrecognized arguments" in err and "app:***@db" in err
    assert "hunter2s3cret" not in out + err


def test_the_script_lists_and_shows_with_a_module_of_the_current_folder(filled):
    done = run("ls", str(filled.db))
    assert done.returncode == 0 and filled.keys["point"][:12] in done.stdout
    (filled.db.parent / "bs_cli_here.py").write_text(TYPES_SOURCE)
    key = filled.keys["point"]
    done = run("show", "cache.db", key, "--import", "bs_cli_here", cwd=filled.db.parent)
    assert done.returncode == 0 and "Point(x=3, y=-3)" in done.stdout


@pytest.mark.slow
def test_ui_opens_the_seeds_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``beautyspot ui ./my_experiment.db``, as the README says: a real dashboard process."""
    pytest.importorskip(
        "nicegui", reason='the dashboard extra: pip install "beautyspot[dashboard]"'
    )
    import urllib.request

    monkeypatch.chdir(tmp_path)
    spot = bs.Spot("my_experiment")

    @spot.mark
    def double(x: int) -> int:
        return 2 * x

    assert double(21) == 42
    spot.close()
    assert (tmp_path / "my_experiment.db").exists()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root / "src"), env.get("PYTHONPATH")]))
    log = tmp_path / "ui.log"
    command = [sys.executable, "-m", "beautyspot", "ui", "./my_experiment.db", "--no-browser"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the dashboard did not start:\n{log.read_text()}")
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            status, page = response.status, response.read().decode()
        assert status == 200
        assert "<title>beautyspot · records</title>" in page
        assert "my_experiment.db" in page  # the header names the database
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert "warning" not in log.read_text()  # 127.0.0.1: nothing to warn about
