"""Phase derivation at its boundaries, with the clock in the test's hands, in Python and SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, delete, select
from sqlalchemy.orm import Session

from challenges.models import Challenge, Phase, SubmitPolicy, Visibility
from challenges.phases import active_phases, current_phase, current_phase_is, has_started, timeline

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def schedule(
    sub: tuple[int, int] = (0, 100), vote: tuple[int, int] = (100, 200), review_end: int | None = 300,
    results_end: int = 400, *, published: bool = True, override: Phase | None = None,
) -> Challenge:  # fmt: skip
    """A challenge whose phase boundaries are hours after T0."""
    return Challenge(
        organisation_id=1, title="t", summary="s", country="FR", visibility=Visibility.PUBLIC,
        who_may_submit=SubmitPolicy.SIGNED_IN,
        submission_starts_at=T0 + sub[0] * H, submission_ends_at=T0 + sub[1] * H,
        voting_starts_at=T0 + vote[0] * H, voting_ends_at=T0 + vote[1] * H,
        review_ends_at=None if review_end is None else T0 + review_end * H, results_ends_at=T0 + results_end * H,
        published_at=T0 - 1000 * H if published else None, phase_override=override,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("hours", "phase"),
    [
        (-0.001, Phase.DRAFT),
        (0, Phase.SUBMISSION),  # a phase starts at its start instant
        (99.999, Phase.SUBMISSION),
        (100, Phase.VOTING),  # and is over at its end instant
        (200, Phase.REVIEW),
        (300, Phase.RESULTS),
        (399.999, Phase.RESULTS),
        (400, Phase.CLOSED),
        (10_000, Phase.CLOSED),
    ],
)
def test_the_phase_changes_exactly_at_each_boundary(hours, phase):
    assert current_phase(schedule(), T0 + hours * H) is phase


def test_submission_and_voting_may_overlap_and_voting_is_then_the_current_phase():
    challenge = schedule(sub=(0, 150), vote=(100, 200))
    assert active_phases(challenge, T0 + 120 * H) == {Phase.SUBMISSION, Phase.VOTING}
    assert current_phase(challenge, T0 + 120 * H) is Phase.VOTING
    assert active_phases(challenge, T0 + 150 * H) == {Phase.VOTING}, "submission ends at its end instant"
    assert active_phases(challenge, T0 + 99 * H) == {Phase.SUBMISSION}


def test_a_skipped_review_goes_straight_from_voting_to_results():
    challenge = schedule(review_end=None, results_end=300)
    assert current_phase(challenge, T0 + 199 * H) is Phase.VOTING
    assert current_phase(challenge, T0 + 200 * H) is Phase.RESULTS
    assert Phase.REVIEW not in {span.phase for span in timeline(challenge)}
    assert has_started(challenge, Phase.REVIEW, T0 + 200 * H), "jury settings lock when results start"


def test_an_unpublished_challenge_is_a_draft_whatever_its_dates():
    assert current_phase(schedule(published=False), T0 + 150 * H) is Phase.DRAFT
    assert not has_started(schedule(published=False), Phase.SUBMISSION, T0 + 150 * H)


def test_a_manual_override_wins_over_the_dates():
    challenge = schedule(override=Phase.CLOSED)
    assert current_phase(challenge, T0 + 50 * H) is Phase.CLOSED
    assert active_phases(challenge, T0 + 50 * H) == {Phase.CLOSED}
    assert has_started(challenge, Phase.VOTING, T0 + 50 * H)


@pytest.fixture(scope="module")
def sqlite_session(sqlite_template, tmp_path_factory):
    import shutil

    path = tmp_path_factory.mktemp("phases") / "phases.sqlite3"
    shutil.copy(sqlite_template, path)
    engine = create_engine(f"sqlite:///{path}")  # foreign keys off: a bare challenge row is enough
    with Session(engine) as session:
        yield session
    engine.dispose()


# Boundaries on a coarse grid, so that "now" often falls exactly on one.
hours = st.integers(min_value=0, max_value=40).map(lambda n: n * 10)


@st.composite
def schedules(draw):
    sub_start = draw(hours)
    sub_end = sub_start + draw(st.integers(1, 10)) * 10
    vote_start = draw(st.integers(sub_start, sub_end))
    vote_end = max(sub_end, vote_start + 10) + draw(st.integers(0, 5)) * 10
    review_end = draw(st.one_of(st.none(), st.integers(vote_end + 10, vote_end + 60)))
    results_end = (review_end or vote_end) + draw(st.integers(1, 6)) * 10
    override = draw(st.one_of(st.none(), st.sampled_from(list(Phase)), st.none(), st.none()))
    published = draw(st.booleans() | st.just(True))
    return schedule((sub_start, sub_end), (vote_start, vote_end), review_end, results_end,
                    published=published, override=override)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(challenge=schedules(), now_hours=st.integers(min_value=-10, max_value=900))
def test_sql_and_python_agree_on_the_current_phase(sqlite_session, challenge, now_hours):
    """The directory filters in SQL; pages derive in Python. They must never disagree."""
    now = T0 + now_hours * H
    sqlite_session.execute(delete(Challenge))
    sqlite_session.add(challenge)
    sqlite_session.flush()
    expected = current_phase(challenge, now)
    for phase in Phase:
        found = sqlite_session.scalar(select(Challenge.id).where(current_phase_is(phase, now)))
        excluded = sqlite_session.scalar(select(Challenge.id).where(~current_phase_is(phase, now)))
        # Both ways: the directory excludes drafts with NOT, where a NULL would silently drop rows.
        assert (found is not None) == (phase is expected), phase
        assert (excluded is not None) == (phase is not expected), phase
    sqlite_session.rollback()
