"""Idea, vote and comment endpoints of the JSON API."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED

from ideaforge.errors import ValidationFailed
from ideaforge.i18n import _
from ideaforge.ratelimit import rate_limited
from ideaforge.web.auth import current_user, signed_in_user
from ideaforge.web.deps import DbSession, request_time
from ideaforge.web.forms import page_number
from ideas import events
from ideas.models import Comment, Idea
from ideas.moderation import flag_vote_burst
from ideas.services import (
    PAGE_SIZE,
    SORTS,
    IdeaInput,
    IdeaQuery,
    add_comment,
    comments_of,
    list_ideas,
    submit_idea,
)
from ideas.views import challenge_or_404, client_hash, idea_or_404
from ideas.votes import VoteState, cast_vote, retract_vote, votes_of


class IdeaIn(msgspec.Struct):
    title: str
    body: str
    language: str = ""
    tags: list[str] = msgspec.field(default_factory=list)


class CommentIn(msgspec.Struct):
    body: str
    parent_id: int | None = None


class IdeaOut(msgspec.Struct):
    id: int
    challenge_id: int
    title: str
    body: str
    language: str
    tags: list[str]
    status: str
    votes: int
    author: str
    created_at: datetime
    voted: bool | None = None


class IdeaPage(msgspec.Struct):
    items: list[IdeaOut]
    total: int
    page: int
    pages: int


class VoteOut(msgspec.Struct):
    idea_id: int
    votes: int
    voted: bool
    remaining: int | None


class CommentOut(msgspec.Struct):
    id: int
    idea_id: int
    parent_id: int | None
    author: str | None
    body: str
    deleted: bool
    created_at: datetime


def idea_out(idea: Idea, voted: bool | None = None) -> IdeaOut:
    return IdeaOut(id=idea.id, challenge_id=idea.challenge_id, title=idea.title, body=idea.body,
                   language=idea.language, tags=[t.tag for t in idea.tags], status=idea.status.value,
                   votes=idea.vote_count, author=idea.author.display_name, created_at=idea.created_at,
                   voted=voted)  # fmt: skip


def comment_out(comment: Comment) -> CommentOut:
    gone = comment.deleted_at is not None or comment.hidden_reason is not None
    return CommentOut(id=comment.id, idea_id=comment.idea_id, parent_id=comment.parent_id,
                      author=None if gone else comment.author.display_name, body="" if gone else comment.body,
                      deleted=comment.deleted_at is not None, created_at=comment.created_at)  # fmt: skip


def vote_out(state: VoteState) -> VoteOut:
    return VoteOut(idea_id=state.idea_id, votes=state.votes, voted=state.voted, remaining=state.remaining)


class IdeaApi(Controller):
    path = "/api/v1"
    tags = ["ideas"]  # noqa: RUF012  # Litestar reads a class attribute

    @post(
        "/challenges/{challenge_id:int}/ideas",
        status_code=HTTP_201_CREATED,
        summary="Submit an idea",
        guards=[rate_limited("submit")],
    )
    async def submit(self, request: Request[Any, Any, Any], db_session: DbSession, challenge_id: FromPath[int],
                     data: JSONBody[IdeaIn]) -> IdeaOut:  # fmt: skip
        user = signed_in_user(request)
        challenge = (await challenge_or_404(request, db_session, challenge_id))[0]
        idea = await submit_idea(
            db_session,
            challenge,
            user,
            IdeaInput(data.title, data.body, data.language, tuple(data.tags)),
            request_time(request),
        )
        idea_id = idea.id
        db_session.expunge_all()
        found = await idea_or_404(request, db_session, idea_id)
        return idea_out(found[0], voted=False)

    @get(
        "/challenges/{challenge_id:int}/ideas", summary="A challenge's published ideas, sorted and paginated"
    )
    async def listing(self, request: Request[Any, Any, Any], db_session: DbSession, challenge_id: FromPath[int],
                      sort: FromQuery[str] = "top", tag: FromQuery[str] = "", language: FromQuery[str] = "",
                      page: FromQuery[str | None] = None, seed: FromQuery[int] = 0) -> IdeaPage:  # fmt: skip
        if sort not in SORTS:
            raise ValidationFailed({"sort": _("Sort by one of: %(sorts)s.", sorts=", ".join(SORTS))})
        challenge = (await challenge_or_404(request, db_session, challenge_id))[0]
        number = page_number(page)
        query = IdeaQuery(sort=sort, tag=tag[:30], language=language[:5], seed=seed)
        ideas, total = await list_ideas(db_session, challenge, query, request_time(request), page=number)
        mine = await votes_of(db_session, challenge.id, current_user(request))
        return IdeaPage(items=[idea_out(i, i.id in mine) for i in ideas], total=total, page=number,
                        pages=max(1, math.ceil(total / PAGE_SIZE)))  # fmt: skip

    @get("/ideas/{idea_id:int}", summary="One idea")
    async def detail(
        self, request: Request[Any, Any, Any], db_session: DbSession, idea_id: FromPath[int]
    ) -> IdeaOut:
        idea, challenge, _access = await idea_or_404(request, db_session, idea_id)
        mine = await votes_of(db_session, challenge.id, current_user(request))
        return idea_out(idea, idea.id in mine)

    @put(
        "/ideas/{idea_id:int}/vote",
        summary="Vote for an idea (voting twice leaves one vote)",
        guards=[rate_limited("vote")],
    )
    async def vote(
        self, request: Request[Any, Any, Any], db_session: DbSession, idea_id: FromPath[int]
    ) -> VoteOut:
        user = signed_in_user(request)
        try:  # cast_vote checks that the voter can see the idea (LookupError otherwise)
            state = await cast_vote(db_session, idea_id, user, request_time(request),
                                    client_hash=client_hash(request))  # fmt: skip
        except LookupError:
            raise NotFoundException() from None
        challenge_id = state.challenge_id
        events.publish_votes(request.app, challenge_id, idea_id, state.votes)
        await flag_vote_burst(db_session, challenge_id, client_hash(request), request_time(request))
        return vote_out(state)

    @delete("/ideas/{idea_id:int}/vote", status_code=200, summary="Take your vote back")
    async def unvote(
        self, request: Request[Any, Any, Any], db_session: DbSession, idea_id: FromPath[int]
    ) -> VoteOut:
        user = signed_in_user(request)
        try:  # a voter may take back a vote on a hidden idea; others cannot see it (LookupError)
            state = await retract_vote(db_session, idea_id, user, request_time(request))
        except LookupError:
            raise NotFoundException() from None
        challenge_id = state.challenge_id
        events.publish_votes(request.app, challenge_id, idea_id, state.votes)
        return vote_out(state)

    @get("/ideas/{idea_id:int}/comments", summary="An idea's comments, each followed by its replies")
    async def comments(self, request: Request[Any, Any, Any], db_session: DbSession,
                       idea_id: FromPath[int]) -> list[CommentOut]:  # fmt: skip
        await idea_or_404(request, db_session, idea_id)
        return [
            comment_out(c) for top, replies in await comments_of(db_session, idea_id) for c in (top, *replies)
        ]

    @post(
        "/ideas/{idea_id:int}/comments",
        status_code=HTTP_201_CREATED,
        summary="Comment on an idea",
        guards=[rate_limited("comment")],
    )
    async def comment(self, request: Request[Any, Any, Any], db_session: DbSession, idea_id: FromPath[int],
                      data: JSONBody[CommentIn]) -> CommentOut:  # fmt: skip
        user = signed_in_user(request)
        idea, challenge, _access = await idea_or_404(request, db_session, idea_id)
        created = await add_comment(db_session, idea, challenge, user, data.body, request_time(request),
                                    data.parent_id, request.app.state.notifier)  # fmt: skip
        created_id = created.id
        for top, replies in await comments_of(db_session, idea_id):
            for c in (top, *replies):
                if c.id == created_id:
                    return comment_out(c)
        raise NotFoundException()
