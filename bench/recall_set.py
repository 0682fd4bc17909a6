"""A scripted day and the questions about it, each with the moment that answers it (bench/recall.py).

Thursday 12 March 2026, 07:00 to 22:00 (local time): 74 utterances on everyday topics (people,
plans, objects and places, food, errands, work, health), with distractors that share words with
a question but not its meaning ("the coffee machine is leaking" for "the last time I had a
coffee"), and 24 camera clips (empty text, random unit 256-d vectors). Deterministic: nothing is
downloaded, the clips' vectors come from a seeded generator.

Questions, in three groups:
  paraphrase   the answer in other words: few or no content words in common with it
  time         time words choose among moments on the same topic ("the car this morning");
               each has its `untimed` form, the same question with the time words removed
  latest       "the last time I …": an older and a newer moment match, the newer one answers
Every question has its `now` (22:30 on the day unless it says otherwise). "For lunch" is no
time word to app/reasoning/timewords.py (the meal, not its time), so the meal questions say "at
lunch".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from app.memory.base import Moment

DAY = dt.date(2026, 3, 12)  # a Thursday
CLIP_DIM = 256
UTTERANCE_S = 4.0
CLIP_S = 20.0
GROUPS = ("paraphrase", "time", "latest")


def at(hhmm: str, day: dt.date = DAY) -> dt.datetime:
    h, m = hhmm.split(":")
    return dt.datetime.combine(day, dt.time(int(h), int(m)))


DEFAULT_NOW = at("22:30")

# (time, id, text). Ids say what a moment is about, so a failing question reads at a glance.
SCRIPT: tuple[tuple[str, str, str], ...] = (
    ("07:02", "alarm", "Ugh, the alarm went off way too early, I barely slept four hours"),
    ("07:10", "coffee-machine", "The coffee machine is leaking water all over the counter again"),
    ("07:12", "coffee-1", "First coffee, a double espresso, no sugar"),
    ("07:15", "breakfast", "I'll just have porridge with blueberries and a spoon of honey"),
    ("07:18", "boiler-pressure", "The boiler pressure dropped again, the radiators are cold"),
    ("07:22", "plants-1", "I gave the tomato seedlings on the balcony a good soak before they "
                          "dry out"),
    ("07:30", "forecast", "Radio says it will pour with rain all afternoon, take an umbrella"),
    ("07:35", "car-brakes", "The car makes a horrible grinding sound whenever I press the brake "
                            "pedal"),
    ("07:41", "lunchbox", "Put Leo's lunchbox in his school bag, the one with the green lid"),
    ("07:46", "school-trip", "Leo's teacher says the class trip to the science museum is on the "
                             "28th"),
    ("07:48", "swim-pickup", "Leo has swimming after school so pick him up at half four from "
                             "the pool"),
    ("07:50", "recycling", "Took the recycling out to the green bin"),
    ("07:55", "keys", "I left the keyring hanging behind the bathroom door"),
    ("08:00", "corner-shop", "Popped into the corner shop for milk and a newspaper"),
    ("08:05", "bus", "The 42 bus was cancelled so I am walking to the station"),
    ("08:20", "train", "The train is stuck outside Reading because of a signal failure"),
    ("08:40", "dentist", "The dentist's receptionist rang back, the filling is moved to next "
                         "Tuesday at nine"),
    ("09:00", "standup", "In standup Priya said the release is blocked by the login bug"),
    ("09:15", "laptop", "My laptop battery is down to ten percent, where is the charger"),
    ("09:30", "budget", "Marcus wants the quarterly budget spreadsheet by Friday noon"),
    ("09:45", "wifi-office", "The new wifi password for the office is on a sticky note under "
                             "the monitor"),
    ("10:00", "design-review", "The design review moved to the big meeting room on the third "
                               "floor"),
    ("10:05", "headache", "I've got a throbbing headache, I'll take two paracetamol"),
    ("10:20", "anna-movie", "Anna said we should watch Inception tonight"),
    ("10:30", "anna-sister", "Anna's sister is moving to Lisbon in June"),
    ("10:45", "printer-jam", "The printer on the second floor jammed again, I reported it to IT"),
    ("11:15", "client", "Spoke with the client from Oslo, they want a demo of the new dashboard"),
    ("11:30", "dashboard-wrong", "The dashboard numbers look wrong since the database migration"),
    ("11:40", "gym-plan", "I should go to the gym tonight, it's leg day"),
    ("11:50", "anniversary", "Booked a table at Luigi's for Saturday at eight for our "
                             "anniversary"),
    ("12:10", "lunch", "Grabbed a falafel wrap and a mango lassi from the food truck"),
    ("12:20", "jess-pickup", "Sam is picking Jess up from the airport"),
    ("12:40", "mum", "Mum phoned, she wants us all over for Sunday roast"),
    ("12:55", "grandma-card", "Bought a birthday card for Grandma at the newsagent"),
    ("13:00", "pharmacy", "Need to pick up my blood pressure tablets from the pharmacy before "
                          "six"),
    ("13:20", "car-garage", "Booked the car into the garage on Saturday to have the brakes "
                            "checked"),
    ("13:35", "bank-charge", "I need to call the bank about a strange charge on my card"),
    ("13:45", "parcel", "The parcel from Amazon was left with the neighbour at number 12"),
    ("13:50", "marcus-sick", "Marcus from accounts is off sick with the flu"),
    ("14:00", "tom-birthday", "Tom's birthday is on the 19th, he'd love a new pair of running "
                              "shoes"),
    ("14:10", "tap", "The kitchen tap has been running all day, it needs a new washer"),
    ("14:20", "bug-found", "Found it, the login bug was a missing timezone in the token check"),
    ("14:40", "coffee-2", "Second coffee of the day, a flat white with oat milk from the café "
                          "downstairs"),
    ("15:02", "plumber", "The plumber can come Monday between eight and ten to fix the boiler"),
    ("15:20", "jess-flight", "Jess's flight lands at Gatwick at ten past eight tonight"),
    ("15:35", "landlord", "Emailed the landlord about the mould in the bathroom"),
    ("15:40", "invoice", "Sent the invoice for the February consulting work to Hendricks"),
    ("15:55", "tom-it", "Tom from IT finally fixed the printer"),
    ("16:02", "dad", "That was Dad on the phone, his hip operation went fine"),
    ("16:10", "priya-hotfix", "Priya messaged that the hotfix is deployed and the release can go "
                              "out"),
    ("16:20", "downpour", "It's absolutely bucketing down, my shoes are soaked"),
    ("16:35", "leo-badge", "Picked Leo up from swimming, he got his 25 metre badge"),
    ("16:45", "football", "The kids' football match is off because the pitch is waterlogged"),
    ("16:50", "out-of", "We are out of eggs, rice and washing-up liquid"),
    ("17:00", "slides", "Finished the slides for the presentation to the board"),
    ("17:10", "supermarket", "At Tesco, they had no basmati so I got jasmine rice and a dozen eggs"),
    ("17:30", "curry", "I'm making a Thai green curry with the leftover chicken"),
    ("18:00", "homework", "Helped Leo with his fractions homework, he finally gets common "
                          "denominators"),
    ("18:20", "gym-skip", "Not going to the gym, I'm far too tired, I'll go tomorrow morning"),
    ("18:40", "jess-delay", "Jess texted that her flight is delayed by forty minutes"),
    ("19:10", "plants-2", "Watered the basil and the tomatoes on the balcony again, the soil was "
                          "bone dry"),
    ("19:30", "dishwasher", "The dishwasher is making a weird clicking noise"),
    ("19:45", "film-start", "Started the film, Anna brought popcorn"),
    ("20:00", "pancakes", "Leo wants pancakes for breakfast tomorrow"),
    ("20:10", "insurance", "Remember to renew the car insurance before the end of the month"),
    ("20:20", "bank-password", "The password for the bank app needs changing every ninety days"),
    ("20:25", "wifi-home", "The wifi at home keeps dropping out in the evening"),
    ("20:40", "kittens", "Anna asked if we want one of her cat's kittens"),
    ("20:45", "back", "My back is killing me from sitting at the desk all day"),
    ("20:50", "ibuprofen", "Took an ibuprofen and put a hot water bottle on my back"),
    ("21:05", "postbox", "Walked to the postbox, the rain has finally stopped"),
    ("21:30", "bins", "Took the rubbish bags out to the bins"),
    ("21:45", "book", "I'm reading a book about the history of the Roman empire"),
    ("21:55", "alarm-set", "Set the alarm for half six tomorrow"),
)


@dataclass(frozen=True)
class Question:
    text: str
    answer: str  # the id of the moment that answers it
    group: str  # one of GROUPS
    now: dt.datetime = DEFAULT_NOW
    untimed: str = ""  # time questions: the question without its time words


def _p(text: str, answer: str) -> Question:
    return Question(text, answer, "paraphrase")


def _t(text: str, answer: str, untimed: str, now: str = "22:30") -> Question:
    return Question(text, answer, "time", at(now), untimed)


def _l(text: str, answer: str) -> Question:
    return Question(text, answer, "latest")


QUESTIONS: tuple[Question, ...] = (
    # --- paraphrases: the answer said in other words ---------------------------------------
    _p("which film did Anna recommend?", "anna-movie"),
    _p("where did I put my house keys?", "keys"),
    _p("what noise was the vehicle making?", "car-brakes"),
    _p("what's the weather forecast?", "forecast"),
    _p("when is my dental appointment?", "dentist"),
    _p("why can't we ship the new version?", "standup"),
    _p("what document does Marcus need from me?", "budget"),
    _p("how do I get on the internet at work?", "wifi-office"),
    _p("what did I take for the pain in my head?", "headache"),
    _p("which city is Anna's sibling going to live in?", "anna-sister"),
    _p("what did I get from the street food vendor?", "lunch"),
    _p("what invitation did my mother give us?", "mum"),
    _p("which medication do I have to collect?", "pharmacy"),
    _p("where is my delivery?", "parcel"),
    _p("what present should I get Tom?", "tom-birthday"),
    _p("what caused the sign-in problem?", "bug-found"),
    _p("when is someone coming to repair the heating?", "plumber"),
    _p("who did I send the bill to?", "invoice"),
    _p("how did Dad's surgery go?", "dad"),
    _p("what award did Leo earn?", "leo-badge"),
    _p("which groceries have we run out of?", "out-of"),
    _p("what meal am I cooking?", "curry"),
    _p("what maths topic was Leo struggling with?", "homework"),
    _p("why am I skipping my workout?", "gym-skip"),
    _p("which appliance sounds odd?", "dishwasher"),
    _p("why was the railway journey late?", "train"),
    _p("how much charge does my computer have left?", "laptop"),
    _p("what does the Norwegian customer want?", "client"),
    _p("which device is dripping onto the worktop?", "coffee-machine"),
    _p("how much rest did I get?", "alarm"),
    _p("where are we celebrating our wedding anniversary?", "anniversary"),
    _p("what pet is Anna offering us?", "kittens"),
    # --- time words choose among moments on one topic ----------------------------------------
    _t("what did I say about the car this morning?", "car-brakes",
       "what did I say about the car?"),
    _t("what did I say about the car this afternoon?", "car-garage",
       "what did I say about the car?"),
    _t("what was said at 3 pm?", "plumber", "what was said?"),
    _t("who called an hour ago?", "dad", "who called?", now="17:00"),
    _t("what did I eat at lunch?", "lunch", "what did I eat?"),
    _t("what did I eat at breakfast?", "breakfast", "what did I eat?"),
    _t("what did Jess say this evening?", "jess-delay", "what did Jess say?"),
    _t("how was I feeling at 10 am?", "headache", "how was I feeling?"),
    _t("what did I buy in the last hour?", "supermarket", "what did I buy?", now="17:55"),
    _t("what did Priya say this afternoon?", "priya-hotfix", "what did Priya say?"),
    _t("what did I say about the rain this afternoon?", "downpour",
       "what did I say about the rain?"),
    _t("what did I do ten minutes ago?", "bins", "what did I do?", now="21:40"),
    _t("what did Leo do this afternoon?", "leo-badge", "what did Leo do?"),
    _t("what did I say about coffee this afternoon?", "coffee-2", "what did I say about coffee?"),
    # --- "the last time I …": the newer of two matching moments ------------------------------
    _l("when did I last water the plants?", "plants-2"),
    _l("the last time I had a coffee, what kind was it?", "coffee-2"),
    _l("what is the latest news about Jess's flight?", "jess-delay"),
    _l("the last time I took a painkiller, which one was it?", "ibuprofen"),
    _l("when did I last take the rubbish out?", "bins"),
    _l("what did Priya say most recently?", "priya-hotfix"),
    _l("the last time I went to a shop, what did I get?", "supermarket"),
)


def utterances() -> list[Moment]:
    out = []
    for hhmm, id_, text in SCRIPT:
        t0 = at(hhmm).timestamp()
        out.append(Moment(id_, "utterance", t0, t0 + UTTERANCE_S, text, sound="speech"))
    return out


def clips(n: int = 24, seed: int = 3) -> list[tuple[Moment, np.ndarray]]:
    """`n` clips spread evenly from 07:00 to 22:00, each with a random unit vector."""
    rng = np.random.default_rng(seed)
    start, end = at("07:00").timestamp(), at("22:00").timestamp()
    out = []
    for i in range(n):
        t0 = start + (end - start) * i / (n - 1) - (CLIP_S if i == n - 1 else 0.0)
        v = rng.standard_normal(CLIP_DIM).astype(np.float32)
        out.append((Moment(f"clip-{i:02d}", "clip", t0, t0 + CLIP_S, n_frames=20),
                    v / np.linalg.norm(v)))
    return out


def check() -> None:
    """The set is what its docstring says (the counts the brief asks for, known answers)."""
    ids = [id_ for _, id_, _ in SCRIPT]
    assert len(ids) == len(set(ids)), "duplicate moment ids"
    assert len(ids) >= 60 and len(clips()) >= 20
    times = [at(h) for h, _, _ in SCRIPT]
    assert times == sorted(times) and at("07:00") <= times[0] and times[-1] <= at("22:00")
    for q in QUESTIONS:
        assert q.answer in ids, q
        assert q.group in GROUPS, q
        assert (q.group == "time") == bool(q.untimed), q
    count = {g: sum(q.group == g for q in QUESTIONS) for g in GROUPS}
    assert count["paraphrase"] >= 25 and count["time"] >= 10 and count["latest"] >= 5, count
    assert len(QUESTIONS) >= 40
