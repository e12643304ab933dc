"""pg_trgm's ``similarity``, reproduced: the baseline Decidim used for similar proposals."""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+")  # pg_trgm keeps letters and digits (any script) and splits on the rest


def trigrams(text: str) -> set[str]:
    """Each lower-cased word padded with two spaces in front and one behind, cut into trigrams."""
    grams: set[str] = set()
    for word in _WORD.findall(text.lower()):
        padded = f"  {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


def similarity(a: str, b: str) -> float:
    ta, tb = trigrams(a), trigrams(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)
