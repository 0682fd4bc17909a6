"""Export a stretch of memory as a day book: Markdown to read, JSON for programs, and copies of
the key frames the Markdown shows.

`export_range` writes into a folder the user chose:

    daybook-<label>.md     the day's and hours' summaries, then every moment in time order
    daybook-<label>.json   the same, machine-readable (every field of every moment)
    keyframes/<file>.jpg   the key frames of the exported clips (shared by exports in the folder)

Everything is written into a temporary folder beside them first and renamed into place, the
Markdown last, so an interrupted export leaves no half-written day book. No Qt here: the CLI and
the window (in the background) both call it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import DaybookError, ExitCode
from app.core.timefmt import day_bounds, iso, local_day, local_dt
from app.memory.base import LIVE_KINDS, MemoryStore, Moment
from app.memory.keyframes import KeyFrameDir

FORMAT = "daybook-export/1"
KEY_FRAMES = "keyframes"  # the folder, relative to the export's files
_MOMENT_FIELDS = tuple(f.name for f in dataclasses.fields(Moment))
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


class ExportExistsError(DaybookError):
    """An export of this range is already in the folder (overwritten only when asked)."""

    exit_code = ExitCode.INPUT


class ExportFolderError(DaybookError):
    """The folder to export into cannot be used."""

    exit_code = ExitCode.INPUT


@dataclass(frozen=True)
class ExportResult:
    markdown: Path
    json: Path
    key_frames_dir: Path
    moments: int  # utterances and clips
    summaries: int
    key_frames: int  # key-frame files copied
    missing_key_frames: int = 0  # clips whose key-frame file was gone

    def to_json(self) -> dict[str, Any]:
        return {
            "markdown": str(self.markdown),
            "json": str(self.json),
            "key_frames_dir": str(self.key_frames_dir),
            "moments": self.moments,
            "summaries": self.summaries,
            "key_frames": self.key_frames,
            "missing_key_frames": self.missing_key_frames,
        }


def is_whole_day(t0_s: float, t1_s: float) -> bool:
    return (t0_s, t1_s) == day_bounds(local_day(t0_s))


def range_label(t0_s: float, t1_s: float) -> str:
    """For file names: `2026-11-20` for a whole local day, else `2026-11-20T0900_2026-11-20T1200`
    (no colons: they are not allowed in Windows file names)."""
    if is_whole_day(t0_s, t1_s):
        return local_day(t0_s)

    def stamp(t_s: float) -> str:
        d = local_dt(t_s)
        return d.strftime("%Y-%m-%dT%H%M" + ("%S" if d.second else ""))

    return f"{stamp(t0_s)}_{stamp(t1_s)}"


def export_paths(out_dir: Path, label: str) -> tuple[Path, Path]:
    """The Markdown and JSON files an export of `label` writes."""
    return out_dir / f"daybook-{label}.md", out_dir / f"daybook-{label}.json"


def moment_to_json(m: Moment, key_frame_file: str | None = None) -> dict[str, Any]:
    """Every field of the moment, its times also as ISO-8601, and its exported key frame."""
    return {**dataclasses.asdict(m), "t0": iso(m.t0_s), "t1": iso(m.t1_s),
            "key_frame_file": key_frame_file}


def moment_from_json(data: dict[str, Any]) -> Moment:
    """The moment back from `moment_to_json` (the added keys are ignored)."""
    return Moment(**{k: data[k] for k in _MOMENT_FIELDS if k in data})


def export_range(store: MemoryStore, key_frames: KeyFrameDir, t0_s: float, t1_s: float,
                 out_dir: Path, label: str, *, force: bool = False) -> ExportResult:
    """Export the moments starting in [t0_s, t1_s) (and the summaries of that stretch) into
    `out_dir`. Refuses (ExportExistsError) when this label's files are there, unless `force`."""
    if not label or "/" in label or "\\" in label or label.startswith("."):
        raise ValueError(f"not a file-name label: {label!r}")
    out_dir = Path(out_dir)
    md_path, json_path = export_paths(out_dir, label)
    check_out_dir(out_dir, label, force=force)
    moments = store.moments_between(t0_s, t1_s, LIVE_KINDS)
    summaries = store.moments_between(t0_s, t1_s, ("summary",))
    tmp = Path(tempfile.mkdtemp(prefix=f".daybook-export-{label}-", dir=out_dir))
    try:
        (tmp / KEY_FRAMES).mkdir()
        frames, missing = _copy_key_frames(moments, key_frames, tmp / KEY_FRAMES)
        exported_s = time.time()
        doc = {
            "format": FORMAT,
            "range": {"label": label, "t0": iso(t0_s), "t1": iso(t1_s),
                      "t0_s": t0_s, "t1_s": t1_s},
            "exported_at": iso(exported_s),
            "counts": {"moments": len(moments), "summaries": len(summaries),
                       "key_frames": len(set(frames.values())), "missing_key_frames": missing},
            "summaries": [moment_to_json(s) for s in summaries],
            "moments": [moment_to_json(m, frames.get(m.id)) for m in moments],
            "key_frames": sorted(set(frames.values())),
        }
        _write(tmp / json_path.name, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        _write(tmp / md_path.name, render_markdown(t0_s, t1_s, moments, summaries, frames,
                                                   exported_s))
        # Into place: key frames first, then the JSON, the Markdown last.
        check_out_dir(out_dir, label, force=force)
        (out_dir / KEY_FRAMES).mkdir(exist_ok=True)
        for entry in (tmp / KEY_FRAMES).iterdir():
            os.replace(entry, out_dir / KEY_FRAMES / entry.name)
        os.replace(tmp / json_path.name, json_path)
        os.replace(tmp / md_path.name, md_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult(md_path, json_path, out_dir / KEY_FRAMES, len(moments), len(summaries),
                        len(set(frames.values())), missing)


def check_out_dir(out_dir: Path, label: str, *, force: bool = False,
                  create: bool = True) -> None:
    """Raise ExportFolderError when `out_dir` cannot hold an export, ExportExistsError when it
    holds one of `label` already (unless `force`). Creates the folder unless `create` is off."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportFolderError(f"cannot export into {out_dir}: it is a file, not a folder")
    if create:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportFolderError(f"cannot export into {out_dir}: "
                                    f"{exc.strerror or exc}") from exc
    if not force:
        there = [p.name for p in export_paths(out_dir, label) if p.exists()]
        if there:
            raise ExportExistsError(
                f"{out_dir} already holds an export of this range ({', '.join(there)}); "
                "choose another folder, or overwrite it with --force")


def _copy_key_frames(moments: list[Moment], key_frames: KeyFrameDir,
                     into: Path) -> tuple[dict[str, str], int]:
    """Copy each clip's key frame; returns {moment id: path relative to the export} and how many
    clips had no key-frame file."""
    out: dict[str, str] = {}
    missing = 0
    for m in moments:
        if m.kind != "clip":
            continue
        source = (key_frames.absolute(m.key_frame) if m.key_frame
                  else key_frames.near(m.t0_s, m.t1_s))
        if source is None or not source.is_file():
            missing += 1
            continue
        target = into / source.name
        if not target.exists():
            shutil.copyfile(source, target)
        out[m.id] = f"{KEY_FRAMES}/{source.name}"
    return out, missing


def _write(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


# --- Markdown ------------------------------------------------------------------------------------


def _md(text: str) -> str:
    """Text as literal Markdown on one line."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _hms(t_s: float) -> str:
    return local_dt(t_s).strftime("%H:%M:%S")


def _title(t0_s: float, t1_s: float) -> str:
    if is_whole_day(t0_s, t1_s):
        return local_dt(t0_s).strftime("%A %d %B %Y")
    a, b = local_dt(t0_s), local_dt(t1_s)
    end = b.strftime("%H:%M") if a.date() == b.date() else b.strftime("%A %d %B %Y %H:%M")
    return f"{a.strftime('%A %d %B %Y %H:%M')} – {end}"


def _line(m: Moment, frame: str | None) -> list[str]:
    when = f"**{_hms(m.t0_s)}–{_hms(m.t1_s)}**"
    sound = f" ({_md(m.sound)})" if m.sound else ""
    if m.kind == "utterance":
        said = f": “{_md(m.text)}”" if m.text.strip() else ""
        lines = [f"- {when} heard{sound}{said}"]
        if m.question:
            lines.append(f"  - asked Daybook: “{_md(m.question)}”")
        return lines
    seen = f": {_md(m.text)}" if m.text.strip() else ""
    lines = [f"- {when} seen{sound}{seen}"]
    lines.append(f"\n  ![]({frame})\n" if frame else "  - (the key frame is missing)")
    return lines


def render_markdown(t0_s: float, t1_s: float, moments: list[Moment], summaries: list[Moment],
                    frames: dict[str, str], exported_s: float) -> str:
    """The day book: title, summaries (the day's, then each hour's), moments grouped by hour."""
    heard = sum(m.kind == "utterance" for m in moments)
    out = [f"# Daybook — {_title(t0_s, t1_s)}", "",
           f"Exported {iso(exported_s)} · {len(moments)} moment{'s' * (len(moments) != 1)}"
           f" ({heard} heard, {len(moments) - heard} seen)", ""]
    days = [s for s in summaries if s.id.startswith("sum-day-")]
    hours = [s for s in summaries if not s.id.startswith("sum-day-")]
    if summaries:
        out += ["## Summary", ""]
        out += [f"{_md(s.text)}\n" for s in days]
        out += [f"- {_md(s.text)}" for s in hours]
        out.append("")
    if not moments:
        when = f"on {_title(t0_s, t1_s)}" if is_whole_day(t0_s, t1_s) else \
            f"between {_title(t0_s, t1_s).replace(' – ', ' and ')}"
        out += ["## Moments", "", f"Nothing was remembered {when}.", ""]
        return "\n".join(out)
    out.append("## Moments")
    several_days = local_day(t0_s) != local_day(max(t0_s, t1_s - 0.001))
    hour: dt.datetime | None = None
    for m in moments:
        start = local_dt(m.t0_s).replace(minute=0, second=0, microsecond=0)
        if start != hour:
            hour = start
            out += ["", f"### {start.strftime('%H:00')}–{(start + dt.timedelta(hours=1)):%H:00}"
                    + (f" ({start:%Y-%m-%d})" if several_days else ""), ""]
        out += _line(m, frames.get(m.id))
    out.append("")
    return "\n".join(out)
