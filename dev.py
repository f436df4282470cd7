#!/usr/bin/env python3
"""Set everything up and run something, with only Python 3.10+ and pip on the machine.

    python3 dev.py demo     # install beautyspot into .venv, run the quick start twice
    python3 dev.py test     # install beautyspot[dev] into .venv, lint, run the whole test suite

Extra arguments after ``test`` go to pytest (``python3 dev.py test -k limiter``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def run(*command: str | os.PathLike[str], cwd: Path = ROOT) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    subprocess.run([str(part) for part in command], cwd=cwd, check=True)


def install(extras: str) -> None:
    """Create .venv if needed and install the project (editable) with ``extras``."""
    if not PYTHON.exists():
        venv.create(VENV, with_pip=True)
    quiet = ["--quiet", "--disable-pip-version-check"]
    run(PYTHON, "-m", "pip", "install", *quiet, "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", *quiet, "--editable", f".{extras}")


def demo() -> None:
    install("")
    workdir = ROOT / "examples"
    for leftover in workdir.glob("quickstart.db*"):
        leftover.unlink()
    for attempt in (1, 2):
        print(f"\n=== run {attempt} of examples/quickstart.py ===", flush=True)
        run(PYTHON, "quickstart.py", cwd=workdir)


def test(pytest_args: list[str]) -> None:
    install("[dev]")
    run(PYTHON, "-m", "ruff", "check", "src", "tests", "benchmarks", "examples", "dev.py")
    run(PYTHON, "-m", "ruff", "format", "--check", "src", "tests", "benchmarks", "examples")
    run(PYTHON, "-m", "pytest", *pytest_args)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__)
        return 2
    try:
        demo() if argv[0] == "demo" else test(argv[1:])
    except subprocess.CalledProcessError as failed:
        return failed.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
