"""``python -m beautyspot``: the command line, as the ``beautyspot`` script runs it."""

import sys

from beautyspot.cli import main

if __name__ == "__main__":
    sys.exit(main())
