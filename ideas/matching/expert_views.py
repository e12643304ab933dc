"""Expert pages: the organisers' assignment page of a challenge (suggest, swap, confirm, remove) and the
expert's "Ideas to advise"."""

from __future__ import annotations

import math
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge
from challenges.services import visible_challenge
from ideaforge.db import parse_id
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _, ngettext
from ideaforge.profiles.models import ExpertAssignment
from ideaforge.web.auth import current_user, login_required, signed_in_user
from ideaforge.web.deps import DbSession
from ideaforge.web.deps import request_time as _now
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values, page_number
from ideaforge.web.templating import render
from ideas.matching.experts import (
    PAGE_SIZE,
    any_expert_profile,
    assignment_table,
    can_assign_experts,
    confirm_assignments,
    ideas_to_advise,
    remove_assignment,
    suggest_experts,
    swap_expert,
    swap_options,
)
from ideas.models import Idea
from ideas.shortlist import shortlisted_ids
from ideas.similarity import Similarity

STRONG = 0.3
GOOD = 0.15


def affinity_label(value: float) -> str:
    """The matcher's score in words (organisers compare experts, not numbers)."""
    if value >= STRONG:
        return _("Strong match")
    if value >= GOOD:
        return _("Good match")
    return _("Weak match")


def _page(challenge_id: int) -> str:
    return f"/challenges/{challenge_id}/experts"


def _similarity(request: Request[Any, Any, Any]) -> Similarity:
    similarity: Similarity = request.app.state.similarity
    return similarity


async def _organised(request: Request[Any, Any, Any], session: AsyncSession, challenge_id: int) -> Challenge:
    """The challenge, for its owners and admins; a 404 for everyone else (the page is not theirs to see)."""
    found = await visible_challenge(session, challenge_id, current_user(request), _now(request))
    if found is None or not can_assign_experts(found[1]):
        raise NotFoundException()
    challenge: Challenge = found[0]
    return challenge


async def _assignment(request: Request[Any, Any, Any], session: AsyncSession,
                      assignment_id: int) -> tuple[ExpertAssignment, Challenge]:  # fmt: skip
    assignment = await session.get(ExpertAssignment, assignment_id)
    if assignment is None:
        raise NotFoundException()
    return assignment, await _organised(request, session, assignment.challenge_id)


class ExpertAssignmentController(Controller):
    include_in_schema = False

    async def _show(self, request: Request[Any, Any, Any], session: AsyncSession, challenge: Challenge,
                    page: int = 1, values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                    status_code: int = 200) -> Response[Any]:  # fmt: skip
        ideas, total = await assignment_table(session, challenge.id, page)
        return render(request, "ideas/experts.html", {
            "challenge": challenge, "ideas": ideas, "total": total, "page": page,
            "pages": max(1, math.ceil(total / PAGE_SIZE)), "has_experts": await any_expert_profile(session),
            "labels": {e.assignment_id: affinity_label(e.affinity) for i in ideas for e in i.experts},
            "any_suggested": any(i.suggested for i in ideas),
            "shortlisted": await shortlisted_ids(session, challenge.id),
            "values": values or {"k": "1"}, "errors": errors or {},
        }, status_code=status_code)  # fmt: skip

    @get("/challenges/{challenge_id:int}/experts", name="challenge_experts")
    async def page(self, request: Request[Any, Any, Any], db_session: DbSession, challenge_id: FromPath[int],
                   page: FromQuery[str | None] = None) -> Response[Any]:  # fmt: skip
        signed_in_user(request)
        challenge = await _organised(request, db_session, challenge_id)
        return await self._show(request, db_session, challenge, page_number(page))

    @post("/challenges/{challenge_id:int}/experts/suggest")
    async def suggest(self, request: Request[Any, Any, Any], db_session: DbSession,
                      challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        signed_in_user(request)
        challenge = await _organised(request, db_session, challenge_id)
        values = await form_values(request, "k", "shortlisted_only")
        try:
            raw = values["k"].strip()
            if not (raw.isascii() and raw.isdecimal()) or len(raw) > 4:
                raise ValidationFailed({"k": _("Enter a whole number of experts per idea, 1 or more.")})
            done = await suggest_experts(db_session, challenge, _similarity(request), k=int(raw),
                                         shortlisted_only=bool(values["shortlisted_only"]))  # fmt: skip
        except ValidationFailed as exc:
            challenge = await _organised(request, db_session, challenge_id)  # reloaded after a rollback
            return await self._show(request, db_session, challenge, values=values, errors=exc.errors,
                                    status_code=422)  # fmt: skip
        except Conflict as exc:
            flash(request, exc.message, "error")
            return Redirect(_page(challenge_id), status_code=303)
        flash(request, ngettext(
                "%(num)s expert suggested. Check the suggestions, swap any, then confirm them.",
                "%(num)s experts suggested. Check the suggestions, swap any, then confirm them.",
                done.suggestions,
            ))  # fmt: skip
        return Redirect(_page(challenge_id), status_code=303)

    @post("/challenges/{challenge_id:int}/experts/confirm")
    async def confirm(self, request: Request[Any, Any, Any], db_session: DbSession,
                      challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        challenge = await _organised(request, db_session, challenge_id)
        raw = (await form_values(request, "idea"))["idea"]
        idea_id = parse_id(raw)
        try:
            count = await confirm_assignments(db_session, challenge, user, _now(request),
                                              request.app.state.notifier, idea_id=idea_id)  # fmt: skip
        except (Conflict, Forbidden) as exc:
            flash(request, exc.message, "error")
        else:
            flash(request, ngettext(
                "%(num)s expert confirmed and told about the idea to advise on.",
                "%(num)s experts confirmed. Each was told about the idea to advise on.",
                count,
            ))  # fmt: skip
        return Redirect(_page(challenge_id), status_code=303)

    async def _swap_form(self, request: Request[Any, Any, Any], session: AsyncSession,
                         assignment: ExpertAssignment, challenge: Challenge, errors: dict[str, str],
                         status_code: int = 200) -> Response[Any]:  # fmt: skip
        idea = await session.get(Idea, assignment.idea_id)
        options = await swap_options(session, challenge, _similarity(request), assignment)
        return render(request, "ideas/expert_swap.html", {
            "challenge": challenge, "assignment": assignment, "idea": idea, "options": options,
            "labels": {o.profile_id: affinity_label(o.affinity) for o in options}, "errors": errors,
        }, status_code=status_code)  # fmt: skip

    @get("/expert-assignments/{assignment_id:int}/swap")
    async def swap_form(self, request: Request[Any, Any, Any], db_session: DbSession,
                        assignment_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        signed_in_user(request)
        assignment, challenge = await _assignment(request, db_session, assignment_id)
        return await self._swap_form(request, db_session, assignment, challenge, {})

    @post("/expert-assignments/{assignment_id:int}/swap")
    async def swap(self, request: Request[Any, Any, Any], db_session: DbSession,
                   assignment_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        assignment, challenge = await _assignment(request, db_session, assignment_id)
        challenge_id = challenge.id
        raw = (await form_values(request, "expert"))["expert"]
        try:
            expert_id = parse_id(raw)
            if expert_id is None:
                raise ValidationFailed({"expert": _("Choose one of the experts listed: they are the ones who "
                                                    "may advise on this idea.")})  # fmt: skip
            await swap_expert(
                db_session, challenge, _similarity(request), assignment, expert_id, user, _now(request)
            )
        except ValidationFailed as exc:
            assignment, challenge = await _assignment(request, db_session, assignment_id)
            return await self._swap_form(
                request, db_session, assignment, challenge, exc.errors, status_code=422
            )
        except (Conflict, Forbidden) as exc:
            flash(request, exc.message, "error")
            return Redirect(_page(challenge_id), status_code=303)
        flash(request, _("The expert was swapped. Confirm the suggestion when it suits you."))
        return Redirect(_page(challenge_id), status_code=303)

    @post("/expert-assignments/{assignment_id:int}/remove")
    async def remove(self, request: Request[Any, Any, Any], db_session: DbSession,
                     assignment_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        assignment, challenge = await _assignment(request, db_session, assignment_id)
        challenge_id = challenge.id
        try:
            await remove_assignment(db_session, challenge, assignment, user, _now(request))
        except Forbidden as exc:
            flash(request, exc.message, "error")
        else:
            flash(request, _("The expert was removed from this idea."))
        return Redirect(_page(challenge_id), status_code=303)

    @get("/account/advising", name="advising", guards=[login_required])
    async def advising(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        user = signed_in_user(request)
        return render(request, "ideas/advising.html", {"ideas": await ideas_to_advise(db_session, user.id)})
