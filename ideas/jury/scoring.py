"""Scoring: a juror's scorecards for the ideas assigned to them, the audit of every change, the panel view,
the organisers' exports, and what blind review hides (``hides_authors``).

A juror scores while the review runs (``can_score``). A scorecard is a draft until submitted; drafts may
leave scores empty. Submitting needs a score on every criterion. A submitted card may be revised and
submitted again until the review closes, but never goes back to draft: saving a submitted card keeps it
submitted and so needs every score too (a jury's results must not lose a card because a juror saved a
half-done edit).

Every save writes, in its transaction, one ``ScoreChange`` per value that changed (score, comment, overall
comment, status), with its before and after; unchanged values write nothing. Saves of one juror are serialised
(a row lock on the assignment on PostgreSQL, an in-process lock on SQLite); the unique scorecard per
assignment is the last word, and losing that race means loading the card the other save created and trying
again.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from challenges.labels import phase_labels
from challenges.models import Challenge, Criterion, Phase
from challenges.permissions import Access, Role, can_score
from challenges.phases import has_started
from challenges.services import access_for
from ideaforge.accounts.models import User
from ideaforge.db import is_postgres
from ideaforge.errors import Forbidden, ValidationFailed
from ideaforge.i18n import _, format_datetime
from ideaforge.validation import text_problem
from ideaforge.web.spreadsheet import csv_bytes
from ideas.jury.calibration import raw_score
from ideas.jury.models import (
    COMMENT_MAX,
    CriterionScore,
    JuryAssignment,
    Scorecard,
    ScorecardStatus,
    ScoreChange,
)
from ideas.models import Idea

PAGE_SIZE = 50
OVERALL = "overall_comment"
_INTEGER = re.compile(r"[+-]?\d{1,9}")
_sqlite_locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)


class CardState(enum.StrEnum):
    NOT_STARTED = "not_started"
    DRAFT = "draft"
    SUBMITTED = "submitted"


def score_field(criterion_id: int) -> str:
    return f"score-{criterion_id}"


def comment_field(criterion_id: int) -> str:
    return f"comment-{criterion_id}"


# --- who sees what ------------------------------------------------------------------------------------------


def is_juror(access: Access) -> bool:
    return Role.JUROR in access.roles


def hides_authors(access: Access, challenge: Challenge) -> bool:
    """Blind review: a juror of the challenge sees no author, organisation or vote count of its ideas, unless
    they are an author of the idea themselves or one of the organisers (who see everything)."""
    return (
        challenge.blind_review
        and Role.JUROR in access.roles
        and not access.roles & {Role.AUTHOR, Role.MODERATOR, Role.ADMIN}
    )


def closed_message(challenge: Challenge, now: datetime) -> str:
    """Why a juror cannot score now: not open yet, or over (with the date)."""
    if challenge.review_ends_at is None:
        return _("This challenge has no jury review: there is nothing to score.")
    if challenge.phase_override is not None:
        phase = phase_labels()[challenge.phase_override]
        if has_started(challenge, Phase.REVIEW, now):
            return _("The review is over: the challenge was moved by hand to the phase “%(phase)s”. Scores can "
                     "no longer change.", phase=phase)  # fmt: skip
        return _(
            "Scoring is not open: the challenge was moved by hand to the phase “%(phase)s”.", phase=phase
        )
    if has_started(challenge, Phase.REVIEW, now):
        return _("The review closed on %(date)s: scores can no longer change.",
                 date=format_datetime(challenge.review_ends_at, "medium", challenge.timezone))  # fmt: skip
    return _(
        "Scoring opens on %(date)s.",
        date=format_datetime(challenge.voting_ends_at, "medium", challenge.timezone),
    )


# --- saving -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    id: int
    name: str
    scale_min: int
    scale_max: int


async def criteria_of(session: AsyncSession, challenge_id: int) -> list[Criterion]:
    return list(await session.scalars(
        select(Criterion).where(Criterion.challenge_id == challenge_id).order_by(Criterion.position)
    ))  # fmt: skip


async def assignment_id_of(
    session: AsyncSession, challenge_id: int, idea_id: int, juror_id: int
) -> int | None:
    return await session.scalar(select(JuryAssignment.id).where(
        JuryAssignment.challenge_id == challenge_id, JuryAssignment.idea_id == idea_id,
        JuryAssignment.juror_user_id == juror_id))  # fmt: skip


def _parse(scales: Sequence[Scale], values: Mapping[str, str], *, complete: bool) -> tuple[dict[int, tuple[int | None, str]], str]:  # fmt: skip
    """Each criterion's score (None: empty) and comment, and the overall comment; every problem at once."""
    errors: dict[str, str] = {}
    parsed: dict[int, tuple[int | None, str]] = {}
    for s in scales:
        raw, score = values.get(score_field(s.id), "").strip(), None
        if raw:
            if _INTEGER.fullmatch(raw) and s.scale_min <= int(raw) <= s.scale_max:
                score = int(raw)
            else:
                errors[score_field(s.id)] = _("Choose a score for “%(criterion)s” from %(min)s to %(max)s.",
                                              criterion=s.name, min=s.scale_min, max=s.scale_max)  # fmt: skip
        elif complete:
            errors[score_field(s.id)] = _("Give “%(criterion)s” a score from %(min)s to %(max)s before submitting.",
                                          criterion=s.name, min=s.scale_min, max=s.scale_max)  # fmt: skip
        comment = values.get(comment_field(s.id), "").strip()
        if problem := text_problem(comment, required=False, max_length=COMMENT_MAX):
            errors[comment_field(s.id)] = problem
        parsed[s.id] = (score, comment)
    overall = values.get(OVERALL, "").strip()
    if problem := text_problem(overall, required=False, max_length=COMMENT_MAX):
        errors[OVERALL] = problem
    if errors:
        raise ValidationFailed(errors)
    return parsed, overall


@asynccontextmanager
async def _juror_locked(session: AsyncSession, juror_id: int, assignment_id: int) -> AsyncIterator[None]:
    """One save at a time per juror: the assignment's row locked on PostgreSQL, an in-process lock on SQLite
    (one process, one writer); the transaction ends on the way out (committed inside, or rolled back)."""
    async with AsyncExitStack() as held:
        if not is_postgres(session):
            await held.enter_async_context(_sqlite_locks[juror_id])
            await session.rollback()  # the next read sees every earlier commit
        try:
            query = select(JuryAssignment.id).where(JuryAssignment.id == assignment_id)
            if await session.scalar(query.with_for_update() if is_postgres(session) else query) is None:
                raise LookupError(assignment_id)  # taken away meanwhile
            yield
        finally:
            await session.rollback()


def _text(value: object) -> str | None:
    """How the audit writes a value: None for nothing."""
    return None if value is None or value == "" else str(value)


async def save_scores(session: AsyncSession, challenge: Challenge, idea_id: int, juror: User,
                      values: Mapping[str, str], *, submit: bool, now: datetime) -> Scorecard:  # fmt: skip
    """Save the juror's scorecard for an assigned idea from the form's ``values`` (``score-<criterion id>``,
    ``comment-<criterion id>``, ``overall_comment``), as a draft or submitted (see the module's rules).

    ``LookupError``: the idea is not assigned to this juror. ``Forbidden``: scoring is not open (the message
    says why). ``ValidationFailed``: a field is wrong; nothing is saved."""
    challenge_id, juror_id = challenge.id, juror.id
    access = await access_for(session, challenge, juror, now)
    assignment_id = await assignment_id_of(session, challenge_id, idea_id, juror_id)
    if assignment_id is None or not is_juror(access):
        raise LookupError(idea_id)
    if not can_score(access):
        raise Forbidden(closed_message(challenge, now))
    scales = [Scale(c.id, c.name, c.scale_min, c.scale_max) for c in await criteria_of(session, challenge_id)]
    for attempt in (1, 2):
        try:
            async with _juror_locked(session, juror_id, assignment_id):
                fresh = await session.scalar(select(Challenge).where(Challenge.id == challenge_id)
                                             .execution_options(populate_existing=True))  # fmt: skip
                assert fresh is not None
                if not can_score(Access(fresh, now, access.roles)):  # a phase moved by hand meanwhile
                    raise Forbidden(closed_message(fresh, now))
                card = await _write(session, challenge_id, idea_id, juror_id, assignment_id, scales, values,
                                    submit=submit, now=now)  # fmt: skip
                await session.commit()
                return card
        except IntegrityError:  # another save created the card first: load it and apply this save on top
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _write(session: AsyncSession, challenge_id: int, idea_id: int, juror_id: int, assignment_id: int,
                 scales: Sequence[Scale], values: Mapping[str, str], *, submit: bool, now: datetime) -> Scorecard:  # fmt: skip
    card = await session.scalar(select(Scorecard).where(Scorecard.assignment_id == assignment_id))
    rows: dict[int, CriterionScore] = {}
    if card is not None:
        found = await session.scalars(select(CriterionScore).where(CriterionScore.scorecard_id == card.id))
        rows = {row.criterion_id: row for row in found}
    was_submitted = card is not None and card.status is ScorecardStatus.SUBMITTED
    scores, overall = _parse(scales, values, complete=submit or was_submitted)
    before_status = card.status.value if card is not None else None
    if card is None:
        card = Scorecard(assignment_id=assignment_id, challenge_id=challenge_id, idea_id=idea_id,
                         juror_user_id=juror_id, status=ScorecardStatus.DRAFT, overall_comment="",
                         created_at=now, updated_at=now)  # fmt: skip
        session.add(card)
        await session.flush()
    changes: list[ScoreChange] = []

    def change(name: str, before: object, after: object, criterion_id: int | None = None) -> None:
        if _text(before) != _text(after):
            changes.append(ScoreChange(challenge_id=challenge_id, idea_id=idea_id, juror_user_id=juror_id,
                                       criterion_id=criterion_id, field=name, before=_text(before),
                                       after=_text(after), changed_by_id=juror_id, changed_at=now))  # fmt: skip

    for s in scales:
        score, comment = scores[s.id]
        row = rows.get(s.id)
        if row is None:
            if score is None and not comment:
                continue
            row = CriterionScore(scorecard_id=card.id, criterion_id=s.id, score=None, comment="")
            session.add(row)
        change("score", row.score, score, s.id)
        change("comment", row.comment, comment, s.id)
        row.score, row.comment = score, comment
    change(OVERALL, card.overall_comment, overall)
    status = ScorecardStatus.SUBMITTED if submit or was_submitted else ScorecardStatus.DRAFT
    change("status", before_status, status.value)
    card.overall_comment = overall
    if status is ScorecardStatus.SUBMITTED and not was_submitted:
        card.submitted_at = now
    card.status = status
    if changes:
        card.updated_at = now
        session.add_all(changes)
    await session.flush()
    return card


# --- reading: the juror's list, their card, the panel ---------------------------------------------------------


@dataclass(frozen=True)
class AssignedIdea:
    idea_id: int
    title: str
    state: CardState
    updated_at: datetime | None


async def assigned_ideas(session: AsyncSession, challenge_id: int, juror_id: int) -> list[AssignedIdea]:
    """The ideas given to the juror (the shortlist bounds them: no paging), with how far their card is."""
    rows = await session.execute(
        select(Idea.id, Idea.title, Scorecard.status, Scorecard.updated_at)
        .select_from(JuryAssignment).join(Idea, Idea.id == JuryAssignment.idea_id)
        .outerjoin(Scorecard, Scorecard.assignment_id == JuryAssignment.id)
        .where(JuryAssignment.challenge_id == challenge_id, JuryAssignment.juror_user_id == juror_id)
        .order_by(Idea.id)
    )  # fmt: skip
    return [AssignedIdea(r.id, r.title, CardState(r.status.value) if r.status else CardState.NOT_STARTED,
                         r.updated_at) for r in rows]  # fmt: skip


async def card_of(session: AsyncSession, assignment_id: int) -> tuple[Scorecard | None, dict[str, str]]:
    """The juror's card for an assignment (None: not started) and its values as the form shows them."""
    card = await session.scalar(select(Scorecard).where(Scorecard.assignment_id == assignment_id))
    if card is None:
        return None, {}
    values = {OVERALL: card.overall_comment}
    for row in await session.scalars(select(CriterionScore).where(CriterionScore.scorecard_id == card.id)):
        values[score_field(row.criterion_id)] = "" if row.score is None else str(row.score)
        values[comment_field(row.criterion_id)] = row.comment
    return card, values


def weighted_score(criteria: Sequence[Criterion], scores: Mapping[int, int | None]) -> float | None:
    """A card's weighted score on 0-100, as the results compute it; None when a score is missing."""
    given = {c.id: score for c in criteria if (score := scores.get(c.id)) is not None}
    if not criteria or len(given) < len(criteria):
        return None
    return round(raw_score(criteria, given), 1)


@dataclass(frozen=True)
class PanelCard:
    juror_id: int
    juror_name: str
    scores: dict[int, int | None]
    comments: dict[int, str]
    overall_comment: str
    weighted: float | None


@dataclass(frozen=True)
class Panel:
    cards: list[PanelCard]
    spread: dict[int, int] = field(default_factory=dict)
    """Per criterion: highest minus lowest score among the submitted cards."""
    weighted_spread: float | None = None


async def panel_for(session: AsyncSession, idea_id: int, juror_id: int, criteria: Sequence[Criterion]) -> Panel | None:  # fmt: skip
    """Every submitted card on the idea (the juror's first), once the juror submitted theirs; None before."""
    found = (await session.execute(
        select(Scorecard, User.display_name).join(User, User.id == Scorecard.juror_user_id)
        .where(Scorecard.idea_id == idea_id, Scorecard.status == ScorecardStatus.SUBMITTED)
        .order_by(User.display_name, User.id)
    )).all()  # fmt: skip
    if not any(card.juror_user_id == juror_id for card, _name in found):
        return None
    by_card: dict[int, list[CriterionScore]] = defaultdict(list)
    for row in await session.scalars(
        select(CriterionScore).where(CriterionScore.scorecard_id.in_([c.id for c, _n in found]))
    ):
        by_card[row.scorecard_id].append(row)
    cards = []
    for card, name in sorted(found, key=lambda pair: pair[0].juror_user_id != juror_id):
        scores = {row.criterion_id: row.score for row in by_card[card.id]}
        cards.append(PanelCard(card.juror_user_id, name, scores, {r.criterion_id: r.comment for r in by_card[card.id]},
                               card.overall_comment, weighted_score(criteria, scores)))  # fmt: skip
    spread = {}
    for c in criteria:
        given = [s for card in cards if (s := card.scores.get(c.id)) is not None]
        if given:
            spread[c.id] = max(given) - min(given)
    weighted = [card.weighted for card in cards if card.weighted is not None]
    return Panel(cards, spread, round(max(weighted) - min(weighted), 1) if weighted else None)


# --- the organisers' audit and exports ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeRow:
    changed_at: datetime
    juror_name: str
    juror_email: str
    idea_id: int
    idea_title: str
    criterion: str | None
    field: str
    before: str | None
    after: str | None


def _changes_query(
    challenge_id: int,
) -> Select[datetime, str, str, int, str, str, str, str | None, str | None]:
    juror = aliased(User)
    return (
        select(ScoreChange.changed_at, juror.display_name, juror.email, Idea.id, Idea.title, Criterion.name,
               ScoreChange.field, ScoreChange.before, ScoreChange.after)
        .join(juror, juror.id == ScoreChange.juror_user_id).join(Idea, Idea.id == ScoreChange.idea_id)
        .outerjoin(Criterion, Criterion.id == ScoreChange.criterion_id)
        .where(ScoreChange.challenge_id == challenge_id)
        .order_by(ScoreChange.changed_at.desc(), ScoreChange.id.desc())
    )  # fmt: skip


async def score_changes(session: AsyncSession, challenge_id: int, page: int = 1,
                        page_size: int = PAGE_SIZE) -> tuple[list[ChangeRow], int]:  # fmt: skip
    """One page of the challenge's score changes, newest first, and how many there are."""
    total = await session.scalar(
        select(func.count()).select_from(ScoreChange).where(ScoreChange.challenge_id == challenge_id)
    ) or 0  # fmt: skip
    rows = await session.execute(_changes_query(challenge_id).offset((page - 1) * page_size).limit(page_size))
    return [ChangeRow(*row) for row in rows], total


async def scores_csv(session: AsyncSession, challenge_id: int) -> bytes:
    """Every scorecard of the challenge, one row each: the idea, the juror, the status, each criterion's score
    and comment, the overall comment."""
    criteria = await criteria_of(session, challenge_id)
    found = (await session.execute(
        select(Scorecard, Idea.title, User.display_name, User.email)
        .join(Idea, Idea.id == Scorecard.idea_id).join(User, User.id == Scorecard.juror_user_id)
        .where(Scorecard.challenge_id == challenge_id).order_by(Idea.id, User.display_name, User.id)
    )).all()  # fmt: skip
    scores: dict[tuple[int, int], CriterionScore] = {}
    for row in await session.scalars(
        select(CriterionScore).where(CriterionScore.scorecard_id.in_([c.id for c, *_r in found]))
    ):
        scores[(row.scorecard_id, row.criterion_id)] = row
    header: list[object] = ["idea_id", "idea_title", "juror", "juror_email", "status", "submitted_at"]
    for c in criteria:
        header += [f"{c.name} score", f"{c.name} comment"]
    header.append("overall_comment")
    rows = []
    for card, title, name, email in found:
        line: list[object] = [card.idea_id, title, name, email, card.status.value,
                              card.submitted_at.isoformat() if card.submitted_at else ""]  # fmt: skip
        for c in criteria:
            given = scores.get((card.id, c.id))
            line += [
                "" if given is None or given.score is None else given.score,
                given.comment if given else "",
            ]
        rows.append([*line, card.overall_comment])
    return csv_bytes(header, rows)


async def changes_csv(session: AsyncSession, challenge_id: int) -> bytes:
    """The whole audit of score changes, newest first."""
    rows = [ChangeRow(*row) for row in await session.execute(_changes_query(challenge_id))]
    return csv_bytes(["changed_at", "juror", "juror_email", "idea_id", "idea_title", "criterion", "field", "before", "after"],
                [[r.changed_at.isoformat(), r.juror_name, r.juror_email, r.idea_id, r.idea_title, r.criterion or "",
                  r.field, r.before or "", r.after or ""] for r in rows])  # fmt: skip
