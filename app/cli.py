"""Command line: `ingest`, `ask`, `timeline` (and, later, the GUI when no command is given)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import __version__
from app.core.config import Config, load_config
from app.core.errors import DaybookError, ExitCode, InputError
from app.core.lock import DataDirLock
from app.core.logs import setup_logging
from app.core.paths import DataPaths, default_config_path, resolve_data_dir
from app.core.timefmt import iso, local_day, parse_iso

log = logging.getLogger("daybook")


@dataclass
class Session:
    cfg: Config
    paths: DataPaths
    lock: DataDirLock


@contextlib.contextmanager
def open_session(args: argparse.Namespace) -> Iterator[Session]:
    """Config, data dir, logging and the data-dir lock, in that order."""
    cfg = load_config(default_config_path(args.config))
    paths = resolve_data_dir(args.data_dir).ensure()
    setup_logging(cfg.logging, paths.logs, console_level="INFO" if args.verbose else "WARNING")
    log.info("daybook %s, data dir %s, config %s", __version__, paths.root, cfg.source)
    with DataDirLock(paths.lock_file) as lock:
        yield Session(cfg, paths, lock)


def _progress(done_s: float, total_s: float | None, wall_s: float) -> str:
    speed = done_s / wall_s if wall_s > 0 else 0.0
    if total_s:
        frac = min(1.0, done_s / total_s)
        bar = "#" * int(frac * 30)
        return f"\r[{bar:<30}] {frac:6.1%}  {done_s:7.1f}/{total_s:.1f} s  {speed:5.1f}x"
    return f"\r{done_s:7.1f} s ingested  {speed:5.1f}x"


def cmd_ingest(args: argparse.Namespace) -> int:
    from app.capture.audio_file import WavFileSource
    from app.capture.video import Cv2FrameSource
    from app.pipeline.factory import build_pipeline, make_key_frames, make_store

    if not args.video and not args.audio:
        raise InputError("nothing to ingest: give --video PATH and/or --audio PATH")
    start_s = parse_iso(args.start) if args.start else time.time()
    with open_session(args) as s:
        cfg = s.cfg
        # Open (and so validate) every input before anything is written.
        audio = (
            WavFileSource(
                Path(args.audio),
                start_s=start_s,
                realtime=args.realtime,
                block_ms=cfg.capture.audio_block_ms,
            )
            if args.audio
            else None
        )
        video = (
            Cv2FrameSource(
                args.video, max_fps=cfg.video.sample_fps, start_s=start_s, realtime=args.realtime
            )
            if args.video
            else None
        )
        if audio is not None and audio.converted:
            log.warning(
                "%s is %d Hz, %d channel(s): converting to 16 kHz mono",
                audio.path,
                audio.sample_rate_hz,
                audio.channels,
            )
        total_s = max((src.duration_s or 0.0 for src in (audio, video) if src), default=0.0)
        store = make_store(s.paths)
        pipe = build_pipeline(
            cfg,
            store=store,
            key_frames=make_key_frames(cfg, s.paths.key_frames),
            audio=audio,
            video=video,
        )
        failures: list[str] = []
        pipe.bus.subscribe(
            lambda e: (
                failures.append(f"{e.source}: {e.message}")
                if type(e).__name__ == "SourceFailed"
                else None
            )
        )
        wall0 = time.monotonic()
        pipe.start()
        show = sys.stderr.isatty()
        interrupted = False
        try:
            while not pipe.wait(0.25):
                if show:
                    sys.stderr.write(_progress(pipe.position_s, total_s, time.monotonic() - wall0))
                    sys.stderr.flush()
        except KeyboardInterrupt:
            interrupted = True
            sys.stderr.write("\ninterrupted: storing what was captured so far…\n")
            pipe.stop()
        wall_s = time.monotonic() - wall0
        if show:
            sys.stderr.write(_progress(pipe.position_s, total_s, wall_s) + "\n")
        counts = pipe.memory.stored
        ingested_s = max((c.position_s for c in pipe.captures), default=0.0)
        summary: dict[str, Any] = {
            "clips": counts["clip"],
            "utterances": counts["utterance"],
            "seconds_ingested": round(ingested_s, 3),
            "wall_seconds": round(wall_s, 3),
            "realtime_factor": round(ingested_s / wall_s, 1) if wall_s > 0 else None,
            "start": iso(start_s),
            "backends": pipe.backends,
            "counters": pipe.counters(),
            "errors": failures + ([pipe.memory.last_error] if pipe.memory.last_error else []),
        }
        log.info("ingest done: %s", json.dumps(summary))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"Ingested {summary['seconds_ingested']:.1f} s of media in {wall_s:.1f} s "
            f"({summary['realtime_factor']}x real time): {counts['clip']} clips, "
            f"{counts['utterance']} utterances. ASR: {pipe.backends.get('asr', '-')}."
        )
        for err in summary["errors"]:
            print(f"error: {err}", file=sys.stderr)
    if interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.INPUT if failures else ExitCode.OK


def _retrieval(s: Session) -> Any:
    from app.pipeline.factory import make_embedder, make_key_frames, make_store
    from app.reasoning.retrieve import Retriever

    return Retriever(
        make_store(s.paths),
        make_embedder(s.cfg),
        make_key_frames(s.cfg, s.paths.key_frames),
        s.cfg.reasoning,
    )


def cmd_ask(args: argparse.Namespace) -> int:
    from app.reasoning.base import Answer
    from app.reasoning.extractive import ExtractiveReasoner

    with open_session(args) as s:
        citations, scope = _retrieval(s).retrieve(args.question)
        reasoner = ExtractiveReasoner()
        label = scope.label if scope else None
        answer = Answer(
            args.question, reasoner.answer(args.question, citations, label), citations, label
        )
        log.info("asked %r: %d citations", args.question, len(citations))
    if args.json:
        print(json.dumps(answer.to_json(), indent=2, ensure_ascii=False))
    else:
        print(answer.text)
        for c in citations:
            if c.thumbnail:
                print(f"    key frame: {c.thumbnail}")
    return ExitCode.OK


def cmd_timeline(args: argparse.Namespace) -> int:
    from app.reasoning.base import Citation

    day = args.day or local_day(time.time())
    try:
        time.strptime(day, "%Y-%m-%d")
    except ValueError as exc:
        raise InputError(f"--day must look like 2026-11-24, got {day!r}") from exc
    with open_session(args) as s:
        retriever = _retrieval(s)
        moments = retriever.store.moments_on_day(day)
        items = [
            Citation(
                m, 0.0, retriever.key_frames.absolute(m.key_frame) if m.key_frame else None
            ).to_json()
            for m in moments
        ]
    if args.json:
        print(json.dumps({"day": day, "moments": items}, indent=2, ensure_ascii=False))
        return ExitCode.OK
    if not items:
        print(f"Nothing remembered on {day}.")
    for it in items:
        when = f"{it['t0'][11:19]}–{it['t1'][11:19]}"
        if it["kind"] == "utterance":
            print(f"{when}  heard  {it['text'] or '(' + (it['sound'] or 'sound') + ')'}")
        else:
            print(f"{when}  saw    {it['thumbnail'] or '(no key frame)'}")
    return ExitCode.OK


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        help="where memory, models and logs live "
        "(default: $DAYBOOK_DATA_DIR or the platform's user data dir)",
    )
    common.add_argument(
        "--config", help="config TOML (default: $DAYBOOK_CONFIG or the platform's user config dir)"
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    parser = argparse.ArgumentParser(
        prog="daybook",
        parents=[common],
        description="Daybook remembers what it sees and hears, and answers questions about it.",
    )
    parser.add_argument("--version", action="version", version=f"daybook {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ingest", parents=[common], help="remember a recording (video and/or WAV)")
    p.add_argument("--video", help="video file (or camera index / stream URL)")
    p.add_argument("--audio", help="WAV file (any rate, mono or stereo)")
    p.add_argument("--start", help="wall-clock time the recording began, ISO-8601 (default: now)")
    p.add_argument("--realtime", action="store_true", help="replay at real-time pace")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", parents=[common], help="ask what happened")
    p.add_argument("question")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("timeline", parents=[common], help="list a day's moments in order")
    p.add_argument("--day", help="YYYY-MM-DD (default: today)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_timeline)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()  # the GUI opens here once it exists
        return ExitCode.OK
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return int(args.func(args))
    except DaybookError as exc:
        print(f"daybook: error: {exc}", file=sys.stderr)
        logging.getLogger("daybook").error("%s", exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("daybook: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
