"""Jury results: calibration is blind to a juror's offset and scale (and skipped for jurors with few cards),
corrects a harsh juror's ideas, minimums, disputes, ties and shared ranks, Krippendorff's alpha, bad input."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ideas.jury.calibration import (
    DISPUTE_RANGE,
    MIN_SCORED,
    Card,
    CriterionSpec,
    Results,
    TieBreak,
    agreement_label,
    compute,
    krippendorff_alpha_interval,
)

ONE = (CriterionSpec(id=1, weight=1.0, scale_min=0, scale_max=100, minimum=None),)
"""One criterion on 0..100 with weight 1: a card's raw score is its score."""

Panel = dict[tuple[int, int], float]
"""(idea id, juror id) -> score on ``ONE``."""


def run(panel: Panel, ideas: Sequence[int] | None = None, votes: Mapping[int, int] | None = None) -> Results:
    cards = [Card(idea, juror, {1: score}) for (idea, juror), score in panel.items()]
    return compute(ONE, cards, ideas or sorted({idea for idea, _ in panel}), tie_breakers=votes)


def calibrated(results: Results) -> dict[int, float]:
    return {r.idea_id: r.calibrated for r in results.rows if r.calibrated is not None}


def ranks(results: Results) -> list[tuple[int, int | None]]:
    return [(r.idea_id, r.rank) for r in results.rows]


@st.composite
def panels(draw: st.DrawFn, jurors: int = 3) -> Panel:
    """Every juror scores at least ``MIN_SCORED`` ideas, with distinct integer scores (so a MAD >= 0.5)."""
    ideas = draw(st.integers(MIN_SCORED, 8))
    panel: Panel = {}
    for juror in range(1, jurors + 1):
        order = draw(st.permutations(range(1, ideas + 1)))
        count = draw(st.integers(MIN_SCORED, ideas))
        scores = draw(st.lists(st.integers(0, 100), min_size=count, max_size=count, unique=True))
        panel.update({(idea, juror): float(s) for idea, s in zip(order[:count], scores, strict=True)})
    return panel


def assert_same_calibration(before: Results, after: Results) -> None:
    cal_before, cal_after = calibrated(before), calibrated(after)
    assert cal_after == pytest.approx(cal_before, abs=1e-6)
    # Ideas closer than 0.01 are ordered by raw score, which a shift does change.
    position = {r.idea_id: i for i, r in enumerate(after.rows)}
    for i, a in enumerate(before.rows):
        for b in before.rows[i + 1 :]:
            if cal_before[a.idea_id] - cal_before[b.idea_id] > 0.01:
                assert position[a.idea_id] < position[b.idea_id]


@settings(max_examples=150, deadline=None)
@given(panels(), st.integers(1, 3), st.floats(-50, 50))
def test_shifting_a_calibrated_juror_changes_nothing(panel: Panel, juror: int, shift: float) -> None:
    before = run(panel)
    assert all(j.calibrated and not j.flat for j in before.jurors)
    shifted = {(i, j): s + shift if j == juror else s for (i, j), s in panel.items()}
    assert_same_calibration(before, run(shifted))


@settings(max_examples=150, deadline=None)
@given(panels(), st.integers(1, 3), st.floats(0.1, 10))
def test_scaling_a_calibrated_juror_changes_nothing(panel: Panel, juror: int, factor: float) -> None:
    scaled = {(i, j): s * factor if j == juror else s for (i, j), s in panel.items()}
    assert_same_calibration(run(panel), run(scaled))


@settings(max_examples=100, deadline=None)
@given(
    panels(jurors=2),
    st.lists(st.integers(0, 100), min_size=1, max_size=MIN_SCORED - 2),
    st.floats(1, 50),
)
def test_a_juror_with_few_cards_counts_raw(panel: Panel, few: list[int], shift: float) -> None:
    # Juror 9 (fewer than MIN_SCORED cards) alone scores ideas 101, 102, ...; and also idea 1, with juror 1.
    own = {(100 + k, 9): float(s) for k, s in enumerate(few, start=1)}
    panel = {**panel, (1, 1): panel.get((1, 1), 50.0), (1, 9): 50.0, **own}
    results = run(panel)
    assert {j.juror_id: (j.calibrated, j.location) for j in results.jurors}[9] == (False, None)
    rows = {r.idea_id: r for r in results.rows}
    for (idea, _), score in own.items():
        assert rows[idea].calibrated == rows[idea].raw == score
    shifted = calibrated(run({(i, j): s + shift if j == 9 else s for (i, j), s in panel.items()}))
    for (idea, _), score in own.items():
        assert shifted[idea] == pytest.approx(score + shift)
    assert shifted[1] == pytest.approx(calibrated(results)[1] + shift / rows[1].jurors)


def test_harsh_and_lenient_jurors_are_put_on_one_scale() -> None:
    # Harsh juror 1 scores ideas 1-4, lenient juror 2 ideas 5-8, with the same pattern.
    same = run({**{(i, 1): s for i, s in zip((1, 2, 3, 4), (10, 20, 30, 40), strict=True)},
                **{(i, 2): s for i, s in zip((5, 6, 7, 8), (60, 70, 80, 90), strict=True)}})  # fmt: skip
    rows = {r.idea_id: r for r in same.rows}
    for harsh, lenient in ((1, 5), (2, 6), (3, 7), (4, 8)):
        assert rows[harsh].raw != rows[lenient].raw
        assert rows[harsh].calibrated == pytest.approx(rows[lenient].calibrated)
    # The harsh juror's best idea stands out among theirs more than the lenient one's does: it wins.
    results = run({**{(i, 1): s for i, s in zip((1, 2, 3, 4), (10, 20, 30, 45), strict=True)},
                   **{(i, 2): s for i, s in zip((5, 6, 7, 8), (60, 70, 80, 90), strict=True)}})  # fmt: skip
    raw_order = [r.idea_id for r in sorted(results.rows, key=lambda r: -(r.raw or 0))]
    assert raw_order[:5] == [8, 7, 6, 5, 4]
    assert [i for i, _ in ranks(results)][:2] == [4, 8]
    assert [j.location for j in results.jurors] == [25.0, 75.0]
    assert [j.spread for j in results.jurors] == pytest.approx([14.826, 14.826])
    assert calibrated(results)[4] == pytest.approx(50 + 25 * (45 - 25) / 14.826)


def test_a_flat_juror_says_nothing_about_order() -> None:
    results = run({(1, 1): 50.0, (2, 1): 50.0, (3, 1): 50.0, (4, 1): 50.0, (5, 1): 90.0})
    assert [(j.calibrated, j.flat, j.spread) for j in results.jurors] == [(True, True, None)]
    assert set(calibrated(results).values()) == {50.0}
    assert {r.tie for r in results.rows[1:]} == {TieBreak.RAW, TieBreak.SHARED}


def test_an_idea_under_a_minimum_ranks_after_the_passing_ones() -> None:
    criteria = (
        CriterionSpec(id=1, weight=1.0, scale_min=0, scale_max=10, minimum=None),
        CriterionSpec(id=2, weight=1.0, scale_min=0, scale_max=10, minimum=3),
    )
    scores = {1: (10, 2), 2: (5, 5), 3: (4, 4)}
    cards = [Card(idea, juror, {1: a, 2: b}) for idea, (a, b) in scores.items() for juror in (1, 2)]
    results = compute(criteria, cards, [1, 2, 3, 4])
    assert [(r.idea_id, r.rank, r.failed_criteria) for r in results.rows] == [
        (2, 1, ()), (3, 2, ()), (1, 3, (2,)), (4, None, ())
    ]  # fmt: skip
    assert results.rows[2].calibrated == 60.0
    assert results.rows[2].criterion_means == {1: 10.0, 2: 2.0}
    assert [r.idea_id for r in results.passed] == [2, 3]


def test_disputed_from_the_threshold_on() -> None:
    results = run({(1, 1): 30.0, (1, 2): 30.0 + DISPUTE_RANGE, (2, 1): 30.0, (2, 2): 69.0, (3, 1): 80.0})
    rows = {r.idea_id: r for r in results.rows}
    assert [(rows[i].spread, rows[i].disputed) for i in (1, 2, 3)] == [
        (40.0, True), (39.0, False), (None, False)
    ]  # fmt: skip


def test_ties_share_ranks_and_say_what_separated_them() -> None:
    # Juror 1 (5 cards, calibrated): idea 2 is their median, so 50 calibrated for 30 raw.
    # Juror 2 (3 cards, raw): ideas 6-8 at 50, separated by votes only.
    panel = {(1, 1): 90.0, (2, 1): 30.0, (3, 1): 10.0, (4, 1): 20.0, (5, 1): 40.0}
    panel |= {(6, 2): 50.0, (7, 2): 50.0, (8, 2): 50.0}
    results = run(panel, [1, 2, 3, 4, 5, 6, 7, 8, 9], votes={6: 5, 7: 3, 8: 3, 9: 7})
    assert [(r.idea_id, r.rank, r.tie) for r in results.rows] == [
        (1, 1, None), (5, 2, None),
        (6, 3, None), (7, 4, TieBreak.VOTES), (8, 4, TieBreak.SHARED), (2, 6, TieBreak.RAW),
        (4, 7, None), (3, 8, None), (9, None, None),
    ]  # fmt: skip
    assert [j.calibrated for j in results.jurors] == [True, False]


def test_competition_ranking_without_votes() -> None:
    results = run({(1, 1): 90.0, (2, 1): 70.0, (3, 1): 70.0, (4, 1): 10.0})
    assert ranks(results) == [(1, 1), (2, 2), (3, 2), (4, 4)]


def coded(rows: Sequence[Sequence[float | None]]) -> list[list[float]]:
    """Units (columns) from coders' rows, without the missing values."""
    return [[v for v in unit if v is not None] for unit in zip(*rows, strict=True)]


def test_alpha_of_krippendorffs_example() -> None:
    n = None
    units = coded([
        [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    ])  # fmt: skip
    alpha = krippendorff_alpha_interval(units)
    assert alpha == pytest.approx(0.849, abs=1e-3)
    assert agreement_label(alpha) == "good"


@pytest.mark.parametrize(
    ("units", "alpha", "label"),
    [
        ([[1, 1], [2, 2, 2], [5, 5], [7]], 1.0, "good"),
        ([[1], [2], [3]], None, "none"),
        ([[3, 3], [3, 3, 3]], None, "none"),
        ([[1, 2], [2, 1]], -0.5, "low"),
    ],
)
def test_alpha_edges(units: list[list[float]], alpha: float | None, label: str) -> None:
    assert krippendorff_alpha_interval(units) == (None if alpha is None else pytest.approx(alpha))
    assert agreement_label(krippendorff_alpha_interval(units)) == label


def test_the_jury_alpha_is_on_raw_and_on_calibrated_values() -> None:
    results = run({(1, 1): 10.0, (2, 1): 20.0, (3, 1): 30.0, (4, 1): 40.0,
                   (1, 2): 60.0, (2, 2): 70.0, (3, 2): 80.0, (4, 2): 90.0})  # fmt: skip
    assert results.alpha_raw is not None
    assert results.alpha_raw < 0
    assert results.alpha_calibrated == pytest.approx(1.0)


def valid(**change: object) -> Mapping[str, object]:
    return {"criteria": ONE, "cards": [Card(1, 1, {1: 5.0})], "idea_ids": [1], **change}


@pytest.mark.parametrize(
    "arguments",
    [
        valid(criteria=()),
        valid(criteria=(CriterionSpec(1, 0.0, 0, 10, None),)),
        valid(criteria=(CriterionSpec(1, math.nan, 0, 10, None),)),
        valid(criteria=(CriterionSpec(1, 1.0, 5, 5, None),)),
        valid(criteria=(*ONE, *ONE)),
        valid(cards=[Card(1, 1, {})]),
        valid(cards=[Card(1, 1, {1: 5.0, 2: 5.0})]),
        valid(cards=[Card(1, 1, {1: math.inf})]),
        valid(cards=[Card(2, 1, {1: 5.0})]),
        valid(cards=[Card(1, 1, {1: 5.0}), Card(1, 1, {1: 6.0})]),
        valid(idea_ids=[1, 1]),
    ],
)
def test_invalid_input(arguments: Mapping[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (each case its own reason)
        compute(**arguments)  # type: ignore[arg-type]
