"""Key-frame JPEGs on disk, one folder per local day, named by the clip's time span.

The name carries the span (`<t0_ms>_<t1_ms>.jpg`), so the key frame showing a moment is found
from a directory listing alone, without a database query.
"""

from __future__ import annotations

import bisect
import os
from pathlib import Path

import cv2
import numpy as np

from app.core.timefmt import local_day


class KeyFrameDir:
    def __init__(self, root: Path, *, max_width: int = 640, jpeg_quality: int = 75) -> None:
        self.root = root
        self.max_width = max_width
        self.jpeg_quality = jpeg_quality

    def write(self, image: np.ndarray, t0_s: float, t1_s: float) -> str:
        """Write atomically; returns the path relative to the root."""
        day_dir = self.root / local_day(t0_s)
        day_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        h, w = image.shape[:2]
        if w > self.max_width:
            image = cv2.resize(
                image, (self.max_width, round(h * self.max_width / w)), interpolation=cv2.INTER_AREA
            )
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise OSError("JPEG encoding failed")
        name = f"{round(t0_s * 1000)}_{round(t1_s * 1000)}.jpg"
        final = day_dir / name
        tmp = day_dir / (name + ".tmp")
        with tmp.open("wb") as fh:
            fh.write(data.tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        return f"{day_dir.name}/{name}"

    def absolute(self, relative: str) -> Path:
        return self.root / relative

    def near(self, t0_s: float, t1_s: float) -> Path | None:
        """The key frame of the clip overlapping [t0, t1] the most (or the nearest within 30 s)."""
        spans: list[tuple[int, int, Path]] = []
        for day in {local_day(t0_s), local_day(t1_s)}:
            day_dir = self.root / day
            if not day_dir.is_dir():
                continue
            for entry in os.scandir(day_dir):
                base, _, ext = entry.name.partition(".")
                first, _, last = base.partition("_")
                if ext == "jpg" and first.isdigit() and last.isdigit():
                    spans.append((int(first), int(last), Path(entry.path)))
        if not spans:
            return None
        spans.sort()
        lo_ms, hi_ms = t0_s * 1000, t1_s * 1000
        i = bisect.bisect_right([s[0] for s in spans], hi_ms)
        best, best_score = None, float("-inf")
        for a, b, path in spans[max(0, i - 8) : i + 1]:
            overlap = min(b, hi_ms) - max(a, lo_ms)  # negative: the gap between them
            if overlap > best_score:
                best, best_score = path, overlap
        return best if best_score > -30_000 else None
