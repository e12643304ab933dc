"""The challenge API: listing, reading, creating and patching."""

from __future__ import annotations

from datetime import datetime

import pytest

from challenges.models import Phase
from tests.challenge_helpers import DAY, challenge_input, make_challenge
from tests.challenges.support import (
    FILTERS,
    PROBLEM,
    api_payload,
    bearer,
    challenge_count,
    organiser,
    problem_fields,
    stored,
    two_challenges,
)
from tests.helpers import logout, register

# --- the API: reading ----------------------------------------------------------------------------


async def test_the_api_lists_published_public_challenges(client, db, clock):
    now = clock.now()
    _who, org = await organiser(client, db)
    public = await make_challenge(db, org, now, Phase.SUBMISSION)
    await make_challenge(db, org, now, Phase.SUBMISSION, publish=False, title="Not ready")
    await make_challenge(db, org, now, Phase.SUBMISSION, visibility="unlisted", title="By link only")
    body = (await client.get("/api/v1/challenges")).json()
    assert body["total"] == 1
    [item] = body["items"]
    assert item["id"] == public.id
    assert item["title"] == public.title, "JSON carries the text as typed"
    assert item["organisation"] == {"slug": "ville-de-rennes", "name": "Ville de Rennes", "country": "FR"}
    assert item["country"] == "FR"
    assert item["phase"] == "submission"
    assert [p["name"] for p in item["phases"]] == [
        "draft",
        "submission",
        "voting",
        "review",
        "results",
        "closed",
    ]
    submission = item["phases"][1]
    assert datetime.fromisoformat(submission["starts_at"]) == now - 5 * DAY
    assert datetime.fromisoformat(submission["ends_at"]) == now + 10 * DAY
    assert item["phases"][0]["starts_at"] is None
    assert item["phases"][-1]["ends_at"] is None


@pytest.mark.parametrize(("name", "value", "expected"), FILTERS)
async def test_each_api_filter_narrows_the_list(client, db, clock, name, value, expected):
    markets, bicycles = await two_challenges(client, db, clock.now())
    everything = (await client.get("/api/v1/challenges")).json()
    assert sorted(item["id"] for item in everything["items"]) == sorted([markets.id, bicycles.id])
    wanted = {"markets": markets, "bicycles": bicycles}[expected]
    body = (await client.get("/api/v1/challenges", params={name: value})).json()
    assert [item["id"] for item in body["items"]] == [wanted.id]
    assert body["total"] == 1


async def test_the_api_gives_the_callers_permissions(client, db, clock):
    _who, org = await organiser(client, db)
    challenge = await make_challenge(db, org, clock.now(), Phase.SUBMISSION)
    await logout(client)
    citizen = await register(client)
    anonymous = (await client.get(f"/api/v1/challenges/{challenge.id}")).json()["permissions"]
    signed_in = (
        await client.get(f"/api/v1/challenges/{challenge.id}", headers=await bearer(client, citizen.email))
    ).json()["permissions"]
    assert anonymous["view"] is True
    assert anonymous["submit_idea"] is False
    assert signed_in["submit_idea"] is True
    assert anonymous["vote"] is signed_in["vote"] is False, "voting has not started"


async def test_a_draft_is_not_found_by_anonymous_api_callers(client, db, clock):
    who, org = await organiser(client, db)
    draft = await make_challenge(db, org, clock.now(), publish=False)
    anonymous = await client.get(f"/api/v1/challenges/{draft.id}")
    assert anonymous.status_code == 404
    assert anonymous.headers["content-type"].startswith(PROBLEM)
    admin = await client.get(f"/api/v1/challenges/{draft.id}", headers=await bearer(client, who.email))
    assert admin.status_code == 200
    assert admin.json()["phase"] == "draft"


# --- the API: creating and changing ----------------------------------------------------------------


async def test_an_admin_creates_a_draft_through_the_api(client, db, clock):
    who, _org = await organiser(client, db)
    auth = await bearer(client, who.email)
    response = await client.post("/api/v1/challenges", json=api_payload(clock.now()), headers=auth)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["published"] is False
    assert body["phase"] == "draft"
    assert body["title"] == challenge_input(clock.now())["title"]
    assert body["organisation"]["slug"] == "ville-de-rennes"
    assert [c["name"] for c in body["jury"]["criteria"]] == ["Impact", "Feasibility"]
    assert (await client.get(f"/api/v1/challenges/{body['id']}")).status_code == 404, "a draft, for now"
    assert await challenge_count(db) == 1


async def test_a_non_admin_cannot_create_through_the_api(client, db, clock):
    await organiser(client, db)
    await logout(client)
    citizen = await register(client)
    auth = await bearer(client, citizen.email)
    response = await client.post("/api/v1/challenges", json=api_payload(clock.now()), headers=auth)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["detail"] == "Only the organisation's owners and admins can create its challenges."
    assert await challenge_count(db) == 0


async def test_creating_needs_a_token(client, db, clock):
    await organiser(client, db)  # signed in on the pages: no use to the API
    response = await client.post("/api/v1/challenges", json=api_payload(clock.now()))
    assert response.status_code == 401
    assert await challenge_count(db) == 0


async def test_creating_for_an_unknown_organisation_is_a_422_naming_it(client, db, clock):
    who, _org = await organiser(client, db)
    auth = await bearer(client, who.email)
    payload = api_payload(clock.now(), organisation="nowhere")
    response = await client.post("/api/v1/challenges", json=payload, headers=auth)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert problem_fields(response) == {"organisation"}
    assert await challenge_count(db) == 0


async def test_invalid_fields_through_the_api_are_a_422_naming_them(client, db, clock):
    who, _org = await organiser(client, db)
    auth = await bearer(client, who.email)
    now = clock.now()
    payload = api_payload(
        now, title="", languages=[], voting_ends_at=(now - 30 * DAY).isoformat(),
        criteria=[{"name": "Impact", "weight": 0}],
    )  # fmt: skip
    response = await client.post("/api/v1/challenges", json=payload, headers=auth)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert problem_fields(response) == {"title", "languages", "voting_ends_at", "criteria-0-weight"}
    assert await challenge_count(db) == 0


async def test_a_wrong_type_through_the_api_is_a_422_not_a_crash(client, db, clock):
    who, _org = await organiser(client, db)
    auth = await bearer(client, who.email)
    payload = api_payload(clock.now(), votes_per_user="many")
    response = await client.post("/api/v1/challenges", json=payload, headers=auth)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "votes_per_user" in response.text
    assert await challenge_count(db) == 0


async def test_a_patch_changes_only_the_fields_given(client, db, clock):
    who, org = await organiser(client, db)
    challenge = await make_challenge(db, org, clock.now(), Phase.SUBMISSION)
    auth = await bearer(client, who.email)
    response = await client.patch(
        f"/api/v1/challenges/{challenge.id}", json={"title": "Less food in the bin"}, headers=auth
    )
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "Less food in the bin"
    after = (await client.get(f"/api/v1/challenges/{challenge.id}")).json()
    assert after["title"] == "Less food in the bin"
    assert after["tags"] == ["food", "markets"]
    assert after["summary"] == challenge.summary
    assert after["rules"]["votes_per_user"] == 3
    assert [c["name"] for c in after["jury"]["criteria"]] == ["Impact", "Feasibility"]


async def test_an_invalid_patch_is_a_422_and_changes_nothing(client, db, clock):
    who, org = await organiser(client, db)
    now = clock.now()
    challenge = await make_challenge(db, org, now, Phase.SUBMISSION)
    auth = await bearer(client, who.email)
    changes = {
        "title": "Less food in the bin",
        "voting_ends_at": (challenge.voting_starts_at - DAY).isoformat(),
    }
    response = await client.patch(f"/api/v1/challenges/{challenge.id}", json=changes, headers=auth)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "voting_ends_at" in problem_fields(response)
    after = await stored(db, challenge.id)
    assert after.title == challenge.title
    assert after.voting_ends_at == challenge.voting_ends_at


async def test_a_patch_by_someone_outside_the_organisation_is_refused(client, db, clock):
    _who, org = await organiser(client, db)
    challenge = await make_challenge(db, org, clock.now(), Phase.SUBMISSION)
    await logout(client)
    citizen = await register(client)
    auth = await bearer(client, citizen.email)
    response = await client.patch(
        f"/api/v1/challenges/{challenge.id}", json={"title": "Mine now"}, headers=auth
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)
    assert (await stored(db, challenge.id)).title == challenge.title
