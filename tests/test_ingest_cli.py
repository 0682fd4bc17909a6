"""End to end through the CLI, on real parts: ffmpeg video, espeak-ng speech, Silero VAD,
Moonshine, Chroma on disk. Every command is a new process, so each one is also a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.lock import DataDirLock
from app.core.timefmt import parse_iso
from tests.conftest import DURATION_S, LINES, START, START_S, Media, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ingested(media: Media, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    data_dir = tmp_path_factory.mktemp("data")
    res = run_cli("ingest", "--video", str(media.video), "--audio", str(media.wav),
                  "--start", START, "--json", data_dir=data_dir)
    assert res.code == 0, res.err
    return data_dir, res.json()


def test_ingest_summary_counts_what_was_recorded(ingested: tuple[Path, dict]) -> None:
    data_dir, summary = ingested
    assert summary["utterances"] == len(LINES)
    assert summary["clips"] == 3  # one per scene of the generated video
    assert summary["seconds_ingested"] == pytest.approx(DURATION_S, abs=1.1)
    assert summary["wall_seconds"] > 0
    assert summary["errors"] == []
    assert summary["counters"]["audio.dropped"] == 0
    assert (data_dir / "memory" / "chroma").is_dir()
    assert oct((data_dir).stat().st_mode & 0o777) == oct(0o700)


@pytest.mark.parametrize(("question", "line_index", "word"), [
    ("what did I have for breakfast?", 0, "breakfast"),
    ("when is the meeting", 1, "meeting"),
    ("what should I water", 2, "water"),
])
def test_ask_returns_the_utterance_with_its_time(ingested: tuple[Path, dict], question: str,
                                                 line_index: int, word: str) -> None:
    data_dir, _ = ingested
    res = run_cli("ask", question, "--json", data_dir=data_dir)
    assert res.code == 0, res.err
    answer = res.json()
    top = answer["citations"][0]
    assert top["kind"] == "utterance"
    assert word in top["text"]
    spoken_at = START_S + LINES[line_index][0]
    # The segment starts at most the pre-roll (0.3 s) plus one VAD trigger window before speech.
    assert parse_iso(top["t0"]) == pytest.approx(spoken_at, abs=0.6)
    assert parse_iso(top["t1"]) > parse_iso(top["t0"]) + 1.0
    # Said as a sentence with when, by the extractive answer (no language model installed).
    assert answer["reasoner"] == "extractive (no language model)"
    assert " you said: " in answer["answer"] and word in answer["answer"]
    assert answer["answer"].count("\n") == 0
    # The key frame of the scene on screen at that moment comes with it.
    assert top["thumbnail"] and Path(top["thumbnail"]).is_file()
    scene = int(LINES[line_index][0] // 8.0)
    assert Path(top["thumbnail"]).name.startswith(str(round((START_S + 8.0 * scene) * 1000)))


def test_ask_about_something_never_said_finds_nothing(ingested: tuple[Path, dict]) -> None:
    data_dir, _ = ingested
    answer = run_cli("ask", "kangaroo saxophone", "--json", data_dir=data_dir).json()
    assert answer["citations"] == []
    assert "don't remember" in answer["answer"]


def test_timeline_lists_the_day_in_order_after_restart(ingested: tuple[Path, dict]) -> None:
    data_dir, _ = ingested
    res = run_cli("timeline", "--day", START[:10], "--json", data_dir=data_dir)
    assert res.code == 0, res.err
    moments = res.json()["moments"]
    kinds = [m["kind"] for m in moments]
    assert kinds.count("clip") == 3 and kinds.count("utterance") == 3
    t0s = [parse_iso(m["t0"]) for m in moments]
    assert t0s == sorted(t0s)
    for m in moments:
        if m["kind"] == "clip":
            assert Path(m["thumbnail"]).is_file()
    empty = run_cli("timeline", "--day", "2020-01-01", "--json", data_dir=data_dir).json()
    assert empty["moments"] == []


def test_time_scoped_question_lists_that_range(ingested: tuple[Path, dict]) -> None:
    data_dir, _ = ingested
    # No time words resolve to 2026-11-20 relative to the real clock, so ask for a range that
    # does not hold the recording and check nothing leaks in.
    answer = run_cli("ask", "what happened in the last 5 minutes", "--json",
                     data_dir=data_dir).json()
    assert answer["scope"] == "last 5 minutes"
    assert answer["citations"] == []


def test_second_process_on_same_data_dir_is_refused(ingested: tuple[Path, dict]) -> None:
    data_dir, _ = ingested
    with DataDirLock(data_dir / "daybook.lock"):
        res = run_cli("ask", "breakfast", data_dir=data_dir)
    assert res.code == 4
    assert "in use by process" in res.err
    assert "Traceback" not in res.err
    # Once the holder is gone the data dir opens again.
    assert run_cli("ask", "breakfast", data_dir=data_dir).code == 0


def test_reingesting_the_same_recording_does_not_duplicate(media: Media, tmp_path: Path) -> None:
    for _ in range(2):
        res = run_cli("ingest", "--audio", str(media.wav), "--start", START, "--json",
                      data_dir=tmp_path)
        assert res.code == 0, res.err
    moments = run_cli("timeline", "--day", START[:10], "--json", data_dir=tmp_path).json()
    assert len(moments["moments"]) == len(LINES)


def test_help_lists_the_commands(tmp_path: Path) -> None:
    res = run_cli("--help", data_dir=tmp_path)  # (no command at all opens the window)
    assert res.code == 0
    for command in ("ingest", "record", "ask", "timeline", "models", "--self-test"):
        assert command in res.out


def test_config_error_names_the_field(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[vad]\nhangover_ms = 'long'\n")
    res = run_cli("ask", "x", data_dir=tmp_path, env={"DAYBOOK_CONFIG": str(cfg)})
    assert res.code == 3
    assert "[vad] hangover_ms" in res.err and "integer" in res.err


def test_json_summary_is_the_only_stdout(media: Media, tmp_path: Path) -> None:
    res = run_cli("ingest", "--audio", str(media.wav), "--json", data_dir=tmp_path)
    assert res.code == 0, res.err
    json.loads(res.out)  # nothing else was printed to stdout


def test_ask_says_the_answer_then_what_it_remembered(ingested: tuple[Path, dict]) -> None:
    data_dir, _ = ingested
    res = run_cli("ask", "what did I have for breakfast?", data_dir=data_dir)
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert " you said: " in lines[0] and "breakfast" in lines[0]  # one spoken sentence
    assert lines[1] == "Remembered:"
    assert lines[2].startswith("  - 2026-11-20 ") and "heard: \u201c" in lines[2]
    assert any(line.strip().startswith("key frame: ") for line in lines[3:])
