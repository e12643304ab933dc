"""Idea pages: the list on a challenge, submitting, the idea page, votes, comments, live counts."""

from __future__ import annotations

import hashlib
import math
import secrets
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, ServerSentEvent

from challenges.labels import phase_labels
from challenges.permissions import Role, can_comment, can_edit_own_idea, can_submit_idea, can_vote
from challenges.phases import current_phase
from challenges.services import get_challenge, visible_challenge
from ideaforge.db import parse_id
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _
from ideaforge.notifications.services import is_following
from ideaforge.ratelimit import rate_limited
from ideaforge.web.auth import current_user, signed_in_user
from ideaforge.web.deps import DbSession
from ideaforge.web.deps import request_time as _now
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values, page_number
from ideaforge.web.templating import is_htmx, render
from ideas import events
from ideas.jury.scoring import hides_authors
from ideas.matching.experts import confirmed_experts
from ideas.models import BODY_MAX, TITLE_MAX, Comment
from ideas.moderation import can_moderate, flag_vote_burst
from ideas.services import (
    PAGE_SIZE,
    SORTS,
    IdeaQuery,
    accept_coauthorship,
    add_comment,
    coauthors_of,
    comments_of,
    delete_comment,
    edit_comment,
    edit_idea,
    form_input,
    get_idea,
    invite_coauthor,
    list_ideas,
    submit_idea,
    visible_idea,
    withdraw_idea,
)
from ideas.shortlist import is_locked, is_shortlisted
from ideas.suggestions import Draft, answer_join_request, request_to_join, support_instead
from ideas.votes import cast_vote, remaining_votes, retract_vote, votes_of

SEED_KEY = "idea_seed"


def _int_or_none(value: object) -> int | None:
    return parse_id(value) if isinstance(value, str) else None


def client_hash(request: Request[Any, Any, Any]) -> str:
    """Keyed hash of address and browser: enough to see bursts, never the address itself."""
    secret = request.app.state.settings.resolved_secret_key
    address = request.client.host if request.client else ""
    agent = request.headers.get("user-agent", "")
    return hashlib.sha256(f"{secret}|{address}|{agent}".encode()).hexdigest()


def _seed(request: Request[Any, Any, Any]) -> int:
    """A per-visitor seed kept in the session, so "random" is stable while they page through."""
    seed = request.session.get(SEED_KEY) if isinstance(request.scope.get("session"), dict) else None
    if not isinstance(seed, int):
        seed = secrets.randbelow(2**31)
        if isinstance(request.scope.get("session"), dict):
            request.session[SEED_KEY] = seed
    return seed


async def challenge_or_404(request: Request[Any, Any, Any], session: DbSession, challenge_id: int) -> Any:
    """The challenge and the viewer's access, or a 404 for what they may not see (pages and API)."""
    found = await visible_challenge(session, challenge_id, current_user(request), _now(request))
    if found is None:
        raise NotFoundException()
    return found


async def idea_or_404(request: Request[Any, Any, Any], session: DbSession, idea_id: int) -> Any:
    """The idea, its challenge and the viewer's access, or a 404 (pages and API)."""
    found = await visible_idea(session, idea_id, current_user(request), _now(request))
    if found is None:
        raise NotFoundException()
    return found


class ChallengeIdeasController(Controller):
    include_in_schema = False
    path = "/challenges/{challenge_id:int}"

    @get("/ideas", name="challenge_ideas")
    async def listing(
        self, request: Request[Any, Any, Any], db_session: DbSession, challenge_id: FromPath[int],
        sort: FromQuery[str] = "top", tag: FromQuery[str] = "", language: FromQuery[str] = "",
        page: FromQuery[str | None] = None, q: FromQuery[str] = "",
    ) -> Response[Any]:  # fmt: skip
        challenge, access = await challenge_or_404(request, db_session, challenge_id)
        user = current_user(request)
        q = q.strip()[:200]
        ranked = await request.app.state.similarity.search_ideas(db_session, challenge.id, q) if q else None
        chosen = sort if sort in SORTS else "top"
        query = IdeaQuery(sort=chosen, tag=tag[:30], language=language[:5],
                          seed=_seed(request) if chosen == "random" else 0)  # fmt: skip
        number = page_number(page)
        ideas, total = await list_ideas(
            db_session, challenge, query, _now(request), page=number, ranked=ranked
        )
        params = {
            k: v
            for k, v in {"sort": chosen, "tag": query.tag, "language": query.language, "q": q}.items()
            if v
        }
        return render(request, "ideas/list.html", {
            "challenge": challenge, "ideas": ideas, "total": total, "page": number, "query": query,
            "pages": max(1, math.ceil(total / PAGE_SIZE)), "params": params, "sorts": SORTS,
            "my_votes": await votes_of(db_session, challenge.id, user), "can_vote": can_vote(access),
            "remaining": await remaining_votes(db_session, challenge, user), "signed_in": user is not None,
            "can_submit": can_submit_idea(access), "q": q, "hide_authors": hides_authors(access, challenge),
        }, block="idea_list")  # fmt: skip

    @get("/events", name="challenge_events")
    async def live(self, request: Request[Any, Any, Any], db_session: DbSession,
                   challenge_id: FromPath[int]) -> ServerSentEvent:  # fmt: skip
        await challenge_or_404(request, db_session, challenge_id)
        await db_session.close()  # the stream is long-lived; it needs no database connection
        return ServerSentEvent(events.vote_stream(request.app, challenge_id))

    @get("/ideas/new", name="new_idea")
    async def new_form(self, request: Request[Any, Any, Any], db_session: DbSession,
                       challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        signed_in_user(request)
        challenge, access = await challenge_or_404(request, db_session, challenge_id)
        message = None if can_submit_idea(access) else _("This challenge does not accept ideas from you now.")
        return self._form(request, challenge, {"language": ""}, {}, message)

    @post("/ideas/similar", name="similar_while_typing", guards=[rate_limited("similar", anonymous=True)])
    async def similar_while_typing(self, request: Request[Any, Any, Any], db_session: DbSession,
                                   challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        """The panel beside the form: up to 5 ideas of this challenge like the text typed so far."""
        challenge, _access = await challenge_or_404(request, db_session, challenge_id)
        values = await form_values(request, "title", "body")
        suggestions = await request.app.state.similarity.similar_to_text(
            db_session, challenge.id, values["title"][:TITLE_MAX], values["body"][:BODY_MAX]
        )
        response = render(
            request, "ideas/_similar.html", {"suggestions": suggestions, "challenge": challenge}
        )
        response.headers["Vary"] = "HX-Request"
        return response

    @staticmethod
    def _form(request: Request[Any, Any, Any], challenge: Any, values: dict[str, Any], errors: dict[str, str],
              message: str | None, status_code: int = 200) -> Response[Any]:  # fmt: skip
        return render(request, "ideas/form.html", {
            "challenge": challenge, "values": values, "errors": errors, "message": message, "idea": None,
            "action": f"/challenges/{challenge.id}/ideas/new",
        }, status_code=status_code)  # fmt: skip

    @post("/ideas/new", guards=[rate_limited("submit")])
    async def submit(self, request: Request[Any, Any, Any], db_session: DbSession,
                     challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        challenge, access = await challenge_or_404(request, db_session, challenge_id)
        form = await request.form()
        values: dict[str, Any] = {k: str(form.get(k, "")) for k in ("title", "body", "language")}
        values["tags"] = [t for t in form.getall("tags", []) if isinstance(t, str)]
        similarity = request.app.state.similarity
        despite = _int_or_none(form.get("despite"))
        if despite is None and can_submit_idea(access) and values["title"].strip() and values["body"].strip():
            duplicates = [s for s in await similarity.similar_to_text(db_session, challenge.id, values["title"],
                                                                      values["body"]) if s.verdict.duplicate]  # fmt: skip
            if duplicates:  # offer the ways out before publishing (nothing is written yet)
                return render(request, "ideas/duplicate_choice.html", {
                    "challenge": challenge, "values": values, "duplicates": duplicates,
                    "my_votes": await votes_of(db_session, challenge.id, user),
                })  # fmt: skip
        try:
            idea = await submit_idea(db_session, challenge, user, form_input(values), _now(request),
                                     similarity=similarity, despite=despite)  # fmt: skip
        except ValidationFailed as exc:
            return self._form(request, challenge, values, exc.errors, None, status_code=422)
        except (Conflict, Forbidden) as exc:
            # The phase ended while they typed: say until when, and keep every word.
            return self._form(request, challenge, values, {}, exc.message,
                              status_code=409 if isinstance(exc, Conflict) else 403)  # fmt: skip
        flash(request, _("Your idea is published. Thank you!"))
        return Redirect(f"/ideas/{idea.id}", status_code=303)


class IdeaController(Controller):
    include_in_schema = False
    path = "/ideas/{idea_id:int}"

    @get("/", name="idea")
    async def detail(self, request: Request[Any, Any, Any], db_session: DbSession,
                     idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        idea, challenge, access = await idea_or_404(request, db_session, idea_id)
        user = current_user(request)
        return render(request, "ideas/detail.html", {
            "idea": idea, "challenge": challenge, "phase": current_phase(challenge, _now(request)),
            "phase_labels": phase_labels(), "comments": await comments_of(db_session, idea.id),
            "voted": idea.id in await votes_of(db_session, challenge.id, user), "can_vote": can_vote(access),
            "can_comment": can_comment(access), "is_author": Role.AUTHOR in access.roles,
            "can_edit": can_edit_own_idea(access, idea.created_at) and Role.AUTHOR in access.roles,
            "remaining": await remaining_votes(db_session, challenge, user), "values": {}, "errors": {},
            "follow_type": "idea", "follow_id": idea.id, "can_moderate": can_moderate(access),
            "coauthors": await coauthors_of(db_session, idea.id),
            "following": await is_following(db_session, user, "idea", idea.id),
            "experts": await confirmed_experts(db_session, idea.id),
            # Public once locked (the jury's list); before that, the organisers' working list.
            "shortlisted": is_locked(challenge, _now(request)) and await is_shortlisted(db_session, idea.id),
            "hide_authors": hides_authors(access, challenge),  # blind review: a juror sees no author or vote
        })  # fmt: skip

    @post("/vote", name="vote", guards=[rate_limited("vote")])
    async def vote(self, request: Request[Any, Any, Any], db_session: DbSession,
                   idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        wanted = (await form_values(request, "action"))["action"]
        idea_view = {"id": idea_id}
        try:  # the vote service checks that the voter can see the idea (LookupError otherwise)
            if wanted == "remove":
                state = await retract_vote(db_session, idea_id, user, _now(request))
            else:
                state = await cast_vote(
                    db_session, idea_id, user, _now(request), client_hash=client_hash(request)
                )
        except LookupError:
            raise NotFoundException() from None
        except (Conflict, Forbidden) as exc:
            if not is_htmx(request):
                flash(request, exc.message, "error")
                return Redirect(f"/ideas/{idea_id}", status_code=303)
            idea = await get_idea(db_session, idea_id)
            assert idea is not None
            challenge = await get_challenge(db_session, idea.challenge_id)
            assert challenge is not None
            return render(request, "ideas/_vote.html", {
                "idea": idea_view, "voted": idea_id in await votes_of(db_session, challenge.id, user),
                "can_vote": True, "remaining": await remaining_votes(db_session, challenge, user),
                "error": exc.message, "votes": idea.vote_count,
            }, status_code=409 if isinstance(exc, Conflict) else 403)  # fmt: skip
        events.publish_votes(request.app, state.challenge_id, idea_id, state.votes)
        if wanted != "remove":
            await flag_vote_burst(db_session, state.challenge_id, client_hash(request), _now(request))
        if not is_htmx(request):
            return Redirect(request.headers.get("referer") or f"/ideas/{idea_id}", status_code=303)
        response = render(request, "ideas/_vote.html", {
            "idea": idea_view, "voted": state.voted, "can_vote": True, "remaining": state.remaining,
            "error": None, "votes": state.votes,
        })  # fmt: skip
        response.headers["Vary"] = "HX-Request"
        return response

    @post("/coauthors")
    async def invite(self, request: Request[Any, Any, Any], db_session: DbSession,
                     idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        idea, _challenge, _access = await idea_or_404(request, db_session, idea_id)
        email = (await form_values(request, "email"))["email"]
        try:
            await invite_coauthor(db_session, idea, user, email, request.app.state.notifier)
        except ValidationFailed as exc:
            flash(request, exc.summary, "error")
        else:
            flash(request, _("Invitation sent. They become co-author once they accept."))
        return Redirect(f"/ideas/{idea_id}", status_code=303)

    @post("/coauthors/accept")
    async def accept(self, request: Request[Any, Any, Any], db_session: DbSession,
                     idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        idea, _challenge, _access = await idea_or_404(request, db_session, idea_id)
        await accept_coauthorship(db_session, idea, user)
        flash(request, _("You are now a co-author of this idea."))
        return Redirect(f"/ideas/{idea_id}", status_code=303)

    @post("/support-instead", name="support_instead", guards=[rate_limited("vote")])
    async def support(self, request: Request[Any, Any, Any], db_session: DbSession,
                      idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        """Support this existing idea instead of publishing a duplicate; the draft goes to notifications."""
        user = signed_in_user(request)
        await idea_or_404(request, db_session, idea_id)
        values = await form_values(request, "title", "body")
        try:
            outcome = await support_instead(db_session, idea_id, user, Draft(values["title"], values["body"]),
                                            _now(request), request.app.state.notifier,
                                            client_hash=client_hash(request))  # fmt: skip
        except LookupError:
            raise NotFoundException() from None
        except ValidationFailed as exc:
            flash(request, exc.summary, "error")
            return Redirect(f"/ideas/{idea_id}", status_code=303)
        if outcome.voted:
            flash(
                request,
                _("Thank you: your vote supports this idea. Your draft is kept in your notifications."),
            )
        else:
            flash(request, _("%(reason)s You now follow this idea instead, and your draft is kept in your "
                             "notifications.", reason=outcome.reason), "error")  # fmt: skip
        return Redirect(f"/ideas/{idea_id}", status_code=303)

    @post("/join-request", name="join_request")
    async def join_request(self, request: Request[Any, Any, Any], db_session: DbSession,
                           idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        idea, _challenge, _access = await idea_or_404(request, db_session, idea_id)
        values = await form_values(request, "title", "body")
        try:
            await request_to_join(db_session, idea, user, Draft(values["title"], values["body"]),
                                  request.app.state.notifier)  # fmt: skip
        except (ValidationFailed, Conflict) as exc:
            flash(request, exc.summary if isinstance(exc, ValidationFailed) else exc.message, "error")
        else:
            flash(request, _("Your request was sent to the author. You will be notified of the answer."))
        return Redirect(f"/ideas/{idea_id}", status_code=303)

    @post("/join-requests/{requester_id:int}", name="answer_join_request")
    async def answer_join(self, request: Request[Any, Any, Any], db_session: DbSession, idea_id: FromPath[int],
                          requester_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        idea, _challenge, _access = await idea_or_404(request, db_session, idea_id)
        accept = (await form_values(request, "action"))["action"] == "accept"
        try:
            await answer_join_request(
                db_session, idea, user, requester_id, accept, request.app.state.notifier
            )
        except LookupError:
            raise NotFoundException() from None
        flash(request, _("They are now a co-author.") if accept else _("The request was declined."))
        return Redirect(f"/ideas/{idea_id}#coauthors", status_code=303)

    @get("/edit")
    async def edit_form(self, request: Request[Any, Any, Any], db_session: DbSession,
                        idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        signed_in_user(request)
        idea, challenge, access = await idea_or_404(request, db_session, idea_id)
        if Role.AUTHOR not in access.roles:
            raise Forbidden(_("Only the idea's authors can edit it."))
        values = {
            "title": idea.title,
            "body": idea.body,
            "language": idea.language,
            "tags": [t.tag for t in idea.tags],
        }
        return render(request, "ideas/form.html", {"challenge": challenge, "values": values, "errors": {},
                                                   "message": None, "idea": idea,
                                                   "action": f"/ideas/{idea.id}/edit"})  # fmt: skip

    @post("/edit")
    async def edit(self, request: Request[Any, Any, Any], db_session: DbSession,
                   idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        idea, challenge, _access = await idea_or_404(request, db_session, idea_id)
        form = await request.form()
        values: dict[str, Any] = {k: str(form.get(k, "")) for k in ("title", "body", "language")}
        values["tags"] = [t for t in form.getall("tags", []) if isinstance(t, str)]
        try:
            await edit_idea(
                db_session,
                idea,
                user,
                form_input(values),
                _now(request),
                similarity=request.app.state.similarity,
            )
        except ValidationFailed as exc:  # raised before anything changed
            return render(request, "ideas/form.html", {"challenge": challenge, "values": values, "errors": exc.errors,
                                                       "message": None, "idea": idea,
                                                       "action": f"/ideas/{idea_id}/edit"}, status_code=422)  # fmt: skip
        flash(request, _("Your idea has been saved."))
        return Redirect(f"/ideas/{idea_id}", status_code=303)

    @post("/withdraw")
    async def withdraw(self, request: Request[Any, Any, Any], db_session: DbSession,
                       idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        idea, _challenge, _access = await idea_or_404(request, db_session, idea_id)
        await withdraw_idea(db_session, idea, user, _now(request))
        flash(request, _("Your idea is withdrawn. It stays visible, marked as withdrawn."))
        return Redirect(f"/ideas/{idea_id}", status_code=303)

    @post("/comments", guards=[rate_limited("comment")])
    async def comment(self, request: Request[Any, Any, Any], db_session: DbSession,
                      idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        idea, challenge, _access = await idea_or_404(request, db_session, idea_id)
        values = await form_values(request, "body", "parent")
        # A parent that is no possible id (letters, "²", too large) is answered like an unknown one: 0.
        parent = (parse_id(values["parent"]) or 0) if values["parent"] else None
        try:
            await add_comment(db_session, idea, challenge, user, values["body"], _now(request), parent,
                              request.app.state.notifier)  # fmt: skip
        except ValidationFailed as exc:
            flash(request, exc.summary, "error")
        except Conflict as exc:
            flash(request, exc.message, "error")
        return Redirect(f"/ideas/{idea_id}#comments", status_code=303)


class CommentController(Controller):
    include_in_schema = False
    path = "/comments/{comment_id:int}"

    async def _comment(self, request: Request[Any, Any, Any], session: DbSession, comment_id: int) -> Comment:
        comment = await session.get(Comment, comment_id)
        if (
            comment is None
            or await visible_idea(session, comment.idea_id, current_user(request), _now(request)) is None
        ):
            raise NotFoundException()
        return comment

    @post("/edit")
    async def edit(self, request: Request[Any, Any, Any], db_session: DbSession,
                   comment_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        comment = await self._comment(request, db_session, comment_id)
        body = (await form_values(request, "body"))["body"]
        try:
            await edit_comment(db_session, comment, user, body, _now(request))
        except ValidationFailed as exc:
            flash(request, exc.summary, "error")
        return Redirect(f"/ideas/{comment.idea_id}#comment-{comment.id}", status_code=303)

    @post("/delete")
    async def delete(self, request: Request[Any, Any, Any], db_session: DbSession,
                     comment_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        comment = await self._comment(request, db_session, comment_id)
        await delete_comment(db_session, comment, user, _now(request))
        flash(request, _("Your comment is deleted."))
        return Redirect(f"/ideas/{comment.idea_id}#comment-{comment.id}", status_code=303)
