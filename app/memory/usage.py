"""How much room the memory folder takes. No Qt here: the settings dialog measures the folder on
a helper thread (a large memory has many files) and shows the size, the file count and the free
space on that disk in its Privacy & storage tab.
"""

from __future__ import annotations

import os
from pathlib import Path


def folder_usage(folder: Path) -> tuple[int, int]:
    """(bytes, files) under a folder; files that vanish while walking are skipped."""
    total = files = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
            files += 1
    return total, files
