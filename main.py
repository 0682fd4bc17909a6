"""Daybook entry point: `python main.py --help`."""

import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a no-op unless frozen (installer/entry.py)
    sys.exit(main())
