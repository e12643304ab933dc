"""Reports, the moderators' queue, hiding and restoring with a reason, and flagged vote bursts.

Every moderation action is written to the audit log. Hidden ideas keep their votes (the counter
matches the rows); voters may take those votes back to use them elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, distinct, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from challenges.models import Challenge
from challenges.permissions import Access, Role
from ideaforge.accounts.models import User
from ideaforge.audit import record
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _
from ideas.models import Comment, Idea, IdeaStatus, Report, ReportStatus, Vote, VoteFlag

REASON_MAX = 1000
BURST_WINDOW = timedelta(minutes=10)
BURST_ACCOUNTS = 3
"""This many accounts voting from one address and browser within the window raise a flag."""


def can_moderate(access: Access) -> bool:
    return bool(access.roles & {Role.MODERATOR, Role.ADMIN})


def _reason(reason: str, field: str = "reason") -> str:
    reason = reason.strip()
    if not reason:
        raise ValidationFailed({field: _("Give a reason: it is shown to the moderators or the author.")})
    if len(reason) > REASON_MAX:
        raise ValidationFailed({field: _("Use at most %(max)s characters (you used %(used)s).", max=REASON_MAX,
                                         used=len(reason))})  # fmt: skip
    return reason


async def report(
    session: AsyncSession, idea: Idea, reporter: User, reason: str, comment: Comment | None = None
) -> Report:
    """Anyone signed in may report; reporting the same thing twice keeps one open report."""
    text = _reason(reason)
    same_target: ColumnElement[bool] = (
        Report.comment_id == comment.id if comment is not None else Report.comment_id.is_(None)
    )
    existing = await session.scalar(select(Report).where(
        Report.idea_id == idea.id, same_target, Report.reporter_id == reporter.id, Report.status == ReportStatus.OPEN
    ))  # fmt: skip
    if existing is not None:
        return existing
    created = Report(challenge_id=idea.challenge_id, idea_id=idea.id, comment_id=comment.id if comment else None,
                     reporter_id=reporter.id, reason=text)  # fmt: skip
    session.add(created)
    await session.commit()
    return created


@dataclass(frozen=True)
class QueueItem:
    report: Report
    idea: Idea
    comment: Comment | None


async def queue(session: AsyncSession, challenge: Challenge) -> list[QueueItem]:
    reports = list(await session.scalars(
        select(Report).where(Report.challenge_id == challenge.id, Report.status == ReportStatus.OPEN)
        .options(selectinload(Report.reporter)).order_by(Report.created_at)
    ))  # fmt: skip
    items = []
    for item in reports:
        idea = await session.get(Idea, item.idea_id)
        comment = await session.get(Comment, item.comment_id) if item.comment_id else None
        if comment is not None:
            await session.refresh(comment, ["author"])
        assert idea is not None
        items.append(QueueItem(item, idea, comment))
    return items


async def flags(session: AsyncSession, challenge: Challenge) -> list[VoteFlag]:
    result = await session.scalars(select(VoteFlag).where(VoteFlag.challenge_id == challenge.id,
                                                          VoteFlag.reviewed_at.is_(None)))  # fmt: skip
    return list(result)


async def _resolve(session: AsyncSession, idea_id: int, comment_id: int | None, now: datetime) -> None:
    condition: ColumnElement[bool] = (
        Report.comment_id == comment_id if comment_id else Report.comment_id.is_(None)
    )
    await session.execute(update(Report).where(Report.idea_id == idea_id, condition,
                                               Report.status == ReportStatus.OPEN)
                          .values(status=ReportStatus.RESOLVED, resolved_at=now))  # fmt: skip


async def set_idea_hidden(session: AsyncSession, access: Access, idea: Idea, moderator: User, hidden: bool,
                          reason: str, now: datetime) -> Idea:  # fmt: skip
    if not can_moderate(access):
        raise Forbidden(_("Only the organisation's moderators can do this."))
    text = _reason(reason)
    if hidden and idea.status is not IdeaStatus.PUBLISHED:
        raise Conflict(_("Only a published idea can be hidden."))
    if not hidden and idea.status is not IdeaStatus.HIDDEN:
        raise Conflict(_("This idea is not hidden."))
    idea.status = IdeaStatus.HIDDEN if hidden else IdeaStatus.PUBLISHED
    idea.status_reason = text if hidden else ""
    await _resolve(session, idea.id, None, now)
    record(session, actor_id=moderator.id, organisation_id=access.challenge.organisation_id, subject_type="idea",
           subject_id=idea.id, action="hide" if hidden else "restore", reason=text)  # fmt: skip
    await session.commit()
    return idea


async def set_comment_hidden(session: AsyncSession, access: Access, comment: Comment, moderator: User,
                             hidden: bool, reason: str, now: datetime) -> Comment:  # fmt: skip
    if not can_moderate(access):
        raise Forbidden(_("Only the organisation's moderators can do this."))
    text = _reason(reason)
    comment.hidden_reason = text if hidden else None
    await _resolve(session, comment.idea_id, comment.id, now)
    record(session, actor_id=moderator.id, organisation_id=access.challenge.organisation_id,
           subject_type="comment", subject_id=comment.id, action="hide" if hidden else "restore", reason=text)  # fmt: skip
    await session.commit()
    return comment


async def dismiss_report(
    session: AsyncSession, access: Access, item: Report, moderator: User, now: datetime
) -> None:
    if not can_moderate(access):
        raise Forbidden(_("Only the organisation's moderators can do this."))
    item.status, item.resolved_at = ReportStatus.RESOLVED, now
    record(session, actor_id=moderator.id, organisation_id=access.challenge.organisation_id, subject_type="report",
           subject_id=item.id, action="dismiss")  # fmt: skip
    await session.commit()


async def flag_vote_burst(session: AsyncSession, challenge_id: int, client_hash: str, now: datetime) -> bool:
    """Raise (or update) a flag when several accounts voted from one client lately. Never blocks a vote."""
    if not client_hash:
        return False
    accounts = await session.scalar(
        select(func.count(distinct(Vote.user_id))).where(
            Vote.challenge_id == challenge_id, Vote.client_hash == client_hash, Vote.created_at >= now - BURST_WINDOW)
    ) or 0  # fmt: skip
    if accounts < BURST_ACCOUNTS:
        return False
    existing = await session.scalar(select(VoteFlag).where(VoteFlag.challenge_id == challenge_id,
                                                           VoteFlag.client_hash == client_hash))  # fmt: skip
    if existing is None:
        session.add(
            VoteFlag(challenge_id=challenge_id, client_hash=client_hash, accounts=accounts, created_at=now)
        )
    else:
        existing.accounts = max(existing.accounts, accounts)
        existing.reviewed_at = None
    await session.commit()
    return True
