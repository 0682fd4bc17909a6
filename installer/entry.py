"""The bundle's entry point (installer/daybook.spec): `daybook` as the installed command."""

import multiprocessing
import sys

if __name__ == "__main__":
    # The engines' child processes are started with "spawn": in a frozen bundle that re-runs
    # this executable, which must hand over to multiprocessing before anything else.
    multiprocessing.freeze_support()
    from app.cli import main

    sys.exit(main())
