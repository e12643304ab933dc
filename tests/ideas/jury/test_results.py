"""Results: the organisation's calibrated ranking while the jury works (nobody else sees it), publishing
once the review is over (with confirmation, a chosen number of winners, nothing changed on bad input), and
what citizens then see: the winners on the challenge page, the ranking and the API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, ChallengeJuror, Criterion, Phase
from ideaforge.accounts.models import User
from ideaforge.notifications.models import Notification
from ideaforge.notifications.services import set_following
from ideas.jury.models import CriterionScore, JuryAssignment, PublishedResult, Scorecard, ScorecardStatus
from ideas.models import ShortlistEntry
from tests.challenge_helpers import DAY, make_challenge, make_organisation
from tests.helpers import login, logout, post_form
from tests.idea_helpers import make_idea, make_user

ADMIN = "admin@rennes.example.org"
CITIZEN = "citizen@example.org"
LENIENT, HARSH, BRIEF = "lenient@example.org", "harsh@example.org", "brief@example.org"
# Both criteria get the same score on each card, so a card's raw score is (s - 1) / 4 as a percentage.
CARDS: dict[str, dict[str, int]] = {
    LENIENT: {"A": 5, "B": 4, "C": 3, "D": 2},  # generous: median 62.5 %
    HARSH: {"E": 3, "B": 2, "C": 1, "D": 1},  # severe: E is by far their best, yet only 50 % raw
    BRIEF: {"A": 5},  # one card: too few to calibrate, used raw
}


@dataclass
class World:
    challenge_id: int
    ideas: dict[str, int]
    jurors: dict[str, int]
    review: datetime
    results: datetime


async def _card(db: AsyncSession, challenge_id: int, idea_id: int, juror_id: int, score: int,
                status: ScorecardStatus = ScorecardStatus.SUBMITTED) -> None:  # fmt: skip
    assignment = JuryAssignment(challenge_id=challenge_id, idea_id=idea_id, juror_user_id=juror_id)
    db.add(assignment)
    await db.flush()
    card = Scorecard(assignment_id=assignment.id, challenge_id=challenge_id, idea_id=idea_id,
                     juror_user_id=juror_id, status=status)  # fmt: skip
    db.add(card)
    await db.flush()
    criteria = await db.scalars(select(Criterion.id).where(Criterion.challenge_id == challenge_id))
    db.add_all(CriterionScore(scorecard_id=card.id, criterion_id=c, score=score) for c in criteria)
    await db.commit()


async def arrange(db: AsyncSession, now: datetime) -> World:
    admin = await make_user(db, ADMIN, "Ada Admin")
    org = await make_organisation(db, admin)
    citizen = await make_user(db, CITIZEN, "Chloé Citizen")
    challenge = await make_challenge(db, org, now, Phase.SUBMISSION)
    challenge_id = challenge.id
    author = await make_user(db, "author@example.org", "Author")
    ideas = {}
    for name in "ABCDE":
        idea = await make_idea(db, challenge, author, now, title=f"Idea {name}")
        ideas[name] = idea.id
        db.add(ShortlistEntry(challenge_id=challenge_id, idea_id=idea.id))
    await db.commit()
    await set_following(db, citizen, "challenge", challenge_id, True)
    jurors = {}
    for email in CARDS:
        juror = await make_user(db, email, email.split("@")[0].title())
        jurors[email] = juror.id
        db.add(ChallengeJuror(challenge_id=challenge_id, user_id=juror.id))
    await db.commit()
    for email, cards in CARDS.items():
        for name, score in cards.items():
            await _card(db, challenge_id, ideas[name], jurors[email], score)
    # A draft never counts: the brief juror's unfinished card would sink E.
    await _card(db, challenge_id, ideas["E"], jurors[BRIEF], 1, ScorecardStatus.DRAFT)
    return World(challenge_id, ideas, jurors, now + 25 * DAY, now + 35 * DAY)


async def sign_in_as(client: Any, email: str) -> None:
    await logout(client)
    assert (await login(client, email)).status_code == 303


def order(html: str, w: World) -> list[str]:
    names = {str(i): n for n, i in w.ideas.items()}
    return [names[i] for i in re.findall(r'<tr id="result-(\d+)"', html)]


def row(html: str, w: World, name: str) -> str:
    found = re.search(rf'<tr id="result-{w.ideas[name]}".*?</tr>', html, re.S)
    assert found, name
    return found.group(0)


async def test_the_organisation_sees_the_calibrated_ranking_and_nobody_else_before_publication(
    client, db, clock
):
    w = await arrange(db, clock.now())
    clock.set(w.review)
    await sign_in_as(client, ADMIN)
    detail = await client.get(f"/challenges/{w.challenge_id}")
    assert f'href="/challenges/{w.challenge_id}/results"' in detail.text
    page = await client.get(f"/challenges/{w.challenge_id}/results")
    assert page.status_code == 200
    assert "Not published yet" in page.text
    # The harsh juror's best idea wins once each juror is compared with their own habits; on raw scores
    # the lenient juror's ideas would all come first. D fails Feasibility's minimum (mean 1.5 < 2): last.
    assert order(page.text, w) == ["E", "A", "B", "C", "D"]
    assert "Below the minimum on: Feasibility" in row(page.text, w, "D")
    assert "Below the minimum" not in row(page.text, w, "E")
    assert "1 juror scored too few ideas to be calibrated: their scores are used raw." in page.text
    assert "Calibration needs at least 4 scored ideas per juror." in page.text
    assert re.search(r"Brief</th>\s*<td>1</td>\s*<td>raw: fewer than 4 ideas scored", page.text)
    assert "Krippendorff" in page.text
    assert "Publishing opens when the review is over" in page.text
    refused = await post_form(client, f"/challenges/{w.challenge_id}/results/publish",
                              {"winners": "2", "confirm": "on"})  # fmt: skip
    assert refused.status_code == 303
    db.expire_all()
    assert (await db.get(Challenge, w.challenge_id)).results_published_at is None

    for email in (CITIZEN, LENIENT):  # a juror is no insider: the ranking is the organisation's
        await sign_in_as(client, email)
        page = await client.get(f"/challenges/{w.challenge_id}/results")
        assert page.status_code == 403, email
        assert "The results are not published yet" in page.text
        assert "Idea E" not in page.text
        api = await client.get(f"/api/v1/challenges/{w.challenge_id}/results")
        assert api.status_code == 403
    await logout(client)
    assert (await client.get(f"/api/v1/challenges/{w.challenge_id}/results")).status_code == 403
    assert (await client.get("/api/v1/challenges/999999/results")).status_code == 404


async def test_the_organiser_publishes_and_citizens_see_the_winners(client, db, clock):
    w = await arrange(db, clock.now())
    clock.set(w.results)
    await sign_in_as(client, ADMIN)
    url = f"/challenges/{w.challenge_id}/results/publish"
    bad = [({"winners": "2"}, "confirm", "Tick the box to confirm"),
           ({"winners": "0", "confirm": "on"}, "winners", "Choose between 1 and 4 winners"),
           ({"winners": "two", "confirm": "on"}, "winners", "whole number")]  # fmt: skip
    for data, field, message in bad:
        answer = await post_form(client, url, data)
        assert answer.status_code == 422, data
        assert message in answer.text
        assert f'id="error-{field}"' in answer.text
        assert f'value="{data["winners"]}"' in answer.text, "the typed number is kept"
    db.expire_all()
    assert (await db.get(Challenge, w.challenge_id)).results_published_at is None
    assert await db.scalar(select(func.count()).select_from(PublishedResult)) == 0

    done = await post_form(client, url, {"winners": "2", "confirm": "on"})
    assert done.status_code == 303
    again = await post_form(client, url, {"winners": "1", "confirm": "on"})
    page = await client.get(again.headers["location"])
    assert "The results are already published" in page.text

    await sign_in_as(client, CITIZEN)
    detail = await client.get(f"/challenges/{w.challenge_id}")
    winners = re.search(r'<section class="winners".*?</section>', detail.text, re.S)
    assert winners, "the challenge page lists the winners"
    assert re.findall(r"<li><a href=\"/ideas/\d+\">(Idea \w)</a></li>", winners.group(0)) == [
        "Idea E",
        "Idea A",
    ]
    page = await client.get(f"/challenges/{w.challenge_id}/results")
    assert page.status_code == 200
    assert order(page.text, w) == ["E", "A", "B", "C", "D"]
    assert "Winner" in row(page.text, w, "E")
    assert "Winner" not in row(page.text, w, "B")
    assert "Brief" not in page.text, "juror names stay inside the organisation"
    api = (await client.get(f"/api/v1/challenges/{w.challenge_id}/results")).json()
    assert api["published"] is True
    lines = {line["title"]: line for line in api["ranking"]}
    assert [line["title"] for line in api["ranking"]] == ["Idea E", "Idea A", "Idea B", "Idea C", "Idea D"]
    assert lines["Idea E"]["raw_score"] == 50.0
    assert lines["Idea A"]["raw_score"] == 100.0
    assert lines["Idea E"]["calibrated_score"] > lines["Idea A"]["calibrated_score"]
    assert [lines[t]["winner"] for t in ("Idea E", "Idea A", "Idea B")] == [True, True, False]
    assert lines["Idea D"]["passed_minimums"] is False
    told = await db.scalars(select(Notification.user_id).where(Notification.kind == "results_published"))
    citizen = await db.scalar(select(User.id).where(User.email == CITIZEN))
    assert citizen in set(told), "followers are told"
