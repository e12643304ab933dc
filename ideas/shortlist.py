"""The shortlist: the ideas a challenge's admins pick for the jury, at most ``Challenge.shortlist_size``.

Admins build it while the challenge runs (``can_shortlist``: submission and voting), from the published
ideas sorted by votes (merged duplicates are already folded into the idea that stays). It locks when the
review starts, by the dates or by a phase override (``is_locked``): from then on it is the jury's list, and
the idea pages show a "Shortlisted" badge. Before that it is the organisers' working list, not public; the
authors of an idea (author and accepted co-authors) are told when it is added, and when it is taken off.

The size limit is a rule across rows, so every change takes a lock on the challenge first: ``FOR UPDATE``
on its row on PostgreSQL, an in-process lock on SQLite (one process, one writer), taken before the
transaction's first read; then it counts and inserts. The unique key on the idea is the last word.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.labels import phase_labels
from challenges.models import Challenge, Phase
from challenges.permissions import Access, can_shortlist
from challenges.phases import has_started
from challenges.services import access_for, is_admin
from ideaforge.accounts.models import User
from ideaforge.audit import record
from ideaforge.db import is_postgres
from ideaforge.errors import Conflict, Forbidden
from ideaforge.i18n import _, format_datetime
from ideaforge.notifications.services import Mail, Notifier
from ideaforge.profiles.models import AssignmentStatus, ExpertAssignment
from ideas.models import CoAuthor, CoAuthorStatus, Comment, Idea, IdeaStatus, ShortlistEntry

PAGE_SIZE = 25

_sqlite_locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)


def is_locked(challenge: Challenge, now: datetime) -> bool:
    """Locked once the review has started (or a later phase: a skipped review "starts" with the results),
    by the dates or by a phase override."""
    return has_started(challenge, Phase.REVIEW, now)


def locked_message(challenge: Challenge) -> str:
    """Why nothing changes any more, and since when."""
    if challenge.phase_override is not None:
        return _("The shortlist is locked since the challenge was moved by hand to the phase “%(phase)s”: "
                 "it is now the jury's list.", phase=phase_labels()[challenge.phase_override])  # fmt: skip
    return _("The shortlist is locked since the review started on %(date)s: it is now the jury's list.",
             date=format_datetime(challenge.voting_ends_at, "medium", challenge.timezone))  # fmt: skip


def can_manage_shortlist(access: Access) -> bool:
    """Seeing the organisers' shortlist page: the challenge's owners and admins, in any phase."""
    return is_admin(access)


@asynccontextmanager
async def challenge_locked(session: AsyncSession, challenge_id: int) -> AsyncIterator[Challenge]:
    """The challenge, reloaded under a lock held until the transaction ends (committed inside, or rolled
    back on the way out)."""
    async with AsyncExitStack() as held:
        if not is_postgres(session):
            await held.enter_async_context(_sqlite_locks[challenge_id])
            await session.rollback()  # the next read starts a transaction that sees every earlier commit
        try:
            query = (
                select(Challenge)
                .where(Challenge.id == challenge_id)
                .execution_options(populate_existing=True)
            )
            challenge = await session.scalar(query.with_for_update() if is_postgres(session) else query)
            if challenge is None:
                raise LookupError(challenge_id)
            yield challenge
        finally:
            await session.rollback()  # a no-op after the commit; else ends the transaction and its lock


async def _require_admin(session: AsyncSession, challenge: Challenge, actor: User, now: datetime) -> Access:
    access = await access_for(session, challenge, actor, now)
    if not is_admin(access):
        raise Forbidden(_("Only the organisation's owners and admins can build the shortlist."))
    return access


def _check_phase(challenge: Challenge, access: Access) -> None:
    """Locked (``Conflict`` saying since when), or not open yet; checked again on the locked row."""
    if is_locked(challenge, access.now):
        raise Conflict(locked_message(challenge))
    if not can_shortlist(Access(challenge, access.now, access.roles)):
        raise Conflict(_("The shortlist can be built once the challenge is open for ideas."))


async def idea_author_users(session: AsyncSession, idea_id: int, author_id: int) -> list[User]:
    """The idea's authors: its author and the co-authors who accepted, active accounts only."""
    accepted = select(CoAuthor.user_id).where(
        CoAuthor.idea_id == idea_id, CoAuthor.status == CoAuthorStatus.ACCEPTED
    )
    result = await session.scalars(
        select(User).where((User.id == author_id) | User.id.in_(accepted), User.is_active.is_(True))
    )
    return list(result)


def _added_news(title: str, challenge_title: str) -> Callable[[], str]:
    return lambda: _("Your idea “%(title)s” is on the shortlist of “%(challenge)s”.",
                     title=title, challenge=challenge_title)  # fmt: skip


def _removed_news(title: str, challenge_title: str) -> Callable[[], str]:
    return lambda: _("Your idea “%(title)s” is no longer on the shortlist of “%(challenge)s”. The organisers "
                     "may still change it until the review starts.", title=title, challenge=challenge_title)  # fmt: skip


async def add_to_shortlist(session: AsyncSession, challenge: Challenge, idea_id: int, actor: User,
                           now: datetime, notifier: Notifier | None = None) -> int:  # fmt: skip
    """Put a published idea of the challenge on its shortlist, within the size; tell its authors after the
    commit. Returns the entry's id. ``LookupError`` when the idea is not of this challenge."""
    challenge_id, actor_id = challenge.id, actor.id
    access = await _require_admin(session, challenge, actor, now)
    _check_phase(challenge, access)
    mails: list[Mail] = []
    async with challenge_locked(session, challenge_id) as locked:
        _check_phase(locked, access)  # again, on the row as it is now
        size, organisation_id, challenge_title = locked.shortlist_size, locked.organisation_id, locked.title
        idea = await session.scalar(select(Idea).where(Idea.id == idea_id, Idea.challenge_id == challenge_id))
        if idea is None:
            raise LookupError(idea_id)
        title, author_id = idea.title, idea.author_id
        if idea.status is not IdeaStatus.PUBLISHED:
            reason = {
                IdeaStatus.MERGED: _("“%(title)s” was merged into another idea: shortlist the idea that stays.",
                                     title=title),
                IdeaStatus.WITHDRAWN: _("“%(title)s” was withdrawn by its author: it cannot be shortlisted.",
                                        title=title),
                IdeaStatus.HIDDEN: _("“%(title)s” is hidden by the moderators: it cannot be shortlisted.",
                                     title=title),
            }[idea.status]  # fmt: skip
            raise Conflict(reason)
        if await session.scalar(select(ShortlistEntry.id).where(ShortlistEntry.idea_id == idea_id)):
            raise Conflict(_("“%(title)s” is already on the shortlist.", title=title))
        taken = await session.scalar(
            select(func.count()).select_from(ShortlistEntry).where(ShortlistEntry.challenge_id == challenge_id)
        ) or 0  # fmt: skip
        if taken >= size:
            raise Conflict(_("The shortlist is full: it holds at most %(size)s ideas. Remove one to add another.",
                             size=size))  # fmt: skip
        entry = ShortlistEntry(
            challenge_id=challenge_id, idea_id=idea_id, added_by_id=actor_id, created_at=now
        )
        session.add(entry)
        record(session, actor_id=actor_id, organisation_id=organisation_id, subject_type="idea",
               subject_id=idea_id, action="shortlist_add", detail={"challenge_id": challenge_id})  # fmt: skip
        if notifier is not None:
            authors = await idea_author_users(session, idea_id, author_id)
            mails = notifier.notify(session, authors, "shortlisted", _added_news(title, challenge_title),
                                    f"/ideas/{idea_id}")  # fmt: skip
        try:
            await session.flush()
            entry_id = entry.id
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise Conflict(_("“%(title)s” is already on the shortlist.", title=title)) from None
    if notifier is not None:
        notifier.send(mails)
    return entry_id


async def remove_from_shortlist(session: AsyncSession, challenge: Challenge, idea_id: int, actor: User,
                                now: datetime, notifier: Notifier | None = None) -> None:  # fmt: skip
    """Take an idea off the shortlist before it locks; its authors are told (they were told it was on).
    ``LookupError`` when the idea is not on this challenge's shortlist."""
    challenge_id, actor_id = challenge.id, actor.id
    access = await _require_admin(session, challenge, actor, now)
    _check_phase(challenge, access)
    mails: list[Mail] = []
    async with challenge_locked(session, challenge_id) as locked:
        _check_phase(locked, access)
        organisation_id, challenge_title = locked.organisation_id, locked.title
        found = (await session.execute(
            select(ShortlistEntry, Idea.title, Idea.author_id).join(Idea, Idea.id == ShortlistEntry.idea_id)
            .where(ShortlistEntry.idea_id == idea_id, ShortlistEntry.challenge_id == challenge_id)
        )).first()  # fmt: skip
        if found is None:
            raise LookupError(idea_id)
        entry, title, author_id = found
        await session.delete(entry)
        record(session, actor_id=actor_id, organisation_id=organisation_id, subject_type="idea",
               subject_id=idea_id, action="shortlist_remove", detail={"challenge_id": challenge_id})  # fmt: skip
        if notifier is not None:
            authors = await idea_author_users(session, idea_id, author_id)
            mails = notifier.notify(session, authors, "shortlist_removed", _removed_news(title, challenge_title),
                                    f"/ideas/{idea_id}")  # fmt: skip
        await session.commit()
    if notifier is not None:
        notifier.send(mails)


# --- reading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShortlistRow:
    idea_id: int
    title: str
    votes: int
    expert_comments: int
    status: IdeaStatus
    shortlisted: bool


async def shortlisted_ids(session: AsyncSession, challenge_id: int) -> set[int]:
    return set(await session.scalars(
        select(ShortlistEntry.idea_id).where(ShortlistEntry.challenge_id == challenge_id)
    ))  # fmt: skip


async def is_shortlisted(session: AsyncSession, idea_id: int) -> bool:
    return (
        await session.scalar(select(ShortlistEntry.id).where(ShortlistEntry.idea_id == idea_id)) is not None
    )


async def _expert_comments(session: AsyncSession, idea_ids: list[int]) -> dict[int, int]:
    """Per idea: its visible comments written by its confirmed experts (those with the "Expert" badge)."""
    if not idea_ids:
        return {}
    rows = await session.execute(
        select(Comment.idea_id, func.count(Comment.id))
        .join(ExpertAssignment, (ExpertAssignment.idea_id == Comment.idea_id)
              & (ExpertAssignment.expert_user_id == Comment.author_id))
        .where(Comment.idea_id.in_(idea_ids), ExpertAssignment.status == AssignmentStatus.CONFIRMED,
               Comment.deleted_at.is_(None), Comment.hidden_reason.is_(None))
        .group_by(Comment.idea_id)
    )  # fmt: skip
    return {idea_id: count for idea_id, count in rows}


async def shortlist_of(session: AsyncSession, challenge_id: int) -> list[ShortlistRow]:
    """The challenge's shortlist, most voted first (an idea withdrawn or merged since stays, marked)."""
    rows = (await session.execute(
        select(Idea.id, Idea.title, Idea.vote_count, Idea.status)
        .join(ShortlistEntry, ShortlistEntry.idea_id == Idea.id)
        .where(ShortlistEntry.challenge_id == challenge_id)
        .order_by(Idea.vote_count.desc(), Idea.created_at, Idea.id)
    )).all()  # fmt: skip
    comments = await _expert_comments(session, [r.id for r in rows])
    return [ShortlistRow(r.id, r.title, r.vote_count, comments.get(r.id, 0), r.status, True) for r in rows]


async def candidates(session: AsyncSession, challenge_id: int, page: int = 1,
                     page_size: int = PAGE_SIZE) -> tuple[list[ShortlistRow], int]:  # fmt: skip
    """One page of the challenge's published ideas, most voted first (then the oldest), and their count."""
    where = (Idea.challenge_id == challenge_id) & (Idea.status == IdeaStatus.PUBLISHED)
    total = await session.scalar(select(func.count()).select_from(Idea).where(where)) or 0
    rows = (await session.execute(
        select(Idea.id, Idea.title, Idea.vote_count, Idea.status).where(where)
        .order_by(Idea.vote_count.desc(), Idea.created_at, Idea.id)
        .offset((page - 1) * page_size).limit(page_size)
    )).all()  # fmt: skip
    ids = [r.id for r in rows]
    comments = await _expert_comments(session, ids)
    chosen = set(await session.scalars(select(ShortlistEntry.idea_id).where(ShortlistEntry.idea_id.in_(ids))))
    return [ShortlistRow(r.id, r.title, r.vote_count, comments.get(r.id, 0), r.status, r.id in chosen)
            for r in rows], total  # fmt: skip
