"""Arrangements shared by the challenge page and API tests."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, Phase
from challenges.services import get_challenge
from tests.challenge_helpers import (
    Org,
    challenge_input,
    make_challenge,
    make_organisation,
    user,
)
from tests.helpers import (
    HOSTILE,
    STRONG_PASSWORD,
    Registration,
    csrf_token,
    register,
)

PROBLEM = "application/problem+json"
NEW = "/organisations/ville-de-rennes/challenges/new"
# The form's dates are read in Europe/Paris; at this instant the challenge below takes ideas.
DURING_SUBMISSION = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
FORM_TITLE = f"Cleaner markets for Rennes? {HOSTILE}"


def form_fields(**overrides: str | list[str]) -> dict[str, str | list[str]]:
    """The new-challenge form as a browser sends it."""
    fields: dict[str, str | list[str]] = {
        "title": FORM_TITLE,
        "summary": "Stalls throw away good food every week.",
        "description": "Ideas **welcome**.",
        "tags": "Food, markets",
        "languages": ["en", "fr"],
        "country": "FR",
        "region": "Bretagne",
        "timezone": "Europe/Paris",
        "visibility": "public",
        "open_to_partners": "on",
        "reward": "",
        "submission_starts_at": "2026-12-01T09:00",
        "submission_ends_at": "2026-12-29T18:00",
        "voting_starts_at": "2026-12-15T09:00",
        "voting_ends_at": "2027-01-12T18:00",
        "review_ends_at": "2027-01-26T18:00",
        "results_ends_at": "2027-03-01T18:00",
        "votes_per_user": "3",
        "who_may_submit": "signed_in",
        "edit_window_hours": "24",
        "shortlist_size": "10",
        "jurors_per_idea": "3",
        "blind_review": "on",
        "criteria_rows": "3",
        "criteria-0-name": "Impact",
        "criteria-0-description": "",
        "criteria-0-weight": "2",
        "criteria-0-scale_min": "1",
        "criteria-0-scale_max": "5",
        "criteria-0-minimum_score": "",
        "criteria-1-name": "Feasibility",
        "criteria-1-description": "Can the city do it?",
        "criteria-1-weight": "0,5",
        "criteria-1-scale_min": "0",
        "criteria-1-scale_max": "10",
        "criteria-1-minimum_score": "4",
        "criteria-2-name": "",  # the form's blank row
        "criteria-2-description": "",
        "criteria-2-weight": "1",
        "criteria-2-scale_min": "1",
        "criteria-2-scale_max": "5",
        "criteria-2-minimum_score": "",
    }
    return fields | overrides


async def post_fields(client: Any, url: str, fields: dict[str, str | list[str]]) -> Any:
    """Like ``post_form``, with repeated fields (checkbox groups) as lists."""
    if "csrftoken" not in client.cookies:
        await client.get("/")
    return await client.post(url, data={**fields, "_csrf_token": csrf_token(client)}, follow_redirects=False)


async def organiser(client: Any, db: AsyncSession) -> tuple[Registration, Org]:
    """Someone signed in who owns the organisation "Ville de Rennes"."""
    who = await register(client)
    return who, await make_organisation(db, await user(db, who.email))


async def create_through_form(client: Any, **overrides: str | list[str]) -> int:
    response = await post_fields(client, NEW, form_fields(**overrides))
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/challenges/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


async def challenge_count(db: AsyncSession) -> int:
    return await db.scalar(select(func.count()).select_from(Challenge)) or 0


async def stored(db: AsyncSession, challenge_id: int) -> Challenge:
    """The challenge as it is in the database now (not as this session last saw it)."""
    db.expunge_all()
    found = await get_challenge(db, challenge_id)
    assert found is not None
    return found


def listed(html: str) -> list[int]:
    """The challenges shown as cards, in order."""
    return [int(n) for n in re.findall(r'data-challenge="(\d+)"', html)]


def phase_badge(html: str) -> str:
    match = re.search(r'<p class="phase phase-\w+">(.*?)</p>', html)
    assert match, "no phase shown"
    return match.group(1)


async def bearer(client: Any, email: str) -> dict[str, str]:
    response = await client.post("/api/v1/tokens", json={"email": email, "password": STRONG_PASSWORD})
    assert response.status_code == 201, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


def api_payload(now: datetime, organisation: str = "ville-de-rennes", **overrides: Any) -> dict[str, Any]:
    raw = challenge_input(now, Phase.SUBMISSION, **overrides)
    as_json = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in raw.items()}
    return as_json | {"organisation": organisation}


def problem_fields(response: Any) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


async def two_challenges(client: Any, db: AsyncSession, now: datetime) -> tuple[Challenge, Challenge]:
    """A French challenge taking ideas in Rennes, a Spanish one in the vote in Barcelona."""
    who = await register(client)
    admin = await user(db, who.email)
    rennes = await make_organisation(db, admin, "Ville de Rennes", "FR")
    barcelona = await make_organisation(db, admin, "Ajuntament de Barcelona", "ES")
    markets = await make_challenge(
        db,
        rennes,
        now,
        Phase.SUBMISSION,
        title="Des marchés plus propres",
        tags=["food"],
        languages=["fr", "en"],
    )
    bicycles = await make_challenge(
        db, barcelona, now, Phase.VOTING, title="Safer bicycle lanes", summary="Cycling across the city.",
        description="Routes for everyone.", tags=["mobility"], languages=["es", "ca"], country="ES",
        region="Catalunya", timezone="Europe/Madrid",
    )  # fmt: skip
    return markets, bicycles


FILTERS = [
    pytest.param("q", "MARCHES", "markets", id="search-ignores-case-and-accents"),
    pytest.param("phase", "voting", "bicycles", id="phase"),
    pytest.param("country", "ES", "bicycles", id="country"),
    pytest.param("organisation", "ville-de-rennes", "markets", id="organisation"),
    pytest.param("tag", "mobility", "bicycles", id="tag"),
    pytest.param("language", "ca", "bicycles", id="language"),
]
