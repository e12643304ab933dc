"""Partner pages: suggestions for a challenge's organisers, the partner's incoming interests (accept or
decline), and the public partner directory. Contacts appear only on the first two, once accepted."""

from __future__ import annotations

import math
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge
from challenges.services import is_admin, visible_challenge
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _
from ideaforge.organisations.models import Organisation
from ideaforge.organisations.services import get_organisation
from ideaforge.profiles.labels import cooperation_labels
from ideaforge.profiles.models import INTEREST_MESSAGE_MAX
from ideaforge.validation import country_name
from ideaforge.web.auth import current_user, login_required, signed_in_user
from ideaforge.web.deps import DbSession
from ideaforge.web.deps import request_time as _now
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values, page_number
from ideaforge.web.templating import render
from ideas.matching.partners import (
    PAGE_SIZE,
    DirectoryFilters,
    answer_interest,
    directory_facets,
    express_interest,
    interests_link,
    is_organisation_admin,
    partner_directory,
    partners_link,
    received_interest,
    received_interests,
    sent_interests,
    suggest_partners,
)

ANSWERS = ("accept", "decline")


def _labels() -> dict[str, Any]:
    return {"cooperation_labels": cooperation_labels(), "country_name": country_name}


async def _organised(request: Request[Any, Any, Any], session: AsyncSession, challenge_id: int) -> Challenge:
    """The challenge, for its admins; 404 when the visitor cannot see it, 403 when they do not organise it."""
    found = await visible_challenge(session, challenge_id, current_user(request), _now(request))
    if found is None:
        raise NotFoundException()
    if not is_admin(found[1]):
        raise Forbidden(_("Only the challenge's organisers can see partner suggestions."))
    challenge: Challenge = found[0]
    return challenge


class PartnerSuggestionsController(Controller):
    include_in_schema = False  # pages; the API lives under /api/v1
    path = "/challenges/{challenge_id:int}/partners"

    async def _page(self, request: Request[Any, Any, Any], session: AsyncSession, challenge: Challenge, *,
                    values: dict[int, str] | None = None, errors: dict[int, str] | None = None,
                    status_code: int = 200) -> Response[Any]:  # fmt: skip
        challenge_id = challenge.id
        suggestions = (
            await suggest_partners(session, challenge, request.app.state.similarity)
            if challenge.open_to_partners
            else []
        )
        sent = await sent_interests(session, challenge_id)
        return render(request, "partners/suggestions.html", {
            "challenge": challenge, "suggestions": suggestions, "sent": sent,
            "sent_by_partner": {item.interest.partner_organisation_id: item for item in sent},
            "values": values or {}, "errors": errors or {}, "message_max": INTEREST_MESSAGE_MAX, **_labels(),
        }, status_code=status_code)  # fmt: skip

    @get("/", name="challenge_partners", guards=[login_required])
    async def suggestions(self, request: Request[Any, Any, Any], db_session: DbSession,
                          challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        return await self._page(request, db_session, await _organised(request, db_session, challenge_id))

    @post("/{organisation_id:int}/interest", guards=[login_required])
    async def interest(self, request: Request[Any, Any, Any], db_session: DbSession, challenge_id: FromPath[int],
                       organisation_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        challenge = await _organised(request, db_session, challenge_id)
        values = await form_values(request, "message")
        try:
            await express_interest(db_session, challenge, user, organisation_id, values["message"], _now(request),
                                   request.app.state.notifier, actor_is_admin=True)  # fmt: skip
        except ValidationFailed as exc:
            return await self._page(request, db_session, challenge, values={organisation_id: values["message"]},
                                    errors={organisation_id: exc.summary}, status_code=422)  # fmt: skip
        except Conflict as exc:
            flash(request, exc.message, "error")
            return Redirect(partners_link(challenge_id), status_code=303)
        flash(request, _("Your interest has been sent. Contact details are shared once the partner accepts."))
        return Redirect(f"{partners_link(challenge_id)}#partner-{organisation_id}", status_code=303)


async def _administered(request: Request[Any, Any, Any], session: AsyncSession, slug: str) -> Organisation:
    organisation = await get_organisation(session, slug)
    if organisation is None:
        raise NotFoundException()
    user = signed_in_user(request)
    if not (user.is_superuser or await is_organisation_admin(session, organisation.id, user)):
        raise Forbidden(_("Only the organisation's owners and admins can see its partner interests."))
    return organisation


class PartnerInterestsController(Controller):
    include_in_schema = False  # pages; the API lives under /api/v1
    path = "/organisations/{slug:str}/partner-interests"

    @get("/", name="partner_interests", guards=[login_required])
    async def listing(self, request: Request[Any, Any, Any], db_session: DbSession,
                      slug: FromPath[str]) -> Response[Any]:  # fmt: skip
        organisation = await _administered(request, db_session, slug)
        return render(request, "partners/interests.html", {
            "organisation": organisation, "interests": await received_interests(db_session, organisation.id),
            **_labels(),
        })  # fmt: skip

    @get("/{interest_id:int}/{answer:str}", guards=[login_required])
    async def confirm(self, request: Request[Any, Any, Any], db_session: DbSession, slug: FromPath[str],
                      interest_id: FromPath[int], answer: FromPath[str]) -> Response[Any]:  # fmt: skip
        organisation = await _administered(request, db_session, slug)
        item = await received_interest(db_session, organisation.id, interest_id)
        if item is None or answer not in ANSWERS:
            raise NotFoundException()
        return render(request, "partners/answer.html", {
            "organisation": organisation, "item": item, "answer": answer, **_labels(),
        })  # fmt: skip

    @post("/{interest_id:int}/{answer:str}", guards=[login_required])
    async def answer(self, request: Request[Any, Any, Any], db_session: DbSession, slug: FromPath[str],
                     interest_id: FromPath[int], answer: FromPath[str]) -> Response[Any]:  # fmt: skip
        organisation = await _administered(request, db_session, slug)
        organisation_slug = organisation.slug
        item = await received_interest(db_session, organisation.id, interest_id)
        if item is None or answer not in ANSWERS:
            raise NotFoundException()
        try:
            await answer_interest(db_session, interest_id, signed_in_user(request), answer == "accept",
                                  _now(request), request.app.state.notifier)  # fmt: skip
        except Conflict as exc:
            flash(request, exc.message, "error")
        else:
            if answer == "accept":
                flash(
                    request,
                    _("Accepted: you and the challenge's organisers can now see each other's contact."),
                )
            else:
                flash(
                    request, _("Declined: the organisers have been told, and no contact details were shared.")
                )
        return Redirect(f"{interests_link(organisation_slug)}#interest-{interest_id}", status_code=303)


class PartnerDirectoryController(Controller):
    include_in_schema = False  # pages; the API lives under /api/v1
    path = "/partners"

    @get("/", name="partners")
    async def directory(
        self, request: Request[Any, Any, Any], db_session: DbSession, q: FromQuery[str] = "",
        country: FromQuery[str] = "", kind: FromQuery[str] = "", sector: FromQuery[str] = "",
        meaning: FromQuery[str] = "", page: FromQuery[str | None] = None,
    ) -> Response[Any]:  # fmt: skip
        filters = DirectoryFilters(q=q[:200], country=country[:2], kind=kind[:20], sector=sector[:40],
                                   meaning="1" if meaning else "")  # fmt: skip
        number = page_number(page)
        similarity = getattr(request.app.state, "similarity", None)
        found, total = await partner_directory(db_session, filters, page=number, similarity=similarity)
        return render(request, "partners/directory.html", {
            "partners": found, "total": total, "page": number, "pages": max(1, math.ceil(total / PAGE_SIZE)),
            "filters": filters, "facets": await directory_facets(db_session), **_labels(),
        }, block="results")  # fmt: skip
