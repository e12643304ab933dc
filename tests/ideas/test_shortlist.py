"""The shortlist: the organisers' page (ideas by votes with their expert comments), adding and removing
within the challenge's size (also when two adds race for the last slot), published ideas only, admins only,
locked once the review starts (with since when), the authors told, the public badge once locked, and experts
suggested for the shortlisted ideas only."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, Phase
from challenges.services import override_phase
from ideaforge.audit import AuditEvent
from ideaforge.db import Database
from ideaforge.errors import Conflict, Forbidden
from ideaforge.notifications.models import Notification
from ideaforge.organisations.models import Role as OrgRole
from ideaforge.profiles.models import ExpertAssignment
from ideas.models import CoAuthor, CoAuthorStatus, Comment, Idea, IdeaStatus, ShortlistEntry
from ideas.shortlist import add_to_shortlist
from tests.challenge_helpers import add_member, make_challenge, make_organisation
from tests.conftest import Backend
from tests.helpers import login, logout, post_form
from tests.idea_helpers import add_votes, make_idea, make_user

ADMIN = "admin@rennes.example.org"
MODERATOR = "moderator@rennes.example.org"
CITIZEN = "citizen@example.org"
TITLES = ("Bread for food banks", "Compost in every district", "Repair cafés", "Seed library")
VOTES = (1, 3, 0, 2)


@dataclass
class World:
    challenge_id: int
    ideas: dict[str, int]
    authors: dict[str, int]
    coauthor_id: int


async def arrange(db: AsyncSession, now: datetime, *, size: int = 2) -> World:
    admin = await make_user(db, ADMIN, "Ada Admin")
    org = await make_organisation(db, admin)
    await add_member(db, org, await make_user(db, MODERATOR, "Maud Moderator"), OrgRole.MODERATOR)
    await make_user(db, CITIZEN, "Chloé Citizen")
    challenge = await make_challenge(db, org, now, Phase.SUBMISSION, shortlist_size=size)
    voters = [await make_user(db, f"voter{i}@example.org") for i in range(3)]
    ideas, authors = {}, {}
    for i, (title, votes) in enumerate(zip(TITLES, VOTES, strict=True)):
        author = await make_user(db, f"author{i}@example.org", f"Author {i}")
        idea = await make_idea(db, challenge, author, now + timedelta(minutes=i), title=title)
        ideas[title], authors[title] = idea.id, author.id
        await add_votes(db, idea, voters[:votes], now)
    coauthor = await make_user(db, "coauthor@example.org", "Cora Coauthor")
    db.add(CoAuthor(idea_id=ideas[TITLES[1]], user_id=coauthor.id, status=CoAuthorStatus.ACCEPTED))
    await db.commit()
    return World(challenge.id, ideas, authors, coauthor.id)


async def sign_in_as(client: Any, email: str) -> None:
    await logout(client)
    response = await login(client, email)
    assert response.status_code == 303, response.text


def url(w: World) -> str:
    return f"/challenges/{w.challenge_id}/shortlist"


async def add(client: Any, w: World, title: str) -> Any:
    return await post_form(client, f"{url(w)}/add", {"idea": str(w.ideas[title])})


async def remove(client: Any, w: World, title: str) -> Any:
    return await post_form(client, f"{url(w)}/remove", {"idea": str(w.ideas[title])})


async def entries(db: AsyncSession, w: World) -> set[int]:
    db.expire_all()
    return set(
        await db.scalars(select(ShortlistEntry.idea_id).where(ShortlistEntry.challenge_id == w.challenge_id))
    )


async def flashed(client: Any, response: Any) -> str:
    """Follow the 303 and return the page's flash messages."""
    assert response.status_code == 303, response.text
    page = await client.get(response.headers["location"])
    return " ".join(m.strip() for m in re.findall(r'<p class="flash[^"]*"[^>]*>(.*?)</p>', page.text, re.S))


async def notifications(db: AsyncSession, kind: str) -> list[tuple[int, str, str]]:
    db.expire_all()
    rows = await db.execute(
        select(Notification.user_id, Notification.text, Notification.link)
        .where(Notification.kind == kind)
        .order_by(Notification.id)
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_the_admin_builds_the_shortlist_from_the_ideas_by_votes(client, db, clock):
    w = await arrange(db, clock.now())
    await sign_in_as(client, ADMIN)
    detail = await client.get(f"/challenges/{w.challenge_id}")
    assert f'href="{url(w)}"' in detail.text, "linked from the admin area"

    page = await client.get(url(w))
    assert page.status_code == 200
    order = [m for m in re.findall(r'id="candidate-(\d+)"', page.text)]
    assert order == [str(w.ideas[t]) for t in ("Compost in every district", "Seed library",
                                               "Bread for food banks", "Repair cafés")], "by votes"  # fmt: skip
    assert "On the shortlist: 0 of 2" in page.text
    assert "The shortlist is empty." in page.text

    assert "is on the shortlist" in await flashed(client, await add(client, w, TITLES[1]))
    assert "is on the shortlist" in await flashed(client, await add(client, w, TITLES[3]))
    assert await entries(db, w) == {w.ideas[TITLES[1]], w.ideas[TITLES[3]]}

    page = await client.get(url(w))
    assert "On the shortlist: 2 of 2" in page.text
    assert "The shortlist is full" in page.text
    candidate_forms = re.findall(r'<tr id="candidate-\d+">.*?</tr>', page.text, re.S)
    assert all(" disabled" in f for f in candidate_forms if "/shortlist/add" in f), (
        "add buttons disabled when full"
    )

    told = await notifications(db, "shortlisted")
    assert {u for u, _t, _l in told} == {w.authors[TITLES[1]], w.coauthor_id, w.authors[TITLES[3]]}, (
        "the author and the accepted co-author, nobody else"
    )
    text = next(t for u, t, _l in told if u == w.coauthor_id)
    assert text.startswith(f"Your idea “{TITLES[1]}” is on the shortlist of “How can we cut food waste?")
    assert {link for _u, _t, link in told} == {f"/ideas/{w.ideas[TITLES[1]]}", f"/ideas/{w.ideas[TITLES[3]]}"}

    assert "off the shortlist" in await flashed(client, await remove(client, w, TITLES[3]))
    assert await entries(db, w) == {w.ideas[TITLES[1]]}
    assert {u for u, _t, _l in await notifications(db, "shortlist_removed")} == {w.authors[TITLES[3]]}
    actions = list(await db.scalars(select(AuditEvent.action).where(AuditEvent.action.like("shortlist_%"))
                                    .order_by(AuditEvent.id)))  # fmt: skip
    assert actions == ["shortlist_add", "shortlist_add", "shortlist_remove"]


async def test_the_page_shows_expert_comments(client, db, clock):
    from ideaforge.profiles.models import AssignmentStatus

    w = await arrange(db, clock.now())
    expert = await make_user(db, "expert@example.org", "Ed Expert")
    idea_id = w.ideas[TITLES[0]]
    db.add(ExpertAssignment(challenge_id=w.challenge_id, idea_id=idea_id, expert_user_id=expert.id,
                            status=AssignmentStatus.CONFIRMED, affinity=0.5, reason=""))  # fmt: skip
    db.add_all([Comment(idea_id=idea_id, author_id=expert.id, body="Worth trying."),
                Comment(idea_id=idea_id, author_id=expert.id, body="Talk to bakers."),
                Comment(idea_id=idea_id, author_id=w.authors[TITLES[2]], body="Not an expert.")])  # fmt: skip
    await db.commit()
    await sign_in_as(client, ADMIN)
    page = await client.get(url(w))
    row = re.search(rf'<tr id="candidate-{idea_id}">(.*?)</tr>', page.text, re.S)
    assert row is not None
    assert re.findall(r"<td>(\d+)</td>", row.group(1)) == ["1", "2"], "1 vote, 2 expert comments"


async def test_the_size_is_a_limit_and_only_published_ideas_enter(client, db, clock):
    w = await arrange(db, clock.now())
    await sign_in_as(client, ADMIN)
    await add(client, w, TITLES[0])
    await add(client, w, TITLES[1])
    message = await flashed(client, await add(client, w, TITLES[2]))
    assert "The shortlist is full: it holds at most 2 ideas." in message
    assert await entries(db, w) == {w.ideas[TITLES[0]], w.ideas[TITLES[1]]}

    await remove(client, w, TITLES[0])
    for title, status, expected in (
        (TITLES[2], IdeaStatus.MERGED, "was merged into another idea"),
        (TITLES[3], IdeaStatus.WITHDRAWN, "was withdrawn by its author"),
    ):
        await db.execute(update(Idea).where(Idea.id == w.ideas[title]).values(status=status))
        await db.commit()
        assert expected in await flashed(client, await add(client, w, title))
    assert await entries(db, w) == {w.ideas[TITLES[1]]}
    page = await client.get(url(w))
    assert f'id="candidate-{w.ideas[TITLES[2]]}"' not in page.text, (
        "merged ideas are folded into their survivor"
    )


async def test_two_adds_racing_for_the_last_slot_leave_exactly_the_size(backend: Backend, db, clock):
    w = await arrange(db, clock.now(), size=3)
    from ideaforge.accounts.models import User

    for title in TITLES[:2]:
        admin = await db.scalar(select(User).where(User.email == ADMIN))
        challenge = await db.get(Challenge, w.challenge_id)
        assert admin is not None
        assert challenge is not None
        await add_to_shortlist(db, challenge, w.ideas[title], admin, clock.now())
    database = Database(backend.settings.resolved_database_url)

    async def one(title: str) -> str:
        async with database.sessionmaker() as session:
            mine = await session.get(Challenge, w.challenge_id)
            me = await session.scalar(select(User).where(User.email == ADMIN))
            assert mine is not None
            assert me is not None
            try:
                await add_to_shortlist(session, mine, w.ideas[title], me, clock.now())
            except Conflict as exc:
                return exc.message
            return "added"

    try:
        results = await asyncio.gather(one(TITLES[2]), one(TITLES[3]))
    finally:
        await database.dispose()
    assert results.count("added") == 1, results
    assert "at most 3 ideas" in next(r for r in results if r != "added")
    db.expire_all()
    count = await db.scalar(
        select(func.count()).select_from(ShortlistEntry).where(ShortlistEntry.challenge_id == w.challenge_id)
    )
    assert count == 3


async def test_only_the_challenge_admins_may_see_or_change_it(client, db, clock):
    w = await arrange(db, clock.now())
    for email in (MODERATOR, CITIZEN):
        await sign_in_as(client, email)
        answers = [(await client.get(url(w))).status_code, (await add(client, w, TITLES[0])).status_code,
                   (await remove(client, w, TITLES[0])).status_code]  # fmt: skip
        assert answers == [404, 404, 404], email
        detail = await client.get(f"/challenges/{w.challenge_id}")
        assert f'href="{url(w)}"' not in detail.text
    await logout(client)
    assert (await client.get(url(w), follow_redirects=False)).status_code in (302, 303, 401)
    assert await entries(db, w) == set()

    from ideaforge.accounts.models import User

    moderator = await db.scalar(select(User).where(User.email == MODERATOR))
    challenge = await db.get(Challenge, w.challenge_id)
    assert moderator is not None
    assert challenge is not None
    with pytest.raises(Forbidden):
        await add_to_shortlist(db, challenge, w.ideas[TITLES[0]], moderator, clock.now())


async def test_it_locks_when_the_review_starts_and_then_shows_publicly(client, db, clock):
    w = await arrange(db, clock.now())
    await sign_in_as(client, ADMIN)
    await add(client, w, TITLES[0])
    await sign_in_as(client, CITIZEN)
    idea_page = await client.get(f"/ideas/{w.ideas[TITLES[0]]}")
    assert 'id="shortlisted"' not in idea_page.text, "the working list is not public"

    challenge = await db.get(Challenge, w.challenge_id)
    assert challenge is not None
    review_starts = challenge.voting_ends_at
    clock.set(review_starts + timedelta(minutes=1))
    idea_page = await client.get(f"/ideas/{w.ideas[TITLES[0]]}")
    assert 'id="shortlisted"' in idea_page.text
    assert 'id="shortlisted"' not in (await client.get(f"/ideas/{w.ideas[TITLES[1]]}")).text

    await sign_in_as(client, ADMIN)
    message = await flashed(client, await add(client, w, TITLES[1]))
    assert "The shortlist is locked since the review started on" in message
    assert "is now the jury" in message
    assert "locked since the review started" in await flashed(client, await remove(client, w, TITLES[0]))
    assert await entries(db, w) == {w.ideas[TITLES[0]]}, "nothing changed"
    page = await client.get(url(w))
    assert 'id="shortlist-locked"' in page.text
    assert "/shortlist/add" not in page.text
    assert "/shortlist/remove" not in page.text


async def test_a_phase_override_to_review_locks_it_too(client, db, clock):
    from ideaforge.accounts.models import User

    w = await arrange(db, clock.now())
    admin = await db.scalar(select(User).where(User.email == ADMIN))
    challenge = await db.get(Challenge, w.challenge_id)
    assert admin is not None
    assert challenge is not None
    await override_phase(db, challenge, admin, "review", "Jury early", clock.now())
    await sign_in_as(client, ADMIN)
    message = await flashed(client, await add(client, w, TITLES[0]))
    assert "moved by hand to the phase" in message
    assert await entries(db, w) == set()


async def test_experts_can_be_suggested_for_the_shortlisted_ideas_only(client, app, db, clock):
    from tests.ideas.test_expert_assignment import ORGANISER, SOLAR, assigned
    from tests.ideas.test_expert_assignment import arrange as arrange_experts
    from tests.ideas.test_expert_assignment import sign_in_as as expert_sign_in
    from tests.ideas.test_expert_assignment import url as experts_url

    s = await arrange_experts(db, clock.now())
    await expert_sign_in(client, ORGANISER)
    page = await client.get(experts_url(s))
    assert 'name="shortlisted_only"' not in page.text, "no shortlist, no choice"
    response = await post_form(client, f"{experts_url(s)}/suggest", {"k": "1", "shortlisted_only": "on"})
    assert "no shortlist yet" in await flashed(client, response)

    response = await post_form(
        client, f"/challenges/{s.challenge_id}/shortlist/add", {"idea": str(s.ideas[SOLAR])}
    )
    assert response.status_code == 303
    page = await client.get(experts_url(s))
    assert 'name="shortlisted_only"' in page.text
    response = await post_form(client, f"{experts_url(s)}/suggest", {"k": "1", "shortlisted_only": "on"})
    assert response.status_code == 303, response.text
    await app.state.jobs.drain()
    pairs = await assigned(db, s)
    assert {idea for idea, _user in pairs} == {s.ideas[SOLAR]}, "only the shortlisted idea gets experts"

    await post_form(client, f"{experts_url(s)}/suggest", {"k": "1"})
    assert len({idea for idea, _user in await assigned(db, s)}) == 3, "unticked: every idea"
