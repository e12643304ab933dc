"""Challenge pages: the directory, a challenge, and the organisation's admin pages."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from challenges import forms
from challenges.inputs import timezones_for
from challenges.labels import phase_labels, policy_labels, policy_sentence, visibility_labels
from challenges.models import Challenge, Phase
from challenges.permissions import Role, can_see_results, permissions_for
from challenges.phases import current_phase, timeline
from challenges.services import (
    PAGE_SIZE,
    Filters,
    close_challenge,
    create_challenge,
    facets,
    is_admin,
    locked_fields,
    organisation_admin_role,
    organisation_challenges,
    override_phase,
    publish_challenge,
    search_challenges,
    update_challenge,
    visible_challenge,
)
from ideaforge.audit import history
from ideaforge.errors import Forbidden, ValidationFailed
from ideaforge.i18n import _
from ideaforge.notifications.services import is_following
from ideaforge.organisations.services import get_organisation
from ideaforge.validation import countries, country_name, language_choices
from ideaforge.web.auth import current_user, login_required, signed_in_user
from ideaforge.web.deps import DbSession
from ideaforge.web.deps import request_time as _now
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values, page_number
from ideaforge.web.templating import render


def _labels() -> dict[str, Any]:
    return {"phase_labels": phase_labels(), "policy_labels": policy_labels(),
            "visibility_labels": visibility_labels(), "country_name": country_name}  # fmt: skip


async def _visible_or_404(request: Request[Any, Any, Any], session: DbSession, challenge_id: int) -> Any:
    found = await visible_challenge(session, challenge_id, current_user(request), _now(request))
    if found is None:
        raise NotFoundException()
    return found


def _form_page(
    request: Request[Any, Any, Any], *, action: str, values: dict[str, Any], errors: dict[str, str],
    locked: dict[str, str], challenge: Challenge | None, organisation_name: str, status_code: int = 200,
) -> Response[Any]:  # fmt: skip
    return render(request, "challenges/form.html", {
        "action": action, "values": values, "errors": errors, "locked": locked, "challenge": challenge,
        "organisation_name": organisation_name, "criteria_rows": forms.with_blank_criteria(values),
        "countries": countries(), "timezones": timezones_for(str(values.get("country") or "FR")),
        "language_choices": language_choices(), **_labels(),
    }, status_code=status_code)  # fmt: skip


MEANING_CANDIDATES = 500


async def _by_meaning(request: Request[Any, Any, Any], session: DbSession, filters: Filters, now: Any,
                      page: int) -> tuple[list[Any], int]:  # fmt: skip
    """The filtered directory ranked by closeness in meaning to the search text (the app's embedding
    service, registered as ``meaning_search``: this package knows no model)."""
    candidates, _total = await search_challenges(session, replace(filters, q=""), now, page=1,
                                                 page_size=MEANING_CANDIDATES)  # fmt: skip
    ranked = await request.app.state.meaning_search(session, filters.q, candidates)
    by_id = {c.id: c for c in candidates}
    ordered = [by_id[i] for i in ranked if i in by_id]
    return ordered[(page - 1) * PAGE_SIZE : page * PAGE_SIZE], len(ordered)


class ChallengeController(Controller):
    include_in_schema = False  # pages; the API lives under /api/v1
    path = "/challenges"

    @get("/", name="challenges")
    async def directory(
        self, request: Request[Any, Any, Any], db_session: DbSession,
        q: FromQuery[str] = "", phase: FromQuery[str] = "", country: FromQuery[str] = "",
        organisation: FromQuery[str] = "", tag: FromQuery[str] = "", language: FromQuery[str] = "",
        page: FromQuery[str | None] = None, meaning: FromQuery[str] = "",
    ) -> Response[Any]:  # fmt: skip
        filters = Filters(q=q[:200], phase=phase, country=country, organisation=organisation, tag=tag,
                          language=language, meaning="1" if meaning else "")  # fmt: skip
        number = page_number(page)
        now = _now(request)
        if filters.meaning and filters.q.strip():
            found, total = await _by_meaning(request, db_session, filters, now, number)
        else:
            found, total = await search_challenges(db_session, filters, now, page=number)
        return render(request, "challenges/directory.html", {
            "challenges": found, "total": total, "page": number, "pages": max(1, math.ceil(total / PAGE_SIZE)),
            "filters": filters, "facets": await facets(db_session, now), "now": now, "current_phase": current_phase,
            "language_choices": language_choices(), **_labels(),
        }, block="results")  # fmt: skip

    @get("/{challenge_id:int}", name="challenge")
    async def detail(self, request: Request[Any, Any, Any], db_session: DbSession,
                     challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        challenge, access = await _visible_or_404(request, db_session, challenge_id)
        now = _now(request)
        return render(request, "challenges/detail.html", {
            "challenge": challenge, "phase": current_phase(challenge, now), "timeline": timeline(challenge),
            "active": access.phases, "permissions": permissions_for(access), "is_admin": is_admin(access),
            "user_is_anonymous": current_user(request) is None, "languages": dict(language_choices()),
            "policy_sentence": policy_sentence(challenge.who_may_submit, challenge.organisation.name),
            "follow_type": "challenge", "follow_id": challenge.id,
            "following": await is_following(db_session, current_user(request), "challenge", challenge.id),
            "is_juror": Role.JUROR in access.roles,
            "winners": await request.app.state.published_winners(db_session, challenge.id)
            if challenge.results_published_at is not None and can_see_results(access) else [],
            **_labels(),
        })  # fmt: skip

    @get("/{challenge_id:int}/edit", guards=[login_required])
    async def edit_form(self, request: Request[Any, Any, Any], db_session: DbSession,
                        challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        challenge, access = await _visible_or_404(request, db_session, challenge_id)
        if not is_admin(access):
            raise Forbidden(_("Only the organisation's owners and admins can edit its challenges."))
        return _form_page(request, action=f"/challenges/{challenge.id}/edit", values=forms.values_of(challenge),
                          errors={}, locked=locked_fields(challenge, _now(request)), challenge=challenge,
                          organisation_name=challenge.organisation.name)  # fmt: skip

    @post("/{challenge_id:int}/edit", guards=[login_required])
    async def edit(self, request: Request[Any, Any, Any], db_session: DbSession,
                   challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        challenge, _access = await _visible_or_404(request, db_session, challenge_id)
        now = _now(request)
        locked = locked_fields(challenge, now)
        raw = await forms.submitted(request, skip=frozenset(locked))
        try:
            await update_challenge(db_session, challenge, user, raw, now)
        except ValidationFailed as exc:
            await db_session.rollback()
            challenge, _access = await _visible_or_404(request, db_session, challenge_id)
            return _form_page(request, action=f"/challenges/{challenge_id}/edit",
                              values=forms.form_values(raw, forms.values_of(challenge)), errors=exc.errors,
                              locked=locked, challenge=challenge, organisation_name=challenge.organisation.name,
                              status_code=422)  # fmt: skip
        flash(request, _("The challenge has been saved."))
        return Redirect(f"/challenges/{challenge_id}", status_code=303)

    @post("/{challenge_id:int}/publish", guards=[login_required])
    async def publish(self, request: Request[Any, Any, Any], db_session: DbSession,
                      challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        challenge, _access = await _visible_or_404(request, db_session, challenge_id)
        await publish_challenge(db_session, challenge, user, _now(request))
        flash(request, _("The challenge is published."))
        return Redirect(f"/challenges/{challenge_id}", status_code=303)

    @get("/{challenge_id:int}/phase", guards=[login_required])
    async def phase_form(self, request: Request[Any, Any, Any], db_session: DbSession,
                         challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        return await self._phase_page(request, db_session, challenge_id, {}, {})

    async def _phase_page(self, request: Request[Any, Any, Any], session: DbSession, challenge_id: int,
                          values: dict[str, str], errors: dict[str, str], status_code: int = 200,
                          template: str = "challenges/phase.html") -> Response[Any]:  # fmt: skip
        challenge, access = await _visible_or_404(request, session, challenge_id)
        if not is_admin(access):
            raise Forbidden(_("Only the organisation's owners and admins can manage this challenge."))
        return render(request, template, {
            "challenge": challenge, "phase": current_phase(challenge, _now(request)), "values": values,
            "errors": errors, "history": await history(session, "challenge", challenge.id), "phases": list(Phase),
            **_labels(),
        }, status_code=status_code)  # fmt: skip

    @post("/{challenge_id:int}/phase", guards=[login_required])
    async def override(self, request: Request[Any, Any, Any], db_session: DbSession,
                       challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        challenge, _access = await _visible_or_404(request, db_session, challenge_id)
        values = await form_values(request, "phase", "reason")
        try:
            await override_phase(db_session, challenge, user, values["phase"], values["reason"], _now(request),
                                 request.app.state.notifier)  # fmt: skip
        except ValidationFailed as exc:
            return await self._phase_page(request, db_session, challenge_id, values, exc.errors, 422)
        flash(request, _("The phase has been changed; the change is in the audit log."))
        return Redirect(f"/challenges/{challenge_id}", status_code=303)

    @get("/{challenge_id:int}/close", guards=[login_required])
    async def close_form(self, request: Request[Any, Any, Any], db_session: DbSession,
                         challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        return await self._phase_page(
            request, db_session, challenge_id, {}, {}, template="challenges/close.html"
        )

    @post("/{challenge_id:int}/close", guards=[login_required])
    async def close(self, request: Request[Any, Any, Any], db_session: DbSession,
                    challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        challenge, _access = await _visible_or_404(request, db_session, challenge_id)
        values = await form_values(request, "reason")
        try:
            await close_challenge(db_session, challenge, user, values["reason"], _now(request),
                                  request.app.state.notifier)  # fmt: skip
        except ValidationFailed as exc:
            return await self._phase_page(request, db_session, challenge_id, values, exc.errors, 422,
                                          template="challenges/close.html")  # fmt: skip
        flash(request, _("The challenge is closed."))
        return Redirect(f"/challenges/{challenge_id}", status_code=303)


class OrganisationChallengesController(Controller):
    include_in_schema = False
    path = "/organisations/{slug:str}/challenges"

    @get("/", name="organisation_challenges")
    async def listing(self, request: Request[Any, Any, Any], db_session: DbSession,
                      slug: FromPath[str]) -> Response[Any]:  # fmt: skip
        organisation = await get_organisation(db_session, slug)
        if organisation is None:
            raise NotFoundException()
        user = current_user(request)
        admin = user is not None and await organisation_admin_role(db_session, organisation.id, user)
        now = _now(request)
        listed = [
            c for c in await organisation_challenges(db_session, organisation.id, include_drafts=admin)
            if admin or (c.visibility == "public" and current_phase(c, now) is not Phase.DRAFT)
        ]  # fmt: skip
        return render(request, "challenges/organisation.html", {
            "organisation": organisation, "challenges": listed, "is_admin": admin, "now": now,
            "current_phase": current_phase, **_labels(),
        }, block="org_challenges")  # fmt: skip


class NewChallengeController(Controller):
    include_in_schema = False
    path = "/organisations/{slug:str}/challenges/new"

    async def _organisation(self, session: DbSession, slug: str) -> Any:
        organisation = await get_organisation(session, slug)
        if organisation is None:
            raise NotFoundException()
        return organisation

    @get("/", guards=[login_required], name="new_challenge")
    async def new_form(self, request: Request[Any, Any, Any], db_session: DbSession,
                       slug: FromPath[str]) -> Response[Any]:  # fmt: skip
        organisation = await self._organisation(db_session, slug)
        user = signed_in_user(request)
        if not await organisation_admin_role(db_session, organisation.id, user):
            raise Forbidden(_("Only the organisation's owners and admins can create its challenges."))
        return _form_page(request, action=f"/organisations/{slug}/challenges/new",
                          values=forms.defaults(organisation.country, _now(request)), errors={}, locked={},
                          challenge=None, organisation_name=organisation.name)  # fmt: skip

    @post("/", guards=[login_required])
    async def create(self, request: Request[Any, Any, Any], db_session: DbSession,
                     slug: FromPath[str]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        organisation = await self._organisation(db_session, slug)
        raw = await forms.submitted(request)
        try:
            challenge = await create_challenge(db_session, organisation, user, raw)
        except ValidationFailed as exc:
            return _form_page(request, action=f"/organisations/{slug}/challenges/new",
                              values=forms.form_values(raw, forms.defaults(organisation.country, _now(request))),
                              errors=exc.errors, locked={}, challenge=None, organisation_name=organisation.name,
                              status_code=422)  # fmt: skip
        flash(request, _("The challenge is saved as a draft. Publish it when it is ready."))
        return Redirect(f"/challenges/{challenge.id}", status_code=303)
