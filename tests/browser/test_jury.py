"""A jury in a real browser: two jurors score, one in French and one in English (each sees the other's scores
only after submitting), the organiser ends the review and publishes, and a citizen sees the winner."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import update

from challenges.models import Challenge, ChallengeJuror, Phase
from ideaforge.db import Database
from ideaforge.i18n import gettext, ngettext, use_locale
from ideas.jury.models import JuryAssignment
from ideas.models import ShortlistEntry
from tests.browser.conftest import PASSWORD, LiveServer, log_in, seeded_server
from tests.challenge_helpers import challenge_input, make_challenge, make_organisation
from tests.idea_helpers import make_idea, make_user

pytestmark = pytest.mark.browser
TREES, FOUNTAINS = "Trees in every schoolyard", "Water fountains by the benches"
JULIETTE, JACK = "Juliette Juré", "Jack Juror"


def fr(message: str, **params: object) -> str:
    with use_locale("fr"):
        return gettext(message, **params)


async def _seed(url: str) -> int:
    """A challenge in review (dates moved there after its ideas were submitted), both ideas shortlisted, and
    both given to both jurors."""
    database = Database(url)
    now = datetime.now(UTC)
    async with database.sessionmaker() as db:
        org = await make_organisation(db, await make_user(db, "organiser@example.org", "Organiser"))
        challenge = await make_challenge(db, org, now, Phase.SUBMISSION, title="Cooler schoolyards", tags=[],
                                         jurors_per_idea=2)  # fmt: skip
        challenge_id = challenge.id
        author = await make_user(db, "author@example.org", "Author")
        ideas = [
            (await make_idea(db, challenge, author, now, title=title)).id for title in (TREES, FOUNTAINS)
        ]
        review = challenge_input(now, Phase.REVIEW)
        dates = ("submission_starts_at", "submission_ends_at", "voting_starts_at", "voting_ends_at",
                 "review_ends_at", "results_ends_at")  # fmt: skip
        await db.execute(
            update(Challenge).where(Challenge.id == challenge_id).values({d: review[d] for d in dates})
        )
        jurors = [
            await make_user(db, "juree@example.org", JULIETTE),
            await make_user(db, "juror@example.org", JACK),
        ]
        await make_user(db, "citizen@example.org", "Chloé Citizen")
        db.add_all(ShortlistEntry(challenge_id=challenge_id, idea_id=i) for i in ideas)
        db.add_all(ChallengeJuror(challenge_id=challenge_id, user_id=j.id) for j in jurors)
        db.add_all(JuryAssignment(challenge_id=challenge_id, idea_id=i, juror_user_id=j.id)
                   for i in ideas for j in jurors)  # fmt: skip
        await db.commit()
    await database.dispose()
    return challenge_id


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, int]]:
    with seeded_server(tmp_path_factory.mktemp("jury-live"), _seed) as (server, challenge_id):
        yield server, challenge_id


async def _page(browser: Browser, locale: str, problems: list[str]) -> Page:
    context = await browser.new_context(locale=locale)
    page = await context.new_page()
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    return page


async def _score(page: Page, title: str, scores: dict[str, int], submit: str, submitted: str) -> None:
    await page.get_by_role("link", name=title).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(title)
    for criterion, score in scores.items():
        await (
            page.get_by_role("group", name=re.compile(f"^{criterion}"))
            .get_by_label(str(score), exact=True)
            .check()
        )
    await page.get_by_role("button", name=submit).click()
    await expect(page.locator("#card-state")).to_have_text(submitted)


async def test_two_jurors_score_the_organiser_publishes_and_a_citizen_sees_the_winner(review, browser):
    server, challenge_id = review
    problems: list[str] = []
    scoring = f"{server.url}/challenges/{challenge_id}/scoring"

    # Juliette scores in French: the whole form is in French, and her list counts what she submitted.
    juliette = await _page(browser, "fr-FR", problems)
    await juliette.goto(f"{server.url}/login")
    await juliette.get_by_label(fr("Email address")).fill("juree@example.org")
    await juliette.get_by_label(fr("Password")).fill(PASSWORD)
    await juliette.get_by_role("button", name=fr("Log in")).click()
    await expect(juliette.get_by_role("button", name=fr("Log out"))).to_be_visible()
    await juliette.goto(scoring)
    await expect(juliette.get_by_role("heading", level=1)).to_have_text(fr("Your ideas to score"))
    await _score(juliette, TREES, {"Impact": 5, "Feasibility": 4}, fr("Submit scores"), fr("Submitted"))
    await juliette.goto(scoring)
    with use_locale("fr"):
        progress = ngettext("%(num)s of %(total)s scored", "%(num)s of %(total)s scored", 1, total=2)
    await expect(juliette.locator("#scoring-progress")).to_have_text(progress)
    await _score(juliette, FOUNTAINS, {"Impact": 2, "Feasibility": 3}, fr("Submit scores"), fr("Submitted"))

    # Jack scores in English; Juliette's scores appear only once his own are in.
    jack = await _page(browser, "en-GB", problems)
    await log_in(jack, server.url, "juror@example.org")
    await jack.goto(scoring)
    await jack.get_by_role("link", name=TREES).click()
    await expect(jack.locator("#panel")).to_have_count(0)
    await expect(jack.get_by_text(JULIETTE)).to_have_count(0)
    await jack.goto(scoring)
    await _score(jack, TREES, {"Impact": 4, "Feasibility": 4}, "Submit scores", "Submitted")
    await expect(jack.locator("#panel")).to_contain_text(JULIETTE)
    await jack.goto(scoring)
    await _score(jack, FOUNTAINS, {"Impact": 2, "Feasibility": 2}, "Submit scores", "Submitted")
    await jack.goto(scoring)
    await expect(jack.locator("#scoring-progress")).to_have_text("2 of 2 scored")

    # The organiser ends the review by hand and publishes one winner, confirming first.
    organiser = await _page(browser, "en-GB", problems)
    await log_in(organiser, server.url, "organiser@example.org")
    await organiser.goto(f"{server.url}/challenges/{challenge_id}/phase")
    await organiser.get_by_label("Phase").select_option(label="Results")
    await organiser.get_by_label("Reason").fill("The jury finished early.")
    await organiser.get_by_role("button", name="Change the phase").click()
    await organiser.goto(f"{server.url}/challenges/{challenge_id}")
    await organiser.get_by_role("link", name="Results", exact=True).click()
    await expect(organiser.locator("#results-unpublished")).to_be_visible()
    await organiser.get_by_label("Number of winners").fill("1")
    await organiser.get_by_role("button", name="Publish the results").click()
    await expect(organiser.locator("#error-confirm")).to_be_visible()  # not confirmed: nothing published
    await organiser.get_by_label(re.compile("I confirm: publishing is final")).check()
    await organiser.get_by_role("button", name="Publish the results").click()
    await expect(organiser.locator("#results-published")).to_be_visible()

    # A citizen finds the winner on the challenge page, and the ranking behind it.
    citizen = await _page(browser, "en-GB", problems)
    await log_in(citizen, server.url, "citizen@example.org")
    await citizen.goto(f"{server.url}/challenges/{challenge_id}")
    winners = citizen.locator("section.winners")
    await expect(winners.get_by_role("listitem")).to_have_text([TREES])
    await winners.get_by_role("link", name="See the full results").click()
    await expect(citizen.locator("tr.winner")).to_contain_text(TREES)
    await expect(citizen.get_by_role("table")).not_to_contain_text(JULIETTE)
    assert problems == []
