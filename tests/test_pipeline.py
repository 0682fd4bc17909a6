"""Pipeline logic on fakes: wiring, end-of-stream draining, shutdown, drops, failures."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app.capture.fakes import ArrayAudioSource, ListFrameSource
from app.core.config import Config
from app.core.events import (
    ClipClosed,
    MomentsKept,
    MomentsStored,
    SourceEnded,
    SourceFailed,
    SpeechEnded,
    SpeechStarted,
    UtteranceTranscribed,
    WorkerFailed,
)
from app.memory.embed_lexical import LexicalEmbedder
from app.memory.fakes import InMemoryStore
from app.memory.keyframes import KeyFrameDir
from app.perception.fakes import EnergyVad, ScriptedTranscriber, always_speech
from app.pipeline.factory import build_pipeline
from app.pipeline.runtime import EventBus, Inbox, Worker
from tests.test_clips import _scene
from tests.test_vad import _signal

START = 1_795_165_200.0


def _build(tmp_path: Path, *, audio=None, video=None, transcriber=None, store=None, cfg=None,
           classify=always_speech):
    events: list[object] = []
    pipe = build_pipeline(cfg or Config(), store=store or InMemoryStore(),
                          key_frames=KeyFrameDir(tmp_path / "kf"), audio=audio, video=video,
                          vad=EnergyVad(), transcriber=transcriber, embedder=LexicalEmbedder(),
                          classify_sound=classify)
    pipe.bus.subscribe(events.append)
    return pipe, events


def test_audio_and_video_flow_into_memory_and_drain(tmp_path: Path) -> None:
    store = InMemoryStore()
    audio = ArrayAudioSource(_signal([(1.0, 2.0), (4.0, 5.5)], 8.0), start_s=START)
    video = ListFrameSource([_scene(1)] * 4 + [_scene(2)] * 4, fps=1.0, start_s=START)
    pipe, events = _build(tmp_path, audio=audio, video=video, store=store,
                          transcriber=ScriptedTranscriber(["hello there", "goodbye now"]))
    pipe.start()
    assert pipe.wait(20)
    kinds = [type(e) for e in events]
    assert kinds.count(SpeechStarted) == 2 and kinds.count(SpeechEnded) == 2
    said = [e for e in events if isinstance(e, UtteranceTranscribed)]
    assert [u.text for u in said] == ["hello there", "goodbye now"]
    assert said[0].t0_s == pytest.approx(START + 0.7, abs=0.05)
    assert [e.n_frames for e in events if isinstance(e, ClipClosed)] == [4, 4]
    assert store.count() == {"utterance": 2, "clip": 2, "summary": 0}
    assert sum(len(e.ids) for e in events if isinstance(e, MomentsStored)) == 4
    assert kinds.count(SourceEnded) == 2
    assert audio.closed and video.closed
    assert len(list((tmp_path / "kf").rglob("*.jpg"))) == 2
    assert pipe.position_s == pytest.approx(8.0, abs=1.0)
    counters = pipe.counters()
    assert counters["audio.dropped"] == 0 and counters["memory.errors"] == 0


def test_stop_drains_what_was_captured(tmp_path: Path) -> None:
    store = InMemoryStore()

    class SlowAudio(ArrayAudioSource):
        def chunks(self, stop):
            for chunk in super().chunks(stop):
                time.sleep(0.002)
                yield chunk

    audio = SlowAudio(_signal([(0.5, 1.5)], 60.0), start_s=START)
    pipe, _ = _build(tmp_path, audio=audio, store=store, transcriber=ScriptedTranscriber(["x"]))
    pipe.start()
    deadline = time.monotonic() + 10
    while pipe.position_s < 3.0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pipe.stop(drain_timeout_s=10)
    assert pipe.position_s < 60.0  # really stopped early
    assert store.count()["utterance"] == 1  # and what was said before the stop was stored
    assert not any(w.is_alive() for w in pipe.workers)


def test_failing_source_is_reported_and_the_rest_goes_on(tmp_path: Path) -> None:
    class Broken(ListFrameSource):
        def frames(self, stop):
            yield from list(super().frames(stop))[:2]
            raise OSError("camera unplugged")

    store = InMemoryStore()
    audio = ArrayAudioSource(_signal([(0.5, 1.5)], 3.0), start_s=START)
    video = Broken([_scene(1)] * 5, start_s=START)
    pipe, events = _build(tmp_path, audio=audio, video=video, store=store,
                          transcriber=ScriptedTranscriber(["still heard"]))
    pipe.start()
    assert pipe.wait(20)
    failed = [e for e in events if isinstance(e, SourceFailed)]
    assert len(failed) == 1 and "camera unplugged" in failed[0].message
    assert store.count() == {"utterance": 1, "clip": 1, "summary": 0}  # the 2 frames before the failure kept


def test_a_failed_recognition_keeps_the_utterance_and_transcribes_it_again(
        tmp_path: Path) -> None:
    class Flaky(ScriptedTranscriber):
        def transcribe(self, pcm, rate):
            if not self.calls:
                self.calls.append(0.0)
                raise RuntimeError("decoder hiccup")
            return super().transcribe(pcm, rate)

    store = InMemoryStore()
    audio = ArrayAudioSource(_signal([(0.5, 1.5), (3.0, 4.0)], 5.0), start_s=START)
    pipe, events = _build(tmp_path, audio=audio, store=store,
                          transcriber=Flaky(["second", "first, again"]))
    pipe.start()
    assert pipe.wait(20)
    assert any(isinstance(e, WorkerFailed) and "hiccup" in e.message for e in events)
    assert pipe.counters()["asr.errors"] == 1
    said = [e for e in events if isinstance(e, UtteranceTranscribed)]
    # First passed on with its time and sound and no text, then again with text.
    assert [(u.text, u.retry) for u in said] == [("", False), ("second", False),
                                                  ("first, again", True)]
    assert said[0].id == said[2].id and said[0].sound == said[2].sound
    stored = sorted(store.items.values(), key=lambda mv: mv[0].t0_s)
    assert [m.text for m, _ in stored] == ["first, again", "second"]
    assert pipe.memory.stored == {"utterance": 2, "clip": 0}  # the update is not a new one
    asr = next(w for w in pipe.workers if w.name == "asr")
    assert (asr.failed, asr.retranscribed, len(asr.spool)) == (1, 1, 0)


def test_untranscribed_utterances_survive_a_restart(tmp_path: Path) -> None:
    class Broken(ScriptedTranscriber):
        def transcribe(self, pcm, rate):
            raise RuntimeError("recogniser down")

    from app.core.paths import DataPaths

    data = DataPaths(tmp_path / "data").ensure()
    audio = ArrayAudioSource(_signal([(0.5, 1.5)], 3.0), start_s=START)
    first = build_pipeline(Config(), store=InMemoryStore(), key_frames=KeyFrameDir(tmp_path / "k"),
                           audio=audio, vad=EnergyVad(), transcriber=Broken([]),
                           embedder=LexicalEmbedder(), data=data, classify_sound=always_speech)
    first.start()
    assert first.wait(20)
    assert len(list((data.memory / "untranscribed").glob("*.wav"))) == 1
    # The next run (silence only) transcribes it while idle or at its end.
    store = InMemoryStore()
    second = build_pipeline(Config(), store=store, key_frames=KeyFrameDir(tmp_path / "k"),
                            audio=ArrayAudioSource(np.zeros(16000, np.int16), start_s=START + 60),
                            vad=EnergyVad(), transcriber=ScriptedTranscriber(["later"]),
                            embedder=LexicalEmbedder(), data=data, classify_sound=always_speech)
    second.start()
    assert second.wait(20)
    [(moment, _)] = store.items.values()
    assert moment.text == "later" and moment.t0_s < START + 1.0
    assert not list((data.memory / "untranscribed").iterdir())


def test_failed_store_writes_are_retried_not_lost(tmp_path: Path) -> None:
    class FullDisk(InMemoryStore):
        fails = 2

        def add(self, items, embedder):
            if self.fails:
                self.fails -= 1
                raise OSError(28, "No space left on device")
            super().add(items, embedder)

    store = FullDisk()
    cfg = Config().replace(memory={"flush_interval_s": 0.05})
    audio = ArrayAudioSource(_signal([(0.5, 1.5)], 4.0), start_s=START)
    pipe, events = _build(tmp_path, audio=audio, store=store, cfg=cfg,
                          transcriber=ScriptedTranscriber(["kept"]))
    pipe.start()
    assert pipe.wait(20)
    assert store.count()["utterance"] == 1
    kept = [e for e in events if isinstance(e, MomentsKept)]
    assert [e.count for e in kept] == [1, 0]  # said when kept, and when stored after all
    assert "No space left" in kept[0].message and not kept[0].journaled  # no data dir here
    assert pipe.memory.kept == 0 and pipe.memory.last_error is None


def test_the_journal_keeps_what_the_store_refused_until_the_next_start(tmp_path: Path) -> None:
    from app.core.paths import DataPaths

    class Down(InMemoryStore):
        def add(self, items, embedder):
            raise OSError(28, "No space left on device")

    data = DataPaths(tmp_path / "data").ensure()
    cfg = Config().replace(memory={"flush_interval_s": 0.05})
    video = ListFrameSource([_scene(1)] * 3 + [_scene(2)] * 3, fps=1.0, start_s=START)
    first = build_pipeline(cfg, store=Down(), key_frames=KeyFrameDir(tmp_path / "k"),
                           audio=ArrayAudioSource(_signal([(0.5, 1.5)], 3.0), start_s=START),
                           video=video, vad=EnergyVad(), embedder=LexicalEmbedder(),
                           transcriber=ScriptedTranscriber(["in the journal"]), data=data,
                           classify_sound=always_speech)
    first.memory.final_retry_s = 0.5
    first.start()
    assert first.wait(20)
    assert first.memory.kept == 3 and first.memory.journaled == 3
    assert len((data.memory / "journal.jsonl").read_text().splitlines()) == 3
    # The next start stores them before anything new, and empties the journal.
    store = InMemoryStore()
    second = build_pipeline(cfg, store=store, key_frames=KeyFrameDir(tmp_path / "k"),
                            embedder=LexicalEmbedder(), data=data, classify_sound=always_speech)
    second.start()
    assert second.wait(20)
    assert store.count() == {"utterance": 1, "clip": 2, "summary": 0}
    assert [m.text for m, _ in store.items.values() if m.kind == "utterance"] == [
        "in the journal"]
    assert second.memory.recovered == 3 and second.memory.kept == 0
    assert not (data.memory / "journal.jsonl").exists()


def test_no_sources_ends_at_once(tmp_path: Path) -> None:
    pipe, _ = _build(tmp_path)
    pipe.start()
    assert pipe.wait(5)


def test_live_video_inbox_drops_oldest_and_counts() -> None:
    box: Inbox[int] = Inbox("video", 3, drop_oldest=True)
    for i in range(5):
        box.put(i)
    assert box.dropped == 2 and [box.get(0.1) for _ in range(3)] == [2, 3, 4]
    with pytest.raises(queue.Empty):
        box.get(0.01)


def test_replay_inbox_waits_for_room_and_honours_abort() -> None:
    box: Inbox[int] = Inbox("audio", 1)
    box.put(1)
    abort = threading.Event()
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(box.put(2, abort)))
    t.start()
    time.sleep(0.1)
    assert t.is_alive()  # waiting, not dropping
    assert box.get(0.1) == 1
    t.join(2)
    assert result == [True] and box.get(0.1) == 2 and box.dropped == 0
    box.put(3)
    abort.set()
    assert box.put(4, abort) is False


def test_end_of_stream_passes_even_a_full_inbox() -> None:
    box: Inbox[object] = Inbox("x", 1)
    box.put(1)
    box.put(SourceEnded("s"))
    assert len(box) == 2


def test_a_woken_worker_goes_idle_at_once() -> None:
    """`wake` ends the inbox's wait now (a spoken question asks the memory to commit what it
    holds: not after the next idle poll)."""
    box: Inbox[object] = Inbox("m", 10)
    idled: list[float] = []

    class Slow(Worker):
        poll_s = 5.0

        def handle(self, item: object) -> None:
            pass

        def idle(self) -> None:
            idled.append(time.monotonic())

    w = Slow(name="slow", inbox=box, bus=EventBus(), abort=threading.Event())
    w.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    box.wake()
    deadline = t0 + 2.0
    while not idled and time.monotonic() < deadline:
        time.sleep(0.005)
    box.put(SourceEnded("s"))
    w.join(2)
    assert idled and idled[0] - t0 < 1.0  # not the 5 s poll
    with pytest.raises(queue.Empty):
        box.get(timeout=0.01)  # nothing came of the wake itself


def test_worker_waits_for_every_upstream() -> None:
    box: Inbox[object] = Inbox("m", 10)
    seen: list[object] = []

    class Collect(Worker):
        def handle(self, item):
            seen.append(item)

    w = Collect(name="collect", inbox=box, bus=EventBus(), abort=threading.Event(), upstreams=2)
    w.start()
    box.put(1)
    box.put(SourceEnded("a"))
    box.put(2)
    time.sleep(0.2)
    assert w.is_alive()
    box.put(SourceEnded("b"))
    w.join(2)
    assert not w.is_alive() and seen == [1, 2]


def test_memory_worker_embeds_non_speech_by_its_class(tmp_path: Path) -> None:
    store = InMemoryStore()
    rng = np.random.default_rng(0)
    noise = np.zeros(4 * 16000, np.int16)
    noise[16000:40000] = rng.normal(0, 6000, 24000).astype(np.int16)
    asr = ScriptedTranscriber(["made up"])
    pipe, events = _build(tmp_path, audio=ArrayAudioSource(noise, start_s=START), store=store,
                          transcriber=asr, classify=None)  # the real sound classifier
    pipe.start()
    assert pipe.wait(20)
    (moment, vec), = store.items.values()
    assert moment.sound == "noise" and moment.text == ""
    assert asr.calls == []  # noise is never sent to the recogniser: nothing made up
    [heard] = [e for e in events if isinstance(e, UtteranceTranscribed)]
    assert heard.sound_confidence >= 0.6 and "nothing to transcribe" in heard.backend
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)


def test_deleting_a_range_forgets_what_is_kept_but_not_stored(tmp_path: Path) -> None:
    """Moments in the journal or waiting for the store, and untranscribed audio, are deleted
    with the range: nothing the user deleted comes back when the store answers again."""
    from app.core.paths import DataPaths

    class Down(InMemoryStore):
        up = False

        def add(self, items, embedder):
            if not self.up:
                raise OSError(28, "No space left on device")
            super().add(items, embedder)

    class Broken(ScriptedTranscriber):
        def transcribe(self, pcm, rate):
            raise RuntimeError("recogniser down")

    data = DataPaths(tmp_path / "data").ensure()
    cfg = Config().replace(memory={"flush_interval_s": 0.05})
    store = Down()
    pipe = build_pipeline(cfg, store=store, key_frames=KeyFrameDir(tmp_path / "k"),
                          audio=ArrayAudioSource(_signal([(0.5, 1.5), (3.0, 4.0)], 5.0),
                                                 start_s=START),
                          vad=EnergyVad(), embedder=LexicalEmbedder(),
                          transcriber=Broken([]), data=data, classify_sound=always_speech)
    pipe.memory.final_retry_s = 3.0
    pipe.start()
    deadline = time.monotonic() + 10
    while pipe.memory.journaled < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pipe.memory.journaled == 2
    asr = next(w for w in pipe.workers if w.name == "asr")
    # The user deletes the first utterance's minute while the store is down.
    asr.spool.forget(lambda t0_s, _id: t0_s < START + 2.0)
    pipe.memory.forget(lambda m: m.t0_s < START + 2.0)
    store.up = True
    assert pipe.wait(20)
    assert [round(m.t0_s - START, 1) for m, _ in store.items.values()] == [2.7]
    assert not (data.memory / "journal.jsonl").exists()
    assert [u.t0_s - START for u in asr.spool.pending()] == [pytest.approx(2.7, abs=0.1)]


def test_a_question_the_recogniser_heard_put_to_the_name_travels_with_the_transcript(
        tmp_path: Path) -> None:
    """A recogniser that can check for the wake name (Moonshine: name_check.py) gives the question
    beside its text; the worker asks it with the current wake name and the moment keeps it."""
    names: list[str] = []

    class Hearing(ScriptedTranscriber):
        def transcribe_addressed(self, pcm, sample_rate_hz, wake_name):  # type: ignore[no-untyped-def]
            names.append(wake_name)
            text = self.transcribe(pcm, sample_rate_hz)
            return text, "where are my keys" if text.startswith("They book,") else ""

    store = InMemoryStore()
    cfg = Config()  # wake name "Daybook"
    audio = ArrayAudioSource(_signal([(1.0, 2.0), (4.0, 5.5)], 8.0), start_s=START)
    asr = Hearing(["They book, where are my keys?", "They booked a table."])
    pipe, events = _build(tmp_path, audio=audio, store=store, transcriber=asr, cfg=cfg)
    pipe.start()
    assert pipe.wait(20)
    said = [e for e in events if isinstance(e, UtteranceTranscribed)]
    assert [(u.text, u.question) for u in said] == [
        ("They book, where are my keys?", "where are my keys"), ("They booked a table.", "")]
    assert names == ["Daybook", "Daybook"]
    kept = {m.text: m.question for m, _ in store.items.values()}
    assert kept == {"They book, where are my keys?": "where are my keys",
                    "They booked a table.": ""}


def test_the_name_alone_then_the_question_is_a_question(tmp_path: Path) -> None:
    """"Okay, Daybook." … "where did I park the car?": the VAD cuts them apart at the pause; the
    utterance that starts within FOLLOW_UP_S of the name's end is the question, once."""
    from app.pipeline.workers import FOLLOW_UP_S

    store = InMemoryStore()
    spans = [(1.0, 2.0), (4.0, 5.5), (7.0, 8.0), (8.5 + FOLLOW_UP_S + 0.5, 10.0 + FOLLOW_UP_S)]
    audio = ArrayAudioSource(_signal(spans, 12.0 + FOLLOW_UP_S), start_s=START)
    asr = ScriptedTranscriber(["Okay, Daybook.", "Where did I park the car?",
                               "Hey Daybook.", "What time is it?"])
    pipe, events = _build(tmp_path, audio=audio, store=store, transcriber=asr)
    pipe.start()
    assert pipe.wait(20)
    said = [(e.text, e.question) for e in events if isinstance(e, UtteranceTranscribed)]
    assert said == [("Okay, Daybook.", ""), ("Where did I park the car?", "where did i park the car"),
                    ("Hey Daybook.", ""), ("What time is it?", "")]  # too late after the name
