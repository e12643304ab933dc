"""Arranging challenges for tests: an organisation with an admin, and challenges in any phase."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, ChallengeJuror, Phase
from challenges.services import create_challenge, publish_challenge
from ideaforge.accounts.models import User
from ideaforge.accounts.services import get_user_by_email
from ideaforge.organisations.models import Membership, Organisation, OrganisationKind, Role
from tests.helpers import HOSTILE

DAY = timedelta(days=1)

# Offsets (in days from "now") of submission start/end, voting start/end, review end, results end
# that put a challenge in each phase at "now"; draft is also the state of an unpublished one.
SCHEDULES: dict[Phase, tuple[int, int, int, int, int | None, int]] = {
    Phase.DRAFT: (5, 20, 20, 30, 40, 60),
    Phase.SUBMISSION: (-5, 10, 10, 20, 30, 50),
    Phase.VOTING: (-20, -10, -10, 5, 15, 30),
    Phase.REVIEW: (-30, -20, -20, -10, 5, 30),
    Phase.RESULTS: (-40, -30, -30, -20, -10, 20),
    Phase.CLOSED: (-60, -50, -50, -40, -30, -10),
}


def challenge_input(now: datetime, phase: Phase = Phase.SUBMISSION, **overrides: Any) -> dict[str, Any]:
    sub_start, sub_end, vote_start, vote_end, review_end, results_end = SCHEDULES[phase]
    raw: dict[str, Any] = {
        "title": f"How can we cut food waste? {HOSTILE}"[:140],
        "summary": "Markets throw away good food every week.",
        "description": f"Ideas **welcome**. {HOSTILE}",
        "tags": ["food", "markets"],
        "languages": ["en", "fr"],
        "country": "FR",
        "region": "Bretagne",
        "timezone": "Europe/Paris",
        "visibility": "public",
        "submission_starts_at": now + sub_start * DAY,
        "submission_ends_at": now + sub_end * DAY,
        "voting_starts_at": now + vote_start * DAY,
        "voting_ends_at": now + vote_end * DAY,
        "review_ends_at": None if review_end is None else now + review_end * DAY,
        "results_ends_at": now + results_end * DAY,
        "votes_per_user": 3,
        "who_may_submit": "signed_in",
        "edit_window_hours": 24,
        "criteria": [{"name": "Impact", "weight": 2, "scale_min": 1, "scale_max": 5},
                     {"name": "Feasibility", "weight": 1, "scale_min": 1, "scale_max": 5, "minimum_score": 2}],
    }  # fmt: skip
    return raw | overrides


@dataclass
class Org:
    organisation: Organisation
    admin: User


async def make_organisation(
    db: AsyncSession, admin: User, name: str = "Ville de Rennes", country: str = "FR"
) -> Org:
    from ideaforge.organisations.services import slugify

    organisation = Organisation(slug=slugify(name), name=name, kind=OrganisationKind.CITY, country=country)
    db.add(organisation)
    await db.flush()
    db.add(Membership(organisation_id=organisation.id, user_id=admin.id, role=Role.OWNER))
    await db.commit()
    return Org(organisation, admin)


async def add_member(db: AsyncSession, org: Org, user: User, role: Role) -> None:
    db.add(Membership(organisation_id=org.organisation.id, user_id=user.id, role=role))
    await db.commit()


async def add_juror(db: AsyncSession, challenge: Challenge, user: User) -> None:
    db.add(ChallengeJuror(challenge_id=challenge.id, user_id=user.id))
    await db.commit()


async def make_challenge(
    db: AsyncSession, org: Org, now: datetime, phase: Phase = Phase.SUBMISSION, *, publish: bool = True,
    **overrides: Any,
) -> Challenge:  # fmt: skip
    challenge = await create_challenge(
        db, org.organisation, org.admin, challenge_input(now, phase, **overrides)
    )
    if publish and phase is not Phase.DRAFT:
        await publish_challenge(db, challenge, org.admin, now)
    return challenge


async def user(db: AsyncSession, email: str) -> User:
    found = await get_user_by_email(db, email)
    assert found is not None, email
    return found
