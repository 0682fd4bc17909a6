"""Questions about the present moment: "what am I holding?", "what do you see?".

Recent frames beat retrieved memory for these (a streaming-video finding), so they are not
searched for: they are answered from the latest clip the camera gave (`PRESENT_S`). Without a
vision model, Daybook cannot say in words what a frame shows, and says so plainly, with the
frame; with no recent clip, it says that it sees nothing now.
"""

from __future__ import annotations

import re

from app.reasoning.base import Request
from app.reasoning.prompt import spoken_when

# The latest clip counts as now when it started this recently: a clip lasts up to 16 s, and the
# memory commits every second.
PRESENT_S = 60.0

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


def asks_about_now(question: str) -> bool:
    """The question is about what the camera sees now, not about what was remembered."""
    return bool(_NOW.search(question.lower().replace("’", "'").strip()))


def present_answer(request: Request) -> str:
    """What is said for a question about now, without a vision model."""
    if not request.citations:
        return ("I can't see anything right now: the camera has shown me nothing in the last "
                "minute.")
    seen = request.citations[0].moment
    return ("I can't say in words what I see: no vision model is installed (Settings, "
            f"Models). Here is what the camera saw {spoken_when(seen.t0_s, request.now_s)}.")
