"""The idea API: submitting, listing, reading, votes and comments, as a client program uses them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, Phase
from ideaforge.accounts.models import User
from ideaforge.i18n import format_datetime, use_locale
from ideas.models import Comment, Idea, IdeaStatus, Vote
from tests.challenge_helpers import DAY, make_challenge, make_organisation
from tests.challenges.support import PROBLEM, bearer, problem_fields
from tests.helpers import HOSTILE
from tests.idea_helpers import make_idea, make_user

HOUR = timedelta(hours=1)
PAYLOAD = {
    "title": "Share unsold bread",
    "body": f"Bakers give what is left to **food banks**. {HOSTILE}",
    "language": "en",
    "tags": ["food"],
}


# --- arranging -----------------------------------------------------------------------------------


async def open_challenge(
    db: AsyncSession,
    now: datetime,
    phase: Phase = Phase.SUBMISSION,
    *,
    publish: bool = True,
    **overrides: Any,
) -> Challenge:
    """A challenge of "Ville de Rennes" (tags food and markets, English and French)."""
    admin = await make_user(db, "organiser@rennes.example.org", "Organiser")
    org = await make_organisation(db, admin)
    return await make_challenge(db, org, now, phase, publish=publish, **overrides)


def submission_time(challenge: Challenge) -> datetime:
    return challenge.submission_starts_at + DAY


async def token_for(client: Any, db: AsyncSession, email: str) -> dict[str, str]:
    """Someone with an account, and the header their program sends."""
    await make_user(db, email, f"Camille {HOSTILE}")
    return await bearer(client, email)


async def idea_in_the_vote(db: AsyncSession, now: datetime, **overrides: Any) -> tuple[Challenge, Idea]:
    challenge = await open_challenge(db, now, Phase.VOTING, **overrides)
    author = await make_user(db, "author@example.org")
    return challenge, await make_idea(db, challenge, author, submission_time(challenge))


async def add_votes(db: AsyncSession, idea: Idea, voters: list[User], at: datetime) -> None:
    """Vote rows cast at ``at``, with the idea's counter kept equal to its rows."""
    db.add_all(
        Vote(idea_id=idea.id, challenge_id=idea.challenge_id, user_id=v.id, created_at=at) for v in voters
    )
    await db.execute(update(Idea).where(Idea.id == idea.id).values(vote_count=Idea.vote_count + len(voters)))
    await db.commit()


async def idea_count(db: AsyncSession) -> int:
    return await db.scalar(select(func.count()).select_from(Idea)) or 0


async def vote_rows(db: AsyncSession, idea_id: int | None = None) -> int:
    query = select(func.count()).select_from(Vote)
    if idea_id is not None:
        query = query.where(Vote.idea_id == idea_id)
    return await db.scalar(query) or 0


async def stored_votes(db: AsyncSession, idea_id: int) -> int | None:
    """The idea's counter as stored now."""
    return await db.scalar(select(Idea.vote_count).where(Idea.id == idea_id))


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def assert_problem(response: Any, status: int, detail: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    if detail is not None:
        assert response.json()["detail"] == detail


# --- submitting ----------------------------------------------------------------------------------


async def test_the_api_submits_an_idea(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    auth = await token_for(client, db, "author@example.org")
    response = await client.post(f"/api/v1/challenges/{challenge.id}/ideas", json=PAYLOAD, headers=auth)
    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body["id"], int)
    assert body["title"] == PAYLOAD["title"]
    assert body["body"] == PAYLOAD["body"], "JSON carries the text as typed"
    assert body["votes"] == 0
    assert body["status"] == "published"
    assert body["challenge_id"] == challenge.id
    assert body["tags"] == ["food"]
    assert body["language"] == "en"
    assert await idea_count(db) == 1


async def test_invalid_fields_through_the_api_are_a_422_naming_them(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    auth = await token_for(client, db, "author@example.org")
    payload = {"title": "", "body": "b" * 10_001, "language": "de", "tags": ["bicycles"]}
    response = await client.post(f"/api/v1/challenges/{challenge.id}/ideas", json=payload, headers=auth)
    assert_problem(response, 422)
    assert problem_fields(response) == {"title", "body", "language", "tags"}
    assert await idea_count(db) == 0


async def test_a_missing_field_through_the_api_is_a_422_naming_it(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    auth = await token_for(client, db, "author@example.org")
    response = await client.post(
        f"/api/v1/challenges/{challenge.id}/ideas", json={"body": "No title at all."}, headers=auth
    )
    assert_problem(response, 422)
    assert "title" in response.text
    assert await idea_count(db) == 0


async def test_submitting_outside_the_submission_phase_is_a_409(client, db, clock):
    challenge = await open_challenge(db, clock.now(), Phase.VOTING)
    auth = await token_for(client, db, "author@example.org")
    response = await client.post(f"/api/v1/challenges/{challenge.id}/ideas", json=PAYLOAD, headers=auth)
    assert_problem(response, 409)
    with use_locale("en"):
        ends = format_datetime(challenge.submission_ends_at, "medium", challenge.timezone)
    assert ends in response.json()["detail"], "the answer says until when ideas were taken"
    assert await idea_count(db) == 0


async def test_submitting_needs_a_token(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    response = await client.post(f"/api/v1/challenges/{challenge.id}/ideas", json=PAYLOAD)
    assert_problem(response, 401)
    assert await idea_count(db) == 0


@pytest.mark.parametrize("which", ["unknown", "draft"])
async def test_submitting_to_an_unknown_or_draft_challenge_is_a_404(client, db, clock, which):
    draft = await open_challenge(db, clock.now(), publish=False)
    auth = await token_for(client, db, "author@example.org")
    challenge_id = draft.id if which == "draft" else draft.id + 1000
    response = await client.post(f"/api/v1/challenges/{challenge_id}/ideas", json=PAYLOAD, headers=auth)
    assert_problem(response, 404)
    assert await idea_count(db) == 0


# --- listing and reading -------------------------------------------------------------------------


async def three_ideas_with_votes(db: AsyncSession, now: datetime) -> tuple[Challenge, Idea, Idea, Idea]:
    """In the vote: an old favourite (3 votes, 10 days ago), a rising idea (2 votes, yesterday), a quiet one."""
    challenge = await open_challenge(db, now, Phase.VOTING)
    author = await make_user(db, "author@example.org")
    at = submission_time(challenge)
    favourite = await make_idea(db, challenge, author, at, title="Old favourite")
    rising = await make_idea(db, challenge, author, at + HOUR, title="Rising idea")
    quiet = await make_idea(db, challenge, author, at + 2 * HOUR, title="Quiet idea")
    people = [await make_user(db, f"voter{n}@example.org") for n in range(3)]
    await add_votes(db, favourite, people, now - 10 * DAY)
    await add_votes(db, rising, people[:2], now - DAY)
    return challenge, favourite, rising, quiet


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("top", ("favourite", "rising", "quiet")),
        ("new", ("quiet", "rising", "favourite")),
        ("trending", ("rising", "favourite", "quiet")),
    ],
)
async def test_the_api_lists_ideas_in_each_order(client, db, clock, sort, expected):
    challenge, favourite, rising, quiet = await three_ideas_with_votes(db, clock.now())
    named = {"favourite": favourite.id, "rising": rising.id, "quiet": quiet.id}
    response = await client.get(f"/api/v1/challenges/{challenge.id}/ideas", params={"sort": sort})
    assert ids(response) == [named[n] for n in expected]
    body = response.json()
    assert body["total"] == 3
    assert body["page"] == 1
    assert body["pages"] == 1


async def test_the_api_random_order_is_stable_for_a_seed_and_lists_the_same_ideas(client, db, clock):
    challenge, favourite, rising, quiet = await three_ideas_with_votes(db, clock.now())
    url = f"/api/v1/challenges/{challenge.id}/ideas"
    first = ids(await client.get(url, params={"sort": "random", "seed": 12345}))
    again = ids(await client.get(url, params={"sort": "random", "seed": 12345}))
    assert sorted(first) == sorted([favourite.id, rising.id, quiet.id])
    assert again == first


async def test_an_unknown_sort_is_a_422(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    response = await client.get(f"/api/v1/challenges/{challenge.id}/ideas", params={"sort": "loudest"})
    assert_problem(response, 422)
    assert problem_fields(response) == {"sort"}


async def test_the_api_reads_one_idea(client, db, clock):
    challenge, idea = await idea_in_the_vote(db, clock.now())
    response = await client.get(f"/api/v1/ideas/{idea.id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == idea.id
    assert body["title"] == idea.title
    assert body["body"] == idea.body
    assert body["votes"] == 0
    assert body["status"] == "published"
    assert body["challenge_id"] == challenge.id


async def test_reading_an_unknown_idea_is_a_404(client, db, clock):
    response = await client.get("/api/v1/ideas/4242")
    assert_problem(response, 404)


# --- votes ---------------------------------------------------------------------------------------


async def test_voting_twice_leaves_one_vote(client, db, clock):
    _challenge, idea = await idea_in_the_vote(db, clock.now(), votes_per_user=3)
    auth = await token_for(client, db, "voter@example.org")
    first = await client.put(f"/api/v1/ideas/{idea.id}/vote", headers=auth)
    assert first.status_code == 200, first.text
    assert first.json() == {"idea_id": idea.id, "votes": 1, "voted": True, "remaining": 2}
    second = await client.put(f"/api/v1/ideas/{idea.id}/vote", headers=auth)
    assert second.status_code == 200, second.text
    assert second.json()["votes"] == 1
    assert second.json()["remaining"] == 2, "the second vote does not spend the budget"
    assert (await client.get(f"/api/v1/ideas/{idea.id}", headers=auth)).json()["voted"] is True
    assert await vote_rows(db, idea.id) == 1


async def test_deleting_the_vote_takes_it_back(client, db, clock):
    _challenge, idea = await idea_in_the_vote(db, clock.now(), votes_per_user=3)
    auth = await token_for(client, db, "voter@example.org")
    await client.put(f"/api/v1/ideas/{idea.id}/vote", headers=auth)
    response = await client.delete(f"/api/v1/ideas/{idea.id}/vote", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json() == {"idea_id": idea.id, "votes": 0, "voted": False, "remaining": 3}
    assert (await client.get(f"/api/v1/ideas/{idea.id}")).json()["votes"] == 0
    assert await vote_rows(db, idea.id) == 0


async def test_voting_needs_a_token(client, db, clock):
    _challenge, idea = await idea_in_the_vote(db, clock.now())
    assert_problem(await client.put(f"/api/v1/ideas/{idea.id}/vote"), 401)
    assert await vote_rows(db) == 0


async def test_voting_for_an_unknown_idea_is_a_404(client, db, clock):
    await idea_in_the_vote(db, clock.now())
    auth = await token_for(client, db, "voter@example.org")
    assert_problem(await client.put("/api/v1/ideas/4242/vote", headers=auth), 404)
    assert_problem(await client.delete("/api/v1/ideas/4242/vote", headers=auth), 404)
    assert await vote_rows(db) == 0


async def test_voting_over_budget_is_a_409_that_changes_nothing(client, db, clock):
    challenge, first = await idea_in_the_vote(db, clock.now(), votes_per_user=1)
    author = await make_user(db, "second.author@example.org")
    second = await make_idea(db, challenge, author, submission_time(challenge), title="Second idea")
    auth = await token_for(client, db, "voter@example.org")
    assert (await client.put(f"/api/v1/ideas/{first.id}/vote", headers=auth)).status_code == 200

    response = await client.put(f"/api/v1/ideas/{second.id}/vote", headers=auth)
    assert_problem(
        response,
        409,
        "You have used all 1 of your votes in this challenge. Remove one to vote for this idea.",
    )
    assert await vote_rows(db, second.id) == 0
    assert await stored_votes(db, second.id) == 0
    assert await stored_votes(db, first.id) == 1


async def test_voting_outside_the_voting_phase_is_a_409_that_changes_nothing(client, db, clock):
    challenge = await open_challenge(db, clock.now(), Phase.SUBMISSION)
    author = await make_user(db, "author@example.org")
    idea = await make_idea(db, challenge, author, clock.now())
    auth = await token_for(client, db, "voter@example.org")

    response = await client.put(f"/api/v1/ideas/{idea.id}/vote", headers=auth)
    with use_locale("en"):
        start = format_datetime(challenge.voting_starts_at, "medium", challenge.timezone)
        end = format_datetime(challenge.voting_ends_at, "medium", challenge.timezone)
    assert_problem(response, 409, f"Voting is not open: it runs from {start} to {end}.")
    assert await vote_rows(db, idea.id) == 0
    assert await stored_votes(db, idea.id) == 0


async def test_voting_for_a_withdrawn_idea_is_a_409_that_changes_nothing(client, db, clock):
    _challenge, idea = await idea_in_the_vote(db, clock.now())
    await db.execute(update(Idea).where(Idea.id == idea.id).values(status=IdeaStatus.WITHDRAWN))
    await db.commit()
    auth = await token_for(client, db, "voter@example.org")

    response = await client.put(f"/api/v1/ideas/{idea.id}/vote", headers=auth)
    assert_problem(response, 409, "This idea is no longer open for votes.")
    assert await vote_rows(db, idea.id) == 0
    assert await stored_votes(db, idea.id) == 0


async def test_an_author_voting_for_their_own_idea_is_a_403(client, db, clock):
    challenge = await open_challenge(db, clock.now(), Phase.VOTING, authors_may_vote_own=False)
    auth = await token_for(client, db, "author@example.org")
    author = await db.scalar(select(User).where(User.email == "author@example.org"))
    assert author is not None
    idea = await make_idea(db, challenge, author, submission_time(challenge))

    response = await client.put(f"/api/v1/ideas/{idea.id}/vote", headers=auth)
    assert_problem(response, 403, "In this challenge, authors may not vote for their own ideas.")
    assert await vote_rows(db, idea.id) == 0


# --- comments ------------------------------------------------------------------------------------


async def test_the_api_adds_comments_and_replies_and_lists_them(client, db, clock):
    _challenge, idea = await idea_in_the_vote(db, clock.now())
    auth = await token_for(client, db, "alice@example.org")
    url = f"/api/v1/ideas/{idea.id}/comments"
    assert (await client.get(url)).json() == []

    top = await client.post(url, json={"body": "Which markets first?"}, headers=auth)
    assert top.status_code == 201, top.text
    top_body = top.json()
    assert top_body["body"] == "Which markets first?"
    assert top_body["parent_id"] is None
    assert top_body["idea_id"] == idea.id
    assert top_body["deleted"] is False

    reply = await client.post(
        url, json={"body": "The covered one.", "parent_id": top_body["id"]}, headers=auth
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["parent_id"] == top_body["id"]
    deeper = await client.post(
        url, json={"body": "Then the Sunday one.", "parent_id": reply.json()["id"]}, headers=auth
    )
    assert deeper.status_code == 201, deeper.text
    assert deeper.json()["parent_id"] == top_body["id"], "replies stay one level deep"

    listed = (await client.get(url)).json()
    assert [(c["body"], c["parent_id"]) for c in listed] == [
        ("Which markets first?", None),
        ("The covered one.", top_body["id"]),
        ("Then the Sunday one.", top_body["id"]),
    ]
    assert all(c["author"] == f"Camille {HOSTILE}" for c in listed)


async def test_commenting_through_the_api_needs_a_token_and_a_body(client, db, clock):
    _challenge, idea = await idea_in_the_vote(db, clock.now())
    url = f"/api/v1/ideas/{idea.id}/comments"
    assert_problem(await client.post(url, json={"body": "Anonymous"}), 401)
    auth = await token_for(client, db, "alice@example.org")
    empty = await client.post(url, json={"body": "   "}, headers=auth)
    assert_problem(empty, 422)
    assert problem_fields(empty) == {"body"}
    assert await db.scalar(select(func.count()).select_from(Comment)) == 0


async def test_replying_to_a_comment_of_another_idea_is_a_422(client, db, clock):
    challenge, idea = await idea_in_the_vote(db, clock.now())
    author = await make_user(db, "second.author@example.org")
    other = await make_idea(db, challenge, author, submission_time(challenge), title="Another idea")
    auth = await token_for(client, db, "alice@example.org")
    elsewhere = await client.post(
        f"/api/v1/ideas/{other.id}/comments", json={"body": "Over there"}, headers=auth
    )
    response = await client.post(
        f"/api/v1/ideas/{idea.id}/comments",
        json={"body": "Here", "parent_id": elsewhere.json()["id"]},
        headers=auth,
    )
    assert_problem(response, 422)
    assert problem_fields(response) == {"parent"}
    assert (await client.get(f"/api/v1/ideas/{idea.id}/comments")).json() == []
