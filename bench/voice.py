"""The spoken half: how soon Daybook starts answering out loud, how fast it stops when talked
over, and whether it hears itself.

  overhead     end of speech (the VAD's SpeechEnded) → first block handed to the speaker, through
               the real service (answer stage, MiniLM retrieval, Chroma in its own process, the
               extractive answer, sentence splitting, the speaker's render thread), with fakes of
               fixed compute for the recogniser (ASR_S) and the voice (VOICE_S) and a fake device;
               reported with that fixed compute taken off
  first audio  end of the user's speech (the VAD's SpeechEnded less its hangover) → first sound
               recorded from the speaker, on real parts with nothing downloaded: PulseAudio FIFO microphone, Silero,
               Moonshine, MiniLM, pyttsx3/espeak-ng, a null sink recorded from its monitor
  barge-in     the user talks over an answer (the speaker comes back through a room at -10 dB):
               the VAD's speech start → last sound from the speaker (the VAD itself needs 3
               voiced frames, 96 ms, to say "speech"); the user's words as recognised, with the
               word errors of the same utterances as the echo canceller left them (what was
               recognised before the microphone's own samples were) and of each said alone
  self-hearing 20 answers with the speaker loud in the microphone (room gain 0.6), nobody
               talking: answers Daybook cut off itself, with echo cancellation and without it;
               the echo reduction (AEC3's input over its output while speaking)
  aec offline  AEC3 on a simulated path: echo reduction, and what it takes off a user talking
               over the echo (double talk), after 3 s and 20 s of Daybook speaking
Writes bench/out/voice.json.

    python bench/voice.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.config import Config  # noqa: E402
from app.core.events import (  # noqa: E402
    AnswerSpoken,
    BargeIn,
    SpeakingStarted,
    SpeechEnded,
    SpeechStarted,
    UtteranceTranscribed,
)
from app.core.paths import DataPaths  # noqa: E402
from tests import mediagen, pulse  # noqa: E402
from tests.room import room_ir  # noqa: E402
from tests.voicerig import Events, VoiceRig, silence  # noqa: E402

OUT = ROOT / "bench" / "out"
RATE = 16_000
ASR_S = 0.1  # the fake recogniser's fixed compute
VOICE_S = 0.02  # the fake voice's fixed compute per sentence
FACT = "I left my passport in the kitchen drawer."
QUESTION = "Daybook, where did I leave my passport?"
INTERRUPTION = "Hold on let me think about that."
# Said over answers. The first two are heard word for word by Moonshine when said alone; the
# third is not ("Hold on there to me…"), but starts with a consonant AEC3 cut into most.
OVER_IT = ("Wait, I have another question.", "Actually, what time is my dentist appointment?",
           INTERRUPTION)


def _ms(values: list[float]) -> dict[str, float]:
    a = np.asarray(values) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1),
            "max_ms": round(float(a.max()), 1), "n": len(values)}


# --- overhead, with fakes -----------------------------------------------------------------------

class PacedSource:
    """Tone bursts (an utterance each) and silence, delivered at real-time pace."""

    live = True
    name = "paced tones"
    duration_s: float | None = None

    def __init__(self, n_utterances: int, gap_s: float = 4.0) -> None:
        tone = (3000 * np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE)).astype(np.int16)
        parts = [silence(0.5)]
        for _ in range(n_utterances):
            parts += [tone, silence(gap_s)]
        self.pcm = np.concatenate(parts)
        self.started = threading.Event()

    def chunks(self, stop: threading.Event) -> Any:
        from app.core.events import AudioCaptured

        block = RATE * 30 // 1000
        t0, wall0 = time.monotonic(), time.time()
        self.started.set()
        for i in range(0, len(self.pcm), block):
            if stop.is_set():
                return
            time.sleep(max(0.0, t0 + (i + block) / RATE - time.monotonic()))
            yield AudioCaptured(self.pcm[i:i + block], wall0 + i / RATE, RATE)

    def close(self) -> None:
        pass


class FixedTranscriber:
    name = "fixed-compute fake"

    def __init__(self, texts: list[str]) -> None:
        self.texts = list(texts)

    def transcribe(self, pcm: np.ndarray, sample_rate_hz: int) -> str:
        time.sleep(ASR_S)
        return self.texts.pop(0) if self.texts else ""


def bench_overhead(n: int) -> dict[str, Any]:
    from app.perception.fakes import EnergyVad, always_speech
    from app.pipeline.service import DaybookService
    from app.speech.fakes import FakeOutput, FakeVoice
    from app.speech.speaker import VoiceSpeaker

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config().replace(memory={"summaries": False})
        service = DaybookService(cfg, DataPaths(Path(tmp)).ensure())
        events = Events()
        service.bus.subscribe(events)
        service.voice.attach(VoiceSpeaker(lambda: FakeVoice(VOICE_S), FakeOutput()))  # type: ignore[arg-type]
        texts = [FACT] + [QUESTION] * n
        try:
            service.start(audio=PacedSource(len(texts)), video=None, vad=EnergyVad(),
                          transcriber=FixedTranscriber(texts), classify_sound=always_speech)
            deadline = time.monotonic() + 5 * len(texts) + 30
            while len(events.of(AnswerSpoken)) < n and time.monotonic() < deadline:
                time.sleep(0.1)
            ends = events.timed(SpeechEnded)
            firsts = [e.t_s for e in events.of(SpeakingStarted)]
        finally:
            service.close()
    totals = []
    for t_first in firsts:
        t_end = max(t for t, _ in ends if t < t_first)
        totals.append(t_first - t_end)
    overhead = [t - ASR_S - VOICE_S for t in totals]
    return {"answers": len(firsts), "end_of_speech_to_first_block": _ms(totals),
            "fixed_compute_ms": 1000 * (ASR_S + VOICE_S), "overhead": _ms(overhead),
            "target_ms": 30}


# --- real parts ---------------------------------------------------------------------------------

def _tell_the_fact(rig: VoiceRig) -> None:
    rig.feed(mediagen.speak(FACT), silence(1.0))
    rig.events.wait_for(UtteranceTranscribed, 20)


def bench_first_audio(tmp: Path, n: int) -> dict[str, Any]:
    delays, asr = [], []
    with VoiceRig(tmp) as rig:
        rig.feed(mediagen.speak(FACT), silence(1.5))
        rig.events.wait_for(UtteranceTranscribed, 20)
        for _ in range(n):
            mark = rig.events.index
            rig.feed(mediagen.speak(QUESTION), silence(0.5))
            rig.events.wait_for(AnswerSpoken, 40, since=mark)
            # The VAD says the speech ended once `hangover_ms` of silence followed it.
            t_ended = next(t for t, _ in rig.events.timed(SpeechEnded, mark))
            t_end = t_ended - rig.cfg.vad.hangover_ms / 1000
            assert rig.sink is not None
            pcm, times = rig.sink.audio()
            loud = np.nonzero((np.abs(pcm.astype(np.int32)) > 200) & (times > t_ended))[0]
            delays.append(float(times[loud[0]]) - t_end)
            t_heard = next(t for t, _ in rig.events.timed(UtteranceTranscribed, mark))
            asr.append(t_heard - t_ended)
            time.sleep(1.0)
    return {"end_of_speech_to_first_audio": _ms(delays), "of_which_asr": _ms(asr),
            "vad_hangover_ms": Config().vad.hangover_ms, "target_ms": 1200}


def bench_barge_in(tmp: Path, n: int, said: str) -> dict[str, Any]:
    from app.perception.asr_moonshine import MoonshineTranscriber
    from app.perception.vad import SpeechSegmenter

    through_aec: list[np.ndarray] = []  # each utterance as the echo canceller left it
    audio = SpeechSegmenter._audio

    def spy(self: SpeechSegmenter, seg: Any) -> np.ndarray:
        through_aec.append(np.concatenate([f.pcm for f in seg.frames]))
        return audio(self, seg)

    SpeechSegmenter._audio = spy  # type: ignore[method-assign]
    after_vad, errors, texts, aec_only = [], [], [], []
    try:
        with VoiceRig(tmp, speak="always", room_ir=room_ir(gain=0.3)) as rig:
            _tell_the_fact(rig)
            mark = rig.events.index  # one answer in full: the echo canceller learns the room
            rig.service.ask("Where did I leave my passport?")
            rig.events.wait_for(AnswerSpoken, 30, since=mark)
            time.sleep(1.0)
            for _ in range(n):
                mark = rig.events.index
                rig.service.ask("What did I say about my passport and the kitchen?")
                started = rig.events.wait_for(SpeakingStarted, 20, since=mark)
                time.sleep(0.8)
                rig.feed(mediagen.speak(said), silence(1.0))
                rig.events.wait_for(BargeIn, 10, since=mark)
                heard = rig.events.wait_for(UtteranceTranscribed, 20, since=mark)
                time.sleep(0.5)
                t_vad, _start = rig.events.timed(SpeechStarted, mark)[0]
                assert rig.sink is not None
                last = rig.sink.last_sound_s(started.t_s)
                if last is not None:
                    after_vad.append(last - t_vad)
                errors.append(mediagen.word_errors(said, heard.text))
                texts.append(heard.text)
                aec_only.append(through_aec[-1])
                time.sleep(1.5)
                # After a stop, barge-in waits for RELEARN_S of Daybook's voice (echo.py): one
                # answer said in full before the next cut.
                mark = rig.events.index
                rig.service.ask("Where did I leave my passport?")
                rig.events.wait_for(AnswerSpoken, 30, since=mark)
                time.sleep(1.0)
    finally:
        SpeechSegmenter._audio = audio  # type: ignore[method-assign]
    asr = MoonshineTranscriber()
    aec_texts = [asr.transcribe(pcm, RATE) for pcm in aec_only]
    alone = asr.transcribe(mediagen.speak(said), RATE)
    # The VAD needs START_VOICED voiced frames (Silero: 32 ms each) before it says "speech".
    detect_ms = SpeechSegmenter.START_VOICED * 32
    return {"speech_start_seen_to_silent": _ms(after_vad), "after_vad_s": after_vad,
            "vad_detection_ms": detect_ms, "target_ms": 100,
            "user_words": {"said": said, "heard": texts, "word_errors": errors,
                           "through_aec3_alone": {
                               "heard": aec_texts,
                               "word_errors": [mediagen.word_errors(said, t)
                                               for t in aec_texts]},
                           "said_alone": {"heard": alone,
                                          "word_errors": mediagen.word_errors(said, alone)}}}


def bench_self_hearing(tmp: Path, n: int, echo_cancellation: bool) -> dict[str, Any]:
    stops = 0
    with VoiceRig(tmp, speak="always", room_ir=room_ir(gain=0.6),
                  echo_cancellation=echo_cancellation) as rig:
        _tell_the_fact(rig)
        for _ in range(n):
            mark = rig.events.index
            rig.service.ask("Where did I leave my passport?")
            spoken = rig.events.wait_for(AnswerSpoken, 30, since=mark)
            stops += spoken.interrupted
            time.sleep(1.0)
        echo = rig.echo
        reduction = echo.reduction_db if echo is not None else None
    return {"answers": n, "false_self_interruptions": stops,
            "echo_reduction_db": round(reduction, 1) if reduction is not None else None}


def bench_aec_offline() -> dict[str, Any]:
    from pywebrtc_audio import EchoCanceller

    from app.speech.echo import echo_reduction_db

    speech = mediagen.speak("You said at eleven this morning that you left your passport in the "
                            "kitchen drawer, and then you went out to buy bread and milk.",
                            speed_wpm=175)
    user = mediagen.speak(INTERRUPTION)
    rng = np.random.default_rng(0)
    ir = room_ir(gain=0.6)
    out: dict[str, Any] = {}
    for warm_s in (3, 20):
        far = np.tile(speech, 8)[: int((warm_s + 3) * RATE)]
        echo = np.convolve(far.astype(float), ir)[: len(far)]
        near = echo + rng.normal(0, 20, len(far))
        u0 = warm_s * RATE
        near[u0:u0 + len(user)] += user
        near16 = np.clip(near, -32768, 32767).astype(np.int16)
        aec = EchoCanceller(RATE, 1, 0)
        t = time.perf_counter()
        cleaned = np.concatenate([aec.process(near16[i:i + 160], far[i:i + 160])
                                  for i in range(0, len(far) - 159, 160)])
        per_frame_ms = 1000 * (time.perf_counter() - t) / (len(cleaned) / 160)

        def db(a: np.ndarray, b: np.ndarray) -> float:
            return round(echo_reduction_db(a, b), 1)

        echo_only = slice(u0 - 2 * RATE, u0)
        talk = slice(u0, u0 + len(user))
        out[f"after_{warm_s}s"] = {"echo_reduction_db": db(near16[echo_only],
                                                             cleaned[echo_only]),
                                    "double_talk_reduction_db": db(near16[talk], cleaned[talk]),
                                    "ms_per_10ms_frame": round(per_frame_ms, 3)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    quick = args.quick
    result: dict[str, Any] = {"machine": {"cpus": __import__("os").cpu_count(),
                                          "python": platform.python_version()}}
    print("overhead (fakes of fixed compute)…", flush=True)
    result["overhead"] = bench_overhead(3 if quick else 8)
    print(json.dumps(result["overhead"]), flush=True)
    print("AEC3 offline…", flush=True)
    result["aec_offline"] = bench_aec_offline()
    print(json.dumps(result["aec_offline"]), flush=True)
    if not pulse.available():
        print("PulseAudio is not installed: the real-parts parts are skipped")
    else:
        with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
            print("first audio (real parts)…", flush=True)
            result["first_audio"] = bench_first_audio(Path(tmp) / "a", 2 if quick else 5)
            print(json.dumps(result["first_audio"]), flush=True)
            print("barge-in (real parts)…", flush=True)
            cuts = [bench_barge_in(Path(tmp) / f"b{i}", 2 if quick else 5, said)
                    for i, said in enumerate(OVER_IT)]
            result["barge_in"] = {
                "speech_start_seen_to_silent": _ms([v for c in cuts for v in c.pop("after_vad_s")]),
                "vad_detection_ms": cuts[0]["vad_detection_ms"], "target_ms": 100,
                "by_sentence": cuts,
                "word_errors": {
                    "words_said": sum(len(c["user_words"]["said"].split()) * len(
                        c["user_words"]["heard"]) for c in cuts),
                    "heard": sum(sum(c["user_words"]["word_errors"]) for c in cuts),
                    "through_aec3_alone": sum(sum(c["user_words"]["through_aec3_alone"][
                        "word_errors"]) for c in cuts),
                    "said_alone": sum(c["user_words"]["said_alone"]["word_errors"] * len(
                        c["user_words"]["heard"]) for c in cuts)}}
            print(json.dumps(result["barge_in"]["word_errors"]), flush=True)
            for on in (True, False):
                key = "self_hearing_aec" if on else "self_hearing_no_aec"
                print(f"{key} (real parts)…", flush=True)
                result[key] = bench_self_hearing(Path(tmp) / key, (5 if quick else 20) if on
                                                 else (3 if quick else 10), on)
                print(json.dumps(result[key]), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "voice.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {OUT / 'voice.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
