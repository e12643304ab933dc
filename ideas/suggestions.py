"""The ways out of a duplicate, offered before a new idea is published: support the existing idea
instead (the draft is kept in the user's notifications) or ask to join it as co-author."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ideaforge.accounts.models import User
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _
from ideaforge.notifications.services import Notifier, set_following
from ideas.models import BODY_MAX, TITLE_MAX, CoAuthor, CoAuthorStatus, Idea, IdeaStatus
from ideas.services import author_ids
from ideas.votes import cast_vote


@dataclass(frozen=True)
class Draft:
    title: str
    body: str

    def text(self) -> str:
        return f"{self.title.strip()}\n\n{self.body.strip()}".strip()

    def check(self) -> Draft:
        if not self.title.strip() and not self.body.strip():
            raise ValidationFailed({"title": _("Your draft is empty.")})
        return Draft(self.title.strip()[:TITLE_MAX], self.body.strip()[:BODY_MAX])


@dataclass(frozen=True)
class Supported:
    voted: bool
    """False when voting is not open (or the budget is spent): the user then follows the idea instead."""
    reason: str = ""


async def support_instead(session: AsyncSession, idea_id: int, user: User, draft: Draft, now: datetime,
                          notifier: Notifier, *, client_hash: str = "") -> Supported:  # fmt: skip
    """Vote for the existing idea instead of submitting a duplicate; keep the draft in a notification.
    Raises LookupError for an idea the user cannot see."""
    draft = draft.check()
    user_id = user.id
    try:
        await cast_vote(session, idea_id, user, now, client_hash=client_hash)
        outcome = Supported(True)
    except (Conflict, Forbidden) as exc:  # not in the voting phase, budget spent, or their own idea
        outcome = Supported(False, exc.message)
        await session.rollback()
        user = await session.get(User, user_id) or user
        await set_following(session, user, "idea", idea_id, True)
    title = await session.scalar(select(Idea.title).where(Idea.id == idea_id)) or ""
    user = await session.get(User, user_id) or user
    text = draft.text()
    mails = notifier.notify(session, [user], "draft_kept", lambda: _(
        "You supported “%(title)s” instead of publishing your own idea. Your draft, kept for you:\n\n%(draft)s",
        title=title, draft=text), f"/ideas/{idea_id}")  # fmt: skip
    await session.commit()
    notifier.send(mails)
    return outcome


async def request_to_join(session: AsyncSession, idea: Idea, user: User, draft: Draft,
                          notifier: Notifier) -> CoAuthor:  # fmt: skip
    """Ask the idea's author to take this person on as co-author, with their draft for context."""
    draft = draft.check()
    if idea.status is not IdeaStatus.PUBLISHED:
        raise Conflict(_("This idea is no longer open to new co-authors."))
    if user.id in await author_ids(session, idea):
        raise Conflict(_("You are already an author of this idea."))
    existing = await session.scalar(
        select(CoAuthor).where(CoAuthor.idea_id == idea.id, CoAuthor.user_id == user.id)
    )
    if existing is not None:
        return existing
    request = CoAuthor(
        idea_id=idea.id, user_id=user.id, status=CoAuthorStatus.REQUESTED, message=draft.text()
    )
    session.add(request)
    author = await session.get(User, idea.author_id)
    name, title, idea_id = user.display_name, idea.title, idea.id
    mails = notifier.notify(session, [author] if author else [], "join_request", lambda: _(
        "%(name)s proposes to join “%(title)s” as co-author instead of submitting a similar idea.",
        name=name, title=title), f"/ideas/{idea_id}#coauthors")  # fmt: skip
    await session.commit()
    notifier.send(mails)
    return request


async def answer_join_request(session: AsyncSession, idea: Idea, author: User, requester_id: int, accept: bool,
                              notifier: Notifier) -> None:  # fmt: skip
    if author.id != idea.author_id:
        raise Forbidden(_("Only the idea's author can answer requests to join it."))
    request = await session.scalar(select(CoAuthor).where(
        CoAuthor.idea_id == idea.id, CoAuthor.user_id == requester_id, CoAuthor.status == CoAuthorStatus.REQUESTED))  # fmt: skip
    if request is None:
        raise LookupError(requester_id)
    requester = await session.get(User, requester_id)
    title, idea_id = idea.title, idea.id
    if accept:
        request.status = CoAuthorStatus.ACCEPTED
        text = lambda: _("You are now a co-author of “%(title)s”.", title=title)  # noqa: E731
    else:
        await session.execute(delete(CoAuthor).where(CoAuthor.id == request.id))
        text = lambda: _("The author of “%(title)s” declined your request to join.", title=title)  # noqa: E731
    mails = notifier.notify(
        session, [requester] if requester else [], "join_answer", text, f"/ideas/{idea_id}"
    )
    await session.commit()
    notifier.send(mails)
