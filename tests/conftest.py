"""Shared fixtures: every test gets its own working folder and Spot."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import beautyspot as bs


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, so default paths (./{name}.db) land in tmp."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def spot(workdir: Path) -> bs.Spot:
    created = bs.Spot("test")
    yield created
    created.close()


@pytest.fixture
def spawn(monkeypatch: pytest.MonkeyPatch) -> multiprocessing.context.SpawnContext:
    """A spawn context whose children can import the test modules by their names (for
    process targets defined in them): the repository's root is on their path."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    return multiprocessing.get_context("spawn")


def service_unavailable(reason: str) -> None:
    """Skip on a laptop without the service; fail in our CI, where every service must be up.

    Our CI is told by ``BEAUTYSPOT_REQUIRE_SERVICES=1`` (.ci/run sets it), not by ``CI``: other
    CI services set that too, and a contributor's CI must not fail for lack of our services.
    """
    if os.environ.get("BEAUTYSPOT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (BEAUTYSPOT_REQUIRE_SERVICES=1: services are required)")
    pytest.skip(reason)


class FakeClock:
    """A clock that only moves when something sleeps on it (or a test sets ``now``)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.now += seconds


def fake_limiter(tpm: float, burst: float | None = None) -> tuple[bs.Limiter, FakeClock]:
    """An in-process limiter on a :class:`FakeClock`: schedules are exact, nothing waits."""
    clock = FakeClock()
    limiter = bs.Limiter(tpm, burst, clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep)
    return limiter, clock


def sqlite_dump(path: Path) -> list[str]:
    """Everything a SQLite file holds, as SQL: equal dumps mean an untouched database."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def nobody() -> tuple[int, int] | None:
    """The user and group a root test drops to so that file modes apply; None if not root."""
    if os.geteuid() != 0:
        return None
    import pwd  # POSIX only

    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root, with no 'nobody' user to drop privileges to")
    return entry.pw_uid, entry.pw_gid


def run_unprivileged(action: Callable[[], object]) -> str:
    """``"ok"`` or ``"ErrorType: message"`` of ``action``, run in a forked child.

    Root ignores file modes, so when we are root the child first becomes :func:`nobody`.
    """
    ids = nobody()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            if ids is not None:
                os.setgroups([])
                os.setgid(ids[1])
                os.setuid(ids[0])
            try:
                action()
                outcome = "ok"
            except Exception as error:
                outcome = f"{type(error).__name__}: {error}"
            os.write(writer, outcome.encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        outcome = pipe.read().decode()
    os.waitpid(pid, 0)
    return outcome


# -- pickle is never reached from beautyspot code, anywhere in the suite --------------------


def _called_from_beautyspot() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module == "beautyspot" or module.startswith("beautyspot."):
            return True
        frame = frame.f_back
    return False


def _refusing_from_beautyspot(real: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if _called_from_beautyspot():
            raise AssertionError(f"beautyspot code called pickle.{real.__name__}")
        return real(*args, **kwargs)

    guarded.__name__ = real.__name__
    return guarded


@pytest.fixture(autouse=True, scope="session")
def pickle_refused_in_beautyspot() -> Iterator[None]:
    """pickle.load/loads raise whenever a beautyspot frame is on the stack.

    Scoped by the stack, not switched off wholesale, because the test harness itself pickles
    (multiprocessing, hypothesis).
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in ("load", "loads"):
            patch.setattr(pickle, name, _refusing_from_beautyspot(getattr(pickle, name)))
        yield
