"""The jury: inviting by email (the link, joining with any account, bad invitations, who may), conflicts of
interest (declared by jurors, detected through authorship and shared organisations), and the assignment of
the shortlist (k distinct jurors per idea, balanced loads, never in conflict, kept when run again, adjusted
by hand, an impossible assignment explained with nothing saved)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, ChallengeJuror, Phase
from ideaforge.audit import AuditEvent
from ideaforge.notifications.models import Notification
from ideaforge.organisations.models import Organisation, OrganisationKind
from ideaforge.organisations.models import Role as OrgRole
from ideaforge.profiles.models import ExpertProfile
from ideas.jury.models import JurorConflict, JuryAssignment, JuryInvitation, Scorecard
from ideas.jury.panel import conflicts_in, detected_conflicts, invite_juror
from ideas.models import CoAuthor, CoAuthorStatus, ShortlistEntry
from tests.challenge_helpers import Org, add_juror, add_member, make_challenge, make_organisation, user
from tests.helpers import field_error, login, logout, post_form, register, shown
from tests.idea_helpers import make_idea, make_user

ADMIN = "admin@rennes.example.org"
CITIZEN = "citizen@example.org"
NAMES = ("ana", "ben", "chloe", "dan")
TITLES = ("Bread for food banks", "Compost in every district", "Repair cafés", "Seed library",
          "Fridge sharing", "Market leftovers app")  # fmt: skip
LINK = re.compile(r"http://testserver\.local(/jury-invitations/[A-Za-z0-9_-]+)")


@dataclass
class World:
    challenge_id: int
    ideas: dict[str, int]
    jurors: dict[str, int]
    review_starts: datetime
    review_ends: datetime
    org: Org


async def arrange(db: AsyncSession, now: datetime, *, jurors: tuple[str, ...] = NAMES) -> World:
    """Six shortlisted ideas in a blind challenge (3 jurors per idea); Ana co-wrote the first, Ben and the
    second's author are both in the Compost Collective."""
    org = await make_organisation(db, await make_user(db, ADMIN, "Ada Admin"))
    await make_user(db, CITIZEN, "Chloé Citizen")
    challenge = await make_challenge(db, org, now, Phase.SUBMISSION, blind_review=True)
    people = {name: await make_user(db, f"{name}@jury.example.org", name.title()) for name in jurors}
    for person in people.values():
        await add_juror(db, challenge, person)
    ideas = {}
    for i, title in enumerate(TITLES):
        author = await make_user(db, f"author{i}@example.org", f"Author {i}")
        ideas[title] = (await make_idea(db, challenge, author, now + timedelta(minutes=i), title=title)).id
        db.add(ShortlistEntry(challenge_id=challenge.id, idea_id=ideas[title], added_by_id=org.admin.id))
        if i == 1:
            collective = await make_organisation(db, author, "Compost Collective")
            if "ben" in people:
                await add_member(db, collective, people["ben"], OrgRole.MEMBER)
    if "ana" in people:
        db.add(CoAuthor(idea_id=ideas[TITLES[0]], user_id=people["ana"].id, status=CoAuthorStatus.ACCEPTED))
    await db.commit()
    assert challenge.review_ends_at is not None
    return World(challenge.id, ideas, {n: u.id for n, u in people.items()}, challenge.voting_ends_at,
                 challenge.review_ends_at, org)  # fmt: skip


async def sign_in_as(client: Any, email: str) -> None:
    await logout(client)
    assert (await login(client, email)).status_code == 303


async def flashed(client: Any, response: Any) -> str:
    assert response.status_code == 303, response.text
    page = await client.get(response.headers["location"])
    return " ".join(m.strip() for m in re.findall(r'<p class="flash[^"]*"[^>]*>(.*?)</p>', page.text, re.S))


async def pairs(db: AsyncSession, w: World) -> set[tuple[int, int]]:
    db.expire_all()
    rows = await db.execute(select(JuryAssignment.idea_id, JuryAssignment.juror_user_id)
                            .where(JuryAssignment.challenge_id == w.challenge_id))  # fmt: skip
    return {(i, j) for i, j in rows}


async def count(db: AsyncSession, model: Any) -> int:
    db.expire_all()
    return await db.scalar(select(func.count()).select_from(model)) or 0


def jury(w: World, tail: str = "") -> str:
    return f"/challenges/{w.challenge_id}/jury{tail}"


@pytest.mark.smtp
async def test_an_invited_person_joins_the_jury_by_the_emailed_link(client, db, clock, received):
    w = await arrange(db, clock.now(), jurors=())
    await sign_in_as(client, ADMIN)
    assert 'id="members"' in (await client.get(jury(w))).text
    answer = await post_form(client, jury(w, "/invitations"), {"email": " New.Juror@Example.org "})
    assert "Invitation sent to new.juror@example.org" in await flashed(client, answer)
    await client.app.state.jobs.drain()
    [mail] = [m for m in received if m["To"] == "new.juror@example.org"]
    assert "Ada Admin invites you to the jury of “How can we cut food waste?" in str(
        make_header(decode_header(mail["Subject"]))
    )
    body = mail.get_payload(decode=True).decode()
    assert "Ville de Rennes" in body
    found = LINK.search(body)
    assert found, body
    link = found.group(1)
    assert "new.juror@example.org" in (await client.get(jury(w))).text, "pending, listed"

    await logout(client)
    landing = await client.get(link)
    assert landing.status_code == 200
    challenge = await db.get(Challenge, w.challenge_id)
    assert challenge is not None
    assert shown(challenge.title) in landing.text
    assert f'href="/login?next={link}"' in landing.text
    someone = await register(client)  # any account may accept: not the invited address
    accepted = await post_form(client, link, {})
    assert accepted.headers["location"] == jury(w, "/conflicts")
    page = await client.get(jury(w, "/conflicts"))
    assert page.status_code == 200
    assert "Welcome to the jury!" in page.text
    assert (await post_form(client, link, {})).headers["location"] == jury(w, "/conflicts"), "twice: harmless"
    assert await count(db, ChallengeJuror) == 1

    await logout(client)
    await register(client)
    used = await client.get(link)
    assert used.status_code == 403
    assert "This invitation has already been used." in used.text
    assert (await client.get("/jury-invitations/not-a-real-token")).status_code == 404
    await sign_in_as(client, ADMIN)
    page = (await client.get(jury(w))).text
    assert shown(someone.display_name) in page
    assert "new.juror@example.org" not in page, "no longer pending"
    joined = await db.scalar(select(AuditEvent).where(AuditEvent.action == "jury_join"))
    assert joined is not None


async def test_bad_invitations_and_strangers_change_nothing(client, db, clock):
    w = await arrange(db, clock.now(), jurors=("ana", "ben"))
    await sign_in_as(client, ADMIN)
    for email, status, message in (
        ("not-an-email", 422, "Enter a valid email address, like name@example.org."),
        ("ANA@jury.example.org", 422, "ana@jury.example.org is already on the jury."),
        ("new@example.org", 303, ""),
        ("New@example.org", 422, "new@example.org is already invited and has not answered yet."),
    ):
        answer = await post_form(client, jury(w, "/invitations"), {"email": email})
        assert answer.status_code == status, email
        if message:
            assert message in field_error(answer.text, "email")
            assert f'value="{email}"' in answer.text, "what was typed stays"
    assert await count(db, JuryInvitation) == 1

    challenge = await db.get(Challenge, w.challenge_id)
    assert challenge is not None
    invited = await invite_juror(db, challenge, await user(db, ADMIN), "late@example.org", clock.now())
    late = await db.scalar(select(JuryInvitation.id).where(JuryInvitation.email == "late@example.org"))
    answer = await post_form(client, jury(w, "/invitations/cancel"), {"invitation": str(late)})
    assert "is cancelled" in await flashed(client, answer)
    cancelled = await client.get(f"/jury-invitations/{invited.token}")
    assert cancelled.status_code == 403
    assert "This invitation was cancelled by the organisers." in cancelled.text

    for email in (CITIZEN, "ana@jury.example.org"):
        await sign_in_as(client, email)
        assert (await client.get(jury(w))).status_code == 404
        assert (
            await post_form(client, jury(w, "/invitations"), {"email": "x@example.org"})
        ).status_code == 404
        assert (await post_form(client, jury(w, "/assign"), {})).status_code == 404
    assert (await client.get(jury(w, "/conflicts"))).status_code == 200, "Ana is a juror"
    await sign_in_as(client, CITIZEN)
    assert (await client.get(jury(w, "/conflicts"))).status_code == 404
    assert await count(db, JuryInvitation) == 2

    # A juror who scored stays; one who did not leaves with their assignments and declarations.
    first, second = w.ideas[TITLES[2]], w.ideas[TITLES[3]]
    ana, ben = w.jurors["ana"], w.jurors["ben"]
    kept = JuryAssignment(challenge_id=w.challenge_id, idea_id=first, juror_user_id=ana)
    db.add_all([kept, JuryAssignment(challenge_id=w.challenge_id, idea_id=first, juror_user_id=ben),
                JurorConflict(challenge_id=w.challenge_id, juror_user_id=ben, idea_id=second)])  # fmt: skip
    await db.flush()
    db.add(Scorecard(assignment_id=kept.id, challenge_id=w.challenge_id, idea_id=first, juror_user_id=ana))
    await db.commit()
    await sign_in_as(client, ADMIN)
    answer = await post_form(client, jury(w, "/members/remove"), {"juror": str(ben)})
    assert "Tick the box" in await flashed(client, answer)
    answer = await post_form(client, jury(w, "/members/remove"), {"juror": str(ana), "confirm": "on"})
    assert "removing them from the jury would lose their scores" in await flashed(client, answer)
    answer = await post_form(client, jury(w, "/members/remove"), {"juror": str(ben), "confirm": "on"})
    assert "Ben is no longer on the jury." in await flashed(client, answer)
    db.expire_all()
    assert set(await db.scalars(select(ChallengeJuror.user_id))) == {ana}
    assert await pairs(db, w) == {(first, ana)}
    assert await count(db, JurorConflict) == 0

    clock.set(w.review_starts + timedelta(minutes=1))
    message = await flashed(client, await post_form(client, jury(w, "/assign"), {}))
    assert "Each idea needs 3 jurors, but only 1 jury member is active: invite more jurors first." in message
    assert await pairs(db, w) == {(first, ana)}
    clock.set(w.review_ends + timedelta(minutes=1))
    answer = await post_form(client, jury(w, "/invitations"), {"email": "tardy@example.org"})
    assert "The review ended on" in await flashed(client, answer)
    assert 'id="invitations-closed"' in (await client.get(jury(w))).text
    assert await count(db, JuryInvitation) == 2


async def test_jurors_declare_conflicts_and_see_the_detected_ones(client, db, clock):
    w = await arrange(db, clock.now())
    await sign_in_as(client, "ana@jury.example.org")
    page = (await client.get(jury(w, "/conflicts"))).text
    assert all(shown(t) in page for t in TITLES)
    assert "Author 0" not in page, "blind: no author names"
    ana_idea = re.search(rf'<li id="idea-{w.ideas[TITLES[0]]}">(.*?)</li>', page, re.S)
    assert ana_idea is not None
    assert "Excluded automatically: you are an author of this idea." in ana_idea.group(1)
    await sign_in_as(client, "ben@jury.example.org")
    page = (await client.get(jury(w, "/conflicts"))).text
    assert "Excluded automatically: a conflict of interest was detected." in page
    assert "Compost Collective" not in page, "blind: no organisation either"

    await sign_in_as(client, "chloe@jury.example.org")
    idea = str(w.ideas[TITLES[2]])
    answer = await post_form(client, jury(w, "/conflicts/declare"), {"idea": idea, "reason": "x" * 501})
    assert answer.status_code == 422
    assert "Use at most 500 characters (you used 501)." in field_error(answer.text, f"reason-{idea}")
    assert await count(db, JurorConflict) == 0
    answer = await post_form(
        client, jury(w, "/conflicts/declare"), {"idea": idea, "reason": "My sister's idea"}
    )
    assert "Your conflict of interest with “Repair cafés” is recorded" in await flashed(client, answer)
    assert "Your reason: My sister&#39;s idea" in (await client.get(jury(w, "/conflicts"))).text

    await sign_in_as(client, ADMIN)
    page = (await client.get(jury(w))).text
    assert "Ana: co-author of the idea" in page
    assert "Ben: belongs to “Compost Collective”, like an author of the idea" in page
    assert "Chloe: declared: My sister&#39;s idea" in page
    row = re.search(rf'<tr id="juror-{w.jurors["ben"]}">(.*?)</tr>', page, re.S)
    assert row is not None
    assert "Compost Collective" in row.group(1)
    assert "declared: 0, detected: 1" in row.group(1)

    await sign_in_as(client, "chloe@jury.example.org")
    answer = await post_form(client, jury(w, "/conflicts/withdraw"), {"idea": idea})
    assert "is withdrawn" in await flashed(client, answer)
    assert await count(db, JurorConflict) == 0
    actions = list(await db.scalars(select(AuditEvent.action).where(AuditEvent.action.like("jury_conflict%"))
                                    .order_by(AuditEvent.id)))  # fmt: skip
    assert actions == ["jury_conflict_declare", "jury_conflict_withdraw"]


async def test_assignment_gives_k_jurors_balanced_and_never_in_conflict(client, db, clock):
    w = await arrange(db, clock.now())
    ids, j = w.ideas, w.jurors
    await sign_in_as(client, ADMIN)
    assert 'id="assignment-closed"' in (await client.get(jury(w))).text
    answer = await post_form(client, jury(w, "/assign"), {})
    assert "Assignment opens when the review starts" in await flashed(client, answer)

    db.add_all([JurorConflict(challenge_id=w.challenge_id, juror_user_id=j["chloe"], idea_id=ids[TITLES[2]]),
                JurorConflict(challenge_id=w.challenge_id, juror_user_id=j["dan"], idea_id=ids[TITLES[0]])])  # fmt: skip
    await db.commit()
    clock.set(w.review_starts + timedelta(minutes=1))
    message = await flashed(client, await post_form(client, jury(w, "/assign"), {}))
    assert (
        "No juror was assigned: these ideas lack 3 jurors without a conflict of interest: “Bread for food banks”."
        in message
    )
    assert await pairs(db, w) == set(), "nothing saved"

    dan_conflict = await db.scalar(select(JurorConflict).where(JurorConflict.juror_user_id == j["dan"]))
    await db.delete(dan_conflict)
    await db.commit()
    message = await flashed(client, await post_form(client, jury(w, "/assign"), {}))
    assert "18 assignments made" in message
    first = await pairs(db, w)
    by_idea = Counter(i for i, _j in first)
    assert set(by_idea.values()) == {3}
    assert len(by_idea) == 6
    for never in ((ids[TITLES[0]], j["ana"]), (ids[TITLES[1]], j["ben"]), (ids[TITLES[2]], j["chloe"])):
        assert never not in first
    assert sorted(Counter(u for _i, u in first).values()) == [4, 4, 5, 5]
    db.expire_all()
    told = list(await db.execute(select(Notification.user_id, Notification.text, Notification.link)
                                 .where(Notification.kind == "jury_assigned")))  # fmt: skip
    assert {u for u, _t, _l in told} == set(j.values())
    assert all(link == jury(w).replace("/jury", "/scoring") for _u, _t, link in told)
    assert any(t.startswith("You have 5 ideas to score in “How can we cut food waste?") for _u, t, _l in told)

    # Taking one juror off an idea and assigning again fills that gap only.
    gone = await db.scalar(select(JuryAssignment).where(JuryAssignment.idea_id == ids[TITLES[3]]).limit(1))
    assert gone is not None
    gone_pair = (gone.idea_id, gone.juror_user_id)
    answer = await post_form(client, jury(w, "/assignments/remove"), {"assignment": str(gone.id)})
    assert "no longer scores “Seed library”" in await flashed(client, answer)
    assert "1 assignment made" in await flashed(client, await post_form(client, jury(w, "/assign"), {}))
    again = await pairs(db, w)
    assert first - {gone_pair} <= again
    assert len(again) == 18
    loads = Counter(u for _i, u in again).values()
    assert max(loads) - min(loads) <= 1
    assert "nothing to do" in await flashed(client, await post_form(client, jury(w, "/assign"), {}))

    # By hand: a juror in conflict is refused with why; a free one is added; a started scorecard stays.
    add = {"idea": str(ids[TITLES[0]]), "juror": str(j["ana"])}
    message = await flashed(client, await post_form(client, jury(w, "/assignments/add"), add))
    assert "Ana has a conflict of interest with “Bread for food banks” (co-author of the idea)" in message
    missing = next(u for u in j.values() if (ids[TITLES[4]], u) not in again)
    add = {"idea": str(ids[TITLES[4]]), "juror": str(missing)}
    assert "now scores this idea" in await flashed(
        client, await post_form(client, jury(w, "/assignments/add"), add)
    )
    assert (ids[TITLES[4]], missing) in await pairs(db, w)
    started = await db.scalar(select(JuryAssignment).where(JuryAssignment.idea_id == ids[TITLES[5]]).limit(1))
    assert started is not None
    started_id, started_pair = started.id, (started.idea_id, started.juror_user_id)
    db.add(Scorecard(assignment_id=started_id, challenge_id=w.challenge_id, idea_id=started_pair[0],
                     juror_user_id=started_pair[1]))  # fmt: skip
    await db.commit()
    answer = await post_form(client, jury(w, "/assignments/remove"), {"assignment": str(started_id)})
    assert "has already started scoring “Market leftovers app”" in await flashed(client, answer)
    assert started_pair in await pairs(db, w)

    # A juror declaring a conflict loses the idea, unless they started scoring it.
    email = {u: f"{n}@jury.example.org" for n, u in j.items()}
    declare = {"idea": str(started_pair[0]), "reason": ""}
    await sign_in_as(client, email[started_pair[1]])
    message = await flashed(client, await post_form(client, jury(w, "/conflicts/declare"), declare))
    assert "You have already started scoring “Market leftovers app”" in message
    other = next(u for i, u in await pairs(db, w) if i == started_pair[0] and u != started_pair[1])
    await sign_in_as(client, email[other])
    message = await flashed(client, await post_form(client, jury(w, "/conflicts/declare"), declare))
    assert "It was taken off your list" in message
    assert (started_pair[0], other) not in await pairs(db, w)
    assert started_pair in await pairs(db, w)
    actions = Counter(
        await db.scalars(select(AuditEvent.action).where(AuditEvent.action.like("jury_assign%")))
    )
    assert actions == {"jury_assign": 2, "jury_assignment_remove": 1, "jury_assignment_add": 1}


async def test_conflicts_are_detected_by_authorship_and_folded_organisation_names(db, clock):
    w = await arrange(db, clock.now())
    j, ids = w.jurors, w.ideas
    db.add(CoAuthor(idea_id=ids[TITLES[3]], user_id=j["dan"], status=CoAuthorStatus.INVITED))
    university = Organisation(slug="univ-rennes", name="Université de Rennes", kind=OrganisationKind.UNIVERSITY,
                              country="FR")  # fmt: skip
    again = Organisation(slug="univ-rennes-2", name="  UNIVERSITE  de rennes", kind=OrganisationKind.UNIVERSITY,
                         country="FR")  # fmt: skip
    db.add_all([university, again])
    await db.flush()
    db.add(ExpertProfile(user_id=j["chloe"], expertise="Food logistics.", languages="fr,en", country="FR",
                         organisation_id=university.id))  # fmt: skip
    author = await user(db, "author4@example.org")
    await add_member(db, Org(again, author), author, OrgRole.MEMBER)
    db.add(
        JurorConflict(
            challenge_id=w.challenge_id, juror_user_id=j["ana"], idea_id=ids[TITLES[0]], reason="Mine"
        )
    )
    await db.commit()

    found = await detected_conflicts(db, w.challenge_id, j.values(), ids.values())
    collective = await db.scalar(select(Organisation.id).where(Organisation.name == "Compost Collective"))
    assert found == {
        (j["ana"], ids[TITLES[0]]): "coauthor",
        (j["ben"], ids[TITLES[1]]): f"organisation:{collective}",
        (j["chloe"], ids[TITLES[4]]): f"organisation:{university.id}",
    }, "an invited co-author is not an author yet"
    assert await detected_conflicts(db, w.challenge_id + 1, j.values(), ids.values()) == {}, "other challenge"
    notes = await conflicts_in(db, w.challenge_id, [j["ana"]], ids.values())
    assert [(n.declared, n.detected) for n in notes.values()] == [("Mine", "coauthor")]
