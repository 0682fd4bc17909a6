"""Exporting memory as a day book: the real Chroma store on a temp dir, real key-frame JPEGs, and
the `export` command end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import ExitCode
from app.core.paths import DataPaths
from app.core.timefmt import day_bounds, parse_iso
from app.memory.base import Moment
from app.memory.chroma_store import ChromaMemoryStore
from app.memory.embed_lexical import LexicalEmbedder
from app.memory.export import (
    ExportExistsError,
    export_range,
    moment_from_json,
    range_label,
)
from app.memory.integrate import day_id, hour_id
from app.memory.keyframes import KeyFrameDir
from app.pipeline.factory import index_dir

DAY = "2026-11-20"
T0, T1 = day_bounds(DAY)
LEX = LexicalEmbedder.name
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


def at(hour: int, minute: int = 0, second: int = 0) -> float:
    return T0 + hour * 3600 + minute * 60 + second


def fill(store: ChromaMemoryStore, frames: KeyFrameDir) -> list[Moment]:
    """Four moments on DAY, one the next day, and the summaries of two hours and the day."""
    rng = np.random.default_rng(3)
    said = [
        Moment(f"utt-{i}", "utterance", t, t + 3, text=text, sound=sound)
        for i, (t, text, sound) in enumerate([
            (at(9, 5), "I had scrambled eggs and coffee for breakfast", "speech"),
            (at(11, 31), "", "music"),
            (at(11, 40), "the meeting with Alice is at three o'clock", "speech"),
        ])
    ]
    seen = []
    for i, t in enumerate([at(9, 0, 12), at(11, 30)]):
        image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        seen.append(Moment(f"clip-{i}", "clip", t, t + 8, text="a person at a desk" if i else "",
                           key_frame=frames.write(image, t, t + 8), n_frames=8))
    later = Moment("utt-later", "utterance", T1 + 60, T1 + 63, text="the next morning",
                   sound="speech")
    summaries = [
        Moment(hour_id(at(9)), "summary", at(9), at(10),
               text="09:00–10:00: about breakfast, eggs. 1 thing said."),
        Moment(hour_id(at(11)), "summary", at(11), at(12),
               text="11:00–12:00: about meeting, alice. 2 things said."),
        Moment(day_id(DAY), "summary", T0, T1,
               text="Friday 20 November 2026, 09:00–12:00, 2 hours remembered."),
    ]
    texts = [*said, later, *summaries]
    vectors = LexicalEmbedder().embed([m.text or "-" for m in texts])
    clip_vector = np.ones(256, np.float32) / 16
    captions = {m.id: LexicalEmbedder().embed([m.text])[0] for m in seen if m.text}
    store.add([*zip(texts, vectors, strict=True), *((m, clip_vector) for m in seen)], LEX,
              captions)
    return sorted([*said, *seen], key=lambda m: m.t0_s)


@pytest.fixture
def filled(tmp_path: Path):
    store = ChromaMemoryStore(tmp_path / "chroma")
    frames = KeyFrameDir(tmp_path / "keyframes")
    moments = fill(store, frames)
    yield store, frames, moments
    store.close()


def test_day_book_markdown_json_and_key_frames(tmp_path: Path, filled):
    store, frames, moments = filled
    out = tmp_path / "export"
    result = export_range(store, frames, T0, T1, out, range_label(T0, T1))
    assert result.markdown == out / "daybook-2026-11-20.md"
    assert result.json == out / "daybook-2026-11-20.json"
    assert (result.moments, result.summaries, result.key_frames) == (5, 3, 2)
    assert sorted(p.name for p in out.iterdir()) == [
        "daybook-2026-11-20.json", "daybook-2026-11-20.md", "keyframes"]  # no temp left

    md = result.markdown.read_text(encoding="utf-8")
    assert md.startswith("# Daybook — Friday 20 November 2026\n")
    for m in moments:
        if m.text:
            assert m.text in md
    assert "heard (music)" in md
    assert "the next morning" not in md
    summary_at = md.index("Friday 20 November 2026, 09:00–12:00, 2 hours remembered.")
    hour_at = md.index("09:00–10:00: about breakfast, eggs.")
    assert summary_at < hour_at < md.index("## Moments") < md.index("scrambled eggs")
    # Time order, with the times shown.
    shown = [md.index(f"**{t}") for t in ("09:00:12", "09:05:00", "11:30:00", "11:31:00",
                                            "11:40:00")]
    assert shown == sorted(shown)
    links = IMAGE_LINK.findall(md)
    assert len(links) == 2
    for link, clip in zip(links, [m for m in moments if m.kind == "clip"], strict=True):
        copy = out / link
        assert link.startswith("keyframes/") and copy.is_file()
        assert copy.read_bytes() == frames.absolute(clip.key_frame).read_bytes()

    doc = json.loads(result.json.read_text(encoding="utf-8"))
    assert doc["range"]["t0_s"] == T0 and doc["range"]["t1_s"] == T1
    assert parse_iso(doc["exported_at"]) > 0
    assert [moment_from_json(d) for d in doc["moments"]] == moments  # every field round-trips
    assert [moment_from_json(d).id for d in doc["summaries"]] == [
        day_id(DAY), hour_id(at(9)), hour_id(at(11))]
    by_id = {d["id"]: d for d in doc["moments"]}
    assert sorted(doc["key_frames"]) == sorted(links)
    assert [by_id[m.id]["key_frame_file"] for m in moments if m.kind == "clip"] == links
    assert by_id["utt-0"]["key_frame_file"] is None


def test_a_range_holds_only_moments_starting_in_it(tmp_path: Path, filled):
    store, frames, _ = filled
    t0, t1 = at(9, 5), at(11, 31)  # the 11:31 moment starts at t1: left out (half-open)
    result = export_range(store, frames, t0, t1, tmp_path / "x", range_label(t0, t1))
    assert result.markdown.name == "daybook-2026-11-20T0905_2026-11-20T1131.md"
    doc = json.loads(result.json.read_text(encoding="utf-8"))
    assert [d["id"] for d in doc["moments"]] == ["utt-0", "clip-1"]
    assert [d["id"] for d in doc["summaries"]] == [hour_id(at(11))]  # 09:00's starts before
    assert len(IMAGE_LINK.findall(result.markdown.read_text(encoding="utf-8"))) == 1
    assert [p.name for p in (tmp_path / "x" / "keyframes").iterdir()] == [
        Path(doc["key_frames"][0]).name]


def test_never_overwrites_silently(tmp_path: Path, filled):
    store, frames, _ = filled
    out = tmp_path / "export"
    first = export_range(store, frames, T0, T1, out, DAY)
    first.markdown.write_text("my notes", encoding="utf-8")
    with pytest.raises(ExportExistsError, match="--force"):
        export_range(store, frames, T0, T1, out, DAY)
    assert first.markdown.read_text(encoding="utf-8") == "my notes"
    again = export_range(store, frames, T0, T1, out, DAY, force=True)
    assert again.markdown.read_text(encoding="utf-8").startswith("# Daybook")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_an_empty_range_still_writes_saying_so(tmp_path: Path, filled):
    store, frames, _ = filled
    t0, t1 = day_bounds("2026-11-23")
    result = export_range(store, frames, t0, t1, tmp_path / "e", range_label(t0, t1))
    assert result.moments == 0 and result.key_frames == 0
    assert "Nothing was remembered on Monday 23 November 2026." in result.markdown.read_text(
        encoding="utf-8")
    assert json.loads(result.json.read_text(encoding="utf-8"))["moments"] == []


def test_markdown_special_characters_stay_text(tmp_path: Path):
    store = ChromaMemoryStore(tmp_path / "chroma")
    try:
        m = Moment("utt-x", "utterance", at(10), at(10) + 2, text="# not a *heading* [x](y)",
                   sound="speech")
        store.add([(m, LexicalEmbedder().embed([m.text])[0])], LEX)
        result = export_range(store, KeyFrameDir(tmp_path / "k"), T0, T1, tmp_path / "o", DAY)
    finally:
        store.close()
    md = result.markdown.read_text(encoding="utf-8")
    assert r"\# not a \*heading\* \[x\](y)" in md
    assert not IMAGE_LINK.findall(md)


@pytest.fixture
def data_dir(tmp_path: Path) -> tuple[Path, list[Moment]]:
    """A data dir the way the app lays it out, filled, its store closed again."""
    data = tmp_path / "data"
    paths = DataPaths(data).ensure(min_free_bytes=0)
    store = ChromaMemoryStore(paths.chroma, index_dir=index_dir(paths))
    try:
        moments = fill(store, KeyFrameDir(paths.key_frames))
    finally:
        store.close()
    return data, moments


def test_cli_export_day_end_to_end(cli, tmp_path: Path, data_dir):
    data, moments = data_dir
    out = tmp_path / "book"
    r = cli("export", "--day", DAY, "--out", str(out), "--json", data_dir=data)
    assert r.code == 0, r.err
    summary = r.json()
    assert (summary["moments"], summary["summaries"], summary["key_frames"]) == (5, 3, 2)
    md = Path(summary["markdown"]).read_text(encoding="utf-8")
    assert "I had scrambled eggs and coffee for breakfast" in md
    for link in IMAGE_LINK.findall(md):
        assert (out / link).read_bytes() == (
            DataPaths(data).key_frames / next(m.key_frame for m in moments
                                              if m.key_frame and
                                              Path(m.key_frame).name == Path(link).name)
        ).read_bytes()

    # Again: refused, with a message and the input exit code; --force overwrites.
    r = cli("export", "--day", DAY, "--out", str(out), data_dir=data)
    assert r.code == ExitCode.INPUT
    assert "already holds an export" in r.err and "--force" in r.err
    r = cli("export", "--day", DAY, "--out", str(out), "--force", data_dir=data)
    assert r.code == 0, r.err
    assert "Exported 5 moments, 2 key frames" in r.out


def test_cli_export_range_and_bad_input(cli, tmp_path: Path, data_dir):
    data, _ = data_dir
    out = tmp_path / "book"
    r = cli("export", "--from", f"{DAY}T11:00", "--to", f"{DAY}T12:00", "--out", str(out),
            "--json", data_dir=data)
    assert r.code == 0, r.err
    doc = json.loads(Path(r.json()["json"]).read_text(encoding="utf-8"))
    assert [d["id"] for d in doc["moments"]] == ["clip-1", "utt-1", "utt-2"]

    r = cli("export", "--day", "2026-13-40", "--out", str(out), data_dir=data)
    assert r.code == ExitCode.INPUT and "--day must look like 2026-11-24" in r.err
    r = cli("export", "--from", "yesterday", "--to", f"{DAY}T12:00", "--out", str(out),
            data_dir=data)
    assert r.code == ExitCode.INPUT and "--from: 'yesterday' is not a date" in r.err
    r = cli("export", "--from", f"{DAY}T12:00", "--to", f"{DAY}T11:00", "--out", str(out),
            data_dir=data)
    assert r.code == ExitCode.INPUT and "must come after" in r.err

    r = cli("export", "--day", "2026-11-23", "--out", str(out), data_dir=data)
    assert r.code == 0, r.err
    assert "Nothing remembered" in r.out
    assert (out / "daybook-2026-11-23.md").is_file()
