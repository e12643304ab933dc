"""Shared data for the ml tests: the labelled dev pairs and their cosines under the real model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ml.dedup import DuplicateScorer, Pair, default_scorer_path, read_pairs
from ml.embedding import DEFAULT_MODEL, Embedder, Vectors
from ml.evaluation import pair_cosines

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
"""../shared/data beside the repository (CI clones the repository with ../shared beside it)."""
DEV_PAIRS = SHARED_DATA / "dedup_dev.jsonl"


def unit_vectors(count: int, dimension: int, seed: int = 0) -> Vectors:
    """Random unit vectors (distinct with probability one)."""
    matrix = np.random.default_rng(seed).standard_normal((count, dimension)).astype(np.float32)
    unit: Vectors = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return unit


class CachingEmbedder:
    """The real embedder, remembering each text's vector: the dev file is encoded once per run, not per test."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.cache: dict[str, Vectors] = {}

    @property
    def model_name(self) -> str:
        return self.embedder.model_name

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    def encode(self, texts: Sequence[str]) -> Vectors:
        missing = sorted({t for t in texts if t not in self.cache})
        if missing:
            self.cache.update(zip(missing, self.embedder.encode(missing), strict=True))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack([self.cache[t] for t in texts])


@pytest.fixture(scope="session")
def cached_embedder(embedder: Embedder) -> CachingEmbedder:
    return CachingEmbedder(embedder)


@pytest.fixture(scope="session")
def dev_pairs() -> list[Pair]:
    if not DEV_PAIRS.exists():
        pytest.skip(f"labelled dev pairs not found at {DEV_PAIRS}")
    return read_pairs(DEV_PAIRS)


@pytest.fixture(scope="session")
def dev_cosines(cached_embedder: CachingEmbedder, dev_pairs: list[Pair]) -> list[float]:
    return pair_cosines(cached_embedder, dev_pairs)


@pytest.fixture(scope="session")
def shipped_scorer() -> DuplicateScorer:
    return DuplicateScorer.load(default_scorer_path(DEFAULT_MODEL))
