"""Regenerates app/resources/demo/ (the demo recording the app offers on first run).

    python bench/make_demo.py

A 30-second recording: three scenes made with ffmpeg and four sentences spoken by espeak-ng
over room noise. Kept under 2 MB so it can ship in the repo.

The sentences are ones the default recogniser (Moonshine) hears word for word in espeak-ng's
voice; tests/test_demo.py checks that the shipped recording is heard and answered. Said this way,
"the meeting with Alice is at three o'clock" was heard as "The meeting will now listen at 3
o'clock" and "my keys are in the kitchen drawer" as "My keyhole in the kitchen floor".
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import mediagen  # noqa: E402

LINES = [
    (1.5, "good morning, I had scrambled eggs and coffee for breakfast"),
    (9.0, "I have a meeting with Alice at three o'clock"),
    (17.0, "remember to water the tomato plants"),
    (24.0, "I left my keys in the kitchen drawer"),
]
OUT = ROOT / "app" / "resources" / "demo"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    mediagen.write_wav(OUT / "demo.wav", mediagen.conversation(LINES, 30.0, seed=7))
    mediagen.scenes_video(OUT / "demo.mp4", [8.0, 8.0, 7.0, 7.0], size="320x240", fps=10)
    for f in sorted(OUT.iterdir()):
        print(f"{f.name}: {f.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
