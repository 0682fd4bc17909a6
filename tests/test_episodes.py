"""Episodes: the day's moments integrated into stretches of activity (pure logic)."""

from __future__ import annotations

from app.memory.base import Moment
from app.memory.episodes import episode_of, group_episodes, keywords

T0 = 1_795_000_000.0  # some morning


def utt(t: float, text: str, d: float = 3.0) -> Moment:
    return Moment(f"utt-{round((T0 + t) * 1000)}", "utterance", T0 + t, T0 + t + d, text=text,
                  sound="speech")


def clip(t: float, d: float = 16.0) -> Moment:
    return Moment(f"clip-{round((T0 + t) * 1000)}", "clip", T0 + t, T0 + t + d,
                  key_frame="k.jpg", n_frames=16)


def camera(t0: float, t1: float) -> list[Moment]:
    """A webcam that keeps running: one clip every 16 s."""
    return [clip(t) for t in range(int(t0), int(t1), 16)]


def spans(episodes) -> list[tuple[float, float]]:  # type: ignore[no-untyped-def]
    return [(e.t0_s - T0, e.t1_s - T0) for e in episodes]


def test_every_moment_lands_in_exactly_one_episode_in_time_order() -> None:
    moments = ([*camera(0, 1800), utt(100, "eggs for breakfast"),
                utt(400, "the meeting"), utt(420, "is at three"), utt(1500, "water the plants")])
    episodes = group_episodes(reversed(moments))
    ids = [i for e in episodes for i in e.moment_ids]
    assert sorted(ids) == sorted(m.id for m in moments)
    assert len(ids) == len(set(ids))
    assert [e.t0_s for e in episodes] == sorted(e.t0_s for e in episodes)
    for e in episodes:
        assert e.n_clips + e.n_utterances == len(e.moment_ids)


def test_away_for_more_than_the_gap_starts_a_new_episode() -> None:
    morning = [utt(0, "good morning"), clip(5), utt(30, "coffee please")]
    evening = [utt(4000, "dinner is ready"), clip(4010)]
    episodes = group_episodes(morning + evening)
    assert spans(episodes) == [(0, 33), (4000, 4026)]
    assert episodes[1].title == "dinner, ready"


def test_a_new_conversation_after_a_quiet_stretch_splits_and_the_quiet_part_stands_alone() -> None:
    moments = [*camera(0, 1200), utt(20, "breakfast eggs"),
               utt(40, "more eggs"), utt(900, "meeting at three"), utt(930, "meeting room two")]
    episodes = group_episodes(moments)
    kinds = [(e.title, e.n_utterances > 0) for e in episodes]
    # breakfast talk (with its camera context), the quiet camera stretch, the meeting talk,
    # the camera alone again for four minutes after it
    assert [t for t, _ in kinds] == ["eggs, breakfast", "camera only", "meeting, room",
                                     "camera only"]
    talk1, quiet, talk2, _after = episodes
    assert talk1.n_utterances == 2 and talk2.n_utterances == 2
    assert quiet.n_utterances == 0 and quiet.n_clips > 30
    # camera clips within 30 s of the talk are its context: they stay with it
    assert talk1.t1_s - T0 >= 43 + 16
    assert talk2.t0_s - T0 <= 900 - 16


def test_a_short_lull_stays_in_the_conversation() -> None:
    moments = [*camera(0, 240), utt(10, "pasta recipe"), utt(150, "pasta needs salt")]
    episodes = group_episodes(moments)  # 137 s between the two: a new talk, but the camera-only
    assert len(episodes) == 2  # lull between them (80 s) and the 30 s after are too short
    assert episodes[0].title == "pasta, recipe" and episodes[1].title == "pasta, needs, salt"
    assert episodes[0].n_clips + episodes[1].n_clips == len(camera(0, 240))


def test_hours_of_camera_only_are_cut_hourly() -> None:
    episodes = group_episodes(camera(0, 3 * 3600))
    assert len(episodes) == 3
    assert all(e.title == "camera only" for e in episodes)
    assert all(e.t1_s - e.t0_s <= 3600 + 16 for e in episodes)


def test_titles_are_the_most_frequent_content_words() -> None:
    assert keywords(["I think the keys are in the kitchen", "the KEYS, yes, kitchen drawer"]) \
        == ("kitchen", "keys", "drawer")
    assert keywords(["good morning, I have scrambled eggs and coffee"]) \
        == ("scrambled", "coffee", "eggs")
    assert keywords(["um, yeah, okay"]) == ()
    untranscribed = [Moment("utt-1", "utterance", T0, T0 + 2, sound="speech")]
    assert group_episodes(untranscribed)[0].title == "talk (not transcribed)"
    music = [Moment("utt-1", "utterance", T0, T0 + 2, sound="music")]
    assert group_episodes(music)[0].title == "music"


def test_episode_of_finds_the_episode_holding_a_moment() -> None:
    moments = [utt(0, "hello"), utt(1000, "goodbye")]
    episodes = group_episodes(moments)
    assert episode_of(episodes, moments[1].id) is episodes[1]
    assert episode_of(episodes, "clip-0") is None
    assert group_episodes([]) == []
