"""Scoring: a juror's list and form (drafts, submitting, revising until the review closes), specific errors with
nothing saved, assigned ideas only, the audit of every change, the panel view only after submitting, blind
review on every page a juror sees, and the organisers' audit page and CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, Criterion, Phase
from challenges.permissions import Access, Role
from ideaforge.accounts.models import User
from ideaforge.db import Database
from ideaforge.errors import Forbidden
from ideas.jury.models import CriterionScore, JuryAssignment, Scorecard, ScoreChange
from ideas.jury.scoring import hides_authors, save_scores
from ideas.models import Comment
from tests.challenge_helpers import DAY, add_juror, make_challenge, make_organisation, user
from tests.conftest import Backend
from tests.helpers import field_error, login, logout, post_form
from tests.idea_helpers import add_votes, make_idea, make_user

ADMIN, CITIZEN = "admin@rennes.example.org", "citizen@example.org"
JULES, JADE = "jules@jury.example.org", "jade@jury.example.org"
AUTHOR = "Zoé Author"
CRITERIA = [{"name": "Impact", "description": "Who benefits, and how much?", "weight": 2, "scale_min": 1, "scale_max": 5},
            {"name": "Feasibility", "weight": 1, "scale_min": 1, "scale_max": 5}]  # fmt: skip


@dataclass
class World:
    challenge_id: int
    ideas: list[int]
    criteria: dict[str, int]


async def arrange(db: AsyncSession, now: Any, *, blind: bool = False) -> World:
    """A challenge in review (ideas submitted earlier); Jules scores ideas 0 and 1, Jade idea 0; idea 2 is nobody's."""
    org = await make_organisation(db, await make_user(db, ADMIN, "Ada Admin"))
    challenge = await make_challenge(db, org, now, Phase.REVIEW, blind_review=blind, criteria=CRITERIA)
    await make_user(db, CITIZEN, "Chloé Citizen")
    authors = [
        await make_user(db, f"author{i}@example.org", AUTHOR if i == 0 else f"Author {i}") for i in range(3)
    ]
    ideas = [
        await make_idea(db, challenge, a, now - 25 * DAY, title=f"Idea number {i}")
        for i, a in enumerate(authors)
    ]
    await add_votes(
        db, ideas[0], [await make_user(db, f"voter{i}@example.org") for i in range(3)], now - 15 * DAY
    )
    jurors = {
        email: await make_user(db, email, name)
        for email, name in ((JULES, "Jules Juror"), (JADE, "Jade Juror"))
    }
    for juror in jurors.values():
        await add_juror(db, challenge, juror)
    for email, i in ((JULES, 0), (JULES, 1), (JADE, 0)):
        db.add(JuryAssignment(challenge_id=challenge.id, idea_id=ideas[i].id, juror_user_id=jurors[email].id))
    await db.commit()
    criteria = await db.scalars(select(Criterion).where(Criterion.challenge_id == challenge.id))
    return World(challenge.id, [i.id for i in ideas], {c.name: c.id for c in criteria})


async def sign_in_as(client: Any, email: str) -> None:
    await logout(client)
    assert (await login(client, email)).status_code == 303


def url(w: World, idea: int | None = None) -> str:
    return f"/challenges/{w.challenge_id}/scoring" + ("" if idea is None else f"/{w.ideas[idea]}")


def fields(
    w: World, impact: str = "", feasibility: str = "", comment: str = "", overall: str = ""
) -> dict[str, str]:
    i, f = w.criteria["Impact"], w.criteria["Feasibility"]
    return {
        f"score-{i}": impact,
        f"score-{f}": feasibility,
        f"comment-{i}": comment,
        "overall_comment": overall,
    }


async def score(client: Any, w: World, idea: int, action: str, values: dict[str, str]) -> Any:
    return await post_form(client, url(w, idea), {"action": action, **values})


async def card(db: AsyncSession, w: World, idea: int, email: str) -> tuple[Any, ...] | None:
    """(status, Impact score, Feasibility score, Impact comment, overall comment) as stored, or None."""
    db.expire_all()
    juror = await user(db, email)
    found = await db.scalar(select(Scorecard).where(Scorecard.idea_id == w.ideas[idea],
                                                    Scorecard.juror_user_id == juror.id))  # fmt: skip
    if found is None:
        return None
    rows = {
        r.criterion_id: r
        for r in await db.scalars(select(CriterionScore).where(CriterionScore.scorecard_id == found.id))
    }
    i, f = (rows.get(w.criteria[name]) for name in ("Impact", "Feasibility"))
    return (found.status.value, i.score if i else None, f.score if f else None, i.comment if i else "",
            found.overall_comment)  # fmt: skip


async def test_a_juror_drafts_submits_and_revises_and_every_change_is_audited(client, db, clock):
    w = await arrange(db, clock.now())
    impact, feasibility = w.criteria["Impact"], w.criteria["Feasibility"]
    await sign_in_as(client, JULES)
    listing = await client.get(url(w))
    assert "0 of 2 scored" in listing.text
    assert re.findall(r'id="assigned-(\d+)"', listing.text) == [str(w.ideas[0]), str(w.ideas[1])], (
        "assigned only"
    )
    assert listing.text.count(">Not started</span>") == 2

    page = await client.get(url(w, 0))
    radios = re.findall(
        rf'<input type="radio" name="score-{impact}" value="(\d)"[^>]*aria-describedby="desc-{impact}"',
        page.text,
    )
    assert radios == ["1", "2", "3", "4", "5"], "the scale as native radios, described by the criterion"
    assert f'id="desc-{impact}">Who benefits, and how much?' in page.text
    assert 'value="draft"' in page.text
    assert 'value="submit"' in page.text

    response = await score(client, w, 0, "draft", fields(w, impact="4", comment="Helps many"))
    assert response.status_code == 303
    assert await card(db, w, 0, JULES) == ("draft", 4, None, "Helps many", "")
    listing = await client.get(url(w))
    assert "0 of 2 scored" in listing.text
    assert ">Draft</span>" in listing.text

    response = await score(client, w, 0, "submit", fields(w, impact="5", comment="Helps everyone"))
    assert response.status_code == 422
    assert field_error(response.text, f"score-{feasibility}") == (
        "Give “Feasibility” a score from 1 to 5 before submitting."
    )
    assert 'class="error-summary"' in response.text
    assert re.search(rf'name="score-{impact}" value="5"[^>]* checked', response.text), (
        "what was typed is kept"
    )
    assert "Helps everyone</textarea>" in response.text
    assert await card(db, w, 0, JULES) == ("draft", 4, None, "Helps many", ""), "the draft is untouched"

    response = await score(
        client, w, 0, "submit", fields(w, impact="7", feasibility="3", comment="Helps many")
    )
    assert response.status_code == 422
    assert field_error(response.text, f"score-{impact}") == "Choose a score for “Impact” from 1 to 5."
    assert await card(db, w, 0, JULES) == ("draft", 4, None, "Helps many", ""), "nothing saved partially"

    response = await score(client, w, 0, "submit", fields(w, "4", "3", "Helps many", "Promising"))
    assert response.status_code == 303
    assert await card(db, w, 0, JULES) == ("submitted", 4, 3, "Helps many", "Promising")
    stored = await db.scalar(select(Scorecard).where(Scorecard.idea_id == w.ideas[0]))
    assert stored is not None
    assert stored.submitted_at == clock.now()
    listing = await client.get(url(w))
    assert "1 of 2 scored" in listing.text
    assert ">Submitted</span>" in listing.text

    # A submitted card stays submitted: saving it needs every score too, and is a revision.
    response = await score(client, w, 0, "draft", fields(w, impact="5"))
    assert response.status_code == 422
    assert "before submitting" in field_error(response.text, f"score-{feasibility}")
    response = await score(client, w, 0, "draft", fields(w, "5", "3", "Helps many"))
    assert response.status_code == 303
    assert await card(db, w, 0, JULES) == ("submitted", 5, 3, "Helps many", "")
    page = await client.get(url(w, 0))
    assert "Save changes" in page.text
    assert 'value="draft"' not in page.text

    jules = await user(db, JULES)
    changes = (await db.execute(
        select(ScoreChange.field, Criterion.name, ScoreChange.before, ScoreChange.after, ScoreChange.changed_by_id,
               ScoreChange.changed_at).outerjoin(Criterion, Criterion.id == ScoreChange.criterion_id)
        .order_by(ScoreChange.id)
    )).all()  # fmt: skip
    assert [tuple(c[:4]) for c in changes] == [
        ("score", "Impact", None, "4"), ("comment", "Impact", None, "Helps many"), ("status", None, None, "draft"),
        ("score", "Feasibility", None, "3"), ("overall_comment", None, None, "Promising"),
        ("status", None, "draft", "submitted"),
        ("score", "Impact", "4", "5"), ("overall_comment", None, "Promising", None),
    ]  # fmt: skip
    assert {(c.changed_by_id, c.changed_at) for c in changes} == {(jules.id, clock.now())}


async def test_only_assigned_ideas_only_jurors_and_only_during_the_review(client, db, clock):
    now = clock.now()
    w = await arrange(db, now)
    await sign_in_as(client, JULES)
    await score(client, w, 0, "draft", fields(w, impact="2"))
    assert (await client.get(url(w, 2))).status_code == 404
    assert (await score(client, w, 2, "draft", fields(w, impact="2"))).status_code == 404
    assert await card(db, w, 2, JULES) is None
    challenge = await db.get(Challenge, w.challenge_id)
    assert challenge is not None
    with pytest.raises(LookupError):
        await save_scores(
            db, challenge, w.ideas[2], await user(db, JULES), fields(w, "2"), submit=False, now=now
        )

    for email in (CITIZEN, ADMIN, JADE):  # Jade is a juror of the challenge, but idea 1 is not hers
        await sign_in_as(client, email)
        answers = [
            (await client.get(url(w, 1))).status_code,
            (await score(client, w, 1, "draft", {})).status_code,
        ]
        assert answers == [404, 404], email
        assert (await client.get(url(w))).status_code == (200 if email == JADE else 404), email

    await sign_in_as(client, JULES)
    clock.set(now + 6 * DAY)  # the review ended at now + 5 days
    response = await score(client, w, 0, "submit", fields(w, "5", "5"))
    assert response.status_code == 403
    assert "The review closed on" in response.text
    assert "scores can no longer change" in response.text
    assert await card(db, w, 0, JULES) == ("draft", 2, None, "", ""), "nothing saved"
    challenge = await db.get(Challenge, w.challenge_id)
    assert challenge is not None
    with pytest.raises(Forbidden):
        await save_scores(db, challenge, w.ideas[0], await user(db, JULES), fields(w, "5"), submit=False,
                          now=clock.now())  # fmt: skip
    listing = await client.get(url(w))
    assert 'id="scoring-closed"' in listing.text, "read-only, still there"
    assert "0 of 2 scored" in listing.text
    page = await client.get(url(w, 0))
    assert page.status_code == 200
    assert "<fieldset disabled>" in page.text
    assert 'value="submit"' not in page.text

    clock.set(now - 11 * DAY)  # voting: the review has not started
    assert "Scoring opens on" in (await client.get(url(w))).text


async def test_a_juror_sees_the_panel_only_after_submitting(client, db, clock):
    w = await arrange(db, clock.now())
    await sign_in_as(client, JULES)
    page = await client.get(url(w, 0))
    assert f"By {AUTHOR}" in page.text, "not blind: authors shown"
    assert "3 votes" in page.text
    await score(client, w, 0, "submit", fields(w, "4", "3", "Strong local partners", "Worth funding"))

    await sign_in_as(client, JADE)
    page = await client.get(url(w, 0))
    assert page.status_code == 200
    assert 'id="panel"' not in page.text
    assert "Jules Juror" not in page.text
    assert "Strong local partners" not in page.text
    assert "Worth funding" not in page.text
    await score(client, w, 0, "draft", fields(w, "2", "5"))
    assert 'id="panel"' not in (await client.get(url(w, 0))).text, "a draft is not enough"

    await score(client, w, 0, "submit", fields(w, "2", "5"))
    page = await client.get(url(w, 0))
    panel = page.text[page.text.index('id="panel"') :]
    assert "Jules Juror" in panel
    assert "Strong local partners" in panel
    assert "Worth funding" in panel
    assert "2 jurors have submitted scores" in panel
    weighted = re.search(r'id="panel-weighted">(.*?)</tr>', panel, re.S)
    assert weighted is not None
    assert re.findall(r"<td>([\d.]+)</td>", weighted.group(1)) == ["50", "66.7", "16.7"], (
        "Jade, Jules, spread"
    )


async def token(client: Any, email: str) -> str:
    created = await client.post(
        "/api/v1/tokens", json={"email": email, "password": "correct horse battery staple"}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["token"])


async def test_blind_review_hides_authors_and_votes_from_jurors_only(client, db, clock):
    w = await arrange(db, clock.now(), blind=True)
    author = await user(db, "author0@example.org")
    db.add(Comment(idea_id=w.ideas[0], author_id=author.id, body="Happy to answer questions."))
    await db.commit()
    await sign_in_as(client, JULES)
    page = await client.get(url(w, 0))
    assert 'id="blind-review"' in page.text
    assert AUTHOR not in page.text
    assert "3 votes" not in page.text
    assert 'id="idea-votes"' not in page.text
    for path in (f"/ideas/{w.ideas[0]}", f"/challenges/{w.challenge_id}/ideas"):
        seen = await client.get(path)
        assert seen.status_code == 200
        assert AUTHOR not in seen.text, path
        assert 'class="vote-count"' not in seen.text, path
    assert "An author of the idea" in (await client.get(f"/ideas/{w.ideas[0]}")).text
    bearer = {"authorization": f"Bearer {await token(client, JULES)}"}
    api = (await client.get(f"/api/v1/ideas/{w.ideas[0]}", headers=bearer)).json()
    assert (api["author"], api["votes"]) == (None, None), "the API hides them too"
    listed = (await client.get(f"/api/v1/challenges/{w.challenge_id}/ideas", headers=bearer)).json()["items"]
    assert listed, "the juror sees the ideas"
    assert all(i["author"] is None and i["votes"] is None for i in listed)

    await sign_in_as(client, ADMIN)
    for path in (f"/ideas/{w.ideas[0]}", f"/challenges/{w.challenge_id}/ideas"):
        seen = await client.get(path)
        assert AUTHOR in seen.text, f"the organiser sees all: {path}"
        assert 'class="vote-count"' in seen.text
    bearer = {"authorization": f"Bearer {await token(client, ADMIN)}"}
    assert (await client.get(f"/api/v1/ideas/{w.ideas[0]}", headers=bearer)).json()["author"] == AUTHOR
    challenge = await db.get(Challenge, w.challenge_id)
    assert challenge is not None
    roles = {"juror": {Role.CITIZEN, Role.JUROR}, "juror and author": {Role.JUROR, Role.AUTHOR},
             "juror and admin": {Role.JUROR, Role.ADMIN}, "citizen": {Role.CITIZEN}}  # fmt: skip
    hidden = {
        who: hides_authors(Access(challenge, clock.now(), frozenset(r)), challenge)
        for who, r in roles.items()
    }
    assert hidden == {"juror": True, "juror and author": False, "juror and admin": False, "citizen": False}
    challenge.blind_review = False
    assert not hides_authors(Access(challenge, clock.now(), frozenset(roles["juror"])), challenge)


async def test_the_organisers_audit_and_export_the_scores(client, db, clock):
    w = await arrange(db, clock.now())
    await sign_in_as(client, JULES)
    await score(client, w, 0, "submit", fields(w, "4", "3", "=cmd|' /C calc'!A0", '=HYPERLINK("http://x")'))
    await sign_in_as(client, JADE)
    await score(client, w, 0, "draft", fields(w, impact="2"))
    for path in ("/jury/audit", "/jury/scores.csv", "/jury/changes.csv"):
        assert (await client.get(f"/challenges/{w.challenge_id}{path}")).status_code == 404, path

    await sign_in_as(client, ADMIN)
    audit = await client.get(f"/challenges/{w.challenge_id}/jury/audit")
    assert audit.status_code == 200
    rows = re.findall(r'<tr class="score-change">(.*?)</tr>', audit.text, re.S)
    assert len(rows) == 7, (
        "Jules: 2 scores, a comment, the overall comment, the status; Jade: a score, the status"
    )
    assert "7 changes" in audit.text
    assert all("Jade Juror" in r for r in rows[:2]), "newest first"
    assert any("Jade Juror" in r and "Impact" in r and re.search(r"empty.*</td>\s*<td[^>]*>2</td>", r, re.S)
               for r in rows), "before → after"  # fmt: skip
    assert any("Jules Juror" in r and "Submitted" in r for r in rows)

    export = await client.get(f"/challenges/{w.challenge_id}/jury/scores.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert (
        export.headers["content-disposition"]
        == f'attachment; filename="challenge-{w.challenge_id}-scores.csv"'
    )
    table = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert table[0] == ["idea_id", "idea_title", "juror", "juror_email", "status", "submitted_at", "Impact score",
                        "Impact comment", "Feasibility score", "Feasibility comment", "overall_comment"]  # fmt: skip
    assert [r[2:5] for r in table[1:]] == [["Jade Juror", JADE, "draft"], ["Jules Juror", JULES, "submitted"]]
    jade, jules = table[1], table[2]
    assert (jade[6], jade[8], jade[5]) == ("2", "", "")
    assert (jules[6], jules[7], jules[8]) == ("4", "'=cmd|' /C calc'!A0", "3"), "formulas defused"
    assert jules[10] == '\'=HYPERLINK("http://x")'
    changes = await client.get(f"/challenges/{w.challenge_id}/jury/changes.csv")
    assert len(list(csv.reader(io.StringIO(changes.content.decode("utf-8-sig"))))) == 1 + 7


async def test_two_saves_racing_on_a_new_card_make_one_card(backend: Backend, db, clock):
    w = await arrange(db, clock.now())
    database = Database(backend.settings.resolved_database_url)

    async def one(impact: str) -> int:
        async with database.sessionmaker() as session:
            challenge = await session.get(Challenge, w.challenge_id)
            juror = await session.scalar(select(User).where(User.email == JULES))
            assert challenge is not None
            assert juror is not None
            saved = await save_scores(session, challenge, w.ideas[0], juror, fields(w, impact), submit=False,
                                      now=clock.now())  # fmt: skip
            return saved.id

    try:
        ids = await asyncio.gather(one("2"), one("4"))
    finally:
        await database.dispose()
    assert ids[0] == ids[1], "the second save found the card the first created"
    db.expire_all()
    assert len(list(await db.scalars(select(Scorecard)))) == 1
    statuses = list(await db.scalars(select(ScoreChange.after).where(ScoreChange.field == "status")))
    assert statuses == ["draft"], "created once"
    scores = list(await db.execute(select(ScoreChange.before, ScoreChange.after).where(ScoreChange.field == "score")
                                   .order_by(ScoreChange.id)))  # fmt: skip
    assert [tuple(s) for s in scores] in ([(None, "2"), ("2", "4")], [(None, "4"), ("4", "2")])
