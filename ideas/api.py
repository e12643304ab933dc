"""Idea, vote and comment endpoints of the JSON API."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED

from ideaforge.errors import ValidationFailed
from ideaforge.i18n import _, format_number
from ideaforge.ratelimit import rate_limited
from ideaforge.web.auth import current_user, signed_in_user
from ideaforge.web.deps import DbSession, request_time
from ideaforge.web.errors import handle_exception, problems
from ideaforge.web.forms import page_number
from ideas import events
from ideas.jury.scoring import hides_authors
from ideas.models import BODY_MAX, Comment, Idea
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
from ideas.similarity import Suggestion
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


class SimilarIn(msgspec.Struct):
    text: str
    """What the person is typing: the first line is read as a title, the rest as the body."""
    exclude: list[int] = msgspec.field(default_factory=list)
    """Ideas to leave out (the one being edited, those already shown)."""


class IdeaOut(msgspec.Struct):
    id: int
    challenge_id: int
    title: str
    body: str
    language: str
    tags: list[str]
    status: str
    votes: int | None
    """None for a juror of a blind review (they do not see vote counts)."""
    author: str | None
    """None for a juror of a blind review (they do not see who wrote it)."""
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


class SimilarIdeaOut(msgspec.Struct):
    id: int
    title: str
    votes: int
    score: float
    """The duplicate scorer's probability that this is the same proposal (0 to 1)."""
    cosine: float
    label: Literal["duplicate", "related"]
    url: str


SIMILAR_EXCLUDE_MAX = 100
BODY_FIELD = re.compile(r"missing required field `(\w+)`|at `\$\.(\w+)")
"""The field of a decoding error that Litestar reports under the key "data" ("Object missing required field
`text`"); a mistyped field is its key."""


def similar_out(request: Request[Any, Any, Any], suggestions: list[Suggestion]) -> list[SimilarIdeaOut]:
    return [
        SimilarIdeaOut(
            id=s.idea.id,
            title=s.idea.title,
            votes=s.idea.vote_count,
            score=round(s.verdict.probability, 4),
            cosine=round(s.verdict.cosine, 4),
            label="duplicate" if s.verdict.duplicate else "related",
            url=str(request.url_for("idea", idea_id=s.idea.id)),
        )
        for s in suggestions
    ]


def similar_errors(text: object, exclude: object) -> dict[str, str]:
    """Translated messages for the similar-ideas body, by field (empty when it is valid)."""
    errors = {}
    if not isinstance(text, str) or len(text) > BODY_MAX:
        errors["text"] = _("Send the text to compare as a string of at most %(max)s characters.",
                           max=format_number(BODY_MAX))  # fmt: skip
    if (
        not isinstance(exclude, list)
        or len(exclude) > SIMILAR_EXCLUDE_MAX
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in exclude)
    ):
        errors["exclude"] = _("Send the ideas to leave out as a list of at most %(max)s idea numbers.",
                              max=SIMILAR_EXCLUDE_MAX)  # fmt: skip
    return errors


def similar_body_invalid(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """A missing or mistyped field of the similar-ideas body: the same 422, with a translated message."""
    named = set()
    for error in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(error, dict):
            named.add(str(error.get("key", "")))
            if found := BODY_FIELD.search(str(error.get("message", ""))):
                named.add(found.group(1) or found.group(2))
    errors = similar_errors(None if "text" in named else "", None if "exclude" in named else [])
    return handle_exception(request, ValidationFailed(errors) if errors else exc)


def idea_out(idea: Idea, voted: bool | None = None, *, blind: bool = False) -> IdeaOut:
    """``blind``: for a juror of a blind review, without author and vote count (``hides_authors``)."""
    return IdeaOut(id=idea.id, challenge_id=idea.challenge_id, title=idea.title, body=idea.body,
                   language=idea.language, tags=[t.tag for t in idea.tags], status=idea.status.value,
                   votes=None if blind else idea.vote_count, author=None if blind else idea.author.display_name,
                   created_at=idea.created_at, voted=voted)  # fmt: skip


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
        responses=problems(400, 401, 403, 404, 409, 422, 429),
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
            similarity=request.app.state.similarity,
        )
        idea_id = idea.id
        db_session.expunge_all()
        found = await idea_or_404(request, db_session, idea_id)
        return idea_out(found[0], voted=False)

    @get(
        "/challenges/{challenge_id:int}/ideas",
        summary="A challenge's published ideas, sorted and paginated",
        responses=problems(400, 404, 422),
    )
    async def listing(self, request: Request[Any, Any, Any], db_session: DbSession, challenge_id: FromPath[int],
                      sort: FromQuery[str] = "top", tag: FromQuery[str] = "", language: FromQuery[str] = "",
                      page: FromQuery[str | None] = None, seed: FromQuery[int] = 0) -> IdeaPage:  # fmt: skip
        if sort not in SORTS:
            raise ValidationFailed({"sort": _("Sort by one of: %(sorts)s.", sorts=", ".join(SORTS))})
        challenge, access = await challenge_or_404(request, db_session, challenge_id)
        number = page_number(page)
        query = IdeaQuery(sort=sort, tag=tag[:30], language=language[:5], seed=seed)
        ideas, total = await list_ideas(db_session, challenge, query, request_time(request), page=number)
        mine = await votes_of(db_session, challenge.id, current_user(request))
        blind = hides_authors(access, challenge)
        return IdeaPage(items=[idea_out(i, i.id in mine, blind=blind) for i in ideas], total=total, page=number,
                        pages=max(1, math.ceil(total / PAGE_SIZE)))  # fmt: skip

    @get("/ideas/{idea_id:int}", summary="One idea", responses=problems(400, 404))
    async def detail(
        self, request: Request[Any, Any, Any], db_session: DbSession, idea_id: FromPath[int]
    ) -> IdeaOut:
        idea, challenge, access = await idea_or_404(request, db_session, idea_id)
        mine = await votes_of(db_session, challenge.id, current_user(request))
        return idea_out(idea, idea.id in mine, blind=hides_authors(access, challenge))

    @get(
        "/ideas/{idea_id:int}/similar",
        summary="Up to 5 published ideas of the same challenge like this one",
        guards=[rate_limited("similar", anonymous=True)],
        responses=problems(400, 404, 429),
    )
    async def similar(self, request: Request[Any, Any, Any], db_session: DbSession,
                      idea_id: FromPath[int]) -> list[SimilarIdeaOut]:  # fmt: skip
        idea = (await idea_or_404(request, db_session, idea_id))[0]
        return similar_out(request, await request.app.state.similarity.similar_to_idea(db_session, idea))

    @post(
        "/challenges/{challenge_id:int}/similar",
        status_code=200,
        summary="Up to 5 published ideas of a challenge like a text; none for under two words",
        exception_handlers={ValidationException: similar_body_invalid},
        guards=[rate_limited("similar", anonymous=True)],
        responses=problems(400, 404, 422, 429),
    )
    async def similar_to_text(self, request: Request[Any, Any, Any], db_session: DbSession, challenge_id: FromPath[int],
                              data: JSONBody[SimilarIn]) -> list[SimilarIdeaOut]:  # fmt: skip
        challenge = (await challenge_or_404(request, db_session, challenge_id))[0]
        errors = similar_errors(data.text, data.exclude)
        if errors:
            raise ValidationFailed(errors)
        title, _newline, body = data.text.strip().partition("\n")
        suggestions = await request.app.state.similarity.similar_to_text(
            db_session, challenge.id, title, body, exclude=data.exclude
        )
        return similar_out(request, suggestions)

    @put(
        "/ideas/{idea_id:int}/vote",
        summary="Vote for an idea (voting twice leaves one vote)",
        guards=[rate_limited("vote")],
        responses=problems(400, 401, 403, 404, 409, 429),
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

    @delete(
        "/ideas/{idea_id:int}/vote",
        status_code=200,
        summary="Take your vote back",
        responses=problems(400, 401, 404, 409),
    )
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

    @get(
        "/ideas/{idea_id:int}/comments",
        summary="An idea's comments, each followed by its replies",
        responses=problems(400, 404),
    )
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
        responses=problems(400, 401, 404, 409, 422, 429),
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
