"""The jury's results: the ranking computed from the submitted scorecards, and its publication.

Before publication the ranking is computed on every request from the submitted scorecards (only the
organisation sees it; drafts never count). Publishing, possible once the review is over, writes it as it
stands into ``published_results``, with the winners the organiser chose, and sets
``Challenge.results_published_at``: from then on everyone sees that snapshot (``can_see_results``), on the
results page, the challenge page and ``GET /api/v1/challenges/{id}/results``.

The statistics (raw and calibrated scores, minimums, spread, agreement, ties) are in ``calibration``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, Criterion, Phase
from challenges.phases import has_started
from challenges.services import access_for, is_admin
from ideaforge.accounts.models import User
from ideaforge.audit import record
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _
from ideaforge.notifications.services import Mail, Notifier, followers
from ideas.jury import calibration
from ideas.jury.models import CriterionScore, PublishedResult, Scorecard, ScorecardStatus
from ideas.models import Idea, ShortlistEntry
from ideas.shortlist import challenge_locked, idea_author_users

DEFAULT_WINNERS = 3


@dataclass(frozen=True)
class Line:
    """One idea's line in the ranking, as a page or the API shows it."""

    idea_id: int
    title: str
    rank: int | None
    raw: float | None
    calibrated: float | None
    jurors: int
    passed: bool
    winner: bool = False
    spread: float | None = None
    disputed: bool = False
    failed_criteria: tuple[str, ...] = ()
    tie: calibration.TieBreak | None = None
    votes: int = 0


@dataclass(frozen=True)
class JurorLine:
    name: str
    cards: int
    calibrated: bool
    flat: bool


@dataclass(frozen=True)
class Ranking:
    lines: tuple[Line, ...]
    alpha_raw: float | None = None
    alpha_calibrated: float | None = None
    min_scored: int = calibration.MIN_SCORED
    jurors: tuple[JurorLine, ...] = ()
    published_at: datetime | None = None
    criteria: tuple[str, ...] = field(default_factory=tuple)

    @property
    def scored(self) -> int:
        return sum(1 for line in self.lines if line.jurors)

    @property
    def winners(self) -> tuple[Line, ...]:
        return tuple(line for line in self.lines if line.winner)

    @property
    def uncalibrated_jurors(self) -> tuple[JurorLine, ...]:
        return tuple(juror for juror in self.jurors if not juror.calibrated)


def _spec(criterion: Criterion) -> calibration.CriterionSpec:
    return calibration.CriterionSpec(id=criterion.id, weight=criterion.weight, scale_min=criterion.scale_min,
                                     scale_max=criterion.scale_max, minimum=criterion.minimum_score)  # fmt: skip


async def live_ranking(session: AsyncSession, challenge: Challenge) -> Ranking:
    """The ranking as the submitted scorecards give it now (``challenge.criteria`` must be loaded)."""
    ideas = (await session.execute(
        select(Idea.id, Idea.title, Idea.vote_count)
        .join(ShortlistEntry, ShortlistEntry.idea_id == Idea.id)
        .where(ShortlistEntry.challenge_id == challenge.id)
        .order_by(Idea.id)
    )).all()  # fmt: skip
    criteria = list(challenge.criteria)
    names = {c.id: c.name for c in criteria}
    if not criteria or not ideas:
        lines = tuple(Line(i.id, i.title, None, None, None, 0, True, votes=i.vote_count) for i in ideas)
        return Ranking(lines, criteria=tuple(names.values()))
    rows = (await session.execute(
        select(Scorecard.idea_id, Scorecard.juror_user_id, CriterionScore.criterion_id, CriterionScore.score)
        .join(CriterionScore, CriterionScore.scorecard_id == Scorecard.id)
        .where(Scorecard.challenge_id == challenge.id, Scorecard.status == ScorecardStatus.SUBMITTED,
               CriterionScore.score.is_not(None))
    )).all()  # fmt: skip
    shortlisted = {i.id for i in ideas}
    scores: defaultdict[tuple[int, int], dict[int, float]] = defaultdict(dict)
    for idea_id, juror_id, criterion_id, score in rows:
        if idea_id in shortlisted and criterion_id in names and score is not None:
            scores[(idea_id, juror_id)][criterion_id] = float(score)
    # A card counts when it scores every criterion (submitting requires it; a criterion added since would not).
    cards = [calibration.Card(idea_id, juror_id, s) for (idea_id, juror_id), s in sorted(scores.items())
             if len(s) == len(names)]  # fmt: skip
    votes = {i.id: i.vote_count for i in ideas}
    results = calibration.compute(
        [_spec(c) for c in criteria], cards, [i.id for i in ideas], tie_breakers=votes
    )
    titles = {i.id: i.title for i in ideas}
    juror_names = dict((await session.execute(
        select(User.id, User.display_name).where(User.id.in_({c.juror_id for c in cards}))
    )).all())  # fmt: skip
    lines = tuple(
        Line(row.idea_id, titles[row.idea_id], row.rank, row.raw, row.calibrated, row.jurors,
             not row.failed_criteria, spread=row.spread, disputed=row.disputed,
             failed_criteria=tuple(names[c] for c in row.failed_criteria), tie=row.tie, votes=votes[row.idea_id])
        for row in results.rows
    )  # fmt: skip
    jurors = tuple(sorted(
        (JurorLine(juror_names.get(j.juror_id, "?"), j.cards, j.calibrated, j.flat) for j in results.jurors),
        key=lambda j: j.name.casefold(),
    ))  # fmt: skip
    return Ranking(lines, results.alpha_raw, results.alpha_calibrated, results.min_scored, jurors,
                   criteria=tuple(names.values()))  # fmt: skip


async def published_ranking(session: AsyncSession, challenge: Challenge) -> Ranking:
    """The ranking as the organiser published it (empty before publication)."""
    rows = (await session.execute(
        select(PublishedResult, Idea.title, Idea.vote_count).join(Idea, Idea.id == PublishedResult.idea_id)
        .where(PublishedResult.challenge_id == challenge.id).order_by(PublishedResult.position)
    )).all()  # fmt: skip
    lines = tuple(
        Line(r.idea_id, title, r.rank, r.raw_score, r.calibrated_score, r.jurors, r.passed_minimums, r.winner,
             votes=votes)
        for r, title, votes in rows
    )  # fmt: skip
    # The scores are frozen since the review closed: the details not kept in the snapshot are computed again.
    live = await live_ranking(session, challenge)
    details = {line.idea_id: line for line in live.lines}
    lines = tuple(
        replace(line, tie=d.tie, spread=d.spread, disputed=d.disputed, failed_criteria=d.failed_criteria)
        if (d := details.get(line.idea_id)) else line
        for line in lines
    )  # fmt: skip
    return Ranking(lines, live.alpha_raw, live.alpha_calibrated, live.min_scored, live.jurors,
                   published_at=challenge.results_published_at, criteria=live.criteria)  # fmt: skip


async def ranking_for(session: AsyncSession, challenge: Challenge) -> Ranking:
    """What the results page shows: the published snapshot once there is one, else the live ranking."""
    if challenge.results_published_at is not None:
        return await published_ranking(session, challenge)
    return await live_ranking(session, challenge)


async def winners_of(session: AsyncSession, challenge_id: int) -> list[tuple[int, str, int | None]]:
    """The published winners (idea id, title, rank), best first: what the challenge page lists."""
    rows = await session.execute(
        select(Idea.id, Idea.title, PublishedResult.rank).join(PublishedResult, PublishedResult.idea_id == Idea.id)
        .where(PublishedResult.challenge_id == challenge_id, PublishedResult.winner.is_(True))
        .order_by(PublishedResult.position)
    )  # fmt: skip
    return [(idea_id, title, rank) for idea_id, title, rank in rows]


# --- publishing ---------------------------------------------------------------------------------------------


def can_publish_now(challenge: Challenge, now: datetime) -> bool:
    """Results are published once the review is over (by its dates or a phase override), and once."""
    return challenge.results_published_at is None and has_started(challenge, Phase.RESULTS, now)


def _published_news(challenge_title: str) -> Callable[[], str]:
    return lambda: _("The jury's results of “%(challenge)s” are published.", challenge=challenge_title)


async def publish_results(session: AsyncSession, challenge: Challenge, actor: User, now: datetime,
                          winners: int, notifier: Notifier | None = None) -> None:  # fmt: skip
    """Publish the ranking as it stands with its first ``winners`` passing ideas as winners; tell the
    challenge's followers and the shortlisted ideas' authors after the commit."""
    challenge_id, actor_id = challenge.id, actor.id
    access = await access_for(session, challenge, actor, now)
    if not is_admin(access):
        raise Forbidden(_("Only the organisation's owners and admins can publish the results."))
    if challenge.results_published_at is not None:
        raise Conflict(_("The results are already published."))
    if not has_started(challenge, Phase.RESULTS, now):
        raise Conflict(_("The results can be published once the review is over."))
    ranking = await live_ranking(session, challenge)
    eligible = [line for line in ranking.lines if line.rank is not None and line.passed]
    if not eligible:
        raise ValidationFailed({"winners": _(
            "No idea can win yet: none has a submitted score that meets every criterion's minimum.")})  # fmt: skip
    if not 1 <= winners <= len(eligible):
        raise ValidationFailed({"winners": _("Choose between 1 and %(count)s winners.", count=len(eligible))})
    chosen = {line.idea_id for line in eligible[:winners]}
    mails: list[Mail] = []
    async with challenge_locked(session, challenge_id) as locked:  # the shortlist's and the jury's lock
        if locked.results_published_at is not None:  # published meanwhile in another window
            raise Conflict(_("The results are already published."))
        session.add_all(
            PublishedResult(challenge_id=challenge_id, idea_id=line.idea_id, position=position, rank=line.rank,
                            raw_score=line.raw, calibrated_score=line.calibrated, jurors=line.jurors,
                            passed_minimums=line.passed, winner=line.idea_id in chosen)
            for position, line in enumerate(ranking.lines, start=1)
        )  # fmt: skip
        locked.results_published_at = now
        organisation_id, title = locked.organisation_id, locked.title
        record(session, actor_id=actor_id, organisation_id=organisation_id, subject_type="challenge",
               subject_id=challenge_id, action="results_published",
               detail={"winners": sorted(chosen), "ranked": ranking.scored})  # fmt: skip
        if notifier is not None:
            people = {u.id: u for u in await followers(session, "challenge", challenge_id)}
            authors = (await session.execute(
                select(Idea.id, Idea.author_id).where(Idea.id.in_([line.idea_id for line in ranking.lines]))
            )).all()  # fmt: skip
            for idea_id, author_id in authors:
                people |= {u.id: u for u in await idea_author_users(session, idea_id, author_id)}
            mails = notifier.notify(session, people.values(), "results_published", _published_news(title),
                                    f"/challenges/{challenge_id}/results")  # fmt: skip
        await session.commit()
    if notifier is not None:
        notifier.send(mails)
