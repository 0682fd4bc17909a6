"""A two-minute tour: make a short recording, remember it, and ask about it.

    python bench/demo.py        (or: make demo)

Uses a throw-away data dir, so your own memory is untouched.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import mediagen  # noqa: E402

LINES = [(2.0, "I had scrambled eggs and coffee for breakfast"),
         (10.0, "the meeting with Alice is at three o'clock"),
         (18.0, "remember to water the tomato plants")]


def daybook(*args: str, data_dir: Path) -> None:
    print(f"\n$ python main.py {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(ROOT / "main.py"), *args, "--data-dir", str(data_dir)],
                   check=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="daybook-demo-") as tmp:
        folder = Path(tmp)
        print("making a 26 s recording with espeak-ng and ffmpeg…")
        wav = mediagen.write_wav(folder / "talk.wav", mediagen.conversation(LINES, 26.0))
        video = mediagen.scenes_video(folder / "scenes.mp4", [8.0, 8.0, 10.0])
        data = folder / "data"
        daybook("ingest", "--video", str(video), "--audio", str(wav), data_dir=data)
        daybook("timeline", data_dir=data)
        daybook("ask", "what did I have for breakfast?", data_dir=data)
        daybook("ask", "when is the meeting?", data_dir=data)


if __name__ == "__main__":
    main()
