"""Merging duplicate ideas fairly, with the absorbed idea's author's consent, and undoing it exactly.

A moderator proposes that one idea be absorbed into another. The absorbed idea's author consents
(or declines); a moderator may instead merge at once with a written reason (kept in the audit log).

Performing a merge is one transaction, under the same per-(challenge, user) locks as ``ideas.votes``
for every voter of either idea: each voter then counts exactly once on the surviving idea. A vote
only on the absorbed idea moves (same row, so same date and client hash); a voter of both loses
the absorbed vote, which gives them one vote back to use elsewhere. The absorbed idea's authors
become co-authors of the surviving one. Everything moved is written in ``Merge.record`` (JSON), so
that ``unmerge`` puts it all back, except what voters changed since and the budget no longer allows.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from challenges.models import Challenge
from challenges.services import access_for, get_challenge
from ideaforge.accounts.models import User
from ideaforge.audit import record
from ideaforge.db import is_postgres
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _
from ideaforge.notifications.services import Mail, Notifier
from ideas.models import (
    CoAuthor,
    CoAuthorStatus,
    DuplicatePair,
    Idea,
    IdeaStatus,
    Merge,
    MergeStatus,
    PairStatus,
    Vote,
)
from ideas.moderation import can_moderate
from ideas.votes import lock_voters, serialised

OVERRIDE_MIN, OVERRIDE_MAX = 10, 2000
LOCK_ATTEMPTS = 5
"""A merge locks the voters it found, then checks nobody new voted meanwhile; it retries this often."""
QUEUE_PAGE_SIZE = 20

T = TypeVar("T")


# --- permissions and reads -------------------------------------------------------------------------


async def _require_moderator(session: AsyncSession, challenge: Challenge, user: User, now: datetime) -> None:
    if not can_moderate(await access_for(session, challenge, user, now)):
        raise Forbidden(_("Only the organisation's moderators can do this."))


def _override(reason: str) -> str:
    reason = reason.strip()
    if reason and len(reason) < OVERRIDE_MIN:
        raise ValidationFailed({"override_reason": _(
            "Write at least %(min)s characters: the author reads why they were not asked.", min=OVERRIDE_MIN)})  # fmt: skip
    if len(reason) > OVERRIDE_MAX:
        raise ValidationFailed({"override_reason": _(
            "Use at most %(max)s characters (you used %(used)s).", max=OVERRIDE_MAX, used=len(reason))})  # fmt: skip
    return reason


def pair_key(a_id: int, b_id: int) -> tuple[int, int]:
    """A pair as ``DuplicatePair`` stores it: (newer, older), the larger id first."""
    return max(a_id, b_id), min(a_id, b_id)


async def is_dismissed(session: AsyncSession, a_id: int, b_id: int) -> bool:
    """Whether a moderator said these two ideas are not duplicates (they are never suggested again)."""
    newer, older = pair_key(a_id, b_id)
    found = await session.scalar(select(DuplicatePair.id).where(
        DuplicatePair.idea_id == newer, DuplicatePair.existing_id == older,
        DuplicatePair.status == PairStatus.DISMISSED))  # fmt: skip
    return found is not None


async def pair_exists(session: AsyncSession, a_id: int, b_id: int) -> bool:
    """Whether the pair was ever flagged, in any status: flagging skips it then."""
    newer, older = pair_key(a_id, b_id)
    found = await session.scalar(select(DuplicatePair.id).where(DuplicatePair.idea_id == newer,
                                                                DuplicatePair.existing_id == older))  # fmt: skip
    return found is not None


@dataclass(frozen=True)
class PairView:
    pair: DuplicatePair
    newer: Idea
    older: Idea
    pending: Merge | None
    """A merge waiting for the author's consent, if one was proposed."""


async def open_pairs(session: AsyncSession, challenge_id: int, *, page: int,
                     page_size: int = QUEUE_PAGE_SIZE) -> tuple[list[PairView], int]:  # fmt: skip
    """Open pairs of a challenge, newest first, with both ideas (and their authors)."""
    where = (DuplicatePair.challenge_id == challenge_id, DuplicatePair.status == PairStatus.OPEN)
    total = await session.scalar(select(func.count()).select_from(DuplicatePair).where(*where)) or 0
    pairs = list(await session.scalars(
        select(DuplicatePair).where(*where).order_by(DuplicatePair.created_at.desc(), DuplicatePair.id.desc())
        .offset((page - 1) * page_size).limit(page_size)
    ))  # fmt: skip
    ids = {i for p in pairs for i in (p.idea_id, p.existing_id)}
    ideas = {i.id: i for i in await session.scalars(
        select(Idea).where(Idea.id.in_(ids)).options(selectinload(Idea.author)))} if ids else {}  # fmt: skip
    pending: dict[tuple[int, int], Merge] = {}
    if ids:
        for merge in await session.scalars(select(Merge).where(
                Merge.status == MergeStatus.PENDING, Merge.absorbed_id.in_(ids), Merge.surviving_id.in_(ids))):  # fmt: skip
            pending[pair_key(merge.absorbed_id, merge.surviving_id)] = merge
    views = [PairView(p, ideas[p.idea_id], ideas[p.existing_id], pending.get((p.idea_id, p.existing_id)))
             for p in pairs]  # fmt: skip
    return views, total


async def recent_merges(
    session: AsyncSession, challenge_id: int, limit: int = 20
) -> list[tuple[Merge, Idea, Idea]]:
    """The latest merges of a challenge that are pending or done (to follow up or undo)."""
    merges = list(await session.scalars(
        select(Merge).where(Merge.challenge_id == challenge_id,
                            Merge.status.in_([MergeStatus.PENDING, MergeStatus.DONE]))
        .order_by(Merge.created_at.desc(), Merge.id.desc()).limit(limit)
    ))  # fmt: skip
    ids = {i for m in merges for i in (m.absorbed_id, m.surviving_id)}
    ideas = {i.id: i for i in await session.scalars(select(Idea).where(Idea.id.in_(ids)))} if ids else {}
    return [(m, ideas[m.absorbed_id], ideas[m.surviving_id]) for m in merges]


async def done_merge_of(session: AsyncSession, absorbed_id: int) -> Merge | None:
    """The merge that absorbed this idea, if it is merged."""
    return await session.scalar(select(Merge).where(Merge.absorbed_id == absorbed_id,
                                                    Merge.status == MergeStatus.DONE)
                                .order_by(Merge.id.desc()).limit(1))  # fmt: skip


def default_survivor(a: Idea, b: Idea) -> Idea:
    """The idea with more votes survives; on a tie, the older one."""
    return min((a, b), key=lambda i: (-i.vote_count, i.created_at, i.id))


# --- dismissing a pair ------------------------------------------------------------------------------


async def dismiss_pair(session: AsyncSession, pair: DuplicatePair, moderator: User, now: datetime) -> None:
    """ "Not duplicates": the pair leaves the queue and is never suggested again."""
    challenge = await get_challenge(session, pair.challenge_id)
    assert challenge is not None
    await _require_moderator(session, challenge, moderator, now)
    if pair.status is not PairStatus.OPEN:
        raise Conflict(_("This pair was already decided."))
    pair.status, pair.decided_by_id, pair.decided_at = PairStatus.DISMISSED, moderator.id, now
    # A merge of the two still waiting for consent is off: they are not duplicates.
    await session.execute(update(Merge).where(
        Merge.status == MergeStatus.PENDING,
        or_((Merge.absorbed_id == pair.idea_id) & (Merge.surviving_id == pair.existing_id),
            (Merge.absorbed_id == pair.existing_id) & (Merge.surviving_id == pair.idea_id)),
    ).values(status=MergeStatus.DECLINED, decided_at=now))  # fmt: skip
    record(session, actor_id=moderator.id, organisation_id=challenge.organisation_id,
           subject_type="duplicate_pair", subject_id=pair.id, action="dismiss",
           detail={"idea_id": pair.idea_id, "existing_id": pair.existing_id})  # fmt: skip
    await session.commit()


# --- proposing and consenting -----------------------------------------------------------------------


async def _author_ids(session: AsyncSession, idea_id: int, author_id: int) -> set[int]:
    accepted = await session.scalars(select(CoAuthor.user_id).where(
        CoAuthor.idea_id == idea_id, CoAuthor.status == CoAuthorStatus.ACCEPTED))  # fmt: skip
    return {author_id, *accepted}


async def propose_merge(
    session: AsyncSession, absorbed: Idea, surviving: Idea, by_user: User, now: datetime,
    notifier: Notifier | None, *, override_reason: str = "",
) -> Merge:  # fmt: skip
    """A moderator proposes to absorb ``absorbed`` into ``surviving``. With an override reason (or
    when the moderator is the absorbed idea's only author) it happens at once; otherwise the absorbed
    idea's author is asked to consent. Raises Forbidden, ValidationFailed or Conflict."""
    absorbed_id, surviving_id, actor_id = absorbed.id, surviving.id, by_user.id
    challenge = await get_challenge(session, absorbed.challenge_id)
    assert challenge is not None
    await _require_moderator(session, challenge, by_user, now)
    reason = _override(override_reason)
    if absorbed_id == surviving_id:
        raise ValidationFailed({"surviving": _("Choose two different ideas.")})
    if absorbed.challenge_id != surviving.challenge_id:
        raise ValidationFailed({"surviving": _("Both ideas must belong to the same challenge.")})
    if absorbed.status is not IdeaStatus.PUBLISHED or surviving.status is not IdeaStatus.PUBLISHED:
        raise Conflict(_("Only two published ideas can be merged."))
    authors = await _author_ids(session, absorbed_id, absorbed.author_id)
    immediate = bool(reason) or authors == {actor_id}
    waiting = list(await session.execute(select(Merge.id, Merge.absorbed_id, Merge.surviving_id).where(
        Merge.status == MergeStatus.PENDING,
        or_(Merge.absorbed_id.in_([absorbed_id, surviving_id]), Merge.surviving_id == absorbed_id))))  # fmt: skip
    same = [m for m, a, s in waiting if (a, s) == (absorbed_id, surviving_id)]
    if immediate and same and len(waiting) == 1:  # the author did not answer: the moderator goes ahead
        return await _perform(
            session, same[0], actor_id, now, notifier, consented=not reason, override=reason
        )
    if waiting:
        raise Conflict(_("A merge of this idea is already waiting for its author's consent."))
    merge = Merge(challenge_id=challenge.id, absorbed_id=absorbed_id, surviving_id=surviving_id,
                  requested_by_id=actor_id, status=MergeStatus.PENDING, override_reason=reason, created_at=now)  # fmt: skip
    if immediate:
        return await _perform(session, None, actor_id, now, notifier, consented=not reason, new=merge)
    session.add(merge)
    await session.flush()
    merge_id, organisation_id = merge.id, challenge.organisation_id
    record(session, actor_id=actor_id, organisation_id=organisation_id, subject_type="merge", subject_id=merge_id,
           action="propose", detail={"absorbed_id": absorbed_id, "surviving_id": surviving_id})  # fmt: skip
    mails: list[Mail] = []
    if notifier is not None:
        author = await session.get(User, absorbed.author_id)
        assert author is not None
        mine, theirs = absorbed.title, surviving.title
        mails = notifier.notify(session, [author], "merge_request", lambda: _(
            "A moderator proposes to merge your idea “%(mine)s” into “%(theirs)s”, which says the same. "
            "Your votes and you as a co-author would join it. Do you agree?", mine=mine, theirs=theirs),
            f"/merges/{merge_id}")  # fmt: skip
    await session.commit()
    if notifier is not None:
        notifier.send(mails)
    return merge


async def consent_to_merge(
    session: AsyncSession, merge: Merge, author: User, now: datetime, notifier: Notifier | None, accept: bool
) -> Merge:
    """The absorbed idea's author accepts (the merge happens) or declines (the requester is told)."""
    merge_id, author_id = merge.id, author.id
    absorbed = await session.get(Idea, merge.absorbed_id)
    assert absorbed is not None
    if absorbed.author_id != author_id:
        raise Forbidden(_("Only the author of the idea to be merged can answer."))
    if merge.status is not MergeStatus.PENDING:
        raise Conflict(_("This merge was already decided."))
    if accept:
        return await _perform(session, merge_id, author_id, now, notifier, consented=True)
    merge.status, merge.decided_at = MergeStatus.DECLINED, now
    challenge = await get_challenge(session, merge.challenge_id)
    assert challenge is not None
    record(session, actor_id=author_id, organisation_id=challenge.organisation_id, subject_type="merge",
           subject_id=merge_id, action="decline")  # fmt: skip
    mails: list[Mail] = []
    requester = await session.get(User, merge.requested_by_id) if merge.requested_by_id else None
    if notifier is not None and requester is not None:
        title, name = absorbed.title, author.display_name
        mails = notifier.notify(session, [requester], "merge_declined", lambda: _(
            "%(name)s declined to merge “%(title)s”. Both ideas stay as they are.", name=name, title=title),
            f"/challenges/{challenge.id}/moderation/duplicates")  # fmt: skip
    await session.commit()
    if notifier is not None:
        notifier.send(mails)
    return merge


# --- locking -----------------------------------------------------------------------------------------


async def _voters(session: AsyncSession, idea_ids: Iterable[int]) -> set[int]:
    return set(await session.scalars(select(Vote.user_id).where(Vote.idea_id.in_(list(idea_ids)))))


async def _under_locks(
    session: AsyncSession, challenge_id: int, idea_ids: list[int], extra_users: set[int],
    work: Callable[[], Awaitable[T]],
) -> T:  # fmt: skip
    """Run ``work`` in one transaction that holds the vote locks of every voter of ``idea_ids`` (and
    ``extra_users``) and the two idea rows, then commit. Whoever voted between the first look and the
    locks makes it start again with them included."""
    users = await _voters(session, idea_ids) | extra_users
    await session.rollback()  # the locks come before the transaction's first read (see ideas.votes)
    for _attempt in range(LOCK_ATTEMPTS):
        async with serialised(session, users):
            try:
                await lock_voters(session, challenge_id, users)  # voters, then ideas: as cast_vote does
                if is_postgres(session):
                    await session.execute(
                        select(Idea.id).where(Idea.id.in_(idea_ids)).order_by(Idea.id).with_for_update()
                    )
                else:  # the first write takes SQLite's one writer lock: from here on, reads are current
                    await session.execute(
                        update(Idea).where(Idea.id.in_(idea_ids)).values(vote_count=Idea.vote_count)
                    )
                found = await _voters(session, idea_ids) | extra_users
                if found <= users:
                    result = await work()
                    await session.commit()
                    return result
            finally:
                await session.rollback()  # nothing left after a commit; otherwise releases the locks
        users |= found
    raise Conflict(_("These ideas are receiving many votes right now. Try again in a moment."))


async def _recount(session: AsyncSession, idea_ids: list[int]) -> None:
    rows = select(func.count()).select_from(Vote).where(Vote.idea_id == Idea.id).scalar_subquery()
    await session.execute(update(Idea).where(Idea.id.in_(idea_ids)).values(vote_count=rows))


async def _fresh(session: AsyncSession, model: type[T], key: int) -> T:
    found = await session.get(model, key, populate_existing=True)
    if found is None:
        raise LookupError(key)
    return found


def _vote_record(vote: Vote) -> dict[str, Any]:
    return {"vote_id": vote.id, "user_id": vote.user_id, "created_at": vote.created_at.isoformat(),
            "client_hash": vote.client_hash}  # fmt: skip


# --- performing ---------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    mails: list[Mail]


async def _perform(session: AsyncSession, merge_id: int | None, actor_id: int, now: datetime,
                   notifier: Notifier | None, *, consented: bool, new: Merge | None = None,
                   override: str | None = None) -> Merge:  # fmt: skip
    """Carry out a pending merge (``merge_id``), or a ``new`` one created in the same transaction;
    ``override``: a moderator goes ahead with a pending merge, with this reason."""
    first = await _fresh(session, Merge, merge_id) if merge_id is not None else new
    assert first is not None
    challenge_id, absorbed_id, surviving_id = first.challenge_id, first.absorbed_id, first.surviving_id
    requested_by, override_reason = first.requested_by_id, first.override_reason
    done_id: list[int] = []

    async def work() -> _Outcome:
        if merge_id is None:
            merge = Merge(challenge_id=challenge_id, absorbed_id=absorbed_id, surviving_id=surviving_id,
                          requested_by_id=requested_by, override_reason=override_reason, created_at=now)  # fmt: skip
            session.add(merge)
            await session.flush()
        else:
            merge = await _fresh(session, Merge, merge_id)
        done_id.append(merge.id)
        absorbed, surviving = (
            await _fresh(session, Idea, absorbed_id),
            await _fresh(session, Idea, surviving_id),
        )
        challenge = await _fresh(session, Challenge, challenge_id)
        if merge.status is not MergeStatus.PENDING:
            raise Conflict(_("This merge was already decided."))
        if override is not None:
            merge.override_reason, merge.requested_by_id = override, actor_id
        if absorbed.status is not IdeaStatus.PUBLISHED or surviving.status is not IdeaStatus.PUBLISHED:
            raise Conflict(_("Only two published ideas can be merged."))
        absorbed_title, surviving_title = absorbed.title, surviving.title
        absorbed_authors = await _author_ids(session, absorbed_id, absorbed.author_id)

        # Votes: each voter of either idea counts once on the surviving idea.
        on_surviving = set(await session.scalars(select(Vote.user_id).where(Vote.idea_id == surviving_id)))
        absorbed_votes = list(await session.scalars(select(Vote).where(Vote.idea_id == absorbed_id)
                                                    .order_by(Vote.id)))  # fmt: skip
        moved = [_vote_record(v) for v in absorbed_votes if v.user_id not in on_surviving]
        refunded = [_vote_record(v) for v in absorbed_votes if v.user_id in on_surviving]
        if moved:
            await session.execute(update(Vote).where(Vote.id.in_([m["vote_id"] for m in moved]))
                                  .values(idea_id=surviving_id))  # fmt: skip
        if refunded:
            await session.execute(delete(Vote).where(Vote.id.in_([r["vote_id"] for r in refunded])))
        await _recount(session, [absorbed_id, surviving_id])

        # Authors: the absorbed idea's authors become accepted co-authors of the surviving one.
        rows = {
            c.user_id: c
            for c in await session.scalars(select(CoAuthor).where(CoAuthor.idea_id == surviving_id))
        }
        added: list[int] = []
        upgraded: list[dict[str, Any]] = []
        for user_id in sorted(absorbed_authors - {surviving.author_id}):
            row = rows.get(user_id)
            if row is None:
                session.add(CoAuthor(idea_id=surviving_id, user_id=user_id, status=CoAuthorStatus.ACCEPTED,
                                     created_at=now))  # fmt: skip
                added.append(user_id)
            elif row.status is not CoAuthorStatus.ACCEPTED:
                upgraded.append({"user_id": user_id, "status": row.status.value})
                row.status = CoAuthorStatus.ACCEPTED

        # The pair the queue showed, if any.
        newer, older = pair_key(absorbed_id, surviving_id)
        pair = await session.scalar(select(DuplicatePair).where(DuplicatePair.idea_id == newer,
                                                                DuplicatePair.existing_id == older))  # fmt: skip
        pair_before = None
        if pair is not None and pair.status is not PairStatus.MERGED:
            pair_before = {"id": pair.id, "status": pair.status.value, "decided_by_id": pair.decided_by_id,
                           "decided_at": pair.decided_at.isoformat() if pair.decided_at else None}  # fmt: skip
            pair.status, pair.decided_by_id, pair.decided_at = PairStatus.MERGED, actor_id, now

        merge.record = json.dumps({
            "absorbed": {"status": absorbed.status.value, "status_reason": absorbed.status_reason},
            "moved": moved, "refunded": refunded,
            "coauthors_added": added, "coauthors_upgraded": upgraded, "pair": pair_before,
        })  # fmt: skip
        absorbed.status, absorbed.merged_into_id = IdeaStatus.MERGED, surviving_id
        merge.status, merge.decided_at = MergeStatus.DONE, now
        record(session, actor_id=actor_id, organisation_id=challenge.organisation_id, subject_type="merge",
               subject_id=merge.id, action="merge" if consented else "merge_override",
               reason="" if consented else merge.override_reason,  # the override's why, in the log
               detail={"absorbed_id": absorbed_id, "surviving_id": surviving_id, "moved": len(moved),
                       "refunded": len(refunded), "coauthors_added": added})  # fmt: skip

        mails: list[Mail] = []
        if notifier is not None:
            refunded_ids = {r["user_id"] for r in refunded}
            everyone = (await _author_ids(session, surviving_id, surviving.author_id) | absorbed_authors
                        | on_surviving | {m["user_id"] for m in moved}) - {actor_id}  # fmt: skip
            people = await _users(session, everyone)
            link = f"/ideas/{surviving_id}"
            why = merge.override_reason
            overruled = {u for u in absorbed_authors if not consented}  # they read the moderator's reason
            mails = notifier.notify(session, [u for u in people if u.id in overruled], "merge", lambda: _(
                "A moderator merged your idea “%(absorbed)s” into “%(surviving)s” without waiting for your "
                "consent, because: %(reason)s. Its votes count there, and you are a co-author of it.",
                absorbed=absorbed_title, surviving=surviving_title, reason=why), link)  # fmt: skip
            mails += notifier.notify(session, [u for u in people if u.id in refunded_ids - overruled], "merge",
                                     lambda: _(
                "“%(absorbed)s” was merged into “%(surviving)s”. You had voted for both, so one of your votes "
                "is given back: you can use it for another idea.", absorbed=absorbed_title,
                surviving=surviving_title), link)  # fmt: skip
            mails += notifier.notify(session, [u for u in people if u.id not in refunded_ids | overruled], "merge",
                                     lambda: _(
                "“%(absorbed)s” was merged into “%(surviving)s”: its votes and authors now count there, "
                "each voter once.", absorbed=absorbed_title, surviving=surviving_title), link)  # fmt: skip
        return _Outcome(mails)

    outcome = await _under_locks(session, challenge_id, [absorbed_id, surviving_id], set(), work)
    if notifier is not None:
        notifier.send(outcome.mails)
    return await _fresh(session, Merge, done_id[-1])


async def _users(session: AsyncSession, ids: set[int]) -> list[User]:
    if not ids:
        return []
    return list(await session.scalars(select(User).where(User.id.in_(ids), User.is_active.is_(True))
                                      .order_by(User.id)))  # fmt: skip


# --- undoing ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unrestored:
    user_id: int
    kind: str
    """"moved" (their vote on the absorbed idea) or "refunded" (the vote given back at the merge)."""
    why: str
    """"retracted": they took the vote back since; "budget": restoring it would exceed their budget."""


async def unmerge(
    session: AsyncSession, merge: Merge, by_user: User, now: datetime, notifier: Notifier | None
) -> list[Unrestored]:
    """Undo a merge: both ideas, their votes and co-authors as they were, except what voters changed
    since and the budget no longer allows (returned, and written to the audit log)."""
    merge_id, actor_id = merge.id, by_user.id
    challenge_id, absorbed_id, surviving_id = merge.challenge_id, merge.absorbed_id, merge.surviving_id
    challenge = await get_challenge(session, challenge_id)
    assert challenge is not None
    await _require_moderator(session, challenge, by_user, now)
    if merge.status is not MergeStatus.DONE:
        raise Conflict(_("Only a merge that was carried out can be undone."))
    saved = json.loads(merge.record or "{}")
    recorded = {v["user_id"] for v in saved.get("moved", []) + saved.get("refunded", [])}

    async def work() -> tuple[list[Unrestored], list[Mail]]:
        fresh = await _fresh(session, Merge, merge_id)
        absorbed, surviving = (
            await _fresh(session, Idea, absorbed_id),
            await _fresh(session, Idea, surviving_id),
        )
        current = await _fresh(session, Challenge, challenge_id)
        if fresh.status is not MergeStatus.DONE:
            raise Conflict(_("Only a merge that was carried out can be undone."))
        if surviving.status is IdeaStatus.MERGED:
            raise Conflict(_("The surviving idea was merged into another one since: undo that merge first."))
        budget, organisation_id = current.votes_per_user, current.organisation_id
        absorbed_title, surviving_title = absorbed.title, surviving.title
        unrestored: list[Unrestored] = []

        # Moved votes go back, the very rows, unless the voter took them back since.
        for moved in saved.get("moved", []):
            vote = await session.scalar(select(Vote).where(Vote.idea_id == surviving_id,
                                                           Vote.user_id == moved["user_id"]))  # fmt: skip
            if vote is not None and _vote_record(vote) == moved:  # the very row, untouched
                await session.execute(update(Vote).where(Vote.id == vote.id).values(idea_id=absorbed_id))
            else:
                unrestored.append(Unrestored(moved["user_id"], "moved", "retracted"))
        # Votes given back come back, as long as the voter has a vote left for them.
        for given in saved.get("refunded", []):
            user_id = given["user_id"]
            used = await session.scalar(select(func.count()).select_from(Vote).where(
                Vote.challenge_id == challenge_id, Vote.user_id == user_id)) or 0  # fmt: skip
            if budget is not None and used >= budget:
                unrestored.append(Unrestored(user_id, "refunded", "budget"))
                continue
            await session.execute(insert(Vote).values(
                idea_id=absorbed_id, challenge_id=challenge_id, user_id=user_id,
                created_at=datetime.fromisoformat(given["created_at"]), client_hash=given["client_hash"]))  # fmt: skip
        await _recount(session, [absorbed_id, surviving_id])

        before = saved.get("absorbed", {})
        absorbed.status = IdeaStatus(before.get("status", IdeaStatus.PUBLISHED.value))
        absorbed.status_reason, absorbed.merged_into_id = before.get("status_reason", ""), None
        if added := saved.get("coauthors_added", []):
            await session.execute(delete(CoAuthor).where(CoAuthor.idea_id == surviving_id,
                                                         CoAuthor.user_id.in_(added)))  # fmt: skip
        for row in saved.get("coauthors_upgraded", []):
            await session.execute(update(CoAuthor).where(CoAuthor.idea_id == surviving_id,
                                                         CoAuthor.user_id == row["user_id"])
                                  .values(status=CoAuthorStatus(row["status"])))  # fmt: skip
        if (pair := saved.get("pair")) is not None:
            decided_at = datetime.fromisoformat(pair["decided_at"]) if pair["decided_at"] else None
            await session.execute(update(DuplicatePair).where(DuplicatePair.id == pair["id"]).values(
                status=PairStatus(pair["status"]), decided_by_id=pair["decided_by_id"], decided_at=decided_at))  # fmt: skip
        fresh.status, fresh.undone_at = MergeStatus.UNDONE, now
        record(session, actor_id=actor_id, organisation_id=organisation_id, subject_type="merge",
               subject_id=merge_id, action="unmerge",
               detail={"absorbed_id": absorbed_id, "surviving_id": surviving_id,
                       "not_restored": [asdict(u) for u in unrestored]})  # fmt: skip

        mails: list[Mail] = []
        if notifier is not None:
            voters = await _voters(session, [absorbed_id, surviving_id])
            everyone = (await _author_ids(session, absorbed_id, absorbed.author_id)
                        | await _author_ids(session, surviving_id, surviving.author_id)
                        | voters | recorded) - {actor_id}  # fmt: skip
            mails = notifier.notify(session, await _users(session, everyone), "unmerge", lambda: _(
                "A moderator undid the merge of “%(absorbed)s” into “%(surviving)s”: both ideas stand "
                "apart again, with their votes.", absorbed=absorbed_title, surviving=surviving_title),
                f"/ideas/{absorbed_id}")  # fmt: skip
        return unrestored, mails

    unrestored, mails = await _under_locks(session, challenge_id, [absorbed_id, surviving_id], recorded, work)
    if notifier is not None:
        notifier.send(mails)
    return unrestored
