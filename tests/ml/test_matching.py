"""Expert affinity, capacity-constrained assignment, partner ranking, and their quality on match_dev.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.match_evaluation import REPORT_KEYS, evaluate_match
from ml.matching import (
    Challenge,
    ExpertProfile,
    Idea,
    Infeasible,
    Partner,
    affinity,
    assign,
    encode_experts,
    encode_partners,
    explain,
    greedy_assign,
    rank_partners,
    states_a_lack,
)
from tests.ml.conftest import CachingEmbedder

# CI clones the repository with ../shared beside it.
MATCH_DEV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "match_dev.json"
NEG = -np.inf


def expert(
    id: str, text: str, organisation: str | None = None, capacity: int = 2, **kw: Any
) -> ExpertProfile:
    return ExpertProfile(id, text, frozenset({"en"}), organisation, "FR", capacity, **kw)


def idea(id: str, text: str, organisations: frozenset[str] = frozenset(), **kw: Any) -> Idea:
    return Idea(id, text, "en", organisations, **kw)


# --- assignment ----------------------------------------------------------------------------------------


@st.composite
def instances(draw: st.DrawFn) -> tuple[np.ndarray, list[int], int]:
    n_ideas = draw(st.integers(1, 12))
    n_experts = draw(st.integers(1, 8))
    k = draw(st.integers(1, 3))
    values = draw(st.lists(st.floats(-1, 1, allow_nan=False), min_size=n_ideas * n_experts,
                           max_size=n_ideas * n_experts))  # fmt: skip
    forbidden = draw(st.lists(st.booleans(), min_size=n_ideas * n_experts, max_size=n_ideas * n_experts))
    matrix = np.where(forbidden, NEG, values).reshape(n_ideas, n_experts)
    capacities = draw(st.lists(st.integers(1, 4), min_size=n_experts, max_size=n_experts))
    return matrix, capacities, k


@settings(max_examples=150, deadline=None)
@given(instances(), st.sampled_from([None, 2, 50]))
def test_assignment_never_uses_a_forbidden_pair_nor_exceeds_a_capacity(instance, candidates):
    matrix, capacities, k = instance
    if candidates is not None and candidates < k:
        candidates = k
    try:
        result = assign(matrix, capacities, k, candidates=candidates)
    except Infeasible as exc:
        short = exc.ideas
        assert short, "an infeasible instance names the ideas left short"
        assert all(0 <= i < len(matrix) for i in short)
        return
    for row, chosen in enumerate(result.experts):
        assert len(chosen) == k
        assert len(set(chosen)) == k, "k distinct experts"
        assert all(np.isfinite(matrix[row, c]) for c in chosen), (
            "a conflicted or unavailable pair was assigned"
        )
    assert (result.load(matrix.shape[1]) <= np.asarray(capacities)).all()


@settings(max_examples=60, deadline=None)
@given(instances())
def test_assignment_total_is_optimal_on_small_instances(instance):
    """Against exhaustive search for k=1 on instances small enough to enumerate."""
    from itertools import product

    matrix, capacities, _ = instance
    matrix, capacities = matrix[:5, :4], capacities[:4]
    best = -np.inf
    for choice in product(range(matrix.shape[1]), repeat=matrix.shape[0]):
        if all(choice.count(j) <= c for j, c in enumerate(capacities)):
            best = max(best, sum(matrix[i, j] for i, j in enumerate(choice)))
    if not np.isfinite(best):
        with pytest.raises(Infeasible):
            assign(matrix, capacities)
        return
    assert assign(matrix, capacities).total_affinity == pytest.approx(best, abs=1e-4)


def test_min_cost_flow_beats_greedy_when_two_ideas_want_the_same_expert():
    # Both ideas prefer expert 0 (capacity 1). Greedy overloads it; the flow gives it to idea 1, whose
    # second choice is much worse, and sends idea 0 to its close second.
    matrix = np.array([[0.9, 0.85, 0.1], [0.8, 0.2, 0.1]])
    greedy = greedy_assign(matrix)
    assert greedy.experts == ((0,), (0,))
    assert greedy.load(3)[0] == 2, "greedy ignores capacity"
    best = assign(matrix, [1, 1, 1])
    assert best.experts == ((1,), (0,))
    assert best.total_affinity == pytest.approx(1.65)
    assert best.total_affinity > 0.9 + 0.2  # the best greedy-feasible repair: idea 1 moved


def test_each_idea_gets_k_distinct_experts_best_first():
    matrix = np.array([[0.1, 0.9, 0.5, 0.3], [0.7, 0.2, 0.6, 0.4]])
    result = assign(matrix, [2, 2, 2, 2], k=3)
    assert result.experts == ((1, 2, 3), (0, 2, 3))


def test_an_idea_without_enough_eligible_experts_is_named():
    matrix = np.array([[0.5, NEG, NEG], [0.5, 0.4, 0.3], [NEG, NEG, NEG]])
    with pytest.raises(Infeasible, match="fewer than k=2 eligible") as caught:
        assign(matrix, [3, 3, 3], k=2)
    assert caught.value.ideas == [0, 2]
    assert "idea 0 (1 eligible)" in str(caught.value)
    assert "idea 2 (0 eligible)" in str(caught.value)


def test_exhausted_capacity_is_explained_with_the_ideas_left_short():
    # Three ideas can only go to expert 0 (capacity 2): one of them is left short.
    matrix = np.array([[0.9, NEG], [0.8, NEG], [0.7, NEG], [0.1, 0.5]])
    with pytest.raises(Infeasible, match="capacity exhausted") as caught:
        assign(matrix, [2, 5])
    assert len(caught.value.ideas) == 1
    assert caught.value.ideas[0] in {0, 1, 2}
    with pytest.raises(Infeasible, match=r"total capacity 2 < 4"):
        assign(np.full((4, 2), 0.5), [1, 1])


def test_top_candidates_fall_back_to_every_eligible_expert_rather_than_fail():
    # With one candidate each, all three ideas want expert 0 (capacity 1); the others are still eligible.
    matrix = np.array([[0.9, 0.2, 0.1], [0.9, 0.1, 0.2], [0.9, 0.3, 0.3]])
    result = assign(matrix, [1, 1, 1], candidates=1)
    assert sorted(c for (c,) in result.experts) == [0, 1, 2]


@pytest.mark.parametrize(
    ("capacities", "k", "says"),
    [
        ([1, 0], 1, "capacity must be a positive whole number; experts .columns. \\[1\\] have \\[0\\]"),
        ([1, -2], 1, "capacity must be a positive whole number"),
        ([1, 1.5], 1, "capacity must be a positive whole number"),
        ([1, 1], 0, "k must be at least 1"),
        ([1], 1, "1 capacities for 2 experts"),
    ],
)
def test_bad_inputs_are_refused_with_the_problem_named(capacities, k, says):
    with pytest.raises(ValueError, match=says):
        assign(np.array([[0.5, 0.4]]), capacities, k)


def test_k_larger_than_the_eligible_experts_is_infeasible_not_partial():
    with pytest.raises(Infeasible, match="fewer than k=3 eligible"):
        assign(np.array([[0.5, 0.4]]), [1, 1], k=3)
    with pytest.raises(ValueError, match="NaN"):
        assign(np.array([[np.nan, 0.4]]), [1, 1])
    with pytest.raises(ValueError, match="candidates"):
        assign(np.array([[0.5, 0.4]]), [1, 1], k=2, candidates=1)


# --- affinity, explain, partners (real model) -----------------------------------------------------------

CYCLING = (
    "Transport planner specialised in cycling infrastructure. Designed protected bike lanes and secure cycle "
    "parking. Has little experience with bus or rail operations."
)
TRANSIT = "Public transport network designer. Specialises in bus network redesign and timetable coordination."


def test_conflicts_and_unavailable_experts_are_minus_infinity(cached_embedder: CachingEmbedder):
    experts = [
        expert("e1", CYCLING, organisation="org-a"),
        expert("e2", TRANSIT),
        expert("e3", TRANSIT, available=False),
    ]
    ideas = [
        idea("i1", "Protected bike lanes on the avenue", frozenset({"org-a"})),
        idea("i2", "Buses that wait for the train", conflicts=frozenset({"e2"})),
    ]
    scores = affinity(ideas, experts, cached_embedder.encode([i.text for i in ideas]),
                      encode_experts(experts, cached_embedder))  # fmt: skip
    assert np.isneginf(scores[0, 0]), "the author's organisation"
    assert np.isneginf(scores[1, 1]), "a declared conflict"
    assert np.isneginf(scores[:, 2]).all(), "unavailable"
    assert np.isfinite(scores[0, 1])
    assert np.isfinite(scores[1, 0])


def test_a_stated_lack_of_experience_does_not_count_as_a_match(cached_embedder: CachingEmbedder):
    assert states_a_lack("Has little experience with bus or rail operations.")
    assert not states_a_lack("Designed protected bike lanes.")
    experts = [expert("e1", CYCLING), expert("e2", TRANSIT)]
    ideas = [idea("i1", "Rework the bus timetables so connections with rail are guaranteed")]
    scores = affinity(ideas, experts, cached_embedder.encode([ideas[0].text]),
                      encode_experts(experts, cached_embedder))  # fmt: skip
    assert scores[0, 1] > scores[0, 0]


def test_explain_returns_the_profile_sentences_that_matched(cached_embedder: CachingEmbedder):
    profile = (
        "Urban hydrologist working on climate adaptation. Designs permeable paving, bioswales and floodable "
        "parks. Also works with water utilities on leak detection and network monitoring."
    )
    reasons = explain(
        "Acoustic sensors to find leaks in the drinking water network", profile, cached_embedder
    )
    assert reasons[0] == "Also works with water utilities on leak detection and network monitoring."
    assert len(reasons) == 2
    everything = explain("bus timetables and rail operations", CYCLING, cached_embedder, limit=5)
    assert len(everything) == 2
    assert not any("little experience" in s for s in everything)


def test_partners_from_the_challenges_country_are_never_ranked(cached_embedder: CachingEmbedder):
    partners = [
        Partner(
            "p1", "FR", "Carpooling platform for employers in business parks.", "Sites abroad.", "company"
        ),
        Partner(
            "p2", "CA", "Carpooling app that matches colleagues by shift.", "A European pilot.", "company"
        ),
        Partner(
            "p3",
            "NL",
            "Bike-to-work programmes with employers. Secure bike parking audits.",
            "",
            "association",
        ),
        Partner("p4", "fr", "Bike leasing for companies.", "", "company"),
    ]
    challenge = Challenge(
        "c1", "Employees drive alone to our business park: we want carpooling and cycling.", "FR"
    )
    ranked = rank_partners(challenge, partners, cached_embedder.encode([challenge.text])[0],
                           encode_partners(partners, cached_embedder))  # fmt: skip
    assert [m.partner_id for m in ranked]
    assert {m.partner_id for m in ranked} == {"p2", "p3"}
    assert ranked[0].score >= ranked[1].score
    by_id = {m.partner_id: m for m in ranked}
    assert by_id["p3"].reason in {"Bike-to-work programmes with employers.", "Secure bike parking audits."}


# --- quality on the labelled dev file --------------------------------------------------------------------


@pytest.fixture(scope="module")
def match_dev() -> dict[str, Any]:
    if not MATCH_DEV.exists():
        pytest.skip(f"labelled match data not found at {MATCH_DEV}")
    data: dict[str, Any] = json.loads(MATCH_DEV.read_text(encoding="utf-8"))
    return data


def test_quality_on_match_dev(match_dev, cached_embedder: CachingEmbedder):
    """Measured 0.90 / 0.967 / 0.917 / 1.00 / 1.00 (bench/match_quality.py, docs/benchmarks.md)."""
    report = evaluate_match(match_dev, cached_embedder)
    assert tuple(report) == REPORT_KEYS
    assert report["ideas"] == 60
    assert report["challenges"] == 15
    assert report["expert_top1"] >= 0.88
    assert report["expert_recall_at_3"] >= 0.95
    assert report["assignment_in_gold"] >= 0.90
    assert report["conflicts_assigned"] == 0
    assert report["over_capacity"] == 0
    assert report["partner_top1"] >= 0.93
    assert report["partner_recall_at_3"] >= 0.95
    assert report["same_country_suggested"] == 0
    baseline = evaluate_match(match_dev, cached_embedder, baseline=True)
    assert baseline["over_capacity"] > 0
    assert baseline["expert_top1"] < report["expert_top1"]
