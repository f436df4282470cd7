"""The ``beautyspot`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beautyspot",
        description="Inspect and maintain beautyspot caches.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("version", help="print the installed beautyspot version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    >>> main(["version"])  # doctest: +ELLIPSIS
    beautyspot ...
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "version":
        from beautyspot import __version__

        print(f"beautyspot {__version__}")
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
