"""A lexical embedder that needs no model: hashed words, word pairs and character n-grams.

It finds moments that share words (or word stems and spellings) with the question; it knows no
synonyms. It is the last fallback (all-MiniLM-L6-v2 from its wheel is the default: see
app/memory/embed_minilm.py), and it reads data dirs from before while they are re-embedded.
"""

from __future__ import annotations

import itertools
import re
import zlib

import numpy as np

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "so",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "about",
        "as",
        "into",
        "over",
        "under",
        "up",
        "down",
        "is",
        "am",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "done",
        "have",
        "has",
        "had",
        "having",
        "i",
        "me",
        "my",
        "mine",
        "we",
        "us",
        "our",
        "you",
        "your",
        "he",
        "him",
        "his",
        "she",
        "her",
        "it",
        "its",
        "they",
        "them",
        "their",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "some",
        "no",
        "not",
        "just",
        "than",
        "too",
        "very",
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "say",
        "said",
        "tell",
        "told",
        "ask",
        "asked",
        "know",
        "let",
        "s",
        "t",
        "d",
        "ll",
        "m",
        "re",
        "ve",
        "today",
        "yesterday",
        "morning",
        "afternoon",
        "evening",
        "tonight",
        "night",
        "week",
        "hour",
        "hours",
        "minute",
        "minutes",
        "ago",
        "last",
        "past",
        "earlier",
        "recently",
        "happen",
        "happened",
        "remember",
        "anything",
        "something",
    ]
)


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def stem(word: str) -> str:
    for suffix in ("ings", "ing", "edly", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


class LexicalEmbedder:
    name = "lexical (hashed n-grams)"
    min_similarity = 0.12

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim

    def _features(self, text: str) -> list[tuple[str, float]]:
        stems = [stem(w) for w in words(text)]
        feats: list[tuple[str, float]] = [("w:" + s, 1.0) for s in stems]
        feats += [("b:" + a + "_" + b, 0.5) for a, b in itertools.pairwise(stems)]
        for s in stems:
            padded = f"<{s}>"
            feats += [("c:" + padded[i : i + 4], 0.25) for i in range(len(padded) - 3)]
        return feats

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat, weight in self._features(text):
                h = zlib.crc32(feat.encode())
                out[row, h % self.dim] += weight if (h >> 16) & 1 else -weight
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
        return out
