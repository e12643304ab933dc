"""Profile pages: a user's expertise (with declared conflicts), an organisation's partner profile."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ideaforge.accounts.models import User
from ideaforge.errors import Forbidden, ValidationFailed
from ideaforge.i18n import _
from ideaforge.organisations.models import Organisation
from ideaforge.organisations.permissions import can_edit_organisation
from ideaforge.organisations.services import get_organisation, role_in
from ideaforge.profiles.labels import cooperation_labels
from ideaforge.profiles.models import CAPACITY_MAX, CAPACITY_MIN, ExpertProfile, PartnerProfile
from ideaforge.profiles.services import (
    AfterCommit,
    ExpertInput,
    PartnerInput,
    add_conflict,
    conflicts,
    expert_profile,
    member_organisations,
    partner_profile,
    remove_conflict,
    save_expert_profile,
    save_partner_profile,
)
from ideaforge.validation import countries, language_choices
from ideaforge.web.auth import login_required, signed_in_user
from ideaforge.web.deps import DbSession
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values
from ideaforge.web.templating import render

EXPERT_TEXT_FIELDS = ("expertise", "keywords", "country", "organisation_id", "capacity")
CONFLICT_FIELDS = ("conflict_organisation_id", "conflict_email", "conflict_note")
PARTNER_TEXT_FIELDS = ("offers", "seeks", "sectors", "region", "contact_name", "contact_email")


def _after_commit(request: Request[Any, Any, Any]) -> AfterCommit | None:
    """The app's embedding hook, when the app has one (``app.state.profile_changed``)."""
    hook = getattr(request.app.state, "profile_changed", None)
    return hook if callable(hook) else None


async def _checked(request: Request[Any, Any, Any]) -> tuple[list[str], bool]:
    form = await request.form()
    return [v for v in form.getall("languages", []) if isinstance(v, str)], form.get("available") == "on"


def _expert_values(profile: ExpertProfile | None, user: User) -> dict[str, Any]:
    if profile is None:
        return {"country": user.country or "", "capacity": "5", "available": True,
                "languages": [user.locale] if user.locale else []}  # fmt: skip
    return {
        "expertise": profile.expertise,
        "keywords": ", ".join(profile.keyword_list),
        "languages": profile.language_list,
        "country": profile.country,
        "organisation_id": str(profile.organisation_id or ""),
        "capacity": str(profile.capacity),
        "available": profile.available,
    }


async def _expertise_page(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    user: User,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    conflict_values: dict[str, str] | None = None,
    conflict_errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response[Any]:
    user_id = user.id
    profile = await expert_profile(session, user_id)
    all_organisations = [
        (str(i), name)
        for i, name in await session.execute(
            select(Organisation.id, Organisation.name).order_by(Organisation.name)
        )
    ]
    return render(
        request,
        "profiles/expertise.html",
        {
            "profile": profile,
            "values": values if values is not None else _expert_values(profile, user),
            "errors": errors or {},
            "conflict_values": conflict_values or {},
            "conflict_errors": conflict_errors or {},
            "conflicts": await conflicts(session, user_id),
            "countries": countries(),
            "language_choices": language_choices(),
            "my_organisations": [(str(o.id), o.name) for o in await member_organisations(session, user_id)],
            "all_organisations": all_organisations,
            "capacity_min": CAPACITY_MIN,
            "capacity_max": CAPACITY_MAX,
        },
        status_code=status_code,
    )


class ExpertiseController(Controller):
    include_in_schema = False  # pages; the API lives under /api/v1
    path = "/account/expertise"

    @get("/", name="expertise", guards=[login_required])
    async def show(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        return await _expertise_page(request, db_session, signed_in_user(request))

    @post("/", guards=[login_required])
    async def save(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        user = signed_in_user(request)
        values: dict[str, Any] = dict(await form_values(request, *EXPERT_TEXT_FIELDS))
        languages, available = await _checked(request)
        values |= {"languages": languages, "available": available}
        try:
            await save_expert_profile(
                db_session, user, ExpertInput(**values), after_commit=_after_commit(request)
            )
        except ValidationFailed as exc:
            return await _expertise_page(request, db_session, user, values=values, errors=exc.errors,
                                         status_code=422)  # fmt: skip
        flash(request, _("Your expert profile has been saved."))
        return Redirect("/account/expertise", status_code=303)

    @post("/conflicts", guards=[login_required])
    async def add(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        user = signed_in_user(request)
        values = await form_values(request, *CONFLICT_FIELDS)
        try:
            await add_conflict(
                db_session,
                user,
                organisation_id=values["conflict_organisation_id"],
                email=values["conflict_email"],
                note=values["conflict_note"],
            )
        except ValidationFailed as exc:
            return await _expertise_page(request, db_session, user, conflict_values=values,
                                         conflict_errors=exc.errors, status_code=422)  # fmt: skip
        flash(request, _("The conflict of interest has been declared."))
        return Redirect("/account/expertise#conflicts", status_code=303)

    @post("/conflicts/{conflict_id:int}/delete", guards=[login_required])
    async def remove(
        self, request: Request[Any, Any, Any], db_session: DbSession, conflict_id: FromPath[int]
    ) -> Response[Any]:
        if not await remove_conflict(db_session, signed_in_user(request), conflict_id):
            raise NotFoundException()
        flash(request, _("The conflict of interest has been removed."))
        return Redirect("/account/expertise#conflicts", status_code=303)


def _partner_values(profile: PartnerProfile | None, organisation: Organisation) -> dict[str, Any]:
    if profile is None:
        return {"region": organisation.region, "cooperation": [], "listed": False}
    return {
        "listed": profile.listed,
        "offers": profile.offers,
        "seeks": profile.seeks,
        "sectors": ", ".join(profile.sector_list),
        "cooperation": profile.cooperation_list,
        "region": profile.region,
        "contact_name": profile.contact_name,
        "contact_email": profile.contact_email,
    }


async def _editable_organisation(
    request: Request[Any, Any, Any], session: AsyncSession, slug: str
) -> Organisation:
    organisation = await get_organisation(session, slug)
    if organisation is None:
        raise NotFoundException()
    if not can_edit_organisation(await role_in(session, organisation.id, signed_in_user(request))):
        raise Forbidden(_("Only the organisation's owners and admins can edit its partner profile."))
    return organisation


def _partner_page(
    request: Request[Any, Any, Any],
    organisation: Organisation,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response[Any]:
    return render(
        request,
        "profiles/partner.html",
        {
            "organisation": organisation,
            "values": values,
            "errors": errors,
            "cooperation_labels": cooperation_labels(),
        },
        status_code=status_code,
    )


class PartnerProfileController(Controller):
    include_in_schema = False  # pages; the API lives under /api/v1
    path = "/organisations/{slug:str}/partner-profile"

    @get("/", name="partner_profile", guards=[login_required])
    async def show(
        self, request: Request[Any, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Response[Any]:
        organisation = await _editable_organisation(request, db_session, slug)
        profile = await partner_profile(db_session, organisation.id)
        return _partner_page(request, organisation, _partner_values(profile, organisation), {})

    @post("/", guards=[login_required])
    async def save(
        self, request: Request[Any, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Response[Any]:
        organisation = await _editable_organisation(request, db_session, slug)
        values: dict[str, Any] = dict(await form_values(request, *PARTNER_TEXT_FIELDS))
        form = await request.form()
        values["cooperation"] = [v for v in form.getall("cooperation", []) if isinstance(v, str)]
        values["listed"] = form.get("listed") == "on"
        try:
            profile = await save_partner_profile(
                db_session, organisation, signed_in_user(request), PartnerInput(**values),
                after_commit=_after_commit(request),
            )  # fmt: skip
        except ValidationFailed as exc:
            organisation = await _editable_organisation(
                request, db_session, slug
            )  # reloaded after a rollback
            return _partner_page(request, organisation, values, exc.errors, status_code=422)
        if profile.listed:
            flash(request, _("The partner profile has been saved. %(name)s is listed as a partner.",
                             name=organisation.name))  # fmt: skip
        else:
            flash(request, _("The partner profile has been saved. %(name)s is not listed as a partner.",
                             name=organisation.name))  # fmt: skip
        return Redirect(f"/organisations/{organisation.slug}", status_code=303)
