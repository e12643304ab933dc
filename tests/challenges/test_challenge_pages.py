"""Challenge pages: the form, the directory, locks, phases, permissions, French."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from challenges.models import Phase
from ideaforge.i18n import gettext, use_locale
from ideaforge.organisations.models import Role
from tests.challenge_helpers import DAY, add_member, make_challenge, make_organisation, user
from tests.challenges.support import (
    DURING_SUBMISSION,
    FILTERS,
    FORM_TITLE,
    NEW,
    PROBLEM,
    bearer,
    challenge_count,
    create_through_form,
    form_fields,
    listed,
    organiser,
    phase_badge,
    post_fields,
    stored,
    two_challenges,
)
from tests.helpers import HOSTILE, field_error, login, logout, post_form, register, shown

# --- creating a challenge through the form -----------------------------------------------------


async def test_an_admin_creates_a_challenge_through_the_form(client, db, clock):
    clock.set(DURING_SUBMISSION)
    await organiser(client, db)
    form = await client.get(NEW)
    assert form.status_code == 200
    assert f'action="{NEW}"' in form.text

    challenge_id = await create_through_form(client)

    page = (await client.get(f"/challenges/{challenge_id}")).text
    assert f"<h1>{shown(FORM_TITLE)}</h1>" in page
    assert '<script>alert("x")</script>' not in page, "the title's markup is inert"
    assert "Manage this challenge" in page
    assert f'action="/challenges/{challenge_id}/publish"' in page
    assert ">Publish</button>" in page


async def test_the_challenge_page_shows_the_criteria_table(client, db, clock):
    clock.set(DURING_SUBMISSION)
    await organiser(client, db)
    challenge_id = await create_through_form(client)
    page = (await client.get(f"/challenges/{challenge_id}")).text
    table = re.search(r'<table class="criteria">.*?</table>', page, re.S)
    assert table, "no criteria table"
    rows = re.findall(
        r'<th scope="row">(.*?)</th>\s*<td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>', table.group(0), re.S
    )
    assert rows == [
        ("Impact", "2", "1–5", "—"),
        ('Feasibility<br><span class="meta">Can the city do it?</span>', "0.5", "0–10", "4"),
    ], "the blank row is ignored, a comma is a decimal point"


async def test_the_challenge_page_states_the_rules_in_plain_words(client, db, clock):
    clock.set(DURING_SUBMISSION)
    await organiser(client, db)
    challenge_id = await create_through_form(client)
    page = (await client.get(f"/challenges/{challenge_id}")).text
    for rule in (
        "Anyone with an account may submit ideas.",
        "Ideas are accepted in: English, French.",
        "Authors may edit an idea for 24 hours after submitting it.",
        "Each person has 3 votes in this challenge.",
        "Authors may not vote for their own ideas.",
        "Review is blind: jurors do not see who wrote an idea.",
        "Open to partners abroad",
    ):
        assert rule in page, rule


async def test_form_dates_are_read_in_the_challenges_time_zone(client, db, clock):
    clock.set(DURING_SUBMISSION)
    await organiser(client, db)
    paris = await create_through_form(client)
    montreal = await create_through_form(client, timezone="America/Toronto")
    assert (await stored(db, paris)).submission_starts_at == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert (await stored(db, montreal)).submission_starts_at == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


async def test_a_draft_is_hidden_until_it_is_published(client, db, clock):
    clock.set(DURING_SUBMISSION)
    who, _org = await organiser(client, db)
    challenge_id = await create_through_form(client)
    await logout(client)
    assert (await client.get(f"/challenges/{challenge_id}")).status_code == 404
    assert challenge_id not in listed((await client.get("/challenges/")).text)

    await login(client, who.email)
    published = await post_form(client, f"/challenges/{challenge_id}/publish", {})
    assert published.status_code == 303
    assert published.headers["location"] == f"/challenges/{challenge_id}"
    await logout(client)

    assert listed((await client.get("/challenges/")).text) == [challenge_id]
    page = await client.get(f"/challenges/{challenge_id}")
    assert page.status_code == 200
    assert phase_badge(page.text) == "Submission"


# --- the directory -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value", "expected"), FILTERS)
async def test_each_directory_filter_narrows_the_results(client, db, clock, name, value, expected):
    markets, bicycles = await two_challenges(client, db, clock.now())
    await logout(client)
    assert sorted(listed((await client.get("/challenges/")).text)) == sorted([markets.id, bicycles.id])
    wanted = {"markets": markets, "bicycles": bicycles}[expected]
    page = (await client.get("/challenges/", params={name: value})).text
    assert listed(page) == [wanted.id]
    assert "1 challenge" in page


async def test_search_needs_every_word_to_match(client, db, clock):
    await two_challenges(client, db, clock.now())
    page = (await client.get("/challenges/", params={"q": "marchés bicycle"})).text
    assert listed(page) == [], "every word must match"


async def test_the_directory_paginates_by_twelve(client, db, clock):
    who = await register(client)
    org = await make_organisation(db, await user(db, who.email))
    made = [await make_challenge(db, org, clock.now(), title=f"Challenge number {n}") for n in range(13)]
    await logout(client)
    first = (await client.get("/challenges/")).text
    assert len(listed(first)) == 12
    assert "13 challenges" in first
    assert "Page 1 of 2" in first
    assert 'href="/challenges/?page=2" rel="next"' in first
    second = (await client.get("/challenges/", params={"page": "2"})).text
    assert listed(second) == [made[0].id], "newest first: the first one made is the 13th"
    assert "Page 2 of 2" in second


async def test_an_unlisted_challenge_is_not_listed_but_opens_by_its_address(client, db, clock):
    who = await register(client)
    org = await make_organisation(db, await user(db, who.email))
    public = await make_challenge(db, org, clock.now(), title="Everyone sees this one")
    unlisted = await make_challenge(db, org, clock.now(), title="Only with the link", visibility="unlisted")
    await logout(client)
    assert listed((await client.get("/challenges/")).text) == [public.id]
    assert listed((await client.get("/challenges/", params={"q": "link"})).text) == []
    page = await client.get(f"/challenges/{unlisted.id}")
    assert page.status_code == 200
    assert "<h1>Only with the link</h1>" in page.text
    assert '<span class="badge">Unlisted</span>' in page.text


async def test_the_directory_says_when_no_challenge_matches_the_filters(client, db, clock):
    await two_challenges(client, db, clock.now())
    page = (await client.get("/challenges/", params={"q": "volcanoes"})).text
    assert listed(page) == []
    assert "No challenge matches these filters." in page
    assert "No challenge is open yet" not in page


async def test_the_directory_says_when_there_is_no_challenge_at_all(client):
    page = (await client.get("/challenges/")).text
    assert "No challenge is open yet" in page
    assert "No challenge matches these filters." not in page


async def test_the_directory_does_not_list_a_challenge_published_before_it_opens(client, db, clock):
    who = await register(client)
    org = await make_organisation(db, await user(db, who.email))
    # Published, but submission opens in five days: still a draft to the public.
    soon = await make_challenge(db, org, clock.now(), Phase.DRAFT, title="Opens soon")
    await post_form(client, f"/challenges/{soon.id}/publish", {})
    assert (await stored(db, soon.id)).published_at is not None
    await logout(client)
    assert listed((await client.get("/challenges/")).text) == []
    clock.set(clock.now() + 6 * DAY)
    assert listed((await client.get("/challenges/")).text) == [soon.id]


async def test_an_htmx_request_gets_only_the_results(client, db, clock):
    markets, _bicycles = await two_challenges(client, db, clock.now())
    full = await client.get("/challenges/", params={"tag": "food"})
    assert "<html" in full.text
    assert "HX-Request" in full.headers["vary"]
    fragment = await client.get("/challenges/", params={"tag": "food"}, headers={"hx-request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<section id="results"')
    assert listed(fragment.text) == [markets.id]
    assert "HX-Request" in fragment.headers["vary"]


async def test_the_directory_filters_do_not_reveal_a_drafts_tags(client, db, clock):
    """A draft is the organisation's alone: its tags must not appear among the filter's choices."""
    who = await register(client)
    org = await make_organisation(db, await user(db, who.email))
    await make_challenge(db, org, clock.now(), tags=["published-topic"])
    await make_challenge(db, org, clock.now(), Phase.DRAFT, publish=False, tags=["secret-merger"])
    await logout(client)
    page = (await client.get("/challenges/")).text
    assert '<option value="published-topic"' in page
    assert "secret-merger" not in page


# --- bad input on the form ---------------------------------------------------------------------


BAD_FORMS = [
    pytest.param(
        {"submission_ends_at": "2026-11-30T09:00"}, "submission_ends_at", "Submission must end after it starts.",
        id="end-before-start",
    ),
    pytest.param(
        {"voting_starts_at": "2026-11-20T09:00"}, "voting_starts_at", "Voting cannot start before submission does.",
        id="voting-before-submission",
    ),
    pytest.param(
        {"criteria-0-weight": "0"}, "criteria-0-weight", "A weight must be more than 0 (and at most 100).",
        id="weight-zero",
    ),
    pytest.param(
        {"criteria-0-weight": "-1"}, "criteria-0-weight", "A weight must be more than 0 (and at most 100).",
        id="weight-negative",
    ),
    pytest.param(
        {"criteria-0-scale_min": "5", "criteria-0-scale_max": "5"}, "criteria-0-scale_max",
        "The top of the scale must be above its bottom.", id="scale-min-not-below-max",
    ),
    pytest.param(
        {"criteria-1-minimum_score": "11"}, "criteria-1-minimum_score", "The minimum must lie on the scale.",
        id="minimum-off-the-scale",
    ),
    pytest.param(
        {"languages": []}, "languages", "Choose at least one language in which ideas are accepted.",
        id="no-language",
    ),
    pytest.param(
        {"summary": "Markets waste food.\r\n\r\nAnd they know it."}, "summary", "Keep the summary to one paragraph.",
        id="two-paragraph-summary",
    ),
    pytest.param(
        {"submission_starts_at": "the first of December"}, "submission_starts_at",
        "Enter a date and time, like 2026-03-01 09:00.", id="not-a-date",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "field", "message"), BAD_FORMS)
async def test_bad_input_on_the_form_is_refused_with_a_message_on_the_field(
    client, db, clock, overrides, field, message
):
    clock.set(DURING_SUBMISSION)
    await organiser(client, db)
    response = await post_fields(client, NEW, form_fields(**overrides))
    assert response.status_code == 422
    assert field_error(response.text, field) == shown(message)
    assert f'value="{shown(FORM_TITLE)}"' in response.text, "what was typed is kept"
    assert await challenge_count(db) == 0


# --- who may do what ---------------------------------------------------------------------------


async def test_a_citizen_cannot_open_the_new_challenge_form(client, db):
    await organiser(client, db)
    await logout(client)
    await register(client)
    response = await client.get(NEW)
    assert response.status_code == 403
    with use_locale("en"):
        message = gettext("Only the organisation's owners and admins can create its challenges.")
    assert shown(message) in response.text


async def test_a_citizen_cannot_create_a_challenge(client, db, clock):
    clock.set(DURING_SUBMISSION)
    await organiser(client, db)
    await logout(client)
    await register(client)
    response = await post_fields(client, NEW, form_fields())
    assert response.status_code == 403
    with use_locale("en"):
        message = gettext("Only the organisation's owners and admins can create its challenges.")
    assert shown(message) in response.text
    assert await challenge_count(db) == 0


async def test_an_admin_edits_a_challenge_through_the_form(client, db, clock):
    clock.set(DURING_SUBMISSION)
    await organiser(client, db)
    challenge_id = await create_through_form(client)
    form = await client.get(f"/challenges/{challenge_id}/edit")
    assert form.status_code == 200
    assert f'value="{shown(FORM_TITLE)}"' in form.text, "the form starts from the stored values"
    response = await post_fields(
        client, f"/challenges/{challenge_id}/edit", form_fields(title="Less food in the bin")
    )
    assert response.status_code == 303, response.text
    page = (await client.get(f"/challenges/{challenge_id}")).text
    assert "<h1>Less food in the bin</h1>" in page
    assert '<a class="badge" href="/challenges/?tag=food">food</a>' in page, "the tags are kept"


async def test_a_moderator_cannot_edit_a_challenge(client, db, clock):
    _who, org = await organiser(client, db)
    challenge = await make_challenge(db, org, clock.now())
    await logout(client)
    moderator = await register(client)
    await add_member(db, org, await user(db, moderator.email), Role.MODERATOR)
    assert (await client.get(f"/challenges/{challenge.id}/edit")).status_code == 403
    fields = form_fields(title="Taken over by the moderator")
    response = await post_fields(client, f"/challenges/{challenge.id}/edit", fields)
    assert response.status_code == 403
    assert (await stored(db, challenge.id)).title == challenge.title


async def test_a_moderator_cannot_publish_a_challenge(client, db, clock):
    _who, org = await organiser(client, db)
    draft = await make_challenge(db, org, clock.now(), publish=False)
    await logout(client)
    moderator = await register(client)
    await add_member(db, org, await user(db, moderator.email), Role.MODERATOR)
    page = await client.get(f"/challenges/{draft.id}")
    assert page.status_code == 200, "the organisation's members see its drafts"
    assert "Manage this challenge" not in page.text
    response = await post_form(client, f"/challenges/{draft.id}/publish", {})
    assert response.status_code == 403
    assert (await stored(db, draft.id)).published_at is None


async def test_an_admin_of_another_organisation_cannot_edit_a_challenge(client, db, clock):
    _who, org = await organiser(client, db)
    challenge = await make_challenge(db, org, clock.now())
    await logout(client)
    stranger = await register(client)
    await make_organisation(db, await user(db, stranger.email), "Ville de Nantes")
    page = await client.get(f"/challenges/{challenge.id}")
    assert "Manage this challenge" not in page.text
    assert (await client.get(f"/challenges/{challenge.id}/edit")).status_code == 403
    fields = form_fields(title="Taken over from Nantes")
    response = await post_fields(client, f"/challenges/{challenge.id}/edit", fields)
    assert response.status_code == 403
    assert (await stored(db, challenge.id)).title == challenge.title


# --- rules locked once they matter -------------------------------------------------------------


async def test_the_edit_page_shows_the_votes_field_locked_during_voting(client, db, clock):
    _who, org = await organiser(client, db)
    challenge = await make_challenge(db, org, clock.now(), Phase.VOTING)
    page = (await client.get(f"/challenges/{challenge.id}/edit")).text
    assert re.search(r'<input id="field-votes_per_user"[^>]*\sdisabled[\s>]', page), "the input is disabled"
    locked = re.search(r'<p class="locked" id="locked-votes_per_user">(.*?)</p>', page)
    assert locked
    assert locked.group(1).startswith("Locked since voting started")


async def test_the_votes_field_is_open_before_voting(client, db, clock):
    _who, org = await organiser(client, db)
    challenge = await make_challenge(db, org, clock.now(), Phase.SUBMISSION)
    page = (await client.get(f"/challenges/{challenge.id}/edit")).text
    field = re.search(r'<input id="field-votes_per_user"[^>]*>', page)
    assert field
    assert "disabled" not in field.group(0)
    assert 'value="3"' in field.group(0)


async def test_the_api_refuses_to_change_the_votes_once_voting_started(client, db, clock):
    who, org = await organiser(client, db)
    challenge = await make_challenge(db, org, clock.now(), Phase.VOTING)
    auth = await bearer(client, who.email)
    response = await client.patch(
        f"/api/v1/challenges/{challenge.id}", json={"votes_per_user": 10}, headers=auth
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "voting started" in response.json()["detail"]
    assert (await stored(db, challenge.id)).votes_per_user == 3


async def test_the_api_accepts_a_locked_field_sent_unchanged(client, db, clock):
    who, org = await organiser(client, db)
    challenge = await make_challenge(db, org, clock.now(), Phase.VOTING)
    auth = await bearer(client, who.email)
    response = await client.patch(
        f"/api/v1/challenges/{challenge.id}",
        json={"votes_per_user": 3, "title": "Still about food"},
        headers=auth,
    )
    assert response.status_code == 200, response.text
    assert response.json()["rules"]["votes_per_user"] == 3
    assert (await stored(db, challenge.id)).title == "Still about food"


async def test_the_api_refuses_to_change_the_criteria_once_review_started(client, db, clock):
    who, org = await organiser(client, db)
    challenge = await make_challenge(db, org, clock.now(), Phase.REVIEW)
    auth = await bearer(client, who.email)
    criteria = [{"name": "Cost", "weight": 1, "scale_min": 1, "scale_max": 5}]
    response = await client.patch(
        f"/api/v1/challenges/{challenge.id}", json={"criteria": criteria}, headers=auth
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "review started" in response.json()["detail"]
    assert [c.name for c in (await stored(db, challenge.id)).criteria] == ["Impact", "Feasibility"]


# --- changing the phase by hand, closing --------------------------------------------------------


async def test_an_admin_moves_a_challenge_to_another_phase_with_a_reason(client, db, clock):
    _who, org = await organiser(client, db)
    challenge = await make_challenge(db, org, clock.now(), Phase.SUBMISSION)
    form = await client.get(f"/challenges/{challenge.id}/phase")
    assert form.status_code == 200
    assert "Current phase: Submission" in form.text

    reason = "The council meets early"
    response = await post_form(
        client, f"/challenges/{challenge.id}/phase", {"phase": "voting", "reason": reason}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/challenges/{challenge.id}"
    assert phase_badge((await client.get(f"/challenges/{challenge.id}")).text) == "Voting"
    assert listed((await client.get("/challenges/", params={"phase": "voting"})).text) == [challenge.id]
    assert listed((await client.get("/challenges/", params={"phase": "submission"})).text) == []


async def test_the_phase_history_lists_the_change_and_its_reason(client, db, clock):
    _who, org = await organiser(client, db)
    challenge = await make_challenge(db, org, clock.now(), Phase.SUBMISSION)
    reason = f"The council meets early {HOSTILE}"
    await post_form(client, f"/challenges/{challenge.id}/phase", {"phase": "voting", "reason": reason})
    page = (await client.get(f"/challenges/{challenge.id}/phase")).text
    history = re.search(r'<section aria-labelledby="history-title">.*?</section>', page, re.S)
    assert history, "no history section"
    entry = re.search(r"<li>.*?</li>", history.group(0), re.S)
    assert entry
    assert "phase changed from Submission to Voting" in entry.group(0)
    assert f"<q>{shown(reason)}</q>" in entry.group(0)


async def test_a_phase_change_without_a_reason_is_refused(client, db, clock):
    _who, org = await organiser(client, db)
    challenge = await make_challenge(db, org, clock.now(), Phase.SUBMISSION)
    response = await post_form(
        client, f"/challenges/{challenge.id}/phase", {"phase": "voting", "reason": "  "}
    )
    assert response.status_code == 422
    assert field_error(response.text, "reason") == "Say why: the reason is kept in the audit log."
    assert (await stored(db, challenge.id)).phase_override is None
    assert phase_badge((await client.get(f"/challenges/{challenge.id}")).text) == "Submission"


async def test_closing_asks_for_confirmation_then_closes(client, db, clock):
    _who, org = await organiser(client, db)
    challenge = await make_challenge(db, org, clock.now(), Phase.SUBMISSION)
    confirm = await client.get(f"/challenges/{challenge.id}/close")
    assert confirm.status_code == 200
    assert "<h1>Close the challenge?</h1>" in confirm.text
    assert f'action="/challenges/{challenge.id}/close"' in confirm.text
    assert phase_badge((await client.get(f"/challenges/{challenge.id}")).text) == "Submission", "not yet"

    response = await post_form(
        client, f"/challenges/{challenge.id}/close", {"reason": "The project is cancelled"}
    )
    assert response.status_code == 303
    page = (await client.get(f"/challenges/{challenge.id}")).text
    assert phase_badge(page) == "Closed"
    assert "Close the challenge</a>" not in page, "nothing left to close"


# --- in French -----------------------------------------------------------------------------------


async def test_form_errors_are_shown_in_french(client, db, clock):
    clock.set(DURING_SUBMISSION)
    await organiser(client, db)
    await post_form(client, "/locale", {"locale": "fr", "next": "/"})
    response = await post_fields(client, NEW, form_fields(languages=[]))
    assert response.status_code == 422
    assert '<html lang="fr">' in response.text
    english = "Choose at least one language in which ideas are accepted."
    with use_locale("fr"):
        french = gettext(english)
    assert french != english, "the French catalogue translates this message"
    assert field_error(response.text, "languages") == shown(french)


async def test_the_refusal_to_create_is_shown_in_french(client, db):
    await organiser(client, db)
    await logout(client)
    await register(client)
    await post_form(client, "/locale", {"locale": "fr", "next": "/"})
    response = await client.get(NEW)
    assert response.status_code == 403
    english = "Only the organisation's owners and admins can create its challenges."
    with use_locale("fr"):
        french = gettext(english)
    assert french != english, "the French catalogue translates this message"
    assert shown(french) in response.text
