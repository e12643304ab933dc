"""Judging expert and partner matching on a labelled file (``match_dev.json``'s format), nothing fitted.

The file: ``{"experts": [{"id", "organisation", "country", "languages", "capacity", "expertise"}],
"ideas": [{"id", "title", "text", "author_organisation", "gold"}], "partners": [{"id", "country", "kind",
"offers", "seeks", "region"?}], "challenges": [{"id", "title", "text", "country", "gold_partners"}]}``.
An idea's text for matching is its title and its text; an expert of the author's organisation is in
conflict. The per-language reference that ``affinity`` centres on is the file's own ideas (no labels used).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.embedding import Embedder
from ml.matching import (
    FITTED,
    AffinityWeights,
    Challenge,
    ExpertProfile,
    Idea,
    Matrix,
    Partner,
    affinity,
    assign,
    encode_experts,
    encode_partners,
    greedy_assign,
    rank_partners,
    ranked_ids,
)

TOP = 3
REPORT_KEYS = (
    "ideas", "expert_top1", "expert_recall_at_3", "assignment_in_gold", "conflicts_assigned", "over_capacity",
    "challenges", "partner_top1", "partner_recall_at_3", "same_country_suggested",
)  # fmt: skip


@dataclass(frozen=True)
class MatchData:
    experts: list[ExpertProfile]
    ideas: list[Idea]
    idea_texts: list[str]
    gold: list[set[str]]
    partners: list[Partner]
    challenges: list[Challenge]
    challenge_texts: list[str]
    gold_partners: list[set[str]]


def _text(title: Any, text: Any) -> str:
    """Title and text as one passage ("Title. Text")."""
    head, body = str(title or "").strip(), str(text).strip()
    if not head:
        return body
    return f"{head} {body}" if head[-1] in ".!?:" else f"{head}. {body}"


def parse_match_data(data: Any) -> MatchData:
    """The file's content as matching inputs; ValueError naming the first problem."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object with experts, ideas, partners and challenges")
    where = ""
    try:
        where = "experts"
        experts = [
            ExpertProfile(str(e["id"]), str(e["expertise"]), frozenset(str(x) for x in e.get("languages", [])),
                          e.get("organisation") or None, str(e.get("country", "")), int(e["capacity"]))
            for e in data["experts"]
        ]  # fmt: skip
        where = "ideas"
        ideas = [
            Idea(str(i["id"]), _text(i.get("title"), i["text"]), i.get("language") or None,
                 frozenset([i["author_organisation"]]) if i.get("author_organisation") else frozenset())
            for i in data["ideas"]
        ]  # fmt: skip
        gold = [{str(x) for x in i["gold"]} for i in data["ideas"]]
        where = "partners"
        partners = [
            Partner(str(p["id"]), str(p["country"]), str(p["offers"]), str(p.get("seeks", "")),
                    str(p.get("kind", "")), str(p.get("region", "")))
            for p in data.get("partners", [])
        ]  # fmt: skip
        where = "challenges"
        challenges = [
            Challenge(str(c["id"]), _text(c.get("title"), c["text"]), str(c["country"]),
                      str(c.get("organisation_offers", "")))
            for c in data.get("challenges", [])
        ]  # fmt: skip
        gold_partners = [{str(x) for x in c["gold_partners"]} for c in data.get("challenges", [])]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(f"{where}: {detail}") from exc
    if not experts or not ideas:
        raise ValueError("the file needs at least one expert and one idea")
    known = {e.id for e in experts}
    for idea, wanted in zip(ideas, gold, strict=True):
        if wanted - known:
            raise ValueError(f"idea {idea.id}: gold names unknown experts {sorted(wanted - known)}")
    return MatchData(experts, ideas, [i.text for i in ideas], gold, partners, challenges,
                     [c.text for c in challenges], gold_partners)  # fmt: skip


def expert_scores(data: MatchData, embedder: Embedder, weights: AffinityWeights = FITTED) -> Matrix:
    return affinity(data.ideas, data.experts, embedder.encode(data.idea_texts),
                    encode_experts(data.experts, embedder), weights=weights)  # fmt: skip


def plain_expert_scores(data: MatchData, embedder: Embedder) -> Matrix:
    """The baseline: cosine of the idea to the whole expertise text, no rule applied."""
    ideas = embedder.encode(data.idea_texts)
    experts = embedder.encode([e.text for e in data.experts])
    return (ideas @ experts.T).astype(np.float64)


def expert_figures(data: MatchData, scores: Matrix, assigned: Sequence[Sequence[int]]) -> dict[str, Any]:
    ids = [e.id for e in data.experts]
    ranked = ranked_ids(scores, ids)
    conflicted = {(i.id, e.id) for i in data.ideas for e in data.experts
                  if e.organisation is not None and e.organisation in i.organisations}  # fmt: skip
    load = Counter(c for chosen in assigned for c in chosen)
    n = len(data.ideas)
    return {
        "ideas": n,
        "expert_top1": round(sum(bool(r) and r[0] in g for r, g in zip(ranked, data.gold, strict=True)) / n, 4),
        "expert_recall_at_3": round(sum(bool(set(r[:TOP]) & g) for r, g in zip(ranked, data.gold, strict=True)) / n, 4),
        "assignment_in_gold": round(
            sum(any(ids[c] in g for c in a) for a, g in zip(assigned, data.gold, strict=True)) / n, 4
        ),
        "conflicts_assigned": sum((i.id, ids[c]) in conflicted for i, a in zip(data.ideas, assigned, strict=True) for c in a),
        "over_capacity": sum(load[j] > e.capacity for j, e in enumerate(data.experts)),
    }  # fmt: skip


def partner_figures(data: MatchData, ranked: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Top-1 in gold; recall@3 = share of each challenge's gold partners found in its top 3, averaged."""
    n = len(data.challenges)
    country = {p.id: p.country.strip().upper() for p in data.partners}
    pairs = list(zip(data.challenges, ranked, data.gold_partners, strict=True))
    return {
        "challenges": n,
        "partner_top1": round(sum(bool(r) and r[0] in g for _, r, g in pairs) / n, 4) if n else 0.0,
        "partner_recall_at_3": round(sum(len(set(r[:TOP]) & g) / len(g) for _, r, g in pairs if g) / n, 4)
        if n
        else 0.0,
        "same_country_suggested": sum(country.get(p) == c.country.strip().upper() for c, r, _ in pairs for p in r[:TOP]),
    }  # fmt: skip


def partner_rankings(data: MatchData, embedder: Embedder) -> list[list[str]]:
    encoded = encode_partners(data.partners, embedder)
    vectors = embedder.encode(data.challenge_texts)
    offers = [c.organisation_offers for c in data.challenges]
    organisation = embedder.encode([o or " " for o in offers])
    return [
        [m.partner_id for m in rank_partners(c, data.partners, vectors[n], encoded, organisation[n])]
        for n, c in enumerate(data.challenges)
    ]


def plain_partner_rankings(data: MatchData, embedder: Embedder) -> list[list[str]]:
    """The baseline: cosine of the challenge to the whole offers, every country."""
    scores = embedder.encode(data.challenge_texts) @ embedder.encode([p.offers for p in data.partners]).T
    return ranked_ids(scores.astype(np.float64), [p.id for p in data.partners])


def evaluate_match(data: Any, embedder: Embedder, *, baseline: bool = False) -> dict[str, Any]:
    """The report of ``ideaforge eval match``. ``baseline``: plain cosine, greedy top pick, no rules."""
    parsed = parse_match_data(data)
    capacities = [e.capacity for e in parsed.experts]
    if baseline:
        scores = plain_expert_scores(parsed, embedder)
        assigned = greedy_assign(scores).experts
        partners = plain_partner_rankings(parsed, embedder) if parsed.challenges else []
    else:
        scores = expert_scores(parsed, embedder)
        assigned = assign(scores, capacities, k=1).experts
        partners = partner_rankings(parsed, embedder) if parsed.challenges else []
    return expert_figures(parsed, scores, assigned) | partner_figures(parsed, partners)
