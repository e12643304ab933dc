"""Idea pages: submitting, editing, withdrawing, the list, votes and comments, as a visitor uses them."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, Phase
from ideaforge.accounts.models import User
from ideaforge.i18n import format_datetime, use_locale
from ideas.models import Comment, Idea, Vote
from ideas.services import IdeaInput, submit_idea
from tests.challenge_helpers import DAY, make_challenge, make_organisation, user
from tests.challenges.support import bearer, post_fields
from tests.helpers import HOSTILE, csrf_token, field_error, login, logout, post_form, register, shown
from tests.idea_helpers import make_idea, make_user

HOUR = timedelta(hours=1)
SCRIPT = '<script>alert("x")</script>'
TITLE = f"Share unsold bread {HOSTILE}"
BODY = f"Bakers give what is left to **food banks**.\n\n{HOSTILE}"
FRENCH_BODY = "Nous proposons de donner le pain des marchés aux associations du quartier pour la semaine."
HOSTILE_NAME = f"Camille {HOSTILE}"


# --- arranging -----------------------------------------------------------------------------------


async def open_challenge(
    db: AsyncSession, now: datetime, phase: Phase = Phase.SUBMISSION, **overrides: Any
) -> Challenge:
    """A published challenge of "Ville de Rennes" (tags food and markets, English and French)."""
    admin = await make_user(db, "organiser@rennes.example.org", "Organiser")
    org = await make_organisation(db, admin)
    return await make_challenge(db, org, now, phase, **overrides)


def submission_time(challenge: Challenge) -> datetime:
    """A moment when the challenge took ideas (for arranging ideas in later phases)."""
    return challenge.submission_starts_at + DAY


async def sign_in(client: Any, db: AsyncSession, email: str, name: str = HOSTILE_NAME) -> User:
    """Someone with an account, signed in on the pages."""
    someone = await make_user(db, email, name)
    response = await login(client, email)
    assert response.status_code == 303, response.text
    return someone


async def switch_to(client: Any, email: str) -> None:
    await logout(client)
    response = await login(client, email)
    assert response.status_code == 303, response.text


async def switch_to_new(client: Any, db: AsyncSession, email: str, name: str = HOSTILE_NAME) -> User:
    await logout(client)
    return await sign_in(client, db, email, name)


async def tagged_idea(
    db: AsyncSession, challenge: Challenge, author: User, at: datetime, title: str, language: str = "en",
    tags: tuple[str, ...] = (), body: str = "Give unsold food to those who need it.",
) -> Idea:  # fmt: skip
    return await submit_idea(db, challenge, author, IdeaInput(title, body, language, tags), at)


async def add_votes(db: AsyncSession, idea: Idea, voters: list[User], at: datetime) -> None:
    """Vote rows cast at ``at``, with the idea's counter kept equal to its rows."""
    db.add_all(
        Vote(idea_id=idea.id, challenge_id=idea.challenge_id, user_id=v.id, created_at=at) for v in voters
    )
    await db.execute(update(Idea).where(Idea.id == idea.id).values(vote_count=Idea.vote_count + len(voters)))
    await db.commit()


async def voters(db: AsyncSession, n: int) -> list[User]:
    return [await make_user(db, f"voter{k}@example.org") for k in range(n)]


def form_fields(**overrides: str | list[str]) -> dict[str, str | list[str]]:
    fields: dict[str, str | list[str]] = {"title": TITLE, "body": BODY, "language": "en", "tags": ["food"]}
    return fields | overrides


async def submit_form(client: Any, challenge_id: int, **overrides: str | list[str]) -> Any:
    return await post_fields(client, f"/challenges/{challenge_id}/ideas/new", form_fields(**overrides))


def idea_id_from(response: Any) -> int:
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/ideas/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


async def htmx_post(client: Any, url: str, data: dict[str, str]) -> Any:
    if "csrftoken" not in client.cookies:
        await client.get("/")
    return await client.post(
        url,
        data={**data, "_csrf_token": csrf_token(client)},
        headers={"hx-request": "true"},
        follow_redirects=False,
    )


async def idea_count(db: AsyncSession) -> int:
    return await db.scalar(select(func.count()).select_from(Idea)) or 0


async def vote_rows(db: AsyncSession, idea_id: int) -> int:
    return await db.scalar(select(func.count()).select_from(Vote).where(Vote.idea_id == idea_id)) or 0


async def stored_title(db: AsyncSession, idea_id: int) -> str | None:
    return await db.scalar(select(Idea.title).where(Idea.id == idea_id))


async def stored_comments(db: AsyncSession) -> list[tuple[int, int | None, str]]:
    rows = await db.execute(select(Comment.id, Comment.parent_id, Comment.body).order_by(Comment.id))
    return [(r[0], r[1], r[2]) for r in rows]


# --- reading pages -------------------------------------------------------------------------------


def listed(html: str) -> list[int]:
    """The ideas shown as cards, in order."""
    return [int(n) for n in re.findall(r'<li class="idea-card" data-idea="(\d+)">', html)]


def cards(html: str) -> dict[int, str]:
    found = re.finditer(r'<li class="idea-card" data-idea="(\d+)">(.*?)</li>', html, re.S)
    return {int(m.group(1)): m.group(2) for m in found}


def vote_count(html: str, idea_id: int) -> int:
    match = re.search(rf'<span sse-swap="votes-{idea_id}" hx-swap="innerHTML">(\d+)</span>', html)
    assert match, f"no vote count for idea {idea_id}"
    return int(match.group(1))


def assert_inert(html: str) -> None:
    """Hostile markup shows as text: no script runs, no element gets the htmx attribute."""
    assert SCRIPT not in html
    assert not re.search(r'<[^<>]*hx-get="/logout"', html), "an element carries the hostile hx-get"


def flashes(html: str) -> list[str]:
    return [m.strip() for m in re.findall(r'<p class="flash flash-\w+" role="\w+">(.*?)</p>', html, re.S)]


def ideas_url(challenge: Challenge) -> str:
    return f"/challenges/{challenge.id}/ideas"


# --- submitting ----------------------------------------------------------------------------------


async def test_a_citizen_submits_an_idea_through_the_form(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    who = await register(client)
    form = await client.get(f"/challenges/{challenge.id}/ideas/new")
    assert form.status_code == 200
    assert f'action="/challenges/{challenge.id}/ideas/new"' in form.text

    response = await submit_form(client, challenge.id, tags=["food", "markets"])
    idea_id = idea_id_from(response)

    page = await client.get(f"/ideas/{idea_id}")
    assert page.status_code == 200
    assert f"<h1>{shown(TITLE)}</h1>" in page.text
    assert f"By {shown(who.display_name)}" in page.text
    assert "<strong>food banks</strong>" in page.text, "the body is rendered from Markdown"
    assert '<span class="badge">food</span>' in page.text
    assert '<span class="badge">markets</span>' in page.text
    assert "Your idea is published. Thank you!" in flashes(page.text)
    assert await idea_count(db) == 1


async def test_markup_in_an_idea_and_its_authors_name_is_inert_on_its_page(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    who = await register(client)
    assert HOSTILE in who.display_name
    idea_id = idea_id_from(await submit_form(client, challenge.id))
    page = (await client.get(f"/ideas/{idea_id}")).text
    assert_inert(page)
    assert "&lt;script&gt;" in page, "the body's markup is shown as text"
    assert shown(who.display_name) in page


async def test_markup_in_an_idea_and_its_authors_name_is_inert_in_the_list(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    who = await register(client)
    idea_id = idea_id_from(await submit_form(client, challenge.id))
    page = (await client.get(ideas_url(challenge))).text
    assert listed(page) == [idea_id]
    assert_inert(page)
    assert shown(TITLE) in page
    assert shown(who.display_name) in page


BAD_INPUT = [
    pytest.param({"title": ""}, "title", id="empty-title"),
    pytest.param({"title": "t" * 141}, "title", id="title-over-140"),
    pytest.param({"body": "b" * 10_001}, "body", id="body-over-10000"),
    pytest.param({"language": "de"}, "language", id="language-not-accepted"),
    pytest.param({"tags": ["bicycles"]}, "tags", id="tag-not-offered"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_INPUT)
async def test_invalid_input_is_a_422_on_the_field_that_keeps_the_text(client, db, clock, overrides, field):
    challenge = await open_challenge(db, clock.now())
    await register(client)
    fields = form_fields(**overrides)
    response = await post_fields(client, f"/challenges/{challenge.id}/ideas/new", fields)
    assert response.status_code == 422
    assert field_error(response.text, field), f"no message on {field}"
    for other in {"title", "body", "language", "tags"} - {field}:
        assert not field_error(response.text, other), f"unexpected message on {other}"
    assert f'value="{shown(str(fields["title"]))}"' in response.text, "the typed title is kept"
    assert f">{shown(str(fields['body']))}</textarea>" in response.text, "the typed body is kept"
    assert await idea_count(db) == 0


async def test_submitting_after_the_phase_ended_is_a_409_that_keeps_the_text(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    await register(client)
    form = await client.get(f"/challenges/{challenge.id}/ideas/new")
    assert "Publish my idea" in form.text

    clock.set(challenge.submission_ends_at + timedelta(minutes=1))  # they typed for too long
    response = await submit_form(client, challenge.id)

    assert response.status_code == 409
    with use_locale("en"):
        ends = format_datetime(challenge.submission_ends_at, "medium", challenge.timezone)
    assert shown(ends) in response.text, "the page says until when ideas were taken"
    assert f'value="{shown(TITLE)}"' in response.text
    assert f">{shown(BODY)}</textarea>" in response.text
    assert '<input type="checkbox" name="tags" value="food" checked>' in response.text
    assert await idea_count(db) == 0


async def test_anonymous_visitors_are_sent_to_log_in_to_submit(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    form = await client.get(f"/challenges/{challenge.id}/ideas/new", follow_redirects=False)
    assert form.status_code == 303
    assert form.headers["location"] == f"/login?next=/challenges/{challenge.id}/ideas/new"

    posted = await submit_form(client, challenge.id)
    assert posted.status_code == 401
    assert "Please log in" in posted.text
    assert await idea_count(db) == 0


async def test_detect_language_picks_french_for_a_french_body(client, db, clock):
    challenge = await open_challenge(db, clock.now(), languages=["en", "fr"])
    await register(client)
    form = await client.get(f"/challenges/{challenge.id}/ideas/new")
    assert '<option value="" selected>Detect it for me</option>' in form.text

    response = await submit_form(
        client, challenge.id, title="Du pain pour tous", body=FRENCH_BODY, language=""
    )
    idea_id = idea_id_from(response)
    assert await db.scalar(select(Idea.language).where(Idea.id == idea_id)) == "fr"
    assert (await client.get(f"/api/v1/ideas/{idea_id}")).json()["language"] == "fr"


# --- editing and withdrawing ---------------------------------------------------------------------


async def test_the_author_edits_within_the_edit_window(client, db, clock):
    challenge = await open_challenge(db, clock.now(), edit_window_hours=2)
    await register(client)
    submitted = clock.now()
    idea_id = idea_id_from(await submit_form(client, challenge.id, tags=["food"]))

    clock.set(submitted + HOUR)
    form = await client.get(f"/ideas/{idea_id}/edit")
    assert form.status_code == 200
    assert f'value="{shown(TITLE)}"' in form.text
    changes = form_fields(title="Share unsold vegetables", body="Markets give *leftovers*.", tags=["markets"])
    response = await post_fields(client, f"/ideas/{idea_id}/edit", changes)
    assert response.status_code == 303
    assert response.headers["location"] == f"/ideas/{idea_id}"

    page = (await client.get(f"/ideas/{idea_id}")).text
    assert "<h1>Share unsold vegetables</h1>" in page
    assert "<em>leftovers</em>" in page
    assert '<span class="badge">markets</span>' in page
    assert '<span class="badge">food</span>' not in page, "the tags are replaced"


async def test_an_invalid_edit_is_a_422_that_keeps_the_text_and_changes_nothing(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    await register(client)
    idea_id = idea_id_from(await submit_form(client, challenge.id))
    fields = form_fields(title="", body="A better body, kept while the title is fixed.")
    response = await post_fields(client, f"/ideas/{idea_id}/edit", fields)
    assert response.status_code == 422, response.text[:300]
    assert field_error(response.text, "title")
    assert f">{shown(str(fields['body']))}</textarea>" in response.text
    assert f'action="/ideas/{idea_id}/edit"' in response.text
    assert await stored_title(db, idea_id) == TITLE


async def test_an_edit_after_the_edit_window_is_refused_and_changes_nothing(client, db, clock):
    challenge = await open_challenge(db, clock.now(), edit_window_hours=2)
    await register(client)
    submitted = clock.now()
    idea_id = idea_id_from(await submit_form(client, challenge.id))

    clock.set(submitted + 3 * HOUR)  # still the submission phase, but past the window
    page = (await client.get(f"/ideas/{idea_id}")).text
    assert f'href="/ideas/{idea_id}/edit"' not in page, "no Edit button any more"
    response = await post_fields(client, f"/ideas/{idea_id}/edit", form_fields(title="Too late"))
    assert response.status_code == 409
    assert "can no longer be edited" in response.text
    assert await stored_title(db, idea_id) == TITLE


async def test_someone_else_cannot_edit_an_idea(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    await register(client)
    idea_id = idea_id_from(await submit_form(client, challenge.id))
    await logout(client)
    await register(client)

    assert (await client.get(f"/ideas/{idea_id}/edit")).status_code == 403
    response = await post_fields(client, f"/ideas/{idea_id}/edit", form_fields(title="Mine now"))
    assert response.status_code == 403
    assert await stored_title(db, idea_id) == TITLE


async def test_the_author_withdraws_an_idea(client, db, clock):
    challenge = await open_challenge(db, clock.now(), Phase.VOTING)
    author = await sign_in(client, db, "author@example.org")
    idea = await make_idea(db, challenge, author, submission_time(challenge))
    other = await make_idea(db, challenge, author, submission_time(challenge), title="Compost the rest")
    assert sorted(listed((await client.get(ideas_url(challenge))).text)) == sorted([idea.id, other.id])

    response = await post_form(client, f"/ideas/{idea.id}/withdraw", {})
    assert response.status_code == 303
    assert response.headers["location"] == f"/ideas/{idea.id}"

    page = (await client.get(f"/ideas/{idea.id}")).text
    assert "Its author has withdrawn this idea." in page
    assert listed((await client.get(ideas_url(challenge))).text) == [other.id]

    await make_user(db, "voter@example.org")
    vote = await client.put(
        f"/api/v1/ideas/{idea.id}/vote", headers=await bearer(client, "voter@example.org")
    )
    assert vote.status_code == 409
    assert vote.json()["detail"] == "This idea is no longer open for votes."
    assert await vote_rows(db, idea.id) == 0


# --- the list ------------------------------------------------------------------------------------


async def three_ideas_with_votes(db: AsyncSession, clock: Any) -> tuple[Challenge, Idea, Idea, Idea]:
    """In the vote: an old favourite (3 votes, 10 days ago), a rising idea (2 votes, yesterday), a quiet one."""
    now = clock.now()
    challenge = await open_challenge(db, now, Phase.VOTING)
    author = await make_user(db, "author@example.org")
    at = submission_time(challenge)
    favourite = await make_idea(db, challenge, author, at, title="Old favourite")
    rising = await make_idea(db, challenge, author, at + HOUR, title="Rising idea")
    quiet = await make_idea(db, challenge, author, at + 2 * HOUR, title="Quiet idea")
    people = await voters(db, 3)
    await add_votes(db, favourite, people, now - 10 * DAY)
    await add_votes(db, rising, people[:2], now - DAY)
    return challenge, favourite, rising, quiet


async def test_top_sorts_by_votes(client, db, clock):
    challenge, favourite, rising, quiet = await three_ideas_with_votes(db, clock)
    default = (await client.get(ideas_url(challenge))).text
    assert listed(default) == [favourite.id, rising.id, quiet.id]
    top = (await client.get(ideas_url(challenge), params={"sort": "top"})).text
    assert listed(top) == [favourite.id, rising.id, quiet.id]
    assert vote_count(top, favourite.id) == 3


async def test_new_sorts_newest_first(client, db, clock):
    challenge, favourite, rising, quiet = await three_ideas_with_votes(db, clock)
    page = (await client.get(ideas_url(challenge), params={"sort": "new"})).text
    assert listed(page) == [quiet.id, rising.id, favourite.id]


async def test_trending_puts_votes_of_the_last_seven_days_first(client, db, clock):
    challenge, favourite, rising, quiet = await three_ideas_with_votes(db, clock)
    page = (await client.get(ideas_url(challenge), params={"sort": "trending"})).text
    assert listed(page) == [rising.id, favourite.id, quiet.id]


async def test_a_vote_cast_on_the_page_is_recent_for_trending_at_the_apps_time(client, db, clock):
    later = clock.now() + 60 * DAY  # the app's clock, not the wall clock, says what "recent" is
    clock.set(later)
    challenge = await open_challenge(db, later, Phase.VOTING)
    author = await make_user(db, "author@example.org")
    favourite = await make_idea(db, challenge, author, submission_time(challenge), title="Old favourite")
    rising = await make_idea(db, challenge, author, submission_time(challenge), title="Rising idea")
    await add_votes(db, favourite, await voters(db, 3), later - 10 * DAY)
    await sign_in(client, db, "fan@example.org")
    assert (await post_form(client, f"/ideas/{rising.id}/vote", {"action": "add"})).status_code == 303

    page = (await client.get(ideas_url(challenge), params={"sort": "trending"})).text
    assert listed(page) == [rising.id, favourite.id], "the vote just cast is this week's"


async def test_random_order_is_stable_for_a_visitor_and_lists_the_same_ideas_as_top(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    author = await make_user(db, "author@example.org")
    for n in range(8):
        await make_idea(db, challenge, author, clock.now() + n * HOUR, title=f"Idea number {n}")
    top = listed((await client.get(ideas_url(challenge), params={"sort": "top"})).text)
    orders = [
        listed((await client.get(ideas_url(challenge), params={"sort": "random"})).text) for _ in range(4)
    ]
    assert sorted(orders[0]) == sorted(top)
    assert len(orders[0]) == 8
    assert all(order == orders[0] for order in orders), "the order does not reshuffle for one visitor"


@pytest.mark.parametrize(
    ("name", "value", "expected"), [("tag", "markets", "market"), ("language", "fr", "french")]
)
async def test_the_list_filters(client, db, clock, name, value, expected):
    challenge = await open_challenge(db, clock.now())
    author = await make_user(db, "author@example.org")
    now = clock.now()
    ideas = {
        "food": await tagged_idea(db, challenge, author, now, "Food idea", tags=("food",)),
        "market": await tagged_idea(db, challenge, author, now, "Market idea", tags=("markets",)),
        "french": await tagged_idea(db, challenge, author, now, "Idée", language="fr", body=FRENCH_BODY),
    }
    assert len(listed((await client.get(ideas_url(challenge))).text)) == 3
    page = (await client.get(ideas_url(challenge), params={name: value})).text
    assert listed(page) == [ideas[expected].id]
    assert "1 idea" in page
    assert f'<option value="{value}" selected>' in page, "the filter stays chosen"


async def test_the_list_paginates_by_twenty(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    author = await make_user(db, "author@example.org")
    made = [
        await make_idea(db, challenge, author, clock.now() + n * HOUR, title=f"Idea number {n}")
        for n in range(21)
    ]
    first = (await client.get(ideas_url(challenge), params={"sort": "new"})).text
    assert len(listed(first)) == 20
    assert "21 ideas" in first
    assert "Page 1 of 2" in first
    assert f'href="/challenges/{challenge.id}/ideas?sort=new&amp;page=2" rel="next"' in first
    second = (await client.get(ideas_url(challenge), params={"sort": "new", "page": "2"})).text
    assert listed(second) == [made[0].id], "newest first: the first one made is the 21st"
    assert "Page 2 of 2" in second


async def test_the_list_shows_the_visitors_own_votes(client, db, clock):
    challenge = await open_challenge(db, clock.now(), Phase.VOTING)
    author = await make_user(db, "author@example.org")
    chosen = await make_idea(db, challenge, author, submission_time(challenge), title="Chosen")
    other = await make_idea(db, challenge, author, submission_time(challenge), title="Other")
    visitor = await sign_in(client, db, "visitor@example.org")
    await add_votes(db, chosen, [visitor], clock.now())

    shown_cards = cards((await client.get(ideas_url(challenge))).text)
    assert "Remove my vote" in shown_cards[chosen.id]
    assert "Remove my vote" not in shown_cards[other.id]
    assert 'aria-pressed="true"' in shown_cards[chosen.id]
    assert 'aria-pressed="false"' in shown_cards[other.id]


async def test_an_empty_list_says_there_is_no_idea_yet(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    page = (await client.get(ideas_url(challenge))).text
    assert listed(page) == []
    assert "No idea yet." in page
    assert "No idea matches these filters." not in page


async def test_a_page_past_the_last_does_not_claim_there_is_no_idea(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    author = await make_user(db, "author@example.org")
    await make_idea(db, challenge, author, clock.now())
    page = (await client.get(ideas_url(challenge), params={"page": "3"})).text
    assert "No idea yet." not in page, "the challenge has an idea, on page 1"


async def test_a_filter_matching_nothing_says_so(client, db, clock):
    challenge = await open_challenge(db, clock.now())
    author = await make_user(db, "author@example.org")
    await make_idea(db, challenge, author, clock.now())
    page = (await client.get(ideas_url(challenge), params={"tag": "markets"})).text
    assert listed(page) == []
    assert "No idea matches these filters." in page
    assert "No idea yet." not in page


# --- votes on the pages --------------------------------------------------------------------------


async def idea_in_the_vote(db: AsyncSession, clock: Any, **overrides: Any) -> tuple[Challenge, Idea]:
    challenge = await open_challenge(db, clock.now(), Phase.VOTING, **overrides)
    author = await make_user(db, "author@example.org")
    return challenge, await make_idea(db, challenge, author, submission_time(challenge))


async def test_voting_on_the_page_adds_then_removes_a_vote(client, db, clock):
    _challenge, idea = await idea_in_the_vote(db, clock)
    await sign_in(client, db, "voter@example.org")
    before = (await client.get(f"/ideas/{idea.id}")).text
    assert vote_count(before, idea.id) == 0

    added = await post_form(client, f"/ideas/{idea.id}/vote", {"action": "add"})
    assert added.status_code == 303
    page = (await client.get(f"/ideas/{idea.id}")).text
    assert vote_count(page, idea.id) == 1
    assert "Remove my vote" in page

    removed = await post_form(client, f"/ideas/{idea.id}/vote", {"action": "remove"})
    assert removed.status_code == 303
    page = (await client.get(f"/ideas/{idea.id}")).text
    assert vote_count(page, idea.id) == 0
    assert "Remove my vote" not in page
    assert await vote_rows(db, idea.id) == 0


async def test_an_htmx_vote_answers_with_just_the_widget(client, db, clock):
    _challenge, idea = await idea_in_the_vote(db, clock, votes_per_user=3)
    await sign_in(client, db, "voter@example.org")
    await client.get(f"/ideas/{idea.id}")

    added = await htmx_post(client, f"/ideas/{idea.id}/vote", {"action": "add"})
    assert added.status_code == 200, added.text
    assert "<html" not in added.text
    assert added.text.lstrip().startswith(f'<div class="vote" id="vote-{idea.id}">')
    assert vote_count(added.text, idea.id) == 1
    assert "Remove my vote" in added.text
    assert "2 votes left" in added.text

    removed = await htmx_post(client, f"/ideas/{idea.id}/vote", {"action": "remove"})
    assert removed.status_code == 200, removed.text
    assert "<html" not in removed.text
    assert vote_count(removed.text, idea.id) == 0
    assert "3 votes left" in removed.text


async def test_voting_outside_the_voting_phase_says_when_voting_runs(client, db, clock):
    challenge = await open_challenge(db, clock.now(), Phase.SUBMISSION)
    author = await make_user(db, "author@example.org")
    idea = await make_idea(db, challenge, author, clock.now())
    await sign_in(client, db, "voter@example.org")

    response = await htmx_post(client, f"/ideas/{idea.id}/vote", {"action": "add"})
    assert response.status_code == 409, response.text
    with use_locale("en"):
        start = format_datetime(challenge.voting_starts_at, "medium", challenge.timezone)
        end = format_datetime(challenge.voting_ends_at, "medium", challenge.timezone)
    assert shown(f"Voting is not open: it runs from {start} to {end}.") in response.text
    assert await vote_rows(db, idea.id) == 0


async def test_voting_over_budget_is_refused_with_the_budget_message(client, db, clock):
    challenge, first = await idea_in_the_vote(db, clock, votes_per_user=1)
    author = await user(db, "author@example.org")
    second = await make_idea(db, challenge, author, submission_time(challenge), title="Second idea")
    await sign_in(client, db, "voter@example.org")
    assert (await htmx_post(client, f"/ideas/{first.id}/vote", {"action": "add"})).status_code == 200

    response = await htmx_post(client, f"/ideas/{second.id}/vote", {"action": "add"})
    assert response.status_code == 409, response.text
    assert "You have used all 1 of your votes in this challenge." in response.text
    assert vote_count(response.text, second.id) == 0
    assert await vote_rows(db, second.id) == 0


async def test_authors_may_not_vote_for_their_own_idea(client, db, clock):
    challenge = await open_challenge(db, clock.now(), Phase.VOTING, authors_may_vote_own=False)
    await sign_in(client, db, "author@example.org")
    author = await user(db, "author@example.org")
    idea = await make_idea(db, challenge, author, submission_time(challenge))

    response = await htmx_post(client, f"/ideas/{idea.id}/vote", {"action": "add"})
    assert response.status_code == 403, response.text
    assert "authors may not vote for their own ideas" in response.text
    assert await vote_rows(db, idea.id) == 0


async def test_a_refused_vote_without_htmx_is_explained_on_the_idea_page(client, db, clock):
    challenge = await open_challenge(db, clock.now(), Phase.SUBMISSION)
    author = await make_user(db, "author@example.org")
    idea = await make_idea(db, challenge, author, clock.now())
    await sign_in(client, db, "voter@example.org")

    response = await post_form(client, f"/ideas/{idea.id}/vote", {"action": "add"})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/ideas/{idea.id}"
    page = (await client.get(f"/ideas/{idea.id}")).text
    assert any(m.startswith("Voting is not open") for m in flashes(page))


# --- comments ------------------------------------------------------------------------------------


async def idea_open_for_comments(db: AsyncSession, clock: Any, phase: Phase = Phase.SUBMISSION) -> Idea:
    challenge = await open_challenge(db, clock.now(), phase)
    author = await make_user(db, "author@example.org")
    return await make_idea(db, challenge, author, submission_time(challenge))


async def comment(client: Any, idea_id: int, body: str, parent: int | None = None) -> Any:
    data = {"body": body} | ({"parent": str(parent)} if parent is not None else {})
    response = await post_form(client, f"/ideas/{idea_id}/comments", data)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/ideas/{idea_id}#comments"
    return response


async def test_comments_and_replies_stay_one_level_deep(client, db, clock):
    idea = await idea_open_for_comments(db, clock)
    await sign_in(client, db, "alice@example.org", "Alice")
    await comment(client, idea.id, "Which markets first?")
    [(top, _p, _b)] = await stored_comments(db)
    await comment(client, idea.id, "The covered market.", parent=top)
    reply = (await stored_comments(db))[1][0]
    await comment(client, idea.id, "Agreed, and then the Sunday one.", parent=reply)

    assert [(parent, body) for _id, parent, body in await stored_comments(db)] == [
        (None, "Which markets first?"),
        (top, "The covered market."),
        (top, "Agreed, and then the Sunday one."),
    ], "a reply to a reply hangs from the top-level comment"
    page = (await client.get(f"/ideas/{idea.id}")).text
    comments = page.split('<section id="comments"', 1)[1].split("</section>", 1)[0]
    threads = comments.split('<div class="thread">')[1:]
    assert len(threads) == 1, "one thread: the replies are inside it"
    assert threads[0].count('<div class="reply">') == 2
    assert "Agreed, and then the Sunday one." in threads[0]


async def test_ids_no_row_could_have_are_refused_not_crashed_on(client, db, clock):
    """ "²" passes str.isdigit() but not int(); 2**31 passes int() but PostgreSQL will not compare it."""
    idea = await idea_open_for_comments(db, clock)
    await sign_in(client, db, "alice@example.org", "Alice")
    for odd in ("²", "٣", "2147483648", "99999999999999999999", "-1", "x"):
        reply = await post_form(client, f"/ideas/{idea.id}/comments", {"body": "A reply.", "parent": odd})
        assert reply.status_code == 303, odd
        page = await client.get(reply.headers["location"])
        assert "You can only reply to a comment on this idea." in page.text, odd
        follow = await post_form(client, "/follow",
                                 {"target_type": "idea", "target_id": odd, "action": "follow"})  # fmt: skip
        assert follow.status_code == 404, odd
    assert await stored_comments(db) == [], "nothing was posted"


async def test_the_author_edits_their_comment(client, db, clock):
    idea = await idea_open_for_comments(db, clock)
    await sign_in(client, db, "alice@example.org", "Alice")
    await comment(client, idea.id, "Which markets first?")
    [(comment_id, _p, _b)] = await stored_comments(db)

    response = await post_form(
        client, f"/comments/{comment_id}/edit", {"body": "Which **two** markets first?"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/ideas/{idea.id}#comment-{comment_id}"
    page = (await client.get(f"/ideas/{idea.id}")).text
    assert "Which <strong>two</strong> markets first?" in page
    assert "edited" in page


async def test_deleting_a_comment_leaves_a_placeholder_and_keeps_the_replies(client, db, clock):
    idea = await idea_open_for_comments(db, clock)
    await sign_in(client, db, "alice@example.org", "Alice")
    await comment(client, idea.id, "Which markets first?")
    [(top, _p, _b)] = await stored_comments(db)
    await switch_to_new(client, db, "bob@example.org")
    await comment(client, idea.id, "The covered market.", parent=top)
    await switch_to(client, "alice@example.org")

    response = await post_form(client, f"/comments/{top}/delete", {})
    assert response.status_code == 303
    page = (await client.get(f"/ideas/{idea.id}")).text
    assert "This comment was deleted." in page
    assert "Which markets first?" not in page
    assert "The covered market." in page, "the reply stays"
    assert len(await stored_comments(db)) == 2


async def test_nobody_edits_someone_elses_comment(client, db, clock):
    idea = await idea_open_for_comments(db, clock)
    await sign_in(client, db, "alice@example.org", "Alice")
    await comment(client, idea.id, "Which markets first?")
    [(comment_id, _p, _b)] = await stored_comments(db)
    await switch_to_new(client, db, "bob@example.org")

    response = await post_form(client, f"/comments/{comment_id}/edit", {"body": "Bob was here"})
    assert response.status_code == 403
    deleted = await post_form(client, f"/comments/{comment_id}/delete", {})
    assert deleted.status_code == 403
    assert await stored_comments(db) == [(comment_id, None, "Which markets first?")]


async def test_markup_in_a_comment_is_inert(client, db, clock):
    idea = await idea_open_for_comments(db, clock)
    await sign_in(client, db, "alice@example.org", HOSTILE_NAME)
    await comment(client, idea.id, f"Nice **idea** {HOSTILE}")
    page = (await client.get(f"/ideas/{idea.id}")).text
    assert "Nice <strong>idea</strong>" in page
    assert shown(HOSTILE_NAME) in page
    assert_inert(page)


async def test_comments_are_refused_in_the_results_phase(client, db, clock):
    idea = await idea_open_for_comments(db, clock, Phase.RESULTS)
    await sign_in(client, db, "alice@example.org", "Alice")
    page = (await client.get(f"/ideas/{idea.id}")).text
    assert "Add a comment" not in page

    await comment(client, idea.id, "Too late?")
    page = (await client.get(f"/ideas/{idea.id}")).text
    assert "Comments are closed in this phase of the challenge." in flashes(page)
    assert await stored_comments(db) == []
