"""Judging a duplicate scorer on labelled pairs, with exactly the scorer and model given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from ml.dedup import DuplicateScorer, Pair, scores
from ml.embedding import Embedder
from ml.index import VectorIndex

RETRIEVAL_K = 5


def pair_cosines(embedder: Embedder, pairs: Sequence[Pair]) -> list[float]:
    a = embedder.encode([p.a for p in pairs])
    b = embedder.encode([p.b for p in pairs])
    return [float(x) for x in (a * b).sum(axis=1)]


def retrieval_recall(embedder: Embedder, pairs: Sequence[Pair], k: int = RETRIEVAL_K) -> float:
    """For each duplicate pair: is its ``a`` among the ``k`` nearest of ``b`` when the corpus is every
    distinct ``a`` of the file?"""
    corpus = sorted({p.a for p in pairs})
    position = {text: number for number, text in enumerate(corpus)}
    index = VectorIndex(embedder.dimension)
    index.add(range(len(corpus)), embedder.encode(corpus))
    duplicates = [p for p in pairs if p.duplicate]
    if not duplicates:
        return 0.0
    results = index.search_many(embedder.encode([p.b for p in duplicates]), k)
    found = sum(
        position[p.a] in {hit.id for hit in hits} for p, hits in zip(duplicates, results, strict=True)
    )
    return found / len(duplicates)


def evaluate(scorer: DuplicateScorer, embedder: Embedder, pairs: Sequence[Pair]) -> dict[str, Any]:
    """The report of ``ideaforge eval dedup``: nothing here is fitted to ``pairs``."""
    cosines = pair_cosines(embedder, pairs)
    predicted = [scorer.judge(p.a, p.b, c).duplicate for p, c in zip(pairs, cosines, strict=True)]
    truth = [p.duplicate for p in pairs]
    overall = scores(predicted, truth)
    by_lang: dict[str, Any] = {}
    for lang in sorted({p.lang for p in pairs}):
        mask = np.array([p.lang == lang for p in pairs])
        part = scores([x for x, m in zip(predicted, mask, strict=True) if m],
                      [x for x, m in zip(truth, mask, strict=True) if m])  # fmt: skip
        by_lang[lang] = {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(part).items()}
    return {
        "pairs": len(pairs),
        "model": scorer.model,
        "threshold": round(scorer.threshold, 4),
        "precision": round(overall.precision, 4),
        "recall": round(overall.recall, 4),
        "f1": round(overall.f1, 4),
        "by_lang": by_lang,
        "retrieval_recall_at_5": round(retrieval_recall(embedder, pairs), 4),
    }
