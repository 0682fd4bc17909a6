"""Headless replay ingest benchmark.

Generates a recording (default 10 minutes: a 640x480 30 fps video of changing scenes made with
ffmpeg, and speech from espeak-ng every ~20 s over room noise), ingests it as fast as possible
through `main.py ingest` in a fresh process and data dir, and prints:
  - x real time (media seconds / wall seconds),
  - MB stored per recorded hour (the data dir's memory/ folder: Chroma + key frames),
  - peak RSS of the ingest process.
Runs twice: with the default perception (Silero VAD, the sound classifier, Moonshine ASR: nothing
downloaded), and with ASR off, to show what speech recognition costs. Writes bench/out/ingest.json.

    python bench/ingest.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import mediagen  # noqa: E402

OUT = ROOT / "bench" / "out"
SENTENCES = [
    "I had scrambled eggs and coffee for breakfast", "the meeting with Alice is at three",
    "remember to water the tomato plants", "the keys are in the kitchen drawer",
    "call the dentist about monday", "the train leaves at seven fifteen",
    "buy milk and bread on the way home", "the printer on the second floor is broken",
]


def make_recording(minutes: float, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    wav, video = folder / f"rec{minutes:g}.wav", folder / f"rec{minutes:g}.mp4"
    total_s = minutes * 60
    if not wav.exists():
        lines = [(5.0 + 20.0 * i, SENTENCES[i % len(SENTENCES)])
                 for i in range(int((total_s - 10) // 20))]
        mediagen.write_wav(wav, mediagen.conversation(lines, total_s))
    if not video.exists():
        scenes = [15.0] * int(total_s // 15)
        mediagen.scenes_video(video, scenes, size="640x480", fps=30)
    return wav, video


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_ingest(wav: Path, video: Path, config_text: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="daybook-bench-") as tmp:
        data_dir, cfg = Path(tmp) / "data", Path(tmp) / "config.toml"
        cfg.write_text(config_text)
        env = {**os.environ, "DAYBOOK_CONFIG": str(cfg)}
        out_path, err_path = Path(tmp) / "out.json", Path(tmp) / "err.txt"
        start = time.perf_counter()
        with out_path.open("w") as out, err_path.open("w") as err:
            proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "ingest", "--video",
                                     str(video), "--audio", str(wav), "--json", "--data-dir",
                                     str(data_dir)], stdout=out, stderr=err, env=env)
            # wait4 gives this child's own peak RSS and CPU time.
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        wall_s = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"ingest failed ({proc.returncode}):\n{err_path.read_text()}")
        summary = json.loads(out_path.read_text())
        media_s = summary["seconds_ingested"]
        stored = dir_bytes(data_dir / "memory")
        cpu_s = usage.ru_utime + usage.ru_stime
        return {
            "media_seconds": media_s,
            "wall_seconds_process": round(wall_s, 2),
            "wall_seconds_pipeline": summary["wall_seconds"],
            "x_realtime": round(media_s / wall_s, 1),
            "x_realtime_pipeline": round(media_s / summary["wall_seconds"], 1),
            "cpu_seconds": round(cpu_s, 2),
            "stored_mb": round(stored / 1e6, 2),
            "mb_per_recorded_hour": round(stored / 1e6 * 3600 / media_s, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # ru_maxrss is in KiB on Linux
            "clips": summary["clips"], "utterances": summary["utterances"],
            "asr": summary["backends"].get("asr"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    for tool in ("ffmpeg", "espeak-ng"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (Debian: apt install {tool})")
    t = time.perf_counter()
    wav, video = make_recording(args.minutes, OUT / "media")
    print(f"recording: {args.minutes:g} min ({video.stat().st_size / 1e6:.1f} MB video) "
          f"ready in {time.perf_counter() - t:.1f} s")
    results = {
        "default (Silero VAD, Moonshine ASR)": run_ingest(wav, video, ""),
        "ASR off": run_ingest(wav, video, '[asr]\nbackend = "none"\n'),
    }
    print(f"{'run':36} {'x real time':>12} {'MB/rec. hour':>13} {'peak RSS MB':>12} "
          f"{'CPU s':>7} {'clips':>6} {'utts':>5}")
    for name, r in results.items():
        print(f"{name:36} {r['x_realtime']:>12} {r['mb_per_recorded_hour']:>13} "
              f"{r['peak_rss_mb']:>12} {r['cpu_seconds']:>7} {r['clips']:>6} {r['utterances']:>5}")
    OUT.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "ingest", "minutes": args.minutes, "machine": {
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform()}, "results": results}
    (OUT / "ingest.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {OUT / 'ingest.json'}")


if __name__ == "__main__":
    main()
