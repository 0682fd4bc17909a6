"""What the app ships besides code: its icon, its desktop entry, the demo recording. They are
package data (pyproject.toml), found with importlib.resources, so a wheel or a frozen bundle
carries them wherever it is installed."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# Where they are on disk: OpenCV reads the demo, Qt the icon, and both need a path.
RESOURCES = Path(str(files(__name__)))
DEMO_DIR = RESOURCES / "demo"
ICON = RESOURCES / "daybook.svg"
DESKTOP_ENTRY = RESOURCES / "daybook.desktop"

