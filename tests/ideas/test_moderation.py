"""Moderation as the people involved use it: reporting, the moderators' queue, hiding and restoring
with a reason (and the audit log), flagged vote bursts, rate limits on actions, and the CSV export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, Phase
from ideaforge.accounts.models import User
from ideaforge.accounts.throttle import make_storage
from ideaforge.app import create_app
from ideaforge.audit import AuditEvent
from ideaforge.clock import FixedClock
from ideaforge.i18n import gettext, use_locale
from ideaforge.organisations.models import Role as OrgRole
from ideaforge.ratelimit import ActionLimits
from ideas.models import Comment, Idea, IdeaStatus, Report, ReportStatus, Vote, VoteFlag
from ideas.services import add_comment
from ml.embedding import Embedder
from tests.challenge_helpers import DAY, add_member, make_challenge, make_organisation
from tests.conftest import Backend
from tests.helpers import STRONG_PASSWORD, Registration, csrf_token, login, logout, post_form, register, shown
from tests.idea_helpers import make_idea, make_user

PROBLEM = "application/problem+json"
COMMENT_TEXT = "Stallholders are **thieves**, all of them."
REASON = "Insults the stallholders of the covered market."
HIDE_REASON = "Personal attacks are not allowed here."
HIDDEN_NOTICE = "This comment is hidden by the moderators."
THANKS = "Thank you. The moderators will look at your report."
GIVE_A_REASON = "Give a reason: it is shown to the moderators or the author."
IDEA_TITLE = "Share unsold bread"
RENDERED = "Stallholders are <strong>thieves</strong>, all of them."


# --- arranging -----------------------------------------------------------------------------------


@dataclass
class Scene:
    """A challenge of "Ville de Rennes" with an owner, a moderator, an author and a citizen."""

    challenge: Challenge
    idea: Idea
    admin: User
    moderator: User
    author: User
    citizen: User


async def arrange(db: AsyncSession, now: datetime, phase: Phase = Phase.SUBMISSION) -> Scene:
    admin = await make_user(db, "organiser@rennes.example.org", "Olivia Organiser")
    org = await make_organisation(db, admin)
    moderator = await make_user(db, "moderator@rennes.example.org", "Maud Moderator")
    await add_member(db, org, moderator, OrgRole.MODERATOR)
    challenge = await make_challenge(db, org, now, phase)
    author = await make_user(db, "author@example.org", "Alice Author")
    citizen = await make_user(db, "citizen@example.org", "Chloé Citizen")
    idea = await make_idea(db, challenge, author, submission_time(challenge), title=IDEA_TITLE)
    return Scene(challenge, idea, admin, moderator, author, citizen)


def submission_time(challenge: Challenge) -> datetime:
    return challenge.submission_starts_at + DAY


async def commented(db: AsyncSession, scene: Scene, body: str = COMMENT_TEXT) -> int:
    """A comment by the idea's author, written while the challenge took ideas."""
    comment = await add_comment(
        db, scene.idea, scene.challenge, scene.author, body, submission_time(scene.challenge)
    )
    return comment.id


async def sign_in_as(client: Any, who: User) -> None:
    await logout(client)
    response = await login(client, who.email)
    assert response.status_code == 303, response.text


async def post_with(client: Any, url: str, data: dict[str, str], **headers: str) -> Any:
    """A form post as a browser sends it from a page (with that page as the referer, say)."""
    if "csrftoken" not in client.cookies:
        await client.get("/")
    return await client.post(
        url, data={**data, "_csrf_token": csrf_token(client)}, headers=headers, follow_redirects=False
    )


def flashes(html: str) -> list[str]:
    return [m.strip() for m in re.findall(r'<p class="flash flash-\w+" role="\w+">(.*?)</p>', html, re.S)]


async def bearer(client: Any, who: User) -> dict[str, str]:
    response = await client.post("/api/v1/tokens", json={"email": who.email, "password": STRONG_PASSWORD})
    assert response.status_code == 201, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


async def open_reports(db: AsyncSession) -> list[tuple[int, int | None, int, str]]:
    rows = await db.execute(
        select(Report.idea_id, Report.comment_id, Report.reporter_id, Report.reason)
        .where(Report.status == ReportStatus.OPEN)
        .order_by(Report.id)
    )
    return [(i, c, r, reason) for i, c, r, reason in rows.all()]


async def audit_trail(
    db: AsyncSession, subject_type: str, subject_id: int
) -> list[tuple[str, str, int | None]]:
    rows = await db.execute(
        select(AuditEvent.action, AuditEvent.reason, AuditEvent.actor_id)
        .where(AuditEvent.subject_type == subject_type, AuditEvent.subject_id == subject_id)
        .order_by(AuditEvent.id)
    )
    return [(a, r, who) for a, r, who in rows.all()]


async def idea_state(db: AsyncSession, idea_id: int) -> tuple[IdeaStatus, int, int]:
    """Status, counter and vote rows of an idea, read fresh from the database."""
    status, count = (await db.execute(select(Idea.status, Idea.vote_count).where(Idea.id == idea_id))).one()
    rows = await db.scalar(select(func.count()).select_from(Vote).where(Vote.idea_id == idea_id)) or 0
    return status, count, rows


async def comment_count(db: AsyncSession) -> int:
    return await db.scalar(select(func.count()).select_from(Comment)) or 0


async def add_votes(db: AsyncSession, idea: Idea, voters: list[User], at: datetime) -> None:
    """Vote rows, with the idea's counter kept equal to its rows."""
    db.add_all(
        Vote(idea_id=idea.id, challenge_id=idea.challenge_id, user_id=v.id, created_at=at) for v in voters
    )
    await db.execute(update(Idea).where(Idea.id == idea.id).values(vote_count=Idea.vote_count + len(voters)))
    await db.commit()


# --- 1. reporting ----------------------------------------------------------------------------------


async def test_a_signed_in_user_reports_a_comment_with_a_reason(client, db, clock):
    scene = await arrange(db, clock.now())
    comment_id = await commented(db, scene)
    await sign_in_as(client, scene.citizen)

    response = await post_form(client, f"/comments/{comment_id}/report", {"reason": f"  {REASON}  "})

    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/ideas/{scene.idea.id}"
    assert THANKS in flashes((await client.get(response.headers["location"])).text)
    assert await open_reports(db) == [(scene.idea.id, comment_id, scene.citizen.id, REASON)]


@pytest.mark.parametrize("reason", ["", "   "])
async def test_a_report_without_a_reason_is_refused_with_a_message(client, db, clock, reason):
    scene = await arrange(db, clock.now())
    comment_id = await commented(db, scene)
    await sign_in_as(client, scene.citizen)

    response = await post_form(client, f"/comments/{comment_id}/report", {"reason": reason})

    page = (await client.get(response.headers["location"])).text
    assert GIVE_A_REASON in flashes(page)
    assert THANKS not in flashes(page)
    assert await open_reports(db) == []


async def test_reporting_the_same_comment_twice_keeps_one_open_report(client, db, clock):
    scene = await arrange(db, clock.now())
    comment_id = await commented(db, scene)
    await sign_in_as(client, scene.citizen)

    await post_form(client, f"/comments/{comment_id}/report", {"reason": REASON})
    again = await post_form(client, f"/comments/{comment_id}/report", {"reason": "Still rude."})

    assert again.status_code == 303
    assert await open_reports(db) == [(scene.idea.id, comment_id, scene.citizen.id, REASON)]


async def test_reporting_needs_an_account(client, db, clock):
    scene = await arrange(db, clock.now())
    comment_id = await commented(db, scene)

    response = await post_form(client, f"/comments/{comment_id}/report", {"reason": REASON})

    assert response.status_code == 401
    assert await open_reports(db) == []


# --- 2. the queue ----------------------------------------------------------------------------------


async def reported(client: Any, db: AsyncSession, clock: FixedClock) -> tuple[Scene, int]:
    """A comment the citizen reported through the page; the client is left signed in as the citizen."""
    scene = await arrange(db, clock.now())
    comment_id = await commented(db, scene)
    await sign_in_as(client, scene.citizen)
    response = await post_form(client, f"/comments/{comment_id}/report", {"reason": REASON})
    assert response.status_code == 303
    return scene, comment_id


async def test_the_moderator_sees_the_report_its_reason_and_the_comment(client, db, clock):
    scene, comment_id = await reported(client, db, clock)
    await sign_in_as(client, scene.moderator)

    response = await client.get(f"/challenges/{scene.challenge.id}/moderation")

    assert response.status_code == 200
    assert shown(f"Reported by {scene.citizen.display_name}: {REASON}") in response.text
    assert f"<blockquote>{shown(COMMENT_TEXT)}</blockquote>" in response.text
    assert f'action="/comments/{comment_id}/hide"' in response.text
    assert "No open report." not in response.text


async def test_a_citizen_may_not_open_the_moderation_queue(client, db, clock):
    scene, _comment_id = await reported(client, db, clock)

    response = await client.get(f"/challenges/{scene.challenge.id}/moderation")

    assert response.status_code == 403
    assert shown(REASON) not in response.text


async def test_an_anonymous_visitor_is_sent_to_log_in_from_the_queue(client, db, clock):
    scene, _comment_id = await reported(client, db, clock)
    await logout(client)

    response = await client.get(f"/challenges/{scene.challenge.id}/moderation", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/challenges/{scene.challenge.id}/moderation"


async def test_dismissing_a_report_empties_the_queue_and_is_audited(client, db, clock):
    scene, _comment_id = await reported(client, db, clock)
    [report_id] = await db.scalars(select(Report.id))
    await sign_in_as(client, scene.moderator)

    response = await post_form(client, f"/reports/{report_id}/dismiss", {})

    assert response.status_code == 303
    page = (await client.get(f"/challenges/{scene.challenge.id}/moderation")).text
    assert "No open report." in page
    assert await open_reports(db) == []
    assert await audit_trail(db, "report", report_id) == [("dismiss", "", scene.moderator.id)]
    assert RENDERED in (await client.get(f"/ideas/{scene.idea.id}")).text, "the comment stays"


# --- 3. hiding and restoring a comment --------------------------------------------------------------


async def hide_comment(client: Any, scene: Scene, comment_id: int, reason: str = HIDE_REASON) -> Any:
    """The moderator hides the comment from the queue's form."""
    await sign_in_as(client, scene.moderator)
    queue = f"http://testserver.local/challenges/{scene.challenge.id}/moderation"
    response = await post_with(client, f"/comments/{comment_id}/hide", {"reason": reason}, referer=queue)
    assert response.status_code == 303, response.text
    return response


async def test_a_hidden_comment_shows_a_placeholder_to_others(client, db, clock):
    scene, comment_id = await reported(client, db, clock)
    await hide_comment(client, scene, comment_id)
    await sign_in_as(client, scene.citizen)

    page = (await client.get(f"/ideas/{scene.idea.id}")).text

    assert HIDDEN_NOTICE in page
    assert "thieves" not in page
    assert shown(HIDE_REASON) not in page, "only the comment's author sees the reason"
    assert f'action="/comments/{comment_id}/report"' not in page


async def test_a_hidden_comment_is_not_in_the_api_either(client, db, clock):
    scene, comment_id = await reported(client, db, clock)
    await hide_comment(client, scene, comment_id)

    listed = (await client.get(f"/api/v1/ideas/{scene.idea.id}/comments")).json()

    assert [(c["id"], c["body"], c["author"]) for c in listed] == [(comment_id, "", None)]


async def test_the_author_of_a_hidden_comment_sees_the_reason(client, db, clock):
    scene, comment_id = await reported(client, db, clock)
    await hide_comment(client, scene, comment_id)
    await sign_in_as(client, scene.author)

    page = (await client.get(f"/ideas/{scene.idea.id}")).text

    assert f"{HIDDEN_NOTICE} {shown('Reason: ' + HIDE_REASON)}" in page
    assert "thieves" not in page


async def test_hiding_a_comment_takes_its_report_out_of_the_queue(client, db, clock):
    scene, comment_id = await reported(client, db, clock)

    response = await hide_comment(client, scene, comment_id)

    assert response.headers["location"] == f"/challenges/{scene.challenge.id}/moderation"
    page = (await client.get(response.headers["location"])).text
    assert "Hidden: the author sees your reason." in flashes(page)
    assert "No open report." in page
    assert shown(REASON) not in page
    assert await open_reports(db) == []


async def test_hiding_a_comment_is_audited_with_its_reason(client, db, clock):
    scene, comment_id = await reported(client, db, clock)

    await hide_comment(client, scene, comment_id)

    assert await audit_trail(db, "comment", comment_id) == [("hide", HIDE_REASON, scene.moderator.id)]


async def test_hiding_a_comment_without_a_reason_is_refused(client, db, clock):
    scene, comment_id = await reported(client, db, clock)

    response = await hide_comment(client, scene, comment_id, reason="  ")

    assert GIVE_A_REASON in flashes((await client.get(response.headers["location"])).text)
    assert await db.scalar(select(Comment.hidden_reason).where(Comment.id == comment_id)) is None
    assert await audit_trail(db, "comment", comment_id) == []
    assert len(await open_reports(db)) == 1


async def test_restoring_a_comment_shows_its_text_again_and_is_audited(client, db, clock):
    scene, comment_id = await reported(client, db, clock)
    await hide_comment(client, scene, comment_id)

    restored = await post_form(client, f"/comments/{comment_id}/restore", {"reason": "Reworded on appeal."})

    assert restored.status_code == 303
    assert restored.headers["location"] == f"/ideas/{scene.idea.id}"
    await sign_in_as(client, scene.citizen)
    page = (await client.get(f"/ideas/{scene.idea.id}")).text
    assert RENDERED in page
    assert HIDDEN_NOTICE not in page
    assert await audit_trail(db, "comment", comment_id) == [
        ("hide", HIDE_REASON, scene.moderator.id),
        ("restore", "Reworded on appeal.", scene.moderator.id),
    ]


async def test_a_citizen_cannot_hide_a_comment(client, db, clock):
    _scene, comment_id = await reported(client, db, clock)

    response = await post_form(client, f"/comments/{comment_id}/hide", {"reason": HIDE_REASON})

    assert response.status_code == 403
    assert await db.scalar(select(Comment.hidden_reason).where(Comment.id == comment_id)) is None
    assert await audit_trail(db, "comment", comment_id) == []


# --- 4. hiding and restoring an idea ------------------------------------------------------------


async def idea_with_votes(db: AsyncSession, clock: FixedClock) -> tuple[Scene, list[User]]:
    """An idea with two votes, in a challenge now in its voting phase."""
    scene = await arrange(db, clock.now(), Phase.VOTING)
    voters = [await make_user(db, f"voter{n}@example.org", f"Voter {n}") for n in range(2)]
    await add_votes(db, scene.idea, voters, clock.now())
    return scene, voters


async def hide_idea(client: Any, scene: Scene, reason: str = HIDE_REASON) -> Any:
    await sign_in_as(client, scene.moderator)
    response = await post_form(client, f"/ideas/{scene.idea.id}/hide", {"reason": reason})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/ideas/{scene.idea.id}"
    return response


async def listed_titles(client: Any, challenge_id: int) -> list[str]:
    api = (await client.get(f"/api/v1/challenges/{challenge_id}/ideas")).json()
    return [item["title"] for item in api["items"]]


async def test_a_hidden_idea_leaves_the_challenges_list(client, db, clock):
    scene, _voters = await idea_with_votes(db, clock)
    assert shown(IDEA_TITLE) in (await client.get(f"/challenges/{scene.challenge.id}/ideas")).text

    await hide_idea(client, scene)

    await sign_in_as(client, scene.citizen)
    assert shown(IDEA_TITLE) not in (await client.get(f"/challenges/{scene.challenge.id}/ideas")).text
    assert await listed_titles(client, scene.challenge.id) == []


async def test_a_hidden_idea_is_a_404_for_citizens_and_visitors(client, db, clock):
    scene, _voters = await idea_with_votes(db, clock)
    await hide_idea(client, scene)

    await sign_in_as(client, scene.citizen)
    as_citizen = await client.get(f"/ideas/{scene.idea.id}")
    await logout(client)
    as_visitor = await client.get(f"/ideas/{scene.idea.id}")
    by_api = await client.get(f"/api/v1/ideas/{scene.idea.id}")

    assert (as_citizen.status_code, as_visitor.status_code, by_api.status_code) == (404, 404, 404)
    assert shown(IDEA_TITLE) not in as_citizen.text


async def test_the_author_still_sees_their_hidden_idea_with_the_reason(client, db, clock):
    scene, _voters = await idea_with_votes(db, clock)
    await hide_idea(client, scene)
    await sign_in_as(client, scene.author)

    response = await client.get(f"/ideas/{scene.idea.id}")

    assert response.status_code == 200
    assert shown(f"This idea is hidden by the moderators: {HIDE_REASON}") in response.text


async def test_hiding_an_idea_keeps_its_votes_and_is_audited(client, db, clock):
    scene, _voters = await idea_with_votes(db, clock)

    await hide_idea(client, scene)

    assert await idea_state(db, scene.idea.id) == (IdeaStatus.HIDDEN, 2, 2)
    assert await audit_trail(db, "idea", scene.idea.id) == [("hide", HIDE_REASON, scene.moderator.id)]


async def test_a_hidden_idea_refuses_new_votes(client, db, clock):
    scene, _voters = await idea_with_votes(db, clock)
    await hide_idea(client, scene)
    headers = await bearer(client, scene.moderator)  # someone who still sees the idea

    response = await client.put(f"/api/v1/ideas/{scene.idea.id}/vote", headers=headers)

    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["detail"] == "This idea is no longer open for votes."
    assert await idea_state(db, scene.idea.id) == (IdeaStatus.HIDDEN, 2, 2)


async def test_a_voter_takes_their_vote_back_from_a_hidden_idea(client, db, clock):
    """Hidden ideas keep their votes, which still use the voters' budget: voters may take them back
    to vote elsewhere (ideas/moderation.py and ideas/votes.py promise it)."""
    scene, voters = await idea_with_votes(db, clock)
    await hide_idea(client, scene)
    headers = await bearer(client, voters[0])

    response = await client.delete(f"/api/v1/ideas/{scene.idea.id}/vote", headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["voted"] is False
    assert await idea_state(db, scene.idea.id) == (IdeaStatus.HIDDEN, 1, 1)


async def test_restoring_an_idea_brings_it_back_with_its_votes(client, db, clock):
    scene, _voters = await idea_with_votes(db, clock)
    await hide_idea(client, scene)

    restored = await post_form(client, f"/ideas/{scene.idea.id}/restore", {"reason": "Appeal accepted."})

    assert restored.status_code == 303
    await sign_in_as(client, scene.citizen)
    assert (await client.get(f"/ideas/{scene.idea.id}")).status_code == 200
    assert await listed_titles(client, scene.challenge.id) == [IDEA_TITLE]
    assert await idea_state(db, scene.idea.id) == (IdeaStatus.PUBLISHED, 2, 2)
    assert [a for a, _r, _who in await audit_trail(db, "idea", scene.idea.id)] == ["hide", "restore"]


@pytest.mark.parametrize("reason", ["", "   "])
async def test_hiding_an_idea_without_a_reason_is_refused_and_changes_nothing(client, db, clock, reason):
    scene, _voters = await idea_with_votes(db, clock)

    response = await hide_idea(client, scene, reason=reason)

    assert GIVE_A_REASON in flashes((await client.get(response.headers["location"])).text)
    assert await idea_state(db, scene.idea.id) == (IdeaStatus.PUBLISHED, 2, 2)
    assert await audit_trail(db, "idea", scene.idea.id) == []
    await sign_in_as(client, scene.citizen)
    assert await listed_titles(client, scene.challenge.id) == [IDEA_TITLE]


# --- 5. vote bursts ---------------------------------------------------------------------------------


async def votes_from_one_browser(client: Any, db: AsyncSession, scene: Scene, accounts: int) -> None:
    """``accounts`` people take turns at one computer (one address, one browser) to vote."""
    client.headers["user-agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    for n in range(accounts):
        voter = await make_user(db, f"voter{n}@example.org", f"Voter {n}")
        await sign_in_as(client, voter)
        response = await post_form(client, f"/ideas/{scene.idea.id}/vote", {"action": "vote"})
        assert response.status_code == 303, response.text


def burst_notice(accounts: int) -> str:
    return f"{accounts} accounts voted from one address and browser within ten minutes."


async def test_four_accounts_voting_from_one_browser_raise_a_flag(client, db, clock):
    scene = await arrange(db, clock.now(), Phase.VOTING)

    await votes_from_one_browser(client, db, scene, 4)

    await sign_in_as(client, scene.moderator)
    page = (await client.get(f"/challenges/{scene.challenge.id}/moderation")).text
    assert burst_notice(4) in page
    assert "Nothing unusual." not in page
    assert await idea_state(db, scene.idea.id) == (IdeaStatus.PUBLISHED, 4, 4), "every vote still counts"


async def test_two_accounts_voting_from_one_browser_raise_no_flag(client, db, clock):
    scene = await arrange(db, clock.now(), Phase.VOTING)

    await votes_from_one_browser(client, db, scene, 2)

    await sign_in_as(client, scene.moderator)
    page = (await client.get(f"/challenges/{scene.challenge.id}/moderation")).text
    assert "Nothing unusual." in page
    assert "voted from one address" not in page
    assert await db.scalar(select(func.count()).select_from(VoteFlag)) == 0
    assert await idea_state(db, scene.idea.id) == (IdeaStatus.PUBLISHED, 2, 2)


# --- 6. rate limits ---------------------------------------------------------------------------------

SMALL_LIMITS = {
    "submit": "2/hour",
    "vote": "3/minute",
    "comment": "2/minute",
    "report": "2/hour",
    "similar": "2/minute",
}
TOO_OFTEN = "You are doing this too often. Try again in %(seconds)s seconds."


@pytest.fixture
async def limited(
    backend: Backend, clock: FixedClock, embedder: Embedder
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The app with small action limits (on Redis with the production stores)."""
    settings = backend.settings
    app = create_app(settings, clock=clock, embedder=embedder)
    app.state.action_limits = ActionLimits(
        make_storage(settings.redis_url, settings.redis_prefix), SMALL_LIMITS
    )
    async with AsyncTestClient(app, base_url="http://testserver.local") as test_client:
        yield test_client


def fr(message: str, **params: Any) -> str:
    with use_locale("fr"):
        return gettext(message, **params)


def message_pattern(template: str, *, html: bool) -> str:
    """A regex for a message (as a page or as JSON shows it) whose ``%(seconds)s`` is not known."""
    return re.escape(shown(template) if html else template).replace(re.escape("%(seconds)s"), r"(\d+)")


async def test_the_third_comment_within_a_minute_is_refused_in_the_users_language(limited, db, clock):
    scene = await arrange(db, clock.now())
    await sign_in_as(limited, scene.citizen)
    await post_form(limited, "/locale", {"locale": "fr", "next": "/"})
    for n in range(2):
        accepted = await post_form(limited, f"/ideas/{scene.idea.id}/comments", {"body": f"Comment {n}"})
        assert accepted.status_code == 303, accepted.text

    refused = await post_form(limited, f"/ideas/{scene.idea.id}/comments", {"body": "One too many"})

    assert refused.status_code == 429
    assert '<html lang="fr">' in refused.text
    found = re.search(message_pattern(fr(TOO_OFTEN), html=True), refused.text)
    assert found, refused.text
    assert 1 <= int(found.group(1)) <= 60
    assert await comment_count(db) == 2
    assert fr(TOO_OFTEN) != TOO_OFTEN, "the French catalogue has no translation of the rate-limit message"


async def test_anonymous_visitors_are_limited_on_the_similar_ideas_panel_and_api(limited, db, clock):
    scene = await arrange(db, clock.now())
    url = f"/api/v1/challenges/{scene.idea.challenge_id}/similar"
    for _ in range(2):
        assert (await limited.post(url, json={"text": "share unsold bread"})).status_code == 200
    refused = await limited.post(url, json={"text": "share unsold bread"})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_the_api_answers_a_429_problem_with_retry_after(limited, db, clock):
    scene = await arrange(db, clock.now())
    headers = await bearer(limited, scene.citizen)
    url = f"/api/v1/ideas/{scene.idea.id}/comments"
    for n in range(2):
        assert (await limited.post(url, json={"body": f"Comment {n}"}, headers=headers)).status_code == 201

    refused = await limited.post(url, json={"body": "One too many"}, headers=headers)

    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    body = refused.json()
    assert body["status"] == 429
    assert re.fullmatch(message_pattern(TOO_OFTEN, html=False), body["detail"]), body
    assert await comment_count(db) == 2


async def test_other_people_are_not_held_back_by_someone_elses_limit(limited, db, clock):
    scene = await arrange(db, clock.now())
    url = f"/ideas/{scene.idea.id}/comments"
    await sign_in_as(limited, scene.citizen)
    for n in range(3):
        await post_form(limited, url, {"body": f"Comment {n}"})

    await sign_in_as(limited, scene.author)
    response = await post_form(limited, url, {"body": "My own answer"})

    assert response.status_code == 303
    assert await comment_count(db) == 3


# --- 7. the CSV export ------------------------------------------------------------------------------

FORMULA = '=HYPERLINK("http://evil.example","Click")'


async def exported(db: AsyncSession, clock: FixedClock) -> tuple[Scene, Idea]:
    """Two ideas: the scene's with two votes and one comment, and one titled like a formula."""
    scene = await arrange(db, clock.now(), Phase.VOTING)
    voters = [await make_user(db, f"voter{n}@example.org", f"Voter {n}") for n in range(2)]
    await add_votes(db, scene.idea, voters, clock.now())
    await commented(db, scene, "Which bakeries first?")
    formula = await make_idea(
        db, scene.challenge, scene.citizen, submission_time(scene.challenge), title=FORMULA
    )
    return scene, formula


def csv_rows(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


async def test_an_organisation_admin_exports_the_ideas_as_csv(client, db, clock):
    scene, formula = await exported(db, clock)
    await sign_in_as(client, scene.admin)

    response = await client.get(f"/challenges/{scene.challenge.id}/export.csv")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    header = next(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert {"title", "author", "votes", "comments", "status"} <= set(header)
    rows = csv_rows(response)
    assert [(r["id"], r["author"], r["votes"], r["comments"], r["status"]) for r in rows] == [
        (str(scene.idea.id), scene.author.display_name, "2", "1", "published"),
        (str(formula.id), scene.citizen.display_name, "0", "0", "published"),
    ]
    assert rows[0]["title"] == IDEA_TITLE


async def test_a_title_starting_with_a_formula_sign_is_defused_in_the_export(client, db, clock):
    scene, _formula = await exported(db, clock)
    await sign_in_as(client, scene.admin)

    rows = csv_rows(await client.get(f"/challenges/{scene.challenge.id}/export.csv"))

    assert rows[1]["title"] == "'" + FORMULA
    assert not any(value.startswith(("=", "+", "-", "@")) for row in rows for value in row.values())


async def test_a_citizen_may_not_export_the_ideas(client, db, clock):
    scene, _formula = await exported(db, clock)
    await sign_in_as(client, scene.citizen)

    response = await client.get(f"/challenges/{scene.challenge.id}/export.csv")

    assert response.status_code == 403
    assert scene.author.email not in response.text


async def test_an_email_address_starting_with_a_formula_sign_is_defused_in_the_export(client, db, clock):
    """Registration accepts such an address, and the export carries each author's address."""
    scene = await arrange(db, clock.now())
    sly = Registration('=HYPERLINK("http://evil.example")&"@a.co"', "Sly", STRONG_PASSWORD)
    await logout(client)
    await register(client, sly)
    submitted = await post_form(
        client, f"/challenges/{scene.challenge.id}/ideas/new", {"title": "Bread", "body": "Give it away."}
    )
    assert submitted.status_code == 303, submitted.text
    await sign_in_as(client, scene.admin)

    rows = csv_rows(await client.get(f"/challenges/{scene.challenge.id}/export.csv"))

    [cell] = [r["author_email"] for r in rows if r["author"] == "Sly"]
    assert cell.lstrip("'") == sly.email.lower()
    assert not cell.startswith(("=", "+", "-", "@")), f"a live formula reaches the spreadsheet: {cell}"
