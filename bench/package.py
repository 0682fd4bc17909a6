"""The installers' figures: bundle and package sizes, and the start of the bundled app (process
start to window shown, offscreen) beside the same app from the source checkout, in one run.

    make package && python bench/package.py      # → bench/out/package.json

Uses dist/daybook (the bundle the .deb installs to /opt/daybook; /opt/daybook itself when the
package is installed) and dist/daybook_*.deb. The first start of each is reported apart: it
reads the files from disk (or from the page cache, if they were read recently; dropping the
cache needs root and is tried).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5


def du_bytes(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())


def drop_page_cache() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def shown_after_s(command: list[str]) -> float:
    with tempfile.TemporaryDirectory(prefix="daybook-bench-") as tmp:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
               "DAYBOOK_CONFIG": str(Path(tmp) / "none.toml")}
        r = subprocess.run([*command, "--exit-after-show", "--data-dir", str(Path(tmp) / "d")],
                           capture_output=True, text=True, env=env, timeout=300, cwd=tmp)
        if r.returncode != 0:
            raise SystemExit(f"{command[0]} failed: {r.stderr[-2000:]}")
        return float(json.loads(r.stdout.strip().splitlines()[-1])["window_shown_after_s"])


def starts(command: list[str]) -> dict[str, float | bool]:
    dropped = drop_page_cache()
    first = shown_after_s(command)
    warm = [shown_after_s(command) for _ in range(RUNS)]
    return {"first_s": round(first, 2), "first_after_dropping_cache": dropped,
            "warm_median_s": round(statistics.median(warm), 2),
            "warm_max_s": round(max(warm), 2)}


def main() -> int:
    installed = Path("/opt/daybook/daybook")
    bundle_exe = installed if installed.exists() else ROOT / "dist" / "daybook" / "daybook"
    if not bundle_exe.exists():
        sys.exit("bench/package.py: no bundle; run `make package` first")
    debs = sorted((ROOT / "dist").glob("daybook_*.deb"))
    out: dict[str, object] = {
        "bundle": str(bundle_exe.parent),
        "bundle_mb": round(du_bytes(bundle_exe.parent) / 1e6, 1),
        "deb": str(debs[-1]) if debs else None,
        "deb_mb": round(debs[-1].stat().st_size / 1e6, 1) if debs else None,
        "bundled_start": starts([str(bundle_exe)]),
        "source_start": starts([sys.executable, str(ROOT / "main.py")]),
    }
    for key, value in out.items():
        print(f"{key:>14}: {value}")
    dest = ROOT / "bench" / "out" / "package.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2))
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
