#!/usr/bin/env python3
"""Set everything up and run something, with only Python 3.10+ and pip on the machine.

    python3 dev.py demo        # install beautyspot into .venv, run the quick start twice
    python3 dev.py test        # install beautyspot[dev] into .venv, lint, build the docs
                               # (strict, into a temporary folder), run the whole test suite
    python3 dev.py docs        # install beautyspot[docs] into .venv, serve the documentation
                               # site at http://127.0.0.1:8000 (rebuilt as you edit docs/)
    python3 dev.py docs build  # the same install, then build the site into site/ (strict)

Extra arguments after ``test`` go to pytest (``python3 dev.py test -k limiter``).
``BEAUTYSPOT_ALSO_TEST_WITH="python3.10 ..."`` also runs the fast tests under each of those
interpreters, in its own ``.venv-<version>`` (CI uses it for the oldest supported Python, whose
newest pandas is 2.x).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"


# Material for MkDocs prints a banner about its own future on every build; it says nothing
# about our pages, and warnings that do are errors in a strict build.
MKDOCS_ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}


def run(
    *command: str | os.PathLike[str], cwd: Path = ROOT, env: dict[str, str] | None = None
) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    subprocess.run([str(part) for part in command], cwd=cwd, check=True, env=env)


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
    # docs/tools, not docs/: ruff would also reformat the Markdown pages' examples.
    sources = ["src", "tests", "benchmarks", "examples", "docs/tools"]
    run(python, "-m", "ruff", "check", *sources, "dev.py")
    run(python, "-m", "ruff", "format", "--check", *sources)
    with tempfile.TemporaryDirectory(prefix="beautyspot-site-") as site:
        build_docs(python, site)
    run(python, "-m", "pytest", *pytest_args)
    for other in os.environ.get("BEAUTYSPOT_ALSO_TEST_WITH", "").split():
        print(f"\n=== fast tests under {other} ===", flush=True)
        version = subprocess.run(
            [other, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        folder = ROOT / f".venv-{version}"
        run(install("[dev]", folder, base_python=other), "-m", "pytest", "-m", "not slow")


def build_docs(python: Path, site: str | os.PathLike[str]) -> None:
    """Build the documentation site into ``site``; any warning (a broken link, a page missing
    from the nav, a docstring mkdocstrings cannot read) fails the build."""
    run(python, "-m", "mkdocs", "build", "--strict", "--site-dir", site, env=MKDOCS_ENV)


def docs(argv: list[str]) -> None:
    python = install("[docs]")
    if argv == ["build"]:
        build_docs(python, ROOT / "site")
    else:
        run(python, "-m", "mkdocs", "serve", "--dev-addr", "127.0.0.1:8000", env=MKDOCS_ENV)


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else (None, [])
    actions = {"demo": demo, "test": lambda: test(rest), "docs": lambda: docs(rest)}
    if command not in actions or (command == "docs" and rest not in ([], ["build"])):
        print(__doc__)
        return 2
    try:
        actions[command]()
    except subprocess.CalledProcessError as failed:
        return failed.returncode or 1
    except KeyboardInterrupt:  # the usual way to stop `dev.py docs`
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
