"""Challenge endpoints of the JSON API."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED
from msgspec import UNSET, UnsetType

from challenges.models import Challenge
from challenges.permissions import Access, permissions_for
from challenges.phases import current_phase, timeline
from challenges.services import (
    PAGE_SIZE,
    Filters,
    create_challenge,
    search_challenges,
    update_challenge,
    visible_challenge,
)
from ideaforge.errors import ValidationFailed
from ideaforge.i18n import _
from ideaforge.organisations.services import get_organisation
from ideaforge.web.auth import current_user, login_required, signed_in_user
from ideaforge.web.deps import DbSession, request_time
from ideaforge.web.errors import problems
from ideaforge.web.forms import page_number


class CriterionIn(msgspec.Struct):
    name: str
    description: str = ""
    weight: float = 1.0
    scale_min: int = 1
    scale_max: int = 5
    minimum_score: int | None = None


class ChallengeChanges(msgspec.Struct, omit_defaults=True):
    """Fields to set; a field left out is left as it is. Datetimes are ISO 8601."""

    title: str | UnsetType = UNSET
    summary: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET
    languages: list[str] | UnsetType = UNSET
    country: str | UnsetType = UNSET
    region: str | UnsetType = UNSET
    timezone: str | UnsetType = UNSET
    visibility: str | UnsetType = UNSET
    open_to_partners: bool | UnsetType = UNSET
    reward: str | UnsetType = UNSET
    submission_starts_at: datetime | UnsetType = UNSET
    submission_ends_at: datetime | UnsetType = UNSET
    voting_starts_at: datetime | UnsetType = UNSET
    voting_ends_at: datetime | UnsetType = UNSET
    review_ends_at: datetime | UnsetType | None = UNSET
    results_ends_at: datetime | UnsetType = UNSET
    votes_per_user: int | UnsetType | None = UNSET
    authors_may_vote_own: bool | UnsetType = UNSET
    who_may_submit: str | UnsetType = UNSET
    edit_window_hours: int | UnsetType = UNSET
    shortlist_size: int | UnsetType = UNSET
    jurors_per_idea: int | UnsetType = UNSET
    blind_review: bool | UnsetType = UNSET
    criteria: list[CriterionIn] | UnsetType = UNSET

    def given(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if value is UNSET:
                continue
            out[name] = [msgspec.structs.asdict(c) for c in value] if name == "criteria" else value
        return out


class ChallengeCreate(ChallengeChanges, omit_defaults=True):
    organisation: str = ""
    """The slug of the organisation that runs the challenge."""


class PhaseOut(msgspec.Struct):
    name: str
    starts_at: datetime | None
    ends_at: datetime | None


class OrganisationRef(msgspec.Struct):
    slug: str
    name: str
    country: str


class ChallengeOut(msgspec.Struct):
    id: int
    title: str
    summary: str
    description: str
    organisation: OrganisationRef
    country: str
    region: str
    timezone: str
    tags: list[str]
    languages: list[str]
    visibility: str
    open_to_partners: bool
    reward: str
    published: bool
    phase: str
    phases: list[PhaseOut]
    rules: dict[str, Any]
    jury: dict[str, Any]
    permissions: dict[str, bool] | None = None


class ChallengePage(msgspec.Struct):
    items: list[ChallengeOut]
    total: int
    page: int
    pages: int


def challenge_out(challenge: Challenge, now: datetime, access: Access | None = None) -> ChallengeOut:
    org = challenge.organisation
    return ChallengeOut(
        id=challenge.id, title=challenge.title, summary=challenge.summary, description=challenge.description,
        organisation=OrganisationRef(slug=org.slug, name=org.name, country=org.country),
        country=challenge.country, region=challenge.region, timezone=challenge.timezone,
        tags=[t.tag for t in challenge.tags], languages=challenge.language_list,
        visibility=challenge.visibility.value, open_to_partners=challenge.open_to_partners,
        reward=challenge.reward, published=challenge.published_at is not None,
        phase=current_phase(challenge, now).value,
        phases=[PhaseOut(s.phase.value, s.starts_at, s.ends_at) for s in timeline(challenge)],
        rules={"votes_per_user": challenge.votes_per_user, "authors_may_vote_own": challenge.authors_may_vote_own,
               "who_may_submit": challenge.who_may_submit.value, "edit_window_hours": challenge.edit_window_hours},
        jury={"review": challenge.review_ends_at is not None, "shortlist_size": challenge.shortlist_size,
              "jurors_per_idea": challenge.jurors_per_idea, "blind_review": challenge.blind_review,
              "criteria": [{"name": c.name, "description": c.description, "weight": c.weight,
                            "scale_min": c.scale_min, "scale_max": c.scale_max, "minimum_score": c.minimum_score}
                           for c in challenge.criteria]},
        permissions={k.value: v for k, v in permissions_for(access).items()} if access else None,
    )  # fmt: skip


class ChallengeApi(Controller):
    path = "/api/v1/challenges"
    tags = ["challenges"]  # noqa: RUF012  # Litestar reads a class attribute

    @get("/", summary="The public directory of challenges, filtered and paginated", responses=problems(400))
    async def list_challenges(
        self, request: Request[Any, Any, Any], db_session: DbSession,
        q: FromQuery[str] = "", phase: FromQuery[str] = "", country: FromQuery[str] = "",
        organisation: FromQuery[str] = "", tag: FromQuery[str] = "", language: FromQuery[str] = "",
        page: FromQuery[str | None] = None,
    ) -> ChallengePage:  # fmt: skip
        now = request_time(request)
        number = page_number(page)
        filters = Filters(q=q[:200], phase=phase, country=country, organisation=organisation, tag=tag,
                          language=language)  # fmt: skip
        found, total = await search_challenges(db_session, filters, now, page=number)
        return ChallengePage(items=[challenge_out(c, now) for c in found], total=total, page=number,
                             pages=max(1, math.ceil(total / PAGE_SIZE)))  # fmt: skip

    @get(
        "/{challenge_id:int}",
        summary="One challenge, with what the caller may do in it now",
        responses=problems(400, 404),
    )
    async def get_challenge(
        self, request: Request[Any, Any, Any], db_session: DbSession, challenge_id: FromPath[int]
    ) -> ChallengeOut:
        now = request_time(request)
        found = await visible_challenge(db_session, challenge_id, current_user(request), now)
        if found is None:
            raise NotFoundException()
        challenge, access = found
        return challenge_out(challenge, now, access)

    @post("/", status_code=HTTP_201_CREATED, guards=[login_required],
          summary="Create a challenge (as a draft) for an organisation you administer",
          responses=problems(400, 401, 403, 422))  # fmt: skip
    async def create(
        self, request: Request[Any, Any, Any], db_session: DbSession, data: JSONBody[ChallengeCreate]
    ) -> ChallengeOut:
        user = signed_in_user(request)
        organisation = await get_organisation(db_session, data.organisation) if data.organisation else None
        if organisation is None:
            raise ValidationFailed({"organisation": _("Name an existing organisation by its slug.")})
        challenge = await create_challenge(db_session, organisation, user, data.given())
        return await self._reloaded(request, db_session, challenge.id)

    @patch(
        "/{challenge_id:int}",
        guards=[login_required],
        summary="Change some fields of a challenge",
        responses=problems(400, 401, 403, 404, 422),
    )
    async def update(
        self, request: Request[Any, Any, Any], db_session: DbSession, challenge_id: FromPath[int],
        data: JSONBody[ChallengeChanges],
    ) -> ChallengeOut:  # fmt: skip
        user = signed_in_user(request)
        now = request_time(request)
        found = await visible_challenge(db_session, challenge_id, user, now)
        if found is None:
            raise NotFoundException()
        await update_challenge(db_session, found[0], user, data.given(), now)
        return await self._reloaded(request, db_session, challenge_id)

    @staticmethod
    async def _reloaded(
        request: Request[Any, Any, Any], session: DbSession, challenge_id: int
    ) -> ChallengeOut:
        session.expunge_all()
        now = request_time(request)
        found = await visible_challenge(session, challenge_id, current_user(request), now)
        assert found is not None
        return challenge_out(found[0], now, found[1])
