"""The answer Daybook gives with no language model: the remembered moments themselves."""

from __future__ import annotations

from app.core.timefmt import local_dt
from app.memory.base import Moment
from app.reasoning.base import Citation


def _when(t0_s: float, t1_s: float) -> str:
    a, b = local_dt(t0_s), local_dt(t1_s)
    return f"{a:%a %d %b, %H:%M:%S}–{b:%H:%M:%S}"


def summary_span(m: Moment) -> str:
    """"hour" or "day": what a summary moment sums up."""
    return "day" if m.id.startswith("sum-day-") else "hour"


class ExtractiveReasoner:
    name = "extractive (no language model)"

    def answer(self, question: str, citations: list[Citation], scope: str | None) -> str:
        if not citations:
            where = f" from {scope}" if scope else ""
            return f"I don't remember anything{where} that matches that."
        lines = [f"Here is what I remember{' from ' + scope if scope else ''}:"]
        for c in citations:
            m = c.moment
            if m.kind == "utterance":
                what = f"heard: \u201c{m.text}\u201d" if m.text else f"{m.sound or 'sound'}"
            elif m.kind == "summary":
                what = f"summary of the {summary_span(m)}: {m.text}"
            else:
                what = f"saw a scene ({m.n_frames} frames)" + (f": {m.text}" if m.text else "")
            lines.append(f"- {_when(m.t0_s, m.t1_s)} — {what}")
        return "\n".join(lines)
