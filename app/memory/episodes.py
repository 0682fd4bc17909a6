"""Episodes: the day's moments integrated into stretches of activity (long-term memory, step 1).

IXC2.5-OmniLive integrates short-term memories (clips, utterances) into long-term memory. The
first level here is the *episode*: moments close together in time, split where the user was away
(no moment for `gap_s`) or where talk resumes after a quiet stretch (a new conversation). A long
camera-only stretch is cut every `max_quiet_episode_s`, so a webcam left running all afternoon
does not make one shapeless episode.

Each episode gets an extractive title (its most frequent content words) until a language model
writes summaries. Pure functions, no Qt, no store: they run on a day's moments wherever those are
(the timeline's background thread, the CLI).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.memory.base import Moment

GAP_S = 300.0  # nothing remembered for 5 minutes: the user was away, a new episode
QUIET_S = 120.0  # speech after 2 minutes without any: a new conversation
MAX_QUIET_EPISODE_S = 3600.0  # camera-only stretches are cut every hour
CONTEXT_S = 30.0  # camera clips this close to a conversation are its visual context

_WORD = re.compile(r"[a-z][a-z']+")
# Function words, fillers, greetings and times of day: they say nothing about what happened
# (the episode shows when it was).
_STOP = frozenset(re.split(r"\s+", """
a about above after again against all also am an and any are aren't as at be because been before
being below between both but by can can't could couldn't did didn't do does doesn't doing don't
down during each few for from further get gets got had hadn't has hasn't have haven't having he
he'd he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if in
into is isn't it it's its itself just let's like me more most mustn't my myself no nor not now of
off oh ok okay on once only or other ought our ours ourselves out over own really right same
shan't she she'd she'll she's should shouldn't so some such than that that's the their theirs
them themselves then there there's these they they'd they'll they're they've this those through
to too um uh under until up very was wasn't we we'd we'll we're we've well were weren't what
what's when when's where where's which while who who's whom why why's will with won't would
wouldn't yeah yes you you'd you'll you're you've your yours yourself yourselves going gonna want
know think thing things one two three say said see go went come came make made take took
good hello hi hey bye goodbye thanks thank please sorry morning afternoon evening night today
tonight tomorrow yesterday
""".strip()))


@dataclass(frozen=True)
class Episode:
    t0_s: float
    t1_s: float
    moment_ids: tuple[str, ...]
    n_clips: int
    n_utterances: int
    title: str  # extractive: "breakfast, eggs, coffee", or what kind of stretch it was

    @property
    def first_id(self) -> str:
        return self.moment_ids[0]

    def contains(self, moment_id: str) -> bool:
        return moment_id in self.moment_ids


def keywords(texts: Iterable[str], n: int = 3) -> tuple[str, ...]:
    """The `n` most frequent content words. Among equally frequent ones, words of five letters
    or more come first (short words are rarely what a stretch of the day was about), then the
    order they were first said in."""
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    for text in texts:
        for word in _WORD.findall(text.lower()):
            word = word.strip("'")
            if len(word) < 3 or word in _STOP:
                continue
            counts[word] += 1
            first.setdefault(word, len(first))
    ranked = sorted(counts, key=lambda w: (-counts[w], len(w) < 5, first[w]))
    return tuple(ranked[:n])


def _episode(moments: Sequence[Moment]) -> Episode:
    utterances = [m for m in moments if m.kind == "utterance"]
    words = keywords(m.text for m in moments if m.text)
    if words:
        title = ", ".join(words)
    elif utterances:
        sounds = Counter(m.sound or "speech" for m in utterances).most_common(1)[0][0]
        title = "talk (not transcribed)" if sounds == "speech" else sounds
    else:
        title = "camera only"
    return Episode(
        t0_s=moments[0].t0_s,
        t1_s=max(m.t1_s for m in moments),
        moment_ids=tuple(m.id for m in moments),
        n_clips=len(moments) - len(utterances),
        n_utterances=len(utterances),
        title=title,
    )


def group_episodes(moments: Iterable[Moment], *, gap_s: float = GAP_S,
                   quiet_s: float = QUIET_S,
                   max_quiet_episode_s: float = MAX_QUIET_EPISODE_S) -> list[Episode]:
    """Moments (any order) → episodes in time order. Every moment is in exactly one episode.

    1. Runs: split wherever nothing was remembered for more than `gap_s`.
    2. Conversations: within a run, utterances less than `quiet_s` apart belong together; camera
       clips within `CONTEXT_S` of a conversation are its visual context and join it.
    3. The clips left between (or around) conversations are a quiet stretch: an episode of their
       own when they last at least `quiet_s` (cut every `max_quiet_episode_s`), else they join
       the conversation before them (or, at the start of a run, the one after).
    """
    ordered = sorted(moments, key=lambda m: (m.t0_s, m.kind, m.id))
    groups: list[list[Moment]] = []
    for run in _runs(ordered, gap_s):
        groups.extend(_split_run(run, quiet_s, max_quiet_episode_s))
    return [_episode(g) for g in groups]


def _runs(ordered: list[Moment], gap_s: float) -> list[list[Moment]]:
    runs: list[list[Moment]] = []
    end_s = float("-inf")
    for m in ordered:
        if not runs or m.t0_s - end_s > gap_s:
            runs.append([])
            end_s = float("-inf")
        runs[-1].append(m)
        end_s = max(end_s, m.t1_s)
    return runs


def _split_run(run: list[Moment], quiet_s: float, max_quiet_s: float) -> list[list[Moment]]:
    # Conversations as time spans [t0, t1] of utterances less than quiet_s apart.
    talks: list[list[float]] = []
    for m in run:
        if m.kind != "utterance":
            continue
        if talks and m.t0_s - talks[-1][1] <= quiet_s:
            talks[-1][1] = max(talks[-1][1], m.t1_s)
        else:
            talks.append([m.t0_s, m.t1_s])
    if not talks:
        return _cut(run, max_quiet_s)
    # Each moment: the conversation it belongs to, or None (a quiet stretch).
    owner: list[int | None] = []
    k = 0
    for m in run:
        while k + 1 < len(talks) and m.t0_s >= talks[k + 1][0] - CONTEXT_S:
            k += 1
        t0, t1 = talks[k]
        inside = m.kind == "utterance" or t0 - CONTEXT_S <= m.t0_s <= t1 + CONTEXT_S
        owner.append(k if inside else None)
    i = 0
    while i < len(run):
        if owner[i] is not None:
            i += 1
            continue
        j = i
        while j < len(run) and owner[j] is None:
            j += 1
        stretch = run[i:j]
        if stretch[-1].t1_s - stretch[0].t0_s < quiet_s:
            before = next((owner[x] for x in range(i - 1, -1, -1) if owner[x] is not None), None)
            after = next((owner[x] for x in range(j, len(run)) if owner[x] is not None), None)
            target = before if before is not None else after
            for x in range(i, j):
                owner[x] = target
        i = j
    # In time order, a conversation's moments are consecutive: emit runs of one owner, cutting
    # the quiet stretches (owner None) that stand on their own.
    out: list[list[Moment]] = []
    for o, members in itertools.groupby(zip(run, owner, strict=True), key=lambda p: p[1]):
        moments = [m for m, _ in members]
        out.extend(_cut(moments, max_quiet_s) if o is None else [moments])
    return out


def _cut(moments: list[Moment], max_s: float) -> list[list[Moment]]:
    """A quiet (camera-only) stretch, cut into pieces of at most `max_s`."""
    pieces: list[list[Moment]] = []
    for m in moments:
        if not pieces or m.t0_s - pieces[-1][0].t0_s >= max_s:
            pieces.append([])
        pieces[-1].append(m)
    return pieces


def episode_of(episodes: Sequence[Episode], moment_id: str) -> Episode | None:
    return next((e for e in episodes if e.contains(moment_id)), None)
