"""The moderators' queue of suspected duplicates: newest first, paginated, "not duplicates" for good,
the merge form with its confirmation step, and a 404 for anyone who is not a moderator."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Phase
from ideaforge.audit import AuditEvent
from ideaforge.organisations.models import Role as OrgRole
from ideas.merges import is_dismissed, pair_exists
from ideas.models import DuplicatePair, Idea, PairStatus
from tests.challenge_helpers import DAY, add_member, make_challenge, make_organisation
from tests.helpers import login, logout, post_form, shown
from tests.idea_helpers import add_votes, flag_pair, make_idea, make_user

MODERATOR = "moderator@rennes.example.org"
CITIZEN = "citizen@example.org"
EMPTY = "No possible duplicate to review."


@dataclass
class Queue:
    challenge_id: int
    ideas: list[int]
    moderator_id: int


async def arrange(db: AsyncSession, now: datetime, ideas: int = 3) -> tuple[Queue, list[Idea]]:
    admin = await make_user(db, "organiser@rennes.example.org", "Olivia Organiser")
    org = await make_organisation(db, admin)
    moderator = await make_user(db, MODERATOR, "Maud Moderator")
    await add_member(db, org, moderator, OrgRole.MODERATOR)
    await make_user(db, CITIZEN, "Chloé Citizen")
    challenge = await make_challenge(db, org, now, Phase.VOTING)
    author = await make_user(db, "author@example.org", "Alice Author")
    start = challenge.submission_starts_at + DAY
    made = [await make_idea(db, challenge, author, start + n * timedelta(hours=1), title=f"Idea number {n}")
            for n in range(ideas)]  # fmt: skip
    return Queue(challenge.id, [i.id for i in made], moderator.id), made


async def sign_in_as(client: Any, email: str) -> None:
    await logout(client)
    response = await login(client, email)
    assert response.status_code == 303, response.text


def pair_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<article class="card pair" id="pair-(\d+)"', html)]


def url(q: Queue) -> str:
    return f"/challenges/{q.challenge_id}/moderation/duplicates"


async def test_the_queue_lists_open_pairs_newest_first_side_by_side(client, db, clock):
    q, ideas = await arrange(db, clock.now())
    older = await flag_pair(db, ideas[0], ideas[1], 0.81, at=clock.now() - DAY)
    newer = await flag_pair(db, ideas[0], ideas[2], 0.97, at=clock.now())
    await sign_in_as(client, MODERATOR)

    response = await client.get(url(q))

    assert response.status_code == 200
    assert pair_ids(response.text) == [newer, older]
    assert "Scorer&#39;s estimate that they are duplicates: 97%" in response.text
    assert "Bakers give what is left to <strong>food banks</strong>" in response.text, (
        "bodies render as Markdown"
    )
    assert shown("Alice Author") in response.text
    assert f'href="/duplicates/{newer}/merge"' in response.text
    assert f'action="/duplicates/{newer}/dismiss"' in response.text
    assert EMPTY not in response.text


async def test_the_queue_pages_by_twenty(client, db, clock):
    q, ideas = await arrange(db, clock.now(), ideas=7)
    pairs = [(a, b) for n, a in enumerate(ideas) for b in ideas[n + 1 :]]  # 21 pairs
    made = [
        await flag_pair(db, a, b, 0.9, at=clock.now() - k * timedelta(minutes=1))
        for k, (a, b) in enumerate(pairs)
    ]
    await sign_in_as(client, MODERATOR)

    first = (await client.get(url(q))).text
    second = (await client.get(url(q), params={"page": "2"})).text

    assert pair_ids(first) == made[:20]
    assert pair_ids(second) == made[20:]
    assert "Page 1 of 2" in first
    assert 'rel="next"' in first


async def test_the_empty_queue_says_so_and_the_moderation_page_links_to_it(client, db, clock):
    q, _ideas = await arrange(db, clock.now())
    await sign_in_as(client, MODERATOR)

    assert EMPTY in (await client.get(url(q))).text
    assert f'href="{url(q)}"' in (await client.get(f"/challenges/{q.challenge_id}/moderation")).text


async def test_not_duplicates_hides_the_pair_for_good(client, db, clock):
    q, ideas = await arrange(db, clock.now())
    pair_id = await flag_pair(db, ideas[0], ideas[1])
    await sign_in_as(client, MODERATOR)

    response = await post_form(client, f"/duplicates/{pair_id}/dismiss", {})

    assert response.status_code == 303
    assert response.headers["location"] == url(q)
    page = (await client.get(url(q))).text
    assert "this pair will not be suggested again" in page
    assert pair_ids(page) == []
    [(status, decided_by, decided_at)] = (await db.execute(select(
        DuplicatePair.status, DuplicatePair.decided_by_id, DuplicatePair.decided_at))).all()  # fmt: skip
    assert (status, decided_by) == (PairStatus.DISMISSED, q.moderator_id)
    assert decided_at is not None
    assert await is_dismissed(db, q.ideas[1], q.ideas[0])
    assert await is_dismissed(db, q.ideas[0], q.ideas[1])
    assert await pair_exists(db, q.ideas[0], q.ideas[1]), "flagging skips a pair in any status"
    assert not await is_dismissed(db, q.ideas[0], q.ideas[2])
    actions = list(
        await db.scalars(select(AuditEvent.action).where(AuditEvent.subject_type == "duplicate_pair"))
    )
    assert actions == ["dismiss"]


async def test_the_merge_form_proposes_the_idea_with_more_votes_then_the_older(client, db, clock):
    q, ideas = await arrange(db, clock.now())
    voter = await make_user(db, "voter@example.org", "Voter")
    tie = await flag_pair(db, ideas[0], ideas[1])
    more = await flag_pair(db, ideas[1], ideas[2])
    await add_votes(db, ideas[2], [voter], clock.now())
    await sign_in_as(client, MODERATOR)

    on_tie = (await client.get(f"/duplicates/{tie}/merge")).text
    on_votes = (await client.get(f"/duplicates/{more}/merge")).text

    assert re.search(rf'value="{q.ideas[0]}"[^>]* checked', on_tie), "on a tie, the older idea stays"
    assert re.search(rf'value="{q.ideas[2]}"[^>]* checked', on_votes), "the idea with more votes stays"
    assert "the author of the idea that goes is asked to consent" in on_tie
    assert 'action="/duplicates/' in on_tie
    assert 'for="field-override_reason"' in on_tie


async def test_merging_from_the_queue_without_a_reason_asks_the_author(client, db, clock):
    q, ideas = await arrange(db, clock.now())
    pair_id = await flag_pair(db, ideas[0], ideas[1])
    await sign_in_as(client, MODERATOR)

    response = await post_form(client, f"/duplicates/{pair_id}/merge", {"surviving": str(q.ideas[0])})

    assert response.status_code == 303
    page = (await client.get(response.headers["location"])).text
    assert "is asked to consent" in page
    assert "A merge waits for the author" in page, "the pair stays, marked as waiting"


async def test_choosing_no_idea_to_keep_re_renders_the_form_with_the_error(client, db, clock):
    _q, ideas = await arrange(db, clock.now())
    pair_id = await flag_pair(db, ideas[0], ideas[1])
    await sign_in_as(client, MODERATOR)

    response = await post_form(client, f"/duplicates/{pair_id}/merge", {"surviving": "999999"})

    assert response.status_code == 422
    assert '<p class="error" id="error-surviving">' in response.text
    assert 'aria-describedby="error-surviving"' in response.text


async def test_the_queue_and_its_actions_are_a_404_for_citizens(client, db, clock):
    q, ideas = await arrange(db, clock.now())
    pair_id = await flag_pair(db, ideas[0], ideas[1])
    await sign_in_as(client, CITIZEN)

    answers = [
        (await client.get(url(q))).status_code,
        (await client.get(f"/duplicates/{pair_id}/merge")).status_code,
        (await post_form(client, f"/duplicates/{pair_id}/dismiss", {})).status_code,
        (await post_form(client, f"/duplicates/{pair_id}/merge", {"surviving": str(q.ideas[0])})).status_code,
    ]

    assert answers == [404, 404, 404, 404]
    assert (await db.scalar(select(DuplicatePair.status))) is PairStatus.OPEN


async def test_an_anonymous_visitor_is_sent_to_log_in(client, db, clock):
    q, _ideas = await arrange(db, clock.now())

    response = await client.get(url(q), follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={url(q)}"
