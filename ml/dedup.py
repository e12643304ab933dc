"""Deciding "is this the same proposal?" for a pair of texts.

The scorer is a logistic model over the embedding cosine and the pair's languages: MiniLM puts
French paraphrases, and an English text beside its French counterpart, closer to unrelated text
than English paraphrases, so one cosine threshold cannot serve all three. Lexical signals
(word and character overlap, numbers, length) were tried and made cross-validated F1 worse on
the dev data, whose non-duplicates share theme and vocabulary by design (docs/benchmarks.md).

Weights and the threshold are fitted on labelled pairs (``fit``), with cross-validation figures
reported beside them, and saved as JSON with the name of the model whose cosines they expect.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.language import guess_language

FEATURES = ("cosine", "cosine_fr", "fr", "cosine_cross", "cross")
RELATED_FRACTION = 0.5
"""A pair is "related" when its cosine reaches this fraction of the cosine at which it would be a duplicate."""
FITTED_DIR = Path(__file__).resolve().parent / "fitted"


def slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model.strip("/")).strip("_") or "model"


def default_scorer_path(model: str) -> Path:
    """Where the scorer fitted for ``model`` ships (only the default model has one in the package)."""
    return FITTED_DIR / f"dedup-{slug(model)}.json"


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    duplicate: bool
    lang: str = ""


def read_pairs(path: Path) -> list[Pair]:
    """Pairs from a JSON-lines file ``{"a", "b", "duplicate", "lang"}``; a bad line is a ValueError naming it."""
    pairs = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pairs.append(Pair(str(row["a"]), str(row["b"]), bool(row["duplicate"]), str(row.get("lang", ""))))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a pair ({exc})") from exc
    return pairs


def features(a: str, b: str, cosine: float) -> list[float]:
    la, lb = guess_language(a), guess_language(b)
    cross = float(bool(la) and bool(lb) and la != lb)
    french = float(la == lb == "fr")
    return [cosine, cosine * french, french, cosine * cross, cross]


def _sigmoid(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class Verdict:
    probability: float
    duplicate: bool
    related: bool
    cosine: float


@dataclass(frozen=True)
class DuplicateScorer:
    model: str
    weights: tuple[float, ...]
    bias: float
    threshold: float
    cross_validation: dict[str, Any] = field(default_factory=dict)

    def probability(self, a: str, b: str, cosine: float) -> float:
        x = np.asarray(features(a, b, cosine), dtype=np.float64)
        return float(_sigmoid(np.asarray(x @ np.asarray(self.weights) + self.bias)))

    def judge(self, a: str, b: str, cosine: float) -> Verdict:
        p = self.probability(a, b, cosine)
        duplicate = p >= self.threshold
        # Measured on the cosine, not the probability: the fitted probabilities span a narrow band
        # (about 0.35 to 0.6), so a fraction of the probability threshold was reached by every pair.
        related = duplicate or self.probability(a, b, cosine / RELATED_FRACTION) >= self.threshold
        return Verdict(p, duplicate, related, cosine)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = asdict(self) | {"features": list(FEATURES)}
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> DuplicateScorer:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("features") != list(FEATURES):
            raise ValueError(
                f"{path}: fitted for features {data.get('features')}, this code uses {list(FEATURES)}"
            )
        return cls(str(data["model"]), tuple(float(w) for w in data["weights"]), float(data["bias"]),
                   float(data["threshold"]), dict(data.get("cross_validation", {})))  # fmt: skip


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    pairs: int


def scores(predicted: Sequence[bool], truth: Sequence[bool]) -> Scores:
    tp = sum(p and t for p, t in zip(predicted, truth, strict=True))
    fp = sum(p and not t for p, t in zip(predicted, truth, strict=True))
    fn = sum(t and not p for p, t in zip(predicted, truth, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return Scores(precision, recall, f1, len(truth))


def best_threshold(probabilities: Sequence[float], truth: Sequence[bool]) -> float:
    """The threshold with the best F1 on these pairs (midway between neighbouring scores)."""
    ordered = sorted(set(probabilities))
    candidates = [ordered[0]] + [(x + y) / 2 for x, y in itertools.pairwise(ordered)]
    best, chosen = -1.0, ordered[0]
    for threshold in candidates:
        f1 = scores([p >= threshold for p in probabilities], truth).f1
        if f1 > best:
            best, chosen = f1, threshold
    return chosen


def _fit_once(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.bool_], regularisation: float
) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=regularisation, max_iter=1000).fit(x, y)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def fit(pairs: Sequence[Pair], cosines: Sequence[float], model: str, *, folds: int = 5, repeats: int = 5,
        regularisation: float = 0.3, seed: int = 0) -> DuplicateScorer:  # fmt: skip
    """Fit on all pairs; the stored cross-validation figures come from refitting (weights and threshold)
    on each training fold and judging the held-out fold, repeated with ``repeats`` shufflings."""
    from sklearn.model_selection import StratifiedKFold

    x = np.array([features(p.a, p.b, c) for p, c in zip(pairs, cosines, strict=True)], dtype=np.float64)
    y = np.array([p.duplicate for p in pairs], dtype=bool)
    langs = sorted({p.lang for p in pairs})
    strata = [f"{p.lang}:{p.duplicate}" for p in pairs]
    runs: list[dict[str, Any]] = []
    for repeat in range(repeats):
        predicted = np.zeros(len(pairs), dtype=bool)
        split = StratifiedKFold(folds, shuffle=True, random_state=seed + repeat).split(x, strata)
        for train, test in split:
            w, b = _fit_once(x[train], y[train], regularisation)
            threshold = best_threshold(list(_sigmoid(x[train] @ w + b)), list(y[train]))
            predicted[test] = _sigmoid(x[test] @ w + b) >= threshold
        run = {"all": asdict(scores(list(predicted), list(y)))}
        for lang in langs:
            mask = np.array([p.lang == lang for p in pairs])
            run[lang] = asdict(scores(list(predicted[mask]), list(y[mask])))
        runs.append(run)
    summary: dict[str, Any] = {
        group: {
            k: round(float(np.mean([r[group][k] for r in runs])), 4) for k in ("precision", "recall", "f1")
        }
        | {"pairs": runs[0][group]["pairs"]}
        for group in runs[0]
    }
    summary["method"] = f"{repeats}x stratified {folds}-fold, weights and threshold refitted per fold"
    w, b = _fit_once(x, y, regularisation)
    threshold = best_threshold(list(_sigmoid(x @ w + b)), list(y))
    return DuplicateScorer(model, tuple(float(v) for v in w), b, float(threshold), summary)


def is_meaningful(text: str) -> bool:
    """Enough text to compare: at least two words. Empty or one-word text gets no suggestions."""
    return len(re.findall(r"\w{2,}", text)) >= 2
