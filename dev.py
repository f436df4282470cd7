#!/usr/bin/env python3
"""Set everything up and run something, with only Python 3.10+ and pip on the machine.

    python3 dev.py demo     # install beautyspot into .venv, run the quick start twice
    python3 dev.py test     # install beautyspot[dev] into .venv, lint, run the whole test suite

Extra arguments after ``test`` go to pytest (``python3 dev.py test -k limiter``).
``BEAUTYSPOT_ALSO_TEST_WITH="python3.10 ..."`` also runs the fast tests under each of those
interpreters, in its own ``.venv-<version>`` (CI uses it for the oldest supported Python, whose
newest pandas is 2.x).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"


def run(*command: str | os.PathLike[str], cwd: Path = ROOT) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    subprocess.run([str(part) for part in command], cwd=cwd, check=True)


def python_in(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def install(extras: str, folder: Path = VENV, base_python: str | None = None) -> Path:
    """Create the virtual environment ``folder`` if needed (with ``base_python``, or this
    interpreter), install the project (editable) with ``extras``; return its python."""
    python = python_in(folder)
    if not python.exists():
        if base_python is None:
            venv.create(folder, with_pip=True)
        else:
            run(base_python, "-m", "venv", folder)
    quiet = ["--quiet", "--disable-pip-version-check"]
    run(python, "-m", "pip", "install", *quiet, "--upgrade", "pip")
    run(python, "-m", "pip", "install", *quiet, "--editable", f".{extras}")
    return python


def demo() -> None:
    python = install("")
    workdir = ROOT / "examples"
    for leftover in workdir.glob("quickstart.db*"):
        leftover.unlink()
    for attempt in (1, 2):
        print(f"\n=== run {attempt} of examples/quickstart.py ===", flush=True)
        run(python, "quickstart.py", cwd=workdir)


def test(pytest_args: list[str]) -> None:
    python = install("[dev]")
    run(python, "-m", "ruff", "check", "src", "tests", "benchmarks", "examples", "dev.py")
    run(python, "-m", "ruff", "format", "--check", "src", "tests", "benchmarks", "examples")
    run(python, "-m", "pytest", *pytest_args)
    for other in os.environ.get("BEAUTYSPOT_ALSO_TEST_WITH", "").split():
        print(f"\n=== fast tests under {other} ===", flush=True)
        version = subprocess.run(
            [other, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        folder = ROOT / f".venv-{version}"
        run(install("[dev]", folder, base_python=other), "-m", "pytest", "-m", "not slow")


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
