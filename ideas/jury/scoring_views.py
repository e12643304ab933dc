"""The jury's scoring pages: a juror's list of assigned ideas and the form per idea (with the panel view once
submitted); the organisers' audit of score changes and the CSV exports."""

from __future__ import annotations

import math
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge
from challenges.permissions import Access, can_score
from challenges.services import is_admin, visible_challenge
from ideaforge.errors import ValidationFailed
from ideaforge.i18n import _, ngettext
from ideaforge.web.auth import current_user, signed_in_user
from ideaforge.web.deps import DbSession
from ideaforge.web.deps import request_time as _now
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values, page_number
from ideaforge.web.templating import render
from ideas.jury.models import COMMENT_MAX, ScorecardStatus
from ideas.jury.scoring import (
    OVERALL,
    PAGE_SIZE,
    CardState,
    assigned_ideas,
    assignment_id_of,
    card_of,
    changes_csv,
    closed_message,
    comment_field,
    is_juror,
    panel_for,
    save_scores,
    score_changes,
    score_field,
    scores_csv,
)
from ideas.models import CoAuthorStatus
from ideas.services import coauthors_of, get_idea


async def _as_juror(request: Request[Any, Any, Any], session: AsyncSession, challenge_id: int) -> tuple[Challenge, Access]:  # fmt: skip
    """The challenge and the viewer's access for one of its jurors; a 404 for everyone else."""
    found = await visible_challenge(session, challenge_id, current_user(request), _now(request))
    if found is None or not is_juror(found[1]):
        raise NotFoundException()
    return found


async def _as_organiser(request: Request[Any, Any, Any], session: AsyncSession, challenge_id: int) -> Challenge:  # fmt: skip
    """The challenge for its owners and admins; a 404 for everyone else."""
    found = await visible_challenge(session, challenge_id, current_user(request), _now(request))
    if found is None or not is_admin(found[1]):
        raise NotFoundException()
    return found[0]


def _csv_answer(body: bytes, filename: str) -> Response[bytes]:
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})  # fmt: skip


class ScoringController(Controller):
    include_in_schema = False
    path = "/challenges/{challenge_id:int}"

    @get("/scoring", name="jury_scoring")
    async def assigned(self, request: Request[Any, Any, Any], db_session: DbSession,
                       challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        challenge, access = await _as_juror(request, db_session, challenge_id)
        items = await assigned_ideas(db_session, challenge_id, user.id)
        open_now = can_score(access)
        submitted = sum(1 for item in items if item.state is CardState.SUBMITTED)
        return render(request, "jury/scoring.html", {
            "challenge": challenge, "items": items, "total": len(items),
            "progress": ngettext("%(num)s of %(total)s scored", "%(num)s of %(total)s scored", submitted,
                                 total=len(items)),
            "open_now": open_now, "closed_message": "" if open_now else closed_message(challenge, _now(request)),
        })  # fmt: skip

    @get("/scoring/{idea_id:int}", name="jury_score")
    async def form(self, request: Request[Any, Any, Any], db_session: DbSession, challenge_id: FromPath[int],
                   idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        return await _form_page(request, db_session, challenge_id, idea_id)

    @post("/scoring/{idea_id:int}")
    async def save(self, request: Request[Any, Any, Any], db_session: DbSession, challenge_id: FromPath[int],
                   idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        challenge, _access = await _as_juror(request, db_session, challenge_id)
        names = [name for c in challenge.criteria for name in (score_field(c.id), comment_field(c.id))]
        values = await form_values(request, *names, OVERALL, "action")
        submit = values.pop("action") == "submit"
        try:  # Forbidden (scoring closed) reaches the error page: a 403 with the message
            card = await save_scores(
                db_session, challenge, idea_id, user, values, submit=submit, now=_now(request)
            )
        except LookupError:
            raise NotFoundException() from None
        except ValidationFailed as exc:
            return await _form_page(request, db_session, challenge_id, idea_id, values, exc.errors)
        if submit:
            flash(request, _("Your scores are submitted. You can revise them until the review closes."))
        elif card.status is ScorecardStatus.SUBMITTED:
            flash(request, _("Your changes are saved. Your scores stay submitted."))
        else:
            flash(request, _("Your draft is saved. Submit your scores once every criterion has one."))
        return Redirect(f"/challenges/{challenge_id}/scoring/{idea_id}", status_code=303)

    @get("/jury/audit", name="jury_audit")
    async def audit(self, request: Request[Any, Any, Any], db_session: DbSession, challenge_id: FromPath[int],
                    page: FromQuery[str | None] = None) -> Response[Any]:  # fmt: skip
        signed_in_user(request)
        challenge = await _as_organiser(request, db_session, challenge_id)
        number = page_number(page)
        rows, total = await score_changes(db_session, challenge_id, number)
        return render(request, "jury/audit.html", {
            "challenge": challenge, "rows": rows, "total": total, "page": number,
            "pages": max(1, math.ceil(total / PAGE_SIZE)),
        })  # fmt: skip

    @get("/jury/scores.csv")
    async def scores(self, request: Request[Any, Any, Any], db_session: DbSession,
                     challenge_id: FromPath[int]) -> Response[bytes]:  # fmt: skip
        signed_in_user(request)
        await _as_organiser(request, db_session, challenge_id)
        return _csv_answer(await scores_csv(db_session, challenge_id), f"challenge-{challenge_id}-scores.csv")

    @get("/jury/changes.csv")
    async def changes(self, request: Request[Any, Any, Any], db_session: DbSession,
                      challenge_id: FromPath[int]) -> Response[bytes]:  # fmt: skip
        signed_in_user(request)
        await _as_organiser(request, db_session, challenge_id)
        return _csv_answer(
            await changes_csv(db_session, challenge_id), f"challenge-{challenge_id}-score-changes.csv"
        )


async def _form_page(request: Request[Any, Any, Any], session: DbSession, challenge_id: int, idea_id: int,
                     typed: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> Response[Any]:  # fmt: skip
    """The scoring form of an assigned idea (a 404 otherwise): the saved card, or what was typed with its errors
    (422); read-only outside the review; the panel once the juror submitted."""
    user = signed_in_user(request)
    # Loaded again: a failed save rolled the session back.
    challenge, access = await _as_juror(request, session, challenge_id)
    assignment_id = await assignment_id_of(session, challenge_id, idea_id, user.id)
    idea = await get_idea(session, idea_id)
    if assignment_id is None or idea is None:
        raise NotFoundException()
    card, saved = await card_of(session, assignment_id)
    authors: list[str] = []
    if not challenge.blind_review:  # blind: no author, organisation or vote count anywhere on the page
        accepted = [c.user.display_name for c in await coauthors_of(session, idea_id)
                    if c.status is CoAuthorStatus.ACCEPTED]  # fmt: skip
        authors = [idea.author.display_name, *accepted]
    open_now = can_score(access)
    return render(request, "jury/score.html", {
        "challenge": challenge, "idea": idea, "authors": authors, "blind": challenge.blind_review,
        "criteria": challenge.criteria, "values": saved if typed is None else typed, "errors": errors or {},
        "state": CardState(card.status.value) if card else CardState.NOT_STARTED, "card": card,
        "editable": open_now, "closed_message": "" if open_now else closed_message(challenge, _now(request)),
        "panel": await panel_for(session, idea_id, user.id, challenge.criteria), "comment_max": COMMENT_MAX,
    }, status_code=422 if errors else 200)  # fmt: skip
