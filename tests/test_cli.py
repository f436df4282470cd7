"""The ``beautyspot`` console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import beautyspot as bs

SCRIPT = Path(sys.executable).with_name("beautyspot")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_console_script_is_installed_and_prints_help():
    done = run("--help")
    assert done.returncode == 0
    assert "usage: beautyspot" in done.stdout and "version" in done.stdout


def test_version_command_prints_the_package_version():
    done = run("version")
    assert done.returncode == 0 and done.stdout.strip() == f"beautyspot {bs.__version__}"


def test_unknown_command_fails_with_usage():
    done = run("frobnicate")
    assert done.returncode == 2 and "invalid choice" in done.stderr
