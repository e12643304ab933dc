"""A challenge's phase, derived from its dates (or a manual override), in Python and in SQL.

Each phase is active on [start, end): a phase starts at its start instant and is over at its
end instant. Submission and voting may overlap; then both are active and the current phase,
the one shown and filtered on, is voting. ``draft`` is the time before submission opens (and
any time before publication); ``closed`` the time after results end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, true

from challenges.models import Challenge, Phase


@dataclass(frozen=True)
class PhaseSpan:
    phase: Phase
    starts_at: datetime | None
    ends_at: datetime | None

    def contains(self, moment: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= moment) and (
            self.ends_at is None or moment < self.ends_at
        )


def results_starts_at(challenge: Challenge) -> datetime:
    return challenge.review_ends_at or challenge.voting_ends_at


def timeline(challenge: Challenge) -> list[PhaseSpan]:
    """Every phase with its dates; review is absent when the challenge has no jury review."""
    spans = [
        PhaseSpan(Phase.DRAFT, None, challenge.submission_starts_at),
        PhaseSpan(Phase.SUBMISSION, challenge.submission_starts_at, challenge.submission_ends_at),
        PhaseSpan(Phase.VOTING, challenge.voting_starts_at, challenge.voting_ends_at),
    ]
    if challenge.review_ends_at is not None:
        spans.append(PhaseSpan(Phase.REVIEW, challenge.voting_ends_at, challenge.review_ends_at))
    spans.append(PhaseSpan(Phase.RESULTS, results_starts_at(challenge), challenge.results_ends_at))
    spans.append(PhaseSpan(Phase.CLOSED, challenge.results_ends_at, None))
    return spans


def active_phases(challenge: Challenge, now: datetime) -> frozenset[Phase]:
    """Every phase in force now: two during an overlap of submission and voting, else one."""
    if challenge.phase_override is not None:
        return frozenset({challenge.phase_override})
    if challenge.published_at is None:
        return frozenset({Phase.DRAFT})
    return frozenset(span.phase for span in timeline(challenge) if span.contains(now))


def current_phase(challenge: Challenge, now: datetime) -> Phase:
    return max(active_phases(challenge, now), key=lambda phase: phase.order)


def has_started(challenge: Challenge, phase: Phase, now: datetime) -> bool:
    """Whether ``phase`` has begun (by its dates, or an override to it or a later phase)."""
    if challenge.phase_override is not None:
        return challenge.phase_override.order >= phase.order
    if challenge.published_at is None:
        return False
    starts = {span.phase: span.starts_at for span in timeline(challenge)}
    start = starts.get(phase)
    if start is None:  # a skipped review "starts" when results do
        start = results_starts_at(challenge) if phase is Phase.REVIEW else None
    return start is not None and start <= now


def current_phase_is(phase: Phase, now: datetime) -> ColumnElement[bool]:
    """SQL for ``current_phase(challenge, now) == phase``; tests keep the two in agreement."""
    c = Challenge
    by_dates = {
        Phase.DRAFT: or_(c.published_at.is_(None), now < c.submission_starts_at),
        Phase.SUBMISSION: and_(c.submission_starts_at <= now, now < c.voting_starts_at),
        Phase.VOTING: and_(c.voting_starts_at <= now, now < c.voting_ends_at),
        Phase.REVIEW: and_(c.review_ends_at.is_not(None), c.voting_ends_at <= now, now < c.review_ends_at),
        Phase.RESULTS: and_(
            func.coalesce(c.review_ends_at, c.voting_ends_at) <= now, now < c.results_ends_at
        ),
        Phase.CLOSED: c.results_ends_at <= now,
    }[phase]
    published = c.published_at.is_not(None) if phase is not Phase.DRAFT else true()
    # NULL-safe on purpose: "override = phase" is NULL without an override, and NOT(NULL) drops the row.
    return or_(
        and_(c.phase_override.is_not(None), c.phase_override == phase),
        and_(c.phase_override.is_(None), published, by_dates),
    )
