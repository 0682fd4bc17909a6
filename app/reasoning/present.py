"""Questions about the present moment: "what am I holding?", "what do you see?".

Recent frames beat retrieved memory for these (a streaming-video finding), so they are not
searched for. With a vision model, the question goes to it with the camera's latest frame
(`LIVE_FRAME_S`) in its prompt, and its answer is said ("Looking at the camera now: …"). Without one, Daybook cannot
say in words what a frame shows, and says so plainly, with the latest clip the camera gave
(`PRESENT_S`); with no recent clip, it says that it sees nothing now.
"""

from __future__ import annotations

import re

from app.reasoning.base import Request
from app.reasoning.prompt import spoken_when

# The latest clip counts as now when it started this recently: a clip lasts up to 16 s, and the
# memory commits every second.
PRESENT_S = 60.0
LIVE_FRAME_S = 5.0  # the preview's latest frame counts as the present this long

_NOW = re.compile(r"""\b(?:
    what\s+(?:am|are)\s+(?:i|we)\s+(?:holding|wearing|carrying|looking\s+at|pointing\s+at)
  | what\s+(?:do|can)\s+you\s+see
  | (?:can|do)\s+you\s+see\s+(?:this|that|me|it|what)
  | what(?:'s|\s+is)\s+(?:this|that)(?:\s+(?:thing|here|one))?\s*\??$
  | what(?:'s|\s+is)\s+in\s+front\s+of\s+(?:me|you|the\s+camera)
  | what(?:'s|\s+is)\s+(?:on|in)\s+(?:the\s+)?camera
  | what\s+colou?r\s+is\s+(?:this|that|my)
  | describe\s+(?:what\s+you\s+see|the\s+scene|this|that)
  | look\s+at\s+(?:this|that)
  | what\s+does\s+(?:this|that|it)\s+look\s+like
)""", re.VERBOSE)


_LOWER_FIRST = {"a", "an", "the", "some", "two", "three", "several", "this", "there", "it"}


def _sentence(text: str) -> str:
    """The vision model's answer said after "Looking at the camera now:": "A person …" →
    "a person …." (a name or "I" keeps its capital)."""
    text = " ".join(text.split())
    first = text.split(" ", 1)[0]
    if first.lower() in _LOWER_FIRST or first in ("You", "Your"):
        text = first.lower() + text[len(first):]
    return text if text.endswith((".", "!", "?")) else text + "."


def asks_about_now(question: str) -> bool:
    """The question is about what the camera sees now, not about what was remembered."""
    return bool(_NOW.search(question.lower().replace("’", "'").strip()))


def present_answer(request: Request) -> str:
    """What is said for a question about now: the vision model's answer from the latest frame
    when there is one, else plainly that it cannot be said in words."""
    if request.seen_now:
        return f"Looking at the camera now: {_sentence(request.seen_now)}"
    if not request.citations:
        return ("I can't see anything right now: the camera has shown me nothing in the last "
                "minute.")
    seen = request.citations[0].moment
    return ("I can't say in words what I see: no vision model is installed (Settings, "
            f"Models). Here is what the camera saw {spoken_when(seen.t0_s, request.now_s)}.")
