"""Partners abroad: suggestions for a challenge, the double opt-in that guards contacts, the directory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ideaforge.accounts.models import User
from ideaforge.notifications.models import Notification
from ideaforge.organisations.models import Membership, Organisation, OrganisationKind, Role
from ideaforge.profiles.models import InterestStatus, PartnerInterest, PartnerProfile
from ideas.models import StoredVector
from tests.challenge_helpers import make_challenge, make_organisation
from tests.helpers import login, logout, post_form, shown
from tests.idea_helpers import make_user
from tests.ideas.test_idea_pages import sign_in, switch_to, switch_to_new

ORGANISER = "organiser@example.org"
ORGANISER_NAME = "Olivia Organiser"

CHALLENGE: dict[str, Any] = {
    "title": "Cooler streets during heatwaves",
    "summary": "Our city centre overheats every summer: we want shade and cooling for people on foot.",
    "description": "Ideas to reduce urban heat in streets and squares.",
}


@dataclass(frozen=True)
class Demo:
    slug: str
    name: str
    country: str
    offers: str
    seeks: str
    sectors: str
    cooperation: str
    contact_name: str
    contact_email: str
    listed: bool = True


COOLING = Demo(
    "barcelona-urban-lab", "Barcelona Urban Lab", "ES",
    "We run a bike-sharing software platform. We design green roofs and street trees that cool urban heat "
    "islands.",
    "Cities that want to test cooling pilots.", "climate,urban planning", "pilot,research",
    "Private Ana", "ana.secret@barcelona.example",
)  # fmt: skip
FINTECH = Demo(
    "quebec-fintech-hub", "Quebec Fintech Hub", "CA",
    "We provide payment software and banking APIs for small businesses.",
    "Investors in financial technology.", "finance", "investment",
    "Private Bob", "bob.secret@quebec.example",
)  # fmt: skip
SAME_COUNTRY = Demo(
    "lyon-cooling-experts", "Lyon Cooling Experts", "FR",
    "Shade sails, misting fountains and tree planting to cool streets during heatwaves.",
    "Cities in France.", "climate", "pilot",
    "Private Claire", "claire.secret@lyon.example",
)  # fmt: skip
UNLISTED = Demo(
    "berlin-shade-works", "Berlin Shade Works", "DE",
    "Cooling streets during heatwaves with shade and trees.",
    "Anything.", "climate", "pilot",
    "Private Dieter", "dieter.secret@berlin.example", listed=False,
)  # fmt: skip
SECRETS = [d.contact_email for d in (COOLING, FINTECH, SAME_COUNTRY, UNLISTED)] + [
    d.contact_name for d in (COOLING, FINTECH, SAME_COUNTRY, UNLISTED)
]


async def add_partner(db: AsyncSession, demo: Demo, admin_email: str | None = None) -> int:
    """A partner organisation with its owner (``admin_email``) and profile, straight in the database."""
    organisation = Organisation(
        slug=demo.slug, name=demo.name, kind=OrganisationKind.LAB, country=demo.country
    )
    db.add(organisation)
    await db.flush()
    organisation_id = organisation.id
    if admin_email is not None:
        admin = await make_user(db, admin_email, f"Admin of {demo.name}")
        db.add(Membership(organisation_id=organisation_id, user_id=admin.id, role=Role.OWNER))
    db.add(PartnerProfile(organisation_id=organisation_id, listed=demo.listed, offers=demo.offers,
                          seeks=demo.seeks, sectors=demo.sectors, cooperation=demo.cooperation,
                          region="", contact_name=demo.contact_name, contact_email=demo.contact_email))  # fmt: skip
    await db.commit()
    return organisation_id


async def arrange(db: AsyncSession, now: datetime, *, open_to_partners: bool = True) -> int:
    """The organiser's French city with one challenge, and the four partners; the challenge's id."""
    organiser = await make_user(db, ORGANISER, ORGANISER_NAME)
    org = await make_organisation(db, organiser)
    challenge = await make_challenge(db, org, now, tags=[], open_to_partners=open_to_partners, **CHALLENGE)
    challenge_id = challenge.id
    await add_partner(db, COOLING, "ana.admin@example.org")
    await add_partner(db, FINTECH, "bob.admin@example.org")
    await add_partner(db, SAME_COUNTRY, "claire.admin@example.org")
    await add_partner(db, UNLISTED, "dieter.admin@example.org")
    return challenge_id


async def login_as(client: Any, email: str) -> None:
    response = await login(client, email)
    assert response.status_code == 303, response.text


async def org_id(db: AsyncSession, slug: str) -> int:
    found = await db.scalar(select(Organisation.id).where(Organisation.slug == slug))
    assert found is not None, slug
    return found


def assert_private(html: str, where: str, *secrets: str) -> None:
    for secret in secrets or tuple(SECRETS):
        assert secret not in html, (where, secret)


async def test_suggestions_rank_the_answering_offer_first_and_never_the_same_country(client, db, app, clock):
    challenge_id = await arrange(db, clock.now())
    await login_as(client, ORGANISER)
    detail = await client.get(f"/challenges/{challenge_id}")
    assert f'href="/challenges/{challenge_id}/partners"' in detail.text

    page = await client.get(f"/challenges/{challenge_id}/partners")
    assert page.status_code == 200
    html = page.text
    assert COOLING.name in html
    assert SAME_COUNTRY.name not in html, "a partner from the challenge's own country is never suggested"
    assert UNLISTED.name not in html, "an unlisted profile is never suggested"
    assert FINTECH.name in html, "every listed partner abroad is ranked"
    assert html.index(COOLING.name) < html.index(FINTECH.name), (
        "the offer that answers the challenge ranks first"
    )
    assert shown("We design green roofs and street trees that cool urban heat islands.") in html, "the reason"
    assert "Spain" in html
    assert "Pilot projects, Research" in html
    assert_private(html, "suggestions")
    stored = await db.scalar(
        select(func.count()).select_from(StoredVector).where(StoredVector.kind == "partner")
    )
    assert stored == 2, "the partners abroad were embedded and stored on first use"


async def test_only_the_challenge_admins_see_suggestions(client, db, app, clock):
    challenge_id = await arrange(db, clock.now())
    url = f"/challenges/{challenge_id}/partners"
    await client.get("/")
    anonymous = await client.get(url, follow_redirects=False)
    assert anonymous.status_code in (302, 303)
    assert "/login" in anonymous.headers["location"]
    await sign_in(client, db, "citizen@example.org", "Citizen")
    assert (await client.get(url)).status_code in (403, 404)
    cooling = await org_id(db, COOLING.slug)
    refused = await post_form(client, f"{url}/{cooling}/interest", {"message": "hi"})
    assert refused.status_code in (403, 404)
    # A moderator of the organising city is not one of its admins either.
    moderator = await switch_to_new(client, db, "moderator@example.org", "Moderator")
    city = await db.scalar(
        select(Organisation.id).where(Organisation.country == "FR", Organisation.kind == "city")
    )
    db.add(Membership(organisation_id=city, user_id=moderator.id, role=Role.MODERATOR))
    await db.commit()
    assert (await client.get(url)).status_code in (403, 404)
    assert await db.scalar(select(func.count()).select_from(PartnerInterest)) == 0
    assert (await client.get("/challenges/999999/partners")).status_code == 404


async def _notifications(db: AsyncSession, email: str, kind: str) -> list[Notification]:
    user = await db.scalar(select(User).where(User.email == email))
    assert user is not None
    return list(await db.scalars(
        select(Notification).where(Notification.user_id == user.id, Notification.kind == kind)
        .execution_options(populate_existing=True)
    ))  # fmt: skip


async def _pages(client: Any, challenge_id: int, *, organiser: bool) -> dict[str, str]:
    """Every page involved, as the signed-in user sees it."""
    urls = ["/partners", f"/organisations/{COOLING.slug}", "/notifications", f"/challenges/{challenge_id}",
            f"/api/v1/challenges/{challenge_id}", "/partners?q=heat&meaning=1"]  # fmt: skip
    if organiser:
        urls.append(f"/challenges/{challenge_id}/partners")
    else:
        urls.append(f"/organisations/{COOLING.slug}/partner-interests")
    pages = {}
    for url in urls:
        response = await client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        pages[url] = response.text
    return pages


async def test_interest_is_double_opt_in_and_contacts_appear_only_after_acceptance(client, db, app, clock):
    challenge_id = await arrange(db, clock.now())
    cooling = await org_id(db, COOLING.slug)
    # A second admin of the partner is told too; a plain member is not.
    second = await make_user(db, "ana.second@example.org", "Second Admin")
    member = await make_user(db, "ana.member@example.org", "Member")
    db.add_all([Membership(organisation_id=cooling, user_id=second.id, role=Role.ADMIN),
                Membership(organisation_id=cooling, user_id=member.id, role=Role.MEMBER)])  # fmt: skip
    await db.commit()

    await login_as(client, ORGANISER)
    too_long = await post_form(client, f"/challenges/{challenge_id}/partners/{cooling}/interest",
                               {"message": "x" * 2001})  # fmt: skip
    assert too_long.status_code == 422
    assert "Use at most 2000 characters" in too_long.text
    assert 'aria-invalid="true"' in too_long.text
    sent = await post_form(client, f"/challenges/{challenge_id}/partners/{cooling}/interest",
                           {"message": "We would love to pilot your green roofs in Rennes."})  # fmt: skip
    assert sent.status_code == 303
    assert sent.headers["location"].startswith(f"/challenges/{challenge_id}/partners")
    await app.state.jobs.drain()
    interest = await db.scalar(select(PartnerInterest))
    assert interest is not None
    assert (interest.status, interest.partner_organisation_id) == (InterestStatus.SENT, cooling)
    again = await post_form(client, f"/challenges/{challenge_id}/partners/{cooling}/interest", {})
    assert again.status_code == 303
    assert await db.scalar(select(func.count()).select_from(PartnerInterest)) == 1, "once per partner"
    same_country = await org_id(db, SAME_COUNTRY.slug)
    await post_form(client, f"/challenges/{challenge_id}/partners/{same_country}/interest", {})
    assert await db.scalar(select(func.count()).select_from(PartnerInterest)) == 1, "never the same country"

    for email in ("ana.admin@example.org", "ana.second@example.org"):
        told = await _notifications(db, email, "partner_interest")
        assert len(told) == 1, email
        assert told[0].link == f"/organisations/{COOLING.slug}/partner-interests"
        assert CHALLENGE["title"] in told[0].text
    assert await _notifications(db, "ana.member@example.org", "partner_interest") == []

    # Before acceptance: no contact anywhere, for anyone.
    for url, html in (await _pages(client, challenge_id, organiser=True)).items():
        assert_private(html, f"organiser {url}")
    await switch_to(client, "ana.admin@example.org")
    for url, html in (await _pages(client, challenge_id, organiser=False)).items():
        assert_private(html, f"partner {url}", *SECRETS, ORGANISER)
    own_page = (await client.get(f"/organisations/{COOLING.slug}")).text
    assert f'href="/organisations/{COOLING.slug}/partner-interests"' in own_page, "linked for its admins"
    interests = (await client.get(f"/organisations/{COOLING.slug}/partner-interests")).text
    assert CHALLENGE["title"] in interests
    assert "We would love to pilot your green roofs in Rennes." in interests
    await logout(client)
    for url in ("/partners", f"/organisations/{COOLING.slug}", f"/challenges/{challenge_id}"):
        assert_private((await client.get(url)).text, f"anonymous {url}")
    await sign_in(client, db, "nosy@example.org")
    assert (await client.get(f"/organisations/{COOLING.slug}/partner-interests")).status_code == 403
    await switch_to(client, ORGANISER)
    assert (await client.get(f"/organisations/{COOLING.slug}/partner-interests")).status_code == 403
    answer_url = f"/organisations/{COOLING.slug}/partner-interests/{interest.id}/accept"
    assert (await post_form(client, answer_url, {})).status_code == 403, (
        "the organiser cannot accept for them"
    )

    # The partner's admin confirms, then accepts.
    await switch_to(client, "ana.admin@example.org")
    confirm = await client.get(answer_url)
    assert confirm.status_code == 200
    assert "Accept and share contacts" in confirm.text
    assert_private(confirm.text, "confirmation", *SECRETS, ORGANISER)
    accepted = await post_form(client, answer_url, {})
    assert accepted.status_code == 303
    await app.state.jobs.drain()
    db.expire_all()
    interest = await db.scalar(select(PartnerInterest))
    assert interest is not None
    assert interest.status is InterestStatus.ACCEPTED
    assert interest.answered_at is not None
    partner_side = (await client.get(f"/organisations/{COOLING.slug}/partner-interests")).text
    assert ORGANISER in partner_side, "the partner now sees the organiser's email"
    assert ORGANISER_NAME in partner_side
    assert (await post_form(client, answer_url.replace("accept", "decline"), {})).status_code == 303
    db.expire_all()
    assert (await db.scalar(select(PartnerInterest.status))) is InterestStatus.ACCEPTED, "answered once"

    assert len(await _notifications(db, ORGANISER, "partner_interest_accepted")) == 1
    assert len(await _notifications(db, "ana.second@example.org", "partner_interest_accepted")) == 1
    await switch_to(client, ORGANISER)
    organiser_side = (await client.get(f"/challenges/{challenge_id}/partners")).text
    assert COOLING.contact_email in organiser_side, "the organiser now sees the partner's contact"
    assert COOLING.contact_name in organiser_side
    assert_private(organiser_side, "organiser after", FINTECH.contact_email, SAME_COUNTRY.contact_email)
    for url in ("/partners", f"/organisations/{COOLING.slug}", "/notifications"):
        assert_private((await client.get(url)).text, f"public after {url}")


async def test_a_declined_interest_tells_the_organiser_and_shares_nothing(client, db, app, clock):
    challenge_id = await arrange(db, clock.now())
    fintech = await org_id(db, FINTECH.slug)
    await login_as(client, ORGANISER)
    sent = await post_form(client, f"/challenges/{challenge_id}/partners/{fintech}/interest", {})
    assert sent.status_code == 303
    interest_id = await db.scalar(select(PartnerInterest.id))
    await switch_to(client, "bob.admin@example.org")
    decline_url = f"/organisations/{FINTECH.slug}/partner-interests/{interest_id}/decline"
    assert "Decline" in (await client.get(decline_url)).text
    assert (await post_form(client, decline_url, {})).status_code == 303
    await app.state.jobs.drain()
    db.expire_all()
    assert (await db.scalar(select(PartnerInterest.status))) is InterestStatus.DECLINED
    told = await _notifications(db, ORGANISER, "partner_interest_declined")
    assert len(told) == 1
    assert FINTECH.name in told[0].text
    assert_private((await client.get(f"/organisations/{FINTECH.slug}/partner-interests")).text,
                   "partner after decline", ORGANISER)  # fmt: skip
    await switch_to(client, ORGANISER)
    page = (await client.get(f"/challenges/{challenge_id}/partners")).text
    assert "They declined" in page
    assert_private(page, "organiser after decline")
    assert_private((await client.get("/notifications")).text, "notifications after decline")


async def test_a_challenge_not_open_to_partners_shows_a_message_and_no_suggestion(client, db, app, clock):
    challenge_id = await arrange(db, clock.now(), open_to_partners=False)
    await login_as(client, ORGANISER)
    page = await client.get(f"/challenges/{challenge_id}/partners")
    assert page.status_code == 200
    assert "not open to partners abroad" in page.text
    assert COOLING.name not in page.text
    cooling = await org_id(db, COOLING.slug)
    refused = await post_form(client, f"/challenges/{challenge_id}/partners/{cooling}/interest", {})
    assert refused.status_code == 303
    assert await db.scalar(select(func.count()).select_from(PartnerInterest)) == 0


async def test_no_partner_abroad_shows_the_empty_state(client, db, app, clock):
    organiser = await make_user(db, ORGANISER, ORGANISER_NAME)
    org = await make_organisation(db, organiser)
    challenge = await make_challenge(db, org, clock.now(), tags=[], open_to_partners=True, **CHALLENGE)
    challenge_id = challenge.id
    await add_partner(db, SAME_COUNTRY)
    await login_as(client, ORGANISER)
    page = (await client.get(f"/challenges/{challenge_id}/partners")).text
    assert "No partner organisation from another country is listed yet." in page
    assert SAME_COUNTRY.name not in page


async def test_the_directory_filters_paginates_and_searches_by_meaning(client, db, app, clock):
    await arrange(db, clock.now())
    html = (await client.get("/partners")).text
    assert 'href="/partners"' in html, "linked from the main navigation"
    for demo in (COOLING, FINTECH, SAME_COUNTRY):
        assert demo.name in html
    assert UNLISTED.name not in html
    assert_private(html, "directory")

    spain = (await client.get("/partners", params={"country": "ES"})).text
    assert COOLING.name in spain
    assert FINTECH.name not in spain
    investment = (await client.get("/partners", params={"kind": "investment"})).text
    assert FINTECH.name in investment
    assert COOLING.name not in investment
    climate = (await client.get("/partners", params={"sector": "climate"})).text
    assert COOLING.name in climate
    assert SAME_COUNTRY.name in climate
    assert FINTECH.name not in climate
    words = (await client.get("/partners", params={"q": "payment"})).text
    assert FINTECH.name in words
    assert COOLING.name not in words
    none = (await client.get("/partners", params={"q": "submarines"})).text
    assert "No partner organisation matches these filters." in none

    query = "money transfers for shops"  # no word in common with the fintech offer
    assert FINTECH.name not in (await client.get("/partners", params={"q": query})).text
    meaning = shown((await client.get("/partners", params={"q": query, "meaning": "1"})).text)
    assert FINTECH.name in meaning
    if COOLING.name in meaning:
        assert meaning.index(FINTECH.name) < meaning.index(COOLING.name)
    fragment = await client.get(
        "/partners", params={"q": query, "meaning": "1"}, headers={"HX-Request": "true"}
    )
    assert fragment.headers["vary"] == "HX-Request"
    assert "<html" not in fragment.text

    for n in range(12):
        await add_partner(db, Demo(f"lab-{n:02}", f"Zeta Lab {n:02}", "IT", f"Offer number {n}.", "Partners.",
                                   "research", "research", "Private Zeta", "zeta.secret@example.org"))  # fmt: skip
    first = (await client.get("/partners")).text
    assert "Page 1 of 2" in first
    second = (await client.get("/partners", params={"page": "2"})).text
    assert "Zeta Lab 11" in second
    assert "Zeta Lab 11" not in first
    assert "zeta.secret@example.org" not in first + second


async def test_the_directory_has_an_empty_state(client):
    html = (await client.get("/partners")).text
    assert "No partner organisation is listed yet." in html
