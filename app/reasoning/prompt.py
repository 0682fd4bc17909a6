"""The prompt, in the order of the IXC2.5-OmniLive paper: the question, then the question's
related video clip, then the question's related memory (with times), plus the current time.

Items are added by rank until the model's context (less the answer's tokens) is full; an item
never goes in cut in half. What went in is what the answer cites.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from app.core.timefmt import local_dt
from app.memory.base import Moment
from app.reasoning.base import Citation, Prompt, Request

SYSTEM = (
    "You are Daybook, a private assistant that remembers what the user saw and heard. Reply "
    "to the user's question in one or two short sentences, using only the memories in the "
    "message, and say when it happened. If none of them answers the question, reply that you "
    "do not remember anything about it. Never make anything up."
)

# Measured by bench/reason.py with SmolLM2-135M (24 questions): a system prompt that said "the
# answer is spoken aloud" was parroted back ("The answer is spoken aloud.") in 10 answers (7/24
# held the fact); this wording: 14/24, with this closing line 15/24.
CLOSING = "Reply in one or two short sentences, from the memories above."

TokenCounter = Callable[[list[str]], list[int]]


def estimate_tokens(texts: list[str]) -> list[int]:
    """A safe over-estimate where no tokenizer is at hand (a remote server): ≈3 characters a
    token, which English text under most tokenizers does not reach."""
    return [len(t) // 3 + 4 for t in texts]


def part_of_day(hour: int) -> str:
    if hour < 5:
        return "night"
    if hour < 12:
        return "morning"
    if hour < 18:
        return "afternoon"
    return "evening"


def clock(t: dt.datetime) -> str:
    """"2:02 pm"."""
    return f"{t.hour % 12 or 12}:{t.minute:02d} {'am' if t.hour < 12 else 'pm'}"


def spoken_when(t_s: float, now_s: float) -> str:
    """When a moment happened, as it is said: "at 2:02 this afternoon", "yesterday at 9:15
    am", "on Monday at 6:40 pm", "on 3 November at 8:00 am"."""
    t, now = local_dt(t_s), local_dt(now_s)
    days = (now.date() - t.date()).days
    if days == 0:
        part = part_of_day(t.hour)
        this = "last night" if part == "night" else f"this {part}"
        return f"at {t.hour % 12 or 12}:{t.minute:02d} {this}"
    if days == 1:
        return f"yesterday at {clock(t)}"
    if 1 < days < 7:
        return f"on {t:%A} at {clock(t)}"
    return f"on {t.day} {t:%B}{'' if t.year == now.year else f' {t.year}'} at {clock(t)}"


def spoken_day(t_s: float, now_s: float) -> str:
    """"today", "yesterday", "Monday", "3 November" (", 2025" in another year)."""
    t, now = local_dt(t_s), local_dt(now_s)
    days = (now.date() - t.date()).days
    if days == 0:
        return "today"
    if days == 1:
        return "yesterday"
    if 1 < days < 7:
        return f"{t:%A}"
    return f"{t.day} {t:%B}{'' if t.year == now.year else f' {t.year}'}"


def describe(m: Moment) -> str:
    """One memory as the prompt shows it (without its time)."""
    if m.kind == "utterance":
        return f"heard: \u201c{m.text}\u201d" if m.text else f"heard {m.sound or 'a sound'}"
    if m.kind == "summary":
        span = "day" if m.id.startswith("sum-day-") else "hour"
        return f"summary of the {span}: {m.text}"
    note = f": {m.text}" if m.text else " (no description of it yet)"
    return f"saw a scene of {m.n_frames} frames{note}"


def _stamp(m: Moment) -> str:
    t0, t1 = local_dt(m.t0_s), local_dt(m.t1_s)
    return f"{t0:%a %d %b} {t0:%H:%M}\u2013{t1:%H:%M}"


def build_prompt(request: Request, *, context_tokens: int, answer_tokens: int,
                 count: TokenCounter = estimate_tokens) -> Prompt:
    """Chat messages for `request`, its citations added best first while they fit in
    `context_tokens` less `answer_tokens` (and a margin for the chat template)."""
    now = local_dt(request.now_s)
    head = (f"Current time: {now:%A %d %B %Y}, {clock(now)}.\n"
            f"Question: {request.question}")
    clips = [c for c in request.citations if c.moment.kind == "clip"]
    clip = clips[0] if clips else None
    clip_line = (f"Here is the question related video clip: [{_stamp(clip.moment)}] "
                 f"{describe(clip.moment)}" if clip else "")
    items = [c for c in request.citations if c is not clip]
    lines = [f"- [{_stamp(c.moment)}] {describe(c.moment)}" for c in items]
    fixed = [SYSTEM, head, clip_line, "Here is the question related memory:",
             CLOSING]
    costs = count(fixed + lines)
    budget = context_tokens - answer_tokens - 32 - sum(costs[: len(fixed)])
    if budget < 0:
        # Not even the question fits: ask without memories (the model says it does not know).
        budget = 0
    if clip is not None and costs[2] > budget:  # the clip line goes only if it fits
        clip, clip_line = None, ""
        budget += costs[2]
    kept: list[tuple[Citation, str]] = []
    for c, line, cost in zip(items, lines, costs[len(fixed):], strict=True):
        if cost <= budget:
            kept.append((c, line))
            budget -= cost
    memory = "\n".join(line for _, line in kept) or "(nothing related is remembered)"
    user = "\n".join(x for x in (head, clip_line, "Here is the question related memory:",
                                 memory, CLOSING) if x)
    cited = ([clip] if clip else []) + [c for c, _ in kept]
    cited.sort(key=lambda c: request.citations.index(c))
    return Prompt(request, [{"role": "system", "content": SYSTEM},
                            {"role": "user", "content": user}], cited)
