"""Command line: `ingest`, `ask`, `timeline` (and, later, the GUI when no command is given)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import __version__
from app.core.boot import boot
from app.core.config import Config
from app.core.errors import DaybookError, ExitCode, InputError
from app.core.events import EngineFailed, SourceFailed, SourceLost, SourceRecovered
from app.core.lock import DataDirLock
from app.core.paths import DataPaths
from app.core.timefmt import iso, local_day, parse_iso
from app.core.units import fmt_bytes
from app.models.catalog import ROLES

log = logging.getLogger("daybook")


@dataclass
class Session:
    cfg: Config
    paths: DataPaths
    lock: DataDirLock
    background: bool = False
    _service: Any = None

    @property
    def service(self) -> Any:
        """The one DaybookService of this command (made at first use; closed before the
        data-dir lock is released). Every command goes through it, as the window does."""
        if self._service is None:
            from app.pipeline.service import DaybookService

            self._service = DaybookService(self.cfg, self.paths, background=self.background,
                                           load_reasoner=False)
        return self._service


@contextlib.contextmanager
def open_session(args: argparse.Namespace, *, records: bool = True,
                 background: bool = False) -> Iterator[Session]:
    """Boot (config, data dir, logging), then the data-dir lock. A command that only reads
    (`records=False`) still works on a full disk; `background`: the memory's background work
    (re-embedding, summaries) runs while the command does."""
    b = boot(args.config, args.data_dir, verbose=args.verbose, records=records)
    with DataDirLock(b.paths.lock_file) as lock:
        session = Session(b.cfg, b.paths, lock, background)
        try:
            yield session
        finally:
            if session._service is not None:
                session._service.close()


def _progress(done_s: float, total_s: float | None, wall_s: float) -> str:
    speed = done_s / wall_s if wall_s > 0 else 0.0
    if total_s:
        frac = min(1.0, done_s / total_s)
        bar = "#" * int(frac * 30)
        return f"\r[{bar:<30}] {frac:6.1%}  {done_s:7.1f}/{total_s:.1f} s  {speed:5.1f}x"
    return f"\r{done_s:7.1f} s captured"


def _run(pipe: Any, *, total_s: float | None, duration_s: float | None,
         on_started: Any = None) -> dict[str, Any]:
    """Run a built pipeline to its end (or `duration_s`, or Ctrl-C) and summarise it."""
    failures: list[str] = []
    warnings: list[str] = []

    def listen(e: object) -> None:
        if isinstance(e, SourceFailed):
            failures.append(f"{e.source}: {e.message}")
        elif isinstance(e, EngineFailed):
            warnings.append(e.message)
        elif isinstance(e, SourceLost | SourceRecovered):  # said at once: recording goes on
            said = (f"{e.source} lost: {e.message}; retrying" if isinstance(e, SourceLost)
                    else f"{e.source} is back; recording again")
            print(("\n" if sys.stderr.isatty() else "") + f"daybook: {said}", file=sys.stderr,
                  flush=True)

    pipe.bus.subscribe(listen)
    wall0 = time.monotonic()
    show = sys.stderr.isatty()
    interrupted = False
    try:
        pipe.start()
        if on_started is not None:
            on_started(pipe.wait_started())
        while not pipe.wait(0.25):
            if show:
                sys.stderr.write(_progress(pipe.position_s, total_s, time.monotonic() - wall0))
                sys.stderr.flush()
            if duration_s is not None and time.monotonic() - wall0 >= duration_s:
                pipe.stop()
    except KeyboardInterrupt:
        interrupted = True
        sys.stderr.write("\ninterrupted: storing what was captured so far…\n")
        sys.stderr.flush()
        pipe.stop()
    wall_s = time.monotonic() - wall0
    if show:
        sys.stderr.write(_progress(pipe.position_s, total_s, wall_s) + "\n")
    counts = pipe.memory.stored
    media_s = max((c.position_s for c in pipe.captures), default=0.0)
    asr = next((w for w in pipe.workers if w.name == "asr"), None)
    engines = {e.name: {"failures": e.failures, "restarts": e.restarts}
               for e in (getattr(x, "engine", None) for x in (
                   pipe.memory.store, getattr(asr, "transcriber", None))) if e is not None}
    kept = pipe.memory.kept
    summary: dict[str, Any] = {
        "clips": counts["clip"],
        "utterances": counts["utterance"],
        "seconds_ingested": round(media_s, 3),
        "wall_seconds": round(wall_s, 3),
        "realtime_factor": round(media_s / wall_s, 1) if wall_s > 0 else None,
        "backends": pipe.backends,
        "counters": pipe.counters(),
        "memory": {"kept": kept, "journaled": pipe.memory.journaled,
                   "recovered_from_journal": pipe.memory.recovered},
        "untranscribed": {"failed": asr.failed if asr else 0,
                          "transcribed_again": asr.retranscribed if asr else 0,
                          "waiting": len(asr.spool) if asr else 0},
        "engines": engines,
        "errors": failures + ([pipe.memory.last_error] if kept and pipe.memory.last_error
                              else []),
        "sources_failed": len(failures),
        "warnings": warnings,
        "interrupted": interrupted,
    }
    log.info("pipeline done: %s", json.dumps(summary))
    return summary


def _report(summary: dict[str, Any], as_json: bool, verb: str,
            source_failed: ExitCode = ExitCode.INPUT) -> int:
    """Print the summary; the exit code says what happened (see README, exit codes)."""
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{verb} {summary['seconds_ingested']:.1f} s of media in "
              f"{summary['wall_seconds']:.1f} s ({summary['realtime_factor']}x real time): "
              f"{summary['clips']} clips, {summary['utterances']} utterances. "
              f"ASR: {summary['backends'].get('asr', '-')}.")
        for warning in summary["warnings"]:
            print(f"warning: {warning} (recovered)", file=sys.stderr)
        for err in summary["errors"]:
            print(f"error: {err}", file=sys.stderr)
    memory, waiting = summary["memory"], summary["untranscribed"]["waiting"]
    if memory["kept"]:
        where = ("kept in the journal; they are stored at the next start"
                 if memory["journaled"] >= memory["kept"] else "NOT saved (see the log)")
        print(f"daybook: {memory['kept']} moments could not be stored: {where}",
              file=sys.stderr)
    if waiting:
        print(f"daybook: {waiting} utterances are stored without text (recognition failed); "
              "they are transcribed again at the next start", file=sys.stderr)
    if summary["interrupted"]:
        return ExitCode.INTERRUPTED
    if summary["sources_failed"]:
        return source_failed  # a source broke (a bad file: 5; a device lost: 1)
    if memory["kept"] or waiting:
        return ExitCode.INCOMPLETE
    return ExitCode.OK


def cmd_ingest(args: argparse.Namespace) -> int:
    from app.capture.audio_file import WavFileSource
    from app.capture.video import Cv2FrameSource

    if not args.video and not args.audio:
        raise InputError("nothing to ingest: give --video PATH and/or --audio PATH")
    try:
        start_s = parse_iso(args.start) if args.start else time.time()
    except ValueError as exc:
        raise InputError(f"--start: {exc}") from exc
    with open_session(args) as s:
        cfg = s.cfg
        # Open (and so validate) every input before anything is written.
        audio = WavFileSource(Path(args.audio), start_s=start_s, realtime=args.realtime,
                              block_ms=cfg.capture.audio_block_ms if args.realtime else None
                              ) if args.audio else None
        video = Cv2FrameSource(args.video, max_fps=cfg.video.sample_fps, start_s=start_s,
                               realtime=args.realtime) if args.video else None
        if audio is not None and audio.converted:
            log.warning("%s is %d Hz, %d channel(s): converting to 16 kHz mono", audio.path,
                        audio.sample_rate_hz, audio.channels)
        total_s = max((src.duration_s or 0.0 for src in (audio, video) if src), default=0.0)
        pipe = s.service.build(audio=audio, video=video)
        summary = _run(pipe, total_s=total_s, duration_s=None)
        summary["start"] = iso(start_s)
    return _report(summary, args.json, "Ingested")


def cmd_record(args: argparse.Namespace) -> int:
    from app.pipeline.factory import open_live_sources

    with open_session(args, background=True) as s:
        cfg = s.cfg
        camera = cfg.capture.camera if args.camera is None else args.camera
        microphone = cfg.capture.microphone if args.microphone is None else args.microphone
        audio, video, problems = open_live_sources(cfg, camera=camera, microphone=microphone)
        if audio is None and video is None:
            raise InputError("nothing to record from: no microphone and no camera could be "
                             "opened (see above)")
        names = ", ".join(x.name for x in (audio, video) if x)

        def started(ok: bool) -> None:  # said only once the devices really deliver
            print(f"daybook: recording from {names}; Ctrl-C stops" if ok else
                  f"daybook: warning: {names} did not start delivering; see the log",
                  file=sys.stderr, flush=True)

        pipe = s.service.build(audio=audio, video=video)
        summary = _run(pipe, total_s=None, duration_s=args.duration, on_started=started)
        summary["missing"] = problems
    return _report(summary, args.json, "Recorded", source_failed=ExitCode.FAILURE)


def cmd_ask(args: argparse.Namespace) -> int:
    streaming = not args.json and sys.stdout.isatty()

    def show(piece: str) -> None:  # the answer as it is generated
        sys.stdout.write(piece)
        sys.stdout.flush()

    with open_session(args, records=False) as s:
        spoken = None
        if args.speak:
            speaker = s.service.open_voice()
            if not speaker.available:
                print(f"daybook: answers cannot be said here: {speaker.reason}", file=sys.stderr)
            s.service.voice.speak_next()
            spoken = _SpokenWaiter(s.service.bus)
        # Each step has its own time limit; this one only guards against the unforeseen.
        answer = s.service.ask_and_wait(args.question, on_chunk=show if streaming else None,
                                        timeout_s=3 * s.cfg.reasoning.timeout_s + 60)
        if spoken is not None and s.service.voice.speaker.available:
            spoken.wait(60.0 + len(answer.text) / 5)  # ≈10 characters a second, and more
        citations = answer.citations
        # The question's text only at DEBUG (privacy), its length at INFO.
        log.debug("asked %r", args.question)
        log.info("asked a question (%d chars): %d citations, answered by %s",
                 len(args.question), len(citations), answer.reasoner)
    if args.json:
        print(json.dumps(answer.to_json(), indent=2, ensure_ascii=False))
        return ExitCode.OK
    print("" if streaming else answer.text)
    if answer.note:
        print(f"(the language model did not answer: {answer.note})", file=sys.stderr)
    if citations:
        print("Remembered:")
    for c in citations:
        print(f"  - {_moment_line(c.moment)}")
        if c.thumbnail:
            print(f"    key frame: {c.thumbnail}")
    return ExitCode.OK


class _SpokenWaiter:
    """Waits until an answer has been said (AnswerSpoken)."""

    def __init__(self, bus: Any) -> None:
        from app.core.events import AnswerSpoken

        self._done = threading.Event()
        self._kind = AnswerSpoken
        bus.subscribe(self._on)

    def _on(self, event: object) -> None:
        if isinstance(event, self._kind):
            self._done.set()

    def wait(self, timeout_s: float) -> bool:
        return self._done.wait(timeout_s)


def cmd_listen(args: argparse.Namespace) -> int:
    """The voice loop without a window: hears, remembers, answers the wake name out loud."""
    from app.core.events import AnswerFinished, AnswerSpoken, BargeIn, UtteranceTranscribed
    from app.pipeline.factory import open_live_sources

    with open_session(args, background=True) as s:
        cfg = s.cfg
        camera = "" if args.camera is None else args.camera
        microphone = cfg.capture.microphone if args.microphone is None else args.microphone
        audio, video, problems = open_live_sources(cfg, camera=camera, microphone=microphone)
        if audio is None:
            raise InputError("nothing to listen to: no microphone could be opened (see above)")
        speaker = s.service.open_voice()
        name = cfg.assistant.wake_name

        def say(line: str) -> None:
            print(line, flush=True)

        def show(event: object) -> None:
            if isinstance(event, UtteranceTranscribed) and event.text and not event.retry:
                say(f"heard: {event.text}")
            elif isinstance(event, AnswerFinished):
                a = event.answer
                say(f"{name}: {getattr(a, 'text', '')}"
                    + (" [stopped]" if getattr(a, "interrupted", False) else ""))
            elif isinstance(event, BargeIn):
                say(f"(you spoke over answer {event.question_id}: stopped)")
            elif isinstance(event, AnswerSpoken) and event.interrupted:
                say(f"(said before it was stopped: {event.said or 'nothing'})")

        s.service.bus.subscribe(show)

        def started(ok: bool) -> None:
            voice = (f"answers are said by {speaker.name}" if speaker.available
                     else f"answers are shown only ({speaker.reason})")
            print(f"daybook: listening on {audio.name}; ask “{name}, …”; {voice}; Ctrl-C stops"
                  if ok else f"daybook: warning: {audio.name} did not start delivering; see the "
                  "log", file=sys.stderr, flush=True)

        pipe = s.service.build(audio=audio, video=video)
        summary = _run(pipe, total_s=None, duration_s=args.duration, on_started=started)
        summary["missing"] = problems
        summary["voice"] = {"speaker": speaker.name, "barge_ins": s.service.voice.barge_ins,
                            "answered": s.service.answers.answered}
    return _report(summary, args.json, "Listened", source_failed=ExitCode.FAILURE)


def _moment_line(m: Any) -> str:
    from app.reasoning.prompt import describe

    t0, t1 = iso(m.t0_s), iso(m.t1_s)
    return f"{t0[:10]} {t0[11:19]}–{t1[11:19]}  {describe(m)}"


def cmd_timeline(args: argparse.Namespace) -> int:
    from app.reasoning.base import Citation

    day = args.day or local_day(time.time())
    try:
        time.strptime(day, "%Y-%m-%d")
    except ValueError as exc:
        raise InputError(f"--day must look like 2026-11-24, got {day!r}") from exc
    with open_session(args, records=False) as s:
        service = s.service
        items = [Citation(m, 0.0, service.key_frames.absolute(m.key_frame) if m.key_frame
                          else None).to_json()
                 for m in service.moments_on_day(day)]
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


def _export_range(args: argparse.Namespace) -> tuple[float, float]:
    """--day, or --from and --to (default: today)."""
    from app.core.timefmt import day_bounds

    if args.day and (args.start or args.end):
        raise InputError("give either --day or --from and --to, not both")
    if args.start or args.end:
        if not (args.start and args.end):
            raise InputError("--from and --to go together (e.g. --from 2026-11-24T09:00 "
                             "--to 2026-11-24T12:00)")
        try:
            t0_s = parse_iso(args.start)
        except ValueError as exc:
            raise InputError(f"--from: {exc}") from exc
        try:
            t1_s = parse_iso(args.end)
        except ValueError as exc:
            raise InputError(f"--to: {exc}") from exc
        if t1_s <= t0_s:
            raise InputError(f"--to ({args.end}) must come after --from ({args.start})")
        return t0_s, t1_s
    day = args.day or local_day(time.time())
    try:
        return day_bounds(day)
    except ValueError as exc:
        raise InputError(f"--day must look like 2026-11-24, got {day!r}") from exc


def cmd_export(args: argparse.Namespace) -> int:
    from app.memory.export import check_out_dir, export_range, range_label

    t0_s, t1_s = _export_range(args)
    label = range_label(t0_s, t1_s)
    out_dir = Path(args.out).expanduser().resolve()
    check_out_dir(out_dir, label, force=args.force, create=False)  # before the store opens
    with open_session(args, records=False) as s:
        result = export_range(s.service.store, s.service.key_frames, t0_s,
                              t1_s, out_dir, label, force=args.force)
    if args.json:
        print(json.dumps({"range": {"label": label, "t0": iso(t0_s), "t1": iso(t1_s)},
                          **result.to_json()}, indent=2, ensure_ascii=False))
        return ExitCode.OK
    if not result.moments:
        print(f"Nothing remembered from {iso(t0_s)} to {iso(t1_s)}; wrote {result.markdown} "
              "saying so.")
        return ExitCode.OK
    frames = f", {result.key_frames} key frame{'s' * (result.key_frames != 1)}"
    gone = (f" ({result.missing_key_frames} key frame(s) missing)"
            if result.missing_key_frames else "")
    print(f"Exported {result.moments} moment{'s' * (result.moments != 1)}"
          f"{frames}{gone} to {result.markdown} and {result.json.name}")
    return ExitCode.OK


def _model_manager(args: argparse.Namespace) -> Any:
    from app.pipeline.factory import open_model_manager

    # Listing or removing models must work on a full disk (a download checks space itself).
    b = boot(args.config, args.data_dir, verbose=args.verbose, records=False)
    return open_model_manager(b.cfg, b.paths)


def _size(n: int) -> str:
    return fmt_bytes(n) if n else "?"


def cmd_models(args: argparse.Namespace) -> int:
    from app.models.selection import describe_choices

    mgr = _model_manager(args)
    action = args.models_command
    if action == "list":
        installed = mgr.installed()
        rows = []
        for e in mgr.catalog.values():
            m = installed.get(e.name)
            rows.append({"name": e.name, "role": e.role, "size_bytes": e.size_bytes,
                         "installed": m is not None, "default": e.default,
                         "verified_hash": e.verified, "partial_bytes": mgr.partial_bytes(e.name),
                         "licence": e.licence, "description": e.description,
                         "requires": list(e.requires), "path": str(mgr.path(m)) if m else None})
        for m in installed.values():
            if m.name not in mgr.catalog:
                rows.append({"name": m.name, "role": m.role, "size_bytes": m.size_bytes,
                             "installed": True, "default": False, "verified_hash": False,
                             "partial_bytes": 0, "licence": "(your own file)",
                             "description": f"imported {m.installed_at}", "requires": [],
                             "path": str(mgr.path(m))})
        in_use = describe_choices(mgr)
        if args.json:
            print(json.dumps({"models_dir": str(mgr.dir), "models": rows, "in_use": in_use},
                             indent=2))
            return ExitCode.OK
        print(f"Models folder: {mgr.dir}")
        for r in rows:
            mark = "installed" if r["installed"] else (
                f"partial {_size(r['partial_bytes'])}" if r["partial_bytes"] else "-")
            flags = ("default " if r["default"] else "") + ("" if r["verified_hash"] else
                                                            "(hash unpublished) ")
            print(f"  {r['name']:34} {r['role']:9} {_size(r['size_bytes']):>11}  {mark:18} "
                  f"{flags}{r['description']}")
        print("In use:")
        for role, text in in_use.items():
            print(f"  {role:9} {text}")
        return ExitCode.OK
    if action == "download":
        if args.name.startswith(("https://", "http://")):
            if not args.role:
                raise InputError("downloading from an address needs --role (e.g. --role llm)")
            return _download(mgr, args.name, role=args.role, as_name=args.as_name)
        return _download(mgr, args.name)
    if action == "import":
        model = mgr.import_file(Path(args.path), args.role, args.name)
        state = "matches the catalog's published hash" if model.verified else \
            f"sha256 {model.sha256}"
        print(f"Imported {model.name} ({model.role}, {_size(model.size_bytes)}): {state}.")
        return ExitCode.OK
    model = mgr.remove(args.name)
    print(f"Removed {model.name} ({model.file}).")
    return ExitCode.OK


def _download(mgr: Any, name: str, role: str | None = None, as_name: str | None = None) -> int:
    from app.models.download import Progress

    show = sys.stderr.isatty()
    current = {"file": name}

    def on_start(entry: Any) -> None:
        current["file"] = entry.file
        resume = mgr.partial_bytes(entry.name)
        note = f", resuming at {_size(resume)}" if resume else ""
        print(f"Downloading {entry.name} ({_size(entry.size_bytes)}{note}) from {entry.url}",
              file=sys.stderr)

    def on_progress(p: Progress) -> None:
        if not show:
            return
        frac = p.done_bytes / p.total_bytes if p.total_bytes else 0.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r[{bar:<30}] {frac:6.1%} {_size(p.done_bytes):>11} "
                         f"{p.rate_bps / 1e6:6.1f} MB/s ")
        sys.stderr.flush()

    try:
        if role is not None:
            print(f"Downloading {name} (no published checksum: its sha256 will be recorded)",
                  file=sys.stderr)
            done = [mgr.download_url(name, role, as_name, progress=on_progress)]
        else:
            done = mgr.download(name, progress=on_progress, cancel=None, on_start=on_start)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the partial {current['file']} is kept; run the same command "
              "again to resume", file=sys.stderr)
        return ExitCode.INTERRUPTED
    finally:
        if show:
            sys.stderr.write("\n")
    for m in done:
        check = "sha256 verified" if m.verified else f"sha256 {m.sha256} (no published hash)"
        print(f"Installed {m.name} → {mgr.path(m)} ({check}).")
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
    gui = parser.add_argument_group("desktop app (when no command is given)")
    gui.add_argument("--replay", metavar="VIDEO", help="use a video file as the live camera")
    gui.add_argument("--audio", metavar="WAV", help="use a WAV file as the live microphone")
    gui.add_argument("--self-test", action="store_true",
                     help="open the window, run the demo recording, check it works, exit 0/1")
    gui.add_argument("--self-test-s", type=float, default=60.0, help=argparse.SUPPRESS)
    gui.add_argument("--screenshot", metavar="PNG",
                     help="with --self-test: save the window there at the end")
    gui.add_argument("--exit-after-show", action="store_true", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ingest", parents=[common], help="remember a recording (video and/or WAV)")
    p.add_argument("--video", help="video file (or camera index / stream URL)")
    p.add_argument("--audio", help="WAV file (any rate, mono or stereo)")
    p.add_argument("--start", help="wall-clock time the recording began, ISO-8601 (default: now)")
    p.add_argument("--realtime", action="store_true", help="replay at real-time pace")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("record", parents=[common],
                       help="remember what the camera and microphone pick up, live (headless)")
    p.add_argument("--camera", help='camera index, file or stream URL; "" for none '
                   "(default: from the config, 0)")
    p.add_argument("--microphone", help='input device name or index; "" for none '
                   "(default: from the config, the system default)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("ask", parents=[common], help="ask what happened")
    p.add_argument("question")
    p.add_argument("--json", action="store_true")
    p.add_argument("--speak", action="store_true", help="also say the answer out loud")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("listen", parents=[common],
                       help="the voice loop, no window: hears, remembers, answers out loud")
    p.add_argument("--microphone", help='input device name or index (default: [capture])')
    p.add_argument("--camera", help='also record a camera (index, file or stream URL)')
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    p.set_defaults(func=cmd_listen)

    p = sub.add_parser("models", parents=[common], help="list, download, import, remove models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    m = msub.add_parser("list", parents=[common], help="the catalog, what is installed and in use")
    m.add_argument("--json", action="store_true")
    m = msub.add_parser("download", parents=[common],
                        help="download a catalog model, or a file from an https address (resumes)")
    m.add_argument("name", help="catalog name, or an https:// address (then --role is needed)")
    m.add_argument("--role", choices=ROLES, help="for an address: what the model is for")
    m.add_argument("--as", dest="as_name", help="for an address: the name to list it under")
    m = msub.add_parser("import", parents=[common], help="install a model file you already have")
    m.add_argument("path")
    m.add_argument("--role", required=True, choices=ROLES)
    m.add_argument("--name", help="name to list it under (default: from the file name)")
    m = msub.add_parser("remove", parents=[common], help="delete an installed model")
    m.add_argument("name")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("timeline", parents=[common], help="list a day's moments in order")
    p.add_argument("--day", help="YYYY-MM-DD (default: today)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_timeline)

    p = sub.add_parser("export", parents=[common],
                       help="write a day (or a time range) as Markdown + JSON with key frames")
    p.add_argument("--day", help="YYYY-MM-DD (default: today)")
    p.add_argument("--from", dest="start", metavar="TIME",
                   help="start, ISO-8601, local time unless it has an offset")
    p.add_argument("--to", dest="end", metavar="TIME", help="end (not included), ISO-8601")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    p.add_argument("--force", action="store_true", help="overwrite an export of the same range")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from app.ui.app import run_gui

        try:
            return run_gui(args)
        except DaybookError as exc:
            print(f"daybook: error: {exc}", file=sys.stderr)
            return int(exc.exit_code)
        except Exception as exc:
            return _failed(exc, args)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return int(args.func(args))
    except DaybookError as exc:
        print(f"daybook: error: {exc}", file=sys.stderr)
        if logging.getLogger().handlers:  # else logging's last resort would print it again
            log.error("%s", exc, extra={"console": False})  # already printed above
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("daybook: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:
        return _failed(exc, args)


def _failed(exc: Exception, args: argparse.Namespace) -> int:
    """Anything not foreseen: one line on stderr, the traceback in the log file (and on the
    console with -v), exit 1."""
    import logging.handlers

    if isinstance(exc, OSError) and exc.strerror:  # e.g. the disk filled up during a run
        what = exc.strerror + (f": {exc.filename}" if exc.filename else "")
    else:
        what = f"unexpected {type(exc).__name__}: {exc}"
    files = [h.baseFilename for h in logging.getLogger().handlers
             if isinstance(h, logging.handlers.RotatingFileHandler)]
    where = f"details in {files[0]}" if files else "run with -v for details"
    print(f"daybook: error: {what} ({where})", file=sys.stderr)
    if logging.getLogger().handlers:  # without handlers logging would print the traceback
        log.error("%s", what, exc_info=exc, extra={"console": bool(args.verbose)})
    elif args.verbose:
        import traceback

        traceback.print_exception(exc)
    return ExitCode.FAILURE
