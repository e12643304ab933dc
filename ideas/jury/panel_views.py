"""Jury pages: the organisers' jury page (members, invitations, conflicts, assignment), the invitation link,
and each juror's conflicts page."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge
from challenges.permissions import Role
from challenges.services import access_for, get_challenge, is_admin, visible_challenge
from ideaforge.db import parse_id
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _, ngettext
from ideaforge.web.auth import current_user, login_required, signed_in_user
from ideaforge.web.deps import DbSession
from ideaforge.web.deps import request_time as _now
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values, page_number, posted_id
from ideaforge.web.templating import render
from ideas.jury.models import CONFLICT_REASON_MAX
from ideas.jury.panel import (
    PAGE_SIZE,
    accept_jury_invitation,
    add_assignment,
    assign_jurors,
    assignment_closed_reason,
    cancel_invitation,
    declare_conflict,
    find_jury_invitation,
    invitations_closed_reason,
    invite_juror,
    juror_conflicts,
    jury_closed_reason,
    jury_invitation_problem,
    jury_overview,
    remove_assignment,
    remove_juror,
    withdraw_conflict,
)
from ideas.jury.tasks import send_jury_invitation

Req = Request[Any, Any, Any]


def _jury_url(challenge_id: int, page: str | int = "", anchor: str = "") -> str:
    number = page_number(str(page))
    return f"/challenges/{challenge_id}/jury" + (f"?page={number}" if number > 1 else "") + anchor


def _conflicts_url(challenge_id: int, page: str | int = "") -> str:
    number = page_number(str(page))
    return f"/challenges/{challenge_id}/jury/conflicts" + (f"?page={number}" if number > 1 else "")


async def _organised(request: Req, session: AsyncSession, challenge_id: int) -> Challenge:
    """The challenge, for its owners and admins; a 404 for everyone else."""
    found = await visible_challenge(session, challenge_id, current_user(request), _now(request))
    if found is None or not is_admin(found[1]):
        raise NotFoundException()
    return found[0]


async def _jury_page(request: Req, session: AsyncSession, challenge: Challenge, *, page: int = 1,
                     values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                     status_code: int = 200) -> Response[Any]:  # fmt: skip
    now = _now(request)
    overview = await jury_overview(session, challenge, now, page)
    return render(request, "jury/panel.html", {
        "challenge": challenge, "overview": overview, "page": page,
        "pages": max(1, math.ceil(overview.total_ideas / PAGE_SIZE)),
        "values": values or {}, "errors": errors or {},
        "invitations_closed": invitations_closed_reason(challenge, now),
        "jury_closed": jury_closed_reason(challenge, now),
        "assignment_closed": assignment_closed_reason(challenge, now),
    }, status_code=status_code)  # fmt: skip


async def _organiser_action(request: Req, session: AsyncSession, challenge_id: int, fields: tuple[str, ...],
                            action: Callable[[Challenge, dict[str, str]], Awaitable[str]],
                            anchor: str) -> Response[Any]:  # fmt: skip
    """Run ``action`` (which returns the message to flash) on the posted form; refusals are flashed too."""
    signed_in_user(request)
    challenge = await _organised(request, session, challenge_id)
    values = await form_values(request, "page", *fields)
    try:
        flash(request, await action(challenge, values))
    except LookupError:
        raise NotFoundException() from None
    except ValidationFailed as exc:
        flash(request, exc.summary, "error")
    except (Conflict, Forbidden) as exc:
        flash(request, exc.message, "error")
    return Redirect(_jury_url(challenge_id, values["page"], anchor), status_code=303)


class JuryController(Controller):
    include_in_schema = False
    path = "/challenges/{challenge_id:int}/jury"

    @get("/", name="jury_panel")
    async def page(self, request: Req, db_session: DbSession, challenge_id: FromPath[int],
                   page: FromQuery[str | None] = None) -> Response[Any]:  # fmt: skip
        signed_in_user(request)
        challenge = await _organised(request, db_session, challenge_id)
        return await _jury_page(request, db_session, challenge, page=page_number(page))

    @post("/invitations")
    async def invite(self, request: Req, db_session: DbSession, challenge_id: FromPath[int]) -> Response[Any]:
        user = signed_in_user(request)
        challenge = await _organised(request, db_session, challenge_id)
        values = await form_values(request, "email")
        challenge_title, organisation_name = challenge.title, challenge.organisation.name
        try:
            invited = await invite_juror(db_session, challenge, user, values["email"], _now(request))
        except ValidationFailed as exc:
            return await _jury_page(request, db_session, challenge, values=values, errors=exc.errors,
                                    status_code=422)  # fmt: skip
        except (Conflict, Forbidden) as exc:
            flash(request, exc.message, "error")
            return Redirect(_jury_url(challenge_id), status_code=303)
        settings = request.app.state.settings
        link = f"{settings.base_url.rstrip('/')}/jury-invitations/{invited.token}"
        send_jury_invitation(
            request.app.state.jobs, sender=settings.mail_from, to=invited.email, challenge_title=challenge_title,
            organisation_name=organisation_name, inviter_name=user.display_name, link=link,
            locale=invited.locale or settings.default_locale,
        )  # fmt: skip
        flash(request, _("Invitation sent to %(email)s.", email=invited.email))
        return Redirect(_jury_url(challenge_id, anchor="#invitations"), status_code=303)

    @post("/invitations/cancel")
    async def cancel(self, request: Req, db_session: DbSession, challenge_id: FromPath[int]) -> Response[Any]:
        user, now = signed_in_user(request), _now(request)

        async def action(challenge: Challenge, values: dict[str, str]) -> str:
            email = await cancel_invitation(db_session, challenge, posted_id(values["invitation"]), user, now)
            return _("The invitation to %(email)s is cancelled: its link no longer works.", email=email)

        return await _organiser_action(
            request, db_session, challenge_id, ("invitation",), action, "#invitations"
        )

    @post("/members/remove")
    async def remove_member(self, request: Req, db_session: DbSession,
                            challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user, now = signed_in_user(request), _now(request)

        async def action(challenge: Challenge, values: dict[str, str]) -> str:
            juror_id = posted_id(values["juror"])
            if values["confirm"] != "on":
                raise Conflict(_("Tick the box to confirm that this juror leaves the jury."))
            name = await remove_juror(db_session, challenge, juror_id, user, now)
            return _("%(name)s is no longer on the jury.", name=name)

        return await _organiser_action(
            request, db_session, challenge_id, ("juror", "confirm"), action, "#members"
        )

    @post("/assign")
    async def assign(self, request: Req, db_session: DbSession, challenge_id: FromPath[int]) -> Response[Any]:
        user, now, notifier = signed_in_user(request), _now(request), request.app.state.notifier

        async def action(challenge: Challenge, values: dict[str, str]) -> str:
            k = challenge.jurors_per_idea
            done = await assign_jurors(db_session, challenge, user, now, notifier)
            if not done.created:
                return _("Every shortlisted idea already has its %(k)s jurors: nothing to do.", k=k)
            return ngettext("%(num)s assignment made: every shortlisted idea has %(k)s jurors. The jurors were told.",
                            "%(num)s assignments made: every shortlisted idea has %(k)s jurors. The jurors were told.",
                            done.created, k=k)  # fmt: skip

        return await _organiser_action(request, db_session, challenge_id, (), action, "#assignment")

    @post("/assignments/add")
    async def add(self, request: Req, db_session: DbSession, challenge_id: FromPath[int]) -> Response[Any]:
        user, now, notifier = signed_in_user(request), _now(request), request.app.state.notifier

        async def action(challenge: Challenge, values: dict[str, str]) -> str:
            idea_id = posted_id(values["idea"])
            juror_id = parse_id(values["juror"])
            if juror_id is None:
                raise ValidationFailed({"juror": _("Choose a member of the jury.")})
            name = await add_assignment(db_session, challenge, idea_id, juror_id, user, now, notifier)
            return _("%(name)s now scores this idea and was told.", name=name)

        return await _organiser_action(
            request, db_session, challenge_id, ("idea", "juror"), action, "#assignment"
        )

    @post("/assignments/remove")
    async def remove(self, request: Req, db_session: DbSession, challenge_id: FromPath[int]) -> Response[Any]:
        user, now = signed_in_user(request), _now(request)

        async def action(challenge: Challenge, values: dict[str, str]) -> str:
            name, title = await remove_assignment(
                db_session, challenge, posted_id(values["assignment"]), user, now
            )
            return _("%(name)s no longer scores “%(title)s”.", name=name, title=title)

        return await _organiser_action(
            request, db_session, challenge_id, ("assignment",), action, "#assignment"
        )

    # --- the juror's own page ---------------------------------------------------------------------------------

    @get("/conflicts", name="jury_conflicts")
    async def conflicts(self, request: Req, db_session: DbSession, challenge_id: FromPath[int],
                        page: FromQuery[str | None] = None) -> Response[Any]:  # fmt: skip
        challenge = await _judged(request, db_session, challenge_id)
        return await _conflicts_page(request, db_session, challenge, page_number(page))

    @post("/conflicts/declare")
    async def declare(
        self, request: Req, db_session: DbSession, challenge_id: FromPath[int]
    ) -> Response[Any]:
        user = signed_in_user(request)
        challenge = await _judged(request, db_session, challenge_id)
        values = await form_values(request, "idea", "reason", "page")
        idea_id = posted_id(values["idea"])
        try:
            done = await declare_conflict(
                db_session, challenge, user, idea_id, values["reason"], _now(request)
            )
        except LookupError:
            raise NotFoundException() from None
        except ValidationFailed as exc:
            key = f"reason-{idea_id}"
            return await _conflicts_page(request, db_session, challenge, page_number(values["page"]),
                                         values={key: values["reason"]},
                                         errors={key: exc.errors.get("reason", exc.summary)}, status_code=422)  # fmt: skip
        except (Conflict, Forbidden) as exc:
            flash(request, exc.message, "error")
        else:
            flash(request, _("Your conflict of interest with “%(title)s” is recorded: you will not score it.",
                             title=done.title))  # fmt: skip
            if done.unassigned:
                flash(request, _("It was taken off your list; the organisers will give it to another juror."))
        return Redirect(_conflicts_url(challenge_id, values["page"]), status_code=303)

    @post("/conflicts/withdraw")
    async def withdraw(
        self, request: Req, db_session: DbSession, challenge_id: FromPath[int]
    ) -> Response[Any]:
        user = signed_in_user(request)
        challenge = await _judged(request, db_session, challenge_id)
        values = await form_values(request, "idea", "page")
        try:
            title = await withdraw_conflict(
                db_session, challenge, user, posted_id(values["idea"]), _now(request)
            )
        except LookupError:
            raise NotFoundException() from None
        except (Conflict, Forbidden) as exc:
            flash(request, exc.message, "error")
        else:
            flash(request, _("Your declaration on “%(title)s” is withdrawn.", title=title))
        return Redirect(_conflicts_url(challenge_id, values["page"]), status_code=303)


async def _judged(request: Req, session: AsyncSession, challenge_id: int) -> Challenge:
    """The challenge, for the members of its jury; a 404 for everyone else."""
    user = signed_in_user(request)
    challenge = await get_challenge(session, challenge_id)
    if (
        challenge is None
        or Role.JUROR not in (await access_for(session, challenge, user, _now(request))).roles
    ):
        raise NotFoundException()
    return challenge


async def _conflicts_page(request: Req, session: AsyncSession, challenge: Challenge, page: int, *,
                          values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                          status_code: int = 200) -> Response[Any]:  # fmt: skip
    user = signed_in_user(request)
    items, total = await juror_conflicts(session, challenge, user.id, page)
    return render(request, "jury/conflicts.html", {
        "challenge": challenge, "items": items, "total": total, "page": page,
        "pages": max(1, math.ceil(total / PAGE_SIZE)), "values": values or {}, "errors": errors or {},
        "closed": jury_closed_reason(challenge, _now(request)), "reason_max": CONFLICT_REASON_MAX,
    }, status_code=status_code)  # fmt: skip


class JuryInvitationController(Controller):
    include_in_schema = False
    path = "/jury-invitations"

    @get("/{token:str}", name="jury_invitation")
    async def show(self, request: Req, db_session: DbSession, token: FromPath[str]) -> Response[Any]:
        invitation = await find_jury_invitation(db_session, token)
        challenge = (
            await get_challenge(db_session, invitation.challenge_id) if invitation is not None else None
        )
        problem = jury_invitation_problem(invitation, challenge, _now(request))
        user = current_user(request)
        joined = invitation is not None and user is not None and invitation.accepted_by_id == user.id
        return render(request, "jury/invitation.html", {
            "challenge": challenge, "problem": None if joined else problem, "joined": joined, "token": token,
        }, status_code=200 if problem is None or joined else 403 if invitation is not None else 404)  # fmt: skip

    @post("/{token:str}", guards=[login_required])
    async def accept(self, request: Req, db_session: DbSession, token: FromPath[str]) -> Response[Any]:
        user = signed_in_user(request)
        try:
            challenge_id = await accept_jury_invitation(db_session, token, user, _now(request))
        except Forbidden as exc:
            flash(request, exc.message, "error")
            return Redirect(f"/jury-invitations/{token}", status_code=303)
        flash(
            request,
            _("Welcome to the jury! Declare here any conflict of interest with the shortlisted ideas."),
        )
        return Redirect(_conflicts_url(challenge_id), status_code=303)
