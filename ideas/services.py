"""Every change to an idea or a comment goes through one function here; and the reads pages share."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Select, and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from challenges.models import Challenge
from challenges.permissions import Access, Role, can_comment, can_edit_own_idea, can_submit_idea, can_view
from challenges.services import access_for, get_challenge
from ideaforge.accounts.models import User
from ideaforge.db import possible_id
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _, format_datetime
from ideaforge.metrics import IDEAS_SUBMITTED
from ideaforge.notifications.models import Follow
from ideaforge.notifications.services import Notifier, followers
from ideaforge.validation import text_problem
from ideas.models import (
    BODY_MAX,
    COMMENT_MAX,
    TITLE_MAX,
    CoAuthor,
    CoAuthorStatus,
    Comment,
    Idea,
    IdeaStatus,
    IdeaTag,
    Vote,
)
from ml.language import guess_language

if TYPE_CHECKING:
    from ideas.similarity import Similarity

PAGE_SIZE = 20
Sort = Literal["top", "new", "trending", "random"]
SORTS: tuple[Sort, ...] = ("top", "new", "trending", "random")
TRENDING_WINDOW = timedelta(days=7)


def detect_language(text: str, accepted: list[str]) -> str:
    """English or French by their commonest words; otherwise the challenge's first language."""
    guessed = guess_language(text)
    if guessed and guessed in accepted:
        return guessed
    return accepted[0] if accepted else "en"


@dataclass(frozen=True)
class IdeaInput:
    title: str
    body: str
    language: str = ""
    tags: tuple[str, ...] = ()

    def validated(self, challenge: Challenge) -> IdeaInput:
        title, body = self.title.strip(), self.body.strip()
        errors: dict[str, str] = {}
        if problem := text_problem(title, required=True, max_length=TITLE_MAX):
            errors["title"] = problem
        if problem := text_problem(body, required=True, max_length=BODY_MAX):
            errors["body"] = problem
        accepted = challenge.language_list
        language = self.language.strip().lower() or detect_language(f"{title} {body}", accepted)
        if language not in accepted:
            errors["language"] = _(
                "This challenge accepts ideas in: %(languages)s.", languages=", ".join(accepted)
            )
        offered = {t.tag for t in challenge.tags}
        tags = tuple(sorted({t.strip().lower() for t in self.tags if t.strip()}))
        if any(t not in offered for t in tags):
            errors["tags"] = _("Choose tags from the challenge's list.")
        if errors:
            raise ValidationFailed(errors)
        return IdeaInput(title, body, language, tags)


def _phase_ended_message(challenge: Challenge) -> str:
    return _("Ideas could be submitted until %(date)s. Your text is still here: copy it if you wish.",
             date=format_datetime(challenge.submission_ends_at, "medium", challenge.timezone))  # fmt: skip


async def submit_idea(
    session: AsyncSession,
    challenge: Challenge,
    author: User,
    data: IdeaInput,
    now: datetime,
    *,
    similarity: Similarity | None = None,
    despite: int | None = None,
) -> Idea:
    """Publish an idea; after the commit ``similarity`` embeds it and flags duplicates. ``despite`` records
    the idea the author was shown as a duplicate and chose to submit anyway."""
    access = await access_for(session, challenge, author, now)
    if not can_submit_idea(access):
        if access.allows_submission_phase():
            raise Forbidden(_("This challenge accepts ideas only from the people its rules name."))
        raise Conflict(_phase_ended_message(challenge))
    clean = data.validated(challenge)
    if despite is not None:
        same_challenge = await session.scalar(
            select(Idea.id).where(Idea.id == despite, Idea.challenge_id == challenge.id)
        )
        despite = same_challenge  # an id from elsewhere is ignored, not trusted
    idea = Idea(challenge_id=challenge.id, author_id=author.id, title=clean.title, body=clean.body,
                language=clean.language, created_at=now, updated_at=now, submitted_despite_id=despite)  # fmt: skip
    idea.tags = [IdeaTag(tag=t) for t in clean.tags]
    session.add(idea)
    await session.flush()
    session.add(Follow(user_id=author.id, target_type="idea", target_id=idea.id))  # authors hear of comments
    await session.commit()
    IDEAS_SUBMITTED.inc()
    if similarity is not None:
        similarity.schedule_idea(idea.id)
    return idea


async def author_ids(session: AsyncSession, idea: Idea) -> set[int]:
    """The author and the co-authors who accepted."""
    accepted = await session.scalars(select(CoAuthor.user_id).where(
        CoAuthor.idea_id == idea.id, CoAuthor.status == CoAuthorStatus.ACCEPTED))  # fmt: skip
    return {idea.author_id, *accepted}


async def idea_access(session: AsyncSession, idea: Idea, challenge: Challenge, user: User | None,
                      now: datetime) -> Access:  # fmt: skip
    is_author = user is not None and user.id in await author_ids(session, idea)
    return await access_for(
        session, challenge, user, now, extra_roles=frozenset({Role.AUTHOR} if is_author else ())
    )


async def edit_idea(session: AsyncSession, idea: Idea, editor: User, data: IdeaInput, now: datetime, *,
                    similarity: Similarity | None = None) -> Idea:  # fmt: skip
    challenge = await get_challenge(session, idea.challenge_id)
    assert challenge is not None
    if editor.id not in await author_ids(session, idea):
        raise Forbidden(_("Only the idea's authors can edit it."))
    if not can_edit_own_idea(await idea_access(session, idea, challenge, editor, now), idea.created_at):
        raise Conflict(
            _("This idea can no longer be edited: the edit window or the submission phase is over.")
        )
    clean = data.validated(challenge)
    idea.title, idea.body, idea.language, idea.updated_at = clean.title, clean.body, clean.language, now
    await session.execute(delete(IdeaTag).where(IdeaTag.idea_id == idea.id))
    session.add_all(IdeaTag(idea_id=idea.id, tag=t) for t in clean.tags)
    await session.commit()
    if similarity is not None:
        similarity.schedule_idea(idea.id)
    return idea


async def withdraw_idea(session: AsyncSession, idea: Idea, author: User, now: datetime) -> Idea:
    if idea.author_id != author.id:
        raise Forbidden(_("Only the idea's author can withdraw it."))
    if idea.status is not IdeaStatus.PUBLISHED:
        raise Conflict(_("This idea is not published, so it cannot be withdrawn."))
    idea.status, idea.updated_at = IdeaStatus.WITHDRAWN, now
    await session.commit()
    return idea


async def get_idea(session: AsyncSession, idea_id: int) -> Idea | None:
    result = await session.scalars(
        select(Idea).where(Idea.id == idea_id).options(selectinload(Idea.author), selectinload(Idea.tags))
    )
    return result.first()


async def visible_idea(
    session: AsyncSession, idea_id: int, user: User | None, now: datetime
) -> tuple[Idea, Challenge, Access] | None:
    """An idea, its challenge and the viewer's access; hidden ideas only for their author and the organisation."""
    idea = await get_idea(session, idea_id)
    if idea is None:
        return None
    challenge = await get_challenge(session, idea.challenge_id)
    assert challenge is not None
    access = await idea_access(session, idea, challenge, user, now)
    if not can_view(access):
        return None
    if idea.status is IdeaStatus.HIDDEN and not access.roles & {Role.AUTHOR, Role.MODERATOR, Role.ADMIN}:
        return None
    return idea, challenge, access


@dataclass(frozen=True)
class IdeaQuery:
    sort: Sort = "top"
    tag: str = ""
    language: str = ""
    seed: int = 0
    """Per-visitor seed for the random order, so a visitor's pages do not reshuffle."""


def _ordered(query: Select[Any], q: IdeaQuery, now: datetime) -> Select[Any]:
    if q.sort == "new":
        return query.order_by(Idea.created_at.desc(), Idea.id.desc())
    if q.sort == "trending":
        recent = (
            select(Vote.idea_id, func.count().label("recent"))
            .where(Vote.created_at >= now - TRENDING_WINDOW)
            .group_by(Vote.idea_id)
            .subquery()
        )
        return query.outerjoin(recent, recent.c.idea_id == Idea.id).order_by(
            func.coalesce(recent.c.recent, 0).desc(), Idea.vote_count.desc(), Idea.id.desc()
        )
    return query.order_by(Idea.vote_count.desc(), Idea.id.desc())


async def list_ideas(
    session: AsyncSession, challenge: Challenge, q: IdeaQuery, now: datetime, *, page: int,
    page_size: int = PAGE_SIZE, ranked: list[int] | None = None,
) -> tuple[list[Idea], int]:  # fmt: skip
    """``ranked``: ids already ordered (a search by meaning); the filters apply and their order wins."""
    filters = [Idea.challenge_id == challenge.id, Idea.status == IdeaStatus.PUBLISHED]
    if ranked is not None:
        filters.append(Idea.id.in_(ranked))
    if q.language:
        filters.append(Idea.language == q.language)
    if q.tag:
        filters.append(Idea.id.in_(select(IdeaTag.idea_id).where(IdeaTag.tag == q.tag)))
    total = await session.scalar(select(func.count()).select_from(Idea).where(and_(*filters))) or 0
    if ranked is not None or q.sort == "random":
        # A true shuffle per visitor seed: ids are cheap to fetch even for 10,000 ideas, and SQL
        # has no portable hash to order by (an affine "hash" of ids only makes strides).
        ids = list(await session.scalars(select(Idea.id).where(*filters).order_by(Idea.id)))
        if ranked is not None:
            position = {idea_id: n for n, idea_id in enumerate(ranked)}
            ids.sort(key=position.__getitem__)
        else:
            random.Random(q.seed).shuffle(ids)  # noqa: S311  # an order to show, not a secret
        wanted = ids[(page - 1) * page_size : page * page_size]
        found = {i.id: i for i in await session.scalars(
            select(Idea).where(Idea.id.in_(wanted)).options(selectinload(Idea.author), selectinload(Idea.tags)))}  # fmt: skip
        return [found[i] for i in wanted if i in found], total
    query = _ordered(select(Idea).where(*filters), q, now)
    result = await session.scalars(
        query.options(selectinload(Idea.author), selectinload(Idea.tags))
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(result), total


# --- co-authors --------------------------------------------------------------------------------


async def invite_coauthor(session: AsyncSession, idea: Idea, inviter: User, email: str,
                          notifier: Notifier | None = None) -> CoAuthor:  # fmt: skip
    """The author invites someone with an account; they become co-author once they accept."""
    if idea.author_id != inviter.id:
        raise Forbidden(_("Only the idea's author can invite co-authors."))
    invitee = await session.scalar(
        select(User).where(User.email == email.strip().lower(), User.is_active.is_(True))
    )
    if invitee is None:
        raise ValidationFailed({"email": _("No account uses this address. Ask them to register first.")})
    if invitee.id == idea.author_id:
        raise ValidationFailed({"email": _("You are already the author.")})
    existing = await session.scalar(select(CoAuthor).where(CoAuthor.idea_id == idea.id,
                                                           CoAuthor.user_id == invitee.id))  # fmt: skip
    if existing is not None:
        return existing
    invitation = CoAuthor(idea_id=idea.id, user_id=invitee.id, status=CoAuthorStatus.INVITED)
    session.add(invitation)
    mails = []
    if notifier is not None:
        name, title = inviter.display_name, idea.title
        mails = notifier.notify(session, [invitee], "coauthor", lambda: _(
            "%(name)s invites you to co-author “%(title)s”.", name=name, title=title), f"/ideas/{idea.id}")  # fmt: skip
    await session.commit()
    if notifier is not None:
        notifier.send(mails)
    return invitation


async def accept_coauthorship(session: AsyncSession, idea: Idea, user: User) -> None:
    invitation = await session.scalar(select(CoAuthor).where(CoAuthor.idea_id == idea.id,
                                                             CoAuthor.user_id == user.id))  # fmt: skip
    if (
        invitation is None or invitation.status is CoAuthorStatus.REQUESTED
    ):  # a request is the author's to accept
        raise Forbidden(_("You were not invited to co-author this idea."))
    invitation.status = CoAuthorStatus.ACCEPTED
    await session.commit()


async def coauthors_of(session: AsyncSession, idea_id: int) -> list[CoAuthor]:
    result = await session.scalars(select(CoAuthor).where(CoAuthor.idea_id == idea_id)
                                   .options(selectinload(CoAuthor.user)).order_by(CoAuthor.created_at))  # fmt: skip
    return list(result)


# --- comments ----------------------------------------------------------------------------------


def _comment_body(body: str) -> str:
    body = body.strip()
    if problem := text_problem(body, required=True, max_length=COMMENT_MAX):
        raise ValidationFailed({"body": problem})
    return body


async def add_comment(
    session: AsyncSession, idea: Idea, challenge: Challenge, author: User, body: str, now: datetime,
    parent_id: int | None = None, notifier: Notifier | None = None,
) -> Comment:  # fmt: skip
    if not can_comment(await idea_access(session, idea, challenge, author, now)):
        raise Conflict(_("Comments are closed in this phase of the challenge."))
    text = _comment_body(body)
    if parent_id is not None:
        parent = await session.get(Comment, parent_id) if possible_id(parent_id) else None
        if parent is None or parent.idea_id != idea.id:
            raise ValidationFailed({"parent": _("You can only reply to a comment on this idea.")})
        parent_id = parent.parent_id or parent.id  # replies stay one level deep
    comment = Comment(idea_id=idea.id, author_id=author.id, parent_id=parent_id, body=text, created_at=now)
    session.add(comment)
    mails = []
    if notifier is not None:
        idea_author = await session.get(User, idea.author_id)
        told = [
            u for u in [idea_author, *await followers(session, "idea", idea.id)] if u and u.id != author.id
        ]
        title, name = idea.title, author.display_name
        mails = notifier.notify(session, told, "comment", lambda: _("%(name)s commented on “%(title)s”.",
                                                                     name=name, title=title), f"/ideas/{idea.id}")  # fmt: skip
    await session.commit()
    if notifier is not None:
        notifier.send(mails)
    return comment


async def edit_comment(
    session: AsyncSession, comment: Comment, editor: User, body: str, now: datetime
) -> Comment:
    if comment.author_id != editor.id or comment.deleted_at is not None:
        raise Forbidden(_("You can only edit your own comments."))
    comment.body, comment.edited_at = _comment_body(body), now
    await session.commit()
    return comment


async def delete_comment(session: AsyncSession, comment: Comment, editor: User, now: datetime) -> Comment:
    """The text goes; the comment stays as a placeholder so the replies keep their thread."""
    if comment.author_id != editor.id:
        raise Forbidden(_("You can only delete your own comments."))
    comment.body, comment.deleted_at = "", now
    await session.commit()
    return comment


async def comments_of(session: AsyncSession, idea_id: int) -> list[tuple[Comment, list[Comment]]]:
    """Top-level comments, oldest first, each with its replies."""
    result = await session.scalars(
        select(Comment).where(Comment.idea_id == idea_id).options(selectinload(Comment.author))
        .order_by(Comment.created_at, Comment.id)
    )  # fmt: skip
    comments = list(result)
    replies: dict[int, list[Comment]] = {}
    for comment in comments:
        if comment.parent_id is not None:
            replies.setdefault(comment.parent_id, []).append(comment)
    return [(c, replies.get(c.id, [])) for c in comments if c.parent_id is None]


def form_input(values: Mapping[str, Any]) -> IdeaInput:
    tags = values.get("tags") or ()
    return IdeaInput(
        title=str(values.get("title") or ""), body=str(values.get("body") or ""),
        language=str(values.get("language") or ""), tags=tuple(tags) if isinstance(tags, list | tuple) else (),
    )  # fmt: skip
