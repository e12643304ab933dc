"""A jury's results from its submitted scorecards: raw and calibrated scores, minimums, disagreement, ranking.

**Raw score** of a card: the weighted mean of its criterion scores, each first put on 0-100
(``100 * (score - min) / (max - min)``), so criteria on different scales weigh what their weights say. An
idea's raw score is the mean of its cards'.

**Calibration** removes each juror's habits: some score harshly, some leniently, some use the whole scale and
some a corner of it. A juror with at least ``min_scored`` cards is standardised on their own cards, robustly
(one odd card must not move everything): location = median, spread = 1.4826 x MAD (the factor makes it the
standard deviation for normal scores), or IQR / 1.349 when the MAD is 0. A card's calibrated value is
``50 + 25 * z``: the juror's typical card lands on 50 and one typical spread is a quarter of the scale, so the
values read like the raw ones (they may leave 0-100). Each juror is standardised alone, never against the
others: adding a constant to all of one juror's scores, or multiplying their deviations by a positive factor,
changes no calibrated value. When even the IQR is 0 the juror's scores say nothing about order, and all their
z are 0 (``flat``). A juror with fewer cards cannot be measured: their cards count raw (the results page says
so). An idea's calibrated score is the mean of its cards' calibrated values.

**Minimums**: an idea whose mean score on a criterion (on that criterion's scale) is below its minimum fails,
and ranks after every idea that passes. **Disagreement**: the range of an idea's calibrated values;
``DISPUTE_RANGE`` points or more is flagged. **Agreement** of the whole jury: Krippendorff's alpha, interval
metric, which allows missing data (not every juror scores every idea); it is given on raw and on calibrated
values, with Krippendorff's thresholds (0.8 good, 0.667 tentative).

**Ranking**: ideas with cards, passing before failing, then calibrated score, raw score, public votes, all
descending, the first two rounded to 2 decimals (what the page shows); ideas still tied share a rank
(1, 2, 2, 4), and are listed by id. ``ResultRow.tie`` says what separated a row from the one above when their
calibrated scores are equal.
"""

from __future__ import annotations

import enum
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

MIN_SCORED = 4
"""Fewest cards for a juror to be standardised: a median and a MAD of fewer say little."""
DISPUTE_RANGE = 40.0
"""An idea is disputed when its calibrated values span this many points (of 100) or more."""
MAD_TO_SD = 1.4826
IQR_TO_SD = 1.349
CENTRE = 50.0
UNIT = 25.0
"""Calibrated value = ``CENTRE + UNIT * z``."""
GOOD_ALPHA = 0.8
TENTATIVE_ALPHA = 0.667
_TOLERANCE = 1e-9
"""Float rounding: a spread this small (relative to the scores) is 0; a mean this close to a minimum meets
it; a range this close to ``DISPUTE_RANGE`` reaches it."""


@dataclass(frozen=True)
class CriterionSpec:
    id: int
    weight: float
    """> 0; normalised by the sum of the weights."""
    scale_min: int
    scale_max: int
    minimum: int | None
    """The lowest mean score (on the criterion's scale) an idea may have and still pass, or None."""


@dataclass(frozen=True)
class Card:
    """One juror's submitted scorecard for one idea."""

    idea_id: int
    juror_id: int
    scores: Mapping[int, float]
    """Criterion id -> score, every criterion present."""


class TieBreak(enum.StrEnum):
    """What separated a row from the row above it, when both pass (or both fail) and their calibrated scores
    are equal at 2 decimals."""

    RAW = "raw"
    VOTES = "votes"
    SHARED = "shared"
    """Nothing did: same rank."""


@dataclass(frozen=True)
class ResultRow:
    idea_id: int
    rank: int | None
    """None for an idea without cards."""
    raw: float | None
    calibrated: float | None
    jurors: int
    """How many cards the idea has."""
    spread: float | None
    """Range of the cards' calibrated values; None with fewer than 2 cards."""
    disputed: bool
    failed_criteria: tuple[int, ...]
    tie: TieBreak | None
    criterion_means: Mapping[int, float]
    """Criterion id -> mean score of the idea's cards on that criterion's scale (empty without cards)."""


@dataclass(frozen=True)
class JurorCalibration:
    juror_id: int
    cards: int
    calibrated: bool
    """False: fewer than ``min_scored`` cards, which count raw."""
    location: float | None
    spread: float | None
    """None when not calibrated, or flat."""
    flat: bool
    """Calibrated, but MAD and IQR are 0: every z is 0."""


@dataclass(frozen=True)
class Results:
    rows: tuple[ResultRow, ...]
    """Every idea, in ranking order."""
    jurors: tuple[JurorCalibration, ...]
    """Every juror with a card, by id."""
    alpha_raw: float | None
    alpha_calibrated: float | None
    min_scored: int

    @property
    def passed(self) -> tuple[ResultRow, ...]:
        """The rows with cards and no failed minimum."""
        return tuple(r for r in self.rows if r.jurors and not r.failed_criteria)


def agreement_label(alpha: float | None) -> str:
    """``"none"``, ``"good"``, ``"tentative"`` or ``"low"``, by Krippendorff's thresholds (the app translates
    them)."""
    if alpha is None:
        return "none"
    if alpha >= GOOD_ALPHA:
        return "good"
    if alpha >= TENTATIVE_ALPHA:
        return "tentative"
    return "low"


def krippendorff_alpha_interval(units: Sequence[Sequence[float]]) -> float | None:
    """Krippendorff's alpha, interval metric, from each unit's values (missing ones simply absent).

    Only units with 2 values or more are pairable. With n pairable values, alpha = 1 - D_o / D_e, where
    D_o = 1/n sum_u 1/(m_u - 1) sum_{i != j in u} (v_i - v_j)^2 and
    D_e = 1/(n(n - 1)) sum_{i != j} (v_i - v_j)^2 over all pairable values. None when nothing is pairable or
    the pairable values are all equal (D_e = 0)."""
    pairable = [np.asarray(u, dtype=np.float64) for u in units if len(u) >= 2]
    if not pairable:
        return None
    values = np.concatenate(pairable)
    n = len(values)
    if np.ptp(values) == 0:
        return None
    # sum_{i != j} (v_i - v_j)^2 = 2 m sum (v - mean)^2 for m values.
    within = sum(2 * len(u) * float(np.sum((u - u.mean()) ** 2)) / (len(u) - 1) for u in pairable)
    total = 2 * n * float(np.sum((values - values.mean()) ** 2))
    return 1.0 - (n - 1) * within / total


def compute(
    criteria: Sequence[CriterionSpec],
    cards: Sequence[Card],
    idea_ids: Sequence[int],
    *,
    min_scored: int = MIN_SCORED,
    tie_breakers: Mapping[int, int] | None = None,
) -> Results:
    """The results of a jury; ``tie_breakers`` (idea id -> public votes) separates ideas tied on scores."""
    _validate(criteria, cards, idea_ids, min_scored)
    votes = tie_breakers or {}
    raw = {(c.idea_id, c.juror_id): raw_score(criteria, c.scores) for c in cards}

    by_juror: defaultdict[int, list[Card]] = defaultdict(list)
    for card in cards:
        by_juror[card.juror_id].append(card)
    calibrated: dict[tuple[int, int], float] = {}
    jurors = []
    for juror_id in sorted(by_juror):
        own = by_juror[juror_id]
        calibration = _calibrate(juror_id, [raw[c.idea_id, juror_id] for c in own], min_scored)
        jurors.append(calibration)
        for card in own:
            calibrated[card.idea_id, juror_id] = _calibrated_value(calibration, raw[card.idea_id, juror_id])

    by_idea: defaultdict[int, list[Card]] = defaultdict(list)
    for card in cards:
        by_idea[card.idea_id].append(card)
    unranked = [_idea_row(i, by_idea[i], criteria, raw, calibrated) for i in idea_ids]
    return Results(
        rows=_rank(unranked, votes),
        jurors=tuple(jurors),
        alpha_raw=krippendorff_alpha_interval([[raw[i, c.juror_id] for c in by_idea[i]] for i in idea_ids]),
        alpha_calibrated=krippendorff_alpha_interval(
            [[calibrated[i, c.juror_id] for c in by_idea[i]] for i in idea_ids]
        ),
        min_scored=min_scored,
    )


def _validate(
    criteria: Sequence[CriterionSpec], cards: Sequence[Card], idea_ids: Sequence[int], min_scored: int
) -> None:
    if not criteria:
        raise ValueError("no criteria")
    if min_scored < 1:
        raise ValueError(f"min_scored must be at least 1, not {min_scored}")
    ids = {c.id for c in criteria}
    if len(ids) != len(criteria):
        raise ValueError("two criteria with the same id")
    for c in criteria:
        if not (math.isfinite(c.weight) and c.weight > 0):
            raise ValueError(f"criterion {c.id}: weight {c.weight} is not a positive number")
        if c.scale_min >= c.scale_max:
            raise ValueError(f"criterion {c.id}: scale {c.scale_min}..{c.scale_max} is empty")
    ideas = set(idea_ids)
    if len(ideas) != len(idea_ids):
        raise ValueError("an idea is listed twice")
    seen: set[tuple[int, int]] = set()
    for card in cards:
        where = f"card of juror {card.juror_id} for idea {card.idea_id}"
        if card.idea_id not in ideas:
            raise ValueError(f"{where}: the idea is not among the ideas ranked")
        if (card.idea_id, card.juror_id) in seen:
            raise ValueError(f"{where}: a second card")
        seen.add((card.idea_id, card.juror_id))
        if set(card.scores) != ids:
            raise ValueError(f"{where}: criteria {sorted(card.scores)} instead of {sorted(ids)}")
        if not all(math.isfinite(s) for s in card.scores.values()):
            raise ValueError(f"{where}: a score is not a finite number")


class Scaled(Protocol):
    """What a raw score reads of a criterion (a ``CriterionSpec``, or the app's ``Criterion`` row)."""

    @property
    def id(self) -> int: ...
    @property
    def weight(self) -> float: ...
    @property
    def scale_min(self) -> int: ...
    @property
    def scale_max(self) -> int: ...


def raw_score(criteria: Sequence[Scaled], scores: Mapping[int, float]) -> float:
    """One card's raw score: the weighted mean of its criteria, each as a percentage of its scale."""
    total_weight = sum(c.weight for c in criteria)
    return sum(
        c.weight / total_weight * 100 * (scores[c.id] - c.scale_min) / (c.scale_max - c.scale_min)
        for c in criteria
    )


def _calibrate(juror_id: int, raws: Sequence[float], min_scored: int) -> JurorCalibration:
    if len(raws) < min_scored:
        return JurorCalibration(juror_id, len(raws), calibrated=False, location=None, spread=None, flat=False)
    values = np.asarray(raws, dtype=np.float64)
    location = float(np.median(values))
    spread = MAD_TO_SD * float(np.median(np.abs(values - location)))
    # A shift adds rounding noise to a zero MAD; what is left at this size is not a spread.
    negligible = _TOLERANCE * max(1.0, float(np.max(np.abs(values))))
    if spread <= negligible:
        q1, q3 = np.percentile(values, [25, 75])
        spread = float(q3 - q1) / IQR_TO_SD
    flat = spread <= negligible
    return JurorCalibration(juror_id, len(raws), True, location, None if flat else spread, flat)


def _calibrated_value(juror: JurorCalibration, raw: float) -> float:
    if not juror.calibrated:
        return raw
    if juror.spread is None or juror.location is None:  # flat
        return CENTRE
    return CENTRE + UNIT * (raw - juror.location) / juror.spread


def _idea_row(
    idea_id: int,
    cards: Sequence[Card],
    criteria: Sequence[CriterionSpec],
    raw: Mapping[tuple[int, int], float],
    calibrated: Mapping[tuple[int, int], float],
) -> ResultRow:
    if not cards:
        return ResultRow(idea_id, None, None, None, 0, None, False, (), None, {})
    raws = [raw[idea_id, c.juror_id] for c in cards]
    values = [calibrated[idea_id, c.juror_id] for c in cards]
    means = {c.id: sum(card.scores[c.id] for card in cards) / len(cards) for c in criteria}
    failed = tuple(c.id for c in criteria if c.minimum is not None and means[c.id] < c.minimum - _TOLERANCE)
    spread = max(values) - min(values) if len(values) >= 2 else None
    return ResultRow(
        idea_id=idea_id,
        rank=None,
        raw=sum(raws) / len(raws),
        calibrated=sum(values) / len(values),
        jurors=len(cards),
        spread=spread,
        disputed=spread is not None and spread >= DISPUTE_RANGE - _TOLERANCE,
        failed_criteria=failed,
        tie=None,
        criterion_means=means,
    )


def _standing(row: ResultRow, votes: Mapping[int, int]) -> tuple[bool, bool, float, float, int]:
    """What a row's rank depends on, larger is better; rows with cards that are equal on it share a rank."""
    calibrated = -math.inf if row.calibrated is None else round(row.calibrated, 2)
    raw = -math.inf if row.raw is None else round(row.raw, 2)
    return (row.jurors > 0, not row.failed_criteria, calibrated, raw, votes.get(row.idea_id, 0))


def _rank(rows: Sequence[ResultRow], votes: Mapping[int, int]) -> tuple[ResultRow, ...]:
    def order(row: ResultRow) -> tuple[bool, bool, float, float, int, int]:
        cards, passes, calibrated, raw, count = _standing(row, votes)
        return (not cards, not passes, -calibrated, -raw, -count, row.idea_id)

    ranked: list[ResultRow] = []
    for position, row in enumerate(sorted(rows, key=order)):
        if not row.jurors:
            ranked.append(row)
            continue
        rank, tie = position + 1, None
        above = ranked[-1] if ranked else None
        if above is not None:
            mine, theirs = _standing(row, votes), _standing(above, votes)
            if mine == theirs:
                rank, tie = above.rank or rank, TieBreak.SHARED
            elif mine[:3] == theirs[:3]:
                tie = TieBreak.RAW if mine[3] != theirs[3] else TieBreak.VOTES
        ranked.append(replace(row, rank=rank, tie=tie))
    return tuple(ranked)
