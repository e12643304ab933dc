"""Casting and retracting votes: one per user per idea, within the challenge's budget, atomically.

Every vote change for one (challenge, user) runs under a lock held until commit: a PostgreSQL
transaction-level advisory lock, or on SQLite (one process, one writer) an in-process lock.
Inside it, the budget is counted from the vote rows and the idea's counter moves in the same
transaction as the row, so the count shown always equals the rows, whatever arrives at once.
The unique key (idea, user) is the last word if anything slipped past.

Votes on a withdrawn or hidden idea stay (the counter must match the rows, and a restored idea
gets its votes back) and still use the voter's budget; voters may retract them to vote elsewhere.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge
from challenges.permissions import Access, Role, can_view, can_vote
from ideaforge.accounts.models import User
from ideaforge.db import is_postgres
from ideaforge.errors import Conflict, Forbidden
from ideaforge.i18n import _, format_datetime
from ideaforge.metrics import VOTES_CAST
from ideas.models import Idea, IdeaStatus, Vote
from ideas.services import idea_access

_sqlite_locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)


@dataclass(frozen=True)
class VoteState:
    idea_id: int
    votes: int
    voted: bool
    remaining: int | None
    """Votes the user has left in the challenge; None when unlimited."""
    challenge_id: int


@asynccontextmanager
async def serialised(session: AsyncSession, user_ids: Iterable[int]) -> AsyncIterator[None]:
    """One vote change at a time per user. On SQLite (one process) the locks are taken before the
    transaction's first read, whose snapshot would otherwise be stale; PostgreSQL locks in ``lock_voters``.
    Several users (a merge moves many votes) are locked in ascending order, so holders never deadlock."""
    if is_postgres(session):
        yield
        return
    async with AsyncExitStack() as held:
        for user_id in sorted(set(user_ids)):
            await held.enter_async_context(_sqlite_locks[user_id])
        try:
            yield
        finally:
            await session.rollback()  # end any transaction before the next holder reads


def _serialised(session: AsyncSession, user_id: int) -> AbstractAsyncContextManager[None]:
    return serialised(session, (user_id,))


async def lock_voters(session: AsyncSession, challenge_id: int, user_ids: Iterable[int]) -> None:
    """PostgreSQL: serialise these users' vote changes in one challenge until this transaction ends
    (ascending order, the same for every caller)."""
    if is_postgres(session):
        for user_id in sorted(set(user_ids)):
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": challenge_id, "b": user_id}
            )


async def _lock(session: AsyncSession, challenge_id: int, user_id: int) -> None:
    """PostgreSQL: serialise one user's vote changes in one challenge until this transaction ends."""
    await lock_voters(session, challenge_id, (user_id,))


async def _used(session: AsyncSession, challenge_id: int, user_id: int) -> int:
    return (
        await session.scalar(
            select(func.count())
            .select_from(Vote)
            .where(Vote.challenge_id == challenge_id, Vote.user_id == user_id)
        )
        or 0
    )


def _remaining(budget: int | None, used: int) -> int | None:
    return None if budget is None else budget - used


async def _visible_to_voter(
    session: AsyncSession, challenge: Challenge, user: User, idea: Idea, now: datetime
) -> Access:
    """The voter's access; raises LookupError when they cannot see the idea (a hidden idea stays visible to
    whoever voted for it, so that they can take the vote back)."""
    access = await idea_access(session, idea, challenge, user, now)
    if not can_view(access) or (
        idea.status is IdeaStatus.HIDDEN and not access.roles & {Role.AUTHOR, Role.MODERATOR, Role.ADMIN}
        and not await _has_vote(session, idea.id, user.id)
    ):  # fmt: skip
        raise LookupError(idea.id)
    return access


def _require_voting(challenge: Challenge, access: Access) -> Access:
    """``access`` when voting is open for it; Conflict (with when it runs) otherwise."""
    if not can_vote(access):
        raise Conflict(_(
            "Voting is not open: it runs from %(start)s to %(end)s.",
            start=format_datetime(challenge.voting_starts_at, "medium", challenge.timezone),
            end=format_datetime(challenge.voting_ends_at, "medium", challenge.timezone),
        ))  # fmt: skip
    return access


async def _voting_open(
    session: AsyncSession, challenge: Challenge, user: User, idea: Idea, now: datetime
) -> Access:
    """The voter's access; raises LookupError when they cannot see the idea, Conflict outside voting."""
    return _require_voting(challenge, await _visible_to_voter(session, challenge, user, idea, now))


async def _has_vote(session: AsyncSession, idea_id: int, user_id: int) -> bool:
    return (
        await session.scalar(select(Vote.id).where(Vote.idea_id == idea_id, Vote.user_id == user_id))
        is not None
    )


async def _idea(session: AsyncSession, idea_id: int) -> tuple[Idea, Challenge]:
    row = (await session.execute(
        select(Idea, Challenge).join(Challenge, Challenge.id == Idea.challenge_id).where(Idea.id == idea_id)
    )).first()  # fmt: skip
    if row is None:
        raise LookupError(idea_id)
    return row[0], row[1]


async def cast_vote(
    session: AsyncSession, idea_id: int, user: User, now: datetime, *, client_hash: str = ""
) -> VoteState:
    """Vote for an idea; voting again changes nothing. Raises LookupError for an unknown idea."""
    user_id = user.id
    async with _serialised(session, user_id):
        idea, challenge = await _idea(session, idea_id)
        # Who may not see a hidden idea learns nothing of it, not even that it is closed to votes.
        access = await _visible_to_voter(session, challenge, user, idea, now)
        if idea.status is not IdeaStatus.PUBLISHED:
            raise Conflict(_("This idea is no longer open for votes."))
        _require_voting(challenge, access)
        if not challenge.authors_may_vote_own and Role.AUTHOR in access.roles:
            raise Forbidden(_("In this challenge, authors may not vote for their own ideas."))
        # Plain values from here on: a rollback expires the loaded rows.
        challenge_id, budget = challenge.id, challenge.votes_per_user
        await _lock(session, challenge_id, user_id)
        already = await _has_vote(session, idea_id, user_id)
        used = await _used(session, challenge_id, user_id)
        if not already:
            if budget is not None and used >= budget:
                await session.rollback()
                raise Conflict(
                    _("You have used all %(n)s of your votes in this challenge. Remove one to vote for this idea.",
                      n=budget)
                )  # fmt: skip
            session.add(
                Vote(
                    idea_id=idea_id,
                    challenge_id=challenge_id,
                    user_id=user_id,
                    client_hash=client_hash,
                    created_at=now,
                )
            )
            # Only while still published: a merge or a hide that committed meanwhile wins (on
            # PostgreSQL this UPDATE waits for it and then finds no published row).
            counted = await session.scalar(
                update(Idea)
                .where(Idea.id == idea_id, Idea.status == IdeaStatus.PUBLISHED)
                .values(vote_count=Idea.vote_count + 1)
                .returning(Idea.vote_count)
            )
            if counted is None:
                await session.rollback()
                raise Conflict(_("This idea is no longer open for votes."))
            used += 1
            try:
                await session.commit()
                VOTES_CAST.inc()
            except IntegrityError:
                # Only reachable if two writers bypassed the lock: the unique key keeps one vote.
                await session.rollback()
                used -= 1
                counted = None
        else:
            await session.rollback()  # nothing to write; ends the transaction and its lock
            counted = None
        if counted is None:
            counted = await session.scalar(select(Idea.vote_count).where(Idea.id == idea_id)) or 0
        return VoteState(idea_id, counted, True, _remaining(budget, used), challenge_id)


async def retract_vote(session: AsyncSession, idea_id: int, user: User, now: datetime) -> VoteState:
    """Take a vote back (also from a withdrawn or hidden idea); taking it back twice is harmless."""
    user_id = user.id
    async with _serialised(session, user_id):
        idea, challenge = await _idea(session, idea_id)
        await _voting_open(session, challenge, user, idea, now)
        challenge_id, budget = challenge.id, challenge.votes_per_user
        await _lock(session, challenge_id, user_id)
        removed = await session.execute(delete(Vote).where(Vote.idea_id == idea_id, Vote.user_id == user_id))
        if removed.rowcount:  # type: ignore[attr-defined]  # DML results carry rowcount
            await session.execute(
                update(Idea).where(Idea.id == idea_id).values(vote_count=Idea.vote_count - 1)
            )
        used = await _used(session, challenge_id, user_id)
        await session.commit()
        votes = await session.scalar(select(Idea.vote_count).where(Idea.id == idea_id)) or 0
        return VoteState(idea_id, votes, False, _remaining(budget, used), challenge_id)


async def votes_of(session: AsyncSession, challenge_id: int, user: User | None) -> set[int]:
    """The ids of the ideas ``user`` voted for in a challenge."""
    if user is None:
        return set()
    result = await session.scalars(select(Vote.idea_id).where(Vote.challenge_id == challenge_id,
                                                              Vote.user_id == user.id))  # fmt: skip
    return set(result)


async def remaining_votes(session: AsyncSession, challenge: Challenge, user: User | None) -> int | None:
    if user is None or challenge.votes_per_user is None:
        return None
    return _remaining(challenge.votes_per_user, await _used(session, challenge.id, user.id))
