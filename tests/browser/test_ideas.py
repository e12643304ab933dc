"""Ideas in a real browser: one citizen submits, another votes, the first sees the count move live."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect

from challenges.models import Phase
from ideaforge.db import Database
from ideaforge.organisations.models import Role
from ideas.models import Comment, Report
from tests.browser.conftest import LiveServer, log_in, register, seeded_server
from tests.challenge_helpers import add_member, make_challenge, make_organisation
from tests.idea_helpers import make_idea, make_user

pytestmark = pytest.mark.browser


async def _seed(url: str) -> int:
    """A challenge with submission and voting both open now (the overlap the rules allow), a moderator,
    and an idea with a reported comment."""
    database = Database(url)
    now = datetime.now(UTC)
    async with database.sessionmaker() as db:
        org = await make_organisation(db, await make_user(db, "organiser@example.org", "Organiser"))
        await add_member(db, org, await make_user(db, "moderator@example.org", "Moderator"), Role.MODERATOR)
        challenge = await make_challenge(
            db, org, now, Phase.SUBMISSION, title="Greener school yards", tags=[],
            voting_starts_at=now - timedelta(hours=1), votes_per_user=None,
        )  # fmt: skip
        challenge_id = challenge.id
        citizen = await make_user(db, "citizen@example.org", "Citizen")
        idea = await make_idea(db, challenge, citizen, now, title="Rain gardens by the gates")
        spam = Comment(idea_id=idea.id, author_id=citizen.id, body="Cheap watches here!!!", created_at=now)
        db.add(spam)
        await db.flush()
        db.add(Report(challenge_id=challenge_id, idea_id=idea.id, comment_id=spam.id, reporter_id=citizen.id,
                      reason="Advertising"))  # fmt: skip
        await db.commit()
    await database.dispose()
    return challenge_id


@pytest.fixture(scope="module")
def open_challenge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, int]]:
    with seeded_server(tmp_path_factory.mktemp("ideas-live"), _seed) as (server, challenge_id):
        yield server, challenge_id


async def test_a_vote_shows_live_on_another_citizens_page(open_challenge, browser):
    server, challenge_id = open_challenge
    problems: list[str] = []
    author_ctx, voter_ctx = await browser.new_context(), await browser.new_context()
    author, voter = await author_ctx.new_page(), await voter_ctx.new_page()
    for page in (author, voter):
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource") else None)  # fmt: skip

    await register(author, server.url, "author@example.org", "Author")
    await author.goto(f"{server.url}/challenges/{challenge_id}")
    await author.get_by_role("link", name="Submit an idea").click()
    await author.get_by_label("Title").fill("Plant fruit trees in every school yard")
    await author.get_by_label("Your idea").fill("Pupils look after them and **share** the harvest.")
    await author.get_by_role("button", name="Publish my idea").click()
    await expect(author.get_by_role("heading", level=1)).to_have_text(
        "Plant fruit trees in every school yard"
    )
    idea_id = author.url.rstrip("/").rsplit("/", 1)[-1]

    await author.goto(f"{server.url}/challenges/{challenge_id}")
    count = author.locator(f'[sse-swap="votes-{idea_id}"]')
    await expect(count).to_have_text("0")
    await author.wait_for_timeout(500)  # let the event stream connect

    await register(voter, server.url, "voter@example.org", "Voter")
    await voter.goto(f"{server.url}/challenges/{challenge_id}/ideas")
    card = voter.locator(f'[data-idea="{idea_id}"]')
    await card.get_by_role("button", name="Vote").click()
    await expect(card.get_by_role("button", name="Remove my vote")).to_be_visible()

    await expect(count).to_have_text("1", timeout=10_000)  # no reload on the author's side
    await card.get_by_role("button", name="Remove my vote").click()
    await expect(count).to_have_text("0", timeout=10_000)
    assert not problems, problems
    await author_ctx.close()
    await voter_ctx.close()


async def test_a_moderator_hides_a_reported_comment(open_challenge, browser):
    server, challenge_id = open_challenge
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, server.url, "moderator@example.org")
    await page.goto(f"{server.url}/challenges/{challenge_id}/moderation")
    report = page.locator(".report").filter(has_text="Cheap watches here!!!")
    await expect(report).to_contain_text("Advertising")
    await report.get_by_label("Reason (shown to the author)").fill("Advertising is not allowed here.")
    await report.get_by_role("button", name="Hide").click()
    await expect(page.get_by_text("No open report.")).to_be_visible()

    visitor = await (await browser.new_context()).new_page()
    await visitor.goto(f"{server.url}/challenges/{challenge_id}/ideas")
    await visitor.get_by_role("link", name="Rain gardens by the gates").click()
    comments = visitor.locator("#comments")
    await expect(comments).to_contain_text("This comment is hidden by the moderators.")
    await expect(comments).not_to_contain_text("Cheap watches")
    await context.close()
