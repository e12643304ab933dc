"""Matching ideas to experts (scored, then assigned under capacities) and challenges to partners abroad.

**Affinity** of an idea for an expert: a mix of the cosine to the whole profile and the cosine to the
profile's best-matching sentence (profiles list several specialities; a whole-text vector blurs them),
minus how much that expert attracts *any* idea written in the same language (a per-language mean over
reference ideas). The last term removes "hub" profiles: with an English model, French ideas sit close
to whichever profile mentions France or French, whatever they are about. Sentences that state a lack of
experience ("has little experience with bus operations") are left out of the profile: a cosine cannot
read the negation and would count them as a match. Conflicted or unavailable pairs are ``-inf``.

The two constants (``FITTED``) were chosen by leave-one-out on ``match_dev.json`` (bench/match_quality.py,
docs/benchmarks.md). Shared language and a language bonus were measured and left out: they did
not help (the labelled organisers pick French-only experts for English ideas and the reverse).

**Assignment** gives each idea ``k`` distinct experts, no expert above capacity, total affinity maximal:
a min-cost flow (OR-Tools) source -> idea (k) -> expert (1) -> sink (capacity), on each idea's top
``candidates`` finite-affinity experts (all of them when the top ones cannot cover every idea).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ml.embedding import Embedder, Vectors
from ml.language import guess_language

Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AffinityWeights:
    whole: float
    """Weight of the whole-profile cosine; the best sentence's cosine gets ``1 - whole``."""
    centering: float
    """How much of an expert's mean score over same-language reference ideas is subtracted (0 = none)."""


FITTED = AffinityWeights(whole=0.2, centering=1.0)
# Chosen with all-MiniLM-L6-v2 on match_dev.json (60 ideas, 24 experts) by bench/match_quality.py: grid
# whole {0..0.7, 1} x centering {0, 0.25 .. 1}; leave-one-out (the pair with the best top-1 on 59 ideas, ties
# by mean reciprocal rank, judged on the 60th) picked (0.2, 1.0) in all 60 folds, held-out top-1 0.90. The
# plateau whole 0.2-0.5 x centering 0.75-1 scores 0.87-0.90; no centering 0.80, whole text only 0.72.
# Another model needs its own run.
SEEKS_WEIGHT = 0.2
# Partners: how much "the challenge's organisation answers what the partner seeks" adds to "the partner's
# offers answer the challenge". The dev file has no organisation offers, so it was measured (once, with
# whole-offer cosines) in the worst case, taking the challenge text as the organisation's offers: at 0.2
# top-1 stays 1.00 and recall@3 0.98; at 0.5 the seeks-only distractors start to rank (recall@3 0.94).
MIN_REFERENCE = 8
"""Fewest reference ideas of one language for a per-language mean (else all languages pooled, else none)."""
DEFAULT_CANDIDATES = 50
COST_SCALE = 1_000_000
"""Affinities become integer costs for the flow solver at this resolution (1e-6)."""

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_LACKS = re.compile(
    r"\b(little|no|limited|not much|lacks?)\b[^.]*\b(experience|expertise|knowledge|background)\b"
    r"|\b(does not|doesn't|do not|never) (work|deal|cover)",
    re.IGNORECASE,
)


class Infeasible(Exception):
    """No assignment gives every idea its experts; ``ideas`` lists the ideas (row indices) left short."""

    def __init__(self, message: str, ideas: Sequence[int]) -> None:
        super().__init__(message)
        self.ideas = list(ideas)


@dataclass(frozen=True)
class ExpertProfile:
    id: str
    text: str
    languages: frozenset[str]
    organisation: str | None
    country: str
    capacity: int
    keywords: tuple[str, ...] = ()
    available: bool = True


@dataclass(frozen=True)
class Idea:
    id: str
    text: str
    language: str | None
    organisations: frozenset[str]
    """The author's and co-authors' organisations: their experts are in conflict."""
    conflicts: frozenset[str] = frozenset()
    """Expert ids declared in conflict (or co-authors of the idea)."""


@dataclass(frozen=True)
class Partner:
    id: str
    country: str
    offers: str
    seeks: str
    kind: str
    region: str = ""


@dataclass(frozen=True)
class Challenge:
    id: str
    text: str
    country: str
    organisation_offers: str = ""


class PartnerMatch(NamedTuple):
    partner_id: str
    score: float
    reason: str
    """The offer sentence that answers the challenge best."""


@dataclass(frozen=True)
class Assignment:
    experts: tuple[tuple[int, ...], ...]
    """For each idea (row), the columns of its experts, best affinity first."""
    total_affinity: float

    def load(self, expert_count: int) -> npt.NDArray[np.int64]:
        """How many ideas each expert (column) received."""
        counts = np.zeros(expert_count, dtype=np.int64)
        for chosen in self.experts:
            for column in chosen:
                counts[column] += 1
        return counts


# --- texts and vectors -------------------------------------------------------------------------------------


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def states_a_lack(sentence: str) -> bool:
    """Whether a sentence says what the person does *not* know ("little experience with bus operations")."""
    return bool(_LACKS.search(sentence))


def profile_sentences(text: str, keywords: Sequence[str] = ()) -> tuple[str, ...]:
    """The sentences that can justify a match: the text's, minus those stating a lack, plus each keyword."""
    kept = [s for s in split_sentences(text) if not states_a_lack(s)]
    kept += [k.strip() for k in keywords if k.strip()]
    return tuple(kept) or (text.strip() or " ",)


@dataclass(frozen=True)
class EncodedProfiles:
    """Vectors of profiles (experts' expertise, partners' offers): the whole kept text and each sentence."""

    vectors: Vectors
    sentences: tuple[tuple[str, ...], ...]
    sentence_vectors: Vectors
    """Every profile's sentences stacked in order; ``starts[j]`` is profile j's first row."""
    starts: npt.NDArray[np.int64] = field(repr=False)

    def __len__(self) -> int:
        return len(self.sentences)

    def of(self, profile: int) -> Vectors:
        end = self.starts[profile + 1] if profile + 1 < len(self.starts) else len(self.sentence_vectors)
        return self.sentence_vectors[self.starts[profile] : end]


def encode_profiles(texts: Sequence[str], embedder: Embedder,
                    keywords: Sequence[Sequence[str]] | None = None) -> EncodedProfiles:  # fmt: skip
    sentences = [profile_sentences(t, keywords[j] if keywords else ()) for j, t in enumerate(texts)]
    lengths = [len(s) for s in sentences]
    flat = [s for group in sentences for s in group]
    # The whole vector is of the kept text too: a "little experience with X" sentence must not pull X in.
    wholes = [" ".join(s for s in group) for group in sentences]
    vectors = embedder.encode(wholes + flat)
    starts = (
        np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if lengths else np.zeros(0, np.int64)
    )
    return EncodedProfiles(vectors[: len(texts)], tuple(sentences), vectors[len(texts) :], starts)


def encode_experts(experts: Sequence[ExpertProfile], embedder: Embedder) -> EncodedProfiles:
    return encode_profiles([e.text for e in experts], embedder, [e.keywords for e in experts])


def text_match(queries: Vectors, profiles: EncodedProfiles, whole: float = FITTED.whole) -> Matrix:
    """queries x profiles: ``whole`` x cosine to the whole profile + (1 - whole) x cosine to its best sentence."""
    q = np.asarray(queries, dtype=np.float32).reshape(-1, profiles.vectors.shape[1] if len(profiles) else 1)
    if len(profiles) == 0:
        return np.zeros((len(q), 0))
    whole_cos = (q @ profiles.vectors.T).astype(np.float64)
    best = np.maximum.reduceat(q @ profiles.sentence_vectors.T, profiles.starts, axis=1).astype(np.float64)
    result: Matrix = whole * whole_cos + (1.0 - whole) * best
    return result


# --- experts -----------------------------------------------------------------------------------------------


def idea_language(idea: Idea) -> str:
    return idea.language or guess_language(idea.text)


def in_conflict(idea: Idea, expert: ExpertProfile) -> bool:
    return expert.id in idea.conflicts or (
        expert.organisation is not None and expert.organisation in idea.organisations
    )


def eligibility(ideas: Sequence[Idea], experts: Sequence[ExpertProfile]) -> npt.NDArray[np.bool_]:
    """ideas x experts: True where the expert may be suggested (available, no conflict of interest)."""
    allowed = np.ones((len(ideas), len(experts)), dtype=bool)
    for j, expert in enumerate(experts):
        if not expert.available:
            allowed[:, j] = False
    for i, idea in enumerate(ideas):
        for j, expert in enumerate(experts):
            if in_conflict(idea, expert):
                allowed[i, j] = False
    return allowed


def _expert_means(raw: Matrix, languages: Sequence[str], wanted: Sequence[str]) -> Matrix:
    """For each wanted language: each expert's mean score over the reference ideas in that language (pooled
    over every language when too few, zero when there are too few reference ideas at all)."""
    means = np.zeros((len(wanted), raw.shape[1]))
    if len(raw) < MIN_REFERENCE:
        return means
    pooled = raw.mean(axis=0)
    by_language: dict[str, npt.NDArray[np.float64]] = {}
    for language in set(wanted):
        rows = [i for i, lang in enumerate(languages) if lang == language]
        by_language[language] = raw[rows].mean(axis=0) if len(rows) >= MIN_REFERENCE else pooled
    for i, language in enumerate(wanted):
        means[i] = by_language[language]
    return means


def affinity(
    ideas: Sequence[Idea],
    experts: Sequence[ExpertProfile],
    idea_vectors: Vectors,
    expert_vectors: EncodedProfiles,
    *,
    reference: tuple[Sequence[str], Vectors] | None = None,
    weights: AffinityWeights = FITTED,
) -> Matrix:
    """ideas x experts; higher is better, ``-inf`` where the expert must not be suggested (conflict,
    unavailable). ``reference`` = (languages, vectors) of ideas that show how much each expert attracts
    ideas in general; by default the ``ideas`` themselves (give a reference when scoring only a few)."""
    if len(idea_vectors) != len(ideas) or len(expert_vectors) != len(experts):
        raise ValueError(
            f"{len(ideas)} ideas with {len(idea_vectors)} vectors, {len(experts)} experts with "
            f"{len(expert_vectors)} profiles"
        )
    raw = text_match(idea_vectors, expert_vectors, weights.whole)
    languages = [idea_language(i) for i in ideas]
    if weights.centering:
        if reference is None:
            ref_languages, ref_raw = languages, raw
        else:
            ref_languages, ref_raw = (
                list(reference[0]),
                text_match(reference[1], expert_vectors, weights.whole),
            )
        raw = raw - weights.centering * _expert_means(ref_raw, ref_languages, languages)
    raw[~eligibility(ideas, experts)] = -np.inf
    return raw


def explain(idea_text: str, expert_text: str, embedder: Embedder, limit: int = 2,
            keywords: Sequence[str] = ()) -> list[str]:  # fmt: skip
    """The profile's sentences that match the idea best, best first (at most ``limit``; for the organiser)."""
    sentences = profile_sentences(expert_text, keywords)
    vectors = embedder.encode([idea_text, *sentences])
    scores = vectors[1:] @ vectors[0]
    order = np.argsort(-scores, kind="stable")[:limit]
    return [sentences[int(i)] for i in order]


# --- assignment --------------------------------------------------------------------------------------------


def _check(affinity_matrix: Matrix, capacities: Sequence[int], k: int) -> Matrix:
    matrix = np.asarray(affinity_matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"affinity must be ideas x experts (2-D), got {matrix.ndim}-D")
    if len(capacities) != matrix.shape[1]:
        raise ValueError(f"{len(capacities)} capacities for {matrix.shape[1]} experts")
    if k < 1:
        raise ValueError(f"k must be at least 1 (experts per idea), got {k}")
    bad = [j for j, c in enumerate(capacities) if int(c) != c or c <= 0]
    if bad:
        raise ValueError(
            f"capacity must be a positive whole number; experts (columns) {bad[:10]} have "
            f"{[capacities[j] for j in bad[:10]]} (mark an expert unavailable instead of capacity 0)"
        )
    if np.isnan(matrix).any() or np.isposinf(matrix).any():
        raise ValueError("affinity has NaN or +inf entries (use -inf for forbidden pairs)")
    return matrix


def _few_eligible(finite: npt.NDArray[np.bool_], k: int) -> None:
    short = [int(i) for i in np.flatnonzero(finite.sum(axis=1) < k)]
    if short:
        counts = finite.sum(axis=1)
        listed = ", ".join(f"idea {i} ({counts[i]} eligible)" for i in short[:20])
        more = f" and {len(short) - 20} more" if len(short) > 20 else ""
        raise Infeasible(f"{len(short)} ideas have fewer than k={k} eligible experts: {listed}{more}", short)


def _candidate_edges(matrix: Matrix, finite: npt.NDArray[np.bool_], candidates: int | None
                     ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:  # fmt: skip
    """(idea rows, expert columns) of the edges: each idea's best ``candidates`` finite entries, or all."""
    if candidates is None or candidates >= matrix.shape[1]:
        rows, cols = np.nonzero(finite)
        return rows.astype(np.int64), cols.astype(np.int64)
    top = np.argpartition(-np.where(finite, matrix, -np.inf), candidates - 1, axis=1)[:, :candidates]
    rows = np.repeat(np.arange(matrix.shape[0]), candidates)
    cols = top.reshape(-1)
    keep = finite[rows, cols]
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)


def _flow(matrix: Matrix, capacities: Sequence[int], k: int, rows: npt.NDArray[np.int64],
          cols: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:  # fmt: skip
    """Maximum flow at minimum cost; returns each idea's flow and which candidate edges carry one."""
    from ortools.graph.python import min_cost_flow

    n_ideas, n_experts = matrix.shape
    source, sink = n_ideas + n_experts, n_ideas + n_experts + 1
    weights = matrix[rows, cols]
    top = float(weights.max()) if len(weights) else 0.0
    # Costs must be integers; every idea takes exactly k units when feasible, so minimising
    # sum(top - affinity) maximises the total affinity and keeps every cost non-negative.
    costs = np.rint((top - weights) * COST_SCALE).astype(np.int64)
    flow = min_cost_flow.SimpleMinCostFlow()
    idea_nodes = np.arange(n_ideas, dtype=np.int64)
    expert_nodes = n_ideas + np.arange(n_experts, dtype=np.int64)
    flow.add_arcs_with_capacity_and_unit_cost(
        np.full(n_ideas, source, dtype=np.int64), idea_nodes, np.full(n_ideas, k, dtype=np.int64),
        np.zeros(n_ideas, dtype=np.int64),
    )  # fmt: skip
    first_edge = n_ideas
    flow.add_arcs_with_capacity_and_unit_cost(rows, cols + n_ideas, np.ones(len(rows), dtype=np.int64), costs)
    flow.add_arcs_with_capacity_and_unit_cost(
        expert_nodes, np.full(n_experts, sink, dtype=np.int64), np.asarray(capacities, dtype=np.int64),
        np.zeros(n_experts, dtype=np.int64),
    )  # fmt: skip
    flow.set_node_supply(source, n_ideas * k)
    flow.set_node_supply(sink, -n_ideas * k)
    status = flow.solve_max_flow_with_min_cost()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"the min-cost flow solver failed (status {status})")
    per_idea = flow.flows(np.arange(n_ideas, dtype=np.int64)).astype(np.int64)
    used = flow.flows(np.arange(first_edge, first_edge + len(rows), dtype=np.int64)) > 0
    return per_idea, used


def assign(affinity: Matrix, capacities: Sequence[int], k: int = 1, *,
           candidates: int | None = DEFAULT_CANDIDATES) -> Assignment:  # fmt: skip
    """Each idea (row) gets ``k`` distinct experts (columns) with finite affinity, no expert gets more ideas
    than its capacity, and the total affinity is the largest possible. Only each idea's best ``candidates``
    experts are considered first (None: all); if they cannot cover everyone, all eligible ones are.
    Raises ValueError on bad input and ``Infeasible`` (naming the ideas) when no such assignment exists."""
    matrix = _check(affinity, capacities, k)
    if candidates is not None and candidates < k:
        raise ValueError(f"candidates ({candidates}) must be at least k ({k})")
    n_ideas, n_experts = matrix.shape
    if n_ideas == 0:
        return Assignment((), 0.0)
    finite = np.isfinite(matrix)
    _few_eligible(finite, k)
    demand, supply = n_ideas * k, int(sum(capacities))
    rows, cols = _candidate_edges(matrix, finite, candidates)
    per_idea, used = _flow(matrix, capacities, k, rows, cols)
    if per_idea.sum() < demand and candidates is not None and candidates < n_experts:
        rows, cols = _candidate_edges(matrix, finite, None)
        per_idea, used = _flow(matrix, capacities, k, rows, cols)
    if per_idea.sum() < demand:
        short = [int(i) for i in np.flatnonzero(per_idea < k)]
        listed = ", ".join(str(i) for i in short[:20]) + (
            f" and {len(short) - 20} more" if len(short) > 20 else ""
        )
        why = (
            f"total capacity {supply} < {demand} needed"
            if supply < demand
            else "their eligible experts are full"
        )
        raise Infeasible(
            f"capacity exhausted ({why}): {len(short)} ideas cannot get k={k} experts, e.g. ideas {listed}",
            short,
        )
    chosen: list[list[int]] = [[] for _ in range(n_ideas)]
    for r, c in zip(rows[used], cols[used], strict=True):
        chosen[int(r)].append(int(c))
    experts = tuple(tuple(sorted(c, key=lambda col: -matrix[i, col])) for i, c in enumerate(chosen))
    total = float(sum(matrix[i, c] for i, cs in enumerate(experts) for c in cs))
    return Assignment(experts, total)


def greedy_assign(affinity: Matrix, k: int = 1) -> Assignment:
    """Each idea's ``k`` best experts, capacities ignored: the baseline the benchmark compares against."""
    matrix = np.asarray(affinity, dtype=np.float64)
    order = np.argsort(-matrix, axis=1, kind="stable")[:, :k]
    experts = tuple(tuple(int(c) for c in row if np.isfinite(matrix[i, c])) for i, row in enumerate(order))
    total = float(sum(matrix[i, c] for i, cs in enumerate(experts) for c in cs))
    return Assignment(experts, total)


# --- partners ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedPartners:
    offers: EncodedProfiles
    seeks: Vectors


def encode_partners(partners: Sequence[Partner], embedder: Embedder) -> EncodedPartners:
    return EncodedPartners(encode_profiles([p.offers for p in partners], embedder),
                           embedder.encode([p.seeks for p in partners]))  # fmt: skip


def rank_partners(
    challenge: Challenge,
    partners: Sequence[Partner],
    challenge_vector: Vectors,
    partner_vectors: EncodedPartners,
    organisation_vector: Vectors | None = None,
    *,
    limit: int | None = None,
    seeks_weight: float = SEEKS_WEIGHT,
    whole: float = FITTED.whole,
) -> list[PartnerMatch]:
    """Partners from other countries than the challenge's, best first: how their offers answer the challenge
    (whole offers and best offer sentence), plus ``seeks_weight`` x how the challenge's organisation (its
    offers, ``organisation_vector``) answers what the partner seeks. Same-country partners never appear."""
    if len(partner_vectors.offers) != len(partners):
        raise ValueError(f"{len(partners)} partners with {len(partner_vectors.offers)} encoded offers")
    query = np.asarray(challenge_vector, dtype=np.float32).reshape(1, -1)
    offers = text_match(query, partner_vectors.offers, whole)[0]
    seeks = np.zeros(len(partners))
    if organisation_vector is not None and challenge.organisation_offers.strip():
        seeks = (
            partner_vectors.seeks @ np.asarray(organisation_vector, dtype=np.float32).reshape(-1)
        ).astype(np.float64)
    scores = offers + seeks_weight * seeks
    ranked: list[PartnerMatch] = []
    home = challenge.country.strip().upper()
    for j in np.argsort(-scores, kind="stable"):
        partner = partners[int(j)]
        if partner.country.strip().upper() == home:
            continue
        best = int(np.argmax(partner_vectors.offers.of(int(j)) @ query[0]))
        ranked.append(
            PartnerMatch(partner.id, float(scores[j]), partner_vectors.offers.sentences[int(j)][best])
        )
        if limit is not None and len(ranked) >= limit:
            break
    return ranked


def ranked_ids(scores: Matrix, ids: Sequence[str]) -> list[list[str]]:
    """For each row, the ids of the finite-scored columns, best first."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return [[ids[int(j)] for j in row if np.isfinite(scores[i, j])] for i, row in enumerate(order)]
