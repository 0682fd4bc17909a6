"""Long-term memory: hour and day summaries, written in the background, resumable, kill-safe."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.memory.base import Moment
from app.memory.embed_lexical import LexicalEmbedder
from app.memory.fakes import InMemoryStore
from app.memory.integrate import Integrator, day_id, hour_id, summarize_hour
from tests.conftest import ROOT

DAY = dt.datetime(2026, 11, 20)
LEX = LexicalEmbedder()


def at(h: int, m: int = 0, s: int = 0) -> float:
    return DAY.replace(hour=h, minute=m, second=s).timestamp()


SAID = [
    (at(9, 5), "I had scrambled eggs and coffee for breakfast"),
    (at(9, 20), "the coffee machine is broken again"),
    (at(9, 40), "call the plumber about the coffee machine leak"),
    (at(11, 10), "Anna suggested we watch Inception tonight"),
    (at(11, 50), "the train to Leeds leaves at six"),
]


def _fill(store: InMemoryStore) -> None:
    items = [(Moment(f"utt-{i}", "utterance", t, t + 3, text, sound="speech"),
              LEX.embed([text])[0]) for i, (t, text) in enumerate(SAID)]
    items += [(Moment(f"clip-{i}", "clip", at(9, 10 + i), at(9, 11 + i), n_frames=16),
               np.ones(256, np.float32) / 16) for i in range(3)]
    store.add(items, LEX.name)


def _integrator(store: InMemoryStore, tmp_path: Path, now: float) -> Integrator:
    return Integrator(store, LEX, tmp_path / "integrate.json", lambda e: None, now=lambda: now)


def test_an_hour_summary_says_what_the_hour_was_about() -> None:
    moments = [Moment(f"u{i}", "utterance", t, t + 3, text) for i, (t, text) in enumerate(SAID[:3])]
    moments.append(Moment("c", "clip", at(9, 30), at(9, 31)))
    s = summarize_hour(moments, at(9), at(10))
    assert s is not None and s.kind == "summary" and s.id == hour_id(at(9))
    assert s.text.startswith("09:00–10:00: about coffee, machine")
    assert "3 things said and 1 scene seen" in s.text
    assert "\u201cthe coffee machine is broken again\u201d" in s.text
    assert summarize_hour([], at(9), at(10)) is None


def test_finished_hours_and_days_are_integrated_and_found(tmp_path: Path) -> None:
    store = InMemoryStore()
    _fill(store)
    integ = _integrator(store, tmp_path, at(12, 30))  # 11:00–12:00 ended, settled
    written = integ.integrate_once()
    assert written == [hour_id(at(9)), hour_id(at(11))]  # 10:00 had nothing: no summary
    assert store.count()["summary"] == 2
    hits = store.keyword_search("plumber", 5)
    assert hour_id(at(9)) in [h.moment.id for h in hits]  # retrieval finds summaries too
    assert integ.integrate_once() == []  # nothing new
    # The next day: the whole day is over, its summary is written.
    integ.now = lambda: at(0, 5) + 86_400 + 3600
    written = integ.integrate_once()
    assert day_id("2026-11-20") in written
    day = store.get([day_id("2026-11-20")])[0]
    assert day.text.startswith("Friday 20 November 2026, 09:00–12:00, 2 hours remembered: about")
    assert "coffee" in day.text
    assert store.moments_on_day("2026-11-20") == store.moments_between(at(0), at(0) + 86_400)
    assert all(m.kind != "summary" for m in store.moments_on_day("2026-11-20"))


def test_it_resumes_after_a_restart_and_redoes_late_hours(tmp_path: Path) -> None:
    store = InMemoryStore()
    _fill(store)
    first = _integrator(store, tmp_path, at(10, 30))
    assert first.integrate_once() == [hour_id(at(9))]
    state = json.loads((tmp_path / "integrate.json").read_text())
    assert state["cursor"] == at(10)
    second = _integrator(store, tmp_path, at(12, 30))  # a restart: resumes at 10:00
    assert second.integrate_once() == [hour_id(at(11))]
    # A recording imported later adds to 09:00: the hour is summarised again.
    late = Moment("utt-late", "utterance", at(9, 55), at(9, 56), "the plumber fixed the leak")
    store.add([(late, LEX.embed([late.text])[0])], LEX.name)
    from app.core.events import MomentsStored

    second.on_event(MomentsStored(("utt-late",), ("utterance",), late.t1_s))
    assert second.integrate_once() == [hour_id(at(9))]
    assert "4 things said" in store.get([hour_id(at(9))])[0].text


def test_deleting_moments_removes_the_summaries_that_quote_them(tmp_path: Path) -> None:
    store = InMemoryStore()
    _fill(store)
    integ = _integrator(store, tmp_path, at(12, 30))
    integ.integrate_once()
    assert store.keyword_search("plumber", 5)
    gone = store.delete(["utt-2"])
    integ.invalidate(gone)
    assert store.keyword_search("plumber", 5) == []  # at once: the summary quoting it is gone
    integ.integrate_once()
    summary = store.get([hour_id(at(9))])[0]  # written again from what is left
    assert "plumber" not in summary.text and "2 things said" in summary.text


_KILLED = r"""
import sys, time
sys.path.insert(0, sys.argv[3])
from pathlib import Path
from app.memory.chroma_store import ChromaMemoryStore
from app.memory.embed_lexical import LexicalEmbedder
from app.memory.integrate import Integrator
store = ChromaMemoryStore(Path(sys.argv[1]))
class Slow(LexicalEmbedder):
    def embed(self, texts):
        print("embedding", flush=True)
        time.sleep(0.2)
        return super().embed(texts)
now = float(sys.argv[2])
Integrator(store, Slow(), Path(sys.argv[1]).parent / "integrate.json", lambda e: None,
           now=lambda: now).integrate_once()
print("done", flush=True)
"""


def test_a_kill_during_integration_leaves_nothing_half_written(tmp_path: Path) -> None:
    """SIGKILL in the middle of writing summaries, then a restart: every summary is whole
    (the same as a run that was never killed), and the work resumes where it stopped."""
    from app.memory.chroma_store import ChromaMemoryStore

    store = ChromaMemoryStore(tmp_path / "c")
    items = []
    for day in range(3):  # three days, five hours each
        for h in range(8, 13):
            t = at(h, 15) + day * 86_400
            text = f"day {day} hour {h}: the blue kettle and the garden gate"
            items.append((Moment(f"utt-{day}-{h}", "utterance", t, t + 2, text),
                          LEX.embed([text])[0]))
    store.add(items, LEX.name)
    store.close()
    now = at(13, 30) + 2 * 86_400
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(tmp_path / "c"), str(now),
                             str(ROOT)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        seen += line.startswith("embedding")
        if seen == 6:  # in the middle of the second day
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(30)
    store = ChromaMemoryStore(tmp_path / "c")
    partial = store.moments_between(0, now, kinds=("summary",))
    assert 4 <= len(partial) <= 7
    integ = Integrator(store, LEX, tmp_path / "integrate.json", lambda e: None, now=lambda: now)
    started = time.monotonic()
    integ.integrate_once()
    assert time.monotonic() - started < 30
    summaries = store.moments_between(0, now, kinds=("summary",))
    assert len(summaries) == 3 * 5 + 2  # every hour, and the two finished days
    reference = InMemoryStore()
    reference.add(items, LEX.name)
    Integrator(reference, LEX, tmp_path / "ref.json", lambda e: None,
               now=lambda: now).integrate_once()
    assert ({(m.id, m.text) for m in summaries}
            == {(m.id, m.text) for m in reference.moments_between(0, now, kinds=("summary",))})
    assert store.side.get_state("pending") is None


def test_deleting_through_the_service_removes_every_trace(tmp_path: Path) -> None:
    """A moment and a range deleted in the app: gone from search (by meaning and by words), the
    time index and the side file on disk, the key-frame folder and the summaries."""
    from app.core.config import Config
    from app.core.paths import DataPaths
    from app.pipeline.service import DaybookService

    cfg = Config().replace(memory={"summaries": False})
    paths = DataPaths(tmp_path / "d").ensure()
    service = DaybookService(cfg, paths)
    try:
        e = service.embedder
        frame = service.key_frames.write(np.full((48, 64, 3), 200, np.uint8), at(10, 30),
                                         at(10, 31))
        secret = "the spare key is taped under the blue flowerpot"
        items = [(Moment("utt-secret", "utterance", at(10, 30), at(10, 31), secret),
                  e.embed([secret])[0]),
                 (Moment("clip-secret", "clip", at(10, 30), at(10, 31), key_frame=frame,
                         n_frames=4), np.ones(256, np.float32) / 16)]
        items += [(Moment(f"utt-{i}", "utterance", t, t + 3, text), e.embed([text])[0])
                  for i, (t, text) in enumerate(SAID)]
        service.store.add(items, e.name)
        Integrator(service.store, e, tmp_path / "i.json", lambda ev: None,
                   now=lambda: at(12, 30)).integrate_once()
        assert "flowerpot" in service.store.get([hour_id(at(10))])[0].text
        assert service.search("where is the extra key hidden?")[0].moment.id == "utt-secret"
        service.delete(service.store.get(["utt-secret", "clip-secret"]))
        assert not service.key_frames.absolute(frame).exists()
        assert all(c.moment.id != "utt-secret"
                   for c in service.search("where is the extra key hidden?"))
        assert service.store.keyword_search("flowerpot", 10) == []  # summary included
        assert service.delete_range(at(11), at(12)) == 2
        assert service.store.keyword_search("Inception", 10) == []
        assert service.store.count() == {"utterance": 3, "clip": 0, "summary": 1}
        assert [m.id for m in service.store.moments_between(0, at(23), kinds=("summary",))] == [
            hour_id(at(9))]  # the untouched hour keeps its summary
    finally:
        service.close()
    for path in (paths.memory / "index").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"flowerpot" not in data and b"Inception" not in data, path
            assert b"utt-secret" not in data, path


def test_the_app_writes_summaries_in_the_background(tmp_path: Path, monkeypatch) -> None:
    """The service runs the integrator: summaries of past hours appear on their own and the
    event that reloads the timeline is emitted."""
    import threading

    from app.core.config import Config
    from app.core.events import MemoryIntegrated
    from app.core.paths import DataPaths
    from app.pipeline import service as service_module
    from app.pipeline.service import DaybookService

    monkeypatch.setattr(service_module, "INTEGRATE_FIRST_WAIT_S", 0.0)
    paths = DataPaths(tmp_path / "d").ensure()
    first = DaybookService(Config().replace(memory={"summaries": False}), paths)
    e = first.embedder
    first.store.add([(Moment(f"utt-{i}", "utterance", t, t + 3, text), e.embed([text])[0])
                     for i, (t, text) in enumerate(SAID)], e.name)
    first.close()
    from app.pipeline.runtime import EventBus

    bus = EventBus()
    done = threading.Event()
    bus.subscribe(lambda ev: done.set() if isinstance(ev, MemoryIntegrated) else None)
    service = DaybookService(Config(), paths, bus=bus)
    try:
        assert done.wait(30)
        assert {hour_id(at(9)), hour_id(at(11)), day_id("2026-11-20")} <= {
            m.id for m in service.store.moments_between(0, at(23) + 86_400,
                                                        kinds=("summary",))}
    finally:
        service.close()


def test_a_summary_found_by_a_question_is_said_as_a_summary(tmp_path: Path) -> None:
    from app.core.config import ReasoningConfig
    from app.memory.keyframes import KeyFrameDir
    from app.reasoning.base import Request
    from app.reasoning.extractive import spoken_answer
    from app.reasoning.retrieve import Retriever

    store = InMemoryStore()
    _fill(store)
    _integrator(store, tmp_path, at(12, 30)).integrate_once()
    retriever = Retriever(store, LEX, KeyFrameDir(tmp_path / "k"), ReasoningConfig())
    cites, _ = retriever.retrieve("plumber leak")
    assert hour_id(at(9)) in [c.moment.id for c in cites]
    # The answer says the best match; the summary, said, is said as one.
    assert spoken_answer(Request("plumber leak", cites, None, at(12, 30))) == (
        "At 9:40 this morning you said: call the plumber about the coffee machine leak.")
    summary = next(c for c in cites if c.moment.id == hour_id(at(9)))
    text = spoken_answer(Request("plumber leak", [summary], None, at(12, 30)))
    assert text.startswith("At 9:00 this morning, in summary: 09:00–10:00: about coffee"), text
    assert "saw a scene" not in text


def test_a_question_about_a_whole_day_is_told_by_its_summaries(tmp_path: Path) -> None:
    from app.core.config import ReasoningConfig
    from app.memory.keyframes import KeyFrameDir
    from app.reasoning.retrieve import Retriever

    store = InMemoryStore()
    _fill(store)
    _integrator(store, tmp_path, at(1) + 86_400).integrate_once()
    retriever = Retriever(store, LEX, KeyFrameDir(tmp_path / "k"), ReasoningConfig())
    cites, scope = retriever.retrieve("what did I do yesterday?", DAY + dt.timedelta(days=1,
                                                                                   hours=10))
    assert scope is not None and scope.label == "yesterday"
    assert [c.moment.id for c in cites][:3] == [day_id("2026-11-20"), hour_id(at(9)),
                                                hour_id(at(11))]
    cites, _ = retriever.retrieve("what happened at 9:30 yesterday?",
                                  DAY + dt.timedelta(days=1, hours=10))
    assert all(c.moment.kind != "summary" for c in cites)  # an hour: the moments themselves


# --- summaries written by the language model ----------------------------------------------------


class _Writer:
    """A language model that writes what it is told to (for the summariser's logic)."""

    name = "test model"

    def __init__(self, text: str, delay_s: float = 0.0) -> None:
        self.text, self.delay_s = text, delay_s
        self.prompts: list[list[dict[str, str]]] = []

    def prepare(self, request):  # type: ignore[no-untyped-def]
        raise AssertionError("the summariser builds its own prompt")

    def stream(self, prompt, cancel):  # type: ignore[no-untyped-def]
        import time

        self.prompts.append(prompt.messages)
        for word in self.text.split(" "):
            time.sleep(self.delay_s)
            if cancel.is_set():
                return
            yield word + " "

    def close(self) -> None:
        pass


def _model_integrator(store: InMemoryStore, tmp_path: Path, writer: object):  # type: ignore[no-untyped-def]
    import threading

    from app.reasoning.summarise import BackgroundSlot, ModelSummariser

    slot = BackgroundSlot(threading.Lock())
    summariser = ModelSummariser(lambda: writer, lambda: slot)  # type: ignore[arg-type,return-value]
    integrator = Integrator(store, LEX, tmp_path / "integrate.json", lambda e: None,
                            now=lambda: at(12, 30), rewrite=summariser.rewrite)
    return integrator, summariser, slot


def test_a_model_in_use_writes_the_summaries_from_the_hours_moments(tmp_path: Path) -> None:
    store = InMemoryStore()
    _fill(store)
    writer = _Writer("The coffee machine broke and leaks, so the plumber needs a call.")
    integrator, summariser, _ = _model_integrator(store, tmp_path, writer)
    integrator.integrate_once()
    hour = store.get([hour_id(at(9))])[0]
    assert hour.text == ("09:00–10:00: The coffee machine broke and leaks, so the plumber needs "
                         "a call.")
    # The model saw that hour's moments, and only them.
    notes = writer.prompts[0][1]["content"]
    assert "call the plumber about the coffee machine leak" in notes
    assert "Inception" not in notes
    assert summariser.written >= 1


def test_a_summary_that_invents_is_not_kept(tmp_path: Path) -> None:
    store = InMemoryStore()
    _fill(store)
    writer = _Writer("The user flew to Paris with Maria at 7 and bought shoes.")
    integrator, summariser, _ = _model_integrator(store, tmp_path, writer)
    integrator.integrate_once()
    hour = store.get([hour_id(at(9))])[0]
    assert hour.text.startswith("09:00–10:00: about coffee, machine")  # the extractive one
    assert summariser.rejected >= 1 and summariser.written == 0


def test_a_question_takes_the_model_back_from_a_summary(tmp_path: Path) -> None:
    import threading

    store = InMemoryStore()
    _fill(store)
    writer = _Writer("The coffee machine broke " * 40, delay_s=0.02)
    integrator, summariser, slot = _model_integrator(store, tmp_path, writer)
    threading.Timer(0.2, slot.interrupt).start()  # what AnswerWorker.ask does
    integrator.integrate_once()
    hour = store.get([hour_id(at(9))])[0]
    assert hour.text.startswith("09:00–10:00: about coffee, machine")
    assert summariser.written <= 1  # the interrupted one was not


@pytest.mark.slow
def test_the_real_small_model_writes_through_the_same_path(tmp_path: Path) -> None:
    """SmolLM2-135M through llama.cpp in its child process: its summary is kept only if it is
    grounded; either way the hour has a summary and nothing is lost."""
    from app.reasoning.llm_llama import LlamaReasoner
    from tests.llm_model import smollm2

    store = InMemoryStore()
    _fill(store)
    model = LlamaReasoner(smollm2(), context_tokens=2048, threads=2, max_tokens=60)
    try:
        integrator, summariser, _ = _model_integrator(store, tmp_path, model)
        integrator.integrate_once()
    finally:
        model.close()
    assert summariser.written + summariser.rejected >= 2  # it was asked (hours 9 and 11)
    for hour in (at(9), at(11)):
        text = store.get([hour_id(hour)])[0].text
        assert text.startswith(f"{hour_id(hour)[-2:]}:00–")
