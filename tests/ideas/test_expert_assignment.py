"""Experts for a challenge's ideas: suggestions under capacities and conflicts of interest, the errors that
explain why nothing was suggested, swaps and confirmation (which tells the expert), "Ideas to advise" and
the "Expert" badge on comments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Phase
from ideaforge.accounts.models import User
from ideaforge.notifications.models import Notification
from ideaforge.organisations.models import Role as OrgRole
from ideaforge.profiles.models import AssignmentStatus, ExpertAssignment, ExpertConflict, ExpertProfile
from tests.challenge_helpers import add_member, make_challenge, make_organisation
from tests.helpers import field_error, login, logout, post_form, shown
from tests.idea_helpers import make_idea, make_user

ORGANISER = "organiser@rennes.example.org"
MODERATOR = "moderator@rennes.example.org"
CITIZEN = "citizen@example.org"
BIKES = "Protected bike lanes on the ring road"
SOLAR = "Solar panels on school roofs"
COMPOST = "Community composting in every district"
BODIES = {
    BIKES: "Build separated cycle tracks along the ring road so that commuters can cycle safely to work.",
    SOLAR: "Cover the roofs of public schools with photovoltaic panels and use the electricity in the schools.",
    COMPOST: "Set up shared compost bins in each neighbourhood so households can turn food waste into soil.",
}


@dataclass
class Setup:
    challenge_id: int
    ideas: dict[str, int]
    experts: dict[str, int]
    """Expert name -> user id."""
    profiles: dict[str, int]
    """Expert name -> profile id."""
    authors: dict[str, int]


async def expert(db: AsyncSession, email: str, name: str, expertise: str, *, capacity: int = 5,
                 organisation_id: int | None = None, keywords: str = "") -> tuple[User, int]:  # fmt: skip
    user = await make_user(db, email, name)
    profile = ExpertProfile(user_id=user.id, expertise=expertise, keywords=keywords, languages="en", country="FR",
                            organisation_id=organisation_id, capacity=capacity, available=True)  # fmt: skip
    db.add(profile)
    await db.commit()
    return user, profile.id


async def arrange(db: AsyncSession, now: datetime, *, experts: bool = True) -> Setup:
    organiser = await make_user(db, ORGANISER, "Olivia Organiser")
    org = await make_organisation(db, organiser)
    await add_member(db, org, await make_user(db, MODERATOR, "Maud Moderator"), OrgRole.MODERATOR)
    await make_user(db, CITIZEN, "Chloé Citizen")
    challenge = await make_challenge(db, org, now, Phase.SUBMISSION)
    alice = await make_user(db, "alice@lyon.example.org", "Alice Author")
    lyon = await make_organisation(db, alice, "Lyon Lab")
    bob = await make_user(db, "bob@example.org", "Bob Author")
    carol = await make_user(db, "carol@example.org", "Carol Author")
    ideas = {}
    for title, author in ((BIKES, alice), (SOLAR, bob), (COMPOST, carol)):
        ideas[title] = (await make_idea(db, challenge, author, now, title=title, body=BODIES[title])).id
    setup = Setup(challenge.id, ideas, {}, {}, {"alice": alice.id, "bob": bob.id, "carol": carol.id})
    if not experts:
        return setup
    lyon_id = lyon.organisation.id
    for key, email, name, text, capacity, organisation_id in (
        ("cyclist", "cyclist@lyon.example.org", "Cyril Cyclist",
         "Cycling infrastructure and protected bike lanes. Designs cycle tracks for commuters.", 5, lyon_id),
        ("mobility", "mobility@example.org", "Mona Mobility",
         "Urban mobility and bicycle networks. Plans safe cycling routes in cities.", 1, None),
        ("solar", "solar@example.org", "Sol Solar",
         "Solar photovoltaic panels on public buildings. Energy use in schools.", 5, None),
        ("energy", "energy@example.org", "Enzo Energy",
         "Renewable energy and photovoltaics for public buildings like schools.", 1, None),
        ("waste", "waste@example.org", "Wanda Waste",
         "Household food waste, composting and shared compost bins in neighbourhoods.", 1, None),
    ):  # fmt: skip
        user, profile_id = await expert(
            db, email, name, text, capacity=capacity, organisation_id=organisation_id
        )
        setup.experts[key], setup.profiles[key] = user.id, profile_id
    # Sol declared a conflict with Bob (say, his brother): never on Bob's idea, however well he matches.
    db.add(ExpertConflict(expert_user_id=setup.experts["solar"], user_id=bob.id, note="family"))
    await db.commit()
    return setup


async def sign_in_as(client: Any, email: str) -> None:
    await logout(client)
    response = await login(client, email)
    assert response.status_code == 303, response.text


def url(s: Setup) -> str:
    return f"/challenges/{s.challenge_id}/experts"


async def assigned(db: AsyncSession, s: Setup) -> dict[tuple[int, int], AssignmentStatus]:
    db.expire_all()
    rows = await db.execute(
        select(ExpertAssignment.idea_id, ExpertAssignment.expert_user_id, ExpertAssignment.status).where(
            ExpertAssignment.challenge_id == s.challenge_id
        )
    )
    return {(i, u): status for i, u, status in rows}


async def suggest(client: Any, s: Setup, k: str = "1") -> Any:
    return await post_form(client, f"{url(s)}/suggest", {"k": k})


async def test_suggestions_respect_capacity_and_conflicts(client, app, db, clock):
    s = await arrange(db, clock.now())
    await sign_in_as(client, ORGANISER)

    page = await client.get(url(s))
    assert page.status_code == 200
    assert "Suggest experts" in page.text
    assert page.text.count("No expert yet.") == 3

    response = await suggest(client, s)
    assert response.status_code == 303, response.text
    await app.state.jobs.drain()
    pairs = await assigned(db, s)
    by_idea = {i: u for (i, u) in pairs}
    assert set(pairs.values()) == {AssignmentStatus.SUGGESTED}
    assert len(pairs) == 3, "k=1: one expert per idea"
    assert by_idea[s.ideas[BIKES]] == s.experts["mobility"], (
        "the best cyclist works for the author's organisation: never suggested"
    )
    assert by_idea[s.ideas[SOLAR]] == s.experts["energy"], "Sol declared a conflict with the author"
    assert by_idea[s.ideas[COMPOST]] == s.experts["waste"]
    assert (s.ideas[BIKES], s.experts["cyclist"]) not in pairs
    assert (s.ideas[SOLAR], s.experts["solar"]) not in pairs

    page = (await client.get(url(s))).text
    assert shown("Mona Mobility") in page
    assert "Plans safe cycling routes in cities." in page or "Urban mobility and bicycle networks." in page, (
        "the reason is the profile's matching sentences"
    )
    assert re.search(r"(Strong|Good|Weak) match", page)
    assert "Confirm all suggestions" in page

    # k=2: capacities hold (Mona, Enzo and Wanda take one idea each), conflicts still never appear.
    response = await suggest(client, s, "2")
    assert response.status_code == 303, response.text
    pairs = await assigned(db, s)
    assert len(pairs) == 6
    load: dict[int, int] = {}
    for _idea, user_id in pairs:
        load[user_id] = load.get(user_id, 0) + 1
    for key in ("mobility", "energy", "waste"):
        assert load.get(s.experts[key], 0) <= 1, key
    assert (s.ideas[BIKES], s.experts["cyclist"]) not in pairs
    assert (s.ideas[SOLAR], s.experts["solar"]) not in pairs


async def test_infeasible_names_the_ideas_and_writes_nothing(client, db, clock):
    s = await arrange(db, clock.now())
    await sign_in_as(client, ORGANISER)
    # Everyone but Sol and Cyril is away; Cyril works for Alice's organisation and Sol declares a conflict
    # with Alice too: nobody may advise her idea.
    db.add(ExpertConflict(expert_user_id=s.experts["solar"], user_id=s.authors["alice"]))
    await db.execute(
        update(ExpertProfile)
        .where(ExpertProfile.user_id.not_in([s.experts["solar"], s.experts["cyclist"]]))
        .values(available=False)
    )
    await db.commit()

    response = await suggest(client, s)

    assert response.status_code == 422
    message = field_error(response.text, "k")
    assert "No suggestion was made" in message
    assert shown(f"“{BIKES}”") in message
    assert shown(SOLAR) not in message, "Cyril may advise it"
    assert shown(COMPOST) not in message, "Cyril may advise it"
    assert "Please correct the following:" in response.text
    assert await assigned(db, s) == {}


async def test_bad_k_is_refused_with_a_reason(client, db, clock):
    s = await arrange(db, clock.now())
    await sign_in_as(client, ORGANISER)

    for k, expected in (
        ("0", "Ask for at least one expert per idea."),
        ("two", "Enter a whole number of experts per idea, 1 or more."),
        ("9", "You asked for 9 experts per idea, but only 5 available experts have room"),
    ):
        response = await suggest(client, s, k)
        assert response.status_code == 422, k
        assert expected in field_error(response.text, "k"), (k, field_error(response.text, "k"))
        assert f'value="{k}"' in response.text, "what the organiser typed stays in the form"
    assert await assigned(db, s) == {}


async def test_no_expert_profile_shows_the_way_to_the_expertise_page(client, db, clock):
    s = await arrange(db, clock.now(), experts=False)
    await sign_in_as(client, ORGANISER)

    page = (await client.get(url(s))).text
    assert "No expert profile exists yet." in page
    assert 'href="/account/expertise"' in page

    response = await suggest(client, s)
    assert response.status_code == 422
    assert "No expert is available" in response.text


async def test_only_the_challenge_admins_may_assign_experts(client, db, clock):
    s = await arrange(db, clock.now())
    for who in (CITIZEN, MODERATOR, "bob@example.org"):
        await sign_in_as(client, who)
        assert (await client.get(url(s))).status_code == 404, who
        assert (await suggest(client, s)).status_code == 404, who
        response = await post_form(client, f"{url(s)}/confirm", {})
        assert response.status_code == 404, who
    assert await assigned(db, s) == {}

    await sign_in_as(client, ORGANISER)
    challenge_page = (await client.get(f"/challenges/{s.challenge_id}")).text
    assert f'href="{url(s)}"' in challenge_page, "linked from the challenge's admin panel"


async def test_swaps_offer_only_eligible_experts_and_are_checked_again(client, db, clock):
    s = await arrange(db, clock.now())
    await sign_in_as(client, ORGANISER)
    assert (await suggest(client, s)).status_code == 303
    assignment_id = await db.scalar(
        select(ExpertAssignment.id).where(ExpertAssignment.idea_id == s.ideas[BIKES])
    )

    form = await client.get(f"/expert-assignments/{assignment_id}/swap")

    assert form.status_code == 200
    offered = [int(v) for v in re.findall(r'name="expert" value="(\d+)"', form.text)]
    assert s.profiles["cyclist"] not in offered, "conflicted experts are never offered"
    assert s.profiles["mobility"] not in offered, "already assigned to this idea"
    assert s.profiles["solar"] in offered, "Sol has no conflict with Alice"

    refused = await post_form(client, f"/expert-assignments/{assignment_id}/swap",
                              {"expert": str(s.profiles["cyclist"])})  # fmt: skip
    assert refused.status_code == 422
    assert "Choose one of the experts listed" in field_error(refused.text, "expert")
    assert (s.ideas[BIKES], s.experts["cyclist"]) not in await assigned(db, s)

    swapped = await post_form(client, f"/expert-assignments/{assignment_id}/swap",
                              {"expert": str(s.profiles["solar"])})  # fmt: skip
    assert swapped.status_code == 303
    assert (s.ideas[BIKES], s.experts["solar"]) in await assigned(db, s)


async def test_confirming_tells_the_expert_who_sees_the_idea_and_gets_a_badge(client, app, db, clock):
    s = await arrange(db, clock.now())
    await sign_in_as(client, ORGANISER)
    assert (await suggest(client, s)).status_code == 303

    response = await post_form(client, f"{url(s)}/confirm", {"idea": str(s.ideas[COMPOST])})

    assert response.status_code == 303
    await app.state.jobs.drain()
    pairs = await assigned(db, s)
    assert pairs[(s.ideas[COMPOST], s.experts["waste"])] is AssignmentStatus.CONFIRMED
    assert pairs[(s.ideas[BIKES], s.experts["mobility"])] is AssignmentStatus.SUGGESTED, "one idea only"
    told = (await db.execute(select(Notification.text, Notification.link).where(
        Notification.user_id == s.experts["waste"]))).all()  # fmt: skip
    assert told == [(f"You are asked to advise on the idea “{COMPOST}” in the challenge “{await title(db, s)}”.",
                     "/account/advising")]  # fmt: skip
    assert not (await db.execute(select(Notification.id).where(
        Notification.user_id == s.experts["mobility"]))).all(), "suggestions are not told"  # fmt: skip

    # Suggesting again keeps the confirmed expert (and counts Wanda as full).
    assert (await suggest(client, s)).status_code == 303
    pairs = await assigned(db, s)
    assert pairs[(s.ideas[COMPOST], s.experts["waste"])] is AssignmentStatus.CONFIRMED
    assert sum(1 for (i, _u) in pairs if i == s.ideas[COMPOST]) == 1

    await sign_in_as(client, "waste@example.org")
    advising = (await client.get("/account/advising")).text
    assert f'<a href="/ideas/{s.ideas[COMPOST]}">{shown(COMPOST)}</a>' in advising
    assert shown(BIKES) not in advising
    comment = await post_form(client, f"/ideas/{s.ideas[COMPOST]}/comments", {"body": "Start with two bins."})
    assert comment.status_code == 303
    await sign_in_as(client, CITIZEN)
    assert (
        await post_form(client, f"/ideas/{s.ideas[COMPOST]}/comments", {"body": "I'd use one."})
    ).status_code == 303

    page = (await client.get(f"/ideas/{s.ideas[COMPOST]}")).text
    assert re.search(r"Wanda Waste <span class=\"badge badge-expert\">Expert</span>", page)
    assert not re.search(r"Chloé Citizen <span class=\"badge badge-expert\">", page)
    assert page.count("badge-expert") == 1


async def title(db: AsyncSession, s: Setup) -> str:
    from challenges.models import Challenge

    return str(await db.scalar(select(Challenge.title).where(Challenge.id == s.challenge_id)))


async def test_confirmation_checks_conflicts_again(client, app, db, clock):
    s = await arrange(db, clock.now())
    await sign_in_as(client, ORGANISER)
    assert (await suggest(client, s)).status_code == 303
    # After the suggestion, Wanda declares a conflict with Carol: confirming must refuse, and confirm nothing.
    db.add(ExpertConflict(expert_user_id=s.experts["waste"], user_id=s.authors["carol"]))
    await db.commit()

    response = await post_form(client, f"{url(s)}/confirm", {})

    assert response.status_code == 303
    page = (await client.get(url(s))).text
    assert shown(f"has a conflict of interest with “{COMPOST}”") in page
    assert AssignmentStatus.CONFIRMED not in (await assigned(db, s)).values()
    assert not (await db.execute(select(Notification.id).where(
        Notification.kind == "expert_assigned"))).all()  # fmt: skip
