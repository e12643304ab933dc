"""Organisation pages: directory, creation, organisation page, invitations."""

from __future__ import annotations

import math
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from ideaforge.errors import Forbidden, ValidationFailed
from ideaforge.i18n import _, get_locale
from ideaforge.organisations.models import Organisation, OrganisationKind, Role
from ideaforge.organisations.permissions import can_edit_organisation, can_invite_members
from ideaforge.organisations.services import (
    PAGE_SIZE,
    OrganisationInput,
    accept_invitation,
    create_organisation,
    find_invitation,
    get_organisation,
    invitation_problem,
    invite_member,
    list_organisations,
    members,
    role_in,
)
from ideaforge.organisations.tasks import send_invitation
from ideaforge.profiles.labels import cooperation_labels
from ideaforge.profiles.services import partner_profile
from ideaforge.validation import countries, country_name
from ideaforge.web.auth import current_user, login_required, signed_in_user
from ideaforge.web.deps import DbSession
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values, page_number
from ideaforge.web.templating import render

ORG_FIELDS = ("name", "kind", "country", "region", "description", "website")


def kind_labels() -> dict[str, str]:
    return {
        OrganisationKind.CITY: _("City"),
        OrganisationKind.COMPANY: _("Company"),
        OrganisationKind.UNIVERSITY: _("University"),
        OrganisationKind.ASSOCIATION: _("Association"),
        OrganisationKind.LAB: _("Lab"),
    }


def role_labels() -> dict[str, str]:
    return {
        Role.OWNER: _("Owner"),
        Role.ADMIN: _("Admin"),
        Role.MODERATOR: _("Moderator"),
        Role.MEMBER: _("Member"),
    }


async def _organisation_or_404(session: AsyncSession, slug: str) -> Organisation:
    organisation = await get_organisation(session, slug)
    if organisation is None:
        raise NotFoundException()
    return organisation


def _new_form(
    request: Request[Any, Any, Any], values: dict[str, str], errors: dict[str, str], status_code: int = 200
) -> Response[Any]:
    return render(
        request,
        "organisations/new.html",
        {"values": values, "errors": errors, "countries": countries(), "kind_labels": kind_labels()},
        status_code=status_code,
    )


async def _organisation_page(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    organisation: Organisation,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response[Any]:
    """The organisation page; an htmx invitation form gets back just the members block."""
    role = await role_in(session, organisation.id, current_user(request))
    return render(
        request,
        "organisations/detail.html",
        {
            "organisation": organisation,
            "members": await members(session, organisation.id),
            "role": role,
            "can_invite": can_invite_members(role),
            "can_edit": can_edit_organisation(role),
            "partner": await partner_profile(session, organisation.id),
            "cooperation_labels": cooperation_labels(),
            "kind_labels": kind_labels(),
            "role_labels": role_labels(),
            "country_name": country_name,
            "values": values or {},
            "errors": errors or {},
        },
        block="members",
        status_code=status_code,
    )


class OrganisationController(Controller):
    include_in_schema = False  # pages; the API lives under /api/v1
    path = "/organisations"

    @get("/", name="organisations")
    async def directory(
        self, request: Request[Any, Any, Any], db_session: DbSession, page: FromQuery[str | None] = None
    ) -> Response[Any]:
        number = page_number(page)
        organisations, total = await list_organisations(db_session, page=number)
        return render(
            request,
            "organisations/list.html",
            {
                "organisations": organisations,
                "page": number,
                "pages": max(1, math.ceil(total / PAGE_SIZE)),
                "total": total,
                "kind_labels": kind_labels(),
                "country_name": country_name,
            },
        )

    @get("/new", name="new_organisation", guards=[login_required])
    async def new_form(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return _new_form(request, {}, {})

    @post("/new", guards=[login_required])
    async def create(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        user = signed_in_user(request)
        values = await form_values(request, *ORG_FIELDS)
        try:
            organisation = await create_organisation(db_session, user, OrganisationInput(**values))
        except ValidationFailed as exc:
            return _new_form(request, values, exc.errors, status_code=422)
        flash(request, _("%(name)s has been created. You are its owner.", name=organisation.name))
        return Redirect(f"/organisations/{organisation.slug}", status_code=303)

    @get("/{slug:str}", name="organisation")
    async def detail(
        self, request: Request[Any, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Response[Any]:
        return await _organisation_page(request, db_session, await _organisation_or_404(db_session, slug))

    @post("/{slug:str}/invitations", guards=[login_required])
    async def invite(
        self, request: Request[Any, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Response[Any]:
        user = signed_in_user(request)
        organisation = await _organisation_or_404(db_session, slug)
        values = await form_values(request, "email", "role")
        try:
            invitation, token = await invite_member(db_session, organisation, user, **values)
        except ValidationFailed as exc:
            return await _organisation_page(
                request, db_session, organisation, values=values, errors=exc.errors, status_code=422
            )
        settings = request.app.state.settings
        send_invitation(
            request.app.state.jobs,
            sender=settings.mail_from,
            to=invitation.email,
            organisation_name=organisation.name,
            inviter_name=user.display_name,
            link=f"{settings.base_url.rstrip('/')}/invitations/{token}",
            locale=get_locale(),
        )
        flash(request, _("Invitation sent to %(email)s.", email=invitation.email))
        return Redirect(f"/organisations/{organisation.slug}", status_code=303)


class InvitationController(Controller):
    include_in_schema = False  # pages; the API lives under /api/v1
    path = "/invitations"

    @get("/{token:str}", name="invitation")
    async def show(
        self, request: Request[Any, Any, Any], db_session: DbSession, token: FromPath[str]
    ) -> Response[Any]:
        invitation = await find_invitation(db_session, token)
        problem = invitation_problem(invitation, current_user(request))
        return render(
            request,
            "organisations/invitation.html",
            {
                "invitation": invitation,
                "problem": problem,
                "token": token,
                "role_labels": role_labels(),
            },
            status_code=200 if problem is None else 403 if invitation else 404,
        )

    @post("/{token:str}", guards=[login_required])
    async def accept(
        self, request: Request[Any, Any, Any], db_session: DbSession, token: FromPath[str]
    ) -> Response[Any]:
        user = signed_in_user(request)
        try:
            organisation = await accept_invitation(db_session, token, user)
        except Forbidden as exc:
            flash(request, exc.message, "error")
            return Redirect(f"/invitations/{token}", status_code=303)
        flash(request, _("Welcome to %(name)s!", name=organisation.name))
        return Redirect(f"/organisations/{organisation.slug}", status_code=303)
